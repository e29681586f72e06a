/*
 * Unit tests for oci/layout: a layout written with the writer loads back by
 * tag, an index (flat or nested) is picked by platform, the writer replaces
 * only a layout or an empty directory and leaves nothing when it is not
 * committed, and every way a layout can be wrong (no index.json, an unknown
 * tag, a blob that does not match its digest or size) is an error naming
 * the layout.  Layouts for the reader are also written by hand here, as
 * another tool would write them.
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
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "oci/digest.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/mediatype.h"
#include "tempdir.h"

/* Platforms as the command line gives them (oci_platform_parse
 * normalises: arm64's v8 is implied). */
static struct oci_platform amd64, arm64, s390x;

static int parse_platforms(void **state)
{
    return oci_platform_parse("linux/amd64", &amd64, NULL) < 0 ||
                   oci_platform_parse("linux/arm64/v8", &arm64, NULL) < 0 ||
                   oci_platform_parse("linux/s390x", &s390x, NULL) < 0
               ? -1
               : 0;
}

/* An image of one layer whose bytes are in the file layer-<seed>. */
struct fixture {
    struct oci_image img;
    struct oci_blob config, manifest;
    char layer_path[64];
    struct oci_digest layer;
};

static void write_bytes(const char *path, const void *data, size_t len)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (fs_write_file_atomic(path, data, len, 0644, &err) < 0)
        fail_msg("%s", err.msg);
}

static void make_image(struct fixture *f, const struct oci_platform *p, const char *seed)
{
    char bytes[64];
    struct oci_layer l;

    memset(f, 0, sizeof(*f));
    snprintf(bytes, sizeof(bytes), "layer bytes of %s", seed);
    snprintf(f->layer_path, sizeof(f->layer_path), "layer-%s", seed);
    write_bytes(f->layer_path, bytes, strlen(bytes));
    oci_digest_of(bytes, strlen(bytes), &f->layer);

    oci_image_init(&f->img, p);
    memset(&l, 0, sizeof(l));
    l.desc.media_type = (char *)OCI_MT_LAYER_TAR;
    l.desc.digest = f->layer;
    l.desc.size = (int64_t)strlen(bytes);
    l.diff_id = f->layer; /* an uncompressed layer: the same bytes */
    oci_image_add_layer(&f->img, &l, "1970-01-01T00:00:00Z", seed, NULL);
    oci_image_serialize(&f->img, &f->config, &f->manifest);
}

static void release_image(struct fixture *f)
{
    oci_image_release(&f->img);
    oci_blob_release(&f->config);
    oci_blob_release(&f->manifest);
}

/* Writes the images as layout dir with the writer, images[i] tagged
 * tags[i] (NULL: untagged). */
static void write_layout(const char *dir, struct fixture *images, const char *const *tags,
                         size_t n)
{
    struct oci_layout_writer w;
    struct ocib_error err = OCIB_ERROR_INIT;

    if (oci_layout_writer_begin(&w, dir, &err) < 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        if (oci_layout_writer_put_bytes(&w, &images[i].config, &err) < 0 ||
            oci_layout_writer_put_bytes(&w, &images[i].manifest, &err) < 0 ||
            oci_layout_writer_put_file(&w, images[i].layer_path, &images[i].layer, true,
                                       &err) < 0)
            fail_msg("%s", err.msg);
        oci_layout_writer_add_manifest(&w, &images[i].manifest, OCI_MT_MANIFEST, tags[i]);
    }
    if (oci_layout_writer_commit(&w, &err) < 0)
        fail_msg("%s", err.msg);
    oci_layout_writer_release(&w);
}

/* The hand-written parts of a layout. */
static void put_text(const char *dir, const char *name, const char *text)
{
    char *path = fs_path_join(dir, name);

    write_bytes(path, text, strlen(text));
    free(path);
}

static void put_blob(const char *dir, const char *data, size_t len, struct oci_digest *ret)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    char *blobs = fs_path_join(dir, "blobs/sha256");
    char *path;

    oci_digest_of(data, len, ret);
    if (fs_mkdir_p(blobs, 0755, &err) < 0)
        fail_msg("%s", err.msg);
    path = oci_layout_blob_path(dir, ret);
    write_bytes(path, data, len);
    free(path);
    free(blobs);
}

/* Puts config and manifest of f as blobs of dir. */
static void put_image_blobs(const char *dir, const struct fixture *f)
{
    struct oci_digest d;

    put_blob(dir, f->config.data, f->config.len, &d);
    put_blob(dir, f->manifest.data, f->manifest.len, &d);
}

/* An index descriptor of blob b, with a platform and a ref name if given. */
static json_t *descriptor(const char *mt, const struct oci_blob *b,
                          const struct oci_platform *p, const char *ref)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", b->digest.str,
                          "size", (json_int_t)b->len);

    if (p) {
        json_t *pj = json_pack("{s:s, s:s}", "os", p->os, "architecture", p->arch);

        /* as indexes on registries spell it */
        if (p->variant[0] || !strcmp(p->arch, "arm64"))
            json_object_set_new(pj, "variant",
                                json_string(p->variant[0] ? p->variant : "v8"));
        json_object_set_new(d, "platform", pj);
    }
    if (ref)
        json_object_set_new(d, "annotations",
                            json_pack("{s:s}", "org.opencontainers.image.ref.name", ref));
    return d;
}

/* An image index of the descriptors (reference stolen), serialised. */
static void index_of(json_t *manifests, struct oci_blob *ret)
{
    json_t *idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
                            OCI_MT_INDEX, "manifests", manifests);

    ret->data = oci_json_canonical(idx, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(idx);
}

static void put_index_json(const char *dir, json_t *manifests)
{
    struct oci_blob idx;
    char *path = fs_path_join(dir, "index.json");

    index_of(manifests, &idx);
    write_bytes(path, idx.data, idx.len);
    oci_blob_release(&idx);
    free(path);
}

static void load_ok(const char *dir, const char *tag, const struct oci_platform *p,
                    struct oci_image *ret, struct oci_blob *ret_manifest,
                    struct oci_blob *ret_config)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (oci_layout_load(dir, tag, p, ret, ret_manifest, ret_config, &err) < 0)
        fail_msg("%s", err.msg);
}

/* Loading fails with a message holding every one of needles; its kind. */
static int load_fails(const char *dir, const char *tag, const struct oci_platform *p,
                      const char *const *needles)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_image img;
    struct oci_blob m = {0}, c = {0};

    memset(&img, 0, sizeof(img));
    if (oci_layout_load(dir, tag, p, &img, &m, &c, &err) == 0) {
        oci_image_release(&img);
        oci_blob_release(&m);
        oci_blob_release(&c);
        fail_msg("loading '%s' succeeded", dir);
    }
    assert_true(err.code != 0);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.msg, needles[i]))
            fail_msg("error \"%s\" does not say \"%s\"", err.msg, needles[i]);
    return err.kind;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *arch_of(const struct oci_image *img)
{
    return oci_json_str(img->config, "architecture");
}

/* --- round trip --- */

static void test_a_written_layout_loads_back_byte_for_byte(void **state)
{
    struct fixture f;
    struct oci_image img;
    struct oci_blob m, c;
    char *buf = NULL, *blob;
    size_t len;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);

    assert_int_equal(fs_read_file("out/oci-layout", 4096, &buf, &len, NULL), 0);
    assert_string_equal(buf, "{\"imageLayoutVersion\":\"1.0.0\"}");
    free(buf);
    blob = oci_layout_blob_path("out", &f.layer);
    assert_true(fs_exists(blob));
    free(blob);

    load_ok("out", "v1", NULL, &img, &m, &c);
    assert_string_equal(m.digest.str, f.manifest.digest.str);
    assert_int_equal(m.len, f.manifest.len);
    assert_memory_equal(m.data, f.manifest.data, m.len);
    assert_string_equal(c.digest.str, f.config.digest.str);
    assert_int_equal(c.len, f.config.len);
    assert_memory_equal(c.data, f.config.data, c.len);
    assert_int_equal(img.n_layers, 1);
    assert_string_equal(img.layers[0].desc.digest.str, f.layer.str);
    assert_string_equal(img.layers[0].diff_id.str, f.layer.str);
    assert_string_equal(arch_of(&img), "amd64");
    oci_image_release(&img);
    oci_blob_release(&m);
    oci_blob_release(&c);

    /* The only image needs no tag; the outputs may be NULL. */
    load_ok("out", NULL, NULL, &img, NULL, NULL);
    assert_int_equal(img.n_layers, 1);
    oci_image_release(&img);
    release_image(&f);
}

static void test_a_layer_blob_reads_back_and_is_checked(void **state)
{
    struct fixture f;
    struct ocib_error err = OCIB_ERROR_INIT;
    char *buf = NULL, *path;
    size_t len;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);
    if (oci_layout_read_blob("out", &f.layer, 1024, &buf, &len, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(len, strlen("layer bytes of one"));
    assert_memory_equal(buf, "layer bytes of one", len);
    free(buf);
    buf = NULL;

    /* Same size, other bytes. */
    path = oci_layout_blob_path("out", &f.layer);
    assert_int_equal(chmod(path, 0644), 0);
    write_bytes(path, "LAYER BYTES OF ONE", 18);
    assert_int_equal(oci_layout_read_blob("out", &f.layer, 1024, &buf, &len, &err), -1);
    assert_null(buf);
    assert_int_equal(ocib_error_kind(&err), OCIB_ERR_INTEGRITY);
    assert_non_null(strstr(err.msg, f.layer.str));
    assert_non_null(strstr(err.msg, "'out'"));

    /* Over the cap. */
    ocib_error_clear(&err);
    assert_int_equal(oci_layout_read_blob("out", &f.layer, 4, &buf, &len, &err), -1);
    assert_non_null(strstr(err.msg, f.layer.str));
    free(path);
    release_image(&f);
}

static void test_each_tag_loads_its_own_image(void **state)
{
    struct fixture f[2];
    struct oci_image img;
    struct oci_blob m;

    make_image(&f[0], &amd64, "first");
    make_image(&f[1], &arm64, "second");
    write_layout("out", f, LIST("first", "second"), 2);

    load_ok("out", "second", NULL, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[1].manifest.digest.str);
    assert_string_equal(arch_of(&img), "arm64");
    oci_image_release(&img);
    oci_blob_release(&m);
    load_ok("out", "first", NULL, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[0].manifest.digest.str);
    oci_image_release(&img);
    oci_blob_release(&m);
    release_image(&f[0]);
    release_image(&f[1]);
}

static void test_an_unknown_tag_names_the_layout_and_the_tag(void **state)
{
    struct fixture f;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);
    load_fails("out", "v2", NULL, LIST("out/index.json", "'v2'"));
    /* A tag is never a prefix or a platform. */
    load_fails("out", "v", NULL, LIST("'v'"));
    load_fails("out", "amd64", NULL, LIST("'amd64'"));
    release_image(&f);
}

/* --- platforms --- */

static void test_an_index_of_platforms_is_picked_by_platform(void **state)
{
    struct fixture f[2];
    struct oci_image img;
    struct oci_blob m;

    make_image(&f[0], &amd64, "amd");
    make_image(&f[1], &arm64, "arm");
    assert_int_equal(mkdir("multi", 0755), 0);
    put_text("multi", "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    put_image_blobs("multi", &f[0]);
    put_image_blobs("multi", &f[1]);
    put_index_json("multi",
                   json_pack("[o, o]",
                             descriptor(OCI_MT_MANIFEST, &f[0].manifest, &amd64, NULL),
                             descriptor(OCI_MT_MANIFEST, &f[1].manifest, &arm64, NULL)));

    load_ok("multi", NULL, &arm64, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[1].manifest.digest.str);
    assert_string_equal(arch_of(&img), "arm64");
    oci_image_release(&img);
    oci_blob_release(&m);
    load_ok("multi", NULL, &amd64, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[0].manifest.digest.str);
    oci_image_release(&img);
    oci_blob_release(&m);

    load_fails("multi", NULL, &s390x, LIST("multi/index.json", "linux/s390x"));
    release_image(&f[0]);
    release_image(&f[1]);
}

static void test_a_tagged_nested_index_is_descended_by_platform(void **state)
{
    struct fixture f[2];
    struct oci_blob nested, m;
    struct oci_digest d;
    struct oci_image img;

    make_image(&f[0], &amd64, "amd");
    make_image(&f[1], &arm64, "arm");
    assert_int_equal(mkdir("nested", 0755), 0);
    put_text("nested", "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    put_image_blobs("nested", &f[0]);
    put_image_blobs("nested", &f[1]);
    index_of(json_pack("[o, o]", descriptor(OCI_MT_MANIFEST, &f[0].manifest, &amd64, NULL),
                       descriptor(OCI_MT_MANIFEST, &f[1].manifest, &arm64, NULL)),
             &nested);
    put_blob("nested", nested.data, nested.len, &d);
    put_index_json("nested",
                   json_pack("[o]", descriptor(OCI_MT_INDEX, &nested, NULL, "2.0")));

    load_ok("nested", "2.0", &arm64, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[1].manifest.digest.str);
    assert_string_equal(arch_of(&img), "arm64");
    oci_image_release(&img);
    oci_blob_release(&m);
    load_ok("nested", "2.0", &amd64, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[0].manifest.digest.str);
    oci_image_release(&img);
    oci_blob_release(&m);
    load_fails("nested", "2.0", &s390x, LIST("linux/s390x"));
    oci_blob_release(&nested);
    release_image(&f[0]);
    release_image(&f[1]);
}

/* --- broken layouts --- */

static void test_a_directory_without_index_json_is_not_a_layout(void **state)
{
    assert_int_equal(mkdir("empty", 0755), 0);
    put_text("empty", "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    load_fails("empty", NULL, NULL, LIST("oci:empty", "not an OCI image layout"));
    load_fails("absent", "v1", NULL, LIST("oci:absent", "not an OCI image layout"));
}

static void test_an_index_json_that_is_not_an_index_is_refused(void **state)
{
    struct fixture f;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);
    /* The manifest where the index should be. */
    put_text("out", "index.json", f.manifest.data);
    load_fails("out", "v1", NULL, LIST("out/index.json"));
    put_text("out", "index.json", "{\"schemaVersion\":2,\"manifests\":[]}");
    load_fails("out", NULL, NULL, LIST("out/index.json", "no images"));
    put_text("out", "index.json", "{not json");
    load_fails("out", NULL, NULL, LIST("out/index.json"));
    release_image(&f);
}

/* Corrupts the blob d of layout dir: same size, one byte changed. */
static void corrupt_blob(const char *dir, const struct oci_digest *d)
{
    char *path = oci_layout_blob_path(dir, d), *buf = NULL;
    size_t len;

    assert_int_equal(fs_read_file(path, 1 << 20, &buf, &len, NULL), 0);
    assert_true(len > 10);
    buf[len / 2] ^= 0x20;
    assert_int_equal(chmod(path, 0644), 0);
    write_bytes(path, buf, len);
    free(buf);
    free(path);
}

static void
test_a_manifest_or_config_that_does_not_match_its_digest_is_refused(void **state)
{
    struct fixture f;
    struct oci_image img;
    char *path;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);
    corrupt_blob("out", &f.config.digest);
    assert_int_equal(load_fails("out", "v1", NULL, LIST("oci:out", f.config.digest.str)),
                     OCIB_ERR_INTEGRITY);

    write_layout("out", &f, LIST("v1"), 1); /* whole again */
    load_ok("out", "v1", NULL, &img, NULL, NULL);
    oci_image_release(&img);
    corrupt_blob("out", &f.manifest.digest);
    assert_int_equal(load_fails("out", "v1", NULL, LIST("oci:out", f.manifest.digest.str)),
                     OCIB_ERR_INTEGRITY);

    /* A missing blob names it. */
    path = oci_layout_blob_path("out", &f.manifest.digest);
    assert_int_equal(unlink(path), 0);
    load_fails("out", "v1", NULL, LIST("oci:out", f.manifest.digest.str));
    free(path);
    release_image(&f);
}

static void test_a_descriptor_with_the_wrong_size_is_refused(void **state)
{
    struct fixture f;
    struct oci_blob longer;

    make_image(&f, &amd64, "one");
    assert_int_equal(mkdir("out", 0755), 0);
    put_text("out", "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    put_image_blobs("out", &f);
    /* The right digest with one byte more. */
    longer = f.manifest;
    longer.len++;
    put_index_json("out",
                   json_pack("[o]", descriptor(OCI_MT_MANIFEST, &longer, NULL, "v1")));
    assert_int_equal(load_fails("out", "v1", NULL, LIST("oci:out", f.manifest.digest.str)),
                     OCIB_ERR_INTEGRITY);
    release_image(&f);
}

/* --- the writer --- */

static size_t count_names(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_an_uncommitted_layout_leaves_nothing(void **state)
{
    struct fixture f;
    struct oci_layout_writer w;
    struct ocib_error err = OCIB_ERROR_INIT;

    make_image(&f, &amd64, "one"); /* the layer file */
    assert_int_equal(count_names("."), 1);
    assert_int_equal(oci_layout_writer_begin(&w, "out", &err), 0);
    assert_int_equal(oci_layout_writer_put_bytes(&w, &f.config, &err), 0);
    oci_layout_writer_add_manifest(&w, &f.manifest, OCI_MT_MANIFEST, "v1");
    oci_layout_writer_release(&w);
    assert_false(fs_exists("out"));
    assert_int_equal(count_names("."), 1);
    release_image(&f);
}

static void test_put_file_with_verify_refuses_a_wrong_file_and_keeps_nothing(void **state)
{
    struct fixture f;
    struct oci_layout_writer w;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_digest wrong;

    make_image(&f, &amd64, "one");
    oci_digest_of("other bytes", 11, &wrong);
    assert_int_equal(oci_layout_writer_begin(&w, "out", &err), 0);
    assert_int_equal(oci_layout_writer_put_file(&w, f.layer_path, &wrong, true, &err), -1);
    assert_non_null(strstr(err.msg, wrong.str));
    assert_non_null(strstr(err.msg, f.layer_path));
    assert_int_equal(count_names(w.blobs), 0);
    oci_layout_writer_release(&w);
    release_image(&f);
}

static void test_a_blob_copy_shares_no_inode_with_its_source(void **state)
{
    struct fixture f;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct stat src, dst;
    char *path, *buf = NULL;
    size_t len;

    make_image(&f, &amd64, "one");
    assert_int_equal(fs_mkdir_p("blobs/sha256", 0755, NULL), 0);
    for (int verify = 0; verify < 2; verify++) {
        if (oci_blob_copy_file(f.layer_path, "blobs/sha256", &f.layer, verify, &err) < 0)
            fail_msg("%s", err.msg);
        path = oci_layout_blob_path(".", &f.layer);
        assert_int_equal(stat(f.layer_path, &src), 0);
        assert_int_equal(stat(path, &dst), 0);
        assert_true(src.st_ino != dst.st_ino);
        assert_int_equal(src.st_nlink, 1);
        /* Writing the copy leaves the source as it was. */
        assert_int_equal(chmod(path, 0644), 0);
        write_bytes(path, "scribble", 8);
        assert_int_equal(fs_read_file(f.layer_path, 1024, &buf, &len, NULL), 0);
        assert_string_equal(buf, "layer bytes of one");
        free(buf);
        buf = NULL;
        assert_int_equal(unlink(path), 0);
        free(path);
    }
    release_image(&f);
}

static void test_commit_replaces_a_layout_or_an_empty_directory_only(void **state)
{
    struct fixture f[2];
    struct oci_layout_writer w;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_blob m;
    struct oci_image img;

    make_image(&f[0], &amd64, "old");
    make_image(&f[1], &amd64, "new");
    write_layout("out", &f[0], LIST("old"), 1);
    write_layout("out", &f[1], LIST("new"), 1);
    load_ok("out", "new", NULL, &img, &m, NULL);
    assert_string_equal(m.digest.str, f[1].manifest.digest.str);
    oci_image_release(&img);
    oci_blob_release(&m);
    load_fails("out", "old", NULL, LIST("'old'"));
    assert_int_equal(count_names("."), 3); /* out and the two layer files */

    assert_int_equal(mkdir("empty", 0755), 0);
    write_layout("empty", &f[0], LIST("v1"), 1);
    load_ok("empty", "v1", NULL, &img, NULL, NULL);
    oci_image_release(&img);

    /* Anything else is refused and left as it is. */
    assert_int_equal(mkdir("src", 0755), 0);
    put_text("src", "main.c", "int main;");
    assert_int_equal(oci_layout_writer_begin(&w, "src", &err), -1);
    assert_non_null(strstr(err.msg, "'src'"));
    assert_non_null(strstr(err.msg, "not an OCI layout"));
    oci_layout_writer_release(&w);
    assert_int_equal(count_names("src"), 1);
    assert_true(fs_exists("src/main.c"));

    ocib_error_clear(&err);
    put_text(".", "file", "x");
    assert_int_equal(oci_layout_writer_begin(&w, "file", &err), -1);
    assert_non_null(strstr(err.msg, "'file'"));
    oci_layout_writer_release(&w);
    assert_int_equal(count_names("."), 6); /* out, empty, src, file, two layers */
    release_image(&f[0]);
    release_image(&f[1]);
}

/* oci-layout must be there and name a 1.x version. */
static void test_a_wrong_or_missing_oci_layout_is_refused(void **state)
{
    struct fixture f;

    make_image(&f, &amd64, "one");
    write_layout("out", &f, LIST("v1"), 1);
    put_text("out", "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}");
    load_fails("out", "v1", NULL, LIST("oci:out", "2.0.0"));
    put_text("out", "oci-layout", "{}");
    load_fails("out", "v1", NULL, LIST("oci:out", "imageLayoutVersion"));
    assert_int_equal(unlink("out/oci-layout"), 0);
    load_fails("out", "v1", NULL, LIST("oci:out", "not an OCI image layout"));
    release_image(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_a_wrong_or_missing_oci_layout_is_refused),
        TEMPDIR_TEST(test_a_written_layout_loads_back_byte_for_byte),
        TEMPDIR_TEST(test_a_layer_blob_reads_back_and_is_checked),
        TEMPDIR_TEST(test_each_tag_loads_its_own_image),
        TEMPDIR_TEST(test_an_unknown_tag_names_the_layout_and_the_tag),
        TEMPDIR_TEST(test_an_index_of_platforms_is_picked_by_platform),
        TEMPDIR_TEST(test_a_tagged_nested_index_is_descended_by_platform),
        TEMPDIR_TEST(test_a_directory_without_index_json_is_not_a_layout),
        TEMPDIR_TEST(test_an_index_json_that_is_not_an_index_is_refused),
        TEMPDIR_TEST(test_a_manifest_or_config_that_does_not_match_its_digest_is_refused),
        TEMPDIR_TEST(test_a_descriptor_with_the_wrong_size_is_refused),
        TEMPDIR_TEST(test_an_uncommitted_layout_leaves_nothing),
        TEMPDIR_TEST(test_put_file_with_verify_refuses_a_wrong_file_and_keeps_nothing),
        TEMPDIR_TEST(test_a_blob_copy_shares_no_inode_with_its_source),
        TEMPDIR_TEST(test_commit_replaces_a_layout_or_an_empty_directory_only),
    };

    return cmocka_run_group_tests(tests, parse_platforms, NULL);
}
