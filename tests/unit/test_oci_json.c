/*
 * Unit tests for oci/json: the canonical serialisation that every digest
 * ocib computes depends on, and the guarded parser for documents from
 * outside (registries, layouts, archives).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "oci/json.h"

static void expect_canonical(const json_t *v, const char *want)
{
    size_t len = 12345;
    char *s = oci_json_canonical(v, &len);

    assert_non_null(s);
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    free(s);
}

static void test_canonical_sorts_keys_whatever_the_insertion_order(void **state)
{
    json_t *a = json_object(), *b = json_object();

    json_object_set_new(a, "b", json_integer(2));
    json_object_set_new(a, "a", json_integer(1));
    json_object_set_new(a, "C", json_integer(0));
    json_object_set_new(a, "aa", json_pack("{s:i, s:i}", "z", 1, "y", 2));

    json_object_set_new(b, "aa", json_pack("{s:i, s:i}", "y", 2, "z", 1));
    json_object_set_new(b, "C", json_integer(0));
    json_object_set_new(b, "a", json_integer(1));
    json_object_set_new(b, "b", json_integer(2));

    /* Byte order: uppercase before lowercase, nested objects sorted too. */
    expect_canonical(a, "{\"C\":0,\"a\":1,\"aa\":{\"y\":2,\"z\":1},\"b\":2}");
    expect_canonical(b, "{\"C\":0,\"a\":1,\"aa\":{\"y\":2,\"z\":1},\"b\":2}");
    json_decref(a);
    json_decref(b);
}

static void test_canonical_is_compact(void **state)
{
    json_t *v = json_pack("{s:[i,i,{}], s:s, s:b, s:n, s:[]}", "list", 1, 2, "s", "x y",
                          "t", 1, "nil", "empty");

    expect_canonical(
        v, "{\"empty\":[],\"list\":[1,2,{}],\"nil\":null,\"s\":\"x y\",\"t\":true}");
    json_decref(v);
}

static void test_canonical_keeps_utf8_unescaped(void **state)
{
    /* "héllo" and U+1F600 as raw UTF-8, in a key and a value. */
    json_t *v = json_pack("{s:s}", "cl\xc3\xa9", "h\xc3\xa9llo \xf0\x9f\x98\x80");

    expect_canonical(v, "{\"cl\xc3\xa9\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}");
    json_decref(v);
}

static void test_canonical_escapes_only_what_json_requires(void **state)
{
    json_t *v = json_pack("{s:s}", "k", "a\"b\\c\nd/e\x01");

    /* The slash stays as is; control characters and quotes are escaped. */
    expect_canonical(v, "{\"k\":\"a\\\"b\\\\c\\nd/e\\u0001\"}");
    json_decref(v);
}

static void test_canonical_gives_the_same_bytes_twice(void **state)
{
    json_t *v = json_pack("{s:s, s:{s:[s,s]}, s:I}", "z", "last", "m", "list", "x", "y",
                          "a", (json_int_t)1 << 40);
    size_t l1, l2;
    char *s1 = oci_json_canonical(v, &l1);
    json_t *copy = json_deep_copy(v);
    char *s2 = oci_json_canonical(copy, &l2);

    assert_int_equal(l1, l2);
    assert_memory_equal(s1, s2, l1);
    assert_string_equal(
        s1, "{\"a\":1099511627776,\"m\":{\"list\":[\"x\",\"y\"]},\"z\":\"last\"}");
    free(s1);
    free(s2);
    json_decref(v);
    json_decref(copy);
}

static void test_canonical_round_trips_through_parse(void **state)
{
    const char *in =
        "{ \"b\" : [ 1 , 2 ],\n  \"a\" : { \"d\": \"\xc3\xa9\", \"c\": null } }";
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;
    char *s;

    assert_int_equal(oci_json_parse(in, strlen(in), "doc", &v, &err), 0);
    s = oci_json_canonical(v, NULL);
    assert_string_equal(s, "{\"a\":{\"c\":null,\"d\":\"\xc3\xa9\"},\"b\":[1,2]}");
    free(s);
    json_decref(v);
}

static void test_parse_accepts_an_object_and_uses_only_len_bytes(void **state)
{
    const char buf[] = "{\"mediaType\":\"x\"}garbage";
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    assert_int_equal(oci_json_parse(buf, strlen("{\"mediaType\":\"x\"}"), "m", &v, &err),
                     0);
    assert_non_null(v);
    assert_string_equal(oci_json_str(v, "mediaType"), "x");
    assert_null(oci_json_str(v, "absent"));
    json_decref(v);
}

static void test_parse_rejects_duplicate_keys(void **state)
{
    const char *in = "{\"a\":1,\"b\":2,\"a\":3}";
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    assert_int_equal(oci_json_parse(in, strlen(in), "manifest", &v, &err), -1);
    assert_null(v);
    assert_int_equal(err.code, OCIB_EXIT_FAILURE);
    assert_true(strncmp(err.msg, "manifest: invalid JSON at line 1 column ", 40) == 0);
    assert_non_null(strstr(err.msg, "duplicate"));
}

static void test_parse_rejects_nested_duplicate_keys(void **state)
{
    const char *in = "{\"config\":{\"digest\":\"x\",\"digest\":\"y\"}}";
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    assert_int_equal(oci_json_parse(in, strlen(in), "manifest", &v, &err), -1);
    assert_null(v);
    assert_non_null(strstr(err.msg, "duplicate"));
}

static void test_parse_rejects_non_objects(void **state)
{
    /* Arrays parse as JSON but are not objects; scalars are refused by
     * jansson's top-level rule already.  Either way: refused, named. */
    static const char *const arrays[] = {"[]", "[{}]"};
    static const char *const scalars[] = {"\"str\"", "42", "null", "true"};

    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        json_t *v = NULL;

        if (oci_json_parse(arrays[i], strlen(arrays[i]), "index", &v, &err) != -1)
            fail_msg("accepted %s", arrays[i]);
        assert_null(v);
        assert_string_equal(err.msg, "index: expected a JSON object");
    }
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        json_t *v = NULL;

        if (oci_json_parse(scalars[i], strlen(scalars[i]), "index", &v, &err) != -1)
            fail_msg("accepted %s", scalars[i]);
        assert_null(v);
        assert_true(strncmp(err.msg, "index: ", 7) == 0);
    }
}

static void test_parse_reports_syntax_errors_with_position(void **state)
{
    const char *in = "{\n  \"a\": 1,\n  \"b\": }";
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    assert_int_equal(oci_json_parse(in, strlen(in), "config", &v, &err), -1);
    assert_null(v);
    assert_true(strncmp(err.msg, "config: invalid JSON at line 3 column ", 38) == 0);
}

static void test_parse_rejects_empty_and_truncated_input(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;

    assert_int_equal(oci_json_parse("", 0, "blob", &v, &err), -1);
    assert_non_null(strstr(err.msg, "blob: invalid JSON"));
    ocib_error_clear(&err);
    assert_int_equal(oci_json_parse("{\"a\":1", 6, "blob", &v, &err), -1);
    assert_non_null(strstr(err.msg, "blob: invalid JSON"));
    assert_null(v);
}

static void test_parse_rejects_input_over_the_cap_with_a_clear_message(void **state)
{
    size_t len = OCI_JSON_MAX + 1;
    char *buf = malloc(len);
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *v = NULL;
    char want[128];

    assert_non_null(buf);
    /* A valid object padded with white space: only the size is wrong. */
    memset(buf, ' ', len);
    buf[0] = '{';
    buf[len - 1] = '}';
    assert_int_equal(oci_json_parse(buf, len, "manifest", &v, &err), -1);
    assert_null(v);
    snprintf(want, sizeof(want), "manifest: larger than the limit of %d bytes",
             OCI_JSON_MAX);
    assert_string_equal(err.msg, want);
    assert_string_equal(err.msg, "manifest: larger than the limit of 4194304 bytes");
    /* Exactly at the cap is fine. */
    ocib_error_clear(&err);
    assert_int_equal(oci_json_parse(buf, OCI_JSON_MAX, "manifest", &v, &err), -1);
    assert_null(strstr(err.msg, "larger than the limit"));
    buf[OCI_JSON_MAX - 1] = '}';
    ocib_error_clear(&err);
    assert_int_equal(oci_json_parse(buf, OCI_JSON_MAX, "manifest", &v, &err), 0);
    assert_non_null(v);
    json_decref(v);
    free(buf);
}

static void test_parse_with_null_error_only_returns_minus_one(void **state)
{
    json_t *v = NULL;

    assert_int_equal(oci_json_parse("[]", 2, "x", &v, NULL), -1);
    assert_int_equal(oci_json_parse("{\"a\":1,\"a\":1}", 13, "x", &v, NULL), -1);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_sorts_keys_whatever_the_insertion_order),
        cmocka_unit_test(test_canonical_is_compact),
        cmocka_unit_test(test_canonical_keeps_utf8_unescaped),
        cmocka_unit_test(test_canonical_escapes_only_what_json_requires),
        cmocka_unit_test(test_canonical_gives_the_same_bytes_twice),
        cmocka_unit_test(test_canonical_round_trips_through_parse),
        cmocka_unit_test(test_parse_accepts_an_object_and_uses_only_len_bytes),
        cmocka_unit_test(test_parse_rejects_duplicate_keys),
        cmocka_unit_test(test_parse_rejects_nested_duplicate_keys),
        cmocka_unit_test(test_parse_rejects_non_objects),
        cmocka_unit_test(test_parse_reports_syntax_errors_with_position),
        cmocka_unit_test(test_parse_rejects_empty_and_truncated_input),
        cmocka_unit_test(test_parse_rejects_input_over_the_cap_with_a_clear_message),
        cmocka_unit_test(test_parse_with_null_error_only_returns_minus_one),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
