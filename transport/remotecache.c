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

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EMPTY_MT "application/vnd.oci.empty.v1+json"

void remote_cache_init(struct remote_cache *rc)
{
    rc->entries = json_object();
    rc->defs = json_object();
    rc->mine = json_object();
}

void remote_cache_release(struct remote_cache *rc)
{
    json_decref(rc->entries);
    json_decref(rc->defs);
    json_decref(rc->mine);
    rc->entries = rc->defs = rc->mine = NULL;
}

/* The map stored at ref, or *ret NULL when there is none (404: the first CI
 * run).  direct: from the registry itself, never a mirror (what --cache-to
 * re-reads must be the registry's current state). */
static int fetch_map(struct registries *rs, const struct reference *ref,
                     const char *ref_str, bool direct, json_t **ret, struct ocib_error *err)
{
    struct registry_manifest m = {0};
    struct ocib_error probe = OCIB_ERROR_INIT;
    _cleanup_json_ json_t *mj = NULL;
    _cleanup_free_ char *buf = NULL;
    struct oci_descriptor d = {0};
    const char *at = ref->digest ?: ref->tag;
    struct registry *reg = NULL;
    size_t len;
    int rc = -1, got;

    if (direct && registries_get(rs, ref->registry, &reg, err) < 0)
        return -1;
    got = direct ? registry_manifest_get(reg, ref->repository, at, &m, &probe)
                 : remote_manifest_get(rs, ref->registry, ref->repository, at, &m, NULL,
                                       &probe);
    if (got < 0) {
        if (ocib_error_kind(&probe) != OCIB_ERR_NOT_FOUND) {
            if (err)
                *err = probe;
            return -1;
        }
        *ret = NULL;
        return 0;
    }
    if (oci_json_parse(m.data, m.len, ref_str, &mj, err) < 0)
        goto out;
    if (oci_descriptor_from_json(json_array_get(json_object_get(mj, "layers"), 0), ref_str,
                                 &d, err) < 0 ||
        strcmp(d.media_type, REMOTE_CACHE_MEDIA_TYPE)) {
        ocib_error_set(err, "%s: not an ocib cache artifact", ref_str);
        goto out;
    }
    got = direct ? registry_blob_get_mem(reg, ref->repository, &d.digest, OCI_JSON_MAX,
                                         &buf, &len, err)
                 : remote_blob_get_mem(rs, ref->registry, ref->repository, &d.digest,
                                       OCI_JSON_MAX, &buf, &len, err);
    if (got < 0 || oci_json_parse(buf, len, ref_str, ret, err) < 0)
        goto out;
    rc = 0;
out:
    oci_descriptor_release(&d);
    registry_manifest_release(&m);
    return rc;
}

int remote_cache_load(struct remote_cache *rc, struct registries *rs, const char *ref_str,
                      struct ocib_error *err)
{
    struct reference ref;
    _cleanup_json_ json_t *map = NULL;
    const char *key;
    json_t *v;

    if (image_name_reference(ref_str, &ref, err) < 0)
        return ocib_error_wrap(err, "--cache-from");
    if (fetch_map(rs, &ref, ref_str, false, &map, err) < 0) {
        reference_release(&ref);
        return ocib_error_wrap(err, "--cache-from %s", ref_str);
    }
    json_object_foreach(json_object_get(map, "entries"), key, v)
    {
        json_t *e;

        if (!json_is_object(v) || json_object_get(rc->entries, key))
            continue;
        e = json_deep_copy(v);
        json_object_set_new(e, "host", json_string(ref.registry));
        json_object_set_new(e, "repo", json_string(ref.repository));
        json_object_set_new(rc->entries, key, e);
    }
    json_object_foreach(json_object_get(map, "defs"), key, v)
        json_object_set_new(rc->defs, key, json_true());
    reference_release(&ref);
    return 0;
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
    /* Apart from the loaded entries: a later layer with the same key (two
     * stages with the same first layer) still finds the remote blob. */
    json_object_set_new(rc->mine, key->str,
                        json_pack("{s:s, s:s, s:I, s:s}", "digest", l->digest.str,
                                  "diff_id", l->diff_id.str, "size", (json_int_t)l->size,
                                  "mediaType", l->media_type));
    json_object_set_new(rc->defs, def->str, json_true());
}

/* The generation of a map entry or def (0 for maps written before
 * generations). */
static json_int_t gen_of(const json_t *v)
{
    const json_t *g = json_is_object(v) ? json_object_get(v, "gen") : v;

    return json_is_integer(g) ? json_integer_value(g) : 0;
}

struct aged {
    char *key;
    json_int_t gen;
};

static int by_gen(const void *a, const void *b)
{
    json_int_t x = ((const struct aged *)a)->gen, y = ((const struct aged *)b)->gen;

    return x < y ? -1 : x > y;
}

/* Drops the oldest members of obj (lowest generation) that mine does not
 * hold until at most max are left. */
static void evict(json_t *obj, const json_t *mine, size_t max)
{
    size_t n = json_object_size(obj), k = 0;
    struct aged *v;
    const char *key;
    json_t *val;

    if (n <= max)
        return;
    v = xcalloc(n, sizeof(*v));
    json_object_foreach(obj, key, val)
    {
        if (!json_object_get(mine, key))
            v[k++] = (struct aged){xstrdup(key), gen_of(val)};
    }
    qsort(v, k, sizeof(*v), by_gen);
    for (size_t i = 0; i < k; i++) {
        if (json_object_size(obj) > max)
            json_object_del(obj, v[i].key);
        free(v[i].key);
    }
    free(v);
}

/* cur (may be NULL) with this build's entries and defs over it: *ret is the
 * map to write, NULL when cur already holds all of them. */
static void merge_map(const json_t *cur, const json_t *entries, const json_t *defs,
                      json_t **ret)
{
    const json_t *ce = json_object_get(cur, "entries"), *cd = json_object_get(cur, "defs");
    bool both = json_is_object(ce) && json_is_object(cd);
    json_t *out_e = both ? json_deep_copy(ce) : json_object();
    json_t *out_d = both ? json_deep_copy(cd) : json_object();
    json_int_t gen = 0;
    bool changed = false;
    const char *key;
    json_t *v;

    json_object_foreach(out_e, key, v) gen = gen_of(v) > gen ? gen_of(v) : gen;
    json_object_foreach(out_d, key, v) gen = gen_of(v) > gen ? gen_of(v) : gen;
    gen++;
    json_object_foreach((json_t *)entries, key, v)
    {
        const json_t *have = json_object_get(out_e, key);
        const char *d = oci_json_str(v, "digest");

        if (have && d && oci_json_str(have, "digest") &&
            !strcmp(d, oci_json_str(have, "digest")))
            continue;
        json_t *e = json_deep_copy(v);

        json_object_set_new(e, "gen", json_integer(gen));
        json_object_set_new(out_e, key, e);
        changed = true;
    }
    json_object_foreach((json_t *)defs, key, v)
    {
        if (json_object_get(out_d, key))
            continue;
        json_object_set_new(out_d, key, json_integer(gen));
        changed = true;
    }
    if (!changed) {
        json_decref(out_e);
        json_decref(out_d);
        *ret = NULL;
        return;
    }
    evict(out_e, entries, REMOTE_CACHE_MAX_ENTRIES);
    evict(out_d, defs, REMOTE_CACHE_MAX_ENTRIES);
    *ret = json_pack("{s:i, s:o, s:o}", "v", 1, "entries", out_e, "defs", out_d);
}
/* Writes map as the artifact at ref: the map's blob, then the manifest
 * (config is the empty config, already pushed). */
static int write_map(struct registry *reg, const struct reference *ref, const json_t *map,
                     const struct oci_blob *config, struct ocib_error *err)
{
    struct oci_blob blob = {NULL, 0, {""}}, manifest = {NULL, 0, {""}};
    json_t *m;
    int rc = 0;

    blob.data = oci_json_canonical(map, &blob.len);
    oci_digest_of(blob.data, blob.len, &blob.digest);
    m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}",
                  "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST, "artifactType",
                  REMOTE_CACHE_ARTIFACT_TYPE, "config", "mediaType", EMPTY_MT, "digest",
                  config->digest.str, "size", (json_int_t)config->len, "layers",
                  "mediaType", REMOTE_CACHE_MEDIA_TYPE, "digest", blob.digest.str, "size",
                  (json_int_t)blob.len);
    manifest.data = oci_json_canonical(m, &manifest.len);
    json_decref(m);
    if (registry_blob_push(reg, ref->repository, &blob.digest, (int64_t)blob.len, -1,
                           blob.data, NULL, err) < 0 ||
        registry_manifest_put(reg, ref->repository, ref->digest ?: ref->tag,
                              OCI_MT_MANIFEST, manifest.data, manifest.len, err) < 0)
        rc = -1;
    oci_blob_release(&blob);
    oci_blob_release(&manifest);
    return rc;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Makes the artifact at ref hold entries and defs besides what it holds:
 * read, merge, write, and read again after a pause, starting over when
 * another writer replaced it in between. */
static int update_map(struct registries *rs, const struct reference *ref,
                      const char *ref_str, const json_t *entries, const json_t *defs,
                      const struct oci_blob *config, struct ocib_error *err)
{
    struct registry *reg;

    if (registries_get(rs, ref->registry, &reg, err) < 0)
        return -1;
    for (int attempt = 0; attempt < REMOTE_CACHE_TRIES; attempt++) {
        _cleanup_json_ json_t *cur = NULL;
        _cleanup_json_ json_t *next = NULL;

        if (fetch_map(rs, ref, ref_str, true, &cur, err) < 0)
            return -1;
        merge_map(cur, entries, defs, &next);
        if (!next)
            return 0; /* all there: nothing to write, or our write seen in place */
        if (write_map(reg, ref, next, config, err) < 0)
            return -1;
        /* A writer that read before our write lands its own within its
         * GET..PUT span (four small requests), far less than this pause;
         * then the next read misses our entries and we merge again. */
        pause_ms(150 + 100L * attempt + (long)(getpid() % 64));
    }
    return ocib_error_set(err, "concurrent writers kept replacing it (%d tries)",
                          REMOTE_CACHE_TRIES);
}

int remote_cache_push(const struct remote_cache *rc, struct registries *rs, struct cache *c,
                      const char *ref_str, const struct blob_source *srcs, size_t n_srcs,
                      struct ocib_error *err)
{
    struct reference ref;
    struct oci_image img;
    struct oci_blob config = {NULL, 0, {""}};
    struct blob_source *all = NULL;
    size_t n = 0;
    char *tags[1] = {NULL};
    int r = -1;

    if (image_name_reference(ref_str, &ref, err) < 0)
        return ocib_error_wrap(err, "--cache-to");
    config.data = xstrdup("{}");
    config.len = 2;
    oci_digest_of(config.data, config.len, &config.digest);

    /* The layer blobs go through the image pusher (which mounts or skips
     * what is there) as the layers of an image without a manifest. */
    memset(&img, 0, sizeof(img));
    img.config = json_object();
    img.annotations = json_object();
    all = xcalloc(n_srcs + 1, sizeof(*all));
    for (size_t i = 0; i < n_srcs; i++) {
        bool dup = false;
        struct oci_layer l = {.desc = {.media_type = xstrdup(OCI_MT_LAYER_GZIP),
                                       .digest = srcs[i].digest,
                                       .size = srcs[i].size},
                              .diff_id = srcs[i].digest};

        for (size_t k = 0; k < n; k++)
            dup |= oci_digest_equal(&all[k].digest, &srcs[i].digest);
        if (dup) {
            free(l.desc.media_type);
            continue;
        }
        blob_source_copy(&srcs[i], &all[n]);
        XGROW(img.layers, img.alloc_layers, img.n_layers + 1);
        img.layers[img.n_layers++] = l;
        n++;
    }
    if (remote_push_image(rs, c, ref.registry, ref.repository, &img, all, &config, NULL,
                          NULL, tags, 0, err) < 0 ||
        update_map(rs, &ref, ref_str, rc->mine, rc->defs, &config, err) < 0) {
        ocib_error_wrap(err, "--cache-to %s", ref_str);
        goto out;
    }
    r = 0;
out:
    for (size_t i = 0; i < n; i++)
        blob_source_release(&all[i]);
    free(all);
    oci_image_release(&img);
    oci_blob_release(&config);
    reference_release(&ref);
    return r;
}
