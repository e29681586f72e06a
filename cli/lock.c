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

int cli_lock(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct spec spec;
    struct oci_platform plat;
    const char *ctx = ".", *file = NULL, *v;
    _cleanup_free_ char *spec_path = NULL;
    _cleanup_free_ char *out = NULL;
    bool update = false, has_platform = false;
    int m, r = -1;

    memset(&spec, 0, sizeof(spec));
    for (int i = 1; i < argc; i++) {
        if ((m = cli_env_option(&env, argc, argv, &i, err)) != 0) {
            if (m < 0)
                goto out;
        } else if ((m = cli_opt_value(argc, argv, &i, "-C", &v, err)) != 0) {
            if (m < 0)
                goto out;
            ctx = v;
        } else if ((m = cli_opt_value(argc, argv, &i, "-f", &v, err)) != 0) {
            if (m < 0)
                goto out;
            file = v;
        } else if ((m = cli_opt_value(argc, argv, &i, "--platform", &v, err)) != 0) {
            if (m < 0 || oci_platform_parse(v, &plat, err) < 0)
                goto out;
            has_platform = true;
        } else if (!strcmp(argv[i], "--update")) {
            update = true;
        } else {
            ocib_error_usage(err, "lock: unexpected '%s'; see 'ocib help lock'", argv[i]);
            goto out;
        }
    }
    spec_path = file ? xstrdup(file) : fs_path_join(ctx, "ocib.json");
    if (spec_load(&spec, spec_path, err) < 0 || cli_env_open(&env, err) < 0 ||
        lock_write(&spec, env.registries, env.cache, has_platform ? &plat : NULL, update,
                   err) < 0)
        goto out;
    out = lock_path(&spec);
    printf("%s\n", out);
    r = 0;
out:
    spec_release(&spec);
    cli_env_release(&env);
    return r;
}
