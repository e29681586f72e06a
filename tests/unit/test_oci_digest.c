/*
 * Unit tests for oci/digest and base/sha256: what ocib accepts as a digest,
 * and that the digests it computes are the standard SHA-256 ones whether the
 * bytes arrive at once or in pieces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/sha256.h"
#include "oci/digest.h"

#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_parse_accepts_lowercase_sha256(void **state)
{
    struct oci_digest d = {""};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(oci_digest_parse("sha256:" EMPTY_HEX, &d, &err), 0);
    assert_string_equal(d.str, "sha256:" EMPTY_HEX);
    assert_string_equal(oci_digest_hex(&d), EMPTY_HEX);
    assert_string_equal(err.msg, "");
    assert_true(oci_digest_valid("sha256:" ABC_HEX));
}

/* Each of these must be refused with a message and leave the output as it
 * was. */
static void expect_rejected(const char *s)
{
    struct oci_digest d = {"sentinel"};
    struct ocib_error err = OCIB_ERROR_INIT;

    if (oci_digest_valid(s))
        fail_msg("oci_digest_valid accepted \"%s\"", s);
    if (oci_digest_parse(s, &d, &err) != -1)
        fail_msg("oci_digest_parse accepted \"%s\"", s);
    assert_string_equal(d.str, "sentinel");
    assert_int_equal(err.code, OCIB_EXIT_FAILURE);
    assert_non_null(strstr(err.msg, "invalid digest"));
    assert_non_null(strstr(err.msg, "sha256:<64 lowercase hex>"));
}

static void test_parse_rejects_uppercase_hex(void **state)
{
    expect_rejected(
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
    expect_rejected(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85A");
    expect_rejected("SHA256:" EMPTY_HEX);
}

static void test_parse_rejects_wrong_length(void **state)
{
    expect_rejected("sha256:" ABC_HEX "0"); /* 65 */
    expect_rejected(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"); /* 63 */
    expect_rejected("sha256:");
    expect_rejected("");
    expect_rejected(EMPTY_HEX); /* no algorithm */
}

static void test_parse_rejects_other_algorithms(void **state)
{
    expect_rejected(
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
    expect_rejected("sha384:" EMPTY_HEX);
    expect_rejected("md5:d41d8cd98f00b204e9800998ecf8427e");
    expect_rejected("sha256+b64u:" EMPTY_HEX);
}

static void test_parse_rejects_non_hex_and_separators(void **state)
{
    expect_rejected(
        "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_rejected("sha256 " EMPTY_HEX);
    expect_rejected(" sha256:" EMPTY_HEX);
    expect_rejected(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ");
}

static void test_digest_of_empty_and_abc_match_known_vectors(void **state)
{
    struct oci_digest d;
    char hex[SHA256_HEX_LEN + 1];

    oci_digest_of("", 0, &d);
    assert_string_equal(d.str, "sha256:" EMPTY_HEX);
    assert_true(oci_digest_valid(d.str));
    oci_digest_of("abc", 3, &d);
    assert_string_equal(d.str, "sha256:" ABC_HEX);
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, ABC_HEX);
    sha256_hex(NULL, 0, hex);
    assert_string_equal(hex, EMPTY_HEX);
}

static void test_digest_of_long_message_matches_known_vector(void **state)
{
    /* FIPS 180-2 appendix B.3: one million 'a'. */
    size_t n = 1000000;
    char *buf = malloc(n);
    struct oci_digest d;

    assert_non_null(buf);
    memset(buf, 'a', n);
    oci_digest_of(buf, n, &d);
    assert_string_equal(
        d.str, "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(buf);
}

static void test_streaming_equals_one_shot_for_any_split(void **state)
{
    unsigned char data[3000];
    struct oci_digest whole, d;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 131 + 7);
    oci_digest_of(data, sizeof(data), &whole);
    /* Chunk sizes around the 64-byte block boundary and odd ones. */
    static const size_t chunks[] = {1, 3, 63, 64, 65, 1000, 2999, 3000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct sha256 h;

        sha256_init(&h);
        for (size_t off = 0; off < sizeof(data); off += chunks[c]) {
            size_t n = sizeof(data) - off < chunks[c] ? sizeof(data) - off : chunks[c];

            sha256_update(&h, data + off, n);
        }
        assert_int_equal(h.bytes, sizeof(data));
        oci_digest_from_sha256(&h, &d);
        sha256_release(&h); /* safe after final */
        if (!oci_digest_equal(&d, &whole))
            fail_msg("chunk size %zu: %s != %s", chunks[c], d.str, whole.str);
    }
}

static void test_streaming_with_empty_updates_equals_one_shot(void **state)
{
    struct sha256 h;
    struct oci_digest d;

    sha256_init(&h);
    sha256_update(&h, "", 0);
    sha256_update(&h, "a", 1);
    sha256_update(&h, "", 0);
    sha256_update(&h, "bc", 2);
    oci_digest_from_sha256(&h, &d);
    assert_string_equal(d.str, "sha256:" ABC_HEX);
}

static void test_release_without_final_does_not_leak_or_crash(void **state)
{
    struct sha256 h;

    sha256_init(&h);
    sha256_update(&h, "abc", 3);
    sha256_release(&h);
    sha256_release(&h);
}

static void test_digest_equal_compares_whole_string(void **state)
{
    struct oci_digest a, b;

    oci_digest_of("abc", 3, &a);
    oci_digest_of("abc", 3, &b);
    assert_true(oci_digest_equal(&a, &b));
    oci_digest_of("abd", 3, &b);
    assert_false(oci_digest_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_lowercase_sha256),
        cmocka_unit_test(test_parse_rejects_uppercase_hex),
        cmocka_unit_test(test_parse_rejects_wrong_length),
        cmocka_unit_test(test_parse_rejects_other_algorithms),
        cmocka_unit_test(test_parse_rejects_non_hex_and_separators),
        cmocka_unit_test(test_digest_of_empty_and_abc_match_known_vectors),
        cmocka_unit_test(test_digest_of_long_message_matches_known_vector),
        cmocka_unit_test(test_streaming_equals_one_shot_for_any_split),
        cmocka_unit_test(test_streaming_with_empty_updates_equals_one_shot),
        cmocka_unit_test(test_release_without_final_does_not_leak_or_crash),
        cmocka_unit_test(test_digest_equal_compares_whole_string),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
