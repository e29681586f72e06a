/*
 * Opening an existing image by the names users give it (transport/name.h):
 * "oci:DIR[:tag]", "docker-archive:FILE", or a registry reference.  One
 * loader serves the builder's base images and the push, inspect and diff
 * commands.
 */
#ifndef OCIB_TRANSPORT_SOURCE_H
#define OCIB_TRANSPORT_SOURCE_H

#include "base/error.h"
#include "transport/remote.h"
#include "cache/blobs.h"
#include "oci/image.h"
#include "oci/platform.h"

struct image_source {
    struct oci_image img;
    struct blob_source *srcs; /* one per layer */
    size_t n_srcs;
    struct oci_blob manifest;   /* exact bytes and digest */
    struct oci_blob config;     /* exact bytes and digest */
    struct oci_digest index;    /* "" unless picked from an index */
    struct oci_blob index_blob; /* that index's bytes (registry sources), or empty */
    char *choice;               /* platform picked from an index, or NULL */
    char *mirror;               /* the registries.conf mirror that served it, or NULL */
};

/* Opens name for platform p (NULL: the host's or the only one).  Relative
 * oci:/docker-archive: paths are taken relative to base_dir (NULL: the
 * current directory). */
int image_source_open(const char *name, const char *base_dir, struct cache *c,
                      struct registries *rs, const struct oci_platform *p,
                      struct image_source *ret, struct ocib_error *err);
void image_source_release(struct image_source *s);

#endif
