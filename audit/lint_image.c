/*
 * The image rules of `ocib lint`: the config's user and healthcheck, the
 * size budget, and what the layers hold, read as tar streams (never
 * unpacked): toolchains, npm devDependencies in node_modules, package
 * managers' caches, credentials.  Whiteouts of a later layer remove what
 * they name from the final filesystem, so a compiler deleted later is not
 * reported; a credential deleted later still is, since its layer still
 * ships it.
 */
#include "audit/lint.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "layers/tar_reader.h"
#include "oci/json.h"

#include <fnmatch.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_MAX (1u << 20) /* content read of a file the rules look into */

enum cand_kind { CAND_TOOL, CAND_CACHE, CAND_MODULE, CAND_APP, CAND_CRED };

/* Something a layer holds that a rule may report. */
struct cand {
    enum cand_kind kind;
    char *path;    /* the file (the cache's root for CAND_CACHE) */
    char *key;     /* tool, cache, app directory, module name, or what leaked */
    char *content; /* CAND_APP: the package.json */
    size_t layer;
    bool deleted; /* removed by a later layer's whiteout */
};

struct scan {
    struct cand *v;
    size_t n, alloc;
    const struct oci_image *img;
};

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');

    return s ? s + 1 : p;
}

static bool credential_name(const char *path)
{
    static const char *const names[] = {
        ".npmrc",           ".env",   "id_rsa",  "id_dsa", "id_ecdsa", "id_ed25519",
        ".git-credentials", ".netrc", ".pypirc", NULL};
    const char *b = base_name(path);
    size_t l = strlen(b);

    for (size_t i = 0; names[i]; i++)
        if (!strcmp(b, names[i]))
            return true;
    return !strncmp(b, ".env.", 5) || (l > 4 && !strcmp(b + l - 4, ".pem")) ||
           (l > 4 && !strcmp(b + l - 4, ".key")) ||
           fnmatch("*.docker/config.json", path, 0) == 0;
}

static bool app_manifest(const char *path)
{
    return !strcmp(base_name(path), "package.json") && !strstr(path, "node_modules/") &&
           strncmp(path, "node_modules/", 13);
}

static bool want(const char *path, int64_t size, void *opaque)
{
    return size >= 0 && size <= KEEP_MAX && (credential_name(path) || app_manifest(path));
}

static void add(struct scan *s, enum cand_kind k, const char *path, const char *key,
                size_t layer, char *content)
{
    XGROW(s->v, s->alloc, s->n + 1);
    s->v[s->n++] = (struct cand){k, xstrdup(path), xstrdup(key), content, layer, false};
}

/* The tool a path is, or NULL. */
static const char *tool_of(const char *p)
{
    static const char *const gcc[] = {"usr/bin/gcc", "usr/bin/cc",        "usr/bin/g++",
                                      "usr/bin/c++", "usr/local/bin/gcc", NULL};

    for (size_t i = 0; gcc[i]; i++)
        if (!strcmp(p, gcc[i]))
            return "gcc";
    if (!fnmatch("usr/bin/gcc-[0-9]*", p, 0) ||
        !fnmatch("usr/lib/gcc/*/cc1", p, FNM_PATHNAME) ||
        !fnmatch("usr/lib/gcc/*/*/cc1", p, FNM_PATHNAME) ||
        !fnmatch("usr/libexec/gcc/*/*/cc1", p, FNM_PATHNAME))
        return "gcc";
    if (!strcmp(p, "usr/bin/make") || !strcmp(p, "usr/local/bin/make"))
        return "make";
    if (!strcmp(p, "usr/bin/clang") || !fnmatch("usr/bin/clang-[0-9]*", p, 0))
        return "clang";
    return NULL;
}

/* The package manager's cache a path is in (its root into buf), or NULL. */
static const char *cache_of(const char *p, char *buf, size_t size)
{
    static const char *const roots[] = {
        "root/.npm/_cacache",   "home/*/.npm/_cacache",   "root/.cache/pip",
        "home/*/.cache/pip",    "root/.cache/yarn",       "usr/local/share/.cache/yarn",
        "root/.cache/go-build", "var/cache/apt/archives", NULL};

    for (size_t i = 0; roots[i]; i++) {
        size_t depth = 1;

        for (const char *c = roots[i]; *c; c++)
            depth += *c == '/';
        /* The first depth components of p against the root. */
        const char *end = p;
        for (size_t d = 0; d < depth && end; d++) {
            end = strchr(end, '/');
            if (end && d + 1 < depth)
                end++;
        }
        if (!end)
            continue;
        snprintf(buf, size, "%.*s", (int)(end - p), p);
        if (!fnmatch(roots[i], buf, FNM_PATHNAME) &&
            (i != 7 || fnmatch("*.deb", p, 0) == 0))
            return buf;
    }
    return NULL;
}

/* An installed package: DIR/node_modules/NAME/package.json (NAME may be
 * @scope/name), with no node_modules further down. */
static bool module_of(const char *p, char **ret_dir, char **ret_name)
{
    const char *nm = strstr(p, "node_modules/"), *rest, *slash;
    size_t l = strlen(p);

    if (!nm || (nm != p && nm[-1] != '/') || strstr(nm + 13, "node_modules/") || l < 13 ||
        strcmp(p + l - 13, "/package.json"))
        return false;
    rest = nm + 13;
    slash = strchr(rest, '/');
    if (slash && rest[0] == '@')
        slash = strchr(slash + 1, '/');
    if (!slash || slash != p + l - 13)
        return false;
    *ret_dir = xstrndup(p, nm == p ? 0 : (size_t)(nm - p - 1));
    *ret_name = xstrndup(rest, (size_t)(slash - rest));
    return true;
}

/* What leaks in a credential-like file, or NULL when its content holds
 * nothing secret (a .npmrc with only a registry, certificates). */
static const char *leak_of(const char *path, const char *data)
{
    const char *b = base_name(path);

    if (!data)
        return NULL;
    if (strstr(data, "PRIVATE KEY-----"))
        return "a private key";
    if (!strcmp(b, ".npmrc"))
        return strstr(data, "_authToken") || strstr(data, "_auth=") ||
                       strstr(data, "_password")
                   ? "an npm token"
                   : NULL;
    if (!strcmp(b, ".env") || !strncmp(b, ".env.", 5)) {
        for (const char *l = data; *l;
             l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
            const char *eq = strchr(l, '='), *nl = strchr(l, '\n');

            if (*l != '#' && eq && (!nl || eq < nl) && eq[1] && eq[1] != '\n')
                return "environment secrets";
        }
        return NULL;
    }
    if (!strcmp(b, ".git-credentials") || !strcmp(b, ".netrc") || !strcmp(b, ".pypirc"))
        return data[0] ? "stored credentials" : NULL;
    if (!strcmp(b, "config.json"))
        return strstr(data, "\"auth\"") ? "registry credentials" : NULL;
    return NULL;
}

/* Whiteouts of layer l remove what lower layers put at or under them. */
static void apply_whiteout(struct scan *s, size_t l, const char *path)
{
    const char *b = base_name(path);
    _cleanup_free_ char *gone = NULL;
    bool opaque = !strcmp(b, ".wh..wh..opq");
    size_t dl = (size_t)(b - path);

    gone = opaque ? xstrndup(path, dl) : xasprintf("%.*s%s", (int)dl, path, b + 4);
    for (size_t i = 0; i < s->n; i++) {
        struct cand *c = &s->v[i];
        size_t gl = strlen(gone);

        if (c->layer >= l)
            continue;
        if (opaque ? !strncmp(c->path, gone, gl)
                   : (!strcmp(c->path, gone) ||
                      (!strncmp(c->path, gone, gl) && c->path[gl] == '/')))
            c->deleted = true;
    }
}

static void on_entry(struct scan *s, size_t l, const struct tar_entry *e)
{
    const char *tool, *leak, *b = base_name(e->path);
    char cache[512];
    char *dir, *name;

    if (!strncmp(b, ".wh.", 4)) {
        apply_whiteout(s, l, e->path);
        return;
    }
    if (e->type == 'd')
        return;
    if ((tool = tool_of(e->path)))
        add(s, CAND_TOOL, e->path, tool, l, NULL);
    else if (cache_of(e->path, cache, sizeof(cache)))
        add(s, CAND_CACHE, cache, cache, l, NULL);
    if (e->type == '-' && module_of(e->path, &dir, &name)) {
        add(s, CAND_MODULE, e->path, name, l, dir);
        free(name);
    }
    if (e->data && app_manifest(e->path)) {
        _cleanup_free_ char *d = xstrndup(e->path, (size_t)(b - e->path));

        if (d[0])
            d[strlen(d) - 1] = '\0';
        add(s, CAND_APP, e->path, d, l, xstrdup(e->data));
    }
    if (e->data && credential_name(e->path) && (leak = leak_of(e->path, e->data)))
        add(s, CAND_CRED, e->path, leak, l, NULL);
}

static char *layer_where(const struct scan *s, const struct cand *c)
{
    return xasprintf("layer %zu (%.19s): /%s", c->layer + 1,
                     s->img->layers[c->layer].desc.digest.str, c->path);
}

static bool alive(const struct scan *s, size_t i, enum cand_kind k)
{
    return s->v[i].kind == k && !s->v[i].deleted;
}

/* devDependencies of the app at app->key installed in its node_modules. */
static void report_dev(struct scan *s, const struct cand *app, struct lint_report *r)
{
    json_t *pj = json_loads(app->content, 0, NULL);
    json_t *dev = json_object_get(pj, "devDependencies");
    _cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
    size_t n = 0;

    for (size_t i = 0; dev && i < s->n; i++) {
        if (!alive(s, i, CAND_MODULE) || strcmp(s->v[i].content, app->key) ||
            !json_object_get(dev, s->v[i].key))
            continue;
        if (n++ < 5)
            strbuf_addf(&names, "%s%s", n > 1 ? ", " : "", s->v[i].key);
    }
    if (n)
        lint_add(r, "dev-dependencies", layer_where(s, app),
                 "install with 'npm ci --omit=dev' in the stage the image copies from",
                 "node_modules of /%s holds %zu devDependencies (%s%s)", app->key, n,
                 names.buf, n > 5 ? ", ..." : "");
    json_decref(pj);
}

static void report(struct scan *s, struct lint_report *r)
{
    for (size_t i = 0; i < s->n; i++) {
        struct cand *c = &s->v[i];
        bool first = true;

        for (size_t k = 0; k < i && first; k++)
            first = !(s->v[k].kind == c->kind && !s->v[k].deleted &&
                      !strcmp(s->v[k].key, c->key));
        if (c->kind == CAND_CRED)
            lint_add(r, "credential", layer_where(s, c),
                     "keep it out of the context (.ocibignore) or mount it as a --secret; "
                     "rotate it",
                     "/%s holds %s%s", c->path, c->key,
                     c->deleted ? " (deleted by a later layer, still in this one)" : "");
        if (c->deleted || !first)
            continue;
        if (c->kind == CAND_TOOL)
            lint_add(r, "toolchain", layer_where(s, c),
                     "build in an earlier stage and copy only what runs into the final one",
                     "the final image ships %s (/%s)", c->key, c->path);
        else if (c->kind == CAND_CACHE)
            lint_add(r, "package-cache", layer_where(s, c),
                     "use a cache_mounts entry for it, or remove it in the same layer",
                     "the image ships the package cache /%s", c->key);
        else if (c->kind == CAND_APP)
            report_dev(s, c, r);
    }
}

static int scan_layer(struct scan *s, size_t l, const char *path, struct ocib_error *err)
{
    struct tar_reader *tr;
    struct tar_entry e;
    int m;

    if (tar_reader_open_file(path, &tr, err) < 0)
        return -1;
    tar_reader_keep_if(tr, want, NULL, KEEP_MAX);
    while ((m = tar_reader_next(tr, &e, err)) > 0) {
        on_entry(s, l, &e);
        tar_entry_release(&e);
    }
    tar_reader_free(tr);
    return m < 0 ? ocib_error_wrap(err, "layer %zu", l + 1) : 0;
}

static void config_rules(const struct oci_image *img, long long max_size,
                         struct lint_report *r)
{
    const json_t *c = json_object_get(img->config, "config");
    const json_t *hc = json_object_get(c, "Healthcheck");
    const char *t0 = json_string_value(json_array_get(json_object_get(hc, "Test"), 0));
    uint64_t total = 0;

    /* A spec's finding already said it, at the spec's line. */
    if (!lint_has(r, "root-user") && !lint_has(r, "named-user"))
        lint_user(oci_json_str(c, "User") ? oci_json_str(c, "User") : "",
                  xstrdup("config: User"), r);
    if ((!hc || (t0 && !strcmp(t0, "NONE"))) && !r->saw_probes)
        lint_add(r, "no-healthcheck", xstrdup("config: Healthcheck"),
                 "give config.healthcheck, or probes in the workload's YAML",
                 "the image has no healthcheck and no probes were given");
    for (size_t i = 0; i < img->n_layers; i++)
        total += (uint64_t)img->layers[i].desc.size;
    if (max_size < 0)
        max_size = LINT_DEFAULT_MAX_SIZE;
    if (total > (uint64_t)max_size)
        lint_add(
            r, "image-size", xstrdup("layers"),
            "copy less into the final stage, or raise \"lint\": {\"max_size\"} on purpose",
            "the image's layers weigh %llu bytes, over the budget of %lld",
            (unsigned long long)total, max_size);
}

int lint_image(const struct oci_image *img, const struct lint_layer *layers,
               long long max_size, struct lint_report *r, struct ocib_error *err)
{
    struct scan s = {.img = img};
    int rc = 0;

    config_rules(img, max_size, r);
    for (size_t l = 0; l < img->n_layers && rc == 0; l++)
        if (layers[l].path)
            rc = scan_layer(&s, l, layers[l].path, err);
    if (rc == 0)
        report(&s, r);
    for (size_t i = 0; i < s.n; i++) {
        free(s.v[i].path);
        free(s.v[i].key);
        free(s.v[i].content);
    }
    free(s.v);
    return rc;
}
