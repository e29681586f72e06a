/*
 * The cache and registry clients that push, inspect, diff, lock and login
 * share, and the registry options they all take.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "transport/remote.h"
#include "cache/blobs.h"
#include "cache/dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_env_take(struct cli_env *e, int id, const char *v)
{
    if (id == CLI_OPT_CERT_DIR_ID) {
        e->cert_dir = v;
        return;
    }
    XGROW(e->insecure, e->alloc_insecure, e->n_insecure + 1);
    e->insecure[e->n_insecure++] = (char *)v;
}

int cli_image_args_parse(const char *verb, const struct cli_option *opts, size_t max,
                         int argc, char **argv, struct cli_env *env,
                         struct cli_image_args *ret, struct ocib_error *err)
{
    bool operands_only = false;

    memset(ret, 0, sizeof(*ret));
    for (int i = 1; i < argc; i++) {
        const char *v;
        int id = cli_next(verb, opts, argc, argv, &i, &operands_only, &v, err);

        switch (id) {
        case CLI_OPT_INSECURE_ID:
        case CLI_OPT_CERT_DIR_ID:
            cli_env_take(env, id, v);
            break;
        case CLI_OPT_PLATFORM_ID:
            if (oci_platform_parse(v, &ret->platform, err) < 0)
                return -1;
            ret->has_platform = true;
            break;
        case CLI_OPT_JSON_ID:
            ret->as_json = true;
            break;
        case CLI_SKIP:
            break;
        case CLI_OPERAND:
            if (ret->n == max)
                return ocib_error_usage(err, "%s: takes %s", verb,
                                        max == 1 ? "one image" : "two images");
            ret->names[ret->n++] = v;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

int cli_cache_dir(const char *given, char **ret, struct ocib_error *err)
{
    _cleanup_free_ char *dir = given ? xstrdup(given) : cache_default_dir();
    bool link = false;

    if (cache_dir_resolve(dir, ret, &link, err) < 0)
        return -1;
    if (link)
        fprintf(stderr, "cache: %s is a symlink to %s\n", dir, *ret);
    return 0;
}

int cli_env_open(struct cli_env *e, struct ocib_error *err)
{
    _cleanup_free_ char *dir = NULL;

    if (cli_cache_dir(e->cache_dir, &dir, err) < 0)
        return -1;
    e->cache = xcalloc(1, sizeof(*e->cache));
    if (cache_open(e->cache, dir, err) < 0)
        return -1;
    return registries_new(e->insecure, e->n_insecure, e->cert_dir, &e->registries, err);
}

void cli_env_release(struct cli_env *e)
{
    if (e->cache)
        cache_release(e->cache);
    free(e->cache);
    registries_free(e->registries);
    free(e->insecure);
    memset(e, 0, sizeof(*e));
}
