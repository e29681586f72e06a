/*
 * The build driver's shared state, for the driver's own files: build.c runs
 * a build from options to result, stage.c builds one stage's image (its base,
 * its layers in order, its config), layer.c one layer (inputs, cache key,
 * hit or build), outputs.c names the result and writes and pushes it.
 * Nothing outside builder/ includes this header.
 */
#ifndef OCIB_BUILDER_DRIVER_H
#define OCIB_BUILDER_DRIVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "builder/build.h"
#include "builder/context.h"
#include "builder/rootfs.h"
#include "cache/blobs.h"
#include "cache/statcache.h"
#include "layers/unpack.h"
#include "oci/image.h"
#include "oci/layout.h"
#include "registry/reference.h"
#include "spec/spec.h"
#include "transport/remote.h"
#include "transport/remotecache.h"

#define ANNOTATION_PREFIX "org.opencontainers.image."

struct git_dirty;
struct sign_key;

/* A stage's image and where each of its layer blobs can be read. */
struct stage_image {
    bool built;
    struct oci_digest top_key; /* cache key of the last layer, or of the base */
    struct oci_image img;
    struct blob_source *srcs; /* one per layer */
    size_t n_srcs, alloc_srcs;
    struct rootfs root;      /* unpacked when a run or a copy from it needs it */
    struct oci_digest *keys; /* keys[i]: the stage's key after i layers ("" inside
                              * the base), n_layers + 1 of them */
    size_t n_keys, alloc_keys;
};

/* An artifact attached to a platform's image: an SBOM or a provenance. */
struct attest {
    const char *type;         /* its artifactType */
    struct oci_blob doc;      /* the document */
    struct oci_blob manifest; /* the artifact manifest, subject the image */
};

/* One platform of a build: its spec (build arguments are substituted per
 * platform: ${TARGETARCH}), the stages its target needs and their images,
 * and the result's config and manifest. */
struct build_platform {
    struct oci_platform platform; /* what stages that name none build for */
    struct spec spec;
    struct stage_image *stages;
    size_t *order, n_order;           /* the stages the target needs, in build order */
    size_t target;                    /* the stage whose image is the result */
    struct oci_blob config, manifest; /* the result's, once serialized */
    struct attest att[2];             /* --sbom, --provenance (attest.c) */
    size_t n_att;
};

struct build {
    const struct build_options *o;
    struct build_platform *plats; /* one per --platform (the host's by default) */
    size_t n_plats;
    struct build_platform *p; /* the one being built */
    struct oci_blob index;    /* several platforms: the index of their manifests */
    struct context ctx;
    struct cache cache;
    struct registries *registries;
    struct stat_cache *stat;
    struct remote_cache remote;
    struct unpack_limits limits; /* what the build may unpack and read */
    json_t *lock;                /* ocib.lock.json, or NULL */
    bool noted_devices;
    bool noted_capture; /* the note that run steps go without overlayfs */
    int *held;          /* blobs in use (shared locks), see cache_blob_hold */
    size_t n_held, alloc_held;
    char *spec_abs;        /* names explain records */
    char platform_str[96]; /* of the stage being built */
    int64_t epoch;
    char created[32];
    char *git_full, *git_short;
    struct git_dirty *dirty; /* what HEAD does not hold (NULL: not asked) */
    /* What build_run holds from prepare to release: */
    char *spec_path, *cache_dir;
    struct result_name *names;
    size_t n_names;
    struct push_target *targets; /* --push, grouped by repository */
    size_t n_targets;
    struct build_options with_default; /* o plus the default output */
    struct sign_key *key;              /* --sign-key, loaded (attest.c) */
    double started;                    /* when build_run began (monotonic) */
    double phase[PHASE_N];             /* seconds so far, see build_phase */
    double step_t0[4];                 /* open steps' starts, innermost last */
    int n_steps;
};

/* The names the result gets: repository and tag for each. */
struct result_name {
    char *repo; /* NULL when unknown */
    char *tag;
};

struct push_target {
    struct reference ref; /* registry and repository */
    char **tags;
    size_t n_tags, alloc_tags;
};

static inline void keep_fd(struct build *b, int fd)
{
    XGROW(b->held, b->alloc_held, b->n_held + 1);
    b->held[b->n_held++] = fd;
}

/* Holds a shared lock on a cached blob until the build ends, so that a
 * concurrent `ocib cache prune` cannot remove what the build still reads. */
static inline void hold_blob(struct build *b, const struct oci_digest *d)
{
    int fd = cache_blob_hold(&b->cache, d);

    if (fd >= 0)
        keep_fd(b, fd);
}

static inline void progress(struct build *b, const struct build_event *ev)
{
    if (b->o->progress)
        b->o->progress(b->o->progress_opaque, ev);
}

/* progress.c */
/* Announces a long step (status "start"), which step_end closes, adding
 * its time to phase; layer may be NULL.  meter (may be NULL) must live
 * until step_end. */
void step_start(struct build *b, const char *stage, const char *layer, const char *text,
                const struct build_meter *meter);
void step_end(struct build *b, const char *stage, const char *layer, const char *text,
              enum build_phase phase);
/* The build is done: its time and where it went (BUILD_EVENT_SUMMARY). */
void progress_summary(struct build *b);
/* Seconds on the monotonic clock. */
double build_now(void);
/* A meter over the bytes the registries receive (received) or send. */
void registry_meter(struct build *b, bool received, struct build_meter *ret);
/* Passes the registries' retries on as notes (status "retry"). */
void progress_watch_registries(struct build *b);

/* stage.c */
void stage_keys_push(struct stage_image *si, const struct oci_digest *key);
void stage_image_add_src(struct stage_image *si, const struct blob_source *src);
void stage_image_add_path(struct stage_image *si, size_t layer, const char *path,
                          bool verify);
void stage_image_release(struct stage_image *si);
/* Fails naming the first secret a run layer of the stages in order uses
 * that the options do not give. */
int check_secrets(struct build *b, const size_t *order, size_t n, struct ocib_error *err);
/* Builds stage s (its base, then each layer, then its config) into
 * b->p->stages[s]. */
int build_stage(struct build *b, size_t s, struct ocib_error *err);

/* runstep.c */
/* Brings the root of stage name (image si) up to date, as a step. */
int update_root(struct build *b, const char *name, struct stage_image *si,
                struct ocib_error *err);
/* Runs a run layer's command on the stage's root; changes into t, and
 * *ret_in_place says whether a file changed in place. */
int run_step(struct build *b, const struct spec_stage *st, const struct spec_layer *ly,
             struct stage_image *si, struct layer_tree *t, bool *ret_in_place,
             struct ocib_error *err);

/* Fails when --isolation chroot cannot run the run layers of the stages in
 * order: a layer without network and no --allow-network (exit 2), or not
 * root of the container. */
int check_isolation(struct build *b, const size_t *order, size_t n, struct ocib_error *err);

/* usercheck.c */
/* Fails when the config.user of stage s names a user or group its image's
 * /etc/passwd or /etc/group lacks. */
int check_config_user(struct build *b, size_t s, struct ocib_error *err);

/* attest.c */
/* Loads --sign-key (before anything is built, so that a bad key fails
 * fast). */
int attest_load_key(struct build *b, struct ocib_error *err);
/* Makes each platform's SBOM and provenance artifacts (the scan cached
 * under the layers' digests). */
int attest_make(struct build *b, struct ocib_error *err);
/* Adds every artifact (blobs, and index.json entries naming their subject)
 * to a layout being written. */
int attest_layout_add(struct build *b, struct oci_layout_writer *w, struct ocib_error *err);
/* Pushes the artifacts and, with a key, the signatures to target t, after
 * the image. */
int attest_push(struct build *b, const struct push_target *t, struct ocib_error *err);
void attest_release(struct build *b);

/* provenance.c */
/* The in-toto statement (SLSA provenance v1) of platform bp's image. */
void provenance_document(struct build *b, const struct build_platform *bp,
                         struct oci_blob *ret);

/* layer.c */
/* Builds (or finds in the cache) layer index of stage st onto si. */
int build_layer(struct build *b, const struct spec_stage *st, size_t index,
                struct stage_image *si, struct ocib_error *err);

/* outputs.c */
int result_names(struct build *b, struct result_name **ret, size_t *ret_n,
                 struct ocib_error *err);
void result_names_free(struct result_name *names, size_t n);
int push_targets(struct build *b, struct push_target **ret, size_t *ret_n,
                 struct ocib_error *err);
void push_targets_free(struct push_target *t, size_t n);
int untrue_revision(struct build *b, const struct push_target *targets, size_t n_targets,
                    struct result_name **names, size_t *n_names, struct ocib_error *err);
/* Writes every output with the result: the target's image, or with several
 * platforms the index and every platform's image. */
int write_outputs(struct build *b, struct ocib_error *err);

#endif
