/*
 * Layer entry sets; see tree.h.
 */
#include "layers/tree.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/sha256.h"
#include "base/xalloc.h"
#include "oci/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define LAYER_PATH_MAX 4096

void layer_tree_init(struct layer_tree *t)
{
    memset(t, 0, sizeof(*t));
}

static void entry_release(struct layer_tree_entry *e)
{
    free(e->path);
    free(e->link);
    free(e->src);
    free(e->data);
}

void layer_tree_release(struct layer_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        entry_release(&t->entries[i]);
    free(t->entries);
    layer_tree_init(t);
}

int layer_path_normalise(const char *path, char **ret, struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const char *p = path;

    if (strlen(path) > LAYER_PATH_MAX)
        return ocib_error_usage(err, "path '%.64s...' is longer than %d bytes", path,
                                LAYER_PATH_MAX);
    while (*p) {
        const char *end;
        size_t n;

        while (*p == '/')
            p++;
        if (!*p)
            break;
        end = strchr(p, '/');
        n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && !strncmp(p, "..", 2))
            return ocib_error_usage(err, "path '%s' contains '..'", path);
        if (!(n == 1 && *p == '.')) {
            if (sb.len)
                strbuf_addch(&sb, '/');
            strbuf_add(&sb, p, n);
        }
        p += n;
    }
    *ret = sb.len ? strbuf_detach(&sb) : NULL;
    return 0;
}

void layer_tree_put(struct layer_tree *t, struct layer_tree_entry *e)
{
    XGROW(t->entries, t->alloc, t->n + 1);
    e->seq = t->n;
    t->entries[t->n++] = *e;
    memset(e, 0, sizeof(*e));
}

static int cmp_entry(const void *a, const void *b)
{
    const struct layer_tree_entry *x = a, *y = b;
    int c = strcmp(x->path, y->path);

    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_path(const void *key, const void *elem)
{
    return strcmp(key, ((const struct layer_tree_entry *)elem)->path);
}

/* Sorts and keeps only the last entry for each path. */
static void sort_dedupe(struct layer_tree *t)
{
    size_t out = 0;

    if (t->n)
        qsort(t->entries, t->n, sizeof(*t->entries), cmp_entry);
    for (size_t i = 0; i < t->n; i++) {
        if (i + 1 < t->n && !strcmp(t->entries[i].path, t->entries[i + 1].path)) {
            entry_release(&t->entries[i]);
            continue;
        }
        t->entries[out++] = t->entries[i];
    }
    t->n = out;
}

void layer_tree_finalise(struct layer_tree *t)
{
    size_t n0;

    sort_dedupe(t);
    n0 = t->n;
    /* Add every missing parent directory. */
    for (size_t i = 0; i < n0; i++) {
        _cleanup_free_ char *p = xstrdup(t->entries[i].path);
        char *slash;

        for (slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
            *slash = '\0';
            if (bsearch(p, t->entries, n0, sizeof(*t->entries), cmp_path))
                break;
            struct layer_tree_entry e = {
                .path = xstrdup(p), .mode = S_IFDIR | 0755, .implicit = true};
            layer_tree_put(t, &e);
        }
    }
    if (t->n != n0)
        sort_dedupe(t);
}

void layer_tree_retarget(struct layer_tree *t, char **paths)
{
    size_t out = 0;

    for (size_t i = 0; i < t->n; i++) {
        struct layer_tree_entry *e = &t->entries[i];

        if (e->implicit || !paths[i]) {
            free(paths[i]);
            entry_release(e);
            continue;
        }
        free(e->path);
        e->path = paths[i];
        t->entries[out++] = *e;
    }
    t->n = out;
    layer_tree_finalise(t);
}

struct inode_seen {
    dev_t dev;
    ino_t ino;
    const char *path;
};

static int cmp_inode(const void *a, const void *b)
{
    const struct inode_seen *x = a, *y = b;

    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

int layer_tree_write(struct layer_tree *t, int src_dirfd, struct layer_writer *w,
                     struct ocib_error *err)
{
    _cleanup_free_ struct inode_seen *seen = NULL;
    size_t n_seen = 0, alloc_seen = 0;

    layer_tree_finalise(t);
    for (size_t i = 0; i < t->n; i++) {
        struct layer_tree_entry *te = &t->entries[i];
        struct layer_entry e = {.path = te->path,
                                .mode = te->mode,
                                .uid = te->uid,
                                .gid = te->gid,
                                .size = te->size,
                                .link = te->link};
        bool maybe_linked = te->has_st && te->st.st_nlink > 1;
        struct inode_seen key = {te->st.st_dev, te->st.st_ino, te->path};
        _cleanup_close_ int fd = -1;
        char caps[64]; /* a vfs_cap_data is 20 or 24 bytes */
        struct stat st;

        if (!S_ISREG(te->mode)) {
            if (layer_writer_add(w, &e, err) < 0)
                return -1;
            continue;
        }
        if (!te->src) {
            if (layer_writer_add_data(w, &e, te->data, err) < 0)
                return -1;
            continue;
        }
        if (maybe_linked) {
            /* Linear insertion keeps "first path wins" in sorted order. */
            struct inode_seen *hit =
                n_seen ? bsearch(&key, seen, n_seen, sizeof(*seen), cmp_inode) : NULL;

            if (hit) {
                e.hardlink = true;
                e.link = hit->path;
                e.size = 0;
                if (layer_writer_add(w, &e, err) < 0)
                    return -1;
                continue;
            }
        }
        fd = fs_open_beneath(te->dirfd > 0 ? te->dirfd : src_dirfd, te->src, O_RDONLY);
        if (fd < 0)
            return ocib_error_errno(err, errno, "cannot open '%s'", te->src);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
            return ocib_error_set(err, "'%s' changed while the layer was written", te->src);
        if (te->keep_caps) {
            ssize_t n = fgetxattr(fd, "security.capability", caps, sizeof(caps));

            if (n > 0) {
                e.caps = caps;
                e.caps_len = (size_t)n;
            }
        }
        if (te->digest[0]) {
            if (layer_writer_add_fd(w, &e, fd, NULL, err) < 0)
                return -1;
        } else {
            struct sha256 h;
            struct oci_digest d;

            sha256_init(&h);
            if (layer_writer_add_fd(w, &e, fd, &h, err) < 0) {
                sha256_release(&h);
                return -1;
            }
            oci_digest_from_sha256(&h, &d);
            memcpy(te->digest, oci_digest_hex(&d), sizeof(te->digest));
        }
        if (maybe_linked) {
            size_t pos = 0;

            XGROW(seen, alloc_seen, n_seen + 1);
            while (pos < n_seen && cmp_inode(&seen[pos], &key) < 0)
                pos++;
            memmove(seen + pos + 1, seen + pos, (n_seen - pos) * sizeof(*seen));
            seen[pos] = key;
            n_seen++;
        }
    }
    return 0;
}

int layer_tree_hash_files(struct layer_tree *t, int src_dirfd,
                          void (*on_hashed)(void *opaque, const struct layer_tree_entry *e),
                          void *opaque, struct ocib_error *err)
{

    for (size_t i = 0; i < t->n; i++) {
        struct layer_tree_entry *te = &t->entries[i];
        _cleanup_close_ int fd = -1;
        struct sha256 h;
        struct oci_digest d;
        unsigned long long total = 0;

        if (!S_ISREG(te->mode) || te->digest[0])
            continue;
        if (!te->src) {
            oci_digest_of(te->data ?: "", te->size, &d);
            memcpy(te->digest, oci_digest_hex(&d), sizeof(te->digest));
            continue;
        }
        fd = fs_open_beneath(te->dirfd > 0 ? te->dirfd : src_dirfd, te->src, O_RDONLY);
        if (fd < 0)
            return ocib_error_errno(err, errno, "cannot open '%s'", te->src);
        sha256_init(&h);
        if (fs_copy_fd(fd, -1, &h, &total, err) < 0) {
            sha256_release(&h);
            return ocib_error_wrap(err, "cannot read '%s'", te->src);
        }
        oci_digest_from_sha256(&h, &d);
        if (total != te->size)
            return ocib_error_set(err, "'%s' changed while being read", te->src);
        memcpy(te->digest, oci_digest_hex(&d), sizeof(te->digest));
        if (on_hashed)
            on_hashed(opaque, te);
    }
    return 0;
}
