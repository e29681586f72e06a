/*
 * The distribution API client's shared state, for the client's own files:
 * client.c opens a registry and reads manifests and blobs, auth.c makes
 * requests with the credentials and tokens the registry asks for, upload.c
 * makes a repository hold a blob (upload sessions, chunks, resumes, mounts).
 * Nothing outside registry/ includes this header.
 *
 * Locking: r->lock guards the auth state and the statistics; the other
 * fields do not change after registry_open().
 */
#ifndef OCIB_REGISTRY_CLIENT_INTERNAL_H
#define OCIB_REGISTRY_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "base/error.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/http.h"
#include "registry/tlsconf.h"

enum auth_scheme { AUTH_UNKNOWN, AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

/* A Bearer token for one set of scopes. */
struct token {
    char *scopes;
    char *value; /* "Bearer ..." */
    time_t expires;
};

struct registry {
    char *host;
    char *base; /* scheme://endpoint */
    struct http_client *http;
    struct registry_tls *tls; /* NULL: libcurl's defaults */
    struct http_tls http_tls; /* tls as requests carry it */
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

#define STAT_ADD(r, field, n)                                                              \
    do {                                                                                   \
        pthread_mutex_lock(&(r)->lock);                                                    \
        (r)->stats.field += (n);                                                           \
        pthread_mutex_unlock(&(r)->lock);                                                  \
    } while (0)

/* Does rq on the registry (auth.c): with the Authorization the scopes
 * (space-separated) need on the registry's own origin, none elsewhere; on a
 * 401 learns the challenge and tries again.  Returns 0 with *rs filled
 * (the caller releases it) whatever the status but a final 401, which fails
 * as OCIB_ERR_AUTH naming the registry. */
int registry_request(struct registry *r, const char *scopes, struct http_request *rq,
                     struct http_response *rs, struct ocib_error *err);

/* The scopes pulling from repo needs; caller frees. */
char *registry_scope_pull(const char *repo);

/* The scopes pushing to repo needs, and pulling from mount_from (may be
 * NULL) to mount a blob from there; caller frees. */
char *registry_scope_push(const char *repo, const char *mount_from);

/* The kind of failure an HTTP status (and the registry's error code, may
 * be NULL) says. */
enum ocib_error_kind registry_status_kind(long status, const char *code);

/* Fails with "<what>: HTTP 400: CODE: message" from the registry's error
 * document in rs (left to the caller).  Returns -1. */
int registry_http_error(const char *what, const struct http_response *rs,
                        struct ocib_error *err);

#endif
