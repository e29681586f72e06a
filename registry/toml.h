/*
 * A strict reader for the part of TOML that registries.conf uses: tables
 * ([a.b]), arrays of tables ([[a.b]]), bare, quoted and dotted keys, basic
 * strings with escapes, literal strings, booleans, integers, arrays (over
 * several lines, with comments and a trailing comma) and inline tables.
 * Multi-line strings, floats and dates are refused as unsupported.
 *
 * Every value remembers its line, so that whoever reads the document can
 * say "FILE:LINE: key: what is wrong".  Parse errors are worded so too.
 * Nothing here prints.
 */
#ifndef OCIB_REGISTRY_TOML_H
#define OCIB_REGISTRY_TOML_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* Longest document read, and deepest nesting of arrays and inline tables. */
#define TOML_MAX (1024 * 1024)
#define TOML_DEPTH_MAX 16

enum toml_kind { TOML_STRING, TOML_BOOL, TOML_INT, TOML_ARRAY, TOML_TABLE };

struct toml_value {
    enum toml_kind kind;
    int line;
    char *str;         /* TOML_STRING (NUL-terminated; no NUL inside) */
    bool boolean;      /* TOML_BOOL */
    long long integer; /* TOML_INT */
    /* TOML_ARRAY: items[0..n); TOML_TABLE: keys[i] holds items[i]. */
    struct toml_value **items;
    char **keys;
    size_t n, alloc;
    bool table_array; /* an array that [[header]]s make */
    bool closed;      /* a table a [header] or a value defined: not redefinable */
};

/* Parses text (len bytes) of file into a root table the caller frees with
 * toml_free.  Fails with "FILE:LINE: why" and *ret untouched. */
int toml_parse(const char *file, const char *text, size_t len, struct toml_value **ret,
               struct ocib_error *err);
void toml_free(struct toml_value *v);

/* The value of key in table, or NULL (also when table is NULL or not a
 * table). */
const struct toml_value *toml_get(const struct toml_value *table, const char *key);

/* "string", "boolean", ... for messages. */
const char *toml_kind_name(enum toml_kind k);

#endif
