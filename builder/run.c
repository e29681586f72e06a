/*
 * `run` layers; see run.h.
 */
#include "builder/run.h"
#include "builder/runplace.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "layers/changes.h"
#include "layers/overlay.h"
#include "oci/json.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_LINES 20
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int build_secret_parse(const char *s, struct build_secret *ret, struct ocib_error *err)
{
    _cleanup_free_ char *copy = xstrdup(s);
    char *save = NULL, *tok;
    struct build_secret b = {NULL, NULL};

    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strncmp(tok, "id=", 3)) {
            free(b.id);
            b.id = xstrdup(tok + 3);
        } else if (!strncmp(tok, "src=", 4) || !strncmp(tok, "source=", 7)) {
            free(b.src);
            b.src = xstrdup(strchr(tok, '=') + 1);
        } else if (strcmp(tok, "type=file")) {
            free(b.id);
            free(b.src);
            return ocib_error_usage(err,
                                    "--secret: unknown field in '%s' (expected "
                                    "id=ID,src=PATH)",
                                    s);
        }
    }
    if (!b.id || !*b.id || !b.src || !*b.src) {
        free(b.id);
        free(b.src);
        return ocib_error_usage(err, "--secret '%s': expected id=ID,src=PATH", s);
    }
    *ret = b;
    return 0;
}

/* A "NAME=value" list (NULL-terminated) with an index of its names, so
 * that setting n variables costs n lookups, not n^2 comparisons. */
struct envlist {
    char **v;
    size_t n, alloc;
    json_t *where; /* name -> index in v */
};

/* Sets NAME=value, replacing an earlier NAME. */
static void env_set(struct envlist *e, const char *name, const char *value)
{
    json_t *at = json_object_get(e->where, name);

    if (at) {
        size_t i = (size_t)json_integer_value(at);

        free(e->v[i]);
        e->v[i] = xasprintf("%s=%s", name, value);
        return;
    }
    XGROW(e->v, e->alloc, e->n + 2);
    json_object_set_new(e->where, name, json_integer((json_int_t)e->n));
    e->v[e->n++] = xasprintf("%s=%s", name, value);
    e->v[e->n] = NULL;
}

static void env_merge(struct envlist *e, const struct spec_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        env_set(e, m->keys[i], m->values[i]);
}

static bool env_has(const struct envlist *e, const char *name)
{
    return json_object_get(e->where, name) != NULL;
}

static void env_release(struct envlist *e)
{
    for (size_t k = 0; k < e->n; k++)
        free(e->v[k]);
    free(e->v);
    json_decref(e->where);
}

struct tail {
    char *lines[TAIL_LINES];
    size_t next, count;
    sandbox_output_fn forward;
    void *opaque;
};

static void tail_output(void *opaque, const char *line)
{
    struct tail *t = opaque;

    free(t->lines[t->next]);
    t->lines[t->next] = xstrdup(line);
    t->next = (t->next + 1) % TAIL_LINES;
    if (t->count < TAIL_LINES)
        t->count++;
    if (t->forward)
        t->forward(t->opaque, line);
}

static bool overlay_refused;

static bool want_overlay(void)
{
    const char *capture = getenv("OCIB_CAPTURE");

    return !overlay_refused && !(capture && !strcmp(capture, "snapshot"));
}

/* Makes the directory beside the root that holds the overlay's upper, work
 * and merged directories. */
static int make_overlay_dir(const char *root, char **ret, struct ocib_error *err)
{
    _cleanup_free_ char *dir = xasprintf("%s.ovl-XXXXXX", root);
    static const char *const subs[] = {"upper", "work", "merged"};

    if (!mkdtemp(dir))
        return ocib_error_errno(err, errno, "cannot create a directory beside '%s'", root);
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, subs[i]);

        if (mkdir(p, 0755) < 0) {
            int e = errno;

            fs_rm_rf(dir, NULL);
            return ocib_error_errno(err, e, "cannot create '%s'", p);
        }
    }
    *ret = TAKE_PTR(dir);
    return 0;
}

/* Takes the change the command made on the overlay into t and the root. */
static int commit_overlay(struct run_request *rq, const char *ovl, const char *const *skip,
                          struct layer_tree *t, struct ocib_error *err)
{
    _cleanup_free_ char *upper = xasprintf("%s/upper", ovl);
    _cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open '%s'", upper);
    return overlay_commit(fd, rq->root->fd, skip, sandbox_uid_to_inside,
                          sandbox_gid_to_inside, t, err);
}

/* What a run step holds while its command runs. */
struct run_state {
    struct envlist env;
    char **argv;
    size_t argc;
    const char *workdir;
    uid_t uid;
    gid_t gid;
    char *home;
    struct sandbox_mount *mounts; /* sources owned */
    size_t n_mounts;
    struct placeholders ph;
    struct placements pl; /* --isolation chroot */
    int *locks;           /* of the cache mounts */
    size_t n_locks;
    const char **skip; /* paths (relative) no change is taken from */
    size_t n_skip;
    struct snapshot *before; /* without an overlay */
    char *ovl;               /* with one: its directory */
    struct tail tail;
};

static void run_state_release(struct run_state *rs, int root_fd)
{
    if (rs->ovl)
        fs_rm_rf(rs->ovl, NULL);
    free(rs->ovl);
    snapshot_free(rs->before);
    placements_undo(root_fd, &rs->pl);
    remove_placeholders(root_fd, &rs->ph);
    for (size_t k = 0; k < rs->n_locks; k++)
        close(rs->locks[k]);
    for (size_t k = 0; k < rs->n_mounts; k++)
        free((char *)rs->mounts[k].source);
    for (size_t k = 0; k < TAIL_LINES; k++)
        free(rs->tail.lines[k]);
    spec_strv_free(rs->argv, rs->argc);
    env_release(&rs->env);
    free(rs->home);
    free(rs->mounts);
    free(rs->locks);
    free(rs->skip);
}

/* The command, its environment (the image config's Env, the stage's env,
 * the layer's; PATH and HOME when none gave them), working directory and
 * user (resolved in the root). */
static int prepare_process(struct run_request *rq, struct run_state *rs,
                           struct ocib_error *err)
{
    const struct spec_run *run = &rq->layer->run;
    const json_t *ic = json_object_get(rq->image_config, "config");
    const char *user;
    size_t i;
    json_t *v;

    rs->argv = spec_command_exec_argv(&run->command, &rs->argc);
    rs->env.where = json_object();
    XGROW(rs->env.v, rs->env.alloc, 2);
    rs->env.v[0] = NULL;
    /* Build arguments first: every environment below wins over them. */
    env_merge(&rs->env, &rq->stage->args);
    json_array_foreach(json_object_get(ic, "Env"), i, v)
    {
        const char *kv = json_string_value(v), *eq = kv ? strchr(kv, '=') : NULL;

        if (eq) {
            _cleanup_free_ char *name = xstrndup(kv, (size_t)(eq - kv));

            env_set(&rs->env, name, eq + 1);
        }
    }
    env_merge(&rs->env, &rq->stage->env);
    env_merge(&rs->env, &run->env);
    rs->workdir = run->workdir ?: rq->stage->workdir ?: oci_json_str(ic, "WorkingDir");
    if (!rs->workdir || !*rs->workdir)
        rs->workdir = "/";
    user = run->user ?: rq->stage->user ?: oci_json_str(ic, "User");
    if (user && *user &&
        sandbox_resolve_user(rq->root->path, user, &rs->uid, &rs->gid, &rs->home, err) < 0)
        return -1;
    if (!env_has(&rs->env, "PATH"))
        env_set(&rs->env, "PATH", DEFAULT_PATH + 5);
    /* As Docker does: the user's home from passwd, else / for others. */
    if (!env_has(&rs->env, "HOME"))
        env_set(&rs->env, "HOME", rs->home ? rs->home : rs->uid == 0 ? "/root" : "/");
    return 0;
}

/* A cache mount: cache/mounts/<digest of target>, locked while the
 * command runs, and never part of the change. */
static int mount_cache_dir(struct run_request *rq, struct run_state *rs, const char *target,
                           struct ocib_error *err)
{
    char hex[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *dir = NULL;
    _cleanup_free_ char *lock = NULL;
    int fd;

    sha256_hex(target, strlen(target), hex);
    dir = xasprintf("%s/mounts/%s", rq->cache->dir, hex);
    lock = xasprintf("%s/mounts/%s.lock", rq->cache->dir, hex);
    if (fs_mkdir_p(dir, 0755, err) < 0)
        return -1;
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        ocib_error_errno(err, errno, "cannot lock the cache mount '%s'", dir);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rs->locks[rs->n_locks++] = fd;
    rs->skip[rs->n_skip++] = target[0] == '/' ? target + 1 : target;
    if (rq->chroot)
        return place_dir(rq->root->fd, rq->root->path, target, dir, &rs->pl, err);
    if (make_placeholder(rq->root->fd, target, true, &rs->ph, err) < 0)
        return -1;
    rs->mounts[rs->n_mounts++] = (struct sandbox_mount){
        .source = TAKE_PTR(dir), .target = target, .read_only = false};
    return 0;
}

/* The i-th secret of the layer: the --secret file, read-only at its target. */
static int mount_secret(struct run_request *rq, struct run_state *rs, size_t i,
                        struct ocib_error *err)
{
    const struct spec_secret_mount *m = &rq->layer->run.secrets[i];
    const struct build_secret *found = NULL;

    for (size_t k = 0; k < rq->n_secrets; k++)
        if (!strcmp(rq->secrets[k].id, m->id))
            found = &rq->secrets[k];
    if (!found)
        return ocib_error_usage(err,
                                "%s.secrets[%zu]: secret '%s' was not given; pass "
                                "--secret id=%s,src=PATH",
                                rq->layer->where, i, m->id, m->id);
    if (access(found->src, R_OK) < 0)
        return ocib_error_errno(err, errno, "--secret id=%s: cannot read the file", m->id);
    if (rq->chroot) {
        /* A copy for the command's time; no change is ever taken from it. */
        rs->skip[rs->n_skip++] = m->target[0] == '/' ? m->target + 1 : m->target;
        if (place_copy(rq->root->fd, rq->root->path, m->target, found->src, &rs->pl, err) <
            0)
            return ocib_error_wrap(err, "--secret id=%s", m->id);
        return 0;
    }
    if (make_placeholder(rq->root->fd, m->target, false, &rs->ph, err) < 0)
        return -1;
    rs->mounts[rs->n_mounts++] = (struct sandbox_mount){
        .source = xstrdup(found->src), .target = m->target, .read_only = true};
    return 0;
}

/* Under chroot, a host network's resolv.conf and hosts are copies of the
 * container's, which no change is taken from. */
static int place_host_files(struct run_request *rq, struct run_state *rs,
                            struct ocib_error *err)
{
    static const char *const files[] = {"/etc/resolv.conf", "/etc/hosts"};

    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        if (access(files[i], R_OK) < 0)
            continue;
        rs->skip[rs->n_skip++] = files[i] + 1;
        if (place_copy(rq->root->fd, rq->root->path, files[i], files[i], &rs->pl, err) < 0)
            return -1;
    }
    return 0;
}

/* Cache directories, secrets, and the files a host network binds. */
static int prepare_mounts(struct run_request *rq, struct run_state *rs,
                          struct ocib_error *err)
{
    static const char *const never_taken[] = {"proc", "dev", "sys"};
    const struct spec_run *run = &rq->layer->run;
    size_t cap = run->n_cache_mounts + run->n_secrets;

    rs->mounts = xcalloc(cap + 1, sizeof(*rs->mounts));
    rs->locks = xcalloc(cap + 1, sizeof(*rs->locks));
    rs->skip = xcalloc(cap + ARRAY_SIZE(never_taken) + 3, sizeof(*rs->skip));
    for (size_t i = 0; i < ARRAY_SIZE(never_taken); i++)
        rs->skip[rs->n_skip++] = never_taken[i];
    for (size_t i = 0; i < run->n_cache_mounts; i++)
        if (mount_cache_dir(rq, rs, run->cache_mounts[i], err) < 0)
            return -1;
    for (size_t i = 0; i < run->n_secrets; i++)
        if (mount_secret(rq, rs, i, err) < 0)
            return -1;
    if (run->network_host && rq->chroot)
        return place_host_files(rq, rs, err);
    if (run->network_host &&
        (make_placeholder(rq->root->fd, "/etc/resolv.conf", false, &rs->ph, err) < 0 ||
         make_placeholder(rq->root->fd, "/etc/hosts", false, &rs->ph, err) < 0))
        return -1;
    return 0;
}

/* Runs the command on an overlay when the kernel allows one; else (refused
 * now or before) directly on the root, after a snapshot. */
static int execute(struct run_request *rq, struct run_state *rs, int *ret_status,
                   struct ocib_error *err)
{
    struct sandbox_spec s = {
        .root = rq->root->path,
        .argv = rs->argv,
        .env = rs->env.v,
        .workdir = rs->workdir,
        .uid = rs->uid,
        .gid = rs->gid,
        .network_host = rq->layer->run.network_host,
        .mounts = rs->mounts,
        .n_mounts = rs->n_mounts,
        .output = tail_output,
        .output_opaque = &rs->tail,
        .chroot = rq->chroot,
        .ret_note = rq->chroot ? &rq->note : NULL,
    };
    int rc = SANDBOX_NO_OVERLAY;

    if (!rq->chroot && want_overlay()) {
        if (make_overlay_dir(rq->root->path, &rs->ovl, err) < 0)
            return -1;
        s.overlay_dir = rs->ovl;
        rc = sandbox_run(&s, ret_status, err);
        if (rc == SANDBOX_NO_OVERLAY) {
            overlay_refused = true;
            rq->note =
                xasprintf("note: %s; the changes of run steps are found by comparing "
                          "snapshots instead",
                          err->msg);
            ocib_error_clear(err);
            fs_rm_rf(rs->ovl, NULL);
            free(TAKE_PTR(rs->ovl));
            s.overlay_dir = NULL;
        }
    }
    if (rc == SANDBOX_NO_OVERLAY) {
        if (snapshot_take(rq->root->fd, rs->skip, &rs->before, err) < 0)
            return -1;
        rc = sandbox_run(&s, ret_status, err);
    }
    return rc < 0 ? -1 : 0;
}

/* Whether a line reads like a failed name lookup or connection, as
 * resolvers, curl, wget, npm, pip and apt print them. */
static bool looks_like_no_network(const char *line)
{
    static const char *const signs[] = {
        "Could not resolve",
        "Temporary failure in name resolution",
        "Name or service not known",
        "getaddrinfo",
        "EAI_AGAIN",
        "ENOTFOUND",
        "ENETUNREACH",
        "Network is unreachable",
        "network is unreachable",
        "bad address",
        "Failed to establish a new connection",
        "Could not connect",
        "unable to resolve host",
    };

    for (size_t i = 0; i < ARRAY_SIZE(signs); i++)
        if (strstr(line, signs[i]))
            return true;
    return false;
}

/* The error for a command that exited with status: with its last lines.
 * Without an overlay the command changed the root itself: whether it wrote
 * into a file in place matters even when it failed. */
static int command_failed(struct run_request *rq, struct run_state *rs, int status,
                          struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const struct tail *tail = &rs->tail;

    if (rs->before) {
        struct layer_tree scratch;

        layer_tree_init(&scratch);
        snapshot_diff_ex(rs->before, rq->root->fd, rs->skip, NULL, NULL, &scratch,
                         &rq->in_place, NULL);
        layer_tree_release(&scratch);
    }
    bool network = false;

    for (size_t k = 0; k < tail->count; k++) {
        const char *line =
            tail->lines[(tail->next + TAIL_LINES - tail->count + k) % TAIL_LINES];

        strbuf_addf(&sb, "\n  | %s", line);
        network |= looks_like_no_network(line);
    }
    if (network && !rq->layer->run.network_host)
        strbuf_addstr(&sb, "\nhint: run layers have no network unless the layer says "
                           "\"network\": \"host\"");
    return ocib_error_set(err, "the command exited with status %d%s%s", status,
                          tail->count ? "; its last lines:" : "", sb.len ? sb.buf : "");
}

int run_layer(struct run_request *rq, struct layer_tree *t, struct ocib_error *err)
{
    struct run_state rs = {.tail = {.forward = rq->output, .opaque = rq->output_opaque}};
    int status = 0, r = -1;
    struct timespec t0, t1;

    if (prepare_process(rq, &rs, err) < 0 || prepare_mounts(rq, &rs, err) < 0)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = execute(rq, &rs, &status, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rq->command_seconds =
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (r < 0)
        goto out;
    r = -1;
    if (status != 0) {
        command_failed(rq, &rs, status, err);
        goto out;
    }
    if (rs.ovl)
        r = commit_overlay(rq, rs.ovl, rs.skip, t, err);
    else
        r = snapshot_diff_ex(rs.before, rq->root->fd, rs.skip, sandbox_uid_to_inside,
                             sandbox_gid_to_inside, t, &rq->in_place, err);
out:
    run_state_release(&rs, rq->root->fd);
    return r < 0 ? -1 : 0;
}
