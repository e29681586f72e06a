/*
 * Unit tests for registry/headers: the upload Range, WWW-Authenticate,
 * Retry-After and count parsers, on well-formed and hostile values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/headers.h"

static void test_range(void **state)
{
    int64_t next = 123;

    /* "0-N" holds N + 1 bytes: the next chunk starts at N + 1. */
    assert_int_equal(registry_parse_range("0-1048575", &next), 0);
    assert_int_equal(next, 1048576);
    assert_int_equal(registry_parse_range("bytes=0-9", &next), 0);
    assert_int_equal(next, 10);
    /* Distribution 2.x answers "0-0" for an empty upload and for a one-byte
     * one: ambiguous, never read as one byte received. */
    assert_int_equal(registry_parse_range("0-0", &next), 0);
    assert_int_equal(next, -1);
    /* Distribution 3's empty upload. */
    assert_int_equal(registry_parse_range("0--1", &next), 0);
    assert_int_equal(next, 0);
    /* Not ranges the spec defines. */
    next = 7;
    assert_int_equal(registry_parse_range(NULL, &next), -1);
    assert_int_equal(registry_parse_range("", &next), -1);
    assert_int_equal(registry_parse_range("5-9", &next), -1);
    assert_int_equal(registry_parse_range("0-", &next), -1);
    assert_int_equal(registry_parse_range("0-9x", &next), -1);
    assert_int_equal(registry_parse_range("0- 9", &next), -1);
    assert_int_equal(registry_parse_range("0-+9", &next), -1);
    assert_int_equal(registry_parse_range("0--2", &next), -1);
    assert_int_equal(registry_parse_range("0-00", &next), -1); /* found by fuzz_range */
    assert_int_equal(registry_parse_range("0-007", &next), -1);
    assert_int_equal(registry_parse_range("0-99999999999999999999", &next), -1);
    assert_int_equal(registry_parse_range("0-9223372036854775807", &next), -1);
    assert_int_equal(next, 7);
}

static void test_challenge(void **state)
{
    char *scheme, *realm, *service, *scope;

    assert_int_equal(registry_parse_challenge(
                         "Bearer realm=\"https://auth.example.com/token\",service=\"reg\","
                         "scope=\"repository:a/b:pull,push\"",
                         &scheme, &realm, &service, &scope),
                     0);
    assert_string_equal(scheme, "Bearer");
    assert_string_equal(realm, "https://auth.example.com/token");
    assert_string_equal(service, "reg");
    /* A comma inside quotes is part of the value. */
    assert_string_equal(scope, "repository:a/b:pull,push");
    free(scheme), free(realm), free(service), free(scope);

    /* Case-insensitive names, spaces, escapes, unknown params, no quotes. */
    assert_int_equal(registry_parse_challenge("bearer  Realm = \"a\\\"b\" , x=1, service=s",
                                              &scheme, &realm, &service, &scope),
                     0);
    assert_string_equal(scheme, "bearer");
    assert_string_equal(realm, "a\"b");
    assert_string_equal(service, "s");
    assert_null(scope);
    free(scheme), free(realm), free(service), free(scope);

    assert_int_equal(registry_parse_challenge("Basic realm=\"Registry Realm\"", &scheme,
                                              &realm, &service, &scope),
                     0);
    assert_string_equal(scheme, "Basic");
    assert_string_equal(realm, "Registry Realm");
    free(scheme), free(realm), free(service), free(scope);

    /* Malformed: nothing is returned. */
    assert_int_equal(registry_parse_challenge("", &scheme, &realm, &service, &scope), -1);
    assert_int_equal(
        registry_parse_challenge("Bearer realm=\"open", &scheme, &realm, &service, &scope),
        -1);
    assert_int_equal(
        registry_parse_challenge("Bearer realm", &scheme, &realm, &service, &scope), -1);
    assert_int_equal(registry_parse_challenge("=x", &scheme, &realm, &service, &scope), -1);
}

static void test_retry_after(void **state)
{
    long ms = 0;

    assert_int_equal(registry_parse_retry_after("3", 1000, 60000, &ms), 0);
    assert_int_equal(ms, 3000);
    /* Huge values are capped, never wrapped (atol overflowed here). */
    assert_int_equal(
        registry_parse_retry_after("99999999999999999999999", 1000, 60000, &ms), -1);
    assert_int_equal(registry_parse_retry_after("9223372036854775807", 1000, 60000, &ms),
                     0);
    assert_int_equal(ms, 60000);
    /* An HTTP date, relative to now. */
    assert_int_equal(
        registry_parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4, 60000, &ms), 0);
    assert_int_equal(ms, 6000);
    assert_int_equal(
        registry_parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 50, 60000, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(registry_parse_retry_after("-5", 1000, 60000, &ms), -1);
    assert_int_equal(registry_parse_retry_after("soon", 1000, 60000, &ms), -1);
    assert_int_equal(registry_parse_retry_after(NULL, 1000, 60000, &ms), -1);
}

static void test_count(void **state)
{
    int64_t v = 0;

    assert_int_equal(registry_parse_count("65536", 1 << 20, &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(registry_parse_count("2097152", 1 << 20, &v), -1);
    assert_int_equal(registry_parse_count("12k", 1 << 20, &v), -1);
    assert_int_equal(registry_parse_count("-1", 1 << 20, &v), -1);
    assert_int_equal(registry_parse_count("", 1 << 20, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_count),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
