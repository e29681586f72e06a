/*
 * The layer-key cache: what a layer's inputs produced before.
 *
 * A layer key is the digest of a canonical description of everything that
 * decides a layer's bytes (builder/cachekey.c computes it).  Entries live in
 * keys/<hex> as small JSON descriptors written by rename(), so a reader sees
 * a whole entry or none; an entry counts only while its blob is in the
 * store.  defs/<hex> marks layer definitions (a key without its file
 * inputs) that have entries, which tells a build whether hashing inputs
 * first could possibly hit.  records/<hex> keeps, per layer slot, the inputs
 * of the last build, to explain the next miss.  Locks are per entry
 * (flock on locks/<hex>), never one lock for a whole build.
 */
#ifndef OCIB_CACHE_KEYS_H
#define OCIB_CACHE_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "cache/blobs.h"
#include "oci/digest.h"

struct cache_layer {
    struct oci_digest digest;
    struct oci_digest diff_id;
    int64_t size;
    int64_t entries; /* in the layer, for progress; -1 when not recorded */
    char media_type[96];
};

/* 1 and *ret filled when key has an entry whose blob is present, 0 when not
 * (a broken or orphaned entry counts as a miss and is removed). */
int cache_key_get(struct cache *c, const struct oci_digest *key, struct cache_layer *ret,
                  struct ocib_error *err);
int cache_key_put(struct cache *c, const struct oci_digest *key,
                  const struct cache_layer *l, struct ocib_error *err);

bool cache_def_seen(struct cache *c, const struct oci_digest *def);
int cache_def_mark(struct cache *c, const struct oci_digest *def, struct ocib_error *err);

/* Explain records, keyed by a slot name (context, stage, layer). */
json_t *cache_record_get(struct cache *c, const char *slot);
int cache_record_put(struct cache *c, const char *slot, const json_t *record,
                     struct ocib_error *err);
/* True when the slot's record was written for key (checked without reading
 * the record itself). */
bool cache_record_has_key(struct cache *c, const char *slot, const struct oci_digest *key);

/* Takes an exclusive lock for key (waiting for another holder); *ret_fd is
 * the lock, released by cache_unlock(). */
int cache_lock(struct cache *c, const struct oci_digest *key, int *ret_fd,
               struct ocib_error *err);
void cache_unlock(int fd);

/* Marks blob d as in use by this process until the returned fd is closed
 * (shared lock); prune skips blobs in use.  Also refreshes its LRU time
 * (the access time; the modification time is what verification stamps). */
int cache_blob_hold(struct cache *c, const struct oci_digest *d);

#endif
