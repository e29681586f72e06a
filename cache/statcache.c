/*
 * The stat cache; see statcache.h.
 *
 * On disk, a header line holding the SHA-256 of the rest, so that a file
 * damaged in any byte is ignored whole rather than trusted:
 *   ocib-stat-v2 <64 hex>\n
 * then one line per file:
 *   <64 hex> <dev> <ino> <size> <mtime ns> <ctime ns> <path length>:<path>\n
 * (times may be negative: files dated before 1970).  In memory, an
 * open-addressing hash table keyed by path.
 */
#include "cache/statcache.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAT_CACHE_MAX_BYTES (512 * 1024 * 1024)
#define STAT_CACHE_MAGIC "ocib-stat-v2 "
#define STAT_CACHE_HEADER_LEN (sizeof(STAT_CACHE_MAGIC) - 1 + SHA256_HEX_LEN + 1)

struct sc_entry {
    char *path;
    uint64_t dev, ino, size;
    int64_t mtime, ctime;
    char hex[SHA256_HEX_LEN + 1];
};

struct stat_cache {
    char *file;
    struct sc_entry *slots;
    size_t n, cap;
    bool dirty;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct sc_entry *slot_for(struct stat_cache *sc, const char *path)
{
    size_t i = hash_str(path) & (sc->cap - 1);

    while (sc->slots[i].path && strcmp(sc->slots[i].path, path))
        i = (i + 1) & (sc->cap - 1);
    return &sc->slots[i];
}

static void grow(struct stat_cache *sc)
{
    struct sc_entry *old = sc->slots;
    size_t old_cap = sc->cap;

    sc->cap = old_cap ? old_cap * 2 : 1024;
    sc->slots = xcalloc(sc->cap, sizeof(*sc->slots));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].path)
            *slot_for(sc, old[i].path) = old[i];
    free(old);
}

static void insert(struct stat_cache *sc, const struct sc_entry *e)
{
    struct sc_entry *s;

    if ((sc->n + 1) * 2 > sc->cap)
        grow(sc);
    s = slot_for(sc, e->path);
    if (s->path) {
        free(s->path);
    } else {
        sc->n++;
    }
    *s = *e;
}

static int64_t ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Reads an unsigned decimal number ending in a space (or ':' for the path
 * length); false on anything else. */
static bool read_num(const char **p, const char *end, char stop, unsigned long long *ret)
{
    unsigned long long n = 0;
    const char *q = *p;

    if (q >= end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        n = n * 10 + (unsigned long long)(*q - '0');
        q++;
    }
    if (q >= end || *q != stop)
        return false;
    *p = q + 1;
    *ret = n;
    return true;
}

/* The same for a number that may be negative. */
static bool read_signed(const char **p, const char *end, char stop, int64_t *ret)
{
    bool neg = *p < end && **p == '-';
    unsigned long long n;

    if (neg)
        (*p)++;
    if (!read_num(p, end, stop, &n) || n > (unsigned long long)INT64_MAX)
        return false;
    *ret = neg ? -(int64_t)n : (int64_t)n;
    return true;
}

/* Parses the entries in one linear pass (no sscanf: it would measure the rest
 * of the buffer on every line). */
static void parse(struct stat_cache *sc, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;

    while (p < end) {
        struct sc_entry e = {0};
        unsigned long long dev, ino, size, plen;

        if ((size_t)(end - p) < SHA256_HEX_LEN + 1 || p[SHA256_HEX_LEN] != ' ')
            return; /* a damaged tail is dropped */
        memcpy(e.hex, p, SHA256_HEX_LEN);
        e.hex[SHA256_HEX_LEN] = '\0';
        if (strspn(e.hex, "0123456789abcdef") != SHA256_HEX_LEN)
            return;
        p += SHA256_HEX_LEN + 1;
        if (!read_num(&p, end, ' ', &dev) || !read_num(&p, end, ' ', &ino) ||
            !read_num(&p, end, ' ', &size) || !read_signed(&p, end, ' ', &e.mtime) ||
            !read_signed(&p, end, ' ', &e.ctime) || !read_num(&p, end, ':', &plen) ||
            plen > (unsigned long long)(end - p))
            return;
        e.dev = dev;
        e.ino = ino;
        e.size = size;
        e.path = xstrndup(p, (size_t)plen);
        insert(sc, &e);
        p += plen;
        if (p < end && *p == '\n')
            p++;
    }
}

/* True when buf starts with the header and its digest is that of the rest. */
static bool checksum_ok(const char *buf, size_t len)
{
    const size_t magic = sizeof(STAT_CACHE_MAGIC) - 1;
    char hex[SHA256_HEX_LEN + 1];

    if (len < STAT_CACHE_HEADER_LEN || memcmp(buf, STAT_CACHE_MAGIC, magic) ||
        buf[STAT_CACHE_HEADER_LEN - 1] != '\n')
        return false;
    sha256_hex(buf + STAT_CACHE_HEADER_LEN, len - STAT_CACHE_HEADER_LEN, hex);
    return !memcmp(hex, buf + magic, SHA256_HEX_LEN);
}

struct stat_cache *stat_cache_load(struct cache *c, const char *abs_dir)
{
    struct stat_cache *sc = xcalloc(1, sizeof(*sc));
    char hex[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *dir = xasprintf("%s/stat", c->dir);
    _cleanup_free_ char *buf = NULL;
    size_t len;

    sha256_hex(abs_dir, strlen(abs_dir), hex);
    sc->file = xasprintf("%s/%s", dir, hex);
    grow(sc);
    fs_mkdir_p(dir, 0700, NULL);
    if (fs_read_file(sc->file, STAT_CACHE_MAX_BYTES, &buf, &len, NULL) == 0 &&
        checksum_ok(buf, len))
        parse(sc, buf + STAT_CACHE_HEADER_LEN, len - STAT_CACHE_HEADER_LEN);
    return sc;
}

void stat_cache_free(struct stat_cache *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->cap; i++)
        free(sc->slots[i].path);
    free(sc->slots);
    free(sc->file);
    free(sc);
}

const char *stat_cache_lookup(struct stat_cache *sc, const char *path,
                              const struct stat *st)
{
    struct sc_entry *e = slot_for(sc, path);

    if (!e->path || e->dev != (uint64_t)st->st_dev || e->ino != (uint64_t)st->st_ino ||
        e->size != (uint64_t)st->st_size || e->mtime != ns(&st->st_mtim) ||
        e->ctime != ns(&st->st_ctim))
        return NULL;
    return e->hex;
}

void stat_cache_put(struct stat_cache *sc, const char *path, const struct stat *st,
                    const char *hex)
{
    struct sc_entry e = {.path = xstrdup(path),
                         .dev = (uint64_t)st->st_dev,
                         .ino = (uint64_t)st->st_ino,
                         .size = (uint64_t)st->st_size,
                         .mtime = ns(&st->st_mtim),
                         .ctime = ns(&st->st_ctim)};

    memcpy(e.hex, hex, SHA256_HEX_LEN + 1);
    insert(sc, &e);
    sc->dirty = true;
}

int stat_cache_save(struct stat_cache *sc, struct ocib_error *err)
{
    struct strbuf sb = STRBUF_INIT;
    char hex[SHA256_HEX_LEN + 1];
    int r;

    if (!sc->dirty)
        return 0;
    /* The header's place, filled in once the entries are there. */
    strbuf_addstr(&sb, STAT_CACHE_MAGIC);
    strbuf_addf(&sb, "%*s\n", SHA256_HEX_LEN, "");
    for (size_t i = 0; i < sc->cap; i++) {
        const struct sc_entry *e = &sc->slots[i];
        char num[128];
        int n;

        if (!e->path)
            continue;
        strbuf_add(&sb, e->hex, SHA256_HEX_LEN);
        n = snprintf(num, sizeof(num),
                     " %llu %llu %llu %lld %lld %zu:", (unsigned long long)e->dev,
                     (unsigned long long)e->ino, (unsigned long long)e->size,
                     (long long)e->mtime, (long long)e->ctime, strlen(e->path));
        strbuf_add(&sb, num, (size_t)n);
        strbuf_addstr(&sb, e->path);
        strbuf_addch(&sb, '\n');
    }
    sha256_hex(sb.buf + STAT_CACHE_HEADER_LEN, sb.len - STAT_CACHE_HEADER_LEN, hex);
    memcpy(sb.buf + sizeof(STAT_CACHE_MAGIC) - 1, hex, SHA256_HEX_LEN);
    r = fs_write_file_atomic(sc->file, strbuf_str(&sb), sb.len, 0600, err);
    strbuf_release(&sb);
    if (r == 0)
        sc->dirty = false;
    return r;
}
