/*
 * `ocib build`: from a spec and a context to an image in the requested
 * outputs.
 *
 * build_run() validates everything it can before building anything (the
 * spec, the target, the outputs, unsupported features), then builds the
 * stages the target needs in dependency order, each layer written once
 * through the deterministic layer writer into the cache's blob store, and
 * finally writes every output atomically.  It never prints: progress goes
 * to the caller's callback, errors to err.
 */
#ifndef OCIB_BUILDER_BUILD_H
#define OCIB_BUILDER_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "layers/compress.h"
#include "oci/digest.h"
#include "oci/mediatype.h"
#include "oci/platform.h"

struct build_secret;

enum build_output_kind { BUILD_OUTPUT_OCI, BUILD_OUTPUT_ARCHIVE };

struct build_output {
    enum build_output_kind kind;
    char *path;
    char *tag; /* oci:DIR:TAG: the one name in the layout; NULL: the image's tags */
};

/* Parses "oci:DIR[:TAG]" or "docker-archive:FILE" (transport/name.h). */
int build_output_parse(const char *s, struct build_output *ret, struct ocib_error *err);

enum build_event_kind {
    BUILD_EVENT_STAGE,       /* a stage starts */
    BUILD_EVENT_BASE,        /* its base image is known */
    BUILD_EVENT_LAYER,       /* a layer is done */
    BUILD_EVENT_OUTPUT,      /* an output was written */
    BUILD_EVENT_INFO,        /* inputs that decide the digest, notes */
    BUILD_EVENT_LOG,         /* a line a run command printed */
    BUILD_EVENT_LAYER_START, /* a layer is being looked up or built */
    BUILD_EVENT_STEP,        /* a long step starts or ends (status "start", "end") */
    BUILD_EVENT_SUMMARY,     /* the build is done: seconds, and phases */
};

/* Where a build's time goes (BUILD_EVENT_LAYER: that layer's; SUMMARY: the
 * whole build's).  The commands' own time is PHASE_COMMAND; the rest is
 * ocib's: resolving bases, unpacking (and downloading) stage roots,
 * capturing what a command changed, writing layers (tar, compress, hash),
 * pushing, the SBOM scan. */
enum build_phase {
    PHASE_RESOLVE,
    PHASE_UNPACK,
    PHASE_COMMAND,
    PHASE_CAPTURE,
    PHASE_LAYER,
    PHASE_PUSH,
    PHASE_SBOM,
    PHASE_N
};
extern const char *const build_phase_names[PHASE_N];

/* How far a long step has got, for live progress: between the step's start
 * and end events the callback may call build_meter_bytes() from another
 * thread. */
struct build_meter {
    uint64_t (*read)(const struct build_meter *m); /* a counter, thread-safe */
    void *arg;
    uint64_t start;   /* read()'s value when the step started */
    uint64_t total;   /* bytes expected, 0 when not known */
    const char *unit; /* what the bytes are: "compressed", "received", "sent" */
};

static inline uint64_t build_meter_bytes(const struct build_meter *m)
{
    uint64_t now = m->read(m);

    return now > m->start ? now - m->start : 0;
}

struct build_event {
    enum build_event_kind kind;
    const char *stage;
    const char *layer;  /* BUILD_EVENT_LAYER */
    const char *status; /* "built", "cached" */
    const char *digest; /* layer or base digest */
    uint64_t size;      /* compressed layer size */
    uint64_t files;     /* entries in the layer */
    double seconds;
    const char *text;                /* free text, for people */
    const char *detail;              /* what programs (--progress=json) get besides */
    const struct build_meter *meter; /* BUILD_EVENT_STEP "start", may be NULL */
    const double *phases;            /* LAYER, SUMMARY: PHASE_N seconds */
    void *opaque;                    /* the builder's, not for the callback */
};

typedef void (*build_progress_fn)(void *opaque, const struct build_event *ev);

/* How run layers are isolated: the rootless sandbox of namespaces, or
 * chroot alone, for a container that is itself the sandbox (sandbox.h). */
enum build_isolation { BUILD_ISOLATION_SANDBOX, BUILD_ISOLATION_CHROOT };

struct build_options {
    const char *context_dir; /* -C, default "." */
    const char *image_dir;   /* what relative oci:/docker-archive: names in the
                              * spec are relative to; NULL: the context */
    const char *spec_file;   /* -f, default <context>/ocib.json */
    const char *target;      /* --target, NULL: the last stage */
    char **build_args;       /* --build-arg NAME=VALUE */
    size_t n_build_args;
    char **tags; /* --tag, n_tags of them */
    size_t n_tags;
    struct build_output *outputs;
    size_t n_outputs;
    struct oci_platform *platforms; /* --platform: what stages that name none build
                                     * for, one image each (several: an index);
                                     * none: the host's */
    size_t n_platforms;
    enum layer_compression compression;
    enum oci_format format; /* --format: OCI's media types (default) or Docker's */
    bool has_epoch; /* SOURCE_DATE_EPOCH: the CLI reads the flag, else the environment */
    int64_t epoch;
    bool no_cache;
    bool push;         /* --push */
    char **cache_from; /* --cache-from REF */
    size_t n_cache_from;
    const char *cache_to;         /* --cache-to REF */
    bool locked;                  /* --locked: the lock must cover every base */
    struct build_secret *secrets; /* --secret id=ID,src=PATH */
    size_t n_secrets;
    enum build_isolation isolation; /* --isolation */
    bool allow_network;   /* --allow-network: under chroot, "network": "none" runs anyway */
    const char *revision; /* git commit to record instead of asking git */
    const char *revision_short;
    char **insecure; /* --insecure-registry HOST[:PORT] */
    size_t n_insecure;
    const char *cert_dir;    /* --cert-dir: every registry's TLS files */
    const char *cache_dir;   /* NULL: the default */
    const char *digest_file; /* --digest-file (written by the caller): never context */
    int sbom;                /* enum sbom_format (sbom/sbom.h): --sbom; 0 none */
    bool provenance;         /* --provenance */
    const char *sign_key;    /* --sign-key: the PEM key's path (read, never copied) */
    build_progress_fn progress;
    void *progress_opaque;
};

struct build_result {
    char *reference;          /* "repo@sha256:…" or "sha256:…" */
    struct oci_digest digest; /* of the image manifest */
};

int build_run(const struct build_options *o, struct build_result *ret,
              struct ocib_error *err);
void build_result_release(struct build_result *r);

#endif
