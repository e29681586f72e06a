/*
 * HTTP transport for registries, on libcurl.
 *
 * One struct http_client serves every thread of a push or pull: easy handles
 * are pooled and share DNS, TLS sessions and connections (HTTP/2 where the
 * server offers it), so blobs in flight at once reuse connections.
 * http_do() retries with exponential backoff and jitter on 5xx, on 429
 * (honouring Retry-After) and on dropped connections, when the request can
 * be replayed; never on other 4xx.  Redirects are followed by hand so that
 * Authorization is never sent to another host.  TLS is always verified,
 * against the roots and with the client certificate the request's host
 * has (struct http_tls);
 * whether a host is spoken to over plain HTTP is the caller's decision
 * (registry/client.h).  Nothing here prints, and no header value is ever
 * put into an error message.
 */
#ifndef OCIB_REGISTRY_HTTP_H
#define OCIB_REGISTRY_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/strbuf.h"

struct http_client;

/* Receives response body bytes of a 2xx response; returns 0 or -1. */
typedef int (*http_sink_fn)(void *opaque, const void *buf, size_t len,
                            struct ocib_error *err);
/* Called before a retry so that the sink can start over; returns 0 or -1. */
typedef int (*http_sink_reset_fn)(void *opaque, struct ocib_error *err);

/* A host's TLS settings (registry/tlsconf.h), for requests to that host. */
struct http_tls {
    const char *host;     /* the registry, for messages */
    const char *dir;      /* where the files came from, for messages */
    const char *ca_pem;   /* every root to trust (PEM); NULL: libcurl's default */
    size_t ca_len;        /* bytes in ca_pem */
    const char *ca_files; /* the CA files ca_pem adds, for messages */
    const char *cert;     /* client certificate file (PEM), or NULL */
    const char *key;      /* its key file (PEM), or NULL */
};

struct http_request {
    const char *method; /* "GET", "HEAD", "POST", "PUT", "PATCH" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    const char *authorization;  /* "Bearer …"/"Basic …", sent only to url's host */
    /* Request body: from memory, or a range of an fd (read with pread). */
    const void *body;
    size_t body_len;
    int body_fd; /* -1 when none */
    uint64_t body_offset, body_fd_len;
    /* Response body of 2xx responses: to sink, else captured (capture_cap). */
    http_sink_fn sink;
    http_sink_reset_fn sink_reset;
    void *sink_opaque;
    size_t capture_cap; /* default 64 KiB */
    bool follow_redirects;
    bool no_retry;
    /* The TLS settings of the host rq->url names (may be NULL); a redirect
     * to another origin goes with libcurl's defaults. */
    const struct http_tls *tls;
};

struct http_response {
    long status;
    struct strbuf body; /* captured body (2xx without sink, or errors) */
    char *location;
    char *www_authenticate;
    char *content_type;
    char *docker_content_digest;
    char *range;
    char *retry_after;
    char *chunk_min_length; /* OCI-Chunk-Min-Length */
    char *oci_subject;      /* OCI-Subject (a manifest PUT with a subject) */
    int64_t content_length; /* -1 when unknown */
    char *effective_url;    /* after redirects */
};

/* Creates a client; timeouts come from OCIB_HTTP_TIMEOUT (seconds without
 * progress before a transfer is abandoned, default 60). */
int http_client_new(struct http_client **ret, struct ocib_error *err);
void http_client_free(struct http_client *c);
/* Sets the retry count (default 5) and the base backoff in ms (default 200). */
void http_client_set_retries(struct http_client *c, int retries, int base_ms);

/* Called (from any thread) before each retry, with a line for people. */
typedef void (*http_notify_fn)(void *opaque, const char *text);
void http_client_set_notify(struct http_client *c, http_notify_fn fn, void *opaque);
/* Body bytes received and sent so far by every transfer (for live progress;
 * safe to call while transfers run). */
void http_client_bytes(struct http_client *c, uint64_t *ret_in, uint64_t *ret_out);

/* Performs rq (with retries and redirects) and fills rs, which the caller
 * releases with http_response_release().  Returns 0 whenever a response was
 * received, whatever its status; -1 when none could be had. */
int http_do(struct http_client *c, const struct http_request *rq, struct http_response *rs,
            struct ocib_error *err);
void http_response_release(struct http_response *rs);

/* Resolves a possibly relative Location against base; caller frees. */
char *http_url_resolve(const char *base, const char *location);
/* scheme://host[:port] of url; caller frees. */
char *http_url_origin(const char *url);
/* Percent-encodes s for a query string; caller frees. */
char *http_escape(const char *s);

#endif
