/*
 * base/fs: the one openat2 caller and the two ways of opening beneath a
 * directory (never a symlink; symlinks only while they stay inside).
 * Each test runs in a fresh temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/fs.h"
#include "tempdir.h"

struct tmp {
    struct tempdir td;
    int fd; /* the test's directory */
};

/* root/dir/file, root/inside -> dir/file, root/up -> ../.., root/abs -> /etc */
static int make_tree(struct tmp *t)
{
    int f;

    t->fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->fd < 0 || mkdirat(t->fd, "dir", 0755) < 0)
        return -1;
    f = openat(t->fd, "dir/file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return -1;
    close(f);
    if (symlinkat("dir/file", t->fd, "inside") < 0 || symlinkat("../..", t->fd, "up") < 0 ||
        symlinkat("/etc", t->fd, "abs") < 0 || symlinkat("dir", t->fd, "dirlink") < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct tmp *t = *state;
    int r;

    if (t->fd >= 0)
        close(t->fd);
    r = tempdir_leave(&t->td);
    free(t);
    return r;
}

static int setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    t->fd = -1;
    t->td.prev = -1;
    *state = t;
    if (tempdir_enter(&t->td) < 0 || make_tree(t) < 0) {
        teardown(state); /* cmocka runs none after a failed setup */
        return -1;
    }
    return 0;
}

static void test_within_follows_symlinks_that_stay_inside(void **state)
{
    struct tmp *t = *state;
    int fd = fs_open_within(t->fd, "inside", O_RDONLY);

    assert_true(fd >= 0);
    close(fd);
    fd = fs_open_within(t->fd, "dirlink/file", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
}

static void test_within_refuses_paths_that_leave(void **state)
{
    struct tmp *t = *state;

    errno = 0;
    assert_int_equal(fs_open_within(t->fd, "up", O_PATH), -1);
    assert_int_equal(errno, EXDEV);
    errno = 0;
    assert_int_equal(fs_open_within(t->fd, "../", O_PATH), -1);
    assert_int_equal(errno, EXDEV);
    errno = 0;
    assert_int_equal(fs_open_within(t->fd, "abs/passwd", O_RDONLY), -1);
    assert_int_equal(errno, EXDEV);
    assert_int_equal(fs_open_within(t->fd, "/proc/self/fd/0", O_RDONLY), -1);
}

static void test_empty_path_opens_the_directory_itself(void **state)
{
    struct tmp *t = *state;
    struct stat a, b;
    int fd = fs_open_within(t->fd, "", O_RDONLY | O_DIRECTORY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(fstat(t->fd, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    close(fd);
}

static void test_beneath_never_follows_a_symlink(void **state)
{
    struct tmp *t = *state;
    int fd = fs_open_beneath(t->fd, "dir/file", O_RDONLY);

    assert_true(fd >= 0);
    close(fd);
    errno = 0;
    assert_int_equal(fs_open_beneath(t->fd, "inside", O_RDONLY), -1);
    assert_int_equal(errno, ELOOP);
    errno = 0;
    assert_int_equal(fs_open_beneath(t->fd, "dirlink/file", O_RDONLY), -1);
    assert_int_equal(errno, ELOOP);
}

static void test_openat2_adds_close_on_exec(void **state)
{
    struct tmp *t = *state;
    int fd = fs_openat2(t->fd, "dir", O_RDONLY | O_DIRECTORY, 0);

    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_within_follows_symlinks_that_stay_inside,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_within_refuses_paths_that_leave, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_path_opens_the_directory_itself, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beneath_never_follows_a_symlink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_openat2_adds_close_on_exec, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
