/*
 * registries.conf; see regconf.h.
 */
#include "registry/regconf.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "registry/toml.h"

#include <stdlib.h>
#include <string.h>

/* Reads a key of table t that must have kind (or be absent). */
static int get_typed(const char *path, const struct toml_value *t, const char *where,
                     const char *key, enum toml_kind kind, const struct toml_value **ret,
                     struct ocib_error *err)
{
    const struct toml_value *v = toml_get(t, key);

    *ret = NULL;
    if (v && v->kind != kind)
        return ocib_error_set(err, "%s:%d: %s.%s: expected %s, got %s", path, v->line,
                              where, key, toml_kind_name(kind), toml_kind_name(v->kind));
    *ret = v;
    return 0;
}

static int get_bool(const char *path, const struct toml_value *t, const char *where,
                    const char *key, bool *ret, struct ocib_error *err)
{
    const struct toml_value *v;

    if (get_typed(path, t, where, key, TOML_BOOL, &v, err) < 0)
        return -1;
    *ret = v && v->boolean;
    return 0;
}

/* A location or prefix: HOST[:PORT][/NAMESPACE...], no scheme, no space. */
static int check_name(const char *path, const struct toml_value *v, const char *where,
                      const char *key, struct ocib_error *err)
{
    const char *s = v->str;

    if (strstr(s, "://"))
        return ocib_error_set(
            err, "%s:%d: %s.%s: '%s' has a scheme; write HOST[:PORT][/NAMESPACE]", path,
            v->line, where, key, s);
    if (strpbrk(s, " \t") || (*s && s[strlen(s) - 1] == '/'))
        return ocib_error_set(err, "%s:%d: %s.%s: '%s' is not HOST[:PORT][/NAMESPACE]",
                              path, v->line, where, key, s);
    return 0;
}

static int parse_pull(const char *path, const struct toml_value *v, enum regconf_pull *ret,
                      struct ocib_error *err)
{
    if (!strcmp(v->str, "all"))
        *ret = REGCONF_PULL_ALL;
    else if (!strcmp(v->str, "digest-only"))
        *ret = REGCONF_PULL_DIGEST_ONLY;
    else if (!strcmp(v->str, "tag-only"))
        *ret = REGCONF_PULL_TAG_ONLY;
    else
        return ocib_error_set(err,
                              "%s:%d: registry.mirror.pull-from-mirror: '%s': expected "
                              "\"all\", \"digest-only\" or \"tag-only\"",
                              path, v->line, v->str);
    return 0;
}

static int parse_mirror(const char *path, const struct toml_value *t, bool by_digest_only,
                        struct regconf_mirror *ret, struct ocib_error *err)
{
    const struct toml_value *loc, *pull;
    const char *where = "registry.mirror";

    memset(ret, 0, sizeof(*ret));
    if (t->kind != TOML_TABLE)
        return ocib_error_set(err, "%s:%d: %s: expected a table", path, t->line, where);
    if (get_typed(path, t, where, "location", TOML_STRING, &loc, err) < 0 ||
        get_typed(path, t, where, "pull-from-mirror", TOML_STRING, &pull, err) < 0 ||
        get_bool(path, t, where, "insecure", &ret->insecure, err) < 0)
        return -1;
    if (!loc || !*loc->str)
        return ocib_error_set(err, "%s:%d: %s.location: missing or empty", path, t->line,
                              where);
    if (check_name(path, loc, where, "location", err) < 0)
        return -1;
    if (pull && by_digest_only)
        return ocib_error_set(err,
                              "%s:%d: %s.pull-from-mirror: cannot be set with "
                              "mirror-by-digest-only = true",
                              path, pull->line, where);
    if (pull && parse_pull(path, pull, &ret->pull, err) < 0)
        return -1;
    if (by_digest_only)
        ret->pull = REGCONF_PULL_DIGEST_ONLY;
    ret->location = xstrdup(loc->str);
    return 0;
}

static void registry_release(struct regconf_registry *r)
{
    for (size_t i = 0; i < r->n_mirrors; i++)
        free(r->mirrors[i].location);
    free(r->mirrors);
    free(r->prefix);
    free(r->location);
    memset(r, 0, sizeof(*r));
}

/* One [[registry]] table into *ret. */
static int parse_registry(const char *path, const struct toml_value *t,
                          struct regconf_registry *ret, struct ocib_error *err)
{
    const struct toml_value *prefix, *loc, *mirrors;
    const char *where = "registry";
    bool by_digest_only = false;

    memset(ret, 0, sizeof(*ret));
    ret->line = t->line;
    if (t->kind != TOML_TABLE)
        return ocib_error_set(err, "%s:%d: registry: expected a table", path, t->line);
    if (get_typed(path, t, where, "prefix", TOML_STRING, &prefix, err) < 0 ||
        get_typed(path, t, where, "location", TOML_STRING, &loc, err) < 0 ||
        get_typed(path, t, where, "mirror", TOML_ARRAY, &mirrors, err) < 0 ||
        get_bool(path, t, where, "insecure", &ret->insecure, err) < 0 ||
        get_bool(path, t, where, "blocked", &ret->blocked, err) < 0 ||
        get_bool(path, t, where, "mirror-by-digest-only", &by_digest_only, err) < 0)
        return -1;
    if ((prefix && check_name(path, prefix, where, "prefix", err) < 0) ||
        (loc && check_name(path, loc, where, "location", err) < 0))
        return -1;
    if (prefix && !strncmp(prefix->str, "*.", 2)) {
        if (loc && *loc->str)
            return ocib_error_set(err,
                                  "%s:%d: registry.location: must be empty with the "
                                  "wildcard prefix '%s'",
                                  path, loc->line, prefix->str);
    } else if (!(loc && *loc->str) && !(prefix && *prefix->str)) {
        return ocib_error_set(err, "%s:%d: registry: has neither a location nor a prefix",
                              path, t->line);
    }
    ret->location = xstrdup(loc && *loc->str                          ? loc->str
                            : prefix && strncmp(prefix->str, "*.", 2) ? prefix->str
                                                                      : "");
    ret->prefix = xstrdup(prefix && *prefix->str ? prefix->str : ret->location);
    if (mirrors && mirrors->n > REGCONF_MIRRORS_MAX) {
        registry_release(ret);
        return ocib_error_set(err, "%s:%d: registry.mirror: more than %d mirrors", path,
                              mirrors->line, REGCONF_MIRRORS_MAX);
    }
    ret->mirrors = xcalloc(mirrors ? mirrors->n + 1 : 1, sizeof(*ret->mirrors));
    for (size_t i = 0; mirrors && i < mirrors->n; i++) {
        if (parse_mirror(path, mirrors->items[i], by_digest_only, &ret->mirrors[i], err) <
            0) {
            registry_release(ret);
            return -1;
        }
        ret->n_mirrors++;
    }
    return 0;
}

int regconf_parse(const char *path, const char *text, size_t len, struct regconf *ret,
                  struct ocib_error *err)
{
    struct toml_value *doc;
    const struct toml_value *regs;
    struct regconf c = {0};
    int rc = -1;

    if (toml_parse(path, text, len, &doc, err) < 0)
        return -1;
    regs = toml_get(doc, "registry");
    if (regs && regs->kind != TOML_ARRAY) {
        /* "[registry]" (one table) is a common slip for "[[registry]]". */
        ocib_error_set(err, "%s:%d: registry: expected [[registry]] tables, got %s", path,
                       regs->line, toml_kind_name(regs->kind));
        goto out;
    }
    c.path = xstrdup(path);
    c.v = xcalloc(regs ? regs->n + 1 : 1, sizeof(*c.v));
    for (size_t i = 0; regs && i < regs->n; i++) {
        if (parse_registry(path, regs->items[i], &c.v[c.n], err) < 0)
            goto out;
        for (size_t k = 0; k < c.n; k++)
            if (!strcmp(c.v[k].prefix, c.v[c.n].prefix)) {
                ocib_error_set(err, "%s:%d: registry.prefix: '%s' is given twice (line %d)",
                               path, c.v[c.n].line, c.v[c.n].prefix, c.v[k].line);
                c.n++;
                goto out;
            }
        c.n++;
    }
    *ret = c;
    memset(&c, 0, sizeof(c));
    rc = 0;
out:
    regconf_release(&c);
    toml_free(doc);
    return rc;
}

void regconf_release(struct regconf *c)
{
    for (size_t i = 0; i < c->n; i++)
        registry_release(&c->v[i]);
    free(c->v);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

/* The file to read (caller frees), NULL when none exists. */
static char *conf_path(void)
{
    const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    char *user = NULL;

    if (env && *env)
        return xstrdup(env);
    if (xdg && *xdg)
        user = xasprintf("%s/containers/registries.conf", xdg);
    else if (home && *home)
        user = xasprintf("%s/.config/containers/registries.conf", home);
    if (user && fs_exists(user))
        return user;
    free(user);
    return xstrdup("/etc/containers/registries.conf");
}

int regconf_load(struct regconf *ret, struct ocib_error *err)
{
    _cleanup_free_ char *path = conf_path();
    _cleanup_free_ char *buf = NULL;
    const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
    size_t len;

    memset(ret, 0, sizeof(*ret));
    /* A missing default file is no configuration; a named one must exist. */
    if (!(env && *env) && !fs_exists(path))
        return 0;
    if (fs_read_file(path, TOML_MAX, &buf, &len, err) < 0)
        return ocib_error_wrap(err, "registries.conf");
    return regconf_parse(path, buf, len, ret, err);
}

/* How much of name prefix matches: its length, or 0. */
static size_t match_len(const char *prefix, const char *name)
{
    size_t n = strlen(prefix);

    if (!strncmp(prefix, "*.", 2)) {
        size_t host = strcspn(name, "/");

        /* "*.example.com" matches "a.example.com" and "a.b.example.com". */
        if (host > n - 1 && !strncmp(name + host - (n - 1), prefix + 1, n - 1))
            return n;
        return 0;
    }
    if (strncmp(prefix, name, n))
        return 0;
    return name[n] == '\0' || name[n] == '/' ? n : 0;
}

const struct regconf_registry *regconf_find(const struct regconf *c, const char *name)
{
    const struct regconf_registry *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < c->n; i++) {
        size_t n = match_len(c->v[i].prefix, name);

        if (n > best_len) {
            best = &c->v[i];
            best_len = n;
        }
    }
    return best;
}

char *regconf_rewrite(const struct regconf_registry *r, const char *location,
                      const char *name)
{
    if (!strncmp(r->prefix, "*.", 2)) {
        /* A wildcard table's mirrors take the whole name after them. */
        if (location == r->location || !*location)
            return xstrdup(name);
        return xasprintf("%s/%s", location, name + strcspn(name, "/") + 1);
    }
    return xasprintf("%s%s", location, name + strlen(r->prefix));
}

bool regconf_host_insecure(const struct regconf *c, const char *host)
{
    const struct regconf_registry *own = regconf_find(c, host);
    size_t n = strlen(host);

    if (own && own->insecure && !strchr(own->prefix, '/'))
        return true;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].insecure && !strncmp(c->v[i].location, host, n) &&
            (c->v[i].location[n] == '\0' || c->v[i].location[n] == '/'))
            return true;
        for (size_t k = 0; k < c->v[i].n_mirrors; k++) {
            const struct regconf_mirror *m = &c->v[i].mirrors[k];

            if (m->insecure && !strncmp(m->location, host, n) &&
                (m->location[n] == '\0' || m->location[n] == '/'))
                return true;
        }
    }
    return false;
}
