/*
 * The package databases an image's kept files hold, for the scanner's own
 * files (scan.c walks the layers, pkgdb.c reads what it kept, license.c
 * turns stated licenses into SPDX expressions).  Nothing outside sbom/
 * includes this header.
 */
#ifndef OCIB_SBOM_PKGDB_H
#define OCIB_SBOM_PKGDB_H

#include <jansson.h>
#include <stddef.h>

#include "oci/image.h"
#include "sbom/scan.h"

/* One kept file: its path in the image and its content (NUL-terminated). */
struct sbom_file {
    char *path;
    char *data;
    size_t len;
};

/* What the layer walk found, and what it decided about the layers below. */
struct sbom_files {
    struct sbom_file *files;
    size_t n, alloc;
    json_t *seen;    /* paths an upper layer holds (not directories) */
    json_t *deleted; /* paths an upper layer's whiteout deleted */
    json_t *opaque;  /* directories an upper layer made opaque */
};

/* Appends the packages of every database in f to s (unsorted). */
void sbom_pkgdb_read(const struct sbom_files *f, struct sbom_scan *s);

/* The licenses a machine-readable Debian copyright file (DEP-5) names,
 * joined with " AND " in sorted order; NULL when it is not one or names none. */
char *sbom_dep5_licenses(const char *data);

/* s percent-encoded as a purl component (RFC 3986 unreserved kept); caller
 * frees. */
char *sbom_purl_encode(const char *s);

/* Documents (spdx.c, cyclonedx.c): a package's stable id within a document,
 * from what identifies it ("deb-<16 hex>"), into buf. */
void sbom_package_ref(const struct sbom_package *p, char buf[32]);
/* The image's purl: pkg:oci/NAME@DIGEST?arch=..&repository_url=.. (caller
 * frees). */
struct sbom_subject;
char *sbom_image_purl(const struct sbom_subject *subj);
/* An integrity "sha512-<base64>" as an algorithm ("SHA512") and hex digits
 * (caller frees *ret_hex); -1 when it is not one. */
int sbom_integrity_hex(const char *integrity, const char **ret_alg, char **ret_hex);
void sbom_spdx_document(const struct sbom_scan *s, const struct sbom_subject *subj,
                        struct oci_blob *ret);
void sbom_cyclonedx_document(const struct sbom_scan *s, const struct sbom_subject *subj,
                             struct oci_blob *ret);

#endif
