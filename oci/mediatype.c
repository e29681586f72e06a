/*
 * Media type mapping; see mediatype.h.
 */
#include "oci/mediatype.h"

#include <string.h>

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
