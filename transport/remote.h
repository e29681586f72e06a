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
/* Where retries are announced (registry/http.h). */
void registries_set_notify(struct registries *rs, http_notify_fn fn, void *opaque);
/* Body bytes received and sent so far over every registry (any thread). */
void registries_bytes(struct registries *rs, uint64_t *ret_in, uint64_t *ret_out);
/* The client for host (created on first use). */
int registries_get(struct registries *rs, const char *host, struct registry **ret,
                   struct ocib_error *err);

/* Fails when registries.conf blocks host/repo (pushes check this; pulls
 * below do it themselves). */
int registries_check_push(struct registries *rs, const char *host, const char *repo,
                          struct ocib_error *err);

/*
 * Pulls through registries.conf (registry/regconf.h): host/repo is looked up
 * there, and its mirrors that serve this kind of pull (pull-from-mirror;
 * blobs from every mirror) are tried in order before the name's own
 * location, on any failure of the one before.  What a mirror serves is
 * verified as the registry's own is: a manifest asked for by digest and
 * every blob against that digest.  A blocked name fails.  When every place
 * fails, the error is the own location's, followed by each mirror's.
 */

/* The manifest of host/repo for ref (a tag or a digest); *ret_mirror (may
 * be NULL) gets "host/repo" of the mirror that served it, NULL when the
 * name's own location did (caller frees). */
int remote_manifest_get(struct registries *rs, const char *host, const char *repo,
                        const char *ref, struct registry_manifest *ret, char **ret_mirror,
                        struct ocib_error *err);
/* Blob d of host/repo into fd (truncated first), as registry_blob_get. */
int remote_blob_get(struct registries *rs, const char *host, const char *repo,
                    const struct oci_digest *d, int64_t size, int fd,
                    struct ocib_error *err);
/* Blob d into memory, as registry_blob_get_mem. */
int remote_blob_get_mem(struct registries *rs, const char *host, const char *repo,
                        const struct oci_digest *d, size_t cap, char **ret, size_t *ret_len,
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
 * ret_choice (may be NULL) says which platform entry was picked, ret_mirror
 * (may be NULL) which mirror served the manifest (NULL: none). */
int remote_load_image(struct registries *rs, struct cache *c, const struct reference *ref,
                      const struct oci_platform *p, struct oci_image *ret,
                      struct blob_source **ret_srcs, struct oci_blob *ret_manifest,
                      struct oci_blob *ret_config, struct oci_blob *ret_index,
                      char **ret_choice, char **ret_mirror, struct ocib_error *err);

/* Pushes an image (to host itself, never a mirror; failing when
 * registries.conf blocks host/repo): every blob (in parallel), then the manifest bytes
 * under each tag (or its digest when there is no tag).  config is the config blob; srcs[i]
 * the source of layer i.  With manifest NULL only the blobs are pushed. */
int remote_push_image(struct registries *rs, struct cache *c, const char *host,
                      const char *repo, const struct oci_image *img,
                      const struct blob_source *srcs, const struct oci_blob *config,
                      const struct oci_blob *manifest, const char *manifest_media_type,
                      char *const *tags, size_t n_tags, struct ocib_error *err);

/* Puts a manifest or an index whose every manifest and blob is already
 * there (several platforms' images) under each tag, or its digest. */
int remote_push_manifest(struct registries *rs, const char *host, const char *repo,
                         const struct oci_blob *doc, const char *media_type,
                         char *const *tags, size_t n_tags, struct ocib_error *err);

/* Pushes an artifact (attach.c): each of blobs (held in memory), then the
 * manifest under tag (NULL: its digest).  With referrer, the manifest's
 * subject lists it: the registry keeps that when it answers with
 * OCI-Subject, else the fallback referrers tag gets it (client.h). */
int remote_push_artifact(struct registries *rs, const char *host, const char *repo,
                         const struct oci_blob *manifest, const struct oci_blob *blobs,
                         size_t n_blobs, const char *tag, bool referrer,
                         struct ocib_error *err);

#endif
