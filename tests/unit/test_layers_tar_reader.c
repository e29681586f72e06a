/*
 * Unit tests for layers/tar_reader: a layer tar is read back entry by entry
 * with the metadata a diff compares (names, types, modes, owners, mtimes,
 * link targets, xattrs) and the sha256 of each file's content, whatever the
 * compression, and a damaged stream is an error, never a short listing.
 * Tars are written in memory with libarchive, as other tools would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "audit/diff.h"
#include "layers/tar_reader.h"
#include "tar_fixture.h"
#include "tempdir.h"

struct mem {
    char *buf;
    size_t len;
};

/* Writes the entries as a tar compressed with filter (ARCHIVE_FILTER_*). */
static struct mem write_tar(const struct tar_fixture_entry *es, size_t n, int filter)
{
    struct archive *a = archive_write_new();
    size_t cap = 16 * 1024 * 1024, used = 0;
    struct mem m = {malloc(cap), 0};

    assert_non_null(m.buf);
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, m.buf, cap, &used), ARCHIVE_OK);
    assert_int_equal(tar_fixture_write(a, es, n), 0);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    m.len = used;
    return m;
}

static void digest_of(const void *buf, size_t len, char ret[80])
{
    char hex[SHA256_HEX_LEN + 1];

    sha256_hex(buf, len, hex);
    snprintf(ret, 80, "sha256:%s", hex);
}

static const struct tar_fixture_entry sample[] = {
    {.name = "./etc/", .type = AE_IFDIR, .perm = 0755, .mtime = 100},
    {.name = "./etc/app.conf",
     .type = AE_IFREG,
     .perm = 0640,
     .uid = 1000,
     .gid = 100,
     .mtime = 200,
     .data = "x=1\n",
     .xattr_name = "user.note",
     .xattr_value = "hello",
     .uname = "app"},
    {.name = "./etc/link",
     .type = AE_IFLNK,
     .perm = 0777,
     .mtime = 300,
     .link = "app.conf"},
    {.name = "./etc/hard",
     .type = AE_IFREG,
     .perm = 0640,
     .mtime = 200,
     .hardlink = "./etc/app.conf"},
    {.name = "/abs/empty", .type = AE_IFREG, .perm = 04755, .mtime = 400, .data = ""},
};

static void check_sample(int filter)
{
    struct mem m = write_tar(sample, 5, filter);
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r = NULL;
    struct tar_entry e;
    char want[80];

    assert_int_equal(tar_reader_open_memory(m.buf, m.len, &r, &err), 0);

    assert_int_equal(tar_reader_next(r, &e, &err), 1);
    assert_string_equal(e.path, "etc");
    assert_string_equal(e.name, "./etc/");
    assert_int_equal(e.type, 'd');
    assert_int_equal(e.mode, 0755);
    assert_int_equal(e.mtime, 100);
    assert_int_equal(e.seq, 0);
    assert_string_equal(e.content.str, "");
    tar_entry_release(&e);

    assert_int_equal(tar_reader_next(r, &e, &err), 1);
    assert_string_equal(e.path, "etc/app.conf");
    assert_int_equal(e.type, '-');
    assert_int_equal(e.mode, 0640);
    assert_int_equal(e.uid, 1000);
    assert_int_equal(e.gid, 100);
    assert_string_equal(e.uname, "app");
    assert_null(e.gname);
    assert_int_equal(e.size, 4);
    assert_string_equal(e.xattrs, "user.note=hello");
    digest_of("x=1\n", 4, want);
    assert_string_equal(e.content.str, want);
    tar_entry_release(&e);

    assert_int_equal(tar_reader_next(r, &e, &err), 1);
    assert_int_equal(e.type, 'l');
    assert_string_equal(e.link, "app.conf");
    assert_null(e.xattrs);
    tar_entry_release(&e);

    assert_int_equal(tar_reader_next(r, &e, &err), 1);
    assert_int_equal(e.type, 'h');
    assert_string_equal(e.link, "./etc/app.conf");
    tar_entry_release(&e);

    assert_int_equal(tar_reader_next(r, &e, &err), 1);
    assert_string_equal(e.path, "abs/empty");
    assert_int_equal(e.mode, 04755);
    digest_of("", 0, want);
    assert_string_equal(e.content.str, want);
    assert_int_equal(e.seq, 4);
    tar_entry_release(&e);

    assert_int_equal(tar_reader_next(r, &e, &err), 0);
    /* The end stays the end. */
    assert_int_equal(tar_reader_next(r, &e, &err), 0);
    assert_string_equal(err.msg, "");
    assert_true(strlen(tar_reader_format(r)) > 0);
    tar_reader_free(r);
    free(m.buf);
}

static void reads_every_field_of_a_plain_tar(void **state)
{
    check_sample(ARCHIVE_FILTER_NONE);
}

static void reads_gzip_layers(void **state)
{
    check_sample(ARCHIVE_FILTER_GZIP);
}

static void reads_zstd_layers(void **state)
{
    check_sample(ARCHIVE_FILTER_ZSTD);
}

/* Content larger than the read buffer is hashed whole, in pieces. */
static void hashes_large_content_in_chunks(void **state)
{
    size_t len = 3 * 1024 * 1024 + 7;
    char *data = malloc(len);
    struct tar_fixture_entry e = {
        .name = "big", .type = AE_IFREG, .perm = 0644, .data = data, .data_len = len};
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r = NULL;
    struct tar_entry te;
    struct mem m;
    char want[80];

    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 31 + i / 4096);
    m = write_tar(&e, 1, ARCHIVE_FILTER_GZIP);
    assert_int_equal(tar_reader_open_memory(m.buf, m.len, &r, &err), 0);
    assert_int_equal(tar_reader_next(r, &te, &err), 1);
    digest_of(data, len, want);
    assert_string_equal(te.content.str, want);
    assert_int_equal(te.size, (int64_t)len);
    tar_entry_release(&te);
    assert_int_equal(tar_reader_next(r, &te, &err), 0);
    tar_reader_free(r);
    free(m.buf);
    free(data);
}

/* A layer cut short in the middle of a file is an error, not a short file. */
static void truncated_layer_is_an_error(void **state)
{
    char data[8192];
    struct tar_fixture_entry es[] = {
        {.name = "a",
         .type = AE_IFREG,
         .perm = 0644,
         .data = data,
         .data_len = sizeof(data)},
        {.name = "b", .type = AE_IFREG, .perm = 0644, .data = "b"},
    };
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r = NULL;
    struct tar_entry e;
    struct mem m;
    int got;

    memset(data, 'x', sizeof(data));
    m = write_tar(es, 2, ARCHIVE_FILTER_NONE);
    assert_int_equal(tar_reader_open_memory(m.buf, 512 + 4096, &r, &err), 0);
    got = tar_reader_next(r, &e, &err);
    if (got == 1)
        tar_entry_release(&e);
    assert_int_equal(got, -1);
    assert_non_null(strstr(err.msg, "'a'"));
    tar_reader_free(r);
    free(m.buf);
}

static void garbage_is_an_error(void **state)
{
    static const char junk[2048] = "this is not a tar archive at all";
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r = NULL;
    struct tar_entry e;

    if (tar_reader_open_memory(junk, sizeof(junk), &r, &err) == 0) {
        assert_int_equal(tar_reader_next(r, &e, &err), -1);
        tar_reader_free(r);
    }
    assert_true(strlen(err.msg) > 0);
}

static void missing_file_names_the_path(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r = NULL;

    assert_int_equal(tar_reader_open_file("no/such/layer.tar", &r, &err), -1);
    assert_null(r);
    assert_non_null(strstr(err.msg, "no/such/layer.tar"));
}

/* ---- comparing two layers (builder/diff on tar_reader) ------------------ */

static void save(const struct mem *m, const char *path)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(m->buf, 1, m->len, f), m->len);
    assert_int_equal(fclose(f), 0);
    free(m->buf);
}

static const struct image_difference *find(const struct image_diff *d, const char *path,
                                           const char *field)
{
    for (size_t i = 0; i < d->n; i++)
        if ((!path || (d->items[i].path && !strcmp(d->items[i].path, path))) &&
            !strcmp(d->items[i].field, field))
            return &d->items[i];
    return NULL;
}

static void layer_diff_names_causes(void **state)
{
    struct tar_fixture_entry a[] = {
        {.name = "d", .type = AE_IFDIR, .perm = 0755},
        {.name = "d/f", .type = AE_IFREG, .perm = 0644, .data = "one"},
        {.name = "d/g", .type = AE_IFREG, .perm = 0644, .data = "same", .uid = 0},
        {.name = "d/h", .type = AE_IFREG, .perm = 0644, .data = "same"},
    };
    struct tar_fixture_entry b[4];
    struct ocib_error err = OCIB_ERROR_INIT;
    struct image_diff d = {0};
    const struct image_difference *x;
    char want[80];

    memcpy(b, a, sizeof(a));
    b[0].mtime = 1700000000;
    b[1].data = "two";
    b[1].mtime = 1700000001;
    b[2].uid = 1000;
    b[2].mtime = 1700000002;
    b[3].perm = 0600;
    b[3].mtime = 1700000003;
    {
        struct mem ma = write_tar(a, 4, ARCHIVE_FILTER_GZIP);
        struct mem mb = write_tar(b, 4, ARCHIVE_FILTER_ZSTD);

        save(&ma, "a.tgz");
        save(&mb, "b.tzst");
    }
    assert_int_equal(image_diff_layer_blobs("a.tgz", "b.tzst", 3, 0, &d, &err), 0);
    x = find(&d, "d/f", "content");
    assert_non_null(x);
    digest_of("one", 3, want);
    assert_string_equal(x->a, want);
    digest_of("two", 3, want);
    assert_string_equal(x->b, want);
    assert_string_equal(x->cause, IMAGE_CAUSE_CONTENT);
    assert_int_equal(x->layer, 3);
    x = find(&d, "d/g", "uid");
    assert_non_null(x);
    assert_string_equal(x->cause, IMAGE_CAUSE_OWNER);
    x = find(&d, "d/h", "mode");
    assert_non_null(x);
    assert_string_equal(x->a, "0644");
    assert_string_equal(x->b, "0600");
    /* A is clamped (all 0), B is not: the mtimes are not clamped. */
    x = find(&d, "d", "mtime");
    assert_non_null(x);
    assert_string_equal(x->cause, IMAGE_CAUSE_MTIME);
    assert_null(find(&d, NULL, "order"));
    image_diff_release(&d);
}

static void layer_diff_sees_order_and_extra_entries(void **state)
{
    struct tar_fixture_entry a[] = {
        {.name = "a", .type = AE_IFREG, .perm = 0644, .data = "a"},
        {.name = "b", .type = AE_IFREG, .perm = 0644, .data = "b"},
        {.name = "c", .type = AE_IFREG, .perm = 0644, .data = "c"},
    };
    struct tar_fixture_entry b[] = {a[2], a[1], a[0]};
    struct tar_fixture_entry c[] = {a[0], a[1]};
    struct ocib_error err = OCIB_ERROR_INIT;
    struct image_diff d = {0};
    const struct image_difference *x;
    struct mem m;

    m = write_tar(a, 3, ARCHIVE_FILTER_NONE);
    save(&m, "a.tar");
    m = write_tar(b, 3, ARCHIVE_FILTER_NONE);
    save(&m, "b.tar");
    m = write_tar(c, 2, ARCHIVE_FILTER_NONE);
    save(&m, "c.tar");

    assert_int_equal(image_diff_layer_blobs("a.tar", "b.tar", 0, 0, &d, &err), 0);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].field, "order");
    assert_string_equal(d.items[0].cause, IMAGE_CAUSE_ORDER);
    image_diff_release(&d);

    assert_int_equal(image_diff_layer_blobs("a.tar", "c.tar", 0, 0, &d, &err), 0);
    assert_int_equal(d.n, 1);
    x = find(&d, "c", "entry");
    assert_non_null(x);
    assert_string_equal(x->a, "file");
    assert_null(x->b);
    image_diff_release(&d);

    /* The cap keeps the first differences and counts the rest. */
    assert_int_equal(image_diff_layer_blobs("b.tar", "c.tar", 0, 1, &d, &err), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.n_omitted, 1);
    assert_true(d.omitted[0].count >= 1);
    image_diff_release(&d);

    assert_int_equal(image_diff_layer_blobs("a.tar", "a.tar", 0, 0, &d, &err), 0);
    assert_true(image_diff_identical(&d));
    image_diff_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(reads_every_field_of_a_plain_tar),
        TEMPDIR_TEST(reads_gzip_layers),
        TEMPDIR_TEST(reads_zstd_layers),
        TEMPDIR_TEST(hashes_large_content_in_chunks),
        TEMPDIR_TEST(truncated_layer_is_an_error),
        TEMPDIR_TEST(garbage_is_an_error),
        TEMPDIR_TEST(missing_file_names_the_path),
        TEMPDIR_TEST(layer_diff_names_causes),
        TEMPDIR_TEST(layer_diff_sees_order_and_extra_entries),
    };

    setlocale(LC_CTYPE, "C.UTF-8");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
