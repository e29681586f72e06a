/*
 * Spec parsing and validation; see spec.h.
 *
 * Validation walks the document once.  Each check knows the value's key path
 * and the position of its key (or array element) in the file, so every
 * message points at the exact place to fix.
 */
#include "spec/spec.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "transport/source.h"

#include <ctype.h>
#include <libgen.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define SPEC_MAX_BYTES (4 * 1024 * 1024)
#define SPEC_MAX_STAGES 64

struct vctx {
    struct spec *spec;
    struct ocib_error *err;
};

/* Where a value sits: its key path and the position to report. */
struct at {
    const char *path;
    struct json_pos pos;
};

static int failf(struct vctx *v, const struct at *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct vctx *v, const struct at *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ocib_error_usage(v->err, "%s:%d:%d: %s: %s", v->spec->file, at->pos.line,
                            at->pos.col, at->path, msg);
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A member's location; the caller frees at.path. */
static struct at at_key(struct vctx *v, const json_t *obj, const char *path,
                        const char *key)
{
    struct at a = {xasprintf("%s%s%s", path, *path ? "." : "", key),
                   json_doc_key_pos(&v->spec->doc, obj, key)};
    return a;
}

static struct at at_index(struct vctx *v, const json_t *arr, const char *path, size_t i)
{
    struct at a = {xasprintf("%s[%zu]", path, i),
                   json_doc_index_pos(&v->spec->doc, arr, i)};
    return a;
}

static void at_free(struct at *a)
{
    free((char *)a->path);
}
#define _cleanup_at_ __attribute__((cleanup(at_free)))

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

/* Fails on the first key of obj that is not in allowed (NULL-terminated). */
static int check_keys(struct vctx *v, const json_t *obj, const char *path,
                      const char *const *allowed)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)obj, key, val)
    {
        const char *best = NULL;
        size_t best_d = 3;
        bool ok = false;

        for (const char *const *a = allowed; *a; a++) {
            size_t d;

            if (!strcmp(*a, key)) {
                ok = true;
                break;
            }
            d = edit_distance(key, *a);
            if (d < best_d || (d == best_d && !best)) {
                best_d = d;
                best = *a;
            }
        }
        if (!ok) {
            _cleanup_at_ struct at a = at_key(v, obj, path, key);

            if (best && best_d <= 2)
                return failf(v, &a, "unknown key; did you mean \"%s\"?", best);
            return failf(v, &a, "unknown key");
        }
    }
    return 0;
}

static int expect_type(struct vctx *v, const struct at *at, const json_t *j, json_type type,
                       const char *want)
{
    if (json_typeof(j) != type && !(type == JSON_TRUE && json_is_boolean(j)))
        return failf(v, at, "expected %s, got %s", want, type_name(j));
    return 0;
}

static int expect_string(struct vctx *v, const struct at *at, const json_t *j,
                         bool nonempty)
{
    if (expect_type(v, at, j, JSON_STRING, "a string") < 0)
        return -1;
    if (nonempty && !json_string_length(j))
        return failf(v, at, "must not be empty");
    return 0;
}

/* An object whose values are all strings; keys checked by key_ok if given. */
static int expect_string_map(struct vctx *v, const struct at *at, const json_t *j,
                             bool (*key_ok)(const char *), const char *key_what)
{
    const char *key;
    json_t *val;

    if (expect_type(v, at, j, JSON_OBJECT, "an object") < 0)
        return -1;
    json_object_foreach((json_t *)j, key, val)
    {
        _cleanup_at_ struct at a = at_key(v, j, at->path, key);

        if (key_ok && !key_ok(key))
            return failf(v, &a, "invalid %s", key_what);
        if (expect_string(v, &a, val, false) < 0)
            return -1;
    }
    return 0;
}

static int expect_string_list(struct vctx *v, const struct at *at, const json_t *j,
                              bool nonempty_list, bool nonempty_items)
{
    size_t i;
    json_t *item;

    if (expect_type(v, at, j, JSON_ARRAY, "an array of strings") < 0)
        return -1;
    if (nonempty_list && json_array_size(j) == 0)
        return failf(v, at, "must not be empty");
    json_array_foreach(j, i, item)
    {
        _cleanup_at_ struct at a = at_index(v, j, at->path, i);

        if (expect_string(v, &a, item, nonempty_items) < 0)
            return -1;
    }
    return 0;
}

static char **dup_string_list(const json_t *j, size_t *ret_n)
{
    char **list = xcalloc(json_array_size(j) + 1, sizeof(*list));
    size_t i;
    json_t *item;

    json_array_foreach(j, i, item) list[i] = xstrdup(json_string_value(item));
    *ret_n = json_array_size(j);
    return list;
}

static void free_string_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static bool env_name_ok(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool stage_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128 ||
        !(islower((unsigned char)*s) || isdigit((unsigned char)*s)))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
            !strchr("_.-", *s))
            return false;
    return true;
}

/* "0644" style: 1 to 4 octal digits. */
/* A mode: octal digits, or (where preserve is allowed: a copy) "preserve". */
static int parse_mode(struct vctx *v, const struct at *at, const json_t *j, bool preserve,
                      int *ret)
{
    const char *s;
    char *end;
    long m;

    if (expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    if (preserve && !strcmp(s, "preserve")) {
        *ret = SPEC_MODE_PRESERVE;
        return 0;
    }
    if (strlen(s) > 5 || strspn(s, "01234567") != strlen(s))
        return failf(v, at, "invalid mode \"%s\": expected octal digits such as \"0644\"%s",
                     s, preserve ? " or \"preserve\"" : "");
    m = strtol(s, &end, 8);
    if (m > 07777)
        return failf(v, at, "invalid mode \"%s\": larger than 07777", s);
    *ret = (int)m;
    return 0;
}

/* Checks the numeric parts of "user[:group]" (what starts with a digit or a
 * sign must be an id); names are resolved when the layer is built.  what is
 * "owner" or "user", for the message. */
static int check_ids(struct vctx *v, const struct at *at, const char *s, const char *what)
{
    const char *colon = strchr(s, ':');
    size_t ulen = colon ? (size_t)(colon - s) : strlen(s);
    const char *parts[2] = {s, colon ? colon + 1 : NULL};
    size_t lens[2] = {ulen, colon ? strlen(colon + 1) : 0};
    unsigned id;

    for (int i = 0; i < 2 && parts[i]; i++)
        if (ocib_id_parse(parts[i], lens[i], &id) == OCIB_ID_INVALID)
            return failf(v, at, "invalid %s \"%s\": %s \"%.*s\" is no id (%s)", what, s,
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

    if (expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    colon = strchr(s, ':');
    user = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
    group = colon ? colon + 1 : user;
    if (!*user || !*group || strchr(group, ':'))
        return failf(v, at, "invalid owner \"%s\": expected uid:gid or user:group", s);
    if (check_ids(v, at, s, "owner") < 0)
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
static int parse_from(struct vctx *v, const struct at *at, const json_t *j, bool is_copy,
                      struct spec_from *ret)
{
    const char *s;
    struct ocib_error rerr = OCIB_ERROR_INIT;

    if (expect_string(v, at, j, true) < 0)
        return -1;
    s = json_string_value(j);
    memset(ret, 0, sizeof(*ret));
    ret->text = xstrdup(s);
    if (!is_copy && !strcmp(s, "scratch")) {
        ret->kind = SPEC_FROM_SCRATCH;
        return 0;
    }
    if (!strncmp(s, "oci:", 4)) {
        ret->kind = SPEC_FROM_OCI;
        image_ref_split_oci(s + 4, &ret->path, &ret->tag);
        if (!*ret->path)
            return failf(v, at, "\"%s\": missing directory after oci:", s);
        return 0;
    }
    if (!strncmp(s, "docker-archive:", 15)) {
        ret->kind = SPEC_FROM_ARCHIVE;
        ret->path = xstrdup(s + 15);
        if (!*ret->path)
            return failf(v, at, "\"%s\": missing file after docker-archive:", s);
        return 0;
    }
    /* Stage names are resolved after all stages are known; until then keep
     * anything that parses as a reference or as a stage name. */
    ret->kind = SPEC_FROM_REGISTRY;
    if (reference_parse(s, &ret->ref, &rerr) < 0) {
        if (stage_name_ok(s))
            return 0; /* must turn out to be a stage name */
        return failf(v, at, "%s", rerr.msg);
    }
    return 0;
}

static void from_release(struct spec_from *f)
{
    free(f->text);
    free(f->path);
    free(f->tag);
    reference_release(&f->ref);
}

static void owner_release(struct spec_owner *o)
{
    free(o->user);
    free(o->group);
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
    if (expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        check_keys(v, j, path, keys) < 0)
        return -1;
    src = json_object_get(j, "src");
    dest = json_object_get(j, "dest");
    if (!src)
        return failf(v, at, "missing required key \"src\"");
    if (!dest)
        return failf(v, at, "missing required key \"dest\"");
    {
        _cleanup_at_ struct at a = at_key(v, j, path, "src");

        if (json_is_string(src))
            return failf(v, &a, "expected an array of strings (write [\"%s\"])",
                         json_string_value(src));
        if (expect_string_list(v, &a, src, true, true) < 0)
            return -1;
    }
    {
        _cleanup_at_ struct at a = at_key(v, j, path, "dest");

        if (expect_string(v, &a, dest, true) < 0)
            return -1;
        if (has_dotdot(json_string_value(dest)))
            return failf(v, &a, "\"%s\" contains '..'", json_string_value(dest));
    }
    c->src = dup_string_list(src, &c->n_src);
    c->dest = xstrdup(json_string_value(dest));
    if (c->n_src > 1 && c->dest[strlen(c->dest) - 1] != '/') {
        _cleanup_at_ struct at a = at_key(v, j, path, "dest");

        return failf(v, &a, "several sources need a directory dest ending in '/' (\"%s/\")",
                     c->dest);
    }
    if ((from = json_object_get(j, "from"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "from");

        if (parse_from(v, &a, from, true, &c->from) < 0)
            return -1;
        c->has_from = true;
    }
    if ((exclude = json_object_get(j, "exclude"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "exclude");

        if (expect_string_list(v, &a, exclude, false, true) < 0)
            return -1;
        c->exclude = dup_string_list(exclude, &c->n_exclude);
    }
    if ((owner = json_object_get(j, "owner"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "owner");

        if (parse_owner(v, &a, owner, &c->owner) < 0)
            return -1;
    }
    if ((mode = json_object_get(j, "mode"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "mode");

        if (parse_mode(v, &a, mode, true, &c->mode) < 0)
            return -1;
    }
    /* Context sources must stay inside the context: decided here, before
     * anything is built. */
    if (!c->has_from) {
        for (size_t i = 0; i < c->n_src; i++) {
            _cleanup_at_ struct at sa = at_key(v, j, path, "src");
            _cleanup_at_ struct at a = at_index(v, src, sa.path, i);

            if (c->src[i][0] == '/')
                return failf(v, &a, "\"%s\" is an absolute path outside the context",
                             c->src[i]);
            if (has_dotdot(c->src[i]))
                return failf(v, &a, "\"%s\" leaves the context through '..'", c->src[i]);
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
    if (expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        check_keys(v, j, path, keys) < 0)
        return -1;
    if (!(p = json_object_get(j, "path")))
        return failf(v, at, "missing required key \"path\"");
    {
        _cleanup_at_ struct at a = at_key(v, j, path, "path");

        if (expect_string(v, &a, p, true) < 0)
            return -1;
        if (has_dotdot(json_string_value(p)))
            return failf(v, &a, "\"%s\" contains '..'", json_string_value(p));
    }
    f->path = xstrdup(json_string_value(p));
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!json_object_get(j, kinds[i]))
            continue;
        if (kind)
            return failf(v, at, "\"%s\" and \"%s\" exclude each other", kind, kinds[i]);
        kind = kinds[i];
    }
    if (!kind)
        return failf(v, at,
                     "needs one of \"content\", \"content_base64\", \"symlink\" or "
                     "\"dir\"");
    val = json_object_get(j, kind);
    {
        _cleanup_at_ struct at a = at_key(v, j, path, kind);

        if (!strcmp(kind, "dir")) {
            if (!json_is_true(val))
                return failf(v, &a, "expected true");
            f->kind = SPEC_FILE_DIR;
        } else {
            if (expect_string(v, &a, val, !strcmp(kind, "symlink")) < 0)
                return -1;
            if (!strcmp(kind, "content_base64")) {
                if (base64_decode(json_string_value(val), &f->content, &f->content_len) < 0)
                    return failf(v, &a, "invalid base64");
            } else {
                f->content = xstrdup(json_string_value(val));
                f->content_len = json_string_length(val);
            }
            f->kind = !strcmp(kind, "symlink") ? SPEC_FILE_SYMLINK : SPEC_FILE_CONTENT;
        }
    }
    if ((mode = json_object_get(j, "mode"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "mode");

        if (f->kind == SPEC_FILE_SYMLINK)
            return failf(v, &a, "a symlink has no mode");
        if (parse_mode(v, &a, mode, false, &f->mode) < 0)
            return -1;
    }
    if ((owner = json_object_get(j, "owner"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "owner");

        if (parse_owner(v, &a, owner, &f->owner) < 0)
            return -1;
    }
    return 0;
}

static int check_run(struct vctx *v, const json_t *layer, const char *path)
{
    json_t *run = json_object_get(layer, "run"), *x;
    _cleanup_at_ struct at a = at_key(v, layer, path, "run");

    if (json_is_string(run)) {
        if (!json_string_length(run))
            return failf(v, &a, "must not be empty");
    } else if (expect_string_list(v, &a, run, true, false) < 0) {
        return -1;
    }
    if ((x = json_object_get(layer, "env"))) {
        _cleanup_at_ struct at b = at_key(v, layer, path, "env");

        if (expect_string_map(v, &b, x, env_name_ok, "environment variable name") < 0)
            return -1;
    }
    if ((x = json_object_get(layer, "workdir"))) {
        _cleanup_at_ struct at b = at_key(v, layer, path, "workdir");

        if (expect_string(v, &b, x, true) < 0)
            return -1;
    }
    if ((x = json_object_get(layer, "user"))) {
        _cleanup_at_ struct at b = at_key(v, layer, path, "user");

        if (expect_string(v, &b, x, true) < 0 ||
            check_ids(v, &b, json_string_value(x), "user") < 0)
            return -1;
    }
    if ((x = json_object_get(layer, "network"))) {
        _cleanup_at_ struct at b = at_key(v, layer, path, "network");

        if (expect_string(v, &b, x, true) < 0)
            return -1;
        if (strcmp(json_string_value(x), "none") && strcmp(json_string_value(x), "host"))
            return failf(v, &b, "expected \"none\" or \"host\"");
    }
    if ((x = json_object_get(layer, "cache_mounts"))) {
        _cleanup_at_ struct at b = at_key(v, layer, path, "cache_mounts");
        size_t i;
        json_t *m;

        if (expect_string_list(v, &b, x, false, true) < 0)
            return -1;
        json_array_foreach(x, i, m)
        {
            const char *t = json_string_value(m);

            if (t[0] != '/' || has_dotdot(t) || !strcmp(t, "/")) {
                _cleanup_at_ struct at c = at_index(v, x, b.path, i);

                return failf(v, &c,
                             "\"%s\": expected an absolute path below / without '..'", t);
            }
        }
    }
    if ((x = json_object_get(layer, "secrets"))) {
        static const char *const skeys[] = {"id", "target", NULL};
        _cleanup_at_ struct at b = at_key(v, layer, path, "secrets");
        size_t i;
        json_t *s;

        if (expect_type(v, &b, x, JSON_ARRAY, "an array") < 0)
            return -1;
        json_array_foreach(x, i, s)
        {
            _cleanup_at_ struct at c = at_index(v, x, b.path, i);

            if (expect_type(v, &c, s, JSON_OBJECT, "an object") < 0 ||
                check_keys(v, s, c.path, skeys) < 0)
                return -1;
            for (size_t k = 0; skeys[k]; k++) {
                json_t *f = json_object_get(s, skeys[k]);

                if (!f)
                    return failf(v, &c, "missing required key \"%s\"", skeys[k]);
                _cleanup_at_ struct at d = at_key(v, s, c.path, skeys[k]);
                if (expect_string(v, &d, f, true) < 0)
                    return -1;
                if (!strcmp(skeys[k], "target")) {
                    const char *t = json_string_value(f);

                    if (t[0] != '/' || has_dotdot(t) || t[strlen(t) - 1] == '/')
                        return failf(v, &d,
                                     "\"%s\": expected an absolute file path without '..'",
                                     t);
                }
            }
        }
    }
    return 0;
}

static int parse_layer(struct vctx *v, json_t *j, const char *path, const struct at *at,
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
    l->json = j;
    if (expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        check_keys(v, j, path, keys) < 0)
        return -1;
    if ((name = json_object_get(j, "name"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "name");

        if (expect_string(v, &a, name, true) < 0)
            return -1;
        l->name = xstrdup(json_string_value(name));
    } else {
        l->name = xasprintf("%zu", index);
    }
    for (i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!json_object_get(j, kinds[i]))
            continue;
        if (kind)
            return failf(v, at,
                         "a layer has exactly one of \"copy\", \"run\" and \"files\", "
                         "not both \"%s\" and \"%s\"",
                         kind, kinds[i]);
        kind = kinds[i];
    }
    if (!kind)
        return failf(v, at, "a layer needs one of \"copy\", \"run\" or \"files\"");
    if (strcmp(kind, "run")) {
        for (i = 0; i < ARRAY_SIZE(run_only); i++) {
            if (json_object_get(j, run_only[i])) {
                _cleanup_at_ struct at a = at_key(v, j, path, run_only[i]);

                return failf(v, &a, "only a \"run\" layer takes \"%s\"", run_only[i]);
            }
        }
    }
    if (!strcmp(kind, "run")) {
        l->kind = SPEC_LAYER_RUN;
        return check_run(v, j, path);
    }
    list = json_object_get(j, kind);
    {
        _cleanup_at_ struct at a = at_key(v, j, path, kind);

        if (expect_type(v, &a, list, JSON_ARRAY, "an array") < 0)
            return -1;
        if (!json_array_size(list))
            return failf(v, &a, "must not be empty");
        if (!strcmp(kind, "copy")) {
            l->kind = SPEC_LAYER_COPY;
            l->copies = xcalloc(json_array_size(list), sizeof(*l->copies));
            json_array_foreach(list, i, item)
            {
                _cleanup_at_ struct at b = at_index(v, list, a.path, i);

                l->n_copies = i + 1;
                if (parse_copy(v, item, b.path, &b, &l->copies[i]) < 0)
                    return -1;
            }
        } else {
            l->kind = SPEC_LAYER_FILES;
            l->files = xcalloc(json_array_size(list), sizeof(*l->files));
            json_array_foreach(list, i, item)
            {
                _cleanup_at_ struct at b = at_index(v, list, a.path, i);

                l->n_files = i + 1;
                if (parse_file(v, item, b.path, &b, &l->files[i]) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static int check_duration(struct vctx *v, const json_t *obj, const char *path,
                          const char *key)
{
    json_t *x = json_object_get(obj, key);
    long long ns;

    if (!x)
        return 0;
    _cleanup_at_ struct at a = at_key(v, obj, path, key);
    if (expect_string(v, &a, x, true) < 0)
        return -1;
    if (spec_duration_parse(json_string_value(x), &ns) < 0)
        return failf(v, &a, "invalid duration \"%s\": expected e.g. \"30s\", \"1m30s\"",
                     json_string_value(x));
    return 0;
}

static int check_config(struct vctx *v, const json_t *c, const char *path,
                        const struct at *at)
{
    static const char *const keys[] = {
        "user",    "workdir", "env",         "entrypoint",  "cmd",         "expose",
        "volumes", "labels",  "stop_signal", "healthcheck", "annotations", NULL};
    static const char *const hkeys[] = {"test",         "interval", "timeout",
                                        "start_period", "retries",  NULL};
    json_t *x;

    if (expect_type(v, at, c, JSON_OBJECT, "an object") < 0 ||
        check_keys(v, c, path, keys) < 0)
        return -1;
    for (const char *const *k =
             (const char *const[]){"user", "workdir", "stop_signal", NULL};
         *k; k++) {
        if ((x = json_object_get(c, *k))) {
            _cleanup_at_ struct at a = at_key(v, c, path, *k);

            if (expect_string(v, &a, x, true) < 0)
                return -1;
            /* A later stage's run steps run as the image's user. */
            if (!strcmp(*k, "user") && check_ids(v, &a, json_string_value(x), "user") < 0)
                return -1;
        }
    }
    for (const char *const *k = (const char *const[]){"entrypoint", "cmd", NULL}; *k; k++) {
        if ((x = json_object_get(c, *k))) {
            _cleanup_at_ struct at a = at_key(v, c, path, *k);

            if (!json_is_string(x) && expect_string_list(v, &a, x, false, false) < 0)
                return -1;
        }
    }
    if ((x = json_object_get(c, "env"))) {
        _cleanup_at_ struct at a = at_key(v, c, path, "env");

        if (expect_string_map(v, &a, x, env_name_ok, "environment variable name") < 0)
            return -1;
    }
    for (const char *const *k = (const char *const[]){"labels", "annotations", NULL}; *k;
         k++) {
        if ((x = json_object_get(c, *k))) {
            _cleanup_at_ struct at a = at_key(v, c, path, *k);

            if (expect_string_map(v, &a, x, NULL, NULL) < 0)
                return -1;
        }
    }
    if ((x = json_object_get(c, "expose"))) {
        _cleanup_at_ struct at a = at_key(v, c, path, "expose");
        size_t i;
        json_t *p;

        if (expect_string_list(v, &a, x, false, true) < 0)
            return -1;
        json_array_foreach(x, i, p)
        {
            const char *s = json_string_value(p), *slash = strchr(s, '/');
            _cleanup_free_ char *port =
                slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
            unsigned n;

            if (ocib_id_parse(port, strlen(port), &n) != OCIB_ID_NUMBER || n == 0 ||
                n > 65535 ||
                (slash && strcmp(slash, "/tcp") && strcmp(slash, "/udp") &&
                 strcmp(slash, "/sctp"))) {
                _cleanup_at_ struct at b = at_index(v, x, a.path, i);

                return failf(v, &b, "invalid port \"%s\": expected PORT[/tcp|/udp|/sctp]",
                             s);
            }
        }
    }
    if ((x = json_object_get(c, "volumes"))) {
        _cleanup_at_ struct at a = at_key(v, c, path, "volumes");

        if (expect_string_list(v, &a, x, false, true) < 0)
            return -1;
    }
    if ((x = json_object_get(c, "healthcheck"))) {
        _cleanup_at_ struct at a = at_key(v, c, path, "healthcheck");
        json_t *t, *r;

        if (expect_type(v, &a, x, JSON_OBJECT, "an object") < 0 ||
            check_keys(v, x, a.path, hkeys) < 0)
            return -1;
        if (!(t = json_object_get(x, "test")))
            return failf(v, &a, "missing required key \"test\"");
        {
            _cleanup_at_ struct at b = at_key(v, x, a.path, "test");

            if (!json_is_string(t)) {
                const char *first;

                if (expect_string_list(v, &b, t, true, false) < 0)
                    return -1;
                first = json_string_value(json_array_get(t, 0));
                if (strcmp(first, "CMD") && strcmp(first, "CMD-SHELL") &&
                    strcmp(first, "NONE"))
                    return failf(v, &b,
                                 "the first element must be \"CMD\", \"CMD-SHELL\" or "
                                 "\"NONE\"");
            }
        }
        if (check_duration(v, x, a.path, "interval") < 0 ||
            check_duration(v, x, a.path, "timeout") < 0 ||
            check_duration(v, x, a.path, "start_period") < 0)
            return -1;
        if ((r = json_object_get(x, "retries"))) {
            _cleanup_at_ struct at b = at_key(v, x, a.path, "retries");

            if (!json_is_integer(r) || json_integer_value(r) < 0)
                return failf(v, &b, "expected a non-negative integer");
        }
    }
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
    if (expect_type(v, at, j, JSON_OBJECT, "an object") < 0 ||
        check_keys(v, j, path, keys) < 0)
        return -1;
    if ((x = json_object_get(j, "name"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "name");

        if (expect_string(v, &a, x, true) < 0)
            return -1;
        if (!stage_name_ok(json_string_value(x)) ||
            !strcmp(json_string_value(x), "scratch"))
            return failf(v, &a,
                         "invalid stage name \"%s\": use lowercase letters, digits, "
                         "'.', '_' and '-'",
                         json_string_value(x));
        s->name = xstrdup(json_string_value(x));
    } else {
        s->name = xasprintf("%zu", index);
    }
    if (!(x = json_object_get(j, "from")))
        return failf(v, at, "missing required key \"from\"");
    {
        _cleanup_at_ struct at a = at_key(v, j, path, "from");

        if (parse_from(v, &a, x, false, &s->from) < 0)
            return -1;
    }
    if ((x = json_object_get(j, "workdir"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "workdir");

        if (expect_string(v, &a, x, true) < 0)
            return -1;
        s->workdir = json_string_value(x);
    }
    if ((x = json_object_get(j, "user"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "user");

        if (expect_string(v, &a, x, true) < 0 ||
            check_ids(v, &a, json_string_value(x), "user") < 0)
            return -1;
        s->user = json_string_value(x);
    }
    if ((x = json_object_get(j, "env"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "env");

        if (expect_string_map(v, &a, x, env_name_ok, "environment variable name") < 0)
            return -1;
        s->env = x;
    }
    if ((x = json_object_get(j, "platform"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "platform");
        struct ocib_error perr = OCIB_ERROR_INIT;

        if (expect_string(v, &a, x, true) < 0)
            return -1;
        if (oci_platform_parse(json_string_value(x), &s->platform, &perr) < 0)
            return failf(v, &a, "%s", perr.msg);
        s->has_platform = true;
    }
    if ((x = json_object_get(j, "config"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "config");

        if (check_config(v, x, a.path, &a) < 0)
            return -1;
        s->config = x;
    }
    if ((layers = json_object_get(j, "layers"))) {
        _cleanup_at_ struct at a = at_key(v, j, path, "layers");

        if (expect_type(v, &a, layers, JSON_ARRAY, "an array") < 0)
            return -1;
        s->layers = xcalloc(json_array_size(layers) + 1, sizeof(*s->layers));
        json_array_foreach(layers, i, item)
        {
            _cleanup_at_ struct at b = at_index(v, layers, a.path, i);

            s->n_layers = i + 1;
            if (parse_layer(v, item, b.path, &b, i, &s->layers[i]) < 0)
                return -1;
        }
    }
    return 0;
}

/* Turns names of stages in "from" fields into stage references. */
static int resolve_stage_ref(struct vctx *v, struct spec_from *f, const json_t *obj,
                             const char *path, size_t self)
{
    int idx;

    if (f->kind != SPEC_FROM_REGISTRY)
        return 0;
    idx = spec_stage_find(v->spec, f->text);
    if (idx < 0) {
        if (!f->ref.repository) {
            _cleanup_at_ struct at a = at_key(v, obj, path, "from");

            return failf(v, &a, "\"%s\" is neither a stage nor a valid image reference",
                         f->text);
        }
        return 0;
    }
    if ((size_t)idx == self) {
        _cleanup_at_ struct at a = at_key(v, obj, path, "from");

        return failf(v, &a, "stage cycle: stage \"%s\" uses itself", f->text);
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
                _cleanup_at_ struct at a = at_key(v, sj, st->where, "name");

                return failf(v, &a, "duplicate stage name \"%s\"", st->name);
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

                return failf(v, &a, "stage cycle: %s", strbuf_str(&path));
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

int spec_load(struct spec *spec, const char *file, struct ocib_error *err)
{
    static const char *const keys[] = {"version", "image", "stages", NULL};
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ char *dircopy = xstrdup(file);
    struct vctx v = {spec, err};
    json_t *root, *x, *stages, *item;
    struct at top = {"", {1, 1}};
    struct stat st;
    size_t len, i;

    memset(spec, 0, sizeof(*spec));
    spec->file = xstrdup(file);
    spec->dir = xstrdup(dirname(dircopy));
    /* A spec too large is a wrong spec (exit 2), said before reading it. */
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > SPEC_MAX_BYTES) {
        ocib_error_usage(err, "%s: the spec is %lld bytes, larger than the limit of %d",
                         file, (long long)st.st_size, SPEC_MAX_BYTES);
        if (err)
            err->kind = OCIB_ERR_LIMIT;
        goto fail;
    }
    if (fs_read_file(file, SPEC_MAX_BYTES, &buf, &len, err) < 0)
        goto fail;
    if (json_doc_parse(&spec->doc, file, buf, len, err) < 0)
        goto fail;
    root = spec->doc.root;
    top.pos = json_doc_value_pos(&spec->doc, root);
    top.path = "(top level)";
    if (expect_type(&v, &top, root, JSON_OBJECT, "an object") < 0 ||
        check_keys(&v, root, "", keys) < 0)
        goto fail;
    if (!(x = json_object_get(root, "version"))) {
        failf(&v, &top, "missing required key \"version\"");
        goto fail;
    }
    {
        _cleanup_at_ struct at a = at_key(&v, root, "", "version");

        if (!json_is_integer(x) || json_integer_value(x) != 1) {
            failf(&v, &a, "unsupported version (this ocib reads version 1)");
            goto fail;
        }
    }
    if ((x = json_object_get(root, "image"))) {
        _cleanup_at_ struct at a = at_key(&v, root, "", "image");
        struct reference ref;
        struct ocib_error rerr = OCIB_ERROR_INIT;

        if (expect_string(&v, &a, x, true) < 0)
            goto fail;
        if (reference_parse(json_string_value(x), &ref, &rerr) < 0) {
            failf(&v, &a, "%s", rerr.msg);
            goto fail;
        }
        reference_release(&ref);
        spec->image = xstrdup(json_string_value(x));
    }
    if (!(stages = json_object_get(root, "stages"))) {
        failf(&v, &top, "missing required key \"stages\"");
        goto fail;
    }
    {
        _cleanup_at_ struct at a = at_key(&v, root, "", "stages");

        if (expect_type(&v, &a, stages, JSON_ARRAY, "an array") < 0)
            goto fail;
        if (!json_array_size(stages)) {
            failf(&v, &a, "needs at least one stage");
            goto fail;
        }
        if (json_array_size(stages) > SPEC_MAX_STAGES) {
            failf(&v, &a, "more than %d stages", SPEC_MAX_STAGES);
            goto fail;
        }
        spec->stages = xcalloc(json_array_size(stages), sizeof(*spec->stages));
        json_array_foreach(stages, i, item)
        {
            _cleanup_at_ struct at b = at_index(&v, stages, "stages", i);

            spec->n_stages = i + 1;
            if (parse_stage(&v, item, b.path, &b, i, &spec->stages[i]) < 0)
                goto fail;
        }
    }
    if (check_graph(&v, stages) < 0)
        goto fail;
    add_image_stages(spec);
    return 0;
fail:
    spec_release(spec);
    return -1;
}

static void copy_release(struct spec_copy *c)
{
    free(c->where);
    free_string_list(c->src, c->n_src);
    free(c->dest);
    from_release(&c->from);
    free_string_list(c->exclude, c->n_exclude);
    owner_release(&c->owner);
}

void spec_release(struct spec *spec)
{
    for (size_t i = 0; i < spec->n_stages; i++) {
        struct spec_stage *s = &spec->stages[i];

        for (size_t l = 0; l < s->n_layers; l++) {
            struct spec_layer *ly = &s->layers[l];

            for (size_t c = 0; c < ly->n_copies; c++)
                copy_release(&ly->copies[c]);
            for (size_t f = 0; f < ly->n_files; f++) {
                free(ly->files[f].where);
                free(ly->files[f].path);
                free(ly->files[f].content);
                owner_release(&ly->files[f].owner);
            }
            free(ly->copies);
            free(ly->files);
            free(ly->where);
            free(ly->name);
        }
        free(s->layers);
        free(s->where);
        free(s->name);
        from_release(&s->from);
    }
    free(spec->stages);
    free(spec->file);
    free(spec->dir);
    free(spec->image);
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
