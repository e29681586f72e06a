/*
 * Reading a layer blob checked and bounded; see unpack_stream.h.
 *
 * Design note.  A pass reads the blob through a pipeline of two libarchive
 * readers: the first reads the file through a callback that hashes and
 * counts the stored bytes, and decompresses them (any filter, "raw" format);
 * the second parses the tar from the first one's data through a callback
 * that hashes and counts the uncompressed bytes, stopping at the byte
 * limits.  So one decompression per pass yields the digest, the size, the
 * diff_id and the limits; whatever either reader leaves unread is read and
 * hashed at the end.  A callback cannot return an ocib_error: it keeps the
 * one it failed with in cb_err, which the caller of the reader then reports
 * instead of libarchive's message.
 */
#include "layers/unpack_stream.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

struct unpack_stream {
    int fd;
    struct archive *raw; /* decompresses the blob ("raw" format) */
    struct archive *tar; /* parses the tar raw decompressed */
    struct sha256 blob_h, tar_h;
    uint64_t blob_n, tar_n;
    const struct unpack_check *chk;
    const struct unpack_limits *limits;
    const char *digest, *path; /* for messages */
    struct ocib_error cb_err;  /* what a callback failed on */
    char in[READ_CHUNK], out[READ_CHUNK];
};

void unpack_stream_free(struct unpack_stream *s)
{
    if (!s)
        return;
    if (s->tar)
        archive_read_free(s->tar);
    if (s->raw)
        archive_read_free(s->raw);
    if (s->fd >= 0)
        close(s->fd);
    sha256_release(&s->blob_h);
    sha256_release(&s->tar_h);
    free(s);
}

struct archive *unpack_stream_tar(struct unpack_stream *s)
{
    return s->tar;
}

uint64_t unpack_stream_tar_bytes(const struct unpack_stream *s)
{
    return s->tar_n;
}

bool unpack_stream_failed(const struct unpack_stream *s, struct ocib_error *err)
{
    if (!s->cb_err.msg[0])
        return false;
    *err = s->cb_err;
    return true;
}

/* The blob as stored: hashed, counted, and cut off past its expected size. */
static la_ssize_t blob_read(struct archive *a, void *opaque, const void **ret)
{
    struct unpack_stream *s = opaque;
    ssize_t n;

    do
        n = read(s->fd, s->in, sizeof(s->in));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        ocib_error_errno(&s->cb_err, errno, "layer %s: cannot read '%s'", s->digest,
                         s->path);
        archive_set_error(a, EIO, "read error");
        return -1;
    }
    sha256_update(&s->blob_h, s->in, (size_t)n);
    s->blob_n += (uint64_t)n;
    if (s->chk && s->chk->size >= 0 && s->blob_n > (uint64_t)s->chk->size) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_INTEGRITY,
                            "layer %s: '%s' is larger than the %lld bytes its image says",
                            s->digest, s->path, (long long)s->chk->size);
        archive_set_error(a, EIO, "blob too large");
        return -1;
    }
    *ret = s->in;
    return n;
}

/* The uncompressed tar: hashed, counted, and cut off at the byte limits. */
static la_ssize_t tar_read(struct archive *a, void *opaque, const void **ret)
{
    struct unpack_stream *s = opaque;
    const struct unpack_limits *l = s->limits;
    la_ssize_t n = archive_read_data(s->raw, s->out, sizeof(s->out));

    if (n < 0) {
        if (!s->cb_err.msg[0])
            ocib_error_set(&s->cb_err, "layer %s: corrupt: %s", s->digest,
                           archive_error_string(s->raw));
        archive_set_error(a, EIO, "read error");
        return -1;
    }
    sha256_update(&s->tar_h, s->out, (size_t)n);
    s->tar_n += (uint64_t)n;
    if (s->tar_n > l->max_layer_bytes) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_LIMIT,
                            "layer %s: more than %llu bytes uncompressed (limit "
                            "OCIB_MAX_LAYER_BYTES)",
                            s->digest, (unsigned long long)l->max_layer_bytes);
        archive_set_error(a, EFBIG, "limit");
        return -1;
    }
    if (l->build_bytes + s->tar_n > l->max_build_bytes) {
        ocib_error_kind_set(&s->cb_err, OCIB_ERR_LIMIT,
                            "layer %s: the build's layers are more than %llu bytes "
                            "uncompressed (limit OCIB_MAX_BUILD_BYTES)",
                            s->digest, (unsigned long long)l->max_build_bytes);
        archive_set_error(a, EFBIG, "limit");
        return -1;
    }
    *ret = s->out;
    return n;
}

int unpack_stream_open(const char *path, const char *digest, const struct unpack_check *chk,
                       const struct unpack_limits *limits, struct unpack_stream **ret,
                       struct ocib_error *err)
{
    _cleanup_(unpack_stream_freep) struct unpack_stream *s = xcalloc(1, sizeof(*s));
    struct archive_entry *ae;

    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    s->chk = chk;
    s->limits = limits;
    s->digest = digest;
    s->path = path;
    sha256_init(&s->blob_h);
    sha256_init(&s->tar_h);
    if (s->fd < 0)
        return ocib_error_errno(err, errno, "layer %s: cannot open '%s'", digest, path);
    s->tar = archive_read_new();
    s->raw = archive_read_new();
    if (!s->tar || !s->raw)
        return ocib_error_set(err, "layer %s: out of memory", digest);
    archive_read_support_filter_all(s->raw);
    archive_read_support_format_raw(s->raw);
    if (archive_read_open(s->raw, s, NULL, blob_read, NULL) != ARCHIVE_OK ||
        archive_read_next_header(s->raw, &ae) != ARCHIVE_OK) {
        if (unpack_stream_failed(s, err))
            return -1;
        return ocib_error_set(err, "layer %s: cannot read '%s': %s", digest, path,
                              archive_error_string(s->raw));
    }
    archive_read_support_format_tar(s->tar);
    if (archive_read_open(s->tar, s, NULL, tar_read, NULL) != ARCHIVE_OK) {
        if (unpack_stream_failed(s, err))
            return -1;
        return ocib_error_set(err, "layer %s: cannot read '%s': %s", digest, path,
                              archive_error_string(s->tar));
    }
    *ret = TAKE_PTR(s);
    return 0;
}

int unpack_stream_next(struct unpack_stream *s, uint64_t count, struct archive_entry **ret,
                       struct ocib_error *err)
{
    uint64_t max = s->limits->max_layer_entries;

    /* ARCHIVE_WARN: e.g. a name the locale cannot convert; the raw name is kept. */
    int r = archive_read_next_header(s->tar, ret);

    if (r == ARCHIVE_EOF)
        return 0;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        if (unpack_stream_failed(s, err))
            return -1;
        return ocib_error_set(err, "layer %s: corrupt after %llu entries: %s", s->digest,
                              (unsigned long long)count, archive_error_string(s->tar));
    }
    if (count >= max)
        return ocib_error_kind_set(err, OCIB_ERR_LIMIT,
                                   "layer %s: more than %llu entries (limit "
                                   "OCIB_MAX_LAYER_ENTRIES)",
                                   s->digest, (unsigned long long)max);
    if (!archive_entry_pathname(*ret))
        return ocib_error_set(err, "layer %s: entry %llu has no name", s->digest,
                              (unsigned long long)count);
    return 1;
}

int unpack_stream_finish(struct unpack_stream *s, struct ocib_error *err)
{
    struct oci_digest blob, tar;
    const void *unused;

    /* The tar reader first (its reads feed the tar hash), then the blob. */
    la_ssize_t (*const drain[])(struct archive *, void *, const void **) = {tar_read,
                                                                            blob_read};

    for (size_t i = 0; i < 2; i++) {
        la_ssize_t n;

        do
            n = drain[i](s->raw, s, &unused);
        while (n > 0);
        if (n < 0) {
            *err = s->cb_err;
            return -1;
        }
    }
    oci_digest_from_sha256(&s->blob_h, &blob);
    oci_digest_from_sha256(&s->tar_h, &tar);
    if (!s->chk)
        return 0;
    if (s->chk->digest && !oci_digest_equal(&blob, s->chk->digest))
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "layer %s: '%s' does not match its digest (got %s)",
                                   s->digest, s->path, blob.str);
    if (s->chk->size >= 0 && s->blob_n != (uint64_t)s->chk->size)
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY, "layer %s: '%s' has %llu bytes, its image says %lld",
            s->digest, s->path, (unsigned long long)s->blob_n, (long long)s->chk->size);
    if (s->chk->diff_id && !oci_digest_equal(&tar, s->chk->diff_id))
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "layer %s: '%s' uncompressed is %s, but the image "
                                   "config's diff_id is %s",
                                   s->digest, s->path, tar.str, s->chk->diff_id->str);
    return 0;
}

void unpack_stream_blame_digest(const char *path, const char *digest,
                                const struct unpack_check *chk, struct ocib_error *err)
{
    _cleanup_close_ int fd = -1;
    struct oci_digest got;
    struct sha256 h;
    char buf[READ_CHUNK];
    ssize_t n;

    if (!chk || !chk->digest || ocib_error_kind(err) == OCIB_ERR_LIMIT ||
        ocib_error_kind(err) == OCIB_ERR_INTEGRITY)
        return;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    sha256_init(&h);
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        sha256_update(&h, buf, (size_t)n);
    }
    oci_digest_from_sha256(&h, &got);
    if (n == 0 && !oci_digest_equal(&got, chk->digest))
        ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                            "layer %s: '%s' does not match its digest (got %s)", digest,
                            path, got.str);
}
