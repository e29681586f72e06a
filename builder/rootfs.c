/*
 * Stage root file systems; see rootfs.h.
 */
#include "builder/rootfs.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cache/lease.h"
#include "layers/unpack.h"

#include <dirent.h>
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
    /* Named after the lease, so that a killed build's root is removed by
     * the next process that opens the cache. */
    tmpl = xasprintf("%s/work.%s.XXXXXX", dir, cache_lease_id(c));
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

/* Copies directory src_fd into dst_fd: directories are made (mode, owner,
 * times), everything else hard-linked. */
static int clone_tree(int src_fd, int dst_fd, struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    int fd = dup(src_fd);

    d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ocib_error_errno(err, errno, "cannot read a kept root");
    }
    for (de = readdir(d); de; de = readdir(d)) {
        struct stat st;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(src_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return ocib_error_errno(err, errno, "cannot stat '%s' in a kept root",
                                    de->d_name);
        if (S_ISDIR(st.st_mode)) {
            _cleanup_close_ int s2 = -1;
            _cleanup_close_ int d2 = -1;
            struct timespec ts[2] = {st.st_atim, st.st_mtim};

            if (mkdirat(dst_fd, de->d_name, 0700) < 0)
                return ocib_error_errno(err, errno, "cannot clone '%s'", de->d_name);
            s2 =
                openat(src_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            d2 =
                openat(dst_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                return ocib_error_errno(err, errno, "cannot clone '%s'", de->d_name);
            if (clone_tree(s2, d2, err) < 0)
                return -1;
            if (fchown(d2, st.st_uid, st.st_gid) < 0 && errno != EPERM && errno != EINVAL)
                return ocib_error_errno(err, errno, "cannot clone '%s'", de->d_name);
            fchmod(d2, st.st_mode & 07777);
            futimens(d2, ts);
        } else if (linkat(src_fd, de->d_name, dst_fd, de->d_name, 0) < 0) {
            return ocib_error_errno(err, errno, "cannot link '%s' from a kept root",
                                    de->d_name);
        }
    }
    return 0;
}

/* Clones the directory at from into the new directory at to. */
static int clone_root(const char *from, const char *to, struct ocib_error *err)
{
    _cleanup_close_ int s = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int d = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;

    if (s < 0 || d < 0 || fstat(s, &st) < 0)
        return ocib_error_errno(err, errno, "cannot clone the root '%s'", from);
    if (clone_tree(s, d, err) < 0)
        return -1;
    fchmod(d, st.st_mode & 07777);
    return 0;
}

static void add_shared(struct rootfs *r, const struct oci_digest *key)
{
    XGROW(r->shared, r->alloc_shared, r->n_shared + 1);
    r->shared[r->n_shared++] = *key;
}

/* Keeps a clone of r's state now, if it was to be kept and is not yet. */
static void flush_save(struct rootfs *r, struct cache *c)
{
    _cleanup_free_ char *dir = rootfs_dir(c);
    _cleanup_free_ char *final = NULL;
    _cleanup_free_ char *tmp = NULL;

    if (!r->save_pending)
        return;
    r->save_pending = false;
    final = xasprintf("%s/%s", dir, oci_digest_hex(&r->key));
    if (fs_exists(final))
        return;
    tmp = xasprintf("%s/save.%s.XXXXXX", dir, cache_lease_id(c));
    if (!mkdtemp(tmp))
        return;
    if (clone_root(r->path, tmp, NULL) < 0 || rename(tmp, final) < 0) {
        fs_rm_rf(tmp, NULL);
        return;
    }
    add_shared(r, &r->key);
}

/* Gives r's directory to the cache as the kept root of its key (when it
 * has none yet), else removes it. */
static void give_back(struct rootfs *r, struct cache *c, bool keep)
{
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

int rootfs_update(struct rootfs *r, struct cache *c, struct registries *rs,
                  const struct oci_image *img, struct blob_source *srcs, size_t n,
                  const struct oci_digest *keys, struct unpack_limits *limits,
                  struct ocib_error *err)
{
    const struct oci_digest *key = &keys[n];
    bool saved_base = false;

    if (r->path && r->n_applied == n && oci_digest_equal(&r->key, key))
        return open_fd(r, err);
    if (!r->path || r->n_applied > n) {
        _cleanup_free_ char *dir = rootfs_dir(c);

        if (r->path) {
            if (r->fd >= 0)
                close(r->fd);
            r->fd = -1;
            give_back(r, c, r->save_pending);
            r->save_pending = false;
        }
        if (new_private(r, c, err) < 0)
            return -1;
        /* The longest prefix of the chain that has a kept root. */
        for (size_t i = n; i > 0; i--) {
            _cleanup_free_ char *cached = NULL;
            struct ocib_error cerr = OCIB_ERROR_INIT;

            if (!keys[i].str[0])
                continue;
            /* Pinned before it is looked for: prune leaves it while it is
             * cloned (lease.h). */
            cache_pin(c, "root", oci_digest_hex(&keys[i]));
            cached = xasprintf("%s/%s", dir, oci_digest_hex(&keys[i]));
            if (!fs_exists(cached))
                continue;
            if (clone_root(cached, r->path, &cerr) == 0) {
                add_shared(r, &keys[i]);
                r->n_applied = i;
                break;
            }
            /* A root that cannot be cloned (pruned meanwhile): start over. */
            fs_rm_rf(r->path, NULL);
            mkdir(r->path, 0755);
        }
    }
    if (open_fd(r, err) < 0)
        return -1;
    for (size_t i = r->n_applied; i < n; i++) {
        const struct oci_layer *l = &img->layers[i];
        struct unpack_check chk = {&l->desc.digest, l->desc.size, &l->diff_id};
        struct unpack_stats st = {0};

        /* A state to keep is kept before the root changes (an unpack that
         * fails half-way must not be kept under it). */
        flush_save(r, c);
        if (blob_source_ensure_local(&srcs[i], c, rs, err) < 0 ||
            layer_unpack_checked(r->fd, srcs[i].path, l->desc.digest.str, &chk, limits, &st,
                                 err) < 0)
            return -1;
        r->skipped_devices += st.skipped_devices;
        r->n_applied = i + 1;
        /* The base, unpacked: kept too, since other stages (and builds)
         * usually start from the same one. */
        if (i + 1 < n && keys[i + 1].str[0] && !saved_base) {
            r->key = keys[i + 1];
            rootfs_save(r, c);
            saved_base = true;
        }
    }
    r->key = *key;
    return 0;
}

void rootfs_save(struct rootfs *r, struct cache *c)
{
    _cleanup_free_ char *dir = rootfs_dir(c);
    _cleanup_free_ char *final = NULL;

    if (!r->path)
        return;
    final = xasprintf("%s/%s", dir, oci_digest_hex(&r->key));
    r->save_pending = !fs_exists(final);
}

void rootfs_keep_pending(struct rootfs *r, struct cache *c)
{
    if (r->path)
        flush_save(r, c);
}

void rootfs_taint(struct rootfs *r, struct cache *c)
{
    _cleanup_free_ char *dir = rootfs_dir(c);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    /* Kept roots share inodes with each other through the clones they were
     * made from, so every one of them may hold the changed file: all go
     * (out of reach by rename first, then removed). */
    for (de = d ? readdir(d) : NULL; de; de = readdir(d)) {
        _cleanup_free_ char *kept = NULL;
        _cleanup_free_ char *gone = NULL;

        if (strlen(de->d_name) != SHA256_HEX_LEN ||
            strspn(de->d_name, "0123456789abcdef") != SHA256_HEX_LEN)
            continue;
        kept = xasprintf("%s/%s", dir, de->d_name);
        gone = xasprintf("%s/gone-XXXXXX", dir);
        if (mkdtemp(gone) && rmdir(gone) == 0 && rename(kept, gone) == 0)
            fs_rm_rf(gone, NULL);
    }
    r->n_shared = 0;
}

void rootfs_discard(struct rootfs *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->save_pending = false;
    r->n_shared = 0;
    if (r->path)
        give_back(r, NULL, false);
    r->n_applied = 0;
}

void rootfs_advance(struct rootfs *r, size_t n, const struct oci_digest *key)
{
    r->n_applied = n;
    r->key = *key;
}

void rootfs_release(struct rootfs *r, struct cache *c, bool keep)
{
    free(r->shared);
    r->shared = NULL;
    r->n_shared = r->alloc_shared = 0;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (!r->path)
        return;
    /* A state still to be kept is whole even when the build failed later. */
    give_back(r, c, keep || r->save_pending);
    r->save_pending = false;
}

/* Splits path into its components onto the stack todo, last first. */
static void push_comps(char ***todo, size_t *n, size_t *alloc, const char *path)
{
    size_t first = *n;

    while (*path) {
        size_t len = strcspn(path, "/");

        if (len && !(len == 1 && *path == '.')) {
            XGROW(*todo, *alloc, *n + 1);
            (*todo)[(*n)++] = xstrndup(path, len);
        }
        path += len;
        while (*path == '/')
            path++;
    }
    for (size_t i = first, j = *n; i + 1 < j; i++, j--) {
        char *t = (*todo)[i];

        (*todo)[i] = (*todo)[j - 1];
        (*todo)[j - 1] = t;
    }
}

static void free_comps(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int rootfs_resolve(int root_fd, const char *path, bool follow_last, char **ret,
                   struct ocib_error *err)
{
    char **todo = NULL, **done = NULL;
    size_t n_todo = 0, a_todo = 0, n_done = 0, a_done = 0, hops = 0;
    bool missing = false; /* a component does not exist: nothing below does */
    struct strbuf sb = STRBUF_INIT;
    int r = -1;

    push_comps(&todo, &n_todo, &a_todo, path);
    while (n_todo > 0) {
        char *c = todo[--n_todo];
        char target[4096];
        struct stat st;
        ssize_t len;

        if (!strcmp(c, "..")) {
            free(c);
            if (n_done > 0) /* ".." stops at the root */
                free(done[--n_done]);
            continue;
        }
        XGROW(done, a_done, n_done + 1);
        done[n_done++] = c;
        if (missing || (n_todo == 0 && !follow_last))
            continue;
        strbuf_reset(&sb);
        for (size_t i = 0; i < n_done; i++)
            strbuf_addf(&sb, "%s%s", i ? "/" : "", done[i]);
        if (fstatat(root_fd, strbuf_str(&sb), &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            (!S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode))) {
            missing = true; /* made, or replaced, by the layer */
            continue;
        }
        if (!S_ISLNK(st.st_mode))
            continue;
        if (++hops > 40) {
            ocib_error_set(err, "too many levels of symlinks in the stage's root");
            goto out;
        }
        len = readlinkat(root_fd, sb.buf, target, sizeof(target) - 1);
        if (len < 0) {
            ocib_error_errno(err, errno,
                             "cannot read the symlink '/%s' in the stage's root", sb.buf);
            goto out;
        }
        target[len] = '\0';
        free(done[--n_done]); /* the link gives way to its target */
        if (target[0] == '/') {
            free_comps(done, n_done);
            done = NULL;
            n_done = a_done = 0;
        }
        push_comps(&todo, &n_todo, &a_todo, target);
    }
    strbuf_reset(&sb);
    for (size_t i = 0; i < n_done; i++)
        strbuf_addf(&sb, "%s%s", i ? "/" : "", done[i]);
    *ret = strbuf_detach(&sb);
    r = 0;
out:
    strbuf_release(&sb);
    free_comps(todo, n_todo);
    free_comps(done, n_done);
    return r;
}

int rootfs_state_fd(struct rootfs *r, struct cache *c, struct registries *rs,
                    const struct oci_image *img, struct blob_source *srcs, size_t n,
                    const struct oci_digest *keys, struct unpack_limits *limits,
                    int *ret_fd, struct ocib_error *err)
{
    int fd;

    if (!(r->path && r->n_applied == n && oci_digest_equal(&r->key, &keys[n])) &&
        keys[n].str[0]) {
        _cleanup_free_ char *dir = rootfs_dir(c);
        _cleanup_free_ char *kept = xasprintf("%s/%s", dir, oci_digest_hex(&keys[n]));

        fd = open(kept, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            *ret_fd = fd;
            return 0;
        }
    }
    if (rootfs_update(r, c, rs, img, srcs, n, keys, limits, err) < 0)
        return -1;
    fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open the root '%s'", r->path);
    *ret_fd = fd;
    return 0;
}
