/*
 * The CycloneDX 1.5 JSON document (see sbom.h): the image as
 * metadata.component (a container, its layer digests as properties), its
 * base as a container component, every package the scan found as a
 * library, and the image depending on all of them.
 */
#include "sbom/sbom.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "sbom/pkgdb.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CycloneDX's licenses array for a stated license. */
static json_t *licenses_of(const char *stated)
{
    _cleanup_free_ char *expr = sbom_license_expression(stated);

    if (expr && sbom_license_is_id(expr))
        return json_pack("[{s:{s:s}}]", "license", "id", expr);
    if (expr)
        return json_pack("[{s:s}]", "expression", expr);
    return json_pack("[{s:{s:s}}]", "license", "name", stated);
}

static json_t *property(const char *name, const char *value)
{
    return json_pack("{s:s,s:s}", "name", name, "value", value);
}

static json_t *component_of(const struct sbom_package *p, char ref[32])
{
    json_t *c;

    sbom_package_ref(p, ref);
    c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[o]}", "type", "library", "bom-ref", ref, "name",
                  p->name, "version", p->version, "purl", p->purl, "properties",
                  property("ocib:path", p->path));
    if (p->license)
        json_object_set_new(c, "licenses", licenses_of(p->license));
    if (p->arch)
        json_array_append_new(json_object_get(c, "properties"),
                              property("ocib:arch", p->arch));
    if (p->source)
        json_array_append_new(json_object_get(c, "properties"),
                              property("ocib:source", p->source));
    if (p->integrity) {
        const char *alg;
        _cleanup_free_ char *hex = NULL;

        if (sbom_integrity_hex(p->integrity, &alg, &hex) == 0) {
            /* CycloneDX spells them SHA-512, SHA-256, SHA-1. */
            _cleanup_free_ char *name = xasprintf("SHA-%s", alg + 3);

            json_object_set_new(c, "hashes",
                                json_pack("[{s:s,s:s}]", "alg", name, "content", hex));
        }
    }
    return c;
}

/* A urn:uuid derived from the manifest digest (the same image, the same id). */
static json_t *serial_number(const struct oci_digest *d)
{
    _cleanup_free_ char *seed = xasprintf("cyclonedx\n%s", d->str);
    char h[SHA256_HEX_LEN + 1];

    sha256_hex(seed, strlen(seed), h);
    return json_sprintf("urn:uuid:%.8s-%.4s-5%.3s-8%.3s-%.12s", h, h + 8, h + 13, h + 17,
                        h + 20);
}

void sbom_cyclonedx_document(const struct sbom_scan *s, const struct sbom_subject *subj,
                             struct oci_blob *ret)
{
    const char *name = subj->name ?: "image";
    _cleanup_free_ char *purl = sbom_image_purl(subj);
    json_t *comps = json_array(), *deps = json_array(), *props = json_array(), *img, *doc;

    for (size_t i = 0; i < subj->n_layers; i++)
        json_array_append_new(props,
                              property("ocib:layer", subj->layers[i].desc.digest.str));
    if (subj->platform)
        json_array_append_new(props, property("ocib:platform", subj->platform));
    img = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "type", "container", "bom-ref", "image",
                    "name", name, "version", subj->manifest->str, "purl", purl,
                    "properties", props);
    if (subj->base_name) {
        json_t *base = json_pack("{s:s,s:s,s:s}", "type", "container", "bom-ref", "base",
                                 "name", subj->base_name);

        if (subj->base_digest)
            json_object_set_new(base, "version", json_string(subj->base_digest));
        json_array_append_new(comps, base);
        json_array_append_new(deps, json_string("base"));
    }
    for (size_t i = 0; i < s->n; i++) {
        char ref[32];

        json_array_append_new(comps, component_of(&s->pkgs[i], ref));
        json_array_append_new(deps, json_string(ref));
    }
    doc = json_pack("{s:s,s:s,s:o,s:i,s:{s:s,s:{s:[{s:s,s:s,s:s}]},s:o},s:o,s:[{s:s,s:o}]}",
                    "bomFormat", "CycloneDX", "specVersion", "1.5", "serialNumber",
                    serial_number(subj->manifest), "version", 1, "metadata", "timestamp",
                    subj->created, "tools", "components", "type", "application", "name",
                    "ocib", "version", OCIB_VERSION, "component", img, "components", comps,
                    "dependencies", "ref", "image", "dependsOn", deps);
    ret->data = oci_json_canonical(doc, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(doc);
}
