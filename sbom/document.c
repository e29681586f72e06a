/*
 * What the SPDX and CycloneDX writers share: the format names, package ids,
 * the image's purl and npm integrity digests.
 */
#include "sbom/sbom.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/xalloc.h"
#include "sbom/pkgdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sbom_format_type(enum sbom_format f)
{
    return f == SBOM_CYCLONEDX ? SBOM_CYCLONEDX_TYPE : SBOM_SPDX_TYPE;
}

int sbom_format_parse(const char *s, enum sbom_format *ret)
{
    if (!strcmp(s, "spdx"))
        *ret = SBOM_SPDX;
    else if (!strcmp(s, "cyclonedx"))
        *ret = SBOM_CYCLONEDX;
    else
        return -1;
    return 0;
}

void sbom_document(enum sbom_format f, const struct sbom_scan *s,
                   const struct sbom_subject *subj, struct oci_blob *ret)
{
    if (f == SBOM_CYCLONEDX)
        sbom_cyclonedx_document(s, subj, ret);
    else
        sbom_spdx_document(s, subj, ret);
}

void sbom_package_ref(const struct sbom_package *p, char buf[32])
{
    _cleanup_free_ char *id = xasprintf("%s\n%s\n%s\n%s\n%s", sbom_kind_name(p->kind),
                                        p->name, p->version, p->arch ?: "", p->path);
    char hex[SHA256_HEX_LEN + 1];

    sha256_hex(id, strlen(id), hex);
    snprintf(buf, 32, "%s-%.16s", sbom_kind_name(p->kind), hex);
}

char *sbom_image_purl(const struct sbom_subject *subj)
{
    const char *name = subj->name ?: "image";
    const char *last = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    _cleanup_free_ char *digest = sbom_purl_encode(subj->manifest->str);
    _cleanup_free_ char *repo = subj->name ? sbom_purl_encode(subj->name) : NULL;
    const char *slash = subj->platform ? strchr(subj->platform, '/') : NULL;
    _cleanup_free_ char *arch = slash ? sbom_purl_encode(slash + 1) : NULL;

    return xasprintf(
        "pkg:oci/%s@%s%s%s%s%s", last, digest, arch ? "?arch=" : "", arch ?: "",
        repo ? (arch ? "&repository_url=" : "?repository_url=") : "", repo ?: "");
}

int sbom_integrity_hex(const char *integrity, const char **ret_alg, char **ret_hex)
{
    static const struct {
        const char *prefix, *alg;
    } algs[] = {{"sha512-", "SHA512"},
                {"sha384-", "SHA384"},
                {"sha256-", "SHA256"},
                {"sha1-", "SHA1"}};

    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        size_t pl = strlen(algs[i].prefix);
        _cleanup_free_ char *raw = NULL;
        size_t len;
        char *hex;

        if (strncmp(integrity, algs[i].prefix, pl))
            continue;
        if (base64_decode(integrity + pl, &raw, &len) < 0 || !len)
            return -1;
        hex = xmalloc(len * 2 + 1);
        for (size_t k = 0; k < len; k++)
            snprintf(hex + 2 * k, 3, "%02x", (unsigned char)raw[k]);
        *ret_alg = algs[i].alg;
        *ret_hex = hex;
        return 0;
    }
    return -1;
}
