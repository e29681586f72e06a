/*
 * Canonical JSON for everything ocib hashes.
 *
 * Manifests, configs, indexes and cache keys are serialised with sorted keys,
 * no insignificant white space and UTF-8 left as is, so that equal documents
 * give equal bytes and therefore equal digests on every machine.  Parsing of
 * documents from outside goes through oci_json_parse(), which enforces a size
 * cap and rejects duplicate keys.
 */
#ifndef OCIB_OCI_JSON_H
#define OCIB_OCI_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

/* Largest manifest, index or config ocib accepts (4 MiB, as registries do). */
#define OCI_JSON_MAX (4 * 1024 * 1024)

/* Serialises v canonically; caller frees the result.  *ret_len gets the
 * length (the result is also NUL-terminated). */
char *oci_json_canonical(const json_t *v, size_t *ret_len);

/* Parses len bytes of JSON from what (a name for messages).  Fails when len
 * exceeds OCI_JSON_MAX, on syntax errors and duplicate keys, and when the
 * root is not an object. */
int oci_json_parse(const char *buf, size_t len, const char *what, json_t **ret,
                   struct ocib_error *err);

/* Convenience accessors that return NULL when the member is absent or of
 * another type. */
const char *oci_json_str(const json_t *obj, const char *key);

static inline void oci_json_decrefp(json_t **p)
{
    if (*p)
        json_decref(*p);
}
#define _cleanup_json_ __attribute__((cleanup(oci_json_decrefp)))

#endif
