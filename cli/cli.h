/*
 * The command line: one file per verb, dispatched from cli/main.c.  This is
 * the only layer that prints: results on stdout, progress and the final
 * error ("ocib: <message>") on stderr.
 */
#ifndef OCIB_CLI_CLI_H
#define OCIB_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "base/version.h"
#include "oci/platform.h"

/* One option of a verb.  A table ends with an entry whose name is NULL. */
struct cli_option {
    int id;            /* > 0: what cli_next returns for it */
    const char *name;  /* "--tag" */
    const char *alias; /* "-t", or NULL */
    const char *arg;   /* what its value is ("REF"), or NULL for a flag;
                        * "[=VALUE]": optional, only as --name=VALUE */
    const char *help;  /* one line for `ocib help VERB` */
};

#define CLI_OPERAND 0 /* cli_next: an operand, in *ret_value */
#define CLI_SKIP (-2) /* cli_next: "--", after which all are operands */

/* Reads argv[*i] against opts (advancing *i past a separate value):
 * returns the option's id with *ret_value its value (NULL for a flag),
 * CLI_OPERAND, CLI_SKIP, or -1 with a usage error naming verb for an
 * unknown option, a missing value or a value given to a flag. */
int cli_next(const char *verb, const struct cli_option *opts, int argc, char **argv, int *i,
             bool *operands_only, const char **ret_value, struct ocib_error *err);

/* One line per option: "  -t, --tag REF   help". */
void cli_print_options(FILE *f, const struct cli_option *opts);

/* A --build-arg value as "NAME=VALUE" (caller frees): NAME alone takes
 * the value from the environment, as Docker does. */
char *cli_build_arg(const char *v, struct ocib_error *err);

#define CLI_OPT_BUILD_ARG_ID 101
#define CLI_OPT_BUILD_ARG                                                                  \
    {                                                                                      \
        CLI_OPT_BUILD_ARG_ID, "--build-arg", NULL, "NAME[=VALUE]",                         \
            "set a build argument the spec declares in \"args\"; repeatable"               \
    }

/* build's command line, which resolve shares (cli/build.c): a new set of
 * defaults, one option of cli_build_options (its id and value, which must
 * outlive a) into it, SOURCE_DATE_EPOCH once all are in, and the
 * build_options they make (owned by a). */
struct build_args;
struct build_options;
struct build_args *cli_build_args_new(void);
int cli_build_args_take(struct build_args *a, int id, const char *v,
                        struct ocib_error *err);
int cli_build_args_finish(struct build_args *a, struct ocib_error *err);
struct build_options *cli_build_args_options(struct build_args *a);
void cli_build_args_free(struct build_args *a);

/* After a build (cli/lint.c): the spec's and the built image's lint
 * findings (reference: what build printed) as BUILD_EVENT_INFO notes
 * through o's progress; with fail_on_error an error finding fails. */
int cli_lint_notes(const struct build_options *o, const char *reference, bool fail_on_error,
                   struct ocib_error *err);

/* A build's progress on stderr (cli/progress.c).  The modes in the order
 * --progress names them. */
enum progress_mode { PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_JSON, PROGRESS_QUIET };
int cli_progress_parse(const char *s, enum progress_mode *ret, struct ocib_error *err);

struct build_event;
struct cli_progress;
enum progress_mode cli_build_args_progress(const struct build_args *a);
struct cli_progress *cli_progress_new(enum progress_mode mode);
/* Names the build in every line (plain: "LABEL: " before each; json: a
 * "context" member), for builds that run side by side on one stderr. */
void cli_progress_label(struct cli_progress *p, const char *label);
/* A build_progress_fn; opaque is the struct cli_progress. */
void cli_progress_event(void *opaque, const struct build_event *ev);
/* The build is over (err NULL: it succeeded): the live area collapses into
 * a summary; in json mode the error becomes an event, and err's message is
 * then cleared so that it is not printed again. */
void cli_progress_end(struct cli_progress *p, struct ocib_error *err);
void cli_progress_free(struct cli_progress *p);

/* True when argv (after the verb, before "--") asks for --help or -h. */
bool cli_wants_help(int argc, char **argv);

struct cli_verb {
    const char *name;
    int (*run)(int argc, char **argv, struct ocib_error *err);
    const char *usage;   /* after "ocib ", without the options */
    const char *summary; /* one line */
    const struct cli_option *options;
};

/* The options every registry-facing verb takes (CLI_OPT_REGISTRY: both). */
#define CLI_OPT_INSECURE_ID 100
#define CLI_OPT_INSECURE                                                                   \
    {                                                                                      \
        CLI_OPT_INSECURE_ID, "--insecure-registry", NULL, "HOST[:PORT]",                   \
            "use plain HTTP with HOST; repeatable"                                         \
    }
#define CLI_OPT_CERT_DIR_ID 104
#define CLI_OPT_CERT_DIR                                                                   \
    {                                                                                      \
        CLI_OPT_CERT_DIR_ID, "--cert-dir", NULL, "DIR",                                    \
            "every registry's TLS files: *.crt CAs, NAME.cert+NAME.key (default: certs.d)" \
    }
#define CLI_OPT_REGISTRY CLI_OPT_INSECURE, CLI_OPT_CERT_DIR

struct cache;
struct registries;

/* What the registry-facing verbs share: the cache and registry clients. */
struct cli_env {
    struct cache *cache;
    struct registries *registries;
    char **insecure;
    size_t n_insecure, alloc_insecure;
    const char *cert_dir;
    const char *cache_dir; /* NULL: OCIB_CACHE_DIR, else the default */
};

/* Records the value of an option of CLI_OPT_REGISTRY (id: which). */
void cli_env_take(struct cli_env *e, int id, const char *v);
int cli_env_open(struct cli_env *e, struct ocib_error *err);

/* What the verbs that read images (inspect, diff) take from their command
 * line: --json, --platform, CLI_OPT_REGISTRY's (into env) and up to two
 * images. */
struct cli_image_args {
    bool as_json;
    bool has_platform;
    struct oci_platform platform;
    const char *names[2];
    size_t n;
};

#define CLI_OPT_JSON_ID 102
#define CLI_OPT_PLATFORM_ID 103

/* Reads argv against opts (which may hold the three options above); more
 * than max images is a usage error naming verb. */
int cli_image_args_parse(const char *verb, const struct cli_option *opts, size_t max,
                         int argc, char **argv, struct cli_env *env,
                         struct cli_image_args *ret, struct ocib_error *err);

/* The cache directory to use: given (--cache-dir) or the default, resolved
 * by cache_dir_resolve; says on stderr when it is a symlink.  *ret is the
 * caller's to free. */
int cli_cache_dir(const char *given, char **ret, struct ocib_error *err);
void cli_env_release(struct cli_env *e);

/* n bytes as "512 B", "1.5 KiB", "20.0 MiB" or "1.25 GiB". */
void cli_human_size(uint64_t n, char *buf, size_t size);

struct image_diff;
struct image_source;
/* Prints an image comparison the way `ocib diff` does. */
void cli_diff_print(const struct image_diff *d, const struct image_source *a,
                    const struct image_source *b);

struct build_options;
struct build_result;
/* build --verify-against (cli/audit.c): compares what the build wrote with
 * against; differences are reported on stderr and fail. */
int cli_verify_against(const struct build_options *o, const struct build_result *res,
                       const char *against, bool quiet, struct ocib_error *err);

extern const struct cli_option cli_build_options[], cli_inspect_options[],
    cli_push_options[], cli_diff_options[], cli_login_options[], cli_lock_options[],
    cli_cache_options[], cli_lint_options[], cli_referrers_options[], cli_sbom_options[];
extern struct cli_option cli_resolve_options[];

int cli_build(int argc, char **argv, struct ocib_error *err);
int cli_inspect(int argc, char **argv, struct ocib_error *err);
int cli_diff(int argc, char **argv, struct ocib_error *err);
int cli_cache(int argc, char **argv, struct ocib_error *err);
int cli_lock(int argc, char **argv, struct ocib_error *err);
int cli_referrers(int argc, char **argv, struct ocib_error *err);
int cli_sbom(int argc, char **argv, struct ocib_error *err);
int cli_push(int argc, char **argv, struct ocib_error *err);
int cli_resolve(int argc, char **argv, struct ocib_error *err);
int cli_lint(int argc, char **argv, struct ocib_error *err);
int cli_login(int argc, char **argv, struct ocib_error *err);
int cli_logout(int argc, char **argv, struct ocib_error *err);
int cli_version(int argc, char **argv, struct ocib_error *err);
int cli_help(int argc, char **argv, struct ocib_error *err);
int cli_completion(int argc, char **argv, struct ocib_error *err);

extern const struct cli_verb cli_verbs[];
const struct cli_verb *cli_verb_find(const char *name);

#endif
