/*
 * A run layer as a step of the build: the stage's root brought up to date
 * (a step the live progress shows), the stage's architecture checked
 * against what this machine can run, the command run with its lines
 * forwarded as progress, and the notes it leaves.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "builder/run.h"
#include "oci/json.h"
#include "sandbox/sandbox.h"

#include <string.h>

/* Brings the root of stage name (image si) up to date: a step the live
 * progress shows, with the bytes the registries receive meanwhile. */
int update_root(struct build *b, const char *name, struct stage_image *si,
                struct ocib_error *err)
{
    _cleanup_free_ char *text = xasprintf("preparing the root of stage %s", name);
    struct build_meter m;
    int r;

    registry_meter(b, true, &m);
    step_start(b, name, NULL, text, &m);
    r = rootfs_update(&si->root, &b->cache, b->registries, &si->img, si->srcs,
                      si->img.n_layers, si->keys, &b->limits, err);
    step_end(b, name, NULL, text, PHASE_UNPACK);
    return r;
}

static void forward_output(void *opaque, const char *line)
{
    struct build_event *ev = opaque;
    struct build *b = (struct build *)ev->opaque;
    struct build_event out = *ev;

    out.text = line;
    progress(b, &out);
}

/* A stage for another architecture runs its commands through binfmt_misc
 * (qemu-user-static): fails before anything runs when that cannot work. */
static int check_arch(const struct stage_image *si, struct ocib_error *err)
{
    const char *arch = oci_json_str(si->img.config, "architecture");
    struct oci_platform host;

    oci_platform_host(&host);
    if (!arch || !strcmp(arch, host.arch))
        return 0;
    if (!strcmp(host.arch, "amd64") && !strcmp(arch, "386"))
        return 0; /* x86-64 runs i386 programs itself */
    return sandbox_check_foreign(arch, host.arch, err);
}

/* Runs a run layer's command on the stage's root; changes into t. */
int run_step(struct build *b, const struct spec_stage *st, const struct spec_layer *ly,
             struct stage_image *si, struct layer_tree *t, bool *ret_in_place,
             struct ocib_error *err)
{
    struct build_event ev = {
        .kind = BUILD_EVENT_LOG, .stage = st->name, .layer = ly->name, .opaque = b};
    struct run_request rq = {.stage = st,
                             .layer = ly,
                             .root = &si->root,
                             .image_config = si->img.config,
                             .secrets = b->o->secrets,
                             .n_secrets = b->o->n_secrets,
                             .cache = &b->cache,
                             .output = forward_output,
                             .output_opaque = &ev,
                             .chroot = b->o->isolation == BUILD_ISOLATION_CHROOT};
    double t0;
    int r;

    if (check_arch(si, err) < 0)
        return -1;
    if (update_root(b, st->name, si, err) < 0)
        return ocib_error_wrap(err, "preparing the root of stage %s", st->name);
    if (si->root.skipped_devices && !b->noted_devices) {
        struct build_event note = {.kind = BUILD_EVENT_INFO, .stage = st->name};
        _cleanup_free_ char *text =
            xasprintf("note: %llu device nodes of the base were skipped (a rootless build "
                      "cannot create them)",
                      (unsigned long long)si->root.skipped_devices);

        note.text = text;
        progress(b, &note);
        b->noted_devices = true;
    }
    rootfs_keep_pending(&si->root, &b->cache);
    t0 = build_now();
    r = run_layer(&rq, t, err);
    b->phase[PHASE_COMMAND] += rq.command_seconds;
    b->phase[PHASE_CAPTURE] += build_now() - t0 - rq.command_seconds;
    if (rq.note && !b->noted_capture) {
        struct build_event note = {
            .kind = BUILD_EVENT_INFO, .stage = st->name, .text = rq.note};

        progress(b, &note);
        b->noted_capture = true;
    }
    free(rq.note);
    *ret_in_place = rq.in_place;
    return r;
}

/* What --isolation chroot cannot do, refused before anything is built:
 * keep a layer's "network": "none" (unless --allow-network accepts the
 * container's network), and run as anyone but root of the container. */
int check_isolation(struct build *b, const size_t *order, size_t n, struct ocib_error *err)
{
    bool any_run = false;

    if (b->o->isolation != BUILD_ISOLATION_CHROOT) {
        if (b->o->allow_network)
            return ocib_error_usage(err,
                                    "--allow-network is for --isolation chroot: the "
                                    "sandbox gives each layer the network it asks for");
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        const struct spec_stage *st = &b->p->spec.stages[order[k]];

        for (size_t l = 0; l < st->n_layers; l++) {
            const struct spec_layer *ly = &st->layers[l];

            if (ly->kind != SPEC_LAYER_RUN)
                continue;
            any_run = true;
            if (!ly->run.network_host && !b->o->allow_network)
                return ocib_error_usage(
                    err,
                    "%s: %s: stage %s, layer %s: \"network\": \"none\" (the default) "
                    "cannot be kept under --isolation chroot, which isolates no network; "
                    "pass --allow-network to run it with the container's network",
                    b->p->spec.file, ly->where, st->name, ly->name);
        }
    }
    return any_run ? sandbox_chroot_check(err) : 0;
}
