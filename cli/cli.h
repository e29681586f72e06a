/*
 * The command line: one file per verb, dispatched from cli/main.c.  This is
 * the only layer that prints: results on stdout, progress and the final
 * error ("ocib: <message>") on stderr.
 */
#ifndef OCIB_CLI_CLI_H
#define OCIB_CLI_CLI_H

#include <stdbool.h>

#include "base/error.h"
#include "base/version.h"

struct cli_verb {
    const char *name;
    int (*run)(int argc, char **argv, struct ocib_error *err);
    const char *usage;
    const char *summary;
};

/* Option parsing shared by the verbs: matches "--name VALUE" and
 * "--name=VALUE" at argv[*i]; advances *i past what it used.  Returns 1 on a
 * match (with *ret set), 0 when argv[*i] is another option, -1 on a missing
 * value. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **ret,
                  struct ocib_error *err);

struct cache;
struct registries;

/* What the registry-facing verbs share: the cache and registry clients. */
struct cli_env {
    struct cache *cache;
    struct registries *registries;
    char **insecure;
    size_t n_insecure, alloc_insecure;
};

/* Consumes --insecure-registry at argv[*i]; returns 1 when it did. */
int cli_env_option(struct cli_env *e, int argc, char **argv, int *i,
                   struct ocib_error *err);
int cli_env_open(struct cli_env *e, struct ocib_error *err);

/* The cache directory to use: given (--cache-dir) or the default, resolved
 * by cache_dir_resolve; says on stderr when it is a symlink.  *ret is the
 * caller's to free. */
int cli_cache_dir(const char *given, char **ret, struct ocib_error *err);
void cli_env_release(struct cli_env *e);

struct image_diff;
struct image_source;
/* Prints an image comparison the way `ocib diff` does. */
void cli_diff_print(const struct image_diff *d, const struct image_source *a,
                    const struct image_source *b);

int cli_build(int argc, char **argv, struct ocib_error *err);
int cli_inspect(int argc, char **argv, struct ocib_error *err);
int cli_diff(int argc, char **argv, struct ocib_error *err);
int cli_cache(int argc, char **argv, struct ocib_error *err);
int cli_lock(int argc, char **argv, struct ocib_error *err);
int cli_push(int argc, char **argv, struct ocib_error *err);
int cli_login(int argc, char **argv, struct ocib_error *err);
int cli_logout(int argc, char **argv, struct ocib_error *err);
int cli_version(int argc, char **argv, struct ocib_error *err);
int cli_help(int argc, char **argv, struct ocib_error *err);

extern const struct cli_verb cli_verbs[];
const struct cli_verb *cli_verb_find(const char *name);

#endif
