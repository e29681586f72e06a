/*
 * Build arguments: the spec's "args" with --build-arg over them, the
 * predefined platform ones (TARGETARCH…), and the substitution of ${NAME}
 * in the strings PRODUCT.md lists, done on the document before it is
 * parsed, so that everything after sees substituted values and an unknown
 * ${NAME} is reported at its file:line:col; see check.h.
 *
 * Values replace the string in place (json_string_set), which keeps the
 * value's identity and so its position in the document.
 */
#include "spec/check.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <string.h>

/* What ${NAME} can name where a string is substituted. */
struct scope {
    const struct spec_map *declared;
    const struct spec_map *predefined;
};

static const char *const predefined_names[] = {
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",
};

static bool is_predefined(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(predefined_names); i++)
        if (!strcmp(predefined_names[i], name))
            return true;
    return false;
}

static const char *map_get(const struct spec_map *m, const char *key)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (!strcmp(m->keys[i], key))
            return m->values[i];
    return NULL;
}

void spec_args_predefined(const struct oci_platform *target, struct spec_map *ret)
{
    struct oci_platform build;
    char buf[96];

    memset(ret, 0, sizeof(*ret));
    oci_platform_host(&build);
    oci_platform_format(target, buf, sizeof(buf));
    spec_map_add(ret, "TARGETPLATFORM", buf);
    spec_map_add(ret, "TARGETOS", target->os);
    spec_map_add(ret, "TARGETARCH", target->arch);
    spec_map_add(ret, "TARGETVARIANT", target->variant);
    oci_platform_format(&build, buf, sizeof(buf));
    spec_map_add(ret, "BUILDPLATFORM", buf);
    spec_map_add(ret, "BUILDOS", build.os);
    spec_map_add(ret, "BUILDARCH", build.arch);
}

int spec_args_declare(struct vctx *v, const json_t *root, const struct spec_inputs *in,
                      struct spec_map *ret)
{
    const json_t *args = json_object_get(root, "args");
    const char *key;
    json_t *val;

    memset(ret, 0, sizeof(*ret));
    if (args) {
        _cleanup_at_ struct at a = spec_at_key(v, root, "", "args");

        if (spec_expect_string_map(v, &a, args, spec_env_name_ok, "build argument name") <
            0)
            return -1;
        json_object_foreach((json_t *)args, key, val)
        {
            if (is_predefined(key)) {
                _cleanup_at_ struct at b = spec_at_key(v, args, a.path, key);

                return spec_fail(v, &b,
                                 "%s is predefined (from the platform); it is not "
                                 "declared",
                                 key);
            }
        }
        spec_map_dup(args, ret);
    }
    for (size_t i = 0; in && i < in->n_build_args; i++) {
        const char *kv = in->build_args[i], *eq = strchr(kv, '=');
        _cleanup_free_ char *name = eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
        size_t k;

        if (!eq)
            return ocib_error_usage(v->err, "--build-arg '%s': expected NAME=VALUE", kv);
        if (is_predefined(name))
            return ocib_error_usage(v->err,
                                    "--build-arg %s: predefined from the platform; use "
                                    "--platform",
                                    name);
        for (k = 0; k < ret->n && strcmp(ret->keys[k], name); k++)
            ;
        if (k == ret->n)
            return ocib_error_usage(
                v->err,
                "--build-arg %s: %s declares no such argument (add it to "
                "\"args\")",
                name, v->spec->file);
        free(ret->values[k]);
        ret->values[k] = xstrdup(eq + 1);
    }
    return 0;
}

/* ${NAME} in the string s replaced from scope; "$${" is a literal "${". */
static int expand(struct vctx *v, const struct at *at, const char *s,
                  const struct scope *sc, struct strbuf *out)
{
    for (const char *p = s; *p;) {
        const char *close, *value;
        size_t len;

        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            strbuf_addstr(out, "${");
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            strbuf_addch(out, *p++);
            continue;
        }
        close = strchr(p + 2, '}');
        if (!close)
            return spec_fail(v, at, "\"%s\": unterminated ${ (write $${ for a literal ${)",
                             s);
        len = (size_t)(close - (p + 2));
        {
            _cleanup_free_ char *name = xstrndup(p + 2, len);

            if (!spec_env_name_ok(name))
                return spec_fail(v, at, "\"%s\": invalid build argument name \"%s\"", s,
                                 name);
            value = map_get(sc->predefined, name);
            if (!value)
                value = map_get(sc->declared, name);
            if (!value)
                return spec_fail(v, at,
                                 "unknown build argument ${%s}; declare it in \"args\" (or "
                                 "use a predefined one: TARGETPLATFORM, TARGETOS, "
                                 "TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, "
                                 "BUILDARCH)",
                                 name);
        }
        strbuf_addstr(out, value);
        p = close + 1;
    }
    return 0;
}

/* Substitutes the string j (anything else is left for the checks). */
static int subst(struct vctx *v, const struct at *at, json_t *j, const struct scope *sc)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const char *s = json_string_value(j);

    if (!s || !strchr(s, '$'))
        return 0;
    if (expand(v, at, s, sc, &sb) < 0)
        return -1;
    json_string_set(j, strbuf_str(&sb));
    return 0;
}

static int subst_key(struct vctx *v, json_t *obj, const char *path, const char *key,
                     const struct scope *sc)
{
    json_t *x = json_object_get(obj, key);
    _cleanup_at_ struct at a = spec_at_key(v, obj, path, key);

    return x ? subst(v, &a, x, sc) : 0;
}

/* Every string below j: the values of objects and arrays, not the keys. */
static int subst_all(struct vctx *v, json_t *j, const char *path, const struct scope *sc)
{
    const char *key;
    json_t *x;
    size_t i;

    if (json_is_object(j)) {
        json_object_foreach(j, key, x)
        {
            _cleanup_at_ struct at a = spec_at_key(v, j, path, key);

            if (json_is_string(x) ? subst(v, &a, x, sc) < 0
                                  : subst_all(v, x, a.path, sc) < 0)
                return -1;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, x)
        {
            _cleanup_at_ struct at a = spec_at_index(v, j, path, i);

            if (json_is_string(x) ? subst(v, &a, x, sc) < 0
                                  : subst_all(v, x, a.path, sc) < 0)
                return -1;
        }
    }
    return 0;
}

/* The values of the object at key (env). */
static int subst_values(struct vctx *v, json_t *obj, const char *path, const char *key,
                        const struct scope *sc)
{
    json_t *x = json_object_get(obj, key);
    _cleanup_at_ struct at a = spec_at_key(v, obj, path, key);

    return json_is_object(x) ? subst_all(v, x, a.path, sc) : 0;
}

static int subst_layer(struct vctx *v, json_t *ly, const char *path, const struct scope *sc)
{
    static const char *const kinds[] = {"copy", "files"};

    if (!json_is_object(ly))
        return 0;
    if (subst_key(v, ly, path, "workdir", sc) < 0 ||
        subst_key(v, ly, path, "user", sc) < 0 || subst_values(v, ly, path, "env", sc) < 0)
        return -1;
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        json_t *list = json_object_get(ly, kinds[k]), *item;
        _cleanup_at_ struct at a = spec_at_key(v, ly, path, kinds[k]);
        size_t i;

        json_array_foreach(list, i, item)
        {
            _cleanup_at_ struct at b = spec_at_index(v, list, a.path, i);

            if (!json_is_object(item))
                continue;
            if (k == 0) {
                json_t *src = json_object_get(item, "src");
                _cleanup_at_ struct at c = spec_at_key(v, item, b.path, "src");

                if ((json_is_array(src) && subst_all(v, src, c.path, sc) < 0) ||
                    subst_key(v, item, b.path, "dest", sc) < 0 ||
                    subst_key(v, item, b.path, "from", sc) < 0)
                    return -1;
            } else if (subst_key(v, item, b.path, "path", sc) < 0 ||
                       subst_key(v, item, b.path, "content", sc) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* The platform a stage builds for: its own when valid, else the default. */
static void stage_platform(const json_t *stage, const struct spec_inputs *in,
                           struct oci_platform *ret)
{
    const char *s = json_string_value(json_object_get(stage, "platform"));

    if (s && oci_platform_parse(s, ret, NULL) == 0)
        return;
    if (in && in->platform)
        *ret = *in->platform;
    else
        oci_platform_host(ret);
}

/* The strings of one stage, with the predefined arguments of its platform. */
static int subst_stage(struct vctx *v, json_t *st, const char *path,
                       const struct spec_map *declared, const struct spec_inputs *in)
{
    json_t *layers = json_object_get(st, "layers"), *ly;
    _cleanup_at_ struct at b = spec_at_key(v, st, path, "layers");
    _cleanup_at_ struct at c = spec_at_key(v, st, path, "config");
    struct oci_platform p;
    struct spec_map pre;
    struct scope sc = {declared, &pre};
    size_t l;
    int r = -1;

    stage_platform(st, in, &p);
    spec_args_predefined(&p, &pre);
    if (subst_key(v, st, path, "from", &sc) < 0 ||
        subst_key(v, st, path, "workdir", &sc) < 0 ||
        subst_key(v, st, path, "user", &sc) < 0 ||
        subst_values(v, st, path, "env", &sc) < 0 ||
        subst_all(v, json_object_get(st, "config"), c.path, &sc) < 0)
        goto out;
    json_array_foreach(layers, l, ly)
    {
        _cleanup_at_ struct at d = spec_at_index(v, layers, b.path, l);

        if (subst_layer(v, ly, d.path, &sc) < 0)
            goto out;
    }
    r = 0;
out:
    spec_map_release(&pre);
    return r;
}

int spec_args_substitute(struct vctx *v, json_t *root, const struct spec_map *declared,
                         const struct spec_inputs *in)
{
    json_t *stages = json_object_get(root, "stages"), *st;
    struct oci_platform p;
    struct spec_map pre;
    struct scope sc = {declared, &pre};
    size_t i;
    int r;

    stage_platform(NULL, in, &p);
    spec_args_predefined(&p, &pre);
    r = subst_key(v, root, "", "image", &sc);
    spec_map_release(&pre);
    if (r < 0)
        return -1;
    json_array_foreach(stages, i, st)
    {
        _cleanup_at_ struct at a = spec_at_index(v, stages, "stages", i);

        if (json_is_object(st) && subst_stage(v, st, a.path, declared, in) < 0)
            return -1;
    }
    return 0;
}
