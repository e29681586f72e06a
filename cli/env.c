/*
 * The cache and registry clients that push, inspect and login share.
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

int cli_env_option(struct cli_env *e, int argc, char **argv, int *i, struct ocib_error *err)
{
    const char *v;
    int m = cli_opt_value(argc, argv, i, "--insecure-registry", &v, err);

    if (m <= 0)
        return m;
    XGROW(e->insecure, e->alloc_insecure, e->n_insecure + 1);
    e->insecure[e->n_insecure++] = (char *)v;
    return 1;
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

    if (cli_cache_dir(NULL, &dir, err) < 0)
        return -1;
    e->cache = xcalloc(1, sizeof(*e->cache));
    if (cache_open(e->cache, dir, err) < 0)
        return -1;
    return registries_new(e->insecure, e->n_insecure, &e->registries, err);
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
