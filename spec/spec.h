/*
 * The build spec (ocib.json): parsing, strict validation and the stage graph.
 *
 * spec_load() reads the file, checks every key and value against the format
 * of PRODUCT.md and reports the first problem as
 * "FILE:LINE:COL: KEY.PATH: what is wrong" with exit status class
 * OCIB_EXIT_USAGE.  What it returns is fully validated and typed: later
 * code reads the structs below, never the document.  Only a layer's
 * definition as written (spec_layer.def) stays a jansson value: it is what
 * the layer's cache key hashes.
 */
#ifndef OCIB_SPEC_SPEC_H
#define OCIB_SPEC_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "spec/json_doc.h"
#include "oci/platform.h"
#include "registry/reference.h"

/* A string map in the order written (env, labels, annotations). */
struct spec_map {
    bool set; /* written, even when empty */
    char **keys, **values;
    size_t n;
};

/* A command as written: a list, or (shell) one string for a shell. */
struct spec_command {
    bool set;
    bool shell; /* argv[0] is the string */
    char **argv;
    size_t argc;
};

/* The argv to execute (NULL-terminated, caller frees with spec_strv_free):
 * a shell string becomes {"/bin/sh", "-c", string}. */
char **spec_command_exec_argv(const struct spec_command *c, size_t *ret_n);

enum spec_from_kind {
    SPEC_FROM_SCRATCH,
    SPEC_FROM_STAGE,    /* an earlier (or any acyclic) stage */
    SPEC_FROM_OCI,      /* oci:DIR[:tag] */
    SPEC_FROM_ARCHIVE,  /* docker-archive:FILE */
    SPEC_FROM_REGISTRY, /* an image reference */
};

struct spec_from {
    enum spec_from_kind kind;
    char *text;           /* as written */
    size_t stage;         /* SPEC_FROM_STAGE */
    char *path;           /* SPEC_FROM_OCI / SPEC_FROM_ARCHIVE */
    char *tag;            /* SPEC_FROM_OCI, may be NULL */
    struct reference ref; /* SPEC_FROM_REGISTRY */
};

struct spec_owner {
    bool set;
    bool numeric;       /* else names to resolve against the stage */
    bool has_group;     /* "user:group", not "user" alone */
    unsigned uid, gid;  /* when numeric, or once resolved */
    char *user, *group; /* as written when !numeric */
};

struct spec_copy {
    char *where; /* "stages[0].layers[1].copy[0]" */
    char **src;
    size_t n_src;
    char *dest;
    bool has_from;
    struct spec_from from;
    char **exclude;
    size_t n_exclude;
    struct spec_owner owner;
    int mode; /* -1 when not forced, SPEC_MODE_PRESERVE, else the mode */
};

/* A dest names a directory the sources go into when it ends in '/' or its
 * last component is "." (the workdir itself, as in Docker's `COPY a b .`). */
bool spec_dest_is_dir(const char *dest);

/* A copy's "mode": "preserve": the source's exact permission bits. */
#define SPEC_MODE_PRESERVE (-2)

enum spec_file_kind { SPEC_FILE_CONTENT, SPEC_FILE_SYMLINK, SPEC_FILE_DIR };

struct spec_file {
    char *where;
    char *path;
    enum spec_file_kind kind;
    char *content; /* content or symlink target */
    size_t content_len;
    struct spec_owner owner;
    int mode;
};

/* A secret of a run layer: the --secret id, mounted read-only at target. */
struct spec_secret_mount {
    char *id;
    char *target;
};

struct spec_run {
    struct spec_command command;
    struct spec_map env;
    char *workdir, *user; /* NULL: the stage's, else the image's */
    bool network_host;    /* else no network */
    char **cache_mounts;  /* absolute targets */
    size_t n_cache_mounts;
    struct spec_secret_mount *secrets;
    size_t n_secrets;
};

enum spec_layer_kind { SPEC_LAYER_COPY, SPEC_LAYER_RUN, SPEC_LAYER_FILES };

struct spec_layer {
    char *where; /* "stages[0].layers[1]" */
    char *name;  /* the spec's name, or "layer N" */
    enum spec_layer_kind kind;
    const json_t *def;   /* the definition as written (borrowed from the doc),
                          * for the cache key only */
    struct spec_run run; /* SPEC_LAYER_RUN */
    struct spec_copy *copies;
    size_t n_copies;
    struct spec_file *files;
    size_t n_files;
};

/* The healthcheck of a stage's config. */
struct spec_healthcheck {
    bool set;
    struct spec_command test;                  /* a shell string runs as CMD-SHELL */
    long long interval, timeout, start_period; /* ns, -1 when not given */
    long long retries;                         /* -1 when not given */
};

/* A stage's "config": what it sets in the image config. */
struct spec_config {
    char *user, *workdir, *stop_signal; /* NULL when not given */
    struct spec_command entrypoint, cmd;
    struct spec_map env, labels, annotations;
    char **expose; /* "PORT[/proto]" as written; NULL when not given */
    size_t n_expose;
    char **volumes; /* NULL when not given */
    size_t n_volumes;
    struct spec_healthcheck healthcheck;
};

struct spec_stage {
    char *where;          /* "stages[0]" */
    struct spec_map args; /* the build arguments run layers get: the predefined
                           * ones of its platform, then the declared ones */
    char *name;           /* the spec's name or its index as a string */
    struct spec_from from;
    bool has_platform;
    struct oci_platform platform; /* "build": the host's */
    bool build_platform;          /* "platform": "build" */
    struct spec_map env;
    struct spec_config config;
    char *workdir, *user; /* NULL when not given */
    struct spec_layer *layers;
    size_t n_layers;
    bool image_only; /* added for copies `from` an image: that image, no
                      * layers; never a target, not found by name */
};

/* "lint": what `ocib lint` and build's notes leave out, and the budget. */
struct spec_lint {
    char **ignore; /* rule ids */
    size_t n_ignore;
    long long max_size; /* bytes; -1 when not given */
};

/* "500MB", "1.5GB", "300MiB" or a count of bytes; -1 when malformed. */
long long spec_size_parse(const char *s);

struct spec {
    char *file;                /* path as given, for messages */
    struct spec_map args;      /* declared, with --build-arg applied */
    char *dir;                 /* directory holding the spec */
    char *image;               /* the reference, without docker://; may be NULL */
    struct spec_stage *stages; /* as written, then the image_only ones */
    size_t n_stages;
    size_t n_declared; /* stages as written */
    struct spec_lint lint;
    struct json_doc doc;
};

/* What a spec is read with besides its file. */
struct spec_inputs {
    char *const *build_args; /* "NAME=VALUE" (--build-arg) */
    size_t n_build_args;
    const struct oci_platform *platform; /* of stages that name none; NULL: the host's */
};

/* Reads and validates the spec at file, ${NAME} substituted from the build
 * arguments (in may be NULL: defaults only).  On failure spec is left
 * empty. */
int spec_load(struct spec *spec, const char *file, const struct spec_inputs *in,
              struct ocib_error *err);
void spec_release(struct spec *spec);

/* Index of the stage called name, or -1 (image_only stages have none). */
int spec_stage_find(const struct spec *spec, const char *name);

/* The stages target depends on, in build order (dependencies first), into
 * ret_order (n_stages entries allocated by the caller); *ret_n gets the count. */
void spec_stage_order(const struct spec *spec, size_t target, size_t *ret_order,
                      size_t *ret_n);

void spec_strv_free(char **list, size_t n);

/* Parses a Go-style duration ("30s", "1m30s", "500ms") into nanoseconds. */
int spec_duration_parse(const char *s, long long *ret);

#endif
