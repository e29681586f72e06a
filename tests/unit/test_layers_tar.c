/*
 * Unit tests for layers/tree, layers/tar_writer and layers/compress: the
 * layer tar ocib writes must be deterministic (order, owners, times, modes,
 * compression bytes) and its digests must be the ones a registry and a
 * runtime will compute.  Every layer is written to a file in the test's
 * temporary directory and read back with libarchive, as a runtime would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "base/error.h"
#include "base/sha256.h"
#include "layers/compress.h"
#include "layers/tar_writer.h"
#include "layers/tree.h"
#include "oci/digest.h"
#include "oci/mediatype.h"
#include "tempdir.h"

#define EPOCH 1234567890
/* sha256 of 1024 zero bytes: the diff_id of every empty layer. */
#define EMPTY_TAR_DIFF_ID                                                                  \
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

static const enum layer_compression all_kinds[] = {
    LAYER_COMPRESSION_GZIP, LAYER_COMPRESSION_ZSTD, LAYER_COMPRESSION_NONE};

/* ---- building trees ---------------------------------------------------- */

static void put_dir(struct layer_tree *t, const char *path, mode_t perm, unsigned uid,
                    unsigned gid)
{
    struct layer_tree_entry e = {
        .path = strdup(path), .mode = S_IFDIR | perm, .uid = uid, .gid = gid};
    layer_tree_put(t, &e);
}

static void put_data(struct layer_tree *t, const char *path, mode_t perm, const char *data)
{
    struct layer_tree_entry e = {.path = strdup(path),
                                 .mode = S_IFREG | perm,
                                 .size = strlen(data),
                                 .data = strdup(data)};
    layer_tree_put(t, &e);
}

static void put_symlink(struct layer_tree *t, const char *path, const char *target)
{
    struct layer_tree_entry e = {
        .path = strdup(path), .mode = S_IFLNK | 0777, .link = strdup(target)};
    layer_tree_put(t, &e);
}

/* A file read from the source directory, with its stat so that hardlink
 * detection sees the real inode and link count. */
static void put_src(struct layer_tree *t, int dirfd, const char *path, const char *src,
                    mode_t perm)
{
    struct stat st;

    assert_int_equal(fstatat(dirfd, src, &st, AT_SYMLINK_NOFOLLOW), 0);
    struct layer_tree_entry e = {.path = strdup(path),
                                 .mode = S_IFREG | perm,
                                 .size = (uint64_t)st.st_size,
                                 .src = strdup(src),
                                 .st = st,
                                 .has_st = true};
    layer_tree_put(t, &e);
}

static void write_file_at(int dirfd, const char *name, const char *data)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

/* A fresh source directory under the current one. */
static int make_src_dir(void)
{
    char tmpl[] = "src-XXXXXX";
    int fd;

    assert_non_null(mkdtemp(tmpl));
    fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* ---- writing and reading layers ---------------------------------------- */

struct blob {
    unsigned char *data;
    size_t len;
};

static struct blob read_fd_all(int fd)
{
    struct blob b = {NULL, 0};
    struct stat st;

    assert_int_equal(fstat(fd, &st), 0);
    b.len = (size_t)st.st_size;
    b.data = malloc(b.len + 1);
    assert_non_null(b.data);
    assert_int_equal(pread(fd, b.data, b.len, 0), (ssize_t)b.len);
    return b;
}

/* Writes t as a layer into a new file in the current directory and returns
 * the file's bytes. */
static struct blob write_layer(struct layer_tree *t, int src_dirfd,
                               enum layer_compression c, int64_t mtime,
                               struct layer_result *res)
{
    char tmpl[] = "layer-XXXXXX";
    int fd = mkstemp(tmpl);
    struct layer_writer *w = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct blob b;

    assert_true(fd >= 0);
    if (layer_writer_new(fd, c, mtime, &w, &err) < 0)
        fail_msg("layer_writer_new: %s", err.msg);
    if (layer_tree_write(t, src_dirfd, w, &err) < 0)
        fail_msg("layer_tree_write: %s", err.msg);
    if (layer_writer_finish(w, res, &err) < 0)
        fail_msg("layer_writer_finish: %s", err.msg);
    layer_writer_free(w);
    b = read_fd_all(fd);
    close(fd);
    unlink(tmpl);
    return b;
}

struct tar_item {
    char *path;
    mode_t type;
    mode_t perm;
    la_int64_t uid, gid;
    char *uname, *gname; /* NULL when absent */
    time_t mtime;
    long mtime_nsec;
    bool atime_set, ctime_set, birthtime_set;
    la_int64_t size;
    char *symlink, *hardlink;
    char *data;
    size_t data_len;
};

struct tar_list {
    struct tar_item *items;
    size_t n;
};

static void tar_list_free(struct tar_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].symlink);
        free(l->items[i].hardlink);
        free(l->items[i].uname);
        free(l->items[i].gname);
        free(l->items[i].data);
    }
    free(l->items);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Reads every entry of a (possibly compressed) tar, as a runtime would. */
static struct tar_list read_tar(const struct blob *b)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    struct tar_list l = {NULL, 0};
    int r;

    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, b->data, b->len) != ARCHIVE_OK)
        fail_msg("libarchive cannot open the layer: %s", archive_error_string(a));
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        struct tar_item *it;
        la_int64_t size = archive_entry_size(ae);

        l.items = realloc(l.items, (l.n + 1) * sizeof(*l.items));
        assert_non_null(l.items);
        it = &l.items[l.n++];
        memset(it, 0, sizeof(*it));
        it->path = strdup(archive_entry_pathname(ae));
        it->type = archive_entry_filetype(ae);
        it->perm = archive_entry_perm(ae);
        it->uid = archive_entry_uid(ae);
        it->gid = archive_entry_gid(ae);
        it->uname = dup_or_null(archive_entry_uname(ae));
        it->gname = dup_or_null(archive_entry_gname(ae));
        it->mtime = archive_entry_mtime(ae);
        it->mtime_nsec = archive_entry_mtime_nsec(ae);
        it->atime_set = archive_entry_atime_is_set(ae);
        it->ctime_set = archive_entry_ctime_is_set(ae);
        it->birthtime_set = archive_entry_birthtime_is_set(ae);
        it->size = size;
        it->symlink = dup_or_null(archive_entry_symlink(ae));
        it->hardlink = dup_or_null(archive_entry_hardlink(ae));
        it->data = malloc((size_t)size + 1);
        assert_non_null(it->data);
        it->data_len = 0;
        if (size > 0) {
            la_ssize_t n = archive_read_data(a, it->data, (size_t)size);

            assert_int_equal(n, size);
            it->data_len = (size_t)n;
        }
        it->data[it->data_len] = '\0';
    }
    if (r != ARCHIVE_EOF)
        fail_msg("libarchive: %s", archive_error_string(a));
    archive_read_free(a);
    return l;
}

/* The uncompressed bytes of a layer (whatever its compression). */
static struct blob decompress(const struct blob *b)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    struct blob out = {NULL, 0};
    size_t alloc = 0;
    char buf[65536];
    la_ssize_t n;

    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_memory(a, b->data, b->len) != ARCHIVE_OK ||
        archive_read_next_header(a, &ae) != ARCHIVE_OK)
        fail_msg("libarchive cannot decompress the layer: %s", archive_error_string(a));
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
        if (out.len + (size_t)n > alloc) {
            alloc = (out.len + (size_t)n) * 2;
            out.data = realloc(out.data, alloc);
            assert_non_null(out.data);
        }
        memcpy(out.data + out.len, buf, (size_t)n);
        out.len += (size_t)n;
    }
    assert_int_equal(n, 0);
    archive_read_free(a);
    return out;
}

static const struct tar_item *find_item(const struct tar_list *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].path, path))
            return &l->items[i];
    fail_msg("no entry \"%s\" in the layer", path);
    return NULL;
}

static void assert_paths(const struct tar_list *l, const char *const *want, size_t n)
{
    for (size_t i = 0; i < l->n && i < n; i++)
        if (strcmp(l->items[i].path, want[i]))
            fail_msg("entry %zu is \"%s\", expected \"%s\"", i, l->items[i].path, want[i]);
    assert_int_equal(l->n, n);
}

/* A small tree with every kind of entry, given out of order. */
static void sample_tree(struct layer_tree *t)
{
    layer_tree_init(t);
    put_data(t, "z.txt", 0644, "zed\n");
    put_data(t, "a/b/c.txt", 0640, "hello\n");
    put_dir(t, "A", 0700, 1000, 1000);
    put_data(t, "a-b", 0600, "dash\n");
    put_symlink(t, "a/b/d", "c.txt");
    put_data(t, "bin/tool", 04755, "#!/bin/sh\n");
    put_dir(t, "tmp", 01777, 0, 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_entries_are_sorted_bytewise_with_parents_before_contents(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    static const char *const want[] = {"A/",    "a/",   "a-b",      "a/b/", "a/b/c.txt",
                                       "a/b/d", "bin/", "bin/tool", "tmp/", "z.txt"};

    sample_tree(&t);
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_GZIP, EPOCH, &res);
    l = read_tar(&b);
    /* Byte order of the paths (a directory's name without its trailing
     * slash): "a" < "a-b" < "a/b". */
    assert_paths(&l, want, sizeof(want) / sizeof(want[0]));
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_a_lone_deep_file_gets_all_its_parent_directories(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    static const char *const want[] = {"a/", "a/b/", "a/b/c.txt"};

    layer_tree_init(&t);
    put_data(&t, "a/b/c.txt", 0644, "x");
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_NONE, EPOCH, &res);
    l = read_tar(&b);
    assert_paths(&l, want, 3);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(l.items[i].type, AE_IFDIR);
        assert_int_equal(l.items[i].perm, 0755);
        assert_int_equal(l.items[i].uid, 0);
        assert_int_equal(l.items[i].gid, 0);
    }
    /* The tree marks which parents it added. */
    assert_int_equal(t.n, 3);
    assert_true(t.entries[0].implicit);
    assert_true(t.entries[1].implicit);
    assert_false(t.entries[2].implicit);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_explicit_parent_directory_keeps_its_own_mode_and_owner(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    const struct tar_item *it;

    layer_tree_init(&t);
    put_data(&t, "data/x/file", 0644, "x");
    put_dir(&t, "data", 0700, 1000, 1001);
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_NONE, EPOCH, &res);
    l = read_tar(&b);
    assert_int_equal(l.n, 3);
    it = find_item(&l, "data/");
    assert_int_equal(it->perm, 0700);
    assert_int_equal(it->uid, 1000);
    assert_int_equal(it->gid, 1001);
    it = find_item(&l, "data/x/");
    assert_int_equal(it->perm, 0755);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_owners_are_numeric_without_names_and_times_are_the_epoch(void **state)
{
    for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]); k++) {
        struct layer_tree t;
        struct layer_result res;
        struct blob b;
        struct tar_list l;

        sample_tree(&t);
        /* A large uid/gid that needs a pax record. */
        struct layer_tree_entry e = {.path = strdup("big"),
                                     .mode = S_IFREG | 0644,
                                     .uid = 3000000000u,
                                     .gid = 2097152,
                                     .data = strdup("")};
        layer_tree_put(&t, &e);
        b = write_layer(&t, AT_FDCWD, all_kinds[k], EPOCH, &res);
        l = read_tar(&b);
        assert_true(l.n > 0);
        for (size_t i = 0; i < l.n; i++) {
            const struct tar_item *it = &l.items[i];

            if (it->uname && *it->uname)
                fail_msg("%s: %s has uname \"%s\"", layer_compression_name(all_kinds[k]),
                         it->path, it->uname);
            if (it->gname && *it->gname)
                fail_msg("%s has gname \"%s\"", it->path, it->gname);
            if (it->mtime != EPOCH || it->mtime_nsec != 0)
                fail_msg("%s has mtime %lld.%09ld, expected %d", it->path,
                         (long long)it->mtime, it->mtime_nsec, EPOCH);
            if (it->atime_set || it->ctime_set || it->birthtime_set)
                fail_msg("%s carries an atime, ctime or birthtime", it->path);
        }
        assert_int_equal(find_item(&l, "A/")->uid, 1000);
        assert_int_equal(find_item(&l, "A/")->gid, 1000);
        assert_int_equal(find_item(&l, "z.txt")->uid, 0);
        assert_int_equal(find_item(&l, "big")->uid, 3000000000u);
        assert_int_equal(find_item(&l, "big")->gid, 2097152);
        tar_list_free(&l);
        free(b.data);
        layer_tree_release(&t);
    }
}

static void test_mtime_zero_is_written_as_zero(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;

    sample_tree(&t);
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_NONE, 0, &res);
    l = read_tar(&b);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.items[i].mtime, 0);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_modes_types_and_symlink_targets_are_kept(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    const struct tar_item *it;

    sample_tree(&t);
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_ZSTD, EPOCH, &res);
    l = read_tar(&b);

    it = find_item(&l, "a/b/c.txt");
    assert_int_equal(it->type, AE_IFREG);
    assert_int_equal(it->perm, 0640);
    assert_string_equal(it->data, "hello\n");
    it = find_item(&l, "a-b");
    assert_int_equal(it->perm, 0600);
    it = find_item(&l, "bin/tool");
    assert_int_equal(it->perm, 04755);
    assert_string_equal(it->data, "#!/bin/sh\n");
    it = find_item(&l, "tmp/");
    assert_int_equal(it->type, AE_IFDIR);
    assert_int_equal(it->perm, 01777);
    it = find_item(&l, "A/");
    assert_int_equal(it->perm, 0700);
    it = find_item(&l, "a/b/d");
    assert_int_equal(it->type, AE_IFLNK);
    assert_string_equal(it->symlink, "c.txt");
    assert_int_equal(it->size, 0);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_a_later_put_for_the_same_path_wins(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;

    layer_tree_init(&t);
    put_data(&t, "etc/f", 0600, "old content");
    put_data(&t, "etc/g", 0644, "g");
    put_symlink(&t, "etc/f", "nowhere");
    put_data(&t, "etc/f", 0644, "new");
    put_dir(&t, "etc", 0711, 5, 6);
    put_dir(&t, "etc", 0750, 7, 8);
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_GZIP, EPOCH, &res);
    l = read_tar(&b);
    assert_int_equal(l.n, 3);
    assert_int_equal(find_item(&l, "etc/f")->type, AE_IFREG);
    assert_int_equal(find_item(&l, "etc/f")->perm, 0644);
    assert_string_equal(find_item(&l, "etc/f")->data, "new");
    assert_int_equal(find_item(&l, "etc/")->perm, 0750);
    assert_int_equal(find_item(&l, "etc/")->uid, 7);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

static void test_files_sharing_an_inode_become_a_hardlink_to_the_first_path(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    const struct tar_item *it;

    /* Three names of one inode in the source, given out of layer order. */
    write_file_at(dirfd, "one", "shared bytes\n");
    assert_int_equal(linkat(dirfd, "one", dirfd, "one-b", 0), 0);
    assert_int_equal(linkat(dirfd, "one", dirfd, "one-c", 0), 0);
    write_file_at(dirfd, "other", "different\n");
    layer_tree_init(&t);
    put_src(&t, dirfd, "x/second", "one", 0755);
    put_src(&t, dirfd, "b/first", "one-b", 0755);
    put_src(&t, dirfd, "m/third", "one-c", 0755);
    put_src(&t, dirfd, "c/unrelated", "other", 0644);
    b = write_layer(&t, dirfd, LAYER_COMPRESSION_GZIP, EPOCH, &res);
    l = read_tar(&b);

    /* The first path in layer order carries the content... */
    it = find_item(&l, "b/first");
    assert_int_equal(it->type, AE_IFREG);
    assert_null(it->hardlink);
    assert_string_equal(it->data, "shared bytes\n");
    /* ...and every later one links to it. */
    it = find_item(&l, "m/third");
    assert_non_null(it->hardlink);
    assert_string_equal(it->hardlink, "b/first");
    assert_int_equal(it->data_len, 0);
    it = find_item(&l, "x/second");
    assert_non_null(it->hardlink);
    assert_string_equal(it->hardlink, "b/first");
    assert_int_equal(it->perm, 0755);
    it = find_item(&l, "c/unrelated");
    assert_null(it->hardlink);
    assert_string_equal(it->data, "different\n");
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
    close(dirfd);
}

static void test_one_file_copied_to_two_places_gives_two_files(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;

    /* A single-link file put at two paths (the same source copied twice)
     * is two independent files, not a hardlink. */
    write_file_at(dirfd, "conf", "k=v\n");
    layer_tree_init(&t);
    put_src(&t, dirfd, "etc/app.conf", "conf", 0644);
    put_src(&t, dirfd, "opt/app/app.conf", "conf", 0600);
    b = write_layer(&t, dirfd, LAYER_COMPRESSION_NONE, EPOCH, &res);
    l = read_tar(&b);
    assert_null(find_item(&l, "etc/app.conf")->hardlink);
    assert_null(find_item(&l, "opt/app/app.conf")->hardlink);
    assert_string_equal(find_item(&l, "opt/app/app.conf")->data, "k=v\n");
    assert_int_equal(find_item(&l, "opt/app/app.conf")->perm, 0600);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
    close(dirfd);
}

static void test_writing_records_each_source_file_content_digest(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct oci_digest want;

    write_file_at(dirfd, "f", "abc");
    layer_tree_init(&t);
    put_src(&t, dirfd, "f", "f", 0644);
    b = write_layer(&t, dirfd, LAYER_COMPRESSION_NONE, EPOCH, &res);
    oci_digest_of("abc", 3, &want);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.entries[0].digest, oci_digest_hex(&want));
    free(b.data);
    layer_tree_release(&t);
    close(dirfd);
}

static void test_a_real_hardlink_in_the_source_is_kept_as_one(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;

    write_file_at(dirfd, "orig", "linked\n");
    assert_int_equal(linkat(dirfd, "orig", dirfd, "alias", 0), 0);
    layer_tree_init(&t);
    put_src(&t, dirfd, "usr/bin/alias", "alias", 0755);
    put_src(&t, dirfd, "usr/bin/orig", "orig", 0755);
    b = write_layer(&t, dirfd, LAYER_COMPRESSION_NONE, EPOCH, &res);
    l = read_tar(&b);
    assert_string_equal(find_item(&l, "usr/bin/alias")->data, "linked\n");
    assert_string_equal(find_item(&l, "usr/bin/orig")->hardlink, "usr/bin/alias");
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
    close(dirfd);
}

static void test_digests_match_the_bytes_for_every_compression(void **state)
{
    int dirfd = make_src_dir();

    write_file_at(dirfd, "f", "file from the source directory\n");
    for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]); k++) {
        struct layer_tree t;
        struct layer_result res;
        struct blob b, raw;
        struct oci_digest d;

        sample_tree(&t);
        put_src(&t, dirfd, "srv/f", "f", 0644);
        b = write_layer(&t, dirfd, all_kinds[k], EPOCH, &res);
        raw = decompress(&b);

        oci_digest_of(b.data, b.len, &d);
        if (!oci_digest_equal(&d, &res.digest))
            fail_msg("%s: digest %s, file hashes to %s",
                     layer_compression_name(all_kinds[k]), res.digest.str, d.str);
        assert_int_equal(res.size, b.len);
        oci_digest_of(raw.data, raw.len, &d);
        if (!oci_digest_equal(&d, &res.diff_id))
            fail_msg("%s: diff_id %s, tar hashes to %s",
                     layer_compression_name(all_kinds[k]), res.diff_id.str, d.str);
        assert_int_equal(res.tar_size, raw.len);
        assert_int_equal(raw.len % 512, 0);
        assert_string_equal(res.media_type, layer_compression_media_type(all_kinds[k]));
        if (all_kinds[k] == LAYER_COMPRESSION_NONE) {
            assert_true(oci_digest_equal(&res.digest, &res.diff_id));
            assert_string_equal(res.media_type, OCI_MT_LAYER_TAR);
        } else {
            assert_false(oci_digest_equal(&res.digest, &res.diff_id));
        }
        if (all_kinds[k] == LAYER_COMPRESSION_GZIP) {
            /* Pinned gzip header: no name, mtime 0, OS 255. */
            assert_int_equal(b.data[0], 0x1f);
            assert_int_equal(b.data[1], 0x8b);
            assert_int_equal(b.data[3] & 0x08, 0); /* FNAME */
            assert_int_equal(b.data[4] | b.data[5] | b.data[6] | b.data[7], 0);
            assert_int_equal(b.data[9], 255);
            assert_string_equal(res.media_type, OCI_MT_LAYER_GZIP);
        }
        if (all_kinds[k] == LAYER_COMPRESSION_ZSTD) {
            assert_int_equal(b.data[0], 0x28);
            assert_int_equal(b.data[1], 0xb5);
            assert_string_equal(res.media_type, OCI_MT_LAYER_ZSTD);
        }
        free(raw.data);
        free(b.data);
        layer_tree_release(&t);
    }
    close(dirfd);
}

static void test_an_empty_layer_has_the_well_known_diff_id(void **state)
{
    for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]); k++) {
        struct layer_tree t;
        struct layer_result res;
        struct blob b;
        struct tar_list l;

        layer_tree_init(&t);
        b = write_layer(&t, AT_FDCWD, all_kinds[k], EPOCH, &res);
        assert_string_equal(res.diff_id.str, EMPTY_TAR_DIFF_ID);
        assert_int_equal(res.tar_size, 1024);
        l = read_tar(&b);
        assert_int_equal(l.n, 0);
        tar_list_free(&l);
        free(b.data);
        layer_tree_release(&t);
    }
}

static void test_the_same_input_twice_gives_identical_bytes(void **state)
{
    int dirfd = make_src_dir();

    write_file_at(dirfd, "f", "same\n");
    for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]); k++) {
        struct layer_tree t1, t2;
        struct layer_result r1, r2;
        struct blob b1, b2;

        sample_tree(&t1);
        put_src(&t1, dirfd, "f", "f", 0644);
        /* The second time in another insertion order. */
        layer_tree_init(&t2);
        put_src(&t2, dirfd, "f", "f", 0644);
        put_dir(&t2, "tmp", 01777, 0, 0);
        put_data(&t2, "bin/tool", 04755, "#!/bin/sh\n");
        put_symlink(&t2, "a/b/d", "c.txt");
        put_data(&t2, "a-b", 0600, "dash\n");
        put_dir(&t2, "A", 0700, 1000, 1000);
        put_data(&t2, "a/b/c.txt", 0640, "hello\n");
        put_data(&t2, "z.txt", 0644, "zed\n");

        b1 = write_layer(&t1, dirfd, all_kinds[k], EPOCH, &r1);
        b2 = write_layer(&t2, dirfd, all_kinds[k], EPOCH, &r2);
        assert_int_equal(b1.len, b2.len);
        assert_memory_equal(b1.data, b2.data, b1.len);
        assert_true(oci_digest_equal(&r1.digest, &r2.digest));
        assert_true(oci_digest_equal(&r1.diff_id, &r2.diff_id));
        free(b1.data);
        free(b2.data);
        layer_tree_release(&t1);
        layer_tree_release(&t2);
    }
    close(dirfd);
}

/* Compressible but not trivial content: ~20 MiB, several zstd jobs. */
#define BIG_LEN (20u << 20)
static char *big_content(void)
{
    char *p = malloc(BIG_LEN + 1);
    uint32_t x = 12345;

    assert_non_null(p);
    for (size_t i = 0; i < BIG_LEN; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = "abcdefghij \n"[(x >> 16) % 12];
    }
    p[BIG_LEN] = '\0';
    return p;
}

static void big_tree(struct layer_tree *t)
{
    layer_tree_init(t);
    struct layer_tree_entry e = {.path = strdup("big.txt"),
                                 .mode = S_IFREG | 0644,
                                 .size = BIG_LEN,
                                 .data = big_content()};
    layer_tree_put(t, &e);
    put_data(t, "small", 0644, "s");
}

/* Compresses buf with ocib's documented zstd settings and nb_workers. */
static struct blob zstd_reference(const struct blob *in, int nb_workers)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    struct blob out;
    size_t cap = ZSTD_compressBound(in->len) + 1024, r;
    ZSTD_inBuffer ib = {in->data, in->len, 0};
    ZSTD_outBuffer ob;

    assert_non_null(c);
    out.data = malloc(cap);
    assert_non_null(out.data);
    ob = (ZSTD_outBuffer){out.data, cap, 0};
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, nb_workers)));
    /* ocib pins 2 MiB jobs (layers/compress.h). */
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, 2 * 1024 * 1024)));
    /* Feed in uneven pieces, as a stream would arrive. */
    while (ib.pos < ib.size) {
        size_t piece = 777777;
        ZSTD_inBuffer part = {(const char *)in->data + ib.pos,
                              ib.size - ib.pos < piece ? ib.size - ib.pos : piece, 0};

        while (part.pos < part.size) {
            r = ZSTD_compressStream2(c, &ob, &part, ZSTD_e_continue);
            assert_false(ZSTD_isError(r));
        }
        ib.pos += part.size;
    }
    do {
        ZSTD_inBuffer none = {NULL, 0, 0};

        r = ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end);
        assert_false(ZSTD_isError(r));
    } while (r != 0);
    out.len = ob.pos;
    ZSTD_freeCCtx(c);
    return out;
}

/* ocib sizes its zstd worker pool from the number of online CPUs (capped at
 * 4), so the same spec builds on a laptop and a 64-core runner.  The layer
 * digest must not change with it.  sched_setaffinity does not change
 * sysconf(_SC_NPROCESSORS_ONLN), so a run pinned to one CPU still uses the
 * same worker count; the decisive check is therefore against libzstd itself
 * with 1, 2 and 4 workers, fed the same tar. */
static void test_zstd_bytes_do_not_depend_on_the_number_of_cpus(void **state)
{
    struct layer_tree t;
    struct layer_result rz, rn;
    struct blob z, tar;
    static const int workers[] = {1, 2, 4};

    big_tree(&t);
    z = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_ZSTD, EPOCH, &rz);
    layer_tree_release(&t);
    big_tree(&t);
    tar = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_NONE, EPOCH, &rn);
    layer_tree_release(&t);
    assert_true(oci_digest_equal(&rz.diff_id, &rn.diff_id));
    assert_true(tar.len > BIG_LEN);

    for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++) {
        struct blob ref = zstd_reference(&tar, workers[i]);

        if (ref.len != z.len || memcmp(ref.data, z.data, z.len))
            fail_msg("ocib's zstd layer (%zu bytes) differs from libzstd with %d worker(s) "
                     "(%zu bytes)",
                     z.len, workers[i], ref.len);
        free(ref.data);
    }

    /* And a whole layer written by a process confined to one CPU. */
    {
        cpu_set_t one;
        int pipefd[2];
        pid_t pid;
        struct oci_digest child_digest = {""};
        int status;

        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct layer_result rc;
            struct blob bc;

            close(pipefd[0]);
            CPU_ZERO(&one);
            CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
            if (sched_setaffinity(0, sizeof(one), &one) < 0)
                _exit(2);
            big_tree(&t);
            bc = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_ZSTD, EPOCH, &rc);
            if (write(pipefd[1], rc.digest.str, sizeof(rc.digest.str)) !=
                (ssize_t)sizeof(rc.digest.str))
                _exit(3);
            free(bc.data);
            layer_tree_release(&t);
            _exit(0);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], child_digest.str, sizeof(child_digest.str)),
                         (ssize_t)sizeof(child_digest.str));
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_string_equal(child_digest.str, rz.digest.str);
    }
    free(z.data);
    free(tar.data);
}

static void test_path_normalise_cleans_destination_paths(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/a//b/", "a/b"},
        {"./x", "x"},
        {"a/./b", "a/b"},
        {"///usr/bin", "usr/bin"},
        {"a", "a"},
        {"x/.", "x"},
        {"..a/b..", "..a/b.."},
        {".hidden", ".hidden"},
        {"a/.../b", "a/.../b"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        char *out = (char *)"unset";

        if (layer_path_normalise(cases[i].in, &out, &err) < 0)
            fail_msg("\"%s\": %s", cases[i].in, err.msg);
        if (!out || strcmp(out, cases[i].want))
            fail_msg("\"%s\" gave \"%s\", expected \"%s\"", cases[i].in,
                     out ? out : "(null)", cases[i].want);
        free(out);
    }
}

static void test_path_normalise_gives_null_for_the_root(void **state)
{
    static const char *const roots[] = {"/", "", ".", "./", "//./"};

    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        char *out = (char *)"unset";

        assert_int_equal(layer_path_normalise(roots[i], &out, &err), 0);
        if (out)
            fail_msg("\"%s\" gave \"%s\", expected NULL", roots[i], out);
    }
}

static void test_path_normalise_refuses_dotdot(void **state)
{
    static const char *const bad[] = {"..", "../etc", "a/../b", "/a/..", "a/b/../../.."};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ocib_error err = OCIB_ERROR_INIT;
        char *out = (char *)"unset";
        char want[128];

        if (layer_path_normalise(bad[i], &out, &err) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        snprintf(want, sizeof(want), "path '%s' contains '..'", bad[i]);
        assert_string_equal(err.msg, want);
        assert_int_equal(err.code, OCIB_EXIT_USAGE);
    }
}

static void test_path_normalise_refuses_over_long_paths(void **state)
{
    char *p = malloc(5000);
    struct ocib_error err = OCIB_ERROR_INIT;
    char *out = NULL;

    assert_non_null(p);
    memset(p, 'a', 4999);
    p[4999] = '\0';
    assert_int_equal(layer_path_normalise(p, &out, &err), -1);
    assert_non_null(strstr(err.msg, "is longer than 4096 bytes"));
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    free(p);
}

static void test_long_paths_survive_through_pax_records(void **state)
{
    struct layer_tree t;
    struct layer_result res;
    struct blob b;
    struct tar_list l;
    char path[400];

    memset(path, 'p', sizeof(path));
    path[99] = '/';
    path[199] = '/';
    path[sizeof(path) - 1] = '\0';
    layer_tree_init(&t);
    put_data(&t, path, 0644, "deep");
    b = write_layer(&t, AT_FDCWD, LAYER_COMPRESSION_GZIP, EPOCH, &res);
    l = read_tar(&b);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[2].path, path);
    assert_string_equal(l.items[2].data, "deep");
    assert_int_equal(l.items[2].mtime, EPOCH);
    tar_list_free(&l);
    free(b.data);
    layer_tree_release(&t);
}

/* Adds one entry through layer_writer_add_fd with a declared size that does
 * not match the file, and returns the error. */
static void add_fd_with_size(uint64_t declared, const char *content, char *msg,
                             size_t msg_size)
{
    char tmpl[] = "layer-XXXXXX";
    int out = mkstemp(tmpl);
    int fd;
    struct layer_writer *w = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_entry e = {
        .path = "srv/data.bin", .mode = S_IFREG | 0644, .size = declared};

    assert_true(out >= 0);
    write_file_at(AT_FDCWD, "content", content);
    fd = open("content", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(layer_writer_new(out, LAYER_COMPRESSION_GZIP, EPOCH, &w, &err), 0);
    assert_int_equal(layer_writer_add_fd(w, &e, fd, NULL, &err), -1);
    snprintf(msg, msg_size, "%s", err.msg);
    layer_writer_free(w);
    close(fd);
    close(out);
    unlink(tmpl);
    unlink("content");
}

static void test_a_file_that_shrank_while_read_is_reported(void **state)
{
    char msg[OCIB_ERROR_MAX];

    add_fd_with_size(100, "only 19 bytes here\n", msg, sizeof(msg));
    assert_string_equal(msg, "'srv/data.bin' shrank while being read");
}

static void test_a_file_that_grew_while_read_is_reported(void **state)
{
    char msg[OCIB_ERROR_MAX];

    add_fd_with_size(5, "only 19 bytes here\n", msg, sizeof(msg));
    assert_string_equal(msg, "'srv/data.bin' grew while being read");
}

static void test_a_source_file_changed_since_listing_fails_the_layer(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_writer *w = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    char tmpl[] = "layer-XXXXXX";
    int out = mkstemp(tmpl);

    assert_true(out >= 0);
    write_file_at(dirfd, "f", "short\n");
    layer_tree_init(&t);
    put_src(&t, dirfd, "app/f", "f", 0644);
    write_file_at(dirfd, "f", "much longer than when it was listed\n");
    assert_int_equal(layer_writer_new(out, LAYER_COMPRESSION_NONE, EPOCH, &w, &err), 0);
    assert_int_equal(layer_tree_write(&t, dirfd, w, &err), -1);
    assert_string_equal(err.msg, "'app/f' grew while being read");
    layer_writer_free(w);
    layer_tree_release(&t);
    close(out);
    unlink(tmpl);
    close(dirfd);
}

static void test_a_source_that_became_a_symlink_is_not_followed(void **state)
{
    int dirfd = make_src_dir();
    struct layer_tree t;
    struct layer_writer *w = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    char tmpl[] = "layer-XXXXXX";
    int out = mkstemp(tmpl);

    assert_true(out >= 0);
    write_file_at(dirfd, "f", "content\n");
    layer_tree_init(&t);
    put_src(&t, dirfd, "app/f", "f", 0644);
    assert_int_equal(unlinkat(dirfd, "f", 0), 0);
    assert_int_equal(symlinkat("/etc/passwd", dirfd, "f"), 0);
    assert_int_equal(layer_writer_new(out, LAYER_COMPRESSION_NONE, EPOCH, &w, &err), 0);
    assert_int_equal(layer_tree_write(&t, dirfd, w, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open 'f'"));
    layer_writer_free(w);
    layer_tree_release(&t);
    close(out);
    unlink(tmpl);
    close(dirfd);
}

static void test_a_regular_file_without_content_is_refused(void **state)
{
    char tmpl[] = "layer-XXXXXX";
    int out = mkstemp(tmpl);
    struct layer_writer *w = NULL;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_entry e = {.path = "f", .mode = S_IFREG | 0644, .size = 3};

    assert_true(out >= 0);
    assert_int_equal(layer_writer_new(out, LAYER_COMPRESSION_NONE, EPOCH, &w, &err), 0);
    assert_int_equal(layer_writer_add(w, &e, &err), -1);
    assert_string_equal(err.msg, "f: internal error: file content missing");
    layer_writer_free(w);
    close(out);
    unlink(tmpl);
}

static void test_compression_names_parse_and_unknown_ones_are_usage_errors(void **state)
{
    enum layer_compression c = LAYER_COMPRESSION_NONE;
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(layer_compression_parse("gzip", &c, &err), 0);
    assert_int_equal(c, LAYER_COMPRESSION_GZIP);
    assert_int_equal(layer_compression_parse("zstd", &c, &err), 0);
    assert_int_equal(c, LAYER_COMPRESSION_ZSTD);
    assert_int_equal(layer_compression_parse("xz", &c, &err), -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    assert_string_equal(err.msg, "invalid compression 'xz': expected gzip or zstd");
    assert_string_equal(layer_compression_media_type(LAYER_COMPRESSION_GZIP),
                        OCI_MT_LAYER_GZIP);
    assert_string_equal(layer_compression_media_type(LAYER_COMPRESSION_ZSTD),
                        OCI_MT_LAYER_ZSTD);
    assert_non_null(
        strstr(layer_compression_settings(LAYER_COMPRESSION_GZIP), "zlib-level=6"));
    assert_non_null(strstr(layer_compression_settings(LAYER_COMPRESSION_ZSTD), "level=3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_entries_are_sorted_bytewise_with_parents_before_contents),
        TEMPDIR_TEST(test_a_lone_deep_file_gets_all_its_parent_directories),
        TEMPDIR_TEST(test_explicit_parent_directory_keeps_its_own_mode_and_owner),
        TEMPDIR_TEST(test_owners_are_numeric_without_names_and_times_are_the_epoch),
        TEMPDIR_TEST(test_mtime_zero_is_written_as_zero),
        TEMPDIR_TEST(test_modes_types_and_symlink_targets_are_kept),
        TEMPDIR_TEST(test_a_later_put_for_the_same_path_wins),
        TEMPDIR_TEST(test_files_sharing_an_inode_become_a_hardlink_to_the_first_path),
        TEMPDIR_TEST(test_one_file_copied_to_two_places_gives_two_files),
        TEMPDIR_TEST(test_writing_records_each_source_file_content_digest),
        TEMPDIR_TEST(test_a_real_hardlink_in_the_source_is_kept_as_one),
        TEMPDIR_TEST(test_digests_match_the_bytes_for_every_compression),
        TEMPDIR_TEST(test_an_empty_layer_has_the_well_known_diff_id),
        TEMPDIR_TEST(test_the_same_input_twice_gives_identical_bytes),
        TEMPDIR_TEST(test_zstd_bytes_do_not_depend_on_the_number_of_cpus),
        TEMPDIR_TEST(test_path_normalise_cleans_destination_paths),
        TEMPDIR_TEST(test_path_normalise_gives_null_for_the_root),
        TEMPDIR_TEST(test_path_normalise_refuses_dotdot),
        TEMPDIR_TEST(test_path_normalise_refuses_over_long_paths),
        TEMPDIR_TEST(test_long_paths_survive_through_pax_records),
        TEMPDIR_TEST(test_a_file_that_shrank_while_read_is_reported),
        TEMPDIR_TEST(test_a_file_that_grew_while_read_is_reported),
        TEMPDIR_TEST(test_a_source_file_changed_since_listing_fails_the_layer),
        TEMPDIR_TEST(test_a_source_that_became_a_symlink_is_not_followed),
        TEMPDIR_TEST(test_a_regular_file_without_content_is_refused),
        TEMPDIR_TEST(test_compression_names_parse_and_unknown_ones_are_usage_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
