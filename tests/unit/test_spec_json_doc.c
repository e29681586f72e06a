/*
 * Unit tests for builder/json_doc: the strict, positioned JSON parser that
 * spec validation errors rely on for their "file:line:col" prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/cleanup.h"
#include "spec/json_doc.h"

#define assert_pos(p, l, c)                                                                \
    do {                                                                                   \
        struct json_pos p_ = (p);                                                          \
        assert_int_equal(p_.line, (l));                                                    \
        assert_int_equal(p_.col, (c));                                                     \
    } while (0)

/* Parses text (len bytes) and checks that it means what jansson says. */
static void check_roundtrip(const char *text, size_t len)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    json_error_t jerr;
    json_auto_t *want = json_loadb(text, len, JSON_DECODE_ANY, &jerr);

    assert_non_null(want);
    if (json_doc_parse(&doc, "t.json", text, len, &err) < 0)
        fail_msg("parse of '%s' failed: %s", text, err.msg);
    assert_non_null(doc.root);
    if (!json_equal(doc.root, want))
        fail_msg("'%s' does not match jansson's reading", text);
    assert_int_equal(err.code, 0);
}

/* Checks that text (len bytes) fails with exactly message msg as a usage
 * error, and leaves the doc empty. */
static void check_error(const char *text, size_t len, const char *msg)
{
    struct json_doc doc;
    struct ocib_error err = OCIB_ERROR_INIT;

    memset(&doc, 0xA5, sizeof(doc)); /* parse must not need a zeroed doc */
    if (json_doc_parse(&doc, "ocib.json", text, len, &err) == 0)
        fail_msg("'%s' parsed but should fail with '%s'", text, msg);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("'%s': got '%s', want '%s'", text, err.msg, msg);
    assert_null(doc.root);
    assert_int_equal(doc.entries_nr, 0);
    json_doc_release(&doc);
}

#define ROUNDTRIP(s) check_roundtrip((s), strlen(s))
#define ERROR(s, m) check_error((s), strlen(s), (m))

static void test_valid_documents_match_jansson(void **state)
{
    ROUNDTRIP("{}");
    ROUNDTRIP("[]");
    ROUNDTRIP(" \t\r\n{ } ");
    ROUNDTRIP("\"just a string\"");
    ROUNDTRIP("42");
    ROUNDTRIP("true");
    ROUNDTRIP("null");
    ROUNDTRIP("[true, false, null, 0, -0, 1, -1, 0.5, -0.25, 1e3, 1E-3, 2.5e+2]");
    ROUNDTRIP("{\"a\": {\"b\": [1, [2, [3, {\"c\": []}]]]}, \"d\": {}}");
    ROUNDTRIP("[\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\", \"\\u0041\\u00e9\\u20ac\"]");
    ROUNDTRIP("{\"caf\xC3\xA9\": \"\xE2\x82\xAC \xF0\x9F\x98\x80\", \"\": \"\"}");
    ROUNDTRIP("{\"version\": 1, \"stages\": [{\"name\": \"build\", \"from\": "
              "\"alpine:3.20\", \"env\": {\"PATH\": \"/usr/bin\"}, \"layers\": [{\"run\": "
              "[\"make\", \"install\"]}]}]}");
}

static void test_object_keeps_insertion_order(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char *text = "{\"zeta\": 1, \"alpha\": 2, \"mid\": 3}";
    const char *want[] = {"zeta", "alpha", "mid"};
    const char *key;
    json_t *v;
    size_t i = 0;

    assert_int_equal(json_doc_parse(&doc, "t.json", text, strlen(text), &err), 0);
    json_object_foreach(doc.root, key, v)
    {
        assert_true(i < ARRAY_SIZE(want));
        assert_string_equal(key, want[i]);
        i++;
    }
    assert_int_equal(i, 3);
}

static void test_buffer_need_not_be_nul_terminated(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char text[] = {'[', '1', ',', '2', ']', 'x', 'y'};

    assert_int_equal(json_doc_parse(&doc, "t.json", text, 5, &err), 0);
    assert_int_equal(json_array_size(doc.root), 2);
    /* a string cut by len is unterminated even if the bytes go on */
    check_error("\"abc\"", 4, "ocib.json:1:1: unterminated string");
    /* a literal cut by len is complete, a longer word would not be */
    json_doc_release(&doc);
    assert_int_equal(json_doc_parse(&doc, "t.json", "truex", 4, &err), 0);
    assert_true(json_is_true(doc.root));
    check_error("truex", 5, "ocib.json:1:1: invalid literal \"truex\"");
}

/* The spec validator's use case: every key and element has its place. */
static const char positions_doc[] =
    "{\n"                                                                         /* 1 */
    "  \"name\": \"app\",\n"                                                      /* 2 */
    "  \"stages\": [\n"                                                           /* 3 */
    "    {\n"                                                                     /* 4 */
    "      \"from\": \"alpine\",\n"                                               /* 5 */
    "\t\"layers\": [{\"copy\": [{\"src\": \"a\", \"dset\": \"b\"}]}, 42, true]\n" /* 6 */
    "    }\n"                                                                     /* 7 */
    "  ],\n"                                                                      /* 8 */
    "  \"\xC3\xA9\": \"x\", \"n\": null\n"                                        /* 9 */
    "}\n";                                                                        /* 10 */

static void test_key_and_index_positions(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *stages, *stage0, *layers, *layer0, *copy, *copy0;

    assert_int_equal(
        json_doc_parse(&doc, "ocib.json", positions_doc, strlen(positions_doc), &err), 0);
    stages = json_object_get(doc.root, "stages");
    stage0 = json_array_get(stages, 0);
    layers = json_object_get(stage0, "layers");
    layer0 = json_array_get(layers, 0);
    copy = json_object_get(layer0, "copy");
    copy0 = json_array_get(copy, 0);
    assert_non_null(copy0);

    assert_pos(json_doc_key_pos(&doc, doc.root, "name"), 2, 3);
    assert_pos(json_doc_key_pos(&doc, doc.root, "stages"), 3, 3);
    assert_pos(json_doc_index_pos(&doc, stages, 0), 4, 5);
    assert_pos(json_doc_key_pos(&doc, stage0, "from"), 5, 7);
    assert_pos(json_doc_key_pos(&doc, stage0, "layers"), 6, 2); /* tab is one column */
    assert_pos(json_doc_index_pos(&doc, layers, 0), 6, 13);
    assert_pos(json_doc_key_pos(&doc, layer0, "copy"), 6, 14);
    assert_pos(json_doc_index_pos(&doc, copy, 0), 6, 23);
    assert_pos(json_doc_key_pos(&doc, copy0, "src"), 6, 24);
    assert_pos(json_doc_key_pos(&doc, copy0, "dset"), 6, 36);
    assert_pos(json_doc_index_pos(&doc, layers, 1), 6, 52);
    assert_pos(json_doc_index_pos(&doc, layers, 2), 6, 56); /* true: by index */
    assert_pos(json_doc_key_pos(&doc, doc.root, "\xC3\xA9"), 9, 3);
    assert_pos(json_doc_key_pos(&doc, doc.root, "n"), 9, 14); /* columns count bytes */

    /* the same key name in another object is a different entry */
    assert_pos(json_doc_key_pos(&doc, copy0, "name"), 1, 1);
    /* unknown keys, indexes and containers give the document start */
    assert_pos(json_doc_key_pos(&doc, doc.root, "dest"), 1, 1);
    assert_pos(json_doc_index_pos(&doc, layers, 3), 1, 1);
    assert_pos(json_doc_index_pos(&doc, doc.root, 0), 1, 1);
    assert_pos(json_doc_key_pos(&doc, stages, "name"), 1, 1);
}

static void test_value_positions(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    json_t *stage0, *layers, *copy0;

    assert_int_equal(
        json_doc_parse(&doc, "ocib.json", positions_doc, strlen(positions_doc), &err), 0);
    stage0 = json_array_get(json_object_get(doc.root, "stages"), 0);
    layers = json_object_get(stage0, "layers");
    copy0 = json_array_get(json_object_get(json_array_get(layers, 0), "copy"), 0);

    assert_pos(json_doc_value_pos(&doc, doc.root), 1, 1);
    assert_pos(json_doc_value_pos(&doc, json_object_get(doc.root, "name")), 2, 11);
    assert_pos(json_doc_value_pos(&doc, json_object_get(doc.root, "stages")), 3, 13);
    assert_pos(json_doc_value_pos(&doc, stage0), 4, 5);
    assert_pos(json_doc_value_pos(&doc, layers), 6, 12);
    assert_pos(json_doc_value_pos(&doc, json_object_get(copy0, "dset")), 6, 44);
    assert_pos(json_doc_value_pos(&doc, json_array_get(layers, 1)), 6, 52);
    /* singletons are shared, so they have no position of their own */
    assert_pos(json_doc_value_pos(&doc, json_array_get(layers, 2)), 1, 1);
    assert_pos(json_doc_value_pos(&doc, json_object_get(doc.root, "n")), 1, 1);
}

static void test_root_position_after_whitespace(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char *text = "\n\n  [\r\n  7]";

    assert_int_equal(json_doc_parse(&doc, "t.json", text, strlen(text), &err), 0);
    assert_pos(json_doc_value_pos(&doc, doc.root), 3, 3);
    assert_pos(json_doc_index_pos(&doc, doc.root, 0), 4, 3); /* CRLF is one line break */
}

static void test_syntax_errors_name_line_and_column(void **state)
{
    ERROR("", "ocib.json:1:1: empty document");
    ERROR(" \n\t\n", "ocib.json:1:1: empty document");
    ERROR("{\n  \"a\": 1\n  \"b\": 2\n}",
          "ocib.json:3:3: expected ',' or '}' after object member");
    ERROR("{\"a\": 1", "ocib.json:1:8: expected ',' or '}' after object member");
    ERROR("[\n\t1,\n\t2x]", "ocib.json:3:3: expected ',' or ']' after array element");
    ERROR("[1", "ocib.json:1:3: expected ',' or ']' after array element");
    ERROR("[1,]", "ocib.json:1:3: trailing comma in array");
    ERROR("{\"a\": 1,\n}", "ocib.json:1:8: trailing comma in object");
    ERROR("{\"a\" 1}", "ocib.json:1:6: expected ':' after object key");
    ERROR("{1: 2}", "ocib.json:1:2: expected a string key or '}'");
    ERROR("{\"a\": 1, 2: 3}", "ocib.json:1:10: expected a string key");
    ERROR("{'a': 1}", "ocib.json:1:2: strings must use double quotes");
    ERROR("[,1]", "ocib.json:1:2: expected a JSON value");
    ERROR("{\"a\":}", "ocib.json:1:6: expected a JSON value");
    ERROR("[+1]", "ocib.json:1:2: expected a JSON value");
    ERROR("[.5]", "ocib.json:1:2: expected a JSON value");
    ERROR("// comment\n{}", "ocib.json:1:1: comments are not allowed");
    ERROR("{\"a\": 1 /* c */}", "ocib.json:1:9: comments are not allowed");
    ERROR("{} // c", "ocib.json:1:4: comments are not allowed");
    ERROR("[1] 2", "ocib.json:1:5: trailing characters after the JSON value");
    ERROR("{}\n}", "ocib.json:2:1: trailing characters after the JSON value");
    ERROR("\xEF\xBB\xBF{}", "ocib.json:1:1: byte order mark is not allowed");
}

static void test_literal_and_number_errors(void **state)
{
    ERROR("NaN", "ocib.json:1:1: invalid literal \"NaN\"");
    ERROR("[Infinity]", "ocib.json:1:2: invalid literal \"Infinity\"");
    ERROR("-Infinity", "ocib.json:1:2: expected digit after '-'");
    ERROR("[tru]", "ocib.json:1:2: invalid literal \"tru\"");
    ERROR("True", "ocib.json:1:1: invalid literal \"True\"");
    ERROR("nulls", "ocib.json:1:1: invalid literal \"nulls\"");
    ERROR("[1, 01]", "ocib.json:1:5: leading zeros are not allowed");
    ERROR("-00", "ocib.json:1:1: leading zeros are not allowed");
    ERROR("-", "ocib.json:1:2: expected digit after '-'");
    ERROR("1.", "ocib.json:1:3: expected digit after decimal point");
    ERROR("1.e5", "ocib.json:1:3: expected digit after decimal point");
    ERROR("1e", "ocib.json:1:3: expected digit in exponent");
    ERROR("[1e+]", "ocib.json:1:5: expected digit in exponent");
}

static void test_string_errors(void **state)
{
    ERROR("\"abc", "ocib.json:1:1: unterminated string");
    ERROR("[\"a\\", "ocib.json:1:2: unterminated string");
    ERROR("\"a\tb\"", "ocib.json:1:3: unescaped control character in string");
    ERROR("\"a\nb\"", "ocib.json:1:3: unescaped control character in string");
    ERROR("\"\\x\"", "ocib.json:1:2: invalid escape '\\x'");
    ERROR("\"\\u12G4\"", "ocib.json:1:2: invalid \\u escape");
    ERROR("\"\\u12\"", "ocib.json:1:2: invalid \\u escape");
    ERROR("\"\\u", "ocib.json:1:2: invalid \\u escape");
    ERROR("{\"k\": \"\\u0000\"}", "ocib.json:1:8: strings may not contain NUL");
    ERROR("{\"\\u0000\": 1}", "ocib.json:1:3: strings may not contain NUL");
    check_error("\"a\0b\"", 5, "ocib.json:1:3: strings may not contain NUL");
}

static void test_duplicate_keys(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char *ok = "{\"name\": {\"name\": 1}, \"x\": [{\"name\": 2}, {\"name\": 3}]}";

    ERROR("{\n  \"name\": \"a\",\n  \"name\": \"b\"\n}",
          "ocib.json:3:3: duplicate key \"name\"");
    /* the same key written with an escape is still the same key */
    ERROR("{\"ab\": 1, \"a\\u0062\": 2}", "ocib.json:1:11: duplicate key \"ab\"");
    ERROR("{\"q\\\"\\n\": 1, \"q\\\"\\n\": 2}",
          "ocib.json:1:14: duplicate key \"q\\\"\\x0a\"");
    /* the same name in different objects is fine */
    assert_int_equal(json_doc_parse(&doc, "t.json", ok, strlen(ok), &err), 0);
}

/* Builds n opening brackets then n closing ones. */
static char *nested(size_t n, char open, char close)
{
    char *s = calloc(2 * n + 1, 1);

    assert_non_null(s);
    memset(s, open, n);
    memset(s + n, close, n);
    return s;
}

static void test_nesting_is_capped_at_64(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    _cleanup_free_ char *ok = nested(64, '[', ']');
    _cleanup_free_ char *deep = nested(65, '[', ']');
    _cleanup_free_ char *very_deep = nested(100000, '[', ']');
    char mixed[512] = "";
    int i;

    assert_int_equal(json_doc_parse(&doc, "t.json", ok, strlen(ok), &err), 0);
    ERROR(deep, "ocib.json:1:65: nesting deeper than 64 levels");
    /* no stack overflow however deep the input goes */
    ERROR(very_deep, "ocib.json:1:65: nesting deeper than 64 levels");
    /* objects count as levels too: 32 x {"a":[ ... */
    for (i = 0; i < 33; i++)
        strcat(mixed, "{\"a\":[");
    ERROR(mixed, "ocib.json:1:193: nesting deeper than 64 levels");
}

static void test_utf8_and_surrogates(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char *text =
        "[\"\\ud83d\\ude00\", \"\\uD834\\uDD1E\", \"\\u00e9\", \"\xF4\x8F\xBF\xBF\"]";

    assert_int_equal(json_doc_parse(&doc, "t.json", text, strlen(text), &err), 0);
    assert_string_equal(json_string_value(json_array_get(doc.root, 0)), "\xF0\x9F\x98\x80");
    assert_string_equal(json_string_value(json_array_get(doc.root, 1)), "\xF0\x9D\x84\x9E");
    assert_string_equal(json_string_value(json_array_get(doc.root, 2)), "\xC3\xA9");
    assert_string_equal(json_string_value(json_array_get(doc.root, 3)), "\xF4\x8F\xBF\xBF");

    ERROR("\"\\ud800\"", "ocib.json:1:2: invalid \\u escape: unpaired surrogate");
    ERROR("\"\\udc00\\ud800\"", "ocib.json:1:2: invalid \\u escape: unpaired surrogate");
    ERROR("\"ab\\ud800\\u0041\"", "ocib.json:1:4: invalid \\u escape: unpaired surrogate");
    ERROR("\"ab\\ud800x\"", "ocib.json:1:4: invalid \\u escape: unpaired surrogate");
    ERROR("\"x\\ud800\\uZZZZ\"", "ocib.json:1:9: invalid \\u escape");

    ERROR("\"a\xC0\x80\"", "ocib.json:1:3: invalid UTF-8");        /* overlong NUL */
    ERROR("\"\xE0\x80\xAF\"", "ocib.json:1:2: invalid UTF-8");     /* overlong '/' */
    ERROR("\"\xED\xA0\x80\"", "ocib.json:1:2: invalid UTF-8");     /* encoded surrogate */
    ERROR("\"\xF4\x90\x80\x80\"", "ocib.json:1:2: invalid UTF-8"); /* above U+10FFFF */
    ERROR("\"\xC3\xA9\x80\"", "ocib.json:1:4: invalid UTF-8");     /* stray continuation */
    ERROR("\"\xFF\"", "ocib.json:1:2: invalid UTF-8");
    ERROR("{\"\xE2\x82\": 1}", "ocib.json:1:3: invalid UTF-8"); /* truncated, in a key */
    check_error("\"\xE2\x82", 3,
                "ocib.json:1:2: invalid UTF-8"); /* cut by the buffer end */
}

static void test_numbers(void **state)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    const char *text = "[9223372036854775807, -9223372036854775808, -0, 0, -17, 1.5e300, "
                       "-2.5E-3, 1e-400, 100e0, 12345678901234567890.5]";
    json_t *a;

    assert_int_equal(json_doc_parse(&doc, "t.json", text, strlen(text), &err), 0);
    a = doc.root;
    assert_true(json_is_integer(json_array_get(a, 0)));
    assert_true(json_integer_value(json_array_get(a, 0)) == INT64_MAX);
    assert_true(json_integer_value(json_array_get(a, 1)) == INT64_MIN);
    assert_true(json_is_integer(json_array_get(a, 2)));
    assert_int_equal(json_integer_value(json_array_get(a, 2)), 0);
    assert_int_equal(json_integer_value(json_array_get(a, 4)), -17);
    assert_true(json_is_real(json_array_get(a, 5)));
    assert_true(json_real_value(json_array_get(a, 5)) == 1.5e300);
    assert_true(json_real_value(json_array_get(a, 6)) == -2.5e-3);
    assert_true(json_real_value(json_array_get(a, 7)) == 0.0); /* underflow is fine */
    assert_true(json_is_real(json_array_get(a, 8)));           /* exponent makes a real */
    assert_true(json_real_value(json_array_get(a, 8)) == 100.0);
    assert_true(json_is_real(json_array_get(a, 9)));
    ROUNDTRIP(text);

    ERROR("9223372036854775808", "ocib.json:1:1: integer out of range");
    ERROR("[0, -9223372036854775809]", "ocib.json:1:5: integer out of range");
    ERROR("{\"n\": 99999999999999999999999}", "ocib.json:1:7: integer out of range");
    ERROR("1e400", "ocib.json:1:1: number out of range");
    ERROR("[1, -1e999]", "ocib.json:1:5: number out of range");
}

static void test_release_accepts_empty_doc(void **state)
{
    struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;

    json_doc_release(&doc);
    json_doc_release(NULL);
    assert_int_equal(json_doc_parse(&doc, "t.json", "[1]", 3, &err), 0);
    json_doc_release(&doc);
    assert_null(doc.root);
    json_doc_release(&doc); /* twice is fine */
    /* without an error struct a failure still returns -1 */
    assert_int_equal(json_doc_parse(&doc, "t.json", "[", 1, NULL), -1);
    assert_null(doc.root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents_match_jansson),
        cmocka_unit_test(test_object_keeps_insertion_order),
        cmocka_unit_test(test_buffer_need_not_be_nul_terminated),
        cmocka_unit_test(test_key_and_index_positions),
        cmocka_unit_test(test_value_positions),
        cmocka_unit_test(test_root_position_after_whitespace),
        cmocka_unit_test(test_syntax_errors_name_line_and_column),
        cmocka_unit_test(test_literal_and_number_errors),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_nesting_is_capped_at_64),
        cmocka_unit_test(test_utf8_and_surrogates),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_release_accepts_empty_doc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
