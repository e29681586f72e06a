/*
 * Unit tests for layers/overlay: the layer a `run` step produces from the
 * upper directory of the overlayfs it ran on must hold exactly what the
 * command changed, described as layers/changes describes a snapshot diff —
 * new and copied-up files with their parent directories as they really are,
 * whiteout devices as ".wh.NAME" files, opaque directories compared child by
 * child with what the root held — and committing must move those entries
 * into the root by rename, never writing into an inode the root already had.
 *
 * No overlayfs is mounted: each test builds, in a fresh directory, a root
 * (the lower directory) and an upper directory by hand, as the kernel would
 * have left it (whiteouts as character devices 0:0, opaque directories
 * marked with the xattr user.overlay.opaque=y, copied-up directories with
 * the lower one's mode, owner and times), commits, and checks the layer
 * entries, the root and what is left in the upper directory.
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
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/error.h"
#include "layers/overlay.h"
#include "layers/tree.h"
#include "tree_fixtures.h"
#include "tempdir.h"

/* ---- building trees ---------------------------------------------------- */

/* A fresh directory below the cwd, named after prefix. */
static int make_dir(const char *prefix)
{
    char tmpl[64];
    int fd;

    snprintf(tmpl, sizeof(tmpl), "%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(tmpl));
    fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* What overlayfs leaves for a deleted path: a character device 0:0. */
static void mk_whiteout(int upper, const char *path)
{
    assert_int_equal(mknodat(upper, path, S_IFCHR | 0, makedev(0, 0)), 0);
}

/* Marks the upper directory path as hiding everything the lower one held. */
static void set_opaque(int upper, const char *path)
{
    int fd = openat(upper, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(fsetxattr(fd, "user.overlay.opaque", "y", 1, 0), 0);
    close(fd);
}

/* A directory copied up from the root: its mode and owner (times: see
 * match_times, once its contents are in place). */
static void mk_copied_up_dir(int upper, int root, const char *path)
{
    struct stat st;

    assert_int_equal(fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISDIR(st.st_mode));
    mk_dir(upper, path, st.st_mode & 07777);
    assert_int_equal(fchownat(upper, path, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW), 0);
}

/* Gives the upper directory path the root's times, as a copy-up does. */
static void match_times(int upper, int root, const char *path)
{
    struct stat st;

    assert_int_equal(fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(utimensat(upper, path, (struct timespec[]){st.st_atim, st.st_mtim}, 0),
                     0);
}

static ino_t inode_of(int dirfd, const char *path)
{
    struct stat st;

    assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
    return st.st_ino;
}

/* Commits upper into root; the tree is finalised (sorted, parents added). */
static void commit(int upper, int root, const char *const *skip,
                   unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                   struct layer_tree *t)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    layer_tree_init(t);
    if (overlay_commit(upper, root, skip, map_uid, map_gid, t, &err) < 0)
        fail_msg("overlay_commit: %s", err.msg);
    layer_tree_finalise(t);
}

/* ---- looking at the result ---------------------------------------------- */

static void expect_absent(int dirfd, const char *path)
{
    struct stat st;

    if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
        fail_msg("'%s' is still there", path);
    assert_int_equal(errno, ENOENT);
}

static void expect_content(int dirfd, const char *path, const char *data)
{
    char buf[256];
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        fail_msg("cannot open '%s': %s", path, strerror(errno));
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, data);
}

static void expect_link(int dirfd, const char *path, const char *target)
{
    char buf[256];
    ssize_t n = readlinkat(dirfd, path, buf, sizeof(buf) - 1);

    if (n < 0)
        fail_msg("cannot read symlink '%s': %s", path, strerror(errno));
    buf[n] = '\0';
    assert_string_equal(buf, target);
}

static mode_t mode_of(int dirfd, const char *path)
{
    struct stat st;

    assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
    return st.st_mode;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory path below dirfd holds exactly these names. */
static void expect_names(int dirfd, const char *path, const char *const *names)
{
    char *got[64];
    const char *want[64];
    size_t n_got = 0, n_want = 0;
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    bool same;

    if (fd < 0)
        fail_msg("cannot open directory '%s': %s", path, strerror(errno));
    d = fdopendir(fd);
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        assert_true(n_got < 64);
        got[n_got++] = strdup(de->d_name);
    }
    closedir(d);
    for (; names[n_want]; n_want++) {
        assert_true(n_want < 64);
        want[n_want] = names[n_want];
    }
    qsort(got, n_got, sizeof(*got), cmp_str);
    qsort(want, n_want, sizeof(*want), cmp_str);
    same = n_got == n_want;
    for (size_t i = 0; same && i < n_got; i++)
        same = !strcmp(got[i], want[i]);
    if (!same) {
        for (size_t i = 0; i < n_got; i++)
            print_message("  in '%s': %s\n", path, got[i]);
        for (size_t i = 0; i < n_want; i++)
            print_message("  expected: %s\n", want[i]);
    }
    for (size_t i = 0; i < n_got; i++)
        free(got[i]);
    if (!same)
        fail_msg("directory '%s' does not hold the expected names", path);
}

/* path carries no user.overlay.* / trusted.overlay.* xattr. */
static void expect_no_overlay_xattrs(int dirfd, const char *path)
{
    char names[4096];
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    assert_true(fd >= 0);
    n = flistxattr(fd, names, sizeof(names));
    close(fd);
    assert_true(n >= 0);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        if (!strncmp(names + i, "user.overlay.", 13) ||
            !strncmp(names + i, "trusted.overlay.", 16))
            fail_msg("'%s' still carries the xattr %s", path, names + i);
    }
}

static const char *const nothing[] = {NULL};

/* ---- tests --------------------------------------------------------------- */

static void test_an_empty_upper_directory_changes_nothing(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;

    mk_dir(root, "etc", 0755);
    mk_file(root, "etc/passwd", "root");
    commit(upper, root, NULL, NULL, NULL, &t);
    assert_int_equal(t.n, 0);
    expect_names(root, ".", (const char *const[]){"etc", NULL});
    expect_content(root, "etc/passwd", "root");
    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_new_file_comes_with_its_parent_directory_as_it_is(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;
    struct stat st;
    ino_t passwd_ino, group_ino, usr_ino;

    mk_dir(root, "etc", 0750);
    mk_file(root, "etc/passwd", "root:x:0:0");
    mk_file(root, "etc/group", "root:x:0:");
    mk_dir(root, "usr", 0755);
    mk_dir(root, "usr/bin", 0755);
    mk_file(root, "usr/bin/ls", "ls");
    passwd_ino = inode_of(root, "etc/passwd");
    group_ino = inode_of(root, "etc/group");
    usr_ino = inode_of(root, "usr");

    mk_copied_up_dir(upper, root, "etc");
    mk_file(upper, "etc/new", "hello");
    assert_int_equal(fchmodat(upper, "etc/new", 0640, 0), 0);
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"etc", "etc/new", NULL});
    e = must_find(&t, "etc");
    assert_int_equal(e->mode, S_IFDIR | 0750);
    assert_int_equal(e->uid, 0);
    assert_int_equal(e->gid, 0);
    assert_null(e->src);
    e = must_find(&t, "etc/new");
    assert_int_equal(e->mode, S_IFREG | 0640);
    assert_int_equal(e->size, 5);
    assert_string_equal(e->src, "etc/new");
    assert_true(e->has_st);
    assert_int_equal(fstatat(root, "etc/new", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(e->st.st_ino, st.st_ino); /* moved, not copied */
    assert_int_equal(e->uid, st.st_uid);
    assert_int_equal(e->gid, st.st_gid);

    /* The root got the file; its siblings are the same inodes as before. */
    expect_names(root, ".", (const char *const[]){"etc", "usr", NULL});
    expect_names(root, "etc", (const char *const[]){"group", "new", "passwd", NULL});
    expect_content(root, "etc/new", "hello");
    assert_int_equal(mode_of(root, "etc/new"), S_IFREG | 0640);
    assert_int_equal(mode_of(root, "etc"), S_IFDIR | 0750);
    assert_int_equal(inode_of(root, "etc/passwd"), passwd_ino);
    assert_int_equal(inode_of(root, "etc/group"), group_ino);
    assert_int_equal(inode_of(root, "usr"), usr_ino);
    expect_content(root, "etc/passwd", "root:x:0:0");
    expect_content(root, "usr/bin/ls", "ls");

    /* The upper directory keeps the merged directory, emptied. */
    expect_absent(upper, "etc/new");
    expect_names(upper, "etc", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_modified_file_replaces_the_roots_by_rename(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper"), other = make_dir("other");
    struct layer_tree t;
    const struct layer_tree_entry *e;
    struct stat st;
    ino_t old_ino, new_ino;
    int fd;

    mk_dir(root, "etc", 0755);
    mk_file(root, "etc/conf", "old");
    mk_file(root, "etc/untouched", "same");
    /* Another root sharing the file by a hard link must keep "old". */
    assert_int_equal(linkat(root, "etc/conf", other, "conf", 0), 0);
    old_ino = inode_of(root, "etc/conf");

    mk_copied_up_dir(upper, root, "etc");
    mk_file(upper, "etc/conf", "new content");
    fd = openat(upper, "etc/conf", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fsetxattr(fd, "user.overlay.origin", "x", 1, 0), 0);
    close(fd);
    new_ino = inode_of(upper, "etc/conf");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"etc", "etc/conf", NULL});
    e = must_find(&t, "etc/conf");
    assert_int_equal(e->mode, S_IFREG | 0644);
    assert_int_equal(e->size, 11);
    assert_string_equal(e->src, "etc/conf");
    assert_int_equal(e->st.st_ino, new_ino);

    expect_content(root, "etc/conf", "new content");
    assert_int_equal(inode_of(root, "etc/conf"), new_ino);
    assert_int_not_equal(new_ino, old_ino);
    expect_no_overlay_xattrs(root, "etc/conf");
    expect_names(root, "etc", (const char *const[]){"conf", "untouched", NULL});
    /* The old inode was never written into, only unlinked from the root. */
    expect_content(other, "conf", "old");
    assert_int_equal(fstatat(other, "conf", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_ino, old_ino);
    assert_int_equal(st.st_nlink, 1);

    expect_absent(upper, "etc/conf");
    expect_names(upper, "etc", nothing);

    layer_tree_release(&t);
    close(other);
    close(upper);
    close(root);
}

static void test_whiteouts_delete_files_and_directories_and_nothing_below(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;

    mk_file(root, "top", "top");
    mk_dir(root, "dir", 0755);
    mk_file(root, "dir/a", "a");
    mk_dir(root, "dir/sub", 0755);
    mk_file(root, "dir/sub/b", "b");
    mk_dir(root, "var", 0710);
    mk_file(root, "var/old", "old");
    mk_file(root, "var/keep", "keep");
    mk_file(root, "keep", "keep");

    mk_whiteout(upper, "top");
    mk_whiteout(upper, "dir");
    mk_whiteout(upper, "ghost"); /* the root has no "ghost" */
    mk_copied_up_dir(upper, root, "var");
    mk_whiteout(upper, "var/old");
    mk_whiteout(upper, "var/ghost");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t,
                 (const char *const[]){".wh.top", ".wh.dir", "var", "var/.wh.old", NULL});
    expect_whiteout(&t, ".wh.top");
    expect_whiteout(&t, ".wh.dir");
    expect_whiteout(&t, "var/.wh.old");
    assert_int_equal(must_find(&t, "var")->mode, S_IFDIR | 0710);
    assert_null(find(&t, ".wh.ghost"));
    assert_null(find(&t, "var/.wh.ghost"));
    for (size_t i = 0; i < t.n; i++)
        assert_null(strstr(t.entries[i].path, "dir/"));

    expect_names(root, ".", (const char *const[]){"keep", "var", NULL});
    expect_names(root, "var", (const char *const[]){"keep", NULL});
    expect_content(root, "keep", "keep");
    expect_content(root, "var/keep", "keep");

    /* The whiteout devices are gone from the upper directory too. */
    expect_names(upper, ".", (const char *const[]){"var", NULL});
    expect_names(upper, "var", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_an_opaque_directory_is_compared_child_by_child(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;

    mk_dir(root, "d", 0755);
    mk_file(root, "d/a", "a");
    mk_dir(root, "d/b", 0755);
    mk_file(root, "d/b/c", "c");
    mk_file(root, "d/b/keep", "k1");
    mk_dir(root, "d/x", 0755);
    mk_file(root, "d/x/y", "y");
    mk_file(root, "other", "other");

    /* rm -rf d; mkdir d; ... on the overlay. */
    mk_dir(upper, "d", 0700);
    mk_dir(upper, "d/b", 0750);
    mk_file(upper, "d/b/keep", "k2");
    mk_file(upper, "d/b/new", "n");
    mk_file(upper, "d/z", "z");
    set_opaque(upper, "d");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"d", "d/.wh.a", "d/.wh.x", "d/b", "d/b/.wh.c",
                                           "d/b/keep", "d/b/new", "d/z", NULL});
    assert_int_equal(must_find(&t, "d")->mode, S_IFDIR | 0700);
    assert_int_equal(must_find(&t, "d/b")->mode, S_IFDIR | 0750);
    expect_whiteout(&t, "d/.wh.a");
    expect_whiteout(&t, "d/.wh.x");
    expect_whiteout(&t, "d/b/.wh.c");
    e = must_find(&t, "d/b/keep");
    assert_int_equal(e->size, 2);
    assert_string_equal(e->src, "d/b/keep");
    assert_null(find(&t, "d/.wh..wh..opq"));
    assert_null(find(&t, "d/b/.wh..wh..opq"));
    assert_null(find(&t, "d/x/.wh.y"));

    expect_names(root, ".", (const char *const[]){"d", "other", NULL});
    expect_names(root, "d", (const char *const[]){"b", "z", NULL});
    expect_names(root, "d/b", (const char *const[]){"keep", "new", NULL});
    expect_content(root, "d/b/keep", "k2");
    expect_content(root, "d/z", "z");
    assert_int_equal(mode_of(root, "d"), S_IFDIR | 0700);
    expect_no_overlay_xattrs(root, "d");
    expect_content(root, "other", "other");

    expect_names(upper, ".", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_type_change_replaces_the_roots_entry(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;

    mk_file(root, "f", "file");
    mk_dir(root, "t", 0755);
    mk_file(root, "t/a", "a");
    mk_dir(root, "t/s", 0755);
    mk_file(root, "t/s/b", "b");
    /* A symlink to a directory, replaced by a directory: never followed. */
    mk_dir(root, "real", 0755);
    mk_file(root, "real/inside", "inside");
    assert_int_equal(symlinkat("real", root, "l"), 0);

    mk_dir(upper, "f", 0750); /* a file turned directory */
    mk_file(upper, "f/child", "child");
    set_opaque(upper, "f");            /* as overlayfs makes it */
    mk_file(upper, "t", "now a file"); /* a directory tree turned file */
    mk_dir(upper, "l", 0755);          /* a symlink turned directory */
    mk_file(upper, "l/x", "x");
    set_opaque(upper, "l");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"f", "f/child", "t", "l", "l/x", NULL});
    assert_int_equal(must_find(&t, "f")->mode, S_IFDIR | 0750);
    e = must_find(&t, "t");
    assert_int_equal(e->mode, S_IFREG | 0644);
    assert_int_equal(e->size, 10);
    assert_string_equal(e->src, "t");
    assert_int_equal(must_find(&t, "l")->mode, S_IFDIR | 0755);
    assert_null(find(&t, "t/.wh.a"));
    assert_null(find(&t, ".wh.t"));

    expect_names(root, ".", (const char *const[]){"f", "l", "real", "t", NULL});
    assert_int_equal(mode_of(root, "f"), S_IFDIR | 0750);
    expect_names(root, "f", (const char *const[]){"child", NULL});
    expect_no_overlay_xattrs(root, "f");
    assert_int_equal(mode_of(root, "t"), S_IFREG | 0644);
    expect_content(root, "t", "now a file");
    assert_true(S_ISDIR(mode_of(root, "l")));
    expect_names(root, "l", (const char *const[]){"x", NULL});
    expect_no_overlay_xattrs(root, "l");
    expect_names(root, "real", (const char *const[]){"inside", NULL});

    expect_names(upper, ".", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_new_directory_subtree_is_moved_in_whole(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;
    ino_t app_ino, srv_ino;

    mk_dir(root, "opt", 0755);
    mk_file(root, "opt/old", "old");

    mk_copied_up_dir(upper, root, "opt");
    mk_dir(upper, "opt/app", 0750);
    mk_dir(upper, "opt/app/bin", 0755);
    mk_file(upper, "opt/app/bin/tool", "tool");
    assert_int_equal(fchmodat(upper, "opt/app/bin/tool", 0755, 0), 0);
    mk_dir(upper, "opt/app/empty", 0700);
    assert_int_equal(symlinkat("bin/tool", upper, "opt/app/link"), 0);
    assert_int_equal(mkfifoat(upper, "opt/app/fifo", 0600), 0);
    mk_dir(upper, "srv", 0755);
    mk_dir(upper, "srv/www", 0755);
    mk_file(upper, "srv/www/index.html", "<html>");
    app_ino = inode_of(upper, "opt/app");
    srv_ino = inode_of(upper, "srv");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t,
                 (const char *const[]){"opt", "opt/app", "opt/app/bin", "opt/app/bin/tool",
                                       "opt/app/empty", "opt/app/link", "opt/app/fifo",
                                       "srv", "srv/www", "srv/www/index.html", NULL});
    assert_int_equal(must_find(&t, "opt/app")->mode, S_IFDIR | 0750);
    assert_int_equal(must_find(&t, "opt/app/empty")->mode, S_IFDIR | 0700);
    e = must_find(&t, "opt/app/bin/tool");
    assert_int_equal(e->mode, S_IFREG | 0755);
    assert_int_equal(e->size, 4);
    assert_string_equal(e->src, "opt/app/bin/tool");
    e = must_find(&t, "opt/app/link");
    assert_int_equal(e->mode & S_IFMT, S_IFLNK);
    assert_string_equal(e->link, "bin/tool");
    assert_int_equal(must_find(&t, "opt/app/fifo")->mode, S_IFIFO | 0600);
    assert_string_equal(must_find(&t, "srv/www/index.html")->src, "srv/www/index.html");

    /* One rename each: the same directory inodes are now in the root. */
    assert_int_equal(inode_of(root, "opt/app"), app_ino);
    assert_int_equal(inode_of(root, "srv"), srv_ino);
    expect_names(root, ".", (const char *const[]){"opt", "srv", NULL});
    expect_names(root, "opt", (const char *const[]){"app", "old", NULL});
    expect_names(root, "opt/app",
                 (const char *const[]){"bin", "empty", "fifo", "link", NULL});
    expect_content(root, "opt/app/bin/tool", "tool");
    expect_link(root, "opt/app/link", "bin/tool");
    expect_content(root, "srv/www/index.html", "<html>");
    expect_content(root, "opt/old", "old");

    expect_names(upper, ".", (const char *const[]){"opt", NULL});
    expect_names(upper, "opt", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_skipped_paths_are_neither_listed_nor_moved(void **state)
{
    static const char *const skip[] = {"proc", "cache/m", NULL};
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;

    mk_dir(root, "proc", 0555);
    mk_file(root, "proc/cpuinfo", "cpu");
    mk_dir(root, "cache", 0755);
    mk_dir(root, "cache/m", 0755);
    mk_file(root, "cache/m/old", "old");
    mk_file(root, "cache/keep", "keep");
    mk_dir(root, "cache/mx", 0755); /* not below "cache/m" */

    mk_copied_up_dir(upper, root, "proc");
    mk_file(upper, "proc/new", "new");
    mk_whiteout(upper, "proc/cpuinfo");
    mk_copied_up_dir(upper, root, "cache");
    mk_copied_up_dir(upper, root, "cache/m");
    mk_file(upper, "cache/m/x", "x");
    mk_whiteout(upper, "cache/m/old");
    mk_file(upper, "cache/other", "other");
    mk_copied_up_dir(upper, root, "cache/mx");
    mk_file(upper, "cache/mx/y", "y");
    commit(upper, root, skip, NULL, NULL, &t);

    expect_paths(
        &t, (const char *const[]){"cache", "cache/other", "cache/mx", "cache/mx/y", NULL});

    expect_names(root, "proc", (const char *const[]){"cpuinfo", NULL});
    expect_content(root, "proc/cpuinfo", "cpu");
    expect_names(root, "cache", (const char *const[]){"keep", "m", "mx", "other", NULL});
    expect_names(root, "cache/m", (const char *const[]){"old", NULL});
    expect_content(root, "cache/m/old", "old");
    expect_names(root, "cache/mx", (const char *const[]){"y", NULL});

    /* What was skipped stays in the upper directory, whiteouts included. */
    expect_names(upper, "proc", (const char *const[]){"cpuinfo", "new", NULL});
    expect_names(upper, "cache", (const char *const[]){"m", "mx", NULL});
    expect_names(upper, "cache/m", (const char *const[]){"old", "x", NULL});
    expect_names(upper, "cache/mx", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

/* Skipped paths are the command's mount points, which it cannot put below
 * a directory it creates or re-creates; an upper directory that says so
 * anyway is refused, naming both paths, rather than moved in with them. */
static void test_a_skipped_path_below_a_new_directory_is_refused(void **state)
{
    static const char *const skip[] = {"cache/m", NULL};
    int root = make_dir("root"), upper = make_dir("upper");
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_tree t;

    mk_dir(upper, "cache", 0755);
    mk_dir(upper, "cache/m", 0755);
    mk_file(upper, "cache/m/x", "x");
    mk_file(upper, "cache/other", "other");
    layer_tree_init(&t);
    assert_int_equal(overlay_commit(upper, root, skip, NULL, NULL, &t, &err), -1);
    assert_non_null(strstr(err.msg, "'/cache' was created or re-created"));
    assert_non_null(strstr(err.msg, "'/cache/m'"));
    expect_absent(root, "cache");
    expect_content(upper, "cache/m/x", "x");

    layer_tree_release(&t);
    close(upper);
    close(root);
}

/* A file opened for writing and not written (a lock file) is copied up
 * unchanged: no entry, and the root keeps its own file.  The same copy-up
 * with other bytes, or with another mode, is a change. */
static void test_a_copy_up_that_changed_nothing_is_no_change(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    ino_t lock_ino;
    struct layer_tree t;

    mk_dir(root, "var", 0755);
    mk_file(root, "var/lock", "pid");
    mk_file(root, "var/same-size", "abc");
    mk_file(root, "var/mode", "m");
    lock_ino = inode_of(root, "var/lock");
    mk_copied_up_dir(upper, root, "var");
    mk_file(upper, "var/lock", "pid");
    match_times(upper, root, "var/lock");
    mk_file(upper, "var/same-size", "abd");
    match_times(upper, root, "var/same-size");
    mk_file(upper, "var/mode", "m");
    assert_int_equal(fchmodat(upper, "var/mode", 0600, 0), 0);
    match_times(upper, root, "var/mode");
    match_times(upper, root, "var");
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"var", "var/same-size", "var/mode", NULL});
    assert_int_equal(inode_of(root, "var/lock"), lock_ino);
    expect_content(root, "var/same-size", "abd");
    expect_content(upper, "var/lock", "pid");

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static unsigned plus_100(unsigned id)
{
    return id + 100;
}

static unsigned plus_200(unsigned id)
{
    return id + 200;
}

static void
test_owners_are_mapped_and_a_merged_directory_is_an_entry_when_it_changed(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;
    struct stat st;

    mk_dir(root, "home", 0755);
    mk_dir(root, "srv", 0755);
    mk_file(root, "srv/data", "data");
    mk_dir(root, "lib", 0755);
    mk_file(root, "lib/libc.so", "libc");
    mk_dir(root, "var", 0755);
    mk_file(root, "var/x", "x");
    mk_file(root, "gone", "gone");

    /* New entries with their own owners. */
    mk_copied_up_dir(upper, root, "home");
    mk_file(upper, "home/file", "f");
    assert_int_equal(fchownat(upper, "home/file", 5, 6, 0), 0);
    mk_dir(upper, "home/sub", 0700);
    assert_int_equal(fchownat(upper, "home/sub", 7, 8, 0), 0);
    /* chmod 700 /srv: only its mode changed. */
    mk_copied_up_dir(upper, root, "srv");
    assert_int_equal(fchmodat(upper, "srv", 0700, 0), 0);
    match_times(upper, root, "srv");
    /* chown 9:9 /var: only its owner changed. */
    mk_copied_up_dir(upper, root, "var");
    assert_int_equal(fchownat(upper, "var", 9, 9, 0), 0);
    match_times(upper, root, "var");
    /* Copied up, and nothing in it changed (a whiteout of nothing). */
    mk_copied_up_dir(upper, root, "lib");
    mk_whiteout(upper, "lib/ghost");
    match_times(upper, root, "lib");
    mk_whiteout(upper, "gone");
    commit(upper, root, NULL, plus_100, plus_200, &t);

    expect_paths(&t, (const char *const[]){"home", "home/file", "home/sub", "srv", "var",
                                           ".wh.gone", NULL});
    e = must_find(&t, "home");
    assert_int_equal(e->uid, 100);
    assert_int_equal(e->gid, 200);
    e = must_find(&t, "home/file");
    assert_int_equal(e->uid, 105);
    assert_int_equal(e->gid, 206);
    assert_int_equal(e->st.st_uid, 5); /* the real owner, as stat saw it */
    assert_int_equal(e->st.st_gid, 6);
    e = must_find(&t, "home/sub");
    assert_int_equal(e->mode, S_IFDIR | 0700);
    assert_int_equal(e->uid, 107);
    assert_int_equal(e->gid, 208);
    e = must_find(&t, "srv");
    assert_int_equal(e->mode, S_IFDIR | 0700);
    assert_int_equal(e->uid, 100);
    assert_int_equal(e->gid, 200);
    e = must_find(&t, "var");
    assert_int_equal(e->mode, S_IFDIR | 0755);
    assert_int_equal(e->uid, 109);
    assert_int_equal(e->gid, 209);
    expect_whiteout(&t, ".wh.gone"); /* whiteouts are never mapped */
    assert_null(find(&t, "lib"));
    assert_null(find(&t, "lib/.wh.ghost"));

    /* The root's directories took the upper ones' metadata (real ids). */
    assert_int_equal(mode_of(root, "srv"), S_IFDIR | 0700);
    expect_names(root, "srv", (const char *const[]){"data", NULL});
    assert_int_equal(fstatat(root, "var", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_uid, 9);
    assert_int_equal(st.st_gid, 9);
    assert_int_equal(fstatat(root, "home/file", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_uid, 5);
    assert_int_equal(st.st_gid, 6);
    assert_int_equal(mode_of(root, "lib"), S_IFDIR | 0755);
    expect_names(root, "lib", (const char *const[]){"libc.so", NULL});
    expect_names(root, ".", (const char *const[]){"home", "lib", "srv", "var", NULL});

    expect_names(upper, "home", nothing);
    expect_names(upper, "lib", nothing);
    expect_absent(upper, "gone");

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_symlink_is_an_entry_with_its_target(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *e;

    mk_dir(root, "bin", 0755);
    mk_file(root, "bin/busybox", "busybox");
    assert_int_equal(symlinkat("one", root, "l"), 0);

    mk_copied_up_dir(upper, root, "bin");
    assert_int_equal(symlinkat("busybox", upper, "bin/sh"), 0);
    assert_int_equal(symlinkat("two", upper, "l"), 0); /* retargeted */
    assert_int_equal(symlinkat("/usr/share", upper, "abs"), 0);
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"bin", "bin/sh", "l", "abs", NULL});
    e = must_find(&t, "bin/sh");
    assert_int_equal(e->mode & S_IFMT, S_IFLNK);
    assert_string_equal(e->link, "busybox");
    assert_null(e->src);
    assert_int_equal(e->size, 0);
    e = must_find(&t, "l");
    assert_int_equal(e->mode & S_IFMT, S_IFLNK);
    assert_string_equal(e->link, "two");
    assert_string_equal(must_find(&t, "abs")->link, "/usr/share");

    expect_link(root, "bin/sh", "busybox");
    expect_link(root, "l", "two");
    expect_link(root, "abs", "/usr/share");
    expect_content(root, "bin/busybox", "busybox");
    expect_names(root, "bin", (const char *const[]){"busybox", "sh", NULL});

    expect_names(upper, ".", (const char *const[]){"bin", NULL});
    expect_names(upper, "bin", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

static void test_a_new_hardlink_pair_stays_joined(void **state)
{
    int root = make_dir("root"), upper = make_dir("upper");
    struct layer_tree t;
    const struct layer_tree_entry *a, *b;

    mk_dir(root, "bin", 0755);
    mk_copied_up_dir(upper, root, "bin");
    mk_file(upper, "bin/a", "busybox");
    assert_int_equal(linkat(upper, "bin/a", upper, "bin/b", 0), 0);
    commit(upper, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"bin", "bin/a", "bin/b", NULL});
    a = must_find(&t, "bin/a");
    b = must_find(&t, "bin/b");
    assert_true(a->has_st && b->has_st);
    assert_int_equal(a->st.st_ino, b->st.st_ino);
    assert_int_equal(a->st.st_dev, b->st.st_dev);
    assert_int_equal(a->st.st_nlink, 2);
    assert_int_equal(inode_of(root, "bin/a"), inode_of(root, "bin/b"));
    assert_int_equal(inode_of(root, "bin/a"), a->st.st_ino);
    expect_names(upper, "bin", nothing);

    layer_tree_release(&t);
    close(upper);
    close(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_an_empty_upper_directory_changes_nothing),
        TEMPDIR_TEST(test_a_new_file_comes_with_its_parent_directory_as_it_is),
        TEMPDIR_TEST(test_a_modified_file_replaces_the_roots_by_rename),
        TEMPDIR_TEST(test_whiteouts_delete_files_and_directories_and_nothing_below),
        TEMPDIR_TEST(test_an_opaque_directory_is_compared_child_by_child),
        TEMPDIR_TEST(test_a_type_change_replaces_the_roots_entry),
        TEMPDIR_TEST(test_a_new_directory_subtree_is_moved_in_whole),
        TEMPDIR_TEST(test_skipped_paths_are_neither_listed_nor_moved),
        TEMPDIR_TEST(test_a_skipped_path_below_a_new_directory_is_refused),
        TEMPDIR_TEST(
            test_owners_are_mapped_and_a_merged_directory_is_an_entry_when_it_changed),
        TEMPDIR_TEST(test_a_copy_up_that_changed_nothing_is_no_change),
        TEMPDIR_TEST(test_a_symlink_is_an_entry_with_its_target),
        TEMPDIR_TEST(test_a_new_hardlink_pair_stays_joined),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
