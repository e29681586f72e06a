/*
 * oci/platform: parsing, and the one picker of an index entry by platform.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oci/mediatype.h"
#include "oci/platform.h"

static json_t *index_of(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    assert_non_null(j);
    return j;
}

static void parse(const char *s, struct oci_platform *p)
{
    struct ocib_error err = {0};

    assert_int_equal(oci_platform_parse(s, p, &err), 0);
}

static void test_parse_normalises_aliases(void **state)
{
    struct oci_platform p;
    char buf[96];

    parse("linux/x86_64", &p);
    oci_platform_format(&p, buf, sizeof(buf));
    assert_string_equal(buf, "linux/amd64");
    parse("linux/aarch64", &p);
    assert_string_equal(p.arch, "arm64");
}

/* A platform made by hand, not parsed, matches as the parsed one does. */
static void test_match_normalises_both_sides(void **state)
{
    struct oci_platform by_hand = {"linux", "arm64", "v8"}, amd = {"linux", "amd64", ""};
    json_t *v8 =
        index_of("{\"os\": \"linux\", \"architecture\": \"arm64\", \"variant\": \"v8\"}");
    json_t *bare = index_of("{\"os\": \"linux\", \"architecture\": \"aarch64\"}");

    assert_true(oci_platform_match_json(&by_hand, v8));
    assert_true(oci_platform_match_json(&by_hand, bare));
    assert_false(oci_platform_match_json(&amd, v8));
    json_decref(v8);
    json_decref(bare);
}

static void test_pick_takes_the_matching_manifest_not_an_attestation(void **state)
{
    json_t *m =
        index_of("[{\"mediaType\": \"" OCI_MT_MANIFEST "\", \"digest\": \"sha256:aa\","
                 "  \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
                 " {\"mediaType\": \"" OCI_MT_INDEX "\", \"digest\": \"sha256:bb\","
                 "  \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", "
                 "\"variant\": \"v8\"}},"
                 " {\"mediaType\": \"" OCI_MT_MANIFEST "\", \"digest\": \"sha256:cc\","
                 "  \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", "
                 "\"variant\": \"v8\"}}]");
    struct oci_platform amd, arm;
    const json_t *e;

    parse("linux/amd64", &amd);
    parse("linux/arm64", &arm);
    e = oci_index_pick(m, &amd, NULL);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "sha256:aa");
    /* The nested index for arm64 is skipped: the manifest after it is taken. */
    e = oci_index_pick(m, &arm, NULL);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "sha256:cc");
    json_decref(m);
}

static void test_pick_without_a_match_lists_what_there_is(void **state)
{
    json_t *m =
        index_of("[{\"mediaType\": \"" OCI_MT_MANIFEST "\", \"digest\": \"sha256:aa\","
                 "  \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
                 " {\"mediaType\": \"" OCI_MT_MANIFEST "\", \"digest\": \"sha256:cc\","
                 "  \"platform\": {\"os\": \"linux\", \"architecture\": \"arm\", "
                 "\"variant\": \"v7\"}}]");
    json_t *empty = index_of("[]");
    struct oci_platform s390;
    char *avail = NULL;

    parse("linux/s390x", &s390);
    assert_null(oci_index_pick(m, &s390, &avail));
    assert_string_equal(avail, "linux/amd64, linux/arm/v7");
    free(avail);
    assert_null(oci_index_pick(empty, &s390, &avail));
    assert_string_equal(avail, "none");
    free(avail);
    json_decref(m);
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_normalises_aliases),
        cmocka_unit_test(test_match_normalises_both_sides),
        cmocka_unit_test(test_pick_takes_the_matching_manifest_not_an_attestation),
        cmocka_unit_test(test_pick_without_a_match_lists_what_there_is),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
