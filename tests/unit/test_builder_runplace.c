/*
 * Unit tests for builder/runplace: what --isolation chroot places in a
 * stage root for a command (secret copies, moved-in cache directories) and
 * how everything is taken away and the root's own entries put back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "builder/runplace.h"
#include "tempdir.h"

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_text(const char *path)
{
    char *buf = NULL;
    size_t len;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (fs_read_file(path, 4096, &buf, &len, &err) < 0)
        return NULL;
    return buf;
}

/* A root "root" with etc/group, and its fd. */
static int make_root(void)
{
    assert_int_equal(mkdir("root", 0755), 0);
    assert_int_equal(mkdir("root/etc", 0755), 0);
    write_file("root/etc/group", "root:x:0:\n", 0644);
    return open("root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void test_copy_over_a_file_of_the_root_puts_it_back(void **state)
{
    _cleanup_close_ int root = make_root();
    struct placements pl = {0};
    struct ocib_error err = OCIB_ERROR_INIT;
    struct stat before, during, after;
    char *text;

    (void)state;
    write_file("secret", "token\n", 0600);
    assert_int_equal(stat("root/etc/group", &before), 0);
    assert_int_equal(place_copy(root, "root", "/etc/group", "secret", &pl, &err), 0);
    text = read_text("root/etc/group");
    assert_string_equal(text, "token\n");
    free(text);
    assert_int_equal(stat("root/etc/group", &during), 0);
    assert_int_equal(during.st_mode & 07777, 0600);
    assert_true(during.st_ino != before.st_ino);
    assert_non_null(pl.aside_dir);
    placements_undo(root, &pl);
    assert_int_equal(stat("root/etc/group", &after), 0);
    assert_int_equal(after.st_ino, before.st_ino); /* the same file, not a copy */
    text = read_text("root/etc/group");
    assert_string_equal(text, "root:x:0:\n");
    free(text);
    assert_null(pl.aside_dir);
    assert_int_equal(system("test -z \"$(ls -A . | grep aside)\""), 0);
}

static void test_copy_at_a_new_deep_path_leaves_nothing(void **state)
{
    _cleanup_close_ int root = make_root();
    struct placements pl = {0};
    struct ocib_error err = OCIB_ERROR_INIT;
    char *text;

    (void)state;
    write_file("secret", "token\n", 0644);
    assert_int_equal(place_copy(root, "root", "/run/secrets/tok", "secret", &pl, &err), 0);
    text = read_text("root/run/secrets/tok");
    assert_string_equal(text, "token\n");
    free(text);
    assert_null(pl.aside_dir); /* nothing of the root's was in the way */
    placements_undo(root, &pl);
    assert_int_equal(access("root/run", F_OK), -1);
}

static void test_cache_directory_moves_in_and_back(void **state)
{
    _cleanup_close_ int root = make_root();
    struct placements pl = {0};
    struct ocib_error err = OCIB_ERROR_INIT;
    char *text;

    (void)state;
    assert_int_equal(mkdir("cache", 0755), 0);
    write_file("cache/n", "1\n", 0644);
    assert_int_equal(mkdir("root/var", 0755), 0);
    assert_int_equal(mkdir("root/var/c", 0755), 0);
    write_file("root/var/c/own", "image's\n", 0644);
    assert_int_equal(place_dir(root, "root", "/var/c", "cache", &pl, &err), 0);
    assert_int_equal(access("cache", F_OK), -1);
    assert_int_equal(access("root/var/c/own", F_OK), -1); /* hidden, as under a mount */
    write_file("root/var/c/n", "2\n", 0644);              /* what the command does */
    placements_undo(root, &pl);
    text = read_text("cache/n");
    assert_string_equal(text, "2\n");
    free(text);
    text = read_text("root/var/c/own");
    assert_string_equal(text, "image's\n");
    free(text);
    assert_int_equal(access("root/var/c/n", F_OK), -1);
}

static void test_a_replaced_cache_directory_is_not_taken_back(void **state)
{
    _cleanup_close_ int root = make_root();
    struct placements pl = {0};
    struct ocib_error err = OCIB_ERROR_INIT;
    struct stat st;

    (void)state;
    assert_int_equal(mkdir("cache", 0755), 0);
    assert_int_equal(place_dir(root, "root", "/var/c", "cache", &pl, &err), 0);
    /* The command swaps the directory for a symlink to the host's root. */
    assert_int_equal(fs_rm_rf("root/var/c", NULL), 0);
    assert_int_equal(symlink("/", "root/var/c"), 0);
    placements_undo(root, &pl);
    assert_int_equal(lstat("cache", &st), -1); /* no symlink to / in the cache */
    assert_int_equal(lstat("root/var/c", &st), -1);
    assert_int_equal(access("root/var", F_OK), -1);
}

static void test_a_target_leading_outside_is_refused(void **state)
{
    _cleanup_close_ int root = make_root();
    struct placements pl = {0};
    struct ocib_error err = OCIB_ERROR_INIT;
    struct stat st;

    (void)state;
    write_file("secret", "token\n", 0644);
    assert_int_equal(mkdir("outside", 0755), 0);
    assert_int_equal(symlink("../../outside", "root/etc/out"), 0);
    assert_int_equal(place_copy(root, "root", "/etc/out/tok", "secret", &pl, &err), -1);
    assert_non_null(strstr(err.msg, "/etc/out"));
    placements_undo(root, &pl);
    assert_int_equal(access("outside/tok", F_OK), -1);
    assert_int_equal(lstat("root/etc/out", &st), 0); /* the root's link, as before */
    assert_true(S_ISLNK(st.st_mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_copy_over_a_file_of_the_root_puts_it_back),
        TEMPDIR_TEST(test_copy_at_a_new_deep_path_leaves_nothing),
        TEMPDIR_TEST(test_cache_directory_moves_in_and_back),
        TEMPDIR_TEST(test_a_replaced_cache_directory_is_not_taken_back),
        TEMPDIR_TEST(test_a_target_leading_outside_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
