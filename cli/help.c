/*
 * `ocib help [VERB]` and `ocib version`.
 */
#include "cli/cli.h"

#include <stdio.h>

int cli_version(int argc, char **argv, struct ocib_error *err)
{
    printf("ocib %s (output format %s)\n", OCIB_VERSION, OCIB_FORMAT_VERSION);
    return 0;
}

int cli_help(int argc, char **argv, struct ocib_error *err)
{
    if (argc > 1) {
        const struct cli_verb *v = cli_verb_find(argv[1]);

        if (!v)
            return ocib_error_usage(err, "help: unknown command '%s'", argv[1]);
        printf("usage: ocib %s\n\n%s\n", v->usage, v->summary);
        if (v->options) {
            printf("\noptions:\n");
            cli_print_options(stdout, v->options);
        }
        return 0;
    }
    printf("usage: ocib <command> [options]\n\n"
           "ocib builds container images from a JSON spec, without a daemon.\n\n"
           "commands:\n");
    for (const struct cli_verb *v = cli_verbs; v->name; v++)
        printf("  %-9s %s\n", v->name, v->summary);
    printf("\n'ocib help <command>' shows a command's options.\n");
    return 0;
}
