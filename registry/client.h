/*
 * The OCI distribution API client for one registry host.
 *
 * struct registry holds the host's endpoint (https, or plain http for
 * --insecure-registry hosts and loopback ones without TLS settings), its
 * TLS settings (registry/tlsconf.h), its credentials (looked up
 * lazily in Docker's config.json) and its auth state: anonymous, Basic, or
 * Bearer tokens obtained from the WWW-Authenticate challenge's realm for the
 * scopes each request needs (a mount asks for pull on the source repository
 * too), cached per scope set and refreshed once on a 401.  It is safe to use
 * from several threads at once.
 *
 * Every manifest and blob read is verified against its digest while it
 * streams.  Nothing here prints; errors name the registry, repository and
 * digest concerned, never a credential.
 */
#ifndef OCIB_REGISTRY_CLIENT_H
#define OCIB_REGISTRY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "oci/digest.h"
#include "registry/http.h"

struct registry;

/* Statistics, for tests and progress. */
struct registry_stats {
    unsigned long blobs_uploaded, blobs_skipped, blobs_mounted, bytes_uploaded;
    unsigned long blobs_downloaded, bytes_downloaded;
};

/* Opens a client for host (as in a reference: "docker.io", "localhost:5000").
 * insecure makes it plain HTTP.  The host's TLS settings are cert_dir's
 * when not NULL, else its certs.d directory's (registry/tlsconf.h); a
 * loopback host is plain HTTP unless it has such settings.  Fails on broken
 * TLS settings.  http is shared and must outlive the registry. */
int registry_open(const char *host, bool insecure, const char *cert_dir,
                  struct http_client *http, struct registry **ret, struct ocib_error *err);
void registry_free(struct registry *r);
const char *registry_host(const struct registry *r);
void registry_get_stats(struct registry *r, struct registry_stats *ret);

/* Uses these credentials instead of config.json's (ocib login). */
void registry_set_credentials(struct registry *r, const char *user, const char *secret);

/* Checks that the registry accepts the credentials (GET /v2/ and, for Bearer
 * auth, a token request).  Fails clearly on wrong credentials. */
int registry_check_login(struct registry *r, struct ocib_error *err);

/* A manifest or index as fetched. */
struct registry_manifest {
    char *data;
    size_t len;
    char *media_type;
    struct oci_digest digest;
};
void registry_manifest_release(struct registry_manifest *m);

/* GETs repo's manifest for ref (a tag or a digest), with the full Accept
 * list (OCI and Docker v2 manifests and indexes); verifies the digest. */
int registry_manifest_get(struct registry *r, const char *repo, const char *ref,
                          struct registry_manifest *ret, struct ocib_error *err);

/* PUTs a manifest under ref (tag or digest). */
int registry_manifest_put(struct registry *r, const char *repo, const char *ref,
                          const char *media_type, const void *data, size_t len,
                          struct ocib_error *err);

/* The same; *ret_subject (may be NULL) says whether the registry answered
 * with OCI-Subject (it keeps the referrers of the manifest's subject). */
int registry_manifest_put_subject(struct registry *r, const char *repo, const char *ref,
                                  const char *media_type, const void *data, size_t len,
                                  bool *ret_subject, struct ocib_error *err);

/* The referrers index of subject in repo: from the referrers API
 * (GET /v2/<repo>/referrers/<digest>, *ret_api true), else, when the
 * registry has none (404), from the fallback tag "sha256-<hex>" (an empty
 * index when that tag does not exist).  *ret is the index's bytes (caller
 * frees), NUL-terminated. */
int registry_referrers_get(struct registry *r, const char *repo,
                           const struct oci_digest *subject, char **ret, size_t *ret_len,
                           bool *ret_api, struct ocib_error *err);

/* Adds descriptor (a JSON object: an artifact manifest's descriptor) to the
 * fallback referrers tag of subject: read, add, write, then read again
 * after a pause to see that no concurrent writer replaced it, and start
 * over from a fresh read when one did (a bounded number of times). */
int registry_referrers_tag_add(struct registry *r, const char *repo,
                               const struct oci_digest *subject, const char *descriptor,
                               struct ocib_error *err);

/* HEAD: 1 when repo has blob d, 0 when not. */
int registry_blob_exists(struct registry *r, const char *repo, const struct oci_digest *d,
                         struct ocib_error *err);

/* Downloads blob d (size bytes, -1 if unknown) into fd from offset 0,
 * verifying the digest while it streams; on a mismatch fails naming the
 * digest (the caller must discard fd's content). */
int registry_blob_get(struct registry *r, const char *repo, const struct oci_digest *d,
                      int64_t size, int fd, struct ocib_error *err);

/* Small blobs (manifest-sized) into memory, verified. */
int registry_blob_get_mem(struct registry *r, const char *repo, const struct oci_digest *d,
                          size_t cap, char **ret, size_t *ret_len, struct ocib_error *err);

/* Makes repo hold blob d: skipped when present (HEAD), mounted from
 * mount_from (a repository of the same registry, may be NULL) when
 * possible, else uploaded from fd (size bytes) or from data (when fd < 0):
 * monolithically when small, in chunks when large or when the registry asks
 * (413, OCI-Chunk-Min-Length), resuming an interrupted upload from the
 * offset the registry reports. */
int registry_blob_push(struct registry *r, const char *repo, const struct oci_digest *d,
                       int64_t size, int fd, const void *data, const char *mount_from,
                       struct ocib_error *err);

/* Tries to make repo hold blob d without sending its bytes: 1 when it is
 * there already or was mounted from mount_from, 0 when an upload is needed. */
int registry_blob_mount(struct registry *r, const char *repo, const struct oci_digest *d,
                        const char *mount_from, struct ocib_error *err);
#endif
