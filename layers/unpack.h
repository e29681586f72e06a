/*
 * Applying OCI layer tars onto a root directory, safely.
 *
 * A stage's root filesystem is its base image's layers and its own earlier
 * layers applied one after another onto one directory.  layer_unpack()
 * applies one layer blob (plain tar, or compressed with any filter libarchive
 * knows: gzip, zstd, ...) with the OCI image-spec semantics: ".wh.NAME"
 * whiteouts delete NAME from the lower layers, ".wh..wh..opq" makes its
 * directory opaque (everything the lower layers put there disappears, what
 * this layer puts there stays), a non-directory replaces whatever was at its
 * path, a directory over a directory only updates its metadata.
 *
 * Safety: nothing outside the root directory is ever created, modified or
 * deleted, whatever the archive contains.  Names that are absolute or have a
 * ".." component are refused, and so are hardlink targets of that shape;
 * every entry's parent directory is resolved by the kernel with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) relative to the root
 * (symlinks are followed only while they stay beneath it; an absolute symlink
 * counts as leaving it), and the last component is created, replaced or
 * removed with *at() calls that never follow a symlink.  An entry whose path
 * leads outside the root fails the whole unpack with an error naming the
 * layer digest and the entry; what was applied before stays in the root.
 *
 * Rootless use: owners that cannot be set (EPERM, or EINVAL for an id not
 * mapped in a user namespace) are left to the caller, device nodes that
 * cannot be made are skipped and counted, and read-only directories owned by
 * the caller are made writable while an entry is written into them.  Extended
 * attributes are not applied.  A directory's mtime is set when its entry is
 * read, so an entry written into it later by the same layer updates it.
 *
 * Memory does not depend on the size of the layer's content: data streams
 * through libarchive's block buffer.  The only per-layer memory is the list
 * of directories the layer marks opaque, collected by a first pass over the
 * headers (which also checks every name before anything is written).
 *
 * Verification: layer_unpack_checked() hashes the blob as it streams (its
 * digest and size) and the tar libarchive decompressed from it (the diff_id
 * the image config lists), in the first pass, so that a blob that is not
 * what its image claims fails before anything is written; the second pass
 * checks them again (a file changed in between fails the unpack).
 *
 * Limits on input from outside: names and link targets at most
 * UNPACK_MAX_PATH bytes; entries, uncompressed bytes per layer and
 * uncompressed bytes per build as struct unpack_limits says (the first pass
 * stops at the limit, so a decompression bomb is refused before anything is
 * written).  Needs Linux 5.6 (openat2).
 */
#ifndef OCIB_LAYERS_UNPACK_H
#define OCIB_LAYERS_UNPACK_H

#include <stdint.h>

#include "base/error.h"
#include "oci/digest.h"

#define UNPACK_MAX_PATH 4096

/* Defaults of struct unpack_limits, far above real images: the largest
 * layers of public images (CUDA, PyTorch, full TeX Live) stay below 10 GiB
 * and 300,000 entries, and the largest images below 40 GiB in all. */
#define UNPACK_DEFAULT_LAYER_BYTES (16ULL << 30)
#define UNPACK_DEFAULT_BUILD_BYTES (64ULL << 30)
#define UNPACK_DEFAULT_LAYER_ENTRIES (1000ULL * 1000)

/* What one build may unpack.  build_bytes counts the uncompressed bytes of
 * the layers unpacked so far with these limits (each layer counted once). */
struct unpack_limits {
    uint64_t max_layer_bytes;   /* uncompressed tar bytes of one layer */
    uint64_t max_build_bytes;   /* of all layers unpacked by one build */
    uint64_t max_layer_entries; /* tar entries of one layer */
    uint64_t build_bytes;
};

/* Fills l with the defaults, or with the environment variables
 * OCIB_MAX_LAYER_BYTES, OCIB_MAX_BUILD_BYTES and OCIB_MAX_LAYER_ENTRIES
 * when set: a positive decimal number, bytes with an optional K, M, G or T
 * suffix (powers of 1024).  A bad value is a usage error naming the
 * variable. */
int unpack_limits_init(struct unpack_limits *l, struct ocib_error *err);

/* What the blob must be; NULL digests and a negative size are not checked. */
struct unpack_check {
    const struct oci_digest *digest;  /* of the blob as stored */
    int64_t size;                     /* of the blob as stored */
    const struct oci_digest *diff_id; /* of the uncompressed tar */
};

struct unpack_stats {
    uint64_t entries;         /* tar entries read, whiteouts included */
    uint64_t skipped_devices; /* character/block devices we were not allowed to make */
    uint64_t whiteouts;       /* ".wh." entries, opaque markers included */
};

/* Applies the layer blob at blob_path onto the directory root_fd (which stays
 * open and owned by the caller).  digest names the layer in messages (the
 * blob path is used when it is NULL).  On success fills *stats (may be NULL)
 * and returns 0.  On failure returns -1 with err naming the layer and, for a
 * refused or failing entry, the entry ("layer D: entry 'N': ..."); *stats is
 * untouched and the root may hold part of the layer. */
int layer_unpack(int root_fd, const char *blob_path, const char *digest,
                 struct unpack_stats *stats, struct ocib_error *err);

/* layer_unpack() that first checks the blob against chk (may be NULL) and
 * keeps within limits (may be NULL: the defaults, counted for this layer
 * only; l->build_bytes grows by the layer's size).  A blob that does not
 * match fails with an OCIB_ERR_INTEGRITY error naming the layer, the blob
 * path and what differs, an exceeded limit with an OCIB_ERR_LIMIT error
 * naming the layer and the variable that raises it; in both cases the
 * first pass finds it and the root is untouched. */
int layer_unpack_checked(int root_fd, const char *blob_path, const char *digest,
                         const struct unpack_check *chk, struct unpack_limits *limits,
                         struct unpack_stats *stats, struct ocib_error *err);

#endif
