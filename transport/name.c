/*
 * Image names; see name.h.
 */
#include "transport/name.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define OCI_PREFIX "oci:"
#define ARCHIVE_PREFIX "docker-archive:"
#define DOCKER_PREFIX "docker://"

static bool has_prefix(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

const char *image_name_expected(unsigned allowed)
{
    switch (allowed & IMAGE_NAME_ANY) {
    case IMAGE_NAME_OCI:
        return "oci:DIR[:tag]";
    case IMAGE_NAME_ARCHIVE:
        return "docker-archive:FILE";
    case IMAGE_NAME_LOCAL:
        return "oci:DIR[:tag] or docker-archive:FILE";
    case IMAGE_NAME_REGISTRY:
        return "a registry reference";
    default:
        return "a registry reference, oci:DIR[:tag] or docker-archive:FILE";
    }
}

/* "DIR[:tag]": the part after the last ':' is a tag when it is a valid tag
 * and holds no '/'. */
static void split_oci(const char *s, struct image_name *n)
{
    const char *colon = strrchr(s, ':');

    if (colon && !strchr(colon, '/') && reference_tag_valid(colon + 1)) {
        n->path = xstrndup(s, (size_t)(colon - s));
        n->tag = xstrdup(colon + 1);
    } else {
        n->path = xstrdup(s);
    }
}

static int not_allowed(const char *s, unsigned allowed, struct ocib_error *err)
{
    return ocib_error_usage(err, "invalid image name \"%s\": expected %s", s,
                            image_name_expected(allowed));
}

int image_name_parse(const char *s, unsigned allowed, struct image_name *ret,
                     struct ocib_error *err)
{
    struct image_name n = {.ref = REFERENCE_INIT};

    if (has_prefix(s, OCI_PREFIX)) {
        if (!(allowed & IMAGE_NAME_OCI))
            return not_allowed(s, allowed, err);
        n.kind = IMAGE_NAME_OCI;
        split_oci(s + strlen(OCI_PREFIX), &n);
        if (!*n.path) {
            image_name_release(&n);
            return ocib_error_usage(
                err, "invalid image name \"%s\": missing directory after oci:", s);
        }
    } else if (has_prefix(s, ARCHIVE_PREFIX)) {
        if (!(allowed & IMAGE_NAME_ARCHIVE))
            return not_allowed(s, allowed, err);
        n.kind = IMAGE_NAME_ARCHIVE;
        if (!s[strlen(ARCHIVE_PREFIX)])
            return ocib_error_usage(
                err, "invalid image name \"%s\": missing file after docker-archive:", s);
        n.path = xstrdup(s + strlen(ARCHIVE_PREFIX));
    } else {
        const char *r = image_name_registry_text(s);

        if (!(allowed & IMAGE_NAME_REGISTRY))
            return not_allowed(s, allowed, err);
        n.kind = IMAGE_NAME_REGISTRY;
        if (reference_parse(r, &n.ref, err) < 0)
            return -1;
    }
    *ret = n;
    return 0;
}

const char *image_name_registry_text(const char *s)
{
    return has_prefix(s, DOCKER_PREFIX) ? s + strlen(DOCKER_PREFIX) : s;
}

int image_name_reference(const char *s, struct reference *ret, struct ocib_error *err)
{
    struct image_name n;

    if (image_name_parse(s, IMAGE_NAME_REGISTRY, &n, err) < 0)
        return -1;
    *ret = n.ref;
    return 0;
}

void image_name_release(struct image_name *n)
{
    free(n->path);
    free(n->tag);
    reference_release(&n->ref);
    memset(n, 0, sizeof(*n));
}
