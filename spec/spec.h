/*
 * The build spec (ocib.json): parsing, strict validation and the stage graph.
 *
 * spec_load() reads the file, checks every key and value against the format
 * of PRODUCT.md and reports the first problem as
 * "FILE:LINE:COL: KEY.PATH: what is wrong" with exit status class
 * OCIB_EXIT_USAGE.  What it returns is fully validated: later code may rely
 * on types and shapes.  Free-form parts the builder copies into the image
 * config (env, labels, config) stay as jansson values owned by the spec.
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

enum spec_layer_kind { SPEC_LAYER_COPY, SPEC_LAYER_RUN, SPEC_LAYER_FILES };

struct spec_layer {
    char *where; /* "stages[0].layers[1]" */
    char *name;  /* the spec's name, or "layer N" */
    enum spec_layer_kind kind;
    json_t *json; /* the layer's definition (borrowed from the doc) */
    struct spec_copy *copies;
    size_t n_copies;
    struct spec_file *files;
    size_t n_files;
};

struct spec_stage {
    char *where; /* "stages[0]" */
    char *name;  /* the spec's name or its index as a string */
    struct spec_from from;
    bool has_platform;
    struct oci_platform platform;
    json_t *env, *config; /* borrowed, may be NULL */
    const char *workdir, *user;
    struct spec_layer *layers;
    size_t n_layers;
    bool image_only; /* added for copies `from` an image: that image, no
                      * layers; never a target, not found by name */
};

struct spec {
    char *file;                /* path as given, for messages */
    char *dir;                 /* directory holding the spec */
    char *image;               /* may be NULL */
    struct spec_stage *stages; /* as written, then the image_only ones */
    size_t n_stages;
    size_t n_declared; /* stages as written */
    struct json_doc doc;
};

/* Reads and validates the spec at file.  On failure spec is left empty. */
int spec_load(struct spec *spec, const char *file, struct ocib_error *err);
void spec_release(struct spec *spec);

/* Index of the stage called name, or -1 (image_only stages have none). */
int spec_stage_find(const struct spec *spec, const char *name);

/* The stages target depends on, in build order (dependencies first), into
 * ret_order (n_stages entries allocated by the caller); *ret_n gets the count. */
void spec_stage_order(const struct spec *spec, size_t target, size_t *ret_order,
                      size_t *ret_n);

/* Parses a Go-style duration ("30s", "1m30s", "500ms") into nanoseconds. */
int spec_duration_parse(const char *s, long long *ret);

#endif
