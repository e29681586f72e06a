/*
 * docker-archive reading and writing; see archive.h.
 */
#include "transport/archive.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARCHIVE_MAX_ENTRIES 100000
#define COPY_CHUNK (256 * 1024)

/* --- writing --- */

struct out_entry {
    char *name;
    const char *file; /* content from this file ... */
    const char *data; /* ... or from memory */
    size_t len;
    bool verify;
    struct oci_digest digest;
    bool dir;
};

static int cmp_out(const void *a, const void *b)
{
    return strcmp(((const struct out_entry *)a)->name, ((const struct out_entry *)b)->name);
}

static int write_entry(struct archive *a, struct archive_entry *ae,
                       const struct out_entry *e, int64_t mtime, char *buf,
                       struct ocib_error *err)
{
    _cleanup_close_ int fd = -1;
    struct stat st;
    struct sha256 h;
    struct oci_digest got;
    int64_t size = (int64_t)e->len;

    if (e->file) {
        fd = open(e->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            return ocib_error_errno(err, errno, "blob %s: cannot open '%s'", e->digest.str,
                                    e->file);
        size = st.st_size;
    }
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_mtime(ae, mtime, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_mode(ae, e->dir ? (S_IFDIR | 0755) : (S_IFREG | 0644));
    archive_entry_set_size(ae, e->dir ? 0 : size);
    if (archive_write_header(a, ae) != ARCHIVE_OK)
        return ocib_error_set(err, "%s: %s", e->name, archive_error_string(a));
    if (e->dir)
        return 0;
    if (!e->file) {
        if (archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len)
            return ocib_error_set(err, "%s: %s", e->name, archive_error_string(a));
        return 0;
    }
    if (e->verify)
        sha256_init(&h);
    for (int64_t left = size; left > 0;) {
        ssize_t n = read(fd, buf, COPY_CHUNK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (e->verify)
                sha256_release(&h);
            return ocib_error_set(err, "blob %s: '%s' changed while read", e->digest.str,
                                  e->file);
        }
        if (n > left)
            n = (ssize_t)left;
        if (e->verify)
            sha256_update(&h, buf, (size_t)n);
        if (archive_write_data(a, buf, (size_t)n) != n) {
            if (e->verify)
                sha256_release(&h);
            return ocib_error_set(err, "%s: %s", e->name, archive_error_string(a));
        }
        left -= n;
    }
    if (e->verify) {
        oci_digest_from_sha256(&h, &got);
        if (!oci_digest_equal(&got, &e->digest))
            return ocib_error_set(err, "blob %s: '%s' does not match its digest (got %s)",
                                  e->digest.str, e->file, got.str);
    }
    return 0;
}

/* Docker's manifest.json for the image, canonical; caller frees. */
static char *docker_manifest_json(const struct oci_image *img,
                                  const struct oci_blob *config, char *const *repo_tags,
                                  size_t n_tags, size_t *ret_len)
{
    json_t *mj, *layers, *tags;
    char *out;

    layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++)
        json_array_append_new(
            layers,
            json_sprintf("blobs/sha256/%s", oci_digest_hex(&img->layers[i].desc.digest)));
    tags = json_array();
    for (size_t i = 0; i < n_tags; i++)
        json_array_append_new(tags, json_string(repo_tags[i]));
    mj = json_pack("[{s:o, s:o, s:o}]", "Config",
                   json_sprintf("blobs/sha256/%s", oci_digest_hex(&config->digest)),
                   "RepoTags", tags, "Layers", layers);
    out = oci_json_canonical(mj, ret_len);
    json_decref(mj);
    return out;
}

/* The OCI layout's index.json beside it, naming the manifest (and, in the
 * annotations containerd and the image-spec read, the first tag); canonical,
 * caller frees. */
static char *layout_index_json(const struct oci_blob *manifest, const char *media_type,
                               char *const *repo_tags, size_t n_tags, size_t *ret_len)
{
    json_t *index, *desc;
    char *out;

    desc = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest",
                     manifest->digest.str, "size", (json_int_t)manifest->len);
    if (n_tags) {
        const char *colon = strrchr(repo_tags[0], ':');
        const char *slash = strrchr(repo_tags[0], '/');
        /* The tag after the last ':' that is not a registry's port. */
        const char *tag = colon && (!slash || colon > slash) ? colon + 1 : "latest";

        json_object_set_new(desc, "annotations",
                            json_pack("{s:s, s:s}", "io.containerd.image.name",
                                      repo_tags[0], "org.opencontainers.image.ref.name",
                                      tag));
    }
    index = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
                      "manifests", desc);
    out = oci_json_canonical(index, ret_len);
    json_decref(index);
    return out;
}

/* Writes the n entries, in that order, as a tar into a new file made from
 * the mkostemp() template tmp, syncs it and renames it to path.  On failure
 * the file may be left at tmp, for the caller to remove. */
static int write_archive(const char *path, char *tmp, const struct out_entry *entries,
                         size_t n, int64_t mtime, struct ocib_error *err)
{
    _cleanup_free_ char *buf = xmalloc(COPY_CHUNK);
    struct archive *a = NULL;
    struct archive_entry *ae = NULL;
    int fd, r = -1;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot create '%s'", tmp);
    fchmod(fd, 0644);
    a = archive_write_new();
    ae = archive_entry_new();
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        ocib_error_set(err, "cannot write '%s': %s", path, archive_error_string(a));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (write_entry(a, ae, &entries[i], mtime, buf, err) < 0)
            goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        ocib_error_set(err, "cannot write '%s': %s", path, archive_error_string(a));
        goto out;
    }
    /* On disk before it has its name, and the name on disk after. */
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        fd = -1;
        ocib_error_errno(err, errno, "cannot write '%s'", path);
        goto out;
    }
    fd = -1;
    if (fs_sync_parent(path, err) < 0)
        goto out;
    r = 0;
out:
    if (a)
        archive_write_free(a);
    if (ae)
        archive_entry_free(ae);
    if (fd >= 0)
        close(fd);
    return r;
}

int docker_archive_write(const char *path, const struct oci_image *img,
                         const struct oci_blob *config, const struct oci_blob *manifest,
                         const char *manifest_type, char *const *layer_paths,
                         const bool *verify, char *const *repo_tags, size_t n_tags,
                         int64_t mtime, struct ocib_error *err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    _cleanup_free_ struct out_entry *entries = NULL;
    _cleanup_free_ char *manifest_json = NULL;
    _cleanup_free_ char *index_json = NULL;
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    size_t n = 0, mj_len, ij_len;
    int r;

    manifest_json = docker_manifest_json(img, config, repo_tags, n_tags, &mj_len);
    index_json = layout_index_json(manifest, manifest_type, repo_tags, n_tags, &ij_len);
    entries = xcalloc(img->n_layers + 8, sizeof(*entries));
    entries[n++] = (struct out_entry){.name = xstrdup("blobs/"), .dir = true};
    entries[n++] = (struct out_entry){.name = xstrdup("blobs/sha256/"), .dir = true};
    entries[n++] = (struct out_entry){
        .name = xstrdup("oci-layout"), .data = layout, .len = sizeof(layout) - 1};
    entries[n++] = (struct out_entry){
        .name = xstrdup("index.json"), .data = index_json, .len = ij_len};
    entries[n++] = (struct out_entry){
        .name = xstrdup("manifest.json"), .data = manifest_json, .len = mj_len};
    entries[n++] = (struct out_entry){
        .name = xasprintf("blobs/sha256/%s", oci_digest_hex(&config->digest)),
        .data = config->data,
        .len = config->len,
        .digest = config->digest};
    entries[n++] = (struct out_entry){
        .name = xasprintf("blobs/sha256/%s", oci_digest_hex(&manifest->digest)),
        .data = manifest->data,
        .len = manifest->len,
        .digest = manifest->digest};
    for (size_t i = 0; i < img->n_layers; i++) {
        bool dup = false;

        for (size_t k = 0; k < i; k++)
            dup |=
                oci_digest_equal(&img->layers[k].desc.digest, &img->layers[i].desc.digest);
        if (dup)
            continue;
        entries[n++] = (struct out_entry){
            .name =
                xasprintf("blobs/sha256/%s", oci_digest_hex(&img->layers[i].desc.digest)),
            .file = layer_paths[i],
            .verify = verify[i],
            .digest = img->layers[i].desc.digest};
    }
    qsort(entries, n, sizeof(*entries), cmp_out);
    r = write_archive(path, tmp, entries, n, mtime, err);
    if (r < 0) {
        unlink(tmp);
        ocib_error_wrap(err, "docker-archive:%s", path);
    }
    for (size_t i = 0; i < n; i++)
        free(entries[i].name);
    return r;
}

/* --- reading --- */

struct member {
    char *name;
    struct oci_digest digest;
    int64_t size;
};

struct members {
    struct member *v;
    size_t n, alloc;
};

static const struct member *members_find(const struct members *m, const char *name)
{
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].name, name))
            return &m->v[i];
    return NULL;
}

static const struct member *members_find_digest(const struct members *m,
                                                const struct oci_digest *d)
{
    for (size_t i = 0; i < m->n; i++)
        if (oci_digest_equal(&m->v[i].digest, d))
            return &m->v[i];
    return NULL;
}

static void members_release(struct members *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].name);
    free(m->v);
}

/* Streams every regular file of the archive into the blob store. */
static int ingest(const char *path, struct cache *c, struct members *ret,
                  struct ocib_error *err)
{
    _cleanup_free_ char *buf = xmalloc(COPY_CHUNK);
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    int r = -1, rc;

    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    if (archive_read_open_filename(a, path, COPY_CHUNK) != ARCHIVE_OK) {
        ocib_error_set(err, "cannot read: %s", archive_error_string(a));
        goto out;
    }
    for (;;) {
        _cleanup_free_ char *tmp = NULL;
        const char *name;
        struct sha256 h;
        struct member m;
        int fd;

        rc = archive_read_next_header(a, &ae);
        if (rc != ARCHIVE_OK)
            break;
        name = archive_entry_pathname(ae);
        if (archive_entry_filetype(ae) != AE_IFREG || !name)
            continue;
        if (ret->n >= ARCHIVE_MAX_ENTRIES) {
            ocib_error_set(err, "more than %d files", ARCHIVE_MAX_ENTRIES);
            goto out;
        }
        while (name[0] == '.' && name[1] == '/')
            name += 2;
        if (cache_tmp_create(c, &tmp, &fd, err) < 0)
            goto out;
        sha256_init(&h);
        m.size = 0;
        rc = 0;
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, COPY_CHUNK);

            if (n < 0) {
                rc = ocib_error_set(err, "%s: %s", name, archive_error_string(a));
                break;
            }
            if (n == 0)
                break;
            sha256_update(&h, buf, (size_t)n);
            rc = fs_write_all(fd, buf, (size_t)n, err);
            if (rc < 0)
                break;
            m.size += n;
        }
        close(fd);
        /* The copy's own result, not err's state: a caller's err may hold
         * an earlier, handled error. */
        if (rc < 0) {
            sha256_release(&h);
            unlink(tmp);
            goto out;
        }
        oci_digest_from_sha256(&h, &m.digest);
        /* A name that claims a digest must hold those bytes. */
        if (!strncmp(name, "blobs/sha256/", 13) && strlen(name + 13) == SHA256_HEX_LEN &&
            strcmp(name + 13, oci_digest_hex(&m.digest))) {
            unlink(tmp);
            ocib_error_set(err, "'%s' does not match its digest sha256:%s (it holds %s)",
                           name, name + 13, m.digest.str);
            goto out;
        }
        if (cache_blob_commit(c, tmp, &m.digest, err) < 0)
            goto out;
        m.name = xstrdup(name);
        XGROW(ret->v, ret->alloc, ret->n + 1);
        ret->v[ret->n++] = m;
    }
    if (rc != ARCHIVE_EOF) {
        ocib_error_set(err, "corrupt archive: %s", archive_error_string(a));
        goto out;
    }
    r = 0;
out:
    archive_read_free(a);
    return r;
}

static int read_member(struct cache *c, const struct member *m, char **ret, size_t *ret_len,
                       struct ocib_error *err)
{
    _cleanup_free_ char *p = cache_blob_path(c, &m->digest);

    return fs_read_file(p, OCI_JSON_MAX, ret, ret_len, err);
}

static const char *sniff_layer_type(struct cache *c, const struct oci_digest *d)
{
    _cleanup_free_ char *p = cache_blob_path(c, d);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
    unsigned char magic[4] = {0};

    if (fd < 0 || read(fd, magic, 4) != 4)
        return OCI_MT_LAYER_TAR;
    if (magic[0] == 0x1f && magic[1] == 0x8b)
        return OCI_MT_LAYER_GZIP;
    if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        return OCI_MT_LAYER_ZSTD;
    return OCI_MT_LAYER_TAR;
}

/* The index.json entry tag names (NULL: the only one). */
static int pick_index_entry(const json_t *index, const char *tag, const json_t **ret,
                            struct ocib_error *err)
{
    const json_t *manifests = json_object_get(index, "manifests");

    *ret = NULL;
    for (size_t i = 0; i < json_array_size(manifests) && !*ret; i++) {
        const json_t *e = json_array_get(manifests, i);
        const json_t *ann = json_object_get(e, "annotations");
        const char *name = oci_json_str(ann, "io.containerd.image.name");
        const char *ref = oci_json_str(ann, "org.opencontainers.image.ref.name");

        if (!tag || (ref && !strcmp(ref, tag)) || (name && !strcmp(name, tag)))
            *ret = e;
    }
    if (!*ret || (!tag && json_array_size(manifests) != 1))
        return ocib_error_set(err, tag ? "no image tagged '%s'" : "%s images: name one",
                              tag ? tag : "several");
    return 0;
}

/* The bytes of the blob desc names, which must be in the archive with that
 * digest and size; what names the blob in messages. */
static int read_described(struct cache *c, const struct oci_descriptor *desc,
                          const char *what, char **ret, size_t *ret_len,
                          struct ocib_error *err)
{
    struct member mm = {NULL, desc->digest, 0};
    struct oci_digest got;

    if (!cache_blob_exists(c, &desc->digest) || read_member(c, &mm, ret, ret_len, err) < 0)
        return ocib_error_set(err, "%s %s is not in the archive", what, desc->digest.str);
    oci_digest_of(*ret, *ret_len, &got);
    if (!oci_digest_equal(&got, &desc->digest))
        return ocib_error_set(err, "%s %s does not match its digest", what,
                              desc->digest.str);
    if ((int64_t)*ret_len != desc->size)
        return ocib_error_set(err, "%s %s is %zu bytes, not the %lld its descriptor says",
                              what, desc->digest.str, *ret_len, (long long)desc->size);
    return 0;
}

/* Every layer of img is in the archive, of the size its descriptor says. */
static int check_layers(struct cache *c, const struct members *m,
                        const struct oci_image *img, const char *manifest,
                        struct ocib_error *err)
{
    for (size_t i = 0; i < img->n_layers; i++) {
        const struct oci_descriptor *ld = &img->layers[i].desc;
        const struct member *lm = members_find_digest(m, &ld->digest);

        if (!lm || !cache_blob_exists(c, &ld->digest))
            return ocib_error_set(err, "layer %s is not in the archive", ld->digest.str);
        if (lm->size != ld->size)
            return ocib_error_set(err, "manifest %s: layer %s is %lld bytes, not %lld",
                                  manifest, ld->digest.str, (long long)lm->size,
                                  (long long)ld->size);
    }
    return 0;
}

/* Builds the image from the OCI layout inside the archive. */
static int load_oci(struct cache *c, const struct members *m, const char *tag,
                    struct oci_image *ret, struct oci_blob *ret_manifest,
                    struct oci_blob *ret_config, struct ocib_error *err)
{
    /* The archive's blobs are all in the cache now: the cache directory is
     * laid out like an OCI layout's blobs, so resolve index.json there. */
    const struct member *idx = members_find(m, "index.json");
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ char *mbuf = NULL;
    _cleanup_free_ char *cbuf = NULL;
    _cleanup_json_ json_t *index = NULL;
    struct oci_descriptor desc = {0}, cdesc = {0};
    const json_t *entry;
    enum oci_doc_kind kind;
    size_t len, mlen, clen;
    int r = -1;

    if (read_member(c, idx, &buf, &len, err) < 0 ||
        oci_check_index(buf, len, "index.json", err) < 0 ||
        oci_json_parse(buf, len, "index.json", &index, err) < 0 ||
        pick_index_entry(index, tag, &entry, err) < 0 ||
        oci_descriptor_from_json(entry, "index.json", &desc, err) < 0)
        return -1;
    if (!oci_mt_is_manifest(desc.media_type)) {
        ocib_error_set(err, "index.json: unsupported media type '%s'", desc.media_type);
        goto out;
    }
    if (read_described(c, &desc, "manifest", &mbuf, &mlen, err) < 0 ||
        oci_doc_classify(mbuf, mlen, desc.media_type, desc.digest.str, &kind, NULL, err) <
            0 ||
        oci_manifest_config_descriptor(mbuf, mlen, desc.digest.str, &cdesc, err) < 0 ||
        read_described(c, &cdesc, "config", &cbuf, &clen, err) < 0 ||
        oci_image_load(mbuf, mlen, cbuf, clen, desc.digest.str, ret, err) < 0)
        goto out;
    if (check_layers(c, m, ret, desc.digest.str, err) < 0) {
        oci_image_release(ret);
        goto out;
    }
    ret_manifest->digest = desc.digest;
    ret_manifest->len = mlen;
    ret_manifest->data = TAKE_PTR(mbuf);
    ret_config->digest = cdesc.digest;
    ret_config->len = clen;
    ret_config->data = TAKE_PTR(cbuf);
    r = 0;
out:
    oci_descriptor_release(&desc);
    oci_descriptor_release(&cdesc);
    return r;
}

/* Builds the image from a classic manifest.json. */
static int load_docker(struct cache *c, const struct members *m, const char *tag,
                       struct oci_image *ret, struct oci_blob *ret_manifest,
                       struct oci_blob *ret_config, struct ocib_error *err)
{
    const struct member *mj = members_find(m, "manifest.json"), *cm;
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ char *cbuf = NULL;
    _cleanup_json_ json_t *list = NULL;
    _cleanup_json_ json_t *manifest = NULL;
    json_error_t jerr;
    const json_t *entry = NULL, *layers, *diff_ids;
    _cleanup_json_ json_t *cfg = NULL;
    struct oci_blob mblob;
    size_t len, clen;

    if (!mj)
        return ocib_error_set(err, "no manifest.json: not a docker-archive");
    if (read_member(c, mj, &buf, &len, err) < 0)
        return -1;
    list = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(list) || !json_array_size(list))
        return ocib_error_set(err, "manifest.json: expected a non-empty JSON array");
    for (size_t i = 0; i < json_array_size(list) && !entry; i++) {
        const json_t *e = json_array_get(list, i);
        const json_t *tags = json_object_get(e, "RepoTags");

        if (!tag) {
            entry = e;
            break;
        }
        for (size_t k = 0; k < json_array_size(tags); k++) {
            const char *t = json_string_value(json_array_get(tags, k));
            const char *colon = t ? strrchr(t, ':') : NULL;

            if (t && (!strcmp(t, tag) || (colon && !strcmp(colon + 1, tag))))
                entry = e;
        }
    }
    if (!entry || (!tag && json_array_size(list) != 1))
        return ocib_error_set(err,
                              tag ? "manifest.json: no image tagged '%s'"
                                  : "manifest.json lists %s images: name one",
                              tag ? tag : "several");
    cm = members_find(m, oci_json_str(entry, "Config") ?: "");
    if (!cm)
        return ocib_error_set(err, "manifest.json: config '%s' is not in the archive",
                              oci_json_str(entry, "Config") ?: "");
    if (read_member(c, cm, &cbuf, &clen, err) < 0 ||
        oci_json_parse(cbuf, clen, "config", &cfg, err) < 0)
        return -1;
    layers = json_object_get(entry, "Layers");
    diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(layers) || json_array_size(layers) != json_array_size(diff_ids))
        return ocib_error_set(err,
                              "manifest.json lists %zu layers but the config %zu diff_ids",
                              json_array_size(layers), json_array_size(diff_ids));
    /* Derive an OCI manifest with the layers exactly as stored. */
    manifest = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2,
                         "mediaType", OCI_MT_MANIFEST, "config", "mediaType", OCI_MT_CONFIG,
                         "digest", cm->digest.str, "size", (json_int_t)cm->size, "layers");
    for (size_t i = 0; i < json_array_size(layers); i++) {
        const struct member *lm =
            members_find(m, json_string_value(json_array_get(layers, i)) ?: "");

        if (!lm)
            return ocib_error_set(err, "manifest.json: layer '%s' is not in the archive",
                                  json_string_value(json_array_get(layers, i)) ?: "?");
        json_array_append_new(json_object_get(manifest, "layers"),
                              json_pack("{s:s, s:s, s:I}", "mediaType",
                                        sniff_layer_type(c, &lm->digest), "digest",
                                        lm->digest.str, "size", (json_int_t)lm->size));
    }
    mblob.data = oci_json_canonical(manifest, &mblob.len);
    if (oci_image_load(mblob.data, mblob.len, cbuf, clen, "manifest.json", ret, err) < 0) {
        free(mblob.data);
        return -1;
    }
    oci_digest_of(mblob.data, mblob.len, &mblob.digest);
    *ret_manifest = mblob;
    ret_config->digest = cm->digest;
    ret_config->len = clen;
    ret_config->data = TAKE_PTR(cbuf);
    return 0;
}

int docker_archive_load(const char *path, const char *tag, struct cache *c,
                        struct oci_image *ret, struct oci_blob *ret_manifest,
                        struct oci_blob *ret_config, struct ocib_error *err)
{
    struct oci_blob mb = {0}, cb = {0};
    struct members m = {0};
    int r;

    if (ingest(path, c, &m, err) < 0) {
        members_release(&m);
        return ocib_error_wrap(err, "docker-archive:%s", path);
    }
    if (members_find(&m, "index.json") && members_find(&m, "oci-layout"))
        r = load_oci(c, &m, tag, ret, &mb, &cb, err);
    else
        r = load_docker(c, &m, tag, ret, &mb, &cb, err);
    members_release(&m);
    if (r < 0)
        return ocib_error_wrap(err, "docker-archive:%s", path);
    if (ret_manifest)
        *ret_manifest = mb;
    else
        oci_blob_release(&mb);
    if (ret_config)
        *ret_config = cb;
    else
        oci_blob_release(&cb);
    return 0;
}
