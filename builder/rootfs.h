/*
 * Stage root file systems: a stage's layers unpacked into a directory that
 * `run` layers execute in and `copy --from` layers read.
 *
 * Roots are kept in the cache as rootfs/<hex of the stage's key at that
 * point>: the state after each run layer and the stage's last state.  A
 * build works in a private directory: a hard-link clone of the longest kept
 * prefix of its chain (directories copied, everything else linked), brought
 * up to date by unpacking the layers it lacks.  A state to keep is handed
 * to the cache by renaming the private directory when the build is done
 * with it, and cloned only when the build goes on changing the root.
 * Unpacking, and run steps on overlayfs, replace files (new inodes) and never
 * write into a shared one; a run step without overlayfs that changes a file
 * in place (same inode) would also change the kept roots it shares inodes
 * with, so those are then dropped (rootfs_taint).
 */
#ifndef OCIB_BUILDER_ROOTFS_H
#define OCIB_BUILDER_ROOTFS_H

#include <stddef.h>

#include "base/error.h"
#include "transport/remote.h"
#include "cache/blobs.h"
#include "layers/unpack.h"
#include "oci/image.h"

struct rootfs {
    char *path;            /* private directory; NULL when none yet */
    int fd;                /* open on path, -1 when none */
    size_t n_applied;      /* image layers it reflects */
    struct oci_digest key; /* the stage key it reflects */
    uint64_t skipped_devices;
    bool save_pending;         /* the current state is to be kept (rootfs_save) */
    struct oci_digest *shared; /* kept roots this one shares inodes with */
    size_t n_shared, alloc_shared;
};

void rootfs_init(struct rootfs *r);

/* Brings r to reflect the first n layers of img: keys[i] (i <= n) is the
 * stage's key after i layers ("" where there is none), keys[n] the current
 * one.  Starts from the longest prefix with a kept root, else from scratch,
 * and unpacks what is missing (fetching remote layers through rs), each
 * layer checked against the digest, size and diff_id img gives it and
 * within limits (which count what the build unpacks).  A layer that fails
 * its checks fails before the root changes, so nothing of it is kept. */
int rootfs_update(struct rootfs *r, struct cache *c, struct registries *rs,
                  const struct oci_image *img, struct blob_source *srcs, size_t n,
                  const struct oci_digest *keys, struct unpack_limits *limits,
                  struct ocib_error *err);

/* Keeps r's current state in the cache (best effort): given back by
 * rename when the build is done with r, or cloned first when r is about to
 * change or another root could start from it (rootfs_update,
 * rootfs_keep_pending). */
void rootfs_save(struct rootfs *r, struct cache *c);

/* A state of r still to be kept is kept now, by a clone: before r changes
 * (a run step), or before another stage's root may start from it. */
void rootfs_keep_pending(struct rootfs *r, struct cache *c);

/* A file r may share with kept roots changed in place: drop the kept roots
 * (they share inodes among themselves too).  Other private roots of the
 * build may share it as well: the caller discards them. */
void rootfs_taint(struct rootfs *r, struct cache *c);

/* Removes r's directory, keeping nothing of it (not even a state still to
 * be kept); the next rootfs_update starts over. */
void rootfs_discard(struct rootfs *r);

/* Records that r now reflects n layers and key (a run step changed it). */
void rootfs_advance(struct rootfs *r, size_t n, const struct oci_digest *key);

/* Gives the root back to the cache under its key (keep, or a state still
 * to be kept), or removes it. */
void rootfs_release(struct rootfs *r, struct cache *c, bool keep);

/* Opens (into *ret_fd, the caller closes it) a directory that holds the
 * state of the first n layers, to be read only: r itself when it is there,
 * else the kept root of keys[n], else r brought there by rootfs_update. */
int rootfs_state_fd(struct rootfs *r, struct cache *c, struct registries *rs,
                    const struct oci_image *img, struct blob_source *srcs, size_t n,
                    const struct oci_digest *keys, struct unpack_limits *limits,
                    int *ret_fd, struct ocib_error *err);

/* Resolves the relative path (no leading '/') inside the root directory
 * root_fd as a chroot would: symlinks along it are followed (an absolute
 * target starts again at the root, ".." stops at the root), the last
 * component only with follow_last; from the first component that does not
 * exist (or is no directory) on, the path is taken as written.  *ret is the
 * resolved relative path ("" for the root itself; the caller frees).  More
 * than 40 symlinks fail (the caller names path). */
int rootfs_resolve(int root_fd, const char *path, bool follow_last, char **ret,
                   struct ocib_error *err);

#endif
