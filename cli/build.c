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

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum progress_mode { PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_JSON, PROGRESS_QUIET };

static void human_size(uint64_t n, char *buf, size_t size)
{
    if (n < 1024)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", (double)n / 1024);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(buf, size, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(buf, size, "%.2f GiB", (double)n / (1024.0 * 1024 * 1024));
}

static void print_progress(void *opaque, const struct build_event *ev)
{
    enum progress_mode mode = *(enum progress_mode *)opaque;
    char size[32];

    if (mode == PROGRESS_QUIET)
        return;
    if (mode == PROGRESS_JSON) {
        static const char *const kinds[] = {"stage",  "base", "layer",
                                            "output", "info", "log"};
        json_t *j = json_pack("{s:s}", "event", kinds[ev->kind]);
        char *s;

        if (ev->stage)
            json_object_set_new(j, "stage", json_string(ev->stage));
        if (ev->layer)
            json_object_set_new(j, "layer", json_string(ev->layer));
        if (ev->status)
            json_object_set_new(j, "status", json_string(ev->status));
        if (ev->digest)
            json_object_set_new(j, "digest", json_string(ev->digest));
        if (ev->text)
            json_object_set_new(j, "text", json_string(ev->text));
        if (ev->kind == BUILD_EVENT_LAYER) {
            json_object_set_new(j, "size", json_integer((json_int_t)ev->size));
            json_object_set_new(j, "entries", json_integer((json_int_t)ev->files));
            json_object_set_new(j, "seconds", json_real(ev->seconds));
        }
        s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    switch (ev->kind) {
    case BUILD_EVENT_STAGE:
        fprintf(stderr, "[%s] stage for %s\n", ev->stage, ev->text);
        break;
    case BUILD_EVENT_BASE:
        fprintf(stderr, "[%s] base %s %s\n", ev->stage, ev->text, ev->digest);
        break;
    case BUILD_EVENT_LAYER:
        human_size(ev->size, size, sizeof(size));
        fprintf(stderr, "[%s] layer %s: %s %s (%s, %llu entries, %.2fs)%s%s\n", ev->stage,
                ev->layer, ev->status, ev->digest, size, (unsigned long long)ev->files,
                ev->seconds, ev->text ? ": " : "", ev->text ? ev->text : "");
        break;
    case BUILD_EVENT_OUTPUT:
        fprintf(stderr, "wrote %s:%s\n", ev->status, ev->text);
        break;
    case BUILD_EVENT_INFO:
        fprintf(stderr, "%s\n", ev->text);
        break;
    case BUILD_EVENT_LOG:
        fprintf(stderr, "[%s/%s] %s\n", ev->stage, ev->layer, ev->text);
        break;
    }
}

static int parse_progress(const char *s, enum progress_mode *ret, struct ocib_error *err)
{
    if (!strcmp(s, "plain"))
        *ret = PROGRESS_PLAIN;
    else if (!strcmp(s, "tty"))
        *ret = PROGRESS_TTY;
    else if (!strcmp(s, "json"))
        *ret = PROGRESS_JSON;
    else if (!strcmp(s, "quiet"))
        *ret = PROGRESS_QUIET;
    else
        return ocib_error_usage(err,
                                "--progress: invalid value '%s': expected plain, tty, "
                                "json or quiet",
                                s);
    return 0;
}

int cli_build(int argc, char **argv, struct ocib_error *err)
{
    struct build_options o = {.compression = LAYER_COMPRESSION_GZIP};
    _cleanup_free_ char *cache_real = NULL;
    struct build_result res = {0};
    enum progress_mode mode = isatty(2) ? PROGRESS_TTY : PROGRESS_PLAIN;
    const char *digest_file = NULL;
    bool verify = false;
    size_t alloc_tags = 0, alloc_outputs = 0, alloc_insecure = 0, alloc_cache_from = 0,
           alloc_secrets = 0;
    int r = -1;

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;

#define OPT(name)                                                                          \
    ((m = cli_opt_value(argc, argv, &i, name, &v, err)) < 0 ? ({                           \
        goto out;                                                                          \
        0;                                                                                 \
    })                                                                                     \
                                                            : m)
        if (OPT("-C")) {
            o.context_dir = v;
        } else if (OPT("-f")) {
            o.spec_file = v;
        } else if (OPT("--target")) {
            o.target = v;
        } else if (OPT("--tag") || OPT("-t")) {
            XGROW(o.tags, alloc_tags, o.n_tags + 1);
            o.tags[o.n_tags++] = (char *)v;
        } else if (OPT("--output") || OPT("-o")) {
            XGROW(o.outputs, alloc_outputs, o.n_outputs + 1);
            if (build_output_parse(v, &o.outputs[o.n_outputs], err) < 0)
                goto out;
            o.n_outputs++;
        } else if (OPT("--platform")) {
            if (oci_platform_parse(v, &o.platform, err) < 0)
                goto out;
            o.has_platform = true;
        } else if (OPT("--compression")) {
            if (layer_compression_parse(v, &o.compression, err) < 0) {
                ocib_error_wrap(err, "--compression");
                goto out;
            }
        } else if (OPT("--source-date-epoch")) {
            if (!oci_epoch_parse(v, &o.epoch)) {
                ocib_error_usage(err, "--source-date-epoch: invalid value '%s'", v);
                goto out;
            }
            o.has_epoch = true;
        } else if (OPT("--cache-dir")) {
            o.cache_dir = v;
        } else if (OPT("--digest-file")) {
            digest_file = o.digest_file = v;
        } else if (OPT("--progress")) {
            if (parse_progress(v, &mode, err) < 0)
                goto out;
        } else if (!strcmp(argv[i], "--no-cache")) {
            o.no_cache = true;
        } else if (!strcmp(argv[i], "--push")) {
            o.push = true;
        } else if (OPT("--insecure-registry")) {
            XGROW(o.insecure, alloc_insecure, o.n_insecure + 1);
            o.insecure[o.n_insecure++] = (char *)v;
        } else if (OPT("--cache-from")) {
            XGROW(o.cache_from, alloc_cache_from, o.n_cache_from + 1);
            o.cache_from[o.n_cache_from++] = (char *)v;
        } else if (OPT("--cache-to")) {
            o.cache_to = v;
        } else if (!strcmp(argv[i], "--locked")) {
            o.locked = true;
        } else if (!strcmp(argv[i], "--verify")) {
            verify = true;
        } else if (OPT("--secret")) {
            XGROW(o.secrets, alloc_secrets, o.n_secrets + 1);
            if (build_secret_parse(v, &o.secrets[o.n_secrets], err) < 0)
                goto out;
            o.n_secrets++;
        } else {
            ocib_error_usage(err, "build: unknown option '%s'; see 'ocib help build'",
                             argv[i]);
            goto out;
        }
#undef OPT
    }
    if (!o.has_epoch) {
        const char *env = getenv("SOURCE_DATE_EPOCH");

        if (env && *env) {
            if (!oci_epoch_parse(env, &o.epoch)) {
                ocib_error_usage(
                    err, "invalid SOURCE_DATE_EPOCH '%s': expected seconds since 1970",
                    env);
                goto out;
            }
            o.has_epoch = true;
        }
    }
    o.progress = print_progress;
    o.progress_opaque = &mode;
    if (cli_cache_dir(o.cache_dir, &cache_real, err) < 0)
        goto out;
    o.cache_dir = cache_real;
    if (verify) {
        struct verify_result vr;

        if (mode != PROGRESS_QUIET)
            fprintf(stderr, "verify: building twice in isolation\n");
        if (build_verify(&o, &vr, err) < 0)
            goto out;
        if (!vr.identical) {
            /* The report goes to stderr: stdout is for the digest only. */
            fflush(stdout);
            int saved = dup(1);

            dup2(2, 1);
            printf("verify: not reproducible: %s vs %s\n", vr.a.str, vr.b.str);
            cli_diff_print(&vr.diff, &vr.a_src, &vr.b_src);
            fflush(stdout);
            dup2(saved, 1);
            close(saved);
            verify_result_release(&vr);
            ocib_error_set(err,
                           "build --verify: two isolated builds gave different images");
            goto out;
        }
        if (mode != PROGRESS_QUIET)
            fprintf(stderr, "verify: reproducible, both builds gave %s\n", vr.a.str);
        verify_result_release(&vr);
    }
    if (build_run(&o, &res, err) < 0)
        goto out;
    if (digest_file) {
        _cleanup_free_ char *line = xasprintf("%s\n", res.reference);

        if (fs_write_file_atomic(digest_file, line, strlen(line), 0644, err) < 0) {
            ocib_error_wrap(err, "--digest-file");
            goto out;
        }
    }
    printf("%s\n", res.reference);
    r = 0;
out:
    build_result_release(&res);
    for (size_t i = 0; i < o.n_outputs; i++) {
        free(o.outputs[i].path);
        free(o.outputs[i].tag);
    }
    free(o.outputs);
    free(o.tags);
    free(o.insecure);
    free(o.cache_from);
    for (size_t i = 0; i < o.n_secrets; i++) {
        free(o.secrets[i].id);
        free(o.secrets[i].src);
    }
    free(o.secrets);
    return r;
}
