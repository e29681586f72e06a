/*
 * Digest parsing and computing; see digest.h.
 */
#include "oci/digest.h"

#include <string.h>

bool oci_digest_valid(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != OCI_DIGEST_LEN)
        return false;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int oci_digest_parse(const char *s, struct oci_digest *ret, struct ocib_error *err)
{
    if (!oci_digest_valid(s))
        return ocib_error_set(
            err, "invalid digest '%.80s': expected sha256:<64 lowercase hex>", s);
    memcpy(ret->str, s, OCI_DIGEST_LEN + 1);
    return 0;
}

void oci_digest_from_sha256(struct sha256 *h, struct oci_digest *ret)
{
    memcpy(ret->str, "sha256:", 7);
    sha256_final_hex(h, ret->str + 7);
}

void oci_digest_of(const void *buf, size_t len, struct oci_digest *ret)
{
    memcpy(ret->str, "sha256:", 7);
    sha256_hex(buf, len, ret->str + 7);
}
