/*
 * gzip (zlib) and zstd (libzstd) stream compression; see compress.h.
 */
#include "layers/compress.h"
#include "base/xalloc.h"
#include "oci/mediatype.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define GZIP_LEVEL 6
#define ZSTD_LEVEL 3
/* Part of the output format: the multi-threaded frame is cut into jobs of
 * this size.  2 MiB keeps the buffers small. */
#define ZSTD_JOB_SIZE (2 * 1024 * 1024)

struct compressor {
    enum layer_compression kind;
    compress_sink_fn sink;
    void *opaque;
    unsigned char *out;
    z_stream z;
    gz_header gzh;
    ZSTD_CCtx *zc;
};

int layer_compression_parse(const char *s, enum layer_compression *ret, struct ocib_error *err)
{
    if (!strcmp(s, "gzip"))
        *ret = LAYER_COMPRESSION_GZIP;
    else if (!strcmp(s, "zstd"))
        *ret = LAYER_COMPRESSION_ZSTD;
    else
        return ocib_error_usage(err, "invalid compression '%s': expected gzip or zstd", s);
    return 0;
}

const char *layer_compression_name(enum layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_GZIP:
        return "gzip";
    case LAYER_COMPRESSION_ZSTD:
        return "zstd";
    default:
        return "none";
    }
}

const char *layer_compression_media_type(enum layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_GZIP:
        return OCI_MT_LAYER_GZIP;
    case LAYER_COMPRESSION_ZSTD:
        return OCI_MT_LAYER_ZSTD;
    default:
        return OCI_MT_LAYER_TAR;
    }
}

const char *layer_compression_settings(enum layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_GZIP:
        return "gzip;zlib-level=6;window=15;memlevel=8;strategy=default;mtime=0;os=255";
    case LAYER_COMPRESSION_ZSTD:
        return "zstd;level=3;checksum=0;mt=1;jobsize=2097152";
    default:
        return "none";
    }
}

/* One worker thread: compression runs beside the thread that reads and
 * hashes, and the multi-threaded format's bytes do not depend on the count
 * (any nbWorkers >= 1 gives the same output); more workers would multiply
 * the job buffers (8 MiB each at level 3) for little gain on small hosts. */
static int worker_count(void)
{
    return 1;
}

int compressor_new(enum layer_compression c, compress_sink_fn sink, void *opaque,
                   struct compressor **ret, struct ocib_error *err)
{
    struct compressor *z = xcalloc(1, sizeof(*z));

    z->kind = c;
    z->sink = sink;
    z->opaque = opaque;
    z->out = xmalloc(COMPRESS_OUT_CHUNK);
    if (c == LAYER_COMPRESSION_GZIP) {
        if (deflateInit2(&z->z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            goto fail;
        z->gzh.os = 255;
        z->gzh.time = 0;
        if (deflateSetHeader(&z->z, &z->gzh) != Z_OK)
            goto fail;
    } else if (c == LAYER_COMPRESSION_ZSTD) {
        z->zc = ZSTD_createCCtx();
        if (!z->zc ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_checksumFlag, 0)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_contentSizeFlag, 0)))
            goto fail;
        if (ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_nbWorkers, worker_count())) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_jobSize, ZSTD_JOB_SIZE))) {
            compressor_free(z);
            return ocib_error_set(err, "zstd: this libzstd lacks multi-threading, which "
                                       "ocib's zstd output format requires");
        }
    }
    *ret = z;
    return 0;
fail:
    compressor_free(z);
    return ocib_error_set(err, "cannot initialise the %s compressor", layer_compression_name(c));
}

static int gzip_run(struct compressor *z, const void *buf, size_t len, int flush,
                    struct ocib_error *err)
{
    int rc;

    z->z.next_in = (unsigned char *)buf;
    z->z.avail_in = (uInt)len;
    do {
        z->z.next_out = z->out;
        z->z.avail_out = COMPRESS_OUT_CHUNK;
        rc = deflate(&z->z, flush);
        if (rc == Z_STREAM_ERROR)
            return ocib_error_set(err, "gzip: compression failed");
        if (COMPRESS_OUT_CHUNK - z->z.avail_out > 0 &&
            z->sink(z->opaque, z->out, COMPRESS_OUT_CHUNK - z->z.avail_out, err) < 0)
            return -1;
    } while (z->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return 0;
}

static int zstd_run(struct compressor *z, const void *buf, size_t len, ZSTD_EndDirective mode,
                    struct ocib_error *err)
{
    ZSTD_inBuffer in = { buf, len, 0 };
    size_t left;

    do {
        ZSTD_outBuffer out = { z->out, COMPRESS_OUT_CHUNK, 0 };

        left = ZSTD_compressStream2(z->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return ocib_error_set(err, "zstd: %s", ZSTD_getErrorName(left));
        if (out.pos > 0 && z->sink(z->opaque, z->out, out.pos, err) < 0)
            return -1;
    } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    return 0;
}

int compressor_write(struct compressor *z, const void *buf, size_t len, struct ocib_error *err)
{
    switch (z->kind) {
    case LAYER_COMPRESSION_GZIP:
        while (len > 0) {
            size_t n = len > (1u << 30) ? (1u << 30) : len;

            if (gzip_run(z, buf, n, Z_NO_FLUSH, err) < 0)
                return -1;
            buf = (const char *)buf + n;
            len -= n;
        }
        return 0;
    case LAYER_COMPRESSION_ZSTD:
        return zstd_run(z, buf, len, ZSTD_e_continue, err);
    default:
        return z->sink(z->opaque, buf, len, err);
    }
}

int compressor_finish(struct compressor *z, struct ocib_error *err)
{
    switch (z->kind) {
    case LAYER_COMPRESSION_GZIP:
        return gzip_run(z, NULL, 0, Z_FINISH, err);
    case LAYER_COMPRESSION_ZSTD:
        return zstd_run(z, NULL, 0, ZSTD_e_end, err);
    default:
        return 0;
    }
}

void compressor_free(struct compressor *z)
{
    if (!z)
        return;
    if (z->kind == LAYER_COMPRESSION_GZIP)
        deflateEnd(&z->z);
    ZSTD_freeCCtx(z->zc);
    free(z->out);
    free(z);
}
