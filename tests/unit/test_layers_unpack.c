/*
 * Unit tests for layers/unpack: layer tars applied one after another onto a
 * root directory give the file system the OCI image spec describes (files,
 * directories, links, modes, mtimes, whiteouts, opaque directories, entries
 * replacing entries), and a layer crafted to escape the root fails naming
 * the layer and the entry without touching anything outside the root.
 *
 * Each test works in its own directory: "root" is what layers are applied
 * to, "outside" beside it holds a sentinel file that must never change.
 * Tars are written with libarchive, as other tools would write them.
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
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fs.h"
#include "layers/unpack.h"
#include "tar_fixture.h"

#define SENTINEL "do not touch\n"

struct fixture {
    char dir[PATH_MAX / 2]; /* absolute */
    char root[PATH_MAX];    /* dir/root */
    char outside[PATH_MAX]; /* dir/outside */
    char layer[PATH_MAX];   /* dir/layer.tar */
    int root_fd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "unpack-XXXXXX";
    char cwd[PATH_MAX / 4];
    int fd;

    assert_non_null(f);
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(f->dir, sizeof(f->dir), "%s/%s", cwd, tmpl);
    snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
    snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
    snprintf(f->layer, sizeof(f->layer), "%s/layer.tar", f->dir);
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    fd = openat(AT_FDCWD, f->outside, O_DIRECTORY);
    assert_true(fd >= 0);
    {
        int s = openat(fd, "sentinel", O_WRONLY | O_CREAT | O_EXCL, 0644);

        assert_true(s >= 0);
        assert_int_equal(write(s, SENTINEL, strlen(SENTINEL)), (ssize_t)strlen(SENTINEL));
        close(s);
    }
    close(fd);
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

/* pax_restricted writes sub-second mtimes only when some other field needs
 * a pax header; a test of nanoseconds switches to full pax. */
static int tar_format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;

/* Writes the entries as a tar at f->layer, compressed with filter. */
static void write_layer(struct fixture *f, const struct tar_fixture_entry *es, size_t n,
                        int filter)
{
    struct archive *a = archive_write_new();

    assert_non_null(a);
    assert_int_equal(archive_write_set_format(a, tar_format), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, f->layer), ARCHIVE_OK);
    assert_int_equal(tar_fixture_write(a, es, n), 0);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static int apply(struct fixture *f, const struct tar_fixture_entry *es, size_t n,
                 int filter, const char *digest, struct unpack_stats *stats,
                 struct ocib_error *err)
{
    write_layer(f, es, n, filter);
    return layer_unpack(f->root_fd, f->layer, digest, stats, err);
}

static void apply_ok(struct fixture *f, const struct tar_fixture_entry *es, size_t n,
                     struct unpack_stats *stats)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    int r = apply(f, es, n, ARCHIVE_FILTER_NONE, "sha256:good", stats, &err);

    if (r < 0)
        fail_msg("unpack failed: %s", err.msg);
}

static void read_file(struct fixture *f, const char *path, char *buf, size_t size)
{
    int fd = openat(f->root_fd, path, O_RDONLY | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0)
        fail_msg("cannot open '%s' in the root", path);
    n = read(fd, buf, size - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
}

static struct stat lstat_in_root(struct fixture *f, const char *path)
{
    struct stat st;

    if (fstatat(f->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        fail_msg("'%s' is missing from the root", path);
    return st;
}

static int exists_in_root(struct fixture *f, const char *path)
{
    struct stat st;

    return fstatat(f->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static size_t count_dir(const char *path, const char *expect1, const char *expect2,
                        const char *expect3)
{
    DIR *d = opendir(path);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    for (;;) {
        de = readdir(d);
        if (!de)
            break;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if ((!expect1 || strcmp(de->d_name, expect1)) &&
            (!expect2 || strcmp(de->d_name, expect2)) &&
            (!expect3 || strcmp(de->d_name, expect3)))
            fail_msg("unexpected '%s' in '%s'", de->d_name, path);
        n++;
    }
    closedir(d);
    return n;
}

/* Nothing was created, changed or removed outside the root. */
static void assert_outside_untouched(struct fixture *f)
{
    char path[PATH_MAX + 16], buf[64] = "";
    struct stat st;
    ssize_t n;
    int fd;

    assert_int_equal(count_dir(f->outside, "sentinel", NULL, NULL), 1);
    assert_int_equal(count_dir(f->dir, "root", "outside", "layer.tar"), 3);
    snprintf(path, sizeof(path), "%s/sentinel", f->outside);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_nlink, 1);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_int_equal(n, (ssize_t)strlen(SENTINEL));
    assert_string_equal(buf, SENTINEL);
}

/* The layer is refused with its digest and the entry named, and nothing
 * outside the root changed. */
static void assert_escape_refused(struct fixture *f, const struct tar_fixture_entry *es,
                                  size_t n, const char *entry)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_stats stats = {77, 77, 77};
    char want[256];

    assert_int_equal(apply(f, es, n, ARCHIVE_FILTER_NONE, "sha256:evil", &stats, &err), -1);
    snprintf(want, sizeof(want), "entry '%s'", entry);
    if (!strstr(err.msg, "layer sha256:evil") || !strstr(err.msg, want))
        fail_msg("message does not name the layer and %s: %s", want, err.msg);
    assert_int_equal(stats.entries, 77); /* untouched on failure */
    assert_outside_untouched(f);
}

static void files_dirs_links_modes_and_mtimes(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry layer[] = {
        {.name = "./etc/", .type = AE_IFDIR, .perm = 0750, .mtime = 1000},
        {.name = "./etc/passwd",
         .type = AE_IFREG,
         .perm = 0644,
         .uid = 1000,
         .gid = 1001,
         .mtime = 1234567890,
         .mtime_nsec = 123456789,
         .data = "root:x:0:0::/root:/bin/sh\n"},
        {.name = "./etc/link",
         .type = AE_IFLNK,
         .perm = 0777,
         .mtime = 500,
         .link = "passwd"},
        {.name = "./etc/hard", .type = AE_IFREG, .perm = 0644, .hardlink = "./etc/passwd"},
        {.name = "bin/su", .type = AE_IFREG, .perm = 04755, .mtime = 7, .data = "#!su\n"},
        {.name = "tmp/", .type = AE_IFDIR, .perm = 01777, .mtime = 8},
        {.name = "deep/a/b/c.txt", .type = AE_IFREG, .perm = 0600, .data = "deep"},
        {.name = "run/fifo", .type = AE_IFIFO, .perm = 0620, .mtime = 9},
        {.name = "usr/lib/", .type = AE_IFDIR, .perm = 0755},
        {.name = "lib", .type = AE_IFLNK, .perm = 0777, .link = "usr/lib"},
        {.name = "lib/libc.so", .type = AE_IFREG, .perm = 0755, .data = "ELF"},
        {.name = "empty", .type = AE_IFREG, .perm = 0400},
        {.name = "./", .type = AE_IFDIR, .perm = 0700},
    };
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_stats stats = {0};
    struct stat st, st2;
    char buf[256];

    tar_format = ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE;
    write_layer(f, layer, ARRAY_SIZE(layer), ARCHIVE_FILTER_GZIP);
    tar_format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
    if (layer_unpack(f->root_fd, f->layer, "sha256:gz", &stats, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(stats.entries, ARRAY_SIZE(layer));
    assert_int_equal(stats.whiteouts, 0);
    assert_int_equal(stats.skipped_devices, 0);

    st = lstat_in_root(f, "etc");
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);

    st = lstat_in_root(f, "etc/passwd");
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_mtim.tv_sec, 1234567890);
    assert_int_equal(st.st_mtim.tv_nsec, 123456789);
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, 1000);
        assert_int_equal(st.st_gid, 1001);
    }
    read_file(f, "etc/passwd", buf, sizeof(buf));
    assert_string_equal(buf, "root:x:0:0::/root:/bin/sh\n");

    st2 = lstat_in_root(f, "etc/hard");
    assert_int_equal(st2.st_ino, st.st_ino);
    assert_int_equal(st2.st_nlink, 2);

    st = lstat_in_root(f, "etc/link");
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(st.st_mtim.tv_sec, 500);
    assert_int_equal(readlinkat(f->root_fd, "etc/link", buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "passwd", 6);

    assert_int_equal(lstat_in_root(f, "bin/su").st_mode & 07777, 04755);
    assert_int_equal(lstat_in_root(f, "bin").st_mode & 07777, 0755);
    assert_int_equal(lstat_in_root(f, "tmp").st_mode & 07777, 01777);
    assert_int_equal(lstat_in_root(f, "deep/a").st_mode & 07777, 0755);
    assert_int_equal(lstat_in_root(f, "deep/a/b/c.txt").st_mode & 07777, 0600);
    st = lstat_in_root(f, "run/fifo");
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0620);
    /* A symlink that stays beneath the root is followed for parents. */
    read_file(f, "usr/lib/libc.so", buf, sizeof(buf));
    assert_string_equal(buf, "ELF");
    assert_true(S_ISLNK(lstat_in_root(f, "lib").st_mode));
    st = lstat_in_root(f, "empty");
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0400);
    /* "./" names the root, which belongs to the caller. */
    assert_int_equal(fstat(f->root_fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_outside_untouched(f);
}

static void whiteouts_remove_lower_files_and_directories(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry lower[] = {
        {.name = "a/f1", .type = AE_IFREG, .perm = 0644, .data = "1"},
        {.name = "a/sub/f2", .type = AE_IFREG, .perm = 0644, .data = "2"},
        {.name = "a/sub/deeper/f3", .type = AE_IFREG, .perm = 0644, .data = "3"},
        {.name = "b/file", .type = AE_IFREG, .perm = 0644, .data = "b"},
        {.name = "c", .type = AE_IFLNK, .perm = 0777, .link = "../outside/sentinel"},
    };
    const struct tar_fixture_entry upper[] = {
        {.name = "a/.wh.sub", .type = AE_IFREG, .perm = 0644},
        {.name = "b/.wh.file", .type = AE_IFREG, .perm = 0644},
        {.name = ".wh.c", .type = AE_IFREG, .perm = 0644},
        {.name = "nothere/.wh.x", .type = AE_IFREG, .perm = 0644},
        {.name = "a/.wh.nothere", .type = AE_IFREG, .perm = 0644},
    };
    struct unpack_stats stats = {0};

    apply_ok(f, lower, ARRAY_SIZE(lower), &stats);
    apply_ok(f, upper, ARRAY_SIZE(upper), &stats);
    assert_int_equal(stats.whiteouts, 5);
    assert_int_equal(stats.entries, 5);
    assert_true(exists_in_root(f, "a/f1"));
    assert_false(exists_in_root(f, "a/sub"));
    assert_true(S_ISDIR(lstat_in_root(f, "b").st_mode));
    assert_false(exists_in_root(f, "b/file"));
    assert_false(exists_in_root(f, "c"));
    /* Whiteout files themselves are never created, nor their parents. */
    assert_false(exists_in_root(f, "a/.wh.sub"));
    assert_false(exists_in_root(f, "b/.wh.file"));
    assert_false(exists_in_root(f, ".wh.c"));
    assert_false(exists_in_root(f, "nothere"));
    assert_outside_untouched(f);
}

static void opaque_keeps_only_this_layers_children(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry lower[] = {
        {.name = "d/old", .type = AE_IFREG, .perm = 0644, .data = "old"},
        {.name = "d/olddir/x", .type = AE_IFREG, .perm = 0644, .data = "x"},
        {.name = "d/.profile", .type = AE_IFREG, .perm = 0644, .data = "lower"},
        {.name = "e/stay", .type = AE_IFREG, .perm = 0644, .data = "stay"},
        {.name = "f/old", .type = AE_IFREG, .perm = 0644, .data = "old"},
    };
    /* Sorted as a sorting writer would: ".bashrc" < ".wh..wh..opq" < "new". */
    const struct tar_fixture_entry upper[] = {
        {.name = "d/.bashrc", .type = AE_IFREG, .perm = 0644, .data = "before"},
        {.name = "d/.cache/c", .type = AE_IFREG, .perm = 0644, .data = "before"},
        {.name = "d/.wh..wh..opq", .type = AE_IFREG, .perm = 0644},
        {.name = "d/new", .type = AE_IFREG, .perm = 0644, .data = "after"},
        {.name = "d/", .type = AE_IFDIR, .perm = 0710, .mtime = 5},
        {.name = "f/", .type = AE_IFDIR, .perm = 0755},
        {.name = "f/.wh..wh..opq", .type = AE_IFREG, .perm = 0644},
        {.name = "f/new", .type = AE_IFREG, .perm = 0644, .data = "after"},
    };
    struct unpack_stats stats = {0};
    char buf[64];

    apply_ok(f, lower, ARRAY_SIZE(lower), &stats);
    apply_ok(f, upper, ARRAY_SIZE(upper), &stats);
    assert_int_equal(stats.whiteouts, 2);
    assert_int_equal(count_dir(f->root, "d", "e", "f"), 3);
    read_file(f, "d/.bashrc", buf, sizeof(buf));
    assert_string_equal(buf, "before");
    read_file(f, "d/.cache/c", buf, sizeof(buf));
    assert_string_equal(buf, "before");
    read_file(f, "d/new", buf, sizeof(buf));
    assert_string_equal(buf, "after");
    assert_false(exists_in_root(f, "d/old"));
    assert_false(exists_in_root(f, "d/olddir"));
    assert_false(exists_in_root(f, "d/.profile"));
    assert_false(exists_in_root(f, "d/.wh..wh..opq"));
    assert_int_equal(lstat_in_root(f, "d").st_mode & 07777, 0710);
    read_file(f, "e/stay", buf, sizeof(buf));
    assert_string_equal(buf, "stay");
    assert_false(exists_in_root(f, "f/old"));
    read_file(f, "f/new", buf, sizeof(buf));
    assert_string_equal(buf, "after");
}

static void opaque_through_a_symlink_removes_only_the_symlink(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry lower[] = {
        {.name = "evil", .type = AE_IFLNK, .perm = 0777, .link = "../outside"},
    };
    const struct tar_fixture_entry upper[] = {
        {.name = "evil/.wh..wh..opq", .type = AE_IFREG, .perm = 0644},
    };
    struct unpack_stats stats = {0};

    apply_ok(f, lower, ARRAY_SIZE(lower), &stats);
    apply_ok(f, upper, ARRAY_SIZE(upper), &stats);
    assert_false(exists_in_root(f, "evil"));
    assert_outside_untouched(f);
}

static void entries_replace_entries(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry lower[] = {
        {.name = "x/", .type = AE_IFDIR, .perm = 0755},
        {.name = "x/child/grand", .type = AE_IFREG, .perm = 0644, .data = "c"},
        {.name = "y", .type = AE_IFREG, .perm = 0644, .data = "y"},
        {.name = "s", .type = AE_IFLNK, .perm = 0777, .link = "../outside/sentinel"},
        {.name = "t", .type = AE_IFLNK, .perm = 0777, .link = "../outside"},
        {.name = "m/", .type = AE_IFDIR, .perm = 0755, .mtime = 1},
        {.name = "m/child", .type = AE_IFREG, .perm = 0644, .data = "m"},
        {.name = "h", .type = AE_IFREG, .perm = 0644, .data = "h"},
    };
    const struct tar_fixture_entry upper[] = {
        {.name = "x", .type = AE_IFREG, .perm = 0600, .data = "now a file"},
        {.name = "y/", .type = AE_IFDIR, .perm = 0700},
        {.name = "y/z", .type = AE_IFREG, .perm = 0644, .data = "z"},
        /* Written over a symlink to outside: replaces the symlink. */
        {.name = "s", .type = AE_IFREG, .perm = 0644, .data = "mine"},
        {.name = "t/", .type = AE_IFDIR, .perm = 0755},
        {.name = "t/sentinel", .type = AE_IFREG, .perm = 0644, .data = "mine"},
        {.name = "m/", .type = AE_IFDIR, .perm = 0700, .mtime = 42},
        {.name = "h", .type = AE_IFLNK, .perm = 0777, .link = "x"},
    };
    struct unpack_stats stats = {0};
    struct stat st;
    char buf[64];

    apply_ok(f, lower, ARRAY_SIZE(lower), &stats);
    apply_ok(f, upper, ARRAY_SIZE(upper), &stats);
    st = lstat_in_root(f, "x");
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    read_file(f, "x", buf, sizeof(buf));
    assert_string_equal(buf, "now a file");
    st = lstat_in_root(f, "y");
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    read_file(f, "y/z", buf, sizeof(buf));
    assert_string_equal(buf, "z");
    read_file(f, "s", buf, sizeof(buf));
    assert_string_equal(buf, "mine");
    assert_true(S_ISDIR(lstat_in_root(f, "t").st_mode));
    read_file(f, "t/sentinel", buf, sizeof(buf));
    assert_string_equal(buf, "mine");
    /* A directory over a directory: metadata only, children stay. */
    st = lstat_in_root(f, "m");
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_mtim.tv_sec, 42);
    read_file(f, "m/child", buf, sizeof(buf));
    assert_string_equal(buf, "m");
    assert_true(S_ISLNK(lstat_in_root(f, "h").st_mode));
    assert_outside_untouched(f);
}

static void dotdot_name_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "ok", .type = AE_IFREG, .perm = 0644, .data = "ok"},
        {.name = "../outside/x", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "../outside/x");
    /* Names are checked before anything is written. */
    assert_false(exists_in_root(*state, "ok"));
}

static void absolute_name_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "/abs/x", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "/abs/x");
}

static void deep_dotdot_name_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "a/", .type = AE_IFDIR, .perm = 0755},
        {.name = "a/../../outside/x", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "a/../../outside/x");
}

static void write_through_relative_symlink_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "evil", .type = AE_IFLNK, .perm = 0777, .link = "../outside"},
        {.name = "evil/x", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "evil/x");
}

static void write_through_absolute_symlink_is_refused(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry layer[] = {
        {.name = "evil", .type = AE_IFLNK, .perm = 0777, .link = f->outside},
        {.name = "evil/sentinel", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(f, layer, ARRAY_SIZE(layer), "evil/sentinel");
}

static void write_through_symlink_chain_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "a", .type = AE_IFLNK, .perm = 0777, .link = "b/c"},
        {.name = "b/", .type = AE_IFDIR, .perm = 0755},
        {.name = "b/c", .type = AE_IFLNK, .perm = 0777, .link = "../../outside"},
        {.name = "a/new/x", .type = AE_IFREG, .perm = 0644, .data = "pwned"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "a/new/x");
}

static void hardlink_through_symlink_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "evil", .type = AE_IFLNK, .perm = 0777, .link = "../outside"},
        {.name = "h", .type = AE_IFREG, .perm = 0644, .hardlink = "evil/sentinel"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "h");
    assert_false(exists_in_root(*state, "h"));
}

static void hardlink_with_dotdot_target_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "h", .type = AE_IFREG, .perm = 0644, .hardlink = "../outside/sentinel"},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "h");
}

static void hardlink_with_absolute_target_is_refused(void **state)
{
    struct fixture *f = *state;
    char target[PATH_MAX + 16];
    const struct tar_fixture_entry layer[] = {
        {.name = "h", .type = AE_IFREG, .perm = 0644, .hardlink = target},
    };

    snprintf(target, sizeof(target), "%s/sentinel", f->outside);
    assert_escape_refused(f, layer, ARRAY_SIZE(layer), "h");
}

static void hardlink_to_missing_target_fails(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry layer[] = {
        {.name = "h", .type = AE_IFREG, .perm = 0644, .hardlink = "nothere"},
    };
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(apply(f, layer, 1, ARCHIVE_FILTER_NONE, "sha256:l", NULL, &err), -1);
    assert_non_null(
        strstr(err.msg, "layer sha256:l: entry 'h': hardlink target 'nothere'"));
}

static void whiteout_through_symlink_is_refused(void **state)
{
    const struct tar_fixture_entry layer[] = {
        {.name = "evil", .type = AE_IFLNK, .perm = 0777, .link = "../outside"},
        {.name = "evil/.wh.sentinel", .type = AE_IFREG, .perm = 0644},
    };
    const struct tar_fixture_entry dots[] = {
        {.name = "x/.wh...", .type = AE_IFREG, .perm = 0644},
    };

    assert_escape_refused(*state, layer, ARRAY_SIZE(layer), "evil/.wh.sentinel");
    assert_escape_refused(*state, dots, ARRAY_SIZE(dots), "x/.wh...");
}

static void device_nodes_are_made_or_skipped(void **state)
{
    struct fixture *f = *state;
    const struct tar_fixture_entry layer[] = {
        {.name = "dev/null", .type = AE_IFCHR, .perm = 0666, .major = 1, .minor = 3},
        {.name = "dev/loop0", .type = AE_IFBLK, .perm = 0660, .major = 7, .minor = 0},
        {.name = "dev/after", .type = AE_IFREG, .perm = 0644, .data = "a"},
    };
    struct unpack_stats stats = {0};
    size_t made = 0;
    struct stat st;

    apply_ok(f, layer, ARRAY_SIZE(layer), &stats);
    if (fstatat(f->root_fd, "dev/null", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
        assert_int_equal(st.st_mode & 07777, 0666);
        made++;
    }
    if (fstatat(f->root_fd, "dev/loop0", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        assert_true(S_ISBLK(st.st_mode));
        made++;
    }
    assert_int_equal(made + stats.skipped_devices, 2);
    assert_true(exists_in_root(f, "dev/after"));
}

static const struct tar_fixture_entry unpriv_lower[] = {
    {.name = "dev/null", .type = AE_IFCHR, .perm = 0666, .major = 1, .minor = 3},
    {.name = "etc/shadow", .type = AE_IFREG, .perm = 0640, .gid = 42, .data = "s"},
    {.name = "ro/", .type = AE_IFDIR, .perm = 0555},
    {.name = "ro/f", .type = AE_IFREG, .perm = 0444, .data = "f"},
    {.name = "ro/sub/", .type = AE_IFDIR, .perm = 0555},
    {.name = "ro/sub/g", .type = AE_IFREG, .perm = 0444, .data = "g"},
};
static const struct tar_fixture_entry unpriv_upper[] = {
    {.name = "ro/sub/.wh..wh..opq", .type = AE_IFREG, .perm = 0644},
    {.name = "ro/.wh.sub", .type = AE_IFREG, .perm = 0644},
    {.name = ".wh.ro", .type = AE_IFREG, .perm = 0644},
};

/* Applies the two layers as an unprivileged user; returns 0 when devices
 * were skipped, owners left alone and read-only directories written into and
 * removed, else a number saying what went wrong. */
static int unprivileged_apply(int root_fd, const char *lower, const char *upper)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_stats stats = {0};
    struct stat st;

    if (layer_unpack(root_fd, lower, "sha256:user", &stats, &err) < 0) {
        fprintf(stderr, "unprivileged unpack: %s\n", err.msg);
        return 1;
    }
    if (stats.skipped_devices != 1 || fstatat(root_fd, "dev/null", &st, 0) == 0)
        return 2;
    if (fstatat(root_fd, "ro", &st, 0) < 0 || (st.st_mode & 07777) != 0555)
        return 3;
    if (fstatat(root_fd, "ro/sub/g", &st, 0) < 0 || st.st_uid != geteuid())
        return 4;
    if (layer_unpack(root_fd, upper, "sha256:user2", &stats, &err) < 0) {
        fprintf(stderr, "unprivileged unpack: %s\n", err.msg);
        return 5;
    }
    return fstatat(root_fd, "ro", &st, AT_SYMLINK_NOFOLLOW) == 0 ? 6 : 0;
}

static void unprivileged_unpack_skips_what_it_cannot_do(void **state)
{
    struct fixture *f = *state;
    char upper[PATH_MAX + 16], lower_fd_path[64], upper_fd_path[64];
    int status, lower_fd, upper_fd;
    pid_t pid;

    write_layer(f, unpriv_upper, ARRAY_SIZE(unpriv_upper), ARCHIVE_FILTER_NONE);
    snprintf(upper, sizeof(upper), "%s/upper.tar", f->dir);
    assert_int_equal(rename(f->layer, upper), 0);
    write_layer(f, unpriv_lower, ARRAY_SIZE(unpriv_lower), ARCHIVE_FILTER_NONE);
    if (geteuid() != 0) {
        assert_int_equal(unprivileged_apply(f->root_fd, f->layer, upper), 0);
        return;
    }
    /* The test directory may not be searchable by nobody: hand the layers
     * over as open files. */
    lower_fd = open(f->layer, O_RDONLY);
    upper_fd = open(upper, O_RDONLY);
    assert_true(lower_fd >= 0 && upper_fd >= 0);
    snprintf(lower_fd_path, sizeof(lower_fd_path), "/proc/self/fd/%d", lower_fd);
    snprintf(upper_fd_path, sizeof(upper_fd_path), "/proc/self/fd/%d", upper_fd);
    assert_int_equal(fchown(f->root_fd, 65534, 65534), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(100);
        _exit(unprivileged_apply(f->root_fd, lower_fd_path, upper_fd_path));
    }
    close(lower_fd);
    close(upper_fd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void garbage_is_an_error_naming_the_layer(void **state)
{
    struct fixture *f = *state;
    struct ocib_error err = OCIB_ERROR_INIT;
    int fd = open(f->layer, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a tar at all", 16), 16);
    close(fd);
    assert_int_equal(layer_unpack(f->root_fd, f->layer, "sha256:junk", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "layer sha256:junk"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(files_dirs_links_modes_and_mtimes),
        T(whiteouts_remove_lower_files_and_directories),
        T(opaque_keeps_only_this_layers_children),
        T(opaque_through_a_symlink_removes_only_the_symlink),
        T(entries_replace_entries),
        T(dotdot_name_is_refused),
        T(absolute_name_is_refused),
        T(deep_dotdot_name_is_refused),
        T(write_through_relative_symlink_is_refused),
        T(write_through_absolute_symlink_is_refused),
        T(write_through_symlink_chain_is_refused),
        T(hardlink_through_symlink_is_refused),
        T(hardlink_with_dotdot_target_is_refused),
        T(hardlink_with_absolute_target_is_refused),
        T(hardlink_to_missing_target_fails),
        T(whiteout_through_symlink_is_refused),
        T(device_nodes_are_made_or_skipped),
        T(unprivileged_unpack_skips_what_it_cannot_do),
        T(garbage_is_an_error_naming_the_layer),
    };

    umask(022);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
