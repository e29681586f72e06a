/*
 * Errors that travel up the call stack.
 *
 * Library code never prints: a failing function fills a struct ocib_error
 * with a lowercase message naming what failed, returns a negative value, and
 * each caller on the way up may prefix its own context with
 * ocib_error_wrap().  Only the command line prints the final message, once,
 * as "ocib: <message>".  The error also carries the exit status class the
 * command line will use: OCIB_EXIT_USAGE (2) for a wrong command line or
 * spec, detected before anything is built, OCIB_EXIT_FAILURE (1) otherwise.
 *
 * Besides the exit status an error has a kind, so that a caller can act on
 * what went wrong (a missing artifact is not a broken one) without matching
 * message text: set with ocib_error_kind_set(), kept by ocib_error_wrap(),
 * read with ocib_error_kind().  Errors set the old way are OCIB_ERR_OTHER.
 *
 * Every function accepts err == NULL and then only returns -1.
 */
#ifndef OCIB_BASE_ERROR_H
#define OCIB_BASE_ERROR_H

#include <stddef.h>

enum {
    OCIB_EXIT_OK = 0,
    OCIB_EXIT_FAILURE = 1,
    OCIB_EXIT_USAGE = 2,
};

enum ocib_error_kind {
    OCIB_ERR_OTHER = 0,
    OCIB_ERR_NOT_FOUND, /* the named thing does not exist (HTTP 404, ENOENT) */
    OCIB_ERR_AUTH,      /* credentials missing, wrong or refused */
    OCIB_ERR_NETWORK,   /* no answer, a dropped connection, a timeout */
    OCIB_ERR_INTEGRITY, /* bytes that do not match their digest, size or type */
    OCIB_ERR_LIMIT,     /* a size, count or time limit was reached */
};

#define OCIB_ERROR_MAX 4096

struct ocib_error {
    int code;                 /* OCIB_EXIT_FAILURE or OCIB_EXIT_USAGE */
    int kind;                 /* enum ocib_error_kind */
    char msg[OCIB_ERROR_MAX]; /* "" when no error was recorded */
};

#define OCIB_ERROR_INIT                                                                    \
    {                                                                                      \
        0, 0, ""                                                                           \
    }

#define OCIB_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Records a runtime failure (exit status 1).  Returns -1. */
int ocib_error_set(struct ocib_error *err, const char *fmt, ...) OCIB_PRINTF(2, 3);

/* Records a usage or spec error (exit status 2).  Returns -1. */
int ocib_error_usage(struct ocib_error *err, const char *fmt, ...) OCIB_PRINTF(2, 3);

/* Records a runtime failure "<fmt>: <strerror(errnum)>".  Returns -1. */
int ocib_error_errno(struct ocib_error *err, int errnum, const char *fmt, ...)
    OCIB_PRINTF(3, 4);

/* Prefixes the recorded message with "<fmt>: ", keeping its code.  Returns
 * -1, so that callers can write "return ocib_error_wrap(err, ...)". */
int ocib_error_wrap(struct ocib_error *err, const char *fmt, ...) OCIB_PRINTF(2, 3);

/* Records a runtime failure of the given kind (exit status 1).  Returns -1. */
int ocib_error_kind_set(struct ocib_error *err, enum ocib_error_kind kind, const char *fmt,
                        ...) OCIB_PRINTF(3, 4);

/* The kind of the recorded error (OCIB_ERR_OTHER when none or unknown). */
enum ocib_error_kind ocib_error_kind(const struct ocib_error *err);

/* Forgets any recorded error. */
void ocib_error_clear(struct ocib_error *err);

#endif
