/*
 * `run` layers; see run.h.
 */
#include "builder/run.h"
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

static void env_merge_object(struct envlist *e, const json_t *obj)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) env_set(e, key, json_string_value(v));
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

/* A mount point the root lacks, made before the command and removed after. */
struct placeholder {
    char *path; /* relative to the root */
    bool dir;
};

/* Opens path (relative to the root) as an O_PATH fd without leaving the root:
 * symlinks are followed only while they stay beneath it, as the sandbox's
 * bind mount will follow them, and ".." never climbs out.  -1 with errno set
 * (EXDEV when the path leads outside). */
static int open_beneath(int root_fd, const char *path)
{
    return fs_open_within(root_fd, path, O_PATH);
}

/* The directory holding path, opened beneath the root; *ret_base is path's
 * last component. */
static int open_parent_beneath(int root_fd, const char *path, const char **ret_base)
{
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");

    *ret_base = slash ? slash + 1 : path;
    return open_beneath(root_fd, dir);
}

/* Makes sure target exists in the root for a bind mount, creating what is
 * missing (remembered for removal, deepest last).  Nothing is created or
 * mounted outside the root: a target that leads outside (an absolute
 * symlink, "..") is refused. */
static int make_placeholder(int root_fd, const char *target, bool dir,
                            struct placeholder *list, size_t *n, struct ocib_error *err)
{
    const char *rel = target;
    _cleanup_free_ char *copy = NULL;
    int fd;

    while (*rel == '/')
        rel++;
    copy = xstrdup(rel);
    fd = open_beneath(root_fd, rel);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        goto refused;
    for (char *s = copy;; s++) {
        bool last = *s == '\0';

        if (*s != '/' && !last)
            continue;
        *s = '\0';
        fd = *copy ? open_beneath(root_fd, copy) : -1;
        if (fd >= 0) {
            close(fd);
        } else if (*copy && errno != ENOENT) {
            goto refused;
        } else if (*copy) {
            const char *base;
            int pfd = open_parent_beneath(root_fd, copy, &base), rc;

            if (pfd < 0)
                goto refused;
            if (last && !dir) {
                int ffd = openat(
                    pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

                rc = ffd < 0 ? -1 : close(ffd);
            } else {
                rc = mkdirat(pfd, base, 0755);
            }
            close(pfd);
            if (rc < 0)
                return ocib_error_errno(err, errno, "cannot create the mount point '/%s'",
                                        copy);
            list[*n].path = xstrdup(copy);
            list[*n].dir = !(last && !dir);
            (*n)++;
        }
        if (last)
            break;
        *s = '/';
    }
    return 0;
refused:
    if (errno == EXDEV)
        return ocib_error_set(err,
                              "mount point '%s': '/%s' leads outside the stage root "
                              "(through '..' or a symlink); refused",
                              target, copy);
    return ocib_error_errno(err, errno,
                            "mount point '%s': cannot reach '/%s' inside the "
                            "stage root",
                            target, copy);
}

/* Removes the placeholders, never through a path that now leads outside the
 * root (the command may have replaced a directory with a symlink). */
static void remove_placeholders(int root_fd, struct placeholder *list, size_t n)
{
    while (n-- > 0) {
        const char *base;
        int pfd = open_parent_beneath(root_fd, list[n].path, &base);

        if (pfd >= 0) {
            unlinkat(pfd, base, list[n].dir ? AT_REMOVEDIR : 0);
            close(pfd);
        }
        free(list[n].path);
    }
}

/* Set once the kernel refused an overlay: later steps go without. */
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

int run_layer(struct run_request *rq, struct layer_tree *t, struct ocib_error *err)
{
    const json_t *ly = rq->layer->json, *run = json_object_get(ly, "run");
    const json_t *ic = json_object_get(rq->image_config, "config");
    const char *workdir, *user;
    struct envlist env = {.where = json_object()};
    char **argv = NULL;
    size_t n_mounts = 0, n_ph = 0;
    struct sandbox_mount *mounts = NULL;
    struct placeholder *ph = NULL;
    int *locks = NULL;
    size_t n_locks = 0;
    const char **skip = NULL;
    size_t n_skip = 0;
    struct snapshot *before = NULL;
    struct tail tail = {.forward = rq->output, .opaque = rq->output_opaque};
    struct sandbox_spec s;
    uid_t uid = 0;
    gid_t gid = 0;
    _cleanup_free_ char *home = NULL;
    _cleanup_free_ char *ovl = NULL;
    int status = 0, r = -1, rc;
    size_t i;
    json_t *v;

    /* argv */
    if (json_is_string(run)) {
        argv = xcalloc(4, sizeof(char *));
        argv[0] = xstrdup("/bin/sh");
        argv[1] = xstrdup("-c");
        argv[2] = xstrdup(json_string_value(run));
    } else {
        argv = xcalloc(json_array_size(run) + 1, sizeof(char *));
        json_array_foreach(run, i, v) argv[i] = xstrdup(json_string_value(v));
    }
    /* env: image, stage, layer */
    XGROW(env.v, env.alloc, 2);
    env.v[0] = NULL;
    json_array_foreach(json_object_get(ic, "Env"), i, v)
    {
        const char *kv = json_string_value(v), *eq = kv ? strchr(kv, '=') : NULL;

        if (eq) {
            _cleanup_free_ char *name = xstrndup(kv, (size_t)(eq - kv));

            env_set(&env, name, eq + 1);
        }
    }
    if (rq->stage->env)
        env_merge_object(&env, rq->stage->env);
    if (json_object_get(ly, "env"))
        env_merge_object(&env, json_object_get(ly, "env"));
    workdir = oci_json_str(ly, "workdir");
    if (!workdir)
        workdir = rq->stage->workdir;
    if (!workdir)
        workdir = oci_json_str(ic, "WorkingDir");
    if (!workdir || !*workdir)
        workdir = "/";
    user = oci_json_str(ly, "user");
    if (!user)
        user = rq->stage->user;
    if (!user)
        user = oci_json_str(ic, "User");
    if (user && *user &&
        sandbox_resolve_user(rq->root->path, user, &uid, &gid, &home, err) < 0)
        goto out;
    {
        bool has_path = false, has_home = false;

        for (i = 0; i < env.n; i++) {
            has_path |= !strncmp(env.v[i], "PATH=", 5);
            has_home |= !strncmp(env.v[i], "HOME=", 5);
        }
        if (!has_path)
            env_set(&env, "PATH", DEFAULT_PATH + 5);
        /* As Docker does: the user's home from passwd, else / for others. */
        if (!has_home)
            env_set(&env, "HOME", home ? home : uid == 0 ? "/root" : "/");
    }

    /* mounts: cache directories, secrets, and what the sandbox binds */
    {
        const json_t *cm = json_object_get(ly, "cache_mounts");
        const json_t *sec = json_object_get(ly, "secrets");
        size_t cap = json_array_size(cm) + json_array_size(sec) + 4;

        mounts = xcalloc(cap, sizeof(*mounts));
        ph = xcalloc(cap * 8 + 8, sizeof(*ph));
        locks = xcalloc(cap, sizeof(int));
        skip = xcalloc(cap + 8, sizeof(char *));
        skip[n_skip++] = "proc";
        skip[n_skip++] = "dev";
        skip[n_skip++] = "sys";
        json_array_foreach(cm, i, v)
        {
            const char *target = json_string_value(v);
            char hex[SHA256_HEX_LEN + 1];
            _cleanup_free_ char *dir = NULL;
            _cleanup_free_ char *lock = NULL;
            int fd;

            sha256_hex(target, strlen(target), hex);
            dir = xasprintf("%s/mounts/%s", rq->cache->dir, hex);
            lock = xasprintf("%s/mounts/%s.lock", rq->cache->dir, hex);
            if (fs_mkdir_p(dir, 0755, err) < 0)
                goto out;
            fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                ocib_error_errno(err, errno, "cannot lock the cache mount '%s'", dir);
                if (fd >= 0)
                    close(fd);
                goto out;
            }
            locks[n_locks++] = fd;
            if (make_placeholder(rq->root->fd, target, true, ph, &n_ph, err) < 0)
                goto out;
            mounts[n_mounts].source = xstrdup(dir);
            mounts[n_mounts].target = target;
            mounts[n_mounts].read_only = false;
            n_mounts++;
            skip[n_skip++] = target[0] == '/' ? target + 1 : target;
        }
        json_array_foreach(sec, i, v)
        {
            const char *id = oci_json_str(v, "id"), *target = oci_json_str(v, "target");
            const struct build_secret *found = NULL;

            for (size_t k = 0; k < rq->n_secrets; k++)
                if (!strcmp(rq->secrets[k].id, id))
                    found = &rq->secrets[k];
            if (!found) {
                ocib_error_usage(err,
                                 "%s.secrets[%zu]: secret '%s' was not given; pass "
                                 "--secret id=%s,src=PATH",
                                 rq->layer->where, i, id, id);
                goto out;
            }
            if (access(found->src, R_OK) < 0) {
                ocib_error_errno(err, errno, "--secret id=%s: cannot read the file", id);
                goto out;
            }
            if (make_placeholder(rq->root->fd, target, false, ph, &n_ph, err) < 0)
                goto out;
            mounts[n_mounts].source = xstrdup(found->src);
            mounts[n_mounts].target = target;
            mounts[n_mounts].read_only = true;
            n_mounts++;
        }
        if (!strcmp(oci_json_str(ly, "network") ?: "none", "host")) {
            if (make_placeholder(rq->root->fd, "/etc/resolv.conf", false, ph, &n_ph, err) <
                    0 ||
                make_placeholder(rq->root->fd, "/etc/hosts", false, ph, &n_ph, err) < 0)
                goto out;
        }
    }
    memset(&s, 0, sizeof(s));
    s.root = rq->root->path;
    s.argv = argv;
    s.env = env.v;
    s.workdir = workdir;
    s.uid = uid;
    s.gid = gid;
    s.network_host = !strcmp(oci_json_str(ly, "network") ?: "none", "host");
    s.mounts = mounts;
    s.n_mounts = n_mounts;
    s.output = tail_output;
    s.output_opaque = &tail;
    /* On an overlay when the kernel allows one; else (refused now or
     * before) directly on the root, between two snapshots. */
    rc = SANDBOX_NO_OVERLAY;
    if (want_overlay()) {
        if (make_overlay_dir(rq->root->path, &ovl, err) < 0)
            goto out;
        s.overlay_dir = ovl;
        rc = sandbox_run(&s, &status, err);
        if (rc == SANDBOX_NO_OVERLAY) {
            overlay_refused = true;
            rq->note =
                xasprintf("note: %s; the changes of run steps are found by comparing "
                          "snapshots instead",
                          err->msg);
            ocib_error_clear(err);
            fs_rm_rf(ovl, NULL);
            free(TAKE_PTR(ovl));
            s.overlay_dir = NULL;
        }
    }
    if (rc == SANDBOX_NO_OVERLAY) {
        if (snapshot_take(rq->root->fd, skip, &before, err) < 0)
            goto out;
        rc = sandbox_run(&s, &status, err);
    }
    if (rc < 0)
        goto out;
    if (status != 0) {
        struct strbuf sb = STRBUF_INIT;

        /* Without an overlay the command changed the root itself: whether
         * it wrote into a file in place matters even when it failed. */
        if (before) {
            struct layer_tree scratch;

            layer_tree_init(&scratch);
            snapshot_diff_ex(before, rq->root->fd, skip, NULL, NULL, &scratch,
                             &rq->in_place, NULL);
            layer_tree_release(&scratch);
        }

        for (size_t k = 0; k < tail.count; k++) {
            size_t idx = (tail.next + TAIL_LINES - tail.count + k) % TAIL_LINES;

            strbuf_addf(&sb, "\n  | %s", tail.lines[idx]);
        }
        ocib_error_set(err, "the command exited with status %d%s%s", status,
                       tail.count ? "; its last lines:" : "", sb.len ? sb.buf : "");
        strbuf_release(&sb);
        goto out;
    }
    if (ovl ? commit_overlay(rq, ovl, skip, t, err) < 0
            : snapshot_diff_ex(before, rq->root->fd, skip, sandbox_uid_to_inside,
                               sandbox_gid_to_inside, t, &rq->in_place, err) < 0)
        goto out;
    r = 0;
out:
    if (ovl)
        fs_rm_rf(ovl, NULL);
    snapshot_free(before);
    remove_placeholders(rq->root->fd, ph, n_ph);
    for (size_t k = 0; k < n_locks; k++)
        close(locks[k]);
    for (size_t k = 0; k < n_mounts; k++)
        free((char *)mounts[k].source);
    for (size_t k = 0; k < TAIL_LINES; k++)
        free(tail.lines[k]);
    for (size_t k = 0; argv && argv[k]; k++)
        free(argv[k]);
    for (size_t k = 0; k < env.n; k++)
        free(env.v[k]);
    free(env.v);
    json_decref(env.where);
    free(argv);
    free(mounts);
    free(ph);
    free(locks);
    free(skip);
    return r;
}
