/*
 * An image index (a Docker manifest list with --format docker) over the
 * images of several platforms, each entry with the platform its config
 * says.
 */
#ifndef OCIB_OCI_INDEX_H
#define OCIB_OCI_INDEX_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"
#include "oci/image.h"
#include "oci/mediatype.h"

struct oci_index_entry {
    const struct oci_blob *manifest;
    const json_t *config; /* the image config: os, architecture, variant */
};

/* Serialises the index of n entries in format f, with annotations (may be
 * NULL; Docker's manifest list has none) into *ret. */
void oci_index_serialize(const struct oci_index_entry *entries, size_t n, enum oci_format f,
                         const json_t *annotations, struct oci_blob *ret);

/* The index media type of a format. */
const char *oci_format_index_type(enum oci_format f);

#endif
