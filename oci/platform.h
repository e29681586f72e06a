/*
 * Platforms ("os/arch[/variant]") and how they match index entries.
 */
#ifndef OCIB_OCI_PLATFORM_H
#define OCIB_OCI_PLATFORM_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"

struct oci_platform {
    char os[32];
    char arch[32];
    char variant[16]; /* "" when none */
};

/* Parses "os/arch[/variant]" (an os, arch and variant images are built
 * for: windows/sparc is refused), normalising aliases (x86_64 -> amd64,
 * aarch64 -> arm64, arm64 implies variant v8). */
int oci_platform_parse(const char *s, struct oci_platform *ret, struct ocib_error *err);
/* Parses a comma-separated list of platforms (none twice) into *ret
 * (caller frees), *ret_n of them. */
int oci_platform_list_parse(const char *s, struct oci_platform **ret, size_t *ret_n,
                            struct ocib_error *err);
/* The host's platform ("linux/<uname arch>"). */
void oci_platform_host(struct oci_platform *ret);
/* "os/arch[/variant]" into buf. */
void oci_platform_format(const struct oci_platform *p, char *buf, size_t size);
/* True when an index entry's "platform" object matches p. */
bool oci_platform_match_json(const struct oci_platform *p, const json_t *platform);

/* "os/arch[/variant]" of an index entry's "platform" object ("?" for a
 * missing os or architecture); caller frees. */
char *oci_platform_describe(const json_t *platform);

/* The one platform picker of an index: the first entry of its "manifests"
 * array whose platform matches p and that is an image manifest (or names no
 * media type), or NULL.  When none matches and ret_available is not NULL, it
 * gets the platforms the index has ("linux/amd64, linux/arm64/v8", or
 * "none"; caller frees). */
const json_t *oci_index_pick(const json_t *manifests, const struct oci_platform *p,
                             char **ret_available);

#endif
