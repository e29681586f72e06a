/*
 * OCI 1.1 artifacts attached to an image: an artifact manifest (one layer,
 * the document; the empty config; a subject), the referrers index that
 * lists them, and the signature manifest cosign writes under
 * "sha256-<hex>.sig" (one simple-signing layer per signature).
 *
 * Every document is canonical JSON; nothing here reads the clock.
 */
#ifndef OCIB_OCI_ARTIFACT_H
#define OCIB_OCI_ARTIFACT_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "oci/image.h"

#define OCI_MT_EMPTY "application/vnd.oci.empty.v1+json"
#define OCI_EMPTY_DIGEST                                                                   \
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define COSIGN_MT_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_SIG_ANNOTATION "dev.cosignproject.cosign/signature"

/* The empty config blob, "{}". */
void oci_empty_blob(struct oci_blob *ret);

/* The artifact manifest for doc (a blob of artifact_type) whose subject is
 * the image manifest subject (of subject_type), annotated
 * org.opencontainers.image.created = created (may be NULL). */
void oci_artifact_manifest(const char *artifact_type, const struct oci_blob *doc,
                           const struct oci_blob *subject, const char *subject_type,
                           const char *created, struct oci_blob *ret);

/* The descriptor a referrers index lists for an artifact manifest
 * (mediaType, digest, size, artifactType, annotations); a new reference. */
json_t *oci_artifact_descriptor(const struct oci_blob *manifest);

/* The referrers index with descriptor added (kept sorted by digest, no
 * duplicates) to index (NULL: an empty one) into *ret; *ret_changed says
 * whether it differs from index.  Fails on an index that does not parse. */
int oci_referrers_add(const char *index, size_t len, const json_t *descriptor,
                      struct oci_blob *ret, bool *ret_changed, struct ocib_error *err);
/* Whether the referrers index lists digest. */
bool oci_referrers_has(const char *index, size_t len, const struct oci_digest *digest);

/* The cosign tag of an image manifest: "sha256-<hex>.sig"; and the fallback
 * referrers tag "sha256-<hex>" (caller frees). */
char *oci_cosign_tag(const struct oci_digest *d);
char *oci_referrers_tag(const struct oci_digest *d);

/* cosign's simple-signing payload for the manifest digest under
 * docker_reference ("host/repo[:tag]"). */
void oci_simple_signing_payload(const char *docker_reference, const struct oci_digest *d,
                                struct oci_blob *ret);
/* The signature manifest holding one layer, payload, with signature_b64;
 * *ret_config gets its config (whose diff_ids name the payload). */
void oci_cosign_manifest(const struct oci_blob *payload, const char *signature_b64,
                         struct oci_blob *ret_config, struct oci_blob *ret);

#endif
