/*
 * ocib's entry point: finds the verb, runs it, prints the error and maps it
 * to the exit status (0 success, 1 failure, 2 usage or spec error).
 */
#include "cli/cli.h"
#include "sandbox/sandbox.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const struct cli_verb cli_verbs[] = {
    {"build", cli_build,
     "build [-C DIR] [-f FILE] [--target NAME] [--tag REF]... [--push]\n"
     "      [--output oci:DIR | docker-archive:FILE]... [--platform P]\n"
     "      [--compression gzip|zstd] [--source-date-epoch N] [--no-cache]\n"
     "      [--cache-dir DIR] [--digest-file FILE] [--insecure-registry HOST[:PORT]]...\n"
     "      [--cache-from REF]... [--cache-to REF] [--locked] [--verify]\n"
     "      [--progress=plain|tty|json|quiet]",
     "build the image a spec describes"},
    {"inspect", cli_inspect,
     "inspect [--json] [--platform P] [--insecure-registry HOST]... REF\n"
     "      REF: oci:DIR[:tag] | docker-archive:FILE | registry reference",
     "show an image's manifest, config and layers"},
    {"push", cli_push,
     "push [--insecure-registry HOST]... [--digest-file FILE] SRC DEST\n"
     "      SRC: oci:DIR[:tag] | docker-archive:FILE; DEST: a registry reference",
     "push an image to a registry"},
    {"diff", cli_diff,
     "diff [--json] [--platform P] [--insecure-registry HOST]... A B\n"
     "      A, B: oci:DIR[:tag] | docker-archive:FILE | registry reference\n"
     "      exit status: 0 identical, 1 different, 2 trouble",
     "compare two images (reproducibility audit)"},
    {"login", cli_login,
     "login [--insecure-registry HOST] REGISTRY -u USER --password-stdin",
     "check and store registry credentials"},
    {"logout", cli_logout, "logout REGISTRY", "forget registry credentials"},
    {"lock", cli_lock,
     "lock [-C DIR] [-f FILE] [--update] [--platform P] [--insecure-registry HOST]...",
     "pin the spec's registry base images in ocib.lock.json"},
    {"cache", cli_cache,
     "cache [--cache-dir DIR] du [--json] | prune [--keep-bytes N] | verify",
     "show, prune or verify the cache"},
    {"version", cli_version, "version", "print ocib's version"},
    {"help", cli_help, "help [VERB]", "show help"},
    {NULL, NULL, NULL, NULL},
};

const struct cli_verb *cli_verb_find(const char *name)
{
    for (const struct cli_verb *v = cli_verbs; v->name; v++)
        if (!strcmp(v->name, name))
            return v;
    return NULL;
}

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **ret,
                  struct ocib_error *err)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *ret = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return ocib_error_usage(err, "%s needs a value", name);
    *ret = argv[++*i];
    return 1;
}

/* Ends the program as killed by signo (the status a shell shows as
 * 128+signo), after the cleanup has been done. */
static void die_of_signal(int signo)
{
    sigset_t set;

    fflush(NULL);
    signal(signo, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, signo);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(signo);
    _exit(128 + signo);
}

int main(int argc, char **argv)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    const struct cli_verb *v;

    /* Names in layers are UTF-8 whatever the user's locale: libarchive
     * converts through the C library's multibyte functions, so the program
     * runs them in C.UTF-8 (never in a locale that could change a digest). */
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C");
    if (argc < 2) {
        cli_help(1, argv, &err);
        return OCIB_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cli_help(argc - 1, argv + 1, &err) < 0 ? err.code : 0;
    if (!strcmp(argv[1], "--version"))
        return cli_version(argc - 1, argv + 1, &err) < 0 ? err.code : 0;
    v = cli_verb_find(argv[1]);
    if (!v) {
        fprintf(stderr, "ocib: %s: unknown command; see 'ocib help'\n", argv[1]);
        return OCIB_EXIT_USAGE;
    }
    /* Verbs that write stage roots (or remove them) run where their owners
     * are mapped; see sandbox_reexec_in_userns. */
    if (!strcmp(v->name, "build") || !strcmp(v->name, "cache")) {
        int status, rc = sandbox_reexec_in_userns(argv, &status, &err);

        if (rc < 0) {
            fprintf(stderr, "ocib: %s\n", err.msg);
            return OCIB_EXIT_FAILURE;
        }
        if (rc > 0) {
            if (WIFSIGNALED(status))
                die_of_signal(WTERMSIG(status));
            return WEXITSTATUS(status);
        }
    }
    if (!strcmp(v->name, "build"))
        sandbox_cancel_install();
    if (v->run(argc - 1, argv + 1, &err) < 0) {
        /* A failure without a message only sets the status (diff: 1 means
         * "different"); the verb has said what there was to say. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "ocib: cannot write to standard output\n");
            return OCIB_EXIT_FAILURE;
        }
        if (err.msg[0])
            fprintf(stderr, "ocib: %s\n", err.msg);
        if (sandbox_cancelled())
            die_of_signal(sandbox_cancelled());
        return err.code ? err.code : OCIB_EXIT_FAILURE;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ocib: cannot write to standard output\n");
        return OCIB_EXIT_FAILURE;
    }
    return 0;
}
