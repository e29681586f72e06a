/*
 * The build driver; see build.h.
 */
#include "builder/build.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/version.h"
#include "base/xalloc.h"
#include "transport/archive.h"
#include "builder/context.h"
#include "builder/git.h"
#include "spec/lock.h"
#include "transport/remote.h"
#include "transport/remotecache.h"
#include "builder/rootfs.h"
#include "builder/run.h"
#include "transport/source.h"
#include "spec/spec.h"
#include "builder/cachekey.h"
#include "cache/blobs.h"
#include "cache/keys.h"
#include "cache/maint.h"
#include "cache/statcache.h"
#include "layers/tree.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/mediatype.h"
#include "registry/reference.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ANNOTATION_PREFIX "org.opencontainers.image."

/* A stage's image and where each of its layer blobs can be read. */
struct stage_image {
    bool built;
    struct oci_digest top_key; /* cache key of the last layer, or of the base */
    struct oci_image img;
    struct blob_source *srcs; /* one per layer */
    size_t n_srcs, alloc_srcs;
    struct rootfs root;      /* unpacked when a run or a copy from it needs it */
    struct oci_digest *keys; /* keys[i]: the stage's key after i layers ("" inside
                              * the base), n_layers + 1 of them */
    size_t n_keys, alloc_keys;
};

static void stage_keys_push(struct stage_image *si, const struct oci_digest *key)
{
    XGROW(si->keys, si->alloc_keys, si->n_keys + 1);
    si->keys[si->n_keys++] = *key;
}

/* After the base is loaded: no keys inside it, its own key at its top. */
static void stage_keys_base(struct stage_image *si)
{
    struct oci_digest none = {""};

    si->n_keys = 0;
    for (size_t i = 0; i < si->img.n_layers; i++)
        stage_keys_push(si, &none);
    stage_keys_push(si, &si->top_key);
}

struct build {
    const struct build_options *o;
    struct spec spec;
    struct context ctx;
    struct cache cache;
    struct registries *registries;
    struct stat_cache *stat;
    struct remote_cache remote;
    struct unpack_limits limits; /* what the build may unpack and read */
    json_t *lock;                /* ocib.lock.json, or NULL */
    bool noted_devices;
    bool noted_capture; /* the note that run steps go without overlayfs */
    int *held;          /* blobs in use (shared locks), see cache_blob_hold */
    size_t n_held, alloc_held;
    char *spec_abs;        /* names explain records */
    char platform_str[96]; /* of the stage being built */
    struct stage_image *stages;
    int64_t epoch;
    char created[32];
    char *git_full, *git_short;
    struct git_dirty *dirty; /* what HEAD does not hold (NULL: not asked) */
};

static void keep_fd(struct build *b, int fd)
{
    XGROW(b->held, b->alloc_held, b->n_held + 1);
    b->held[b->n_held++] = fd;
}

static void hold_blob(struct build *b, const struct oci_digest *d)
{
    int fd = cache_blob_hold(&b->cache, d);

    if (fd < 0)
        return;
    XGROW(b->held, b->alloc_held, b->n_held + 1);
    b->held[b->n_held++] = fd;
}

static void progress(struct build *b, const struct build_event *ev)
{
    if (b->o->progress)
        b->o->progress(b->o->progress_opaque, ev);
}

int build_output_parse(const char *s, struct build_output *ret, struct ocib_error *err)
{
    if (!strncmp(s, "oci:", 4) && s[4]) {
        ret->kind = BUILD_OUTPUT_OCI;
        ret->path = xstrdup(s + 4);
    } else if (!strncmp(s, "docker-archive:", 15) && s[15]) {
        ret->kind = BUILD_OUTPUT_ARCHIVE;
        ret->path = xstrdup(s + 15);
    } else {
        return ocib_error_usage(err,
                                "invalid output '%s': expected oci:DIR or "
                                "docker-archive:FILE",
                                s);
    }
    return 0;
}

void build_result_release(struct build_result *r)
{
    free(r->reference);
    r->reference = NULL;
}

/* Records where layer (the one just added to si->img) can be read. */
static void stage_image_add_src(struct stage_image *si, const struct blob_source *src)
{
    XGROW(si->srcs, si->alloc_srcs, si->n_srcs + 1);
    blob_source_copy(src, &si->srcs[si->n_srcs++]);
}

static void stage_image_add_path(struct stage_image *si, size_t layer, const char *path,
                                 bool verify)
{
    struct blob_source b;

    blob_source_init_local(&b, &si->img.layers[layer].desc.digest,
                           si->img.layers[layer].desc.size, path, verify);
    stage_image_add_src(si, &b);
    blob_source_release(&b);
}

static void stage_image_release(struct stage_image *si)
{
    if (si->built)
        oci_image_release(&si->img);
    for (size_t i = 0; i < si->n_srcs; i++)
        blob_source_release(&si->srcs[i]);
    free(si->srcs);
    free(si->keys);
    memset(si, 0, sizeof(*si));
}

/* Rejects, before anything is built, run layers whose secrets were not
 * given. */
static int check_secrets(struct build *b, const size_t *order, size_t n,
                         struct ocib_error *err)
{
    for (size_t k = 0; k < n; k++) {
        const struct spec_stage *st = &b->spec.stages[order[k]];

        for (size_t l = 0; l < st->n_layers; l++) {
            const struct spec_layer *ly = &st->layers[l];

            if (ly->kind == SPEC_LAYER_RUN) {
                const json_t *sec = json_object_get(ly->json, "secrets"), *x;
                size_t i;

                json_array_foreach(sec, i, x)
                {
                    const char *id = json_string_value(json_object_get(x, "id"));
                    bool given = false;

                    for (size_t j = 0; j < b->o->n_secrets; j++)
                        given |= !strcmp(b->o->secrets[j].id, id);
                    if (!given)
                        return ocib_error_usage(err,
                                                "%s: %s.secrets[%zu]: secret '%s' was not "
                                                "given; pass --secret id=%s,src=PATH",
                                                b->spec.file, ly->where, i, id, id);
                }
            }
        }
    }
    return 0;
}

static int load_base(struct build *b, size_t s, const struct oci_platform *p,
                     struct stage_image *si, struct ocib_error *err)
{
    const struct spec_stage *st = &b->spec.stages[s];
    struct build_event ev = {.kind = BUILD_EVENT_BASE, .stage = st->name};
    struct oci_digest base_digest = {""};
    _cleanup_free_ char *text = NULL;

    switch (st->from.kind) {
    case SPEC_FROM_SCRATCH: {
        _cleanup_free_ char *base = xasprintf("scratch/%s", b->platform_str);

        oci_image_init(&si->img, p);
        si->built = true;
        cachekey_base(base, &si->top_key);
        return 0;
    }
    case SPEC_FROM_STAGE: {
        struct stage_image *from = &b->stages[st->from.stage];

        /* Its root's state, if still to be kept, is where this stage's root
         * can start: kept now. */
        rootfs_keep_pending(&from->root, &b->cache);
        oci_image_copy(&from->img, &si->img);
        si->built = true;
        si->top_key = from->top_key;
        for (size_t i = 0; i < from->n_keys; i++)
            stage_keys_push(si, &from->keys[i]);
        for (size_t i = 0; i < from->n_srcs; i++)
            stage_image_add_src(si, &from->srcs[i]);
        return 0;
    }
    case SPEC_FROM_OCI:
    case SPEC_FROM_ARCHIVE:
    case SPEC_FROM_REGISTRY: {
        struct image_source src;
        _cleanup_free_ char *pinned = NULL;

        if (st->from.kind == SPEC_FROM_REGISTRY && b->lock)
            pinned = lock_pinned(b->lock, st->from.text, b->platform_str);
        if (image_source_open(pinned ? pinned : st->from.text, b->ctx.dir, &b->cache,
                              b->registries, p, &src, err) < 0)
            return ocib_error_wrap(err, "%s.from", st->where);
        if (pinned && !src.choice) {
            text = xasprintf("%s (locked to %s)", st->from.text, pinned);
            ev.text = text;
        }
        si->img = src.img;
        memset(&src.img, 0, sizeof(src.img));
        si->built = true;
        for (size_t i = 0; i < si->img.n_layers; i++)
            stage_image_add_src(si, &src.srcs[i]);
        base_digest = src.manifest.digest;
        cachekey_base(base_digest.str, &si->top_key);
        if (src.choice) {
            text = xasprintf("%s (index %s, picked %s)", st->from.text, src.index.str,
                             src.choice);
            ev.text = text;
        }
        image_source_release(&src);
        break;
    }
    default:
        return ocib_error_set(err, "%s.from: unsupported base", st->where);
    }
    {
        const char *os = oci_json_str(si->img.config, "os");
        const char *arch = oci_json_str(si->img.config, "architecture");
        json_t *pj = json_pack("{s:s, s:s}", "os", os ?: "", "architecture", arch ?: "");
        bool ok;
        char want[96];

        if (oci_json_str(si->img.config, "variant"))
            json_object_set_new(pj, "variant",
                                json_string(oci_json_str(si->img.config, "variant")));
        ok = oci_platform_match_json(p, pj);
        json_decref(pj);
        oci_platform_format(p, want, sizeof(want));
        if (!ok)
            return ocib_error_set(err, "%s.from: \"%s\" is %s/%s, but the stage builds %s",
                                  st->where, st->from.text, os ?: "?", arch ?: "?", want);
    }
    json_object_clear(si->img.annotations);
    json_object_set_new(si->img.annotations, ANNOTATION_PREFIX "base.name",
                        json_string(st->from.text));
    json_object_set_new(si->img.annotations, ANNOTATION_PREFIX "base.digest",
                        json_string(base_digest.str));
    ev.digest = base_digest.str;
    if (!ev.text)
        ev.text = st->from.text;
    progress(b, &ev);
    return 0;
}

static int add_files(struct build *b, const struct spec_stage *st,
                     const struct spec_layer *ly, struct layer_tree *t,
                     struct ocib_error *err)
{
    for (size_t i = 0; i < ly->n_files; i++) {
        const struct spec_file *f = &ly->files[i];
        _cleanup_free_ char *abs = f->path[0] == '/'
                                       ? xstrdup(f->path)
                                       : xasprintf("%s/%s", st->workdir ?: "/", f->path);
        struct layer_tree_entry e = {0};

        if (layer_path_normalise(abs, &e.path, err) < 0)
            return ocib_error_wrap(err, "%s.path", f->where);
        if (!e.path)
            return ocib_error_usage(err, "%s.path: cannot replace '/'", f->where);
        e.uid = f->owner.set ? f->owner.uid : 0;
        e.gid = f->owner.set ? f->owner.gid : 0;
        switch (f->kind) {
        case SPEC_FILE_CONTENT:
            e.mode = S_IFREG | (mode_t)(f->mode >= 0 ? f->mode : 0644);
            e.data = xmalloc(f->content_len + 1);
            memcpy(e.data, f->content, f->content_len);
            e.size = f->content_len;
            break;
        case SPEC_FILE_SYMLINK:
            e.mode = S_IFLNK | 0777;
            e.link = xstrdup(f->content);
            break;
        case SPEC_FILE_DIR:
            e.mode = S_IFDIR | (mode_t)(f->mode >= 0 ? f->mode : 0755);
            break;
        }
        layer_tree_put(t, &e);
    }
    return 0;
}

static char *describe_layer(const struct spec_layer *ly)
{
    struct strbuf sb = STRBUF_INIT;

    if (ly->kind == SPEC_LAYER_COPY) {
        strbuf_addstr(&sb, "ocib copy");
        for (size_t c = 0; c < ly->n_copies; c++) {
            if (c)
                strbuf_addstr(&sb, ";");
            if (ly->copies[c].has_from)
                strbuf_addf(&sb, " --from=%s", ly->copies[c].from.text);
            for (size_t s = 0; s < ly->copies[c].n_src; s++)
                strbuf_addf(&sb, " %s", ly->copies[c].src[s]);
            strbuf_addf(&sb, " %s", ly->copies[c].dest);
        }
    } else if (ly->kind == SPEC_LAYER_RUN) {
        const json_t *run = json_object_get(ly->json, "run"), *a;
        size_t i;

        strbuf_addstr(&sb, "ocib run");
        if (json_is_string(run))
            strbuf_addf(&sb, " /bin/sh -c %s", json_string_value(run));
        else
            json_array_foreach(run, i, a) strbuf_addf(&sb, " %s", json_string_value(a));
    } else {
        strbuf_addstr(&sb, "ocib files");
        for (size_t f = 0; f < ly->n_files; f++)
            strbuf_addf(&sb, " %s", ly->files[f].path);
    }
    return strbuf_detach(&sb);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes the layer of tree t into the blob store; fills in the content
 * digests of the files it reads. */
static int write_layer(struct build *b, struct layer_tree *t, int src_dirfd,
                       struct cache_layer *ret, struct ocib_error *err)
{
    struct layer_writer *w = NULL;
    struct layer_result res;
    _cleanup_free_ char *tmp = NULL;
    int fd = -1, r = -1;

    if (cache_tmp_create(&b->cache, &tmp, &fd, err) < 0 ||
        layer_writer_new(fd, b->o->compression, b->epoch, &w, err) < 0 ||
        layer_tree_write(t, src_dirfd, w, err) < 0 || layer_writer_finish(w, &res, err) < 0)
        goto out;
    if (close(fd) < 0) {
        fd = -1;
        ocib_error_errno(err, errno, "cannot write '%s'", tmp);
        goto out;
    }
    fd = -1;
    if (cache_blob_commit(&b->cache, tmp, &res.digest, err) < 0)
        goto out;
    free(tmp);
    tmp = NULL;
    memset(ret, 0, sizeof(*ret));
    ret->digest = res.digest;
    ret->diff_id = res.diff_id;
    ret->size = (int64_t)res.size;
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", res.media_type);
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    layer_writer_free(w);
    return r;
}

static void remember_digest(void *opaque, const struct layer_tree_entry *e)
{
    struct build *b = opaque;

    if (e->src && e->has_st && e->digest[0] && e->dirfd == b->ctx.fd)
        stat_cache_put(b->stat, e->src, &e->st, e->digest);
}

/* The inputs of a layer as recorded for the next build's explanation: one
 * line per entry, "<path length>:<path> <mode>:<uid>:<gid>:<digest><link>",
 * in the tree's (byte-wise) order; a single string keeps memory small. */
static char *inputs_record(const struct layer_tree *t)
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
static char *explain_miss(const json_t *last, const struct oci_digest *parent,
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

/* What, besides the parent key, decides a layer: its definition, and for a
 * run layer the stage defaults and image config it runs with, and for
 * copies from stages the keys of those stages. */
static json_t *layer_def_input(struct build *b, const struct spec_stage *st,
                               const struct spec_layer *ly, const struct stage_image *si)
{
    json_t *in = json_pack("{s:O}", "layer", ly->json);

    if (ly->kind == SPEC_LAYER_RUN) {
        const json_t *ic = json_object_get(si->img.config, "config");
        json_t *x;

        if (st->env)
            json_object_set(in, "stage_env", st->env);
        if (st->user)
            json_object_set_new(in, "stage_user", json_string(st->user));
        if ((x = json_object_get(ic, "Env")))
            json_object_set(in, "image_env", x);
        if ((x = json_object_get(ic, "User")))
            json_object_set(in, "image_user", x);
        if ((x = json_object_get(ic, "WorkingDir")))
            json_object_set(in, "image_workdir", x);
    }
    for (size_t c = 0; c < ly->n_copies; c++) {
        const struct spec_copy *cp = &ly->copies[c];

        if (cp->has_from && cp->from.kind == SPEC_FROM_STAGE) {
            json_t *srcs = json_object_get(in, "stages");

            if (!srcs) {
                srcs = json_array();
                json_object_set_new(in, "stages", srcs);
            }
            json_array_append_new(srcs, json_string(b->stages[cp->from.stage].top_key.str));
        }
    }
    return in;
}

static void forward_output(void *opaque, const char *line)
{
    struct build_event *ev = opaque;
    struct build *b = (struct build *)ev->opaque;
    struct build_event out = *ev;

    out.text = line;
    progress(b, &out);
}

/* Runs a run layer's command on the stage's root; changes into t. */
static int run_step(struct build *b, const struct spec_stage *st,
                    const struct spec_layer *ly, struct stage_image *si,
                    struct layer_tree *t, bool *ret_in_place, struct ocib_error *err)
{
    struct build_event ev = {
        .kind = BUILD_EVENT_LOG, .stage = st->name, .layer = ly->name, .opaque = b};
    struct run_request rq = {.stage = st,
                             .layer = ly,
                             .root = &si->root,
                             .image_config = si->img.config,
                             .secrets = b->o->secrets,
                             .n_secrets = b->o->n_secrets,
                             .cache = &b->cache,
                             .output = forward_output,
                             .output_opaque = &ev};
    int r;

    if (rootfs_update(&si->root, &b->cache, b->registries, &si->img, si->srcs,
                      si->img.n_layers, si->keys, &b->limits, err) < 0)
        return ocib_error_wrap(err, "preparing the root of stage %s", st->name);
    if (si->root.skipped_devices && !b->noted_devices) {
        struct build_event note = {.kind = BUILD_EVENT_INFO, .stage = st->name};
        _cleanup_free_ char *text =
            xasprintf("note: %llu device nodes of the base were skipped (a rootless build "
                      "cannot create them)",
                      (unsigned long long)si->root.skipped_devices);

        note.text = text;
        progress(b, &note);
        b->noted_devices = true;
    }
    rootfs_keep_pending(&si->root, &b->cache);
    r = run_layer(&rq, t, err);
    if (rq.note && !b->noted_capture) {
        struct build_event note = {
            .kind = BUILD_EVENT_INFO, .stage = st->name, .text = rq.note};

        progress(b, &note);
        b->noted_capture = true;
    }
    free(rq.note);
    *ret_in_place = rq.in_place;
    return r;
}

/* Builds a copy layer that takes files from stages (and maybe the
 * context), in the order the spec lists them. */
static int copy_with_stages(struct build *b, const struct spec_stage *st,
                            const struct spec_layer *ly, struct layer_tree *t,
                            struct ocib_error *err)
{
    for (size_t c = 0; c < ly->n_copies; c++) {
        const struct spec_copy *cp = &ly->copies[c];
        struct stage_image *src;
        struct context rc;
        int r;

        if (!cp->has_from) {
            if (context_copy(&b->ctx, cp, st->workdir, t, err) < 0)
                return -1;
            continue;
        }
        src = &b->stages[cp->from.stage];
        if (rootfs_update(&src->root, &b->cache, b->registries, &src->img, src->srcs,
                          src->img.n_layers, src->keys, &b->limits, err) < 0)
            return ocib_error_wrap(err, "%s: preparing the root of stage %s", cp->where,
                                   cp->from.text);
        if (context_open_root(&rc, src->root.path, cp->from.text, err) < 0)
            return -1;
        rc.max_file = b->limits.max_layer_bytes;
        r = context_copy(&rc, cp, st->workdir, t, err);
        /* Entries keep rc's fd to read from: hand it to the build. */
        if (r == 0)
            keep_fd(b, rc.fd);
        else
            close(rc.fd);
        rc.fd = -1;
        free(rc.dir);
        free(rc.label);
        ignore_free(rc.ignore);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* A run step of stage si wrote into a file in place (no overlayfs): every
 * kept root and every other root of this build may share that file. */
static void taint_roots(struct build *b, struct stage_image *si)
{
    rootfs_taint(&si->root, &b->cache);
    for (size_t j = 0; j < b->spec.n_stages; j++)
        if (&b->stages[j] != si)
            rootfs_discard(&b->stages[j].root);
}

/* Adds the entries of a copy layer's context copies, or of a files layer,
 * to t; *ret_from_stage says whether a copy reads a stage. */
static int layer_inputs(struct build *b, const struct spec_stage *st,
                        const struct spec_layer *ly, struct layer_tree *t,
                        bool *ret_from_stage, struct ocib_error *err)
{
    if (ly->kind == SPEC_LAYER_FILES)
        return add_files(b, st, ly, t, err);
    for (size_t c = 0; ly->kind == SPEC_LAYER_COPY && c < ly->n_copies; c++) {
        if (ly->copies[c].has_from) {
            *ret_from_stage = true;
            continue;
        }
        if (context_copy(&b->ctx, &ly->copies[c], st->workdir, t, err) < 0)
            return -1;
    }
    return 0;
}

/* A copy or files layer whose files add up to more than a layer may hold is
 * refused before any of them is read. */
static int check_layer_bytes(const struct build *b, const struct spec_stage *st,
                             const struct spec_layer *ly, const struct layer_tree *t,
                             struct ocib_error *err)
{
    uint64_t total = 0;

    for (size_t i = 0; i < t->n; i++)
        if (S_ISREG(t->entries[i].mode))
            total += t->entries[i].size;
    if (total <= b->limits.max_layer_bytes)
        return 0;
    return ocib_error_kind_set(err, OCIB_ERR_LIMIT,
                               "stage %s, layer %s: its files are %llu bytes, more than a "
                               "layer may hold (%llu, limit OCIB_MAX_LAYER_BYTES)",
                               st->name, ly->name, (unsigned long long)total,
                               (unsigned long long)b->limits.max_layer_bytes);
}

/* Where the entries of a copy or files layer land in the stage: each path
 * resolved through the symlinks of the stage's root as the layers before
 * left it (a directory's own path too, so copying into /app/ where /app is a
 * symlink fills its target and keeps the link), as Docker resolves a COPY
 * destination.  The resolution is decided by the parent state, which the
 * layer's key covers (its parent key), so a hit needs none of this.
 * *ret_paths gets one new path per entry (NULL: the root itself, dropped);
 * *ret_changed says whether any differs. */
static void paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}

static int dest_paths(struct build *b, struct stage_image *si, const struct layer_tree *t,
                      char ***ret_paths, bool *ret_changed, struct ocib_error *err)
{
    char **paths = xcalloc(t->n + 1, sizeof(*paths));
    bool changed = false;
    int fd = -1, r = -1;

    if (rootfs_state_fd(&si->root, &b->cache, b->registries, &si->img, si->srcs,
                        si->img.n_layers, si->keys, &b->limits, &fd, err) < 0)
        goto out;
    for (size_t i = 0; i < t->n; i++) {
        const struct layer_tree_entry *e = &t->entries[i];

        if (rootfs_resolve(fd, e->path, S_ISDIR(e->mode), &paths[i], err) < 0) {
            ocib_error_wrap(err, "destination '/%s'", e->path);
            goto out;
        }
        if (strcmp(paths[i], e->path))
            changed = true;
        if (!paths[i][0]) {
            free(paths[i]);
            paths[i] = NULL;
        }
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        paths_free(paths, t->n);
        return -1;
    }
    *ret_paths = paths;
    *ret_changed = changed;
    return 0;
}

static bool has_owner_names(const struct spec_layer *ly)
{
    for (size_t c = 0; c < ly->n_copies; c++)
        if (ly->copies[c].owner.set && !ly->copies[c].owner.numeric)
            return true;
    for (size_t f = 0; f < ly->n_files; f++)
        if (ly->files[f].owner.set && !ly->files[f].owner.numeric)
            return true;
    return false;
}

/* Resolves an owner written with names against the root's /etc/passwd and
 * /etc/group.  A user without a group gets the group of the same number, as
 * Docker's COPY --chown does. */
static int resolve_owner(const struct rootfs *root, const char *where, struct spec_owner *o,
                         struct ocib_error *err)
{
    _cleanup_free_ char *user =
        o->has_group ? xasprintf("%s:%s", o->user, o->group) : xstrdup(o->user);
    uid_t uid;
    gid_t gid;

    if (sandbox_resolve_user(root->path, user, &uid, &gid, NULL, err) < 0)
        return ocib_error_wrap(err, "%s.owner", where);
    o->uid = (unsigned)uid;
    o->gid = o->has_group ? (unsigned)gid : (unsigned)uid;
    return 0;
}

/* Resolves the owner names of layer index of stage st against the stage
 * as the layers before it left it (its root brought up to date). */
static int resolve_owners(struct build *b, const struct spec_stage *st, size_t index,
                          struct stage_image *si, struct ocib_error *err)
{
    struct spec_layer *ly = &b->spec.stages[st - b->spec.stages].layers[index];

    if (rootfs_update(&si->root, &b->cache, b->registries, &si->img, si->srcs,
                      si->img.n_layers, si->keys, &b->limits, err) < 0)
        return ocib_error_wrap(err, "preparing the root of stage %s", st->name);
    for (size_t c = 0; c < ly->n_copies; c++) {
        struct spec_copy *cp = &ly->copies[c];

        if (cp->owner.set && !cp->owner.numeric &&
            resolve_owner(&si->root, cp->where, &cp->owner, err) < 0)
            return -1;
    }
    for (size_t f = 0; f < ly->n_files; f++) {
        struct spec_file *fl = &ly->files[f];

        if (fl->owner.set && !fl->owner.numeric &&
            resolve_owner(&si->root, fl->where, &fl->owner, err) < 0)
            return -1;
    }
    return 0;
}

static int build_layer(struct build *b, const struct spec_stage *st, size_t index,
                       struct stage_image *si, struct ocib_error *err)
{
    const struct spec_layer *ly = &st->layers[index];
    struct layer_tree t;
    struct cache_layer cl;
    struct oci_layer l;
    struct oci_digest def, key;
    _cleanup_free_ char *created_by = NULL;
    _cleanup_free_ char *blob = NULL;
    _cleanup_free_ char *slot = NULL;
    _cleanup_free_ char *reason = NULL;
    _cleanup_free_ char *corrupt = NULL;
    struct build_event ev = {
        .kind = BUILD_EVENT_LAYER, .stage = st->name, .layer = ly->name, .status = "built"};
    json_t *last = NULL, *record, *def_input = NULL;
    _cleanup_free_ char *inputs = NULL;
    bool from_stage = false, in_place = false, named = has_owner_names(ly);
    double t0 = now();
    size_t missing = 0;
    struct blob_source remote_src = {0};
    bool hit = false, remote_hit = false;
    int lock = -1, r = -1;

    layer_tree_init(&t);
    /* The inputs that decide the key: context files now; a run layer's
     * result and files copied from a stage are decided by their stage's
     * key, so neither needs the stage's root unless the key misses. */
    if (layer_inputs(b, st, ly, &t, &from_stage, err) < 0 ||
        check_layer_bytes(b, st, ly, &t, err) < 0)
        goto out;
    layer_tree_finalise(&t);
    /* Content digests of unchanged files come from the stat cache. */
    for (size_t i = 0; i < t.n; i++) {
        struct layer_tree_entry *e = &t.entries[i];
        const char *hex;

        if (!S_ISREG(e->mode) || e->digest[0])
            continue;
        if (!e->src) {
            struct oci_digest d;

            oci_digest_of(e->data ? e->data : "", e->size, &d);
            memcpy(e->digest, oci_digest_hex(&d), sizeof(e->digest));
        } else if (e->has_st && (hex = stat_cache_lookup(b->stat, e->src, &e->st))) {
            memcpy(e->digest, hex, sizeof(e->digest));
        } else {
            missing++;
        }
    }
    def_input = layer_def_input(b, st, ly, si);
    cachekey_def(&si->top_key, def_input, b->platform_str,
                 layer_compression_settings(b->o->compression), b->epoch, st->workdir,
                 &def);
    /* Hash first only when a hit is possible: some key was stored under
     * this definition.  Otherwise the layer is built in one pass that
     * hashes its files on the way. */
    if (missing &&
        (named || (!b->o->no_cache && (cache_def_seen(&b->cache, &def) ||
                                       remote_cache_def_seen(&b->remote, &def))))) {
        if (layer_tree_hash_files(&t, b->ctx.fd, remember_digest, b, err) < 0)
            goto out;
        missing = 0;
    }
    if (!missing) {
        cachekey_layer(&def, &t, &key);
        if (cache_lock(&b->cache, &key, &lock, err) < 0)
            goto out;
        if (!b->o->no_cache && cache_key_get(&b->cache, &key, &cl, err) > 0) {
            /* A cached blob is checked before it is trusted: a corrupt one
             * is removed, and the layer rebuilt. */
            int bad = cache_blob_verify_fast(&b->cache, &cl.digest, err);

            if (bad < 0)
                goto out;
            if (bad) {
                corrupt = xasprintf("cached blob %s was corrupt: removed, rebuilding",
                                    cl.digest.str);
            } else {
                hit = true;
            }
        }
        if (!hit && !b->o->no_cache &&
            remote_cache_lookup(&b->remote, &b->cache, &key, &cl, &remote_src)) {
            hit = true;
            remote_hit = true;
        }
    }
    slot = xasprintf("%s\n%s\n%zu", b->spec_abs, st->name, index);
    if (!hit)
        last = cache_record_get(&b->cache, slot);
    if (!hit) {
        int src_dirfd = b->ctx.fd;

        /* Owner names are resolved only now: the key holds them as written,
         * which with the parent key decides the ids. */
        if (named) {
            if (resolve_owners(b, st, index, si, err) < 0)
                goto out;
            inputs = inputs_record(&t); /* as a hit records them */
            layer_tree_release(&t);
            layer_tree_init(&t);
            if (layer_inputs(b, st, ly, &t, &from_stage, err) < 0)
                goto out;
        }

        if (ly->kind == SPEC_LAYER_RUN) {
            if (run_step(b, st, ly, si, &t, &in_place, err) < 0) {
                if (in_place)
                    taint_roots(b, si);
                goto out;
            }
            src_dirfd = si->root.fd;
        } else if (from_stage) {
            layer_tree_release(&t);
            layer_tree_init(&t);
            if (copy_with_stages(b, st, ly, &t, err) < 0 ||
                check_layer_bytes(b, st, ly, &t, err) < 0)
                goto out;
        }
        if (ly->kind != SPEC_LAYER_RUN && si->img.n_layers > 0) {
            char **paths = NULL;
            bool changed = false;

            if (dest_paths(b, si, &t, &paths, &changed, err) < 0)
                goto out;
            if (changed) {
                /* The key and the inputs record stay those of the paths as
                 * written, as a hit computes them. */
                if (missing) {
                    if (layer_tree_hash_files(&t, b->ctx.fd, remember_digest, b, err) < 0) {
                        paths_free(paths, t.n);
                        goto out;
                    }
                    missing = 0;
                    cachekey_layer(&def, &t, &key);
                    if (cache_lock(&b->cache, &key, &lock, err) < 0) {
                        paths_free(paths, t.n);
                        goto out;
                    }
                }
                if (!inputs)
                    inputs = inputs_record(&t);
                layer_tree_retarget(&t, paths); /* takes the strings */
                free(paths);
            } else {
                paths_free(paths, t.n);
            }
        }
        if (write_layer(b, &t, src_dirfd, &cl, err) < 0)
            goto out;
        for (size_t i = 0; missing && i < t.n; i++)
            remember_digest(b, &t.entries[i]);
        if (missing) {
            cachekey_layer(&def, &t, &key);
            if (cache_lock(&b->cache, &key, &lock, err) < 0)
                goto out;
        }
        if (cache_key_put(&b->cache, &key, &cl, err) < 0 ||
            cache_def_mark(&b->cache, &def, err) < 0)
            goto out;
    }
    if (!inputs)
        inputs = inputs_record(&t);
    if (!hit) {
        reason = b->o->no_cache ? xstrdup("--no-cache")
                 : corrupt      ? TAKE_PTR(corrupt)
                           : explain_miss(last, &si->top_key, &def, inputs, index == 0);
        ev.text = reason;
    } else {
        ev.status = "cached";
        if (remote_hit)
            ev.text = "from --cache-from";
    }
    /* A hit on the state the record describes need not rewrite it. */
    if (!hit || !cache_record_has_key(&b->cache, slot, &key)) {
        record = json_pack("{s:s, s:s, s:s, s:s}", "parent", si->top_key.str, "def",
                           def.str, "key", key.str, "inputs", inputs);
        cache_record_put(&b->cache, slot, record, NULL);
        json_decref(record);
    }
    l.desc.media_type = cl.media_type;
    l.desc.digest = cl.digest;
    l.desc.size = cl.size;
    l.diff_id = cl.diff_id;
    created_by = describe_layer(ly);
    oci_image_add_layer(&si->img, &l, b->created, created_by, ly->name);
    if (remote_hit) {
        stage_image_add_src(si, &remote_src);
    } else {
        blob = cache_blob_path(&b->cache, &cl.digest);
        stage_image_add_path(si, si->img.n_layers - 1, blob, false);
        hold_blob(b, &cl.digest);
    }
    if (b->o->cache_to)
        remote_cache_add(&b->remote, &key, &def, &cl);
    si->top_key = key;
    stage_keys_push(si, &key);
    if (ly->kind == SPEC_LAYER_RUN && !hit) {
        rootfs_advance(&si->root, si->img.n_layers, &key);
        /* Keep the state after a run step for the next build (a source
         * change after it then starts here), unless the step changed a file
         * in place, which kept roots sharing its inode would see. */
        if (in_place) {
            taint_roots(b, si);
        } else {
            rootfs_save(&si->root, &b->cache);
        }
    }
    ev.digest = cl.digest.str;
    ev.size = (uint64_t)cl.size;
    ev.files = t.n;
    ev.seconds = now() - t0;
    progress(b, &ev);
    r = 0;
out:
    json_decref(def_input);
    blob_source_release(&remote_src);
    cache_unlock(lock);
    json_decref(last);
    layer_tree_release(&t);
    if (r < 0)
        ocib_error_wrap(err, "stage %s, layer %s", st->name, ly->name);
    return r;
}

static json_t *shell_or_list(const json_t *v)
{
    if (json_is_string(v))
        return json_pack("[s, s, O]", "/bin/sh", "-c", v);
    return json_deep_copy(v);
}

/* Merges the stage's "config" into the image config. */
static void apply_config(struct build *b, const struct spec_stage *st,
                         struct oci_image *img)
{
    const json_t *c = st->config;
    json_t *ic = json_object_get(img->config, "config"), *x;
    const char *key;
    json_t *val;

    json_object_set_new(img->config, "created", json_string(b->created));
    if (!json_is_object(ic)) {
        ic = json_object();
        json_object_set_new(img->config, "config", ic);
    }
    if (!c)
        return;
    if ((x = json_object_get(c, "user")))
        json_object_set(ic, "User", x);
    if ((x = json_object_get(c, "workdir")))
        json_object_set(ic, "WorkingDir", x);
    if ((x = json_object_get(c, "stop_signal")))
        json_object_set(ic, "StopSignal", x);
    if ((x = json_object_get(c, "entrypoint"))) {
        json_object_set_new(ic, "Entrypoint", shell_or_list(x));
        if (!json_object_get(c, "cmd"))
            json_object_del(ic, "Cmd");
    }
    if ((x = json_object_get(c, "cmd")))
        json_object_set_new(ic, "Cmd", shell_or_list(x));
    if ((x = json_object_get(c, "env"))) {
        json_t *env = json_object_get(ic, "Env");

        if (!json_is_array(env)) {
            env = json_array();
            json_object_set_new(ic, "Env", env);
        }
        json_t *where = json_object(); /* name -> index of its first entry */
        size_t i;

        json_array_foreach(env, i, val)
        {
            const char *e = json_string_value(val), *eq = e ? strchr(e, '=') : NULL;

            if (eq) {
                _cleanup_free_ char *name = xstrndup(e, (size_t)(eq - e));

                if (!json_object_get(where, name))
                    json_object_set_new(where, name, json_integer((json_int_t)i));
            }
        }
        json_object_foreach((json_t *)x, key, val)
        {
            _cleanup_free_ char *kv = xasprintf("%s=%s", key, json_string_value(val));
            json_t *at = json_object_get(where, key);

            if (at) {
                json_array_set_new(env, (size_t)json_integer_value(at), json_string(kv));
            } else {
                json_object_set_new(where, key,
                                    json_integer((json_int_t)json_array_size(env)));
                json_array_append_new(env, json_string(kv));
            }
        }
        json_decref(where);
    }
    for (size_t k = 0; k < 2; k++) {
        const char *skey = k == 0 ? "expose" : "volumes";
        const char *ikey = k == 0 ? "ExposedPorts" : "Volumes";
        size_t i;

        if (!(x = json_object_get(c, skey)))
            continue;
        json_t *set = json_object_get(ic, ikey);
        if (!json_is_object(set)) {
            set = json_object();
            json_object_set_new(ic, ikey, set);
        }
        json_array_foreach(x, i, val)
        {
            const char *s = json_string_value(val);
            _cleanup_free_ char *port =
                (k == 0 && !strchr(s, '/')) ? xasprintf("%s/tcp", s) : xstrdup(s);

            json_object_set_new(set, port, json_object());
        }
    }
    if ((x = json_object_get(c, "labels"))) {
        json_t *labels = json_object_get(ic, "Labels");

        if (!json_is_object(labels)) {
            labels = json_object();
            json_object_set_new(ic, "Labels", labels);
        }
        json_object_update(labels, x);
    }
    if ((x = json_object_get(c, "healthcheck"))) {
        json_t *hc = json_object(), *t = json_object_get(x, "test");
        static const char *const durations[][2] = {{"interval", "Interval"},
                                                   {"timeout", "Timeout"},
                                                   {"start_period", "StartPeriod"}};

        if (json_is_string(t))
            json_object_set_new(hc, "Test", json_pack("[s, O]", "CMD-SHELL", t));
        else
            json_object_set(hc, "Test", t);
        for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
            const char *d = oci_json_str(x, durations[i][0]);
            long long ns;

            if (d && spec_duration_parse(d, &ns) == 0)
                json_object_set_new(hc, durations[i][1], json_integer(ns));
        }
        if ((val = json_object_get(x, "retries")))
            json_object_set(hc, "Retries", val);
        json_object_set_new(ic, "Healthcheck", hc);
    }
    if ((x = json_object_get(c, "annotations")))
        json_object_update(img->annotations, x);
}

static int build_stage(struct build *b, size_t s, struct ocib_error *err)
{
    const struct spec_stage *st = &b->spec.stages[s];
    struct stage_image *si = &b->stages[s];
    struct oci_platform p;
    struct build_event ev = {.kind = BUILD_EVENT_STAGE, .stage = st->name};
    char pbuf[96];

    if (st->has_platform)
        p = st->platform;
    else if (b->o->has_platform)
        p = b->o->platform;
    else
        oci_platform_host(&p);
    oci_platform_format(&p, pbuf, sizeof(pbuf));
    snprintf(b->platform_str, sizeof(b->platform_str), "%s", pbuf);
    ev.text = pbuf;
    progress(b, &ev);
    if (load_base(b, s, &p, si, err) < 0)
        return -1;
    if (st->from.kind != SPEC_FROM_STAGE)
        stage_keys_base(si);
    for (size_t l = 0; l < st->n_layers; l++)
        if (build_layer(b, st, l, si, err) < 0)
            return -1;
    apply_config(b, st, &si->img);
    return 0;
}

/* The names an image gets: repository and tag for each. */
struct image_name {
    char *repo; /* NULL when unknown */
    char *tag;
};

static int image_names(struct build *b, struct image_name **ret, size_t *ret_n,
                       struct ocib_error *err)
{
    const struct build_options *o = b->o;
    struct image_name *names = xcalloc(o->n_tags + 1, sizeof(*names));
    size_t n = 0;

    for (size_t i = 0; i < o->n_tags; i++) {
        struct reference ref;

        if (reference_parse(o->tags[i], &ref, err) < 0) {
            for (size_t k = 0; k < n; k++) {
                free(names[k].repo);
                free(names[k].tag);
            }
            free(names);
            return ocib_error_wrap(err, "--tag");
        }
        names[n].repo = reference_name(&ref);
        names[n].tag = xstrdup(ref.tag ?: "latest");
        n++;
        reference_release(&ref);
    }
    if (n == 0) {
        const char *fallback = b->git_short ?: "latest";

        if (b->spec.image) {
            struct reference ref;
            const char *slash = strrchr(b->spec.image, '/');
            bool explicit_tag = strchr(slash ? slash : b->spec.image, ':') != NULL;

            if (reference_parse(b->spec.image, &ref, err) < 0) {
                free(names);
                return -1;
            }
            names[n].repo = reference_name(&ref);
            names[n].tag = xstrdup(explicit_tag && ref.tag ? ref.tag : fallback);
            reference_release(&ref);
        } else {
            names[n].tag = xstrdup(fallback);
        }
        n++;
    }
    *ret = names;
    *ret_n = n;
    return 0;
}

struct push_target {
    struct reference ref; /* registry and repository */
    char **tags;
    size_t n_tags, alloc_tags;
};

static void push_targets_free(struct push_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        reference_release(&t[i].ref);
        for (size_t k = 0; k < t[i].n_tags; k++)
            free(t[i].tags[k]);
        free(t[i].tags);
    }
    free(t);
}

static void push_target_add(struct push_target **list, size_t *n, size_t *alloc,
                            const struct reference *ref, const char *tag)
{
    struct push_target *t = NULL;

    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i].ref.registry, ref->registry) &&
            !strcmp((*list)[i].ref.repository, ref->repository))
            t = &(*list)[i];
    if (!t) {
        XGROW(*list, *alloc, *n + 1);
        t = &(*list)[(*n)++];
        memset(t, 0, sizeof(*t));
        t->ref.registry = xstrdup(ref->registry);
        t->ref.repository = xstrdup(ref->repository);
    }
    for (size_t k = 0; k < t->n_tags; k++)
        if (!strcmp(t->tags[k], tag))
            return;
    XGROW(t->tags, t->alloc_tags, t->n_tags + 1);
    t->tags[t->n_tags++] = xstrdup(tag);
}

/* Where --push sends the image: every --tag, else the spec's image tagged
 * with the git short SHA; "latest" never alone (the SHA is added). */
static int push_targets(struct build *b, struct push_target **ret, size_t *ret_n,
                        struct ocib_error *err)
{
    struct push_target *list = NULL;
    size_t n = 0, alloc = 0;

    for (size_t i = 0; i < b->o->n_tags; i++) {
        struct reference ref;

        if (reference_parse(b->o->tags[i], &ref, err) < 0) {
            push_targets_free(list, n);
            return ocib_error_wrap(err, "--tag");
        }
        if (ref.digest && !ref.tag) {
            reference_release(&ref);
            push_targets_free(list, n);
            return ocib_error_usage(
                err, "--tag %s: a digest cannot be pushed to; name a tag", b->o->tags[i]);
        }
        push_target_add(&list, &n, &alloc, &ref, ref.tag ?: "latest");
        reference_release(&ref);
    }
    if (n == 0) {
        struct reference ref;
        const char *slash;

        if (!b->spec.image)
            return ocib_error_usage(
                err, "--push: no --tag given and '%s' names no \"image\"", b->spec.file);
        if (!b->git_short)
            return ocib_error_usage(err,
                                    "--push: the context '%s' is not in a git checkout, so "
                                    "there is no commit to tag the image with; give --tag",
                                    b->ctx.dir);
        if (reference_parse(b->spec.image, &ref, err) < 0)
            return -1;
        push_target_add(&list, &n, &alloc, &ref, b->git_short);
        slash = strrchr(b->spec.image, '/');
        if (strchr(slash ? slash : b->spec.image, ':') && ref.tag)
            push_target_add(&list, &n, &alloc, &ref, ref.tag);
        reference_release(&ref);
    }
    for (size_t i = 0; i < n; i++) {
        bool only_latest = true;

        for (size_t k = 0; k < list[i].n_tags; k++)
            only_latest &= !strcmp(list[i].tags[k], "latest");
        if (!only_latest)
            continue;
        if (!b->git_short) {
            push_targets_free(list, n);
            return ocib_error_usage(err, "--push: 'latest' is pushed only alongside an "
                                         "immutable tag, and the context is not in a git "
                                         "checkout; add --tag with a version");
        }
        push_target_add(&list, &n, &alloc, &list[i].ref, b->git_short);
    }
    *ret = list;
    *ret_n = n;
    return 0;
}

/* The build read files the commit does not hold (b->ctx.dirty_read): the
 * commit's SHA would name other bytes.  A push tagged with it fails, naming
 * the files; otherwise the image just does not claim the commit: no revision
 * annotation, and a layout tag that fell back to the SHA becomes "latest". */
static int untrue_revision(struct build *b, const struct push_target *targets,
                           size_t n_targets, struct image_name **names, size_t *n_names,
                           struct ocib_error *err)
{
    struct strbuf files = STRBUF_INIT;
    size_t shown = sizeof(b->ctx.dirty_read) / sizeof(b->ctx.dirty_read[0]);
    bool sha_tag = false;

    for (size_t i = 0; i < b->ctx.n_dirty_read && i < shown; i++)
        strbuf_addf(&files, "%s%s", i ? ", " : "", b->ctx.dirty_read[i]);
    if (b->ctx.n_dirty_read > shown)
        strbuf_addf(&files, " and %zu more", b->ctx.n_dirty_read - shown);
    for (size_t i = 0; i < n_targets; i++)
        for (size_t k = 0; k < targets[i].n_tags; k++)
            sha_tag |= !strcmp(targets[i].tags[k], b->git_short);
    if (sha_tag) {
        ocib_error_set(
            err,
            "--push: commit %s does not hold every file the build read (modified "
            "or not committed: %s); commit them, or give --tag",
            b->git_short, files.buf);
        strbuf_release(&files);
        return -1;
    }
    {
        _cleanup_free_ char *text =
            xasprintf("not recording commit %s: the build read files it does not hold (%s)",
                      b->git_short, files.buf);
        struct build_event ev = {.kind = BUILD_EVENT_INFO, .text = text};

        progress(b, &ev);
    }
    strbuf_release(&files);
    for (size_t i = 0; i < *n_names; i++)
        if (!strcmp((*names)[i].tag, b->git_short)) {
            free((*names)[i].tag);
            (*names)[i].tag = xstrdup("latest");
        }
    free(b->git_full);
    b->git_full = NULL;
    return 0;
}

static int write_outputs(struct build *b, struct stage_image *si,
                         const struct oci_blob *config, const struct oci_blob *manifest,
                         const struct image_name *names, size_t n_names,
                         struct ocib_error *err)
{
    /* Layers that are still only in a registry are fetched once, into the
     * cache, verified. */
    for (size_t i = 0; b->o->n_outputs && i < si->n_srcs; i++)
        if (blob_source_ensure_local(&si->srcs[i], &b->cache, b->registries, err) < 0)
            return -1;
    for (size_t k = 0; k < b->o->n_outputs; k++) {
        const struct build_output *out = &b->o->outputs[k];
        struct build_event ev = {.kind = BUILD_EVENT_OUTPUT, .text = out->path};
        _cleanup_free_ char *pcopy = xstrdup(out->path);
        char *slash = strrchr(pcopy, '/');

        if (slash && slash != pcopy) {
            *slash = '\0';
            if (fs_mkdir_p(pcopy, 0755, err) < 0)
                return -1;
        }
        if (out->kind == BUILD_OUTPUT_OCI) {
            struct oci_layout_writer w;

            if (oci_layout_writer_begin(&w, out->path, err) < 0)
                return -1;
            for (size_t i = 0; i < si->img.n_layers; i++)
                if (oci_layout_writer_put_file(&w, si->srcs[i].path,
                                               &si->img.layers[i].desc.digest,
                                               si->srcs[i].verify, err) < 0)
                    goto oci_fail;
            if (oci_layout_writer_put_bytes(&w, config, err) < 0 ||
                oci_layout_writer_put_bytes(&w, manifest, err) < 0)
                goto oci_fail;
            for (size_t i = 0; i < n_names; i++) {
                bool dup = false;

                for (size_t j = 0; j < i; j++)
                    dup |= !strcmp(names[j].tag, names[i].tag);
                if (!dup)
                    oci_layout_writer_add_manifest(&w, manifest, names[i].tag);
            }
            if (oci_layout_writer_commit(&w, err) < 0)
                goto oci_fail;
            oci_layout_writer_release(&w);
            ev.status = "oci";
            progress(b, &ev);
            continue;
        oci_fail:
            oci_layout_writer_release(&w);
            return ocib_error_wrap(err, "output oci:%s", out->path);
        } else {
            _cleanup_free_ char **tags = xcalloc(n_names + 1, sizeof(char *));
            _cleanup_free_ char **paths = xcalloc(si->n_srcs + 1, sizeof(char *));
            _cleanup_free_ bool *verify = xcalloc(si->n_srcs + 1, sizeof(bool));
            size_t nt = 0;
            int r;

            for (size_t i = 0; i < si->n_srcs; i++) {
                paths[i] = si->srcs[i].path;
                verify[i] = si->srcs[i].verify;
            }
            for (size_t i = 0; i < n_names; i++)
                if (names[i].repo)
                    tags[nt++] = xasprintf("%s:%s", names[i].repo, names[i].tag);
            r = docker_archive_write(out->path, &si->img, config, manifest, paths, verify,
                                     tags, nt, b->epoch, err);
            for (size_t i = 0; i < nt; i++)
                free(tags[i]);
            if (r < 0)
                return -1;
            ev.status = "docker-archive";
            progress(b, &ev);
        }
    }
    return 0;
}

int build_run(const struct build_options *o, struct build_result *ret,
              struct ocib_error *err)
{
    struct build b = {.o = o};
    _cleanup_free_ char *spec_path = NULL;
    _cleanup_free_ char *cache_dir = NULL;
    _cleanup_free_ size_t *order = NULL;
    struct image_name *names = NULL;
    struct push_target *targets = NULL;
    size_t n_targets = 0;
    struct oci_blob config = {0}, manifest = {0};
    struct build_output default_out = {BUILD_OUTPUT_OCI, (char *)"ocib-out"};
    struct build_options o2;
    const char *ctx_dir = o->context_dir ?: ".";
    size_t n_order = 0, n_names = 0, target;
    int r = -1;

    context_release(&b.ctx);
    remote_cache_init(&b.remote);
    spec_path = o->spec_file ? xstrdup(o->spec_file) : fs_path_join(ctx_dir, "ocib.json");
    if (spec_load(&b.spec, spec_path, err) < 0)
        goto out;
    if (o->target) {
        int t = spec_stage_find(&b.spec, o->target);

        if (t < 0) {
            struct strbuf sb = STRBUF_INIT;

            for (size_t i = 0; i < b.spec.n_declared; i++)
                strbuf_addf(&sb, "%s%s", i ? ", " : "", b.spec.stages[i].name);
            ocib_error_usage(err, "--target %s: no such stage in '%s' (stages: %s)",
                             o->target, spec_path, strbuf_str(&sb));
            strbuf_release(&sb);
            goto out;
        }
        target = (size_t)t;
    } else {
        target = b.spec.n_declared - 1;
    }
    order = xcalloc(b.spec.n_stages, sizeof(*order));
    spec_stage_order(&b.spec, target, order, &n_order);
    if (o->has_epoch)
        b.epoch = o->epoch;
    oci_time_format(b.epoch, b.created);
    if (unpack_limits_init(&b.limits, err) < 0)
        goto out;
    if (check_secrets(&b, order, n_order, err) < 0)
        goto out;
    if (lock_load(&b.spec, &b.lock, err) < 0)
        goto out;
    if (o->locked && lock_check(b.lock, &b.spec, order, n_order,
                                o->has_platform ? &o->platform : NULL, err) < 0)
        goto out;
    if (!o->n_outputs && !o->push) {
        o2 = *o;
        o2.outputs = &default_out;
        o2.n_outputs = 1;
        b.o = &o2;
    }
    if (context_open(&b.ctx, ctx_dir, err) < 0)
        goto out;
    b.ctx.max_file = b.limits.max_layer_bytes;
    if (o->revision) {
        b.git_full = xstrdup(o->revision);
        b.git_short = xstrdup(o->revision_short ? o->revision_short : o->revision);
    } else if (git_head(ctx_dir, &b.git_full, &b.git_short) == 0) {
        b.dirty = git_dirty_load(ctx_dir);
        b.ctx.dirty = b.dirty;
        context_note_read(&b.ctx, spec_path);
        if (b.ctx.ignore_file) {
            _cleanup_free_ char *ig = fs_path_join(ctx_dir, b.ctx.ignore_file);

            context_note_read(&b.ctx, ig);
        }
    }
    if (image_names(&b, &names, &n_names, err) < 0)
        goto out;
    if (o->push && push_targets(&b, &targets, &n_targets, err) < 0)
        goto out;
    if (registries_new(o->insecure, o->n_insecure, &b.registries, err) < 0)
        goto out;
    for (size_t i = 0; i < o->n_cache_from; i++)
        if (remote_cache_load(&b.remote, b.registries, o->cache_from[i], err) < 0)
            goto out;
    cache_dir = o->cache_dir ? xstrdup(o->cache_dir) : cache_default_dir();
    if (cache_open(&b.cache, cache_dir, err) < 0)
        goto out;
    /* ocib's own outputs are never its input, wherever they are written. */
    for (size_t i = 0; i < b.o->n_outputs; i++)
        context_exclude_own(&b.ctx, b.o->outputs[i].path);
    context_exclude_own(&b.ctx, cache_dir);
    context_exclude_own(&b.ctx, o->digest_file);
    {
        char *abs = realpath(ctx_dir, NULL);

        b.stat = stat_cache_load(&b.cache, abs ? abs : ctx_dir);
        free(abs);
        b.spec_abs = realpath(spec_path, NULL);
        if (!b.spec_abs)
            b.spec_abs = xstrdup(spec_path);
    }
    {
        _cleanup_free_ char *text = xasprintf(
            "inputs: SOURCE_DATE_EPOCH=%lld, compression %s, ocib %s (output format %s)",
            (long long)b.epoch, layer_compression_settings(o->compression), OCIB_VERSION,
            OCIB_FORMAT_VERSION);
        struct build_event ev = {.kind = BUILD_EVENT_INFO, .text = text};

        progress(&b, &ev);
    }
    b.stages = xcalloc(b.spec.n_stages, sizeof(*b.stages));
    for (size_t i = 0; i < b.spec.n_stages; i++)
        rootfs_init(&b.stages[i].root);
    for (size_t k = 0; k < n_order; k++)
        if (build_stage(&b, order[k], err) < 0)
            goto out;
    if (b.ctx.n_dirty_read &&
        untrue_revision(&b, targets, n_targets, &names, &n_names, err) < 0)
        goto out;
    {
        struct oci_image *img = &b.stages[target].img;

        json_object_set_new(img->annotations, ANNOTATION_PREFIX "created",
                            json_string(b.created));
        if (b.git_full)
            json_object_set_new(img->annotations, ANNOTATION_PREFIX "revision",
                                json_string(b.git_full));
        /* What decides the digest besides the inputs, for auditors. */
        json_object_set_new(img->annotations, "dev.ocib.format",
                            json_string(OCIB_FORMAT_VERSION));
        json_object_set_new(img->annotations, "dev.ocib.compression",
                            json_string(layer_compression_settings(o->compression)));
        json_object_set_new(img->annotations, "dev.ocib.source-date-epoch",
                            json_sprintf("%lld", (long long)b.epoch));
        oci_image_serialize(img, &config, &manifest);
    }
    if (write_outputs(&b, &b.stages[target], &config, &manifest, names, n_names, err) < 0)
        goto out;
    for (size_t i = 0; i < n_targets; i++) {
        struct stage_image *si = &b.stages[target];
        _cleanup_free_ char *name = reference_name(&targets[i].ref);
        struct build_event ev = {
            .kind = BUILD_EVENT_OUTPUT, .status = "pushed", .text = name};

        if (remote_push_image(b.registries, &b.cache, targets[i].ref.registry,
                              targets[i].ref.repository, &si->img, si->srcs, &config,
                              &manifest, OCI_MT_MANIFEST, targets[i].tags,
                              targets[i].n_tags, err) < 0)
            goto out;
        progress(&b, &ev);
    }
    if (o->cache_to) {
        struct blob_source *all = NULL;
        size_t n_all = 0, alloc_all = 0;

        for (size_t k = 0; k < n_order; k++) {
            const struct stage_image *si = &b.stages[order[k]];

            for (size_t i = 0; i < si->n_srcs; i++) {
                XGROW(all, alloc_all, n_all + 1);
                all[n_all++] = si->srcs[i];
            }
        }
        r = remote_cache_push(&b.remote, b.registries, &b.cache, o->cache_to, all, n_all,
                              err);
        free(all);
        if (r < 0)
            goto out;
        r = -1;
    }
    stat_cache_save(b.stat, NULL);
    ret->digest = manifest.digest;
    if (n_targets) {
        _cleanup_free_ char *name = reference_name(&targets[0].ref);

        ret->reference = xasprintf("%s@%s", name, manifest.digest.str);
    } else {
        ret->reference = names[0].repo
                             ? xasprintf("%s@%s", names[0].repo, manifest.digest.str)
                             : xstrdup(manifest.digest.str);
    }
    r = 0;
out:
    for (size_t i = 0; i < n_names; i++) {
        free(names[i].repo);
        free(names[i].tag);
    }
    free(names);
    push_targets_free(targets, n_targets);
    registries_free(b.registries);
    stat_cache_free(b.stat);
    remote_cache_release(&b.remote);
    json_decref(b.lock);
    for (size_t i = 0; i < b.n_held; i++)
        close(b.held[i]);
    free(b.held);
    free(b.spec_abs);
    oci_blob_release(&config);
    oci_blob_release(&manifest);
    if (b.stages)
        for (size_t i = 0; i < b.spec.n_stages; i++) {
            rootfs_release(&b.stages[i].root, &b.cache, r == 0);
            stage_image_release(&b.stages[i]);
        }
    free(b.stages);
    free(b.git_full);
    free(b.git_short);
    git_dirty_free(b.dirty);
    cache_release(&b.cache);
    if (b.ctx.dir)
        context_release(&b.ctx);
    spec_release(&b.spec);
    return r;
}
