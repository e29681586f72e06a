/*
 * Reading a layer blob for layers/unpack.c: checked and bounded while it
 * streams.  Nothing outside layers/ includes this header.
 *
 * A struct unpack_stream is one pass over a blob: a tar reader whose entries
 * come from the blob decompressed (any filter libarchive knows), which on
 * the way hashes and counts the blob as stored (its digest and size) and
 * the tar (its diff_id), and stops at the limits of struct unpack_limits.
 * When the pass has read its last entry, unpack_stream_finish() reads what
 * is left and compares the digests and the size with what the image says.
 *
 * Errors name the layer ("layer D: ...") and, for the blob's bytes, its
 * file; a blob that is not what its image says is an OCIB_ERR_INTEGRITY
 * error, an exceeded limit an OCIB_ERR_LIMIT one naming the variable that
 * raises it.
 */
#ifndef OCIB_LAYERS_UNPACK_STREAM_H
#define OCIB_LAYERS_UNPACK_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "layers/unpack.h"

struct archive;
struct archive_entry;
struct unpack_stream;

/* Opens a pass over the blob at path.  digest names the layer in messages;
 * chk (may be NULL) is what the blob must be; limits (not NULL, read only)
 * what it may hold.  chk and limits must outlive the stream.  Returns 0 with
 * *ret set, or -1 (*ret untouched). */
int unpack_stream_open(const char *path, const char *digest, const struct unpack_check *chk,
                       const struct unpack_limits *limits, struct unpack_stream **ret,
                       struct ocib_error *err);
void unpack_stream_free(struct unpack_stream *s);
OCIB_DEFINE_CLEANUP(struct unpack_stream, unpack_stream_free)

/* The tar reader: read an entry's data with archive_read_data_block(). */
struct archive *unpack_stream_tar(struct unpack_stream *s);

/* Reads the next header (count entries were read before it): 1 with *ret
 * set, 0 at the end, -1 on a corrupt stream, an entry without a name, or
 * more entries than limits->max_layer_entries. */
int unpack_stream_next(struct unpack_stream *s, uint64_t count, struct archive_entry **ret,
                       struct ocib_error *err);

/* After a read from the tar reader failed: true, with why in *err, when the
 * stream underneath failed (the blob's file, a limit, a blob larger than its
 * size); false when the tar itself is to blame. */
bool unpack_stream_failed(const struct unpack_stream *s, struct ocib_error *err);

/* Reads what the tar reader left (the end-of-archive padding) and what the
 * decompressor left, then checks digest, size and diff_id against chk. */
int unpack_stream_finish(struct unpack_stream *s, struct ocib_error *err);

/* The uncompressed bytes read so far: after unpack_stream_finish(), the
 * size of the layer's tar. */
uint64_t unpack_stream_tar_bytes(const struct unpack_stream *s);

/* For a pass over the blob at path that failed with *err: when the blob's
 * bytes are not the ones chk->digest names, that is the error to report
 * (*err replaced).  Limit and integrity errors are kept as they are. */
void unpack_stream_blame_digest(const char *path, const char *digest,
                                const struct unpack_check *chk, struct ocib_error *err);

#endif
