/*
 * What the processes the sandbox forks share, for sandbox/'s own files
 * (sandbox.c: the namespaced sandbox; chroot.c: --isolation chroot).
 * Nothing outside sandbox/ includes this header.
 *
 * A child reports a setup failure by writing one message to an error pipe
 * (child_err_fd, close-on-exec, so that an exec that happens closes it
 * empty) and exiting 255; child_die does both.  A message that starts with
 * CHILD_NOTE is no failure: a line the caller passes on as a note, after
 * which the command still runs.
 */
#ifndef OCIB_SANDBOX_CHILD_H
#define OCIB_SANDBOX_CHILD_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* Starts a note on the error pipe; it ends at the next '\n'. */
#define CHILD_NOTE "\002"

/* The signals that cancel a build (SIGINT, SIGTERM, SIGHUP). */
extern const int child_cancel_signals[3];
#define N_CANCEL_SIGNALS 3

/* The error pipe's write end in a child, or -1. */
extern int child_err_fd;

/* Writes the message (and strerror(errno) when errno is set) to
 * child_err_fd and exits 255. */
void child_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Writes a note (CHILD_NOTE, the text, '\n') to child_err_fd. */
void child_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes this process get sig when its parent dies; the parent must be
 * expected_parent (0: any, for a PID namespace's init, which sees no
 * parent); alive_fd, when >= 0, reads end of file once the parent is gone.
 * Exits 255 when the parent is already gone.  Call it after the last
 * change of credentials (which clears the setting). */
void child_die_with_parent(pid_t expected_parent, int alive_fd, int sig);

/* sigaction with SA_RESTART and an empty mask. */
void child_set_handler(int sig, void (*fn)(int));

/* mkdir -p of an absolute or relative path (0755), errors ignored. */
void child_mkdir_p(const char *path);

/* Hands what is written to fd to s->output, line by line, until every
 * writer has closed it. */
void child_pass_output(const struct sandbox_spec *s, int fd);

/* --isolation chroot (chroot.c): the child sandbox_run forks, with the
 * output and error pipes; never returns. */
void sandbox_chroot_main(const struct sandbox_spec *s, pid_t parent, int out[2],
                         int errp[2]) __attribute__((noreturn));

#endif
