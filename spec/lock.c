/*
 * The lock file; see lock.h.
 */
#include "spec/lock.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "layers/compress.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/reference.h"

#include <string.h>

#define LOCK_NAME "ocib.lock.json"
#define LOCK_MAX (4 * 1024 * 1024)

char *lock_path(const struct spec *spec)
{
    return fs_path_join(spec->dir, LOCK_NAME);
}

int lock_load(const struct spec *spec, json_t **ret, struct ocib_error *err)
{
    _cleanup_free_ char *path = lock_path(spec);
    _cleanup_free_ char *buf = NULL;
    size_t len;

    *ret = NULL;
    if (!fs_exists(path))
        return 0;
    if (fs_read_file(path, LOCK_MAX, &buf, &len, err) < 0 ||
        oci_json_parse(buf, len, path, ret, err) < 0)
        return -1;
    if (json_integer_value(json_object_get(*ret, "lockVersion")) != 1) {
        json_decref(*ret);
        *ret = NULL;
        return ocib_error_set(err, "%s: unknown lockVersion; run 'ocib lock --update'",
                              path);
    }
    return 0;
}

static void stage_platform(const struct spec_stage *st, const struct oci_platform *def,
                           char *buf, size_t size)
{
    struct oci_platform host;

    if (st->has_platform) {
        oci_platform_format(&st->platform, buf, size);
        return;
    }
    if (!def) {
        oci_platform_host(&host);
        def = &host;
    }
    oci_platform_format(def, buf, size);
}

char *lock_pinned(const json_t *lock, const char *from, const char *platform)
{
    const json_t *img = json_object_get(json_object_get(lock, "images"), from);
    const char *ref = oci_json_str(img, "reference");
    const char *digest = oci_json_str(json_object_get(img, "manifests"), platform);
    struct reference r;
    char *name, *out;

    if (!ref || !digest || reference_parse(ref, &r, NULL) < 0)
        return NULL;
    name = reference_name(&r);
    out = xasprintf("%s@%s", name, digest);
    free(name);
    reference_release(&r);
    return out;
}

/* Resolves one image for one platform into entry (index + manifests). */
static int resolve(struct registries *rs, const struct reference *ref, const char *platform,
                   json_t *entry, struct ocib_error *err)
{
    struct registry_manifest m = {0};
    struct oci_platform p;
    json_t *manifests = json_object_get(entry, "manifests");
    int rc = -1;

    if (oci_platform_parse(platform, &p, err) < 0 ||
        remote_manifest_get(rs, ref->registry, ref->repository, ref->digest ?: ref->tag, &m,
                            NULL, err) < 0)
        return -1;
    if (oci_mt_is_index(m.media_type)) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *avail = NULL;
        const json_t *e;

        json_object_set_new(entry, "index", json_string(m.digest.str));
        if (oci_json_parse(m.data, m.len, "index", &j, err) < 0)
            goto out;
        e = oci_index_pick(json_object_get(j, "manifests"), &p, &avail);
        if (!e) {
            ocib_error_set(err, "%s/%s: the index has no image for %s (it has %s)",
                           ref->registry, ref->repository, platform, avail);
            goto out;
        }
        if (!oci_digest_valid(oci_json_str(e, "digest") ?: "")) {
            ocib_error_set(err, "%s/%s: the index's entry for %s has an invalid digest",
                           ref->registry, ref->repository, platform);
            goto out;
        }
        json_object_set_new(manifests, platform, json_string(oci_json_str(e, "digest")));
        rc = 0;
        goto out;
    }
    json_object_del(entry, "index");
    json_object_set_new(manifests, platform, json_string(m.digest.str));
    rc = 0;
out:
    registry_manifest_release(&m);
    return rc;
}

int lock_write(const struct spec *spec, struct registries *rs, struct cache *c,
               const struct oci_platform *platform, bool update, struct ocib_error *err)
{
    _cleanup_json_ json_t *old = NULL;
    _cleanup_json_ json_t *lock = NULL;
    _cleanup_free_ char *path = lock_path(spec);
    _cleanup_free_ char *bytes = NULL;
    json_t *images;
    size_t len;

    if (lock_load(spec, &old, update ? NULL : err) < 0 && !update)
        return -1;
    images = json_object();
    lock = json_pack("{s:i, s:s, s:s, s:{s:s, s:s}, s:o}", "lockVersion", 1, "ocib",
                     OCIB_VERSION, "format", OCIB_FORMAT_VERSION, "compression", "gzip",
                     layer_compression_settings(LAYER_COMPRESSION_GZIP), "zstd",
                     layer_compression_settings(LAYER_COMPRESSION_ZSTD), "images", images);
    for (size_t s = 0; s < spec->n_stages; s++) {
        const struct spec_stage *st = &spec->stages[s];
        char plat[96];
        json_t *entry, *prev;
        _cleanup_free_ char *ref = NULL;

        if (st->from.kind != SPEC_FROM_REGISTRY)
            continue;
        stage_platform(st, platform, plat, sizeof(plat));
        ref = reference_string(&st->from.ref);
        entry = json_object_get(images, st->from.text);
        if (!entry) {
            entry = json_pack("{s:s, s:{}}", "reference", ref, "manifests");
            json_object_set_new(images, st->from.text, entry);
        }
        prev = json_object_get(json_object_get(old, "images"), st->from.text);
        if (!update && prev && !strcmp(oci_json_str(prev, "reference") ?: "", ref)) {
            /* Keep every platform already pinned, not only this one. */
            struct reference pinned = st->from.ref;
            const char *index = oci_json_str(prev, "index");

            json_object_update_missing(json_object_get(entry, "manifests"),
                                       json_object_get(prev, "manifests"));
            if (index)
                json_object_set_new(entry, "index", json_string(index));
            if (oci_json_str(json_object_get(entry, "manifests"), plat))
                continue;
            /* A new platform comes from the index already pinned. */
            if (index)
                pinned.digest = (char *)index;
            if (resolve(rs, &pinned, plat, entry, err) < 0)
                return ocib_error_wrap(err, "%s.from %s", st->where, st->from.text);
            continue;
        }
        if (resolve(rs, &st->from.ref, plat, entry, err) < 0)
            return ocib_error_wrap(err, "%s.from %s", st->where, st->from.text);
        /* --update refreshes every platform that was pinned, not only this
         * one, so that a lock never mixes two states of a tag. */
        if (update && prev && !strcmp(oci_json_str(prev, "reference") ?: "", ref)) {
            const char *p;
            json_t *v;

            json_object_foreach(json_object_get(prev, "manifests"), p, v)
            {
                if (oci_json_str(json_object_get(entry, "manifests"), p))
                    continue;
                if (resolve(rs, &st->from.ref, p, entry, err) < 0)
                    return ocib_error_wrap(err, "%s.from %s (%s)", st->where, st->from.text,
                                           p);
            }
        }
    }
    (void)c;
    bytes = oci_json_canonical(lock, &len);
    {
        _cleanup_free_ char *line = xasprintf("%s\n", bytes);

        return fs_write_file_atomic(path, line, len + 1, 0644, err);
    }
}

int lock_check(const json_t *lock, const struct spec *spec, const size_t *order, size_t n,
               const struct oci_platform *default_platform, struct ocib_error *err)
{
    _cleanup_free_ char *path = lock_path(spec);

    if (!lock)
        return ocib_error_set(err, "--locked: there is no %s; run 'ocib lock'", path);
    for (size_t k = 0; k < n; k++) {
        const struct spec_stage *st = &spec->stages[order[k]];
        const json_t *img;
        _cleanup_free_ char *ref = NULL;
        char plat[96];

        if (st->from.kind != SPEC_FROM_REGISTRY)
            continue;
        stage_platform(st, default_platform, plat, sizeof(plat));
        ref = reference_string(&st->from.ref);
        img = json_object_get(json_object_get(lock, "images"), st->from.text);
        if (!img || strcmp(oci_json_str(img, "reference") ?: "", ref))
            return ocib_error_set(err,
                                  "--locked: %s is stale: it does not pin \"%s\" (%s); run "
                                  "'ocib lock'",
                                  path, st->from.text, st->where);
        if (!oci_json_str(json_object_get(img, "manifests"), plat))
            return ocib_error_set(err,
                                  "--locked: %s is stale: \"%s\" is not pinned for %s; run "
                                  "'ocib lock'",
                                  path, st->from.text, plat);
    }
    return 0;
}
