/*
 * Cache maintenance: sizes by kind, least-recently-used pruning and
 * verification.  Blobs and kept roots a live lease pins (lease.h) are never
 * removed; layer-key entries whose blob is gone are dropped with it; what
 * dead processes left (their temporary files and private roots) is removed
 * at once.
 */
#ifndef OCIB_CACHE_MAINT_H
#define OCIB_CACHE_MAINT_H

#include <stdint.h>

#include "base/error.h"
#include "cache/blobs.h"

struct cache_usage {
    uint64_t blob_bytes, blob_count;
    uint64_t key_bytes, key_count;     /* keys/ and defs/ */
    uint64_t record_bytes, stat_bytes; /* records/, stat/ */
    uint64_t tmp_bytes, tmp_count;
    uint64_t rootfs_bytes; /* kept stage roots; files shared by hard links are
                            * counted in each root */
};

int cache_usage(struct cache *c, struct cache_usage *ret, struct ocib_error *err);

/* Kept stage roots are not synced (that would be a write-back of every
 * file of every root); instead a root is trusted only in the boot that
 * made it, since only a crash or power loss, which ends the boot, loses
 * bytes the page cache held.  Drops (once per boot, under the pins' lock)
 * the kept roots made before this boot; rootfs/.boot holds the boot id of
 * the roots there.  Best effort: cache_open calls it. */
void cache_roots_this_boot(struct cache *c);

struct cache_prune_result {
    uint64_t removed_bytes, removed_count, kept_bytes, in_use_count;
};

/* Removes least recently used blobs until at most keep_bytes of blobs stay;
 * with keep_bytes 0 also the kept stage roots (they are unpacked again when
 * needed).  Blobs and roots live leases pin stay (counted in use). */
int cache_prune(struct cache *c, uint64_t keep_bytes, struct cache_prune_result *ret,
                struct ocib_error *err);

/* Checks one blob's content against its name; a bad blob is removed.
 * Returns 0 when good, 1 when it was bad (and is gone), -1 on error. */
int cache_blob_verify(struct cache *c, const struct oci_digest *d, struct ocib_error *err);

/* Like cache_blob_verify, but skips the re-hash when the blob file is
 * untouched since it was last verified (same inode, size and modification
 * time, recorded under verified/): any write to the file re-arms the check. */
int cache_blob_verify_fast(struct cache *c, const struct oci_digest *d,
                           struct ocib_error *err);

struct cache_verify_result {
    uint64_t checked, bad, orphan_keys;
    char first_bad[80];
};

/* Re-hashes every blob, removing bad ones and key entries left pointing
 * nowhere. */
int cache_verify(struct cache *c, struct cache_verify_result *ret, struct ocib_error *err);

#endif
