/*
 * Cache maintenance; see maint.h.
 */
#include "cache/maint.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/xalloc.h"
#include "cache/lease.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_MAX_AGE (24 * 3600)

/* Sums sizes below dir (two levels at most, as the cache is laid out). */
static void du_dir(const char *dir, uint64_t *bytes, uint64_t *count)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        p = fs_path_join(dir, de->d_name);
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            du_dir(p, bytes, count);
        } else {
            *bytes += (uint64_t)st.st_blocks * 512;
            if (count)
                (*count)++;
        }
    }
}

int cache_usage(struct cache *c, struct cache_usage *ret, struct ocib_error *err)
{
    const struct {
        const char *sub;
        uint64_t *bytes, *count;
    } parts[] = {
        {"blobs", &ret->blob_bytes, &ret->blob_count},
        {"keys", &ret->key_bytes, &ret->key_count},
        {"defs", &ret->key_bytes, NULL},
        {"records", &ret->record_bytes, NULL},
        {"stat", &ret->stat_bytes, NULL},
        {"tmp", &ret->tmp_bytes, &ret->tmp_count},
        {"rootfs", &ret->rootfs_bytes, NULL},
    };

    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
        _cleanup_free_ char *p = fs_path_join(c->dir, parts[i].sub);
        uint64_t dummy = 0;

        du_dir(p, parts[i].bytes, parts[i].count ? parts[i].count : &dummy);
    }
    return 0;
}

/* Removes what dead processes left (at once: their leases are free), and
 * loose temporary files (from builds older than leases) after a day. */
static void clean_tmp(struct cache *c)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    time_t now = time(NULL);

    cache_lease_sweep(c);
    d = opendir(c->tmp);
    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d)) {
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && now - st.st_mtime > TMP_MAX_AGE)
            unlinkat(dirfd(d), de->d_name, 0);
    }
}

static bool is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Drops key entries whose blob is gone. */
static uint64_t drop_orphan_keys(struct cache *c)
{
    _cleanup_free_ char *keys = fs_path_join(c->dir, "keys");
    _cleanup_closedir_ DIR *d = opendir(keys);
    struct dirent *de;
    uint64_t n = 0;

    if (!d)
        return 0;
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_free_ char *sub = NULL;
        _cleanup_closedir_ DIR *d2 = NULL;
        struct dirent *e2;

        if (de->d_name[0] == '.')
            continue;
        sub = fs_path_join(keys, de->d_name);
        d2 = opendir(sub);
        if (!d2)
            continue;
        for (e2 = readdir(d2); e2; e2 = readdir(d2)) {
            _cleanup_free_ char *p = NULL;
            _cleanup_free_ char *buf = NULL;
            struct oci_digest dg;
            size_t len;
            json_t *j;
            bool keep = false;

            /* Only entries: a name.tmp-XXXXXX is an entry being written. */
            if (!is_hex64(e2->d_name))
                continue;
            p = fs_path_join(sub, e2->d_name);
            if (fs_read_file(p, 65536, &buf, &len, NULL) == 0) {
                j = json_loadb(buf, len, 0, NULL);
                if (oci_digest_parse(json_string_value(json_object_get(j, "digest")) ?: "",
                                     &dg, NULL) == 0) {
                    _cleanup_free_ char *blob = cache_blob_file(c, &dg);

                    keep = fs_exists(blob);
                }
                json_decref(j);
            }
            if (!keep && unlink(p) == 0)
                n++;
        }
    }
    return n;
}

/* Kept stage roots (rootfs/<hex>) can always be unpacked again: prune
 * removes those no live lease pins (stale_only: only what dead builds
 * left).  Called under the pins' lock, it only renames what goes to
 * gone-*, which remove_gone then deletes without the lock. */
static void prune_roots(struct cache *c, const struct cache_pins *pins, bool stale_only)
{
    _cleanup_free_ char *dir = fs_path_join(c->dir, "rootfs");
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);

    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_free_ char *gone = NULL;
        bool kept = is_hex64(de->d_name);
        struct stat st;

        if (de->d_name[0] == '.' || !strncmp(de->d_name, "gone-", 5))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        if (kept && (stale_only || cache_pins_has(pins, "root", de->d_name)))
            continue;
        /* A running build's own roots are named after its lease (the sweep
         * removes a dead one's); older builds' work-* and save-* are theirs
         * for a day. */
        if (!kept && (!strncmp(de->d_name, "work.", 5) ||
                      !strncmp(de->d_name, "save.", 5) || now - st.st_mtime <= TMP_MAX_AGE))
            continue;
        gone = xasprintf("%s/gone-XXXXXX", dir);
        if (mkdtemp(gone) && rmdir(gone) == 0)
            renameat(dirfd(d), de->d_name, AT_FDCWD, gone);
    }
}

static void remove_gone(struct cache *c)
{
    _cleanup_free_ char *dir = fs_path_join(c->dir, "rootfs");
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d))
        if (!strncmp(de->d_name, "gone-", 5))
            fs_rm_rf_at(dirfd(d), de->d_name, NULL);
}

/* The kernel's id of this boot into buf ("" when it cannot be read). */
static void boot_id(char *buf, size_t size)
{
    _cleanup_free_ char *id = NULL;
    size_t len;

    buf[0] = '\0';
    if (fs_read_file("/proc/sys/kernel/random/boot_id", 128, &id, &len, NULL) == 0)
        snprintf(buf, size, "%.*s", (int)strcspn(id, "\n"), id);
}

void cache_roots_this_boot(struct cache *c)
{
    _cleanup_free_ char *dir = fs_path_join(c->dir, "rootfs");
    _cleanup_free_ char *mark = fs_path_join(dir, ".boot");
    _cleanup_free_ char *old = NULL;
    struct cache_pins pins;
    char id[128];
    size_t len;

    boot_id(id, sizeof(id));
    if (!id[0] ||
        (fs_read_file(mark, sizeof(id), &old, &len, NULL) == 0 && !strcmp(old, id)))
        return;
    if (fs_mkdir_p(dir, 0700, NULL) < 0 || cache_pins_collect(c, &pins, NULL) < 0)
        return;
    free(old);
    old = NULL;
    /* Under the lock: the first process of this boot does it, once. */
    if (fs_read_file(mark, sizeof(id), &old, &len, NULL) < 0 || strcmp(old, id)) {
        prune_roots(c, &pins, false);
        fs_write_file_atomic(mark, id, strlen(id), 0600, NULL);
    }
    cache_pins_release(c, &pins);
    remove_gone(c);
}

struct blob_info {
    char hex[65];
    uint64_t bytes;
    struct timespec used;
};

static int cmp_lru(const void *a, const void *b)
{
    const struct blob_info *x = a, *y = b;

    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->hex, y->hex);
}

int cache_prune(struct cache *c, uint64_t keep_bytes, struct cache_prune_result *ret,
                struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = opendir(c->blobs);
    _cleanup_free_ struct blob_info *blobs = NULL;
    struct cache_pins pins;
    size_t n = 0, alloc = 0;
    uint64_t total = 0;
    struct dirent *de;

    memset(ret, 0, sizeof(*ret));
    if (!d)
        return ocib_error_errno(err, errno, "cannot read '%s'", c->blobs);
    /* Builds pin what they use before looking for it: from here on, a blob
     * either is pinned or, once removed, is found missing (lease.h). */
    if (cache_pins_collect(c, &pins, err) < 0)
        return ocib_error_wrap(err, "cache '%s'", c->dir);
    for (de = readdir(d); de; de = readdir(d)) {
        struct stat st;

        if (!is_hex64(de->d_name))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        XGROW(blobs, alloc, n + 1);
        memcpy(blobs[n].hex, de->d_name, 65);
        blobs[n].bytes = (uint64_t)st.st_size;
        blobs[n].used = st.st_atim;
        total += blobs[n].bytes;
        n++;
    }
    if (n)
        qsort(blobs, n, sizeof(*blobs), cmp_lru);
    for (size_t i = 0; i < n && total > keep_bytes; i++) {
        _cleanup_close_ int fd = -1;

        if (cache_pins_has(&pins, "blob", blobs[i].hex)) {
            ret->in_use_count++;
            continue;
        }
        /* A build older than leases holds its blobs with a shared flock. */
        fd = openat(dirfd(d), blobs[i].hex, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
            ret->in_use_count++;
            continue;
        }
        if (unlinkat(dirfd(d), blobs[i].hex, 0) == 0) {
            total -= blobs[i].bytes;
            ret->removed_bytes += blobs[i].bytes;
            ret->removed_count++;
        }
    }
    ret->kept_bytes = total;
    drop_orphan_keys(c);
    prune_roots(c, &pins, !(total > keep_bytes || keep_bytes == 0));
    cache_pins_release(c, &pins);
    remove_gone(c);
    clean_tmp(c);
    return 0;
}

int cache_blob_verify(struct cache *c, const struct oci_digest *d, struct ocib_error *err)
{
    _cleanup_free_ char *path = cache_blob_file(c, d);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct sha256 h;
    struct oci_digest got;

    if (fd < 0)
        return ocib_error_errno(err, errno, "blob %s", d->str);
    sha256_init(&h);
    if (fs_copy_fd(fd, -1, &h, NULL, err) < 0) {
        sha256_release(&h);
        return ocib_error_wrap(err, "blob %s", d->str);
    }
    oci_digest_from_sha256(&h, &got);
    if (oci_digest_equal(&got, d))
        return 0;
    unlink(path);
    return 1;
}

int cache_verify(struct cache *c, struct cache_verify_result *ret, struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = opendir(c->blobs);
    struct dirent *de;

    memset(ret, 0, sizeof(*ret));
    if (!d)
        return ocib_error_errno(err, errno, "cannot read '%s'", c->blobs);
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_free_ char *name = NULL;
        struct oci_digest dg;
        int rc;

        if (de->d_name[0] == '.')
            continue;
        name = xasprintf("sha256:%s", de->d_name);
        if (oci_digest_parse(name, &dg, NULL) < 0) {
            unlinkat(dirfd(d), de->d_name, 0); /* not a blob name: stray file */
            continue;
        }
        rc = cache_blob_verify(c, &dg, err);
        if (rc < 0)
            return -1;
        ret->checked++;
        if (rc == 1) {
            if (!ret->bad)
                snprintf(ret->first_bad, sizeof(ret->first_bad), "%s", dg.str);
            ret->bad++;
        }
    }
    ret->orphan_keys = drop_orphan_keys(c);
    clean_tmp(c);
    return 0;
}

/* The stamp of a blob file: what changes when anything writes to it. */
static void stamp_of(const struct stat *st, char *buf, size_t size)
{
    snprintf(buf, size, "%llu %llu %lld.%09ld\n", (unsigned long long)st->st_ino,
             (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec);
}

int cache_blob_verify_fast(struct cache *c, const struct oci_digest *d,
                           struct ocib_error *err)
{
    _cleanup_free_ char *path = cache_blob_path(c, d);
    _cleanup_free_ char *dir = fs_path_join(c->dir, "verified");
    _cleanup_free_ char *mark = xasprintf("%s/%s", dir, oci_digest_hex(d));
    _cleanup_free_ char *old = NULL;
    char stamp[128];
    struct stat st;
    size_t len;
    int rc;

    if (stat(path, &st) < 0)
        return ocib_error_errno(err, errno, "blob %s", d->str);
    stamp_of(&st, stamp, sizeof(stamp));
    if (fs_read_file(mark, sizeof(stamp), &old, &len, NULL) == 0 && !strcmp(old, stamp))
        return 0;
    rc = cache_blob_verify(c, d, err);
    if (rc == 0 && fs_mkdir_p(dir, 0700, NULL) == 0)
        fs_write_file_atomic(mark, stamp, strlen(stamp), 0600, NULL);
    return rc;
}
