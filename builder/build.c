/*
 * The build driver; see build.h.  A build runs in three steps: prepare
 * (spec, lock, context, names, cache), build the target's stages in order,
 * then finish (annotations, outputs, pushes, the remote cache).
 */
#include "builder/build.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "builder/driver.h"
#include "builder/git.h"
#include "cache/maint.h"
#include "oci/index.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "spec/lock.h"
#include "transport/name.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int build_output_parse(const char *s, struct build_output *ret, struct ocib_error *err)
{
    struct image_name n;

    if (image_name_parse(s, IMAGE_NAME_LOCAL, &n, err) < 0)
        return ocib_error_wrap(err, "--output");
    ret->kind = n.kind == IMAGE_NAME_OCI ? BUILD_OUTPUT_OCI : BUILD_OUTPUT_ARCHIVE;
    ret->path = TAKE_PTR(n.path);
    ret->tag = TAKE_PTR(n.tag);
    image_name_release(&n);
    return 0;
}

void build_result_release(struct build_result *r)
{
    free(r->reference);
    r->reference = NULL;
}

/* The stage --target names, or the last declared one. */
static int find_target(struct build *b, struct ocib_error *err)
{
    int t;

    if (!b->o->target) {
        b->p->target = b->p->spec.n_declared - 1;
        return 0;
    }
    t = spec_stage_find(&b->p->spec, b->o->target);
    if (t < 0) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        for (size_t i = 0; i < b->p->spec.n_declared; i++)
            strbuf_addf(&sb, "%s%s", i ? ", " : "", b->p->spec.stages[i].name);
        return ocib_error_usage(err, "--target %s: no such stage in '%s' (stages: %s)",
                                b->o->target, b->spec_path, strbuf_str(&sb));
    }
    b->p->target = (size_t)t;
    return 0;
}

/* The git revision the image is annotated with, and (when ocib asked git
 * itself) what the work tree holds that HEAD does not. */
static void read_revision(struct build *b, const char *ctx_dir)
{
    const struct build_options *o = b->o;

    if (o->revision) {
        b->git_full = xstrdup(o->revision);
        b->git_short = xstrdup(o->revision_short ? o->revision_short : o->revision);
        return;
    }
    if (git_head(ctx_dir, &b->git_full, &b->git_short) < 0)
        return;
    b->dirty = git_dirty_load(ctx_dir);
    b->ctx.dirty = b->dirty;
    context_note_read(&b->ctx, b->spec_path);
    if (b->ctx.ignore_file) {
        _cleanup_free_ char *ig = fs_path_join(ctx_dir, b->ctx.ignore_file);

        context_note_read(&b->ctx, ig);
    }
}

/* Loads the spec once per platform (its build arguments differ), finds the
 * target and the stages it needs, and checks secrets and the lock for each;
 * b->p is the first platform then. */
static int load_platforms(struct build *b, struct ocib_error *err)
{
    const struct build_options *o = b->o;

    b->n_plats = o->n_platforms ? o->n_platforms : 1;
    b->plats = xcalloc(b->n_plats, sizeof(*b->plats));
    for (size_t i = 0; i < b->n_plats; i++) {
        struct build_platform *bp = &b->plats[i];
        struct spec_inputs in = {o->build_args, o->n_build_args, &bp->platform};

        if (o->n_platforms)
            bp->platform = o->platforms[i];
        else
            oci_platform_host(&bp->platform);
        b->p = bp;
        if (spec_load(&bp->spec, b->spec_path, &in, err) < 0 || find_target(b, err) < 0)
            return -1;
        bp->order = xcalloc(bp->spec.n_stages, sizeof(*bp->order));
        spec_stage_order(&bp->spec, bp->target, bp->order, &bp->n_order);
        if (check_secrets(b, bp->order, bp->n_order, err) < 0 ||
            check_isolation(b, bp->order, bp->n_order, err) < 0 ||
            (i == 0 && lock_load(&bp->spec, &b->lock, err) < 0))
            return -1;
        if (o->locked &&
            lock_check(b->lock, &bp->spec, bp->order, bp->n_order, &bp->platform, err) < 0)
            return -1;
    }
    b->p = &b->plats[0];
    return 0;
}

/* Everything before the first stage: the spec and its lock, the context,
 * the names and push targets, registries, the remote and local caches. */
static int build_prepare(struct build *b, struct ocib_error *err)
{
    const struct build_options *o = b->o;
    const char *ctx_dir = o->context_dir ?: ".";

    b->spec_path =
        o->spec_file ? xstrdup(o->spec_file) : fs_path_join(ctx_dir, "ocib.json");

    if (o->format == OCI_FORMAT_DOCKER && o->compression == LAYER_COMPRESSION_ZSTD)
        return ocib_error_usage(err, "--compression zstd needs --format oci: Docker's "
                                     "format has no zstd layers");
    for (size_t i = 0; o->format == OCI_FORMAT_DOCKER && i < o->n_outputs; i++)
        if (o->outputs[i].kind == BUILD_OUTPUT_OCI)
            return ocib_error_usage(err,
                                    "--output oci:%s with --format docker: an OCI layout "
                                    "holds OCI manifests (skopeo, umoci and podman refuse "
                                    "others); push, or write docker-archive:FILE",
                                    o->outputs[i].path);
    for (size_t i = 0; o->n_platforms > 1 && i < o->n_outputs; i++)
        if (o->outputs[i].kind == BUILD_OUTPUT_ARCHIVE)
            return ocib_error_usage(
                err,
                "--output docker-archive:%s holds one platform's image "
                "(docker load reads no index); with %zu platforms write "
                "oci:DIR or --push",
                o->outputs[i].path, o->n_platforms);
    if (o->format == OCI_FORMAT_DOCKER && !o->n_outputs && !o->push)
        return ocib_error_usage(err, "--format docker: needs --push or --output "
                                     "docker-archive:FILE (the default output, ./ocib-out, "
                                     "is an OCI layout)");
    if (o->has_epoch)
        b->epoch = o->epoch;
    oci_time_format(b->epoch, b->created);
    if (unpack_limits_init(&b->limits, err) < 0 || load_platforms(b, err) < 0)
        return -1;
    if (!o->n_outputs && !o->push) {
        static struct build_output default_out = {.kind = BUILD_OUTPUT_OCI,
                                                  .path = (char *)"ocib-out"};

        b->with_default = *o;
        b->with_default.outputs = &default_out;
        b->with_default.n_outputs = 1;
        b->o = &b->with_default;
    }
    if (context_open(&b->ctx, ctx_dir, err) < 0)
        return -1;
    b->ctx.max_file = b->limits.max_layer_bytes;
    read_revision(b, ctx_dir);
    if (result_names(b, &b->names, &b->n_names, err) < 0)
        return -1;
    if (o->push && push_targets(b, &b->targets, &b->n_targets, err) < 0)
        return -1;
    if (registries_new(o->insecure, o->n_insecure, o->cert_dir, &b->registries, err) < 0)
        return -1;
    progress_watch_registries(b);
    for (size_t i = 0; i < o->n_cache_from; i++)
        if (remote_cache_load(&b->remote, b->registries, o->cache_from[i], err) < 0)
            return -1;
    b->cache_dir = o->cache_dir ? xstrdup(o->cache_dir) : cache_default_dir();
    if (cache_open(&b->cache, b->cache_dir, err) < 0)
        return -1;
    /* ocib's own outputs are never its input, wherever they are written. */
    for (size_t i = 0; i < b->o->n_outputs; i++)
        context_exclude_own(&b->ctx, b->o->outputs[i].path);
    context_exclude_own(&b->ctx, b->cache_dir);
    context_exclude_own(&b->ctx, o->digest_file);

    _cleanup_free_ char *abs = realpath(ctx_dir, NULL);

    b->stat = stat_cache_load(&b->cache, abs ? abs : ctx_dir);
    b->spec_abs = realpath(b->spec_path, NULL);
    if (!b->spec_abs)
        b->spec_abs = xstrdup(b->spec_path);
    return 0;
}

static void announce_inputs(struct build *b)
{
    /* One short line for people; every setting for programs (and, in the
     * image, the dev.ocib.* annotations). */
    _cleanup_free_ char *text = xasprintf(
        "ocib %s: %s, %s, timestamps %lld", OCIB_VERSION,
        b->o->format == OCI_FORMAT_DOCKER ? "docker format" : "oci format",
        b->o->compression == LAYER_COMPRESSION_ZSTD ? "zstd" : "gzip", (long long)b->epoch);
    _cleanup_free_ char *detail =
        xasprintf("SOURCE_DATE_EPOCH=%lld, compression %s, ocib %s (output format %s)",
                  (long long)b->epoch, layer_compression_settings(b->o->compression),
                  OCIB_VERSION, OCIB_FORMAT_VERSION);
    struct build_event ev = {
        .kind = BUILD_EVENT_INFO, .status = "inputs", .text = text, .detail = detail};

    progress(b, &ev);
}

static int build_stages(struct build *b, struct ocib_error *err)
{
    for (size_t i = 0; i < b->n_plats; i++) {
        struct build_platform *bp = &b->plats[i];

        b->p = bp;
        bp->stages = xcalloc(bp->spec.n_stages, sizeof(*bp->stages));
        for (size_t s = 0; s < bp->spec.n_stages; s++)
            rootfs_init(&bp->stages[s].root);
        for (size_t k = 0; k < bp->n_order; k++)
            if (build_stage(b, bp->order[k], err) < 0)
                return -1;
    }
    if (b->ctx.n_dirty_read &&
        untrue_revision(b, b->targets, b->n_targets, &b->names, &b->n_names, err) < 0)
        return -1;
    return 0;
}

/* The annotations every result gets: when, from which commit, and what
 * decides the digest besides the inputs (for auditors). */
static void annotate(struct build *b, json_t *annotations)
{
    json_object_set_new(annotations, ANNOTATION_PREFIX "created", json_string(b->created));
    if (b->git_full)
        json_object_set_new(annotations, ANNOTATION_PREFIX "revision",
                            json_string(b->git_full));
    json_object_set_new(annotations, "dev.ocib.format", json_string(OCIB_FORMAT_VERSION));
    json_object_set_new(annotations, "dev.ocib.compression",
                        json_string(layer_compression_settings(b->o->compression)));
    json_object_set_new(annotations, "dev.ocib.source-date-epoch",
                        json_sprintf("%lld", (long long)b->epoch));
}

/* Each platform's config and manifest bytes; with several platforms, the
 * index over them. */
static int build_seal(struct build *b, struct ocib_error *err)
{
    _cleanup_free_ struct oci_index_entry *entries = xcalloc(b->n_plats, sizeof(*entries));
    json_t *annotations;

    for (size_t i = 0; i < b->n_plats; i++) {
        struct build_platform *bp = &b->plats[i];
        struct oci_image *img = &bp->stages[bp->target].img;

        annotate(b, img->annotations);
        if (oci_image_serialize_as(img, b->o->format, &bp->config, &bp->manifest, err) < 0)
            return -1;
        entries[i].manifest = &bp->manifest;
        entries[i].config = img->config;
    }
    if (b->n_plats == 1)
        return 0;
    annotations = json_object();
    annotate(b, annotations);
    oci_index_serialize(entries, b->n_plats, b->o->format, annotations, &b->index);
    json_decref(annotations);
    return 0;
}

/* Sends every layer blob of the built stages to --cache-to. */
static int push_cache(struct build *b, struct ocib_error *err)
{
    _cleanup_free_ struct blob_source *all = NULL;
    size_t n_all = 0, alloc_all = 0;

    for (size_t p = 0; p < b->n_plats; p++) {
        const struct build_platform *bp = &b->plats[p];

        for (size_t k = 0; k < bp->n_order; k++) {
            const struct stage_image *si = &bp->stages[bp->order[k]];

            for (size_t i = 0; i < si->n_srcs; i++) {
                XGROW(all, alloc_all, n_all + 1);
                all[n_all++] = si->srcs[i];
            }
        }
    }
    return remote_cache_push(&b->remote, b->registries, &b->cache, b->o->cache_to, all,
                             n_all, err);
}

/* Pushes the result to target t: the image, or every platform's image
 * (under its digest) and then the index under the tags. */
static int push_result(struct build *b, const struct push_target *t, struct ocib_error *err)
{
    const char *mt = oci_format_manifest_type(b->o->format);
    bool one = b->n_plats == 1;

    for (size_t i = 0; i < b->n_plats; i++) {
        struct build_platform *bp = &b->plats[i];
        struct stage_image *si = &bp->stages[bp->target];

        if (remote_push_image(b->registries, &b->cache, t->ref.registry, t->ref.repository,
                              &si->img, si->srcs, &bp->config, &bp->manifest, mt,
                              one ? t->tags : NULL, one ? t->n_tags : 0, err) < 0)
            return -1;
    }
    if (one)
        return 0;
    return remote_push_manifest(b->registries, t->ref.registry, t->ref.repository,
                                &b->index, oci_format_index_type(b->o->format), t->tags,
                                t->n_tags, err);
}

/* Writes the outputs, pushes to every target and the remote cache, and
 * fills the result. */
static int build_publish(struct build *b, struct build_result *ret, struct ocib_error *err)
{
    const struct oci_blob *result = b->n_plats == 1 ? &b->plats[0].manifest : &b->index;

    if (write_outputs(b, err) < 0)
        return -1;
    for (size_t i = 0; i < b->n_targets; i++) {
        const struct push_target *t = &b->targets[i];
        _cleanup_free_ char *name = reference_name(&t->ref);
        _cleanup_strbuf_ struct strbuf tags = STRBUF_INIT;
        _cleanup_free_ char *step = NULL;
        struct build_event ev = {.kind = BUILD_EVENT_OUTPUT, .status = "pushed"};
        struct build_meter m;
        int rc;

        for (size_t k = 0; k < t->n_tags; k++)
            strbuf_addf(&tags, "%s%s:%s", k ? ", " : "", name, t->tags[k]);
        ev.text = t->n_tags ? strbuf_str(&tags) : name;
        step = xasprintf("pushing to %s", name);
        registry_meter(b, false, &m); /* no total: blobs the registry has are not sent */
        step_start(b, NULL, NULL, step, &m);
        /* What reads the image back (a build's lint notes) finds its
         * configs here, not in the registry. */
        for (size_t k = 0; k < b->n_plats; k++)
            cache_blob_put(&b->cache, b->plats[k].config.data, b->plats[k].config.len,
                           &b->plats[k].config.digest, NULL);
        rc = push_result(b, t, err);
        if (rc == 0)
            rc = attest_push(b, t, err);
        step_end(b, NULL, NULL, step, PHASE_PUSH);
        if (rc < 0)
            return -1;
        progress(b, &ev);
    }
    if (b->o->cache_to && push_cache(b, err) < 0)
        return -1;
    stat_cache_save(b->stat, NULL);
    ret->digest = result->digest;
    if (b->n_targets) {
        _cleanup_free_ char *name = reference_name(&b->targets[0].ref);

        ret->reference = xasprintf("%s@%s", name, result->digest.str);
    } else if (b->names[0].repo) {
        ret->reference = xasprintf("%s@%s", b->names[0].repo, result->digest.str);
    } else {
        ret->reference = xstrdup(result->digest.str);
    }
    return 0;
}

/* Releases everything a build holds; ok: the build succeeded (its kept
 * stage roots stay in the cache). */
static void build_release(struct build *b, bool ok)
{
    attest_release(b);
    result_names_free(b->names, b->n_names);
    push_targets_free(b->targets, b->n_targets);
    registries_free(b->registries);
    stat_cache_free(b->stat);
    remote_cache_release(&b->remote);
    json_decref(b->lock);
    for (size_t i = 0; i < b->n_held; i++)
        close(b->held[i]);
    free(b->held);
    free(b->spec_abs);
    for (size_t p = 0; p < b->n_plats; p++) {
        struct build_platform *bp = &b->plats[p];

        oci_blob_release(&bp->config);
        oci_blob_release(&bp->manifest);
        if (bp->stages)
            for (size_t i = 0; i < bp->spec.n_stages; i++) {
                rootfs_release(&bp->stages[i].root, &b->cache, ok);
                stage_image_release(&bp->stages[i]);
            }
        free(bp->stages);
        spec_release(&bp->spec);
        free(bp->order);
    }
    free(b->plats);
    oci_blob_release(&b->index);
    free(b->git_full);
    free(b->git_short);
    git_dirty_free(b->dirty);
    cache_release(&b->cache);
    if (b->ctx.dir)
        context_release(&b->ctx);
    free(b->spec_path);
    free(b->cache_dir);
}

int build_run(const struct build_options *o, struct build_result *ret,
              struct ocib_error *err)
{
    struct build b = {.o = o, .started = build_now()};
    int r = -1;

    context_release(&b.ctx);
    remote_cache_init(&b.remote);
    if (build_prepare(&b, err) == 0 && attest_load_key(&b, err) == 0) {
        announce_inputs(&b);
        if (build_stages(&b, err) == 0 && build_seal(&b, err) == 0 &&
            attest_make(&b, err) == 0)
            r = build_publish(&b, ret, err);
        if (r == 0)
            progress_summary(&b);
    }
    build_release(&b, r == 0);
    return r;
}
