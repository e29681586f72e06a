/*
 * The layers of a spec: copies, files and run steps, their modes, owners and
 * sources, parsed and checked at their positions; see check.h.
 */
#include "spec/check.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "transport/name.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "0644" style: 1 to 4 octal digits. */
/* A mode: octal digits, or (where preserve is allowed: a copy) "preserve". */
static int parse_mode(struct vctx *v, const struct at *at, const json_t *j, bool preserve,
                      int *ret)
{
    const char *s;
    char *end;
    long m;

    if (spec_expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    if (preserve && !strcmp(s, "preserve")) {
        *ret = SPEC_MODE_PRESERVE;
        return 0;
    }
    if (strlen(s) > 5 || strspn(s, "01234567") != strlen(s))
        return spec_fail(v, at,
                         "invalid mode \"%s\": expected octal digits such as \"0644\"%s", s,
                         preserve ? " or \"preserve\"" : "");
    m = strtol(s, &end, 8);
    if (m > 07777)
        return spec_fail(v, at, "invalid mode \"%s\": larger than 07777", s);
    *ret = (int)m;
    return 0;
}

/* Checks the numeric parts of "user[:group]" (what starts with a digit or a
 * sign must be an id); names are resolved when the layer is built.  what is
 * "owner" or "user", for the message. */
int spec_check_ids(struct vctx *v, const struct at *at, const char *s, const char *what)
{
    const char *colon = strchr(s, ':');
    size_t ulen = colon ? (size_t)(colon - s) : strlen(s);
    const char *parts[2] = {s, colon ? colon + 1 : NULL};
    size_t lens[2] = {ulen, colon ? strlen(colon + 1) : 0};
    unsigned id;

    for (int i = 0; i < 2 && parts[i]; i++)
        if (ocib_id_parse(parts[i], lens[i], &id) == OCIB_ID_INVALID)
            return spec_fail(v, at, "invalid %s \"%s\": %s \"%.*s\" is no id (%s)", what, s,
                             i ? "group" : "user", (int)lens[i], parts[i],
                             ocib_id_problem(parts[i], lens[i]));
    return 0;
}

static int parse_owner(struct vctx *v, const struct at *at, const json_t *j,
                       struct spec_owner *ret)
{
    const char *s, *colon;
    _cleanup_free_ char *user = NULL;
    const char *group;

    if (spec_expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    colon = strchr(s, ':');
    user = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
    group = colon ? colon + 1 : user;
    if (!*user || !*group || strchr(group, ':'))
        return spec_fail(v, at, "invalid owner \"%s\": expected uid:gid or user:group", s);
    if (spec_check_ids(v, at, s, "owner") < 0)
        return -1;
    ret->set = true;
    ret->has_group = colon != NULL;
    if (ocib_id_parse(user, strlen(user), &ret->uid) == OCIB_ID_NUMBER &&
        ocib_id_parse(group, strlen(group), &ret->gid) == OCIB_ID_NUMBER) {
        ret->numeric = true;
        return 0;
    }
    ret->numeric = false;
    ret->user = xstrdup(user);
    ret->group = xstrdup(group);
    return 0;
}

static bool has_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")); s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return true;
    return false;
}

/* Classifies a "from" value (of a stage, or of a copy item). */
int spec_parse_from(struct vctx *v, const struct at *at, const json_t *j, bool is_copy,
                    struct spec_from *ret)
{
    static const enum spec_from_kind kinds[] = {
        [IMAGE_NAME_OCI] = SPEC_FROM_OCI,
        [IMAGE_NAME_ARCHIVE] = SPEC_FROM_ARCHIVE,
        [IMAGE_NAME_REGISTRY] = SPEC_FROM_REGISTRY,
    };
    struct ocib_error nerr = OCIB_ERROR_INIT;
    struct image_name n;
    const char *s;

    if (spec_expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    memset(ret, 0, sizeof(*ret));
    ret->text = xstrdup(s);
    if (!is_copy && !strcmp(s, "scratch")) {
        ret->kind = SPEC_FROM_SCRATCH;
        return 0;
    }
    /* Stage names are resolved after all stages are known; until then keep
     * anything that parses as an image name or as a stage name. */
    ret->kind = SPEC_FROM_REGISTRY;
    if (image_name_parse(s, IMAGE_NAME_ANY, &n, &nerr) < 0) {
        if (spec_stage_name_ok(s))
            return 0; /* must turn out to be a stage name */
        return spec_fail(v, at, "%s", nerr.msg);
    }
    ret->kind = kinds[n.kind];
    ret->path = TAKE_PTR(n.path);
    ret->tag = TAKE_PTR(n.tag);
    ret->ref = n.ref;
    return 0;
}

void spec_from_release(struct spec_from *f)
{
    free(f->text);
    free(f->path);
    free(f->tag);
    reference_release(&f->ref);
}

void spec_owner_release(struct spec_owner *o)
{
    free(o->user);
    free(o->group);
}

bool spec_dest_is_dir(const char *dest)
{
    size_t n = strlen(dest);

    return n &&
           (dest[n - 1] == '/' || (dest[n - 1] == '.' && (n == 1 || dest[n - 2] == '/')));
}

static int parse_copy(struct vctx *v, const json_t *j, const char *path,
                      const struct at *at, struct spec_copy *c)
{
    static const char *const keys[] = {"src",   "dest", "from", "exclude",
                                       "owner", "mode", NULL};
    json_t *src, *dest, *from, *exclude, *owner, *mode;

    memset(c, 0, sizeof(*c));
    c->mode = -1;
    c->where = xstrdup(path);
    if (spec_expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, j, path, keys) < 0)
        return -1;
    src = json_object_get(j, "src");
    dest = json_object_get(j, "dest");
    if (!src)
        return spec_fail(v, at, "missing required key \"src\"");
    if (!dest)
        return spec_fail(v, at, "missing required key \"dest\"");
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "src");

        if (json_is_string(src))
            return spec_fail(v, &a, "expected an array of strings (write [\"%s\"])",
                             json_string_value(src));
        if (spec_expect_string_list(v, &a, src, true, true) < 0)
            return -1;
    }
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "dest");

        if (spec_expect_string(v, &a, dest, true) < 0)
            return -1;
        if (has_dotdot(json_string_value(dest)))
            return spec_fail(v, &a, "\"%s\" contains '..'", json_string_value(dest));
    }
    c->src = spec_strv_dup(src, &c->n_src);
    c->dest = xstrdup(json_string_value(dest));
    if (c->n_src > 1 && !spec_dest_is_dir(c->dest)) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "dest");

        return spec_fail(
            v, &a, "several sources need a directory dest ending in '/' (\"%s/\") or \".\"",
            c->dest);
    }
    from = json_object_get(j, "from");
    if (from) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "from");

        if (spec_parse_from(v, &a, from, true, &c->from) < 0)
            return -1;
        c->has_from = true;
    }
    exclude = json_object_get(j, "exclude");
    if (exclude) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "exclude");

        if (spec_expect_string_list(v, &a, exclude, false, true) < 0)
            return -1;
        c->exclude = spec_strv_dup(exclude, &c->n_exclude);
    }
    owner = json_object_get(j, "owner");
    if (owner) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "owner");

        if (parse_owner(v, &a, owner, &c->owner) < 0)
            return -1;
    }
    mode = json_object_get(j, "mode");
    if (mode) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "mode");

        if (parse_mode(v, &a, mode, true, &c->mode) < 0)
            return -1;
    }
    /* Context sources must stay inside the context: decided here, before
     * anything is built. */
    if (!c->has_from) {
        for (size_t i = 0; i < c->n_src; i++) {
            _cleanup_at_ struct at sa = spec_at_key(v, j, path, "src");
            _cleanup_at_ struct at a = spec_at_index(v, src, sa.path, i);

            if (c->src[i][0] == '/')
                return spec_fail(v, &a, "\"%s\" is an absolute path outside the context",
                                 c->src[i]);
            if (has_dotdot(c->src[i]))
                return spec_fail(v, &a, "\"%s\" leaves the context through '..'",
                                 c->src[i]);
        }
    }
    return 0;
}

static int parse_file(struct vctx *v, const json_t *j, const char *path,
                      const struct at *at, struct spec_file *f)
{
    static const char *const keys[] = {"path", "content", "content_base64", "symlink",
                                       "dir",  "mode",    "owner",          NULL};
    static const char *const kinds[] = {"content", "content_base64", "symlink", "dir"};
    json_t *p, *val, *mode, *owner;
    const char *kind = NULL;

    memset(f, 0, sizeof(*f));
    f->mode = -1;
    f->where = xstrdup(path);
    if (spec_expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, j, path, keys) < 0)
        return -1;
    p = json_object_get(j, "path");
    if (!p)
        return spec_fail(v, at, "missing required key \"path\"");
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "path");

        if (spec_expect_string(v, &a, p, true) < 0)
            return -1;
        if (has_dotdot(json_string_value(p)))
            return spec_fail(v, &a, "\"%s\" contains '..'", json_string_value(p));
    }
    f->path = xstrdup(json_string_value(p));
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!json_object_get(j, kinds[i]))
            continue;
        if (kind)
            return spec_fail(v, at, "\"%s\" and \"%s\" exclude each other", kind, kinds[i]);
        kind = kinds[i];
    }
    if (!kind)
        return spec_fail(v, at,
                         "needs one of \"content\", \"content_base64\", \"symlink\" or "
                         "\"dir\"");
    val = json_object_get(j, kind);
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, kind);

        if (!strcmp(kind, "dir")) {
            if (!json_is_true(val))
                return spec_fail(v, &a, "expected true");
            f->kind = SPEC_FILE_DIR;
        } else {
            if (spec_expect_string(v, &a, val, !strcmp(kind, "symlink")) < 0)
                return -1;
            if (!strcmp(kind, "content_base64")) {
                if (base64_decode(json_string_value(val), &f->content, &f->content_len) < 0)
                    return spec_fail(v, &a, "invalid base64");
            } else {
                f->content = xstrdup(json_string_value(val));
                f->content_len = json_string_length(val);
            }
            f->kind = !strcmp(kind, "symlink") ? SPEC_FILE_SYMLINK : SPEC_FILE_CONTENT;
        }
    }
    mode = json_object_get(j, "mode");
    if (mode) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "mode");

        if (f->kind == SPEC_FILE_SYMLINK)
            return spec_fail(v, &a, "a symlink has no mode");
        if (parse_mode(v, &a, mode, false, &f->mode) < 0)
            return -1;
    }
    owner = json_object_get(j, "owner");
    if (owner) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "owner");

        if (parse_owner(v, &a, owner, &f->owner) < 0)
            return -1;
    }
    return 0;
}

/* The cache mounts of a run layer: absolute directories below /. */
static int parse_cache_mounts(struct vctx *v, const struct at *at, const json_t *x,
                              struct spec_run *r)
{
    size_t i;
    json_t *m;

    if (spec_expect_string_list(v, at, x, false, true) < 0)
        return -1;
    json_array_foreach(x, i, m)
    {
        const char *t = json_string_value(m);

        if (t[0] != '/' || has_dotdot(t) || !strcmp(t, "/")) {
            _cleanup_at_ struct at c = spec_at_index(v, x, at->path, i);

            return spec_fail(v, &c,
                             "\"%s\": expected an absolute path below / without '..'", t);
        }
    }
    r->cache_mounts = spec_strv_dup(x, &r->n_cache_mounts);
    return 0;
}

/* The secrets of a run layer: {"id", "target"} objects, target a file path. */
static int parse_secrets(struct vctx *v, const struct at *at, const json_t *x,
                         struct spec_run *r)
{
    static const char *const keys[] = {"id", "target", NULL};
    size_t i;
    json_t *s;

    if (spec_expect_type(v, at, x, JSON_ARRAY, "an array") < 0)
        return -1;
    r->secrets = xcalloc(json_array_size(x) + 1, sizeof(*r->secrets));
    json_array_foreach(x, i, s)
    {
        _cleanup_at_ struct at c = spec_at_index(v, x, at->path, i);
        struct spec_secret_mount *m = &r->secrets[i];
        char **fields[] = {&m->id, &m->target};

        if (spec_expect_type(v, &c, s, JSON_OBJECT, "an object") < 0 ||
            spec_check_keys(v, s, c.path, keys) < 0)
            return -1;
        r->n_secrets = i + 1;
        for (size_t k = 0; keys[k]; k++) {
            json_t *f = json_object_get(s, keys[k]);

            if (!f)
                return spec_fail(v, &c, "missing required key \"%s\"", keys[k]);
            _cleanup_at_ struct at d = spec_at_key(v, s, c.path, keys[k]);
            if (spec_expect_string(v, &d, f, true) < 0)
                return -1;
            *fields[k] = xstrdup(json_string_value(f));
        }
        if (m->target[0] != '/' || has_dotdot(m->target) ||
            m->target[strlen(m->target) - 1] == '/') {
            _cleanup_at_ struct at d = spec_at_key(v, s, c.path, "target");

            return spec_fail(v, &d, "\"%s\": expected an absolute file path without '..'",
                             m->target);
        }
    }
    return 0;
}

/* A run layer's command and the keys only a run layer takes. */
static int parse_run(struct vctx *v, const json_t *layer, const char *path,
                     struct spec_run *r)
{
    json_t *x;

    {
        _cleanup_at_ struct at a = spec_at_key(v, layer, path, "run");

        if (spec_parse_command(v, &a, json_object_get(layer, "run"), true, true,
                               &r->command) < 0)
            return -1;
    }
    x = json_object_get(layer, "env");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "env");

        if (spec_expect_string_map(v, &b, x, spec_env_name_ok,
                                   "environment variable name") < 0)
            return -1;
        spec_map_dup(x, &r->env);
    }
    x = json_object_get(layer, "workdir");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "workdir");

        if (spec_expect_string(v, &b, x, true) < 0)
            return -1;
        r->workdir = xstrdup(json_string_value(x));
    }
    x = json_object_get(layer, "user");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "user");

        if (spec_expect_string(v, &b, x, true) < 0 ||
            spec_check_ids(v, &b, json_string_value(x), "user") < 0)
            return -1;
        r->user = xstrdup(json_string_value(x));
    }
    x = json_object_get(layer, "network");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "network");

        if (spec_expect_string(v, &b, x, true) < 0)
            return -1;
        if (strcmp(json_string_value(x), "none") && strcmp(json_string_value(x), "host"))
            return spec_fail(v, &b, "expected \"none\" or \"host\"");
        r->network_host = !strcmp(json_string_value(x), "host");
    }
    x = json_object_get(layer, "cache_mounts");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "cache_mounts");

        if (parse_cache_mounts(v, &b, x, r) < 0)
            return -1;
    }
    x = json_object_get(layer, "secrets");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, layer, path, "secrets");

        if (parse_secrets(v, &b, x, r) < 0)
            return -1;
    }
    return 0;
}

void spec_run_release(struct spec_run *r)
{
    spec_command_release(&r->command);
    spec_map_release(&r->env);
    free(r->workdir);
    free(r->user);
    spec_strv_free(r->cache_mounts, r->n_cache_mounts);
    for (size_t i = 0; i < r->n_secrets; i++) {
        free(r->secrets[i].id);
        free(r->secrets[i].target);
    }
    free(r->secrets);
    memset(r, 0, sizeof(*r));
}

int spec_parse_layer(struct vctx *v, json_t *j, const char *path, const struct at *at,
                     size_t index, struct spec_layer *l)
{
    static const char *const keys[] = {"name",    "copy",    "run",  "files",
                                       "env",     "workdir", "user", "cache_mounts",
                                       "network", "secrets", NULL};
    static const char *const run_only[] = {"env",          "workdir", "user",
                                           "cache_mounts", "network", "secrets"};
    const char *kinds[] = {"copy", "run", "files"};
    const char *kind = NULL;
    json_t *name, *list, *item;
    size_t i;

    memset(l, 0, sizeof(*l));
    l->where = xstrdup(path);
    l->def = j;
    if (spec_expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, j, path, keys) < 0)
        return -1;
    name = json_object_get(j, "name");
    if (name) {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, "name");

        if (spec_expect_string(v, &a, name, true) < 0)
            return -1;
        l->name = xstrdup(json_string_value(name));
    } else {
        l->name = xasprintf("%zu", index);
    }
    for (i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!json_object_get(j, kinds[i]))
            continue;
        if (kind)
            return spec_fail(v, at,
                             "a layer has exactly one of \"copy\", \"run\" and \"files\", "
                             "not both \"%s\" and \"%s\"",
                             kind, kinds[i]);
        kind = kinds[i];
    }
    if (!kind)
        return spec_fail(v, at, "a layer needs one of \"copy\", \"run\" or \"files\"");
    if (strcmp(kind, "run")) {
        for (i = 0; i < ARRAY_SIZE(run_only); i++) {
            if (json_object_get(j, run_only[i])) {
                _cleanup_at_ struct at a = spec_at_key(v, j, path, run_only[i]);

                return spec_fail(v, &a, "only a \"run\" layer takes \"%s\"", run_only[i]);
            }
        }
    }
    if (!strcmp(kind, "run")) {
        l->kind = SPEC_LAYER_RUN;
        return parse_run(v, j, path, &l->run);
    }
    list = json_object_get(j, kind);
    {
        _cleanup_at_ struct at a = spec_at_key(v, j, path, kind);

        if (spec_expect_type(v, &a, list, JSON_ARRAY, "an array") < 0)
            return -1;
        if (!json_array_size(list))
            return spec_fail(v, &a, "must not be empty");
        if (!strcmp(kind, "copy")) {
            l->kind = SPEC_LAYER_COPY;
            l->copies = xcalloc(json_array_size(list), sizeof(*l->copies));
            json_array_foreach(list, i, item)
            {
                _cleanup_at_ struct at b = spec_at_index(v, list, a.path, i);

                l->n_copies = i + 1;
                if (parse_copy(v, item, b.path, &b, &l->copies[i]) < 0)
                    return -1;
            }
        } else {
            l->kind = SPEC_LAYER_FILES;
            l->files = xcalloc(json_array_size(list), sizeof(*l->files));
            json_array_foreach(list, i, item)
            {
                _cleanup_at_ struct at b = spec_at_index(v, list, a.path, i);

                l->n_files = i + 1;
                if (parse_file(v, item, b.path, &b, &l->files[i]) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

void spec_copy_release(struct spec_copy *c)
{
    free(c->where);
    spec_strv_free(c->src, c->n_src);
    free(c->dest);
    spec_from_release(&c->from);
    spec_strv_free(c->exclude, c->n_exclude);
    spec_owner_release(&c->owner);
}
