/*
 * gzip (zlib) and zstd (libzstd) stream compression; see compress.h.
 *
 * Design note on gzip.  The stream is cut into GZIP_BLOCK-byte blocks, a
 * constant of the output format.  Each block is raw-deflated on its own by a
 * worker thread, primed with the last GZIP_DICT bytes of the block before it,
 * and ended with a sync flush (the last block with Z_FINISH), so that the
 * blocks' outputs simply concatenate; this is pigz's method.  A block's bytes
 * depend only on its data and its dictionary, never on which worker ran it or
 * how many there are.  The caller's thread fills blocks, hands them out in
 * order and emits the finished ones in order, behind the gzip header and
 * before the trailer, whose CRC-32 it combines from the blocks' CRCs.  A ring
 * of 2 * workers + 2 blocks bounds the memory: when the ring is full the
 * caller waits for the oldest block and emits it.
 */
#include "layers/compress.h"
#include "base/xalloc.h"
#include "oci/mediatype.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define GZIP_LEVEL 6
/* Part of the output format: the uncompressed stream is cut into blocks of
 * this size, each primed with the previous block's last GZIP_DICT bytes. */
#define GZIP_BLOCK (128 * 1024)
#define GZIP_DICT (32 * 1024)
#define GZIP_HEADER_LEN 10
#define GZIP_TRAILER_LEN 8
/* Worker threads by default: the online CPUs, at most this many. */
#define GZIP_MAX_WORKERS 4
/* OCIB_GZIP_WORKERS may ask for up to this many (tests prove that the bytes
 * do not depend on the count). */
#define GZIP_MAX_WORKERS_ENV 16
#define ZSTD_LEVEL 3
/* Part of the output format: the multi-threaded frame is cut into jobs of
 * this size.  2 MiB keeps the buffers small. */
#define ZSTD_JOB_SIZE (2 * 1024 * 1024)

/* The fixed gzip header: no name, no comment, mtime 0, XFL 0, OS 255. */
static const unsigned char gzip_header[GZIP_HEADER_LEN] = {0x1f, 0x8b, 8, 0, 0,
                                                           0,    0,    0, 0, 255};

struct gz_block {
    unsigned char *in; /* GZIP_DICT bytes of dictionary, then GZIP_BLOCK of data */
    size_t dict_len, len;
    unsigned char *out; /* the header (first block), then raw deflate */
    size_t out_len, out_cap;
    uLong crc; /* of the data */
    bool first, last;
    /* Under gz_pool.lock: set by the worker when out, crc and failed are final. */
    bool done;
    bool failed;
};

struct gz_worker {
    struct gz_pool *pool;
    z_stream s;
    bool s_ready;
    pthread_t thread;
    bool started;
};

struct gz_pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a block was queued, or stop */
    pthread_cond_t done; /* a block is done */
    struct gz_block *blocks;
    size_t nblocks;
    /* Block sequence numbers; block s lives in blocks[s % nblocks].  Under
     * lock: queued (written by the caller) and taken.  Caller only: emitted;
     * block `queued` is the one being filled once filling is set. */
    uint64_t queued, taken, emitted;
    bool filling;
    bool stop;
    struct gz_worker *workers;
    size_t nworkers;
    unsigned char dict[GZIP_DICT]; /* the last GZIP_DICT bytes queued */
    size_t dict_len;
    uLong crc;
    uint64_t total;
};

struct compressor {
    enum layer_compression kind;
    compress_sink_fn sink;
    void *opaque;
    unsigned char *out;
    struct gz_pool *gz;
    ZSTD_CCtx *zc;
    /* A gzip failure is sticky: later calls return it again. */
    bool failed;
    struct ocib_error fail_err;
};

int layer_compression_parse(const char *s, enum layer_compression *ret,
                            struct ocib_error *err)
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
        return "gzip;zlib-level=6;window=15;memlevel=8;strategy=default;raw-blocks=131072;"
               "dict=32768;sync-flush;mtime=0;os=255";
    case LAYER_COMPRESSION_ZSTD:
        return "zstd;level=3;checksum=0;mt=1;jobsize=2097152";
    default:
        return "none";
    }
}

/* zstd workers: the online CPUs, at most 4.  The multi-threaded format's
 * bytes do not depend on the count (any nbWorkers >= 1 gives the same
 * output), and with 2 MiB jobs each worker costs a few MiB. */
static int worker_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

/* The online CPUs, between 1 and GZIP_MAX_WORKERS, unless OCIB_GZIP_WORKERS
 * holds a count from 1 to GZIP_MAX_WORKERS_ENV.  Only the speed and the
 * memory depend on it, never the bytes. */
static size_t gzip_worker_count(void)
{
    const char *env = getenv("OCIB_GZIP_WORKERS");
    long n;

    if (env && *env) {
        char *end;

        n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= GZIP_MAX_WORKERS_ENV)
            return (size_t)n;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > GZIP_MAX_WORKERS ? GZIP_MAX_WORKERS : (size_t)n;
}

/* ---- gzip: workers --------------------------------------------------- */

/* Raw-deflates b's data into b->out; false if zlib fails. */
static bool gz_deflate_block(z_stream *s, struct gz_block *b)
{
    int flush = b->last ? Z_FINISH : Z_SYNC_FLUSH;
    size_t pos = 0;
    int rc;

    if (b->first) {
        memcpy(b->out, gzip_header, GZIP_HEADER_LEN);
        pos = GZIP_HEADER_LEN;
    }
    if (deflateReset(s) != Z_OK)
        return false;
    if (b->dict_len > 0 && deflateSetDictionary(s, b->in, (uInt)b->dict_len) != Z_OK)
        return false;
    s->next_in = b->in + GZIP_DICT;
    s->avail_in = (uInt)b->len;
    for (;;) {
        /* out_cap is deflateBound() plus slack, so this never grows in
         * practice; the bytes would not change if it did. */
        if (b->out_cap - pos < 64) {
            b->out_cap *= 2;
            b->out = xrealloc(b->out, b->out_cap);
        }
        s->next_out = b->out + pos;
        s->avail_out = (uInt)(b->out_cap - pos);
        rc = deflate(s, flush);
        pos = b->out_cap - s->avail_out;
        if (rc == Z_STREAM_ERROR)
            return false;
        if (b->last ? rc == Z_STREAM_END : s->avail_out != 0)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return false;
    }
    b->out_len = pos;
    b->crc = crc32(0L, b->in + GZIP_DICT, (uInt)b->len);
    return true;
}

static void *gz_worker_main(void *arg)
{
    struct gz_worker *w = arg;
    struct gz_pool *p = w->pool;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct gz_block *b;
        bool ok;

        while (!p->stop && p->taken == p->queued)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        b = &p->blocks[p->taken % p->nblocks];
        p->taken++;
        pthread_mutex_unlock(&p->lock);
        ok = gz_deflate_block(&w->s, b);
        pthread_mutex_lock(&p->lock);
        b->failed = !ok;
        b->done = true;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void gz_pool_free(struct gz_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->nworkers; i++) {
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
        if (p->workers[i].s_ready)
            deflateEnd(&p->workers[i].s);
    }
    for (size_t i = 0; i < p->nblocks; i++) {
        free(p->blocks[i].in);
        free(p->blocks[i].out);
    }
    free(p->blocks);
    free(p->workers);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int gz_pool_new(struct gz_pool **ret, struct ocib_error *err)
{
    struct gz_pool *p = xcalloc(1, sizeof(*p));
    size_t out_cap;

    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->nworkers = gzip_worker_count();
    p->workers = xcalloc(p->nworkers, sizeof(*p->workers));
    for (size_t i = 0; i < p->nworkers; i++) {
        p->workers[i].pool = p;
        if (deflateInit2(&p->workers[i].s, GZIP_LEVEL, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            gz_pool_free(p);
            return ocib_error_set(err, "gzip: cannot initialise zlib");
        }
        p->workers[i].s_ready = true;
    }
    out_cap = deflateBound(&p->workers[0].s, GZIP_BLOCK) + GZIP_HEADER_LEN +
              GZIP_TRAILER_LEN + 64;
    p->nblocks = 2 * p->nworkers + 2;
    p->blocks = xcalloc(p->nblocks, sizeof(*p->blocks));
    for (size_t i = 0; i < p->nblocks; i++) {
        p->blocks[i].in = xmalloc(GZIP_DICT + GZIP_BLOCK);
        p->blocks[i].out = xmalloc(out_cap);
        p->blocks[i].out_cap = out_cap;
    }
    for (size_t i = 0; i < p->nworkers; i++) {
        int rc =
            pthread_create(&p->workers[i].thread, NULL, gz_worker_main, &p->workers[i]);

        if (rc != 0) {
            gz_pool_free(p);
            return ocib_error_errno(err, rc, "gzip: cannot start a compression thread");
        }
        p->workers[i].started = true;
    }
    *ret = p;
    return 0;
}

/* ---- gzip: the caller's side ------------------------------------------ */

static int gz_fail(struct compressor *z, struct ocib_error *err)
{
    if (!z->failed) {
        z->failed = true;
        z->fail_err = err ? *err : (struct ocib_error)OCIB_ERROR_INIT;
    }
    return -1;
}

static int gz_sink(struct compressor *z, const unsigned char *buf, size_t len,
                   struct ocib_error *err)
{
    while (len > 0) {
        size_t n = len > COMPRESS_OUT_CHUNK ? COMPRESS_OUT_CHUNK : len;

        if (z->sink(z->opaque, buf, n, err) < 0)
            return gz_fail(z, err);
        buf += n;
        len -= n;
    }
    return 0;
}

/* Emits the finished blocks at the head of the ring, in order.  With wait,
 * first waits for the oldest block in flight. */
static int gz_emit(struct compressor *z, bool wait, struct ocib_error *err)
{
    struct gz_pool *p = z->gz;

    while (p->emitted < p->queued) {
        struct gz_block *b = &p->blocks[p->emitted % p->nblocks];
        bool done;

        pthread_mutex_lock(&p->lock);
        while (wait && !b->done)
            pthread_cond_wait(&p->done, &p->lock);
        done = b->done;
        pthread_mutex_unlock(&p->lock);
        if (!done)
            return 0;
        wait = false;
        if (b->failed) {
            ocib_error_set(err, "gzip: compression failed");
            return gz_fail(z, err);
        }
        p->crc = crc32_combine(p->crc, b->crc, (z_off_t)b->len);
        if (b->last) {
            unsigned char *t;

            if (b->out_cap - b->out_len < GZIP_TRAILER_LEN) {
                b->out_cap = b->out_len + GZIP_TRAILER_LEN;
                b->out = xrealloc(b->out, b->out_cap);
            }
            t = b->out + b->out_len;
            for (int i = 0; i < 4; i++) {
                t[i] = (unsigned char)(p->crc >> (8 * i));
                t[4 + i] = (unsigned char)(p->total >> (8 * i));
            }
            b->out_len += GZIP_TRAILER_LEN;
        }
        if (gz_sink(z, b->out, b->out_len, err) < 0)
            return -1;
        b->done = false; /* no worker holds it: taken <= queued */
        p->emitted++;
    }
    return 0;
}

/* The block being filled, made ready (ring slot free, dictionary copied). */
static struct gz_block *gz_fill_block(struct compressor *z, struct ocib_error *err)
{
    struct gz_pool *p = z->gz;
    struct gz_block *b;

    if (p->filling)
        return &p->blocks[p->queued % p->nblocks];
    while (p->queued - p->emitted >= p->nblocks) {
        if (gz_emit(z, true, err) < 0)
            return NULL;
    }
    b = &p->blocks[p->queued % p->nblocks];
    memcpy(b->in, p->dict, p->dict_len);
    b->dict_len = p->dict_len;
    b->len = 0;
    b->first = p->queued == 0;
    b->last = false;
    b->failed = false;
    p->filling = true;
    return b;
}

/* Hands the block being filled to the workers. */
static void gz_queue(struct gz_pool *p, struct gz_block *b, bool last)
{
    /* Blocks before the last are full, and GZIP_BLOCK >= GZIP_DICT. */
    if (b->len >= GZIP_DICT) {
        memcpy(p->dict, b->in + GZIP_DICT + b->len - GZIP_DICT, GZIP_DICT);
        p->dict_len = GZIP_DICT;
    }
    p->total += b->len;
    b->last = last;
    p->filling = false;
    pthread_mutex_lock(&p->lock);
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

static int gzip_write(struct compressor *z, const unsigned char *buf, size_t len,
                      struct ocib_error *err)
{
    while (len > 0) {
        struct gz_block *b = gz_fill_block(z, err);
        size_t n;

        if (!b)
            return -1;
        n = GZIP_BLOCK - b->len;
        if (n > len)
            n = len;
        memcpy(b->in + GZIP_DICT + b->len, buf, n);
        b->len += n;
        buf += n;
        len -= n;
        if (b->len == GZIP_BLOCK) {
            gz_queue(z->gz, b, false);
            if (gz_emit(z, false, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int gzip_finish(struct compressor *z, struct ocib_error *err)
{
    struct gz_pool *p = z->gz;
    struct gz_block *b = gz_fill_block(z, err);

    if (!b)
        return -1;
    gz_queue(p, b, true);
    while (p->emitted < p->queued) {
        if (gz_emit(z, true, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- the API ---------------------------------------------------------- */

int compressor_new(enum layer_compression c, compress_sink_fn sink, void *opaque,
                   struct compressor **ret, struct ocib_error *err)
{
    struct compressor *z = xcalloc(1, sizeof(*z));

    z->kind = c;
    z->sink = sink;
    z->opaque = opaque;
    if (c == LAYER_COMPRESSION_GZIP) {
        if (gz_pool_new(&z->gz, err) < 0) {
            free(z);
            return -1;
        }
    } else if (c == LAYER_COMPRESSION_ZSTD) {
        z->out = xmalloc(COMPRESS_OUT_CHUNK);
        z->zc = ZSTD_createCCtx();
        if (!z->zc ||
            ZSTD_isError(
                ZSTD_CCtx_setParameter(z->zc, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_checksumFlag, 0)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_contentSizeFlag, 0))) {
            compressor_free(z);
            return ocib_error_set(err, "cannot initialise the %s compressor",
                                  layer_compression_name(c));
        }
        if (ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_nbWorkers, worker_count())) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_jobSize, ZSTD_JOB_SIZE))) {
            compressor_free(z);
            return ocib_error_set(err, "zstd: this libzstd lacks multi-threading, which "
                                       "ocib's zstd output format requires");
        }
    }
    *ret = z;
    return 0;
}

static int zstd_run(struct compressor *z, const void *buf, size_t len,
                    ZSTD_EndDirective mode, struct ocib_error *err)
{
    ZSTD_inBuffer in = {buf, len, 0};
    size_t left;

    do {
        ZSTD_outBuffer out = {z->out, COMPRESS_OUT_CHUNK, 0};

        left = ZSTD_compressStream2(z->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return ocib_error_set(err, "zstd: %s", ZSTD_getErrorName(left));
        if (out.pos > 0 && z->sink(z->opaque, z->out, out.pos, err) < 0)
            return -1;
    } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    return 0;
}

/* A failed gzip stream keeps failing with its first error. */
static int gz_failed(struct compressor *z, struct ocib_error *err)
{
    if (err)
        *err = z->fail_err;
    return -1;
}

int compressor_write(struct compressor *z, const void *buf, size_t len,
                     struct ocib_error *err)
{
    switch (z->kind) {
    case LAYER_COMPRESSION_GZIP:
        if (z->failed)
            return gz_failed(z, err);
        return gzip_write(z, buf, len, err);
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
        if (z->failed)
            return gz_failed(z, err);
        return gzip_finish(z, err);
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
    gz_pool_free(z->gz);
    ZSTD_freeCCtx(z->zc);
    free(z->out);
    free(z);
}
