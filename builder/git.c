/*
 * git queries through the git command; see git.h.
 */
#include "builder/git.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs "git -C dir <args>" and returns its first output line. */
static char *git_line(const char *dir, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {"git", "-C", (char *)dir, (char *)a1, (char *)a2, (char *)a3, NULL};
    posix_spawn_file_actions_t fa;
    char buf[256];
    size_t len = 0;
    int pipefd[2], status;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawnp(&pid, "git", &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[0]);
        close(pipefd[1]);
        return NULL;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    for (;;) {
        ssize_t n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);

        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf) - 1)
            break;
    }
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return NULL;
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return *buf ? xstrdup(buf) : NULL;
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
