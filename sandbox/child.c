/*
 * What the sandbox's children share; see child.h.
 */
#include "sandbox/child.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

const int child_cancel_signals[3] = {SIGINT, SIGTERM, SIGHUP};
int child_err_fd = -1;

void child_die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int e = errno;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    len = strlen(msg);
    if (e)
        snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(e));
    if (write(child_err_fd, msg, strlen(msg)) < 0) {
        /* nothing more to do */
    }
    _exit(255);
}

void child_note(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    size_t len;

    snprintf(msg, sizeof(msg), "%s", CHILD_NOTE);
    len = strlen(msg);
    va_start(ap, fmt);
    vsnprintf(msg + len, sizeof(msg) - len - 1, fmt, ap);
    va_end(ap);
    msg[strcspn(msg, "\n")] = '\0';
    len = strlen(msg);
    msg[len++] = '\n';
    if (write(child_err_fd, msg, len) < 0) {
        /* the note is lost, the command still runs */
    }
}

void child_die_with_parent(pid_t expected_parent, int alive_fd, int sig)
{
    struct pollfd pfd = {.fd = alive_fd, .events = POLLIN};

    if (prctl(PR_SET_PDEATHSIG, sig) < 0)
        _exit(255);
    /* The parent may have died before the call took effect. */
    if (expected_parent && getppid() != expected_parent)
        _exit(255);
    if (alive_fd >= 0 && poll(&pfd, 1, 0) != 0)
        _exit(255);
}

void child_set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void child_mkdir_p(const char *path)
{
    char *p = xstrdup(path);

    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
    free(p);
}

static void emit_lines(const struct sandbox_spec *s, struct strbuf *pending,
                       const char *buf, size_t len, bool flush)
{
    strbuf_add(pending, buf, len);
    for (;;) {
        char *nl = pending->buf ? memchr(pending->buf, '\n', pending->len) : NULL;
        size_t n;

        if (!nl && pending->len < LINE_MAX_BYTES && !(flush && pending->len))
            return;
        n = nl ? (size_t)(nl - pending->buf) : pending->len;
        {
            char *line = xstrndup(pending->buf, n);

            if (s->output)
                s->output(s->output_opaque, line);
            free(line);
        }
        if (nl)
            n++;
        memmove(pending->buf, pending->buf + n, pending->len - n);
        strbuf_setlen(pending, pending->len - n);
        if (!pending->len)
            return;
    }
}

void child_pass_output(const struct sandbox_spec *s, int fd)
{
    struct strbuf pending = STRBUF_INIT;

    for (;;) {
        char buf[8192];
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        emit_lines(s, &pending, buf, (size_t)n, false);
    }
    emit_lines(s, &pending, "", 0, true);
    strbuf_release(&pending);
}
