/*
 * Fixtures shared by the unit tests of the change-capturing modules
 * (layers/changes, layers/overlay): building files and directories below a
 * directory fd, and finding and checking layer_tree entries.  Include after
 * <cmocka.h>.
 */
#ifndef OCIB_TESTS_UNIT_TREE_FIXTURES_H
#define OCIB_TESTS_UNIT_TREE_FIXTURES_H

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/tree.h"

static inline void mk_dir(int dirfd, const char *path, mode_t perm)
{
    assert_int_equal(mkdirat(dirfd, path, perm), 0);
    assert_int_equal(fchmodat(dirfd, path, perm, 0), 0);
}

static inline void mk_file(int dirfd, const char *path, const char *data)
{
    int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

static inline void print_entries(const struct layer_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        print_message("  entry: %s%s\n", t->entries[i].path,
                      t->entries[i].implicit ? " (implicit)" : "");
}

static inline const struct layer_tree_entry *find(const struct layer_tree *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->entries[i].path, path))
            return &t->entries[i];
    }
    return NULL;
}

/* The entry the module under test put for path (not one the tree added). */
static inline const struct layer_tree_entry *must_find(const struct layer_tree *t,
                                                       const char *path)
{
    const struct layer_tree_entry *e = find(t, path);

    if (!e || e->implicit) {
        print_entries(t);
        fail_msg("no layer entry for '%s'", path);
    }
    return e;
}

/* Exactly these paths, in any order, none of them implicit. */
static inline void expect_paths(const struct layer_tree *t, const char *const *paths)
{
    size_t n = 0;

    for (; paths[n]; n++)
        must_find(t, paths[n]);
    if (t->n != n) {
        print_entries(t);
        fail_msg("%zu layer entries, expected %zu", t->n, n);
    }
}

/* An OCI whiteout: an empty regular file, mode 0, owner 0:0. */
static inline void expect_whiteout(const struct layer_tree *t, const char *path)
{
    const struct layer_tree_entry *e = must_find(t, path);

    assert_int_equal(e->mode, S_IFREG);
    assert_int_equal(e->uid, 0);
    assert_int_equal(e->gid, 0);
    assert_int_equal(e->size, 0);
    assert_null(e->src);
}

#endif
