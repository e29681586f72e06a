/*
 * One layer of a stage: its inputs (context files, files of other stages or
 * images, or what a run step changed), its cache key, and on a miss its
 * blob; see driver.h.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "base/sha256.h"
#include "builder/cachekey.h"
#include "builder/run.h"
#include "cache/keys.h"
#include "cache/maint.h"
#include "layers/tree.h"
#include "oci/json.h"
#include "sandbox/sandbox.h"
#include "oci/mediatype.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
        size_t argc;
        char **argv = spec_command_exec_argv(&ly->run.command, &argc);

        strbuf_addstr(&sb, "ocib run");
        for (size_t i = 0; i < argc; i++)
            strbuf_addf(&sb, " %s", argv[i]);
        spec_strv_free(argv, argc);
    } else {
        strbuf_addstr(&sb, "ocib files");
        for (size_t f = 0; f < ly->n_files; f++)
            strbuf_addf(&sb, " %s", ly->files[f].path);
    }
    return strbuf_detach(&sb);
}

static uint64_t tree_bytes(const struct layer_tree *t)
{
    uint64_t total = 0;

    for (size_t i = 0; i < t->n; i++)
        if (S_ISREG(t->entries[i].mode))
            total += t->entries[i].size;
    return total;
}

static uint64_t writer_bytes(const struct build_meter *m)
{
    return layer_writer_tar_bytes(m->arg);
}

/* Writes the layer of tree t (layer ly of stage st) into the blob store;
 * fills in the content digests of the files it reads. */
static int write_layer(struct build *b, const struct spec_stage *st,
                       const struct spec_layer *ly, struct layer_tree *t, int src_dirfd,
                       struct cache_layer *ret, struct ocib_error *err)
{
    struct layer_writer *w = NULL;
    struct layer_result res;
    _cleanup_free_ char *tmp = NULL;
    struct build_meter m = {
        .read = writer_bytes, .total = tree_bytes(t), .unit = "compressed"};
    int fd = -1, r = -1;

    if (cache_tmp_create(&b->cache, &tmp, &fd, err) < 0 ||
        layer_writer_new(fd, b->o->compression, b->epoch, &w, err) < 0)
        goto out;
    m.arg = w;
    step_start(b, st->name, ly->name, "writing the layer", &m);
    r = layer_tree_write(t, src_dirfd, w, err) < 0 || layer_writer_finish(w, &res, err) < 0
            ? -1
            : 0;
    step_end(b, st->name, ly->name, "writing the layer", PHASE_LAYER);
    if (r < 0)
        goto out;
    r = -1;
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
    ret->entries = (int64_t)t->n;
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

/* What, besides the parent key, decides a layer: its definition, and for a
 * run layer the stage defaults and image config it runs with, and for
 * copies from stages the keys of those stages. */
static json_t *layer_def_input(struct build *b, const struct spec_stage *st,
                               const struct spec_layer *ly, const struct stage_image *si)
{
    json_t *in = json_pack("{s:O}", "layer", ly->def);

    if (ly->kind == SPEC_LAYER_RUN) {
        const json_t *ic = json_object_get(si->img.config, "config");
        json_t *x;

        json_t *args = json_object();

        for (size_t i = 0; i < st->args.n; i++)
            json_object_set_new(args, st->args.keys[i], json_string(st->args.values[i]));
        json_object_set_new(in, "args", args);
        if (st->env.set) {
            json_t *env = json_object();

            for (size_t i = 0; i < st->env.n; i++)
                json_object_set_new(env, st->env.keys[i], json_string(st->env.values[i]));
            json_object_set_new(in, "stage_env", env);
        }
        if (st->user)
            json_object_set_new(in, "stage_user", json_string(st->user));
        x = json_object_get(ic, "Env");
        if (x)
            json_object_set(in, "image_env", x);
        x = json_object_get(ic, "User");
        if (x)
            json_object_set(in, "image_user", x);
        x = json_object_get(ic, "WorkingDir");
        if (x)
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
            json_array_append_new(srcs,
                                  json_string(b->p->stages[cp->from.stage].top_key.str));
        }
    }
    return in;
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
        src = &b->p->stages[cp->from.stage];
        if (update_root(b, cp->from.text, src, err) < 0)
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
    for (size_t j = 0; j < b->p->spec.n_stages; j++)
        if (&b->p->stages[j] != si)
            rootfs_discard(&b->p->stages[j].root);
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
    uint64_t total = tree_bytes(t);

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
    struct spec_layer *ly = &b->p->spec.stages[st - b->p->spec.stages].layers[index];

    if (update_root(b, st->name, si, err) < 0)
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

/* One layer on its way through build_layer. */
struct layer_job {
    struct build *b;
    const struct spec_stage *st;
    const struct spec_layer *ly;
    size_t index;
    struct stage_image *si;
    struct layer_tree t; /* the layer's entries */
    size_t missing;      /* regular files without a content digest yet */
    bool from_stage;     /* copies from another stage */
    bool named;          /* owners given as names, resolved in the root */
    bool in_place;       /* the run step changed a file in place */
    struct oci_digest def, key;
    int lock; /* the key's lock, -1 while the key is unknown */
    bool hit, remote_hit;
    struct cache_layer cl;
    struct blob_source remote_src; /* when the hit is from --cache-from */
    char *inputs;                  /* the inputs record, see cachekey.h */
    char *corrupt;                 /* why a cached blob was not used */
    json_t *stages;                /* {stage name: key} of the stages it copies from */
};

/* Content digests of unchanged context files come from the stat cache and
 * of inline files from their bytes; counts the files still without one. */
static void digests_known(struct layer_job *j)
{
    j->missing = 0;
    for (size_t i = 0; i < j->t.n; i++) {
        struct layer_tree_entry *e = &j->t.entries[i];
        const char *hex;

        if (!S_ISREG(e->mode) || e->digest[0])
            continue;
        if (!e->src) {
            struct oci_digest d;

            oci_digest_of(e->data ? e->data : "", e->size, &d);
            memcpy(e->digest, oci_digest_hex(&d), sizeof(e->digest));
            continue;
        }
        hex = e->has_st ? stat_cache_lookup(j->b->stat, e->src, &e->st) : NULL;
        if (hex)
            memcpy(e->digest, hex, sizeof(e->digest));
        else
            j->missing++;
    }
}

/* Hashes the files still missing a digest, then takes the key and its lock. */
static int key_and_lock(struct layer_job *j, struct ocib_error *err)
{
    struct build *b = j->b;

    if (j->missing && layer_tree_hash_files(&j->t, b->ctx.fd, remember_digest, b, err) < 0)
        return -1;
    j->missing = 0;
    cachekey_layer(&j->def, &j->t, &j->key);
    return cache_lock(&b->cache, &j->key, &j->lock, err);
}

/* Looks the key up in the local cache, then in --cache-from. */
static int lookup(struct layer_job *j, struct ocib_error *err)
{
    struct build *b = j->b;

    if (b->o->no_cache)
        return 0;
    if (cache_key_get(&b->cache, &j->key, &j->cl, err) > 0) {
        /* A cached blob is checked before it is trusted: a corrupt one is
         * removed, and the layer rebuilt. */
        int bad = cache_blob_verify_fast(&b->cache, &j->cl.digest, err);

        if (bad < 0)
            return -1;
        if (!bad) {
            j->hit = true;
            return 0;
        }
        j->corrupt =
            xasprintf("cached blob %s was corrupt: removed, rebuilding", j->cl.digest.str);
    }
    if (remote_cache_lookup(&b->remote, &b->cache, &j->key, &j->cl, &j->remote_src)) {
        j->hit = true;
        j->remote_hit = true;
    }
    return 0;
}

/* A copy onto a base writes where the base's symlinks lead: retargets the
 * entries, keeping the key and inputs record of the paths as written. */
static int follow_base_symlinks(struct layer_job *j, struct ocib_error *err)
{
    char **paths = NULL;
    bool changed = false;

    if (dest_paths(j->b, j->si, &j->t, &paths, &changed, err) < 0)
        return -1;
    if (!changed) {
        paths_free(paths, j->t.n);
        return 0;
    }
    if (j->missing && key_and_lock(j, err) < 0) {
        paths_free(paths, j->t.n);
        return -1;
    }
    if (!j->inputs)
        j->inputs = cachekey_inputs_record(&j->t);
    layer_tree_retarget(&j->t, paths); /* takes the strings */
    free(paths);
    return 0;
}

/* On a miss: runs the step or copies the files, writes the blob and stores
 * it under the key. */
static int make_layer(struct layer_job *j, struct ocib_error *err)
{
    struct build *b = j->b;
    const struct spec_layer *ly = j->ly;
    int src_dirfd = b->ctx.fd;

    /* Owner names are resolved only now: the key holds them as written,
     * which with the parent key decides the ids. */
    if (j->named) {
        if (resolve_owners(b, j->st, j->index, j->si, err) < 0)
            return -1;
        j->inputs = cachekey_inputs_record(&j->t); /* as a hit records them */
        layer_tree_release(&j->t);
        layer_tree_init(&j->t);
        if (layer_inputs(b, j->st, ly, &j->t, &j->from_stage, err) < 0)
            return -1;
    }
    if (ly->kind == SPEC_LAYER_RUN) {
        if (run_step(b, j->st, ly, j->si, &j->t, &j->in_place, err) < 0) {
            if (j->in_place)
                taint_roots(b, j->si);
            return -1;
        }
        src_dirfd = j->si->root.fd;
    } else if (j->from_stage) {
        layer_tree_release(&j->t);
        layer_tree_init(&j->t);
        if (copy_with_stages(b, j->st, ly, &j->t, err) < 0 ||
            check_layer_bytes(b, j->st, ly, &j->t, err) < 0)
            return -1;
    }
    if (ly->kind != SPEC_LAYER_RUN && j->si->img.n_layers > 0 &&
        follow_base_symlinks(j, err) < 0)
        return -1;
    if (write_layer(b, j->st, ly, &j->t, src_dirfd, &j->cl, err) < 0)
        return -1;
    if (j->missing) {
        /* The one pass that wrote the blob hashed the files. */
        for (size_t i = 0; i < j->t.n; i++)
            remember_digest(b, &j->t.entries[i]);
        j->missing = 0;
        if (key_and_lock(j, err) < 0)
            return -1;
    }
    if (cache_key_put(&b->cache, &j->key, &j->cl, err) < 0 ||
        cache_def_mark(&b->cache, &j->def, err) < 0)
        return -1;
    return 0;
}

/* Records the layer's inputs for the next explanation, unless a hit on the
 * state the record describes makes that a rewrite of the same. */
static void record_inputs(struct layer_job *j, const char *slot)
{
    struct cache *c = &j->b->cache;
    json_t *record;

    if (j->hit && cache_record_has_key(c, slot, &j->key))
        return;
    record = json_pack("{s:s, s:s, s:s, s:s}", "parent", j->si->top_key.str, "def",
                       j->def.str, "key", j->key.str, "inputs", j->inputs);
    if (j->stages)
        json_object_set(record, "stages", j->stages);
    cache_record_put(c, slot, record, NULL);
    json_decref(record);
}

/* Puts the layer on the stage's image: history, blob source, keys, and for
 * a run step the root's new state. */
static void add_to_image(struct layer_job *j)
{
    struct build *b = j->b;
    struct stage_image *si = j->si;
    struct oci_layer l = {
        .desc = {.media_type = j->cl.media_type,
                 .digest = j->cl.digest,
                 .size = j->cl.size},
        .diff_id = j->cl.diff_id,
    };
    _cleanup_free_ char *created_by = describe_layer(j->ly);

    oci_image_add_layer(&si->img, &l, b->created, created_by, j->ly->name);
    if (j->remote_hit) {
        stage_image_add_src(si, &j->remote_src);
    } else {
        _cleanup_free_ char *blob = cache_blob_path(&b->cache, &j->cl.digest);

        stage_image_add_path(si, si->img.n_layers - 1, blob, false);
        hold_blob(b, &j->cl.digest);
    }
    if (b->o->cache_to)
        remote_cache_add(&b->remote, &j->key, &j->def, &j->cl);
    si->top_key = j->key;
    stage_keys_push(si, &j->key);
    if (j->ly->kind == SPEC_LAYER_RUN && !j->hit) {
        rootfs_advance(&si->root, si->img.n_layers, &j->key);
        /* Keep the state after a run step for the next build (a source
         * change after it then starts here), unless the step changed a file
         * in place, which kept roots sharing its inode would see. */
        if (j->in_place)
            taint_roots(b, si);
        else
            rootfs_save(&si->root, &b->cache);
    }
}

/* {stage name: key} of the stages layer ly copies from, or NULL. */
static json_t *source_stages(const struct build *b, const struct spec_layer *ly)
{
    json_t *o = NULL;

    for (size_t c = 0; c < ly->n_copies; c++) {
        const struct spec_copy *cp = &ly->copies[c];

        if (!cp->has_from || cp->from.kind != SPEC_FROM_STAGE)
            continue;
        if (!o)
            o = json_object();
        json_object_set_new(o, b->p->spec.stages[cp->from.stage].name,
                            json_string(b->p->stages[cp->from.stage].top_key.str));
    }
    return o;
}

/* Why a layer missed: a stage it copies from that changed since the last
 * build of its slot comes before "definition changed in the spec", which
 * its key (holding the stage's) would otherwise say. */
static char *explain_miss(const struct layer_job *j, const json_t *last, size_t index)
{
    const json_t *was = json_object_get(last, "stages");
    const char *name;
    json_t *key;

    if (last && j->stages && json_is_object(was) &&
        !strcmp(json_string_value(json_object_get(last, "parent")) ?: "",
                j->si->top_key.str)) {
        json_object_foreach(j->stages, name, key)
        {
            if (!json_equal(key, json_object_get(was, name)))
                return xasprintf("stage %s, which it copies from, changed", name);
        }
    }
    return cachekey_explain_miss(last, &j->si->top_key, &j->def, j->inputs, index == 0);
}

/* The layer's start, with what it does ("run /bin/sh -c make"). */
static void announce_layer(struct build *b, const struct spec_stage *st,
                           const struct spec_layer *ly)
{
    _cleanup_free_ char *what = describe_layer(ly);
    struct build_event ev = {.kind = BUILD_EVENT_LAYER_START,
                             .stage = st->name,
                             .layer = ly->name,
                             .text = what + strlen("ocib ")};

    progress(b, &ev);
}

int build_layer(struct build *b, const struct spec_stage *st, size_t index,
                struct stage_image *si, struct ocib_error *err)
{
    struct layer_job j = {
        .b = b, .st = st, .ly = &st->layers[index], .index = index, .si = si, .lock = -1};
    const struct spec_layer *ly = j.ly;
    struct build_event ev = {
        .kind = BUILD_EVENT_LAYER, .stage = st->name, .layer = ly->name, .status = "built"};
    _cleanup_free_ char *slot = NULL;
    _cleanup_free_ char *reason = NULL;
    json_t *last = NULL, *def_input = NULL;
    double t0 = build_now(), before[PHASE_N], phases[PHASE_N];
    int r = -1;

    memcpy(before, b->phase, sizeof(before));
    announce_layer(b, st, ly);
    layer_tree_init(&j.t);
    j.named = has_owner_names(ly);
    /* The inputs that decide the key: context files now; a run layer's
     * result and files copied from a stage are decided by their stage's
     * key, so neither needs the stage's root unless the key misses. */
    if (layer_inputs(b, st, ly, &j.t, &j.from_stage, err) < 0 ||
        check_layer_bytes(b, st, ly, &j.t, err) < 0)
        goto out;
    layer_tree_finalise(&j.t);
    digests_known(&j);
    def_input = layer_def_input(b, st, ly, si);
    j.stages = source_stages(b, ly);
    /* Only what a command makes depends on the platform: a copy or files
     * layer is the same bytes for every platform over the same parent, so
     * a second platform finds the first's in the cache. */
    cachekey_def(&si->top_key, def_input, ly->kind == SPEC_LAYER_RUN ? b->platform_str : "",
                 layer_compression_settings(b->o->compression), b->epoch, st->workdir,
                 &j.def);
    /* Hash first only when a hit is possible: some key was stored under
     * this definition.  Otherwise the layer is built in one pass that
     * hashes its files on the way. */
    if (!j.missing || j.named ||
        (!b->o->no_cache && (cache_def_seen(&b->cache, &j.def) ||
                             remote_cache_def_seen(&b->remote, &j.def)))) {
        if (key_and_lock(&j, err) < 0 || lookup(&j, err) < 0)
            goto out;
    }
    slot = xasprintf("%s\n%s\n%zu\n%s", b->spec_abs, st->name, index, b->platform_str);
    if (!j.hit) {
        last = cache_record_get(&b->cache, slot);
        if (make_layer(&j, err) < 0)
            goto out;
    }
    if (!j.inputs)
        j.inputs = cachekey_inputs_record(&j.t);
    if (!j.hit) {
        reason = b->o->no_cache ? xstrdup("--no-cache")
                 : j.corrupt    ? TAKE_PTR(j.corrupt)
                                : explain_miss(&j, last, index);
        ev.text = reason;
    } else {
        ev.status = "cached";
        if (j.remote_hit)
            ev.text = "from --cache-from";
    }
    record_inputs(&j, slot);
    add_to_image(&j);
    ev.digest = j.cl.digest.str;
    ev.size = (uint64_t)j.cl.size;
    ev.files = j.hit && j.cl.entries >= 0 ? (uint64_t)j.cl.entries : j.t.n;
    ev.seconds = build_now() - t0;
    for (size_t k = 0; k < PHASE_N; k++)
        phases[k] = b->phase[k] - before[k];
    ev.phases = phases;
    progress(b, &ev);
    r = 0;
out:
    json_decref(def_input);
    blob_source_release(&j.remote_src);
    cache_unlock(j.lock);
    json_decref(last);
    json_decref(j.stages);
    layer_tree_release(&j.t);
    free(j.inputs);
    free(j.corrupt);
    if (r < 0)
        ocib_error_wrap(err, "stage %s, layer %s", st->name, ly->name);
    return r;
}
