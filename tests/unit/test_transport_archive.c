/*
 * Unit tests for transport/archive: a docker-archive ocib writes is the
 * `docker save` format of Docker 25 (manifest.json beside an OCI layout)
 * and loads back as the same image; the classic format (<id>/layer.tar) is
 * read too; and an archive whose manifest.json names a file outside the
 * archive or one it lacks, or whose blobs do not match their digests, is
 * refused naming what is wrong.  Hand-made archives are written with
 * libarchive (tar_fixture.h), as another tool would write them.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "cache/blobs.h"
#include "oci/digest.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "transport/archive.h"
#include "tar_fixture.h"
#include "tempdir.h"

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct oci_platform amd64 = {"linux", "amd64", ""};

/* An image whose layers' bytes are in the files layer-<seed>-<i>. */
struct fixture {
    struct oci_image img;
    struct oci_blob config, manifest;
    char *paths[4];
    bool verify[4];
    char *bytes[4];
};

static void write_bytes(const char *path, const void *data, size_t len)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (fs_write_file_atomic(path, data, len, 0644, &err) < 0)
        fail_msg("%s", err.msg);
}

/* n layers (at most 4); layer i is the bytes "<seed> layer <i>", or gzip's
 * magic and those bytes when gzip is set. */
static void make_image(struct fixture *f, const char *seed, size_t n, bool gzip)
{
    memset(f, 0, sizeof(*f));
    oci_image_init(&f->img, &amd64);
    for (size_t i = 0; i < n; i++) {
        struct oci_layer l;

        assert_true(
            asprintf(&f->bytes[i], "%s%s layer %zu", gzip ? "\x1f\x8b" : "", seed, i) > 0);
        assert_true(asprintf(&f->paths[i], "layer-%s-%zu", seed, i) > 0);
        write_bytes(f->paths[i], f->bytes[i], strlen(f->bytes[i]));
        f->verify[i] = true;
        memset(&l, 0, sizeof(l));
        l.desc.media_type = (char *)(gzip ? OCI_MT_LAYER_GZIP : OCI_MT_LAYER_TAR);
        oci_digest_of(f->bytes[i], strlen(f->bytes[i]), &l.desc.digest);
        l.desc.size = (int64_t)strlen(f->bytes[i]);
        l.diff_id = l.desc.digest;
        oci_image_add_layer(&f->img, &l, "1970-01-01T00:00:00Z", seed, NULL);
    }
    oci_image_serialize(&f->img, &f->config, &f->manifest);
}

static void release_image(struct fixture *f)
{
    oci_image_release(&f->img);
    oci_blob_release(&f->config);
    oci_blob_release(&f->manifest);
    for (size_t i = 0; i < 4; i++) {
        free(f->paths[i]);
        free(f->bytes[i]);
    }
}

static void write_archive(const char *path, struct fixture *f, const char *const *tags)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    size_t n = 0;

    while (tags && tags[n])
        n++;
    if (docker_archive_write(path, &f->img, &f->config, &f->manifest, OCI_MT_MANIFEST,
                             f->paths, f->verify, (char *const *)tags, n, 1700000000,
                             &err) < 0)
        fail_msg("%s", err.msg);
}

static void open_cache(struct cache *c)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (cache_open(c, "cache", &err) < 0)
        fail_msg("%s", err.msg);
}

static void load_ok(const char *path, const char *tag, struct cache *c,
                    struct oci_image *ret, struct oci_blob *ret_manifest,
                    struct oci_blob *ret_config)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (docker_archive_load(path, tag, c, ret, ret_manifest, ret_config, &err) < 0)
        fail_msg("%s", err.msg);
}

/* Loading fails with a message holding "docker-archive:<path>" and every
 * one of needles. */
static void load_fails(const char *path, const char *tag, const char *const *needles)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct cache c;
    struct oci_image img;
    struct oci_blob m = {0}, cb = {0};
    char *prefix, dir[] = "cache-XXXXXX";

    /* A cache of its own: blobs an earlier load left must not stand in for
     * the archive's. */
    assert_non_null(mkdtemp(dir));
    if (cache_open(&c, dir, &err) < 0)
        fail_msg("%s", err.msg);
    memset(&img, 0, sizeof(img));
    if (docker_archive_load(path, tag, &c, &img, &m, &cb, &err) == 0) {
        oci_image_release(&img);
        oci_blob_release(&m);
        oci_blob_release(&cb);
        fail_msg("loading '%s' succeeded", path);
    }
    assert_true(err.code != 0);
    assert_true(asprintf(&prefix, "docker-archive:%s", path) > 0);
    if (!strstr(err.msg, prefix))
        fail_msg("error \"%s\" does not name \"%s\"", err.msg, prefix);
    free(prefix);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.msg, needles[i]))
            fail_msg("error \"%s\" does not say \"%s\"", err.msg, needles[i]);
    cache_release(&c);
}

/* --- hand-made archives --- */

struct tarb {
    struct tar_fixture_entry e[16];
    char *owned[32];
    size_t n, n_owned;
};

static const char *keep(struct tarb *b, char *s)
{
    assert_true(b->n_owned < 32);
    b->owned[b->n_owned++] = s;
    return s;
}

static void tarb_add(struct tarb *b, const char *name, const char *data, size_t len)
{
    assert_true(b->n < 16);
    b->e[b->n] = (struct tar_fixture_entry){
        .name = name, .type = AE_IFREG, .perm = 0644, .data = data, .data_len = len};
    b->n++;
}

static void tarb_add_str(struct tarb *b, const char *name, const char *text)
{
    tarb_add(b, name, keep(b, strdup(text)), strlen(text));
}

/* Adds data as blobs/sha256/<its digest>; the name. */
static const char *tarb_add_blob(struct tarb *b, const char *data, size_t len)
{
    struct oci_digest d;
    char *name;

    oci_digest_of(data, len, &d);
    assert_true(asprintf(&name, "blobs/sha256/%s", oci_digest_hex(&d)) > 0);
    tarb_add(b, keep(b, name), data, len);
    return name;
}

static void tarb_write(struct tarb *b, const char *path)
{
    struct archive *a = archive_write_new();

    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    assert_int_equal(tar_fixture_write(a, b->e, b->n), 0);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    memset(b, 0, sizeof(*b));
}

/* A classic config: the diff_ids of the layers, as JSON text; caller
 * frees. */
static char *classic_config(const char *const *layers, size_t n)
{
    json_t *ids = json_array();
    json_t *cfg;
    char *s;
    size_t len;

    for (size_t i = 0; i < n; i++) {
        struct oci_digest d;

        oci_digest_of(layers[i], strlen(layers[i]), &d);
        json_array_append_new(ids, json_string(d.str));
    }
    cfg = json_pack("{s:s, s:s, s:{s:s, s:o}, s:{}}", "architecture", "amd64", "os",
                    "linux", "rootfs", "type", "layers", "diff_ids", ids, "config");
    s = oci_json_canonical(cfg, &len);
    json_decref(cfg);
    return s;
}

/* A classic archive: <cfgname> holding cfg, manifest.json naming
 * config_ref and layer_refs, and the layer files given. */
static void write_classic(const char *path, const char *cfgname, const char *cfg,
                          const char *config_ref, const char *const *layer_names,
                          const char *const *layer_data, const char *const *layer_refs)
{
    struct tarb b = {0};
    json_t *layers = json_array(), *mj;
    char *text;
    size_t len;

    for (size_t i = 0; layer_refs[i]; i++)
        json_array_append_new(layers, json_string(layer_refs[i]));
    mj = json_pack("[{s:s, s:[s], s:o}]", "Config", config_ref, "RepoTags", "app:latest",
                   "Layers", layers);
    text = oci_json_canonical(mj, &len);
    json_decref(mj);
    tarb_add_str(&b, "manifest.json", text);
    free(text);
    if (cfgname)
        tarb_add_str(&b, cfgname, cfg);
    for (size_t i = 0; layer_names && layer_names[i]; i++)
        tarb_add_str(&b, layer_names[i], layer_data[i]);
    tarb_write(&b, path);
}

/* --- the format ocib writes --- */

static void test_an_archive_loads_back_as_the_image_written(void **state)
{
    struct fixture f;
    struct cache c;
    struct oci_image img;
    struct oci_blob m, cb;

    make_image(&f, "app", 2, true);
    write_archive("img.tar", &f, LIST("example.com/app:1.0"));
    open_cache(&c);
    load_ok("img.tar", NULL, &c, &img, &m, &cb);

    /* The OCI manifest it carries, byte for byte: the digest a push gives. */
    assert_string_equal(m.digest.str, f.manifest.digest.str);
    assert_int_equal(m.len, f.manifest.len);
    assert_memory_equal(m.data, f.manifest.data, m.len);
    assert_string_equal(cb.digest.str, f.config.digest.str);
    assert_memory_equal(cb.data, f.config.data, cb.len);
    assert_int_equal(img.n_layers, 2);
    for (size_t i = 0; i < 2; i++) {
        char *p, *buf = NULL;
        size_t len;

        assert_string_equal(img.layers[i].desc.digest.str, f.img.layers[i].desc.digest.str);
        assert_string_equal(img.layers[i].desc.media_type, OCI_MT_LAYER_GZIP);
        /* the blobs are in the cache, as they were */
        assert_true(cache_blob_exists(&c, &img.layers[i].desc.digest));
        p = cache_blob_path(&c, &img.layers[i].desc.digest);
        assert_int_equal(fs_read_file(p, 1024, &buf, &len, NULL), 0);
        assert_string_equal(buf, f.bytes[i]);
        free(buf);
        free(p);
    }
    oci_image_release(&img);
    oci_blob_release(&m);
    oci_blob_release(&cb);

    /* The outputs may be NULL. */
    load_ok("img.tar", NULL, &c, &img, NULL, NULL);
    assert_int_equal(img.n_layers, 2);
    oci_image_release(&img);
    cache_release(&c);
    release_image(&f);
}

/* Reads every entry of the archive at path: names (in order), and checks
 * what each entry's header says. */
static size_t list_archive(const char *path, char names[][128], size_t max,
                           char **manifest_json)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    size_t n = 0;

    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        assert_true(n < max);
        snprintf(names[n], 128, "%s", archive_entry_pathname(ae));
        assert_int_equal(archive_entry_mtime(ae), 1700000000);
        assert_int_equal(archive_entry_uid(ae), 0);
        assert_int_equal(archive_entry_gid(ae), 0);
        if (!strcmp(names[n], "manifest.json")) {
            size_t len = (size_t)archive_entry_size(ae);

            *manifest_json = calloc(1, len + 1);
            assert_int_equal(archive_read_data(a, *manifest_json, len), (la_ssize_t)len);
        }
        n++;
    }
    archive_read_free(a);
    return n;
}

static void test_the_archive_is_docker_25s_format(void **state)
{
    struct fixture f;
    char names[16][128], *mj = NULL, want[128];
    size_t n;
    json_t *list, *e;

    make_image(&f, "app", 2, true);
    /* The same layer twice is stored once. */
    f.img.layers[1].desc.digest = f.img.layers[0].desc.digest;
    free(f.paths[1]);
    f.paths[1] = strdup(f.paths[0]);
    write_archive("img.tar", &f, LIST("example.com/app:1.0", "example.com/app:latest"));
    n = list_archive("img.tar", names, 16, &mj);

    /* blobs/, blobs/sha256/, config, manifest, one layer, index.json,
     * manifest.json, oci-layout */
    assert_int_equal(n, 8);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(names[i - 1], names[i]) < 0); /* sorted, no repeats */
    snprintf(want, sizeof(want), "blobs/sha256/%s", oci_digest_hex(&f.config.digest));
    list = json_loads(mj, 0, NULL);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 1);
    e = json_array_get(list, 0);
    assert_string_equal(oci_json_str(e, "Config"), want);
    assert_int_equal(json_array_size(json_object_get(e, "RepoTags")), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(e, "RepoTags"), 0)),
        "example.com/app:1.0");
    snprintf(want, sizeof(want), "blobs/sha256/%s",
             oci_digest_hex(&f.img.layers[0].desc.digest));
    assert_int_equal(json_array_size(json_object_get(e, "Layers")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "Layers"), 0)),
                        want);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "Layers"), 1)),
                        want);
    {
        bool index = false, layout = false;

        for (size_t i = 0; i < n; i++) {
            index |= !strcmp(names[i], "index.json");
            layout |= !strcmp(names[i], "oci-layout");
        }
        assert_true(index && layout);
    }
    json_decref(list);
    free(mj);
    release_image(&f);
}

static void test_a_tag_selects_by_ref_name_or_full_name(void **state)
{
    struct fixture f;
    struct cache c;
    struct oci_image img;

    make_image(&f, "app", 1, false);
    write_archive("img.tar", &f, LIST("example.com/app:1.0"));
    open_cache(&c);
    load_ok("img.tar", "1.0", &c, &img, NULL, NULL);
    oci_image_release(&img);
    load_ok("img.tar", "example.com/app:1.0", &c, &img, NULL, NULL);
    oci_image_release(&img);
    cache_release(&c);
    load_fails("img.tar", "2.0", LIST("'2.0'"));
    release_image(&f);
}

static void test_a_layer_that_does_not_match_its_digest_is_not_written(void **state)
{
    struct fixture f;
    struct ocib_error err = OCIB_ERROR_INIT;

    make_image(&f, "app", 2, false);
    write_bytes(f.paths[1], "tampered", 8);
    assert_int_equal(docker_archive_write("img.tar", &f.img, &f.config, &f.manifest,
                                          OCI_MT_MANIFEST, f.paths, f.verify, NULL, 0, 0,
                                          &err),
                     -1);
    assert_non_null(strstr(err.msg, "docker-archive:img.tar"));
    assert_non_null(strstr(err.msg, f.img.layers[1].desc.digest.str));
    assert_non_null(strstr(err.msg, f.paths[1]));
    /* Neither the archive nor its temporary file. */
    {
        DIR *d = opendir(".");
        struct dirent *de;

        while ((de = readdir(d)))
            if (!strncmp(de->d_name, "img.tar", 7))
                fail_msg("'%s' was left", de->d_name);
        closedir(d);
    }
    release_image(&f);
}

/* --- the classic format --- */

static void test_a_classic_archive_loads_with_sniffed_layer_types(void **state)
{
    static const char *const layers[] = {"plain tar bytes", "\x1f\x8b gzip bytes"};
    char *cfg = classic_config(layers, 2);
    struct cache c;
    struct oci_image img;
    struct oci_blob m, cb;
    struct oci_digest d;

    write_classic("classic.tar", "cafe.json", cfg, "cafe.json",
                  LIST("l1/layer.tar", "l2/layer.tar"), layers,
                  LIST("l1/layer.tar", "./l2/layer.tar"));
    open_cache(&c);
    load_ok("classic.tar", NULL, &c, &img, &m, &cb);
    assert_int_equal(img.n_layers, 2);
    oci_digest_of(layers[0], strlen(layers[0]), &d);
    assert_string_equal(img.layers[0].desc.digest.str, d.str);
    assert_string_equal(img.layers[0].desc.media_type, OCI_MT_LAYER_TAR);
    assert_int_equal(img.layers[0].desc.size, (int64_t)strlen(layers[0]));
    assert_string_equal(img.layers[1].desc.media_type, OCI_MT_LAYER_GZIP);
    assert_true(cache_blob_exists(&c, &img.layers[1].desc.digest));
    /* The config as stored; a manifest derived from it. */
    assert_int_equal(cb.len, strlen(cfg));
    assert_memory_equal(cb.data, cfg, cb.len);
    oci_digest_of(m.data, m.len, &d);
    assert_string_equal(m.digest.str, d.str);
    assert_non_null(strstr(m.data, cb.digest.str));
    oci_image_release(&img);
    oci_blob_release(&m);
    oci_blob_release(&cb);
    cache_release(&c);

    load_fails("classic.tar", "other", LIST("'other'"));
    free(cfg);
}

static void test_a_manifest_naming_a_file_outside_the_archive_is_refused(void **state)
{
    static const char *const layers[] = {"layer bytes"};
    char *cfg = classic_config(layers, 1);

    /* The files exist, beside the archive: never read from there. */
    assert_int_equal(mkdir("in", 0755), 0);
    write_bytes("x", layers[0], strlen(layers[0]));
    write_bytes("cfg.json", cfg, strlen(cfg));

    write_classic("in/a.tar", "c.json", cfg, "c.json", LIST("l/layer.tar"), layers,
                  LIST("../x"));
    load_fails("in/a.tar", NULL, LIST("'../x'", "not in the archive"));
    write_classic("in/b.tar", "c.json", cfg, "c.json", LIST("l/layer.tar"), layers,
                  LIST("/x"));
    load_fails("in/b.tar", NULL, LIST("'/x'", "not in the archive"));
    write_classic("in/c.tar", "c.json", cfg, "../cfg.json", LIST("l/layer.tar"), layers,
                  LIST("l/layer.tar"));
    load_fails("in/c.tar", NULL, LIST("'../cfg.json'", "not in the archive"));
    free(cfg);
}

static void test_a_manifest_naming_a_missing_layer_or_config_is_refused(void **state)
{
    static const char *const layers[] = {"layer one", "layer two"};
    char *cfg = classic_config(layers, 2);

    write_classic("a.tar", "c.json", cfg, "c.json", LIST("l1/layer.tar"), layers,
                  LIST("l1/layer.tar", "l2/layer.tar"));
    load_fails("a.tar", NULL, LIST("'l2/layer.tar'", "not in the archive"));
    write_classic("b.tar", NULL, NULL, "c.json", LIST("l1/layer.tar", "l2/layer.tar"),
                  layers, LIST("l1/layer.tar", "l2/layer.tar"));
    load_fails("b.tar", NULL, LIST("'c.json'", "not in the archive"));
    /* Layers and diff_ids that do not pair up. */
    write_classic("c.tar", "c.json", cfg, "c.json", LIST("l1/layer.tar"), layers,
                  LIST("l1/layer.tar"));
    load_fails("c.tar", NULL, LIST("1 layers", "2 diff_ids"));
    free(cfg);
}

static void test_an_archive_without_a_manifest_is_not_a_docker_archive(void **state)
{
    struct tarb b = {0};

    tarb_add_str(&b, "etc/passwd", "root:x:0:0");
    tarb_write(&b, "plain.tar");
    load_fails("plain.tar", NULL, LIST("manifest.json"));

    write_bytes("garbage.tar", "this is not a tar file at all, not even close", 46);
    load_fails("garbage.tar", NULL, LIST(""));
    load_fails("absent.tar", NULL, LIST(""));
}

/* Where each entry of the archive at path starts, and its data size. */
static size_t entry_offsets(const char *path, int64_t *pos, int64_t *size, size_t max)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    size_t n = 0;

    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        assert_true(n < max);
        pos[n] = archive_read_header_position(a);
        size[n] = archive_entry_size(ae);
        n++;
    }
    archive_read_free(a);
    return n;
}

/* Cut inside any entry's header or data, the archive is an error: never
 * an image made of the entries before the cut. */
static void test_a_truncated_archive_is_an_error(void **state)
{
    struct fixture f;
    int64_t pos[16], size[16];
    char *buf = NULL;
    size_t len, n;

    make_image(&f, "app", 1, false);
    write_archive("img.tar", &f, LIST("app:1"));
    assert_int_equal(fs_read_file("img.tar", 1 << 20, &buf, &len, NULL), 0);
    n = entry_offsets("img.tar", pos, size, 16);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        write_bytes("cut.tar", buf, (size_t)pos[i] + 100); /* inside the header */
        load_fails("cut.tar", NULL, LIST(""));
        if (size[i] > 1) {
            write_bytes("cut.tar", buf, (size_t)(pos[i] + 512 + size[i] / 2));
            load_fails("cut.tar", NULL, LIST(""));
        }
    }
    free(buf);
    release_image(&f);
}

/* --- blobs that lie about their digest --- */

/* An OCI-form archive written by hand: its index.json names manifest, whose
 * config descriptor names config_digest; the blobs are stored under the
 * names given (NULL: their own digest). */
static void write_oci_form(const char *path, const struct fixture *f,
                           const char *config_name, const char *config_data,
                           const char *manifest_name, const char *manifest_data,
                           size_t manifest_len)
{
    struct tarb b = {0};
    json_t *idx;
    char *text;
    size_t len;

    idx = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
                    "mediaType", OCI_MT_INDEX, "manifests", "mediaType", OCI_MT_MANIFEST,
                    "digest", f->manifest.digest.str, "size", (json_int_t)f->manifest.len,
                    "annotations", "org.opencontainers.image.ref.name", "1");
    text = oci_json_canonical(idx, &len);
    json_decref(idx);
    tarb_add_str(&b, "index.json", text);
    free(text);
    tarb_add_str(&b, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    tarb_add_str(&b, "manifest.json", "[]");
    if (config_name)
        tarb_add(&b, config_name, config_data, strlen(config_data));
    else
        tarb_add_blob(&b, f->config.data, f->config.len);
    if (manifest_name)
        tarb_add(&b, manifest_name, manifest_data, manifest_len);
    else
        tarb_add_blob(&b, f->manifest.data, f->manifest.len);
    for (size_t i = 0; i < f->img.n_layers; i++)
        tarb_add_blob(&b, f->bytes[i], strlen(f->bytes[i]));
    tarb_write(&b, path);
}

static void test_a_config_that_does_not_match_its_digest_is_refused(void **state)
{
    struct fixture f;
    char name[128], *other;
    struct cache c;
    struct oci_image img;

    make_image(&f, "app", 1, false);
    /* By hand and whole: it loads. */
    write_oci_form("good.tar", &f, NULL, NULL, NULL, NULL, 0);
    open_cache(&c);
    load_ok("good.tar", "1", &c, &img, NULL, NULL);
    oci_image_release(&img);
    cache_release(&c);

    /* The config's name, other bytes (one field changed). */
    snprintf(name, sizeof(name), "blobs/sha256/%s", oci_digest_hex(&f.config.digest));
    other = strdup(f.config.data);
    *strstr(other, "amd64") = 'A';
    write_oci_form("bad.tar", &f, name, other, NULL, NULL, 0);
    load_fails("bad.tar", "1", LIST(f.config.digest.str));
    free(other);
    release_image(&f);
}

static void test_a_manifest_that_does_not_match_its_digest_is_refused(void **state)
{
    struct fixture f;
    char name[128], *other;

    make_image(&f, "app", 1, false);
    snprintf(name, sizeof(name), "blobs/sha256/%s", oci_digest_hex(&f.manifest.digest));
    other = malloc(f.manifest.len + 1);
    memcpy(other, f.manifest.data, f.manifest.len);
    other[f.manifest.len] = '\0';
    *strstr(other, "schemaVersion\":2") = 'S';
    write_oci_form("bad.tar", &f, NULL, NULL, name, other, f.manifest.len);
    load_fails("bad.tar", "1", LIST(f.manifest.digest.str));
    free(other);
    release_image(&f);
}

static void test_a_layer_missing_from_an_oci_form_archive_is_refused(void **state)
{
    struct fixture f, g;

    make_image(&f, "app", 2, false);
    make_image(&g, "app", 1, false); /* the same first layer, not the second */
    /* f's index, manifest and config; g's layers. */
    {
        struct tarb b = {0};
        json_t *idx = json_pack("{s:i, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2,
                                "manifests", "mediaType", OCI_MT_MANIFEST, "digest",
                                f.manifest.digest.str, "size", (json_int_t)f.manifest.len);
        size_t len;
        char *text = oci_json_canonical(idx, &len);

        json_decref(idx);
        tarb_add_str(&b, "index.json", text);
        free(text);
        tarb_add_str(&b, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
        tarb_add_blob(&b, f.config.data, f.config.len);
        tarb_add_blob(&b, f.manifest.data, f.manifest.len);
        tarb_add_blob(&b, g.bytes[0], strlen(g.bytes[0]));
        tarb_write(&b, "a.tar");
    }
    load_fails("a.tar", NULL, LIST(f.img.layers[1].desc.digest.str, "not in the archive"));
    release_image(&f);
    release_image(&g);
}

/* --- nothing is extracted --- */

static void test_entries_named_outside_are_never_written_there(void **state)
{
    static const char *const layers[] = {"layer bytes"};
    char *cfg = classic_config(layers, 1);
    char evil[] = "escaped", abs_evil[4096], up_evil[64];
    struct ocib_error err = OCIB_ERROR_INIT;
    struct cache c;
    struct oci_image img;
    struct tarb b = {0};
    json_t *mj;
    char *text;
    size_t len;

    /* Both names lead into the test's directory, above the archive's. */
    snprintf(up_evil, sizeof(up_evil), "../../%s", evil);
    snprintf(abs_evil, sizeof(abs_evil), "%s/abs-%s", tempdir_path(state), evil);
    assert_int_equal(mkdir("a", 0755), 0);
    assert_int_equal(mkdir("a/b", 0755), 0);
    mj = json_pack("[{s:s, s:[s], s:[s]}]", "Config", "c.json", "RepoTags", "app:1",
                   "Layers", up_evil);
    text = oci_json_canonical(mj, &len);
    json_decref(mj);
    tarb_add_str(&b, "manifest.json", text);
    free(text);
    tarb_add_str(&b, "c.json", cfg);
    tarb_add_str(&b, up_evil, layers[0]);
    tarb_add_str(&b, abs_evil, layers[0]);
    tarb_write(&b, "a/b/evil.tar");

    assert_int_equal(chdir("a/b"), 0);
    open_cache(&c);
    /* It may load (the entry is in the archive) or not; either way nothing
     * lands outside. */
    memset(&img, 0, sizeof(img));
    if (docker_archive_load("evil.tar", NULL, &c, &img, NULL, NULL, &err) == 0)
        oci_image_release(&img);
    cache_release(&c);
    assert_false(fs_exists(up_evil));
    assert_false(fs_exists(abs_evil));
    assert_false(fs_exists(evil));
    assert_int_equal(chdir("../.."), 0);
    free(cfg);
}

/* Docker 25 naming: a member named blobs/sha256/<hex> must hold those bytes
 * (it used to be taken under its own digest). */
static void test_classic_config_named_by_another_digest_is_refused(void **state)
{
    static const char *const layers[] = {"layer bytes"};
    char *cfg = classic_config(layers, 1), name[128];
    struct oci_digest wrong;

    oci_digest_of("something else", 14, &wrong);
    snprintf(name, sizeof(name), "blobs/sha256/%s", oci_digest_hex(&wrong));
    write_classic("a.tar", name, cfg, name, LIST("l/layer.tar"), layers,
                  LIST("l/layer.tar"));
    load_fails("a.tar", NULL, LIST(wrong.str));
    free(cfg);
}

static void test_classic_layer_named_by_another_digest_is_refused(void **state)
{
    static const char *const layers[] = {"layer bytes"};
    char *cfg = classic_config(layers, 1), name[128];
    struct oci_digest wrong;

    oci_digest_of("something else", 14, &wrong);
    snprintf(name, sizeof(name), "blobs/sha256/%s", oci_digest_hex(&wrong));
    write_classic("a.tar", "c.json", cfg, "c.json", LIST(name), layers, LIST(name));
    load_fails("a.tar", NULL, LIST(wrong.str));
    free(cfg);
}

/* The layout inside a docker-archive is held to the descriptors' sizes, as
 * a layout on disk is. */
static void test_index_descriptor_with_wrong_size_is_refused(void **state)
{
    struct fixture f;
    struct tarb b = {0};
    json_t *idx;
    char *text;
    size_t len;

    make_image(&f, "app", 1, false);
    idx = json_pack("{s:i, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2, "manifests",
                    "mediaType", OCI_MT_MANIFEST, "digest", f.manifest.digest.str, "size",
                    (json_int_t)f.manifest.len + 7);
    text = oci_json_canonical(idx, &len);
    json_decref(idx);
    tarb_add_str(&b, "index.json", text);
    free(text);
    tarb_add_str(&b, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    tarb_add_blob(&b, f.config.data, f.config.len);
    tarb_add_blob(&b, f.manifest.data, f.manifest.len);
    tarb_add_blob(&b, f.bytes[0], strlen(f.bytes[0]));
    tarb_write(&b, "a.tar");
    load_fails("a.tar", NULL, LIST(f.manifest.digest.str));
    release_image(&f);
}

/* An err that carries an earlier, handled failure does not fail a good load. */
static void test_a_good_archive_loads_with_a_used_err(void **state)
{
    struct fixture f;
    struct cache c;
    struct oci_image img;
    struct ocib_error err = OCIB_ERROR_INIT;

    make_image(&f, "app", 1, false);
    write_archive("img.tar", &f, LIST("app:1"));
    open_cache(&c);
    ocib_error_set(&err, "an earlier failure the caller handled");
    if (docker_archive_load("img.tar", NULL, &c, &img, NULL, NULL, &err) < 0)
        fail_msg("%s", err.msg);
    oci_image_release(&img);
    cache_release(&c);
    release_image(&f);
}

/* A tag without ":" names the repository at "latest", and writing it does
 * not crash. */
static void test_a_bare_repository_tag_is_latest(void **state)
{
    struct fixture f;
    struct cache c;
    struct oci_image img;

    make_image(&f, "app", 1, false);
    write_archive("img.tar", &f, LIST("localhost:5000/app"));
    open_cache(&c);
    load_ok("img.tar", "latest", &c, &img, NULL, NULL);
    oci_image_release(&img);
    cache_release(&c);
    release_image(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_classic_config_named_by_another_digest_is_refused),
        TEMPDIR_TEST(test_classic_layer_named_by_another_digest_is_refused),
        TEMPDIR_TEST(test_index_descriptor_with_wrong_size_is_refused),
        TEMPDIR_TEST(test_a_good_archive_loads_with_a_used_err),
        TEMPDIR_TEST(test_a_bare_repository_tag_is_latest),
        TEMPDIR_TEST(test_an_archive_loads_back_as_the_image_written),
        TEMPDIR_TEST(test_the_archive_is_docker_25s_format),
        TEMPDIR_TEST(test_a_tag_selects_by_ref_name_or_full_name),
        TEMPDIR_TEST(test_a_layer_that_does_not_match_its_digest_is_not_written),
        TEMPDIR_TEST(test_a_classic_archive_loads_with_sniffed_layer_types),
        TEMPDIR_TEST(test_a_manifest_naming_a_file_outside_the_archive_is_refused),
        TEMPDIR_TEST(test_a_manifest_naming_a_missing_layer_or_config_is_refused),
        TEMPDIR_TEST(test_an_archive_without_a_manifest_is_not_a_docker_archive),
        TEMPDIR_TEST(test_a_truncated_archive_is_an_error),
        TEMPDIR_TEST(test_a_config_that_does_not_match_its_digest_is_refused),
        TEMPDIR_TEST(test_a_manifest_that_does_not_match_its_digest_is_refused),
        TEMPDIR_TEST(test_a_layer_missing_from_an_oci_form_archive_is_refused),
        TEMPDIR_TEST(test_entries_named_outside_are_never_written_there),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
