/*
 * docker-archive tarballs (the `docker save` format) as an output and as a
 * base image.
 *
 * ocib writes the format Docker 25 writes: manifest.json (Config, RepoTags,
 * Layers) next to an OCI layout (oci-layout, index.json, blobs/sha256/), so
 * that `docker load`, `podman load` and skopeo read it and the blobs are
 * exactly those ocib would push.  Reading accepts that format and the
 * classic one (<id>/layer.tar): every file of the archive is streamed into
 * the cache's blob store under its digest, and the image is assembled from
 * there; nothing is extracted by name, so no entry can write outside.
 */
#ifndef OCIB_TRANSPORT_ARCHIVE_H
#define OCIB_TRANSPORT_ARCHIVE_H

#include <stdint.h>

#include "base/error.h"
#include "cache/blobs.h"
#include "oci/image.h"

/* Writes the archive at path (via a temporary file and rename).
 * manifest_type is the manifest's media type (OCI's, or Docker's as
 * `docker save` of a Docker image writes it); layer_paths[i] is the file
 * holding img->layers[i]; verify[i] asks for its digest to be checked while
 * copying.  repo_tags are "repository:tag" or a bare repository (tag
 * "latest"). */
int docker_archive_write(const char *path, const struct oci_image *img,
                         const struct oci_blob *config, const struct oci_blob *manifest,
                         const char *manifest_type, char *const *layer_paths,
                         const bool *verify, char *const *repo_tags, size_t n_tags,
                         int64_t mtime, struct ocib_error *err);

/* Loads the image in the archive at path (tag selects among several images
 * by RepoTag, NULL takes the only one); its blobs end up in cache.
 * ret_manifest gets the OCI manifest the archive carries, else the one ocib
 * derives from manifest.json; ret_config the config's bytes.  Both may be
 * NULL. */
int docker_archive_load(const char *path, const char *tag, struct cache *c,
                        struct oci_image *ret, struct oci_blob *ret_manifest,
                        struct oci_blob *ret_config, struct ocib_error *err);

#endif
