/*
 * Streaming layer tar reader; see tar_reader.h.
 */
#include "layers/tar_reader.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK (64 * 1024)

struct tar_reader {
    struct archive *a;
    char *buf; /* READ_CHUNK bytes for content */
    size_t count;
    bool eof;
    char format[64];
    const char *const *keep; /* paths whose content the entry keeps */
    bool (*keep_fn)(const char *path, void *opaque); /* or those it says */
    void *keep_opaque;
    size_t keep_max;
};

void tar_entry_release(struct tar_entry *e)
{
    if (!e)
        return;
    free(e->path);
    free(e->name);
    free(e->uname);
    free(e->gname);
    free(e->link);
    free(e->xattrs);
    free(e->data);
    memset(e, 0, sizeof(*e));
}

static struct tar_reader *reader_new(void)
{
    struct tar_reader *r = xcalloc(1, sizeof(*r));

    r->a = archive_read_new();
    if (!r->a) {
        free(r);
        return NULL;
    }
    archive_read_support_filter_all(r->a);
    archive_read_support_format_tar(r->a);
    r->buf = xmalloc(READ_CHUNK);
    return r;
}

int tar_reader_open_file(const char *path, struct tar_reader **ret, struct ocib_error *err)
{
    struct tar_reader *r = reader_new();

    if (!r)
        return ocib_error_set(err, "'%s': cannot start libarchive", path);
    if (archive_read_open_filename(r->a, path, READ_CHUNK) != ARCHIVE_OK) {
        ocib_error_set(err, "'%s': cannot read: %s", path, archive_error_string(r->a));
        tar_reader_free(r);
        return -1;
    }
    *ret = r;
    return 0;
}

int tar_reader_open_memory(const void *buf, size_t len, struct tar_reader **ret,
                           struct ocib_error *err)
{
    struct tar_reader *r = reader_new();

    if (!r)
        return ocib_error_set(err, "cannot start libarchive");
    if (archive_read_open_memory(r->a, buf, len) != ARCHIVE_OK) {
        ocib_error_set(err, "cannot read layer: %s", archive_error_string(r->a));
        tar_reader_free(r);
        return -1;
    }
    *ret = r;
    return 0;
}

static char type_of(mode_t ft)
{
    switch (ft) {
    case AE_IFREG:
        return '-';
    case AE_IFDIR:
        return 'd';
    case AE_IFLNK:
        return 'l';
    case AE_IFCHR:
        return 'c';
    case AE_IFBLK:
        return 'b';
    case AE_IFIFO:
        return 'p';
    default:
        return '?';
    }
}

/* "a/b" from "./a/b", "/a/b/", "a//b" stays as is apart from its ends. */
static char *normalise(const char *name)
{
    size_t n;

    for (;;) {
        if (name[0] == '/')
            name++;
        else if (name[0] == '.' && name[1] == '/')
            name += 2;
        else
            break;
    }
    n = strlen(name);
    while (n > 0 && name[n - 1] == '/')
        n--;
    if (n == 1 && name[0] == '.')
        n = 0;
    return xstrndup(name, n);
}

struct xattr {
    const char *name;
    const void *value;
    size_t size;
};

static int xattr_cmp(const void *x, const void *y)
{
    return strcmp(((const struct xattr *)x)->name, ((const struct xattr *)y)->name);
}

/* The entry's xattrs as sorted "name=value" lines, or NULL when none. */
static int read_xattrs(struct archive_entry *ae, const char *path, char **ret,
                       struct ocib_error *err)
{
    _cleanup_free_ struct xattr *v = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    size_t n = 0, alloc = 0;
    struct xattr x;

    if (archive_entry_xattr_reset(ae) == 0) {
        *ret = NULL;
        return 0;
    }
    while (archive_entry_xattr_next(ae, &x.name, &x.value, &x.size) == ARCHIVE_OK) {
        XGROW(v, alloc, n + 1);
        v[n++] = x;
    }
    if (n)
        qsort(v, n, sizeof(*v), xattr_cmp);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = v[i].value;
        bool printable = true;

        /* pax archives may carry the same attribute twice (SCHILY.xattr and
         * LIBARCHIVE.xattr records); it is one attribute. */
        if (i > 0 && !strcmp(v[i].name, v[i - 1].name) && v[i].size == v[i - 1].size &&
            !memcmp(v[i].value, v[i - 1].value, v[i].size))
            continue;
        for (size_t k = 0; k < v[i].size && printable; k++)
            printable = p[k] >= 0x20 && p[k] < 0x7f;
        strbuf_addf(&sb, "%s%s=", sb.len ? "\n" : "", v[i].name);
        if (printable) {
            strbuf_add(&sb, p, v[i].size);
        } else {
            strbuf_addstr(&sb, "0x");
            for (size_t k = 0; k < v[i].size; k++)
                strbuf_addf(&sb, "%02x", p[k]);
        }
        if (sb.len > TAR_READER_MAX_XATTRS)
            return ocib_error_set(err, "'%s': extended attributes exceed %d bytes", path,
                                  TAR_READER_MAX_XATTRS);
    }
    *ret = strbuf_detach(&sb);
    return 0;
}

/* A copy of s, or NULL when s is absent or empty (ustar's empty fields). */
static char *dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static bool kept(const struct tar_reader *r, const char *path)
{
    for (const char *const *p = r->keep; p && *p; p++)
        if (!strcmp(*p, path))
            return true;
    return r->keep_fn && r->keep_fn(path, r->keep_opaque);
}

/* Hashes the entry's content (and keeps it when asked); the size read must
 * match the header's. */
static int hash_content(struct tar_reader *r, struct tar_entry *e, struct ocib_error *err)
{
    struct sha256 h;
    int64_t total = 0;

    if (kept(r, e->path)) {
        if (e->size < 0 || (uint64_t)e->size > r->keep_max)
            return ocib_error_kind_set(err, OCIB_ERR_LIMIT,
                                       "'%s': %lld bytes, more than the %zu this reader "
                                       "keeps",
                                       e->name, (long long)e->size, r->keep_max);
        e->data = xmalloc((size_t)e->size + 1);
    }

    sha256_init(&h);
    for (;;) {
        la_ssize_t n = archive_read_data(r->a, r->buf, READ_CHUNK);

        if (n < 0) {
            sha256_release(&h);
            return ocib_error_set(err, "'%s': %s", e->name, archive_error_string(r->a));
        }
        if (n == 0)
            break;
        if (e->data && total + n <= e->size)
            memcpy(e->data + total, r->buf, (size_t)n);
        sha256_update(&h, r->buf, (size_t)n);
        total += n;
    }
    if (total != e->size) {
        sha256_release(&h);
        return ocib_error_set(err, "'%s': truncated content (%lld of %lld bytes)", e->name,
                              (long long)total, (long long)e->size);
    }
    oci_digest_from_sha256(&h, &e->content);
    if (e->data) {
        e->data[total] = '\0';
        e->data_len = (size_t)total;
    }
    return 0;
}

int tar_reader_next(struct tar_reader *r, struct tar_entry *ret, struct ocib_error *err)
{
    struct tar_entry e;
    struct archive_entry *ae;
    const char *name, *link;
    int rc;

    if (r->eof)
        return 0;
    rc = archive_read_next_header(r->a, &ae);
    if (rc == ARCHIVE_EOF) {
        r->eof = true;
        return 0;
    }
    /* ARCHIVE_WARN: e.g. a name the locale cannot convert; the raw name is kept. */
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
        return ocib_error_set(err, "corrupt layer after %zu entries: %s", r->count,
                              archive_error_string(r->a));
    if (r->count >= TAR_READER_MAX_ENTRIES)
        return ocib_error_set(err, "layer has more than %d entries",
                              TAR_READER_MAX_ENTRIES);
    snprintf(r->format, sizeof(r->format), "%s", archive_format_name(r->a) ?: "tar");
    name = archive_entry_pathname(ae);
    if (!name)
        return ocib_error_set(err, "entry %zu has no name", r->count);
    if (strlen(name) > TAR_READER_MAX_PATH)
        return ocib_error_set(err, "entry %zu: name longer than %d bytes", r->count,
                              TAR_READER_MAX_PATH);
    memset(&e, 0, sizeof(e));
    e.name = xstrdup(name);
    e.path = normalise(name);
    e.seq = r->count++;
    link = archive_entry_hardlink(ae);
    if (link) {
        e.type = 'h';
    } else {
        e.type = type_of(archive_entry_filetype(ae));
        link = archive_entry_symlink(ae);
    }
    if (link && strlen(link) > TAR_READER_MAX_PATH) {
        ocib_error_set(err, "'%s': link target longer than %d bytes", name,
                       TAR_READER_MAX_PATH);
        goto fail;
    }
    e.link = dup_or_null(link);
    e.mode = archive_entry_perm(ae) & 07777;
    e.uid = archive_entry_uid(ae);
    e.gid = archive_entry_gid(ae);
    e.uname = dup_or_null(archive_entry_uname(ae));
    e.gname = dup_or_null(archive_entry_gname(ae));
    if (archive_entry_mtime_is_set(ae)) {
        e.mtime = archive_entry_mtime(ae);
        e.mtime_nsec = archive_entry_mtime_nsec(ae);
    }
    e.size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
    if (read_xattrs(ae, name, &e.xattrs, err) < 0)
        goto fail;
    if (e.type == '-' && hash_content(r, &e, err) < 0)
        goto fail;
    *ret = e;
    return 1;
fail:
    tar_entry_release(&e);
    return -1;
}

void tar_reader_keep(struct tar_reader *r, const char *const *paths, size_t max)
{
    r->keep = paths;
    r->keep_max = max;
}

void tar_reader_keep_fn(struct tar_reader *r, bool (*fn)(const char *path, void *opaque),
                        void *opaque, size_t max)
{
    r->keep_fn = fn;
    r->keep_opaque = opaque;
    r->keep_max = max;
}

const char *tar_reader_format(struct tar_reader *r)
{
    return r->format;
}

void tar_reader_free(struct tar_reader *r)
{
    if (!r)
        return;
    archive_read_free(r->a);
    free(r->buf);
    free(r);
}
