/*
 * Image indexes of several platforms' images; see index.h.
 */
#include "oci/index.h"
#include "oci/json.h"

#include <string.h>

const char *oci_format_index_type(enum oci_format f)
{
    return f == OCI_FORMAT_DOCKER ? DOCKER_MT_LIST : OCI_MT_INDEX;
}

static json_t *platform_of(const json_t *config)
{
    json_t *p = json_object();

    json_object_set(p, "os", json_object_get(config, "os"));
    json_object_set(p, "architecture", json_object_get(config, "architecture"));
    if (json_is_string(json_object_get(config, "variant")))
        json_object_set(p, "variant", json_object_get(config, "variant"));
    return p;
}

void oci_index_serialize(const struct oci_index_entry *entries, size_t n, enum oci_format f,
                         const json_t *annotations, struct oci_blob *ret)
{
    json_t *list = json_array();
    json_t *idx;

    for (size_t i = 0; i < n; i++) {
        json_t *d = json_pack(
            "{s:s, s:s, s:I, s:o}", "mediaType", oci_format_manifest_type(f), "digest",
            entries[i].manifest->digest.str, "size", (json_int_t)entries[i].manifest->len,
            "platform", platform_of(entries[i].config));

        json_array_append_new(list, d);
    }
    idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
                    oci_format_index_type(f), "manifests", list);
    if (f == OCI_FORMAT_OCI && annotations && json_object_size(annotations))
        json_object_set(idx, "annotations", (json_t *)annotations);
    ret->data = oci_json_canonical(idx, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(idx);
}
