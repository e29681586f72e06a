/*
 * Fuzzes spec/json_doc: the strict, positioned JSON parser of ocib.json.
 *
 * Beyond not crashing: a failure records a message naming the file, and a
 * document it accepts means what jansson says it means, with a position for
 * every key, element and value of the tree.
 */
#include <jansson.h>

#include "spec/json_doc.h"
#include "fuzz.h"

/* Asks for the position of every piece of v, checking each is sane. */
static void walk(const struct json_doc *doc, const json_t *v, int depth)
{
    const char *key;
    json_t *child;
    size_t i;
    struct json_pos p = json_doc_value_pos(doc, v);

    if (p.line < 1 || p.col < 1 || depth > JSON_DOC_MAX_DEPTH + 1)
        abort();
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
        {
            p = json_doc_key_pos(doc, v, key);
            if (p.line < 1 || p.col < 1)
                abort();
            walk(doc, child, depth + 1);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            p = json_doc_index_pos(doc, v, i);
            if (p.line < 1 || p.col < 1)
                abort();
            walk(doc, child, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    _cleanup_json_doc_ struct json_doc doc = JSON_DOC_INIT;
    struct ocib_error err = OCIB_ERROR_INIT;
    json_error_t jerr;
    json_t *want;

    if (json_doc_parse(&doc, "fuzz.json", (const char *)data, size, &err) < 0) {
        if (doc.root || strncmp(err.msg, "fuzz.json:", 10) != 0)
            abort();
        return 0;
    }
    if (!doc.root)
        abort();
    walk(&doc, doc.root, 0);
    /* What the strict parser accepts, jansson reads the same way (jansson
     * may refuse more: integers beyond int64, for one). */
    want = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    if (want && !json_equal(want, doc.root))
        abort();
    json_decref(want);
    return 0;
}
