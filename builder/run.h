/*
 * Executing a `run` layer: the command in the sandbox on the stage's root,
 * and the change it made captured as layer entries.
 *
 * The environment is the build arguments (spec_stage.args), then the image
 * config's Env, then the stage's env, then the layer's; the working directory and user come
 * from the layer, else the stage, else the image config.  Cache mounts are directories
 * under the ocib cache (cache/mounts/<digest of the target path>), locked while a command
 * uses them and never part of a layer; secrets are files given on the command line, mounted
 * read-only for this command only.  Mount points the sandbox needs that the root lacks are
 * created in the root before the command and removed after its change was taken, so they
 * never reach a layer.
 */
#ifndef OCIB_BUILDER_RUN_H
#define OCIB_BUILDER_RUN_H

#include <jansson.h>

#include "base/error.h"
#include "builder/rootfs.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"
#include "cache/blobs.h"
#include "layers/tree.h"

struct build_secret {
    char *id;
    char *src;
};

struct run_request {
    const struct spec_stage *stage;
    const struct spec_layer *layer;
    struct rootfs *root;        /* up to date, opened */
    const json_t *image_config; /* the stage image's config document */
    const struct build_secret *secrets;
    size_t n_secrets;
    struct cache *cache;
    sandbox_output_fn output;
    void *output_opaque;
    bool chroot;            /* --isolation chroot (sandbox.h), which mounts nothing */
    bool in_place;          /* out: a file of the root changed in place */
    char *note;             /* out: what the user should know (caller frees), or NULL */
    double command_seconds; /* out: how long the command itself ran */
};

/* Runs the layer's command.  On success the changes are in t (file
 * contents to be read relative to rq->root->fd) and in the root.  A command
 * that fails makes this fail naming its exit status and its last lines of
 * output.
 *
 * The command runs on an overlay of the root when the kernel allows one
 * in a user namespace (layers/overlay.h: the change is what the upper
 * directory holds, moved into the root after), else directly on the root,
 * the change found by comparing snapshots (layers/changes.h); both describe
 * a change by the same rules.  OCIB_CAPTURE=snapshot in the environment
 * asks for the second way; --isolation chroot always takes it, and places
 * secrets, cache directories and resolv.conf in the root instead of
 * mounting them (builder/runplace.h). */
int run_layer(struct run_request *rq, struct layer_tree *t, struct ocib_error *err);

/* Parses "--secret id=ID,src=PATH". */
int build_secret_parse(const char *s, struct build_secret *ret, struct ocib_error *err);

#endif
