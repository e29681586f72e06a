/*
 * The id maps of the sandbox's user namespaces; see idmap.h.
 *
 * The maps are written from outside the new namespace, by its parent, while
 * the child waits: as root straight into /proc/PID/uid_map and gid_map (the
 * ids this process's own namespace has, each to itself); for a subordinate
 * range through the setuid helpers newuidmap and newgidmap, which check
 * /etc/subuid and /etc/subgid; for the caller alone into the files, after
 * "deny" in /proc/PID/setgroups, as an unprivileged process must.
 *
 * In a container the helpers often hold no privilege: under no_new_privs
 * (Kubernetes' allowPrivilegeEscalation: false) their setuid bit does
 * nothing, so they are not tried; without CAP_SYS_ADMIN in the bounding set
 * (podman's and Docker's defaults) they fail, and the caller alone is
 * mapped, as if they were not installed.
 */
#include "sandbox/idmap.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUB_MAX_LINE 256

/* How ids map, decided once per process. */
struct idmap {
    bool identity;                 /* running as root: all ids map to themselves */
    unsigned host;                 /* the caller's id, mapped to 0 */
    unsigned sub_start, sub_count; /* subordinate range mapped from 1, or count 0 */
};

static struct idmap uid_map, gid_map;
static bool maps_ready;

/* Reads /etc/subuid or /etc/subgid for the caller (by name or by id). */
static void read_subids(const char *file, const char *name, unsigned id, struct idmap *m)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[SUB_MAX_LINE];

    while (f && fgets(line, sizeof(line), f)) {
        char owner[SUB_MAX_LINE];
        unsigned long start, count;
        char idbuf[16];

        if (sscanf(line, "%255[^:]:%lu:%lu", owner, &start, &count) != 3)
            continue;
        snprintf(idbuf, sizeof(idbuf), "%u", id);
        if ((name && !strcmp(owner, name)) || !strcmp(owner, idbuf)) {
            m->sub_start = (unsigned)start;
            m->sub_count = (unsigned)count;
            return;
        }
    }
}

static void decide_maps(void)
{
    char name[256] = "";
    FILE *f;

    if (maps_ready)
        return;
    maps_ready = true;
    uid_map.host = getuid();
    gid_map.host = getgid();
    if (getuid() == 0) {
        uid_map.identity = gid_map.identity = true;
        return;
    }
    /* The user name for /etc/subuid, from /etc/passwd without NSS. */
    f = fopen("/etc/passwd", "re");
    if (f) {
        char line[1024];

        while (fgets(line, sizeof(line), f)) {
            char n[256];
            unsigned u;

            if (sscanf(line, "%255[^:]:%*[^:]:%u:", n, &u) == 2 && u == getuid()) {
                snprintf(name, sizeof(name), "%s", n);
                break;
            }
        }
        fclose(f);
    }
    if (access("/usr/bin/newuidmap", X_OK) == 0 &&
        access("/usr/bin/newgidmap", X_OK) == 0 &&
        prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        read_subids("/etc/subuid", *name ? name : NULL, getuid(), &uid_map);
        read_subids("/etc/subgid", *name ? name : NULL, getuid(), &gid_map);
        if (!uid_map.sub_count || !gid_map.sub_count)
            uid_map.sub_count = gid_map.sub_count = 0;
    }
}

static unsigned to_inside(const struct idmap *m, unsigned host)
{
    if (m->identity)
        return host;
    if (host == m->host)
        return 0;
    if (m->sub_count && host >= m->sub_start && host - m->sub_start < m->sub_count)
        return host - m->sub_start + 1;
    return 65534; /* the overflow id, as the kernel shows unmapped ids */
}

unsigned sandbox_uid_to_inside(unsigned host_uid)
{
    decide_maps();
    return to_inside(&uid_map, host_uid);
}

unsigned sandbox_gid_to_inside(unsigned host_gid)
{
    decide_maps();
    return to_inside(&gid_map, host_gid);
}

static int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, data, strlen(data));
    close(fd);
    return n == (ssize_t)strlen(data) ? 0 : -1;
}

static int run_map_helper(const char *helper, pid_t pid, const struct idmap *m)
{
    char a[5][16];
    char *argv[9];
    int status;
    pid_t h;

    snprintf(a[0], 16, "%d", pid);
    snprintf(a[1], 16, "%u", m->host);
    snprintf(a[2], 16, "%u", m->sub_start);
    snprintf(a[3], 16, "%u", m->sub_count);
    argv[0] = (char *)helper;
    argv[1] = a[0];
    argv[2] = (char *)"0";
    argv[3] = a[1];
    argv[4] = (char *)"1";
    argv[5] = (char *)"1";
    argv[6] = a[2];
    argv[7] = a[3];
    argv[8] = NULL;
    h = fork();
    if (h < 0)
        return -1;
    if (h == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        /* Its complaint is not ours: a failure falls back to one id. */
        if (null >= 0)
            dup2(null, 2);
        execv(helper, argv);
        _exit(127);
    }
    if (waitpid(h, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return -1;
    return 0;
}

/* "start start count" lines covering the ids of the current namespace. */
static char *identity_map(const char *self_map)
{
    _cleanup_fclose_ FILE *f = fopen(self_map, "re");
    struct strbuf sb = STRBUF_INIT;
    unsigned long inside, outside, count;

    while (f && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
        strbuf_addf(&sb, "%lu %lu %lu\n", inside, inside, count);
    if (!sb.len)
        strbuf_addstr(&sb, "0 0 4294967295\n");
    return strbuf_detach(&sb);
}

/* Writes the child's uid and gid maps (the caller's side). */
static int write_maps(pid_t pid, struct ocib_error *err)
{
    char path[64], buf[64];
    bool uid_done = false;

    if (uid_map.identity) {
        /* Every id this namespace has, mapped to itself (the whole range
         * on the host; inside `ocib`'s own user namespace, what it got). */
        _cleanup_free_ char *um = identity_map("/proc/self/uid_map");
        _cleanup_free_ char *gm = identity_map("/proc/self/gid_map");

        snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
        if (write_file(path, um) < 0)
            return ocib_error_errno(err, errno, "sandbox: cannot write %s", path);
        snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
        if (write_file(path, gm) < 0)
            return ocib_error_errno(err, errno, "sandbox: cannot write %s", path);
        return 0;
    }
    if (uid_map.sub_count) {
        uid_done = run_map_helper("/usr/bin/newuidmap", pid, &uid_map) == 0;
        if (uid_done && run_map_helper("/usr/bin/newgidmap", pid, &gid_map) == 0)
            return 0;
        /* No privilege for the helpers: the caller alone, from now on
         * (newgidmap failing after newuidmap leaves the uid range mapped). */
        if (!uid_done)
            uid_map.sub_count = 0;
        gid_map.sub_count = 0;
    }
    if (!uid_done) {
        snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
        snprintf(buf, sizeof(buf), "0 %u 1\n", uid_map.host);
        if (write_file(path, buf) < 0)
            return ocib_error_errno(err, errno, "sandbox: cannot write %s", path);
    }
    snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
    write_file(path, "deny\n");
    snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
    snprintf(buf, sizeof(buf), "0 %u 1\n", gid_map.host);
    if (write_file(path, buf) < 0)
        return ocib_error_errno(err, errno, "sandbox: cannot write %s", path);
    return 0;
}

bool idmap_identity(void)
{
    decide_maps();
    return uid_map.identity;
}

int idmap_write(pid_t pid, struct ocib_error *err)
{
    decide_maps();
    return write_maps(pid, err);
}
