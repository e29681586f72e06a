/*
 * Authenticated requests to a registry; see client_internal.h.
 *
 * A registry says how it wants to be spoken to only when it refuses a
 * request: the first request goes out anonymous, a 401's WWW-Authenticate
 * challenge picks Basic (the credentials of Docker's config.json, or those
 * of ocib login) or Bearer (a token from the challenge's realm for the
 * request's scopes, cached per scope set until it expires), and the request
 * is sent again.  Credentials go only to the registry's own origin, and to
 * a token realm only on that origin or over verified HTTPS.  The two calls
 * of client.h that are about credentials only, registry_set_credentials()
 * and registry_check_login(), live here too.
 */
#include "registry/client_internal.h"
#include "base/base64.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "registry/headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TOKEN_MAX (64 * 1024)

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
    /* The token service is asked with the registry's TLS settings, as
     * containers/image does. */
    if (r->tls)
        rq.tls = &r->http_tls;
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
int registry_request(struct registry *r, const char *scopes, struct http_request *rq,
                     struct http_response *rs, struct ocib_error *err)
{
    bool own = own_origin(r, rq->url);
    int rejected = 0;

    if (r->tls && own && !rq->tls)
        rq->tls = &r->http_tls;
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

int registry_check_login(struct registry *r, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/", r->base);
    struct http_request rq = {.method = "GET", .url = url, .body_fd = -1};
    struct http_response rs;

    if (registry_request(r, "", &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 200) {
        int rc = registry_http_error(url, &rs, err);

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
