/*
 * The SPDX 2.3 JSON document (see sbom.h): the image as the described
 * package (a CONTAINER), its layers (ARCHIVE packages, their digests as
 * SHA256 checksums) and base image, and every package the scan found; the
 * document DESCRIBES the image, which CONTAINS its layers and packages and
 * is a DESCENDANT_OF its base.
 */
#include "sbom/sbom.h"
#include "base/cleanup.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "sbom/pkgdb.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A package with the fields every SPDX 2.3 package carries. */
static json_t *spdx_package(const char *id, const char *name, const char *version,
                            const char *purpose)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s}", "SPDXID", id, "name", name,
                     "versionInfo", version, "downloadLocation", "NOASSERTION",
                     "filesAnalyzed", 0, "licenseConcluded", "NOASSERTION",
                     "licenseDeclared", "NOASSERTION", "copyrightText", "NOASSERTION",
                     "primaryPackagePurpose", purpose);
}

static void add_purl(json_t *pkg, const char *purl)
{
    json_t *refs = json_pack("[{s:s,s:s,s:s}]", "referenceCategory", "PACKAGE-MANAGER",
                             "referenceType", "purl", "referenceLocator", purl);

    json_object_set_new(pkg, "externalRefs", refs);
}

static void add_checksum(json_t *pkg, const char *alg, const char *hex)
{
    json_t *list = json_object_get(pkg, "checksums");

    if (!list) {
        list = json_array();
        json_object_set_new(pkg, "checksums", list);
    }
    json_array_append_new(list,
                          json_pack("{s:s,s:s}", "algorithm", alg, "checksumValue", hex));
}

static void relate(json_t *rels, const char *a, const char *type, const char *b)
{
    json_array_append_new(rels,
                          json_pack("{s:s,s:s,s:s}", "spdxElementId", a, "relationshipType",
                                    type, "relatedSpdxElement", b));
}

static json_t *package_of(const struct sbom_package *p, char id[48])
{
    char ref[32];
    json_t *j;

    sbom_package_ref(p, ref);
    snprintf(id, 48, "SPDXRef-%s", ref);
    j = spdx_package(id, p->name, p->version, "LIBRARY");
    add_purl(j, p->purl);
    if (p->license) {
        _cleanup_free_ char *expr = sbom_license_expression(p->license);

        if (expr)
            json_object_set_new(j, "licenseDeclared", json_string(expr));
        else
            json_object_set_new(j, "licenseComments",
                                json_sprintf("stated: %s", p->license));
    }
    if (p->source)
        json_object_set_new(j, "sourceInfo",
                            json_sprintf("built package from: %s", p->source));
    if (p->integrity) {
        const char *alg;
        _cleanup_free_ char *hex = NULL;

        if (sbom_integrity_hex(p->integrity, &alg, &hex) == 0)
            add_checksum(j, alg, hex);
    }
    json_object_set_new(j, "comment", json_sprintf("found in /%s", p->path));
    return j;
}

void sbom_spdx_document(const struct sbom_scan *s, const struct sbom_subject *subj,
                        struct oci_blob *ret)
{
    const char *name = subj->name ?: "image";
    _cleanup_free_ char *purl = sbom_image_purl(subj);
    _cleanup_free_ char *doc_name = xasprintf("%s@%s", name, subj->manifest->str);
    json_t *pkgs = json_array(), *rels = json_array(), *img, *doc;

    img = spdx_package("SPDXRef-image", name, subj->manifest->str, "CONTAINER");
    add_purl(img, purl);
    add_checksum(img, "SHA256", oci_digest_hex(subj->manifest));
    json_array_append_new(pkgs, img);
    relate(rels, "SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-image");
    if (subj->base_name) {
        json_t *base = spdx_package("SPDXRef-base", subj->base_name,
                                    subj->base_digest ?: "NOASSERTION", "CONTAINER");

        json_array_append_new(pkgs, base);
        relate(rels, "SPDXRef-image", "DESCENDANT_OF", "SPDXRef-base");
    }
    for (size_t i = 0; i < subj->n_layers; i++) {
        char id[48], lname[32];
        const struct oci_digest *d = &subj->layers[i].desc.digest;
        json_t *l;

        snprintf(id, sizeof(id), "SPDXRef-layer-%zu", i + 1);
        snprintf(lname, sizeof(lname), "layer %zu", i + 1);
        l = spdx_package(id, lname, d->str, "ARCHIVE");
        add_checksum(l, "SHA256", oci_digest_hex(d));
        json_object_set_new(l, "comment",
                            json_sprintf("%s, diff_id %s", subj->layers[i].desc.media_type,
                                         subj->layers[i].diff_id.str));
        json_array_append_new(pkgs, l);
        relate(rels, "SPDXRef-image", "CONTAINS", id);
    }
    for (size_t i = 0; i < s->n; i++) {
        char id[48];

        json_array_append_new(pkgs, package_of(&s->pkgs[i], id));
        relate(rels, "SPDXRef-image", "CONTAINS", id);
    }
    doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:[s]},s:[s],s:o,s:o}", "spdxVersion",
                    "SPDX-2.3", "dataLicense", "CC0-1.0", "SPDXID", "SPDXRef-DOCUMENT",
                    "name", doc_name, "documentNamespace", "", "creationInfo", "created",
                    subj->created, "creators", "Tool: ocib-" OCIB_VERSION,
                    "documentDescribes", "SPDXRef-image", "packages", pkgs, "relationships",
                    rels);
    json_object_set_new(
        doc, "documentNamespace",
        json_sprintf("https://ocib.dev/spdx/%s/%s", name, oci_digest_hex(subj->manifest)));
    ret->data = oci_json_canonical(doc, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(doc);
}
