/*
 * One stage's image: its base (scratch, a registry image, a layout, a
 * docker-archive or another stage), its layers in order, its config; see
 * driver.h.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "builder/run.h"
#include "cache/keys.h"
#include "spec/lock.h"
#include "transport/archive.h"
#include "transport/source.h"
#include "builder/cachekey.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/mediatype.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void stage_keys_push(struct stage_image *si, const struct oci_digest *key)
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

/* Records where layer (the one just added to si->img) can be read. */
void stage_image_add_src(struct stage_image *si, const struct blob_source *src)
{
    XGROW(si->srcs, si->alloc_srcs, si->n_srcs + 1);
    blob_source_copy(src, &si->srcs[si->n_srcs++]);
}

void stage_image_add_path(struct stage_image *si, size_t layer, const char *path,
                          bool verify)
{
    struct blob_source b;

    blob_source_init_local(&b, &si->img.layers[layer].desc.digest,
                           si->img.layers[layer].desc.size, path, verify);
    stage_image_add_src(si, &b);
    blob_source_release(&b);
}

void stage_image_release(struct stage_image *si)
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
int check_secrets(struct build *b, const size_t *order, size_t n, struct ocib_error *err)
{
    for (size_t k = 0; k < n; k++) {
        const struct spec_stage *st = &b->p->spec.stages[order[k]];

        for (size_t l = 0; l < st->n_layers; l++) {
            const struct spec_layer *ly = &st->layers[l];

            for (size_t i = 0; i < ly->run.n_secrets; i++) {
                const char *id = ly->run.secrets[i].id;
                bool given = false;

                for (size_t j = 0; j < b->o->n_secrets; j++)
                    given |= !strcmp(b->o->secrets[j].id, id);
                if (!given)
                    return ocib_error_usage(err,
                                            "%s: %s.secrets[%zu]: secret '%s' was not "
                                            "given; pass --secret id=%s,src=PATH",
                                            b->p->spec.file, ly->where, i, id, id);
            }
        }
    }
    return 0;
}

/* A base image must be of the platform the stage builds. */
static int check_base_platform(const struct spec_stage *st, const struct stage_image *si,
                               const struct oci_platform *p, struct ocib_error *err)
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
    return 0;
}

static int load_base(struct build *b, size_t s, const struct oci_platform *p,
                     struct stage_image *si, struct ocib_error *err)
{
    const struct spec_stage *st = &b->p->spec.stages[s];
    struct build_event ev = {.kind = BUILD_EVENT_BASE, .stage = st->name};
    struct oci_digest base_digest = {""};
    _cleanup_free_ char *text = NULL;

    switch (st->from.kind) {
    case SPEC_FROM_SCRATCH: {
        /* No layers: nothing of scratch depends on the platform (the
         * config, which does, is not cached). */
        oci_image_init(&si->img, p);
        si->built = true;
        cachekey_base("scratch", &si->top_key);
        return 0;
    }
    case SPEC_FROM_STAGE: {
        struct stage_image *from = &b->p->stages[st->from.stage];

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
        _cleanup_free_ char *step = xasprintf("resolving base %s", st->from.text);
        struct build_meter m;
        int rc;

        registry_meter(b, true, &m);
        step_start(b, st->name, NULL, step, &m);
        rc = image_source_open(pinned ? pinned : st->from.text,
                               b->o->image_dir ? b->o->image_dir : b->ctx.dir, &b->cache,
                               b->registries, p, &src, err);
        step_end(b, st->name, NULL, step, PHASE_RESOLVE);
        if (rc < 0)
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
        if (src.mirror) {
            char *via =
                xasprintf("%s (through mirror %s)", ev.text ?: st->from.text, src.mirror);

            free(text);
            ev.text = text = via;
        }
        image_source_release(&src);
        break;
    }
    default:
        return ocib_error_set(err, "%s.from: unsupported base", st->where);
    }
    if (check_base_platform(st, si, p, err) < 0)
        return -1;
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

/* A command as the image config holds it: a shell string runs as
 * shell_form ({"/bin/sh", "-c"} or {"CMD-SHELL"}), a list as written. */
static json_t *command_json(const struct spec_command *c, const char *const *shell_form,
                            size_t n_shell)
{
    json_t *a = json_array();

    for (size_t i = 0; c->shell && i < n_shell; i++)
        json_array_append_new(a, json_string(shell_form[i]));
    for (size_t i = 0; i < c->argc; i++)
        json_array_append_new(a, json_string(c->argv[i]));
    return a;
}

/* The object at key of ic, made when it is missing or not an object. */
static json_t *object_at(json_t *ic, const char *key)
{
    json_t *o = json_object_get(ic, key);

    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(ic, key, o);
    }
    return o;
}

/* Sets each of m in the image's Env list: a name already there keeps its
 * place (its first entry is replaced), a new one is appended. */
static void merge_env(json_t *ic, const struct spec_map *m)
{
    json_t *env = json_object_get(ic, "Env");
    json_t *where = json_object(); /* name -> index of its first entry */
    json_t *val;
    size_t i;

    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(ic, "Env", env);
    }
    json_array_foreach(env, i, val)
    {
        const char *e = json_string_value(val), *eq = e ? strchr(e, '=') : NULL;

        if (eq) {
            _cleanup_free_ char *name = xstrndup(e, (size_t)(eq - e));

            if (!json_object_get(where, name))
                json_object_set_new(where, name, json_integer((json_int_t)i));
        }
    }
    for (i = 0; i < m->n; i++) {
        _cleanup_free_ char *kv = xasprintf("%s=%s", m->keys[i], m->values[i]);
        json_t *at = json_object_get(where, m->keys[i]);

        if (at) {
            json_array_set_new(env, (size_t)json_integer_value(at), json_string(kv));
        } else {
            json_object_set_new(where, m->keys[i],
                                json_integer((json_int_t)json_array_size(env)));
            json_array_append_new(env, json_string(kv));
        }
    }
    json_decref(where);
}

/* Sets each of m in the object o. */
static void merge_map(json_t *o, const struct spec_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->keys[i], json_string(m->values[i]));
}

/* Adds each of list (NULL: not given) as a key of the set at ikey
 * ({"80/tcp": {}}); ports: a port without a protocol is tcp. */
static void add_to_set(json_t *ic, const char *ikey, char *const *list, size_t n,
                       bool ports)
{
    json_t *set;

    if (!list)
        return;
    set = object_at(ic, ikey);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *key = (ports && !strchr(list[i], '/'))
                                       ? xasprintf("%s/tcp", list[i])
                                       : xstrdup(list[i]);

        json_object_set_new(set, key, json_object());
    }
}

/* The image config's Healthcheck from the spec's (durations in ns). */
static json_t *healthcheck_of(const struct spec_healthcheck *h)
{
    static const char *const cmd_shell[] = {"CMD-SHELL"};
    const struct {
        const char *key;
        long long ns;
    } durations[] = {{"Interval", h->interval},
                     {"Timeout", h->timeout},
                     {"StartPeriod", h->start_period}};
    json_t *hc = json_object();

    json_object_set_new(hc, "Test",
                        command_json(&h->test, cmd_shell, ARRAY_SIZE(cmd_shell)));
    for (size_t i = 0; i < ARRAY_SIZE(durations); i++)
        if (durations[i].ns >= 0)
            json_object_set_new(hc, durations[i].key, json_integer(durations[i].ns));
    if (h->retries >= 0)
        json_object_set_new(hc, "Retries", json_integer(h->retries));
    return hc;
}

/* Merges the stage's "config" into the image config. */
static void apply_config(struct build *b, const struct spec_stage *st,
                         struct oci_image *img)
{
    static const char *const sh_c[] = {"/bin/sh", "-c"};
    const struct spec_config *c = &st->config;
    const struct {
        const char *key;
        const char *value;
    } strings[] = {
        {"User", c->user}, {"WorkingDir", c->workdir}, {"StopSignal", c->stop_signal}};
    json_t *ic;

    json_object_set_new(img->config, "created", json_string(b->created));
    ic = object_at(img->config, "config");
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
        if (strings[i].value)
            json_object_set_new(ic, strings[i].key, json_string(strings[i].value));
    if (c->entrypoint.set) {
        json_object_set_new(ic, "Entrypoint", command_json(&c->entrypoint, sh_c, 2));
        if (!c->cmd.set)
            json_object_del(ic, "Cmd");
    }
    if (c->cmd.set)
        json_object_set_new(ic, "Cmd", command_json(&c->cmd, sh_c, 2));
    if (c->env.set)
        merge_env(ic, &c->env);
    add_to_set(ic, "ExposedPorts", c->expose, c->n_expose, true);
    add_to_set(ic, "Volumes", c->volumes, c->n_volumes, false);
    if (c->labels.set)
        merge_map(object_at(ic, "Labels"), &c->labels);
    if (c->healthcheck.set)
        json_object_set_new(ic, "Healthcheck", healthcheck_of(&c->healthcheck));
    merge_map(img->annotations, &c->annotations);
}

int build_stage(struct build *b, size_t s, struct ocib_error *err)
{
    const struct spec_stage *st = &b->p->spec.stages[s];
    struct stage_image *si = &b->p->stages[s];
    struct oci_platform p;
    struct build_event ev = {.kind = BUILD_EVENT_STAGE, .stage = st->name};
    _cleanup_free_ char *text = NULL;
    char pbuf[96];

    if (st->has_platform)
        p = st->platform;
    else
        p = b->p->platform;
    oci_platform_format(&p, pbuf, sizeof(pbuf));
    snprintf(b->platform_str, sizeof(b->platform_str), "%s", pbuf);
    ev.text = pbuf;
    if (st->build_platform && b->n_plats > 1) {
        char target[96];

        /* Built on this machine once per target: say which target. */
        oci_platform_format(&b->p->platform, target, sizeof(target));
        text = xasprintf("%s, for %s", pbuf, target);
        ev.text = text;
    }
    progress(b, &ev);
    if (load_base(b, s, &p, si, err) < 0)
        return -1;
    if (st->from.kind != SPEC_FROM_STAGE)
        stage_keys_base(si);
    for (size_t l = 0; l < st->n_layers; l++)
        if (build_layer(b, st, l, si, err) < 0)
            return -1;
    apply_config(b, st, &si->img);
    if (s == b->p->target && check_config_user(b, s, err) < 0)
        return -1;
    return 0;
}
