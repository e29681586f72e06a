/*
 * Unit tests for oci/image: the image config and manifest model, how base
 * images (OCI or Docker v2 schema 2) are loaded, and that the manifest ocib
 * writes describes exactly the config bytes it writes next to it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "oci/digest.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/mediatype.h"

static const struct oci_platform amd64 = {"linux", "amd64", ""};
static const struct oci_platform armv7 = {"linux", "arm", "v7"};

/* A layer whose digests are derived from a seed, so that they differ. */
static struct oci_layer make_layer(const char *seed, const char *mt, int64_t size)
{
    struct oci_layer l;
    char buf[64];

    memset(&l, 0, sizeof(l));
    snprintf(buf, sizeof(buf), "blob-%s", seed);
    oci_digest_of(buf, strlen(buf), &l.desc.digest);
    snprintf(buf, sizeof(buf), "tar-%s", seed);
    oci_digest_of(buf, strlen(buf), &l.diff_id);
    l.desc.media_type = (char *)mt;
    l.desc.size = size;
    return l;
}

static json_t *parse_or_fail(const char *buf, size_t len)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    if (oci_json_parse(buf, len, "test", &v, &err) < 0)
        fail_msg("%s", err.msg);
    return v;
}

static void test_init_gives_empty_config_for_the_platform(void **state)
{
    struct oci_image img;

    oci_image_init(&img, &amd64);
    assert_int_equal(img.n_layers, 0);
    assert_string_equal(oci_json_str(img.config, "architecture"), "amd64");
    assert_string_equal(oci_json_str(img.config, "os"), "linux");
    assert_null(json_object_get(img.config, "variant"));
    assert_true(json_is_object(json_object_get(img.config, "config")));
    assert_string_equal(oci_json_str(json_object_get(img.config, "rootfs"), "type"),
                        "layers");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(img.config, "rootfs"), "diff_ids")),
        0);
    assert_true(json_is_array(json_object_get(img.config, "history")));
    assert_true(json_is_object(img.annotations));
    oci_image_release(&img);

    oci_image_init(&img, &armv7);
    assert_string_equal(oci_json_str(img.config, "variant"), "v7");
    oci_image_release(&img);
}

static void test_add_layer_keeps_diff_ids_and_history_in_step(void **state)
{
    struct oci_image img;
    struct oci_layer l1 = make_layer("1", OCI_MT_LAYER_GZIP, 100);
    struct oci_layer l2 = make_layer("2", OCI_MT_LAYER_ZSTD, 200);
    char *mt = strdup(OCI_MT_LAYER_GZIP);
    json_t *diff_ids, *history, *h;

    oci_image_init(&img, &amd64);
    /* The image must take its own copy of the media type. */
    l1.desc.media_type = mt;
    oci_image_add_layer(&img, &l1, "1970-01-01T00:00:00Z", "ocib copy", "first");
    memset(mt, 'X', strlen(mt));
    free(mt);
    oci_image_add_layer(&img, &l2, "1970-01-01T00:00:01Z", "ocib run", NULL);

    assert_int_equal(img.n_layers, 2);
    assert_string_equal(img.layers[0].desc.media_type, OCI_MT_LAYER_GZIP);
    assert_string_equal(img.layers[1].desc.media_type, OCI_MT_LAYER_ZSTD);
    assert_true(oci_digest_equal(&img.layers[0].diff_id, &l1.diff_id));
    assert_true(oci_digest_equal(&img.layers[1].desc.digest, &l2.desc.digest));
    assert_int_equal(img.layers[1].desc.size, 200);

    diff_ids = json_object_get(json_object_get(img.config, "rootfs"), "diff_ids");
    history = json_object_get(img.config, "history");
    assert_int_equal(json_array_size(diff_ids), 2);
    assert_int_equal(json_array_size(history), 2);
    assert_string_equal(json_string_value(json_array_get(diff_ids, 0)), l1.diff_id.str);
    assert_string_equal(json_string_value(json_array_get(diff_ids, 1)), l2.diff_id.str);

    h = json_array_get(history, 0);
    assert_string_equal(oci_json_str(h, "created"), "1970-01-01T00:00:00Z");
    assert_string_equal(oci_json_str(h, "created_by"), "ocib copy");
    assert_string_equal(oci_json_str(h, "comment"), "first");
    h = json_array_get(history, 1);
    assert_string_equal(oci_json_str(h, "created_by"), "ocib run");
    assert_null(json_object_get(h, "comment"));
    oci_image_release(&img);
}

static void
test_add_layer_creates_rootfs_and_history_if_a_base_config_lacks_them(void **state)
{
    struct oci_image img;
    struct oci_layer l = make_layer("x", OCI_MT_LAYER_TAR, 1);

    oci_image_init(&img, &amd64);
    json_object_del(img.config, "rootfs");
    json_object_del(img.config, "history");
    oci_image_add_layer(&img, &l, "1970-01-01T00:00:00Z", "x", NULL);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(img.config, "rootfs"), "diff_ids")),
        1);
    assert_int_equal(json_array_size(json_object_get(img.config, "history")), 1);
    oci_image_release(&img);
}

static void test_serialize_manifest_describes_the_config_bytes(void **state)
{
    struct oci_image img;
    struct oci_layer l1 = make_layer("1", OCI_MT_LAYER_GZIP, 123);
    struct oci_layer l2 = make_layer("2", OCI_MT_LAYER_TAR, 4567);
    struct oci_blob config, manifest;
    struct oci_digest d;
    json_t *m, *cdesc, *layers, *c;
    char *canon;

    oci_image_init(&img, &amd64);
    oci_image_add_layer(&img, &l1, "1970-01-01T00:00:00Z", "a", NULL);
    oci_image_add_layer(&img, &l2, "1970-01-01T00:00:00Z", "b", NULL);
    oci_image_serialize(&img, &config, &manifest);

    oci_digest_of(config.data, config.len, &d);
    assert_true(oci_digest_equal(&d, &config.digest));
    oci_digest_of(manifest.data, manifest.len, &d);
    assert_true(oci_digest_equal(&d, &manifest.digest));
    assert_int_equal(strlen(config.data), config.len);

    /* The config blob is the canonical form of the config. */
    canon = oci_json_canonical(img.config, NULL);
    assert_string_equal(config.data, canon);
    free(canon);
    c = parse_or_fail(config.data, config.len);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(c, "rootfs"), "diff_ids")), 2);
    json_decref(c);

    m = parse_or_fail(manifest.data, manifest.len);
    assert_int_equal(json_integer_value(json_object_get(m, "schemaVersion")), 2);
    assert_string_equal(oci_json_str(m, "mediaType"), OCI_MT_MANIFEST);
    cdesc = json_object_get(m, "config");
    assert_string_equal(oci_json_str(cdesc, "mediaType"), OCI_MT_CONFIG);
    assert_string_equal(oci_json_str(cdesc, "digest"), config.digest.str);
    assert_int_equal(json_integer_value(json_object_get(cdesc, "size")), config.len);
    layers = json_object_get(m, "layers");
    assert_int_equal(json_array_size(layers), 2);
    assert_string_equal(oci_json_str(json_array_get(layers, 0), "digest"),
                        l1.desc.digest.str);
    assert_string_equal(oci_json_str(json_array_get(layers, 0), "mediaType"),
                        OCI_MT_LAYER_GZIP);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(layers, 0), "size")),
                     123);
    assert_string_equal(oci_json_str(json_array_get(layers, 1), "digest"),
                        l2.desc.digest.str);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(layers, 1), "size")),
                     4567);
    /* No empty annotations object. */
    assert_null(json_object_get(m, "annotations"));
    /* Canonical: serialising the parsed manifest again gives the same bytes. */
    canon = oci_json_canonical(m, NULL);
    assert_string_equal(canon, manifest.data);
    free(canon);
    json_decref(m);

    oci_blob_release(&config);
    oci_blob_release(&manifest);
    oci_image_release(&img);
}

static void test_serialize_is_reproducible_and_carries_annotations(void **state)
{
    struct oci_image img;
    struct oci_layer l = make_layer("1", OCI_MT_LAYER_GZIP, 1);
    struct oci_blob c1, m1, c2, m2;
    json_t *m;

    oci_image_init(&img, &amd64);
    oci_image_add_layer(&img, &l, "1970-01-01T00:00:00Z", "a", NULL);
    json_object_set_new(img.annotations, "org.opencontainers.image.title",
                        json_string("t"));
    oci_image_serialize(&img, &c1, &m1);
    oci_image_serialize(&img, &c2, &m2);
    assert_int_equal(m1.len, m2.len);
    assert_memory_equal(m1.data, m2.data, m1.len);
    assert_true(oci_digest_equal(&c1.digest, &c2.digest));
    assert_true(oci_digest_equal(&m1.digest, &m2.digest));

    m = parse_or_fail(m1.data, m1.len);
    assert_string_equal(
        oci_json_str(json_object_get(m, "annotations"), "org.opencontainers.image.title"),
        "t");
    json_decref(m);
    oci_blob_release(&c1);
    oci_blob_release(&m1);
    oci_blob_release(&c2);
    oci_blob_release(&m2);
    oci_image_release(&img);
}

#define D(c)                                                                               \
    "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
        c c c c c c c c c c c c c c c c c c c c c c c c c c

static const char docker_manifest[] =
    "{\"schemaVersion\":2,"
    "\"mediaType\":\"" DOCKER_MT_MANIFEST "\","
    "\"config\":{\"mediaType\":\"" DOCKER_MT_CONFIG "\",\"size\":7023,\"digest\":\"" D(
        "c") "\"},"
             "\"layers\":["
             "{\"mediaType\":\"" DOCKER_MT_LAYER_GZIP "\",\"size\":32654,\"digest\":\"" D(
                 "1") "\"},"
                      "{\"mediaType\":\"" DOCKER_MT_LAYER_TAR
                      "\",\"size\":16724,\"digest\":\"" D("2") "\"}]}";

static const char docker_config[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\","
    "\"container_config\":{\"Hostname\":\"abc\"},"
    "\"config\":{\"Env\":[\"PATH=/bin\"]},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("a") "\",\"" D(
        "b") "\"]},"
             "\"history\":[{\"created_by\":\"x\"},{\"created_by\":\"y\"}]}";

static void test_load_docker_v2_converts_layer_media_types_to_oci(void **state)
{
    struct oci_image img;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (oci_image_load(docker_manifest, strlen(docker_manifest), docker_config,
                       strlen(docker_config), "alpine", &img, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(img.n_layers, 2);
    assert_string_equal(img.layers[0].desc.media_type, OCI_MT_LAYER_GZIP);
    assert_string_equal(img.layers[1].desc.media_type, OCI_MT_LAYER_TAR);
    assert_string_equal(img.layers[0].desc.digest.str, D("1"));
    assert_int_equal(img.layers[0].desc.size, 32654);
    assert_string_equal(img.layers[0].diff_id.str, D("a"));
    assert_string_equal(img.layers[1].diff_id.str, D("b"));
    oci_image_release(&img);
}

static void test_load_keeps_unknown_config_fields_for_the_new_image(void **state)
{
    struct oci_image img;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_layer l = make_layer("new", OCI_MT_LAYER_GZIP, 5);
    struct oci_blob config, manifest;
    json_t *c, *m;

    assert_int_equal(oci_image_load(docker_manifest, strlen(docker_manifest), docker_config,
                                    strlen(docker_config), "alpine", &img, &err),
                     0);
    oci_image_add_layer(&img, &l, "1970-01-01T00:00:00Z", "z", NULL);
    oci_image_serialize(&img, &config, &manifest);
    c = parse_or_fail(config.data, config.len);
    assert_string_equal(oci_json_str(json_object_get(c, "container_config"), "Hostname"),
                        "abc");
    assert_int_equal(json_array_size(json_object_get(c, "history")), 3);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(c, "rootfs"), "diff_ids")), 3);
    m = parse_or_fail(manifest.data, manifest.len);
    /* What ocib writes is OCI, even from a Docker base. */
    assert_string_equal(oci_json_str(m, "mediaType"), OCI_MT_MANIFEST);
    assert_string_equal(oci_json_str(json_object_get(m, "config"), "mediaType"),
                        OCI_MT_CONFIG);
    assert_string_equal(
        oci_json_str(json_array_get(json_object_get(m, "layers"), 0), "mediaType"),
        OCI_MT_LAYER_GZIP);
    json_decref(c);
    json_decref(m);
    oci_blob_release(&config);
    oci_blob_release(&manifest);
    oci_image_release(&img);
}

static void test_load_with_mismatched_diff_id_count_is_an_error(void **state)
{
    static const char config[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\","
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("a") "\"]}}";
    struct oci_image img = {0};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(oci_image_load(docker_manifest, strlen(docker_manifest), config,
                                    strlen(config), "alpine", &img, &err),
                     -1);
    assert_string_equal(err.msg,
                        "alpine: config lists 1 diff_ids but the manifest has 2 layers");
    assert_int_equal(img.n_layers, 0);
    assert_null(img.config);
}

static void test_load_without_diff_ids_is_an_error(void **state)
{
    static const char config[] = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    struct oci_image img = {0};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(oci_image_load(docker_manifest, strlen(docker_manifest), config,
                                    strlen(config), "base", &img, &err),
                     -1);
    assert_string_equal(err.msg,
                        "base: config lists 0 diff_ids but the manifest has 2 layers");
}

static void test_load_rejects_foreign_and_unknown_layer_media_types(void **state)
{
    static const char manifest[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_CONFIG
        "\",\"size\":1,\"digest\":\"" D(
            "c") "\"},"
                 "\"layers\":[{\"mediaType\":\"" DOCKER_MT_LAYER_FOREIGN
                 "\",\"size\":1,\"digest\":\"" D("1") "\"}]}";
    static const char config[] =
        "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("a") "\"]}}";
    struct oci_image img = {0};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(oci_image_load(manifest, strlen(manifest), config, strlen(config),
                                    "win", &img, &err),
                     -1);
    assert_non_null(strstr(err.msg, "win: layer 0"));
    assert_non_null(strstr(err.msg, "unsupported layer media type"));
    assert_non_null(strstr(err.msg, DOCKER_MT_LAYER_FOREIGN));
}

static void test_load_rejects_a_malformed_diff_id(void **state)
{
    static const char config[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D(
        "a") "\",\"sha256:NOTHEX\"]}}";
    struct oci_image img = {0};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(oci_image_load(docker_manifest, strlen(docker_manifest), config,
                                    strlen(config), "base", &img, &err),
                     -1);
    assert_non_null(strstr(err.msg, "base: layer 1: diff_id"));
    assert_non_null(strstr(err.msg, "invalid digest"));
}

static void test_load_rejects_a_layer_descriptor_without_size(void **state)
{
    static const char manifest[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_CONFIG
        "\",\"size\":1,\"digest\":\"" D(
            "c") "\"},"
                 "\"layers\":[{\"mediaType\":\"" OCI_MT_LAYER_GZIP
                 "\",\"digest\":\"" D("1") "\"}]}";
    static const char config[] =
        "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("a") "\"]}}";
    struct oci_image img = {0};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(
        oci_image_load(manifest, strlen(manifest), config, strlen(config), "b", &img, &err),
        -1);
    assert_string_equal(err.msg,
                        "b: layer 0: invalid descriptor (needs mediaType, digest, size)");
}

static void test_manifest_config_descriptor_reads_docker_and_oci(void **state)
{
    struct oci_descriptor d;
    struct ocib_error err = OCIB_ERROR_INIT;
    static const char index[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\",\"manifests\":[]}";

    assert_int_equal(oci_manifest_config_descriptor(
                         docker_manifest, strlen(docker_manifest), "alpine", &d, &err),
                     0);
    assert_string_equal(d.media_type, DOCKER_MT_CONFIG);
    assert_string_equal(d.digest.str, D("c"));
    assert_int_equal(d.size, 7023);
    oci_descriptor_release(&d);

    assert_int_equal(oci_manifest_config_descriptor(index, strlen(index), "x", &d, &err),
                     -1);
    assert_non_null(strstr(err.msg, "an index where a manifest was expected"));
}

/* classify(doc, served): 0 with *kind, or -1 with an integrity error. */
static int classify(const char *doc, const char *served, enum oci_doc_kind *kind)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    int rc = oci_doc_classify(doc, strlen(doc), served, "doc", kind, NULL, &err);

    if (rc < 0)
        assert_int_equal(ocib_error_kind(&err), OCIB_ERR_INTEGRITY);
    return rc;
}

static void test_classify_refuses_ambiguous_documents(void **state)
{
    enum oci_doc_kind kind = 0;
    struct ocib_error err = OCIB_ERROR_INIT;
    char *mt = NULL;

    assert_int_equal(classify("{\"config\": {}, \"layers\": []}", NULL, &kind), 0);
    assert_int_equal(kind, OCI_DOC_MANIFEST);
    assert_int_equal(classify("{\"manifests\": []}", OCI_MT_INDEX "; charset=utf-8", &kind),
                     0);
    assert_int_equal(kind, OCI_DOC_INDEX);
    /* An artifact served as application/json: the type is not known, no contradiction. */
    assert_int_equal(
        classify("{\"config\": {}, \"layers\": []}", "application/json", &kind), 0);
    /* CVE-2021-41190: both shapes, or neither. */
    assert_int_equal(classify("{\"manifests\": [], \"layers\": []}", NULL, &kind), -1);
    assert_int_equal(classify("{\"manifests\": [], \"config\": {}}", OCI_MT_INDEX, &kind),
                     -1);
    assert_int_equal(classify("{\"schemaVersion\": 2}", NULL, &kind), -1);
    /* A mediaType that says the other kind, in the document or as served. */
    assert_int_equal(classify("{\"mediaType\": \"" OCI_MT_INDEX
                              "\", \"config\": {}, \"layers\": []}",
                              NULL, &kind),
                     -1);
    assert_int_equal(classify("{\"manifests\": []}", OCI_MT_MANIFEST, &kind), -1);
    assert_int_equal(classify("{\"config\": {}, \"layers\": []}", DOCKER_MT_LIST, &kind),
                     -1);
    /* Both known and different: Docker's document served as OCI's. */
    assert_int_equal(classify("{\"mediaType\": \"" DOCKER_MT_MANIFEST
                              "\", \"config\": {}, \"layers\": []}",
                              OCI_MT_MANIFEST, &kind),
                     -1);
    assert_int_equal(classify("{\"mediaType\": 7, \"manifests\": []}", NULL, &kind), -1);
    /* The media type given back: the document's own, else the served one. */
    assert_int_equal(oci_doc_classify("{\"manifests\": []}", 17, DOCKER_MT_LIST, "doc",
                                      &kind, &mt, &err),
                     0);
    assert_string_equal(mt, DOCKER_MT_LIST);
    free(mt);
}

static void test_copy_is_deep(void **state)
{
    struct oci_image a, b;
    struct oci_layer l = make_layer("1", OCI_MT_LAYER_GZIP, 1);

    oci_image_init(&a, &amd64);
    oci_image_add_layer(&a, &l, "1970-01-01T00:00:00Z", "a", NULL);
    oci_image_copy(&a, &b);
    oci_image_add_layer(&b, &l, "1970-01-01T00:00:00Z", "b", NULL);
    json_object_set_new(b.annotations, "k", json_string("v"));
    assert_int_equal(a.n_layers, 1);
    assert_int_equal(b.n_layers, 2);
    assert_int_equal(json_array_size(json_object_get(a.config, "history")), 1);
    assert_int_equal(json_object_size(a.annotations), 0);
    assert_ptr_not_equal(a.layers[0].desc.media_type, b.layers[0].desc.media_type);
    oci_image_release(&a);
    assert_string_equal(b.layers[0].desc.media_type, OCI_MT_LAYER_GZIP);
    oci_image_release(&b);
}

static void test_time_format_is_rfc3339_utc(void **state)
{
    char buf[32];

    oci_time_format(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    oci_time_format(1700000000, buf);
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
    oci_time_format(951782400, buf); /* leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
}

static void test_epoch_parse_takes_seconds_from_1970_to_9999(void **state)
{
    int64_t t = -1;

    assert_true(oci_epoch_parse("0", &t));
    assert_int_equal(t, 0);
    assert_true(oci_epoch_parse("1700000000", &t));
    assert_int_equal(t, 1700000000);
    assert_true(oci_epoch_parse("253402300799", &t));
    assert_int_equal(t, 253402300799LL);
    t = 7;
    assert_false(oci_epoch_parse("253402300800", &t));
    assert_false(oci_epoch_parse("-1", &t));
    assert_false(oci_epoch_parse("+1", &t));
    assert_false(oci_epoch_parse(" 1", &t));
    assert_false(oci_epoch_parse("1 ", &t));
    assert_false(oci_epoch_parse("1e9", &t));
    assert_false(oci_epoch_parse("", &t));
    assert_false(oci_epoch_parse("99999999999999999999999", &t));
    assert_int_equal(t, 7); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_gives_empty_config_for_the_platform),
        cmocka_unit_test(test_add_layer_keeps_diff_ids_and_history_in_step),
        cmocka_unit_test(
            test_add_layer_creates_rootfs_and_history_if_a_base_config_lacks_them),
        cmocka_unit_test(test_serialize_manifest_describes_the_config_bytes),
        cmocka_unit_test(test_serialize_is_reproducible_and_carries_annotations),
        cmocka_unit_test(test_load_docker_v2_converts_layer_media_types_to_oci),
        cmocka_unit_test(test_load_keeps_unknown_config_fields_for_the_new_image),
        cmocka_unit_test(test_load_with_mismatched_diff_id_count_is_an_error),
        cmocka_unit_test(test_load_without_diff_ids_is_an_error),
        cmocka_unit_test(test_load_rejects_foreign_and_unknown_layer_media_types),
        cmocka_unit_test(test_load_rejects_a_malformed_diff_id),
        cmocka_unit_test(test_load_rejects_a_layer_descriptor_without_size),
        cmocka_unit_test(test_manifest_config_descriptor_reads_docker_and_oci),
        cmocka_unit_test(test_classify_refuses_ambiguous_documents),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_time_format_is_rfc3339_utc),
        cmocka_unit_test(test_epoch_parse_takes_seconds_from_1970_to_9999),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
