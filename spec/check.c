/*
 * Positioned checks of a spec's values; see check.h.
 */
#include "spec/check.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spec_fail(struct vctx *v, const struct at *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ocib_error_usage(v->err, "%s:%d:%d: %s: %s", v->spec->file, at->pos.line,
                            at->pos.col, at->path, msg);
}

const char *spec_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A member's location; the caller frees at.path. */
struct at spec_at_key(struct vctx *v, const json_t *obj, const char *path, const char *key)
{
    struct at a = {xasprintf("%s%s%s", path, *path ? "." : "", key),
                   json_doc_key_pos(&v->spec->doc, obj, key)};
    return a;
}

struct at spec_at_index(struct vctx *v, const json_t *arr, const char *path, size_t i)
{
    struct at a = {xasprintf("%s[%zu]", path, i),
                   json_doc_index_pos(&v->spec->doc, arr, i)};
    return a;
}

void spec_at_free(struct at *a)
{
    free((char *)a->path);
}

static size_t spec_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

/* Fails on the first key of obj that is not in allowed (NULL-terminated). */
int spec_check_keys(struct vctx *v, const json_t *obj, const char *path,
                    const char *const *allowed)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)obj, key, val)
    {
        const char *best = NULL;
        size_t best_d = 3;
        bool ok = false;

        for (const char *const *a = allowed; *a; a++) {
            size_t d;

            if (!strcmp(*a, key)) {
                ok = true;
                break;
            }
            d = spec_edit_distance(key, *a);
            if (d < best_d || (d == best_d && !best)) {
                best_d = d;
                best = *a;
            }
        }
        if (!ok) {
            _cleanup_at_ struct at a = spec_at_key(v, obj, path, key);

            if (best && best_d <= 2)
                return spec_fail(v, &a, "unknown key; did you mean \"%s\"?", best);
            return spec_fail(v, &a, "unknown key");
        }
    }
    return 0;
}

int spec_expect_type(struct vctx *v, const struct at *at, const json_t *j, json_type type,
                     const char *want)
{
    if (json_typeof(j) != type && !(type == JSON_TRUE && json_is_boolean(j)))
        return spec_fail(v, at, "expected %s, got %s", want, spec_type_name(j));
    return 0;
}

int spec_expect_string(struct vctx *v, const struct at *at, const json_t *j, bool nonempty)
{
    if (spec_expect_type(v, at, j, JSON_STRING, "a string") < 0)
        return -1;
    if (nonempty && !json_string_length(j))
        return spec_fail(v, at, "must not be empty");
    return 0;
}

/* An object whose values are all strings; keys checked by key_ok if given. */
int spec_expect_string_map(struct vctx *v, const struct at *at, const json_t *j,
                           bool (*key_ok)(const char *), const char *key_what)
{
    const char *key;
    json_t *val;

    if (spec_expect_type(v, at, j, JSON_OBJECT, "an object") < 0)
        return -1;
    json_object_foreach((json_t *)j, key, val)
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, at->path, key);

        if (key_ok && !key_ok(key))
            return spec_fail(v, &a, "invalid %s", key_what);
        if (spec_expect_string(v, &a, val, false) < 0)
            return -1;
    }
    return 0;
}

int spec_expect_string_list(struct vctx *v, const struct at *at, const json_t *j,
                            bool nonempty_list, bool nonempty_items)
{
    size_t i;
    json_t *item;

    if (spec_expect_type(v, at, j, JSON_ARRAY, "an array of strings") < 0)
        return -1;
    if (nonempty_list && json_array_size(j) == 0)
        return spec_fail(v, at, "must not be empty");
    json_array_foreach(j, i, item)
    {
        _cleanup_at_ struct at a = spec_at_index(v, j, at->path, i);

        if (spec_expect_string(v, &a, item, nonempty_items) < 0)
            return -1;
    }
    return 0;
}

char **spec_strv_dup(const json_t *j, size_t *ret_n)
{
    char **list = xcalloc(json_array_size(j) + 1, sizeof(*list));
    size_t i;
    json_t *item;

    json_array_foreach(j, i, item) list[i] = xstrdup(json_string_value(item));
    *ret_n = json_array_size(j);
    return list;
}

void spec_strv_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

bool spec_env_name_ok(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

bool spec_stage_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128 ||
        !(islower((unsigned char)*s) || isdigit((unsigned char)*s)))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
            !strchr("_.-", *s))
            return false;
    return true;
}
