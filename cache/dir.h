/*
 * Where the cache lives.
 *
 * The cache directory is named by --cache-dir, $OCIB_CACHE_DIR or the XDG
 * default; it is resolved once, so that a symlink is followed at the start
 * and never again (every later path is under the real directory), and it
 * must belong to the caller: a cache another user owns could hand this
 * build blobs, kept roots and locks that user controls.
 */
#ifndef OCIB_CACHE_DIR_H
#define OCIB_CACHE_DIR_H

#include <stdbool.h>

#include "base/error.h"

/* Creates dir when missing (0700), resolves it (realpath) into *ret_real
 * (caller frees), sets *ret_was_link when dir itself is a symlink, and
 * fails naming it when the real directory is no directory or is not owned
 * by the effective uid.  Outputs are untouched on failure. */
int cache_dir_resolve(const char *dir, char **ret_real, bool *ret_was_link,
                      struct ocib_error *err);

#endif
