/*
 * OCI image layout reading and writing; see layout.h.
 */
#include "oci/layout.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <errno.h>
#include <linux/fs.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define REF_NAME "org.opencontainers.image.ref.name"

char *oci_layout_blob_path(const char *dir, const struct oci_digest *d)
{
    return xasprintf("%s/blobs/sha256/%s", dir, oci_digest_hex(d));
}

int oci_layout_read_blob(const char *dir, const struct oci_digest *d, size_t cap,
                         char **ret_buf, size_t *ret_len, struct ocib_error *err)
{
    _cleanup_free_ char *path = oci_layout_blob_path(dir, d);
    _cleanup_free_ char *buf = NULL;
    struct oci_digest got;
    size_t len;

    if (fs_read_file(path, cap, &buf, &len, err) < 0)
        return ocib_error_wrap(err, "blob %s", d->str);
    oci_digest_of(buf, len, &got);
    if (!oci_digest_equal(&got, d))
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "blob %s in '%s': content does not match its digest (got %s)", d->str, dir,
            got.str);
    *ret_buf = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* A blob read whole must have the size its descriptor gives. */
static int check_size(const char *dir, const struct oci_descriptor *d, size_t len,
                      struct ocib_error *err)
{
    if (d->size == (int64_t)len)
        return 0;
    return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                               "blob %s in '%s': %zu bytes, but its descriptor says %lld",
                               d->digest.str, dir, len, (long long)d->size);
}

/* Picks the entry of an index's "manifests" array for tag and platform. */
static int pick_entry(const json_t *manifests, const char *tag,
                      const struct oci_platform *p, const char *what, const json_t **ret,
                      struct ocib_error *err)
{
    const json_t *found = NULL;
    struct oci_platform host;
    size_t i, n = json_array_size(manifests);
    char pbuf[96];

    if (n == 0)
        return ocib_error_set(err, "%s: the index lists no images", what);
    if (tag) {
        for (i = 0; i < n; i++) {
            const json_t *e = json_array_get(manifests, i);
            const char *name = oci_json_str(json_object_get(e, "annotations"), REF_NAME);

            if (name && !strcmp(name, tag)) {
                found = e;
                break;
            }
        }
        if (!found)
            return ocib_error_set(err, "%s: no image tagged '%s'", what, tag);
        *ret = found;
        return 0;
    }
    if (n == 1) {
        *ret = json_array_get(manifests, 0);
        return 0;
    }
    /* Artifacts attached to an image (entries with a subject) are not
     * images: one image among them is the only one. */
    for (i = 0; i < n; i++)
        if (!json_object_get(json_array_get(manifests, i), "subject")) {
            if (found) {
                found = NULL;
                break;
            }
            found = json_array_get(manifests, i);
        }
    if (found) {
        *ret = found;
        return 0;
    }
    if (!p) {
        oci_platform_host(&host);
        p = &host;
    }
    *ret = oci_index_pick(manifests, p, NULL);
    if (*ret)
        return 0;
    oci_platform_format(p, pbuf, sizeof(pbuf));
    return ocib_error_set(
        err, "%s: %zu images and none for platform %s; name one with :TAG", what, n, pbuf);
}

/* The oci-layout file must be there and name a 1.x layout version. */
static int check_layout_file(const char *dir, struct ocib_error *err)
{
    _cleanup_free_ char *path = fs_path_join(dir, "oci-layout");
    _cleanup_free_ char *buf = NULL;
    _cleanup_json_ json_t *j = NULL;
    const char *version;
    size_t len;

    if (fs_read_file(path, 4096, &buf, &len, err) < 0)
        return ocib_error_wrap(err, "oci:%s: not an OCI image layout", dir);
    if (oci_json_parse(buf, len, path, &j, err) < 0)
        return -1;
    version = oci_json_str(j, "imageLayoutVersion");
    if (!version || strncmp(version, "1.", 2))
        return ocib_error_set(err,
                              "oci:%s: oci-layout names imageLayoutVersion %s; this ocib "
                              "reads 1.x",
                              dir, version ? version : "(none)");
    return 0;
}

int oci_layout_index_of(const char *dir, const char *tag, struct oci_digest *ret,
                        struct ocib_error *err)
{
    _cleanup_free_ char *index_path = fs_path_join(dir, "index.json");
    _cleanup_free_ char *buf = NULL;
    _cleanup_json_ json_t *index = NULL;
    const json_t *entry;
    size_t len;

    ret->str[0] = '\0';
    if (fs_read_file(index_path, OCI_JSON_MAX, &buf, &len, err) < 0 ||
        oci_json_parse(buf, len, index_path, &index, err) < 0 ||
        pick_entry(json_object_get(index, "manifests"), tag, NULL, index_path, &entry,
                   err) < 0)
        return -1;
    if (oci_mt_is_index(oci_json_str(entry, "mediaType")) &&
        oci_digest_parse(oci_json_str(entry, "digest") ?: "", ret, err) < 0)
        return ocib_error_wrap(err, "%s", index_path);
    return 0;
}

int oci_layout_load(const char *dir, const char *tag, const struct oci_platform *p,
                    struct oci_image *ret, struct oci_blob *ret_manifest,
                    struct oci_blob *ret_config, struct ocib_error *err)
{
    _cleanup_free_ char *index_path = fs_path_join(dir, "index.json");
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ char *config = NULL;
    _cleanup_json_ json_t *index = NULL;
    struct oci_descriptor desc = {NULL, {""}, 0}, cdesc = {NULL, {""}, 0};
    const json_t *entry = NULL;
    enum oci_doc_kind kind;
    size_t len, config_len;
    int depth, r = -1;

    if (fs_read_file(index_path, OCI_JSON_MAX, &buf, &len, err) < 0)
        return ocib_error_wrap(err, "oci:%s: not an OCI image layout", dir);
    if (check_layout_file(dir, err) < 0)
        return -1;
    if (oci_check_index(buf, len, index_path, err) < 0 ||
        oci_json_parse(buf, len, index_path, &index, err) < 0)
        return -1;
    if (pick_entry(json_object_get(index, "manifests"), tag, p, index_path, &entry, err) <
        0)
        return -1;
    for (depth = 0;; depth++) {
        if (oci_descriptor_from_json(entry, index_path, &desc, err) < 0)
            return -1;
        free(buf);
        buf = NULL;
        if (oci_layout_read_blob(dir, &desc.digest, OCI_JSON_MAX, &buf, &len, err) < 0 ||
            check_size(dir, &desc, len, err) < 0 ||
            oci_doc_classify(buf, len, desc.media_type, desc.digest.str, &kind, NULL, err) <
                0) {
            ocib_error_wrap(err, "oci:%s", dir);
            goto out;
        }
        if (!oci_mt_is_index(desc.media_type))
            break;
        if (depth > 4) {
            ocib_error_set(err, "oci:%s: indexes nested too deeply", dir);
            goto out;
        }
        json_decref(index);
        index = NULL;
        if (oci_json_parse(buf, len, desc.digest.str, &index, err) < 0 ||
            pick_entry(json_object_get(index, "manifests"), NULL, p, desc.digest.str,
                       &entry, err) < 0)
            goto out;
        oci_descriptor_release(&desc);
    }
    if (!oci_mt_is_manifest(desc.media_type)) {
        ocib_error_set(err, "oci:%s: %s has unsupported media type '%s'", dir,
                       desc.digest.str, desc.media_type);
        goto out;
    }
    if (oci_manifest_config_descriptor(buf, len, desc.digest.str, &cdesc, err) < 0 ||
        oci_layout_read_blob(dir, &cdesc.digest, OCI_JSON_MAX, &config, &config_len, err) <
            0 ||
        check_size(dir, &cdesc, config_len, err) < 0 ||
        oci_image_load(buf, len, config, config_len, desc.digest.str, ret, err) < 0) {
        ocib_error_wrap(err, "oci:%s", dir);
        goto out;
    }
    if (ret_manifest) {
        ret_manifest->digest = desc.digest;
        ret_manifest->len = len;
        ret_manifest->data = TAKE_PTR(buf);
    }
    if (ret_config) {
        ret_config->digest = cdesc.digest;
        ret_config->len = config_len;
        ret_config->data = TAKE_PTR(config);
    }
    r = 0;
out:
    oci_descriptor_release(&desc);
    oci_descriptor_release(&cdesc);
    return r;
}

/* Copies in to out without reading the bytes through user space where the
 * file system allows: a reflink (FICLONE: shared extents, copy on write,
 * so neither file can change the other), else copy_file_range, else a
 * plain copy. */
static int copy_unverified(int in, int out, const char *src_path,
                           const struct oci_digest *d, struct ocib_error *err)
{
    struct stat st;
    off_t left;

    if (ioctl(out, FICLONE, in) == 0)
        return 0;
    if (fstat(in, &st) < 0)
        return ocib_error_errno(err, errno, "cannot stat '%s'", src_path);
    left = st.st_size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

        if (n <= 0)
            break;
        left -= n;
    }
    if (left > 0 &&
        (lseek(in, 0, SEEK_SET) < 0 || ftruncate(out, 0) < 0 ||
         lseek(out, 0, SEEK_SET) < 0 || fs_copy_fd(in, out, NULL, NULL, err) < 0))
        return ocib_error_wrap(err, "blob %s", d->str);
    return 0;
}

int oci_blob_copy_file(const char *src_path, const char *blobs_dir,
                       const struct oci_digest *d, bool verify, struct ocib_error *err)
{
    _cleanup_free_ char *dst = xasprintf("%s/%s", blobs_dir, oci_digest_hex(d));
    _cleanup_free_ char *tmp = xasprintf("%s/.tmp-%s-XXXXXX", blobs_dir, oci_digest_hex(d));
    _cleanup_close_ int in = -1;
    _cleanup_close_ int out = -1;
    struct sha256 h;
    struct oci_digest got;

    if (fs_exists(dst))
        return 0;
    in = open(src_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return ocib_error_errno(err, errno, "blob %s: cannot open '%s'", d->str, src_path);
    out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0)
        return ocib_error_errno(err, errno, "cannot create a file in '%s'", blobs_dir);
    fchmod(out, 0644);
    if (verify) {
        sha256_init(&h);
        if (fs_copy_fd(in, out, &h, NULL, err) < 0) {
            sha256_release(&h);
            unlink(tmp);
            return ocib_error_wrap(err, "blob %s", d->str);
        }
        oci_digest_from_sha256(&h, &got);
        if (!oci_digest_equal(&got, d)) {
            unlink(tmp);
            return ocib_error_set(err, "blob %s: '%s' does not match its digest (got %s)",
                                  d->str, src_path, got.str);
        }
    } else if (copy_unverified(in, out, src_path, d, err) < 0) {
        /* Never a hard link, even to a trusted source such as ocib's own
         * cache: whoever may write the output must not reach its bytes. */
        unlink(tmp);
        return -1;
    }
    /* Synced before its name appears; the directory is synced once, when
     * the layout is committed. */
    if (fsync(out) < 0 || rename(tmp, dst) < 0) {
        int e = errno;

        unlink(tmp);
        return ocib_error_errno(err, e, "cannot write '%s'", dst);
    }
    return 0;
}

int oci_layout_writer_begin(struct oci_layout_writer *w, const char *path,
                            struct ocib_error *err)
{
    struct stat st;

    memset(w, 0, sizeof(*w));
    if (lstat(path, &st) == 0) {
        _cleanup_free_ char *marker = fs_path_join(path, "oci-layout");
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        bool empty = true;

        if (!S_ISDIR(st.st_mode))
            return ocib_error_set(err, "output '%s' exists and is not a directory", path);
        d = opendir(path);
        if (d) {
            for (de = readdir(d); de; de = readdir(d))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                    empty = false;
        }
        if (!empty && !fs_exists(marker))
            return ocib_error_set(
                err,
                "output '%s' exists and is not an OCI layout; refusing to "
                "replace it",
                path);
    }
    if (fs_mkdtemp_beside(path, &w->tmp, err) < 0)
        return ocib_error_wrap(err, "output '%s'", path);
    w->path = xstrdup(path);
    w->blobs = fs_path_join(w->tmp, "blobs/sha256");
    w->manifests = json_array();
    return fs_mkdir_p(w->blobs, 0755, err);
}

int oci_layout_writer_put_bytes(struct oci_layout_writer *w, const struct oci_blob *b,
                                struct ocib_error *err)
{
    _cleanup_free_ char *dst = xasprintf("%s/%s", w->blobs, oci_digest_hex(&b->digest));

    return fs_write_file_atomic(dst, b->data, b->len, 0644, err);
}

int oci_layout_writer_put_file(struct oci_layout_writer *w, const char *src_path,
                               const struct oci_digest *d, bool verify,
                               struct ocib_error *err)
{
    return oci_blob_copy_file(src_path, w->blobs, d, verify, err);
}

void oci_layout_writer_add_manifest(struct oci_layout_writer *w, const struct oci_blob *m,
                                    const char *media_type, const char *ref_name)
{
    json_t *e = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest",
                          m->digest.str, "size", (json_int_t)m->len);

    if (ref_name)
        json_object_set_new(e, "annotations", json_pack("{s:s}", REF_NAME, ref_name));
    json_array_append_new(w->manifests, e);
}

int oci_layout_writer_commit(struct oci_layout_writer *w, struct ocib_error *err)
{
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    _cleanup_free_ char *p1 = fs_path_join(w->tmp, "oci-layout");
    _cleanup_free_ char *p2 = fs_path_join(w->tmp, "index.json");
    _cleanup_free_ char *index_bytes = NULL;
    json_t *index;
    size_t len;

    index = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
                      "manifests", w->manifests);
    index_bytes = oci_json_canonical(index, &len);
    json_decref(index);
    if (fs_write_file_atomic(p1, layout, sizeof(layout) - 1, 0644, err) < 0 ||
        fs_write_file_atomic(p2, index_bytes, len, 0644, err) < 0)
        return -1;
    if (chmod(w->tmp, 0755) < 0)
        return ocib_error_errno(err, errno, "cannot set the mode of '%s'", w->tmp);
    /* Every blob was synced when it was written: their directories now,
     * and the parent once the layout has its name. */
    {
        _cleanup_free_ char *blobs = fs_path_join(w->tmp, "blobs");

        if (fs_sync_dir(w->blobs, err) < 0 || fs_sync_dir(blobs, err) < 0 ||
            fs_sync_dir(w->tmp, err) < 0)
            return -1;
    }
    if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->path, RENAME_EXCHANGE) == 0) {
        /* w->tmp now holds the previous layout. */
        int r = fs_sync_parent(w->path, err) < 0 ? -1 : fs_rm_rf(w->tmp, err);

        free(w->tmp);
        w->tmp = NULL;
        return r;
    }
    if (errno != ENOENT && errno != EINVAL && errno != ENOSYS)
        return ocib_error_errno(err, errno, "cannot move the layout into '%s'", w->path);
    if (errno != ENOENT) {
        /* RENAME_EXCHANGE unsupported: remove then rename. */
        if (fs_rm_rf(w->path, err) < 0)
            return -1;
    }
    if (rename(w->tmp, w->path) < 0)
        return ocib_error_errno(err, errno, "cannot move the layout into '%s'", w->path);
    free(w->tmp);
    w->tmp = NULL;
    return fs_sync_parent(w->path, err);
}

void oci_layout_writer_release(struct oci_layout_writer *w)
{
    if (w->tmp)
        fs_rm_rf(w->tmp, NULL);
    free(w->tmp);
    free(w->path);
    free(w->blobs);
    json_decref(w->manifests);
    memset(w, 0, sizeof(*w));
}
