/*
 * What a command changed in a root directory, as the entries of one layer.
 *
 * A `run` step mutates its stage root in place; when overlayfs cannot record
 * the change for us, the layer is found by comparing a snapshot of the tree
 * taken before the command with the tree after it.  A snapshot records, for
 * every entry under the root, the metadata that any change must touch: type
 * and mode, owner, size, mtime and ctime (ctime catches a rewrite that keeps
 * size and mtime, since no unprivileged process can set it), device and inode,
 * and a symlink's target.  File contents are not read: the layer writer reads
 * them later from the root itself.
 *
 * The difference is expressed in the layer_tree entry set (layers/tree.h) with
 * the OCI whiteout conventions: a deleted path becomes an empty ".wh.NAME"
 * file in its parent, and a path whose type changed is simply its new entry.
 * A directory removed and created again in the same step is compared child
 * by child like any other (whiteouts for what it lost), never made opaque:
 * whether it got a new inode number is the file system's chance, and a
 * layer's bytes must not depend on chance.
 *
 * Walks never follow symlinks and never cross into another file system
 * mounted below the root (/proc, /dev, bind mounts a sandbox left behind):
 * such mount points and everything under them are neither recorded as
 * contents nor whited out.  Memory is proportional to the number of entries;
 * one open directory per level of depth.
 */
#ifndef OCIB_LAYERS_CHANGES_H
#define OCIB_LAYERS_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"
#include "layers/tree.h"

/* Path -> metadata for every entry under a root, in depth-first order. */
struct snapshot;

/* Records every entry under root_fd (a directory).  skip is NULL or a
 * NULL-terminated list of paths relative to the root ("proc", "tmp/.ocib";
 * a leading or trailing '/' is ignored) that are left out together with
 * everything below them, e.g. cache mounts whose contents never belong to a
 * layer.  Fails on an unreadable directory, a path longer than 4096 bytes,
 * more than 16M entries or a tree deeper than 1024 levels.  *ret (freed
 * with snapshot_free) is untouched on failure. */
int snapshot_take(int root_fd, const char *const *skip, struct snapshot **ret,
                  struct ocib_error *err);

/* Frees s; accepts NULL. */
void snapshot_free(struct snapshot *s);

/* Number of entries recorded in s (the root itself is not one). */
size_t snapshot_count(const struct snapshot *s);

/* Takes a second snapshot of root_fd (with skip, which should be the list
 * before was taken with; before's entries under a skipped path are ignored
 * either way) and adds to t the layer that turns the first tree into the
 * second:
 *   - every entry created or changed (type, mode, owner, size, mtime, ctime,
 *     device, inode or symlink target differ), with its mode, owner mapped
 *     through map_uid/map_gid (host -> container ids; NULL is the identity),
 *     its symlink target, src = its path relative to the root (so that
 *     layer_tree_write reads it from root_fd) and st/has_st, which lets the
 *     tar writer join files that are hardlinks of each other;
 *   - every existing parent directory of such an entry or of a whiteout, as
 *     itself (its current mode and owner), unchanged or not;
 *   - for each deleted path whose parent still exists as a directory, an
 *     empty ".wh.NAME" regular file (mode 0, owner 0:0) in that parent, and
 *     nothing for what was below it;
 * Device nodes and sockets, which a layer entry cannot describe, are left
 * out (their deletion is still whited out).  The root directory itself is
 * never an entry.  t is untouched on failure. */
int snapshot_diff(const struct snapshot *before, int root_fd, const char *const *skip,
                  unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                  struct layer_tree *t, struct ocib_error *err);

/* snapshot_diff that also says (*ret_in_place, may be NULL) whether a file
 * that existed before was changed in place, keeping its inode: roots that
 * share inodes with it by hard links (builder/rootfs.c) changed too. */
int snapshot_diff_ex(const struct snapshot *before, int root_fd, const char *const *skip,
                     unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                     struct layer_tree *t, bool *ret_in_place, struct ocib_error *err);

/* Whether path (relative to the root) is one of skip's paths or below one
 * (skip as for snapshot_take). */
bool changes_path_skipped(const char *path, const char *const *skip);

/* Adds the whiteout of path (relative to the root): an empty ".wh.NAME"
 * regular file, mode 0, owner 0:0, in path's parent. */
void changes_put_whiteout(struct layer_tree *t, const char *path);

/* Whether a layer entry can describe a file of this type: not a device node
 * (no device number) nor a socket. */
bool changes_representable(mode_t mode);

#endif
