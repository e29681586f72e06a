/*
 * Comparing two images, for reproducible-build audits (`ocib diff`).
 *
 * The comparison goes from the top down: the manifests (media types,
 * annotations, layer count and layer media types, index and platform), the
 * configs (each differing leaf by its JSON path: "created",
 * "config.Env[2]", "history[3].created_by", "rootfs.diff_ids[1]"), then the
 * layers pair by pair.  A layer pair with the same diff_id but another
 * compressed digest is a compressor difference; otherwise both tars are
 * streamed side by side (layers/tar_reader.h, never unpacked) and their
 * entries compared field by field.
 *
 * Memory stays bounded whatever the layer sizes: while both tars list the
 * same paths in the same order they are compared in lockstep, one entry
 * each at a time; from the first divergence on, the remaining entries of
 * both sides are kept as metadata records (path, fields, content digest --
 * never content), sorted and merged, which costs memory proportional to the
 * number of entries only.  At most `cap` differences are kept per group
 * (the manifest, the config, each layer); the rest are counted.
 *
 * Where a probable cause is known it is named with one of the IMAGE_CAUSE_*
 * strings.  This module never prints.
 */
#ifndef OCIB_AUDIT_DIFF_H
#define OCIB_AUDIT_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "transport/source.h"

#define IMAGE_CAUSE_MTIME "mtime not clamped"
#define IMAGE_CAUSE_OWNER "owner differs"
#define IMAGE_CAUSE_ORDER "entry order"
#define IMAGE_CAUSE_GZIP_HEADER "gzip header"
#define IMAGE_CAUSE_COMPRESSOR "compressor"
#define IMAGE_CAUSE_CONTENT "file content"
#define IMAGE_CAUSE_TAR_FORMAT "tar headers"

enum image_diff_where {
    IMAGE_DIFF_MANIFEST,
    IMAGE_DIFF_CONFIG,
    IMAGE_DIFF_LAYER,
};

/* One difference.  Strings are owned by the struct image_diff. */
struct image_difference {
    enum image_diff_where where;
    size_t layer;      /* layer index when where == IMAGE_DIFF_LAYER */
    char *path;        /* entry path inside the layer, or NULL */
    char *field;       /* JSON path (manifest, config) or entry field: "type",
                        * "mode", "uid", "gid", "uname", "gname", "mtime", "size",
                        * "link", "xattrs", "content", "name", "entry", "order",
                        * "digest", "mediaType", "gzip header", "tar", "layer" */
    char *a, *b;       /* the values as text; NULL when absent on that side */
    const char *cause; /* an IMAGE_CAUSE_* string, or NULL */
};

/* Differences past the cap of a group, counted and not kept. */
struct image_diff_omitted {
    enum image_diff_where where;
    size_t layer;
    size_t count;
};

struct image_diff {
    struct image_difference *items;
    size_t n, alloc;
    struct image_diff_omitted *omitted;
    size_t n_omitted, alloc_omitted;
};

/* True when no difference was found (nothing kept, nothing omitted). */
bool image_diff_identical(const struct image_diff *d);

/* Compares image a with image b, keeping at most cap differences per group
 * (0: no cap).  Layers that are only remote are fetched into cache c
 * through rs.  On success *ret is filled (the caller releases it with
 * image_diff_release); on failure (an unreadable or corrupt blob) nothing
 * is returned and err names the layer. */
int image_diff_compare(struct image_source *a, struct image_source *b, struct cache *c,
                       struct registries *rs, size_t cap, struct image_diff *ret,
                       struct ocib_error *err);

/* Compares two layer blobs (paths to the compressed or plain tars) as layer
 * number `layer`, appending to d.  Exposed for tests and for callers that
 * hold blobs outside an image. */
int image_diff_layer_blobs(const char *path_a, const char *path_b, size_t layer, size_t cap,
                           struct image_diff *d, struct ocib_error *err);

void image_diff_release(struct image_diff *d);

#endif
