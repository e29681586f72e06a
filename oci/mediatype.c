/*
 * Media type mapping; see mediatype.h.
 */
#include "oci/mediatype.h"

#include <string.h>

const char *oci_mt_layer_to_docker(const char *mt)
{
    const char *oci = oci_mt_layer_to_oci(mt);

    if (oci && !strcmp(oci, OCI_MT_LAYER_GZIP))
        return DOCKER_MT_LAYER_GZIP;
    if (oci && !strcmp(oci, OCI_MT_LAYER_TAR))
        return DOCKER_MT_LAYER_TAR;
    return NULL;
}

const char *oci_format_manifest_type(enum oci_format f)
{
    return f == OCI_FORMAT_DOCKER ? DOCKER_MT_MANIFEST : OCI_MT_MANIFEST;
}

const char *oci_mt_layer_to_oci(const char *mt)
{
    if (!mt)
        return NULL;
    if (!strcmp(mt, OCI_MT_LAYER_GZIP) || !strcmp(mt, DOCKER_MT_LAYER_GZIP))
        return OCI_MT_LAYER_GZIP;
    if (!strcmp(mt, OCI_MT_LAYER_TAR) || !strcmp(mt, DOCKER_MT_LAYER_TAR))
        return OCI_MT_LAYER_TAR;
    if (!strcmp(mt, OCI_MT_LAYER_ZSTD))
        return OCI_MT_LAYER_ZSTD;
    return NULL;
}
