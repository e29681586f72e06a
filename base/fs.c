/*
 * File system helpers; see fs.h.
 */
#include "base/fs.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define FS_COPY_CHUNK (256 * 1024)

int fs_read_file_at(int dirfd, const char *path, size_t cap, char **ret_buf,
                    size_t *ret_len, struct ocib_error *err)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, alloc = 0;

    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open '%s'", path);
    for (;;) {
        ssize_t n;

        XGROW(buf, alloc, len + 65536 + 1);
        n = read(fd, buf + len, alloc - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ocib_error_errno(err, errno, "cannot read '%s'", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > cap)
            return ocib_error_set(err, "'%s' is larger than the limit of %zu bytes", path,
                                  cap);
    }
    buf[len] = '\0';
    *ret_buf = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

int fs_write_all(int fd, const void *buf, size_t len, struct ocib_error *err)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ocib_error_errno(err, errno, "write failed");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                         struct ocib_error *err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    _cleanup_close_ int fd = -1;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot create a temporary file for '%s'",
                                path);
    if (fchmod(fd, mode) < 0 || fs_write_all(fd, buf, len, NULL) < 0) {
        int e = errno;

        unlink(tmp);
        return ocib_error_errno(err, e, "cannot write '%s'", path);
    }
    /* The bytes reach the disk before the name does: after a power loss
     * path holds the old content or the new, never a truncated file. */
    if (fsync(fd) < 0 || close(TAKE_FD(fd)) < 0 || rename(tmp, path) < 0) {
        int e = errno;

        unlink(tmp);
        return ocib_error_errno(err, e, "cannot write '%s'", path);
    }
    return fs_sync_parent(path, err);
}

int fs_sync_dir(const char *dir, struct ocib_error *err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0)
        return ocib_error_errno(err, errno, "cannot sync '%s'", dir);
    return 0;
}

int fs_sync_parent(const char *path, struct ocib_error *err)
{
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');

    if (!slash)
        return fs_sync_dir(".", err);
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return fs_sync_dir(dir, err);
}

int fs_mkdir_p(const char *path, mode_t mode, struct ocib_error *err)
{
    _cleanup_free_ char *p = xstrdup(path);
    struct stat st;

    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return ocib_error_errno(err, errno, "cannot create directory '%s'", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return ocib_error_errno(err, errno, "cannot create directory '%s'", p);
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
        return ocib_error_set(err, "'%s' exists and is not a directory", p);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void fs_names_release(struct fs_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int fs_read_names(int dirfd, const char *path, struct fs_names *ret, struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct fs_names l = {NULL, 0, 0};
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    struct dirent *de;

    if (fd >= 0)
        d = fdopendir(fd);
    if (!d) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        return ocib_error_errno(err, e, "cannot read directory '%s'", *path ? path : ".");
    }
    rewinddir(d); /* the fd was dup'ed: its offset is shared */
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de)
            break;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        XGROW(l.v, l.alloc, l.n + 1);
        l.v[l.n++] = xstrdup(de->d_name);
    }
    if (errno) {
        int e = errno;

        fs_names_release(&l);
        return ocib_error_errno(err, e, "cannot read directory '%s'", *path ? path : ".");
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_name);
    *ret = l;
    return 0;
}

int fs_rm_rf_at(int parent, const char *name, struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    int fd;

    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return ocib_error_errno(err, errno, "cannot remove '%s'", name);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* A directory its owner cannot read (an overlay work directory is made
     * mode 0) is made readable first. */
    if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open '%s'", name);
    /* Its entries go: it must be writable (a read-only directory of a
     * caller without CAP_DAC_OVERRIDE is not; best effort). */
    if (fchmod(fd, 0700) < 0) {
    }
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ocib_error_errno(err, errno, "cannot read '%s'", name);
    }
    for (de = readdir(d); de; de = readdir(d)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fs_rm_rf_at(dirfd(d), de->d_name, err) < 0)
            return ocib_error_wrap(err, "'%s'", name);
    }
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return ocib_error_errno(err, errno, "cannot remove '%s'", name);
    return 0;
}

int fs_rm_rf(const char *path, struct ocib_error *err)
{
    return fs_rm_rf_at(AT_FDCWD, path, err);
}

int fs_mkdtemp_beside(const char *path, char **ret_path, struct ocib_error *err)
{
    _cleanup_free_ char *a = xstrdup(path);
    _cleanup_free_ char *b = xstrdup(path);
    char *tmpl = xasprintf("%s/.%s.tmp-XXXXXX", dirname(a), basename(b));

    if (!mkdtemp(tmpl)) {
        int e = errno;

        free(tmpl);
        return ocib_error_errno(err, e, "cannot create a temporary directory beside '%s'",
                                path);
    }
    *ret_path = tmpl;
    return 0;
}

int fs_copy_fd(int in_fd, int out_fd, struct sha256 *h, unsigned long long *ret_size,
               struct ocib_error *err)
{
    _cleanup_free_ char *buf = xmalloc(FS_COPY_CHUNK);
    unsigned long long total = 0;

    for (;;) {
        ssize_t n = read(in_fd, buf, FS_COPY_CHUNK);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ocib_error_errno(err, errno, "read failed");
        }
        if (n == 0)
            break;
        if (h)
            sha256_update(h, buf, (size_t)n);
        if (out_fd >= 0 && fs_write_all(out_fd, buf, (size_t)n, err) < 0)
            return -1;
        total += (unsigned long long)n;
    }
    if (ret_size)
        *ret_size = total;
    return 0;
}

int fs_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

char *fs_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);

    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    return xasprintf("%.*s/%s", (int)la, a, b);
}

int fs_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve};
    long fd = -1;

    for (int tries = 0; tries < 32; tries++) {
        fd = syscall(SYS_openat2, dirfd, path[0] ? path : ".", &how, sizeof(how));
        if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    return (int)fd;
}

int fs_open_beneath(int dirfd, const char *path, int flags)
{
    int fd = fs_openat2(dirfd, path, flags | O_NOFOLLOW,
                        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);

    if (fd >= 0 || errno != ENOSYS)
        return fd;
    return openat(dirfd, path, flags | O_CLOEXEC | O_NOFOLLOW);
}

int fs_open_within(int dirfd, const char *path, int flags)
{
    return fs_openat2(dirfd, path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}
