/*
 * --isolation chroot: a run layer's command in the stage's root by chroot
 * alone, for a container that is itself the sandbox (kaniko's way), where
 * no user namespace can be made.  It needs root of the container with
 * CAP_SYS_CHROOT (for chroot), CAP_SETUID and CAP_SETGID (a layer's user)
 * and CAP_MKNOD (device nodes), as Docker grants by default.
 *
 * Process layout: ocib forks R, the reaper, which never leaves the
 * container's view.  R makes the device nodes the root's /dev lacks, tries
 * a private mount namespace (allowed only with CAP_SYS_ADMIN; it isolates
 * nothing: it makes /proc, and device nodes bound where mknod is refused,
 * vanish with R), forks C and becomes a child subreaper.  C takes a process
 * group of its own, chroots, enters the working directory, takes the
 * command's ids and execs it.  When C ends (or R is told to stop, or ocib
 * dies: R's parent-death signal is SIGTERM), R kills C's process group and
 * then every process left below it (orphans come to R), removes the nodes
 * it made and exits with C's status.
 *
 * What this does not give, the caller must know: no PID, network, IPC or
 * UTS isolation; the command is root of the container (when the layer's
 * user is root) and can leave a chroot.
 */
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "sandbox/child.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* In R: the command's process group (C's pid), and whether R was told to
 * stop before it existed. */
static volatile sig_atomic_t group, stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
    if (group > 0)
        kill(-(pid_t)group, SIGKILL);
}

int sandbox_chroot_check(struct ocib_error *err)
{
    unsigned uid = (unsigned)geteuid();

    /* Root of the namespace ocib made for an unprivileged user is that
     * user: the id 0 maps to is the caller's. */
    if (uid == 0 && getenv("OCIB_IN_USERNS")) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
        unsigned inside, outside, count;

        if (f && fscanf(f, "%u %u %u", &inside, &outside, &count) == 3 && inside == 0)
            uid = outside;
    }
    if (uid == 0)
        return 0;
    return ocib_error_set(err,
                          "--isolation chroot needs root in the container (uid %u): run "
                          "it as root (Kubernetes: runAsUser: 0), or use the default "
                          "sandbox where user namespaces are allowed",
                          uid);
}

/* Whether this process's user namespace is not the initial one (a
 * rootless container), where the kernel lets no one make device nodes. */
static bool in_user_namespace(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
    unsigned long inside, outside, count;

    return f && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3 &&
           !(inside == 0 && outside == 0 && count == 4294967295UL);
}

struct devnode {
    const char *name;
    unsigned major, minor;
    bool required;
};

static const struct devnode nodes[] = {
    {"null", 1, 3, true},   {"zero", 1, 5, true},    {"full", 1, 7, true},
    {"random", 1, 8, true}, {"urandom", 1, 9, true}, {"tty", 5, 0, false},
};
#define N_NODES (sizeof(nodes) / sizeof(nodes[0]))

/* What R made in the root, to remove when the command has ended. */
struct made {
    int dev_fd;          /* the root's /dev */
    bool node[N_NODES];  /* made by R */
    bool bound[N_NODES]; /* a bind mount of the container's node */
    bool dev_dir;        /* /dev itself */
};

/* Binds the container's /dev/NAME onto an empty file made in dev_fd;
 * returns 0, or -1 with errno. */
static int bind_node(struct made *m, size_t i)
{
    _cleanup_free_ char *src = xasprintf("/dev/%s", nodes[i].name);
    _cleanup_free_ char *dst = xasprintf("/proc/self/fd/%d/%s", m->dev_fd, nodes[i].name);
    int fd = openat(m->dev_fd, nodes[i].name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);

    if (fd < 0)
        return -1;
    close(fd);
    m->node[i] = true;
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return -1;
    m->bound[i] = true;
    return 0;
}

/* Makes the device nodes the root's /dev lacks: mknod, else (in a private
 * mount namespace) a bind mount of the container's own. */
static void make_nodes(int root_fd, bool mntns, int mntns_errno, struct made *m)
{
    struct statvfs vfs;
    /* Nodes made on a file system mounted nodev cannot be opened. */
    bool nodev = fstatvfs(root_fd, &vfs) == 0 && (vfs.f_flag & ST_NODEV);

    if (mkdirat(root_fd, "dev", 0755) == 0)
        m->dev_dir = true;
    m->dev_fd = fs_open_within(root_fd, "dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->dev_fd < 0)
        child_die("--isolation chroot: cannot open /dev of the stage root");
    for (size_t i = 0; i < N_NODES; i++) {
        struct stat st;
        int mknod_errno, bind_errno;

        if (fstatat(m->dev_fd, nodes[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue; /* the image's own */
        if (!nodev && mknodat(m->dev_fd, nodes[i].name, S_IFCHR | 0666,
                              makedev(nodes[i].major, nodes[i].minor)) == 0) {
            m->node[i] = true;
            if (fchmodat(m->dev_fd, nodes[i].name, 0666, 0) < 0)
                child_die("--isolation chroot: cannot set the mode of /dev/%s",
                          nodes[i].name);
            continue;
        }
        mknod_errno = nodev ? 0 : errno;
        if (mntns && bind_node(m, i) == 0)
            continue;
        bind_errno = mntns ? errno : mntns_errno;
        if (!nodes[i].required)
            continue;
        errno = 0;
        if (nodev)
            child_die("--isolation chroot: cannot make /dev/%s in the stage root: its file "
                      "system is mounted nodev (put the cache, --cache-dir, on one without "
                      "nodev), and no bind mount either: %s",
                      nodes[i].name, strerror(bind_errno));
        if (in_user_namespace())
            child_die("--isolation chroot: cannot make /dev/%s in the stage root: this "
                      "container has a user namespace of its own (rootless), where no one "
                      "may make device nodes, and a bind mount, which needs CAP_SYS_ADMIN "
                      "there, was refused: %s",
                      nodes[i].name, strerror(bind_errno));
        child_die("--isolation chroot: cannot make /dev/%s in the stage root: mknod: %s "
                  "(it needs CAP_MKNOD, which Docker grants by default; podman: --cap-add "
                  "MKNOD), and no bind mount either: %s",
                  nodes[i].name, strerror(mknod_errno), strerror(bind_errno));
    }
}

/* Removes what make_nodes made, never through a path: through the /dev it
 * opened, whatever the command did to the root. */
static void remove_nodes(int root_fd, struct made *m)
{
    for (size_t i = 0; i < N_NODES; i++) {
        if (m->bound[i]) {
            _cleanup_free_ char *p =
                xasprintf("/proc/self/fd/%d/%s", m->dev_fd, nodes[i].name);

            umount2(p, MNT_DETACH);
        }
        if (m->node[i])
            unlinkat(m->dev_fd, nodes[i].name, 0);
    }
    close(m->dev_fd);
    if (m->dev_dir)
        unlinkat(root_fd, "dev", AT_REMOVEDIR);
}

/* Mounts /proc in the private mount namespace, else says why there is
 * none. */
static void mount_proc(int root_fd, bool mntns, int mntns_errno)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *p = NULL;

    if (!mntns) {
        child_note("note: --isolation chroot: run layers have no /proc here: mounting it "
                   "needs CAP_SYS_ADMIN (a private mount namespace was refused: %s)",
                   strerror(mntns_errno));
        return;
    }
    mkdirat(root_fd, "proc", 0555);
    fd = fs_open_within(root_fd, "proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        p = xasprintf("/proc/self/fd/%d", fd);
    if (fd < 0 || mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_note("note: --isolation chroot: run layers have no /proc: mounting it "
                   "failed: %s",
                   strerror(errno));
}

/* C: its own process group, the root, the working directory, the ids,
 * the command. */
static void command_main(const struct sandbox_spec *s, int root_fd, int out_fd,
                         pid_t reaper)
{
    int null_fd;

    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
        signal(child_cancel_signals[i], SIG_DFL);
    setpgid(0, 0);
    if (fchdir(root_fd) < 0 || chroot(".") < 0)
        child_die("--isolation chroot: cannot chroot into '%s' (it needs CAP_SYS_CHROOT)",
                  s->root);
    if (chdir("/") < 0)
        child_die("sandbox: chdir /");
    if (s->workdir) {
        child_mkdir_p(s->workdir);
        if (chdir(s->workdir) < 0)
            child_die("sandbox: workdir '%s'", s->workdir);
    }
    if (setgroups(s->n_groups, s->groups) < 0 && s->n_groups)
        child_die("sandbox: setgroups");
    if (setresgid(s->gid, s->gid, s->gid) < 0)
        child_die("sandbox: cannot become group %u", (unsigned)s->gid);
    if (setresuid(s->uid, s->uid, s->uid) < 0)
        child_die("sandbox: cannot become user %u", (unsigned)s->uid);
    child_die_with_parent(reaper, -1, SIGKILL);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        child_die("sandbox: cannot set up stdio");
    /* Nothing of ocib's reaches the command: a directory fd outside the
     * root would be a way out of it. */
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    environ = (char **)s->env;
    execvp(s->argv[0], s->argv);
    child_die("sandbox: cannot run '%s'", s->argv[0]);
}

/* Kills every process left below R (each orphan comes to R, a child
 * subreaper) and reaps them; without /proc, only reaps what has ended. */
static void drain(void)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    for (;;) {
        FILE *f = fopen(path, "re");
        bool any = false;
        long pid;

        if (!f) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
            return;
        }
        while (fscanf(f, "%ld", &pid) == 1) {
            kill((pid_t)pid, SIGKILL);
            any = true;
        }
        fclose(f);
        if (!any)
            return;
        while (waitpid(-1, NULL, 0) < 0)
            if (errno != EINTR)
                return;
    }
}

void sandbox_chroot_main(const struct sandbox_spec *s, pid_t parent, int out[2],
                         int errp[2])
{
    struct made m = {.dev_fd = -1};
    int root_fd, status = 0, mntns_errno = 0;
    bool mntns;
    pid_t cmd, w;

    child_err_fd = errp[1];
    close(out[0]);
    close(errp[0]);
    for (size_t i = 0; i < N_CANCEL_SIGNALS; i++)
        child_set_handler(child_cancel_signals[i], on_stop);
    signal(SIGPIPE, SIG_DFL);
    child_die_with_parent(parent, -1, SIGTERM);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    root_fd = open(s->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        child_die("--isolation chroot: cannot open the root '%s'", s->root);
    mntns =
        unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    if (!mntns)
        mntns_errno = errno;
    make_nodes(root_fd, mntns, mntns_errno, &m);
    mount_proc(root_fd, mntns, mntns_errno);
    cmd = fork();
    if (cmd < 0)
        child_die("sandbox: fork");
    if (cmd == 0)
        command_main(s, root_fd, out[1], getppid());
    setpgid(cmd, cmd);
    group = cmd;
    if (stopping)
        kill(-cmd, SIGKILL);
    close(out[1]);
    for (;;) {
        w = waitpid(-1, &status, 0);
        if (w == cmd)
            break;
        if (w < 0 && errno != EINTR)
            _exit(255);
    }
    kill(-cmd, SIGKILL);
    drain();
    remove_nodes(root_fd, &m);
    if (WIFSIGNALED(status))
        _exit(128 + WTERMSIG(status));
    _exit(WEXITSTATUS(status));
}
