/*
 * What a command changed, read from the upper directory of the overlayfs
 * mount it ran on, and that change made part of the root.
 *
 * A `run` step may execute on an overlay whose lower directory is the stage
 * root and whose upper directory starts empty: the kernel then records the
 * change as it happens, and nothing needs to walk the unchanged root before
 * or after.  In the upper directory (overlayfs with "userxattr", as mounted
 * in a user namespace):
 *   - a created or modified file, symlink or fifo is itself (a modified file
 *     was copied up whole, a new inode);
 *   - a deleted path is a character device 0:0 (a whiteout);
 *   - a directory is there when something below it changed or it is new; a
 *     directory deleted and created again carries the xattr
 *     user.overlay.opaque=y and hides everything the root had below it.
 *
 * The layer is described as layers/changes.h describes the difference of
 * two snapshots, so that a layer's bytes do not depend on which of the two
 * ways a kernel allowed: deletions as ".wh.NAME" files, a re-created
 * (opaque) directory never made opaque in the layer but compared child by
 * child with what the root held (whiteouts for what it lost, every entry in
 * it new), each directory on the way present as it really is, skipped paths
 * neither entries nor whited out, and a copy-up that changed nothing a layer
 * records (a lock file opened for writing) no entry.  One difference
 * remains: a file whose inode the command touched without changing it (a
 * chmod to its own mode) is an entry of a snapshot comparison, which sees
 * only its new ctime, and no entry here.
 *
 * Committing then moves the upper directory's entries into the root (the
 * lower directory) by rename: new subtrees in one rename, replaced files by
 * rename over the old name, whiteouts by removing the old path.  The root's
 * existing inodes are never written into, so roots sharing them by hard
 * links (builder/rootfs.c) are unaffected.  Nothing is followed through a
 * symlink: every lookup is relative to an open directory, with O_NOFOLLOW.
 */
#ifndef OCIB_LAYERS_OVERLAY_H
#define OCIB_LAYERS_OVERLAY_H

#include "base/error.h"
#include "layers/tree.h"

/* Adds to t the layer recorded in upper_fd (the upper directory of an
 * unmounted overlay whose lower directory is root_fd), then moves those
 * entries into root_fd.  Entries have src = their path relative to the
 * root (so that layer_tree_write reads them from root_fd afterwards), st
 * and has_st (hardlinks within the layer are joined), owners mapped through
 * map_uid/map_gid (NULL: identity).  skip: as for snapshot_take, the mount
 * points of the command; what the upper directory has there stays in it,
 * and a directory the command created or re-created above one (which a
 * mount point would not allow) is refused.  On failure the root may hold
 * part of the change and should be discarded. */
int overlay_commit(int upper_fd, int root_fd, const char *const *skip,
                   unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                   struct layer_tree *t, struct ocib_error *err);

#endif
