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
    {"build", cli_build, "build [options]", "build the image a spec describes",
     cli_build_options},
    {"inspect", cli_inspect,
     "inspect [options] IMAGE\n"
     "      IMAGE: oci:DIR[:tag] | docker-archive:FILE | [docker://]REFERENCE",
     "show an image's manifest, config and layers", cli_inspect_options},
    {"push", cli_push,
     "push [options] SRC DEST\n"
     "      SRC: oci:DIR[:tag] | docker-archive:FILE; DEST: [docker://]REFERENCE",
     "push an image to a registry", cli_push_options},
    {"diff", cli_diff,
     "diff [options] A B\n"
     "      A, B: oci:DIR[:tag] | docker-archive:FILE | [docker://]REFERENCE\n"
     "      exit status: 0 identical, 1 different, 2 trouble",
     "compare two images (reproducibility audit)", cli_diff_options},
    {"resolve", cli_resolve,
     "resolve -f FILE|DIR|- [-f ...] [build options]\n"
     "      every 'image: ocib://PATH' built, pushed and replaced by repo@sha256:...",
     "build the ocib:// images of Kubernetes YAML and print it with their digests",
     cli_resolve_options},
    {"lint", cli_lint,
     "lint [options] [K8S_YAML]...\n"
     "      exit status: 0 no error finding, 1 some, 2 bad input",
     "check a spec, an image and Kubernetes YAML for the mistakes that bite in production",
     cli_lint_options},
    {"referrers", cli_referrers,
     "referrers [options] IMAGE\n"
     "      IMAGE: oci:DIR[:tag] | [docker://]REFERENCE",
     "list the artifacts (SBOM, provenance) attached to an image", cli_referrers_options},
    {"sbom", cli_sbom,
     "sbom [options] IMAGE\n"
     "      IMAGE: oci:DIR[:tag] | docker-archive:FILE | [docker://]REFERENCE",
     "print the SBOM attached to an image (or --generate one)", cli_sbom_options},
    {"login", cli_login, "login [options] REGISTRY -u USER --password-stdin",
     "check and store registry credentials", cli_login_options},
    {"logout", cli_logout, "logout REGISTRY", "forget registry credentials", NULL},
    {"lock", cli_lock, "lock [options]",
     "pin the spec's registry base images in ocib.lock.json", cli_lock_options},
    {"cache", cli_cache, "cache [options] du | prune | verify",
     "show, prune or verify the cache", cli_cache_options},
    {"version", cli_version, "version", "print ocib's version", NULL},
    {"help", cli_help, "help [COMMAND | --man]", "show help, or the manual page", NULL},
    {"completion", cli_completion, "completion bash",
     "print a bash completion script (source it, or install it)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct cli_verb *cli_verb_find(const char *name)
{
    for (const struct cli_verb *v = cli_verbs; v->name; v++)
        if (!strcmp(v->name, name))
            return v;
    return NULL;
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
    if (cli_wants_help(argc - 1, argv + 1))
        return cli_help(2, argv, &err) < 0 ? err.code : 0;
    /* Verbs that write stage roots (or remove them) run where their owners
     * are mapped; see sandbox_reexec_in_userns. */
    if (!strcmp(v->name, "build") || !strcmp(v->name, "cache") ||
        !strcmp(v->name, "resolve")) {
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
    if (!strcmp(v->name, "build") || !strcmp(v->name, "resolve"))
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
