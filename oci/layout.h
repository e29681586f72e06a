/*
 * OCI image layouts on disk (image-spec "image-layout"): reading an image
 * from one, and writing one atomically.
 *
 * Reading resolves index.json by tag (org.opencontainers.image.ref.name),
 * descends into a nested index by platform, and verifies every manifest,
 * config and blob against its digest.  Writing happens in a temporary
 * directory beside the destination that is renamed into place by
 * oci_layout_writer_commit(), so a failed build never leaves half a layout;
 * an existing destination is replaced only if it is an OCI layout or empty.
 */
#ifndef OCIB_OCI_LAYOUT_H
#define OCIB_OCI_LAYOUT_H

#include <jansson.h>

#include "base/error.h"
#include "oci/image.h"
#include "oci/platform.h"

/* Path of a blob inside layout dir; caller frees. */
char *oci_layout_blob_path(const char *dir, const struct oci_digest *d);

/* Reads a blob of at most cap bytes and checks its digest. */
int oci_layout_read_blob(const char *dir, const struct oci_digest *d, size_t cap,
                         char **ret_buf, size_t *ret_len, struct ocib_error *err);

/* The digest of the index index.json names for tag (NULL: the only entry)
 * when that entry is an index (several platforms), else "". */
int oci_layout_index_of(const char *dir, const char *tag, struct oci_digest *ret,
                        struct ocib_error *err);

/* Finds the manifest for tag (NULL: the only image in the layout) and
 * platform p (NULL: the only manifest, or the host's) and loads the image.
 * ret_manifest and ret_config (may be NULL) receive the exact bytes and
 * digests of the manifest and the config. */
int oci_layout_load(const char *dir, const char *tag, const struct oci_platform *p,
                    struct oci_image *ret, struct oci_blob *ret_manifest,
                    struct oci_blob *ret_config, struct ocib_error *err);

/* Copies the file at src_path into a layout's blob directory (blobs_dir is
 * "<layout>/blobs/sha256"), as <hex of d>.  With verify, the bytes are hashed
 * on the way and a mismatch fails naming d, leaving no file behind; without,
 * the file is copied as cheaply as the file system allows (a reflink, else
 * an in-kernel copy), never hard-linked, so the output shares no bytes a
 * write could reach with the source.  The file is synced before rename. */
int oci_blob_copy_file(const char *src_path, const char *blobs_dir,
                       const struct oci_digest *d, bool verify, struct ocib_error *err);

struct oci_layout_writer {
    char *path;        /* final destination */
    char *tmp;         /* temporary directory being filled */
    char *blobs;       /* tmp/blobs/sha256 */
    json_t *manifests; /* index.json "manifests" */
};

/* Starts writing a layout that will replace path. */
int oci_layout_writer_begin(struct oci_layout_writer *w, const char *path,
                            struct ocib_error *err);
int oci_layout_writer_put_bytes(struct oci_layout_writer *w, const struct oci_blob *b,
                                struct ocib_error *err);
int oci_layout_writer_put_file(struct oci_layout_writer *w, const char *src_path,
                               const struct oci_digest *d, bool verify,
                               struct ocib_error *err);
/* Adds an index.json entry for a manifest of media_type; ref_name may be
 * NULL. */
void oci_layout_writer_add_manifest(struct oci_layout_writer *w, const struct oci_blob *m,
                                    const char *media_type, const char *ref_name);
/* Writes oci-layout and index.json and renames the layout into place. */
int oci_layout_writer_commit(struct oci_layout_writer *w, struct ocib_error *err);
/* Removes the temporary directory unless committed; frees w's fields. */
void oci_layout_writer_release(struct oci_layout_writer *w);

#endif
