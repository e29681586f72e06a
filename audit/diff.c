/*
 * Image comparison; see diff.h.
 *
 * Differences are gathered in groups (the manifest, the config, one group
 * per layer); each group keeps at most `cap` of them and counts the rest.
 * Causes that depend on a whole layer (a constant mtime offset, one side
 * clamped and the other not) are decided when the layer ends and written
 * into the differences the group kept.
 */
#include "audit/diff.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "layers/tar_reader.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Deepest JSON nesting compared; deeper values are compared whole. */
#define JSON_DIFF_DEPTH 64

struct group {
    struct image_diff *d;
    enum image_diff_where where;
    size_t layer;
    size_t cap;
    size_t count; /* differences found, kept or not */
    size_t first; /* index in d->items of the group's first kept one */
};

static void group_start(struct group *g, struct image_diff *d, enum image_diff_where where,
                        size_t layer, size_t cap)
{
    *g = (struct group){.d = d, .where = where, .layer = layer, .cap = cap, .first = d->n};
}

/* Records a difference; a and b are copied (NULL: absent on that side). */
static void group_add(struct group *g, const char *path, const char *field, const char *a,
                      const char *b, const char *cause)
{
    struct image_diff *d = g->d;

    g->count++;
    if (g->cap && g->count > g->cap)
        return;
    XGROW(d->items, d->alloc, d->n + 1);
    d->items[d->n++] = (struct image_difference){
        .where = g->where,
        .layer = g->layer,
        .path = path ? xstrdup(path) : NULL,
        .field = xstrdup(field),
        .a = a ? xstrdup(a) : NULL,
        .b = b ? xstrdup(b) : NULL,
        .cause = cause,
    };
}

static void group_end(struct group *g)
{
    struct image_diff *d = g->d;

    if (!g->cap || g->count <= g->cap)
        return;
    XGROW(d->omitted, d->alloc_omitted, d->n_omitted + 1);
    d->omitted[d->n_omitted++] =
        (struct image_diff_omitted){g->where, g->layer, g->count - g->cap};
}

bool image_diff_identical(const struct image_diff *d)
{
    return d->n == 0 && d->n_omitted == 0;
}

void image_diff_release(struct image_diff *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].path);
        free(d->items[i].field);
        free(d->items[i].a);
        free(d->items[i].b);
    }
    free(d->items);
    free(d->omitted);
    memset(d, 0, sizeof(*d));
}

/* ---- JSON documents ------------------------------------------------------ */

/* A JSON value as text: strings as they are, anything else compact JSON. */
static char *json_text(const json_t *v)
{
    if (!v)
        return NULL;
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static bool is_identifier(const char *k)
{
    if (!*k || isdigit((unsigned char)*k))
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_')
            return false;
    return true;
}

/* Appends ".key" or, when key is no identifier, "[\"key\"]" to path. */
static void path_add_key(struct strbuf *path, const char *key)
{
    if (is_identifier(key)) {
        if (path->len)
            strbuf_addch(path, '.');
        strbuf_addstr(path, key);
    } else {
        json_t *s = json_string(key);
        char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

        strbuf_addf(path, "[%s]", q ? q : key);
        free(q);
        json_decref(s);
    }
}

static int key_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Compares a with b (either may be NULL: absent), adding one difference
 * per differing leaf, named by its path. */
static void json_diff(struct group *g, struct strbuf *path, const json_t *a,
                      const json_t *b, int depth)
{
    size_t base = path->len;

    const json_t *present = a ? a : b;
    bool empty = json_object_size(present) == 0 && json_array_size(present) == 0;

    if (a && b && json_equal((json_t *)a, (json_t *)b))
        return;
    if ((!a || !b) && empty)
        depth = JSON_DIFF_DEPTH; /* "{}" or "[]" against nothing: one leaf */
    /* An object or array on one side only is listed member by member. */
    if (depth < JSON_DIFF_DEPTH && (json_is_object(a) || !a) && (json_is_object(b) || !b)) {
        _cleanup_free_ const char **keys = NULL;
        size_t n = 0, alloc = 0, i;
        const char *k;
        json_t *v;

        json_object_foreach((json_t *)a, k, v)
        {
            XGROW(keys, alloc, n + 1);
            keys[n++] = k;
        }
        json_object_foreach((json_t *)b, k, v)
        {
            if (json_object_get(a, k))
                continue;
            XGROW(keys, alloc, n + 1);
            keys[n++] = k;
        }
        if (n)
            qsort(keys, n, sizeof(*keys), key_cmp);
        for (i = 0; i < n; i++) {
            path_add_key(path, keys[i]);
            json_diff(g, path, json_object_get(a, keys[i]), json_object_get(b, keys[i]),
                      depth + 1);
            strbuf_setlen(path, base);
        }
        return;
    }
    if (depth < JSON_DIFF_DEPTH && (json_is_array(a) || !a) && (json_is_array(b) || !b)) {
        size_t na = json_array_size(a), nb = json_array_size(b);

        for (size_t i = 0; i < (na > nb ? na : nb); i++) {
            strbuf_addf(path, "[%zu]", i);
            json_diff(g, path, json_array_get(a, i), json_array_get(b, i), depth + 1);
            strbuf_setlen(path, base);
        }
        return;
    }
    {
        _cleanup_free_ char *ta = json_text(a);
        _cleanup_free_ char *tb = json_text(b);

        group_add(g, NULL, path->len ? path->buf : "(document)", ta, tb, NULL);
    }
}

static int parse_doc(const struct oci_blob *blob, const char *what, json_t **ret,
                     struct ocib_error *err)
{
    if (!blob->data)
        return ocib_error_set(err, "%s: not available", what);
    return oci_json_parse(blob->data, blob->len, what, ret, err);
}

/* Drops what the layer comparison covers: digests, sizes, layer media types. */
static void strip_descriptor(json_t *desc, bool media_type)
{
    if (!json_is_object(desc))
        return;
    json_object_del(desc, "digest");
    json_object_del(desc, "size");
    if (media_type)
        json_object_del(desc, "mediaType");
}

static int compare_manifests(const struct image_source *a, const struct image_source *b,
                             size_t cap, struct image_diff *d, struct ocib_error *err)
{
    _cleanup_json_ json_t *ma = NULL;
    _cleanup_json_ json_t *mb = NULL;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    struct group g;
    json_t *la, *lb;
    size_t na, nb;

    if (parse_doc(&a->manifest, "manifest of A", &ma, err) < 0 ||
        parse_doc(&b->manifest, "manifest of B", &mb, err) < 0)
        return -1;
    group_start(&g, d, IMAGE_DIFF_MANIFEST, 0, cap);
    /* Where each image was picked from matters when both were picked from
     * an index; one platform of an index against that image alone is the
     * same image. */
    if (a->index.str[0] && b->index.str[0] && strcmp(a->index.str, b->index.str) != 0)
        group_add(&g, NULL, "index", a->index.str, b->index.str, NULL);
    if (a->choice && b->choice && strcmp(a->choice, b->choice))
        group_add(&g, NULL, "platform", a->choice, b->choice, NULL);
    strip_descriptor(json_object_get(ma, "config"), false);
    strip_descriptor(json_object_get(mb, "config"), false);
    la = json_object_get(ma, "layers");
    lb = json_object_get(mb, "layers");
    na = json_array_size(la);
    nb = json_array_size(lb);
    if (na != nb) {
        char sa[32], sb[32];

        snprintf(sa, sizeof(sa), "%zu", na);
        snprintf(sb, sizeof(sb), "%zu", nb);
        group_add(&g, NULL, "layers.length", sa, sb, NULL);
    }
    for (size_t i = 0; i < na; i++)
        strip_descriptor(json_array_get(la, i), true);
    for (size_t i = 0; i < nb; i++)
        strip_descriptor(json_array_get(lb, i), true);
    /* Extra layers are reported by the layer comparison. */
    while (json_array_size(la) > nb)
        json_array_remove(la, json_array_size(la) - 1);
    while (json_array_size(lb) > na)
        json_array_remove(lb, json_array_size(lb) - 1);
    json_diff(&g, &path, ma, mb, 0);
    group_end(&g);
    return 0;
}

static int compare_configs(const struct image_source *a, const struct image_source *b,
                           size_t cap, struct image_diff *d, struct ocib_error *err)
{
    _cleanup_json_ json_t *ca = NULL;
    _cleanup_json_ json_t *cb = NULL;
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    struct group g;

    if (a->config.data && b->config.data &&
        oci_digest_equal(&a->config.digest, &b->config.digest))
        return 0;
    if (parse_doc(&a->config, "config of A", &ca, err) < 0 ||
        parse_doc(&b->config, "config of B", &cb, err) < 0)
        return -1;
    group_start(&g, d, IMAGE_DIFF_CONFIG, 0, cap);
    json_diff(&g, &path, ca, cb, 0);
    group_end(&g);
    return 0;
}

/* ---- layer tars ---------------------------------------------------------- */

struct side_stats {
    size_t n;
    int64_t first_mtime;
    bool all_same;
};

struct layer_cmp {
    struct group g;
    struct side_stats sa, sb;
    size_t pairs;     /* entries compared */
    int64_t delta;    /* mtime(B) - mtime(A) of the first pair */
    bool delta_const; /* every pair has that delta */
};

static void stats_add(struct side_stats *s, const struct tar_entry *e)
{
    if (s->n++ == 0) {
        s->first_mtime = e->mtime;
        s->all_same = true;
    } else if (e->mtime != s->first_mtime) {
        s->all_same = false;
    }
}

static const char *type_name(char t)
{
    switch (t) {
    case '-':
        return "file";
    case 'd':
        return "directory";
    case 'l':
        return "symlink";
    case 'h':
        return "hardlink";
    case 'c':
        return "char device";
    case 'b':
        return "block device";
    case 'p':
        return "fifo";
    default:
        return "other";
    }
}

static void add_int(struct group *g, const char *path, const char *field, int64_t a,
                    int64_t b, const char *cause)
{
    char sa[32], sb[32];

    snprintf(sa, sizeof(sa), "%" PRId64, a);
    snprintf(sb, sizeof(sb), "%" PRId64, b);
    group_add(g, path, field, sa, sb, cause);
}

static void add_str(struct group *g, const char *path, const char *field, const char *a,
                    const char *b, const char *cause)
{
    if (a == b || (a && b && !strcmp(a, b)))
        return;
    group_add(g, path, field, a, b, cause);
}

static void format_mtime(const struct tar_entry *e, char buf[48])
{
    if (e->mtime_nsec)
        snprintf(buf, 48, "%" PRId64 ".%09ld", e->mtime, e->mtime_nsec);
    else
        snprintf(buf, 48, "%" PRId64, e->mtime);
}

/* Compares two entries for the same path, field by field. */
static void compare_entry(struct layer_cmp *lc, const struct tar_entry *a,
                          const struct tar_entry *b)
{
    struct group *g = &lc->g;
    const char *p = a->path[0] ? a->path : ".";
    int64_t delta = b->mtime - a->mtime;

    if (lc->pairs++ == 0) {
        lc->delta = delta;
        lc->delta_const = true;
    } else if (delta != lc->delta) {
        lc->delta_const = false;
    }
    add_str(g, p, "name", a->name, b->name, NULL);
    add_str(g, p, "type", type_name(a->type), type_name(b->type), NULL);
    if (a->mode != b->mode) {
        char sa[16], sb[16];

        snprintf(sa, sizeof(sa), "%04o", a->mode);
        snprintf(sb, sizeof(sb), "%04o", b->mode);
        group_add(g, p, "mode", sa, sb, NULL);
    }
    if (a->uid != b->uid)
        add_int(g, p, "uid", a->uid, b->uid, IMAGE_CAUSE_OWNER);
    if (a->gid != b->gid)
        add_int(g, p, "gid", a->gid, b->gid, IMAGE_CAUSE_OWNER);
    add_str(g, p, "uname", a->uname, b->uname, IMAGE_CAUSE_OWNER);
    add_str(g, p, "gname", a->gname, b->gname, IMAGE_CAUSE_OWNER);
    if (a->mtime != b->mtime || a->mtime_nsec != b->mtime_nsec) {
        char ta[48], tb[48];

        format_mtime(a, ta);
        format_mtime(b, tb);
        group_add(g, p, "mtime", ta, tb, NULL); /* cause decided at the end */
    }
    if (a->size != b->size)
        add_int(g, p, "size", a->size, b->size,
                a->type == '-' ? IMAGE_CAUSE_CONTENT : NULL);
    add_str(g, p, "link", a->link, b->link, NULL);
    add_str(g, p, "xattrs", a->xattrs, b->xattrs, NULL);
    add_str(g, p, "content", a->content.str[0] ? a->content.str : NULL,
            b->content.str[0] ? b->content.str : NULL, IMAGE_CAUSE_CONTENT);
}

static void add_only(struct group *g, const struct tar_entry *e, bool in_a)
{
    const char *what = type_name(e->type);

    group_add(g, e->path[0] ? e->path : ".", "entry", in_a ? what : NULL,
              in_a ? NULL : what, NULL);
}

struct entries {
    struct tar_entry *v;
    size_t n, alloc;
};

static void entries_release(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++)
        tar_entry_release(&es->v[i]);
    free(es->v);
    memset(es, 0, sizeof(*es));
}

static void entries_push(struct entries *es, struct tar_entry *e)
{
    XGROW(es->v, es->alloc, es->n + 1);
    es->v[es->n++] = *e;
    memset(e, 0, sizeof(*e));
}

/* Reads the rest of r into es. */
static int drain(struct tar_reader *r, struct side_stats *s, struct entries *es,
                 struct ocib_error *err)
{
    struct tar_entry e;
    int m;

    for (m = tar_reader_next(r, &e, err); m > 0; m = tar_reader_next(r, &e, err)) {
        stats_add(s, &e);
        entries_push(es, &e);
    }
    return m;
}

static int entry_cmp(const void *x, const void *y)
{
    const struct tar_entry *a = x, *b = y;
    int c = strcmp(a->path, b->path);

    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct pair {
    size_t sa, sb;
    const char *path;
};

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;

    return a->sa < b->sa ? -1 : a->sa > b->sa;
}

/* Matches the entries left after the lockstep part by path, compares each
 * pair, lists those on one side only and checks the relative order of the
 * common ones. */
static void merge(struct layer_cmp *lc, struct entries *ea, struct entries *eb)
{
    _cleanup_free_ struct pair *pairs = NULL;
    size_t i = 0, j = 0, np = 0;

    if (ea->n)
        qsort(ea->v, ea->n, sizeof(*ea->v), entry_cmp);
    if (eb->n)
        qsort(eb->v, eb->n, sizeof(*eb->v), entry_cmp);
    pairs = xcalloc((ea->n < eb->n ? ea->n : eb->n) + 1, sizeof(*pairs));
    while (i < ea->n || j < eb->n) {
        int c = i >= ea->n ? 1 : j >= eb->n ? -1 : strcmp(ea->v[i].path, eb->v[j].path);

        if (c < 0) {
            add_only(&lc->g, &ea->v[i++], true);
        } else if (c > 0) {
            add_only(&lc->g, &eb->v[j++], false);
        } else {
            compare_entry(lc, &ea->v[i], &eb->v[j]);
            pairs[np++] = (struct pair){ea->v[i].seq, eb->v[j].seq, ea->v[i].path};
            i++;
            j++;
        }
    }
    if (np)
        qsort(pairs, np, sizeof(*pairs), pair_cmp);
    for (size_t k = 1; k < np; k++) {
        if (pairs[k].sb < pairs[k - 1].sb) {
            _cleanup_free_ char *a = xasprintf("after %s", pairs[k - 1].path);
            _cleanup_free_ char *b = xasprintf("before %s", pairs[k - 1].path);

            group_add(&lc->g, pairs[k].path, "order", a, b, IMAGE_CAUSE_ORDER);
            break;
        }
    }
}

/* Names the cause of the mtime differences kept by the group, now that the
 * whole layer has been seen. */
static void settle_mtime_cause(struct layer_cmp *lc)
{
    struct image_diff *d = lc->g.d;
    bool constant = lc->pairs > 0 && lc->delta_const && lc->delta != 0;
    bool one_clamped = lc->sa.n > 1 && lc->sb.n > 1 && lc->sa.all_same != lc->sb.all_same;

    if (!constant && !one_clamped)
        return;
    for (size_t i = lc->g.first; i < d->n; i++)
        if (!strcmp(d->items[i].field, "mtime"))
            d->items[i].cause = IMAGE_CAUSE_MTIME;
}

/* Streams both tars; see the design note in diff.h.  ret_formats gets the
 * tar formats seen, for when no entry differs. */
static int compare_tars(struct layer_cmp *lc, const char *path_a, const char *path_b,
                        char ret_formats[2][64], struct ocib_error *err)
{
    struct tar_reader *ra = NULL, *rb = NULL;
    struct entries ea = {0}, eb = {0};
    struct tar_entry xa, xb;
    int r = -1, ma, mb;

    if (tar_reader_open_file(path_a, &ra, err) < 0)
        return ocib_error_wrap(err, "A");
    if (tar_reader_open_file(path_b, &rb, err) < 0) {
        ocib_error_wrap(err, "B");
        goto out;
    }
    for (;;) {
        ma = tar_reader_next(ra, &xa, err);
        if (ma < 0) {
            ocib_error_wrap(err, "A");
            goto out;
        }
        mb = tar_reader_next(rb, &xb, err);
        if (mb < 0) {
            if (ma > 0)
                tar_entry_release(&xa);
            ocib_error_wrap(err, "B");
            goto out;
        }
        if (ma > 0)
            stats_add(&lc->sa, &xa);
        if (mb > 0)
            stats_add(&lc->sb, &xb);
        if (ma > 0 && mb > 0 && !strcmp(xa.path, xb.path)) {
            compare_entry(lc, &xa, &xb);
            tar_entry_release(&xa);
            tar_entry_release(&xb);
            continue;
        }
        if (ma > 0)
            entries_push(&ea, &xa);
        if (mb > 0)
            entries_push(&eb, &xb);
        break;
    }
    if (drain(ra, &lc->sa, &ea, err) < 0) {
        ocib_error_wrap(err, "A");
        goto out;
    }
    if (drain(rb, &lc->sb, &eb, err) < 0) {
        ocib_error_wrap(err, "B");
        goto out;
    }
    merge(lc, &ea, &eb);
    settle_mtime_cause(lc);
    snprintf(ret_formats[0], 64, "%s", tar_reader_format(ra));
    snprintf(ret_formats[1], 64, "%s", tar_reader_format(rb));
    r = 0;
out:
    entries_release(&ea);
    entries_release(&eb);
    tar_reader_free(ra);
    tar_reader_free(rb);
    return r;
}

int image_diff_layer_blobs(const char *path_a, const char *path_b, size_t layer, size_t cap,
                           struct image_diff *d, struct ocib_error *err)
{
    struct layer_cmp lc = {0};
    char formats[2][64];

    group_start(&lc.g, d, IMAGE_DIFF_LAYER, layer, cap);
    if (compare_tars(&lc, path_a, path_b, formats, err) < 0)
        return -1;
    if (lc.g.count == 0 && strcmp(formats[0], formats[1]) != 0)
        group_add(&lc.g, NULL, "tar", formats[0], formats[1], IMAGE_CAUSE_TAR_FORMAT);
    group_end(&lc.g);
    return 0;
}

/* ---- layers -------------------------------------------------------------- */

/* The first 10 bytes of a gzip member, described; false when path is no gzip. */
static bool gzip_header(const char *path, char buf[96])
{
    unsigned char h[10];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    n = read(fd, h, sizeof(h));
    close(fd);
    if (n != (ssize_t)sizeof(h) || h[0] != 0x1f || h[1] != 0x8b)
        return false;
    snprintf(buf, 96, "flags=0x%02x mtime=%u xfl=%u os=%u", h[3],
             (unsigned)h[4] | (unsigned)h[5] << 8 | (unsigned)h[6] << 16 |
                 (unsigned)h[7] << 24,
             h[8], h[9]);
    return true;
}

static int ensure_local(struct image_source *s, size_t i, struct cache *c,
                        struct registries *rs, const char *side, struct ocib_error *err)
{
    if (blob_source_ensure_local(&s->srcs[i], c, rs, err) < 0)
        return ocib_error_wrap(err, "%s: layer %zu (%s)", side, i, s->srcs[i].digest.str);
    return 0;
}

/* Same diff_id, another compressed digest: the compressor's doing. */
static int compare_compressed(struct image_source *a, struct image_source *b, size_t i,
                              struct cache *c, struct registries *rs, struct group *g,
                              struct ocib_error *err)
{
    const struct oci_layer *la = &a->img.layers[i], *lb = &b->img.layers[i];
    const char *cause = IMAGE_CAUSE_COMPRESSOR;
    char ha[96], hb[96];

    if (strcmp(la->desc.media_type, lb->desc.media_type) != 0) {
        group_add(g, NULL, "mediaType", la->desc.media_type, lb->desc.media_type, cause);
    } else if (!strcmp(la->desc.media_type, OCI_MT_LAYER_GZIP)) {
        if (ensure_local(a, i, c, rs, "A", err) < 0 ||
            ensure_local(b, i, c, rs, "B", err) < 0)
            return -1;
        if (gzip_header(a->srcs[i].path, ha) && gzip_header(b->srcs[i].path, hb) &&
            strcmp(ha, hb) != 0) {
            cause = IMAGE_CAUSE_GZIP_HEADER;
            group_add(g, NULL, "gzip header", ha, hb, cause);
        }
    }
    group_add(g, NULL, "digest", la->desc.digest.str, lb->desc.digest.str, cause);
    return 0;
}

static int compare_layer(struct image_source *a, struct image_source *b, size_t i,
                         struct cache *c, struct registries *rs, size_t cap,
                         struct image_diff *d, struct ocib_error *err)
{
    const struct oci_layer *la = &a->img.layers[i], *lb = &b->img.layers[i];
    struct layer_cmp lc = {0};
    char formats[2][64];
    size_t diff_id_item, before;

    if (oci_digest_equal(&la->desc.digest, &lb->desc.digest))
        return 0;
    group_start(&lc.g, d, IMAGE_DIFF_LAYER, i, cap);
    if (oci_digest_equal(&la->diff_id, &lb->diff_id)) {
        if (compare_compressed(a, b, i, c, rs, &lc.g, err) < 0)
            return -1;
        group_end(&lc.g);
        return 0;
    }
    diff_id_item = d->n;
    group_add(&lc.g, NULL, "diff_id", la->diff_id.str, lb->diff_id.str, NULL);
    if (strcmp(la->desc.media_type, lb->desc.media_type) != 0)
        group_add(&lc.g, NULL, "mediaType", la->desc.media_type, lb->desc.media_type, NULL);
    if (ensure_local(a, i, c, rs, "A", err) < 0 || ensure_local(b, i, c, rs, "B", err) < 0)
        return -1;
    before = lc.g.count;
    if (compare_tars(&lc, a->srcs[i].path, b->srcs[i].path, formats, err) < 0)
        return ocib_error_wrap(err, "layer %zu", i);
    /* Same entries, other bytes: the tar headers themselves differ. */
    if (lc.g.count == before) {
        d->items[diff_id_item].cause = IMAGE_CAUSE_TAR_FORMAT;
        if (strcmp(formats[0], formats[1]) != 0)
            group_add(&lc.g, NULL, "tar", formats[0], formats[1], IMAGE_CAUSE_TAR_FORMAT);
    }
    group_end(&lc.g);
    return 0;
}

int image_diff_compare(struct image_source *a, struct image_source *b, struct cache *c,
                       struct registries *rs, size_t cap, struct image_diff *ret,
                       struct ocib_error *err)
{
    struct image_diff d = {0};
    size_t na = a->img.n_layers, nb = b->img.n_layers;
    struct group g;

    if (a->manifest.data && b->manifest.data &&
        oci_digest_equal(&a->manifest.digest, &b->manifest.digest) &&
        !strcmp(a->index.str, b->index.str)) {
        *ret = d;
        return 0;
    }
    if (compare_manifests(a, b, cap, &d, err) < 0 ||
        compare_configs(a, b, cap, &d, err) < 0)
        goto fail;
    for (size_t i = 0; i < (na < nb ? na : nb); i++)
        if (compare_layer(a, b, i, c, rs, cap, &d, err) < 0)
            goto fail;
    for (size_t i = (na < nb ? na : nb); i < (na > nb ? na : nb); i++) {
        group_start(&g, &d, IMAGE_DIFF_LAYER, i, cap);
        group_add(&g, NULL, "layer", i < na ? a->img.layers[i].desc.digest.str : NULL,
                  i < nb ? b->img.layers[i].desc.digest.str : NULL, NULL);
        group_end(&g);
    }
    *ret = d;
    return 0;
fail:
    image_diff_release(&d);
    return -1;
}
