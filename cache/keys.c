/*
 * Layer-key cache entries; see keys.h.
 */
#include "cache/keys.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_MAX (64 * 1024)
#define RECORD_MAX (64 * 1024 * 1024)

static char *entry_path(struct cache *c, const char *kind, const char *hex)
{
    return xasprintf("%s/%s/%.2s/%s", c->dir, kind, hex, hex);
}

static int write_entry(struct cache *c, const char *kind, const char *hex, const char *data,
                       size_t len, struct ocib_error *err)
{
    _cleanup_free_ char *path = entry_path(c, kind, hex);
    char *slash = strrchr(path, '/');

    *slash = '\0';
    if (fs_mkdir_p(path, 0700, err) < 0)
        return -1;
    *slash = '/';
    return fs_write_file_atomic(path, data, len, 0600, err);
}

int cache_key_get(struct cache *c, const struct oci_digest *key, struct cache_layer *ret,
                  struct ocib_error *err)
{
    _cleanup_free_ char *path = entry_path(c, "keys", oci_digest_hex(key));
    _cleanup_free_ char *buf = NULL;
    json_t *j;
    size_t len;
    struct cache_layer l;
    const char *mt;
    int hit = 0;

    if (!fs_exists(path))
        return 0;
    if (fs_read_file(path, ENTRY_MAX, &buf, &len, NULL) < 0)
        return 0;
    j = json_loadb(buf, len, 0, NULL);
    mt = json_string_value(json_object_get(j, "mediaType"));
    memset(&l, 0, sizeof(l));
    if (mt && strlen(mt) < sizeof(l.media_type) &&
        oci_digest_parse(json_string_value(json_object_get(j, "digest")) ?: "", &l.digest,
                         NULL) == 0 &&
        oci_digest_parse(json_string_value(json_object_get(j, "diff_id")) ?: "", &l.diff_id,
                         NULL) == 0 &&
        json_is_integer(json_object_get(j, "size"))) {
        snprintf(l.media_type, sizeof(l.media_type), "%s", mt);
        l.size = json_integer_value(json_object_get(j, "size"));
        l.entries = json_is_integer(json_object_get(j, "entries"))
                        ? json_integer_value(json_object_get(j, "entries"))
                        : -1;
        hit = cache_blob_exists(c, &l.digest);
    }
    json_decref(j);
    if (!hit) {
        unlink(path); /* broken or orphaned: never served */
        return 0;
    }
    *ret = l;
    return 1;
}

int cache_key_put(struct cache *c, const struct oci_digest *key,
                  const struct cache_layer *l, struct ocib_error *err)
{
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:s}", "digest", l->digest.str, "diff_id",
                  l->diff_id.str, "size", (json_int_t)l->size, "mediaType", l->media_type);

    char *s;
    int r;

    if (l->entries >= 0)
        json_object_set_new(j, "entries", json_integer((json_int_t)l->entries));
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    r = write_entry(c, "keys", oci_digest_hex(key), s, strlen(s), err);

    free(s);
    json_decref(j);
    return r;
}

bool cache_def_seen(struct cache *c, const struct oci_digest *def)
{
    _cleanup_free_ char *path = entry_path(c, "defs", oci_digest_hex(def));

    return fs_exists(path);
}

int cache_def_mark(struct cache *c, const struct oci_digest *def, struct ocib_error *err)
{
    return write_entry(c, "defs", oci_digest_hex(def), "", 0, err);
}

json_t *cache_record_get(struct cache *c, const char *slot)
{
    char hex[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t len;

    sha256_hex(slot, strlen(slot), hex);
    path = entry_path(c, "records", hex);
    if (fs_read_file(path, RECORD_MAX, &buf, &len, NULL) < 0)
        return NULL;
    return json_loadb(buf, len, 0, NULL);
}

int cache_record_put(struct cache *c, const char *slot, const json_t *record,
                     struct ocib_error *err)
{
    char hex[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *keyhex = NULL;
    const char *key = json_string_value(json_object_get(record, "key"));
    char *s = json_dumps(record, JSON_COMPACT);
    int r;

    sha256_hex(slot, strlen(slot), hex);
    r = write_entry(c, "records", hex, s, strlen(s), err);
    free(s);
    /* The key alone, so that a hit can tell cheaply whether the record
     * already describes it. */
    keyhex = xasprintf("%s.key", hex);
    if (r == 0 && key)
        r = write_entry(c, "records", keyhex, key, strlen(key), err);
    return r;
}

bool cache_record_has_key(struct cache *c, const char *slot, const struct oci_digest *key)
{
    char hex[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *keyhex = NULL;
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t len;

    sha256_hex(slot, strlen(slot), hex);
    keyhex = xasprintf("%s.key", hex);
    path = entry_path(c, "records", keyhex);
    return fs_read_file(path, 128, &buf, &len, NULL) == 0 && !strcmp(buf, key->str);
}

int cache_lock(struct cache *c, const struct oci_digest *key, int *ret_fd,
               struct ocib_error *err)
{
    _cleanup_free_ char *dir = xasprintf("%s/locks", c->dir);
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, oci_digest_hex(key));
    int fd;

    if (fs_mkdir_p(dir, 0700, err) < 0)
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open lock '%s'", path);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;

            close(fd);
            return ocib_error_errno(err, e, "cannot lock '%s'", path);
        }
    }
    *ret_fd = fd;
    return 0;
}

void cache_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int cache_blob_hold(struct cache *c, const struct oci_digest *d)
{
    _cleanup_free_ char *path = cache_blob_path(c, d);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    flock(fd, LOCK_SH | LOCK_NB);
    /* The last use is the access time (prune's LRU order); the modification
     * time is left alone, as cache_blob_verify_fast relies on it. */
    {
        struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};

        futimens(fd, ts);
    }
    return fd;
}
