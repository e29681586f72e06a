/*
 * Positioned strict JSON parser; see json_doc.h.
 *
 * A plain recursive descent over the byte buffer, one function per grammar
 * rule, with the cursor (offset, line, column) in struct parser.  Each
 * function returns a new jansson reference on success; containers under
 * construction are json_auto_t so that an error anywhere frees the partial
 * tree.  Recursion is bounded by JSON_DOC_MAX_DEPTH.
 */
#include "spec/json_doc.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

struct json_doc_entry {
    const json_t *container;
    char *key;  /* member name, or NULL for an array element */
    size_t idx; /* array index when key is NULL */
    struct json_pos key_pos;
    const json_t *value;
    struct json_pos value_pos;
};

struct parser {
    const char *filename;
    const unsigned char *buf;
    size_t len;
    size_t off;
    int line, col;
    struct json_doc *doc;
    struct ocib_error *err;
};

#define JSON_INT_MIN (sizeof(json_int_t) == sizeof(long long) ? LLONG_MIN : LONG_MIN)

static int parse_value(struct parser *p, int depth, json_t **ret);

static int peek(const struct parser *p)
{
    return p->off < p->len ? p->buf[p->off] : -1;
}

static struct json_pos cur_pos(const struct parser *p)
{
    struct json_pos pos = {p->line, p->col};
    return pos;
}

/* Moves past one byte, keeping line and column. */
static void advance(struct parser *p)
{
    if (p->buf[p->off] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->off++;
}

static void skip_ws(struct parser *p)
{
    int c;

    for (;;) {
        c = peek(p);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        advance(p);
    }
}

/* Records "<file>:<line>:<col>: <message>" as a usage error.  Returns -1. */
static int OCIB_PRINTF(3, 4)
    fail_at(struct parser *p, struct json_pos pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ocib_error_usage(p->err, "%s:%d:%d: %s", p->filename, pos.line, pos.col, msg);
}

/* Reports that the current character is not what the grammar expects,
 * naming the common hand-editing slips instead when they are the cause. */
static int fail_unexpected(struct parser *p, const char *expected)
{
    int c = peek(p);

    if (c == '/')
        return fail_at(p, cur_pos(p), "comments are not allowed");
    if (c == '\'')
        return fail_at(p, cur_pos(p), "strings must use double quotes");
    return fail_at(p, cur_pos(p), "%s", expected);
}

static void doc_record(struct json_doc *doc, const json_t *container, const char *key,
                       size_t idx, struct json_pos key_pos, const json_t *value,
                       struct json_pos value_pos)
{
    struct json_doc_entry *e;

    XGROW(doc->entries, doc->entries_alloc, doc->entries_nr + 1);
    e = &doc->entries[doc->entries_nr++];
    e->container = container;
    e->key = key ? xstrdup(key) : NULL;
    e->idx = idx;
    e->key_pos = key_pos;
    e->value = value;
    e->value_pos = value_pos;
}

/* Returns the length of the valid UTF-8 sequence at s (n bytes available),
 * or 0 if it is malformed, overlong, a surrogate or above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        need = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        need = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        need = 4;
    else
        return 0;
    if (s[0] == 0xE0)
        lo = 0xA0;
    else if (s[0] == 0xED)
        hi = 0x9F;
    else if (s[0] == 0xF0)
        lo = 0x90;
    else if (s[0] == 0xF4)
        hi = 0x8F;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

static void utf8_add(struct strbuf *sb, unsigned cp)
{
    if (cp < 0x80) {
        strbuf_addch(sb, (char)cp);
    } else if (cp < 0x800) {
        strbuf_addch(sb, (char)(0xC0 | (cp >> 6)));
        strbuf_addch(sb, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        strbuf_addch(sb, (char)(0xE0 | (cp >> 12)));
        strbuf_addch(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
        strbuf_addch(sb, (char)(0x80 | (cp & 0x3F)));
    } else {
        strbuf_addch(sb, (char)(0xF0 | (cp >> 18)));
        strbuf_addch(sb, (char)(0x80 | ((cp >> 12) & 0x3F)));
        strbuf_addch(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
        strbuf_addch(sb, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Reads the four hex digits of a \u escape, the cursor just after the 'u'. */
static int parse_hex4(struct parser *p, unsigned *ret)
{
    unsigned v = 0;
    int c, i;

    for (i = 0; i < 4; i++) {
        c = peek(p);
        if (c >= '0' && c <= '9')
            v = v * 16 + (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + (unsigned)(c - 'A' + 10);
        else
            return -1;
        advance(p);
    }
    *ret = v;
    return 0;
}

/* Decodes a \uXXXX escape (with its low half when it is a high surrogate),
 * the cursor on the backslash. */
static int parse_u_escape(struct parser *p, struct strbuf *out)
{
    struct json_pos esc_pos = cur_pos(p), lo_pos;
    unsigned cp, lo;

    advance(p); /* '\\' */
    advance(p); /* 'u' */
    if (parse_hex4(p, &cp) < 0)
        return fail_at(p, esc_pos, "invalid \\u escape");
    if (cp == 0)
        return fail_at(p, esc_pos, "strings may not contain NUL");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(p, esc_pos, "invalid \\u escape: unpaired surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->len - p->off < 2 || p->buf[p->off] != '\\' || p->buf[p->off + 1] != 'u')
            return fail_at(p, esc_pos, "invalid \\u escape: unpaired surrogate");
        lo_pos = cur_pos(p);
        advance(p);
        advance(p);
        if (parse_hex4(p, &lo) < 0)
            return fail_at(p, lo_pos, "invalid \\u escape");
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(p, esc_pos, "invalid \\u escape: unpaired surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    utf8_add(out, cp);
    return 0;
}

/* Parses a string token into out (reset first), the cursor on the quote. */
static int parse_string(struct parser *p, struct strbuf *out)
{
    struct json_pos start = cur_pos(p);
    size_t n, i;
    int c;

    strbuf_reset(out);
    advance(p);
    for (;;) {
        c = peek(p);
        if (c < 0)
            return fail_at(p, start, "unterminated string");
        if (c == '"') {
            advance(p);
            return 0;
        }
        if (c == 0)
            return fail_at(p, cur_pos(p), "strings may not contain NUL");
        if (c < 0x20)
            return fail_at(p, cur_pos(p), "unescaped control character in string");
        if (c >= 0x80) {
            n = utf8_seq_len(p->buf + p->off, p->len - p->off);
            if (n == 0)
                return fail_at(p, cur_pos(p), "invalid UTF-8");
            strbuf_add(out, p->buf + p->off, n);
            for (i = 0; i < n; i++)
                advance(p);
            continue;
        }
        if (c != '\\') {
            strbuf_addch(out, (char)c);
            advance(p);
            continue;
        }
        if (p->off + 1 >= p->len)
            return fail_at(p, start, "unterminated string");
        c = p->buf[p->off + 1];
        if (c == 'u') {
            if (parse_u_escape(p, out) < 0)
                return -1;
            continue;
        }
        switch (c) {
        case '"':
        case '\\':
        case '/':
            strbuf_addch(out, (char)c);
            break;
        case 'b':
            strbuf_addch(out, '\b');
            break;
        case 'f':
            strbuf_addch(out, '\f');
            break;
        case 'n':
            strbuf_addch(out, '\n');
            break;
        case 'r':
            strbuf_addch(out, '\r');
            break;
        case 't':
            strbuf_addch(out, '\t');
            break;
        default:
            if (c > 0x20 && c < 0x7F)
                return fail_at(p, cur_pos(p), "invalid escape '\\%c'", c);
            return fail_at(p, cur_pos(p), "invalid escape");
        }
        advance(p);
        advance(p);
    }
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Converts the validated integer token s (n bytes, optional '-') exactly.
 * Accumulates negatively so that the minimum value fits. */
static int int_from_token(const unsigned char *s, size_t n, json_int_t *ret)
{
    const json_int_t min = JSON_INT_MIN;
    json_int_t acc = 0;
    int neg = s[0] == '-', d;
    size_t i;

    for (i = neg; i < n; i++) {
        d = s[i] - '0';
        if (acc < min / 10 || (acc == min / 10 && d > -(min % 10)))
            return -1;
        acc = acc * 10 - d;
    }
    if (!neg && acc == min)
        return -1;
    *ret = neg ? acc : -acc;
    return 0;
}

/* Converts the validated number token s with strtod in the C locale, so
 * that the decimal point is '.' whatever the process locale. */
static int real_from_token(const unsigned char *s, size_t n, double *ret)
{
    _cleanup_free_ char *tok = xstrndup((const char *)s, n);
    locale_t c_locale;
    double v;

    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale)
        return -1;
    errno = 0;
    v = strtod_l(tok, NULL, c_locale);
    freelocale(c_locale);
    if (errno == ERANGE && (v > 1.0 || v < -1.0))
        return -1; /* overflow; underflow to 0 or a subnormal is fine */
    *ret = v;
    return 0;
}

static int parse_number(struct parser *p, json_t **ret)
{
    struct json_pos start = cur_pos(p);
    size_t begin = p->off;
    int is_real = 0;
    json_int_t i;
    double d;

    if (peek(p) == '-') {
        advance(p);
        if (!is_digit(peek(p)))
            return fail_at(p, cur_pos(p), "expected digit after '-'");
    }
    if (peek(p) == '0') {
        advance(p);
        if (is_digit(peek(p)))
            return fail_at(p, start, "leading zeros are not allowed");
    } else {
        while (is_digit(peek(p)))
            advance(p);
    }
    if (peek(p) == '.') {
        is_real = 1;
        advance(p);
        if (!is_digit(peek(p)))
            return fail_at(p, cur_pos(p), "expected digit after decimal point");
        while (is_digit(peek(p)))
            advance(p);
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        is_real = 1;
        advance(p);
        if (peek(p) == '+' || peek(p) == '-')
            advance(p);
        if (!is_digit(peek(p)))
            return fail_at(p, cur_pos(p), "expected digit in exponent");
        while (is_digit(peek(p)))
            advance(p);
    }
    if (!is_real) {
        if (int_from_token(p->buf + begin, p->off - begin, &i) < 0)
            return fail_at(p, start, "integer out of range");
        *ret = json_integer(i);
        return 0;
    }
    if (real_from_token(p->buf + begin, p->off - begin, &d) < 0)
        return fail_at(p, start, "number out of range");
    *ret = json_real(d);
    return 0;
}

static int is_word_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

/* Parses true, false or null; any other bare word is an error. */
static int parse_literal(struct parser *p, json_t **ret)
{
    const char *word = (const char *)p->buf + p->off;
    size_t n = 0, i;

    while (p->off + n < p->len && is_word_char(p->buf[p->off + n]))
        n++;
    if (n == 4 && !memcmp(word, "true", 4))
        *ret = json_true();
    else if (n == 5 && !memcmp(word, "false", 5))
        *ret = json_false();
    else if (n == 4 && !memcmp(word, "null", 4))
        *ret = json_null();
    else
        return fail_at(p, cur_pos(p), "invalid literal \"%.*s\"", n > 32 ? 32 : (int)n,
                       word);
    for (i = 0; i < n; i++)
        advance(p);
    return 0;
}

/* Writes key into buf for an error message: quotes and backslashes
 * escaped, control bytes as \xNN, cut at about 64 bytes. */
static void quote_key(const char *key, char *buf, size_t size)
{
    size_t o = 0;
    unsigned char c;

    for (; *key && o + 8 < size && o < 64; key++) {
        c = (unsigned char)*key;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (*key && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

static int parse_object(struct parser *p, int depth, json_t **ret)
{
    json_auto_t *obj = json_object();
    _cleanup_strbuf_ struct strbuf key = STRBUF_INIT;
    struct json_pos key_pos, value_pos, comma_pos;
    char quoted[96];
    json_t *value;

    advance(p); /* '{' */
    skip_ws(p);
    if (peek(p) == '}') {
        advance(p);
        *ret = TAKE_PTR(obj);
        return 0;
    }
    for (;;) {
        key_pos = cur_pos(p);
        if (peek(p) != '"')
            return fail_unexpected(p, json_object_size(obj)
                                          ? "expected a string key"
                                          : "expected a string key or '}'");
        if (parse_string(p, &key) < 0)
            return -1;
        if (json_object_get(obj, strbuf_str(&key))) {
            quote_key(key.buf, quoted, sizeof(quoted));
            return fail_at(p, key_pos, "duplicate key \"%s\"", quoted);
        }
        skip_ws(p);
        if (peek(p) != ':')
            return fail_unexpected(p, "expected ':' after object key");
        advance(p);
        skip_ws(p);
        value_pos = cur_pos(p);
        if (parse_value(p, depth + 1, &value) < 0)
            return -1;
        json_object_set_new_nocheck(obj, key.buf, value);
        doc_record(p->doc, obj, key.buf, 0, key_pos, value, value_pos);

        skip_ws(p);
        if (peek(p) == '}') {
            advance(p);
            break;
        }
        if (peek(p) != ',')
            return fail_unexpected(p, "expected ',' or '}' after object member");
        comma_pos = cur_pos(p);
        advance(p);
        skip_ws(p);
        if (peek(p) == '}')
            return fail_at(p, comma_pos, "trailing comma in object");
    }
    *ret = TAKE_PTR(obj);
    return 0;
}

static int parse_array(struct parser *p, int depth, json_t **ret)
{
    json_auto_t *arr = json_array();
    struct json_pos pos, comma_pos;
    json_t *value;
    size_t idx;

    advance(p); /* '[' */
    skip_ws(p);
    if (peek(p) == ']') {
        advance(p);
        *ret = TAKE_PTR(arr);
        return 0;
    }
    for (idx = 0;; idx++) {
        pos = cur_pos(p);
        if (parse_value(p, depth + 1, &value) < 0)
            return -1;
        json_array_append_new(arr, value);
        doc_record(p->doc, arr, NULL, idx, pos, value, pos);

        skip_ws(p);
        if (peek(p) == ']') {
            advance(p);
            break;
        }
        if (peek(p) != ',')
            return fail_unexpected(p, "expected ',' or ']' after array element");
        comma_pos = cur_pos(p);
        advance(p);
        skip_ws(p);
        if (peek(p) == ']')
            return fail_at(p, comma_pos, "trailing comma in array");
    }
    *ret = TAKE_PTR(arr);
    return 0;
}

/* Parses one value, the cursor on its first character; depth counts the
 * containers around it. */
static int parse_value(struct parser *p, int depth, json_t **ret)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    int c = peek(p);

    if ((c == '{' || c == '[') && depth >= JSON_DOC_MAX_DEPTH)
        return fail_at(p, cur_pos(p), "nesting deeper than %d levels", JSON_DOC_MAX_DEPTH);
    if (c == '{')
        return parse_object(p, depth, ret);
    if (c == '[')
        return parse_array(p, depth, ret);
    if (c == '"') {
        if (parse_string(p, &sb) < 0)
            return -1;
        *ret = json_stringn_nocheck(strbuf_str(&sb), sb.len);
        return 0;
    }
    if (c == '-' || is_digit(c))
        return parse_number(p, ret);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return parse_literal(p, ret);
    return fail_unexpected(p, "expected a JSON value");
}

static void doc_index(struct json_doc *doc);

int json_doc_parse(struct json_doc *doc, const char *filename, const char *buf, size_t len,
                   struct ocib_error *err)
{
    struct parser p = {
        .filename = filename,
        .buf = (const unsigned char *)buf,
        .len = len,
        .line = 1,
        .col = 1,
        .doc = doc,
        .err = err,
    };
    json_t *root;

    memset(doc, 0, sizeof(*doc));
    if (len > JSON_DOC_MAX_SIZE)
        return ocib_error_usage(err, "%s: document larger than %u bytes", filename,
                                JSON_DOC_MAX_SIZE);
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        return fail_at(&p, cur_pos(&p), "byte order mark is not allowed");
    skip_ws(&p);
    if (peek(&p) < 0) {
        struct json_pos start = {1, 1};
        return fail_at(&p, start, "empty document");
    }
    doc->root_pos = cur_pos(&p);
    if (parse_value(&p, 0, &root) < 0) {
        json_doc_release(doc);
        return -1;
    }
    doc->root = root;
    doc_index(doc);
    skip_ws(&p);
    if (peek(&p) >= 0) {
        fail_unexpected(&p, "trailing characters after the JSON value");
        json_doc_release(doc);
        return -1;
    }
    return 0;
}

/* Orders entries by container, then keys (by bytes) before indexes (by
 * number).  Pointers are compared as integers. */
static int cmp_member(const struct json_doc_entry *a, const struct json_doc_entry *b)
{
    uintptr_t ca = (uintptr_t)a->container, cb = (uintptr_t)b->container;

    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (!a->key != !b->key)
        return a->key ? -1 : 1;
    if (a->key)
        return strcmp(a->key, b->key);
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int cmp_member_qsort(const void *a, const void *b)
{
    return cmp_member(*(const struct json_doc_entry *const *)a,
                      *(const struct json_doc_entry *const *)b);
}

static int cmp_value_qsort(const void *a, const void *b)
{
    uintptr_t va = (uintptr_t)(*(const struct json_doc_entry *const *)a)->value;
    uintptr_t vb = (uintptr_t)(*(const struct json_doc_entry *const *)b)->value;

    return va < vb ? -1 : va > vb;
}

static void doc_index(struct json_doc *doc)
{
    size_t n = doc->entries_nr;

    doc->by_member = xcalloc(n ? n : 1, sizeof(*doc->by_member));
    doc->by_value = xcalloc(n ? n : 1, sizeof(*doc->by_value));
    for (size_t i = 0; i < n; i++)
        doc->by_member[i] = doc->by_value[i] = &doc->entries[i];
    qsort(doc->by_member, n, sizeof(*doc->by_member), cmp_member_qsort);
    qsort(doc->by_value, n, sizeof(*doc->by_value), cmp_value_qsort);
}

/* The entry equal to want under cmp_member, or NULL. */
static const struct json_doc_entry *find_member(const struct json_doc *doc,
                                                const struct json_doc_entry *want)
{
    size_t lo = 0, hi = doc->by_member ? doc->entries_nr : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_member(doc->by_member[mid], want);

        if (!c)
            return doc->by_member[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void json_doc_release(struct json_doc *doc)
{
    size_t i;

    if (!doc)
        return;
    for (i = 0; i < doc->entries_nr; i++)
        free(doc->entries[i].key);
    free(doc->entries);
    free(doc->by_member);
    free(doc->by_value);
    json_decref(doc->root);
    memset(doc, 0, sizeof(*doc));
}

static struct json_pos pos_unknown(void)
{
    struct json_pos pos = {1, 1};
    return pos;
}

struct json_pos json_doc_key_pos(const struct json_doc *doc, const json_t *obj,
                                 const char *key)
{
    struct json_doc_entry want = {.container = obj, .key = (char *)key};
    const struct json_doc_entry *e;

    if (!doc || !obj || !key)
        return pos_unknown();
    e = find_member(doc, &want);
    return e ? e->key_pos : pos_unknown();
}

struct json_pos json_doc_index_pos(const struct json_doc *doc, const json_t *arr,
                                   size_t idx)
{
    struct json_doc_entry want = {.container = arr, .idx = idx};
    const struct json_doc_entry *e;

    if (!doc || !arr)
        return pos_unknown();
    e = find_member(doc, &want);
    return e ? e->value_pos : pos_unknown();
}

struct json_pos json_doc_value_pos(const struct json_doc *doc, const json_t *v)
{
    size_t lo = 0, hi;

    if (!doc || !v)
        return pos_unknown();
    if (v == doc->root)
        return doc->root_pos;
    if (json_is_true(v) || json_is_false(v) || json_is_null(v))
        return pos_unknown();
    hi = doc->by_value ? doc->entries_nr : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uintptr_t m = (uintptr_t)doc->by_value[mid]->value;

        if (m == (uintptr_t)v)
            return doc->by_value[mid]->value_pos;
        if (m < (uintptr_t)v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return pos_unknown();
}
