/*
 * Distribution API client; see client.h.
 *
 * This file holds a registry's life (open, free, statistics), the answers
 * every request shares (scopes, the registry's error documents) and the
 * reads: manifests and blobs, each verified against its digest as it
 * arrives.  Requests go through registry_request() (auth.c); pushing a blob
 * is upload.c's.
 */
#include "registry/client.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/client_internal.h"
#include "registry/reference.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCEPT_MANIFESTS                                                                   \
    "Accept: " OCI_MT_MANIFEST ", " OCI_MT_INDEX ", " DOCKER_MT_MANIFEST ","               \
    " " DOCKER_MT_LIST

int registry_open(const char *host, bool insecure, const char *cert_dir,
                  struct http_client *http, struct registry **ret, struct ocib_error *err)
{
    struct registry_tls *tls = NULL;
    struct registry *r;
    bool plain;

    if (registry_tls_load(host, cert_dir, &tls, err) < 0)
        return -1;
    /* A loopback host with TLS settings is one set up to speak TLS. */
    plain = insecure || (!tls && reference_registry_is_loopback(host));
    r = xcalloc(1, sizeof(*r));
    r->tls = tls;
    if (tls)
        registry_tls_http(tls, &r->http_tls);
    r->host = xstrdup(host);
    r->base =
        xasprintf("%s://%s", plain ? "http" : "https", reference_registry_endpoint(host));
    r->http = http;
    pthread_mutex_init(&r->lock, NULL);
    *ret = r;
    return 0;
}

void registry_free(struct registry *r)
{
    if (!r)
        return;
    credentials_release(&r->cred);
    for (size_t i = 0; i < r->n_tokens; i++) {
        free(r->tokens[i].scopes);
        explicit_bzero(r->tokens[i].value, strlen(r->tokens[i].value));
        free(r->tokens[i].value);
    }
    free(r->tokens);
    free(r->realm);
    free(r->service);
    registry_tls_free(r->tls);
    free(r->host);
    free(r->base);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *registry_host(const struct registry *r)
{
    return r->host;
}

void registry_get_stats(struct registry *r, struct registry_stats *ret)
{
    pthread_mutex_lock(&r->lock);
    *ret = r->stats;
    pthread_mutex_unlock(&r->lock);
}

char *registry_scope_pull(const char *repo)
{
    return xasprintf("repository:%s:pull", repo);
}

char *registry_scope_push(const char *repo, const char *mount_from)
{
    if (mount_from && strcmp(mount_from, repo))
        return xasprintf("repository:%s:pull,push repository:%s:pull", repo, mount_from);
    return xasprintf("repository:%s:pull,push", repo);
}

enum ocib_error_kind registry_status_kind(long status, const char *code)
{
    if (code && (!strcmp(code, "DIGEST_INVALID") || !strcmp(code, "SIZE_INVALID")))
        return OCIB_ERR_INTEGRITY;
    if (code && (!strcmp(code, "MANIFEST_UNKNOWN") || !strcmp(code, "NAME_UNKNOWN") ||
                 !strcmp(code, "BLOB_UNKNOWN")))
        return OCIB_ERR_NOT_FOUND;
    if (status == 404)
        return OCIB_ERR_NOT_FOUND;
    if (status == 401 || status == 403)
        return OCIB_ERR_AUTH;
    if (status >= 500 || status == 429)
        return OCIB_ERR_NETWORK;
    return OCIB_ERR_OTHER;
}

/* The error document is the distribution spec's: {"errors": [{"code",
 * "message", "detail"}]}; the message has every code it lists (up to four),
 * and the kind follows the status and the first code. */
int registry_http_error(const char *what, const struct http_response *rs,
                        struct ocib_error *err)
{
    _cleanup_json_ json_t *j = NULL;
    struct strbuf detail = STRBUF_INIT;
    const char *first_code = NULL;
    json_t *e;
    size_t i;
    int rc;

    if (rs->body.len)
        j = json_loadb(rs->body.buf, rs->body.len, 0, NULL);
    json_array_foreach(json_object_get(j, "errors"), i, e)
    {
        const char *code = oci_json_str(e, "code");
        const char *msg = oci_json_str(e, "message");

        if (!code && !msg)
            continue;
        if (!first_code)
            first_code = code;
        strbuf_addf(&detail, "%s%s%s%s", detail.len ? "; " : ": ", code ?: "",
                    code && msg ? ": " : "", msg ?: "");
        if (i >= 3)
            break;
    }
    rc = ocib_error_kind_set(err, registry_status_kind(rs->status, first_code),
                             "%s: HTTP %ld%s", what, rs->status,
                             detail.len ? detail.buf : "");
    strbuf_release(&detail);
    return rc;
}

void registry_manifest_release(struct registry_manifest *m)
{
    free(m->data);
    free(m->media_type);
    memset(m, 0, sizeof(*m));
}

int registry_manifest_get(struct registry *r, const char *repo, const char *ref,
                          struct registry_manifest *ret, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, ref);
    _cleanup_free_ char *scopes = registry_scope_pull(repo);
    static const char *const headers[] = {ACCEPT_MANIFESTS, NULL};
    struct http_request rq = {.method = "GET",
                              .url = url,
                              .headers = headers,
                              .body_fd = -1,
                              .capture_cap = OCI_JSON_MAX,
                              .follow_redirects = true};
    struct http_response rs;
    struct oci_digest got;
    enum oci_doc_kind kind;
    _cleanup_free_ char *what = xasprintf("%s/%s:%s", r->host, repo, ref);

    if (registry_request(r, scopes, &rq, &rs, err) < 0)
        return ocib_error_wrap(err, "manifest %s", what);
    if (rs.status != 200) {
        registry_http_error(what, &rs, err);
        http_response_release(&rs);
        return ocib_error_wrap(err, "manifest");
    }
    oci_digest_of(rs.body.buf ?: "", rs.body.len, &got);
    if (oci_digest_valid(ref) && strcmp(ref, got.str)) {
        http_response_release(&rs);
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "manifest %s: content does not match its digest (got %s)", what, got.str);
    }
    if (rs.docker_content_digest && oci_digest_valid(rs.docker_content_digest) &&
        strcmp(rs.docker_content_digest, got.str)) {
        ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "manifest %s: Docker-Content-Digest %s does not match content %s", what,
            rs.docker_content_digest, got.str);
        http_response_release(&rs);
        return -1;
    }
    memset(ret, 0, sizeof(*ret));
    if (oci_doc_classify(rs.body.buf ?: "", rs.body.len, rs.content_type, what, &kind,
                         &ret->media_type, err) < 0) {
        http_response_release(&rs);
        return ocib_error_wrap(err, "manifest");
    }
    ret->digest = got;
    ret->len = rs.body.len;
    ret->data = strbuf_detach(&rs.body);
    http_response_release(&rs);
    return 0;
}

int registry_manifest_put(struct registry *r, const char *repo, const char *ref,
                          const char *media_type, const void *data, size_t len,
                          struct ocib_error *err)
{
    return registry_manifest_put_subject(r, repo, ref, media_type, data, len, NULL, err);
}

int registry_manifest_put_subject(struct registry *r, const char *repo, const char *ref,
                                  const char *media_type, const void *data, size_t len,
                                  bool *ret_subject, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, ref);
    _cleanup_free_ char *scopes = registry_scope_push(repo, NULL);
    _cleanup_free_ char *ct = xasprintf("Content-Type: %s", media_type);
    const char *headers[] = {ct, NULL};
    struct http_request rq = {.method = "PUT",
                              .url = url,
                              .headers = headers,
                              .body = data,
                              .body_len = len,
                              .body_fd = -1};
    struct http_response rs;
    int rc = 0;

    for (int attempt = 0;; attempt++) {
        if (registry_request(r, scopes, &rq, &rs, err) < 0)
            return ocib_error_wrap(err, "pushing manifest %s/%s:%s", r->host, repo, ref);
        /* A blob another client is uploading to the repository at the same
         * moment can be unreadable to the registry's check for an instant
         * (distribution rewrites the blob's link file in place): the blobs
         * were all pushed, so ask again a little later. */
        if (rs.status != 400 || attempt >= 3 || !rs.body.len ||
            !memmem(rs.body.buf, rs.body.len, "MANIFEST_BLOB_UNKNOWN", 21))
            break;
        http_response_release(&rs);
        usleep(200000u << attempt);
    }
    if (rs.status != 201 && rs.status != 200) {
        _cleanup_free_ char *what =
            xasprintf("pushing manifest %s/%s:%s", r->host, repo, ref);

        rc = registry_http_error(what, &rs, err);
    }
    if (ret_subject && rc == 0)
        *ret_subject = rs.oci_subject != NULL;
    http_response_release(&rs);
    return rc;
}

int registry_blob_exists(struct registry *r, const char *repo, const struct oci_digest *d,
                         struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/%s", r->base, repo, d->str);
    _cleanup_free_ char *scopes = registry_scope_pull(repo);
    struct http_request rq = {
        .method = "HEAD", .url = url, .body_fd = -1, .follow_redirects = true};
    struct http_response rs;
    long status;

    if (registry_request(r, scopes, &rq, &rs, err) < 0)
        return ocib_error_wrap(err, "blob %s", d->str);
    status = rs.status;
    http_response_release(&rs);
    if (status == 200)
        return 1;
    if (status == 404)
        return 0;
    return ocib_error_kind_set(err, registry_status_kind(status, NULL),
                               "%s/%s: HEAD blob %s: HTTP %ld", r->host, repo, d->str,
                               status);
}

/* Streams a blob into an fd while hashing it. */
struct blob_sink {
    int fd;
    struct sha256 h;
    uint64_t n;
    char *mem; /* when fd < 0 */
    size_t cap;
};

static int blob_sink_write(void *opaque, const void *buf, size_t len,
                           struct ocib_error *err)
{
    struct blob_sink *s = opaque;

    sha256_update(&s->h, buf, len);
    if (s->fd < 0) {
        if (s->n + len > s->cap)
            return ocib_error_set(err, "blob larger than %zu bytes", s->cap);
        memcpy(s->mem + s->n, buf, len);
    } else if (fs_write_all(s->fd, buf, len, err) < 0) {
        return -1;
    }
    s->n += len;
    return 0;
}

static int blob_sink_reset(void *opaque, struct ocib_error *err)
{
    struct blob_sink *s = opaque;

    if (s->fd >= 0 && (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0))
        return ocib_error_errno(err, errno, "cannot restart a download");
    sha256_release(&s->h);
    sha256_init(&s->h);
    s->n = 0;
    return 0;
}

static int blob_get(struct registry *r, const char *repo, const struct oci_digest *d,
                    int64_t size, struct blob_sink *s, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/%s", r->base, repo, d->str);
    _cleanup_free_ char *scopes = registry_scope_pull(repo);
    struct http_request rq = {.method = "GET",
                              .url = url,
                              .body_fd = -1,
                              .follow_redirects = true,
                              .sink = blob_sink_write,
                              .sink_reset = blob_sink_reset,
                              .sink_opaque = s};
    struct http_response rs;
    struct oci_digest got;

    sha256_init(&s->h);
    if (registry_request(r, scopes, &rq, &rs, err) < 0) {
        sha256_release(&s->h);
        return ocib_error_wrap(err, "%s/%s: blob %s", r->host, repo, d->str);
    }
    if (rs.status != 200) {
        _cleanup_free_ char *what = xasprintf("%s/%s: blob %s", r->host, repo, d->str);
        int rc = registry_http_error(what, &rs, err);

        sha256_release(&s->h);
        http_response_release(&rs);
        return rc;
    }
    http_response_release(&rs);
    oci_digest_from_sha256(&s->h, &got);
    if (!oci_digest_equal(&got, d))
        return ocib_error_kind_set(
            err, OCIB_ERR_INTEGRITY,
            "%s/%s: blob %s: content does not match its digest (got %s)", r->host, repo,
            d->str, got.str);
    if (size >= 0 && (int64_t)s->n != size)
        return ocib_error_kind_set(err, OCIB_ERR_INTEGRITY,
                                   "%s/%s: blob %s: %llu bytes, expected %lld", r->host,
                                   repo, d->str, (unsigned long long)s->n, (long long)size);
    STAT_ADD(r, blobs_downloaded, 1);
    STAT_ADD(r, bytes_downloaded, s->n);
    return 0;
}

int registry_blob_get(struct registry *r, const char *repo, const struct oci_digest *d,
                      int64_t size, int fd, struct ocib_error *err)
{
    struct blob_sink s = {.fd = fd};

    return blob_get(r, repo, d, size, &s, err);
}

int registry_blob_get_mem(struct registry *r, const char *repo, const struct oci_digest *d,
                          size_t cap, char **ret, size_t *ret_len, struct ocib_error *err)
{
    struct blob_sink s = {.fd = -1, .mem = xmalloc(cap + 1), .cap = cap};

    if (blob_get(r, repo, d, -1, &s, err) < 0) {
        free(s.mem);
        return -1;
    }
    s.mem[s.n] = '\0';
    *ret = s.mem;
    *ret_len = s.n;
    return 0;
}
