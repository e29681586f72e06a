/*
 * Content digests ("sha256:<64 hex>"), the names of everything ocib stores
 * or pushes.  Only sha256 is produced and accepted.
 */
#ifndef OCIB_OCI_DIGEST_H
#define OCIB_OCI_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/sha256.h"

#define OCI_DIGEST_LEN (7 + SHA256_HEX_LEN) /* "sha256:" + hex */

struct oci_digest {
    char str[OCI_DIGEST_LEN + 1]; /* "" when unset */
};

/* Parses "sha256:<64 lowercase hex>".  *ret untouched on failure. */
int oci_digest_parse(const char *s, struct oci_digest *ret, struct ocib_error *err);
/* True when s is a well-formed digest. */
bool oci_digest_valid(const char *s);
/* The 64 hex digits. */
static inline const char *oci_digest_hex(const struct oci_digest *d)
{
    return d->str + 7;
}
/* Completes a streaming hash into a digest. */
void oci_digest_from_sha256(struct sha256 *h, struct oci_digest *ret);
/* Digest of a buffer. */
void oci_digest_of(const void *buf, size_t len, struct oci_digest *ret);
static inline bool oci_digest_equal(const struct oci_digest *a, const struct oci_digest *b)
{
    return __builtin_strcmp(a->str, b->str) == 0;
}

#endif
