/*
 * Content-addressed blob store; see blobs.h.
 */
#include "cache/blobs.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "cache/lease.h"
#include "cache/maint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *cache_default_dir(void)
{
    const char *env = getenv("OCIB_CACHE_DIR");

    if (env && *env)
        return xstrdup(env);
    env = getenv("XDG_CACHE_HOME");
    if (env && *env)
        return xasprintf("%s/ocib", env);
    env = getenv("HOME");
    return xasprintf("%s/.cache/ocib", env && *env ? env : "/tmp");
}

int cache_open(struct cache *c, const char *dir, struct ocib_error *err)
{
    memset(c, 0, sizeof(*c));
    c->dir = xstrdup(dir);
    c->blobs = fs_path_join(dir, "blobs/sha256");
    c->tmp = fs_path_join(dir, "tmp");
    if (fs_mkdir_p(c->blobs, 0700, err) < 0 || fs_mkdir_p(c->tmp, 0700, err) < 0 ||
        cache_lease_take(c, err) < 0) {
        cache_release(c);
        return ocib_error_wrap(err, "cache '%s'", dir);
    }
    cache_lease_sweep(c);
    cache_roots_this_boot(c);
    return 0;
}

void cache_release(struct cache *c)
{
    cache_lease_drop(c);
    free(c->dir);
    free(c->blobs);
    free(c->tmp);
    memset(c, 0, sizeof(*c));
}

char *cache_blob_file(const struct cache *c, const struct oci_digest *d)
{
    return xasprintf("%s/%s", c->blobs, oci_digest_hex(d));
}

char *cache_blob_path(const struct cache *c, const struct oci_digest *d)
{
    cache_pin(c, "blob", oci_digest_hex(d));
    return cache_blob_file(c, d);
}

bool cache_blob_exists(const struct cache *c, const struct oci_digest *d)
{
    _cleanup_free_ char *p = cache_blob_path(c, d);

    return fs_exists(p);
}

int cache_tmp_create(const struct cache *c, char **ret_path, int *ret_fd,
                     struct ocib_error *err)
{
    const char *dir = cache_lease_tmp(c, err);
    char *path;
    int fd;

    if (!dir)
        return -1;
    path = xasprintf("%s/blob-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        free(path);
        return ocib_error_errno(err, e, "cannot create a file in '%s'", dir);
    }
    fchmod(fd, 0444);
    *ret_path = path;
    *ret_fd = fd;
    return 0;
}

int cache_blob_commit(const struct cache *c, const char *tmp_path,
                      const struct oci_digest *d, struct ocib_error *err)
{
    _cleanup_free_ char *dst = cache_blob_path(c, d);
    _cleanup_close_ int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);

    /* One fsync per blob, of the whole file, before its name appears. */
    if (fd < 0 || fsync(fd) < 0 || rename(tmp_path, dst) < 0) {
        int e = errno;

        unlink(tmp_path);
        return ocib_error_errno(err, e, "cannot store blob %s in '%s'", d->str, c->blobs);
    }
    if (fs_sync_dir(c->blobs, err) < 0)
        return ocib_error_wrap(err, "blob %s", d->str);
    return 0;
}

int cache_blob_put(const struct cache *c, const void *data, size_t len,
                   const struct oci_digest *d, struct ocib_error *err)
{
    _cleanup_free_ char *tmp = NULL;
    int fd;

    if (cache_blob_exists(c, d))
        return 0;
    if (cache_tmp_create(c, &tmp, &fd, err) < 0)
        return -1;
    if (fs_write_all(fd, data, len, err) < 0 || close(fd) < 0) {
        if (err && !err->msg[0])
            ocib_error_errno(err, errno, "cannot write '%s'", tmp);
        unlink(tmp);
        return -1;
    }
    return cache_blob_commit(c, tmp, d, err);
}
