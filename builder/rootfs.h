/*
 * Stage root file systems: a stage's layers unpacked into a directory that
 * `run` layers execute in and `copy --from` layers read.
 *
 * A finished root is kept in the cache as rootfs/<hex of the stage's key at
 * that point>, and reused by later builds while the key holds.  A build
 * takes a root for itself by rename() into a private directory (so two
 * builds never share a mutable root) and gives it back under its new key
 * when it is done; a root is brought up to date by unpacking the layers it
 * lacks, in order.
 */
#ifndef OCIB_BUILDER_ROOTFS_H
#define OCIB_BUILDER_ROOTFS_H

#include <stddef.h>

#include "base/error.h"
#include "builder/remote.h"
#include "cache/blobs.h"
#include "oci/image.h"

struct rootfs {
    char *path;          /* private directory; NULL when none yet */
    int fd;              /* open on path, -1 when none */
    size_t n_applied;    /* image layers it reflects */
    struct oci_digest key; /* the stage key it reflects */
    uint64_t skipped_devices;
};

void rootfs_init(struct rootfs *r);

/* Brings r to reflect the first n layers of img (whose state is key): takes
 * the cached root for key when there is one, else unpacks what is missing
 * (fetching remote layers into the cache through rs). */
int rootfs_update(struct rootfs *r, struct cache *c, struct registries *rs,
                  const struct oci_image *img, struct blob_source *srcs, size_t n,
                  const struct oci_digest *key, struct ocib_error *err);

/* Records that r now reflects n layers and key (a run step changed it). */
void rootfs_advance(struct rootfs *r, size_t n, const struct oci_digest *key);

/* Gives the root back to the cache under its key, or removes it. */
void rootfs_release(struct rootfs *r, struct cache *c, bool keep);

#endif
