/*
 * Why a user namespace cannot be made here, and the setting that allows
 * it: a container's seccomp profile (Docker's, containerd's, Kubernetes'
 * RuntimeDefault refuse unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN),
 * user.max_user_namespaces, Debian's kernel.unprivileged_userns_clone,
 * AppArmor's restriction of unprivileged user namespaces.  As root of a
 * container, --isolation chroot is offered as the way without them.
 */
#include "sandbox/sandbox.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The first number in a /proc file, or -1. */
static long proc_number(const char *path, const char *key)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    char line[256];

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!key)
            return strtol(line, NULL, 10);
        if (!strncmp(line, key, strlen(key)))
            return strtol(line + strlen(key), NULL, 10);
    }
    return -1;
}

char *sandbox_userns_blocker(int errnum)
{
    /* Root of a container that is itself the sandbox has another way. */
    const char *fallback =
        geteuid() == 0 && !getenv("OCIB_IN_USERNS")
            ? "; where the container is itself the sandbox, --isolation chroot runs "
              "run layers without namespaces (see the README for what it gives up); "
              "copy-only builds need no sandbox"
            : "; copy-only builds need no sandbox";

    if (proc_number("/proc/sys/user/max_user_namespaces", NULL) == 0)
        return xasprintf("user.max_user_namespaces is 0 here (sysctl -w "
                         "user.max_user_namespaces=15000 allows them)%s",
                         fallback);
    if (errnum == ENOSPC)
        return xasprintf("the user.max_user_namespaces limit is reached%s", fallback);
    if (geteuid() != 0 &&
        proc_number("/proc/sys/kernel/unprivileged_userns_clone", NULL) == 0)
        return xasprintf("kernel.unprivileged_userns_clone is 0 (sysctl -w "
                         "kernel.unprivileged_userns_clone=1 allows them)%s",
                         fallback);
    if (proc_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", NULL) == 1)
        return xasprintf("AppArmor restricts unprivileged user namespaces (sysctl -w "
                         "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
                         "profile for ocib that allows userns)%s",
                         fallback);
    if ((errnum == EPERM || errnum == ENOSYS) &&
        proc_number("/proc/self/status", "Seccomp:") == 2)
        return xasprintf(
            "a seccomp filter refuses it: the default profile of Docker, "
            "containerd and Kubernetes' RuntimeDefault allows unshare only with "
            "CAP_SYS_ADMIN (podman's default allows it; else run with a "
            "profile that allows unshare and clone with namespace flags, or "
            "seccomp=unconfined)%s",
            fallback);
    return xasprintf("%s%s", strerror(errnum), fallback);
}
