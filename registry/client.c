/*
 * Distribution API client; see client.h.
 */
#include "registry/client.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/image.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/credentials.h"
#include "registry/headers.h"
#include "registry/reference.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MONOLITHIC_MAX (16 * 1024 * 1024)
#define CHUNK_SIZE (16 * 1024 * 1024)
#define MAX_RESUMES 8
#define MAX_UPLOADS 3
#define TOKEN_MAX (64 * 1024)

#define ACCEPT_MANIFESTS                                                                   \
    "Accept: " OCI_MT_MANIFEST ", " OCI_MT_INDEX ", " DOCKER_MT_MANIFEST ","               \
    " " DOCKER_MT_LIST

enum auth_scheme { AUTH_UNKNOWN, AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct token {
    char *scopes;
    char *value;
    time_t expires;
};

struct registry {
    char *host;
    char *base; /* scheme://endpoint */
    struct http_client *http;
    pthread_mutex_t lock;
    bool cred_loaded;
    int has_cred;
    struct credentials cred;
    enum auth_scheme scheme;
    char *realm, *service;
    struct token *tokens;
    size_t n_tokens, alloc_tokens;
    struct registry_stats stats;
};

int registry_open(const char *host, bool insecure, struct http_client *http,
                  struct registry **ret, struct ocib_error *err)
{
    struct registry *r = xcalloc(1, sizeof(*r));
    bool plain = insecure || reference_registry_is_loopback(host);

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

#define STAT_ADD(r, field, n)                                                              \
    do {                                                                                   \
        pthread_mutex_lock(&(r)->lock);                                                    \
        (r)->stats.field += (n);                                                           \
        pthread_mutex_unlock(&(r)->lock);                                                  \
    } while (0)

void registry_set_credentials(struct registry *r, const char *user, const char *secret)
{
    pthread_mutex_lock(&r->lock);
    credentials_release(&r->cred);
    r->cred.username = xstrdup(user);
    r->cred.secret = xstrdup(secret);
    r->has_cred = 1;
    r->cred_loaded = true;
    pthread_mutex_unlock(&r->lock);
}

/* Loads credentials once; called with r->lock held. */
static int load_credentials(struct registry *r, struct ocib_error *err)
{
    int found;

    if (r->cred_loaded)
        return 0;
    found = credentials_lookup(r->host, &r->cred, err);
    if (found < 0)
        return ocib_error_wrap(err, "credentials for %s", r->host);
    r->has_cred = found;
    r->cred_loaded = true;
    return 0;
}

static char *basic_header(const struct credentials *c)
{
    _cleanup_free_ char *pair = xasprintf("%s:%s", c->username, c->secret);
    char *enc = base64_encode(pair, strlen(pair));
    char *h = xasprintf("Basic %s", enc);

    explicit_bzero(pair, strlen(pair));
    explicit_bzero(enc, strlen(enc));
    free(enc);
    return h;
}

/* Records the auth scheme a 401 from the registry's own origin asked for;
 * called with r->lock held.  A challenge that cannot be parsed leaves the
 * scheme as it was. */
static void parse_challenge(struct registry *r, const char *ch)
{
    char *scheme, *realm, *service, *scope;

    if (!ch) {
        r->scheme = AUTH_BASIC;
        return;
    }
    if (registry_parse_challenge(ch, &scheme, &realm, &service, &scope) < 0)
        return;
    if (!strcasecmp(scheme, "bearer")) {
        r->scheme = AUTH_BEARER;
        free(r->realm);
        free(r->service);
        r->realm = realm;
        r->service = service;
    } else {
        r->scheme = AUTH_BASIC;
        free(realm);
        free(service);
    }
    free(scheme);
    free(scope);
}

/* Whether url is on the registry's own origin (scheme, host and port). */
static bool own_origin(const struct registry *r, const char *url)
{
    _cleanup_free_ char *a = http_url_origin(url);
    _cleanup_free_ char *b = http_url_origin(r->base);

    return !strcmp(a, b);
}

/* Credentials issued for the registry go to its token realm only when the
 * realm is on the registry's origin or is spoken to over verified TLS
 * (Docker Hub's auth.docker.io); a plain-HTTP realm elsewhere gets an
 * anonymous request, so a registry cannot make ocib send a password in
 * clear text to another host. */
static bool realm_may_get_credentials(const struct registry *r)
{
    return own_origin(r, r->realm) || !strncasecmp(r->realm, "https://", 8);
}

static struct token *token_find(struct registry *r, const char *scopes)
{
    for (size_t i = 0; i < r->n_tokens; i++)
        if (!strcmp(r->tokens[i].scopes, scopes))
            return &r->tokens[i];
    return NULL;
}

/* Fetches a Bearer token for scopes (space-separated); r->lock held. */
static int fetch_token(struct registry *r, const char *scopes, struct ocib_error *err)
{
    _cleanup_free_ char *basic = NULL;
    _cleanup_json_ json_t *j = NULL;
    struct strbuf url = STRBUF_INIT;
    struct http_request rq = {
        .method = "GET", .body_fd = -1, .capture_cap = TOKEN_MAX, .follow_redirects = true};
    struct http_response rs;
    const char *tok;
    json_int_t expires_in;
    struct token *t;
    int r_ = -1;

    if (!r->realm)
        return ocib_error_set(err, "%s: Bearer challenge without a realm", r->host);
    strbuf_addstr(&url, r->realm);
    strbuf_addch(&url, strchr(r->realm, '?') ? '&' : '?');
    if (r->service) {
        _cleanup_free_ char *s = http_escape(r->service);

        strbuf_addf(&url, "service=%s", s);
    }
    for (const char *p = scopes; *p;) {
        size_t n = strcspn(p, " ");
        _cleanup_free_ char *one = xstrndup(p, n);
        _cleanup_free_ char *esc = http_escape(one);

        if (n)
            strbuf_addf(&url, "&scope=%s", esc);
        p += n;
        while (*p == ' ')
            p++;
    }
    if (load_credentials(r, err) < 0)
        goto out;
    if (r->has_cred && realm_may_get_credentials(r)) {
        basic = basic_header(&r->cred);
        rq.authorization = basic;
    }
    rq.url = strbuf_str(&url);
    if (http_do(r->http, &rq, &rs, err) < 0) {
        ocib_error_wrap(err, "%s: token request", r->host);
        goto out;
    }
    if (rs.status == 401 || rs.status == 403) {
        ocib_error_kind_set(
            err, OCIB_ERR_AUTH,
            "%s: authentication failed%s (HTTP %ld from the token service)", r->host,
            r->has_cred ? " (wrong username or password?)" : "; run 'ocib login'",
            rs.status);
        http_response_release(&rs);
        goto out;
    }
    if (rs.status != 200) {
        ocib_error_set(err, "%s: token service answered HTTP %ld", r->host, rs.status);
        http_response_release(&rs);
        goto out;
    }
    j = json_loadb(rs.body.buf ?: "", rs.body.len, 0, NULL);
    explicit_bzero(rs.body.buf ?: (char[1]){0}, rs.body.len);
    http_response_release(&rs);
    tok = oci_json_str(j, "token");
    if (!tok || !*tok)
        tok = oci_json_str(j, "access_token");
    if (!tok || !*tok) {
        ocib_error_set(err, "%s: the token service returned no token", r->host);
        goto out;
    }
    expires_in = json_integer_value(json_object_get(j, "expires_in"));
    if (expires_in <= 0)
        expires_in = 60;
    t = token_find(r, scopes);
    if (!t) {
        XGROW(r->tokens, r->alloc_tokens, r->n_tokens + 1);
        t = &r->tokens[r->n_tokens++];
        t->scopes = xstrdup(scopes);
        t->value = NULL;
    }
    free(t->value);
    t->value = xasprintf("Bearer %s", tok);
    t->expires = time(NULL) + expires_in - (expires_in > 30 ? 10 : 0);
    r_ = 0;
out:
    strbuf_release(&url);
    return r_;
}

/* The Authorization value for a request needing scopes; caller frees (NULL
 * for anonymous). */
static int auth_for(struct registry *r, const char *scopes, bool force_refresh, char **ret,
                    struct ocib_error *err)
{
    int rc = 0;

    *ret = NULL;
    pthread_mutex_lock(&r->lock);
    switch (r->scheme) {
    case AUTH_UNKNOWN:
    case AUTH_NONE:
        break;
    case AUTH_BASIC:
        rc = load_credentials(r, err);
        if (rc == 0 && r->has_cred)
            *ret = basic_header(&r->cred);
        break;
    case AUTH_BEARER: {
        struct token *t = token_find(r, scopes);

        if (!t || force_refresh || time(NULL) >= t->expires) {
            rc = fetch_token(r, scopes, err);
            t = token_find(r, scopes);
        }
        if (rc == 0 && t)
            *ret = xstrdup(t->value);
        break;
    }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* A request with auth: on 401, learns the challenge and tries again with
 * fresh credentials. A rejected credential is refreshed once; an anonymous
 * attempt (the first request, before any challenge) does not count, so a
 * token revoked right after it was fetched is still refreshed.
 *
 * Credentials go only to the registry's own origin: a URL the registry
 * hands out on another host or port (an upload Location, a redirect) is
 * requested without them, and a 401 from such a host teaches nothing. */
static int reg_do(struct registry *r, const char *scopes, struct http_request *rq,
                  struct http_response *rs, struct ocib_error *err)
{
    bool own = own_origin(r, rq->url);
    int rejected = 0;

    for (int attempt = 0; attempt < 3; attempt++) {
        _cleanup_free_ char *auth = NULL;

        if (own && auth_for(r, scopes, attempt > 0, &auth, err) < 0)
            return -1;
        rq->authorization = auth;
        if (http_do(r->http, rq, rs, err) < 0) {
            rq->authorization = NULL;
            return -1;
        }
        rq->authorization = NULL;
        if (rs->status != 401 || !own || attempt == 2 || (auth && ++rejected > 1))
            break;
        pthread_mutex_lock(&r->lock);
        parse_challenge(r, rs->www_authenticate);
        pthread_mutex_unlock(&r->lock);
        http_response_release(rs);
    }
    if (rs->status == 401 && !own) {
        _cleanup_free_ char *origin = http_url_origin(rq->url);

        http_response_release(rs);
        return ocib_error_kind_set(err, OCIB_ERR_AUTH,
                                   "%s: %s asks for credentials, which ocib sends only to "
                                   "the registry's own origin",
                                   r->host, origin);
    }
    if (rs->status == 401) {
        bool has;

        pthread_mutex_lock(&r->lock);
        has = r->has_cred;
        pthread_mutex_unlock(&r->lock);
        http_response_release(rs);
        return ocib_error_kind_set(
            err, OCIB_ERR_AUTH, "%s: %s", r->host,
            has ? "authentication failed (wrong username or password?)"
                : "authentication required; run 'ocib login'");
    }
    return 0;
}

static char *scope_pull(const char *repo)
{
    return xasprintf("repository:%s:pull", repo);
}

static char *scope_push(const char *repo, const char *mount_from)
{
    if (mount_from && strcmp(mount_from, repo))
        return xasprintf("repository:%s:pull,push repository:%s:pull", repo, mount_from);
    return xasprintf("repository:%s:pull,push", repo);
}

/* The kind of failure an HTTP status (and the registry's error code) says. */
static enum ocib_error_kind status_kind(long status, const char *code)
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

/* "<what>: HTTP 400: CODE: message" from the registry's error document
 * (distribution spec: {"errors": [{"code", "message", "detail"}]}), with
 * every code it lists; the kind follows the status and the first code. */
static int http_error(const char *what, const struct http_response *rs,
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
    rc = ocib_error_kind_set(err, status_kind(rs->status, first_code), "%s: HTTP %ld%s",
                             what, rs->status, detail.len ? detail.buf : "");
    strbuf_release(&detail);
    return rc;
}

int registry_check_login(struct registry *r, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/", r->base);
    struct http_request rq = {.method = "GET", .url = url, .body_fd = -1};
    struct http_response rs;

    if (reg_do(r, "", &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 200) {
        int rc = http_error(url, &rs, err);

        http_response_release(&rs);
        return rc;
    }
    http_response_release(&rs);
    pthread_mutex_lock(&r->lock);
    if (r->scheme == AUTH_BEARER) {
        int rc = fetch_token(r, "", err);

        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (r->scheme == AUTH_UNKNOWN && r->has_cred) {
        /* The registry let us in without asking: nothing to verify. */
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
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
    _cleanup_free_ char *scopes = scope_pull(repo);
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

    if (reg_do(r, scopes, &rq, &rs, err) < 0)
        return ocib_error_wrap(err, "manifest %s", what);
    if (rs.status != 200) {
        http_error(what, &rs, err);
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
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, ref);
    _cleanup_free_ char *scopes = scope_push(repo, NULL);
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

    if (reg_do(r, scopes, &rq, &rs, err) < 0)
        return ocib_error_wrap(err, "pushing manifest %s/%s:%s", r->host, repo, ref);
    if (rs.status != 201 && rs.status != 200) {
        _cleanup_free_ char *what =
            xasprintf("pushing manifest %s/%s:%s", r->host, repo, ref);

        rc = http_error(what, &rs, err);
    }
    http_response_release(&rs);
    return rc;
}

int registry_blob_exists(struct registry *r, const char *repo, const struct oci_digest *d,
                         struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/%s", r->base, repo, d->str);
    _cleanup_free_ char *scopes = scope_pull(repo);
    struct http_request rq = {
        .method = "HEAD", .url = url, .body_fd = -1, .follow_redirects = true};
    struct http_response rs;
    long status;

    if (reg_do(r, scopes, &rq, &rs, err) < 0)
        return ocib_error_wrap(err, "blob %s", d->str);
    status = rs.status;
    http_response_release(&rs);
    if (status == 200)
        return 1;
    if (status == 404)
        return 0;
    return ocib_error_kind_set(err, status_kind(status, NULL),
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
    _cleanup_free_ char *scopes = scope_pull(repo);
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
    if (reg_do(r, scopes, &rq, &rs, err) < 0) {
        sha256_release(&s->h);
        return ocib_error_wrap(err, "%s/%s: blob %s", r->host, repo, d->str);
    }
    if (rs.status != 200) {
        _cleanup_free_ char *what = xasprintf("%s/%s: blob %s", r->host, repo, d->str);
        int rc = http_error(what, &rs, err);

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

struct upload {
    struct registry *r;
    const char *repo;
    const struct oci_digest *d;
    const char *scopes;
    char *location; /* absolute upload URL */
    int64_t size;
    int fd;
    const void *data;
    int64_t chunk_min;
    int64_t chunk_size;
};

static void upload_set_location(struct upload *u, const char *base_url, const char *loc)
{
    char *abs = http_url_resolve(base_url, loc);

    free(u->location);
    u->location = abs;
}

/* Asks the registry how much of the upload it has (GET on the session):
 * *ret_next is the next offset it expects, or -1 when its answer does not
 * say exactly (no Range, "0-0", a range past what was sent): the caller then
 * starts a new session. */
static int upload_status(struct upload *u, int64_t sent, int64_t *ret_next,
                         struct ocib_error *err)
{
    struct http_request rq = {.method = "GET", .url = u->location, .body_fd = -1};
    struct http_response rs;
    int64_t next = -1;

    if (reg_do(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 204 && rs.status != 200) {
        int rc = http_error("upload status", &rs, err);

        http_response_release(&rs);
        return rc;
    }
    if (registry_parse_range(rs.range, &next) < 0 || next > sent)
        next = -1;
    *ret_next = next;
    if (rs.location)
        upload_set_location(u, u->location, rs.location);
    http_response_release(&rs);
    return 0;
}

static char *with_digest(const char *location, const struct oci_digest *d)
{
    _cleanup_free_ char *esc = http_escape(d->str);

    return xasprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', esc);
}

/* Sends [from, to) with PATCH; updates the location.  *ret_next is where
 * the registry says the next chunk starts (to, unless its Range says it
 * holds less). */
static int upload_patch(struct upload *u, int64_t from, int64_t to, int64_t *ret_next,
                        struct ocib_error *err)
{
    _cleanup_free_ char *cr =
        xasprintf("Content-Range: %lld-%lld", (long long)from, (long long)to - 1);
    const char *headers[] = {"Content-Type: application/octet-stream", cr, NULL};
    struct http_request rq = {.method = "PATCH",
                              .url = u->location,
                              .headers = headers,
                              .body_fd = u->fd,
                              .no_retry = true};
    struct http_response rs;
    int64_t next;

    if (u->fd >= 0) {
        rq.body_offset = (uint64_t)from;
        rq.body_fd_len = (uint64_t)(to - from);
    } else {
        rq.body = (const char *)u->data + from;
        rq.body_len = (size_t)(to - from);
    }
    if (reg_do(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 202) {
        int rc = http_error("PATCH upload", &rs, err);

        http_response_release(&rs);
        return rc;
    }
    *ret_next = to;
    if (registry_parse_range(rs.range, &next) == 0 && next > from && next < to)
        *ret_next = next;
    if (rs.location)
        upload_set_location(u, u->location, rs.location);
    http_response_release(&rs);
    return 0;
}

/* Final PUT (with the whole body when monolithic); *ret_status is 201 or
 * 413 on success. */
static int upload_put(struct upload *u, bool with_body, long *ret_status,
                      struct ocib_error *err)
{
    _cleanup_free_ char *url = with_digest(u->location, u->d);
    const char *headers[] = {"Content-Type: application/octet-stream", NULL};
    struct http_request rq = {.method = "PUT",
                              .url = url,
                              .headers = headers,
                              .body_fd = -1,
                              .no_retry = with_body};
    struct http_response rs;

    if (with_body) {
        if (u->fd >= 0) {
            rq.body_fd = u->fd;
            rq.body_offset = 0;
            rq.body_fd_len = (uint64_t)u->size;
        } else {
            rq.body = u->data;
            rq.body_len = (size_t)u->size;
        }
    }
    if (reg_do(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    *ret_status = rs.status;
    if (rs.status != 201 && rs.status != 413) {
        int rc = http_error("PUT upload", &rs, err);

        http_response_release(&rs);
        return rc;
    }
    http_response_release(&rs);
    return 0;
}

/* Starts an upload session (or mounts); returns 1 when mounted. */
static int upload_start(struct upload *u, const char *mount_from, struct ocib_error *err)
{
    _cleanup_free_ char *url = NULL;
    struct http_request rq = {.method = "POST", .body_fd = -1};
    struct http_response rs;

    if (mount_from && strcmp(mount_from, u->repo)) {
        _cleanup_free_ char *d = http_escape(u->d->str);
        _cleanup_free_ char *f = http_escape(mount_from);

        url = xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", u->r->base, u->repo, d,
                        f);
    } else {
        url = xasprintf("%s/v2/%s/blobs/uploads/", u->r->base, u->repo);
    }
    rq.url = url;
    if (reg_do(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status == 201) {
        http_response_release(&rs);
        return 1;
    }
    if (rs.status != 202) {
        int rc = http_error("starting an upload", &rs, err);

        http_response_release(&rs);
        return rc;
    }
    if (!rs.location || !*rs.location) {
        http_response_release(&rs);
        return ocib_error_set(err, "starting an upload: the registry answered 202 Accepted "
                                   "without a Location header (nowhere to send the blob)");
    }
    upload_set_location(u, url, rs.location);
    u->chunk_min = 0;
    if (rs.chunk_min_length &&
        registry_parse_count(rs.chunk_min_length, MONOLITHIC_MAX * 4, &u->chunk_min) < 0) {
        http_response_release(&rs);
        return ocib_error_set(err,
                              "starting an upload: invalid OCI-Chunk-Min-Length '%.40s'",
                              rs.chunk_min_length);
    }
    http_response_release(&rs);
    return 0;
}

/* Sends the whole blob in chunks on the session upload_start() opened,
 * resuming from where the registry says it stands after an interruption
 * (a new session from byte 0 when it cannot say exactly), then closes it. */
static int upload_chunked(struct upload *u, struct ocib_error *err)
{
    int64_t chunk = u->chunk_size ? u->chunk_size : CHUNK_SIZE, off = 0;
    int resumes = 0;
    long status = 0;

    if (u->chunk_min > chunk)
        chunk = u->chunk_min;
    while (off < u->size) {
        int64_t end = off + chunk < u->size ? off + chunk : u->size;
        struct ocib_error perr = OCIB_ERROR_INIT;
        int64_t next = end;

        if (upload_patch(u, off, end, &next, &perr) == 0) {
            off = next;
            continue;
        }
        /* Interrupted: ask how far the registry got and go on from there. */
        if (++resumes > MAX_RESUMES) {
            if (err)
                *err = perr;
            return ocib_error_wrap(err, "after %d resumed attempts", MAX_RESUMES);
        }
        if (upload_status(u, end, &next, NULL) < 0 || next < 0) {
            /* The registry forgot or refused the session (distribution
             * invalidates a session resumed with an outdated URL), or its
             * answer is ambiguous: start a new one from the beginning. */
            if (upload_start(u, NULL, err) < 0)
                return -1;
            next = 0;
        }
        off = next;
    }
    if (upload_put(u, false, &status, err) < 0)
        return -1;
    if (status != 201)
        return ocib_error_set(err, "PUT upload: HTTP %ld", status);
    return 0;
}

/* Whether an upload that failed this way may succeed from a new session:
 * the connection dropped (the reply may be lost: the blob may be committed)
 * or the registry found the bytes it received do not match the digest. */
static bool upload_restartable(const struct ocib_error *e)
{
    enum ocib_error_kind k = ocib_error_kind(e);

    return k == OCIB_ERR_NETWORK || k == OCIB_ERR_INTEGRITY;
}

/* One upload from POST to the final PUT: 1 when mounted, 0 when uploaded. */
static int upload_once(struct upload *u, const char *mount_from, struct ocib_error *err)
{
    int rc = upload_start(u, mount_from, err);
    long status = 0;

    if (rc != 0)
        return rc;
    if (u->size <= MONOLITHIC_MAX && !u->chunk_min && !u->chunk_size) {
        if (upload_put(u, true, &status, err) < 0)
            return -1;
        if (status == 201)
            return 0;
        /* 413: the registry wants smaller requests; a new session. */
        u->chunk_size = CHUNK_SIZE / 4;
        if (upload_start(u, NULL, err) < 0)
            return -1;
    }
    return upload_chunked(u, err);
}

int registry_blob_push(struct registry *r, const char *repo, const struct oci_digest *d,
                       int64_t size, int fd, const void *data, const char *mount_from,
                       struct ocib_error *err)
{
    _cleanup_free_ char *scopes = scope_push(repo, mount_from);
    struct upload u = {.r = r,
                       .repo = repo,
                       .d = d,
                       .scopes = scopes,
                       .size = size,
                       .fd = fd,
                       .data = data};
    int rc = -1, exists;

    for (int attempt = 0; attempt < MAX_UPLOADS; attempt++) {
        /* Before the first upload, and after a failed one whose reply may
         * have been lost: a blob the registry committed is not sent again. */
        exists = registry_blob_exists(r, repo, d, err);
        if (exists < 0) {
            rc = -1;
            break;
        }
        if (exists) {
            if (attempt == 0)
                STAT_ADD(r, blobs_skipped, 1);
            else
                STAT_ADD(r, blobs_uploaded, 1);
            rc = 0;
            break;
        }
        ocib_error_clear(err);
        rc = upload_once(&u, attempt == 0 ? mount_from : NULL, err);
        if (rc == 1)
            STAT_ADD(r, blobs_mounted, 1);
        if (rc >= 0) {
            if (rc == 0) {
                STAT_ADD(r, blobs_uploaded, 1);
                STAT_ADD(r, bytes_uploaded, (unsigned long)size);
            }
            rc = 0;
            break;
        }
        if (!upload_restartable(err))
            break;
    }
    free(u.location);
    if (rc < 0)
        return ocib_error_wrap(err, "%s/%s: pushing blob %s", r->host, repo, d->str);
    return 0;
}

int registry_blob_mount(struct registry *r, const char *repo, const struct oci_digest *d,
                        const char *mount_from, struct ocib_error *err)
{
    _cleanup_free_ char *scopes = scope_push(repo, mount_from);
    struct upload u = {.r = r, .repo = repo, .d = d, .scopes = scopes};
    int rc = registry_blob_exists(r, repo, d, err);

    if (rc != 0) {
        if (rc > 0)
            STAT_ADD(r, blobs_skipped, 1);
        return rc;
    }
    if (!mount_from || !strcmp(mount_from, repo))
        return 0;
    rc = upload_start(&u, mount_from, err);
    free(u.location); /* an unused session expires on the registry */
    if (rc == 1)
        STAT_ADD(r, blobs_mounted, 1);
    return rc < 0 ? ocib_error_wrap(err, "%s/%s: mounting blob %s from %s", r->host, repo,
                                    d->str, mount_from)
                  : rc;
}
