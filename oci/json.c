/*
 * Canonical JSON; see json.h.
 */
#include "oci/json.h"
#include "base/xalloc.h"

#include <string.h>

char *oci_json_canonical(const json_t *v, size_t *ret_len)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    if (!s) {
        /* jansson fails only on allocation or invalid UTF-8, which ocib
         * never builds: treat as out of memory. */
        s = xstrdup("null");
    }
    if (ret_len)
        *ret_len = strlen(s);
    return s;
}

int oci_json_parse(const char *buf, size_t len, const char *what, json_t **ret,
                   struct ocib_error *err)
{
    json_error_t jerr;
    json_t *v;

    if (len > OCI_JSON_MAX)
        return ocib_error_set(err, "%s: larger than the limit of %d bytes", what,
                              OCI_JSON_MAX);
    v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return ocib_error_set(err, "%s: invalid JSON at line %d column %d: %s", what,
                              jerr.line, jerr.column, jerr.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return ocib_error_set(err, "%s: expected a JSON object", what);
    }
    *ret = v;
    return 0;
}

const char *oci_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}
