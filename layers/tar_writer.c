/*
 * Deterministic tar layer writer; see tar_writer.h.
 */
#include "layers/tar_writer.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAR_BUF_SIZE (1024 * 1024)
#define READ_CHUNK (256 * 1024)

struct layer_writer {
    struct archive *a;
    struct archive_entry *entry;
    struct compressor *z;
    struct sha256 diff_id;
    struct sha256 digest;
    int out_fd;
    int64_t mtime;
    uint64_t size, tar_size;
    _Atomic uint64_t tar_seen; /* tar_size, for a reader in another thread */
    enum layer_compression kind;
    /* Coalesces libarchive's small writes before hashing and compressing. */
    unsigned char *buf;
    size_t buf_len;
    char *read_buf;
    struct ocib_error stream_err; /* failure inside a libarchive callback */
    bool failed;
};

static int sink_out(void *opaque, const void *buf, size_t len, struct ocib_error *err)
{
    struct layer_writer *w = opaque;

    sha256_update(&w->digest, buf, len);
    w->size += len;
    if (fs_write_all(w->out_fd, buf, len, err) < 0)
        return ocib_error_wrap(err, "cannot write the layer");
    return 0;
}

static int flush_buf(struct layer_writer *w, struct ocib_error *err)
{
    if (w->buf_len == 0)
        return 0;
    sha256_update(&w->diff_id, w->buf, w->buf_len);
    w->tar_size += w->buf_len;
    atomic_store_explicit(&w->tar_seen, w->tar_size, memory_order_relaxed);
    if (compressor_write(w->z, w->buf, w->buf_len, err) < 0)
        return -1;
    w->buf_len = 0;
    return 0;
}

static la_ssize_t archive_write_cb(struct archive *a, void *opaque, const void *data,
                                   size_t len)
{
    struct layer_writer *w = opaque;
    const char *p = data;
    size_t left = len;

    while (left > 0) {
        size_t n = TAR_BUF_SIZE - w->buf_len;

        if (n > left)
            n = left;
        memcpy(w->buf + w->buf_len, p, n);
        w->buf_len += n;
        p += n;
        left -= n;
        if (w->buf_len == TAR_BUF_SIZE && flush_buf(w, &w->stream_err) < 0) {
            w->failed = true;
            archive_set_error(a, EIO, "%s", w->stream_err.msg);
            return -1;
        }
    }
    return (la_ssize_t)len;
}

int layer_writer_new(int out_fd, enum layer_compression c, int64_t mtime,
                     struct layer_writer **ret, struct ocib_error *err)
{
    struct layer_writer *w = xcalloc(1, sizeof(*w));

    w->out_fd = out_fd;
    w->mtime = mtime;
    w->kind = c;
    w->buf = xmalloc(TAR_BUF_SIZE);
    w->read_buf = xmalloc(READ_CHUNK);
    sha256_init(&w->diff_id);
    sha256_init(&w->digest);
    if (compressor_new(c, sink_out, w, &w->z, err) < 0) {
        layer_writer_free(w);
        return -1;
    }
    w->a = archive_write_new();
    w->entry = archive_entry_new();
    /* Extended attributes (file capabilities) as SCHILY records only, as
     * Docker writes them: one way, whatever libarchive's default. */
    if (!w->a || !w->entry || archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
        archive_write_set_format_option(w->a, "pax", "xattrheader", "SCHILY") !=
            ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
        archive_write_open2(w->a, w, NULL, archive_write_cb, NULL, NULL) != ARCHIVE_OK) {
        ocib_error_set(err, "cannot start a tar stream: %s",
                       w->a ? archive_error_string(w->a) : "out of memory");
        layer_writer_free(w);
        return -1;
    }
    *ret = w;
    return 0;
}

static int archive_fail(struct layer_writer *w, const char *what, const char *path,
                        struct ocib_error *err)
{
    if (w->failed) {
        *err = w->stream_err;
        return ocib_error_wrap(err, "%s", path);
    }
    return ocib_error_set(err, "%s: %s: %s", path, what, archive_error_string(w->a));
}

static int write_header(struct layer_writer *w, const struct layer_entry *e,
                        struct ocib_error *err)
{
    struct archive_entry *ae = w->entry;

    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, e->path);
    archive_entry_set_uid(ae, e->uid);
    archive_entry_set_gid(ae, e->gid);
    archive_entry_set_mtime(ae, w->mtime, 0);
    if (e->hardlink) {
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, e->mode & 07777);
        archive_entry_set_hardlink(ae, e->link);
        archive_entry_set_size(ae, 0);
    } else {
        archive_entry_set_mode(ae, e->mode);
        if (S_ISLNK(e->mode))
            archive_entry_set_symlink(ae, e->link);
        archive_entry_set_size(ae, S_ISREG(e->mode) ? (la_int64_t)e->size : 0);
        if (e->caps && S_ISREG(e->mode))
            archive_entry_xattr_add_entry(ae, "security.capability", e->caps, e->caps_len);
    }
    if (archive_write_header(w->a, ae) != ARCHIVE_OK)
        return archive_fail(w, "cannot write tar header", e->path, err);
    return 0;
}

int layer_writer_add(struct layer_writer *w, const struct layer_entry *e,
                     struct ocib_error *err)
{
    if (S_ISREG(e->mode) && !e->hardlink && e->size)
        return ocib_error_set(err, "%s: internal error: file content missing", e->path);
    return write_header(w, e, err);
}

int layer_writer_add_data(struct layer_writer *w, const struct layer_entry *e,
                          const void *data, struct ocib_error *err)
{
    if (write_header(w, e, err) < 0)
        return -1;
    if (e->size && archive_write_data(w->a, data, e->size) != (la_ssize_t)e->size)
        return archive_fail(w, "cannot write tar data", e->path, err);
    return 0;
}

int layer_writer_add_fd(struct layer_writer *w, const struct layer_entry *e, int fd,
                        struct sha256 *content, struct ocib_error *err)
{
    uint64_t left = e->size;

    if (write_header(w, e, err) < 0)
        return -1;
    while (left > 0) {
        size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        ssize_t n = read(fd, w->read_buf, want);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ocib_error_errno(err, errno, "cannot read '%s'", e->path);
        }
        if (n == 0)
            return ocib_error_set(err, "'%s' shrank while being read", e->path);
        if (content)
            sha256_update(content, w->read_buf, (size_t)n);
        if (archive_write_data(w->a, w->read_buf, (size_t)n) != n)
            return archive_fail(w, "cannot write tar data", e->path, err);
        left -= (uint64_t)n;
    }
    if (read(fd, w->read_buf, 1) > 0)
        return ocib_error_set(err, "'%s' grew while being read", e->path);
    return 0;
}

int layer_writer_finish(struct layer_writer *w, struct layer_result *ret,
                        struct ocib_error *err)
{
    if (archive_write_close(w->a) != ARCHIVE_OK)
        return archive_fail(w, "cannot finish the tar stream", "layer", err);
    if (flush_buf(w, err) < 0 || compressor_finish(w->z, err) < 0)
        return -1;
    oci_digest_from_sha256(&w->diff_id, &ret->diff_id);
    oci_digest_from_sha256(&w->digest, &ret->digest);
    ret->size = w->size;
    ret->tar_size = w->tar_size;
    ret->media_type = layer_compression_media_type(w->kind);
    return 0;
}

uint64_t layer_writer_tar_bytes(struct layer_writer *w)
{
    return atomic_load_explicit(&w->tar_seen, memory_order_relaxed);
}

void layer_writer_free(struct layer_writer *w)
{
    if (!w)
        return;
    if (w->a)
        archive_write_free(w->a);
    if (w->entry)
        archive_entry_free(w->entry);
    compressor_free(w->z);
    sha256_release(&w->diff_id);
    sha256_release(&w->digest);
    free(w->buf);
    free(w->read_buf);
    free(w);
}
