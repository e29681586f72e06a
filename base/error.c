/*
 * Error recording and wrapping; see error.h.
 */
#include "base/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void error_vset(struct ocib_error *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    err->kind = OCIB_ERR_OTHER;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int ocib_error_set(struct ocib_error *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    error_vset(err, OCIB_EXIT_FAILURE, fmt, ap);
    va_end(ap);
    return -1;
}

int ocib_error_usage(struct ocib_error *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    error_vset(err, OCIB_EXIT_USAGE, fmt, ap);
    va_end(ap);
    return -1;
}

int ocib_error_errno(struct ocib_error *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    if (!err)
        return -1;
    va_start(ap, fmt);
    error_vset(err, OCIB_EXIT_FAILURE, fmt, ap);
    va_end(ap);
    if (errnum == ENOENT)
        err->kind = OCIB_ERR_NOT_FOUND;
    len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(errnum));
    return -1;
}

int ocib_error_wrap(struct ocib_error *err, const char *fmt, ...)
{
    char prefix[1024];
    char old[OCIB_ERROR_MAX];
    size_t plen, olen;
    va_list ap;

    if (!err)
        return -1;
    if (!err->code)
        err->code = OCIB_EXIT_FAILURE;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* "<prefix>: <old>", cut to fit; the end of a long message is what is
     * lost, never its start. */
    plen = strlen(prefix);
    olen = strlen(old);
    if (plen > sizeof(err->msg) - 3)
        plen = sizeof(err->msg) - 3;
    if (olen > sizeof(err->msg) - 3 - plen)
        olen = sizeof(err->msg) - 3 - plen;
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
    return -1;
}

int ocib_error_kind_set(struct ocib_error *err, enum ocib_error_kind kind, const char *fmt,
                        ...)
{
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    error_vset(err, OCIB_EXIT_FAILURE, fmt, ap);
    va_end(ap);
    err->kind = kind;
    return -1;
}

enum ocib_error_kind ocib_error_kind(const struct ocib_error *err)
{
    return err ? (enum ocib_error_kind)err->kind : OCIB_ERR_OTHER;
}

void ocib_error_clear(struct ocib_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->kind = OCIB_ERR_OTHER;
    err->msg[0] = '\0';
}
