/*
 * Unit tests for transport/name: the one parser of the names users give
 * images (oci:DIR[:tag], docker-archive:FILE, docker://REF, REF).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "transport/name.h"

static void expect_ok(const char *s, unsigned allowed, enum image_name_kind kind,
                      const char *path, const char *tag, const char *repo)
{
    struct image_name n;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (image_name_parse(s, allowed, &n, &err) < 0)
        fail_msg("\"%s\" failed: %s", s, err.msg);
    assert_int_equal(n.kind, kind);
    if (path)
        assert_string_equal(n.path, path);
    else
        assert_null(n.path);
    if (tag)
        assert_string_equal(n.tag ? n.tag : n.ref.tag, tag);
    else
        assert_null(n.tag);
    if (repo)
        assert_string_equal(n.ref.repository, repo);
    else
        assert_null(n.ref.repository);
    image_name_release(&n);
}

static void expect_fail(const char *s, unsigned allowed, const char *want)
{
    struct image_name n = {.path = (char *)"untouched"};
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(image_name_parse(s, allowed, &n, &err), -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    if (!strstr(err.msg, want))
        fail_msg("\"%s\": got \"%s\", want it to hold \"%s\"", s, err.msg, want);
    assert_string_equal(n.path, "untouched");
}

static void test_layouts_with_and_without_a_tag(void **state)
{
    expect_ok("oci:out", IMAGE_NAME_ANY, IMAGE_NAME_OCI, "out", NULL, NULL);
    expect_ok("oci:out:v1.2", IMAGE_NAME_ANY, IMAGE_NAME_OCI, "out", "v1.2", NULL);
    expect_ok("oci:/abs/dir:latest", IMAGE_NAME_LOCAL, IMAGE_NAME_OCI, "/abs/dir", "latest",
              NULL);
    /* After the last ':' comes a '/' or an invalid tag: all of it is the path. */
    expect_ok("oci:a:b/c", IMAGE_NAME_ANY, IMAGE_NAME_OCI, "a:b/c", NULL, NULL);
    expect_ok("oci:dir:-bad", IMAGE_NAME_ANY, IMAGE_NAME_OCI, "dir:-bad", NULL, NULL);
}

static void test_archives(void **state)
{
    expect_ok("docker-archive:img.tar", IMAGE_NAME_ANY, IMAGE_NAME_ARCHIVE, "img.tar", NULL,
              NULL);
    expect_ok("docker-archive:/t/a:b.tar", IMAGE_NAME_LOCAL, IMAGE_NAME_ARCHIVE,
              "/t/a:b.tar", NULL, NULL);
}

static void test_references_with_and_without_docker_prefix(void **state)
{
    expect_ok("alpine", IMAGE_NAME_ANY, IMAGE_NAME_REGISTRY, NULL, "latest",
              "library/alpine");
    expect_ok("docker://alpine:3.20", IMAGE_NAME_REGISTRY, IMAGE_NAME_REGISTRY, NULL,
              "3.20", "library/alpine");
    expect_ok("docker://localhost:5000/team/app:v1", IMAGE_NAME_ANY, IMAGE_NAME_REGISTRY,
              NULL, "v1", "team/app");
}

static void test_reference_helpers(void **state)
{
    struct reference r = REFERENCE_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_string_equal(image_name_registry_text("docker://a/b"), "a/b");
    assert_string_equal(image_name_registry_text("a/b"), "a/b");
    assert_int_equal(image_name_reference("docker://localhost:5000/x:y", &r, &err), 0);
    assert_string_equal(r.registry, "localhost:5000");
    assert_string_equal(r.tag, "y");
    reference_release(&r);
    assert_int_equal(image_name_reference("docker://", &r, &err), -1);
    assert_int_equal(image_name_reference("oci:out", &r, &err), -1);
    assert_non_null(strstr(err.msg, "expected a registry reference"));
}

static void test_bad_names_are_refused_naming_what_was_expected(void **state)
{
    expect_fail("oci:", IMAGE_NAME_ANY, "missing directory after oci:");
    expect_fail("oci::tag", IMAGE_NAME_ANY, "missing directory after oci:");
    expect_fail("docker-archive:", IMAGE_NAME_ANY, "missing file after docker-archive:");
    expect_fail("alpine", IMAGE_NAME_LOCAL,
                "\"alpine\": expected oci:DIR[:tag] or docker-archive:FILE");
    expect_fail("oci:out", IMAGE_NAME_REGISTRY,
                "\"oci:out\": expected a registry reference");
    expect_fail("docker-archive:x", IMAGE_NAME_OCI, "expected oci:DIR[:tag]");
    expect_fail("Upper/Case", IMAGE_NAME_ANY, "Upper/Case");
    expect_fail("docker://UP", IMAGE_NAME_ANY, "UP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts_with_and_without_a_tag),
        cmocka_unit_test(test_archives),
        cmocka_unit_test(test_references_with_and_without_docker_prefix),
        cmocka_unit_test(test_reference_helpers),
        cmocka_unit_test(test_bad_names_are_refused_naming_what_was_expected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
