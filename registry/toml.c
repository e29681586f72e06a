/*
 * TOML subset reader; see toml.h.
 *
 * A recursive-descent parser over the whole text: the document is a list of
 * lines, each blank, a comment, a [table] or [[array]] header, or a
 * key = value pair into the table the last header named.  Keys the
 * document names twice, and tables defined twice, are errors, as TOML says.
 */
#include "registry/toml.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *file;
    const char *p, *end;
    int line;
    struct ocib_error *err;
};

OCIB_PRINTF(2, 3)
static int fail(struct parser *ps, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ocib_error_set(ps->err, "%s:%d: %s", ps->file, ps->line, msg);
}

static struct toml_value *value_new(enum toml_kind kind, int line)
{
    struct toml_value *v = xcalloc(1, sizeof(*v));

    v->kind = kind;
    v->line = line;
    return v;
}

void toml_free(struct toml_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        toml_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const struct toml_value *toml_get(const struct toml_value *table, const char *key)
{
    if (!table || table->kind != TOML_TABLE)
        return NULL;
    for (size_t i = 0; i < table->n; i++)
        if (!strcmp(table->keys[i], key))
            return table->items[i];
    return NULL;
}

const char *toml_kind_name(enum toml_kind k)
{
    static const char *const names[] = {"a string", "a boolean", "an integer", "an array",
                                        "a table"};

    return names[k];
}

static struct toml_value *table_get_mut(struct toml_value *t, const char *key)
{
    return (struct toml_value *)toml_get(t, key);
}

static void table_add(struct toml_value *t, const char *key, struct toml_value *v)
{
    if (t->alloc <= t->n) {
        size_t alloc = t->alloc;

        XGROW(t->items, alloc, t->n + 1);
        t->keys = xrealloc(t->keys, alloc * sizeof(*t->keys));
        t->alloc = alloc;
    }
    t->keys[t->n] = xstrdup(key);
    t->items[t->n++] = v;
}

static void array_add(struct toml_value *a, struct toml_value *v)
{
    XGROW(a->items, a->alloc, a->n + 1);
    a->items[a->n++] = v;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static void skip_comment(struct parser *ps)
{
    if (ps->p < ps->end && *ps->p == '#')
        while (ps->p < ps->end && *ps->p != '\n')
            ps->p++;
}

static bool at_newline(const struct parser *ps)
{
    return ps->p < ps->end &&
           (*ps->p == '\n' || (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n'));
}

static void eat_newline(struct parser *ps)
{
    if (*ps->p == '\r')
        ps->p++;
    ps->p++;
    ps->line++;
}

/* Whitespace, comments and newlines (inside arrays). */
static void skip_blank(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        skip_comment(ps);
        if (!at_newline(ps))
            return;
        eat_newline(ps);
    }
}

/* After a value or header: only a comment may follow on the line. */
static int end_of_line(struct parser *ps)
{
    skip_ws(ps);
    skip_comment(ps);
    if (ps->p >= ps->end)
        return 0;
    if (!at_newline(ps))
        return fail(ps, "unexpected '%c' after the value", *ps->p);
    eat_newline(ps);
    return 0;
}

static void add_utf8(struct strbuf *sb, unsigned long c)
{
    if (c < 0x80) {
        strbuf_addch(sb, (char)c);
    } else if (c < 0x800) {
        strbuf_addch(sb, (char)(0xc0 | (c >> 6)));
        strbuf_addch(sb, (char)(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
        strbuf_addch(sb, (char)(0xe0 | (c >> 12)));
        strbuf_addch(sb, (char)(0x80 | ((c >> 6) & 0x3f)));
        strbuf_addch(sb, (char)(0x80 | (c & 0x3f)));
    } else {
        strbuf_addch(sb, (char)(0xf0 | (c >> 18)));
        strbuf_addch(sb, (char)(0x80 | ((c >> 12) & 0x3f)));
        strbuf_addch(sb, (char)(0x80 | ((c >> 6) & 0x3f)));
        strbuf_addch(sb, (char)(0x80 | (c & 0x3f)));
    }
}

/* \uXXXX or \UXXXXXXXX (ps->p after the u/U). */
static int unicode_escape(struct parser *ps, int digits, struct strbuf *sb)
{
    unsigned long c = 0;

    for (int i = 0; i < digits; i++, ps->p++) {
        char h = ps->p < ps->end ? *ps->p : '\0';
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;

        if (d < 0)
            return fail(ps, "invalid \\%c escape", digits == 4 ? 'u' : 'U');
        c = c * 16 + (unsigned long)d;
    }
    if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return fail(ps, "escape \\u%04lx is not a character ocib accepts", c);
    add_utf8(sb, c);
    return 0;
}

/* A "basic" or 'literal' string; ps->p at the opening quote. */
static int parse_string(struct parser *ps, char **ret)
{
    char q = *ps->p;
    struct strbuf sb = STRBUF_INIT;

    if (ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q)
        return fail(ps, "multi-line strings are not supported");
    for (ps->p++;; ps->p++) {
        char c = ps->p < ps->end ? *ps->p : '\n';

        if (c == q)
            break;
        if (c == '\n' || c == '\r' || c == '\0') {
            strbuf_release(&sb);
            return fail(ps, "unterminated string");
        }
        if (c != '\\' || q == '\'') {
            strbuf_addch(&sb, c);
            continue;
        }
        ps->p++;
        c = ps->p < ps->end ? *ps->p : '\0';
        switch (c) {
        case 'b':
            strbuf_addch(&sb, '\b');
            break;
        case 't':
            strbuf_addch(&sb, '\t');
            break;
        case 'n':
            strbuf_addch(&sb, '\n');
            break;
        case 'f':
            strbuf_addch(&sb, '\f');
            break;
        case 'r':
            strbuf_addch(&sb, '\r');
            break;
        case '"':
            strbuf_addch(&sb, '"');
            break;
        case '\\':
            strbuf_addch(&sb, '\\');
            break;
        case 'u':
        case 'U':
            ps->p++;
            if (unicode_escape(ps, c == 'u' ? 4 : 8, &sb) < 0) {
                strbuf_release(&sb);
                return -1;
            }
            ps->p--;
            break;
        default:
            strbuf_release(&sb);
            return fail(ps, "invalid escape '\\%c' in a string", c ? c : '0');
        }
    }
    ps->p++;
    *ret = sb.buf ? strbuf_detach(&sb) : xstrdup("");
    return 0;
}

static bool bare_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* A dotted key into parts (the caller frees each and the array). */
static int parse_key(struct parser *ps, char ***ret, size_t *ret_n)
{
    char **parts = NULL;
    size_t n = 0, alloc = 0;

    for (;;) {
        char *part;

        skip_ws(ps);
        if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'')) {
            if (parse_string(ps, &part) < 0)
                goto fail;
        } else {
            const char *s = ps->p;

            while (ps->p < ps->end && bare_key_char(*ps->p))
                ps->p++;
            if (ps->p == s) {
                fail(ps, "expected a key");
                goto fail;
            }
            part = xstrndup(s, (size_t)(ps->p - s));
        }
        XGROW(parts, alloc, n + 1);
        parts[n++] = part;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '.')
            break;
        ps->p++;
    }
    *ret = parts;
    *ret_n = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
    return -1;
}

static void free_key(char **parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
}

static int parse_value(struct parser *ps, int depth, struct toml_value **ret);

/* Walks t down parts[0..n), creating tables; the last element of an array
 * of tables stands for it. */
static int descend(struct parser *ps, struct toml_value *t, char **parts, size_t n,
                   struct toml_value **ret)
{
    for (size_t i = 0; i < n; i++) {
        struct toml_value *next = table_get_mut(t, parts[i]);

        if (!next) {
            next = value_new(TOML_TABLE, ps->line);
            table_add(t, parts[i], next);
        } else if (next->kind == TOML_ARRAY && next->table_array && next->n) {
            next = next->items[next->n - 1];
        } else if (next->kind != TOML_TABLE) {
            return fail(ps, "key '%s' is %s (line %d), not a table", parts[i],
                        toml_kind_name(next->kind), next->line);
        }
        t = next;
    }
    *ret = t;
    return 0;
}

/* key = value into t. */
static int parse_pair(struct parser *ps, struct toml_value *t, int depth)
{
    char **parts;
    size_t n;
    struct toml_value *into, *v;
    int rc = -1;

    if (parse_key(ps, &parts, &n) < 0)
        return -1;
    if (ps->p >= ps->end || *ps->p != '=') {
        fail(ps, "expected '=' after key '%s'", parts[n - 1]);
        goto out;
    }
    ps->p++;
    skip_ws(ps);
    if (descend(ps, t, parts, n - 1, &into) < 0)
        goto out;
    if (toml_get(into, parts[n - 1])) {
        fail(ps, "key '%s' is defined twice (first on line %d)", parts[n - 1],
             toml_get(into, parts[n - 1])->line);
        goto out;
    }
    if (parse_value(ps, depth, &v) < 0)
        goto out;
    v->closed = true;
    table_add(into, parts[n - 1], v);
    rc = 0;
out:
    free_key(parts, n);
    return rc;
}

static int parse_array(struct parser *ps, int depth, struct toml_value *a)
{
    ps->p++; /* [ */
    for (;;) {
        struct toml_value *v;

        skip_blank(ps);
        if (ps->p < ps->end && *ps->p == ']')
            break;
        if (parse_value(ps, depth + 1, &v) < 0)
            return -1;
        array_add(a, v);
        skip_blank(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']')
            break;
        return fail(ps, "expected ',' or ']' in an array");
    }
    ps->p++;
    return 0;
}

static int parse_inline_table(struct parser *ps, int depth, struct toml_value *t)
{
    ps->p++; /* { */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (parse_pair(ps, t, depth + 1) < 0)
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}')
            break;
        return fail(ps, "expected ',' or '}' in an inline table");
    }
    ps->p++;
    return 0;
}

static int parse_scalar(struct parser *ps, struct toml_value *v)
{
    const char *s = ps->p;
    long long n = 0;
    size_t len;

    while (ps->p < ps->end &&
           (bare_key_char(*ps->p) || *ps->p == '+' || *ps->p == '.' || *ps->p == ':'))
        ps->p++;
    len = (size_t)(ps->p - s);
    if (len == 4 && !strncmp(s, "true", 4)) {
        v->kind = TOML_BOOL;
        v->boolean = true;
        return 0;
    }
    if (len == 5 && !strncmp(s, "false", 5)) {
        v->kind = TOML_BOOL;
        return 0;
    }
    {
        size_t i = (len && (*s == '+' || *s == '-')) ? 1 : 0;
        bool digits = i < len;

        for (size_t k = i; k < len && digits; k++)
            digits = (s[k] >= '0' && s[k] <= '9') ||
                     (s[k] == '_' && k > i && k + 1 < len && s[k + 1] != '_');
        if (digits) {
            for (size_t k = i; k < len; k++) {
                if (s[k] == '_')
                    continue;
                if (n > (__LONG_LONG_MAX__ - 9) / 10)
                    return fail(ps, "integer '%.*s' is too large", (int)len, s);
                n = n * 10 + (s[k] - '0');
            }
            v->kind = TOML_INT;
            v->integer = *s == '-' ? -n : n;
            return 0;
        }
    }
    if (!len)
        return fail(ps, "expected a value");
    return fail(ps,
                "unsupported value '%.*s' (ocib reads strings, booleans, integers, "
                "arrays and tables)",
                (int)(len > 40 ? 40 : len), s);
}

static int parse_value(struct parser *ps, int depth, struct toml_value **ret)
{
    struct toml_value *v = value_new(TOML_STRING, ps->line);
    int rc;

    if (depth > TOML_DEPTH_MAX) {
        toml_free(v);
        return fail(ps, "values nested deeper than %d", TOML_DEPTH_MAX);
    }
    if (ps->p >= ps->end) {
        rc = fail(ps, "expected a value");
    } else if (*ps->p == '"' || *ps->p == '\'') {
        rc = parse_string(ps, &v->str);
    } else if (*ps->p == '[') {
        v->kind = TOML_ARRAY;
        rc = parse_array(ps, depth, v);
    } else if (*ps->p == '{') {
        v->kind = TOML_TABLE;
        rc = parse_inline_table(ps, depth, v);
    } else {
        rc = parse_scalar(ps, v);
    }
    if (rc < 0) {
        toml_free(v);
        return -1;
    }
    *ret = v;
    return 0;
}

/* A [table] or [[array]] header; sets *cur to the table it opens. */
static int parse_header(struct parser *ps, struct toml_value *root, struct toml_value **cur)
{
    bool aot = ps->end - ps->p >= 2 && ps->p[1] == '[';
    char **parts;
    size_t n;
    struct toml_value *parent, *t;
    int rc = -1;

    ps->p += aot ? 2 : 1;
    if (parse_key(ps, &parts, &n) < 0)
        return -1;
    if (ps->end - ps->p < (aot ? 2 : 1) || *ps->p != ']' || (aot && ps->p[1] != ']')) {
        fail(ps, "expected '%s' after the table name", aot ? "]]" : "]");
        goto out;
    }
    ps->p += aot ? 2 : 1;
    if (descend(ps, root, parts, n - 1, &parent) < 0)
        goto out;
    t = table_get_mut(parent, parts[n - 1]);
    if (aot) {
        if (!t) {
            t = value_new(TOML_ARRAY, ps->line);
            t->table_array = true;
            table_add(parent, parts[n - 1], t);
        } else if (t->kind != TOML_ARRAY || !t->table_array) {
            fail(ps, "[[%s]]: '%s' is %s (line %d)", parts[n - 1], parts[n - 1],
                 toml_kind_name(t->kind), t->line);
            goto out;
        }
        array_add(t, value_new(TOML_TABLE, ps->line));
        *cur = t->items[t->n - 1];
    } else {
        if (!t) {
            t = value_new(TOML_TABLE, ps->line);
            table_add(parent, parts[n - 1], t);
        } else if (t->kind != TOML_TABLE || t->closed) {
            fail(ps, "[%s] is defined twice (first on line %d)", parts[n - 1], t->line);
            goto out;
        }
        t->closed = true;
        t->line = ps->line;
        *cur = t;
    }
    rc = end_of_line(ps);
out:
    free_key(parts, n);
    return rc;
}

int toml_parse(const char *file, const char *text, size_t len, struct toml_value **ret,
               struct ocib_error *err)
{
    struct parser ps = {.file = file, .p = text, .end = text + len, .line = 1, .err = err};
    struct toml_value *root = value_new(TOML_TABLE, 1), *cur = root;

    if (len > TOML_MAX || memchr(text, '\0', len)) {
        toml_free(root);
        return ocib_error_set(err, "%s: %s", file,
                              len > TOML_MAX ? "larger than 1 MiB" : "holds a NUL byte");
    }
    while (ps.p < ps.end) {
        int rc;

        skip_ws(&ps);
        skip_comment(&ps);
        if (ps.p >= ps.end)
            break;
        if (at_newline(&ps)) {
            eat_newline(&ps);
            continue;
        }
        if (*ps.p == '[')
            rc = parse_header(&ps, root, &cur);
        else
            rc = parse_pair(&ps, cur, 0) < 0 ? -1 : end_of_line(&ps);
        if (rc < 0) {
            toml_free(root);
            return -1;
        }
    }
    *ret = root;
    return 0;
}
