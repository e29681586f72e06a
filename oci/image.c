/*
 * Image config and manifest; see image.h.
 */
#include "oci/image.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void oci_time_format(int64_t t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool oci_epoch_parse(const char *s, int64_t *ret)
{
    char *end;
    long long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v > 253402300799LL)
        return false;
    *ret = v;
    return true;
}

void oci_image_init(struct oci_image *img, const struct oci_platform *p)
{
    memset(img, 0, sizeof(*img));
    img->config =
        json_pack("{s:s, s:s, s:{}, s:{s:s, s:[]}, s:[]}", "architecture", p->arch, "os",
                  p->os, "config", "rootfs", "type", "layers", "diff_ids", "history");
    if (p->variant[0])
        json_object_set_new(img->config, "variant", json_string(p->variant));
    img->annotations = json_object();
}

void oci_descriptor_release(struct oci_descriptor *d)
{
    free(d->media_type);
    d->media_type = NULL;
}

void oci_image_release(struct oci_image *img)
{
    json_decref(img->config);
    json_decref(img->annotations);
    for (size_t i = 0; i < img->n_layers; i++)
        oci_descriptor_release(&img->layers[i].desc);
    free(img->layers);
    memset(img, 0, sizeof(*img));
}

void oci_image_copy(const struct oci_image *src, struct oci_image *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->config = json_deep_copy(src->config);
    ret->annotations = json_deep_copy(src->annotations);
    XGROW(ret->layers, ret->alloc_layers, src->n_layers);
    for (size_t i = 0; i < src->n_layers; i++) {
        ret->layers[i] = src->layers[i];
        ret->layers[i].desc.media_type = xstrdup(src->layers[i].desc.media_type);
    }
    ret->n_layers = src->n_layers;
}

void oci_blob_release(struct oci_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

json_t *oci_descriptor_to_json(const struct oci_descriptor *d)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest.str,
                     "size", (json_int_t)d->size);
}

int oci_descriptor_from_json(const json_t *j, const char *what, struct oci_descriptor *ret,
                             struct ocib_error *err)
{
    const char *mt = oci_json_str(j, "mediaType");
    const char *digest = oci_json_str(j, "digest");
    json_t *size = json_object_get(j, "size");
    struct oci_descriptor d = {NULL, {""}, 0};

    if (!json_is_object(j) || !mt || !digest || !json_is_integer(size) ||
        json_integer_value(size) < 0)
        return ocib_error_set(err, "%s: invalid descriptor (needs mediaType, digest, size)",
                              what);
    if (oci_digest_parse(digest, &d.digest, err) < 0)
        return ocib_error_wrap(err, "%s", what);
    d.media_type = xstrdup(mt);
    d.size = json_integer_value(size);
    *ret = d;
    return 0;
}

static bool known_doc_type(const char *mt)
{
    return oci_mt_is_manifest(mt) || oci_mt_is_index(mt);
}

int oci_doc_classify(const char *data, size_t len, const char *media_type, const char *what,
                     enum oci_doc_kind *ret, char **ret_media_type, struct ocib_error *err)
{
    _cleanup_json_ json_t *j = NULL;
    _cleanup_free_ char *served = NULL;
    const json_t *own_j;
    const char *own = NULL, *type;
    bool has_manifests, has_image;
    enum oci_doc_kind kind;

    if (oci_json_parse(data, len, what, &j, err) < 0)
        return -1;
    if (media_type)
        served = xstrndup(media_type, strcspn(media_type, "; "));
    if (served && !known_doc_type(served)) {
        free(served);
        served = NULL;
    }
    own_j = json_object_get(j, "mediaType");
    if (own_j && !json_is_string(own_j))
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY, "%s: mediaType is not a string",
                                   what);
    own = json_string_value(own_j);
    has_manifests = json_object_get(j, "manifests") != NULL;
    has_image = json_object_get(j, "layers") || json_object_get(j, "config");
    if (has_manifests && has_image)
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "%s: ambiguous document: it has both \"manifests\" (an "
                                   "index) and \"%s\" (a manifest)",
                                   what,
                                   json_object_get(j, "layers") ? "layers" : "config");
    if (!has_manifests && !has_image)
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "%s: neither a manifest (no config or layers) nor an index "
            "(no manifests)",
            what);
    kind = has_manifests ? OCI_DOC_INDEX : OCI_DOC_MANIFEST;
    for (int i = 0; i < 2; i++) {
        const char *mt = i == 0 ? own : served;

        if (!mt || !known_doc_type(mt))
            continue;
        if ((kind == OCI_DOC_INDEX) != oci_mt_is_index(mt))
            return ocib_error_kind_set(
                err, OCIB_ERR_INTEGRITY,
                "%s: %s '%s' contradicts the document, which is %s", what,
                i == 0 ? "its mediaType" : "the type it was served as", mt,
                kind == OCI_DOC_INDEX ? "an index" : "a manifest");
    }
    if (own && served && known_doc_type(own) && strcmp(own, served))
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "%s: its mediaType '%s' contradicts the type it was served "
            "as, '%s'",
            what, own, served);
    *ret = kind;
    if (ret_media_type) {
        type = own ?: served ?: (kind == OCI_DOC_INDEX ? OCI_MT_INDEX : OCI_MT_MANIFEST);
        *ret_media_type = xstrdup(type);
    }
    return 0;
}

int oci_check_index(const char *data, size_t len, const char *what, struct ocib_error *err)
{
    enum oci_doc_kind kind;

    if (oci_doc_classify(data, len, NULL, what, &kind, NULL, err) < 0)
        return -1;
    if (kind != OCI_DOC_INDEX)
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "%s: a manifest where an index was expected", what);
    return 0;
}

int oci_manifest_config_descriptor(const char *manifest, size_t len, const char *what,
                                   struct oci_descriptor *ret, struct ocib_error *err)
{
    _cleanup_json_ json_t *m = NULL;
    const char *mt;

    enum oci_doc_kind kind;

    if (oci_doc_classify(manifest, len, NULL, what, &kind, NULL, err) < 0 ||
        oci_json_parse(manifest, len, what, &m, err) < 0)
        return -1;
    if (kind != OCI_DOC_MANIFEST)
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "%s: an index where a manifest was expected", what);
    mt = oci_json_str(m, "mediaType");
    if (mt && !oci_mt_is_manifest(mt))
        return ocib_error_set(err, "%s: unsupported manifest media type '%s'", what, mt);
    if (json_integer_value(json_object_get(m, "schemaVersion")) != 2)
        return ocib_error_set(err, "%s: unsupported manifest schemaVersion", what);
    return oci_descriptor_from_json(json_object_get(m, "config"), what, ret, err);
}

int oci_image_load(const char *manifest, size_t manifest_len, const char *config,
                   size_t config_len, const char *what, struct oci_image *ret,
                   struct ocib_error *err)
{
    _cleanup_json_ json_t *m = NULL;
    _cleanup_json_ json_t *c = NULL;
    struct oci_image img;
    json_t *layers, *diff_ids, *annotations;
    size_t i;

    enum oci_doc_kind kind;

    if (oci_doc_classify(manifest, manifest_len, NULL, what, &kind, NULL, err) < 0)
        return -1;
    if (kind != OCI_DOC_MANIFEST)
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "%s: an index where a manifest was expected", what);
    if (oci_json_parse(manifest, manifest_len, what, &m, err) < 0 ||
        oci_json_parse(config, config_len, what, &c, err) < 0)
        return -1;
    layers = json_object_get(m, "layers");
    diff_ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
    if (!json_is_array(layers))
        return ocib_error_set(err, "%s: manifest has no layers array", what);
    if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers))
        return ocib_error_set(
            err, "%s: config lists %zu diff_ids but the manifest has %zu layers", what,
            json_array_size(diff_ids), json_array_size(layers));
    memset(&img, 0, sizeof(img));
    img.config = json_incref(c);
    annotations = json_object_get(m, "annotations");
    img.annotations =
        json_is_object(annotations) ? json_deep_copy(annotations) : json_object();
    for (i = 0; i < json_array_size(layers); i++) {
        struct oci_layer l;
        const char *oci_mt;
        char where[64];

        snprintf(where, sizeof(where), "%s: layer %zu", what, i);
        if (oci_descriptor_from_json(json_array_get(layers, i), where, &l.desc, err) < 0)
            goto fail;
        oci_mt = oci_mt_layer_to_oci(l.desc.media_type);
        if (!oci_mt) {
            ocib_error_set(err, "%s: unsupported layer media type '%s'", where,
                           l.desc.media_type);
            oci_descriptor_release(&l.desc);
            goto fail;
        }
        free(l.desc.media_type);
        l.desc.media_type = xstrdup(oci_mt);
        if (oci_digest_parse(json_string_value(json_array_get(diff_ids, i)) ?: "",
                             &l.diff_id, err) < 0) {
            ocib_error_wrap(err, "%s: diff_id", where);
            oci_descriptor_release(&l.desc);
            goto fail;
        }
        XGROW(img.layers, img.alloc_layers, img.n_layers + 1);
        img.layers[img.n_layers++] = l;
    }
    *ret = img;
    return 0;
fail:
    oci_image_release(&img);
    return -1;
}

void oci_image_add_layer(struct oci_image *img, const struct oci_layer *l,
                         const char *created, const char *created_by, const char *comment)
{
    json_t *rootfs = json_object_get(img->config, "rootfs");
    json_t *diff_ids, *history, *h;

    if (!json_is_object(rootfs)) {
        rootfs = json_pack("{s:s, s:[]}", "type", "layers", "diff_ids");
        json_object_set_new(img->config, "rootfs", rootfs);
    }
    diff_ids = json_object_get(rootfs, "diff_ids");
    json_array_append_new(diff_ids, json_string(l->diff_id.str));
    history = json_object_get(img->config, "history");
    if (!json_is_array(history)) {
        history = json_array();
        json_object_set_new(img->config, "history", history);
    }
    h = json_pack("{s:s, s:s}", "created", created, "created_by", created_by);
    if (comment)
        json_object_set_new(h, "comment", json_string(comment));
    json_array_append_new(history, h);

    XGROW(img->layers, img->alloc_layers, img->n_layers + 1);
    img->layers[img->n_layers] = *l;
    img->layers[img->n_layers].desc.media_type = xstrdup(l->desc.media_type);
    img->n_layers++;
}

int oci_image_serialize_as(const struct oci_image *img, enum oci_format f,
                           struct oci_blob *ret_config, struct oci_blob *ret_manifest,
                           struct ocib_error *err)
{
    bool docker = f == OCI_FORMAT_DOCKER;
    struct oci_descriptor cdesc;
    json_t *m, *layers = json_array();

    for (size_t i = 0; i < img->n_layers; i++) {
        struct oci_descriptor d = img->layers[i].desc;

        if (docker) {
            d.media_type = (char *)oci_mt_layer_to_docker(d.media_type);
            if (!d.media_type) {
                json_decref(layers);
                return ocib_error_usage(
                    err,
                    "layer %zu (%s) is %s, which Docker's format has no "
                    "type for; use --format oci or --compression gzip",
                    i, img->layers[i].desc.digest.str, img->layers[i].desc.media_type);
            }
        }
        json_array_append_new(layers, oci_descriptor_to_json(&d));
    }
    ret_config->data = oci_json_canonical(img->config, &ret_config->len);
    oci_digest_of(ret_config->data, ret_config->len, &ret_config->digest);
    cdesc.media_type = (char *)(docker ? DOCKER_MT_CONFIG : OCI_MT_CONFIG);
    cdesc.digest = ret_config->digest;
    cdesc.size = (int64_t)ret_config->len;
    m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                  oci_format_manifest_type(f), "config", oci_descriptor_to_json(&cdesc),
                  "layers", layers);
    if (!docker && img->annotations && json_object_size(img->annotations))
        json_object_set(m, "annotations", img->annotations);
    ret_manifest->data = oci_json_canonical(m, &ret_manifest->len);
    oci_digest_of(ret_manifest->data, ret_manifest->len, &ret_manifest->digest);
    json_decref(m);
    return 0;
}

void oci_image_serialize(const struct oci_image *img, struct oci_blob *ret_config,
                         struct oci_blob *ret_manifest)
{
    oci_image_serialize_as(img, OCI_FORMAT_OCI, ret_config, ret_manifest, NULL);
}
