/*
 * Leases: what a running process holds in the cache.
 *
 * Every process that opens the cache takes a lease: a file leases/<id> it
 * keeps locked (flock, exclusive) for its life, so that the lock is free
 * exactly when the owner is dead, however it died.  The lease records, one
 * per line, the blobs ("<hex>") and kept stage roots ("root <hex>") the
 * process uses or is about to publish; prune removes neither while the
 * lease is live.  The owner's temporary files live in tmp/<id>/ and its
 * private stage roots in rootfs/work.<id>.* and rootfs/save.<id>.*, so
 * whatever a killed process left is found, and removed at once, by the
 * next process that opens the cache.
 *
 * Pins and prune are ordered by leases/.gc: a pin is written under a
 * shared lock and prune reads the pins and removes under an exclusive one,
 * so a pin written before prune looks is seen, and a blob checked after a
 * pin was written is either kept or already gone (and fetched or built
 * again).  A caller therefore pins first and checks for the blob after.
 */
#ifndef OCIB_CACHE_LEASE_H
#define OCIB_CACHE_LEASE_H

#include <stdbool.h>

#include "base/error.h"

struct cache;

/* Takes a lease in c (cache_open does, after removing what dead leases
 * left).  Fails when the cache directory cannot hold one. */
int cache_lease_take(struct cache *c, struct ocib_error *err);

/* Drops the lease (its temporary directory and file go); only in the
 * process that took it.  Safe with no lease. */
void cache_lease_drop(struct cache *c);

/* The lease's id ("l-<pid>-XXXXXX"), NULL without a lease. */
const char *cache_lease_id(const struct cache *c);

/* The lease's temporary directory (created on first use); NULL on failure
 * with err filled.  The string belongs to c. */
const char *cache_lease_tmp(const struct cache *c, struct ocib_error *err);

/* Pins a blob (kind "blob") or a kept root (kind "root") by its hex for the
 * lease's life.  Best effort: without a lease nothing is pinned. */
void cache_pin(const struct cache *c, const char *kind, const char *hex);

/* Removes the temporary files and private roots of dead leases, and the
 * lease files themselves; live leases are left alone. */
void cache_lease_sweep(struct cache *c);

/* True when id names a lease whose owner is alive. */
bool cache_lease_live(const struct cache *c, const char *id);

/* What live leases pin, read under the exclusive .gc lock, which is held
 * until cache_pins_release (pins this process writes meanwhile need no
 * lock).  Only one collection at a time per cache. */
struct cache_pins {
    char **v; /* sorted lines */
    size_t n, alloc;
};

int cache_pins_collect(struct cache *c, struct cache_pins *ret, struct ocib_error *err);
bool cache_pins_has(const struct cache_pins *p, const char *kind, const char *hex);
void cache_pins_release(struct cache *c, struct cache_pins *p);

#endif
