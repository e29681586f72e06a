/*
 * Unit tests for the checks around unpacking (issue 10): layer_unpack_checked
 * refuses a blob whose digest, size or diff_id is not the one its image
 * gives, and a layer past the byte or entry limits, before anything is
 * written into the root; unpack_limits_init reads the limits from the
 * environment strictly; rootfs_resolve (builder/rootfs) resolves a path
 * through a root's symlinks as a chroot would.
 *
 * Each test works in its own temporary directory: "root" is what layers are
 * applied to, "layer" the blob.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fs.h"
#include "builder/rootfs.h"
#include "layers/unpack.h"
#include "oci/digest.h"

struct fixture {
    char dir[PATH_MAX / 2];
    char root[PATH_MAX];
    char layer[PATH_MAX];
    int root_fd;
    struct oci_digest digest, diff_id; /* of the last layer written */
    int64_t size;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "checked-XXXXXX";
    char cwd[PATH_MAX / 4];

    assert_non_null(f);
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(f->dir, sizeof(f->dir), "%s/%s", cwd, tmpl);
    snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
    snprintf(f->layer, sizeof(f->layer), "%s/layer", f->dir);
    assert_int_equal(mkdir(f->root, 0755), 0);
    f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->root_fd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    close(f->root_fd);
    assert_int_equal(fs_rm_rf(f->dir, NULL), 0);
    free(f);
    return 0;
}

/* A tar of n files "fK" of size bytes each (zeros), with filter, into buf. */
static size_t make_tar(int filter, size_t n, size_t size, char *buf, size_t cap)
{
    struct archive *a = archive_write_new();
    char *zeros = calloc(1, size + 1);
    size_t used = 0;

    assert_non_null(a);
    assert_non_null(zeros);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        char name[32];

        snprintf(name, sizeof(name), "f%zu", i);
        archive_entry_set_pathname(ae, name);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (la_int64_t)size);
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (size)
            assert_int_equal(archive_write_data(a, zeros, size), (la_ssize_t)size);
        archive_entry_free(ae);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    free(zeros);
    return used;
}

/* Writes the layer blob (gzip) and records its digest, size and diff_id. */
static void write_layer(struct fixture *f, size_t n, size_t size)
{
    size_t cap = 4 * 1024 * 1024 + n * 2048 + n * size;
    char *buf = malloc(cap);
    size_t len;

    assert_non_null(buf);
    len = make_tar(ARCHIVE_FILTER_NONE, n, size, buf, cap);
    oci_digest_of(buf, len, &f->diff_id);
    len = make_tar(ARCHIVE_FILTER_GZIP, n, size, buf, cap);
    oci_digest_of(buf, len, &f->digest);
    f->size = (int64_t)len;
    assert_int_equal(fs_write_file_atomic(f->layer, buf, len, 0644, NULL), 0);
    free(buf);
}

static bool root_empty(const struct fixture *f)
{
    DIR *d = opendir(f->root);
    struct dirent *de;
    bool empty = true;

    assert_non_null(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            empty = false;
    closedir(d);
    return empty;
}

static int unpack(struct fixture *f, const struct unpack_check *chk,
                  struct unpack_limits *l, struct ocib_error *err)
{
    return layer_unpack_checked(f->root_fd, f->layer, f->digest.str, chk, l, NULL, err);
}

static void test_matching_layer_unpacks_and_counts(void **state)
{
    struct fixture *f = *state;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_limits l = {1 << 20, 1 << 20, 100, 0};
    struct unpack_check chk = {&f->digest, 0, &f->diff_id};
    struct stat st;

    write_layer(f, 3, 1000);
    chk.size = f->size;
    if (unpack(f, &chk, &l, &err) < 0)
        fail_msg("unpack failed: %s", err.msg);
    assert_int_equal(fstatat(f->root_fd, "f2", &st, 0), 0);
    assert_int_equal(st.st_size, 1000);
    /* Three headers and blocks, padding, and the end-of-archive blocks. */
    assert_true(l.build_bytes >= 3 * (512 + 1024) + 1024);
}

static void expect_integrity(struct fixture *f, const struct unpack_check *chk,
                             const char *needle)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(unpack(f, chk, NULL, &err), -1);
    assert_int_equal(ocib_error_kind(&err), OCIB_ERR_INTEGRITY);
    if (!strstr(err.msg, needle) || !strstr(err.msg, f->digest.str) ||
        !strstr(err.msg, f->layer))
        fail_msg("message lacks '%s', the digest or the path: %s", needle, err.msg);
    assert_true(root_empty(f));
}

static void test_wrong_digest_size_or_diff_id_write_nothing(void **state)
{
    struct fixture *f = *state;
    struct oci_digest other;
    struct unpack_check chk;

    write_layer(f, 2, 10);
    oci_digest_of("other", 5, &other);
    chk = (struct unpack_check){&other, f->size, &f->diff_id};
    expect_integrity(f, &chk, "does not match its digest");
    chk = (struct unpack_check){&f->digest, f->size + 1, &f->diff_id};
    expect_integrity(f, &chk, "its image says");
    chk = (struct unpack_check){&f->digest, f->size - 1, &f->diff_id};
    expect_integrity(f, &chk, "larger than");
    chk = (struct unpack_check){&f->digest, f->size, &other};
    expect_integrity(f, &chk, "diff_id");
}

static void expect_limit(struct fixture *f, struct unpack_limits *l, const char *var)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(unpack(f, NULL, l, &err), -1);
    assert_int_equal(ocib_error_kind(&err), OCIB_ERR_LIMIT);
    if (!strstr(err.msg, var) || !strstr(err.msg, f->digest.str))
        fail_msg("message lacks %s or the digest: %s", var, err.msg);
}

static void test_limits_stop_before_anything_is_written(void **state)
{
    struct fixture *f = *state;
    struct unpack_limits l = {100000, 1ULL << 40, 1000, 0};

    write_layer(f, 1, 1 << 20); /* 1 MiB of zeros: about 1 KiB of gzip */
    expect_limit(f, &l, "OCIB_MAX_LAYER_BYTES");
    assert_true(root_empty(f));

    l = (struct unpack_limits){1ULL << 40, 1ULL << 40, 4, 0};
    write_layer(f, 5, 0);
    expect_limit(f, &l, "OCIB_MAX_LAYER_ENTRIES");
    assert_true(root_empty(f));
}

static void test_build_limit_counts_every_layer(void **state)
{
    struct fixture *f = *state;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_limits l = {1ULL << 40, 3 << 20, 1000, 0};

    write_layer(f, 1, 2 << 20);
    assert_int_equal(unpack(f, NULL, &l, &err), 0);
    write_layer(f, 1, 2 << 20);
    expect_limit(f, &l, "OCIB_MAX_BUILD_BYTES");
}

static void test_limits_from_the_environment(void **state)
{
    struct unpack_limits l;
    struct ocib_error err = OCIB_ERROR_INIT;
    static const char *const bad[] = {"",
                                      "0",
                                      "-1",
                                      "1.5G",
                                      "12X",
                                      "5 ",
                                      "+5",
                                      "1GG",
                                      "99999999999999999999",
                                      "17179869184T"};

    (void)state;
    unsetenv("OCIB_MAX_LAYER_BYTES");
    unsetenv("OCIB_MAX_BUILD_BYTES");
    unsetenv("OCIB_MAX_LAYER_ENTRIES");
    assert_int_equal(unpack_limits_init(&l, &err), 0);
    assert_true(l.max_layer_bytes == UNPACK_DEFAULT_LAYER_BYTES);
    assert_true(l.max_build_bytes == UNPACK_DEFAULT_BUILD_BYTES);
    assert_true(l.max_layer_entries == UNPACK_DEFAULT_LAYER_ENTRIES);
    setenv("OCIB_MAX_LAYER_BYTES", "512M", 1);
    setenv("OCIB_MAX_BUILD_BYTES", "3T", 1);
    setenv("OCIB_MAX_LAYER_ENTRIES", "7", 1);
    assert_int_equal(unpack_limits_init(&l, &err), 0);
    assert_true(l.max_layer_bytes == 512ULL << 20);
    assert_true(l.max_build_bytes == 3ULL << 40);
    assert_true(l.max_layer_entries == 7);
    setenv("OCIB_MAX_LAYER_ENTRIES", "7K", 1); /* a count has no unit */
    assert_int_equal(unpack_limits_init(&l, &err), -1);
    unsetenv("OCIB_MAX_LAYER_ENTRIES");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ocib_error_clear(&err);
        setenv("OCIB_MAX_BUILD_BYTES", bad[i], 1);
        assert_int_equal(unpack_limits_init(&l, &err), -1);
        assert_int_equal(err.code, OCIB_EXIT_USAGE);
        if (strncmp(err.msg, "OCIB_MAX_BUILD_BYTES: ", 22))
            fail_msg("'%s': %s", bad[i], err.msg);
    }
    unsetenv("OCIB_MAX_LAYER_BYTES");
    unsetenv("OCIB_MAX_BUILD_BYTES");
}

static void expect_resolve(int fd, const char *path, bool follow_last, const char *want)
{
    _cleanup_free_ char *got = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (rootfs_resolve(fd, path, follow_last, &got, &err) < 0)
        fail_msg("resolving '%s': %s", path, err.msg);
    if (strcmp(got, want))
        fail_msg("'%s' resolved to '%s', expected '%s'", path, got, want);
}

static void test_resolve_inside_the_root(void **state)
{
    struct fixture *f = *state;
    struct ocib_error err = OCIB_ERROR_INIT;
    char *got = NULL;
    int fd = f->root_fd;

    assert_int_equal(mkdirat(fd, "srv", 0755), 0);
    assert_int_equal(mkdirat(fd, "srv/sub", 0755), 0);
    assert_int_equal(symlinkat("/srv", fd, "app"), 0);
    assert_int_equal(symlinkat("srv/sub/..", fd, "rel"), 0);
    assert_int_equal(symlinkat("/", fd, "top"), 0);
    assert_int_equal(symlinkat("../../../srv", fd, "esc"), 0);
    assert_int_equal(symlinkat("../../../../../..", fd, "srv/up"), 0);
    assert_int_equal(symlinkat("l2", fd, "l1"), 0);
    assert_int_equal(symlinkat("/l1", fd, "l2"), 0);

    expect_resolve(fd, "app/x", false, "srv/x");
    expect_resolve(fd, "app", true, "srv");
    expect_resolve(fd, "app", false, "app"); /* a file replaces the link */
    expect_resolve(fd, "rel/x", false, "srv/x");
    expect_resolve(fd, "top/etc/x", false, "etc/x");
    expect_resolve(fd, "top", true, "");
    expect_resolve(fd, "esc/x", false, "srv/x");
    expect_resolve(fd, "srv/up/x", false, "x");
    expect_resolve(fd, "new/dir/x", false, "new/dir/x");
    expect_resolve(fd, "app/new/x", false, "srv/new/x");
    assert_int_equal(rootfs_resolve(fd, "l1/x", false, &got, &err), -1);
    assert_null(got);
    assert_non_null(strstr(err.msg, "too many levels of symlinks"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_matching_layer_unpacks_and_counts),
        T(test_wrong_digest_size_or_diff_id_write_nothing),
        T(test_limits_stop_before_anything_is_written),
        T(test_build_limit_counts_every_layer),
        T(test_limits_from_the_environment),
        T(test_resolve_inside_the_root),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
