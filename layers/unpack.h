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
 * Limits on input from outside: at most UNPACK_MAX_ENTRIES entries; names and
 * link targets at most UNPACK_MAX_PATH bytes.  Needs Linux 5.6 (openat2).
 */
#ifndef OCIB_LAYERS_UNPACK_H
#define OCIB_LAYERS_UNPACK_H

#include <stdint.h>

#include "base/error.h"

#define UNPACK_MAX_ENTRIES (2 * 1000 * 1000)
#define UNPACK_MAX_PATH 4096

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

#endif
