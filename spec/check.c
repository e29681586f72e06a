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

size_t spec_edit_distance(const char *a, const char *b)
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
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

void spec_map_dup(const json_t *obj, struct spec_map *m)
{
    const char *key;
    json_t *val;

    m->n = 0;
    m->set = true;
    m->keys = xcalloc(json_object_size(obj) + 1, sizeof(*m->keys));
    m->values = xcalloc(json_object_size(obj) + 1, sizeof(*m->values));
    json_object_foreach((json_t *)obj, key, val)
    {
        m->keys[m->n] = xstrdup(key);
        m->values[m->n] = xstrdup(json_string_value(val));
        m->n++;
    }
}

void spec_map_add(struct spec_map *m, const char *key, const char *value)
{
    m->keys = xrealloc(m->keys, (m->n + 2) * sizeof(*m->keys));
    m->values = xrealloc(m->values, (m->n + 2) * sizeof(*m->values));
    m->keys[m->n] = xstrdup(key);
    m->values[m->n] = xstrdup(value);
    m->n++;
    m->keys[m->n] = m->values[m->n] = NULL;
    m->set = true;
}

void spec_map_release(struct spec_map *m)
{
    spec_strv_free(m->keys, m->n);
    spec_strv_free(m->values, m->n);
    memset(m, 0, sizeof(*m));
}

int spec_parse_command(struct vctx *v, const struct at *at, const json_t *j,
                       bool nonempty_string, bool nonempty_list, struct spec_command *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (json_is_string(j)) {
        if (nonempty_string && !json_string_length(j))
            return spec_fail(v, at, "must not be empty");
        ret->shell = true;
        ret->argv = xcalloc(2, sizeof(*ret->argv));
        ret->argv[0] = xstrdup(json_string_value(j));
        ret->argc = 1;
    } else {
        if (spec_expect_string_list(v, at, j, nonempty_list, false) < 0)
            return -1;
        ret->argv = spec_strv_dup(j, &ret->argc);
    }
    ret->set = true;
    return 0;
}

void spec_command_release(struct spec_command *c)
{
    spec_strv_free(c->argv, c->argc);
    memset(c, 0, sizeof(*c));
}

char **spec_command_exec_argv(const struct spec_command *c, size_t *ret_n)
{
    static const char *const shell[] = {"/bin/sh", "-c"};
    size_t n = c->shell ? ARRAY_SIZE(shell) + 1 : c->argc, k = 0;
    char **argv = xcalloc(n + 1, sizeof(*argv));

    if (c->shell)
        for (; k < ARRAY_SIZE(shell); k++)
            argv[k] = xstrdup(shell[k]);
    for (size_t i = 0; i < c->argc; i++)
        argv[k++] = xstrdup(c->argv[i]);
    *ret_n = n;
    return argv;
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
