/*
 * `ocib resolve -f FILE|DIR|- ...`: Kubernetes YAML in, every `image:
 * ocib://PATH` built and pushed as `build --push` would, the YAML out with
 * those values replaced by the digest references and every other byte as it
 * was.  Nothing reaches stdout unless every build succeeded.
 *
 * The positions come from k8s/yaml.h (libyaml's marks), never from matching
 * the text.  Each distinct context (by its real path) is built once, in the
 * order first named.  Several contexts build side by side, in child
 * processes (up to --jobs, the cores by default): each child is one whole
 * build as `build --push` runs it, its progress lines labelled with the
 * context, its error or digest reference sent back through a pipe.  A
 * failure starts no further build, lets the running ones finish, and is
 * reported for the first context named among those that failed.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "builder/build.h"
#include "k8s/yaml.h"

#include "base/fs.h"
#include "base/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OCIB_SCHEME "ocib://"
#define OPT_YAML 1000
#define OPT_JOBS 1001
#define RESOLVE_MAX_OPTIONS 64

/* resolve's own -f, then build's options but those that name one build's
 * context, spec or outputs; filled before main runs, so that help, the
 * manual page and the completion list them. */
struct cli_option cli_resolve_options[RESOLVE_MAX_OPTIONS];

__attribute__((constructor)) static void resolve_options_init(void)
{
    static const char *const skipped[] = {
        "-C", "-f", "--output", "--push", "--digest-file", "--verify", NULL};
    size_t n = 0;

    cli_resolve_options[n++] = (struct cli_option){
        OPT_YAML, "--filename", "-f", "FILE|DIR|-",
        "Kubernetes YAML: a file, a directory of *.yaml/*.yml, or - (stdin); repeatable"};
    cli_resolve_options[n++] =
        (struct cli_option){OPT_JOBS, "--jobs", "-j", "N",
                            "build at most N contexts at once (default: one per core)"};
    for (const struct cli_option *o = cli_build_options; o->name; o++) {
        bool skip = false;

        for (size_t k = 0; skipped[k]; k++)
            skip = skip || !strcmp(o->name, skipped[k]);
        if (!skip && n + 1 < RESOLVE_MAX_OPTIONS)
            cli_resolve_options[n++] = *o;
    }
}

/* One `image: ocib://PATH` value. */
struct site {
    size_t stream;
    const struct k8s_node *node;
    size_t ctx; /* index into the contexts */
};

struct resolve {
    struct k8s_stream *streams;
    size_t n_streams, alloc_streams;
    struct site *sites;
    size_t n_sites, alloc_sites;
    char **ctx_real; /* distinct contexts, real paths */
    char **ctx_ref;  /* their digest references once built */
    size_t n_ctx, alloc_ctx, alloc_ref;
    char **files; /* inputs, after directories are listed */
    size_t n_files, alloc_files;
};

static void resolve_release(struct resolve *r)
{
    for (size_t i = 0; i < r->n_streams; i++)
        k8s_stream_release(&r->streams[i]);
    free(r->streams);
    free(r->sites);
    for (size_t i = 0; i < r->n_ctx; i++) {
        free(r->ctx_real[i]);
        free(r->ctx_ref[i]);
    }
    free(r->ctx_real);
    free(r->ctx_ref);
    for (size_t i = 0; i < r->n_files; i++)
        free(r->files[i]);
    free(r->files);
}

/* path into r->files (k8s_inputs_add). */
static int add_input(struct resolve *r, const char *path, struct ocib_error *err)
{
    return k8s_inputs_add(path, &r->files, &r->n_files, &r->alloc_files, err);
}

struct collect {
    struct resolve *r;
    size_t stream;
};

/* An image value: an ocib:// one becomes a site, its context checked. */
static int on_image(const struct k8s_node *key, const struct k8s_node *v, void *opaque,
                    struct ocib_error *err)
{
    struct collect *c = opaque;
    struct resolve *r = c->r;
    const char *file = r->streams[c->stream].file;
    _cleanup_free_ char *spec = NULL;
    char real[PATH_MAX];
    const char *path;
    size_t k;

    if (!v || v->kind != K8S_SCALAR || strncmp(v->value, OCIB_SCHEME, strlen(OCIB_SCHEME)))
        return 0;
    for (size_t i = 0; i < r->n_sites; i++)
        if (r->sites[i].node == v)
            return 0; /* an anchor an alias names again */
    path = v->value + strlen(OCIB_SCHEME);
    if (v->style == K8S_LITERAL || v->style == K8S_FOLDED)
        return ocib_error_usage(err, "%s:%d:%d: %s: write it as a plain or quoted scalar",
                                file, v->line, v->col, v->value);
    if (!*path)
        return ocib_error_usage(err, "%s:%d:%d: %s: names no context directory", file,
                                v->line, v->col, v->value);
    if (!realpath(path, real))
        return ocib_error_usage(err, "%s:%d:%d: %s: '%s': %s", file, v->line, v->col,
                                v->value, path, strerror(errno));
    spec = xasprintf("%s/ocib.json", real);
    if (access(spec, R_OK) != 0)
        return ocib_error_usage(err, "%s:%d:%d: %s: no ocib.json in '%s'", file, v->line,
                                v->col, v->value, path);
    for (k = 0; k < r->n_ctx && strcmp(r->ctx_real[k], real); k++)
        ;
    if (k == r->n_ctx) {
        XGROW(r->ctx_real, r->alloc_ctx, r->n_ctx + 1);
        XGROW(r->ctx_ref, r->alloc_ref, r->n_ctx + 1);
        r->ctx_real[k] = xstrdup(real);
        r->ctx_ref[k] = NULL;
        r->n_ctx++;
    }
    XGROW(r->sites, r->alloc_sites, r->n_sites + 1);
    r->sites[r->n_sites++] = (struct site){c->stream, v, k};
    return 0;
}

/* Reads every input and finds its sites. */
static int load_all(struct resolve *r, struct ocib_error *err)
{
    for (size_t i = 0; i < r->n_files; i++) {
        struct collect c = {r, i};

        XGROW(r->streams, r->alloc_streams, r->n_streams + 1);
        if (k8s_stream_load(&r->streams[i], r->files[i], err) < 0)
            return -1;
        r->n_streams++;
        if (k8s_images_foreach(&r->streams[i], on_image, &c, err) < 0)
            return -1;
    }
    return 0;
}

/* The site of context k named first, for messages. */
static const struct site *first_site(const struct resolve *r, size_t k)
{
    for (size_t i = 0; i < r->n_sites; i++)
        if (r->sites[i].ctx == k)
            return &r->sites[i];
    return NULL;
}

/* Builds and pushes context k with the command line's build options; a
 * label names it in the progress lines when builds run side by side. */
static int build_one(struct resolve *r, size_t k, const struct build_options *base,
                     enum progress_mode mode, bool label, struct ocib_error *err)
{
    const struct site *s = first_site(r, k);
    const char *file = r->streams[s->stream].file;
    struct build_options o = *base;
    struct build_result res = {0};
    struct cli_progress *p = cli_progress_new(mode);
    int rc;

    if (label)
        cli_progress_label(p, s->node->value + strlen(OCIB_SCHEME));
    o.context_dir = r->ctx_real[k];
    o.spec_file = NULL;
    o.push = true;
    o.outputs = NULL;
    o.n_outputs = 0;
    o.digest_file = NULL;
    o.progress = cli_progress_event;
    o.progress_opaque = p;
    rc = build_run(&o, &res, err);
    if (rc == 0 && !strchr(res.reference, '@'))
        rc = ocib_error_usage(err,
                              "built %s, but with no repository to push it to: give the "
                              "spec an \"image\" or resolve with --tag",
                              res.reference);
    if (rc < 0)
        ocib_error_wrap(err, "%s:%d:%d: %s", file, s->node->line, s->node->col,
                        s->node->value);
    cli_progress_end(p, rc < 0 ? err : NULL);
    cli_progress_free(p);
    if (rc == 0)
        r->ctx_ref[k] = xstrdup(res.reference);
    build_result_release(&res);
    return rc;
}

/* A context's build running in a child process. */
struct job {
    pid_t pid;
    int fd; /* what the child says: its struct ocib_error, then the reference */
    size_t ctx;
};

/* The child's side: one build, its outcome down fd, and out. */
_Noreturn static void run_child(struct resolve *r, size_t k, const struct build_options *o,
                                enum progress_mode mode, int fd)
{
    struct ocib_error e = OCIB_ERROR_INIT;
    int rc = build_one(r, k, o, mode, true, &e);

    if (fs_write_all(fd, &e, sizeof(e), NULL) < 0 ||
        (rc == 0 && fs_write_all(fd, r->ctx_ref[k], strlen(r->ctx_ref[k]), NULL) < 0))
        _exit(3);
    _exit(rc == 0 ? 0 : 1);
}

static int job_start(struct resolve *r, size_t k, const struct build_options *o,
                     enum progress_mode mode, struct job *j, struct ocib_error *err)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) < 0)
        return ocib_error_errno(err, errno, "resolve: pipe");
    fflush(NULL);
    j->pid = fork();
    if (j->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ocib_error_errno(err, errno, "resolve: fork");
    }
    if (j->pid == 0) {
        close(fds[0]);
        run_child(r, k, o, mode, fds[1]);
    }
    close(fds[1]);
    j->fd = fds[0];
    j->ctx = k;
    return 0;
}

/* Job j has exited with status st: its reference into r, or its error into
 * e.  Returns 0 or -1. */
static int job_finish(struct resolve *r, struct job *j, int st, struct ocib_error *e)
{
    const struct site *s = first_site(r, j->ctx);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    ssize_t n;

    while ((n = read(j->fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            strbuf_add(&sb, buf, (size_t)n);
    close(j->fd);
    if (sb.len < sizeof(*e) || !WIFEXITED(st) || WEXITSTATUS(st) > 1) {
        ocib_error_set(e, "%s:%d:%d: %s: the build died (%s %d)",
                       r->streams[s->stream].file, s->node->line, s->node->col,
                       s->node->value, WIFSIGNALED(st) ? "signal" : "exit status",
                       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return -1;
    }
    memcpy(e, sb.buf, sizeof(*e));
    e->msg[sizeof(e->msg) - 1] = '\0';
    if (WEXITSTATUS(st) != 0) {
        if (!e->code)
            e->code = OCIB_EXIT_FAILURE;
        return -1;
    }
    r->ctx_ref[j->ctx] = xstrndup(sb.buf + sizeof(*e), sb.len - sizeof(*e));
    return 0;
}

/* Every context built, up to jobs at once. */
static int build_all(struct resolve *r, const struct build_options *o,
                     enum progress_mode mode, long jobs, struct ocib_error *err)
{
    _cleanup_free_ struct job *run = NULL;
    size_t n_run = 0, next = 0;
    size_t first = SIZE_MAX; /* the first context named among those that failed */

    if (jobs <= 1 || r->n_ctx <= 1) {
        for (size_t k = 0; k < r->n_ctx; k++)
            if (build_one(r, k, o, mode, false, err) < 0)
                return -1;
        return 0;
    }
    if (mode == PROGRESS_TTY)
        mode = PROGRESS_PLAIN; /* one live area cannot show builds side by side */
    run = xcalloc((size_t)jobs, sizeof(*run));
    for (;;) {
        struct ocib_error e = OCIB_ERROR_INIT;
        size_t i;
        pid_t pid;
        int st;

        while (first == SIZE_MAX && next < r->n_ctx && n_run < (size_t)jobs) {
            if (job_start(r, next, o, mode, &run[n_run], err) < 0)
                first = next; /* err says why; the running ones are collected */
            else
                n_run++;
            next++;
        }
        if (!n_run)
            break;
        pid = waitpid(-1, &st, 0);
        if (pid < 0 && errno != EINTR)
            return ocib_error_errno(err, errno, "resolve: waitpid");
        for (i = 0; i < n_run && run[i].pid != pid; i++)
            ;
        if (pid < 0 || i == n_run)
            continue; /* interrupted, or not one of ours */
        if (job_finish(r, &run[i], st, &e) < 0 && run[i].ctx < first) {
            *err = e;
            first = run[i].ctx;
        }
        run[i] = run[--n_run];
    }
    return first == SIZE_MAX ? 0 : -1;
}

static int splice_cmp(const void *a, const void *b)
{
    const struct k8s_splice *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* Stream i with its sites replaced, onto f. */
static int write_stream(const struct resolve *r, size_t i, FILE *f)
{
    const struct k8s_stream *s = &r->streams[i];
    _cleanup_free_ struct k8s_splice *sp = xcalloc(r->n_sites + 1, sizeof(*sp));
    size_t n = 0;
    int rc;

    for (size_t k = 0; k < r->n_sites; k++) {
        const struct site *st = &r->sites[k];

        if (st->stream != i)
            continue;
        sp[n].start = st->node->value_start;
        sp[n].end = st->node->end;
        sp[n].text = k8s_scalar_render(st->node, r->ctx_ref[st->ctx]);
        n++;
    }
    qsort(sp, n, sizeof(*sp), splice_cmp);
    rc = k8s_splice_write(f, s->data, s->len, sp, n);
    for (size_t k = 0; k < n; k++)
        free(sp[k].text);
    return rc;
}

/* Every stream, one after another with "---" between files, to stdout in
 * one piece. */
static int write_all(const struct resolve *r, struct ocib_error *err)
{
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int rc = 0;

    if (!f)
        return ocib_error_errno(err, errno, "resolve: cannot hold the output");
    for (size_t i = 0; i < r->n_streams && rc == 0; i++) {
        const struct k8s_stream *s = &r->streams[i];

        if (i > 0)
            fputs("---\n", f);
        rc = write_stream(r, i, f);
        if (s->len && s->data[s->len - 1] != '\n' && i + 1 < r->n_streams)
            fputc('\n', f);
    }
    if (fclose(f) != 0 || rc < 0)
        return ocib_error_set(err, "resolve: cannot write the output");
    if (fwrite(out, 1, len, stdout) != len)
        return ocib_error_set(err, "cannot write to standard output");
    return 0;
}

static int parse(int argc, char **argv, struct resolve *r, struct build_args *a, long *jobs,
                 struct ocib_error *err)
{
    bool operands_only = false;
    size_t n_inputs = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        int id = cli_next("resolve", cli_resolve_options, argc, argv, &i, &operands_only,
                          &v, err);

        if (id == CLI_SKIP)
            continue;
        if (id < 0)
            return -1;
        if (id == CLI_OPERAND)
            return ocib_error_usage(err, "resolve: the YAML is given with -f, not '%s'", v);
        if (id == OPT_YAML) {
            if (add_input(r, v, err) < 0)
                return -1;
            n_inputs++;
        } else if (id == OPT_JOBS) {
            char *end;

            errno = 0;
            *jobs = strtol(v, &end, 10);
            if (errno || end == v || *end || *jobs < 1 || *jobs > 256)
                return ocib_error_usage(err, "--jobs: '%s' is not a number from 1 to 256",
                                        v);
        } else if (cli_build_args_take(a, id, v, err) < 0) {
            return -1;
        }
    }
    if (!n_inputs)
        return ocib_error_usage(err, "resolve: which YAML? give -f FILE|DIR|-");
    return cli_build_args_finish(a, err);
}

int cli_resolve(int argc, char **argv, struct ocib_error *err)
{
    struct resolve r = {0};
    struct build_args *a = cli_build_args_new();
    struct build_options *o = cli_build_args_options(a);
    _cleanup_free_ char *cache_real = NULL;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    int rc = -1;

    if (parse(argc, argv, &r, a, &jobs, err) < 0 || load_all(&r, err) < 0 ||
        cli_cache_dir(o->cache_dir, &cache_real, err) < 0)
        goto out;
    o->cache_dir = cache_real;
    if (build_all(&r, o, cli_build_args_progress(a), jobs, err) < 0)
        goto out;
    rc = write_all(&r, err);
out:
    resolve_release(&r);
    cli_build_args_free(a);
    return rc;
}
