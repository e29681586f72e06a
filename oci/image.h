/*
 * The image data model: a config document, its layers and the manifest that
 * binds them.
 *
 * A layer has two digests (go-containerregistry's vocabulary): `digest`, of
 * the bytes as stored and pushed (usually compressed), and `diff_id`, of the
 * uncompressed tar, which the config lists in rootfs.diff_ids.  struct
 * oci_image keeps the config as a jansson object so that fields ocib does
 * not know survive from a base image untouched; oci_image_add_layer() keeps
 * rootfs.diff_ids and history in step with the layer list.
 */
#ifndef OCIB_OCI_IMAGE_H
#define OCIB_OCI_IMAGE_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "oci/digest.h"
#include "oci/mediatype.h"
#include "oci/platform.h"

struct oci_descriptor {
    char *media_type;
    struct oci_digest digest;
    int64_t size;
};

struct oci_layer {
    struct oci_descriptor desc;
    struct oci_digest diff_id;
};

struct oci_image {
    json_t *config;      /* image config (owned); always an object */
    json_t *annotations; /* manifest annotations (owned); an object */
    struct oci_layer *layers;
    size_t n_layers, alloc_layers;
};

/* A serialised document and its digest. */
struct oci_blob {
    char *data;
    size_t len;
    struct oci_digest digest;
};

/* What a manifest-or-index document is. */
enum oci_doc_kind {
    OCI_DOC_MANIFEST = 1, /* config + layers (an image, or an artifact) */
    OCI_DOC_INDEX,        /* manifests (an image index, a Docker manifest list) */
};

/* Tells a manifest from an index by its structure and refuses a document
 * that could be read as both (CVE-2021-41190): one with "manifests" and
 * "layers" or "config", one with neither, or one whose own "mediaType"
 * contradicts its structure or media_type, the type it was served or
 * described as (a descriptor's mediaType, a Content-Type; NULL or a type that
 * is neither a manifest's nor an index's when unknown).  Sets *ret and, when
 * ret_media_type is not NULL, the document's media type (its own, else
 * media_type's, else the OCI one of its kind; caller frees).  Failures are of
 * kind OCIB_ERR_INTEGRITY and name what. */
int oci_doc_classify(const char *data, size_t len, const char *media_type, const char *what,
                     enum oci_doc_kind *ret, char **ret_media_type, struct ocib_error *err);

/* oci_doc_classify() for a document that must be an index (an OCI
 * layout's or a docker-archive's index.json). */
int oci_check_index(const char *data, size_t len, const char *what, struct ocib_error *err);

/* An empty image for platform p (scratch). */
void oci_image_init(struct oci_image *img, const struct oci_platform *p);
void oci_image_release(struct oci_image *img);
/* Deep copy of src into ret. */
void oci_image_copy(const struct oci_image *src, struct oci_image *ret);

/* Builds an image from a manifest (OCI or Docker v2 schema 2) and its config,
 * both already verified against their digests.  Checks that the config's
 * diff_ids match the manifest's layers one to one; Docker layer media types
 * become their OCI equivalents.  what names the image in messages. */
int oci_image_load(const char *manifest, size_t manifest_len, const char *config,
                   size_t config_len, const char *what, struct oci_image *ret,
                   struct ocib_error *err);

/* Parses a manifest's config descriptor (to know what to fetch next). */
int oci_manifest_config_descriptor(const char *manifest, size_t len, const char *what,
                                   struct oci_descriptor *ret, struct ocib_error *err);

/* Appends a layer, its diff_id to rootfs.diff_ids and a history entry
 * {created, created_by, comment}.  Takes copies of everything. */
void oci_image_add_layer(struct oci_image *img, const struct oci_layer *l,
                         const char *created, const char *created_by, const char *comment);

/* Serialises config and manifest canonically, with OCI's media types.  Both
 * blobs are owned by the caller (oci_blob_release). */
void oci_image_serialize(const struct oci_image *img, struct oci_blob *ret_config,
                         struct oci_blob *ret_manifest);

/* The same in format f.  Docker's manifest has no annotations; a layer type
 * Docker lacks (zstd) makes this fail, -1 with err set, naming the layer. */
int oci_image_serialize_as(const struct oci_image *img, enum oci_format f,
                           struct oci_blob *ret_config, struct oci_blob *ret_manifest,
                           struct ocib_error *err);

void oci_blob_release(struct oci_blob *b);
void oci_descriptor_release(struct oci_descriptor *d);
json_t *oci_descriptor_to_json(const struct oci_descriptor *d);
int oci_descriptor_from_json(const json_t *j, const char *what, struct oci_descriptor *ret,
                             struct ocib_error *err);

/* Formats a Unix time as RFC 3339 UTC ("1970-01-01T00:00:00Z"). */
void oci_time_format(int64_t t, char buf[32]);

/* Parses a SOURCE_DATE_EPOCH: decimal seconds since 1970, at most
 * 253402300799 (9999-12-31T23:59:59Z, the last time RFC 3339 can write).
 * The one parser of it: the CLI's flag and environment both use it. */
bool oci_epoch_parse(const char *s, int64_t *ret);

#endif
