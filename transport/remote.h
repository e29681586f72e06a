/*
 * What the builder does with registries: a pool of clients (one per host,
 * sharing one HTTP transport), base images pulled from references, blobs
 * that live remotely until something needs their bytes, and images pushed.
 *
 * A blob of an image is described by a struct blob_source: a file in the
 * cache or a layout (verified while copied when it came from outside), and
 * possibly the registry repository it can be fetched or mounted from.  Base
 * layers are never downloaded just to be uploaded again to the registry
 * they came from: they are mounted.
 */
#ifndef OCIB_TRANSPORT_REMOTE_H
#define OCIB_TRANSPORT_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "cache/blobs.h"
#include "oci/image.h"
#include "oci/platform.h"
#include "registry/client.h"
#include "registry/reference.h"

struct registries;

/* A pool for the hosts insecure names (plain HTTP) and the others; every
 * host takes its TLS settings from cert_dir when not NULL (--cert-dir),
 * else from its certs.d directory (registry/tlsconf.h). */
int registries_new(char *const *insecure, size_t n_insecure, const char *cert_dir,
                   struct registries **ret, struct ocib_error *err);
void registries_free(struct registries *rs);
/* The client for host (created on first use). */
int registries_get(struct registries *rs, const char *host, struct registry **ret,
                   struct ocib_error *err);

struct blob_source {
    struct oci_digest digest;
    int64_t size;
    char *path;        /* where the bytes are or will be (cache) */
    bool verify;       /* hash while copying from path */
    char *remote_host; /* NULL when only local */
    char *remote_repo;
};

void blob_source_init_local(struct blob_source *b, const struct oci_digest *d, int64_t size,
                            const char *path, bool verify);
void blob_source_copy(const struct blob_source *src, struct blob_source *ret);
void blob_source_release(struct blob_source *b);

/* Makes sure b->path holds the blob, downloading it into the cache (verified)
 * when it is only remote. */
int blob_source_ensure_local(struct blob_source *b, struct cache *c, struct registries *rs,
                             struct ocib_error *err);

/* Pulls the image ref names for platform p: the manifest (through an index
 * when there is one), the config; layers stay remote (blob sources pointing
 * into the cache).  ret_manifest and ret_config get their exact bytes,
 * ret_index (may be NULL) the index's bytes and digest (data NULL when the
 * reference named a manifest);
 * ret_choice (may be NULL) says which platform entry was picked. */
int remote_load_image(struct registries *rs, struct cache *c, const struct reference *ref,
                      const struct oci_platform *p, struct oci_image *ret,
                      struct blob_source **ret_srcs, struct oci_blob *ret_manifest,
                      struct oci_blob *ret_config, struct oci_blob *ret_index,
                      char **ret_choice, struct ocib_error *err);

/* Pushes an image: every blob (in parallel), then the manifest bytes under
 * each tag (or its digest when there is no tag).  config is the config
 * blob; srcs[i] the source of layer i.  With manifest NULL only the blobs
 * are pushed. */
int remote_push_image(struct registries *rs, struct cache *c, const char *host,
                      const char *repo, const struct oci_image *img,
                      const struct blob_source *srcs, const struct oci_blob *config,
                      const struct oci_blob *manifest, const char *manifest_media_type,
                      char *const *tags, size_t n_tags, struct ocib_error *err);

#endif
