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

/* Parses "os/arch[/variant]", normalising aliases (x86_64 -> amd64,
 * aarch64 -> arm64, arm64 implies variant v8). */
int oci_platform_parse(const char *s, struct oci_platform *ret, struct ocib_error *err);
/* The host's platform ("linux/<uname arch>"). */
void oci_platform_host(struct oci_platform *ret);
/* "os/arch[/variant]" into buf. */
void oci_platform_format(const struct oci_platform *p, char *buf, size_t size);
/* True when an index entry's "platform" object matches p. */
bool oci_platform_match_json(const struct oci_platform *p, const json_t *platform);

#endif
