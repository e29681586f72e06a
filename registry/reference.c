/*
 * Image reference parsing and normalisation; see reference.h.
 *
 * The parser splits from the right, as the grammar allows: "@" starts the
 * digest (no other part may contain '@'), and a ':' after the last '/'
 * starts the tag (path components never contain ':', so a ':' before the
 * last '/' can only be a registry port).  What is left is the name, whose
 * first element is the registry when it looks like a host.  Each part is
 * then checked on its own so that the error can say which part is wrong.
 */
#include "registry/reference.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_LEGACY "index.docker.io"
#define DOCKER_HUB_ENDPOINT "registry-1.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"
#define SHA256_PREFIX "sha256:"
#define SHA256_HEX_LEN 64

/* Inputs longer than this are refused before any scanning; generous enough
 * for the longest valid reference written with "index.docker.io/". */
#define REFERENCE_INPUT_MAX 1024

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}
static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}
static bool is_alnum(char c)
{
    return is_lower_alnum(c) || is_upper(c);
}
static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool is_hex(char c)
{
    return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

/* Records 'invalid reference "<s>": <why>' as a usage error; returns -1. */
OCIB_PRINTF(3, 4)
static int reference_error(struct ocib_error *err, const char *s, const char *fmt, ...)
{
    _cleanup_free_ char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = xvasprintf(fmt, ap);
    va_end(ap);
    return ocib_error_usage(err, "invalid reference \"%s\": %s", s, why);
}

/* True when the n bytes at p are a tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static bool tag_valid(const char *p, size_t n)
{
    if (n == 0 || n > REFERENCE_TAG_MAX)
        return false;
    if (!is_alnum(p[0]) && p[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_alnum(p[i]) && p[i] != '_' && p[i] != '.' && p[i] != '-')
            return false;
    }
    return true;
}

bool reference_tag_valid(const char *s)
{
    if (!s)
        return false;
    return tag_valid(s, strnlen(s, REFERENCE_TAG_MAX + 1));
}

/* True when s is "sha256:" followed by exactly 64 lowercase hex digits. */
static bool digest_valid(const char *s)
{
    size_t plen = strlen(SHA256_PREFIX);

    if (strncmp(s, SHA256_PREFIX, plen) != 0)
        return false;
    s += plen;
    for (size_t i = 0; i < SHA256_HEX_LEN; i++) {
        if (!is_lower_hex(s[i]))
            return false;
    }
    return s[SHA256_HEX_LEN] == '\0';
}

/* True when the n bytes at p are one path component:
 * [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*. */
static bool path_component_valid(const char *p, size_t n)
{
    size_t i = 0;

    for (;;) {
        if (i >= n || !is_lower_alnum(p[i]))
            return false; /* empty, or a separator not followed by alnum */
        while (i < n && is_lower_alnum(p[i]))
            i++;
        if (i == n)
            return true;
        if (p[i] == '.') {
            i++;
        } else if (p[i] == '_') {
            i++;
            if (i < n && p[i] == '_')
                i++;
        } else if (p[i] == '-') {
            while (i < n && p[i] == '-')
                i++;
        } else {
            return false;
        }
    }
}

/* Checks the repository path (n bytes at p) of reference s. */
static int check_path(const char *s, const char *p, size_t n, struct ocib_error *err)
{
    const char *end = p + n;

    for (size_t i = 0; i < n; i++) {
        if (is_upper(p[i]))
            return reference_error(err, s, "repository name must be lowercase");
    }
    for (;;) {
        const char *slash = memchr(p, '/', end - p);
        size_t len = (slash ? slash : end) - p;

        if (len == 0)
            return reference_error(err, s, "empty component in repository name");
        if (!path_component_valid(p, len))
            return reference_error(err, s,
                                   "invalid reference format: bad repository component "
                                   "\"%.*s\"",
                                   (int)len, p);
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* Checks the n bytes at p, the part after ':' in registry reg of reference s. */
static int check_port(const char *s, const char *reg, size_t reg_len, const char *p,
                      size_t n, struct ocib_error *err)
{
    unsigned long port = 0;
    size_t i;

    for (i = 0; i < n && is_digit(p[i]); i++) {
        port = port * 10 + (unsigned long)(p[i] - '0');
        if (port > 65535)
            break;
    }
    if (n == 0 || i < n || port == 0)
        return reference_error(err, s, "bad port \"%.*s\" in registry \"%.*s\"", (int)n, p,
                               (int)reg_len, reg);
    return 0;
}

/* Checks the registry (n bytes at reg) of reference s: a domain name or a
 * bracketed IPv6 literal, optionally followed by ":port". */
static int check_registry(const char *s, const char *reg, size_t n, struct ocib_error *err)
{
    const char *end = reg + n;
    const char *host_end;

    if (reg[0] == '[') {
        const char *close = memchr(reg, ']', n);

        if (!close || close == reg + 1)
            return reference_error(err, s,
                                   "invalid reference format: bad IPv6 address "
                                   "in registry \"%.*s\"",
                                   (int)n, reg);
        for (const char *q = reg + 1; q < close; q++) {
            if (!is_hex(*q) && *q != ':')
                return reference_error(err, s,
                                       "invalid reference format: bad IPv6 address in "
                                       "registry \"%.*s\"",
                                       (int)n, reg);
        }
        host_end = close + 1;
        if (host_end < end && *host_end != ':')
            return reference_error(
                err, s, "invalid reference format: bad registry \"%.*s\"", (int)n, reg);
    } else {
        const char *colon = memchr(reg, ':', n);
        const char *label = reg;

        host_end = colon ? colon : end;
        for (;;) {
            const char *dot = memchr(label, '.', host_end - label);
            size_t len = (dot ? dot : host_end) - label;

            if (len == 0)
                return reference_error(err, s, "empty component in registry host \"%.*s\"",
                                       (int)(host_end - reg), reg);
            if (!is_alnum(label[0]) || !is_alnum(label[len - 1]))
                return reference_error(err, s,
                                       "invalid reference format: bad registry host "
                                       "\"%.*s\"",
                                       (int)(host_end - reg), reg);
            for (size_t i = 1; i + 1 < len; i++) {
                if (!is_alnum(label[i]) && label[i] != '-')
                    return reference_error(err, s,
                                           "invalid reference format: bad registry host "
                                           "\"%.*s\"",
                                           (int)(host_end - reg), reg);
            }
            if (!dot)
                break;
            label = dot + 1;
        }
    }
    if (host_end < end)
        return check_port(s, reg, n, host_end + 1, end - host_end - 1, err);
    return 0;
}

/* True when the first name element (n bytes at p) names a registry rather
 * than a Docker Hub namespace. */
static bool looks_like_registry(const char *p, size_t n)
{
    if (memchr(p, '.', n) || memchr(p, ':', n))
        return true;
    if (n > 0 && p[0] == '[')
        return true;
    return n == strlen("localhost") && memcmp(p, "localhost", n) == 0;
}

/* True when the n bytes at p are 64 lowercase hex digits, i.e. an image ID. */
static bool is_image_id(const char *p, size_t n)
{
    if (n != SHA256_HEX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_hex(p[i]))
            return false;
    }
    return true;
}

int reference_parse(const char *s, struct reference *ret, struct ocib_error *err)
{
    _cleanup_free_ char *registry = NULL;
    _cleanup_free_ char *repository = NULL;
    _cleanup_free_ char *tag = NULL;
    _cleanup_free_ char *digest = NULL;
    const char *at, *name_end, *last_slash, *colon, *first_slash, *path;
    size_t len, name_len, path_len;

    if (!s || !*s)
        return reference_error(err, s ? s : "", "empty reference");
    len = strnlen(s, REFERENCE_INPUT_MAX + 1);
    if (len > REFERENCE_INPUT_MAX)
        return ocib_error_usage(
            err, "invalid reference \"%.64s...\": too long (more than %d bytes)", s,
            REFERENCE_INPUT_MAX);

    at = strchr(s, '@');
    name_end = at ? at : s + len;
    if (at) {
        if (at[1] == '\0')
            return reference_error(err, s, "missing digest after '@'");
        if (!digest_valid(at + 1))
            return reference_error(err, s,
                                   "bad digest \"%s\": only sha256 with 64 lowercase hex "
                                   "digits is accepted",
                                   at + 1);
        digest = xstrdup(at + 1);
    }

    last_slash = memrchr(s, '/', name_end - s);
    colon = memchr(last_slash ? last_slash + 1 : s, ':',
                   name_end - (last_slash ? last_slash + 1 : s));
    if (colon) {
        size_t tag_len = name_end - colon - 1;

        if (tag_len == 0)
            return reference_error(err, s, "missing tag after ':'");
        if (!tag_valid(colon + 1, tag_len))
            return reference_error(err, s,
                                   "bad tag \"%.*s\": must match "
                                   "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
                                   (int)tag_len, colon + 1);
        tag = xstrndup(colon + 1, tag_len);
        name_end = colon;
    }

    name_len = name_end - s;
    if (name_len == 0)
        return reference_error(err, s, "missing repository name");
    if (!tag && !digest && is_image_id(s, name_len))
        return reference_error(err, s,
                               "a 64-digit hexadecimal string is an image ID, "
                               "not a repository name");

    first_slash = memchr(s, '/', name_len);
    if (first_slash && looks_like_registry(s, first_slash - s)) {
        if (check_registry(s, s, first_slash - s, err) < 0)
            return -1;
        registry = xstrndup(s, first_slash - s);
        path = first_slash + 1;
    } else {
        path = s;
    }
    path_len = name_end - path;
    if (check_path(s, path, path_len, err) < 0)
        return -1;

    if (!registry || strcmp(registry, DOCKER_HUB_LEGACY) == 0) {
        free(registry);
        registry = xstrdup(DOCKER_HUB);
    }
    if (strcmp(registry, DOCKER_HUB) == 0 && !memchr(path, '/', path_len))
        repository = xasprintf(OFFICIAL_PREFIX "%.*s", (int)path_len, path);
    else
        repository = xstrndup(path, path_len);

    name_len = strlen(registry) + 1 + strlen(repository);
    if (name_len > REFERENCE_NAME_MAX)
        return reference_error(err, s, "name too long (%zu characters, at most %d)",
                               name_len, REFERENCE_NAME_MAX);

    if (!tag && !digest)
        tag = xstrdup(DEFAULT_TAG);

    ret->registry = TAKE_PTR(registry);
    ret->repository = TAKE_PTR(repository);
    ret->tag = TAKE_PTR(tag);
    ret->digest = TAKE_PTR(digest);
    return 0;
}

void reference_release(struct reference *r)
{
    if (!r)
        return;
    free(r->registry);
    free(r->repository);
    free(r->tag);
    free(r->digest);
    *r = (struct reference)REFERENCE_INIT;
}

static void add_tag_digest(struct strbuf *sb, const struct reference *r)
{
    if (r->tag)
        strbuf_addf(sb, ":%s", r->tag);
    if (r->digest)
        strbuf_addf(sb, "@%s", r->digest);
}

char *reference_string(const struct reference *r)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addf(&sb, "%s/%s", r->registry, r->repository);
    add_tag_digest(&sb, r);
    return strbuf_detach(&sb);
}

char *reference_name(const struct reference *r)
{
    return xasprintf("%s/%s", r->registry, r->repository);
}

/*
 * Docker drops "docker.io/" and then "library/" from a one-element official
 * name.  Unlike Docker, "docker.io/" is kept when the repository's first
 * element would itself be read as a registry ("docker.io/foo.bar/baz"), so
 * that parsing the familiar form always gives back the same reference.
 */
char *reference_familiar(const struct reference *r)
{
    struct strbuf sb = STRBUF_INIT;
    const char *repo = r->repository;
    const char *slash = strchr(repo, '/');

    if (strcmp(r->registry, DOCKER_HUB) != 0 ||
        (slash && looks_like_registry(repo, slash - repo))) {
        strbuf_addf(&sb, "%s/%s", r->registry, repo);
    } else {
        size_t plen = strlen(OFFICIAL_PREFIX);

        if (strncmp(repo, OFFICIAL_PREFIX, plen) == 0 && !strchr(repo + plen, '/'))
            repo += plen;
        strbuf_addstr(&sb, repo);
    }
    add_tag_digest(&sb, r);
    return strbuf_detach(&sb);
}

bool reference_registry_is_loopback(const char *registry)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *start = registry;
    const char *end;
    struct in_addr a4;
    size_t n;

    if (!registry)
        return false;
    if (registry[0] == '[') {
        struct in6_addr a6;

        start = registry + 1;
        end = strchr(start, ']');
        if (!end || (end[1] != '\0' && end[1] != ':'))
            return false;
        n = end - start;
        if (n >= sizeof(host))
            return false;
        memcpy(host, start, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return false;
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    }

    end = strchr(start, ':');
    n = end ? (size_t)(end - start) : strlen(start);
    if (n == strlen("localhost") && strncasecmp(start, "localhost", n) == 0)
        return true;
    if (n >= sizeof(host))
        return false;
    memcpy(host, start, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, &a4) != 1)
        return false;
    return (ntohl(a4.s_addr) >> 24) == 127;
}

const char *reference_registry_endpoint(const char *registry)
{
    if (registry && strcmp(registry, DOCKER_HUB) == 0)
        return DOCKER_HUB_ENDPOINT;
    return registry;
}
