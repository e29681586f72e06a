/*
 * The names users give images, parsed in one place for the spec (`from`,
 * `copy.from`, `image`), the command line (--tag, --output, push, inspect,
 * diff) and the image loaders:
 *
 *   oci:DIR[:TAG]         an OCI image layout (TAG: a ref name in its index)
 *   docker-archive:FILE   a `docker save` tarball
 *   docker://REFERENCE    a registry reference, with skopeo's prefix
 *   REFERENCE             a registry reference (registry/reference.h)
 *
 * A caller says which kinds it takes; a name of another kind fails naming
 * what was expected.
 */
#ifndef OCIB_TRANSPORT_NAME_H
#define OCIB_TRANSPORT_NAME_H

#include "base/error.h"
#include "registry/reference.h"

enum image_name_kind {
    IMAGE_NAME_OCI = 1 << 0,
    IMAGE_NAME_ARCHIVE = 1 << 1,
    IMAGE_NAME_REGISTRY = 1 << 2,
};

#define IMAGE_NAME_LOCAL (IMAGE_NAME_OCI | IMAGE_NAME_ARCHIVE)
#define IMAGE_NAME_ANY (IMAGE_NAME_LOCAL | IMAGE_NAME_REGISTRY)

struct image_name {
    enum image_name_kind kind;
    char *path;           /* OCI: the directory; ARCHIVE: the file */
    char *tag;            /* OCI: NULL when absent */
    struct reference ref; /* REGISTRY */
};

/* Parses s as one of the kinds in allowed (a mask of enum image_name_kind).
 * Errors are usage errors quoting s.  ret is untouched on failure. */
int image_name_parse(const char *s, unsigned allowed, struct image_name *ret,
                     struct ocib_error *err);
void image_name_release(struct image_name *n);

/* s as a registry reference, with or without the docker:// prefix (as
 * reference_parse otherwise); oci: and docker-archive: names are refused. */
int image_name_reference(const char *s, struct reference *ret, struct ocib_error *err);

/* The reference part of a registry name: s past a docker:// prefix. */
const char *image_name_registry_text(const char *s);

/* What a mask of kinds accepts, for messages: "oci:DIR[:tag] or
 * docker-archive:FILE". */
const char *image_name_expected(unsigned allowed);

#endif
