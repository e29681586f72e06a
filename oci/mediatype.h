/*
 * Media types of the OCI image spec and their Docker v2 equivalents.
 */
#ifndef OCIB_OCI_MEDIATYPE_H
#define OCIB_OCI_MEDIATYPE_H

#include <stdbool.h>

#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

#define DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MT_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_MT_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define DOCKER_MT_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"
#define DOCKER_MT_LAYER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

static inline bool oci_mt_is_index(const char *mt)
{
    return mt &&
           (!__builtin_strcmp(mt, OCI_MT_INDEX) || !__builtin_strcmp(mt, DOCKER_MT_LIST));
}
static inline bool oci_mt_is_manifest(const char *mt)
{
    return mt && (!__builtin_strcmp(mt, OCI_MT_MANIFEST) ||
                  !__builtin_strcmp(mt, DOCKER_MT_MANIFEST));
}

/* The OCI media type with the same bytes as a (possibly Docker) layer media
 * type, or NULL when mt is not a layer type ocib can use. */
const char *oci_mt_layer_to_oci(const char *mt);

/* The Docker (schema 2) media type of a layer type, or NULL when Docker has
 * none (zstd). */
const char *oci_mt_layer_to_docker(const char *mt);

/* The media types an image is written with: OCI's, or Docker's (image
 * manifest v2 schema 2), as `podman build` writes by default. */
enum oci_format { OCI_FORMAT_OCI, OCI_FORMAT_DOCKER };

/* The manifest media type of a format. */
const char *oci_format_manifest_type(enum oci_format f);

#endif
