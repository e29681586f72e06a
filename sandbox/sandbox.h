/*
 * The rootless sandbox that runs a `run` layer's command.
 *
 * No daemon and no setuid helper of ocib's own: the command runs in new
 * user, mount, PID, IPC and UTS namespaces (and a new network namespace for
 * network "none", with only loopback up), inside the stage's root file
 * system after pivot_root, with /proc, a minimal /dev (null, zero, full,
 * random, urandom, tty), and for network "host" the host's resolv.conf and
 * hosts.  User namespace maps: as root, the identity over all ids; as
 * another user, the whole subordinate range through newuidmap/newgidmap
 * when /etc/subuid and /etc/subgid grant one, else the caller alone mapped
 * to root.  Extra bind mounts carry cache directories (read-write) and
 * secrets (read-only files); the command's output goes, line by line, to a
 * callback.  Nothing here prints.
 *
 * --isolation chroot (chroot.c), for a container that is itself the
 * sandbox and lets no user namespace be made: no namespace isolates the
 * command; as root of the container it is chrooted into the root, with the
 * device nodes /dev needs made there, /proc only where a mount is allowed,
 * and its processes killed when it ends.
 */
#ifndef OCIB_SANDBOX_SANDBOX_H
#define OCIB_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

struct sandbox_mount {
    const char *source; /* host path */
    const char *target; /* absolute path inside; must exist in the root */
    bool read_only;
};

typedef void (*sandbox_output_fn)(void *opaque, const char *line);

struct sandbox_spec {
    const char *root; /* host path of the root file system */
    char *const *argv;
    char *const *env;    /* "NAME=value", NULL-terminated */
    const char *workdir; /* created if missing */
    uid_t uid;           /* inside */
    gid_t gid;
    const gid_t *groups;
    size_t n_groups;
    bool network_host;
    const struct sandbox_mount *mounts;
    size_t n_mounts;
    /* NULL, or a directory beside root (same parent) holding empty
     * directories upper, work and merged: the command then runs on an
     * overlay of root (never written) and upper (which gets the change). */
    const char *overlay_dir;
    sandbox_output_fn output;
    void *output_opaque;
    /* --isolation chroot: no namespaces, the command chrooted into root.
     * mounts, overlay_dir and network_host are then not used: the caller
     * places what the command needs in the root itself. */
    bool chroot;
    /* NULL, or where a note for the user goes (caller frees; set only when
     * NULL): under chroot, why the command has no /proc. */
    char **ret_note;
};

#define SANDBOX_NO_OVERLAY 1

/* Runs the command; *ret_status gets its exit status (128 + signal when
 * killed).  Returns 0; -1 when the sandbox could not be set up; or
 * SANDBOX_NO_OVERLAY when overlay_dir was given and the kernel refused the
 * overlay (nothing ran; err says why). */
int sandbox_run(const struct sandbox_spec *s, int *ret_status, struct ocib_error *err);

/* Succeeds when this process may run commands with spec.chroot: it must
 * be root of its container (not root of the user namespace ocib makes for
 * an unprivileged user); else fails naming the uid. */
int sandbox_chroot_check(struct ocib_error *err);

/* Makes SIGINT, SIGTERM and SIGHUP cancel a build: during sandbox_run the
 * sandbox's whole PID namespace is killed, sandbox_run fails ("stopped:
 * ocib received SIGTERM") once nothing of it is left, and the caller's
 * failure path cleans up; sandbox_cancelled() then gives the signal, for
 * the program to die of it.  Outside sandbox_run the signal kills the
 * process at once, as without this.  A signal ignored when this is called
 * stays ignored.  The sandbox dies with ocib, even of SIGKILL. */
void sandbox_cancel_install(void);

/* The signal that cancelled the build, or 0. */
int sandbox_cancelled(void);

/* As an unprivileged user, a build runs as root of a user namespace
 * holding the subordinate ids when /etc/subuid grants them, else the caller
 * alone (as `buildah unshare` does): unpacked files get the owners their
 * layers say where those are mapped, and every file of the cache stays
 * readable, writable and removable to the build whatever its mode.  This
 * re-runs the program (argv) there and returns 1 with its wait status
 * (waitpid's); 0 when not needed (root, or already inside).  Meanwhile
 * SIGINT, SIGTERM and SIGHUP are passed on to it, and it dies with this
 * process. */
int sandbox_reexec_in_userns(char **argv, int *ret_status, struct ocib_error *err);

/* Host uid/gid -> the id the sandbox sees, under the maps sandbox_run uses
 * for this process (for recording owners of files a command created). */
unsigned sandbox_uid_to_inside(unsigned host_uid);
unsigned sandbox_gid_to_inside(unsigned host_gid);

/* Resolves a user spec ("name", "uid", "name:group", "uid:gid") against the
 * passwd and group files of root (paths inside root, resolved within it).
 * ret_home (may be NULL) gets the user's home directory when passwd names
 * one (caller frees), else is left alone.  Ids are read with ocib_id_parse
 * (base/ids.h): a numeric part out of range, or a passwd or group line whose
 * id is none (4294967296), fails naming it instead of wrapping. */
int sandbox_resolve_user(const char *root, const char *user, uid_t *ret_uid, gid_t *ret_gid,
                         char **ret_home, struct ocib_error *err);

/* Succeeds when programs of architecture arch (an OCI name: arm64, arm,
 * s390x...) can run here, through a binfmt_misc handler with the F flag;
 * else fails saying what to install or register. */
int sandbox_check_foreign(const char *arch, const char *host_arch, struct ocib_error *err);

/* Why a user namespace could not be made (errnum from unshare) and the
 * setting that would allow it, for an error message; caller frees. */
char *sandbox_userns_blocker(int errnum);

#endif
