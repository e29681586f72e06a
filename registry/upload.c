/*
 * Making a repository hold a blob; see client.h (registry_blob_push and
 * registry_blob_mount).
 *
 * An upload is a session on the registry: POST opens it (or mounts the blob
 * from another repository of the registry, and there is nothing to send),
 * then either one PUT carries the whole blob (up to MONOLITHIC_MAX, when
 * the registry does not ask for chunks), or PATCHes carry it in chunks and
 * a PUT closes the session.  An interrupted chunk is resumed from the offset
 * the registry reports (GET on the session), or the blob is sent again from
 * a new session when its answer is not exact.  After a lost reply, or a
 * digest the registry rejects, the blob is looked for (HEAD) and, when it
 * is not there, uploaded again from POST: at most MAX_UPLOADS uploads.
 */
#include "registry/client_internal.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "registry/headers.h"

#include <stdlib.h>
#include <string.h>

#define MONOLITHIC_MAX (16 * 1024 * 1024)
#define CHUNK_SIZE (16 * 1024 * 1024)
#define MAX_RESUMES 8
#define MAX_UPLOADS 3

/* One blob's upload to one repository. */
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

    if (registry_request(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 204 && rs.status != 200) {
        int rc = registry_http_error("upload status", &rs, err);

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
    if (registry_request(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status != 202) {
        int rc = registry_http_error("PATCH upload", &rs, err);

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
    if (registry_request(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    *ret_status = rs.status;
    if (rs.status != 201 && rs.status != 413) {
        int rc = registry_http_error("PUT upload", &rs, err);

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
    if (registry_request(u->r, u->scopes, &rq, &rs, err) < 0)
        return -1;
    if (rs.status == 201) {
        http_response_release(&rs);
        return 1;
    }
    if (rs.status != 202) {
        int rc = registry_http_error("starting an upload", &rs, err);

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
    _cleanup_free_ char *scopes = registry_scope_push(repo, mount_from);
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
    _cleanup_free_ char *scopes = registry_scope_push(repo, mount_from);
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
