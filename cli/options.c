/*
 * The command line's options: each verb declares a table of them (names,
 * value, one line of help), and one reader serves every verb, so that what
 * a verb accepts and what `ocib help VERB` says come from the same place.
 */
#include "cli/cli.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* The option of opts that arg names ("--name", "--name=VALUE", an alias);
 * *ret_inline gets what follows '=' (NULL when none). */
static const struct cli_option *find(const struct cli_option *opts, const char *arg,
                                     const char **ret_inline)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

    *ret_inline = eq ? eq + 1 : NULL;
    for (const struct cli_option *o = opts; o && o->name; o++) {
        const char *names[] = {o->name, o->alias};

        for (size_t k = 0; k < 2; k++)
            if (names[k] && strlen(names[k]) == len && !strncmp(arg, names[k], len))
                return o;
    }
    return NULL;
}

int cli_next(const char *verb, const struct cli_option *opts, int argc, char **argv, int *i,
             bool *operands_only, const char **ret_value, struct ocib_error *err)
{
    const char *arg = argv[*i], *inline_value;
    const struct cli_option *o;

    if (*operands_only || arg[0] != '-' || !arg[1]) {
        *ret_value = arg;
        return CLI_OPERAND;
    }
    if (!strcmp(arg, "--")) {
        *operands_only = true;
        return CLI_SKIP;
    }
    o = find(opts, arg, &inline_value);
    if (!o)
        return ocib_error_usage(err, "%s: unknown option '%s'; see 'ocib help %s'", verb,
                                arg, verb);
    if (!o->arg) {
        if (inline_value)
            return ocib_error_usage(err, "%s: %s takes no value", verb, o->name);
        *ret_value = NULL;
        return o->id;
    }
    if (inline_value) {
        *ret_value = inline_value;
        return o->id;
    }
    if (o->arg[0] == '[') { /* "[=VALUE]": a value only after '=' */
        *ret_value = NULL;
        return o->id;
    }
    if (*i + 1 >= argc)
        return ocib_error_usage(err, "%s: %s needs a value (%s)", verb, o->name, o->arg);
    *ret_value = argv[++*i];
    return o->id;
}

void cli_print_options(FILE *f, const struct cli_option *opts)
{
    for (const struct cli_option *o = opts; o && o->name; o++) {
        char names[64];

        snprintf(names, sizeof(names), "%s%s%s%s%s", o->alias ? o->alias : "",
                 o->alias ? ", " : "", o->name, o->arg && o->arg[0] != '[' ? " " : "",
                 o->arg ? o->arg : "");
        if (strlen(names) > 26)
            fprintf(f, "  %s\n  %-26s  %s\n", names, "", o->help);
        else
            fprintf(f, "  %-26s  %s\n", names, o->help);
    }
}

char *cli_build_arg(const char *v, struct ocib_error *err)
{
    const char *env;

    if (strchr(v, '='))
        return xstrdup(v);
    env = getenv(v);
    if (!env) {
        ocib_error_usage(err, "--build-arg %s: no value given and none in the environment",
                         v);
        return NULL;
    }
    return xasprintf("%s=%s", v, env);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return false;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    }
    return false;
}
