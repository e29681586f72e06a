/*
 * Unit tests for layers/changes: the layer a `run` step produces when no
 * overlayfs records it must hold exactly what the command changed — new and
 * modified files (even a same-size rewrite whose mtime was put back), their
 * parent directories as they really are, deletions as OCI whiteouts, replaced
 * directories as opaque ones — and nothing from skipped paths or other file
 * systems mounted below the root.  Each test builds a tree in a fresh
 * directory, snapshots it, mutates it, and checks both the layer entries and
 * the tar a runtime would unpack, read back with libarchive.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "layers/changes.h"
#include "layers/compress.h"
#include "layers/tar_writer.h"
#include "layers/tree.h"
#include "tree_fixtures.h"
#include "tempdir.h"

#define EPOCH 1234567890

/* ---- building trees ---------------------------------------------------- */

static int make_root(void)
{
    char tmpl[] = "root-XXXXXX";
    int fd;

    assert_non_null(mkdtemp(tmpl));
    fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* Removes path (a file or a directory tree) below dirfd. */
static void rm_tree(int dirfd, const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    int fd;

    assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
    if (!S_ISDIR(st.st_mode)) {
        assert_int_equal(unlinkat(dirfd, path, 0), 0);
        return;
    }
    fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    assert_true(fd >= 0);
    d = fdopendir(fd);
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rm_tree(fd, de->d_name);
    }
    closedir(d);
    assert_int_equal(unlinkat(dirfd, path, AT_REMOVEDIR), 0);
}

/* Lets the clock move on, so that a change made now gets a ctime different
 * from the one recorded (file systems with coarse timestamps tick every few
 * milliseconds). */
static void tick(void)
{
    struct timespec ts = {0, 30 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

static struct snapshot *snap(int root, const char *const *skip)
{
    struct snapshot *s = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (snapshot_take(root, skip, &s, &err) < 0)
        fail_msg("snapshot_take: %s", err.msg);
    tick();
    return s;
}

static void diff(struct snapshot *before, int root, const char *const *skip,
                 unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                 struct layer_tree *t)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    layer_tree_init(t);
    if (snapshot_diff(before, root, skip, map_uid, map_gid, t, &err) < 0)
        fail_msg("snapshot_diff: %s", err.msg);
}

/* ---- looking at the result ---------------------------------------------- */

struct tar_item {
    char *path;
    mode_t mode;
    la_int64_t uid, gid, size;
    char *symlink, *hardlink;
};

struct tar_list {
    struct tar_item *items;
    size_t n;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Writes t as an uncompressed layer (file contents read from root) and
 * reads the tar back as a runtime would. */
static struct tar_list write_and_read(struct layer_tree *t, int root)
{
    char tmpl[] = "layer-XXXXXX";
    int fd = mkstemp(tmpl);
    struct layer_writer *w = NULL;
    struct layer_result res;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_list l = {NULL, 0};
    struct archive *a;
    struct archive_entry *ae;
    int r;

    assert_true(fd >= 0);
    if (layer_writer_new(fd, LAYER_COMPRESSION_NONE, EPOCH, &w, &err) < 0)
        fail_msg("layer_writer_new: %s", err.msg);
    if (layer_tree_write(t, root, w, &err) < 0)
        fail_msg("layer_tree_write: %s", err.msg);
    if (layer_writer_finish(w, &res, &err) < 0)
        fail_msg("layer_writer_finish: %s", err.msg);
    layer_writer_free(w);
    close(fd);

    a = archive_read_new();
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, tmpl, 10240) != ARCHIVE_OK)
        fail_msg("libarchive cannot open the layer: %s", archive_error_string(a));
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        struct tar_item *it;

        l.items = realloc(l.items, (l.n + 1) * sizeof(*l.items));
        assert_non_null(l.items);
        it = &l.items[l.n++];
        it->path = strdup(archive_entry_pathname(ae));
        it->mode = archive_entry_mode(ae);
        it->uid = archive_entry_uid(ae);
        it->gid = archive_entry_gid(ae);
        it->size = archive_entry_size(ae);
        it->symlink = dup_or_null(archive_entry_symlink(ae));
        it->hardlink = dup_or_null(archive_entry_hardlink(ae));
    }
    if (r != ARCHIVE_EOF)
        fail_msg("libarchive: %s", archive_error_string(a));
    archive_read_free(a);
    unlink(tmpl);
    return l;
}

static void tar_list_free(struct tar_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].symlink);
        free(l->items[i].hardlink);
    }
    free(l->items);
}

static const struct tar_item *tar_find(const struct tar_list *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].path, path))
            return &l->items[i];
    }
    return NULL;
}

static const struct tar_item *tar_must_find(const struct tar_list *l, const char *path)
{
    const struct tar_item *it = tar_find(l, path);

    if (!it) {
        for (size_t i = 0; i < l->n; i++)
            print_message("  tar: %s\n", l->items[i].path);
        fail_msg("no tar entry '%s'", path);
    }
    return it;
}

static void tar_expect_whiteout(const struct tar_list *l, const char *path)
{
    const struct tar_item *it = tar_must_find(l, path);

    assert_int_equal(it->mode & S_IFMT, S_IFREG);
    assert_int_equal(it->mode & 07777, 0);
    assert_int_equal(it->uid, 0);
    assert_int_equal(it->gid, 0);
    assert_int_equal(it->size, 0);
    assert_null(it->hardlink);
}

/* ---- tests --------------------------------------------------------------- */

static void test_an_untouched_tree_gives_an_empty_layer(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;

    mk_dir(root, "etc", 0755);
    mk_file(root, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    assert_int_equal(symlinkat("passwd", root, "etc/link"), 0);
    s = snap(root, NULL);
    assert_int_equal(snapshot_count(s), 3);
    diff(s, root, NULL, NULL, NULL, &t);
    assert_int_equal(t.n, 0);
    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_new_file_comes_with_its_parent_directory_as_it_is(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    const struct layer_tree_entry *e;
    struct stat st;

    mk_dir(root, "etc", 0750);
    mk_dir(root, "etc/deep", 0700);
    mk_dir(root, "usr", 0755);
    mk_file(root, "usr/untouched", "same");
    s = snap(root, NULL);
    mk_file(root, "etc/deep/new", "hello");
    assert_int_equal(fchmodat(root, "etc/deep/new", 0640, 0), 0);
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"etc", "etc/deep", "etc/deep/new", NULL});
    e = must_find(&t, "etc");
    assert_int_equal(e->mode, S_IFDIR | 0750);
    e = must_find(&t, "etc/deep");
    assert_int_equal(e->mode, S_IFDIR | 0700);
    e = must_find(&t, "etc/deep/new");
    assert_int_equal(e->mode, S_IFREG | 0640);
    assert_int_equal(e->size, 5);
    assert_string_equal(e->src, "etc/deep/new");
    assert_true(e->has_st);
    assert_int_equal(fstatat(root, "etc/deep/new", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(e->st.st_ino, st.st_ino);
    assert_int_equal(e->st.st_dev, st.st_dev);
    assert_int_equal(e->st.st_size, 5);
    assert_int_equal(e->uid, st.st_uid);
    assert_int_equal(e->gid, st.st_gid);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void
test_a_same_size_rewrite_with_its_mtime_restored_is_caught_by_ctime(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    struct stat st0, st1;
    int fd;

    mk_dir(root, "app", 0755);
    mk_file(root, "app/config", "aaaa");
    assert_int_equal(fstatat(root, "app/config", &st0, 0), 0);
    s = snap(root, NULL);

    fd = openat(root, "app/config", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "bbbb", 4, 0), 4);
    assert_int_equal(futimens(fd, (struct timespec[]){st0.st_atim, st0.st_mtim}), 0);
    close(fd);
    assert_int_equal(fstatat(root, "app/config", &st1, 0), 0);
    assert_int_equal(st1.st_size, st0.st_size);
    assert_int_equal(st1.st_mtim.tv_sec, st0.st_mtim.tv_sec);
    assert_int_equal(st1.st_mtim.tv_nsec, st0.st_mtim.tv_nsec);
    assert_int_equal(st1.st_ino, st0.st_ino);

    diff(s, root, NULL, NULL, NULL, &t);
    expect_paths(&t, (const char *const[]){"app", "app/config", NULL});
    assert_string_equal(must_find(&t, "app/config")->src, "app/config");

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_chmod_alone_is_a_change(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;

    mk_file(root, "script", "#!/bin/sh\n");
    mk_file(root, "other", "x");
    s = snap(root, NULL);
    assert_int_equal(fchmodat(root, "script", 0755, 0), 0);
    diff(s, root, NULL, NULL, NULL, &t);
    expect_paths(&t, (const char *const[]){"script", NULL});
    assert_int_equal(must_find(&t, "script")->mode, S_IFREG | 0755);
    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_deleted_file_becomes_a_whiteout_in_its_parent(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    struct tar_list l;

    mk_dir(root, "var", 0755);
    mk_dir(root, "var/cache", 0710);
    mk_file(root, "var/cache/old", "stale");
    mk_file(root, "var/cache/keep", "kept");
    mk_file(root, "top", "top");
    s = snap(root, NULL);
    assert_int_equal(unlinkat(root, "var/cache/old", 0), 0);
    assert_int_equal(unlinkat(root, "top", 0), 0);
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"var", "var/cache", "var/cache/.wh.old",
                                           ".wh.top", NULL});
    expect_whiteout(&t, "var/cache/.wh.old");
    expect_whiteout(&t, ".wh.top");
    assert_int_equal(must_find(&t, "var/cache")->mode, S_IFDIR | 0710);

    l = write_and_read(&t, root);
    tar_expect_whiteout(&l, "var/cache/.wh.old");
    tar_expect_whiteout(&l, ".wh.top");
    assert_int_equal(tar_must_find(&l, "var/cache/")->mode, S_IFDIR | 0710);
    assert_int_equal(l.n, 4);
    tar_list_free(&l);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_deleted_directory_is_one_whiteout_without_its_children(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;

    mk_dir(root, "build", 0755);
    mk_dir(root, "build/obj", 0755);
    mk_file(root, "build/obj/a.o", "obj");
    mk_file(root, "build/log", "log");
    mk_file(root, "src", "src");
    s = snap(root, NULL);
    rm_tree(root, "build");
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){".wh.build", NULL});
    expect_whiteout(&t, ".wh.build");
    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

/* A replaced directory is compared child by child, never made opaque:
 * whether it gets a new inode number is the file system's chance, and the
 * layer must not depend on it. */
static void test_a_replaced_directory_gets_whiteouts_for_its_gone_children(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    struct tar_list l;

    mk_dir(root, "opt", 0755);
    mk_dir(root, "opt/app", 0755);
    mk_file(root, "opt/app/old", "old");
    mk_file(root, "opt/app/keep", "v1");
    mk_dir(root, "opt/app/lib", 0755);
    mk_file(root, "opt/app/lib/gone.so", "so");
    s = snap(root, NULL);
    /* Built beside it, then swapped in: the new directory has a new inode. */
    mk_dir(root, "opt/app.new", 0700);
    mk_file(root, "opt/app.new/keep", "v2");
    mk_file(root, "opt/app.new/new", "new");
    rm_tree(root, "opt/app");
    assert_int_equal(renameat(root, "opt/app.new", root, "opt/app"), 0);
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"opt", "opt/app", "opt/app/.wh.lib",
                                           "opt/app/.wh.old", "opt/app/keep", "opt/app/new",
                                           NULL});
    expect_whiteout(&t, "opt/app/.wh.old");
    expect_whiteout(&t, "opt/app/.wh.lib");
    assert_int_equal(must_find(&t, "opt/app")->mode, S_IFDIR | 0700);

    l = write_and_read(&t, root);
    assert_null(tar_find(&l, "opt/app/.wh..wh..opq"));
    tar_expect_whiteout(&l, "opt/app/.wh.old");
    tar_expect_whiteout(&l, "opt/app/.wh.lib");
    assert_null(tar_find(&l, "opt/app/lib/.wh.gone.so"));
    assert_int_equal(tar_must_find(&l, "opt/app/keep")->size, 2);
    assert_int_equal(l.n, 6);
    tar_list_free(&l);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_file_or_directory_turned_symlink_is_just_the_new_entry(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    const struct layer_tree_entry *e;
    struct tar_list l;

    mk_file(root, "f", "file");
    mk_dir(root, "d", 0755);
    mk_file(root, "d/child", "child");
    mk_dir(root, "d/sub", 0755);
    s = snap(root, NULL);
    assert_int_equal(unlinkat(root, "f", 0), 0);
    assert_int_equal(symlinkat("target", root, "f"), 0);
    rm_tree(root, "d");
    assert_int_equal(symlinkat("/usr/share", root, "d"), 0);
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"f", "d", NULL});
    e = must_find(&t, "f");
    assert_int_equal(e->mode & S_IFMT, S_IFLNK);
    assert_string_equal(e->link, "target");
    assert_null(e->src);
    e = must_find(&t, "d");
    assert_int_equal(e->mode & S_IFMT, S_IFLNK);
    assert_string_equal(e->link, "/usr/share");

    l = write_and_read(&t, root);
    assert_string_equal(tar_must_find(&l, "f")->symlink, "target");
    assert_string_equal(tar_must_find(&l, "d")->symlink, "/usr/share");
    assert_int_equal(l.n, 2);
    tar_list_free(&l);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_symlink_retargeted_and_a_file_turned_directory_are_changes(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;

    assert_int_equal(symlinkat("one", root, "l"), 0);
    mk_file(root, "x", "file");
    s = snap(root, NULL);
    assert_int_equal(unlinkat(root, "l", 0), 0);
    assert_int_equal(symlinkat("two", root, "l"), 0);
    assert_int_equal(unlinkat(root, "x", 0), 0);
    mk_dir(root, "x", 0755);
    mk_file(root, "x/inside", "in");
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"l", "x", "x/inside", NULL});
    assert_string_equal(must_find(&t, "l")->link, "two");
    assert_int_equal(must_find(&t, "x")->mode, S_IFDIR | 0755);
    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_a_new_hardlink_pair_is_written_as_one_file_and_a_link(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    const struct layer_tree_entry *a, *b;
    struct tar_list l;
    const struct tar_item *it;

    mk_dir(root, "bin", 0755);
    s = snap(root, NULL);
    mk_file(root, "bin/a", "busybox");
    assert_int_equal(linkat(root, "bin/a", root, "bin/b", 0), 0);
    diff(s, root, NULL, NULL, NULL, &t);

    expect_paths(&t, (const char *const[]){"bin", "bin/a", "bin/b", NULL});
    a = must_find(&t, "bin/a");
    b = must_find(&t, "bin/b");
    assert_true(a->has_st && b->has_st);
    assert_int_equal(a->st.st_nlink, 2);
    assert_int_equal(a->st.st_ino, b->st.st_ino);
    assert_int_equal(a->st.st_dev, b->st.st_dev);

    l = write_and_read(&t, root);
    it = tar_must_find(&l, "bin/a");
    assert_null(it->hardlink);
    assert_int_equal(it->size, 7);
    it = tar_must_find(&l, "bin/b");
    assert_non_null(it->hardlink);
    assert_string_equal(it->hardlink, "bin/a");
    tar_list_free(&l);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static unsigned plus_1000(unsigned id)
{
    return id + 1000;
}

static unsigned plus_2000(unsigned id)
{
    return id + 2000;
}

static void test_owners_are_mapped_to_the_ids_seen_inside(void **state)
{
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s;
    struct stat st;
    const struct layer_tree_entry *e;
    struct tar_list l;

    mk_dir(root, "home", 0755);
    s = snap(root, NULL);
    mk_file(root, "home/file", "x");
    assert_int_equal(fstatat(root, "home/file", &st, 0), 0);
    diff(s, root, NULL, plus_1000, plus_2000, &t);

    e = must_find(&t, "home/file");
    assert_int_equal(e->uid, st.st_uid + 1000);
    assert_int_equal(e->gid, st.st_gid + 2000);
    assert_int_equal(e->st.st_uid, st.st_uid);
    e = must_find(&t, "home");
    assert_int_equal(e->uid, st.st_uid + 1000);

    l = write_and_read(&t, root);
    assert_int_equal(tar_must_find(&l, "home/file")->uid, st.st_uid + 1000);
    assert_int_equal(tar_must_find(&l, "home/file")->gid, st.st_gid + 2000);
    tar_list_free(&l);

    layer_tree_release(&t);
    snapshot_free(s);
    close(root);
}

static void test_skipped_paths_never_appear_nor_are_whited_out(void **state)
{
    static const char *const skip[] = {"proc", "/tmp/.ocib/", "root/.npm", NULL};
    int root = make_root();
    struct layer_tree t;
    struct snapshot *s, *all;
    struct tar_list l;

    mk_dir(root, "proc", 0555);
    mk_file(root, "proc/cpuinfo", "cpu");
    mk_dir(root, "tmp", 01777);
    mk_dir(root, "tmp/.ocib", 0700);
    mk_file(root, "tmp/.ocib/cache", "cache");
    mk_dir(root, "tmp/.ocibx", 0755);
    mk_dir(root, "root", 0700);
    mk_dir(root, "root/.npm", 0755);
    mk_file(root, "root/.npm/old", "old");
    s = snap(root, skip);
    all = snap(root, NULL);
    assert_int_equal(snapshot_count(s), 3); /* tmp, tmp/.ocibx, root */

    mk_file(root, "proc/new", "new");
    mk_file(root, "proc/cpuinfo", "changed");
    assert_int_equal(unlinkat(root, "tmp/.ocib/cache", 0), 0);
    mk_file(root, "tmp/.ocib/fresh", "fresh");
    rm_tree(root, "root/.npm");
    mk_dir(root, "root/.npm", 0755);
    mk_file(root, "root/.npm/index", "idx");
    mk_file(root, "tmp/visible", "v");

    diff(s, root, skip, NULL, NULL, &t);
    expect_paths(&t, (const char *const[]){"tmp", "tmp/visible", "root", NULL});
    l = write_and_read(&t, root);
    for (size_t i = 0; i < l.n; i++) {
        assert_null(strstr(l.items[i].path, "proc"));
        assert_null(strstr(l.items[i].path, "tmp/.ocib/"));
        assert_null(strstr(l.items[i].path, ".npm"));
    }
    tar_list_free(&l);
    layer_tree_release(&t);

    /* A snapshot taken without the list: the diff still ignores them. */
    rm_tree(root, "tmp/.ocib");
    diff(all, root, skip, NULL, NULL, &t);
    expect_paths(&t, (const char *const[]){"tmp", "tmp/visible", "root", NULL});
    layer_tree_release(&t);

    snapshot_free(s);
    snapshot_free(all);
    close(root);
}

/* In a child with its own mount namespace (and user namespace when not
 * root): a tmpfs mounted on mnt/ hides mnt/old and holds mnt/inner.  Returns
 * 0 when the layer has neither, 77 when namespaces are not available. */
static int mounted_child(int root)
{
    struct snapshot *s = NULL;
    struct layer_tree t;
    struct ocib_error err = OCIB_ERROR_INIT;
    uid_t uid = getuid();
    gid_t gid = getgid();
    char buf[64], path[4096];
    ssize_t n;
    int fd, rc = 0;

    /* The fd names a mount of the old namespace: mount on the path. */
    snprintf(buf, sizeof(buf), "/proc/self/fd/%d", root);
    n = readlink(buf, path, sizeof(path) - 5);
    if (n < 0)
        return 10;
    memcpy(path + n, "/mnt", 5);
    if (snapshot_take(root, NULL, &s, &err) < 0)
        return 10;
    tick();
    if (unshare(uid == 0 ? CLONE_NEWNS : CLONE_NEWNS | CLONE_NEWUSER) < 0)
        return 77;
    if (uid != 0) {
        fd = open("/proc/self/setgroups", O_WRONLY);
        if (fd >= 0) {
            if (write(fd, "deny", 4) != 4)
                return 77;
            close(fd);
        }
        snprintf(buf, sizeof(buf), "0 %u 1", (unsigned)uid);
        fd = open("/proc/self/uid_map", O_WRONLY);
        if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
            return 77;
        close(fd);
        snprintf(buf, sizeof(buf), "0 %u 1", (unsigned)gid);
        fd = open("/proc/self/gid_map", O_WRONLY);
        if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
            return 77;
        close(fd);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return 77;
    if (mount("tmpfs", path, "tmpfs", 0, "size=1m") < 0)
        return 77;
    path[n] = '\0';
    root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return 10;
    fd = openat(root, "mnt/inner", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return 11;
    close(fd);
    fd = openat(root, "changed", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return 12;
    close(fd);

    layer_tree_init(&t);
    if (snapshot_diff(s, root, NULL, NULL, NULL, &t, &err) < 0)
        rc = 13;
    else if (t.n != 1 || strcmp(t.entries[0].path, "changed"))
        rc = 14;
    layer_tree_release(&t);
    snapshot_free(s);
    return rc;
}

static void
test_another_file_system_mounted_below_is_neither_content_nor_deleted(void **state)
{
    int root = make_root();
    pid_t pid;
    int status;

    mk_dir(root, "mnt", 0755);
    mk_file(root, "mnt/old", "hidden by the mount");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(mounted_child(root));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        close(root);
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    close(root);
}

static void test_a_root_that_is_not_a_directory_is_refused(void **state)
{
    struct snapshot *s = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    int fd = open("file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(snapshot_take(fd, NULL, &s, &err), -1);
    assert_null(s);
    assert_string_equal(err.msg, "the root is not a directory");
    close(fd);
    snapshot_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_an_untouched_tree_gives_an_empty_layer),
        TEMPDIR_TEST(test_a_new_file_comes_with_its_parent_directory_as_it_is),
        TEMPDIR_TEST(test_a_same_size_rewrite_with_its_mtime_restored_is_caught_by_ctime),
        TEMPDIR_TEST(test_a_chmod_alone_is_a_change),
        TEMPDIR_TEST(test_a_deleted_file_becomes_a_whiteout_in_its_parent),
        TEMPDIR_TEST(test_a_deleted_directory_is_one_whiteout_without_its_children),
        TEMPDIR_TEST(test_a_replaced_directory_gets_whiteouts_for_its_gone_children),
        TEMPDIR_TEST(test_a_file_or_directory_turned_symlink_is_just_the_new_entry),
        TEMPDIR_TEST(test_a_symlink_retargeted_and_a_file_turned_directory_are_changes),
        TEMPDIR_TEST(test_a_new_hardlink_pair_is_written_as_one_file_and_a_link),
        TEMPDIR_TEST(test_owners_are_mapped_to_the_ids_seen_inside),
        TEMPDIR_TEST(test_skipped_paths_never_appear_nor_are_whited_out),
        TEMPDIR_TEST(test_another_file_system_mounted_below_is_neither_content_nor_deleted),
        TEMPDIR_TEST(test_a_root_that_is_not_a_directory_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
