/*
 * Applying OCI layer tars onto a root directory; see unpack.h.
 *
 * Design note.  Two passes over the blob.  The first reads headers only: it
 * checks every name, so that a layer with "../x" fails before anything is
 * written, and collects the directories the layer marks opaque.  Those
 * directories are then emptied: at that point everything in them came from
 * lower layers, so the layer's own entries survive whatever their order
 * relative to the marker.  The second pass extracts.
 *
 * Both passes read the blob through layers/unpack_stream.h, which checks it
 * and keeps it within the limits as it streams.  Every entry is written in
 * two steps: its parent directory is opened beneath the root
 * (layers/unpack_root.h), and the last component, which is never "." or
 * "..", is then changed relative to that directory with calls that do not
 * follow a final symlink: fstatat/fchownat/fchmodat/utimensat with
 * AT_SYMLINK_NOFOLLOW, unlinkat, mkdirat, symlinkat, mknodat, linkat without
 * AT_SYMLINK_FOLLOW, and openat(O_CREAT | O_EXCL | O_NOFOLLOW) after
 * removing what was there.
 */
#include "layers/unpack.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "layers/unpack_root.h"
#include "layers/unpack_stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

struct unpack {
    struct unpack_root root;
    const char *path; /* the blob */
    const struct unpack_check *chk;
    struct unpack_limits *limits;
    uint64_t tar_bytes; /* the layer's, as the first pass found */
    char **opaque;      /* names of the layer's opaque markers */
    size_t n_opaque, alloc_opaque;
    struct unpack_stats stats;
};

/* Normalises a name from the tar into out: its components joined by '/',
 * without empty and "." components (so "" is the root itself).  Returns 0,
 * or -1 with *ret_why set when the name is absolute or has a ".." component
 * or is too long. */
static int normalise(const char *name, struct strbuf *out, const char **ret_why)
{
    const char *p = name;

    strbuf_reset(out);
    if (strlen(name) > UNPACK_MAX_PATH) {
        *ret_why = "name too long";
        return -1;
    }
    if (name[0] == '/') {
        *ret_why = "absolute path refused";
        return -1;
    }
    while (*p) {
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            *ret_why = "'..' component refused";
            return -1;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (out->len)
                strbuf_addch(out, '/');
            strbuf_add(out, p, n);
        }
        p = *end ? end + 1 : end;
    }
    strbuf_str(out);
    return 0;
}

/* Splits a normalised path in place into its parent ("" for the root) and
 * its last component. */
static void split(char *path, const char **ret_parent, const char **ret_base)
{
    char *slash = strrchr(path, '/');

    if (!slash) {
        *ret_parent = "";
        *ret_base = path;
        return;
    }
    *slash = '\0';
    *ret_parent = path;
    *ret_base = slash + 1;
}

static int owner_of(struct unpack *u, struct archive_entry *ae, uid_t *ret_uid,
                    gid_t *ret_gid, struct ocib_error *err)
{
    la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);

    if (uid < 0 || uid >= (la_int64_t)UINT32_MAX || gid < 0 ||
        gid >= (la_int64_t)UINT32_MAX)
        return unpack_fail(err, &u->root, 0, "owner %lld:%lld out of range", (long long)uid,
                           (long long)gid);
    *ret_uid = (uid_t)uid;
    *ret_gid = (gid_t)gid;
    return 0;
}

static void mtime_of(struct archive_entry *ae, struct timespec ts[2])
{
    ts[0].tv_sec = archive_entry_mtime(ae);
    ts[0].tv_nsec = archive_entry_mtime_nsec(ae);
    if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
        ts[0].tv_nsec = 0;
    ts[1] = ts[0];
}

/* chown() that leaves owners to the caller when we may not set them: EPERM
 * (not root) or EINVAL (an id not mapped in our user namespace). */
static bool chown_failed(int r)
{
    return r < 0 && errno != EPERM && errno != EINVAL;
}

/* Sets owner, mode (unless is_symlink) and mtime of name in dfd without
 * following a symlink. */
static int set_meta_at(struct unpack *u, int dfd, const char *name,
                       struct archive_entry *ae, bool is_symlink, struct ocib_error *err)
{
    struct timespec ts[2];
    uid_t uid;
    gid_t gid;

    if (owner_of(u, ae, &uid, &gid, err) < 0)
        return -1;
    if (chown_failed(fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW)))
        return unpack_fail(err, &u->root, errno, "cannot set owner");
    if (!is_symlink &&
        fchmodat(dfd, name, archive_entry_perm(ae) & 07777, AT_SYMLINK_NOFOLLOW) < 0)
        return unpack_fail(err, &u->root, errno, "cannot set mode");
    if (archive_entry_mtime_is_set(ae)) {
        mtime_of(ae, ts);
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return unpack_fail(err, &u->root, errno, "cannot set mtime");
    }
    return 0;
}

static int make_dir(struct unpack *u, int pfd, const char *base, struct archive_entry *ae,
                    struct ocib_error *err)
{
    struct stat st;

    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        return set_meta_at(u, pfd, base, ae, false, err);
    if (unpack_remove_at(&u->root, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove the existing entry");
    if (mkdirat(pfd, base, 0700) < 0)
        return unpack_fail(err, &u->root, errno, "cannot create directory");
    return set_meta_at(u, pfd, base, ae, false, err);
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* A regular file, its data read from the pass's tar reader. */
static int make_file(struct unpack *u, struct unpack_stream *s, int pfd, const char *base,
                     struct archive_entry *ae, struct ocib_error *err)
{
    struct archive *a = unpack_stream_tar(s);
    _cleanup_close_ int fd = -1;
    struct timespec ts[2];
    off_t end = 0;
    uid_t uid;
    gid_t gid;

    if (owner_of(u, ae, &uid, &gid, err) < 0)
        return -1;
    if (unpack_remove_at(&u->root, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove the existing entry");
    fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return unpack_fail(err, &u->root, errno, "cannot create file");
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &size, &off);

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && unpack_stream_failed(s, err))
            return -1;
        if (r != ARCHIVE_OK)
            return unpack_fail(err, &u->root, 0, "corrupt layer: %s",
                               archive_error_string(a));
        if (off < 0)
            return unpack_fail(err, &u->root, 0, "corrupt layer: negative offset");
        if (pwrite_all(fd, buf, size, (off_t)off) < 0)
            return unpack_fail(err, &u->root, errno, "cannot write");
        if ((off_t)off + (off_t)size > end)
            end = (off_t)off + (off_t)size;
    }
    /* A sparse file may end with a hole. */
    if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > end &&
        ftruncate(fd, (off_t)archive_entry_size(ae)) < 0)
        return unpack_fail(err, &u->root, errno, "cannot write");
    if (chown_failed(fchown(fd, uid, gid)))
        return unpack_fail(err, &u->root, errno, "cannot set owner");
    /* After fchown, which clears setuid and setgid. */
    if (fchmod(fd, archive_entry_perm(ae) & 07777) < 0)
        return unpack_fail(err, &u->root, errno, "cannot set mode");
    if (archive_entry_mtime_is_set(ae)) {
        mtime_of(ae, ts);
        if (futimens(fd, ts) < 0)
            return unpack_fail(err, &u->root, errno, "cannot set mtime");
    }
    if (close(TAKE_FD(fd)) < 0)
        return unpack_fail(err, &u->root, errno, "cannot write");
    return 0;
}

static int make_symlink(struct unpack *u, int pfd, const char *base,
                        struct archive_entry *ae, struct ocib_error *err)
{
    const char *target = archive_entry_symlink(ae);

    if (!target || !target[0])
        return unpack_fail(err, &u->root, 0, "symlink without a target");
    if (strlen(target) > UNPACK_MAX_PATH)
        return unpack_fail(err, &u->root, 0, "symlink target too long");
    if (unpack_remove_at(&u->root, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove the existing entry");
    /* The target is stored as is: it is never followed while unpacking. */
    if (symlinkat(target, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot create symlink");
    return set_meta_at(u, pfd, base, ae, true, err);
}

/* Fifos, and character or block devices when we are allowed to make them. */
static int make_node(struct unpack *u, int pfd, const char *base, struct archive_entry *ae,
                     struct ocib_error *err)
{
    mode_t type = archive_entry_filetype(ae) == AE_IFCHR   ? S_IFCHR
                  : archive_entry_filetype(ae) == AE_IFBLK ? S_IFBLK
                                                           : S_IFIFO;
    dev_t dev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));

    if (unpack_remove_at(&u->root, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove the existing entry");
    if (mknodat(pfd, base, type | 0600, type == S_IFIFO ? 0 : dev) < 0) {
        if (type != S_IFIFO && (errno == EPERM || errno == EACCES)) {
            u->stats.skipped_devices++;
            return 0;
        }
        return unpack_fail(err, &u->root, errno, "cannot create %s",
                           type == S_IFIFO ? "fifo" : "device node");
    }
    return set_meta_at(u, pfd, base, ae, false, err);
}

/* A hardlink to target, which must already be in the root (from this or an
 * earlier layer) and is reached beneath it; its last component is not
 * followed, so a symlink target links the symlink itself. */
static int make_hardlink(struct unpack *u, int pfd, const char *base,
                         const char *entry_path, const char *target, struct ocib_error *err)
{
    _cleanup_(unpack_parent_release) struct unpack_parent tp = UNPACK_PARENT_INIT;
    _cleanup_strbuf_ struct strbuf tpath = STRBUF_INIT;
    const char *why, *tparent, *tbase;
    struct stat st;
    int r;

    if (normalise(target, &tpath, &why) < 0)
        return unpack_fail(err, &u->root, 0, "hardlink target '%s': %s", target, why);
    if (!tpath.len)
        return unpack_fail(err, &u->root, 0, "hardlink to the root directory");
    if (!strcmp(tpath.buf, entry_path))
        return 0; /* a link to itself: the file is already there */
    split(tpath.buf, &tparent, &tbase);
    r = unpack_parent_open(&u->root, tparent, false, &tp, err);
    if (r < 0)
        return -1;
    if (r > 0 || fstatat(tp.fd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return unpack_fail(err, &u->root, r > 0 ? ENOENT : errno, "hardlink target '%s'",
                           target);
    if (S_ISDIR(st.st_mode))
        return unpack_fail(err, &u->root, 0, "hardlink target '%s' is a directory", target);
    if (unpack_remove_at(&u->root, pfd, base) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove the existing entry");
    if (linkat(tp.fd, tbase, pfd, base, 0) < 0)
        return unpack_fail(err, &u->root, errno, "cannot link to '%s'", target);
    return 0;
}

/* ".wh.NAME": removes NAME from the directory, if both exist. */
static int apply_whiteout(struct unpack *u, const char *parent, const char *base,
                          struct ocib_error *err)
{
    _cleanup_(unpack_parent_release) struct unpack_parent p = UNPACK_PARENT_INIT;
    const char *victim = base + strlen(WH_PREFIX);
    int r;

    u->stats.whiteouts++;
    if (!strncmp(base, WH_META_PREFIX, strlen(WH_META_PREFIX)))
        return 0; /* the opaque marker (applied already) or other AUFS metadata */
    if (!victim[0] || !strcmp(victim, ".") || !strcmp(victim, ".."))
        return unpack_fail(err, &u->root, 0, "invalid whiteout");
    r = unpack_parent_open(&u->root, parent, false, &p, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (unpack_remove_at(&u->root, p.fd, victim) < 0)
        return unpack_fail(err, &u->root, errno, "cannot remove '%s'", victim);
    return 0;
}

static int apply_entry(struct unpack *u, struct unpack_stream *s, struct archive_entry *ae,
                       struct ocib_error *err)
{
    _cleanup_(unpack_parent_release) struct unpack_parent p = UNPACK_PARENT_INIT;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    _cleanup_free_ char *full = NULL;
    const char *why, *parent, *base, *link = archive_entry_hardlink(ae);

    if (normalise(u->root.name, &path, &why) < 0)
        return unpack_fail(err, &u->root, 0, "%s", why);
    if (!path.len)
        return 0; /* the root itself belongs to the caller */
    full = xstrdup(path.buf);
    split(path.buf, &parent, &base);
    if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
        return apply_whiteout(u, parent, base, err);
    if (unpack_parent_open(&u->root, parent, true, &p, err) < 0)
        return -1;
    if (link)
        return make_hardlink(u, p.fd, base, full, link, err);
    switch (archive_entry_filetype(ae)) {
    case AE_IFDIR:
        return make_dir(u, p.fd, base, ae, err);
    case AE_IFREG:
        return make_file(u, s, p.fd, base, ae, err);
    case AE_IFLNK:
        return make_symlink(u, p.fd, base, ae, err);
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK:
        return make_node(u, p.fd, base, ae, err);
    default:
        return unpack_fail(err, &u->root, 0, "unsupported entry type 0%o",
                           (unsigned)archive_entry_filetype(ae));
    }
}

/* Empties the directory an opaque marker (stored name) stands in.  A
 * non-directory there is removed: the layer says it is a directory. */
static int apply_opaque(struct unpack *u, const char *marker, struct ocib_error *err)
{
    _cleanup_(unpack_parent_release) struct unpack_parent p = UNPACK_PARENT_INIT;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    _cleanup_close_ int fd = -1;
    const char *why, *parent, *base, *slash;
    bool widened;
    struct stat st;
    mode_t mode = 0;
    int r, saved;

    u->root.name = marker;
    if (normalise(marker, &path, &why) < 0)
        return unpack_fail(err, &u->root, 0, "%s", why);
    slash = strrchr(path.buf, '/');
    if (!slash) {
        fd = unpack_dir_open(&u->root, "");
        if (fd < 0 || unpack_dir_empty(&u->root, fd) < 0)
            return unpack_fail(err, &u->root, errno, "cannot empty the root directory");
        return 0;
    }
    strbuf_setlen(&path, (size_t)(slash - path.buf)); /* drop the marker */
    split(path.buf, &parent, &base);
    r = unpack_parent_open(&u->root, parent, false, &p, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (fstatat(p.fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT
                   ? 0
                   : unpack_fail(err, &u->root, errno, "cannot stat '%s'", base);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(p.fd, base, 0) < 0)
            return unpack_fail(err, &u->root, errno, "cannot remove '%s'", base);
        return 0;
    }
    fd = openat(p.fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return unpack_fail(err, &u->root, errno, "cannot open '%s'", base);
    widened = unpack_dir_widen(&u->root, fd, &mode);
    r = unpack_dir_empty(&u->root, fd);
    saved = errno;
    if (widened)
        (void)fchmod(fd, mode);
    if (r < 0)
        return unpack_fail(err, &u->root, saved, "cannot empty '%s'", base);
    return 0;
}

/* Starts a pass over u's blob; the caller frees *ret_s. */
static int pass_open(const struct unpack *u, struct unpack_stream **ret_s,
                     struct ocib_error *err)
{
    return unpack_stream_open(u->path, u->root.digest, u->chk, u->limits, ret_s, err);
}

/* Reads the pass's next header into *ret and names that entry in messages:
 * 1, 0 at the end, -1 (see unpack_stream_next). */
static int pass_next(struct unpack *u, struct unpack_stream *s, uint64_t count,
                     struct archive_entry **ret, struct ocib_error *err)
{
    int r = unpack_stream_next(s, count, ret, err);

    if (r > 0)
        u->root.name = archive_entry_pathname(*ret);
    return r;
}

/* First pass: checks every name and hardlink target, collects the opaque
 * markers, and checks the blob and the limits. */
static int layer_scan(struct unpack *u, struct ocib_error *err)
{
    _cleanup_(unpack_stream_freep) struct unpack_stream *s = NULL;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT, target = STRBUF_INIT;
    uint64_t count = 0;

    if (pass_open(u, &s, err) < 0)
        return -1;
    for (;;) {
        struct archive_entry *ae;
        const char *link, *slash, *why;
        int r = pass_next(u, s, count, &ae, err);

        if (r < 0)
            return -1;
        if (r == 0)
            break;
        count++;
        if (normalise(u->root.name, &path, &why) < 0)
            return unpack_fail(err, &u->root, 0, "%s", why);
        link = archive_entry_hardlink(ae);
        if (link && normalise(link, &target, &why) < 0)
            return unpack_fail(err, &u->root, 0, "hardlink target '%s': %s", link, why);
        slash = strrchr(path.buf, '/');
        if (!strcmp(slash ? slash + 1 : path.buf, WH_OPAQUE)) {
            XGROW(u->opaque, u->alloc_opaque, u->n_opaque + 1);
            u->opaque[u->n_opaque++] = xstrdup(u->root.name);
        }
    }
    if (unpack_stream_finish(s, err) < 0)
        return -1;
    u->tar_bytes = unpack_stream_tar_bytes(s);
    return 0;
}

/* Second pass: applies every entry.  It checks the blob again: the file may
 * have changed since the first. */
static int layer_apply(struct unpack *u, struct ocib_error *err)
{
    _cleanup_(unpack_stream_freep) struct unpack_stream *s = NULL;

    if (pass_open(u, &s, err) < 0)
        return -1;
    for (;;) {
        struct archive_entry *ae;
        int r = pass_next(u, s, u->stats.entries, &ae, err);

        if (r < 0)
            return -1;
        if (r == 0)
            break;
        u->stats.entries++;
        if (apply_entry(u, s, ae, err) < 0)
            return -1;
    }
    return unpack_stream_finish(s, err);
}

static void unpack_release(struct unpack *u)
{
    for (size_t i = 0; i < u->n_opaque; i++)
        free(u->opaque[i]);
    free(u->opaque);
}

/* Reads a limit from the environment variable name into *ret (unchanged
 * when unset). */
static int limit_from_env(const char *name, bool bytes, uint64_t *ret,
                          struct ocib_error *err)
{
    const char *v = getenv(name), *p;
    unsigned long long n = 0;
    unsigned shift = 0;

    if (!v)
        return 0;
    for (p = v; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return ocib_error_usage(err, "%s: '%s' is too large", name, v);
        n = n * 10 + (unsigned long long)(*p - '0');
    }
    if (bytes && *p && !p[1]) {
        const char *units = "KMGT", *u = strchr(units, *p);

        if (u) {
            shift = 10 * (unsigned)(u - units + 1);
            p++;
        }
    }
    if (p == v || *p || n == 0)
        return ocib_error_usage(err,
                                bytes ? "%s: invalid size '%s' (a positive number of "
                                        "bytes, with K, M, G or T: 512M, 32G)"
                                      : "%s: invalid count '%s' (a positive number)",
                                name, v);
    if (shift && n > (UINT64_MAX >> shift))
        return ocib_error_usage(err, "%s: '%s' is too large", name, v);
    *ret = (uint64_t)n << shift;
    return 0;
}

int unpack_limits_init(struct unpack_limits *l, struct ocib_error *err)
{
    struct unpack_limits d = {UNPACK_DEFAULT_LAYER_BYTES, UNPACK_DEFAULT_BUILD_BYTES,
                              UNPACK_DEFAULT_LAYER_ENTRIES, 0};

    if (limit_from_env("OCIB_MAX_LAYER_BYTES", true, &d.max_layer_bytes, err) < 0 ||
        limit_from_env("OCIB_MAX_BUILD_BYTES", true, &d.max_build_bytes, err) < 0 ||
        limit_from_env("OCIB_MAX_LAYER_ENTRIES", false, &d.max_layer_entries, err) < 0)
        return -1;
    *l = d;
    return 0;
}

int layer_unpack_checked(int root_fd, const char *blob_path, const char *digest,
                         const struct unpack_check *chk, struct unpack_limits *limits,
                         struct unpack_stats *stats, struct ocib_error *err)
{
    struct unpack_limits defaults = {UNPACK_DEFAULT_LAYER_BYTES, UNPACK_DEFAULT_BUILD_BYTES,
                                     UNPACK_DEFAULT_LAYER_ENTRIES, 0};
    _cleanup_(unpack_release) struct unpack u = {
        .root = {.fd = root_fd,
                 .privileged = geteuid() == 0,
                 .digest = digest ? digest : blob_path},
        .path = blob_path,
        .chk = chk,
        .limits = limits ? limits : &defaults,
    };

    if (layer_scan(&u, err) < 0) {
        unpack_stream_blame_digest(u.path, u.root.digest, u.chk, err);
        return -1;
    }
    for (size_t i = 0; i < u.n_opaque; i++)
        if (apply_opaque(&u, u.opaque[i], err) < 0)
            return -1;
    if (layer_apply(&u, err) < 0)
        return -1;
    u.limits->build_bytes += u.tar_bytes;
    if (stats)
        *stats = u.stats;
    return 0;
}

int layer_unpack(int root_fd, const char *blob_path, const char *digest,
                 struct unpack_stats *stats, struct ocib_error *err)
{
    return layer_unpack_checked(root_fd, blob_path, digest, NULL, NULL, stats, err);
}
