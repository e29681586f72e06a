/*
 * Unit tests for registry/reference: parsing, normalisation, the printed
 * forms and the loopback/endpoint helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "registry/reference.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX64

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

/* Parses s and checks every field of the result. */
static void expect_parse(const char *s, const char *registry, const char *repository,
                         const char *tag, const char *digest)
{
    struct reference r = REFERENCE_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (reference_parse(s, &r, &err) < 0)
        fail_msg("parsing \"%s\" failed: %s", s, err.msg);
    assert_string_equal(err.msg, "");
    assert_str_or_null(r.registry, registry);
    assert_str_or_null(r.repository, repository);
    assert_str_or_null(r.tag, tag);
    assert_str_or_null(r.digest, digest);
    reference_release(&r);
}

/* Parses s expecting a usage error whose message quotes s and contains why;
 * checks that the output struct was not touched. */
static void expect_fail(const char *s, const char *why)
{
    static char sentinel;
    struct reference r = {&sentinel, &sentinel, &sentinel, &sentinel};
    struct ocib_error err = OCIB_ERROR_INIT;
    _cleanup_free_ char *quoted = xasprintf("\"%s\"", s ? s : "");

    if (reference_parse(s, &r, &err) != -1)
        fail_msg("\"%s\" was accepted", s);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    if (!strstr(err.msg, why))
        fail_msg("error for \"%s\" is \"%s\", expected it to mention \"%s\"", s, err.msg,
                 why);
    if (strlen(quoted) < 200 && !strstr(err.msg, quoted))
        fail_msg("error \"%s\" does not name the reference %s", err.msg, quoted);
    assert_ptr_equal(r.registry, &sentinel);
    assert_ptr_equal(r.repository, &sentinel);
    assert_ptr_equal(r.tag, &sentinel);
    assert_ptr_equal(r.digest, &sentinel);
}

static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_short_name_resolves_to_docker_hub_library_latest(void **state)
{
    expect_parse("alpine", "docker.io", "library/alpine", "latest", NULL);
    expect_parse("alpine:3.20", "docker.io", "library/alpine", "3.20", NULL);
    expect_parse("user/repo", "docker.io", "user/repo", "latest", NULL);
    expect_parse("user/repo:v1", "docker.io", "user/repo", "v1", NULL);
    expect_parse("a/b/c", "docker.io", "a/b/c", "latest", NULL);
    /* a first element without '.', ':' or "localhost" is a namespace */
    expect_parse("foo_bar/baz", "docker.io", "foo_bar/baz", "latest", NULL);
}

static void test_host_with_port_is_registry(void **state)
{
    expect_parse("registry.example.com/acme/api", "registry.example.com", "acme/api",
                 "latest", NULL);
    expect_parse("registry.example.com:5000/acme/api:1", "registry.example.com:5000",
                 "acme/api", "1", NULL);
    expect_parse("my-host:5000/x", "my-host:5000", "x", "latest", NULL);
    expect_parse("10.0.0.1:443/x/y:z", "10.0.0.1:443", "x/y", "z", NULL);
    /* a single element on another registry gets no "library/" */
    expect_parse("ghcr.io/app", "ghcr.io", "app", "latest", NULL);
}

static void test_localhost_is_registry(void **state)
{
    expect_parse("localhost/foo", "localhost", "foo", "latest", NULL);
    expect_parse("localhost:5000/a/b:t@" DIGEST, "localhost:5000", "a/b", "t", DIGEST);
    /* without a '/', "localhost:5000" is Docker Hub's library/localhost, tag 5000 */
    expect_parse("localhost:5000", "docker.io", "library/localhost", "5000", NULL);
}

static void test_ipv6_registry(void **state)
{
    expect_parse("[::1]:5000/x:y", "[::1]:5000", "x", "y", NULL);
    expect_parse("[::1]/x", "[::1]", "x", "latest", NULL);
    expect_parse("[2001:db8::A]:443/ns/app", "[2001:db8::A]:443", "ns/app", "latest", NULL);
    expect_fail("[::1]:5000", "invalid reference");
    expect_fail("[]/x", "bad IPv6 address");
    expect_fail("[::g]/x", "bad IPv6 address");
    expect_fail("[::1]x/y", "bad registry");
    expect_fail("[::1/x", "bad IPv6 address");
}

static void test_digest_only_leaves_tag_null(void **state)
{
    expect_parse("alpine@" DIGEST, "docker.io", "library/alpine", NULL, DIGEST);
    expect_parse("example.com/a@" DIGEST, "example.com", "a", NULL, DIGEST);
}

static void test_tag_and_digest_both_kept(void **state)
{
    expect_parse("alpine:3.20@" DIGEST, "docker.io", "library/alpine", "3.20", DIGEST);
    expect_parse("example.com:5000/a/b:v1.2-rc_3@" DIGEST, "example.com:5000", "a/b",
                 "v1.2-rc_3", DIGEST);
}

static void test_index_docker_io_normalises_to_docker_io(void **state)
{
    expect_parse("index.docker.io/library/x", "docker.io", "library/x", "latest", NULL);
    expect_parse("index.docker.io/x:1", "docker.io", "library/x", "1", NULL);
    expect_parse("index.docker.io/acme/x", "docker.io", "acme/x", "latest", NULL);
    expect_parse("docker.io/alpine", "docker.io", "library/alpine", "latest", NULL);
    expect_parse("docker.io/library/alpine", "docker.io", "library/alpine", "latest", NULL);
}

static void test_uppercase_host_allowed_uppercase_repository_rejected(void **state)
{
    expect_parse("Registry.Example.COM/foo", "Registry.Example.COM", "foo", "latest", NULL);
    expect_parse("LOCALHOST:5000/foo:TAG", "LOCALHOST:5000", "foo", "TAG", NULL);
    expect_fail("Alpine", "repository name must be lowercase");
    expect_fail("example.com/Foo", "repository name must be lowercase");
    expect_fail("user/Repo:1", "repository name must be lowercase");
    /* "Foo" is not a host (no '.', ':'), so it is an uppercase namespace */
    expect_fail("Foo/bar", "repository name must be lowercase");
}

static void test_invalid_tags_rejected(void **state)
{
    _cleanup_free_ char *t128 = repeat('t', 128);
    _cleanup_free_ char *t129 = repeat('t', 129);
    _cleanup_free_ char *ok = xasprintf("alpine:%s", t128);
    _cleanup_free_ char *bad = xasprintf("alpine:%s", t129);

    expect_parse(ok, "docker.io", "library/alpine", t128, NULL);
    expect_parse("alpine:_x", "docker.io", "library/alpine", "_x", NULL);
    expect_fail(bad, "bad tag");
    expect_fail("alpine:-x", "bad tag");
    expect_fail("alpine:.x", "bad tag");
    expect_fail("alpine:a!b", "bad tag");
    expect_fail("alpine:a b", "bad tag");
    expect_fail("alpine::x", "bad tag");
    /* a ":" before the last "/" is a port: "alpine:a" is a registry */
    expect_fail("alpine:a/b", "bad port");
}

static void test_bad_digests_rejected(void **state)
{
    expect_fail("alpine@md5:0123456789abcdef0123456789abcdef", "bad digest");
    expect_fail("alpine@sha512:" HEX64 HEX64, "bad digest");
    expect_fail(
        "alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "bad digest");
    expect_fail("alpine@sha256:" HEX64 "0", "bad digest");
    expect_fail(
        "alpine@sha256:123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "bad digest");
    expect_fail("alpine@sha256:", "bad digest");
    expect_fail(
        "alpine@sha256:zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "bad digest");
    expect_fail("alpine@SHA256:" HEX64, "bad digest");
    expect_fail("alpine@" HEX64, "bad digest");
    expect_fail("alpine@" DIGEST "@" DIGEST, "bad digest");
    expect_fail("alpine@" DIGEST ":tag", "bad digest");
}

static void test_empty_reference_rejected(void **state)
{
    expect_fail("", "empty reference");
    expect_fail(NULL, "empty reference");
    expect_fail(":tag", "missing repository name");
    expect_fail("@" DIGEST, "missing repository name");
}

static void test_trailing_colon_or_at_rejected(void **state)
{
    expect_fail("alpine:", "missing tag");
    expect_fail("alpine@", "missing digest");
    expect_fail("alpine:3.20@", "missing digest");
    expect_fail("example.com:5000/x:", "missing tag");
}

static void test_empty_components_rejected(void **state)
{
    expect_fail("a//b", "empty component");
    expect_fail("/a", "empty component");
    expect_fail("a/", "empty component");
    expect_fail("example.com/", "empty component");
    expect_fail("example.com//a", "empty component");
    expect_fail("a..com/x", "empty component in registry host");
    expect_fail(".example.com/x", "empty component in registry host");
    expect_fail("example.com./x", "empty component in registry host");
}

static void test_bad_port_rejected(void **state)
{
    expect_fail("localhost:abc/x", "bad port");
    expect_fail("localhost:/x", "bad port");
    expect_fail("localhost:70000/x", "bad port");
    expect_fail("localhost:0/x", "bad port");
    expect_fail("example.com:5000:1/x", "bad port");
    expect_fail("[::1]:/x", "bad port");
    expect_parse("localhost:65535/x", "localhost:65535", "x", "latest", NULL);
}

static void test_malformed_names_rejected(void **state)
{
    /* separators: one '.', one or two '_', any number of '-', never at an end */
    expect_parse("a__b/c--d/e.f/g_h", "docker.io", "a__b/c--d/e.f/g_h", "latest", NULL);
    expect_fail("a___b", "invalid reference format");
    expect_fail("a..b", "invalid reference format");
    expect_fail("a._b", "invalid reference format");
    expect_fail("-a", "invalid reference format");
    expect_fail("a-", "invalid reference format");
    expect_fail("_a", "invalid reference format");
    expect_fail("a b", "invalid reference format");
    expect_fail("ex_ample.com/x", "invalid reference format");
    expect_fail("-ex.com/x", "invalid reference format");
    expect_fail("ex-.com/x", "invalid reference format");
}

static void test_name_longer_than_255_rejected(void **state)
{
    /* "docker.io/library/" is 18 characters: the limit counts the normalised name */
    _cleanup_free_ char *fits = repeat('a', 255 - 18);
    _cleanup_free_ char *over = repeat('a', 255 - 18 + 1);
    _cleanup_free_ char *huge = repeat('a', 5000);
    _cleanup_free_ char *want = xasprintf("library/%s", fits);

    expect_parse(fits, "docker.io", want, "latest", NULL);
    expect_fail(over, "name too long");
    expect_fail(huge, "too long");
}

static void test_image_id_is_not_a_name(void **state)
{
    expect_fail(HEX64, "image ID");
    expect_parse(HEX64 ":1", "docker.io", "library/" HEX64, "1", NULL);
}

/* Parses s, prints it with fmt, and checks that the printed form reads back
 * as the same reference. */
static void expect_round_trip(const char *s, char *(*fmt)(const struct reference *),
                              const char *want)
{
    struct reference a = REFERENCE_INIT, b = REFERENCE_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    _cleanup_free_ char *printed = NULL;
    _cleanup_free_ char *again = NULL;

    assert_int_equal(reference_parse(s, &a, &err), 0);
    printed = fmt(&a);
    assert_string_equal(printed, want);
    if (reference_parse(printed, &b, &err) < 0)
        fail_msg("printed form \"%s\" of \"%s\" does not parse: %s", printed, s, err.msg);
    assert_string_equal(a.registry, b.registry);
    assert_string_equal(a.repository, b.repository);
    assert_str_or_null(b.tag, a.tag);
    assert_str_or_null(b.digest, a.digest);
    again = fmt(&b);
    assert_string_equal(again, printed);
    reference_release(&a);
    reference_release(&b);
}

static void test_string_round_trips(void **state)
{
    expect_round_trip("alpine", reference_string, "docker.io/library/alpine:latest");
    expect_round_trip("alpine:3.20", reference_string, "docker.io/library/alpine:3.20");
    expect_round_trip("acme/api", reference_string, "docker.io/acme/api:latest");
    expect_round_trip("alpine@" DIGEST, reference_string,
                      "docker.io/library/alpine@" DIGEST);
    expect_round_trip("localhost:5000/a/b:t@" DIGEST, reference_string,
                      "localhost:5000/a/b:t@" DIGEST);
    expect_round_trip("[::1]:5000/x:y", reference_string, "[::1]:5000/x:y");
    expect_round_trip("index.docker.io/x", reference_string, "docker.io/library/x:latest");
}

static void test_familiar_form_as_docker_prints_it(void **state)
{
    expect_round_trip("alpine:3.20", reference_familiar, "alpine:3.20");
    expect_round_trip("docker.io/library/alpine", reference_familiar, "alpine:latest");
    expect_round_trip("acme/api:1", reference_familiar, "acme/api:1");
    expect_round_trip("alpine@" DIGEST, reference_familiar, "alpine@" DIGEST);
    expect_round_trip("alpine:3@" DIGEST, reference_familiar, "alpine:3@" DIGEST);
    expect_round_trip("library/a/b", reference_familiar, "library/a/b:latest");
    expect_round_trip("example.com:5000/x", reference_familiar,
                      "example.com:5000/x:latest");
    expect_round_trip("localhost/foo:1", reference_familiar, "localhost/foo:1");
    /* Docker would print "foo.bar/baz", which reads back as another registry */
    expect_round_trip("docker.io/foo.bar/baz", reference_familiar,
                      "docker.io/foo.bar/baz:latest");
    expect_round_trip("docker.io/localhost/baz", reference_familiar,
                      "docker.io/localhost/baz:latest");
}

static void test_name_has_no_tag_or_digest(void **state)
{
    struct reference r = REFERENCE_INIT;
    _cleanup_free_ char *name = NULL;

    assert_int_equal(reference_parse("localhost:5000/a/b:t@" DIGEST, &r, NULL), 0);
    name = reference_name(&r);
    assert_string_equal(name, "localhost:5000/a/b");
    reference_release(&r);
}

static void test_loopback_detection(void **state)
{
    assert_true(reference_registry_is_loopback("127.0.0.5:5000"));
    assert_true(reference_registry_is_loopback("127.0.0.1"));
    assert_true(reference_registry_is_loopback("127.255.255.255:1"));
    assert_true(reference_registry_is_loopback("localhost:80"));
    assert_true(reference_registry_is_loopback("localhost"));
    assert_true(reference_registry_is_loopback("LocalHost:5000"));
    assert_true(reference_registry_is_loopback("[::1]:5000"));
    assert_true(reference_registry_is_loopback("[::1]"));
    assert_true(reference_registry_is_loopback("[0:0:0:0:0:0:0:1]"));

    assert_false(reference_registry_is_loopback("10.0.0.1"));
    assert_false(reference_registry_is_loopback("example.com"));
    assert_false(reference_registry_is_loopback("docker.io"));
    assert_false(reference_registry_is_loopback("128.0.0.1"));
    assert_false(reference_registry_is_loopback("127.0.0.1.example.com"));
    assert_false(reference_registry_is_loopback("localhost.example.com"));
    assert_false(reference_registry_is_loopback("localhostx:80"));
    assert_false(reference_registry_is_loopback("[::2]:5000"));
    assert_false(reference_registry_is_loopback("[::1"));
    assert_false(reference_registry_is_loopback("[::1]x"));
    assert_false(reference_registry_is_loopback(""));
    assert_false(reference_registry_is_loopback(NULL));
}

static void test_endpoint_maps_docker_hub(void **state)
{
    const char *other = "ghcr.io";

    assert_string_equal(reference_registry_endpoint("docker.io"), "registry-1.docker.io");
    assert_ptr_equal(reference_registry_endpoint(other), other);
}

static void test_tag_valid(void **state)
{
    _cleanup_free_ char *t128 = repeat('9', 128);
    _cleanup_free_ char *t129 = repeat('9', 129);

    assert_true(reference_tag_valid("latest"));
    assert_true(reference_tag_valid("3.20"));
    assert_true(reference_tag_valid("_"));
    assert_true(reference_tag_valid("V1.2-rc_3"));
    assert_true(reference_tag_valid(t128));
    assert_false(reference_tag_valid(t129));
    assert_false(reference_tag_valid(""));
    assert_false(reference_tag_valid(NULL));
    assert_false(reference_tag_valid("-x"));
    assert_false(reference_tag_valid(".x"));
    assert_false(reference_tag_valid("a:b"));
    assert_false(reference_tag_valid("a@b"));
    assert_false(reference_tag_valid("a/b"));
}

static void test_release_accepts_zeroed_and_resets(void **state)
{
    struct reference r = REFERENCE_INIT;

    reference_release(&r);
    reference_release(NULL);
    assert_int_equal(reference_parse("alpine", &r, NULL), 0);
    reference_release(&r);
    assert_null(r.registry);
    assert_null(r.repository);
    assert_null(r.tag);
    assert_null(r.digest);
    reference_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_name_resolves_to_docker_hub_library_latest),
        cmocka_unit_test(test_host_with_port_is_registry),
        cmocka_unit_test(test_localhost_is_registry),
        cmocka_unit_test(test_ipv6_registry),
        cmocka_unit_test(test_digest_only_leaves_tag_null),
        cmocka_unit_test(test_tag_and_digest_both_kept),
        cmocka_unit_test(test_index_docker_io_normalises_to_docker_io),
        cmocka_unit_test(test_uppercase_host_allowed_uppercase_repository_rejected),
        cmocka_unit_test(test_invalid_tags_rejected),
        cmocka_unit_test(test_bad_digests_rejected),
        cmocka_unit_test(test_empty_reference_rejected),
        cmocka_unit_test(test_trailing_colon_or_at_rejected),
        cmocka_unit_test(test_empty_components_rejected),
        cmocka_unit_test(test_bad_port_rejected),
        cmocka_unit_test(test_malformed_names_rejected),
        cmocka_unit_test(test_name_longer_than_255_rejected),
        cmocka_unit_test(test_image_id_is_not_a_name),
        cmocka_unit_test(test_string_round_trips),
        cmocka_unit_test(test_familiar_form_as_docker_prints_it),
        cmocka_unit_test(test_name_has_no_tag_or_digest),
        cmocka_unit_test(test_loopback_detection),
        cmocka_unit_test(test_endpoint_maps_docker_hub),
        cmocka_unit_test(test_tag_valid),
        cmocka_unit_test(test_release_accepts_zeroed_and_resets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
