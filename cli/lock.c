/*
 * `ocib lock [--update]`: pins the spec's registry base images in
 * ocib.lock.json beside the spec.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "spec/lock.h"
#include "spec/spec.h"

#include <stdio.h>
#include <string.h>

enum { OPT_CONTEXT = 1, OPT_FILE, OPT_UPDATE, OPT_PLATFORM };

const struct cli_option cli_lock_options[] = {
    {OPT_CONTEXT, "-C", NULL, "DIR", "the build context (default: the current directory)"},
    {OPT_FILE, "-f", NULL, "FILE", "the spec (default: DIR/ocib.json)"},
    {OPT_UPDATE, "--update", NULL, NULL, "resolve every image again, not only new ones"},
    {OPT_PLATFORM, "--platform", NULL, "OS/ARCH[/VARIANT]",
     "the platforms of stages that name none to pin, comma-separated (default: the "
     "host's)"},
    CLI_OPT_BUILD_ARG,
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

int cli_lock(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct spec spec;
    _cleanup_free_ struct oci_platform *plats = NULL;
    size_t n_plats = 0;
    const char *ctx = ".", *file = NULL, *v;
    _cleanup_free_ char *spec_path = NULL;
    _cleanup_free_ char *out = NULL;
    bool update = false, operands_only = false;
    char **build_args = NULL;
    size_t n_build_args = 0, alloc_build_args = 0;
    struct spec_inputs in;
    int r = -1;

    memset(&spec, 0, sizeof(spec));
    for (int i = 1; i < argc; i++) {
        int id =
            cli_next("lock", cli_lock_options, argc, argv, &i, &operands_only, &v, err);

        switch (id) {
        case CLI_OPT_INSECURE_ID:
        case CLI_OPT_CERT_DIR_ID:
            cli_env_take(&env, id, v);
            break;
        case OPT_CONTEXT:
            ctx = v;
            break;
        case OPT_FILE:
            file = v;
            break;
        case OPT_PLATFORM:
            free(plats);
            plats = NULL;
            if (oci_platform_list_parse(v, &plats, &n_plats, err) < 0)
                goto out;
            break;
        case OPT_UPDATE:
            update = true;
            break;
        case CLI_OPT_BUILD_ARG_ID:
            XGROW(build_args, alloc_build_args, n_build_args + 1);
            build_args[n_build_args] = cli_build_arg(v, err);
            if (!build_args[n_build_args])
                goto out;
            n_build_args++;
            break;
        case CLI_SKIP:
            break;
        case CLI_OPERAND:
            ocib_error_usage(err, "lock: unexpected '%s'; see 'ocib help lock'", v);
            goto out;
        default:
            goto out;
        }
    }
    spec_path = file ? xstrdup(file) : fs_path_join(ctx, "ocib.json");
    if (cli_env_open(&env, err) < 0)
        goto out;
    /* Each platform in turn, its spec read with its own arguments; after
     * the first, the lock written so far is kept and extended. */
    for (size_t k = 0; k < (n_plats ? n_plats : 1); k++) {
        const struct oci_platform *p = n_plats ? &plats[k] : NULL;

        spec_release(&spec);
        memset(&spec, 0, sizeof(spec));
        in = (struct spec_inputs){build_args, n_build_args, p};
        if (spec_load(&spec, spec_path, &in, err) < 0 ||
            lock_write(&spec, env.registries, env.cache, p, update && k == 0, err) < 0)
            goto out;
    }
    out = lock_path(&spec);
    printf("%s\n", out);
    r = 0;
out:
    for (size_t i = 0; i < n_build_args; i++)
        free(build_args[i]);
    free(build_args);
    spec_release(&spec);
    cli_env_release(&env);
    return r;
}
