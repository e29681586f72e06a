/*
 * Layer cache keys; see cachekey.h.
 */
#include "builder/cachekey.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cachekey_base(const char *base, struct oci_digest *ret)
{
    _cleanup_free_ char *s = xasprintf("ocib-base-v%d\n%s", CACHEKEY_VERSION, base);

    oci_digest_of(s, strlen(s), ret);
}

void cachekey_def(const struct oci_digest *parent, const json_t *layer,
                  const char *platform, const char *compression, int64_t epoch,
                  const char *workdir, struct oci_digest *ret)
{
    json_t *def = json_deep_copy(layer);
    json_t *j;
    char *s;
    size_t len;

    json_object_del(def, "name");
    /* build.c passes {"layer": <definition>, ...}: the name is not an input
     * there either (it only reaches the history). */
    if (json_is_object(json_object_get(def, "layer")))
        json_object_del(json_object_get(def, "layer"), "name");
    j = json_pack("{s:i, s:s, s:o, s:s, s:s, s:I, s:s}", "v", CACHEKEY_VERSION, "parent",
                  parent->str, "layer", def, "platform", platform, "compression",
                  compression, "epoch", (json_int_t)epoch, "workdir",
                  workdir ? workdir : "/");
    s = oci_json_canonical(j, &len);
    oci_digest_of(s, len, ret);
    free(s);
    json_decref(j);
}

struct inode_first {
    dev_t dev;
    ino_t ino;
    const char *path;
};

void cachekey_layer(const struct oci_digest *def, const struct layer_tree *t,
                    struct oci_digest *ret)
{
    struct inode_first *seen = NULL;
    size_t n_seen = 0, alloc = 0;
    struct sha256 h;
    char line[128];

    sha256_init(&h);
    sha256_update(&h, def->str, strlen(def->str));
    sha256_update(&h, "\n", 1);
    for (size_t i = 0; i < t->n; i++) {
        const struct layer_tree_entry *e = &t->entries[i];
        const char *link_to = "";

        /* Files that will be written as hard links to an earlier path. */
        if (e->has_st && e->st.st_nlink > 1 && S_ISREG(e->mode)) {
            size_t k;

            for (k = 0; k < n_seen; k++)
                if (seen[k].dev == e->st.st_dev && seen[k].ino == e->st.st_ino)
                    break;
            if (k < n_seen) {
                link_to = seen[k].path;
            } else {
                XGROW(seen, alloc, n_seen + 1);
                seen[n_seen++] = (struct inode_first){e->st.st_dev, e->st.st_ino, e->path};
            }
        }
        sha256_update(&h, e->path, strlen(e->path) + 1);
        snprintf(line, sizeof(line), "%o %u %u %llu ", (unsigned)e->mode, e->uid, e->gid,
                 (unsigned long long)(S_ISREG(e->mode) ? e->size : 0));
        sha256_update(&h, line, strlen(line));
        sha256_update(&h, e->link ? e->link : "", strlen(e->link ? e->link : "") + 1);
        sha256_update(&h, e->digest, strlen(e->digest) + 1);
        sha256_update(&h, link_to, strlen(link_to) + 1);
        sha256_update(&h, "\n", 1);
    }
    free(seen);
    oci_digest_from_sha256(&h, ret);
}

/* The inputs of a layer as recorded for the next build's explanation: one
 * line per entry, "<path length>:<path> <mode>:<uid>:<gid>:<digest><link>",
 * in the tree's (byte-wise) order; a single string keeps memory small. */
char *cachekey_inputs_record(const struct layer_tree *t)
{
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < t->n; i++) {
        const struct layer_tree_entry *e = &t->entries[i];

        /* 16 hex digits of the content digest tell a change apart well
         * enough for an explanation, at a quarter of the bytes. */
        strbuf_addf(&sb, "%zu:%s %o:%u:%u:%.16s%s\n", strlen(e->path), e->path,
                    (unsigned)e->mode, e->uid, e->gid, e->digest, e->link ? e->link : "");
    }
    return strbuf_detach(&sb);
}

struct input_line {
    const char *path, *value;
    size_t path_len, value_len;
};

/* Reads the line at *p of an inputs record; false at the end. */
static bool input_next(const char **p, struct input_line *ret)
{
    char *end;
    unsigned long len;
    const char *nl;

    if (!*p || !**p)
        return false;
    len = strtoul(*p, &end, 10);
    if (*end != ':' || strlen(end + 1) < len + 1)
        return false;
    ret->path = end + 1;
    ret->path_len = len;
    ret->value = ret->path + len + 1;
    nl = strchr(ret->value, '\n');
    ret->value_len = nl ? (size_t)(nl - ret->value) : strlen(ret->value);
    *p = nl ? nl + 1 : ret->value + ret->value_len;
    return true;
}

static int path_cmp(const struct input_line *a, const struct input_line *b)
{
    size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;
    int c = memcmp(a->path, b->path, n);

    return c ? c : (a->path_len > b->path_len) - (a->path_len < b->path_len);
}

/* Why a layer missed: compares with what the last build of this slot saw. */
char *cachekey_explain_miss(const json_t *last, const struct oci_digest *parent,
                            const struct oci_digest *def, const char *inputs, bool first)
{
    const char *old, *p, *q;
    struct input_line a, b;
    bool has_a, has_b;

    if (!last)
        return xstrdup("first build");
    if (strcmp(json_string_value(json_object_get(last, "parent")) ?: "", parent->str))
        return xstrdup(first ? "base: digest changed" : "an earlier layer changed");
    if (strcmp(json_string_value(json_object_get(last, "def")) ?: "", def->str))
        return xstrdup("definition changed in the spec");
    /* Both records are sorted by path: the first difference in a merge is
     * the byte-wise first path that changed, a stable answer. */
    old = json_string_value(json_object_get(last, "inputs")) ?: "";
    p = old;
    q = inputs;
    has_a = input_next(&p, &a);
    has_b = input_next(&q, &b);
    while (has_a || has_b) {
        int c = !has_a ? 1 : !has_b ? -1 : path_cmp(&a, &b);

        if (c < 0)
            return xasprintf("%.*s removed", (int)a.path_len, a.path);
        if (c > 0)
            return xasprintf("%.*s added", (int)b.path_len, b.path);
        if (a.value_len != b.value_len || memcmp(a.value, b.value, a.value_len))
            return xasprintf("%.*s changed", (int)b.path_len, b.path);
        has_a = input_next(&p, &a);
        has_b = input_next(&q, &b);
    }
    return xstrdup("not in the cache");
}
