/*
 * The rootless sandbox; see sandbox.h.
 *
 * Process layout: the caller forks A, which unshares the user namespace and
 * waits while the caller writes its id maps; A then unshares the mount, PID,
 * IPC, UTS (and network) namespaces and forks B, PID 1 of the new PID
 * namespace, which builds the mounts and pivots into the root; B then stays
 * as the namespace's init (it never execs, reaps orphans) and forks C, which
 * takes the command's ids and execs it.  B exits with C's status, which A
 * reports as its own.  Setup failures travel back as a message on a
 * close-on-exec pipe: if the exec happens, the pipe closes empty.
 *
 * Cancelling: everything in a PID namespace dies with its init, so ending B
 * ends the command and all it started.  A and B die with their parents
 * (PR_SET_PDEATHSIG, SIGKILL; set after the last change of credentials,
 * which clears it, and followed by a check that the parent still lives), so
 * a SIGKILLed ocib leaves nothing running.  A SIGINT, SIGTERM or SIGHUP to
 * ocib (see sandbox_cancel_install) makes it send SIGTERM to A, which kills
 * B; A's wait returns once the namespace is empty, and sandbox_run then
 * fails, so that the caller's usual failure path unmounts, removes and
 * unlocks what it made.
 *
 * The id maps A's parent writes are idmap.c's; the users and groups of a
 * root, which the caller resolves before it runs anything, are users.c's.
 */
#include "sandbox/sandbox.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "sandbox/child.h"
#include "sandbox/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Starts the child's report when overlayfs was refused (not an error of
 * the sandbox: the caller then runs without it). */
#define OVERLAY_REFUSED "\001"

extern char **environ;

/* In ocib: the sandbox (A) running now, and the signal that cancelled the
 * build.  In A: its init (B), and whether it was told to stop before B
 * existed. */
static volatile sig_atomic_t running_pid, cancel_signo;
static volatile sig_atomic_t init_pid, stop_early;

static void on_cancel(int sig)
{
    if (cancel_signo)
        return; /* already cancelling: let the cleanup finish */
    if (!running_pid) {
        /* No command to stop: die as before. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cancel_signo = sig;
    kill((pid_t)running_pid, SIGTERM);
}

void sandbox_cancel_install(void)
{
    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++) {
        struct sigaction old;

        /* A signal the caller ignores (nohup, a background job) stays so. */
        if (sigaction(child_cancel_signals[i], NULL, &old) == 0 &&
            old.sa_handler == SIG_IGN)
            continue;
        child_set_handler(child_cancel_signals[i], on_cancel);
    }
}

int sandbox_cancelled(void)
{
    return cancel_signo;
}

/* In A: stop the namespace by killing its init. */
static void on_stop(int sig)
{
    (void)sig;
    if (init_pid > 0)
        kill((pid_t)init_pid, SIGKILL);
    else
        stop_early = 1;
}

/* --- inside the sandbox (child B); errors go to the error pipe --- */

static char *in_root(const char *root, const char *path)
{
    return xasprintf("%s/%s", root, path[0] == '/' ? path + 1 : path);
}

/* Creates path when it is missing; an existing file is not opened for
 * writing (on an overlay that would copy it up: a change). */
static void ensure_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

    if (fd >= 0)
        close(fd);
}

static void bind_mount(const char *src, const char *dst, bool ro)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_die("sandbox: cannot bind '%s' onto '%s'", src, dst);
    if (ro && mount(NULL, dst, NULL,
                    MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        child_die("sandbox: cannot make '%s' read-only", dst);
}

static void setup_dev(const char *root)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char *dev = in_root(root, "dev");

    mkdir(dev, 0755);
    if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k") < 0)
        child_die("sandbox: cannot mount /dev");
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        char *src = xasprintf("/dev/%s", nodes[i]);
        char *dst = xasprintf("%s/%s", dev, nodes[i]);

        ensure_file(dst);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0 && strcmp(nodes[i], "tty"))
            child_die("sandbox: cannot provide %s", src);
        free(src);
        free(dst);
    }
    {
        char *p = xasprintf("%s/fd", dev);

        if (symlink("/proc/self/fd", p) < 0) { /* best effort */
        }
        free(p);
        p = xasprintf("%s/stdin", dev);
        if (symlink("/proc/self/fd/0", p) < 0) {
        }
        free(p);
        p = xasprintf("%s/stdout", dev);
        if (symlink("/proc/self/fd/1", p) < 0) {
        }
        free(p);
        p = xasprintf("%s/stderr", dev);
        if (symlink("/proc/self/fd/2", p) < 0) {
        }
        free(p);
        p = xasprintf("%s/shm", dev);
        mkdir(p, 01777);
        mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
        free(p);
        p = xasprintf("%s/pts", dev);
        mkdir(p, 0755);
        free(p);
    }
    free(dev);
}

static void loopback_up(void)
{
    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
}

/* Mounts the overlay of s->root (lower) and s->overlay_dir's upper and
 * work directories on its merged directory; returns that directory's path.
 * The options name the directories relative to their common parent, so
 * that no path can break the option syntax (',' and ':').  A refusal is
 * reported with OVERLAY_REFUSED first: the caller goes without. */
static char *mount_overlay(const struct sandbox_spec *s)
{
    _cleanup_free_ char *a = xstrdup(s->root);
    _cleanup_free_ char *b = xstrdup(s->root);
    _cleanup_free_ char *c = xstrdup(s->overlay_dir);
    _cleanup_free_ char *opts = NULL;
    const char *parent = dirname(a), *lower = basename(b), *ovl = basename(c);
    _cleanup_free_ char *upper = NULL;
    _cleanup_free_ char *refused = NULL;
    char *merged;

    if (chdir(parent) < 0)
        child_die("sandbox: cannot enter '%s'", parent);
    opts =
        xasprintf("lowerdir=./%s,upperdir=./%s/upper,workdir=./%s/work,userxattr,volatile",
                  lower, ovl, ovl);
    merged = xasprintf("%s/merged", s->overlay_dir);
    upper = xasprintf("./%s/upper", ovl);
    /* An upper directory without user xattrs mounts, but cannot record a
     * re-created directory (opaque): not an overlay to use. */
    if (setxattr(upper, "user.ocib.probe", "1", 1, 0) < 0)
        refused =
            xasprintf("the cache's file system keeps no user xattrs (%s)", strerror(errno));
    else if (removexattr(upper, "user.ocib.probe") < 0 ||
             mount("overlay", merged, "overlay", 0, opts) < 0)
        refused = xasprintf("overlayfs cannot be mounted here: %s", strerror(errno));
    if (refused) {
        char msg[512];

        snprintf(msg, sizeof(msg), OVERLAY_REFUSED "%s", refused);
        if (write(child_err_fd, msg, strlen(msg)) < 0) {
        }
        _exit(255);
    }
    return merged;
}

/* B, before it forks the command: mounts, pivot_root, workdir. */
static void setup_root(const struct sandbox_spec *s)
{
    const char *root = s->root;
    char *proc;

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        child_die("sandbox: cannot make mounts private");
    if (s->overlay_dir)
        root = mount_overlay(s);
    else if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_die("sandbox: cannot bind the root '%s'", root);
    proc = in_root(root, "proc");
    mkdir(proc, 0555);
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 &&
        mount("/proc", proc, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_die("sandbox: cannot mount /proc");
    setup_dev(root);
    if (s->network_host) {
        char *etc = in_root(root, "etc");
        char *resolv = in_root(root, "etc/resolv.conf");
        char *hosts = in_root(root, "etc/hosts");

        mkdir(etc, 0755);
        ensure_file(resolv);
        ensure_file(hosts);
        if (access("/etc/resolv.conf", R_OK) == 0)
            bind_mount("/etc/resolv.conf", resolv, true);
        if (access("/etc/hosts", R_OK) == 0)
            bind_mount("/etc/hosts", hosts, true);
        free(etc);
        free(resolv);
        free(hosts);
    }
    for (size_t i = 0; i < s->n_mounts; i++) {
        char *dst = in_root(root, s->mounts[i].target);
        struct stat st;

        if (stat(s->mounts[i].source, &st) < 0)
            child_die("sandbox: mount source '%s'", s->mounts[i].source);
        if (S_ISDIR(st.st_mode))
            child_mkdir_p(dst);
        else
            ensure_file(dst);
        bind_mount(s->mounts[i].source, dst, s->mounts[i].read_only);
        free(dst);
    }
    if (chdir(root) < 0)
        child_die("sandbox: cannot enter the root '%s'", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        child_die("sandbox: pivot_root into '%s' failed", root);
    if (umount2(".", MNT_DETACH) < 0)
        child_die("sandbox: cannot detach the old root");
    if (chdir("/") < 0)
        child_die("sandbox: chdir /");
    if (sethostname("ocib", 4) < 0) {
        /* not fatal */
    }
    if (!s->network_host)
        loopback_up();
    if (s->workdir) {
        child_mkdir_p(s->workdir);
        if (chdir(s->workdir) < 0)
            child_die("sandbox: workdir '%s'", s->workdir);
    }
}

/* C: takes the command's ids and execs it. */
static void command_main(const struct sandbox_spec *s, int out_fd)
{
    int null_fd;

    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
        signal(child_cancel_signals[i], SIG_DFL);
    if (setgroups(s->n_groups, s->groups) < 0 && s->n_groups)
        child_die("sandbox: setgroups");
    if (setresgid(s->gid, s->gid, s->gid) < 0)
        child_die("sandbox: group %u is not mapped (an unprivileged build needs a range in "
                  "/etc/subgid)",
                  (unsigned)s->gid);
    if (setresuid(s->uid, s->uid, s->uid) < 0)
        child_die("sandbox: user %u is not mapped (an unprivileged build needs a range in "
                  "/etc/subuid)",
                  (unsigned)s->uid);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        child_die("sandbox: cannot set up stdio");
    environ = (char **)s->env;
    execvp(s->argv[0], s->argv);
    child_die("sandbox: cannot run '%s'", s->argv[0]);
}

/* B: PID 1 of the namespace.  Dies with A; sets up the root, runs the
 * command as C, reaps whatever else ends, and exits with C's status (which
 * ends every process left in the namespace). */
static void init_main(const struct sandbox_spec *s, int out_fd, int alive_fd)
{
    int status;
    pid_t cmd, w;

    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
        signal(child_cancel_signals[i], SIG_DFL);
    child_die_with_parent(0, alive_fd, SIGKILL);
    close(alive_fd);
    setup_root(s);
    cmd = fork();
    if (cmd < 0)
        child_die("sandbox: fork");
    if (cmd == 0)
        command_main(s, out_fd);
    close(out_fd);
    close(child_err_fd);
    for (;;) {
        w = waitpid(-1, &status, 0);
        if (w == cmd)
            break;
        if (w < 0 && errno != EINTR)
            _exit(255);
    }
    if (WIFSIGNALED(status))
        _exit(128 + WTERMSIG(status));
    _exit(WEXITSTATUS(status));
}

/* Closes both ends of a pipe (those still open, i.e. >= 0). */
static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

/* Forks a child that enters a new user namespace, whose id maps the caller
 * (this process) writes before letting it go on.  Returns 0 in the child,
 * the child's pid in the caller, -1 with err when that failed.  A child that
 * cannot enter the namespace writes why to report_fd (stderr when -1)
 * and exits 255. */
static pid_t fork_into_userns(int report_fd, struct ocib_error *err)
{
    int ready[2] = {-1, -1}, go[2] = {-1, -1};
    int status;
    pid_t pid;
    char c = 0;

    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
        ocib_error_errno(err, errno, "sandbox: pipe");
        pid = -1;
        goto out;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        ocib_error_errno(err, errno, "sandbox: fork");
        goto out;
    }
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        if (unshare(CLONE_NEWUSER) < 0) {
            /* Said on the ready pipe: "e" and the errno. */
            unsigned char why[2] = {'e', (unsigned char)errno};

            if (write(ready[1], why, 2) < 0) {
            }
            _exit(255);
        }
        if (write(ready[1], "u", 1) != 1 || read(go[0], &c, 1) != 1 || c != 'g') {
            char msg[256];

            snprintf(msg, sizeof(msg), "sandbox: cannot enter a user namespace: %s\n",
                     strerror(errno));
            if (write(report_fd >= 0 ? report_fd : 2, msg, strlen(msg)) < 0) {
            }
            _exit(255);
        }
        close(ready[1]);
        close(go[0]);
        return 0;
    }
    /* Only the child may hold these ends: a child that dies then reads as
     * end of file, never as a wait. */
    close(ready[1]);
    ready[1] = -1;
    close(go[0]);
    go[0] = -1;
    if (read(ready[0], &c, 1) != 1 || c != 'u' || idmap_write(pid, err) < 0 ||
        write(go[1], "g", 1) != 1) {
        unsigned char e;

        if (c == 'e' && read(ready[0], &e, 1) == 1) {
            _cleanup_free_ char *why = sandbox_userns_blocker(e);

            ocib_error_set(err, "sandbox: cannot make a user namespace for run layers: %s",
                           why);
        }
        if (err && !err->msg[0])
            ocib_error_set(err, "sandbox: the user namespace could not be set up");
        close(go[1]); /* the child reads end of file: it gives up */
        go[1] = -1;
        waitpid(pid, &status, 0);
        pid = -1;
    }
out:
    close_pair(ready);
    close_pair(go);
    return pid;
}

static void userns_main(const struct sandbox_spec *s, pid_t parent, int out[2], int errp[2])
    __attribute__((noreturn));

/* A: runs in the new user namespace, its maps written.  Makes the other
 * namespaces, forks their init (B) and exits with B's status once the
 * namespace is empty.  out and errp are the output and error pipes. */
static void userns_main(const struct sandbox_spec *s, pid_t parent, int out[2], int errp[2])
{
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    int alive[2], status;
    pid_t inner;

    running_pid = 0;
    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
        child_set_handler(child_cancel_signals[i], on_stop);
    child_die_with_parent(parent, -1, SIGKILL);
    child_err_fd = errp[1];
    close(out[0]);
    close(errp[0]);
    signal(SIGPIPE, SIG_DFL);
    if (!s->network_host)
        flags |= CLONE_NEWNET;
    if (unshare(flags) < 0)
        child_die("sandbox: cannot create mount/PID/IPC/UTS%s namespaces",
                  s->network_host ? "" : "/network");
    if (pipe2(alive, O_CLOEXEC) < 0)
        child_die("sandbox: pipe");
    inner = fork();
    if (inner < 0)
        child_die("sandbox: fork");
    if (inner == 0) {
        close(alive[1]);
        init_main(s, out[1], alive[0]);
    }
    close(alive[0]);
    init_pid = inner;
    if (stop_early)
        kill(inner, SIGKILL);
    close(out[1]);
    close(errp[1]);
    /* Returns once the namespace is empty (its init exits last). */
    while (waitpid(inner, &status, 0) < 0)
        if (errno != EINTR)
            _exit(255);
    if (WIFSIGNALED(status))
        _exit(128 + WTERMSIG(status));
    _exit(WEXITSTATUS(status));
}

/* Reads what the sandbox reported on its error pipe (fd), once it is gone:
 * 0 when nothing (the command ran), else SANDBOX_NO_OVERLAY or -1 with err
 * set to the report. */
static int setup_report(const struct sandbox_spec *s, int fd, struct ocib_error *err)
{
    char msg[2048];
    size_t len = 0;
    ssize_t n;
    char *at = msg;

    while (len < sizeof(msg) - 1 && (n = read(fd, msg + len, sizeof(msg) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    msg[len] = '\0';
    /* Notes first (the command ran after them), then a failure, if any. */
    while (!strncmp(at, CHILD_NOTE, strlen(CHILD_NOTE))) {
        char *end = strchr(at, '\n');

        if (!end)
            end = at + strlen(at);
        if (s->ret_note && !*s->ret_note)
            *s->ret_note =
                xstrndup(at + strlen(CHILD_NOTE), (size_t)(end - at) - strlen(CHILD_NOTE));
        at = *end ? end + 1 : end;
    }
    if (!*at)
        return 0;
    if (!strncmp(at, OVERLAY_REFUSED, strlen(OVERLAY_REFUSED))) {
        ocib_error_set(err, "%s", at + strlen(OVERLAY_REFUSED));
        return SANDBOX_NO_OVERLAY;
    }
    ocib_error_set(err, "%s", at);
    return -1;
}

int sandbox_run(const struct sandbox_spec *s, int *ret_status, struct ocib_error *err)
{
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    char msg[1024];
    ssize_t n;
    int status, r = -1;
    pid_t pid, parent;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        ocib_error_errno(err, errno, "sandbox: pipe");
        goto out;
    }
    parent = getpid();
    if (s->chroot) {
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
            ocib_error_errno(err, errno, "sandbox: fork");
            goto out;
        }
        if (pid == 0)
            sandbox_chroot_main(s, parent, out, errp);
    } else {
        pid = fork_into_userns(errp[1], err);
    }
    if (pid < 0) {
        /* The child is gone: what it said is all there is to read. */
        close(errp[1]);
        errp[1] = -1;
        n = read(errp[0], msg, sizeof(msg) - 1);
        if (n > 0) {
            msg[n] = '\0';
            msg[strcspn(msg, "\n")] = '\0';
            ocib_error_set(err, "%s", msg);
        }
        goto out;
    }
    if (pid == 0)
        userns_main(s, parent, out, errp);
    running_pid = pid;
    if (cancel_signo)
        kill(pid, SIGTERM);
    close(out[1]);
    out[1] = -1;
    close(errp[1]);
    errp[1] = -1;
    child_pass_output(s, out[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            ocib_error_errno(err, errno, "sandbox: wait");
            goto out;
        }
    }
    running_pid = 0;
    if (cancel_signo) {
        ocib_error_set(err, "stopped: ocib received SIG%s", sigabbrev_np(cancel_signo));
        goto out;
    }
    r = setup_report(s, errp[0], err);
    if (r == 0)
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
    close_pair(out);
    close_pair(errp);
    return r;
}

/* In the outer process of a re-exec: the inner one, and a signal that came
 * before it existed. */
static volatile sig_atomic_t inner_pid, inner_pending;

static void forward_signal(int sig)
{
    if (inner_pid > 0)
        kill((pid_t)inner_pid, sig);
    else
        inner_pending = sig;
}

int sandbox_reexec_in_userns(char **argv, int *ret_status, struct ocib_error *err)
{
    int status, ep[2];
    pid_t pid, parent = getpid();

    if (idmap_identity() || getenv("OCIB_IN_USERNS"))
        return 0;
    if (pipe2(ep, O_CLOEXEC) < 0)
        return ocib_error_errno(err, errno, "sandbox: pipe");
    /* The inner process cleans up; this one passes the signal on. */
    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++) {
        struct sigaction old;

        if (sigaction(child_cancel_signals[i], NULL, &old) == 0 &&
            old.sa_handler != SIG_IGN)
            child_set_handler(child_cancel_signals[i], forward_signal);
    }
    pid = fork_into_userns(ep[1], err);
    close(ep[1]);
    close(ep[0]);
    if (pid < 0) {
        /* No user namespace for this user: the build goes on as it is (a
         * run step will say why it cannot run). */
        ocib_error_clear(err);
        return 0;
    }
    if (pid == 0) {
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
            fprintf(stderr, "ocib: cannot become root of the user namespace: %s\n",
                    strerror(errno));
            _exit(1);
        }
        child_die_with_parent(parent, -1, SIGKILL);
        for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
            if (signal(child_cancel_signals[i], SIG_DFL) == SIG_IGN)
                signal(child_cancel_signals[i], SIG_IGN);
        setenv("OCIB_IN_USERNS", "1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "ocib: cannot re-run ocib in its user namespace: %s\n",
                strerror(errno));
        _exit(1);
    }
    inner_pid = pid;
    if (inner_pending)
        kill(pid, inner_pending);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return ocib_error_errno(err, errno, "sandbox: wait");
    }
    *ret_status = status;
    return 1;
}
