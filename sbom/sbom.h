/*
 * SBOM documents of an image: SPDX 2.3 JSON and CycloneDX 1.5 JSON from a
 * scan (sbom/scan.h) and what the image is.
 *
 * Both documents are functions of their inputs alone: packages in the
 * scan's order, the SPDX documentNamespace and the CycloneDX serialNumber
 * derived from the image manifest's digest, the one time in them the
 * image's created time (SOURCE_DATE_EPOCH), canonical JSON (sorted keys).
 */
#ifndef OCIB_SBOM_SBOM_H
#define OCIB_SBOM_SBOM_H

#include <stdbool.h>
#include <stddef.h>

#include "oci/digest.h"
#include "oci/image.h"
#include "sbom/scan.h"

enum sbom_format { SBOM_NONE, SBOM_SPDX, SBOM_CYCLONEDX };

#define SBOM_SPDX_TYPE "application/spdx+json"
#define SBOM_CYCLONEDX_TYPE "application/vnd.cyclonedx+json"

/* What the SBOM describes. */
struct sbom_subject {
    const char *name;                  /* "host/repo", or NULL */
    const struct oci_digest *manifest; /* the image manifest's digest */
    const char *platform;              /* "linux/amd64" */
    const char *created;               /* RFC 3339 */
    const struct oci_layer *layers;    /* the image's layers */
    size_t n_layers;
    const char *base_name;   /* the base's reference, NULL for scratch */
    const char *base_digest; /* its manifest digest, or NULL */
};

/* The document in format f into *ret (caller releases). */
void sbom_document(enum sbom_format f, const struct sbom_scan *s,
                   const struct sbom_subject *subj, struct oci_blob *ret);
/* The media type (artifactType) of format f. */
const char *sbom_format_type(enum sbom_format f);
/* "spdx" or "cyclonedx" into *ret; -1 on another word. */
int sbom_format_parse(const char *s, enum sbom_format *ret);

/* An SPDX license expression for a stated license (SPDX ids, DEP-5 short
 * names, and/or), or NULL when some part is not known (caller frees). */
char *sbom_license_expression(const char *stated);
/* Whether s is exactly an id of the SPDX license list ocib knows. */
bool sbom_license_is_id(const char *s);

#endif
