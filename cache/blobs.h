/*
 * The content-addressed blob store of the ocib cache.
 *
 * Layout under the cache directory: blobs/sha256/<hex> holds blobs named by
 * their digest; tmp/ holds files being written.  A blob becomes visible only
 * by rename() after its digest is known, so a build killed at any instant
 * leaves at worst an orphan in tmp/, never a wrong blob under a digest.
 */
#ifndef OCIB_CACHE_BLOBS_H
#define OCIB_CACHE_BLOBS_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/digest.h"

struct cache {
    char *dir;
    char *blobs; /* dir/blobs/sha256 */
    char *tmp;   /* dir/tmp */
};

/* The default cache directory: $OCIB_CACHE_DIR, $XDG_CACHE_HOME/ocib or
 * ~/.cache/ocib.  Caller frees. */
char *cache_default_dir(void);

/* Opens (creating) the cache at dir. */
int cache_open(struct cache *c, const char *dir, struct ocib_error *err);
void cache_release(struct cache *c);

/* Path where the blob d lives (whether or not it exists); caller frees. */
char *cache_blob_path(const struct cache *c, const struct oci_digest *d);
bool cache_blob_exists(const struct cache *c, const struct oci_digest *d);

/* Creates a temporary file in the cache; *ret_path is the caller's to free
 * and to pass to cache_blob_commit() or unlink(). */
int cache_tmp_create(const struct cache *c, char **ret_path, int *ret_fd,
                     struct ocib_error *err);

/* Moves a finished temporary file into place as blob d (whose digest the
 * caller computed while writing it). */
int cache_blob_commit(const struct cache *c, const char *tmp_path,
                      const struct oci_digest *d, struct ocib_error *err);

#endif
