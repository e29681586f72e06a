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
     "the platform of stages that name none (default: the host's)"},
    CLI_OPT_BUILD_ARG,
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

int cli_lock(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct spec spec;
    struct oci_platform plat;
    const char *ctx = ".", *file = NULL, *v;
    _cleanup_free_ char *spec_path = NULL;
    _cleanup_free_ char *out = NULL;
    bool update = false, has_platform = false, operands_only = false;
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
            if (oci_platform_parse(v, &plat, err) < 0)
                goto out;
            has_platform = true;
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
    in = (struct spec_inputs){build_args, n_build_args, has_platform ? &plat : NULL};
    if (spec_load(&spec, spec_path, &in, err) < 0 || cli_env_open(&env, err) < 0 ||
        lock_write(&spec, env.registries, env.cache, has_platform ? &plat : NULL, update,
                   err) < 0)
        goto out;
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
