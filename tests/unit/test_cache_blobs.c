/*
 * Unit tests for cache/blobs: the content-addressed store under the cache
 * directory, where a blob appears under its digest only once it is whole,
 * and how the cache directory is chosen from the environment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "cache/blobs.h"
#include "cache/lease.h"
#include "oci/digest.h"
#include "tempdir.h"

static void assert_is_dir(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        fail_msg("%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        fail_msg("%s is not a directory", path);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_open_creates_the_layout(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (cache_open(&c, "deep/cache/dir", &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(c.dir, "deep/cache/dir");
    assert_string_equal(c.blobs, "deep/cache/dir/blobs/sha256");
    assert_string_equal(c.tmp, "deep/cache/dir/tmp");
    assert_is_dir("deep/cache/dir/blobs/sha256");
    assert_is_dir("deep/cache/dir/tmp");
    cache_release(&c);

    /* Opening an existing cache again is fine and keeps its blobs. */
    assert_int_equal(mkdir("again", 0700), 0);
    assert_int_equal(cache_open(&c, "again", &err), 0);
    cache_release(&c);
    assert_int_equal(cache_open(&c, "again", &err), 0);
    cache_release(&c);
}

static void test_cache_directories_are_private(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct stat st;

    assert_int_equal(cache_open(&c, "priv", &err), 0);
    assert_int_equal(stat("priv/blobs/sha256", &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    assert_int_equal(stat("priv/tmp", &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    cache_release(&c);
}

static void test_open_fails_naming_the_cache_when_it_cannot_be_created(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    FILE *f = fopen("file", "w");

    assert_non_null(f);
    fclose(f);
    assert_int_equal(cache_open(&c, "file/cache", &err), -1);
    assert_non_null(strstr(err.msg, "cache 'file/cache'"));
    assert_int_equal(err.code, OCIB_EXIT_FAILURE);
    assert_null(c.dir);
    assert_null(c.blobs);
}

static void test_tmp_then_commit_makes_the_blob_visible_under_its_digest(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    static const char data[] = "layer bytes";
    struct oci_digest d;
    char *tmp = NULL, *path, buf[64];
    int fd = -1;
    FILE *f;
    size_t n;

    assert_int_equal(cache_open(&c, "c-commit", &err), 0);
    oci_digest_of(data, strlen(data), &d);
    assert_false(cache_blob_exists(&c, &d));

    if (cache_tmp_create(&c, &tmp, &fd, &err) < 0)
        fail_msg("%s", err.msg);
    assert_true(fd >= 0);
    assert_non_null(tmp);
    assert_true(strncmp(tmp, "c-commit/tmp/", strlen("c-commit/tmp/")) == 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
    /* Not visible while being written. */
    assert_false(cache_blob_exists(&c, &d));

    if (cache_blob_commit(&c, tmp, &d, &err) < 0)
        fail_msg("%s", err.msg);
    assert_true(cache_blob_exists(&c, &d));
    path = cache_blob_path(&c, &d);
    assert_true(strncmp(path, "c-commit/blobs/sha256/", strlen("c-commit/blobs/sha256/")) ==
                0);
    assert_string_equal(path + strlen("c-commit/blobs/sha256/"), oci_digest_hex(&d));
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(n, strlen(data));
    assert_memory_equal(buf, data, n);
    /* The temporary file is gone. */
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(count_entries(cache_lease_tmp(&c, NULL)), 0);
    free(path);
    free(tmp);
    cache_release(&c);
}

static void test_committed_blobs_are_read_only_and_readable_by_others(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_digest d;
    char *tmp = NULL, *path;
    int fd = -1;
    struct stat st;

    assert_int_equal(cache_open(&c, "c-perm", &err), 0);
    assert_int_equal(cache_tmp_create(&c, &tmp, &fd, &err), 0);
    close(fd);
    oci_digest_of("", 0, &d);
    assert_int_equal(cache_blob_commit(&c, tmp, &d, &err), 0);
    path = cache_blob_path(&c, &d);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0444);
    free(path);
    free(tmp);
    cache_release(&c);
}

static void test_two_tmp_files_do_not_collide(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    char *t1 = NULL, *t2 = NULL;
    int f1 = -1, f2 = -1;

    assert_int_equal(cache_open(&c, "c-tmp", &err), 0);
    assert_int_equal(cache_tmp_create(&c, &t1, &f1, &err), 0);
    assert_int_equal(cache_tmp_create(&c, &t2, &f2, &err), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(count_entries(cache_lease_tmp(&c, NULL)), 2);
    close(f1);
    close(f2);
    unlink(t1);
    unlink(t2);
    free(t1);
    free(t2);
    cache_release(&c);
}

static void test_commit_replaces_an_existing_blob_atomically(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_digest d;
    char *tmp = NULL;
    int fd = -1;

    assert_int_equal(cache_open(&c, "c-replace", &err), 0);
    oci_digest_of("x", 1, &d);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cache_tmp_create(&c, &tmp, &fd, &err), 0);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
        assert_int_equal(cache_blob_commit(&c, tmp, &d, &err), 0);
        free(tmp);
    }
    assert_true(cache_blob_exists(&c, &d));
    assert_int_equal(count_entries("c-replace/blobs/sha256"), 1);
    assert_int_equal(count_entries(cache_lease_tmp(&c, NULL)), 0);
    cache_release(&c);
}

static void test_failed_commit_removes_the_tmp_file_and_says_why(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_digest d;
    char *tmp = NULL;
    int fd = -1;

    assert_int_equal(cache_open(&c, "c-fail", &err), 0);
    oci_digest_of("y", 1, &d);
    assert_int_equal(cache_tmp_create(&c, &tmp, &fd, &err), 0);
    close(fd);
    /* Make the blob's name a non-empty directory so rename() fails. */
    {
        char *path = cache_blob_path(&c, &d), *inner;

        assert_int_equal(mkdir(path, 0700), 0);
        assert_true(asprintf(&inner, "%s/x", path) > 0);
        assert_int_equal(mkdir(inner, 0700), 0);
        free(inner);
        free(path);
    }
    assert_int_equal(cache_blob_commit(&c, tmp, &d, &err), -1);
    assert_non_null(strstr(err.msg, "cannot store blob sha256:"));
    assert_non_null(strstr(err.msg, oci_digest_hex(&d)));
    assert_int_equal(access(tmp, F_OK), -1);
    free(tmp);
    cache_release(&c);
}

/* ---- cache_default_dir ------------------------------------------------- */

struct saved_env {
    char *cache, *xdg, *home;
};

static char *dup_env(const char *name)
{
    const char *v = getenv(name);

    return v ? strdup(v) : NULL;
}

static void restore(const char *name, char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    free(value);
}

static int save_env(void **state)
{
    struct saved_env *s = calloc(1, sizeof(*s));

    s->cache = dup_env("OCIB_CACHE_DIR");
    s->xdg = dup_env("XDG_CACHE_HOME");
    s->home = dup_env("HOME");
    *state = s;
    return 0;
}

static int restore_env(void **state)
{
    struct saved_env *s = *state;

    restore("OCIB_CACHE_DIR", s->cache);
    restore("XDG_CACHE_HOME", s->xdg);
    restore("HOME", s->home);
    free(s);
    return 0;
}

static void expect_default_dir(const char *want)
{
    char *dir = cache_default_dir();

    assert_non_null(dir);
    assert_string_equal(dir, want);
    free(dir);
}

static void test_default_dir_prefers_ocib_cache_dir(void **state)
{
    setenv("OCIB_CACHE_DIR", "/srv/ocib-cache", 1);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    expect_default_dir("/srv/ocib-cache");
}

static void test_default_dir_uses_xdg_cache_home_next(void **state)
{
    unsetenv("OCIB_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    expect_default_dir("/xdg/ocib");
    /* An empty OCIB_CACHE_DIR counts as unset. */
    setenv("OCIB_CACHE_DIR", "", 1);
    expect_default_dir("/xdg/ocib");
}

static void test_default_dir_falls_back_to_home_dot_cache(void **state)
{
    unsetenv("OCIB_CACHE_DIR");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    expect_default_dir("/home/u/.cache/ocib");
    setenv("XDG_CACHE_HOME", "", 1);
    expect_default_dir("/home/u/.cache/ocib");
}

static void test_default_dir_without_home_is_still_a_path(void **state)
{
    char *dir;

    unsetenv("OCIB_CACHE_DIR");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    dir = cache_default_dir();
    assert_non_null(dir);
    assert_true(dir[0] == '/');
    assert_non_null(strstr(dir, "ocib"));
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_open_creates_the_layout),
        TEMPDIR_TEST(test_cache_directories_are_private),
        TEMPDIR_TEST(test_open_fails_naming_the_cache_when_it_cannot_be_created),
        TEMPDIR_TEST(test_tmp_then_commit_makes_the_blob_visible_under_its_digest),
        TEMPDIR_TEST(test_committed_blobs_are_read_only_and_readable_by_others),
        TEMPDIR_TEST(test_two_tmp_files_do_not_collide),
        TEMPDIR_TEST(test_commit_replaces_an_existing_blob_atomically),
        TEMPDIR_TEST(test_failed_commit_removes_the_tmp_file_and_says_why),
        cmocka_unit_test_setup_teardown(test_default_dir_prefers_ocib_cache_dir, save_env,
                                        restore_env),
        cmocka_unit_test_setup_teardown(test_default_dir_uses_xdg_cache_home_next, save_env,
                                        restore_env),
        cmocka_unit_test_setup_teardown(test_default_dir_falls_back_to_home_dot_cache,
                                        save_env, restore_env),
        cmocka_unit_test_setup_teardown(test_default_dir_without_home_is_still_a_path,
                                        save_env, restore_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
