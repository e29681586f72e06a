/*
 * Spec parsing and validation; see spec.h.
 *
 * Validation walks the document once.  Each check knows the value's key path
 * and the position of its key (or array element) in the file, so every
 * message points at the exact place to fix.
 */
#include "spec/spec.h"
#include "spec/check.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "transport/name.h"
#include <ctype.h>
#include <libgen.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define SPEC_MAX_BYTES (4 * 1024 * 1024)

#define SPEC_MAX_STAGES 64

/* A stage's "platform": os/arch[/variant], or "build" (the machine's own;
 * the TARGET* arguments still name each target). */
static int parse_platform(struct vctx *v, const json_t *j, const char *path,
                          const json_t *x, struct spec_stage *s)
{
    _cleanup_at_ struct at a = spec_at_key(v, j, path, "platform");
    struct ocib_error perr = OCIB_ERROR_INIT;

    if (spec_expect_string(v, &a, x, true) < 0)
        return -1;
    if (!strcmp(json_string_value(x), "build")) {
        oci_platform_host(&s->platform);
        s->build_platform = true;
    } else if (oci_platform_parse(json_string_value(x), &s->platform, &perr) < 0) {
        return spec_fail(v, &a, "%s", perr.msg);
    }
    s->has_platform = true;
    return 0;
}

static int parse_stage(struct vctx *v, json_t *j, const char *path, const struct at *at,
                       size_t index, struct spec_stage *s)
{
    static const char *const keys[] = {"name",     "from",   "workdir", "env", "user",
                                       "platform", "layers", "config",  NULL};
    json_t *x, *layers, *item;
    size_t i;

    memset(s, 0, sizeof(*s));
    s->where = xstrdup(path);
    if (spec_expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, j, path, keys) < 0)
        return -1;
    x = json_object_get(j, "name");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "name");

        if (spec_expect_string(v, &a, x, true) < 0)
            return -1;
        if (!spec_stage_name_ok(json_string_value(x)) ||
            !strcmp(json_string_value(x), "scratch"))
            return spec_fail(v, &a,
                             "invalid stage name \"%s\": use lowercase letters, digits, "
                             "'.', '_' and '-'",
                             json_string_value(x));
        s->name = xstrdup(json_string_value(x));
    } else {
        s->name = xasprintf("%zu", index);
    }
    x = json_object_get(j, "from");
    if (!x)
        return spec_fail(v, at, "missing required key \"from\"");
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "from");

        if (spec_parse_from(v, &a, x, false, &s->from) < 0)
            return -1;
    }
    x = json_object_get(j, "workdir");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "workdir");

        if (spec_expect_string(v, &a, x, true) < 0)
            return -1;
        s->workdir = xstrdup(json_string_value(x));
    }
    x = json_object_get(j, "user");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "user");

        if (spec_expect_string(v, &a, x, true) < 0 ||
            spec_check_ids(v, &a, json_string_value(x), "user") < 0)
            return -1;
        s->user = xstrdup(json_string_value(x));
    }
    x = json_object_get(j, "env");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "env");

        if (spec_expect_string_map(v, &a, x, spec_env_name_ok,
                                   "environment variable name") < 0)
            return -1;
        spec_map_dup(x, &s->env);
    }
    x = json_object_get(j, "platform");
    if (x && parse_platform(v, j, path, x, s) < 0)
        return -1;
    x = json_object_get(j, "config");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "config");

        if (spec_parse_config(v, x, a.path, &a, &s->config) < 0)
            return -1;
    }
    layers = json_object_get(j, "layers");
    if (layers) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "layers");

        if (spec_expect_type(v, &a, layers, JSON_ARRAY, "an array") < 0)
            return -1;
        s->layers = xcalloc(json_array_size(layers) + 1, sizeof(*s->layers));
        json_array_foreach(layers, i, item)
        {
            _cleanup_at_ struct at b = spec_at_index(v, layers, a.path, i);

            s->n_layers = i + 1;
            if (spec_parse_layer(v, item, b.path, &b, i, &s->layers[i]) < 0)
                return -1;
        }
    }
    return 0;
}

/* Turns names of stages in "from" fields into stage references. */
/* The declared stage a bare name (no registry, tag or digest) is one or two
 * edits away from, or NULL. */
static const char *near_stage(const struct spec *spec, const char *name)
{
    if (strpbrk(name, "/:@"))
        return NULL;
    for (size_t i = 0; i < spec->n_stages; i++) {
        const char *s = spec->stages[i].name;

        if (strlen(s) >= 3 && spec_edit_distance(name, s) <= 2)
            return s;
    }
    return NULL;
}

static int resolve_stage_ref(struct vctx *v, struct spec_from *f, const json_t *obj,
                             const char *path, size_t self)
{
    int idx;

    if (f->kind != SPEC_FROM_REGISTRY)
        return 0;
    idx = spec_stage_find(v->spec, f->text);
    if (idx < 0) {
        _cleanup_at_ struct at a = spec_at_key(v, obj, path, "from");
        const char *near = near_stage(v->spec, f->text);

        if (!f->ref.repository)
            return spec_fail(v, &a, "\"%s\" is neither a stage nor a valid image reference",
                             f->text);
        /* A typo of a stage name would otherwise be pulled from Docker Hub. */
        if (near)
            return spec_fail(v, &a,
                             "\"%s\" is not a stage; did you mean the stage \"%s\"? (for "
                             "the registry image write docker.io/library/%s)",
                             f->text, near, f->text);
        return 0;
    }
    if ((size_t)idx == self) {
        _cleanup_at_ struct at a = spec_at_key(v, obj, path, "from");

        return spec_fail(v, &a, "stage cycle: stage \"%s\" uses itself", f->text);
    }
    reference_release(&f->ref);
    f->kind = SPEC_FROM_STAGE;
    f->stage = (size_t)idx;
    return 0;
}

/* Depth-first search for a cycle through stage dependencies. */
static int find_cycle(const struct spec *spec, size_t s, int *state, size_t *stack,
                      size_t depth, struct strbuf *ret_path)
{
    state[s] = 1;
    stack[depth] = s;
    const struct spec_stage *st = &spec->stages[s];
    size_t deps[1 + 1024], nd = 0;

    if (st->from.kind == SPEC_FROM_STAGE)
        deps[nd++] = st->from.stage;
    for (size_t l = 0; l < st->n_layers; l++)
        for (size_t c = 0; c < st->layers[l].n_copies && nd < ARRAY_SIZE(deps); c++)
            if (st->layers[l].copies[c].has_from &&
                st->layers[l].copies[c].from.kind == SPEC_FROM_STAGE)
                deps[nd++] = st->layers[l].copies[c].from.stage;
    for (size_t i = 0; i < nd; i++) {
        if (state[deps[i]] == 1) {
            size_t k = 0;

            while (stack[k] != deps[i])
                k++;
            for (; k <= depth; k++)
                strbuf_addf(ret_path, "%s -> ", spec->stages[stack[k]].name);
            strbuf_addstr(ret_path, spec->stages[deps[i]].name);
            return -1;
        }
        if (state[deps[i]] == 0 &&
            find_cycle(spec, deps[i], state, stack, depth + 1, ret_path) < 0)
            return -1;
    }
    state[s] = 2;
    return 0;
}

static int check_graph(struct vctx *v, const json_t *stages)
{
    struct spec *spec = v->spec;

    for (size_t i = 0; i < spec->n_stages; i++) {
        struct spec_stage *st = &spec->stages[i];
        json_t *sj = json_array_get(stages, i);

        for (size_t k = 0; k < i; k++)
            if (!strcmp(spec->stages[k].name, st->name)) {
                _cleanup_at_ struct at a = spec_at_key(v, sj, st->where, "name");

                return spec_fail(v, &a, "duplicate stage name \"%s\"", st->name);
            }
        if (resolve_stage_ref(v, &st->from, sj, st->where, i) < 0)
            return -1;
        for (size_t l = 0; l < st->n_layers; l++) {
            for (size_t c = 0; c < st->layers[l].n_copies; c++) {
                struct spec_copy *cp = &st->layers[l].copies[c];
                json_t *cj = json_array_get(
                    json_object_get(json_array_get(json_object_get(sj, "layers"), l),
                                    "copy"),
                    c);

                if (cp->has_from && resolve_stage_ref(v, &cp->from, cj, cp->where, i) < 0)
                    return -1;
            }
        }
    }
    {
        _cleanup_free_ int *state = xcalloc(spec->n_stages, sizeof(int));
        _cleanup_free_ size_t *stack = xcalloc(spec->n_stages + 1, sizeof(size_t));
        _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;

        for (size_t i = 0; i < spec->n_stages; i++) {
            if (state[i] == 0 && find_cycle(spec, i, state, stack, 0, &path) < 0) {
                struct at a = {"stages",
                               json_doc_key_pos(&spec->doc, spec->doc.root, "stages")};

                return spec_fail(v, &a, "stage cycle: %s", strbuf_str(&path));
            }
        }
    }
    return 0;
}

/* A copy `from` an image reads that image's file system as a stage with
 * no layers would: one such stage is added per image named (by the text
 * written), and the copies point at it, so that the image is loaded,
 * locked, unpacked and keyed like any stage's base. */
static void add_image_stages(struct spec *spec)
{
    spec->n_declared = spec->n_stages;
    for (size_t i = 0; i < spec->n_declared; i++) {
        for (size_t l = 0; l < spec->stages[i].n_layers; l++) {
            struct spec_layer *ly = &spec->stages[i].layers[l];

            for (size_t c = 0; c < ly->n_copies; c++) {
                struct spec_from *f = &ly->copies[c].from;
                size_t k;

                if (!ly->copies[c].has_from || f->kind == SPEC_FROM_STAGE)
                    continue;
                for (k = spec->n_declared; k < spec->n_stages; k++)
                    if (!strcmp(spec->stages[k].from.text, f->text))
                        break;
                if (k == spec->n_stages) {
                    struct spec_stage *st;

                    spec->stages = xrealloc(spec->stages,
                                            (spec->n_stages + 1) * sizeof(*spec->stages));
                    st = &spec->stages[spec->n_stages++];
                    memset(st, 0, sizeof(*st));
                    st->where = xstrdup(ly->copies[c].where);
                    st->name = xstrdup(f->text);
                    st->image_only = true;
                    st->from = *f;
                    f->path = f->tag = NULL;
                    memset(&f->ref, 0, sizeof(f->ref));
                    f->text = xstrdup(st->from.text);
                } else {
                    free(f->path);
                    free(f->tag);
                    f->path = f->tag = NULL;
                    reference_release(&f->ref);
                }
                f->kind = SPEC_FROM_STAGE;
                f->stage = k;
            }
        }
    }
}

/* Each stage's arguments: the predefined ones of its platform, then the
 * declared ones. A "platform": "build" stage runs on the machine's platform
 * but its TARGET* arguments name the target (BUILD* are the host's). */
static void stage_args(struct spec *spec, const struct spec_inputs *in)
{
    for (size_t i = 0; i < spec->n_stages; i++) {
        struct spec_stage *st = &spec->stages[i];
        struct oci_platform p;

        if (st->has_platform && !st->build_platform)
            p = st->platform;
        else if (in && in->platform)
            p = *in->platform;
        else
            oci_platform_host(&p);
        spec_args_predefined(&p, &st->args);
        for (size_t k = 0; k < spec->args.n; k++)
            spec_map_add(&st->args, spec->args.keys[k], spec->args.values[k]);
    }
}

/* The file's bytes, refused before reading when over the limit. */
static int read_spec(const char *file, char **ret, size_t *ret_len, struct ocib_error *err)
{
    struct stat st;

    /* A spec too large is a wrong spec (exit 2), said before reading it. */
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > SPEC_MAX_BYTES) {
        ocib_error_usage(err, "%s: the spec is %lld bytes, larger than the limit of %d",
                         file, (long long)st.st_size, SPEC_MAX_BYTES);
        if (err)
            err->kind = OCIB_ERR_LIMIT;
        return -1;
    }
    return fs_read_file(file, SPEC_MAX_BYTES, ret, ret_len, err);
}

static int check_version(struct vctx *v, const json_t *root, const struct at *top)
{
    json_t *x = json_object_get(root, "version");

    if (!x)
        return spec_fail(v, top, "missing required key \"version\"");
    _cleanup_at_ struct at a = spec_at_key(v, root, "", "version");
    if (!json_is_integer(x) || json_integer_value(x) != 1)
        return spec_fail(v, &a, "unsupported version (this ocib reads version 1)");
    return 0;
}

/* "$schema" and "image". */
static int parse_header(struct vctx *v, const json_t *root)
{
    json_t *x = json_object_get(root, "$schema");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, root, "", "$schema");

        if (spec_expect_string(v, &a, x, true) < 0)
            return -1;
    }
    x = json_object_get(root, "image");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, root, "", "image");
        struct reference ref;
        struct ocib_error rerr = OCIB_ERROR_INIT;

        if (spec_expect_string(v, &a, x, true) < 0)
            return -1;
        if (image_name_reference(json_string_value(x), &ref, &rerr) < 0)
            return spec_fail(v, &a, "%s", rerr.msg);
        reference_release(&ref);
        v->spec->image = xstrdup(image_name_registry_text(json_string_value(x)));
    }
    return 0;
}

/* "stages": one to SPEC_MAX_STAGES of them. */
static int parse_stages(struct vctx *v, const json_t *root, const struct at *top)
{
    json_t *stages = json_object_get(root, "stages"), *item;
    struct spec *spec = v->spec;
    size_t i;

    if (!stages)
        return spec_fail(v, top, "missing required key \"stages\"");
    _cleanup_at_ struct at a = spec_at_key(v, root, "", "stages");
    if (spec_expect_type(v, &a, stages, JSON_ARRAY, "an array") < 0)
        return -1;
    if (!json_array_size(stages))
        return spec_fail(v, &a, "needs at least one stage");
    if (json_array_size(stages) > SPEC_MAX_STAGES)
        return spec_fail(v, &a, "more than %d stages", SPEC_MAX_STAGES);
    spec->stages = xcalloc(json_array_size(stages), sizeof(*spec->stages));
    json_array_foreach(stages, i, item)
    {
        _cleanup_at_ struct at b = spec_at_index(v, stages, "stages", i);

        spec->n_stages = i + 1;
        if (parse_stage(v, item, b.path, &b, i, &spec->stages[i]) < 0)
            return -1;
    }
    return check_graph(v, stages);
}

int spec_load(struct spec *spec, const char *file, const struct spec_inputs *in,
              struct ocib_error *err)
{
    static const char *const keys[] = {"$schema", "version", "args", "image",
                                       "stages",  "lint",    NULL};
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ char *dircopy = xstrdup(file);
    struct vctx v = {spec, err};
    struct at top = {"(top level)", {1, 1}};
    json_t *root;
    size_t len;

    memset(spec, 0, sizeof(*spec));
    spec->file = xstrdup(file);
    spec->dir = xstrdup(dirname(dircopy));
    if (read_spec(file, &buf, &len, err) < 0 ||
        json_doc_parse(&spec->doc, file, buf, len, err) < 0)
        goto fail;
    root = spec->doc.root;
    top.pos = json_doc_value_pos(&spec->doc, root);
    /* Arguments are substituted once the top level is known to be sound,
     * before anything else is read. */
    if (spec_expect_type(&v, &top, root, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(&v, root, "", keys) < 0 || check_version(&v, root, &top) < 0 ||
        spec_args_declare(&v, root, in, &spec->args) < 0 ||
        spec_args_substitute(&v, root, &spec->args, in) < 0 || parse_header(&v, root) < 0 ||
        spec_parse_lint(&v, root) < 0 || parse_stages(&v, root, &top) < 0)
        goto fail;
    add_image_stages(spec);
    stage_args(spec, in);
    return 0;
fail:
    spec_release(spec);
    return -1;
}

void spec_release(struct spec *spec)
{
    for (size_t i = 0; i < spec->n_stages; i++) {
        struct spec_stage *s = &spec->stages[i];

        for (size_t l = 0; l < s->n_layers; l++) {
            struct spec_layer *ly = &s->layers[l];

            for (size_t c = 0; c < ly->n_copies; c++)
                spec_copy_release(&ly->copies[c]);
            for (size_t f = 0; f < ly->n_files; f++) {
                free(ly->files[f].where);
                free(ly->files[f].path);
                free(ly->files[f].content);
                spec_owner_release(&ly->files[f].owner);
            }
            spec_run_release(&ly->run);
            free(ly->copies);
            free(ly->files);
            free(ly->where);
            free(ly->name);
        }
        free(s->layers);
        free(s->where);
        free(s->name);
        free(s->workdir);
        free(s->user);
        spec_map_release(&s->args);
        spec_map_release(&s->env);
        spec_config_release(&s->config);
        spec_from_release(&s->from);
    }
    free(spec->stages);
    spec_map_release(&spec->args);
    free(spec->file);
    free(spec->dir);
    free(spec->image);
    spec_strv_free(spec->lint.ignore, spec->lint.n_ignore);
    json_doc_release(&spec->doc);
    memset(spec, 0, sizeof(*spec));
}

int spec_stage_find(const struct spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_stages; i++)
        if (spec->stages[i].name && !spec->stages[i].image_only &&
            !strcmp(spec->stages[i].name, name))
            return (int)i;
    return -1;
}

static void order_visit(const struct spec *spec, size_t s, bool *seen, size_t *out,
                        size_t *n)
{
    const struct spec_stage *st = &spec->stages[s];

    if (seen[s])
        return;
    seen[s] = true;
    if (st->from.kind == SPEC_FROM_STAGE)
        order_visit(spec, st->from.stage, seen, out, n);
    for (size_t l = 0; l < st->n_layers; l++)
        for (size_t c = 0; c < st->layers[l].n_copies; c++)
            if (st->layers[l].copies[c].has_from &&
                st->layers[l].copies[c].from.kind == SPEC_FROM_STAGE)
                order_visit(spec, st->layers[l].copies[c].from.stage, seen, out, n);
    out[(*n)++] = s;
}

void spec_stage_order(const struct spec *spec, size_t target, size_t *ret_order,
                      size_t *ret_n)
{
    _cleanup_free_ bool *seen = xcalloc(spec->n_stages, sizeof(bool));

    *ret_n = 0;
    order_visit(spec, target, seen, ret_order, ret_n);
}

int spec_duration_parse(const char *s, long long *ret)
{
    static const struct {
        const char *unit;
        long long ns;
    } units[] = {{"ns", 1},           {"us", 1000},         {"ms", 1000000},
                 {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
    long long total = 0;

    if (!*s)
        return -1;
    if (!strcmp(s, "0")) {
        *ret = 0;
        return 0;
    }
    while (*s) {
        long long n = 0;
        size_t digits = 0, u;

        while (isdigit((unsigned char)*s)) {
            if (n > 1000000000LL)
                return -1;
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (!digits)
            return -1;
        for (u = 0; u < ARRAY_SIZE(units); u++) {
            size_t ul = strlen(units[u].unit);

            /* "m" must not match the start of "ms". */
            if (!strncmp(s, units[u].unit, ul) && !(ul == 1 && *s == 'm' && s[1] == 's'))
                break;
        }
        if (u == ARRAY_SIZE(units) || n > (__LONG_LONG_MAX__ - total) / units[u].ns)
            return -1;
        total += n * units[u].ns;
        s += strlen(units[u].unit);
    }
    *ret = total;
    return 0;
}
