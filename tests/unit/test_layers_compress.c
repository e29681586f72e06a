/*
 * Unit tests for layers/compress: the gzip layer format.  gzip layers are
 * compressed by several threads, pigz's way, and their bytes are part of the
 * layer digest, so these tests pin the format: what a reader sees (one valid
 * gzip member, the original bytes, the fixed header), that the bytes do not
 * depend on the thread count nor on how the stream is fed, that they equal an
 * independent single-threaded construction of the documented format, and
 * that failures reach the caller.  The thread count is forced through
 * OCIB_GZIP_WORKERS, which compressor_new() reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "base/sha256.h"
#include "layers/compress.h"

#define BLOCK (128 * 1024)
#define DICT (32 * 1024)
#define BIG (5 * 1024 * 1024)
#define PINNED_BIG_DIGEST "75aad91c4e2d9986a33bfc93706489232ba75ed10cb3cfb7358e4e373d6254be"

static const size_t sizes[] = {0, 1, BLOCK - 1, BLOCK, BLOCK + 1, BIG};

/* ---- inputs ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: the same data on every machine. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* len bytes alternating, every few KiB, between random bytes, text-like
 * repetitive runs and zeros, so that deflate meets stored, dynamic and
 * long-match blocks, and matches that reach back into the previous block. */
static unsigned char *make_data(size_t len)
{
    unsigned char *d = malloc(len + 1);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    static const char words[] = "usr/lib/x86_64-linux-gnu/libfoo.so.1 rwxr-xr-x root ";
    size_t i = 0;

    assert_non_null(d);
    while (i < len) {
        uint64_t r = rng_next(&s);
        size_t run = 1 + (size_t)(r % 9000);
        int kind = (int)((r >> 32) % 4);

        if (run > len - i)
            run = len - i;
        for (size_t j = 0; j < run; j++, i++) {
            switch (kind) {
            case 0:
                d[i] = (unsigned char)rng_next(&s);
                break;
            case 1:
                d[i] = 0;
                break;
            case 2:
                d[i] = (unsigned char)words[(i * 7 + j) % (sizeof(words) - 1)];
                break;
            default:
                /* Repeats what came 40000 bytes earlier: beyond one dictionary
                 * window, within reach across a block boundary. */
                d[i] = i >= 40000 ? d[i - 40000] : (unsigned char)(j & 0x3f);
                break;
            }
        }
    }
    return d;
}

/* ---- compressing --------------------------------------------------------- */

struct out {
    unsigned char *data;
    size_t len, cap;
    pthread_t thread;
    size_t calls, fail_at; /* fail_at: the call that fails, 0 for never */
    size_t max_chunk;
};

static int sink_mem(void *opaque, const void *buf, size_t len, struct ocib_error *err)
{
    struct out *o = opaque;

    /* The sink runs on the caller's thread, in order, within the chunk cap. */
    assert_true(pthread_equal(o->thread, pthread_self()));
    assert_true(len > 0 && len <= COMPRESS_OUT_CHUNK);
    o->calls++;
    if (o->fail_at && o->calls == o->fail_at)
        return ocib_error_set(err, "disk full");
    if (len > o->max_chunk)
        o->max_chunk = len;
    if (o->len + len > o->cap) {
        o->cap = (o->len + len) * 2;
        o->data = realloc(o->data, o->cap);
        assert_non_null(o->data);
    }
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    return 0;
}

static void set_workers(int n)
{
    char buf[16];

    if (n == 0) {
        unsetenv("OCIB_GZIP_WORKERS");
        return;
    }
    snprintf(buf, sizeof(buf), "%d", n);
    assert_int_equal(setenv("OCIB_GZIP_WORKERS", buf, 1), 0);
}

/* gzip-compresses data with n workers (0: the default count), fed in pieces
 * whose sizes cycle through pieces[]. */
static struct out gzip_with(const unsigned char *data, size_t len, int workers,
                            const size_t *pieces, size_t npieces)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct out o = {.thread = pthread_self()};
    struct compressor *z = NULL;
    size_t off = 0, k = 0;

    set_workers(workers);
    assert_int_equal(compressor_new(LAYER_COMPRESSION_GZIP, sink_mem, &o, &z, &err), 0);
    while (off < len) {
        size_t n = pieces[k++ % npieces];

        if (n > len - off)
            n = len - off;
        assert_int_equal(compressor_write(z, data + off, n, &err), 0);
        off += n;
    }
    assert_int_equal(compressor_finish(z, &err), 0);
    compressor_free(z);
    set_workers(0);
    return o;
}

static const size_t odd_pieces[] = {1, 7, 4093, 65537, 300001, 131071, 3};
static const size_t big_pieces[] = {1024 * 1024};

/* Inflates a gzip stream (windowBits 31) and checks that it is exactly one
 * member holding want. */
static void assert_inflates_to(const struct out *o, const unsigned char *want, size_t len)
{
    z_stream s = {0};
    unsigned char *got = malloc(len + 1);
    int rc;

    assert_non_null(got);
    assert_int_equal(inflateInit2(&s, 31), Z_OK);
    s.next_in = o->data;
    s.avail_in = (uInt)o->len;
    s.next_out = got;
    s.avail_out = (uInt)len + 1;
    rc = inflate(&s, Z_FINISH);
    assert_int_equal(rc, Z_STREAM_END);
    assert_int_equal(s.avail_in, 0); /* nothing after the one member */
    assert_int_equal(s.total_out, len);
    assert_memory_equal(got, want, len);
    inflateEnd(&s);
    free(got);
}

/* ---- tests ----------------------------------------------------------------- */

static void round_trips_at_block_edges_fed_in_odd_pieces(void **state)
{
    unsigned char *data = make_data(BIG);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct out o = gzip_with(data, sizes[i], 0, odd_pieces, 7);

        assert_inflates_to(&o, data, sizes[i]);
        free(o.data);
    }
    free(data);
}

static void bytes_do_not_depend_on_worker_count_or_feeding(void **state)
{
    unsigned char *data = make_data(BIG);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct out ref = gzip_with(data, sizes[i], 1, big_pieces, 1);
        static const int counts[] = {2, 3, 4};

        for (size_t c = 0; c < 3; c++) {
            struct out o = gzip_with(data, sizes[i], counts[c], odd_pieces, 7);

            assert_int_equal(o.len, ref.len);
            assert_memory_equal(o.data, ref.data, ref.len);
            free(o.data);
        }
        free(ref.data);
    }
    free(data);
}

/* The documented format, built here block by block on one thread with zlib
 * alone: the compressor must give exactly these bytes. */
static struct out reference_gzip(const unsigned char *data, size_t len)
{
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    struct out o = {0};
    z_stream s = {0};
    size_t off = 0;
    uLong crc = crc32(0L, data, (uInt)len);

    o.cap = len + len / 8 + 1024;
    o.data = malloc(o.cap);
    assert_non_null(o.data);
    memcpy(o.data, hdr, 10);
    o.len = 10;
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    for (;;) {
        size_t n = len - off > BLOCK ? BLOCK : len - off;
        bool last = off + n == len && n < BLOCK;

        assert_int_equal(deflateReset(&s), Z_OK);
        if (off > 0)
            assert_int_equal(deflateSetDictionary(&s, data + off - DICT, DICT), Z_OK);
        s.next_in = (unsigned char *)data + off;
        s.avail_in = (uInt)n;
        s.next_out = o.data + o.len;
        s.avail_out = (uInt)(o.cap - o.len);
        assert_int_equal(deflate(&s, last ? Z_FINISH : Z_SYNC_FLUSH),
                         last ? Z_STREAM_END : Z_OK);
        assert_true(s.avail_out > 0);
        o.len = o.cap - s.avail_out;
        off += n;
        if (last)
            break;
    }
    deflateEnd(&s);
    for (int i = 0; i < 4; i++)
        o.data[o.len + i] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++)
        o.data[o.len + 4 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    o.len += 8;
    return o;
}

static void bytes_follow_the_documented_block_format(void **state)
{
    unsigned char *data = make_data(BIG);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct out ref = reference_gzip(data, sizes[i]);
        struct out o = gzip_with(data, sizes[i], 4, odd_pieces, 7);

        assert_int_equal(o.len, ref.len);
        assert_memory_equal(o.data, ref.data, ref.len);
        free(o.data);
        free(ref.data);
    }
    free(data);
}

/* Pins the 5 MiB stream's digest: a change here changes every gzip layer's
 * digest, and needs a new layer_compression_settings() string. */
static void output_digest_is_pinned(void **state)
{
    unsigned char *data = make_data(BIG);
    struct out o = gzip_with(data, BIG, 0, odd_pieces, 7);
    char hex[SHA256_HEX_LEN + 1];

    sha256_hex(o.data, o.len, hex);
    assert_string_equal(hex, PINNED_BIG_DIGEST);
    assert_true(o.max_chunk <= COMPRESS_OUT_CHUNK);
    free(o.data);
    free(data);
}

static void header_has_no_name_no_mtime_and_os_255(void **state)
{
    unsigned char *data = make_data(BLOCK + 1);

    for (int empty = 0; empty < 2; empty++) {
        struct out o = gzip_with(data, empty ? 0 : BLOCK + 1, 0, odd_pieces, 7);

        assert_true(o.len >= 18);
        assert_int_equal(o.data[0], 0x1f);
        assert_int_equal(o.data[1], 0x8b);
        assert_int_equal(o.data[2], 8); /* deflate */
        assert_int_equal(o.data[3], 0); /* no FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT */
        assert_int_equal(o.data[4] | o.data[5] | o.data[6] | o.data[7], 0); /* MTIME */
        assert_int_equal(o.data[8], 0);                                     /* XFL */
        assert_int_equal(o.data[9], 255);                                   /* OS */
        /* ISIZE */
        assert_int_equal(o.data[o.len - 4] | o.data[o.len - 3] << 8 |
                             o.data[o.len - 2] << 16 | (uint32_t)o.data[o.len - 1] << 24,
                         empty ? 0 : BLOCK + 1);
        free(o.data);
    }
    free(data);
}

static void gzip_t_accepts_the_output(void **state)
{
    unsigned char *data = make_data(BIG);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct out o = gzip_with(data, sizes[i], 2, odd_pieces, 7);
        char name[] = "layer-XXXXXX.gz";
        char cmd[128];
        int fd = mkstemps(name, 3);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, o.data, o.len), (ssize_t)o.len);
        close(fd);
        snprintf(cmd, sizeof(cmd), "gzip -t %s", name);
        assert_int_equal(system(cmd), 0);
        unlink(name);
        free(o.data);
    }
    free(data);
}

static void sink_failure_reaches_the_caller_and_sticks(void **state)
{
    unsigned char *data = make_data(BIG);
    /* 5 MiB makes 41 blocks, one sink call each: the last fails in finish. */
    static const size_t fail_at[] = {1, 3, 41};

    for (size_t f = 0; f < 3; f++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        struct out o = {.thread = pthread_self(), .fail_at = fail_at[f]};
        struct compressor *z = NULL;
        int rc = 0;

        set_workers(2);
        assert_int_equal(compressor_new(LAYER_COMPRESSION_GZIP, sink_mem, &o, &z, &err), 0);
        for (size_t off = 0; off < BIG && rc == 0; off += 65536)
            rc = compressor_write(z, data + off, 65536, &err);
        if (rc == 0)
            rc = compressor_finish(z, &err);
        assert_int_equal(rc, -1);
        assert_string_equal(err.msg, "disk full");
        ocib_error_clear(&err);
        assert_int_equal(compressor_write(z, data, 10, &err), -1);
        assert_string_equal(err.msg, "disk full");
        ocib_error_clear(&err);
        assert_int_equal(compressor_finish(z, &err), -1);
        assert_string_equal(err.msg, "disk full");
        compressor_free(z); /* joins the workers, some maybe mid-block */
        set_workers(0);
        free(o.data);
    }
    free(data);
}

static void free_without_finish_joins_workers(void **state)
{
    unsigned char *data = make_data(BIG);
    struct ocib_error err = OCIB_ERROR_INIT;
    struct out o = {.thread = pthread_self()};
    struct compressor *z = NULL;

    set_workers(4);
    assert_int_equal(compressor_new(LAYER_COMPRESSION_GZIP, sink_mem, &o, &z, &err), 0);
    assert_int_equal(compressor_write(z, data, BIG, &err), 0);
    compressor_free(z);
    compressor_free(NULL);
    set_workers(0);
    free(o.data);
    free(data);
}

static void settings_describe_the_block_format(void **state)
{
    const char *s = layer_compression_settings(LAYER_COMPRESSION_GZIP);

    assert_non_null(strstr(s, "zlib-level=6"));
    assert_non_null(strstr(s, "raw-blocks=131072"));
    assert_non_null(strstr(s, "dict=32768"));
    assert_non_null(strstr(s, "sync-flush"));
    assert_non_null(strstr(s, "mtime=0"));
    assert_non_null(strstr(s, "os=255"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips_at_block_edges_fed_in_odd_pieces),
        cmocka_unit_test(bytes_do_not_depend_on_worker_count_or_feeding),
        cmocka_unit_test(bytes_follow_the_documented_block_format),
        cmocka_unit_test(output_digest_is_pinned),
        cmocka_unit_test(header_has_no_name_no_mtime_and_os_255),
        cmocka_unit_test(gzip_t_accepts_the_output),
        cmocka_unit_test(sink_failure_reaches_the_caller_and_sticks),
        cmocka_unit_test(free_without_finish_joins_workers),
        cmocka_unit_test(settings_describe_the_block_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
