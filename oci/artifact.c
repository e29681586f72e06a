/*
 * Artifact, referrers and signature documents; see artifact.h.
 */
#include "oci/artifact.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <stdlib.h>
#include <string.h>

static void blob_of(json_t *doc, struct oci_blob *ret)
{
    ret->data = oci_json_canonical(doc, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(doc);
}

void oci_empty_blob(struct oci_blob *ret)
{
    ret->data = xstrdup("{}");
    ret->len = 2;
    oci_digest_of(ret->data, ret->len, &ret->digest);
}

static json_t *desc(const char *mt, const struct oci_blob *b)
{
    return json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", b->digest.str, "size",
                     (json_int_t)b->len);
}

void oci_artifact_manifest(const char *artifact_type, const struct oci_blob *doc,
                           const struct oci_blob *subject, const char *subject_type,
                           const char *created, struct oci_blob *ret)
{
    json_t *m = json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:i,s:s},s:[o],s:o}", "schemaVersion", 2,
                          "mediaType", OCI_MT_MANIFEST, "artifactType", artifact_type,
                          "config", "mediaType", OCI_MT_EMPTY, "digest", OCI_EMPTY_DIGEST,
                          "size", 2, "data", "e30=", "layers", desc(artifact_type, doc),
                          "subject", desc(subject_type, subject));

    if (created)
        json_object_set_new(
            m, "annotations",
            json_pack("{s:s}", "org.opencontainers.image.created", created));
    blob_of(m, ret);
}

json_t *oci_artifact_descriptor(const struct oci_blob *manifest)
{
    json_t *m = json_loadb(manifest->data, manifest->len, 0, NULL);
    json_t *d = desc(OCI_MT_MANIFEST, manifest);
    json_t *v;

    if ((v = json_object_get(m, "artifactType")))
        json_object_set(d, "artifactType", v);
    if ((v = json_object_get(m, "annotations")))
        json_object_set(d, "annotations", v);
    json_decref(m);
    return d;
}

static int cmp_digest(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "digest"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "digest"));

    return strcmp(x ?: "", y ?: "");
}

int oci_referrers_add(const char *index, size_t len, const json_t *descriptor,
                      struct oci_blob *ret, bool *ret_changed, struct ocib_error *err)
{
    const char *want = json_string_value(json_object_get(descriptor, "digest"));
    json_t *idx = NULL, *list, *e, **all;
    size_t i, n;

    if (index && oci_json_parse(index, len, "referrers index", &idx, err) < 0)
        return -1;
    if (!idx)
        idx = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
                        "manifests");
    list = json_object_get(idx, "manifests");
    if (!json_is_array(list)) {
        json_decref(idx);
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "referrers index: no \"manifests\" list");
    }
    *ret_changed = true;
    json_array_foreach(list, i, e) if (!strcmp(oci_json_str(e, "digest") ?: "",
                                               want)) *ret_changed = false;
    if (*ret_changed)
        json_array_append(list, (json_t *)descriptor);
    n = json_array_size(list);
    all = xcalloc(n + 1, sizeof(*all));
    for (i = 0; i < n; i++)
        all[i] = json_incref(json_array_get(list, i));
    qsort(all, n, sizeof(*all), cmp_digest);
    json_array_clear(list);
    for (i = 0; i < n; i++)
        json_array_append_new(list, all[i]);
    free(all);
    blob_of(idx, ret);
    return 0;
}

bool oci_referrers_has(const char *index, size_t len, const struct oci_digest *digest)
{
    json_t *idx = json_loadb(index, len, 0, NULL), *e;
    bool has = false;
    size_t i;

    json_array_foreach(json_object_get(idx, "manifests"), i, e) has |=
        !strcmp(oci_json_str(e, "digest") ?: "", digest->str);
    json_decref(idx);
    return has;
}

char *oci_cosign_tag(const struct oci_digest *d)
{
    return xasprintf("sha256-%s.sig", oci_digest_hex(d));
}

char *oci_referrers_tag(const struct oci_digest *d)
{
    return xasprintf("sha256-%s", oci_digest_hex(d));
}

void oci_simple_signing_payload(const char *docker_reference, const struct oci_digest *d,
                                struct oci_blob *ret)
{
    json_t *p =
        json_pack("{s:{s:{s:s},s:{s:s},s:s},s:n}", "critical", "identity",
                  "docker-reference", docker_reference, "image", "docker-manifest-digest",
                  d->str, "type", "cosign container image signature", "optional");

    blob_of(p, ret);
}

void oci_cosign_manifest(const struct oci_blob *payload, const char *signature_b64,
                         struct oci_blob *ret_config, struct oci_blob *ret)
{
    json_t *cfg =
        json_pack("{s:s,s:s,s:{s:s,s:[s]},s:{}}", "architecture", "", "os", "", "rootfs",
                  "type", "layers", "diff_ids", payload->digest.str, "config");
    json_t *layer = desc(COSIGN_MT_SIMPLESIGNING, payload);
    json_t *m;

    json_object_set_new(layer, "annotations",
                        json_pack("{s:s}", COSIGN_SIG_ANNOTATION, signature_b64));
    blob_of(cfg, ret_config);
    m = json_pack("{s:i,s:s,s:o,s:[o]}", "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST,
                  "config", desc(OCI_MT_CONFIG, ret_config), "layers", layer);
    blob_of(m, ret);
}
