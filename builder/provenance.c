/*
 * The provenance of a build (--provenance): an in-toto Statement v1 whose
 * subject is a platform's image manifest, with a SLSA Provenance v1
 * predicate saying what was built from what.
 *
 * It holds only what decides the image and can be shown to anyone: the
 * spec's path relative to the context and its digest, the target, the
 * platforms, build arguments and tags; ocib's version and output settings;
 * every base and every image a copy reads, by digest; the git remote
 * (without credentials) and commit; the layers' cache keys.  Never a
 * secret's content or source path, a host path, or the time of the build.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "builder/git.h"
#include "oci/json.h"

#include <stdlib.h>
#include <string.h>

#define BUILD_TYPE "https://ocib.dev/provenance/build/v" OCIB_FORMAT_VERSION
#define SPEC_MAX (4 * 1024 * 1024)

static json_t *sha256_digest(const char *digest)
{
    return json_pack("{s:s}", "sha256",
                     !strncmp(digest, "sha256:", 7) ? digest + 7 : digest);
}

/* The spec's path relative to the context (its name alone when outside),
 * and its digest. */
static json_t *spec_param(struct build *b)
{
    _cleanup_free_ char *ctx = realpath(b->ctx.dir, NULL);
    _cleanup_free_ char *data = NULL;
    const char *rel =
        strrchr(b->spec_abs, '/') ? strrchr(b->spec_abs, '/') + 1 : b->spec_abs;
    char hex[SHA256_HEX_LEN + 1] = "";
    size_t len = 0, cl = ctx ? strlen(ctx) : 0;
    json_t *j;

    if (ctx && !strncmp(b->spec_abs, ctx, cl) && b->spec_abs[cl] == '/')
        rel = b->spec_abs + cl + 1;
    j = json_pack("{s:s}", "path", rel);
    if (fs_read_file(b->spec_abs, SPEC_MAX, &data, &len, NULL) == 0) {
        sha256_hex(data, len, hex);
        json_object_set_new(j, "digest", json_pack("{s:s}", "sha256", hex));
    }
    return j;
}

static json_t *external_parameters(struct build *b)
{
    const struct build_options *o = b->o;
    json_t *plats = json_array(), *args = json_object(), *tags = json_array();

    for (size_t i = 0; i < b->n_plats; i++) {
        char p[96];

        oci_platform_format(&b->plats[i].platform, p, sizeof(p));
        json_array_append_new(plats, json_string(p));
    }
    for (size_t i = 0; i < o->n_build_args; i++) {
        const char *eq = strchr(o->build_args[i], '=');
        _cleanup_free_ char *k =
            eq ? xstrndup(o->build_args[i], (size_t)(eq - o->build_args[i]))
               : xstrdup(o->build_args[i]);

        json_object_set_new(args, k, json_string(eq ? eq + 1 : ""));
    }
    for (size_t i = 0; i < b->n_names; i++)
        if (b->names[i].repo)
            json_array_append_new(tags,
                                  json_sprintf("%s:%s", b->names[i].repo, b->names[i].tag));
    return json_pack("{s:o,s:s,s:o,s:o,s:o}", "spec", spec_param(b), "target",
                     b->p->spec.stages[b->p->target].name, "platforms", plats, "buildArgs",
                     args, "tags", tags);
}

static json_t *internal_parameters(struct build *b)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I}", "ocibVersion", OCIB_VERSION, "formatVersion",
                     OCIB_FORMAT_VERSION, "format",
                     b->o->format == OCI_FORMAT_DOCKER ? "docker" : "oci", "compression",
                     layer_compression_settings(b->o->compression), "sourceDateEpoch",
                     (json_int_t)b->epoch);
}

/* Every base and every image a copy reads (the stages with an image
 * `from`), by digest; the git repository and commit. */
static json_t *dependencies(struct build *b, const struct build_platform *bp)
{
    json_t *deps = json_array();

    for (size_t k = 0; k < bp->n_order; k++) {
        const struct spec_stage *st = &bp->spec.stages[bp->order[k]];
        const struct stage_image *si = &bp->stages[bp->order[k]];
        _cleanup_free_ char *uri = NULL;
        const char *d;

        if (st->from.kind != SPEC_FROM_REGISTRY && st->from.kind != SPEC_FROM_OCI &&
            st->from.kind != SPEC_FROM_ARCHIVE)
            continue;
        d = oci_json_str(si->img.annotations, ANNOTATION_PREFIX "base.digest");
        if (!d || !*d)
            continue;
        if (st->from.kind == SPEC_FROM_REGISTRY && strncmp(st->from.text, "docker://", 9))
            uri = xasprintf("docker://%s", st->from.text);
        else
            uri = xstrdup(st->from.text);
        json_array_append_new(deps, json_pack("{s:s,s:o,s:{s:s}}", "uri", uri, "digest",
                                              sha256_digest(d), "annotations", "stage",
                                              st->image_only ? "(copy source)" : st->name));
    }
    if (b->git_full) {
        _cleanup_free_ char *url = git_remote_url(b->ctx.dir);
        _cleanup_free_ char *uri = url ? xasprintf("git+%s", url) : xstrdup("git");

        json_array_append_new(deps, json_pack("{s:s,s:{s:s}}", "uri", uri, "digest",
                                              "gitCommit", b->git_full));
    }
    return deps;
}

/* The cache key of every layer of the stages built. */
static json_t *byproducts(const struct build_platform *bp)
{
    json_t *list = json_array();

    for (size_t k = 0; k < bp->n_order; k++) {
        const struct spec_stage *st = &bp->spec.stages[bp->order[k]];
        const struct stage_image *si = &bp->stages[bp->order[k]];

        for (size_t i = 1; i < si->n_keys; i++) {
            if (!si->keys[i].str[0])
                continue;
            _cleanup_free_ char *what = xasprintf("layer key %s/%zu", st->name, i);

            json_array_append_new(list, json_pack("{s:s,s:o}", "name", what, "digest",
                                                  sha256_digest(si->keys[i].str)));
        }
    }
    return list;
}

void provenance_document(struct build *b, const struct build_platform *bp,
                         struct oci_blob *ret)
{
    const char *name = b->names[0].repo ?: "image";
    json_t *st = json_pack(
        "{s:s,s:[{s:s,s:o}],s:s,s:{s:{s:s,s:o,s:o,s:o},s:{s:{s:s,s:{s:s}},s:o}}}", "_type",
        "https://in-toto.io/Statement/v1", "subject", "name", name, "digest",
        sha256_digest(bp->manifest.digest.str), "predicateType",
        "https://slsa.dev/provenance/v1", "predicate", "buildDefinition", "buildType",
        BUILD_TYPE, "externalParameters", external_parameters(b), "internalParameters",
        internal_parameters(b), "resolvedDependencies", dependencies(b, bp), "runDetails",
        "builder", "id", "https://ocib.dev/ocib", "version", "ocib", OCIB_VERSION,
        "byproducts", byproducts(bp));

    ret->data = oci_json_canonical(st, &ret->len);
    oci_digest_of(ret->data, ret->len, &ret->digest);
    json_decref(st);
}
