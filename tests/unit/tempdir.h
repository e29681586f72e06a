/*
 * A fresh temporary directory for each unit test, so that a test binary run
 * from anywhere (the repository root included) leaves nothing behind and no
 * test sees what another one wrote.
 *
 * tempdir_setup() makes a directory under $TMPDIR (else /tmp) and changes
 * into it; tempdir_teardown() changes back to where the test started and
 * removes the directory with everything below it (fs_rm_rf: symlinks are
 * not followed, a directory left mode 0 is removed too).  A teardown that
 * cannot remove it fails the test.  Most tests use them through
 * TEMPDIR_TEST(fn); a test that keeps state of its own embeds a struct
 * tempdir and calls tempdir_enter() and tempdir_leave().  Header-only, for
 * the test binaries; include after <cmocka.h>.
 */
#ifndef OCIB_TESTS_UNIT_TEMPDIR_H
#define OCIB_TESTS_UNIT_TEMPDIR_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"

struct tempdir {
    char *path; /* absolute */
    int prev;   /* O_PATH fd of the directory the test started in */
};

/* Makes the directory and changes into it; 0, or -1 with a message. */
static inline int tempdir_enter(struct tempdir *td)
{
    const char *base = getenv("TMPDIR");
    size_t len;

    if (!base || !*base)
        base = "/tmp";
    len = strlen(base) + sizeof("/ocib-unit-XXXXXX");
    td->prev = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    td->path = malloc(len);
    if (td->prev < 0 || !td->path) {
        print_error("tempdir: cannot remember the current directory\n");
        free(td->path);
        td->path = NULL;
        return -1;
    }
    snprintf(td->path, len, "%s/ocib-unit-XXXXXX", base);
    if (!mkdtemp(td->path)) {
        print_error("tempdir: cannot make a directory in '%s'\n", base);
        free(td->path);
        td->path = NULL; /* nothing of ours to remove */
        return -1;
    }
    if (chdir(td->path) < 0) {
        print_error("tempdir: cannot enter '%s'\n", td->path);
        return -1;
    }
    return 0;
}

/* Goes back and removes the directory; 0, or -1 with a message. */
static inline int tempdir_leave(struct tempdir *td)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    int r = 0;

    if (td->prev >= 0 && fchdir(td->prev) < 0) {
        print_error("tempdir: cannot go back to the starting directory\n");
        r = -1;
    }
    if (td->prev >= 0)
        close(td->prev);
    if (td->path && fs_rm_rf(td->path, &err) < 0) {
        print_error("tempdir: %s\n", err.msg);
        r = -1;
    }
    free(td->path);
    td->path = NULL;
    td->prev = -1;
    return r;
}

static inline int tempdir_setup(void **state)
{
    struct tempdir *td = calloc(1, sizeof(*td));

    if (!td)
        return -1;
    td->prev = -1;
    *state = td;
    if (tempdir_enter(td) == 0)
        return 0;
    /* cmocka runs no teardown after a failed setup. */
    tempdir_leave(td);
    free(td);
    *state = NULL;
    return -1;
}

static inline int tempdir_teardown(void **state)
{
    struct tempdir *td = *state;
    int r = td ? tempdir_leave(td) : 0;

    free(td);
    *state = NULL;
    return r;
}

/* The absolute path of the test's directory (for a test run by
 * TEMPDIR_TEST). */
static inline const char *tempdir_path(void **state)
{
    return ((const struct tempdir *)*state)->path;
}

#define TEMPDIR_TEST(fn)                                                                   \
    cmocka_unit_test_setup_teardown(fn, tempdir_setup, tempdir_teardown)

#endif
