/*
 * Kubernetes YAML as written: a tree of every document of a stream whose
 * nodes remember the exact bytes they came from, and the splicing that
 * replaces some of those bytes while keeping every other one.
 *
 * k8s_stream_parse() reads a stream with libyaml (YAML 1.1, what kubectl
 * reads too) into one tree per document.  Each node knows its byte range in
 * the input and the line:column where it starts; scalars also know their
 * style (plain, quoted, block) and where the scalar itself starts, past an
 * anchor or a tag.  Aliases point at the node their anchor names; nothing
 * is expanded, so a stream of aliases of aliases costs what it weighs.
 * libyaml counts its marks in characters: they are turned into byte
 * offsets here, once, so that callers never think about UTF-8.
 *
 * k8s_splice_apply() writes the input with some byte ranges replaced; that
 * is how `ocib resolve` changes image values and nothing else.
 *
 * Limits: a stream of at most K8S_MAX_BYTES bytes, K8S_MAX_NODES nodes and
 * K8S_MAX_DEPTH nested collections; more is an error naming the place.
 */
#ifndef OCIB_K8S_YAML_H
#define OCIB_K8S_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

#define K8S_MAX_BYTES (16u << 20)
#define K8S_MAX_NODES (1u << 20)
#define K8S_MAX_DEPTH 128

enum k8s_kind { K8S_SCALAR, K8S_MAP, K8S_SEQ, K8S_ALIAS };

enum k8s_style { K8S_PLAIN, K8S_SINGLE, K8S_DOUBLE, K8S_LITERAL, K8S_FOLDED };

struct k8s_node {
    enum k8s_kind kind;
    enum k8s_style style;    /* scalars */
    char *value;             /* scalars: the value; aliases: the anchor's name */
    char *anchor;            /* or NULL */
    char *tag;               /* as written, or NULL */
    size_t start, end;       /* bytes [start, end) of the input, properties included */
    size_t value_start;      /* scalars: where the scalar's own text starts */
    int line, col;           /* 1-based, of value_start (columns count characters) */
    struct k8s_node **items; /* sequences: the items; maps: key, value, key, … */
    size_t n_items, alloc_items;
    struct k8s_node *target; /* aliases: the anchored node */
};

struct k8s_stream {
    char *file; /* the name messages use */
    char *data; /* the input (owned), NUL-terminated */
    size_t len;
    struct k8s_node **docs; /* each document's root (NULL: an empty document) */
    size_t n_docs;

    /* private: every node, for releasing */
    struct k8s_node **nodes;
    size_t n_nodes, alloc_nodes, alloc_docs;
};

/* Parses len bytes at data, which the stream takes (it must be malloc'd,
 * len + 1 bytes with data[len] == '\0').  file names the input in
 * messages.  A syntax error is a usage error "FILE:LINE:COL: what"; the
 * stream is then left empty (safe to release). */
int k8s_stream_parse(struct k8s_stream *s, const char *file, char *data, size_t len,
                     struct ocib_error *err);
void k8s_stream_release(struct k8s_stream *s);

/* Reads path ("-": standard input) and parses it. */
int k8s_stream_load(struct k8s_stream *s, const char *path, struct ocib_error *err);

/* Appends path to *files (growing it, *alloc its capacity): a file or "-"
 * itself, a directory its *.yaml and *.yml in name order (not recursive,
 * as kubectl -f DIR).  A directory with none, or a path that is neither, is
 * a usage error. */
int k8s_inputs_add(const char *path, char ***files, size_t *n, size_t *alloc,
                   struct ocib_error *err);

/* n with aliases followed (NULL stays NULL). */
const struct k8s_node *k8s_deref(const struct k8s_node *n);
/* The value of key in map n (after k8s_deref), looking into "<<" merges
 * when the map itself lacks it; NULL when absent or n is not a map. */
const struct k8s_node *k8s_get(const struct k8s_node *n, const char *key);
/* The scalar value of n (after k8s_deref), or NULL when it is not one. */
const char *k8s_str(const struct k8s_node *n);
/* k8s_get() then k8s_str(). */
const char *k8s_get_str(const struct k8s_node *n, const char *key);
/* n (after k8s_deref) as a sequence: its item count, 0 when not one. */
size_t k8s_seq_len(const struct k8s_node *n);
const struct k8s_node *k8s_seq_item(const struct k8s_node *n, size_t i);
/* A scalar read as an integer; false when it is not one. */
bool k8s_int(const struct k8s_node *n, long long *ret);
/* True when a and b are the same YAML value (scalars, maps in any key
 * order, sequences in order), aliases followed. */
bool k8s_equal(const struct k8s_node *a, const struct k8s_node *b);

/* Calls fn for the value of every "image" key of every map of s, with
 * aliases followed (so value is the anchored node an alias names; the same
 * node may come twice).  Stops at the first fn that returns < 0. */
typedef int (*k8s_image_fn)(const struct k8s_node *key, const struct k8s_node *value,
                            void *opaque, struct ocib_error *err);
int k8s_images_foreach(const struct k8s_stream *s, k8s_image_fn fn, void *opaque,
                       struct ocib_error *err);

/* One replacement: bytes [start, end) of the input become text. */
struct k8s_splice {
    size_t start, end;
    char *text; /* owned */
};

/* The text that puts value in place of scalar n in n's style (plain stays
 * plain, quotes stay the same quotes, escaped as they need).  Block
 * scalars are not supported: returns NULL. */
char *k8s_scalar_render(const struct k8s_node *n, const char *value);

/* Writes data[0, len) to f with the splices (sorted by start, not
 * overlapping) in place of their ranges.  Returns 0, or -1 on a write
 * error. */
int k8s_splice_write(FILE *f, const char *data, size_t len, const struct k8s_splice *sp,
                     size_t n);

#endif
