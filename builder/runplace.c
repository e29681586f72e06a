/*
 * Placeholders and chroot placements of run steps; see runplace.h.
 */
#include "builder/runplace.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path (relative to the root) as an O_PATH fd without leaving the root:
 * symlinks are followed only while they stay beneath it, as the sandbox's
 * bind mount will follow them, and ".." never climbs out.  -1 with errno set
 * (EXDEV when the path leads outside). */
static int open_beneath(int root_fd, const char *path)
{
    return fs_open_within(root_fd, path, O_PATH);
}

/* The directory holding path, opened beneath the root; *ret_base is path's
 * last component. */
static int open_parent_beneath(int root_fd, const char *path, const char **ret_base)
{
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");

    *ret_base = slash ? slash + 1 : path;
    return open_beneath(root_fd, dir);
}

/* Makes sure target exists in the root for a bind mount, creating what is
 * missing (remembered for removal, deepest last).  Nothing is created or
 * mounted outside the root: a target that leads outside (an absolute
 * symlink, "..") is refused. */
int make_placeholder(int root_fd, const char *target, bool dir, struct placeholders *list,
                     struct ocib_error *err)
{
    const char *rel = target;
    _cleanup_free_ char *copy = NULL;
    int fd;

    while (*rel == '/')
        rel++;
    copy = xstrdup(rel);
    fd = open_beneath(root_fd, rel);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        goto refused;
    for (char *s = copy;; s++) {
        bool last = *s == '\0';

        if (*s != '/' && !last)
            continue;
        *s = '\0';
        fd = *copy ? open_beneath(root_fd, copy) : -1;
        if (fd >= 0) {
            close(fd);
        } else if (*copy && errno != ENOENT) {
            goto refused;
        } else if (*copy) {
            const char *base;
            int pfd = open_parent_beneath(root_fd, copy, &base), rc;

            if (pfd < 0)
                goto refused;
            if (last && !dir) {
                int ffd = openat(
                    pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

                rc = ffd < 0 ? -1 : close(ffd);
            } else {
                rc = mkdirat(pfd, base, 0755);
            }
            close(pfd);
            if (rc < 0)
                return ocib_error_errno(err, errno, "cannot create the mount point '/%s'",
                                        copy);
            XGROW(list->v, list->alloc, list->n + 1);
            list->v[list->n].path = xstrdup(copy);
            list->v[list->n].dir = !(last && !dir);
            list->n++;
        }
        if (last)
            break;
        *s = '/';
    }
    return 0;
refused:
    if (errno == EXDEV)
        return ocib_error_set(err,
                              "mount point '%s': '/%s' leads outside the stage root "
                              "(through '..' or a symlink); refused",
                              target, copy);
    return ocib_error_errno(err, errno,
                            "mount point '%s': cannot reach '/%s' inside the "
                            "stage root",
                            target, copy);
}

/* Removes the placeholders, never through a path that now leads outside the
 * root (the command may have replaced a directory with a symlink). */
void remove_placeholders(int root_fd, struct placeholders *list)
{
    while (list->n > 0) {
        struct placeholder *ph = &list->v[--list->n];
        const char *base;
        int pfd = open_parent_beneath(root_fd, ph->path, &base);

        if (pfd >= 0) {
            unlinkat(pfd, base, ph->dir ? AT_REMOVEDIR : 0);
            close(pfd);
        }
        free(ph->path);
    }
    free(list->v);
    list->v = NULL;
    list->alloc = 0;
}

/* Moves the root's own entry at p->path, if there is one, into the aside
 * directory (made on first use) and records it in p->aside. */
static int move_aside(int root_fd, const char *root_path, struct placements *pl,
                      struct placed *p, struct ocib_error *err)
{
    const char *base;
    _cleanup_close_ int pfd = open_parent_beneath(root_fd, p->path, &base);
    _cleanup_close_ int afd = -1;
    struct stat st;
    char name[32];

    if (pfd < 0 && errno == ENOENT)
        return 0; /* no parent, nothing there: the placeholder makes it */
    if (pfd < 0)
        return ocib_error_errno(err, errno, "'/%s': cannot reach it inside the stage root",
                                p->path);
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT
                   ? 0
                   : ocib_error_errno(err, errno, "cannot inspect '/%s'", p->path);
    if (!pl->aside_dir) {
        char *d = xasprintf("%s.aside-XXXXXX", root_path);

        if (!mkdtemp(d)) {
            free(d);
            return ocib_error_errno(err, errno, "cannot create a directory beside '%s'",
                                    root_path);
        }
        pl->aside_dir = d;
    }
    afd = open(pl->aside_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(name, sizeof(name), "%zu", pl->n);
    if (afd < 0 || renameat(pfd, base, afd, name) < 0)
        return ocib_error_errno(err, errno, "cannot move '/%s' of the stage root aside",
                                p->path);
    p->aside = xstrdup(name);
    return 0;
}

/* Records a placement at target and moves what the root has there aside;
 * returns it (its path relative to the root). */
static struct placed *placed_add(int root_fd, const char *root_path, const char *target,
                                 const char *back, struct placements *pl,
                                 struct ocib_error *err)
{
    struct placed *p;

    while (*target == '/')
        target++;
    XGROW(pl->v, pl->alloc, pl->n + 1);
    p = &pl->v[pl->n];
    *p = (struct placed){.path = xstrdup(target), .back = back ? xstrdup(back) : NULL};
    if (move_aside(root_fd, root_path, pl, p, err) < 0) {
        free(p->path);
        free(p->back);
        return NULL;
    }
    pl->n++;
    return p;
}

int place_copy(int root_fd, const char *root_path, const char *target, const char *src,
               struct placements *pl, struct ocib_error *err)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int out = -1;
    struct placed *p;
    struct stat st;

    if (in < 0 || fstat(in, &st) < 0)
        return ocib_error_errno(err, errno, "cannot read '%s'", src);
    p = placed_add(root_fd, root_path, target, NULL, pl, err);
    if (!p || make_placeholder(root_fd, target, false, &pl->ph, err) < 0)
        return -1;
    out = fs_open_within(root_fd, p->path, O_WRONLY | O_TRUNC | O_NOFOLLOW);
    if (out < 0)
        return ocib_error_errno(err, errno, "cannot write '/%s' in the stage root",
                                p->path);
    if (fs_copy_fd(in, out, NULL, NULL, err) < 0)
        return ocib_error_wrap(err, "copying '%s' to '/%s'", src, p->path);
    if (fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0)
        return ocib_error_errno(err, errno, "cannot give '/%s' the owner and mode of '%s'",
                                p->path, src);
    return 0;
}

int place_dir(int root_fd, const char *root_path, const char *target, const char *dir,
              struct placements *pl, struct ocib_error *err)
{
    struct placed *p = placed_add(root_fd, root_path, target, dir, pl, err);
    const char *base;
    _cleanup_close_ int pfd = -1;

    if (!p || make_placeholder(root_fd, target, true, &pl->ph, err) < 0)
        return -1;
    pfd = open_parent_beneath(root_fd, p->path, &base);
    /* Over the empty placeholder: rename replaces an empty directory. */
    if (pfd < 0 || renameat(AT_FDCWD, dir, pfd, base) < 0)
        return ocib_error_errno(
            err, errno,
            "cannot move the cache directory '%s' to '/%s' in the stage "
            "root (they must share a file system)",
            dir, p->path);
    return 0;
}

void placements_undo(int root_fd, struct placements *pl)
{
    _cleanup_close_ int afd = -1;

    for (size_t i = pl->n; i-- > 0;) {
        const struct placed *p = &pl->v[i];
        const char *base;
        int pfd = open_parent_beneath(root_fd, p->path, &base);
        struct stat st;

        if (pfd < 0)
            continue; /* the command removed it with its parent */
        if (p->back && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode) && renameat(pfd, base, AT_FDCWD, p->back) == 0) {
            close(pfd);
            continue;
        }
        /* A copy, or what the command left instead of a cache directory. */
        fs_rm_rf_at(pfd, base, NULL);
        close(pfd);
    }
    remove_placeholders(root_fd, &pl->ph);
    if (pl->aside_dir)
        afd = open(pl->aside_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = pl->n; i-- > 0;) {
        struct placed *p = &pl->v[i];
        const char *base;
        int pfd = p->aside && afd >= 0 ? open_parent_beneath(root_fd, p->path, &base) : -1;

        if (pfd >= 0) {
            renameat(afd, p->aside, pfd, base);
            close(pfd);
        }
        free(p->path);
        free(p->aside);
        free(p->back);
    }
    if (pl->aside_dir)
        fs_rm_rf(pl->aside_dir, NULL);
    free(pl->aside_dir);
    free(pl->v);
    memset(pl, 0, sizeof(*pl));
}
