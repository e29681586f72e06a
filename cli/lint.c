/*
 * `ocib lint`: the rules of audit/lint.h on a spec (-C, -f), an image
 * (--image) and Kubernetes YAML (operands), the findings printed one a
 * line (or as one JSON document with --json).  Exit 0 with no error
 * finding, 1 with some, 2 when an input cannot be read.
 *
 * cli_lint_notes() serves `build`: the spec's and the built image's
 * findings as notes through the progress callback.
 */
#include "cli/cli.h"
#include "audit/lint.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "builder/build.h"
#include "base/strbuf.h"
#include "cache/blobs.h"
#include "cache/keys.h"
#include "transport/source.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_CONTEXT = 1,
    OPT_FILE,
    OPT_IMAGE,
    OPT_IGNORE,
    OPT_RULES,
};

const struct cli_option cli_lint_options[] = {
    {OPT_CONTEXT, "-C", NULL, "DIR", "lint the spec of the context DIR (DIR/ocib.json)"},
    {OPT_FILE, "-f", NULL, "FILE", "lint the spec FILE"},
    {OPT_IMAGE, "--image", NULL, "IMAGE",
     "lint a built image: oci:DIR[:TAG], docker-archive:FILE or a registry reference"},
    {OPT_IGNORE, "--ignore", NULL, "ID", "silence rule ID; repeatable"},
    {CLI_OPT_JSON_ID, "--json", NULL, NULL, "print one JSON document"},
    {OPT_RULES, "--rules", NULL, NULL, "list the rules, their ids and severities"},
    {CLI_OPT_PLATFORM_ID, "--platform", NULL, "OS/ARCH[/VARIANT]",
     "the image of an index to lint (default: the host's)"},
    CLI_OPT_INSECURE,
    {0, NULL, NULL, NULL, NULL},
};

struct lint_args {
    const char *context, *file, *image;
    bool json, rules, has_platform;
    bool local_only; /* layers not already here are not read (a build's notes) */
    struct oci_platform platform;
    char **yaml;
    size_t n_yaml, alloc_yaml;
};

static const char *severity_name(enum lint_severity s)
{
    return s == LINT_ERROR ? "error" : "warning";
}

static void print_text(const struct lint_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct lint_finding *f = &r->v[i];

        printf("%s: %s %s: %s; %s\n", f->where, severity_name(f->rule->severity),
               f->rule->id, f->what, f->fix);
    }
    printf("%zu error%s, %zu warning%s\n", lint_count(r, LINT_ERROR),
           lint_count(r, LINT_ERROR) == 1 ? "" : "s", lint_count(r, LINT_WARNING),
           lint_count(r, LINT_WARNING) == 1 ? "" : "s");
}

static void print_json(const struct lint_report *r)
{
    json_t *list = json_array(), *out;
    char *s;

    for (size_t i = 0; i < r->n; i++) {
        const struct lint_finding *f = &r->v[i];

        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
                                              f->rule->id, "severity",
                                              severity_name(f->rule->severity), "location",
                                              f->where, "message", f->what, "fix", f->fix));
    }
    out = json_pack("{s:o, s:I, s:I}", "findings", list, "errors",
                    (json_int_t)lint_count(r, LINT_ERROR), "warnings",
                    (json_int_t)lint_count(r, LINT_WARNING));
    s = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    json_decref(out);
}

static int parse(int argc, char **argv, struct lint_args *a, struct cli_env *env,
                 struct lint_report *r, struct ocib_error *err)
{
    bool operands_only = false;

    for (int i = 1; i < argc; i++) {
        const char *v;
        int id =
            cli_next("lint", cli_lint_options, argc, argv, &i, &operands_only, &v, err);

        switch (id) {
        case CLI_SKIP:
            break;
        case CLI_OPERAND:
            if (k8s_inputs_add(v, &a->yaml, &a->n_yaml, &a->alloc_yaml, err) < 0)
                return -1;
            break;
        case OPT_CONTEXT:
            a->context = v;
            break;
        case OPT_FILE:
            a->file = v;
            break;
        case OPT_IMAGE:
            a->image = v;
            break;
        case OPT_IGNORE:
            if (!lint_rule_find(v))
                return ocib_error_usage(err,
                                        "lint: --ignore %s: no such rule; see 'ocib "
                                        "lint --rules'",
                                        v);
            lint_report_ignore(r, v);
            break;
        case CLI_OPT_JSON_ID:
            a->json = true;
            break;
        case OPT_RULES:
            a->rules = true;
            break;
        case CLI_OPT_PLATFORM_ID:
            a->has_platform = true;
            if (oci_platform_parse(v, &a->platform, err) < 0)
                return -1;
            break;
        case CLI_OPT_INSECURE_ID:
        case CLI_OPT_CERT_DIR_ID:
            cli_env_take(env, id, v);
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* A build's notes: the image's findings are kept in the cache under the
 * manifest digest, the budget and which layers could be read, so that a
 * rebuild of the same image reads no layer again.  They are recorded
 * before any --ignore and replayed through lint_add, which applies it. */
static int lint_image_cached(const struct image_source *src,
                             const struct lint_layer *layers, long long max_size,
                             struct cache *c, struct lint_report *r, struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf slot = STRBUF_INIT;
    struct lint_report fresh = {0};
    json_t *rec, *list, *f;
    size_t i;

    strbuf_addf(&slot, "lint-image\n%s\n%lld\n", src->manifest.digest.str, max_size);
    for (size_t l = 0; l < src->img.n_layers; l++)
        strbuf_addch(&slot, layers[l].path ? '1' : '0');
    rec = cache_record_get(c, strbuf_str(&slot));
    if (!json_is_array(json_object_get(rec, "findings"))) {
        json_decref(rec);
        if (lint_image(&src->img, layers, max_size, &fresh, err) < 0) {
            lint_report_release(&fresh);
            return -1;
        }
        list = json_array();
        for (i = 0; i < fresh.n; i++)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "id",
                                                  fresh.v[i].rule->id, "where",
                                                  fresh.v[i].where, "what", fresh.v[i].what,
                                                  "fix", fresh.v[i].fix));
        rec = json_pack("{s:o}", "findings", list);
        cache_record_put(c, strbuf_str(&slot), rec, NULL);
        lint_report_release(&fresh);
    }
    /* As lint_image does: the spec's user finding stands for the image's. */
    bool had_user = lint_has(r, "root-user") || lint_has(r, "named-user");

    json_array_foreach(json_object_get(rec, "findings"), i, f)
    {
        const char *id = json_string_value(json_object_get(f, "id"));

        if (had_user && id && (!strcmp(id, "root-user") || !strcmp(id, "named-user")))
            continue;
        if (id && lint_rule_find(id))
            lint_add(r, id, xstrdup(json_string_value(json_object_get(f, "where")) ?: ""),
                     json_string_value(json_object_get(f, "fix")) ?: "", "%s",
                     json_string_value(json_object_get(f, "what")) ?: "");
    }
    json_decref(rec);
    return 0;
}

/* The image's rules, its layers fetched into the cache when remote. */
static int lint_named_image(const struct lint_args *a, struct cli_env *env,
                            long long max_size, struct lint_report *r,
                            struct ocib_error *err)
{
    struct image_source src = {0};
    _cleanup_free_ struct lint_layer *layers = NULL;
    int rc = -1;

    if (cli_env_open(env, err) < 0 ||
        image_source_open(a->image, NULL, env->cache, env->registries,
                          a->has_platform ? &a->platform : NULL, &src, err) < 0)
        goto out;
    layers = xcalloc(src.img.n_layers + 1, sizeof(*layers));
    for (size_t i = 0; i < src.n_srcs && i < src.img.n_layers; i++) {
        /* A build's notes download nothing: a layer only in the registry
         * (a base, a --cache-from hit) was linted where it was built. */
        if (a->local_only && (!src.srcs[i].path || access(src.srcs[i].path, R_OK) < 0))
            continue;
        if (blob_source_ensure_local(&src.srcs[i], env->cache, env->registries, err) < 0)
            goto out;
        layers[i].path = src.srcs[i].path;
    }
    rc = a->local_only ? lint_image_cached(&src, layers, max_size, env->cache, r, err)
                       : lint_image(&src.img, layers, max_size, r, err);
out:
    if (rc < 0)
        ocib_error_wrap(err, "lint: %s", a->image);
    image_source_release(&src);
    return rc;
}

static int run(struct lint_args *a, struct cli_env *env, struct lint_report *r,
               struct ocib_error *err)
{
    struct spec spec = {0};
    bool have_spec = a->context || a->file || (!a->image && !a->n_yaml);
    _cleanup_free_ char *file = NULL;
    long long max_size = -1;
    int rc = 0;

    if (have_spec) {
        file = a->file ? xstrdup(a->file)
                       : xasprintf("%s/ocib.json", a->context ? a->context : ".");
        if (spec_load(&spec, file, NULL, err) < 0)
            return -1;
        lint_spec(&spec, r);
        max_size = spec.lint.max_size;
    }
    for (size_t i = 0; i < a->n_yaml && rc == 0; i++) {
        struct k8s_stream s;

        rc = k8s_stream_load(&s, a->yaml[i], err);
        if (rc == 0)
            lint_k8s(&s, r);
        k8s_stream_release(&s);
    }
    if (rc == 0 && a->image)
        rc = lint_named_image(a, env, max_size, r, err);
    if (have_spec)
        spec_release(&spec);
    return rc;
}

int cli_lint(int argc, char **argv, struct ocib_error *err)
{
    struct lint_args a = {0};
    struct cli_env env = {0};
    struct lint_report r = {0};
    int rc = -1;

    if (parse(argc, argv, &a, &env, &r, err) < 0)
        goto out;
    if (a.rules) {
        for (const struct lint_rule *l = lint_rules; l->id; l++)
            printf("%-20s %-8s %s\n", l->id, severity_name(l->severity), l->summary);
        rc = 0;
        goto out;
    }
    if (run(&a, &env, &r, err) < 0) {
        err->code = OCIB_EXIT_USAGE; /* an input that cannot be read */
        goto out;
    }
    if (a.json)
        print_json(&r);
    else
        print_text(&r);
    rc = lint_count(&r, LINT_ERROR) ? ocib_error_set(err, "%s", "") : 0;
out:
    lint_report_release(&r);
    for (size_t i = 0; i < a.n_yaml; i++)
        free(a.yaml[i]);
    free(a.yaml);
    cli_env_release(&env);
    return rc;
}

/* The built image, read back from its first output (or the registry it
 * was pushed to), into the report. */
static int lint_built(const struct build_options *o, const char *reference,
                      long long max_size, struct lint_report *r, struct ocib_error *err)
{
    struct lint_args a = {0};
    struct cli_env env = {0};
    _cleanup_free_ char *name = NULL;
    int rc;

    if (o->n_outputs && o->outputs[0].kind == BUILD_OUTPUT_ARCHIVE)
        name = xasprintf("docker-archive:%s", o->outputs[0].path);
    else if (o->n_outputs)
        name = o->outputs[0].tag
                   ? xasprintf("oci:%s:%s", o->outputs[0].path, o->outputs[0].tag)
                   : xasprintf("oci:%s", o->outputs[0].path);
    else if (o->push)
        name = xstrdup(reference);
    else
        name = xstrdup("oci:ocib-out");
    a.image = name;
    a.local_only = true;
    env.cache_dir = o->cache_dir; /* the build's: its layers are there */
    /* Several platforms: the first one's image is linted. */
    a.has_platform = o->n_platforms > 0;
    if (o->n_platforms)
        a.platform = o->platforms[0];
    for (size_t i = 0; i < o->n_insecure; i++)
        cli_env_take(&env, CLI_OPT_INSECURE_ID, o->insecure[i]);
    if (o->cert_dir)
        cli_env_take(&env, CLI_OPT_CERT_DIR_ID, o->cert_dir);
    rc = lint_named_image(&a, &env, max_size, r, err);
    cli_env_release(&env);
    return rc;
}

int cli_lint_notes(const struct build_options *o, const char *reference, bool fail_on_error,
                   struct ocib_error *err)
{
    _cleanup_free_ char *file =
        o->spec_file ? xstrdup(o->spec_file)
                     : xasprintf("%s/ocib.json", o->context_dir ? o->context_dir : ".");
    struct spec_inputs in = {o->build_args, o->n_build_args,
                             o->n_platforms ? &o->platforms[0] : NULL};
    struct spec spec = {0};
    struct lint_report r = {0};
    size_t errors;

    if (spec_load(&spec, file, &in, err) < 0)
        return -1;
    lint_spec(&spec, &r);
    if (lint_built(o, reference, spec.lint.max_size, &r, err) < 0) {
        spec_release(&spec);
        lint_report_release(&r);
        return ocib_error_wrap(err, "lint");
    }
    for (size_t i = 0; i < r.n && o->progress; i++) {
        _cleanup_free_ char *text = xasprintf("lint: %s: %s %s: %s; %s", r.v[i].where,
                                              severity_name(r.v[i].rule->severity),
                                              r.v[i].rule->id, r.v[i].what, r.v[i].fix);
        struct build_event ev = {.kind = BUILD_EVENT_INFO,
                                 .status = "lint",
                                 .text = text,
                                 .detail = r.v[i].rule->id};

        o->progress(o->progress_opaque, &ev);
    }
    errors = lint_count(&r, LINT_ERROR);
    spec_release(&spec);
    lint_report_release(&r);
    if (fail_on_error && errors)
        return ocib_error_set(err,
                              "build --lint=error: %zu error finding%s (see the notes)",
                              errors, errors == 1 ? "" : "s");
    return 0;
}
