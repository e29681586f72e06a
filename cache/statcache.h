/*
 * The stat cache: per context, a file's (device, inode, size, mtime, ctime)
 * mapped to its content digest, so that an unchanged file is not read again
 * (git's index does the same).  A file whose stat changed is hashed again;
 * if its content is the same, its layer key is too.
 *
 * The cache is one file per context directory (named by the digest of its
 * absolute path) under stat/, loaded whole and saved through rename(): a
 * lost update only costs a re-hash, never a wrong digest, since every
 * field of the stat must match.
 */
#ifndef OCIB_CACHE_STATCACHE_H
#define OCIB_CACHE_STATCACHE_H

#include <stdint.h>
#include <sys/stat.h>

#include "base/error.h"
#include "cache/blobs.h"

struct stat_cache;

/* Loads the stat cache of the context at abs_dir (an empty one when there is
 * none or it is unreadable). */
struct stat_cache *stat_cache_load(struct cache *c, const char *abs_dir);
void stat_cache_free(struct stat_cache *sc);

/* The content digest (64 hex) recorded for path if st still matches, else
 * NULL.  The pointer stays valid until the cache is freed or changed. */
const char *stat_cache_lookup(struct stat_cache *sc, const char *path,
                              const struct stat *st);
void stat_cache_put(struct stat_cache *sc, const char *path, const struct stat *st,
                    const char *hex);

/* Writes the cache back if it changed. */
int stat_cache_save(struct stat_cache *sc, struct ocib_error *err);

#endif
