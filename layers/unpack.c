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
 * Every entry is written in two steps: its parent directory is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) relative to the root, which
 * the kernel guarantees resolves to a directory beneath it or fails (EXDEV,
 * ELOOP), and the last component, which is never "." or "..", is then
 * changed relative to that directory with calls that do not follow a final
 * symlink: fstatat/fchownat/fchmodat/utimensat with AT_SYMLINK_NOFOLLOW,
 * unlinkat, mkdirat, symlinkat, mknodat, linkat without AT_SYMLINK_FOLLOW,
 * and openat(O_CREAT | O_EXCL | O_NOFOLLOW) after removing what was there.
 *
 * Both passes read the blob through a pipeline of two libarchive readers:
 * the first reads the file through a callback that hashes and counts the
 * stored bytes, and decompresses them (any filter, "raw" format); the second
 * parses the tar from the first one's data through a callback that hashes
 * and counts the uncompressed bytes, stopping at the byte limits.  So one
 * decompression per pass yields the digest, the size, the diff_id and the
 * limits; whatever either reader leaves unread is read and hashed at the end.
 */
#include "layers/unpack.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

OCIB_DEFINE_CLEANUP(struct archive, archive_read_free)

/* One pass over a blob: see the design note. */
struct stream {
    int fd;
    struct archive *raw; /* decompresses the blob ("raw" format) */
    struct sha256 blob_h, tar_h;
    uint64_t blob_n, tar_n;
    const struct unpack_check *chk;
    const struct unpack_limits *limits;
    const char *digest, *path; /* for messages */
    struct ocib_error cb_err;  /* what a callback failed on */
    char in[READ_CHUNK], out[READ_CHUNK];
};

struct unpack {
    int root_fd;
    const char *digest;
    const char *path; /* the blob */
    const struct unpack_check *chk;
    struct unpack_limits *limits;
    uint64_t max_entries;
    struct stream *s;   /* the current pass's */
    uint64_t tar_bytes; /* the layer's, as the first pass found */
    const char *name;   /* the current entry's name as stored, for messages */
    bool privileged;    /* euid 0: permission bits never stop us */
    char **opaque;      /* names of the layer's opaque markers */
    size_t n_opaque, alloc_opaque;
    struct unpack_stats stats;
};

/* A parent directory opened beneath the root.  When we had to give its
 * owner write permission to change it, mode is what to put back. */
struct parent {
    int fd;
    bool restore;
    mode_t mode;
};

#define PARENT_INIT                                                                        \
    {                                                                                      \
        -1, false, 0                                                                       \
    }

static void parent_release(struct parent *p)
{
    if (p->fd >= 0) {
        if (p->restore)
            (void)fchmod(p->fd, p->mode);
        close(p->fd);
    }
    p->fd = -1;
    p->restore = false;
}

static int entry_fail(struct ocib_error *err, const struct unpack *u, int errnum,
                      const char *fmt, ...) OCIB_PRINTF(4, 5);

/* Records "layer D: entry 'N': <fmt>[: strerror(errnum)]".  Returns -1. */
static int entry_fail(struct ocib_error *err, const struct unpack *u, int errnum,
                      const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (errnum)
        return ocib_error_set(err, "layer %s: entry '%s': %s: %s", u->digest, u->name, msg,
                              strerror(errnum));
    return ocib_error_set(err, "layer %s: entry '%s': %s", u->digest, u->name, msg);
}

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

/* Opens the directory at path ("" for the root) beneath root_fd.  Symlinks
 * are followed only while they stay beneath it.  Returns the fd (readable, or
 * O_PATH when the directory cannot be read) or -1 with errno set. */
static int open_dir_beneath(int root_fd, const char *path)
{
    int flags[] = {O_RDONLY, O_PATH};

    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        int fd = fs_open_within(root_fd, path, flags[i] | O_DIRECTORY);

        if (fd >= 0)
            return fd;
        if (errno != EACCES)
            return -1;
    }
    return -1;
}

/* Unprivileged callers: gives the owner write and search permission on the
 * directory fd when it lacks them (a read-only directory from a lower layer),
 * so that an entry can be written into it.  Returns true when the mode was
 * changed, with the old one in *ret_mode. */
static bool widen(const struct unpack *u, int fd, mode_t *ret_mode)
{
    struct stat st;

    if (u->privileged || fstat(fd, &st) < 0 || st.st_uid != geteuid())
        return false;
    if ((st.st_mode & 0300) == 0300)
        return false;
    if (fchmod(fd, (st.st_mode & 07777) | 0300) < 0)
        return false;
    *ret_mode = st.st_mode & 07777;
    return true;
}

static int resolve_fail(struct ocib_error *err, const struct unpack *u, int errnum,
                        const char *path)
{
    switch (errnum) {
    case EXDEV:
        return entry_fail(err, u, 0, "path '%s' leads outside the root", path);
    case ELOOP:
        return entry_fail(err, u, 0,
                          "path '%s' leads outside the root or through too many symlinks",
                          path);
    case ENOTDIR:
        return entry_fail(err, u, 0, "'%s' is not a directory", path);
    case ENOSYS:
        return entry_fail(err, u, 0,
                          "openat2 is not available (Linux 5.6 or later needed)");
    default:
        return entry_fail(err, u, errnum, "cannot open directory '%s'",
                          path[0] ? path : ".");
    }
}

/* Opens path beneath the root, creating the missing directories (0755, owned
 * by the caller) one component at a time.  Each component is made with
 * mkdirat() in its parent, which was itself opened beneath the root. */
static int mkdir_beneath(struct unpack *u, const char *path, struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf prefix = STRBUF_INIT;
    _cleanup_close_ int cur = -1;
    const char *p = path;

    cur = open_dir_beneath(u->root_fd, "");
    if (cur < 0)
        return resolve_fail(err, u, errno, "");
    while (*p) {
        const char *end = strchrnul(p, '/');
        _cleanup_free_ char *comp = xstrndup(p, (size_t)(end - p));
        int fd;

        if (prefix.len)
            strbuf_addch(&prefix, '/');
        strbuf_addstr(&prefix, comp);
        p = *end ? end + 1 : end;
        fd = open_dir_beneath(u->root_fd, prefix.buf);
        if (fd < 0 && errno == ENOENT) {
            mode_t mode = 0;
            bool widened = widen(u, cur, &mode);
            int r = mkdirat(cur, comp, 0755);
            int saved = errno;

            if (widened)
                (void)fchmod(cur, mode);
            if (r < 0 && saved != EEXIST)
                return entry_fail(err, u, saved, "cannot create directory '%s'",
                                  prefix.buf);
            fd = open_dir_beneath(u->root_fd, prefix.buf);
            if (fd < 0 && errno == ENOENT)
                return entry_fail(err, u, 0, "'%s' is a dangling symlink", prefix.buf);
            if (fd >= 0 && r == 0)
                (void)fchmod(fd, 0755); /* undo the umask */
        }
        if (fd < 0)
            return resolve_fail(err, u, errno, prefix.buf);
        close(cur);
        cur = fd;
    }
    return TAKE_FD(cur);
}

/* Opens the parent directory path beneath the root into *ret.  With create,
 * missing directories are made; without, a missing one returns 1 (*ret
 * untouched).  Returns 0, 1, or -1 when the path leads outside the root or
 * cannot be opened. */
static int parent_open(struct unpack *u, const char *path, bool create, struct parent *ret,
                       struct ocib_error *err)
{
    int fd = open_dir_beneath(u->root_fd, path);

    if (fd < 0 && errno == ENOENT) {
        if (!create)
            return 1;
        fd = mkdir_beneath(u, path, err);
        if (fd < 0)
            return -1;
    } else if (fd < 0) {
        return resolve_fail(err, u, errno, path);
    }
    ret->fd = fd;
    ret->restore = widen(u, fd, &ret->mode);
    return 0;
}

static int rm_tree_at(const struct unpack *u, int dfd, const char *name);

/* Removes everything in the directory fd (which stays open), never following
 * a symlink.  Returns 0 or -1 with errno set. */
static int empty_dir(const struct unpack *u, int fd)
{
    DIR *d;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int r = 0;

    if (dup_fd < 0)
        return -1;
    d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return -1;
    }
    for (;;) {
        struct dirent *de;

        errno = 0;
        de = readdir(d);
        if (!de) {
            r = errno ? -1 : 0;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR || rm_tree_at(u, fd, de->d_name) < 0) {
            r = -1;
            break;
        }
    }
    if (r < 0) {
        int saved = errno;

        closedir(d);
        errno = saved;
        return -1;
    }
    closedir(d);
    return 0;
}

/* Removes the directory name in dfd and everything under it. */
static int rm_tree_at(const struct unpack *u, int dfd, const char *name)
{
    _cleanup_close_ int fd = -1;
    mode_t unused;

    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && !u->privileged &&
        fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)widen(u, fd, &unused); /* it is going away: no need to restore */
    if (empty_dir(u, fd) < 0)
        return -1;
    return unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Removes whatever is at name in dfd (recursively for a directory); a missing
 * entry is fine.  Returns 0 or -1 with errno set. */
static int remove_at(const struct unpack *u, int dfd, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode))
        return rm_tree_at(u, dfd, name);
    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int owner_of(struct unpack *u, struct archive_entry *ae, uid_t *ret_uid,
                    gid_t *ret_gid, struct ocib_error *err)
{
    la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);

    if (uid < 0 || uid >= (la_int64_t)UINT32_MAX || gid < 0 ||
        gid >= (la_int64_t)UINT32_MAX)
        return entry_fail(err, u, 0, "owner %lld:%lld out of range", (long long)uid,
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
        return entry_fail(err, u, errno, "cannot set owner");
    if (!is_symlink &&
        fchmodat(dfd, name, archive_entry_perm(ae) & 07777, AT_SYMLINK_NOFOLLOW) < 0)
        return entry_fail(err, u, errno, "cannot set mode");
    if (archive_entry_mtime_is_set(ae)) {
        mtime_of(ae, ts);
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return entry_fail(err, u, errno, "cannot set mtime");
    }
    return 0;
}

static int make_dir(struct unpack *u, int pfd, const char *base, struct archive_entry *ae,
                    struct ocib_error *err)
{
    struct stat st;

    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        return set_meta_at(u, pfd, base, ae, false, err);
    if (remove_at(u, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot remove the existing entry");
    if (mkdirat(pfd, base, 0700) < 0)
        return entry_fail(err, u, errno, "cannot create directory");
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

static int make_file(struct unpack *u, struct archive *a, int pfd, const char *base,
                     struct archive_entry *ae, struct ocib_error *err)
{
    _cleanup_close_ int fd = -1;
    struct timespec ts[2];
    off_t end = 0;
    uid_t uid;
    gid_t gid;

    if (owner_of(u, ae, &uid, &gid, err) < 0)
        return -1;
    if (remove_at(u, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot remove the existing entry");
    fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return entry_fail(err, u, errno, "cannot create file");
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &size, &off);

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && u->s->cb_err.msg[0]) {
            *err = u->s->cb_err;
            return -1;
        }
        if (r != ARCHIVE_OK)
            return entry_fail(err, u, 0, "corrupt layer: %s", archive_error_string(a));
        if (off < 0)
            return entry_fail(err, u, 0, "corrupt layer: negative offset");
        if (pwrite_all(fd, buf, size, (off_t)off) < 0)
            return entry_fail(err, u, errno, "cannot write");
        if ((off_t)off + (off_t)size > end)
            end = (off_t)off + (off_t)size;
    }
    /* A sparse file may end with a hole. */
    if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > end &&
        ftruncate(fd, (off_t)archive_entry_size(ae)) < 0)
        return entry_fail(err, u, errno, "cannot write");
    if (chown_failed(fchown(fd, uid, gid)))
        return entry_fail(err, u, errno, "cannot set owner");
    /* After fchown, which clears setuid and setgid. */
    if (fchmod(fd, archive_entry_perm(ae) & 07777) < 0)
        return entry_fail(err, u, errno, "cannot set mode");
    if (archive_entry_mtime_is_set(ae)) {
        mtime_of(ae, ts);
        if (futimens(fd, ts) < 0)
            return entry_fail(err, u, errno, "cannot set mtime");
    }
    if (close(TAKE_FD(fd)) < 0)
        return entry_fail(err, u, errno, "cannot write");
    return 0;
}

static int make_symlink(struct unpack *u, int pfd, const char *base,
                        struct archive_entry *ae, struct ocib_error *err)
{
    const char *target = archive_entry_symlink(ae);

    if (!target || !target[0])
        return entry_fail(err, u, 0, "symlink without a target");
    if (strlen(target) > UNPACK_MAX_PATH)
        return entry_fail(err, u, 0, "symlink target too long");
    if (remove_at(u, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot remove the existing entry");
    /* The target is stored as is: it is never followed while unpacking. */
    if (symlinkat(target, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot create symlink");
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

    if (remove_at(u, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot remove the existing entry");
    if (mknodat(pfd, base, type | 0600, type == S_IFIFO ? 0 : dev) < 0) {
        if (type != S_IFIFO && (errno == EPERM || errno == EACCES)) {
            u->stats.skipped_devices++;
            return 0;
        }
        return entry_fail(err, u, errno, "cannot create %s",
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
    _cleanup_(parent_release) struct parent tp = PARENT_INIT;
    _cleanup_strbuf_ struct strbuf tpath = STRBUF_INIT;
    const char *why, *tparent, *tbase;
    struct stat st;
    int r;

    if (normalise(target, &tpath, &why) < 0)
        return entry_fail(err, u, 0, "hardlink target '%s': %s", target, why);
    if (!tpath.len)
        return entry_fail(err, u, 0, "hardlink to the root directory");
    if (!strcmp(tpath.buf, entry_path))
        return 0; /* a link to itself: the file is already there */
    split(tpath.buf, &tparent, &tbase);
    r = parent_open(u, tparent, false, &tp, err);
    if (r < 0)
        return -1;
    if (r > 0 || fstatat(tp.fd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return entry_fail(err, u, r > 0 ? ENOENT : errno, "hardlink target '%s'", target);
    if (S_ISDIR(st.st_mode))
        return entry_fail(err, u, 0, "hardlink target '%s' is a directory", target);
    if (remove_at(u, pfd, base) < 0)
        return entry_fail(err, u, errno, "cannot remove the existing entry");
    if (linkat(tp.fd, tbase, pfd, base, 0) < 0)
        return entry_fail(err, u, errno, "cannot link to '%s'", target);
    return 0;
}

/* ".wh.NAME": removes NAME from the directory, if both exist. */
static int apply_whiteout(struct unpack *u, const char *parent, const char *base,
                          struct ocib_error *err)
{
    _cleanup_(parent_release) struct parent p = PARENT_INIT;
    const char *victim = base + strlen(WH_PREFIX);
    int r;

    u->stats.whiteouts++;
    if (!strncmp(base, WH_META_PREFIX, strlen(WH_META_PREFIX)))
        return 0; /* the opaque marker (applied already) or other AUFS metadata */
    if (!victim[0] || !strcmp(victim, ".") || !strcmp(victim, ".."))
        return entry_fail(err, u, 0, "invalid whiteout");
    r = parent_open(u, parent, false, &p, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (remove_at(u, p.fd, victim) < 0)
        return entry_fail(err, u, errno, "cannot remove '%s'", victim);
    return 0;
}

static int apply_entry(struct unpack *u, struct archive *a, struct archive_entry *ae,
                       struct ocib_error *err)
{
    _cleanup_(parent_release) struct parent p = PARENT_INIT;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    _cleanup_free_ char *full = NULL;
    const char *why, *parent, *base, *link = archive_entry_hardlink(ae);

    if (normalise(u->name, &path, &why) < 0)
        return entry_fail(err, u, 0, "%s", why);
    if (!path.len)
        return 0; /* the root itself belongs to the caller */
    full = xstrdup(path.buf);
    split(path.buf, &parent, &base);
    if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
        return apply_whiteout(u, parent, base, err);
    if (parent_open(u, parent, true, &p, err) < 0)
        return -1;
    if (link)
        return make_hardlink(u, p.fd, base, full, link, err);
    switch (archive_entry_filetype(ae)) {
    case AE_IFDIR:
        return make_dir(u, p.fd, base, ae, err);
    case AE_IFREG:
        return make_file(u, a, p.fd, base, ae, err);
    case AE_IFLNK:
        return make_symlink(u, p.fd, base, ae, err);
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK:
        return make_node(u, p.fd, base, ae, err);
    default:
        return entry_fail(err, u, 0, "unsupported entry type 0%o",
                          (unsigned)archive_entry_filetype(ae));
    }
}

/* Empties the directory an opaque marker (stored name) stands in.  A
 * non-directory there is removed: the layer says it is a directory. */
static int apply_opaque(struct unpack *u, const char *marker, struct ocib_error *err)
{
    _cleanup_(parent_release) struct parent p = PARENT_INIT;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    _cleanup_close_ int fd = -1;
    const char *why, *parent, *base, *slash;
    bool widened;
    struct stat st;
    mode_t mode = 0;
    int r, saved;

    u->name = marker;
    if (normalise(marker, &path, &why) < 0)
        return entry_fail(err, u, 0, "%s", why);
    slash = strrchr(path.buf, '/');
    if (!slash) {
        fd = open_dir_beneath(u->root_fd, "");
        if (fd < 0 || empty_dir(u, fd) < 0)
            return entry_fail(err, u, errno, "cannot empty the root directory");
        return 0;
    }
    strbuf_setlen(&path, (size_t)(slash - path.buf)); /* drop the marker */
    split(path.buf, &parent, &base);
    r = parent_open(u, parent, false, &p, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (fstatat(p.fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : entry_fail(err, u, errno, "cannot stat '%s'", base);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(p.fd, base, 0) < 0)
            return entry_fail(err, u, errno, "cannot remove '%s'", base);
        return 0;
    }
    fd = openat(p.fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return entry_fail(err, u, errno, "cannot open '%s'", base);
    widened = widen(u, fd, &mode);
    r = empty_dir(u, fd);
    saved = errno;
    if (widened)
        (void)fchmod(fd, mode);
    if (r < 0)
        return entry_fail(err, u, saved, "cannot empty '%s'", base);
    return 0;
}

static void stream_free(struct stream *s)
{
    if (!s)
        return;
    if (s->raw)
        archive_read_free(s->raw);
    if (s->fd >= 0)
        close(s->fd);
    sha256_release(&s->blob_h);
    sha256_release(&s->tar_h);
    free(s);
}

/* The blob as stored: hashed, counted, and cut off past its expected size. */
static la_ssize_t blob_read(struct archive *a, void *opaque, const void **ret)
{
    struct stream *s = opaque;
    ssize_t n;

    do
        n = read(s->fd, s->in, sizeof(s->in));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        ocib_error_errno(&s->cb_err, errno, "layer %s: cannot read '%s'", s->digest,
                         s->path);
        archive_set_error(a, EIO, "read error");
        return -1;
    }
    sha256_update(&s->blob_h, s->in, (size_t)n);
    s->blob_n += (uint64_t)n;
    if (s->chk && s->chk->size >= 0 && s->blob_n > (uint64_t)s->chk->size) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_INTEGRITY,
                            "layer %s: '%s' is larger than the %lld bytes its image says",
                            s->digest, s->path, (long long)s->chk->size);
        archive_set_error(a, EIO, "blob too large");
        return -1;
    }
    *ret = s->in;
    return n;
}

/* The uncompressed tar: hashed, counted, and cut off at the byte limits. */
static la_ssize_t tar_read(struct archive *a, void *opaque, const void **ret)
{
    struct stream *s = opaque;
    const struct unpack_limits *l = s->limits;
    la_ssize_t n = archive_read_data(s->raw, s->out, sizeof(s->out));

    if (n < 0) {
        if (!s->cb_err.msg[0])
            ocib_error_set(&s->cb_err, "layer %s: corrupt: %s", s->digest,
                           archive_error_string(s->raw));
        archive_set_error(a, EIO, "read error");
        return -1;
    }
    sha256_update(&s->tar_h, s->out, (size_t)n);
    s->tar_n += (uint64_t)n;
    if (s->tar_n > l->max_layer_bytes) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_LIMIT,
                            "layer %s: more than %llu bytes uncompressed (limit "
                            "OCIB_MAX_LAYER_BYTES)",
                            s->digest, (unsigned long long)l->max_layer_bytes);
        archive_set_error(a, EFBIG, "limit");
        return -1;
    }
    if (l->build_bytes + s->tar_n > l->max_build_bytes) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_LIMIT,
                            "layer %s: the build's layers are more than %llu bytes "
                            "uncompressed (limit OCIB_MAX_BUILD_BYTES)",
                            s->digest, (unsigned long long)l->max_build_bytes);
        archive_set_error(a, EFBIG, "limit");
        return -1;
    }
    *ret = s->out;
    return n;
}

/* Opens the pipeline on u's blob; *ret_a parses the tar. */
static int layer_open(const struct unpack *u, struct stream **ret_s, struct archive **ret_a,
                      struct ocib_error *err)
{
    _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
    struct archive_entry *ae;
    struct stream *s = xcalloc(1, sizeof(*s));

    s->fd = open(u->path, O_RDONLY | O_CLOEXEC);
    s->chk = u->chk;
    s->limits = u->limits;
    s->digest = u->digest;
    s->path = u->path;
    sha256_init(&s->blob_h);
    sha256_init(&s->tar_h);
    *ret_s = s; /* freed by the caller, also on failure */
    if (s->fd < 0)
        return ocib_error_errno(err, errno, "layer %s: cannot open '%s'", u->digest,
                                u->path);
    s->raw = archive_read_new();
    if (!a || !s->raw)
        return ocib_error_set(err, "layer %s: out of memory", u->digest);
    archive_read_support_filter_all(s->raw);
    archive_read_support_format_raw(s->raw);
    if (archive_read_open(s->raw, s, NULL, blob_read, NULL) != ARCHIVE_OK ||
        archive_read_next_header(s->raw, &ae) != ARCHIVE_OK) {
        if (s->cb_err.msg[0]) {
            *err = s->cb_err;
            return -1;
        }
        return ocib_error_set(err, "layer %s: cannot read '%s': %s", u->digest, u->path,
                              archive_error_string(s->raw));
    }
    archive_read_support_format_tar(a);
    if (archive_read_open(a, s, NULL, tar_read, NULL) != ARCHIVE_OK) {
        if (s->cb_err.msg[0]) {
            *err = s->cb_err;
            return -1;
        }
        return ocib_error_set(err, "layer %s: cannot read '%s': %s", u->digest, u->path,
                              archive_error_string(a));
    }
    *ret_a = TAKE_PTR(a);
    return 0;
}

/* Reads what the tar reader left (the end-of-archive padding) and what the
 * decompressor left, then checks digest, size and diff_id. */
static int stream_finish(struct stream *s, struct ocib_error *err)
{
    struct oci_digest blob, tar;
    const void *unused;

    /* The tar reader first (its reads feed the tar hash), then the blob. */
    la_ssize_t (*const drain[])(struct archive *, void *, const void **) = {tar_read,
                                                                            blob_read};

    for (size_t i = 0; i < 2; i++) {
        la_ssize_t n;

        do
            n = drain[i](s->raw, s, &unused);
        while (n > 0);
        if (n < 0) {
            *err = s->cb_err;
            return -1;
        }
    }
    oci_digest_from_sha256(&s->blob_h, &blob);
    oci_digest_from_sha256(&s->tar_h, &tar);
    if (!s->chk)
        return 0;
    if (s->chk->digest && !oci_digest_equal(&blob, s->chk->digest))
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "layer %s: '%s' does not match its digest (got %s)",
                                   s->digest, s->path, blob.str);
    if (s->chk->size >= 0 && s->blob_n != (uint64_t)s->chk->size)
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY, "layer %s: '%s' has %llu bytes, its image says %lld",
            s->digest, s->path, (unsigned long long)s->blob_n, (long long)s->chk->size);
    if (s->chk->diff_id && !oci_digest_equal(&tar, s->chk->diff_id))
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "layer %s: '%s' uncompressed is %s, but the image "
                                   "config's diff_id is %s",
                                   s->digest, s->path, tar.str, s->chk->diff_id->str);
    return 0;
}

/* Reads the next header: 1 with *ret set, 0 at the end, -1 on a corrupt
 * stream or too many entries. */
static int layer_next(struct unpack *u, struct archive *a, uint64_t count,
                      struct archive_entry **ret, struct ocib_error *err)
{
    struct stream *s = u->s;

    /* ARCHIVE_WARN: e.g. a name the locale cannot convert; the raw name is kept. */
    int r = archive_read_next_header(a, ret);

    if (r == ARCHIVE_EOF)
        return 0;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        if (s->cb_err.msg[0]) {
            *err = s->cb_err;
            return -1;
        }
        return ocib_error_set(err, "layer %s: corrupt after %llu entries: %s", u->digest,
                              (unsigned long long)count, archive_error_string(a));
    }
    if (count >= u->max_entries)
        return ocib_error_kind_set(err, OCIB_ERR_LIMIT,
                                   "layer %s: more than %llu entries (limit "
                                   "OCIB_MAX_LAYER_ENTRIES)",
                                   u->digest, (unsigned long long)u->max_entries);
    u->name = archive_entry_pathname(*ret);
    if (!u->name)
        return ocib_error_set(err, "layer %s: entry %llu has no name", u->digest,
                              (unsigned long long)count);
    return 1;
}

/* One pass: the tar reader and its stream, freed in that order. */
struct pass {
    struct archive *a;
    struct stream *s;
};

static void pass_release(struct pass *p)
{
    if (p->a)
        archive_read_free(p->a);
    stream_free(p->s);
    p->a = NULL;
    p->s = NULL;
}

/* A blob that fails to parse may be one whose bytes are not the ones its
 * image names: that is then the error to report (*err replaced). */
static void blame_digest(const struct unpack *u, struct ocib_error *err)
{
    _cleanup_close_ int fd = -1;
    struct oci_digest got;
    struct sha256 h;
    char buf[READ_CHUNK];
    ssize_t n;

    if (!u->chk || !u->chk->digest || ocib_error_kind(err) == OCIB_ERR_LIMIT ||
        ocib_error_kind(err) == OCIB_ERR_INTEGRITY)
        return;
    fd = open(u->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    sha256_init(&h);
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        sha256_update(&h, buf, (size_t)n);
    }
    oci_digest_from_sha256(&h, &got);
    if (n == 0 && !oci_digest_equal(&got, u->chk->digest))
        ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                            "layer %s: '%s' does not match its digest (got %s)", u->digest,
                            u->path, got.str);
}

/* First pass: checks every name and hardlink target, collects the opaque
 * markers, and checks the blob and the limits. */
static int layer_scan(struct unpack *u, struct ocib_error *err)
{
    _cleanup_(pass_release) struct pass p = {NULL, NULL};
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT, target = STRBUF_INIT;
    uint64_t count = 0;

    if (layer_open(u, &p.s, &p.a, err) < 0)
        return -1;
    u->s = p.s;
    for (;;) {
        struct archive_entry *ae;
        const char *link, *slash, *why;
        int r = layer_next(u, p.a, count, &ae, err);

        if (r < 0)
            return -1;
        if (r == 0)
            break;
        count++;
        if (normalise(u->name, &path, &why) < 0)
            return entry_fail(err, u, 0, "%s", why);
        link = archive_entry_hardlink(ae);
        if (link && normalise(link, &target, &why) < 0)
            return entry_fail(err, u, 0, "hardlink target '%s': %s", link, why);
        slash = strrchr(path.buf, '/');
        if (!strcmp(slash ? slash + 1 : path.buf, WH_OPAQUE)) {
            XGROW(u->opaque, u->alloc_opaque, u->n_opaque + 1);
            u->opaque[u->n_opaque++] = xstrdup(u->name);
        }
    }
    if (stream_finish(p.s, err) < 0)
        return -1;
    u->tar_bytes = p.s->tar_n;
    return 0;
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
        .root_fd = root_fd,
        .digest = digest ? digest : blob_path,
        .path = blob_path,
        .chk = chk,
        .limits = limits ? limits : &defaults,
        .privileged = geteuid() == 0,
    };
    _cleanup_(pass_release) struct pass p = {NULL, NULL};

    u.max_entries = u.limits->max_layer_entries;
    if (layer_scan(&u, err) < 0) {
        blame_digest(&u, err);
        return -1;
    }
    for (size_t i = 0; i < u.n_opaque; i++)
        if (apply_opaque(&u, u.opaque[i], err) < 0)
            return -1;
    /* The second pass checks again: the file may have changed meanwhile. */
    if (layer_open(&u, &p.s, &p.a, err) < 0)
        return -1;
    u.s = p.s;
    for (;;) {
        struct archive_entry *ae;
        int r = layer_next(&u, p.a, u.stats.entries, &ae, err);

        if (r < 0)
            return -1;
        if (r == 0)
            break;
        u.stats.entries++;
        if (apply_entry(&u, p.a, ae, err) < 0)
            return -1;
    }
    if (stream_finish(p.s, err) < 0)
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
