/*
 * git queries through the git command; see git.h.
 */
#include "builder/git.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define GIT_OUTPUT_MAX (64 * 1024 * 1024)

/* Runs "git -C dir <args...>" (argv[3] on) and returns its whole output
 * (at most cap bytes; NUL-terminated, its length in *ret_len), or NULL when
 * git fails or says more. */
static char *git_output(char **argv, size_t cap, size_t *ret_len)
{
    posix_spawn_file_actions_t fa;
    size_t len = 0, alloc = 4096;
    char *buf = xmalloc(alloc);
    int pipefd[2], status;
    bool too_long = false;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        free(buf);
        return NULL;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawnp(&pid, "git", &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[0]);
        close(pipefd[1]);
        free(buf);
        return NULL;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    for (;;) {
        ssize_t n;

        if (len + 1 == alloc) {
            if (alloc > cap) {
                too_long = true;
                break;
            }
            alloc *= 2;
            buf = xrealloc(buf, alloc);
        }
        n = read(pipefd[0], buf + len, alloc - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        too_long) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *ret_len = len;
    return buf;
}

/* Runs "git -C dir <args>" and returns its first output line. */
static char *git_line(const char *dir, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {"git", "-C", (char *)dir, (char *)a1, (char *)a2, (char *)a3, NULL};
    size_t len;
    char *out = git_output(argv, 4096, &len);

    if (!out)
        return NULL;
    out[strcspn(out, "\r\n")] = '\0';
    if (!*out) {
        free(out);
        return NULL;
    }
    return out;
}

int git_head(const char *dir, char **ret_full, char **ret_short)
{
    _cleanup_free_ char *full = git_line(dir, "rev-parse", "--verify", "HEAD");
    _cleanup_free_ char *shortid = NULL;

    if (!full)
        return -1;
    shortid = git_line(dir, "rev-parse", "--short", "HEAD");
    if (!shortid)
        shortid = xstrndup(full, 7);
    *ret_full = TAKE_PTR(full);
    *ret_short = TAKE_PTR(shortid);
    return 0;
}

struct git_dirty {
    char **paths; /* sorted; a directory ends with '/' */
    size_t n, alloc;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct git_dirty *git_dirty_load(const char *dir)
{
    char *argv[] = {"git",
                    "-C",
                    (char *)dir,
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                    "--ignored=matching",
                    "--",
                    ".",
                    NULL};
    _cleanup_free_ char *prefix = NULL;
    _cleanup_free_ char *out = NULL;
    struct git_dirty *d;
    size_t len, plen;
    char *p;

    /* Status paths are relative to the top of the work tree. */
    {
        char *pargv[] = {"git", "-C", (char *)dir, "rev-parse", "--show-prefix", NULL};

        prefix = git_output(pargv, 4096, &len);
        if (!prefix)
            return NULL;
        prefix[strcspn(prefix, "\r\n")] = '\0';
        plen = strlen(prefix);
    }
    out = git_output(argv, GIT_OUTPUT_MAX, &len);
    if (!out)
        return NULL;
    d = xcalloc(1, sizeof(*d));
    for (p = out; p < out + len;) {
        size_t n = strlen(p);
        bool rename = n > 3 && (p[0] == 'R' || p[0] == 'C');

        if (n > 3 && !strncmp(p + 3, prefix, plen) && p[3 + plen]) {
            XGROW(d->paths, d->alloc, d->n + 1);
            d->paths[d->n++] = xstrdup(p + 3 + plen);
        }
        p += n + 1;
        if (rename && p < out + len) /* the source of a rename: gone from HEAD's view */
            p += strlen(p) + 1;
    }
    if (d->n)
        qsort(d->paths, d->n, sizeof(*d->paths), cmp_str);
    return d;
}

static bool has_exact(const struct git_dirty *d, const char *key)
{
    return bsearch(&key, d->paths, d->n, sizeof(*d->paths), cmp_str) != NULL;
}

bool git_dirty_has(const struct git_dirty *d, const char *rel)
{
    _cleanup_free_ char *dirs = NULL;

    if (!d || !d->n)
        return false;
    if (has_exact(d, rel))
        return true;
    /* An ignored or untracked directory reported as a whole: "a/", "a/b/". */
    dirs = xmalloc(strlen(rel) + 2);
    for (const char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
        memcpy(dirs, rel, (size_t)(s - rel) + 1);
        dirs[s - rel + 1] = '\0';
        if (has_exact(d, dirs))
            return true;
    }
    return false;
}

bool git_dirty_empty(const struct git_dirty *d)
{
    return !d || d->n == 0;
}

void git_dirty_free(struct git_dirty *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->paths[i]);
    free(d->paths);
    free(d);
}

char *git_remote_url(const char *dir)
{
    char *url = git_line(dir, "config", "--get", "remote.origin.url");
    char *scheme, *at, *slash;

    if (!url)
        return NULL;
    /* scheme://user:secret@host/...: the user info goes. */
    scheme = strstr(url, "://");
    if (scheme) {
        slash = strchr(scheme + 3, '/');
        at = strchr(scheme + 3, '@');
        if (at && (!slash || at < slash))
            memmove(scheme + 3, at + 1, strlen(at + 1) + 1);
    }
    return url;
}
