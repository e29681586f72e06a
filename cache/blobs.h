/*
 * The content-addressed blob store of the ocib cache.
 *
 * Layout under the cache directory: blobs/sha256/<hex> holds blobs named by
 * their digest, read-only (0444: nothing writes a blob once it is
 * published); tmp/<lease>/ holds the files a process is writing (see
 * lease.h).  A blob becomes visible only by rename() after its digest is
 * known and its bytes are on disk (fsync), and the directory is synced
 * after, so neither a build killed at any instant nor a power loss leaves
 * a wrong blob under a digest.
 */
#ifndef OCIB_CACHE_BLOBS_H
#define OCIB_CACHE_BLOBS_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/digest.h"

struct cache_lease;

struct cache {
    char *dir;
    char *blobs;               /* dir/blobs/sha256 */
    char *tmp;                 /* dir/tmp */
    struct cache_lease *lease; /* this process's, see lease.h */
};

/* The default cache directory: $OCIB_CACHE_DIR, $XDG_CACHE_HOME/ocib or
 * ~/.cache/ocib.  Caller frees. */
char *cache_default_dir(void);

/* Opens (creating) the cache at dir: takes this process's lease and
 * removes what dead processes left (lease.h). */
int cache_open(struct cache *c, const char *dir, struct ocib_error *err);
void cache_release(struct cache *c);

/* Path where the blob d lives (whether or not it exists); caller frees.
 * Pins d for this process's life (lease.h): ask for the path before
 * checking that the blob is there, and prune leaves it. */
char *cache_blob_path(const struct cache *c, const struct oci_digest *d);
/* The same path without pinning, for maintenance. */
char *cache_blob_file(const struct cache *c, const struct oci_digest *d);
bool cache_blob_exists(const struct cache *c, const struct oci_digest *d);

/* Creates a temporary file in the lease's directory, mode 0444 (the fd is
 * writable); *ret_path is the caller's to free and to pass to
 * cache_blob_commit() or unlink(). */
int cache_tmp_create(const struct cache *c, char **ret_path, int *ret_fd,
                     struct ocib_error *err);

/* Moves a finished temporary file into place as blob d (whose digest the
 * caller computed while writing it): the file is synced, pinned, renamed,
 * and the blob directory synced. */
int cache_blob_commit(const struct cache *c, const char *tmp_path,
                      const struct oci_digest *d, struct ocib_error *err);

/* Keeps len bytes at data (whose digest is d) as a blob, unless it is
 * there already. */
int cache_blob_put(const struct cache *c, const void *data, size_t len,
                   const struct oci_digest *d, struct ocib_error *err);

#endif
