/*
 * `build --verify-against IMAGE`: the auditor's rebuild check.  After the
 * build, the image it produced (what it pushed, else its first output) is
 * compared with IMAGE as `ocib diff` does; when they differ the report goes
 * to stderr (stdout keeps the digest alone) and the build fails.
 */
#include "cli/cli.h"
#include "audit/diff.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "builder/build.h"
#include "transport/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the build wrote, as an image name; NULL when nothing can be read. */
static char *built_name(const struct build_options *o, const struct build_result *res)
{
    if (o->push && strchr(res->reference, '@'))
        return xstrdup(res->reference);
    for (size_t i = 0; i < o->n_outputs; i++)
        if (o->outputs[i].kind == BUILD_OUTPUT_OCI)
            return xasprintf("oci:%s%s%s", o->outputs[i].path, o->outputs[i].tag ? ":" : "",
                             o->outputs[i].tag ?: "");
    for (size_t i = 0; i < o->n_outputs; i++)
        return xasprintf("docker-archive:%s", o->outputs[i].path);
    return xstrdup("oci:ocib-out");
}

/* Prints the report on stderr. */
static void report(const struct image_diff *d, const struct image_source *a,
                   const struct image_source *b, const char *against)
{
    int saved;

    fflush(stdout);
    saved = dup(1);
    dup2(2, 1);
    printf("verify-against: the build differs from %s\n", against);
    cli_diff_print(d, a, b);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
}

int cli_verify_against(const struct build_options *o, const struct build_result *res,
                       const char *against, bool quiet, struct ocib_error *err)
{
    _cleanup_free_ char *mine = built_name(o, res);
    struct image_source a = {0}, b = {0};
    struct image_diff d = {0};
    struct cli_env env = {0};
    int r = -1;

    for (size_t i = 0; i < o->n_insecure; i++)
        cli_env_take(&env, CLI_OPT_INSECURE_ID, o->insecure[i]);
    if (o->cert_dir)
        cli_env_take(&env, CLI_OPT_CERT_DIR_ID, o->cert_dir);
    if (cli_env_open(&env, err) < 0 ||
        image_source_open(mine, NULL, env.cache, env.registries, NULL, &a, err) < 0 ||
        image_source_open(against, NULL, env.cache, env.registries, NULL, &b, err) < 0) {
        ocib_error_wrap(err, "--verify-against");
        goto out;
    }
    if (image_diff_compare(&a, &b, env.cache, env.registries, 50, &d, err) < 0) {
        ocib_error_wrap(err, "--verify-against %s", against);
        goto out;
    }
    if (!image_diff_identical(&d)) {
        report(&d, &a, &b, against);
        ocib_error_set(err, "build --verify-against: the build (%s) differs from %s",
                       a.manifest.digest.str, against);
        goto out;
    }
    if (!quiet)
        fprintf(stderr, "verify-against: identical to %s (%s)\n", against,
                b.manifest.digest.str);
    r = 0;
out:
    image_diff_release(&d);
    image_source_release(&a);
    image_source_release(&b);
    cli_env_release(&env);
    return r;
}
