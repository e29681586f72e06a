/*
 * YAML streams with byte positions, and splicing; see yaml.h.
 *
 * The tree is built from libyaml's events with an explicit stack (no
 * recursion on input depth).  libyaml's marks count characters (a CRLF
 * counts two); a cursor that walks the UTF-8 input forward or back turns
 * them into byte offsets, which costs little because marks arrive nearly
 * in order.
 */
#include "k8s/yaml.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A character index to byte offset cursor over the input. */
struct cursor {
    const char *data;
    size_t len;
    size_t ci, bi; /* character ci starts at byte bi */
};

static bool continuation(const struct cursor *c, size_t bi)
{
    return bi < c->len && ((unsigned char)c->data[bi] & 0xC0) == 0x80;
}

static size_t cursor_byte(struct cursor *c, size_t ci)
{
    while (c->ci < ci && c->bi < c->len) {
        c->bi++;
        while (continuation(c, c->bi))
            c->bi++;
        c->ci++;
    }
    while (c->ci > ci && c->bi > 0) {
        c->bi--;
        while (c->bi > 0 && continuation(c, c->bi))
            c->bi--;
        c->ci--;
    }
    return c->bi;
}

/* Past a scalar's anchor and tag (each a token without blanks) and the
 * blanks and comments between them and the scalar: where the scalar's own
 * text starts. */
static size_t skip_properties(const char *d, size_t len, size_t i)
{
    while (i < len && (d[i] == '&' || d[i] == '!')) {
        while (i < len && d[i] != ' ' && d[i] != '\t' && d[i] != '\n' && d[i] != '\r')
            i++;
        for (;;) {
            while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r'))
                i++;
            if (i < len && d[i] == '#') {
                while (i < len && d[i] != '\n')
                    i++;
                continue;
            }
            break;
        }
    }
    return i;
}

struct builder {
    struct k8s_stream *s;
    struct cursor cur;
    struct k8s_node *stack[K8S_MAX_DEPTH];
    size_t depth;
    struct k8s_node **anchors; /* nodes with an anchor, in order */
    size_t n_anchors, alloc_anchors;
};

static struct k8s_node *node_new(struct builder *b, enum k8s_kind kind,
                                 const yaml_mark_t *start, const yaml_mark_t *end)
{
    struct k8s_stream *s = b->s;
    struct k8s_node *n = xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->start = cursor_byte(&b->cur, start->index);
    n->end = cursor_byte(&b->cur, end->index);
    n->value_start = n->start;
    n->line = (int)start->line + 1;
    n->col = (int)start->column + 1;
    XGROW(s->nodes, s->alloc_nodes, s->n_nodes + 1);
    s->nodes[s->n_nodes++] = n;
    return n;
}

static void node_free(struct k8s_node *n)
{
    free(n->value);
    free(n->anchor);
    free(n->tag);
    free(n->items);
    free(n);
}

static char *dup_or_null(const yaml_char_t *s)
{
    return s ? xstrdup((const char *)s) : NULL;
}

/* Attaches n to the open collection, or makes it the document's root. */
static void attach(struct builder *b, struct k8s_node *n)
{
    struct k8s_stream *s = b->s;

    if (b->depth) {
        struct k8s_node *p = b->stack[b->depth - 1];

        XGROW(p->items, p->alloc_items, p->n_items + 1);
        p->items[p->n_items++] = n;
    } else {
        s->docs[s->n_docs - 1] = n;
    }
    if (n->anchor) {
        XGROW(b->anchors, b->alloc_anchors, b->n_anchors + 1);
        b->anchors[b->n_anchors++] = n;
    }
}

static enum k8s_style style_of(yaml_scalar_style_t st)
{
    switch (st) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        return K8S_SINGLE;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return K8S_DOUBLE;
    case YAML_LITERAL_SCALAR_STYLE:
        return K8S_LITERAL;
    case YAML_FOLDED_SCALAR_STYLE:
        return K8S_FOLDED;
    default:
        return K8S_PLAIN;
    }
}

static int fail_at(struct builder *b, const yaml_mark_t *m, struct ocib_error *err,
                   const char *what)
{
    return ocib_error_usage(err, "%s:%zu:%zu: %s", b->s->file, m->line + 1, m->column + 1,
                            what);
}

static int on_alias(struct builder *b, const yaml_event_t *ev, struct ocib_error *err)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct k8s_node *n;

    for (size_t i = b->n_anchors; i-- > 0;) {
        if (strcmp(b->anchors[i]->anchor, name))
            continue;
        n = node_new(b, K8S_ALIAS, &ev->start_mark, &ev->end_mark);
        n->value = xstrdup(name);
        n->target = b->anchors[i];
        attach(b, n);
        return 0;
    }
    return fail_at(b, &ev->start_mark, err, "an alias to an unknown anchor");
}

/* One event into the tree: 1 at the stream's end, 0 to go on, -1 on error. */
static int on_event(struct builder *b, const yaml_event_t *ev, struct ocib_error *err)
{
    struct k8s_stream *s = b->s;
    struct k8s_node *n;

    if (s->n_nodes >= K8S_MAX_NODES)
        return fail_at(b, &ev->start_mark, err, "more nodes than this reader takes");
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        XGROW(s->docs, s->alloc_docs, s->n_docs + 1);
        s->docs[s->n_docs++] = NULL;
        b->n_anchors = 0; /* anchors do not cross documents */
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev, err);
    case YAML_SCALAR_EVENT:
        n = node_new(b, K8S_SCALAR, &ev->start_mark, &ev->end_mark);
        n->value = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->anchor = dup_or_null(ev->data.scalar.anchor);
        n->tag = dup_or_null(ev->data.scalar.tag);
        n->style = style_of(ev->data.scalar.style);
        n->value_start = skip_properties(s->data, s->len, n->start);
        if (n->value_start > n->end)
            n->value_start = n->end;
        {
            /* The line and column of the scalar itself. */
            int line = n->line, col = n->col;

            for (size_t i = n->start; i < n->value_start; i++) {
                if (s->data[i] == '\n') {
                    line++;
                    col = 1;
                } else if (((unsigned char)s->data[i] & 0xC0) != 0x80) {
                    col++;
                }
            }
            n->line = line;
            n->col = col;
        }
        attach(b, n);
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth >= K8S_MAX_DEPTH)
            return fail_at(b, &ev->start_mark, err, "nested deeper than this reader takes");
        n = node_new(b, ev->type == YAML_MAPPING_START_EVENT ? K8S_MAP : K8S_SEQ,
                     &ev->start_mark, &ev->end_mark);
        n->anchor = dup_or_null(ev->type == YAML_MAPPING_START_EVENT
                                    ? ev->data.mapping_start.anchor
                                    : ev->data.sequence_start.anchor);
        n->tag =
            dup_or_null(ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.tag
                                                             : ev->data.sequence_start.tag);
        attach(b, n);
        b->stack[b->depth++] = n;
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        n = b->stack[--b->depth];
        n->end = cursor_byte(&b->cur, ev->end_mark.index);
        return 0;
    default:
        return 0;
    }
}

int k8s_stream_parse(struct k8s_stream *s, const char *file, char *data, size_t len,
                     struct ocib_error *err)
{
    struct builder b = {.s = s, .cur = {data, len, 0, 0}};
    yaml_parser_t parser;
    int rc = 0;

    memset(s, 0, sizeof(*s));
    s->file = xstrdup(file);
    s->data = data;
    s->len = len;
    if (len > K8S_MAX_BYTES) {
        ocib_error_usage(err, "%s: %zu bytes, more than the %u this reader takes", file,
                         len, K8S_MAX_BYTES);
        goto fail;
    }
    if (!yaml_parser_initialize(&parser)) {
        ocib_error_set(err, "%s: cannot start libyaml", file);
        goto fail;
    }
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (rc == 0) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&parser, &ev)) {
            ocib_error_usage(err, "%s:%zu:%zu: %s%s%s", file, parser.problem_mark.line + 1,
                             parser.problem_mark.column + 1,
                             parser.problem ? parser.problem : "invalid YAML",
                             parser.context ? " " : "",
                             parser.context ? parser.context : "");
            rc = -1;
            break;
        }
        rc = on_event(&b, &ev, err);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    free(b.anchors);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    k8s_stream_release(s);
    return -1;
}

void k8s_stream_release(struct k8s_stream *s)
{
    for (size_t i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    free(s->docs);
    free(s->file);
    free(s->data);
    memset(s, 0, sizeof(*s));
}

/* All of fd, up to K8S_MAX_BYTES (one more is an error). */
static int read_fd(int fd, const char *name, char **ret, size_t *ret_len,
                   struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    char buf[65536];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ocib_error_errno(err, errno, "%s: cannot read", name);
        if (n == 0)
            break;
        strbuf_add(&sb, buf, (size_t)n);
        if (sb.len > K8S_MAX_BYTES)
            return ocib_error_usage(err, "%s: more than the %u bytes this reader takes",
                                    name, K8S_MAX_BYTES);
    }
    *ret_len = sb.len;
    *ret = strbuf_detach(&sb);
    return 0;
}

int k8s_stream_load(struct k8s_stream *s, const char *path, struct ocib_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int fd = 0;

    memset(s, 0, sizeof(*s));
    if (strcmp(path, "-")) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return ocib_error_errno(err, errno, "'%s': cannot open", path);
    }
    if (read_fd(fd, strcmp(path, "-") ? path : "(stdin)", &data, &len, err) < 0) {
        if (fd > 0)
            close(fd);
        if (err)
            err->code = OCIB_EXIT_USAGE;
        return -1;
    }
    if (fd > 0)
        close(fd);
    return k8s_stream_parse(s, strcmp(path, "-") ? path : "(stdin)", data, len, err);
}

const struct k8s_node *k8s_deref(const struct k8s_node *n)
{
    /* Anchors precede their aliases, so a chain ends. */
    while (n && n->kind == K8S_ALIAS)
        n = n->target;
    return n;
}

/* key in map m, merges of merges included (bounded by depth). */
static const struct k8s_node *get(const struct k8s_node *m, const char *key, int depth)
{
    const struct k8s_node *merge = NULL;

    m = k8s_deref(m);
    if (!m || m->kind != K8S_MAP || depth > 8)
        return NULL;
    for (size_t i = 0; i + 1 < m->n_items; i += 2) {
        const char *k = k8s_str(m->items[i]);

        if (k && !strcmp(k, key))
            return m->items[i + 1];
        if (k && !strcmp(k, "<<") && m->items[i]->style == K8S_PLAIN)
            merge = k8s_deref(m->items[i + 1]);
    }
    if (!merge)
        return NULL;
    if (merge->kind == K8S_MAP)
        return get(merge, key, depth + 1);
    for (size_t i = 0; merge->kind == K8S_SEQ && i < merge->n_items; i++) {
        const struct k8s_node *v = get(merge->items[i], key, depth + 1);

        if (v)
            return v;
    }
    return NULL;
}

const struct k8s_node *k8s_get(const struct k8s_node *n, const char *key)
{
    return get(n, key, 0);
}

const char *k8s_str(const struct k8s_node *n)
{
    n = k8s_deref(n);
    return n && n->kind == K8S_SCALAR ? n->value : NULL;
}

const char *k8s_get_str(const struct k8s_node *n, const char *key)
{
    return k8s_str(k8s_get(n, key));
}

size_t k8s_seq_len(const struct k8s_node *n)
{
    n = k8s_deref(n);
    return n && n->kind == K8S_SEQ ? n->n_items : 0;
}

const struct k8s_node *k8s_seq_item(const struct k8s_node *n, size_t i)
{
    n = k8s_deref(n);
    return n && n->kind == K8S_SEQ && i < n->n_items ? n->items[i] : NULL;
}

bool k8s_int(const struct k8s_node *n, long long *ret)
{
    const char *s = k8s_str(n);
    char *end;
    long long v;

    if (!s || !*s)
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = v;
    return true;
}

static bool equal(const struct k8s_node *a, const struct k8s_node *b, int depth)
{
    a = k8s_deref(a);
    b = k8s_deref(b);
    if (!a || !b || a->kind != b->kind || depth > K8S_MAX_DEPTH)
        return a == b;
    if (a->kind == K8S_SCALAR)
        return !strcmp(a->value, b->value);
    if (a->n_items != b->n_items)
        return false;
    if (a->kind == K8S_SEQ) {
        for (size_t i = 0; i < a->n_items; i++)
            if (!equal(a->items[i], b->items[i], depth + 1))
                return false;
        return true;
    }
    for (size_t i = 0; i + 1 < a->n_items; i += 2) {
        const char *k = k8s_str(a->items[i]);
        const struct k8s_node *v = k ? k8s_get(b, k) : NULL;

        if (!v || !equal(a->items[i + 1], v, depth + 1))
            return false;
    }
    return true;
}

bool k8s_equal(const struct k8s_node *a, const struct k8s_node *b)
{
    return equal(a, b, 0);
}

int k8s_images_foreach(const struct k8s_stream *s, k8s_image_fn fn, void *opaque,
                       struct ocib_error *err)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct k8s_node *m = s->nodes[i];

        if (m->kind != K8S_MAP)
            continue;
        for (size_t k = 0; k + 1 < m->n_items; k += 2) {
            const char *key = k8s_str(m->items[k]);

            if (key && !strcmp(key, "image") &&
                fn(m->items[k], k8s_deref(m->items[k + 1]), opaque, err) < 0)
                return -1;
        }
    }
    return 0;
}

char *k8s_scalar_render(const struct k8s_node *n, const char *value)
{
    struct strbuf sb = STRBUF_INIT;

    switch (n->style) {
    case K8S_PLAIN:
        return xstrdup(value);
    case K8S_SINGLE:
        strbuf_addch(&sb, '\'');
        for (const char *p = value; *p; p++) {
            if (*p == '\'')
                strbuf_addch(&sb, '\'');
            strbuf_addch(&sb, *p);
        }
        strbuf_addch(&sb, '\'');
        return strbuf_detach(&sb);
    case K8S_DOUBLE:
        strbuf_addch(&sb, '"');
        for (const char *p = value; *p; p++) {
            if (*p == '"' || *p == '\\')
                strbuf_addch(&sb, '\\');
            strbuf_addch(&sb, *p);
        }
        strbuf_addch(&sb, '"');
        return strbuf_detach(&sb);
    default:
        return NULL;
    }
}

int k8s_splice_write(FILE *f, const char *data, size_t len, const struct k8s_splice *sp,
                     size_t n)
{
    size_t at = 0;

    for (size_t i = 0; i < n; i++) {
        if (sp[i].start < at || sp[i].end < sp[i].start || sp[i].end > len)
            return -1;
        if (fwrite(data + at, 1, sp[i].start - at, f) != sp[i].start - at ||
            fputs(sp[i].text, f) == EOF)
            return -1;
        at = sp[i].end;
    }
    if (fwrite(data + at, 1, len - at, f) != len - at)
        return -1;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *n)
{
    size_t l = strlen(n);

    return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".yaml")) ||
                           (l > 4 && !strcmp(n + l - 4, ".yml")));
}

int k8s_inputs_add(const char *path, char ***files, size_t *n, size_t *alloc,
                   struct ocib_error *err)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    size_t first = *n;

    if (!strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))) {
        XGROW(*files, *alloc, *n + 1);
        (*files)[(*n)++] = xstrdup(path);
        return 0;
    }
    d = opendir(path);
    if (!d)
        return ocib_error_usage(err, "'%s': %s", path, strerror(errno));
    while ((de = readdir(d))) {
        if (!yaml_name(de->d_name))
            continue;
        XGROW(*files, *alloc, *n + 1);
        (*files)[(*n)++] = xasprintf("%s/%s", path, de->d_name);
    }
    closedir(d);
    if (*n == first)
        return ocib_error_usage(err, "'%s': no *.yaml or *.yml file in the directory",
                                path);
    qsort(*files + first, *n - first, sizeof(char *), name_cmp);
    return 0;
}
