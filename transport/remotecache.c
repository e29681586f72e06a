/*
 * The remote layer cache; see remotecache.h.
 */
#include "transport/remotecache.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/reference.h"
#include "transport/name.h"

#include <string.h>

#define EMPTY_MT "application/vnd.oci.empty.v1+json"

void remote_cache_init(struct remote_cache *rc)
{
    rc->entries = json_object();
    rc->defs = json_object();
}

void remote_cache_release(struct remote_cache *rc)
{
    json_decref(rc->entries);
    json_decref(rc->defs);
    rc->entries = rc->defs = NULL;
}

int remote_cache_load(struct remote_cache *rc, struct registries *rs, const char *ref_str,
                      struct ocib_error *err)
{
    struct reference ref;
    struct registry_manifest m = {0};
    _cleanup_json_ json_t *mj = NULL;
    _cleanup_json_ json_t *map = NULL;
    _cleanup_free_ char *buf = NULL;
    struct oci_descriptor d = {0};
    const char *key;
    json_t *v;
    size_t len;
    int rc_ = -1;

    if (image_name_reference(ref_str, &ref, err) < 0)
        return ocib_error_wrap(err, "--cache-from");
    {
        /* No artifact yet is the normal first run. */
        struct ocib_error probe = OCIB_ERROR_INIT;

        if (remote_manifest_get(rs, ref.registry, ref.repository, ref.digest ?: ref.tag, &m,
                                NULL, &probe) < 0) {
            if (ocib_error_kind(&probe) != OCIB_ERR_NOT_FOUND) {
                if (err)
                    *err = probe;
                ocib_error_wrap(err, "--cache-from %s", ref_str);
                goto out;
            }
            rc_ = 0;
            goto out;
        }
    }
    if (oci_json_parse(m.data, m.len, ref_str, &mj, err) < 0)
        goto out;
    if (oci_descriptor_from_json(json_array_get(json_object_get(mj, "layers"), 0), ref_str,
                                 &d, err) < 0 ||
        strcmp(d.media_type, REMOTE_CACHE_MEDIA_TYPE)) {
        ocib_error_set(err, "--cache-from %s: not an ocib cache artifact", ref_str);
        goto out;
    }
    if (remote_blob_get_mem(rs, ref.registry, ref.repository, &d.digest, OCI_JSON_MAX * 4,
                            &buf, &len, err) < 0 ||
        oci_json_parse(buf, len, ref_str, &map, err) < 0)
        goto out;
    json_object_foreach(json_object_get(map, "entries"), key, v)
    {
        json_t *e = json_deep_copy(v);

        json_object_set_new(e, "host", json_string(ref.registry));
        json_object_set_new(e, "repo", json_string(ref.repository));
        if (!json_object_get(rc->entries, key))
            json_object_set_new(rc->entries, key, e);
        else
            json_decref(e);
    }
    json_object_foreach(json_object_get(map, "defs"), key, v)
        json_object_set_new(rc->defs, key, json_true());
    rc_ = 0;
out:
    oci_descriptor_release(&d);
    registry_manifest_release(&m);
    reference_release(&ref);
    return rc_;
}

bool remote_cache_def_seen(const struct remote_cache *rc, const struct oci_digest *def)
{
    return json_object_get(rc->defs, def->str) != NULL;
}

bool remote_cache_lookup(const struct remote_cache *rc, struct cache *c,
                         const struct oci_digest *key, struct cache_layer *ret,
                         struct blob_source *ret_src)
{
    const json_t *e = json_object_get(rc->entries, key->str);
    const char *mt = oci_json_str(e, "mediaType");
    struct cache_layer l;
    _cleanup_free_ char *path = NULL;

    memset(&l, 0, sizeof(l));
    if (!e || !mt || strlen(mt) >= sizeof(l.media_type) || !oci_json_str(e, "host") ||
        !oci_json_str(e, "repo") ||
        oci_digest_parse(oci_json_str(e, "digest") ?: "", &l.digest, NULL) < 0 ||
        oci_digest_parse(oci_json_str(e, "diff_id") ?: "", &l.diff_id, NULL) < 0 ||
        !json_is_integer(json_object_get(e, "size")))
        return false;
    snprintf(l.media_type, sizeof(l.media_type), "%s", mt);
    l.size = json_integer_value(json_object_get(e, "size"));
    l.entries = -1;
    path = cache_blob_path(c, &l.digest);
    blob_source_init_local(ret_src, &l.digest, l.size, path, false);
    ret_src->remote_host = xstrdup(oci_json_str(e, "host"));
    ret_src->remote_repo = xstrdup(oci_json_str(e, "repo"));
    *ret = l;
    return true;
}

void remote_cache_add(struct remote_cache *rc, const struct oci_digest *key,
                      const struct oci_digest *def, const struct cache_layer *l)
{
    json_object_set_new(rc->entries, key->str,
                        json_pack("{s:s, s:s, s:I, s:s}", "digest", l->digest.str,
                                  "diff_id", l->diff_id.str, "size", (json_int_t)l->size,
                                  "mediaType", l->media_type));
    json_object_set_new(rc->defs, def->str, json_true());
}

int remote_cache_push(const struct remote_cache *rc, struct registries *rs, struct cache *c,
                      const char *ref_str, const struct blob_source *srcs, size_t n_srcs,
                      struct ocib_error *err)
{
    struct reference ref;
    struct oci_image img;
    struct oci_blob config = {NULL, 0, {""}}, map = {NULL, 0, {""}}, manifest;
    struct blob_source *all = NULL;
    struct oci_layer l;
    json_t *mapj, *entries = json_object(), *m;
    const char *key;
    json_t *v;
    size_t n = 0;
    char *tags[1];
    int r = -1;

    if (image_name_reference(ref_str, &ref, err) < 0)
        return ocib_error_wrap(err, "--cache-to");
    /* Only entries of this build (no host/repo: they came from here). */
    json_object_foreach(rc->entries, key, v)
    {
        if (!json_object_get(v, "host"))
            json_object_set(entries, key, v);
    }
    mapj = json_pack("{s:i, s:o, s:O}", "v", 1, "entries", entries, "defs", rc->defs);
    map.data = oci_json_canonical(mapj, &map.len);
    json_decref(mapj);
    oci_digest_of(map.data, map.len, &map.digest);
    config.data = xstrdup("{}");
    config.len = 2;
    oci_digest_of(config.data, config.len, &config.digest);

    /* The artifact is pushed like an image whose layers are the map and
     * every cached layer blob, so that one push carries everything. */
    memset(&img, 0, sizeof(img));
    img.config = json_object();
    img.annotations = json_object();
    all = xcalloc(n_srcs + 1, sizeof(*all));
    for (size_t i = 0; i < n_srcs; i++) {
        bool dup = false;

        for (size_t k = 0; k < n; k++)
            dup |= oci_digest_equal(&all[k].digest, &srcs[i].digest);
        if (dup)
            continue;
        blob_source_copy(&srcs[i], &all[n]);
        l.desc.media_type = (char *)OCI_MT_LAYER_GZIP;
        l.desc.digest = srcs[i].digest;
        l.desc.size = srcs[i].size;
        l.diff_id = srcs[i].digest;
        XGROW(img.layers, img.alloc_layers, img.n_layers + 1);
        img.layers[img.n_layers] = l;
        img.layers[img.n_layers].desc.media_type = xstrdup(l.desc.media_type);
        img.n_layers++;
        n++;
    }
    {
        json_t *layers = json_array();

        json_array_append_new(
            layers, json_pack("{s:s, s:s, s:I}", "mediaType", REMOTE_CACHE_MEDIA_TYPE,
                              "digest", map.digest.str, "size", (json_int_t)map.len));
        m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2,
                      "mediaType", OCI_MT_MANIFEST, "artifactType",
                      REMOTE_CACHE_ARTIFACT_TYPE, "config", "mediaType", EMPTY_MT, "digest",
                      config.digest.str, "size", (json_int_t)config.len, "layers", layers);
        manifest.data = oci_json_canonical(m, &manifest.len);
        oci_digest_of(manifest.data, manifest.len, &manifest.digest);
        json_decref(m);
    }
    {
        struct registry *reg;

        /* Blobs first (the layer blobs through the image pusher, which
         * mounts or skips what is there), then the map, then the manifest. */
        tags[0] = NULL;
        if (registries_get(rs, ref.registry, &reg, err) < 0 ||
            remote_push_image(rs, c, ref.registry, ref.repository, &img, all, &config, NULL,
                              NULL, tags, 0, err) < 0 ||
            registry_blob_push(reg, ref.repository, &map.digest, (int64_t)map.len, -1,
                               map.data, NULL, err) < 0 ||
            registry_manifest_put(reg, ref.repository, ref.digest ?: ref.tag,
                                  OCI_MT_MANIFEST, manifest.data, manifest.len, err) < 0) {
            ocib_error_wrap(err, "--cache-to %s", ref_str);
            goto out;
        }
    }
    r = 0;
out:
    for (size_t i = 0; i < n; i++)
        blob_source_release(&all[i]);
    free(all);
    oci_image_release(&img);
    oci_blob_release(&config);
    oci_blob_release(&map);
    oci_blob_release(&manifest);
    reference_release(&ref);
    return r;
}
