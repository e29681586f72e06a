/*
 * Stage root file systems; see rootfs.h.
 */
#include "builder/rootfs.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "layers/unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rootfs_init(struct rootfs *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

static char *rootfs_dir(struct cache *c)
{
    return fs_path_join(c->dir, "rootfs");
}

static int new_private(struct rootfs *r, struct cache *c, struct ocib_error *err)
{
    _cleanup_free_ char *dir = rootfs_dir(c);
    char *tmpl;

    if (fs_mkdir_p(dir, 0700, err) < 0)
        return -1;
    tmpl = xasprintf("%s/work-XXXXXX", dir);
    if (!mkdtemp(tmpl)) {
        int e = errno;

        free(tmpl);
        return ocib_error_errno(err, e, "cannot create a root in '%s'", dir);
    }
    chmod(tmpl, 0755);
    r->path = tmpl;
    r->n_applied = 0;
    return 0;
}

static int open_fd(struct rootfs *r, struct ocib_error *err)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0)
        return ocib_error_errno(err, errno, "cannot open the root '%s'", r->path);
    return 0;
}

int rootfs_update(struct rootfs *r, struct cache *c, struct registries *rs,
                  const struct oci_image *img, struct blob_source *srcs, size_t n,
                  const struct oci_digest *key, struct ocib_error *err)
{
    if (r->path && r->n_applied == n && oci_digest_equal(&r->key, key))
        return open_fd(r, err);
    if (!r->path || r->n_applied > n) {
        _cleanup_free_ char *dir = rootfs_dir(c);
        _cleanup_free_ char *cached = xasprintf("%s/%s", dir, oci_digest_hex(key));

        if (r->path) {
            fs_rm_rf(r->path, NULL);
            free(r->path);
            r->path = NULL;
        }
        if (new_private(r, c, err) < 0)
            return -1;
        /* A finished root for exactly this state: take it. */
        if (fs_exists(cached)) {
            if (rmdir(r->path) == 0 && rename(cached, r->path) == 0) {
                r->n_applied = n;
                r->key = *key;
                return open_fd(r, err);
            }
            mkdir(r->path, 0755);
        }
    }
    if (open_fd(r, err) < 0)
        return -1;
    for (size_t i = r->n_applied; i < n; i++) {
        struct unpack_stats st = { 0 };

        if (blob_source_ensure_local(&srcs[i], c, rs, err) < 0 ||
            layer_unpack(r->fd, srcs[i].path, img->layers[i].desc.digest.str, &st, err) < 0)
            return -1;
        r->skipped_devices += st.skipped_devices;
        r->n_applied = i + 1;
    }
    r->key = *key;
    return 0;
}

void rootfs_advance(struct rootfs *r, size_t n, const struct oci_digest *key)
{
    r->n_applied = n;
    r->key = *key;
}

void rootfs_release(struct rootfs *r, struct cache *c, bool keep)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (!r->path)
        return;
    if (keep) {
        _cleanup_free_ char *dir = rootfs_dir(c);
        _cleanup_free_ char *final = xasprintf("%s/%s", dir, oci_digest_hex(&r->key));

        /* Another build may have given back the same state first. */
        if (rename(r->path, final) == 0) {
            free(r->path);
            r->path = NULL;
            return;
        }
    }
    fs_rm_rf(r->path, NULL);
    free(r->path);
    r->path = NULL;
}
