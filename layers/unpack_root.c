/*
 * Changing a directory tree only beneath its root; see unpack_root.h.
 *
 * Design note.  An entry's parent directory is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) relative to the root,
 * which the kernel guarantees resolves to a directory beneath it or fails
 * (EXDEV, ELOOP); a missing one is made one component at a time, each with
 * mkdirat() in a parent opened that way.  Below such a directory, removals
 * never follow a symlink: unlinkat, and for a directory openat(O_NOFOLLOW)
 * to empty it first.  layers/unpack.c then changes the entry's last
 * component relative to its parent in the same way.
 */
#include "layers/unpack_root.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int unpack_fail(struct ocib_error *err, const struct unpack_root *r, int errnum,
                const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (errnum)
        return ocib_error_set(err, "layer %s: entry '%s': %s: %s", r->digest, r->name, msg,
                              strerror(errnum));
    return ocib_error_set(err, "layer %s: entry '%s': %s", r->digest, r->name, msg);
}

void unpack_parent_release(struct unpack_parent *p)
{
    if (p->fd >= 0) {
        if (p->restore)
            (void)fchmod(p->fd, p->mode);
        close(p->fd);
    }
    p->fd = -1;
    p->restore = false;
}

int unpack_dir_open(const struct unpack_root *r, const char *path)
{
    int flags[] = {O_RDONLY, O_PATH};

    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        int fd = fs_open_within(r->fd, path, flags[i] | O_DIRECTORY);

        if (fd >= 0)
            return fd;
        if (errno != EACCES)
            return -1;
    }
    return -1;
}

bool unpack_dir_widen(const struct unpack_root *r, int fd, mode_t *ret_mode)
{
    struct stat st;

    if (r->privileged || fstat(fd, &st) < 0 || st.st_uid != geteuid())
        return false;
    if ((st.st_mode & 0300) == 0300)
        return false;
    if (fchmod(fd, (st.st_mode & 07777) | 0300) < 0)
        return false;
    *ret_mode = st.st_mode & 07777;
    return true;
}

/* Fails naming why path (errno errnum) could not be opened beneath the root. */
static int resolve_fail(struct ocib_error *err, const struct unpack_root *r, int errnum,
                        const char *path)
{
    switch (errnum) {
    case EXDEV:
        return unpack_fail(err, r, 0, "path '%s' leads outside the root", path);
    case ELOOP:
        return unpack_fail(err, r, 0,
                           "path '%s' leads outside the root or through too many symlinks",
                           path);
    case ENOTDIR:
        return unpack_fail(err, r, 0, "'%s' is not a directory", path);
    case ENOSYS:
        return unpack_fail(err, r, 0,
                           "openat2 is not available (Linux 5.6 or later needed)");
    default:
        return unpack_fail(err, r, errnum, "cannot open directory '%s'",
                           path[0] ? path : ".");
    }
}

/* Opens path beneath the root, creating the missing directories (0755, owned
 * by the caller) one component at a time.  Each component is made with
 * mkdirat() in its parent, which was itself opened beneath the root. */
static int mkdir_beneath(const struct unpack_root *r, const char *path,
                         struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf prefix = STRBUF_INIT;
    _cleanup_close_ int cur = -1;
    const char *p = path;

    cur = unpack_dir_open(r, "");
    if (cur < 0)
        return resolve_fail(err, r, errno, "");
    while (*p) {
        const char *end = strchrnul(p, '/');
        _cleanup_free_ char *comp = xstrndup(p, (size_t)(end - p));
        int fd;

        if (prefix.len)
            strbuf_addch(&prefix, '/');
        strbuf_addstr(&prefix, comp);
        p = *end ? end + 1 : end;
        fd = unpack_dir_open(r, prefix.buf);
        if (fd < 0 && errno == ENOENT) {
            mode_t mode = 0;
            bool widened = unpack_dir_widen(r, cur, &mode);
            int rc = mkdirat(cur, comp, 0755);
            int saved = errno;

            if (widened)
                (void)fchmod(cur, mode);
            if (rc < 0 && saved != EEXIST)
                return unpack_fail(err, r, saved, "cannot create directory '%s'",
                                   prefix.buf);
            fd = unpack_dir_open(r, prefix.buf);
            if (fd < 0 && errno == ENOENT)
                return unpack_fail(err, r, 0, "'%s' is a dangling symlink", prefix.buf);
            if (fd >= 0 && rc == 0)
                (void)fchmod(fd, 0755); /* undo the umask */
        }
        if (fd < 0)
            return resolve_fail(err, r, errno, prefix.buf);
        close(cur);
        cur = fd;
    }
    return TAKE_FD(cur);
}

int unpack_parent_open(const struct unpack_root *r, const char *path, bool create,
                       struct unpack_parent *ret, struct ocib_error *err)
{
    int fd = unpack_dir_open(r, path);

    if (fd < 0 && errno == ENOENT) {
        if (!create)
            return 1;
        fd = mkdir_beneath(r, path, err);
        if (fd < 0)
            return -1;
    } else if (fd < 0) {
        return resolve_fail(err, r, errno, path);
    }
    ret->fd = fd;
    ret->restore = unpack_dir_widen(r, fd, &ret->mode);
    return 0;
}

static int rm_tree_at(const struct unpack_root *r, int dfd, const char *name);

int unpack_dir_empty(const struct unpack_root *r, int fd)
{
    DIR *d;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int rc = 0;

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
            rc = errno ? -1 : 0;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR || rm_tree_at(r, fd, de->d_name) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc < 0) {
        int saved = errno;

        closedir(d);
        errno = saved;
        return -1;
    }
    closedir(d);
    return 0;
}

/* Removes the directory name in dfd and everything under it. */
static int rm_tree_at(const struct unpack_root *r, int dfd, const char *name)
{
    _cleanup_close_ int fd = -1;
    mode_t unused;

    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && !r->privileged &&
        fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)unpack_dir_widen(r, fd, &unused); /* it is going away: no need to restore */
    if (unpack_dir_empty(r, fd) < 0)
        return -1;
    return unlinkat(dfd, name, AT_REMOVEDIR);
}

int unpack_remove_at(const struct unpack_root *r, int dfd, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode))
        return rm_tree_at(r, dfd, name);
    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return -1;
    return 0;
}
