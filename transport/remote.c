/*
 * Registries as the builder uses them; see remote.h.
 */
#include "transport/remote.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/regconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define PUSH_THREADS 4

struct registries {
    struct http_client *http;
    pthread_mutex_t lock;
    struct registry **list;
    size_t n, alloc;
    char **insecure;
    size_t n_insecure;
    char *cert_dir; /* --cert-dir, or NULL */
    pthread_mutex_t conf_lock;
    bool conf_loaded;
    struct regconf conf; /* registries.conf, read on first use */
};

int registries_new(char *const *insecure, size_t n_insecure, const char *cert_dir,
                   struct registries **ret, struct ocib_error *err)
{
    struct registries *rs = xcalloc(1, sizeof(*rs));

    if (http_client_new(&rs->http, err) < 0) {
        free(rs);
        return -1;
    }
    pthread_mutex_init(&rs->lock, NULL);
    pthread_mutex_init(&rs->conf_lock, NULL);
    rs->insecure = xcalloc(n_insecure + 1, sizeof(char *));
    for (size_t i = 0; i < n_insecure; i++)
        rs->insecure[i] = xstrdup(insecure[i]);
    rs->n_insecure = n_insecure;
    rs->cert_dir = cert_dir ? xstrdup(cert_dir) : NULL;
    *ret = rs;
    return 0;
}

void registries_set_notify(struct registries *rs, http_notify_fn fn, void *opaque)
{
    http_client_set_notify(rs->http, fn, opaque);
}

void registries_bytes(struct registries *rs, uint64_t *ret_in, uint64_t *ret_out)
{
    http_client_bytes(rs->http, ret_in, ret_out);
}

void registries_free(struct registries *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        registry_free(rs->list[i]);
    free(rs->list);
    for (size_t i = 0; i < rs->n_insecure; i++)
        free(rs->insecure[i]);
    free(rs->insecure);
    free(rs->cert_dir);
    regconf_release(&rs->conf);
    http_client_free(rs->http);
    pthread_mutex_destroy(&rs->lock);
    pthread_mutex_destroy(&rs->conf_lock);
    free(rs);
}

/* registries.conf, read once (a broken one fails every registry use). */
static int conf_get(struct registries *rs, const struct regconf **ret,
                    struct ocib_error *err)
{
    int rc = 0;

    pthread_mutex_lock(&rs->conf_lock);
    if (!rs->conf_loaded) {
        rc = regconf_load(&rs->conf, err);
        rs->conf_loaded = rc == 0;
    }
    pthread_mutex_unlock(&rs->conf_lock);
    *ret = &rs->conf;
    return rc;
}

int registries_get(struct registries *rs, const char *host, struct registry **ret,
                   struct ocib_error *err)
{
    const struct regconf *conf;
    bool insecure;
    int rc = 0;

    if (conf_get(rs, &conf, err) < 0)
        return -1;
    insecure = regconf_host_insecure(conf, host);
    pthread_mutex_lock(&rs->lock);
    for (size_t i = 0; i < rs->n; i++) {
        if (!strcmp(registry_host(rs->list[i]), host)) {
            *ret = rs->list[i];
            goto out;
        }
    }
    for (size_t i = 0; i < rs->n_insecure; i++)
        insecure |= !strcmp(rs->insecure[i], host);
    XGROW(rs->list, rs->alloc, rs->n + 1);
    rc = registry_open(host, insecure, rs->cert_dir, rs->http, &rs->list[rs->n], err);
    if (rc == 0)
        *ret = rs->list[rs->n++];
out:
    pthread_mutex_unlock(&rs->lock);
    return rc;
}

/* --- mirrors: where a pull goes --- */

/* One place to pull a name from: a mirror or the name's own location. */
struct endpoint {
    char *host, *repo;
    bool mirror;
};

struct route {
    struct endpoint v[REGCONF_MIRRORS_MAX + 1];
    size_t n;
};

enum pull_kind { PULL_BY_TAG, PULL_BY_DIGEST, PULL_BLOB };

static void route_release(struct route *rt)
{
    for (size_t i = 0; i < rt->n; i++) {
        free(rt->v[i].host);
        free(rt->v[i].repo);
    }
    rt->n = 0;
}

/* Appends the endpoint name ("host/repo") to rt. */
static int route_add(struct route *rt, const char *name, bool mirror,
                     struct ocib_error *err)
{
    struct reference ref;

    if (reference_parse(name, &ref, err) < 0)
        return ocib_error_wrap(err, "registries.conf rewrites to '%s'", name);
    rt->v[rt->n].host = TAKE_PTR(ref.registry);
    rt->v[rt->n].repo = TAKE_PTR(ref.repository);
    rt->v[rt->n].mirror = mirror;
    rt->n++;
    reference_release(&ref);
    return 0;
}

/* The table of host/repo, failing when it is blocked; *ret NULL when none. */
static int conf_find(struct registries *rs, const char *host, const char *repo,
                     const struct regconf_registry **ret, const char **ret_path,
                     struct ocib_error *err)
{
    _cleanup_free_ char *name = xasprintf("%s/%s", host, repo);
    const struct regconf *conf;

    *ret = NULL;
    if (conf_get(rs, &conf, err) < 0)
        return -1;
    *ret = regconf_find(conf, name);
    *ret_path = conf->path;
    if (*ret && (*ret)->blocked)
        return ocib_error_set(err, "registry %s: blocked by %s:%d (prefix '%s')", name,
                              conf->path, (*ret)->line, (*ret)->prefix);
    return 0;
}

/* Where to pull host/repo from, in order: the mirrors that serve this kind
 * of pull (blobs, verified by digest, from every mirror), then the name's
 * own location.  Fails when registries.conf blocks the name. */
static int route_make(struct registries *rs, const char *host, const char *repo,
                      enum pull_kind kind, struct route *ret, struct ocib_error *err)
{
    _cleanup_free_ char *name = xasprintf("%s/%s", host, repo);
    const struct regconf_registry *r;
    const char *path;

    ret->n = 0;
    if (conf_find(rs, host, repo, &r, &path, err) < 0)
        return -1;
    if (!r)
        return route_add(ret, name, false, err);
    for (size_t i = 0; i < r->n_mirrors; i++) {
        const struct regconf_mirror *m = &r->mirrors[i];
        _cleanup_free_ char *to = NULL;

        if ((kind == PULL_BY_TAG && m->pull == REGCONF_PULL_DIGEST_ONLY) ||
            (kind == PULL_BY_DIGEST && m->pull == REGCONF_PULL_TAG_ONLY))
            continue;
        to = regconf_rewrite(r, m->location, name);
        if (route_add(ret, to, true, err) < 0) {
            route_release(ret);
            return -1;
        }
    }
    {
        _cleanup_free_ char *to = regconf_rewrite(r, r->location, name);

        if (route_add(ret, to, false, err) < 0) {
            route_release(ret);
            return -1;
        }
    }
    return 0;
}

int registries_check_push(struct registries *rs, const char *host, const char *repo,
                          struct ocib_error *err)
{
    const struct regconf_registry *r;
    const char *path;

    return conf_find(rs, host, repo, &r, &path, err);
}

typedef int (*pull_fn)(struct registry *r, const char *repo, void *opaque,
                       struct ocib_error *err);

/* Runs fn on each endpoint of rt until one succeeds; *ret_which is its
 * index.  When all fail, the error is the last endpoint's (the name's own
 * location), followed by what each mirror said. */
static int route_try(struct registries *rs, const struct route *rt, pull_fn fn,
                     void *opaque, size_t *ret_which, struct ocib_error *err)
{
    struct strbuf notes = STRBUF_INIT;
    int rc = -1;

    for (size_t i = 0; i < rt->n; i++) {
        struct ocib_error e = OCIB_ERROR_INIT;
        struct registry *r;

        if (registries_get(rs, rt->v[i].host, &r, &e) == 0 &&
            fn(r, rt->v[i].repo, opaque, &e) == 0) {
            *ret_which = i;
            rc = 0;
            break;
        }
        if (i + 1 < rt->n) {
            strbuf_addf(&notes, "%smirror %s/%s: %s", notes.len ? "; " : "", rt->v[i].host,
                        rt->v[i].repo, e.msg);
            continue;
        }
        if (notes.len)
            ocib_error_kind_set(err, ocib_error_kind(&e), "%s (after %s)", e.msg,
                                notes.buf);
        else if (err)
            *err = e;
    }
    strbuf_release(&notes);
    return rc;
}

struct manifest_pull {
    const char *ref;
    struct registry_manifest *ret;
};

static int pull_manifest(struct registry *r, const char *repo, void *opaque,
                         struct ocib_error *err)
{
    struct manifest_pull *mp = opaque;

    return registry_manifest_get(r, repo, mp->ref, mp->ret, err);
}

int remote_manifest_get(struct registries *rs, const char *host, const char *repo,
                        const char *ref, struct registry_manifest *ret, char **ret_mirror,
                        struct ocib_error *err)
{
    struct manifest_pull mp = {.ref = ref, .ret = ret};
    struct route rt;
    size_t which;
    int rc;

    if (route_make(rs, host, repo, oci_digest_valid(ref) ? PULL_BY_DIGEST : PULL_BY_TAG,
                   &rt, err) < 0)
        return -1;
    rc = route_try(rs, &rt, pull_manifest, &mp, &which, err);
    if (rc == 0 && ret_mirror)
        *ret_mirror = rt.v[which].mirror
                          ? xasprintf("%s/%s", rt.v[which].host, rt.v[which].repo)
                          : NULL;
    route_release(&rt);
    return rc;
}

struct blob_pull {
    const struct oci_digest *d;
    int64_t size;
    int fd;
    size_t cap;
    char **ret;
    size_t *ret_len;
};

static int pull_blob(struct registry *r, const char *repo, void *opaque,
                     struct ocib_error *err)
{
    struct blob_pull *bp = opaque;

    if (bp->fd < 0)
        return registry_blob_get_mem(r, repo, bp->d, bp->cap, bp->ret, bp->ret_len, err);
    /* What an endpoint before this one left is thrown away. */
    if (ftruncate(bp->fd, 0) < 0 || lseek(bp->fd, 0, SEEK_SET) < 0)
        return ocib_error_errno(err, errno, "blob %s: cannot restart a download",
                                bp->d->str);
    return registry_blob_get(r, repo, bp->d, bp->size, bp->fd, err);
}

static int blob_route_get(struct registries *rs, const char *host, const char *repo,
                          struct blob_pull *bp, struct ocib_error *err)
{
    struct route rt;
    size_t which;
    int rc;

    if (route_make(rs, host, repo, PULL_BLOB, &rt, err) < 0)
        return -1;
    rc = route_try(rs, &rt, pull_blob, bp, &which, err);
    route_release(&rt);
    return rc;
}

int remote_blob_get(struct registries *rs, const char *host, const char *repo,
                    const struct oci_digest *d, int64_t size, int fd,
                    struct ocib_error *err)
{
    struct blob_pull bp = {.d = d, .size = size, .fd = fd};

    return blob_route_get(rs, host, repo, &bp, err);
}

int remote_blob_get_mem(struct registries *rs, const char *host, const char *repo,
                        const struct oci_digest *d, size_t cap, char **ret, size_t *ret_len,
                        struct ocib_error *err)
{
    struct blob_pull bp = {.d = d, .fd = -1, .cap = cap, .ret = ret, .ret_len = ret_len};

    return blob_route_get(rs, host, repo, &bp, err);
}

void blob_source_init_local(struct blob_source *b, const struct oci_digest *d, int64_t size,
                            const char *path, bool verify)
{
    memset(b, 0, sizeof(*b));
    b->digest = *d;
    b->size = size;
    b->path = xstrdup(path);
    b->verify = verify;
}

void blob_source_copy(const struct blob_source *src, struct blob_source *ret)
{
    *ret = *src;
    ret->path = src->path ? xstrdup(src->path) : NULL;
    ret->remote_host = src->remote_host ? xstrdup(src->remote_host) : NULL;
    ret->remote_repo = src->remote_repo ? xstrdup(src->remote_repo) : NULL;
}

void blob_source_release(struct blob_source *b)
{
    free(b->path);
    free(b->remote_host);
    free(b->remote_repo);
    memset(b, 0, sizeof(*b));
}

int blob_source_ensure_local(struct blob_source *b, struct cache *c, struct registries *rs,
                             struct ocib_error *err)
{
    _cleanup_free_ char *tmp = NULL;
    int fd;

    if (fs_exists(b->path))
        return 0;
    if (!b->remote_host)
        return ocib_error_set(err, "blob %s: '%s' is missing", b->digest.str, b->path);
    if (cache_tmp_create(c, &tmp, &fd, err) < 0)
        return -1;
    if (remote_blob_get(rs, b->remote_host, b->remote_repo, &b->digest, b->size, fd, err) <
        0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        unlink(tmp);
        return ocib_error_errno(err, errno, "cannot write '%s'", tmp);
    }
    return cache_blob_commit(c, tmp, &b->digest, err);
}

/* Picks the manifest for p from an index; fails listing what there is. */
static int pick_platform(const struct registry_manifest *index,
                         const struct oci_platform *p, const char *what,
                         struct oci_digest *ret, char **ret_choice, struct ocib_error *err)
{
    _cleanup_json_ json_t *j = NULL;
    _cleanup_free_ char *avail = NULL;
    const json_t *e, *plat;
    char want[96];

    if (oci_json_parse(index->data, index->len, what, &j, err) < 0)
        return -1;
    e = oci_index_pick(json_object_get(j, "manifests"), p, &avail);
    if (!e) {
        oci_platform_format(p, want, sizeof(want));
        return ocib_error_set(err, "%s: no image for platform %s (the index has: %s)", what,
                              want, avail);
    }
    if (oci_digest_parse(oci_json_str(e, "digest") ?: "", ret, err) < 0)
        return ocib_error_wrap(err, "%s", what);
    plat = json_object_get(e, "platform");
    if (ret_choice)
        *ret_choice = oci_platform_describe(plat);
    return 0;
}

/* A base's config: from the cache when an earlier build fetched it, else
 * from the registry (verified) and then kept in the cache. */
static int fetch_config(struct registries *rs, struct cache *c, const struct reference *ref,
                        const struct oci_digest *d, char **ret, size_t *ret_len,
                        struct ocib_error *err)
{
    _cleanup_free_ char *path = cache_blob_path(c, d);
    struct oci_digest got;

    if (fs_read_file(path, OCI_JSON_MAX, ret, ret_len, NULL) == 0) {
        oci_digest_of(*ret, *ret_len, &got);
        if (oci_digest_equal(&got, d))
            return 0;
        free(*ret);
        unlink(path); /* corrupt: fetch it again */
    }
    if (remote_blob_get_mem(rs, ref->registry, ref->repository, d, OCI_JSON_MAX, ret,
                            ret_len, err) < 0)
        return -1;
    cache_blob_put(c, *ret, *ret_len, d, NULL);
    return 0;
}

int remote_load_image(struct registries *rs, struct cache *c, const struct reference *ref,
                      const struct oci_platform *p, struct oci_image *ret,
                      struct blob_source **ret_srcs, struct oci_blob *ret_manifest,
                      struct oci_blob *ret_config, struct oci_blob *ret_index,
                      char **ret_choice, char **ret_mirror, struct ocib_error *err)
{
    _cleanup_free_ char *what = reference_string(ref);
    _cleanup_free_ char *config = NULL;
    _cleanup_free_ char *mirror = NULL;
    struct registry_manifest m = {0};
    struct oci_descriptor cdesc = {0};
    struct blob_source *srcs;
    size_t config_len;
    int rc = -1;

    if (ret_index)
        memset(ret_index, 0, sizeof(*ret_index));
    if (remote_manifest_get(rs, ref->registry, ref->repository, ref->digest ?: ref->tag, &m,
                            &mirror, err) < 0)
        return -1;
    if (oci_mt_is_index(m.media_type)) {
        struct oci_digest chosen;

        if (ret_index) {
            ret_index->digest = m.digest;
            ret_index->len = m.len;
            ret_index->data = xstrndup(m.data, m.len);
        }
        if (pick_platform(&m, p, what, &chosen, ret_choice, err) < 0)
            goto out;
        registry_manifest_release(&m);
        if (remote_manifest_get(rs, ref->registry, ref->repository, chosen.str, &m, NULL,
                                err) < 0)
            goto out;
    }
    if (!oci_mt_is_manifest(m.media_type)) {
        ocib_error_set(err, "%s: unsupported manifest media type '%s'", what, m.media_type);
        goto out;
    }
    if (oci_manifest_config_descriptor(m.data, m.len, what, &cdesc, err) < 0 ||
        fetch_config(rs, c, ref, &cdesc.digest, &config, &config_len, err) < 0 ||
        oci_image_load(m.data, m.len, config, config_len, what, ret, err) < 0)
        goto out;
    srcs = xcalloc(ret->n_layers + 1, sizeof(*srcs));
    for (size_t i = 0; i < ret->n_layers; i++) {
        _cleanup_free_ char *path = cache_blob_path(c, &ret->layers[i].desc.digest);

        blob_source_init_local(&srcs[i], &ret->layers[i].desc.digest,
                               ret->layers[i].desc.size, path, false);
        srcs[i].remote_host = xstrdup(ref->registry);
        srcs[i].remote_repo = xstrdup(ref->repository);
    }
    *ret_srcs = srcs;
    ret_manifest->digest = m.digest;
    ret_manifest->len = m.len;
    ret_manifest->data = TAKE_PTR(m.data);
    ret_config->digest = cdesc.digest;
    ret_config->len = config_len;
    ret_config->data = TAKE_PTR(config);
    if (ret_mirror)
        *ret_mirror = TAKE_PTR(mirror);
    rc = 0;
out:
    if (rc < 0 && ret_index)
        oci_blob_release(ret_index);
    registry_manifest_release(&m);
    oci_descriptor_release(&cdesc);
    return rc;
}

/* --- push --- */

struct push_job {
    const struct blob_source *src; /* NULL for the config */
    const struct oci_blob *mem;
};

struct push_state {
    struct registries *rs;
    struct registry *r;
    struct cache *c;
    const char *repo;
    struct push_job *jobs;
    size_t n_jobs, next;
    pthread_mutex_t lock;
    bool failed;
    struct ocib_error err;
};

static int push_one(struct push_state *ps, struct push_job *job, struct ocib_error *err)
{
    struct blob_source local;
    _cleanup_close_ int fd = -1;
    struct stat st;
    int rc;

    if (job->mem)
        return registry_blob_push(ps->r, ps->repo, &job->mem->digest,
                                  (int64_t)job->mem->len, -1, job->mem->data, NULL, err);
    /* Base layers from this registry are mounted, never re-uploaded. */
    if (job->src->remote_host && !strcmp(job->src->remote_host, registry_host(ps->r))) {
        rc = registry_blob_mount(ps->r, ps->repo, &job->src->digest, job->src->remote_repo,
                                 err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    blob_source_copy(job->src, &local);
    rc = blob_source_ensure_local(&local, ps->c, ps->rs, err);
    if (rc == 0) {
        fd = open(local.path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            rc = ocib_error_errno(err, errno, "blob %s: cannot open '%s'", local.digest.str,
                                  local.path);
    }
    if (rc == 0)
        rc = registry_blob_push(ps->r, ps->repo, &local.digest, st.st_size, fd, NULL,
                                local.remote_host &&
                                        !strcmp(local.remote_host, registry_host(ps->r))
                                    ? local.remote_repo
                                    : NULL,
                                err);
    blob_source_release(&local);
    return rc;
}

static void *push_worker(void *opaque)
{
    struct push_state *ps = opaque;

    for (;;) {
        struct ocib_error err = OCIB_ERROR_INIT;
        struct push_job *job;

        pthread_mutex_lock(&ps->lock);
        if (ps->failed || ps->next >= ps->n_jobs) {
            pthread_mutex_unlock(&ps->lock);
            return NULL;
        }
        job = &ps->jobs[ps->next++];
        pthread_mutex_unlock(&ps->lock);
        if (push_one(ps, job, &err) < 0) {
            pthread_mutex_lock(&ps->lock);
            if (!ps->failed) {
                ps->failed = true;
                ps->err = err;
            }
            pthread_mutex_unlock(&ps->lock);
            return NULL;
        }
    }
}

/* Puts a manifest or index under each tag, or its digest when none. */
static int put_manifest(struct registry *r, const char *repo, const struct oci_blob *doc,
                        const char *media_type, char *const *tags, size_t n_tags,
                        struct ocib_error *err)
{
    if (n_tags == 0)
        return registry_manifest_put(r, repo, doc->digest.str, media_type, doc->data,
                                     doc->len, err);
    for (size_t i = 0; i < n_tags; i++)
        if (registry_manifest_put(r, repo, tags[i], media_type, doc->data, doc->len, err) <
            0)
            return -1;
    return 0;
}

int remote_push_image(struct registries *rs, struct cache *c, const char *host,
                      const char *repo, const struct oci_image *img,
                      const struct blob_source *srcs, const struct oci_blob *config,
                      const struct oci_blob *manifest, const char *manifest_media_type,
                      char *const *tags, size_t n_tags, struct ocib_error *err)
{
    struct push_state ps = {.rs = rs, .c = c, .repo = repo};
    pthread_t threads[PUSH_THREADS];
    size_t n_threads = 0;

    /* Pushes go to the name's own registry, never to a mirror. */
    if (registries_check_push(rs, host, repo, err) < 0 ||
        registries_get(rs, host, &ps.r, err) < 0)
        return -1;
    ps.jobs = xcalloc(img->n_layers + 1, sizeof(*ps.jobs));
    ps.jobs[ps.n_jobs++].mem = config;
    for (size_t i = 0; i < img->n_layers; i++) {
        bool dup = false;

        for (size_t k = 0; k < i; k++)
            dup |= oci_digest_equal(&srcs[k].digest, &srcs[i].digest);
        if (!dup)
            ps.jobs[ps.n_jobs++].src = &srcs[i];
    }
    pthread_mutex_init(&ps.lock, NULL);
    for (size_t i = 0; i < PUSH_THREADS && i < ps.n_jobs; i++)
        if (pthread_create(&threads[n_threads], NULL, push_worker, &ps) == 0)
            n_threads++;
    if (n_threads == 0)
        push_worker(&ps);
    for (size_t i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&ps.lock);
    free(ps.jobs);
    if (ps.failed) {
        if (err)
            *err = ps.err;
        return -1;
    }
    if (!manifest)
        return 0; /* blobs only */
    /* The manifest goes last, once every blob it names is there. */
    return put_manifest(ps.r, repo, manifest, manifest_media_type, tags, n_tags, err);
}

int remote_push_manifest(struct registries *rs, const char *host, const char *repo,
                         const struct oci_blob *doc, const char *media_type,
                         char *const *tags, size_t n_tags, struct ocib_error *err)
{
    struct registry *r;

    if (registries_get(rs, host, &r, err) < 0)
        return -1;
    return put_manifest(r, repo, doc, media_type, tags, n_tags, err);
}
