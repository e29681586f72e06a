/*
 * Overlayfs upper directories as layer entries; see overlay.h.
 *
 * One walk of the upper directory does both halves: a directory's entries
 * are described first (recursing where needed), then moved into the root.
 * Three modes per directory:
 *   - merged: the root has this directory and the upper one is not opaque;
 *     only what the upper one holds changed, and its entries are moved into
 *     the root one by one;
 *   - fresh: the upper directory replaced the root's (opaque): every entry
 *     below is new, and what the root's held and the upper one lacks is
 *     whited out; the caller moves the whole directory;
 *   - new: the root had no directory here: every entry below is new; the
 *     caller moves the whole directory.
 */
#include "layers/overlay.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "layers/changes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define OVERLAY_PATH_MAX 4096
#define OVERLAY_DEPTH_MAX 1024
#define SAME_CHUNK (64 * 1024)

struct walk {
    const char *const *skip;
    unsigned (*map_uid)(unsigned);
    unsigned (*map_gid)(unsigned);
    struct layer_tree *t;
    struct strbuf path; /* of the directory being walked, "" for the root */
};

enum mode { MERGED, FRESH, NEW };

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

static bool is_overlay_xattr(const char *name)
{
    return !strncmp(name, "user.overlay.", 13) || !strncmp(name, "trusted.overlay.", 16);
}

/* A path for name in dirfd that the l*xattr calls take (there are no
 * *xattrat calls before Linux 6.13). */
static void at_path(char (*buf)[64 + 256], int dirfd, const char *name)
{
    snprintf(*buf, sizeof(*buf), "/proc/self/fd/%d/%s", dirfd, name);
}

/* Removes the xattrs overlayfs leaves on what it copied up (origin,
 * impure: bookkeeping of that mount) from name in dirfd, so that the root,
 * which may be the lower directory of later mounts, carries none. */
static void strip_overlay_xattrs_at(int dirfd, const char *name)
{
    char path[64 + 256], names[4096];
    ssize_t n;

    at_path(&path, dirfd, name);
    n = llistxattr(path, names, sizeof(names));
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
        if (is_overlay_xattr(names + i))
            lremovexattr(path, names + i);
}

/* Whether the upper directory fd hides the root's below it (its opaque
 * xattr is "y").  Its overlay xattrs, the marker among them, are removed on
 * the way, since the directory is about to join the root. */
static bool take_opaque(int fd)
{
    char names[4096];
    ssize_t n = flistxattr(fd, names, sizeof(names));
    bool opaque = false;

    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        const char *x = names + i;
        char v[4];

        if (!is_overlay_xattr(x))
            continue;
        if (!strcmp(strchr(x, '.') + 1, "overlay.opaque") &&
            fgetxattr(fd, x, v, sizeof(v)) == 1 && v[0] == 'y')
            opaque = true;
        fremovexattr(fd, x);
    }
    return opaque;
}

static unsigned map_id(unsigned (*map)(unsigned), unsigned id)
{
    return map ? map(id) : id;
}

/* Sets w->path to the directory's path plus name; returns the old length. */
static size_t enter(struct walk *w, const char *name)
{
    size_t base = w->path.len;

    if (base)
        strbuf_addch(&w->path, '/');
    strbuf_addstr(&w->path, name);
    return base;
}

static int put_entry(struct walk *w, int dirfd, const char *name, const struct stat *st,
                     struct ocib_error *err)
{
    struct layer_tree_entry e = {
        .path = xstrdup(w->path.buf),
        .mode = st->st_mode,
        .uid = map_id(w->map_uid, st->st_uid),
        .gid = map_id(w->map_gid, st->st_gid),
        .size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
        .src = S_ISREG(st->st_mode) ? xstrdup(w->path.buf) : NULL,
        .st = *st,
        .has_st = true,
        .keep_caps = true,
    };

    if (S_ISLNK(st->st_mode)) {
        char target[OVERLAY_PATH_MAX + 1];
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target));

        if (n < 0 || (size_t)n >= sizeof(target)) {
            free(e.path);
            return ocib_error_errno(err, n < 0 ? errno : ENAMETOOLONG,
                                    "cannot read symlink '%s'", w->path.buf);
        }
        target[n] = '\0';
        e.link = xstrdup(target);
    }
    layer_tree_put(w->t, &e);
    return 0;
}

/* Puts the upper entry name (a directory when dir) in place of the
 * root's: rename replaces a file with a file in one step, but neither
 * replaces a directory nor puts one over a file, so those go first. */
static int move_in(int upper, int root, const char *name, bool dir, const char *path,
                   struct ocib_error *err)
{
    struct stat st;

    if (fstatat(root, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* There before: the upper entry may be a copy-up. */
        if (!dir)
            strip_overlay_xattrs_at(upper, name);
        if ((dir || S_ISDIR(st.st_mode)) && fs_rm_rf_at(root, name, err) < 0)
            return ocib_error_wrap(err, "cannot replace '%s' in the root", path);
    }
    if (renameat(upper, name, root, name) < 0)
        return ocib_error_errno(err, errno, "cannot move '%s' into the root", path);
    return 0;
}

/* Gives the root's directory the upper one's owner, mode and times. */
static int copy_dir_metadata(int to, const struct stat *st, const char *path,
                             struct ocib_error *err)
{
    struct timespec ts[2] = {st->st_atim, st->st_mtim};

    if ((fchown(to, st->st_uid, st->st_gid) < 0 && errno != EPERM && errno != EINVAL) ||
        fchmod(to, st->st_mode & 07777) < 0 || futimens(to, ts) < 0)
        return ocib_error_errno(err, errno, "cannot update directory '%s' in the root",
                                path);
    return 0;
}

static int walk_dir(struct walk *w, int upper, int root, enum mode mode, unsigned depth,
                    bool *ret_any, struct ocib_error *err);

/* Whether the regular files name in a and b hold the same bytes. */
static bool same_content(int a, int b, const char *name)
{
    _cleanup_close_ int fa = openat(a, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int fb = openat(b, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_free_ char *ba = xmalloc(2 * SAME_CHUNK);
    char *bb = ba + SAME_CHUNK;

    if (fa < 0 || fb < 0)
        return false;
    for (;;) {
        ssize_t na = read(fa, ba, SAME_CHUNK), nb;

        if (na < 0)
            return false;
        for (nb = 0; nb < na;) {
            ssize_t k = read(fb, bb + nb, (size_t)(na - nb));

            if (k <= 0)
                return false;
            nb += k;
        }
        if (memcmp(ba, bb, (size_t)na))
            return false;
        if (na == 0)
            return read(fb, bb, 1) == 0;
    }
}

/* Whether the files name in a and b have the same security.capability
 * xattr (a layer records it; setcap changes nothing else). */
static bool same_caps(int a, int b, const char *name)
{
    char pa[64 + 256], pb[64 + 256], ca[64], cb[64];
    ssize_t na, nb;

    at_path(&pa, a, name);
    at_path(&pb, b, name);
    na = lgetxattr(pa, "security.capability", ca, sizeof(ca));
    nb = lgetxattr(pb, "security.capability", cb, sizeof(cb));
    if (na < 0 && nb < 0)
        return true;
    return na == nb && !memcmp(ca, cb, (size_t)na);
}

/* Whether the non-directory name in upper is a copy-up that changed
 * nothing a layer records (a file opened for writing and not written: a
 * lock file): same type, mode, owner, mtime and content as the root's, and
 * no other name linked to it.  Such an entry is no change, as a snapshot
 * comparison finds too. */
static bool unchanged_copy_up(int upper, int root, const char *name, const struct stat *st)
{
    struct stat rst;

    if (st->st_nlink != 1 || fstatat(root, name, &rst, AT_SYMLINK_NOFOLLOW) < 0 ||
        (st->st_mode & S_IFMT) != (rst.st_mode & S_IFMT) || st->st_mode != rst.st_mode ||
        st->st_uid != rst.st_uid || st->st_gid != rst.st_gid ||
        st->st_mtim.tv_sec != rst.st_mtim.tv_sec ||
        st->st_mtim.tv_nsec != rst.st_mtim.tv_nsec)
        return false;
    if (S_ISREG(st->st_mode))
        return st->st_size == rst.st_size && same_caps(upper, root, name) &&
               same_content(upper, root, name);
    if (S_ISLNK(st->st_mode)) {
        char a[OVERLAY_PATH_MAX + 1], b[OVERLAY_PATH_MAX + 1];
        ssize_t na = readlinkat(upper, name, a, sizeof(a));
        ssize_t nb = readlinkat(root, name, b, sizeof(b));

        return na >= 0 && na == nb && !memcmp(a, b, (size_t)na);
    }
    return S_ISFIFO(st->st_mode);
}

/* The first skipped path strictly below path, or NULL. */
static const char *skipped_below(const char *path, const char *const *skip)
{
    size_t len = strlen(path);

    for (; skip && *skip; skip++) {
        const char *s = *skip;

        while (*s == '/')
            s++;
        if (!strncmp(s, path, len) && s[len] == '/')
            return s;
    }
    return NULL;
}

/* One directory of the upper directory (name in upper, w->path naming it). */
static int walk_subdir(struct walk *w, int upper, int root, enum mode mode,
                       const char *name, const struct stat *st, unsigned depth,
                       bool *ret_any, struct ocib_error *err)
{
    _cleanup_close_ int sub = -1;
    _cleanup_close_ int root_sub = -1;
    struct stat rst = {0};
    enum mode sub_mode = NEW;
    const char *skipped;
    bool any = false, opaque;

    if (depth >= OVERLAY_DEPTH_MAX)
        return ocib_error_set(err, "'%s' is more than %d directories deep", w->path.buf,
                              OVERLAY_DEPTH_MAX);
    sub = openat(upper, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return ocib_error_errno(err, errno, "cannot open directory '%s'", w->path.buf);
    opaque = take_opaque(sub);
    if (root >= 0 && fstatat(root, name, &rst, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(rst.st_mode)) {
        root_sub = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root_sub < 0)
            return ocib_error_errno(err, errno, "cannot open directory '%s' in the root",
                                    w->path.buf);
        sub_mode = mode == MERGED && !opaque ? MERGED : FRESH;
    }
    if (walk_dir(w, sub, root_sub, sub_mode, depth + 1, &any, err) < 0)
        return -1;
    /* A merged directory is an entry when it changed itself or holds one;
     * a fresh or new one always. */
    if (sub_mode != MERGED || any || st->st_mode != rst.st_mode ||
        st->st_uid != rst.st_uid || st->st_gid != rst.st_gid ||
        st->st_mtim.tv_sec != rst.st_mtim.tv_sec ||
        st->st_mtim.tv_nsec != rst.st_mtim.tv_nsec) {
        if (put_entry(w, upper, name, st, err) < 0)
            return -1;
        *ret_any = true;
    }
    if (mode != MERGED)
        return 0;
    if (sub_mode == MERGED)
        return copy_dir_metadata(root_sub, st, w->path.buf, err);
    /* Skipped paths are mount points while the command runs, whose parents
     * it can neither create nor remove: moving a new directory whole would
     * take one along. */
    skipped = skipped_below(w->path.buf, w->skip);
    if (skipped)
        return ocib_error_set(err,
                              "'/%s' was created or re-created by the command but holds "
                              "'/%s', which must not be part of the change",
                              w->path.buf, skipped);
    return move_in(upper, root, name, true, w->path.buf, err);
}

static int walk_dir(struct walk *w, int upper, int root, enum mode mode, unsigned depth,
                    bool *ret_any, struct ocib_error *err)
{
    struct fs_names names = {NULL, 0, 0};
    int r = -1;

    if (fs_read_names(upper, w->path.buf, &names, err) < 0)
        return -1;
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        size_t base = enter(w, name);
        struct stat st;

        if (w->path.len > OVERLAY_PATH_MAX) {
            ocib_error_set(err, "path '%.64s...' is longer than %d bytes", w->path.buf,
                           OVERLAY_PATH_MAX);
            goto out;
        }
        if (changes_path_skipped(w->path.buf, w->skip)) {
            strbuf_setlen(&w->path, base);
            continue;
        }
        if (fstatat(upper, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            ocib_error_errno(err, errno, "cannot stat '%s'", w->path.buf);
            goto out;
        }
        if (is_whiteout(&st)) {
            struct stat rst;

            /* Gone from the root: a whiteout in the layer, if the root had
             * it (a merged directory), and the root's copy removed. */
            if (mode == MERGED && fstatat(root, name, &rst, AT_SYMLINK_NOFOLLOW) == 0) {
                changes_put_whiteout(w->t, w->path.buf);
                *ret_any = true;
                if (fs_rm_rf_at(root, name, err) < 0) {
                    ocib_error_wrap(err, "cannot remove '%s' from the root", w->path.buf);
                    goto out;
                }
            }
            unlinkat(upper, name, 0);
        } else if (S_ISDIR(st.st_mode)) {
            if (walk_subdir(w, upper, root, mode, name, &st, depth, ret_any, err) < 0)
                goto out;
        } else if (mode == MERGED && unchanged_copy_up(upper, root, name, &st)) {
            /* left in the upper directory: the root keeps its own */
        } else {
            if (changes_representable(st.st_mode)) {
                if (put_entry(w, upper, name, &st, err) < 0)
                    goto out;
                *ret_any = true;
            }
            if (mode == MERGED && move_in(upper, root, name, false, w->path.buf, err) < 0)
                goto out;
        }
        strbuf_setlen(&w->path, base);
    }
    /* What a fresh directory no longer has is gone. */
    if (mode == FRESH) {
        struct fs_names old = {NULL, 0, 0};

        if (fs_read_names(root, w->path.buf, &old, err) < 0)
            goto out;
        for (size_t i = 0; i < old.n; i++) {
            size_t base = enter(w, old.v[i]);
            struct stat st;

            if (!changes_path_skipped(w->path.buf, w->skip) &&
                fstatat(upper, old.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
                changes_put_whiteout(w->t, w->path.buf);
                *ret_any = true;
            }
            strbuf_setlen(&w->path, base);
        }
        fs_names_release(&old);
    }
    r = 0;
out:
    fs_names_release(&names);
    return r;
}

int overlay_commit(int upper_fd, int root_fd, const char *const *skip,
                   unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                   struct layer_tree *t, struct ocib_error *err)
{
    struct walk w = {
        .skip = skip, .map_uid = map_uid, .map_gid = map_gid, .t = t, .path = STRBUF_INIT};
    bool any = false;
    int r;

    strbuf_str(&w.path);
    r = walk_dir(&w, upper_fd, root_fd, MERGED, 0, &any, err);
    strbuf_release(&w.path);
    if (r < 0)
        return ocib_error_wrap(err, "cannot take the change from the overlay");
    return 0;
}
