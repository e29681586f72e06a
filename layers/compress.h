/*
 * Streaming layer compressors with pinned, documented settings.
 *
 * The compressor settings are part of ocib's output contract: the same tar
 * must always give the same compressed bytes, hence the same layer digest.
 *   gzip: one gzip member, compressed like pigz: the tar is cut into
 *         128 KiB blocks, each raw-deflated on its own (zlib level 6, 32 KiB
 *         window, memLevel 8, default strategy) with the previous block's
 *         last 32 KiB as preset dictionary, and ended with a sync flush (the
 *         last block, possibly empty, with Z_FINISH); the blocks are
 *         compressed by up to 4 threads (one per online CPU) and the bytes do
 *         not depend on the thread count.  gzip header with no name, no
 *         comment, mtime 0, XFL 0, OS 255.  The environment variable
 *         OCIB_GZIP_WORKERS=N (1 to 16) forces the thread count; it exists
 *         for tests and benchmarks.  Memory: about 300 KiB per block in
 *         flight (2 * threads + 2 of them) and per thread.
 *   zstd: libzstd level 3, checksum off, content size unknown, multi-threaded
 *         mode with up to 4 workers and 2 MiB jobs (the multi-threaded format's
 *         bytes do not depend on the worker count).
 * Output goes to a sink callback in chunks of at most COMPRESS_OUT_CHUNK.
 */
#ifndef OCIB_LAYERS_COMPRESS_H
#define OCIB_LAYERS_COMPRESS_H

#include <stddef.h>

#include "base/error.h"

enum layer_compression {
    LAYER_COMPRESSION_GZIP,
    LAYER_COMPRESSION_ZSTD,
    LAYER_COMPRESSION_NONE,
};

#define COMPRESS_OUT_CHUNK (256 * 1024)

/* Receives compressed bytes; returns 0 or -1 with err filled. */
typedef int (*compress_sink_fn)(void *opaque, const void *buf, size_t len,
                                struct ocib_error *err);

struct compressor;

/* Parses "gzip" / "zstd"; fails with a usage error otherwise. */
int layer_compression_parse(const char *s, enum layer_compression *ret,
                            struct ocib_error *err);
const char *layer_compression_name(enum layer_compression c);
/* The OCI layer media type for c. */
const char *layer_compression_media_type(enum layer_compression c);
/* The exact settings, for annotations and the lock file. */
const char *layer_compression_settings(enum layer_compression c);

/* compressor_write() and compressor_finish() call the sink on the caller's
 * thread, in order.  A failure (the sink's, or the compressor's) is returned
 * by the call that sees it and, for gzip, again by every later call.
 * compressor_free() accepts NULL and a failed or unfinished compressor, and
 * joins any threads. */
int compressor_new(enum layer_compression c, compress_sink_fn sink, void *opaque,
                   struct compressor **ret, struct ocib_error *err);
int compressor_write(struct compressor *z, const void *buf, size_t len,
                     struct ocib_error *err);
/* Flushes the end of the stream to the sink. */
int compressor_finish(struct compressor *z, struct ocib_error *err);
void compressor_free(struct compressor *z);

#endif
