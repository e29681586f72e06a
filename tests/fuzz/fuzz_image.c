/*
 * Fuzzes the image data model (oci/image.c): a manifest and a config, as a
 * registry or a layout hands them over, cut apart at a "\n--config--\n"
 * line.
 *
 * Beyond not crashing: an image that loads serialises to a manifest and a
 * config that load again and serialise to the same bytes.
 */
#include "fuzz.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/mediatype.h"

/* Reads every descriptor of a manifest or index, as a client picking one
 * would, and matches each platform against a fixed one. */
static void read_descriptors(const char *buf, size_t len)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_platform p;
    const char *keys[] = {"layers", "manifests"};
    json_t *j, *e;
    size_t i, k;

    if (oci_platform_parse("linux/arm64/v8", &p, &err) < 0)
        abort();
    if (oci_json_parse(buf, len, "fuzz", &j, &err) < 0)
        return;
    for (k = 0; k < 2; k++)
        json_array_foreach(json_object_get(j, keys[k]), i, e)
        {
            struct oci_descriptor d;

            oci_platform_match_json(&p, json_object_get(e, "platform"));
            if (oci_descriptor_from_json(e, "fuzz", &d, &err) == 0) {
                oci_mt_is_index(d.media_type);
                oci_mt_layer_to_oci(d.media_type);
                oci_descriptor_release(&d);
            }
        }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_descriptor cdesc;
    struct oci_image img, again;
    struct oci_blob c1, m1, c2, m2;
    const uint8_t *config;
    size_t config_len, manifest_len;

    manifest_len = fuzz_split(data, size, "\n--config--\n", &config, &config_len);
    if (!config) {
        config = (const uint8_t *)"{}";
        config_len = 2;
    }
    read_descriptors((const char *)data, manifest_len);
    if (oci_manifest_config_descriptor((const char *)data, manifest_len, "fuzz", &cdesc,
                                       &err) == 0)
        oci_descriptor_release(&cdesc);
    if (oci_image_load((const char *)data, manifest_len, (const char *)config, config_len,
                       "fuzz", &img, &err) < 0)
        return 0;
    oci_image_serialize(&img, &c1, &m1);
    if (oci_image_load(m1.data, m1.len, c1.data, c1.len, "again", &again, &err) < 0) {
        fprintf(stderr, "fuzz: a serialised image does not load: %s\n", err.msg);
        abort();
    }
    oci_image_serialize(&again, &c2, &m2);
    if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) != 0 || m1.len != m2.len ||
        memcmp(m1.data, m2.data, m1.len) != 0)
        abort();
    oci_blob_release(&c1);
    oci_blob_release(&m1);
    oci_blob_release(&c2);
    oci_blob_release(&m2);
    oci_image_release(&again);
    oci_image_release(&img);
    return 0;
}
