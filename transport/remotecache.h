/*
 * The remote layer cache, for CI runners that start with an empty disk.
 *
 * `--cache-to REF` stores the map layer key -> layer descriptor of a build
 * (and the definition keys) as a small OCI artifact in a registry, and
 * pushes the layer blobs into that repository; `--cache-from REF` reads such
 * maps back.  A key found there is a hit whose blob stays remote: a push to
 * the same registry mounts it, an output downloads it once.
 */
#ifndef OCIB_TRANSPORT_REMOTECACHE_H
#define OCIB_TRANSPORT_REMOTECACHE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "transport/remote.h"
#include "cache/keys.h"

#define REMOTE_CACHE_ARTIFACT_TYPE "application/vnd.ocib.cache.v1+json"
#define REMOTE_CACHE_MEDIA_TYPE "application/vnd.ocib.cache.keys.v1+json"
/* Entries (and definition keys) one artifact keeps: the oldest generation
 * goes first; 8000 entries are about 2.5 MB of map, under OCI_JSON_MAX. */
#define REMOTE_CACHE_MAX_ENTRIES 8000
/* Read-merge-write rounds before concurrent writers are an error. */
#define REMOTE_CACHE_TRIES 8

struct remote_cache {
    json_t *entries; /* loaded: key -> {digest, diff_id, size, mediaType, host, repo} */
    json_t *defs;    /* def key -> true */
    json_t *mine;    /* recorded by this build: key -> {digest, diff_id, size, mediaType} */
};

void remote_cache_init(struct remote_cache *rc);
void remote_cache_release(struct remote_cache *rc);

/* Merges the map stored at ref; a missing artifact is not an error (the
 * first CI run has none), anything else is. */
int remote_cache_load(struct remote_cache *rc, struct registries *rs, const char *ref,
                      struct ocib_error *err);

bool remote_cache_def_seen(const struct remote_cache *rc, const struct oci_digest *def);

/* A hit fills ret and a remote blob source (path in the cache). */
bool remote_cache_lookup(const struct remote_cache *rc, struct cache *c,
                         const struct oci_digest *key, struct cache_layer *ret,
                         struct blob_source *ret_src);

/* Records what this build used, for remote_cache_push. */
void remote_cache_add(struct remote_cache *rc, const struct oci_digest *key,
                      const struct oci_digest *def, const struct cache_layer *l);

/* Pushes every recorded layer's blob (srcs find them), then merges the
 * recorded entries into the map at ref: the map there is re-read, this
 * build's entries are added to it (each merge is a new generation; past
 * REMOTE_CACHE_MAX_ENTRIES the oldest generations of other builds' entries
 * are dropped) and written, then read again after a pause; when another
 * writer replaced it meanwhile, the merge starts over.  Concurrent builds on
 * one ref thus end with the union of their entries.  Nothing is written when
 * the map already holds them all (a runner that built nothing new). */
int remote_cache_push(const struct remote_cache *rc, struct registries *rs, struct cache *c,
                      const char *ref, const struct blob_source *srcs, size_t n_srcs,
                      struct ocib_error *err);

#endif
