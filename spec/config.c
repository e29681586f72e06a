/*
 * A stage's "config", the part of the image config the spec sets (user,
 * workdir, entrypoint, cmd, env, ports, volumes, labels, stop signal,
 * healthcheck, annotations): checked at its positions and typed; see
 * check.h.
 */
#include "spec/check.h"
#include "base/cleanup.h"
#include "base/ids.h"
#include "base/xalloc.h"

#include <string.h>

/* A duration at key of obj, in ns into *ret; -1 when absent. */
static int parse_duration(struct vctx *v, const json_t *obj, const char *path,
                          const char *key, long long *ret)
{
    json_t *x = json_object_get(obj, key);

    *ret = -1;
    if (!x)
        return 0;
    _cleanup_at_ struct at a = spec_at_key(v, obj, path, key);
    if (spec_expect_string(v, &a, x, true) < 0)
        return -1;
    if (spec_duration_parse(json_string_value(x), ret) < 0)
        return spec_fail(v, &a, "invalid duration \"%s\": expected e.g. \"30s\", \"1m30s\"",
                         json_string_value(x));
    return 0;
}

/* "PORT[/tcp|/udp|/sctp]" with 1 <= PORT <= 65535. */
static bool port_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    _cleanup_free_ char *port = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
    unsigned n;

    if (ocib_id_parse(port, strlen(port), &n) != OCIB_ID_NUMBER || n == 0 || n > 65535)
        return false;
    return !slash || !strcmp(slash, "/tcp") || !strcmp(slash, "/udp") ||
           !strcmp(slash, "/sctp");
}

static int parse_expose(struct vctx *v, const struct at *at, const json_t *x,
                        struct spec_config *c)
{
    size_t i;
    json_t *p;

    if (spec_expect_string_list(v, at, x, false, true) < 0)
        return -1;
    json_array_foreach(x, i, p)
    {
        if (!port_ok(json_string_value(p))) {
            _cleanup_at_ struct at b = spec_at_index(v, x, at->path, i);

            return spec_fail(v, &b, "invalid port \"%s\": expected PORT[/tcp|/udp|/sctp]",
                             json_string_value(p));
        }
    }
    c->expose = spec_strv_dup(x, &c->n_expose);
    return 0;
}

static int parse_healthcheck(struct vctx *v, const struct at *at, const json_t *x,
                             struct spec_healthcheck *h)
{
    static const char *const keys[] = {"test",         "interval", "timeout",
                                       "start_period", "retries",  NULL};
    json_t *t, *r;

    if (spec_expect_type(v, at, x, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, x, at->path, keys) < 0)
        return -1;
    t = json_object_get(x, "test");
    if (!t)
        return spec_fail(v, at, "missing required key \"test\"");
    {
        _cleanup_at_ struct at b = spec_at_key(v, x, at->path, "test");

        if (spec_parse_command(v, &b, t, false, true, &h->test) < 0)
            return -1;
        if (!h->test.shell && strcmp(h->test.argv[0], "CMD") &&
            strcmp(h->test.argv[0], "CMD-SHELL") && strcmp(h->test.argv[0], "NONE"))
            return spec_fail(
                v, &b, "the first element must be \"CMD\", \"CMD-SHELL\" or \"NONE\"");
    }
    if (parse_duration(v, x, at->path, "interval", &h->interval) < 0 ||
        parse_duration(v, x, at->path, "timeout", &h->timeout) < 0 ||
        parse_duration(v, x, at->path, "start_period", &h->start_period) < 0)
        return -1;
    h->retries = -1;
    r = json_object_get(x, "retries");
    if (r) {
        _cleanup_at_ struct at b = spec_at_key(v, x, at->path, "retries");

        if (!json_is_integer(r) || json_integer_value(r) < 0)
            return spec_fail(v, &b, "expected a non-negative integer");
        h->retries = json_integer_value(r);
    }
    h->set = true;
    return 0;
}

int spec_parse_config(struct vctx *v, const json_t *c, const char *path,
                      const struct at *at, struct spec_config *ret)
{
    static const char *const keys[] = {
        "user",    "workdir", "env",         "entrypoint",  "cmd",         "expose",
        "volumes", "labels",  "stop_signal", "healthcheck", "annotations", NULL};
    struct {
        const char *key;
        char **into;
    } strings[] = {{"user", &ret->user},
                   {"workdir", &ret->workdir},
                   {"stop_signal", &ret->stop_signal}};
    struct {
        const char *key;
        struct spec_command *into;
    } commands[] = {{"entrypoint", &ret->entrypoint}, {"cmd", &ret->cmd}};
    struct {
        const char *key;
        struct spec_map *into;
        bool env;
    } maps[] = {{"env", &ret->env, true},
                {"labels", &ret->labels, false},
                {"annotations", &ret->annotations, false}};
    json_t *x;

    if (spec_expect_type(v, at, c, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, c, path, keys) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
        x = json_object_get(c, strings[i].key);
        if (!x)
            continue;
        _cleanup_at_ struct at a = spec_at_key(v, c, path, strings[i].key);
        if (spec_expect_string(v, &a, x, true) < 0)
            return -1;
        /* A later stage's run steps run as the image's user. */
        if (strings[i].into == &ret->user &&
            spec_check_ids(v, &a, json_string_value(x), "user") < 0)
            return -1;
        *strings[i].into = xstrdup(json_string_value(x));
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        x = json_object_get(c, commands[i].key);
        if (!x)
            continue;
        _cleanup_at_ struct at a = spec_at_key(v, c, path, commands[i].key);
        if (spec_parse_command(v, &a, x, false, false, commands[i].into) < 0)
            return -1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
        x = json_object_get(c, maps[i].key);
        if (!x)
            continue;
        _cleanup_at_ struct at a = spec_at_key(v, c, path, maps[i].key);
        if (spec_expect_string_map(v, &a, x, maps[i].env ? spec_env_name_ok : NULL,
                                   maps[i].env ? "environment variable name" : NULL) < 0)
            return -1;
        spec_map_dup(x, maps[i].into);
    }
    x = json_object_get(c, "expose");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, c, path, "expose");

        if (parse_expose(v, &a, x, ret) < 0)
            return -1;
    }
    x = json_object_get(c, "volumes");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, c, path, "volumes");

        if (spec_expect_string_list(v, &a, x, false, true) < 0)
            return -1;
        ret->volumes = spec_strv_dup(x, &ret->n_volumes);
    }
    x = json_object_get(c, "healthcheck");
    if (x) {
        _cleanup_at_ struct at a = spec_at_key(v, c, path, "healthcheck");

        if (parse_healthcheck(v, &a, x, &ret->healthcheck) < 0)
            return -1;
    }
    return 0;
}

void spec_config_release(struct spec_config *c)
{
    free(c->user);
    free(c->workdir);
    free(c->stop_signal);
    spec_command_release(&c->entrypoint);
    spec_command_release(&c->cmd);
    spec_map_release(&c->env);
    spec_map_release(&c->labels);
    spec_map_release(&c->annotations);
    spec_strv_free(c->expose, c->n_expose);
    spec_strv_free(c->volumes, c->n_volumes);
    spec_command_release(&c->healthcheck.test);
    memset(c, 0, sizeof(*c));
}
