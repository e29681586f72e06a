/*
 * `ocib build`: parses the command line into build_options, prints progress
 * and, on success, the image's digest reference alone on stdout.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "builder/build.h"
#include "builder/run.h"
#include "oci/image.h"
#include "audit/verify.h"
#include "sbom/sbom.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_CONTEXT = 1,
    OPT_FILE,
    OPT_TARGET,
    OPT_TAG,
    OPT_OUTPUT,
    OPT_PUSH,
    OPT_PLATFORM,
    OPT_COMPRESSION,
    OPT_EPOCH,
    OPT_NO_CACHE,
    OPT_CACHE_DIR,
    OPT_DIGEST_FILE,
    OPT_CACHE_FROM,
    OPT_CACHE_TO,
    OPT_LOCKED,
    OPT_VERIFY,
    OPT_SECRET,
    OPT_PROGRESS,
    OPT_FORMAT,
    OPT_LINT,
    OPT_SBOM,
    OPT_PROVENANCE,
    OPT_SIGN_KEY,
    OPT_VERIFY_AGAINST,
    OPT_ISOLATION,
    OPT_ALLOW_NETWORK,
};

const struct cli_option cli_build_options[] = {
    {OPT_CONTEXT, "-C", NULL, "DIR", "the build context (default: the current directory)"},
    {OPT_FILE, "-f", NULL, "FILE", "the spec (default: DIR/ocib.json)"},
    {OPT_TARGET, "--target", NULL, "STAGE", "build this stage (default: the last one)"},
    CLI_OPT_BUILD_ARG,
    {OPT_TAG, "--tag", "-t", "REF",
     "name the image REF; repeatable (default: the git short SHA)"},
    {OPT_OUTPUT, "--output", "-o", "DEST",
     "write oci:DIR[:TAG] or docker-archive:FILE; repeatable (default: oci:ocib-out)"},
    {OPT_PUSH, "--push", NULL, NULL,
     "push to the registry of each tag (or the spec's image)"},
    {OPT_PLATFORM, "--platform", NULL, "OS/ARCH[/VARIANT]",
     "the platforms of stages that name none, comma-separated: several make an index "
     "(default: the host's)"},
    {OPT_COMPRESSION, "--compression", NULL, "gzip|zstd",
     "layer compression (default: gzip)"},
    {OPT_FORMAT, "--format", NULL, "oci|docker",
     "media types: OCI's (default) or Docker's, as podman writes (keeps Healthcheck)"},
    {OPT_EPOCH, "--source-date-epoch", NULL, "SECONDS",
     "the time of every timestamp (default: $SOURCE_DATE_EPOCH, else 0)"},
    {OPT_NO_CACHE, "--no-cache", NULL, NULL, "build every layer again"},
    {OPT_CACHE_DIR, "--cache-dir", NULL, "DIR",
     "the cache (default: $OCIB_CACHE_DIR, else ~/.cache/ocib)"},
    {OPT_DIGEST_FILE, "--digest-file", NULL, "FILE", "also write REPO@DIGEST into FILE"},
    CLI_OPT_REGISTRY,
    {OPT_CACHE_FROM, "--cache-from", NULL, "REF",
     "take cached layers from REF; repeatable"},
    {OPT_CACHE_TO, "--cache-to", NULL, "REF", "store the build's layer cache in REF"},
    {OPT_LOCKED, "--locked", NULL, NULL,
     "fail unless ocib.lock.json pins every base image"},
    {OPT_VERIFY, "--verify", NULL, NULL, "build twice in isolation; fail unless identical"},
    {OPT_SECRET, "--secret", NULL, "id=ID,src=PATH",
     "a file run layers mount at their secret's target; repeatable"},
    {OPT_ISOLATION, "--isolation", NULL, "sandbox|chroot",
     "run layers in the rootless sandbox (default; $OCIB_ISOLATION) or chrooted alone"},
    {OPT_ALLOW_NETWORK, "--allow-network", NULL, NULL,
     "under --isolation chroot, run \"network\": \"none\" layers with ocib's own network"},
    {OPT_SBOM, "--sbom", NULL, "[=spdx|cyclonedx]",
     "attach an SBOM of the image (default SPDX 2.3; CycloneDX 1.5)"},
    {OPT_PROVENANCE, "--provenance", NULL, NULL,
     "attach an in-toto SLSA v1 provenance of the build"},
    {OPT_SIGN_KEY, "--sign-key", NULL, "FILE",
     "sign what is pushed (cosign-style) with this PEM ECDSA P-256 key"},
    {OPT_VERIFY_AGAINST, "--verify-against", NULL, "IMAGE",
     "after building, compare with IMAGE as diff does; exit 1 when they differ"},
    {OPT_PROGRESS, "--progress", NULL, "plain|tty|json|quiet",
     "how progress is shown on stderr (default: tty on a terminal, else plain)"},
    {OPT_LINT, "--lint", NULL, "note|error|off",
     "after the build, lint findings as notes (default), failing on errors, or none"},
    {0, NULL, NULL, NULL, NULL},
};

/* What cli_build reads from its command line, and the arrays it owns. */
struct build_args {
    struct build_options o;
    enum progress_mode mode;
    bool verify;
    const char *lint;           /* --lint: "note", "error", "off" */
    const char *verify_against; /* --verify-against IMAGE */
    bool has_isolation;         /* --isolation given: $OCIB_ISOLATION is not read */
    size_t alloc_tags, alloc_outputs, alloc_insecure, alloc_cache_from, alloc_secrets,
        alloc_build_args;
};

static void build_args_release(struct build_args *a)
{
    for (size_t i = 0; i < a->o.n_outputs; i++) {
        free(a->o.outputs[i].path);
        free(a->o.outputs[i].tag);
    }
    free(a->o.outputs);
    for (size_t i = 0; i < a->o.n_build_args; i++)
        free(a->o.build_args[i]);
    free(a->o.build_args);
    free(a->o.tags);
    free(a->o.platforms);
    free(a->o.insecure);
    free(a->o.cache_from);
    for (size_t i = 0; i < a->o.n_secrets; i++) {
        free(a->o.secrets[i].id);
        free(a->o.secrets[i].src);
    }
    free(a->o.secrets);
}

/* --lint MODE. */
static int take_lint(struct build_args *a, const char *v, struct ocib_error *err)
{
    if (strcmp(v, "note") && strcmp(v, "error") && strcmp(v, "off"))
        return ocib_error_usage(
            err, "--lint: invalid value '%s': expected note, error or off", v);
    a->lint = v;
    return 0;
}

/* --isolation MODE, or $OCIB_ISOLATION (what names it). */
static int take_isolation(struct build_args *a, const char *v, const char *what,
                          struct ocib_error *err)
{
    if (!strcmp(v, "sandbox"))
        a->o.isolation = BUILD_ISOLATION_SANDBOX;
    else if (!strcmp(v, "chroot"))
        a->o.isolation = BUILD_ISOLATION_CHROOT;
    else
        return ocib_error_usage(err, "%s: invalid value '%s': expected sandbox or chroot",
                                what, v);
    a->has_isolation = true;
    return 0;
}

/* The options of attestations, of the audit after the build, and of the
 * isolation of run layers. */
static int take_attest_option(struct build_args *a, int id, const char *v,
                              struct ocib_error *err)
{
    struct build_options *o = &a->o;

    switch (id) {
    case OPT_SBOM: {
        enum sbom_format f = SBOM_SPDX;

        if (v && sbom_format_parse(v, &f) < 0)
            return ocib_error_usage(
                err, "--sbom: invalid value '%s': expected spdx or cyclonedx", v);
        o->sbom = (int)f;
        return 0;
    }
    case OPT_PROVENANCE:
        o->provenance = true;
        return 0;
    case OPT_SIGN_KEY:
        o->sign_key = v;
        return 0;
    case OPT_VERIFY_AGAINST:
        a->verify_against = v;
        return 0;
    case OPT_ISOLATION:
        return take_isolation(a, v, "--isolation", err);
    case OPT_ALLOW_NETWORK:
        o->allow_network = true;
        return 0;
    }
    return ocib_error_usage(err, "build: takes no operand '%s'; see 'ocib help build'", v);
}

/* One option and its value into a. */
static int take_option(struct build_args *a, int id, const char *v, struct ocib_error *err)
{
    struct build_options *o = &a->o;

    switch (id) {
    case OPT_CONTEXT:
        o->context_dir = v;
        return 0;
    case OPT_FILE:
        o->spec_file = v;
        return 0;
    case OPT_TARGET:
        o->target = v;
        return 0;
    case CLI_OPT_BUILD_ARG_ID: {
        char *kv = cli_build_arg(v, err);

        if (!kv)
            return -1;
        XGROW(o->build_args, a->alloc_build_args, o->n_build_args + 1);
        o->build_args[o->n_build_args++] = kv;
        return 0;
    }
    case OPT_TAG:
        XGROW(o->tags, a->alloc_tags, o->n_tags + 1);
        o->tags[o->n_tags++] = (char *)v;
        return 0;
    case OPT_OUTPUT:
        XGROW(o->outputs, a->alloc_outputs, o->n_outputs + 1);
        if (build_output_parse(v, &o->outputs[o->n_outputs], err) < 0)
            return -1;
        o->n_outputs++;
        return 0;
    case OPT_PUSH:
        o->push = true;
        return 0;
    case OPT_PLATFORM:
        free(o->platforms);
        o->platforms = NULL;
        return oci_platform_list_parse(v, &o->platforms, &o->n_platforms, err);
    case OPT_COMPRESSION:
        if (layer_compression_parse(v, &o->compression, err) < 0)
            return ocib_error_wrap(err, "--compression");
        return 0;
    case OPT_EPOCH:
        if (!oci_epoch_parse(v, &o->epoch))
            return ocib_error_usage(err, "--source-date-epoch: invalid value '%s'", v);
        o->has_epoch = true;
        return 0;
    case OPT_NO_CACHE:
        o->no_cache = true;
        return 0;
    case OPT_CACHE_DIR:
        o->cache_dir = v;
        return 0;
    case OPT_DIGEST_FILE:
        o->digest_file = v;
        return 0;
    case CLI_OPT_INSECURE_ID:
        XGROW(o->insecure, a->alloc_insecure, o->n_insecure + 1);
        o->insecure[o->n_insecure++] = (char *)v;
        return 0;
    case CLI_OPT_CERT_DIR_ID:
        o->cert_dir = v;
        return 0;
    case OPT_CACHE_FROM:
        XGROW(o->cache_from, a->alloc_cache_from, o->n_cache_from + 1);
        o->cache_from[o->n_cache_from++] = (char *)v;
        return 0;
    case OPT_CACHE_TO:
        o->cache_to = v;
        return 0;
    case OPT_LOCKED:
        o->locked = true;
        return 0;
    case OPT_VERIFY:
        a->verify = true;
        return 0;
    case OPT_SECRET:
        XGROW(o->secrets, a->alloc_secrets, o->n_secrets + 1);
        if (build_secret_parse(v, &o->secrets[o->n_secrets], err) < 0)
            return -1;
        o->n_secrets++;
        return 0;
    case OPT_FORMAT:
        if (!strcmp(v, "oci"))
            o->format = OCI_FORMAT_OCI;
        else if (!strcmp(v, "docker"))
            o->format = OCI_FORMAT_DOCKER;
        else
            return ocib_error_usage(
                err, "--format: invalid value '%s': expected oci or docker", v);
        return 0;
    case OPT_PROGRESS:
        return cli_progress_parse(v, &a->mode, err);
    case OPT_LINT:
        return take_lint(a, v, err);
    }
    return take_attest_option(a, id, v, err);
}

/* SOURCE_DATE_EPOCH when no flag gave the time, OCIB_ISOLATION when none
 * gave the isolation. */
static int epoch_from_env(struct build_args *a, struct ocib_error *err)
{
    const char *iso = getenv("OCIB_ISOLATION");

    if (!a->has_isolation && iso && *iso &&
        take_isolation(a, iso, "OCIB_ISOLATION", err) < 0)
        return -1;
    if (!a->o.has_epoch) {
        const char *env = getenv("SOURCE_DATE_EPOCH");

        if (env && *env) {
            if (!oci_epoch_parse(env, &a->o.epoch))
                return ocib_error_usage(
                    err, "invalid SOURCE_DATE_EPOCH '%s': expected seconds since 1970",
                    env);
            a->o.has_epoch = true;
        }
    }
    return 0;
}

/* The command line into a. */
static int parse_args(int argc, char **argv, struct build_args *a, struct ocib_error *err)
{
    bool operands_only = false;

    for (int i = 1; i < argc; i++) {
        const char *v;
        int id =
            cli_next("build", cli_build_options, argc, argv, &i, &operands_only, &v, err);

        if (id == CLI_SKIP)
            continue;
        if (id < 0 || take_option(a, id, v, err) < 0)
            return -1;
    }
    return epoch_from_env(a, err);
}

/* --verify: two isolated builds, their difference reported on stderr. */
static int verify_build(struct build_args *a, struct ocib_error *err)
{
    struct verify_result vr;

    if (a->mode != PROGRESS_QUIET)
        fprintf(stderr, "verify: building twice in isolation\n");
    if (build_verify(&a->o, &vr, err) < 0)
        return -1;
    if (!vr.identical) {
        /* The report goes to stderr: stdout is for the digest only. */
        fflush(stdout);
        int saved = dup(1);

        dup2(2, 1);
        printf("verify: not reproducible: %s vs %s%s%s%s\n", vr.a.str, vr.b.str,
               vr.platform[0] ? " (" : "", vr.platform, vr.platform[0] ? " differs)" : "");
        cli_diff_print(&vr.diff, &vr.a_src, &vr.b_src);
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        verify_result_release(&vr);
        return ocib_error_set(err,
                              "build --verify: two isolated builds gave different images");
    }
    if (a->mode != PROGRESS_QUIET)
        fprintf(stderr, "verify: reproducible, both builds gave %s\n", vr.a.str);
    verify_result_release(&vr);
    return 0;
}

/* Only the outputs' lines, for the second pass of --lint=error (the first
 * said everything else). */
static void outputs_only(void *opaque, const struct build_event *ev)
{
    if (ev->kind == BUILD_EVENT_OUTPUT)
        cli_progress_event(opaque, ev);
}

/* All but the outputs' lines, for the first pass (its scratch layout is no
 * output of the user's). */
static void all_but_outputs(void *opaque, const struct build_event *ev)
{
    if (ev->kind != BUILD_EVENT_OUTPUT)
        cli_progress_event(opaque, ev);
}

/* --lint=error: the image is built into a scratch layout first and linted
 * there, so that an error finding fails the build before any output is
 * written or anything pushed; the real build that follows is all cache
 * hits, and prints only what it writes. */
static int lint_gate(struct build_args *a, struct ocib_error *err)
{
    _cleanup_free_ char *anchor = xasprintf("%s/lint-gate", a->o.cache_dir);
    _cleanup_free_ char *dir = NULL;
    struct build_options first = a->o;
    struct build_output out = {.kind = BUILD_OUTPUT_OCI};
    struct build_result res = {0};
    int r = -1;

    if (fs_mkdtemp_beside(anchor, &dir, err) < 0)
        return -1;
    out.path = xasprintf("%s/image", dir);
    first.outputs = &out;
    first.n_outputs = 1;
    first.push = false;
    first.cache_to = NULL;
    first.digest_file = NULL;
    first.progress = all_but_outputs;
    if (build_run(&first, &res, err) == 0 &&
        cli_lint_notes(&first, res.reference, true, err) == 0)
        r = 0;
    build_result_release(&res);
    free(out.path);
    fs_rm_rf(dir, NULL);
    a->o.progress = outputs_only;
    return r;
}

int cli_build(int argc, char **argv, struct ocib_error *err)
{
    struct build_args a = {
        .o = {.compression = LAYER_COMPRESSION_GZIP},
        .mode = isatty(2) ? PROGRESS_TTY : PROGRESS_PLAIN,
    };
    _cleanup_free_ char *cache_real = NULL;
    struct build_result res = {0};
    struct cli_progress *p = NULL;
    int r = -1;

    if (parse_args(argc, argv, &a, err) < 0)
        goto out;
    if (cli_cache_dir(a.o.cache_dir, &cache_real, err) < 0)
        goto out;
    a.o.cache_dir = cache_real;
    if (a.verify && verify_build(&a, err) < 0)
        goto out;
    p = cli_progress_new(a.mode);
    a.o.progress = cli_progress_event;
    a.o.progress_opaque = p;
    if (a.lint && !strcmp(a.lint, "error") && lint_gate(&a, err) < 0)
        goto out;
    if (build_run(&a.o, &res, err) < 0)
        goto out;
    if (a.lint && !strcmp(a.lint, "error")) {
        /* Linted before anything was written: done. */
    } else if (a.lint ? strcmp(a.lint, "off") : a.mode != PROGRESS_QUIET) {
        bool fail = a.lint && !strcmp(a.lint, "error");

        /* Notes never fail a build; only --lint=error does. */
        if (cli_lint_notes(&a.o, res.reference, fail, err) < 0) {
            if (fail)
                goto out;
            ocib_error_clear(err);
        }
    }
    if (a.verify_against &&
        cli_verify_against(&a.o, &res, a.verify_against, a.mode == PROGRESS_QUIET, err) < 0)
        goto out;
    if (a.o.digest_file) {
        _cleanup_free_ char *line = xasprintf("%s\n", res.reference);

        if (fs_write_file_atomic(a.o.digest_file, line, strlen(line), 0644, err) < 0) {
            ocib_error_wrap(err, "--digest-file");
            goto out;
        }
    }
    r = 0;
out:
    /* In json mode every error is an event, a wrong command line too. */
    if (!p && r < 0 && a.mode == PROGRESS_JSON)
        p = cli_progress_new(a.mode);
    if (p)
        cli_progress_end(p, r < 0 ? err : NULL);
    cli_progress_free(p);
    if (r == 0)
        printf("%s\n", res.reference);
    build_result_release(&res);
    build_args_release(&a);
    return r;
}

struct build_args *cli_build_args_new(void)
{
    struct build_args *a = xcalloc(1, sizeof(*a));

    a->o.compression = LAYER_COMPRESSION_GZIP;
    a->mode = isatty(2) ? PROGRESS_TTY : PROGRESS_PLAIN;
    return a;
}

int cli_build_args_take(struct build_args *a, int id, const char *v, struct ocib_error *err)
{
    return take_option(a, id, v, err);
}

int cli_build_args_finish(struct build_args *a, struct ocib_error *err)
{
    return epoch_from_env(a, err);
}

struct build_options *cli_build_args_options(struct build_args *a)
{
    return &a->o;
}

enum progress_mode cli_build_args_progress(const struct build_args *a)
{
    return a->mode;
}

void cli_build_args_free(struct build_args *a)
{
    if (!a)
        return;
    build_args_release(a);
    free(a);
}
