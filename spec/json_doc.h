/*
 * Strict JSON documents that remember where each piece came from.
 *
 * The build spec (ocib.json) is written by hand, so its errors must point at
 * the spot in the file: "ocib.json:12:9: stages[1]...dset: unknown key".
 * json_doc_parse() is a recursive-descent parser of RFC 8259 JSON, strict on
 * purpose (no comments, trailing commas, leading zeros, NaN, BOM, duplicate
 * keys, invalid UTF-8, unpaired surrogates or NUL characters, nesting capped
 * at JSON_DOC_MAX_DEPTH), that builds an ordinary jansson tree and, next to
 * it, a table of the line:column of every object key and array element.
 *
 * Jansson shares the true/false/null singletons between all uses, so a
 * position cannot be keyed on the value pointer; instead it is looked up by
 * the container and the key or index that lead to the value.  Positions are
 * 1-based; columns count bytes (a tab is one column, a multi-byte UTF-8
 * character counts its bytes).
 *
 * A struct json_doc owns its tree and its table; json_doc_release() frees
 * both.  Nodes borrowed from doc->root stay valid until then.  Lookups are
 * binary searches in two sorted views of the table, made once after
 * parsing, so that checking every key of an object with n keys costs
 * n log n, not n^2.
 */
#ifndef OCIB_SPEC_JSON_DOC_H
#define OCIB_SPEC_JSON_DOC_H

#include <stddef.h>
#include <jansson.h>

#include "base/error.h"

/* Containers nested deeper than this are rejected. */
#define JSON_DOC_MAX_DEPTH 64
/* Documents larger than this are rejected (keeps line:col within int). */
#define JSON_DOC_MAX_SIZE (16u << 20)

struct json_pos {
    int line, col; /* 1-based; col counts bytes */
};

struct json_doc_entry; /* private: one key or array element */

struct json_doc {
    json_t *root; /* the parsed value; owned by the doc */

    /* private */
    struct json_pos root_pos;
    struct json_doc_entry *entries;
    size_t entries_nr, entries_alloc;
    /* the entries sorted by (container, key or index) and by value */
    const struct json_doc_entry **by_member, **by_value;
};

#define JSON_DOC_INIT                                                                      \
    {                                                                                      \
        0                                                                                  \
    }

/* Parses the len bytes at buf (need not be NUL-terminated) into doc, which
 * need not be initialized and must not hold a previous parse (release it
 * first).  filename is used only in error messages.  On a syntax error
 * records a usage error "<filename>:<line>:<col>: <what is wrong>" pointing
 * at the offending character, leaves doc empty (safe to release) and
 * returns -1.  Returns 0 on success; doc->root then holds the value, which
 * may be of any JSON type. */
int json_doc_parse(struct json_doc *doc, const char *filename, const char *buf, size_t len,
                   struct ocib_error *err);

/* Frees the tree and the position table and leaves doc empty.  Accepts a
 * zeroed or already released doc. */
void json_doc_release(struct json_doc *doc);

static inline void json_doc_releasep(struct json_doc *doc)
{
    json_doc_release(doc);
}
#define _cleanup_json_doc_ __attribute__((cleanup(json_doc_releasep)))

/* Position of the key token (its opening quote) of member key of object
 * obj, a node of doc->root.  Returns {1, 1} when unknown. */
struct json_pos json_doc_key_pos(const struct json_doc *doc, const json_t *obj,
                                 const char *key);

/* Position of the first character of element idx of array arr, a node of
 * doc->root.  Returns {1, 1} when unknown. */
struct json_pos json_doc_index_pos(const struct json_doc *doc, const json_t *arr,
                                   size_t idx);

/* Position of the first character of v, a node of doc->root that is an
 * object, array, string or number, or doc->root itself.  The shared
 * singletons true, false and null (unless the root) return {1, 1}, as does
 * any value the doc does not know. */
struct json_pos json_doc_value_pos(const struct json_doc *doc, const json_t *v);

#endif
