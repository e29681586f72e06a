/*
 * Referrers (OCI distribution 1.1): listing what is attached to a manifest
 * through the referrers API, or the fallback tag schema where a registry
 * has no such API; and adding to that tag.  See client.h.
 *
 * The tag schema's read-modify-write has no lock: two writers that read
 * the same index would each write it with only their own descriptor.  So a
 * writer reads the tag again after a pause and, when its descriptor is
 * gone, writes again from what it reads then; the index is kept sorted, so
 * writers that saw the same descriptors write the same bytes.
 */
#include "registry/client.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/artifact.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "registry/client_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REFERRERS_TRIES 8

/* GET url as the referrers index: 1 with its bytes, 0 on a 404. */
static int get_index(struct registry *r, const char *repo, const char *url, char **ret,
                     size_t *ret_len, struct ocib_error *err)
{
    _cleanup_free_ char *scopes = registry_scope_pull(repo);
    static const char *const headers[] = {"Accept: " OCI_MT_INDEX, NULL};
    struct http_request rq = {.method = "GET",
                              .url = url,
                              .headers = headers,
                              .body_fd = -1,
                              .capture_cap = OCI_JSON_MAX,
                              .follow_redirects = true};
    struct http_response rs;

    if (registry_request(r, scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status == 404) {
        http_response_release(&rs);
        return 0;
    }
    if (rs.status != 200) {
        registry_http_error(url + strlen(r->base), &rs, err);
        http_response_release(&rs);
        return -1;
    }
    if (oci_check_index(rs.body.buf ?: "", rs.body.len, "referrers index", err) < 0) {
        http_response_release(&rs);
        return -1;
    }
    *ret_len = rs.body.len;
    *ret = strbuf_detach(&rs.body);
    http_response_release(&rs);
    return 1;
}

static char *empty_index(size_t *ret_len)
{
    char *s = xasprintf("{\"manifests\":[],\"mediaType\":\"%s\",\"schemaVersion\":2}",
                        OCI_MT_INDEX);

    *ret_len = strlen(s);
    return s;
}

int registry_referrers_get(struct registry *r, const char *repo,
                           const struct oci_digest *subject, char **ret, size_t *ret_len,
                           bool *ret_api, struct ocib_error *err)
{
    _cleanup_free_ char *api =
        xasprintf("%s/v2/%s/referrers/%s", r->base, repo, subject->str);
    _cleanup_free_ char *tag = oci_referrers_tag(subject);
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, tag);
    int rc = get_index(r, repo, api, ret, ret_len, err);

    if (rc < 0)
        return ocib_error_wrap(err, "referrers of %s/%s@%s", r->host, repo, subject->str);
    *ret_api = rc > 0;
    if (rc > 0)
        return 0;
    rc = get_index(r, repo, url, ret, ret_len, err);
    if (rc < 0)
        return ocib_error_wrap(err, "referrers tag %s/%s:%s", r->host, repo, tag);
    if (rc == 0)
        *ret = empty_index(ret_len);
    return 0;
}

/* The fallback tag's index now, or an empty one. */
static int read_tag(struct registry *r, const char *repo, const char *tag, char **ret,
                    size_t *ret_len, struct ocib_error *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, tag);
    int rc = get_index(r, repo, url, ret, ret_len, err);

    if (rc == 0)
        *ret = empty_index(ret_len);
    return rc < 0 ? -1 : 0;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int registry_referrers_tag_add(struct registry *r, const char *repo,
                               const struct oci_digest *subject, const char *descriptor,
                               struct ocib_error *err)
{
    _cleanup_free_ char *tag = oci_referrers_tag(subject);
    json_t *desc = json_loads(descriptor, 0, NULL);
    struct oci_digest want;
    int rc = -1;

    if (!desc || oci_digest_parse(oci_json_str(desc, "digest") ?: "", &want, err) < 0) {
        json_decref(desc);
        return ocib_error_set(err, "referrers: not a descriptor");
    }
    for (int attempt = 0; attempt < REFERRERS_TRIES; attempt++) {
        _cleanup_free_ char *cur = NULL;
        struct oci_blob next = {0};
        size_t len;
        bool changed;

        if (read_tag(r, repo, tag, &cur, &len, err) < 0 ||
            oci_referrers_add(cur, len, desc, &next, &changed, err) < 0)
            break;
        if (changed && registry_manifest_put(r, repo, tag, OCI_MT_INDEX, next.data,
                                             next.len, err) < 0) {
            oci_blob_release(&next);
            break;
        }
        oci_blob_release(&next);
        if (!changed && attempt > 0) {
            rc = 0; /* seen in place after a pause: no writer replaced it */
            break;
        }
        /* A writer that read before our write may still write; its write
         * lands within its GET..PUT span, far less than this pause. */
        pause_ms(150 + 50 * attempt + (long)(getpid() % 50));
    }
    json_decref(desc);
    if (rc < 0 && !err->msg[0])
        ocib_error_set(err, "referrers tag %s/%s:%s: concurrent writers kept replacing it",
                       r->host, repo, tag);
    return rc < 0 ? ocib_error_wrap(err, "attaching to %s", subject->str) : 0;
}
