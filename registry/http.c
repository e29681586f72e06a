/*
 * libcurl transport; see http.h.
 */
#include "registry/http.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "registry/headers.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAPTURE_DEFAULT (64 * 1024)
#define MAX_REDIRECTS 5
#define POOL_MAX 16

struct http_client {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL *pool[POOL_MAX];
    size_t n_pool;
    long timeout;
    int retries, base_ms;
    _Atomic uint64_t bytes_in, bytes_out; /* bodies, for live progress */
    http_notify_fn notify;
    void *notify_opaque;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *opaque)
{
    struct http_client *c = opaque;

    pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *opaque)
{
    struct http_client *c = opaque;

    pthread_mutex_unlock(&c->locks[data]);
}

int http_client_new(struct http_client **ret, struct ocib_error *err)
{
    const char *t = getenv("OCIB_HTTP_TIMEOUT");
    struct http_client *c;
    int64_t timeout = 60;

    if (t && (registry_parse_count(t, 86400, &timeout) < 0 || timeout == 0))
        return ocib_error_usage(
            err, "OCIB_HTTP_TIMEOUT='%.40s': expected seconds (1 to 86400)", t);
    c = xcalloc(1, sizeof(*c));

    pthread_once(&global_once, global_init);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    c->share = curl_share_init();
    if (!c->share) {
        free(c);
        return ocib_error_set(err, "cannot initialise libcurl");
    }
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    c->timeout = timeout;
    c->retries = 5;
    c->base_ms = 200;
    *ret = c;
    return 0;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    curl_share_cleanup(c->share);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->locks[i]);
    pthread_mutex_destroy(&c->pool_lock);
    free(c);
}

void http_client_set_retries(struct http_client *c, int retries, int base_ms)
{
    c->retries = retries;
    c->base_ms = base_ms;
}

void http_client_set_notify(struct http_client *c, http_notify_fn fn, void *opaque)
{
    c->notify = fn;
    c->notify_opaque = opaque;
}

void http_client_bytes(struct http_client *c, uint64_t *ret_in, uint64_t *ret_out)
{
    *ret_in = atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
    *ret_out = atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
}

static CURL *easy_get(struct http_client *c)
{
    CURL *h = NULL;

    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->pool_lock);
    if (!h)
        h = curl_easy_init();
    else
        curl_easy_reset(h);
    return h;
}

static void easy_put(struct http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool < POOL_MAX) {
        c->pool[c->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

void http_response_release(struct http_response *rs)
{
    strbuf_release(&rs->body);
    free(rs->location);
    free(rs->www_authenticate);
    free(rs->content_type);
    free(rs->docker_content_digest);
    free(rs->range);
    free(rs->retry_after);
    free(rs->chunk_min_length);
    free(rs->oci_subject);
    free(rs->effective_url);
    memset(rs, 0, sizeof(*rs));
}

/* State of one attempt. */
struct transfer {
    struct http_client *c;
    const struct http_request *rq;
    struct http_response *rs;
    CURL *h;
    uint64_t sent;
    uint64_t received; /* bytes given to the sink */
    struct ocib_error sink_err;
    bool sink_failed;
};

static size_t header_cb(char *buf, size_t size, size_t n, void *opaque)
{
    struct transfer *t = opaque;
    size_t len = size * n, name_len;
    const char *colon = memchr(buf, ':', len);
    char **slot = NULL;
    const char *v;
    size_t vlen;

    if (len > 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new response (after 1xx): forget earlier headers. */
        struct strbuf keep = t->rs->body;

        t->rs->body = (struct strbuf)STRBUF_INIT;
        http_response_release(t->rs);
        t->rs->body = keep;
        t->rs->content_length = -1;
        return len;
    }
    if (!colon)
        return len;
    name_len = (size_t)(colon - buf);
#define HDR(name, field)                                                                   \
    if (name_len == strlen(name) && !strncasecmp(buf, name, name_len))                     \
        slot = &t->rs->field;
    HDR("location", location)
    HDR("www-authenticate", www_authenticate)
    HDR("content-type", content_type)
    HDR("docker-content-digest", docker_content_digest)
    HDR("range", range)
    HDR("retry-after", retry_after)
    HDR("oci-chunk-min-length", chunk_min_length)
    HDR("oci-subject", oci_subject)
#undef HDR
    v = colon + 1;
    vlen = len - name_len - 1;
    while (vlen && isspace((unsigned char)*v)) {
        v++;
        vlen--;
    }
    while (vlen && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if (name_len == 14 && !strncasecmp(buf, "content-length", 14)) {
        char tmp[32];

        snprintf(tmp, sizeof(tmp), "%.*s", (int)(vlen < 31 ? vlen : 31), v);
        if (registry_parse_count(tmp, INT64_MAX, &t->rs->content_length) < 0)
            t->rs->content_length = -1;
    }
    if (slot) {
        free(*slot);
        *slot = xstrndup(v, vlen);
    }
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *opaque)
{
    struct transfer *t = opaque;
    size_t len = size * n;
    long status = 0;
    size_t cap = t->rq->capture_cap ? t->rq->capture_cap : CAPTURE_DEFAULT;

    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
    atomic_fetch_add_explicit(&t->c->bytes_in, len, memory_order_relaxed);
    if (status >= 200 && status < 300 && t->rq->sink) {
        if (t->rq->sink(t->rq->sink_opaque, buf, len, &t->sink_err) < 0) {
            t->sink_failed = true;
            return 0;
        }
        t->received += len;
        return len;
    }
    if (t->rs->body.len + len > cap) {
        if (status >= 200 && status < 300) {
            ocib_error_set(&t->sink_err, "response larger than %zu bytes", cap);
            t->sink_failed = true;
            return 0;
        }
        return len; /* error bodies are truncated silently */
    }
    strbuf_add(&t->rs->body, buf, len);
    return len;
}

static size_t read_cb(char *buf, size_t size, size_t n, void *opaque)
{
    struct transfer *t = opaque;
    const struct http_request *rq = t->rq;
    size_t want = size * n;

    if (rq->body_fd >= 0) {
        uint64_t left = rq->body_fd_len - t->sent;
        ssize_t got;

        if (want > left)
            want = (size_t)left;
        if (!want)
            return 0;
        got = pread(rq->body_fd, buf, want, (off_t)(rq->body_offset + t->sent));
        if (got < 0)
            return CURL_READFUNC_ABORT;
        t->sent += (uint64_t)got;
        atomic_fetch_add_explicit(&t->c->bytes_out, (uint64_t)got, memory_order_relaxed);
        return (size_t)got;
    }
    {
        uint64_t left = rq->body_len - t->sent;

        if (want > left)
            want = (size_t)left;
        memcpy(buf, (const char *)rq->body + t->sent, want);
        t->sent += want;
        atomic_fetch_add_explicit(&t->c->bytes_out, want, memory_order_relaxed);
        return want;
    }
}

static int seek_cb(void *opaque, curl_off_t offset, int origin)
{
    struct transfer *t = opaque;

    if (origin != SEEK_SET)
        return CURL_SEEKFUNC_CANTSEEK;
    /* libcurl silently re-sends a request whose reused connection died
     * before an answer, rewinding the body. A non-idempotent upload (PATCH
     * appends to the session) must not be replayed blindly: refuse, so the
     * caller sees the failure and asks the registry where it stands. */
    if (t->rq->no_retry && t->sent > 0)
        return CURL_SEEKFUNC_CANTSEEK;
    t->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool same_origin(const char *a, const char *b)
{
    _cleanup_free_ char *oa = http_url_origin(a);
    _cleanup_free_ char *ob = http_url_origin(b);

    return !strcmp(oa, ob);
}

/* The host's roots and client certificate.  libcurl keeps connections and
 * TLS sessions apart by these settings, so hosts sharing the pool do not
 * share them. */
static void set_tls(CURL *h, const struct http_tls *tls)
{
    if (tls->ca_pem) {
        struct curl_blob blob = {
            .data = (void *)tls->ca_pem, .len = tls->ca_len, .flags = CURL_BLOB_NOCOPY};

        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (tls->cert && tls->key) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

/* One request/response exchange, no retries, no redirects. */
static CURLcode perform(struct http_client *c, const struct http_request *rq,
                        const char *url, bool send_auth, struct http_response *rs,
                        struct transfer *t, char *errbuf)
{
    struct curl_slist *hdrs = NULL;
    _cleanup_free_ char *auth = NULL;
    CURLcode rc;
    CURL *h = easy_get(c);
    char *eff = NULL;
    bool has_body = rq->body || rq->body_fd >= 0;
    uint64_t body_len = rq->body_fd >= 0 ? rq->body_fd_len : rq->body_len;

    memset(t, 0, sizeof(*t));
    t->c = c;
    t->rq = rq;
    t->rs = rs;
    t->h = h;
    rs->content_length = -1;
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->tls && same_origin(url, rq->url))
        set_tls(h, rq->tls);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ocib/0.1");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (const char *const *p = rq->headers; p && *p; p++)
        hdrs = curl_slist_append(hdrs, *p);
    if (send_auth && rq->authorization) {
        auth = xasprintf("Authorization: %s", rq->authorization);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(rq->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (has_body) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(h, CURLOPT_READDATA, t);
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, t);
        } else {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    errbuf[0] = '\0';
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    free(rs->effective_url);
    rs->effective_url = xstrdup(eff ? eff : url);
    curl_slist_free_all(hdrs);
    easy_put(c, h);
    return rc;
}

static bool retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* A server that refused the handshake for good (it wants a client
 * certificate, or does not trust the one given) is not asked again. */
static bool tls_refused(const char *errbuf)
{
    return strstr(errbuf, "alert certificate required") ||
           strstr(errbuf, "alert bad certificate") || strstr(errbuf, "alert unknown ca") ||
           strstr(errbuf, "alert handshake failure");
}

#define RETRY_AFTER_MAX_MS 60000

/* Waits before attempt + 1, saying why to the notifier: a retried request
 * is otherwise seconds of silence.  The URL is shown without its query,
 * which may hold a storage backend's signature. */
static void backoff(const struct http_client *c, const struct http_request *rq,
                    const char *url, const char *why, int attempt, const char *retry_after)
{
    long ms;

    if (registry_parse_retry_after(retry_after, time(NULL), RETRY_AFTER_MAX_MS, &ms) < 0 ||
        ms <= 0) {
        ms = (long)c->base_ms << (attempt < 6 ? attempt : 6);
        if (ms > 10000)
            ms = 10000;
        ms += rand() % (ms / 2 + 1); /* jitter */
    }
    if (c->notify) {
        _cleanup_free_ char *text =
            xasprintf("%s %.*s: %s; retrying in %.1fs (attempt %d of %d)", rq->method,
                      (int)strcspn(url, "?"), url, why, (double)ms / 1000.0, attempt + 2,
                      c->retries + 1);

        c->notify(c->notify_opaque, text);
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool tls_failure(CURLcode rc, const char *errbuf)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
        return true;
    default:
        /* A server that wants a client certificate says so in an alert,
         * which arrives as a failed read or write. */
        return (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) &&
               (strstr(errbuf, "SSL") || strstr(errbuf, "alert"));
    }
}

/* A TLS failure names the registry and the files it was given. */
static int tls_error(const struct http_request *rq, const char *url, const char *why,
                     struct ocib_error *err)
{
    _cleanup_free_ char *origin = http_url_origin(url);
    const char *host = strstr(origin, "://") ? strstr(origin, "://") + 3 : origin;
    const struct http_tls *t = rq->tls && same_origin(url, rq->url) ? rq->tls : NULL;
    struct strbuf files = STRBUF_INIT;
    int rc;

    if (t && t->ca_files && *t->ca_files)
        strbuf_addf(&files, "CA files read: %s", t->ca_files);
    else if (t)
        strbuf_addf(&files, "no *.crt in %s: system roots only", t->dir);
    else
        strbuf_addstr(&files, "no certs.d directory for this host: system roots only");
    if (t && t->cert)
        strbuf_addf(&files, "; client certificate %s", t->cert);
    else if (t)
        strbuf_addf(&files, "; no client certificate in %s", t->dir);
    rc = ocib_error_set(err, "registry %s: TLS: %s (%s)", t ? t->host : host, why,
                        files.buf);
    strbuf_release(&files);
    return rc;
}

/* The message for a transfer libcurl gave up on. */
static int transfer_error(const struct http_request *rq, const char *url, CURLcode rc,
                          const char *errbuf, struct ocib_error *err)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

    /* libcurl refuses a response header over CURL_MAX_HTTP_HEADER (100 KiB)
     * with CURLE_OUT_OF_MEMORY, which is no shortage of memory here. */
    if (rc == CURLE_OUT_OF_MEMORY)
        return ocib_error_kind_set(err, OCIB_ERR_LIMIT,
                                   "%s %s: the server's response header is too large "
                                   "(over libcurl's 100 KiB limit)",
                                   rq->method, url);
    if (tls_failure(rc, errbuf))
        return tls_error(rq, url, why, err);
    /* A replay refused by seek_cb (CURLE_SEND_FAIL_REWIND) is a connection
     * that died under a request that must not be repeated blindly. */
    bool network = retryable_curl(rc) || rc == CURLE_SEND_FAIL_REWIND ||
                   rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY;

    return ocib_error_kind_set(err, network ? OCIB_ERR_NETWORK : OCIB_ERR_OTHER,
                               "%s %s: %s", rq->method, url, why);
}

static int do_request(struct http_client *c, const struct http_request *rq,
                      struct http_response *rs, struct ocib_error *err)
{
    _cleanup_free_ char *url = xstrdup(rq->url);
    char errbuf[CURL_ERROR_SIZE];
    int redirects = 0;

    memset(rs, 0, sizeof(*rs));
    for (int attempt = 0;; attempt++) {
        struct transfer t;
        CURLcode rc;
        bool send_auth = same_origin(url, rq->url);
        bool can_retry;

        http_response_release(rs);
        rc = perform(c, rq, url, send_auth, rs, &t, errbuf);
        if (t.sink_failed) {
            if (err)
                *err = t.sink_err;
            return ocib_error_wrap(err, "%s %s", rq->method, url);
        }
        can_retry =
            !rq->no_retry && attempt < c->retries && (t.received == 0 || rq->sink_reset);
        if (rc == CURLE_OK && rq->follow_redirects && rs->status >= 300 &&
            rs->status < 400 && rs->status != 304 && rs->location) {
            char *next = http_url_resolve(url, rs->location);

            if (++redirects > MAX_REDIRECTS) {
                free(next);
                return ocib_error_set(err, "%s %s: too many redirects", rq->method,
                                      rq->url);
            }
            free(url);
            url = next;
            attempt--;
            continue;
        }
        if (rc != CURLE_OK) {
            if (can_retry && retryable_curl(rc) && !tls_refused(errbuf)) {
                if (t.received && rq->sink_reset(rq->sink_opaque, err) < 0)
                    return -1;
                backoff(c, rq, url, errbuf[0] ? errbuf : curl_easy_strerror(rc), attempt,
                        NULL);
                continue;
            }
            return transfer_error(rq, url, rc, errbuf, err);
        }
        if (retryable_status(rs->status) && can_retry) {
            char why[32];

            if (t.received && rq->sink_reset(rq->sink_opaque, err) < 0)
                return -1;
            snprintf(why, sizeof(why), "HTTP %ld", rs->status);
            backoff(c, rq, url, why, attempt, rs->status == 429 ? rs->retry_after : NULL);
            continue;
        }
        return 0;
    }
}

int http_do(struct http_client *c, const struct http_request *rq, struct http_response *rs,
            struct ocib_error *err)
{
    if (do_request(c, rq, rs, err) < 0) {
        http_response_release(rs); /* nothing is returned on failure */
        return -1;
    }
    return 0;
}

char *http_url_origin(const char *url)
{
    const char *p = strstr(url, "://");
    size_t n;

    if (!p)
        return xstrdup("");
    p += 3;
    n = strcspn(p, "/?#");
    return xstrndup(url, (size_t)(p - url) + n);
}

char *http_url_resolve(const char *base, const char *location)
{
    _cleanup_free_ char *origin = NULL;

    if (strstr(location, "://"))
        return xstrdup(location);
    origin = http_url_origin(base);
    if (location[0] == '/')
        return xasprintf("%s%s", origin, location);
    {
        const char *q = strchr(base + strlen(origin), '?');
        const char *end = q ? q : base + strlen(base);
        const char *slash = end;

        while (slash > base + strlen(origin) && slash[-1] != '/')
            slash--;
        return xasprintf("%.*s%s", (int)(slash - base), base, location);
    }
}

char *http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (isalnum(ch) || strchr("-._~", ch)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}
