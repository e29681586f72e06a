/*
 * Per-registry TLS settings; see tlsconf.h.
 *
 * The CA roots go to libcurl as one in-memory PEM bundle (CURLOPT_CAINFO_BLOB)
 * holding the system's roots followed by the directory's *.crt, so that a
 * private CA is added to the system's trust instead of replacing it: a
 * registry behind a TLS-inspecting proxy whose CA is in the system bundle
 * still verifies.
 */
#include "registry/tlsconf.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define CA_FILE_MAX (1024 * 1024)
#define SYSTEM_BUNDLE_MAX (16 * 1024 * 1024)
#define PEM_CERT "-----BEGIN CERTIFICATE-----"

static bool is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The first certs.d directory of host that exists; NULL when none. */
static char *find_dir(const char *host)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    static const char *const system_dirs[] = {
        "/etc/containers/certs.d",
        "/usr/share/containers/certs.d",
        "/etc/docker/certs.d",
    };
    char *d = NULL;

    if (xdg && *xdg)
        d = xasprintf("%s/containers/certs.d/%s", xdg, host);
    else if (home && *home)
        d = xasprintf("%s/.config/containers/certs.d/%s", home, host);
    if (d && is_dir(d))
        return d;
    free(d);
    for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++) {
        d = xasprintf("%s/%s", system_dirs[i], host);
        if (is_dir(d))
            return d;
        free(d);
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n > m && !strcmp(s + n - m, suffix);
}

/* The system's roots: SSL_CERT_FILE when set (as OpenSSL and Go read it),
 * else the bundle libcurl was built with. */
static int read_system_roots(struct strbuf *out, struct ocib_error *err)
{
    const char *env = getenv("SSL_CERT_FILE");
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t len;

    if (env && *env) {
        path = xstrdup(env);
    } else {
        CURL *h = curl_easy_init();
        char *def = NULL;

        if (h && curl_easy_getinfo(h, CURLINFO_CAINFO, &def) == CURLE_OK && def)
            path = xstrdup(def);
        if (h)
            curl_easy_cleanup(h);
        if (!path)
            path = xstrdup("/etc/ssl/certs/ca-certificates.crt");
    }
    if (fs_read_file(path, SYSTEM_BUNDLE_MAX, &buf, &len, NULL) < 0) {
        if (env && *env)
            return ocib_error_errno(err, errno, "SSL_CERT_FILE '%s'", path);
        return 0; /* no system bundle: only the directory's roots */
    }
    strbuf_add(out, buf, len);
    if (len && buf[len - 1] != '\n')
        strbuf_addch(out, '\n');
    return 0;
}

/* Adds the CA file path to t's bundle. */
static int add_ca(struct registry_tls *t, struct strbuf *pem, const char *path,
                  struct ocib_error *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;

    if (fs_read_file(path, CA_FILE_MAX, &buf, &len, err) < 0)
        return ocib_error_wrap(err, "registry %s: CA file '%s'", t->host, path);
    if (!strstr(buf, PEM_CERT))
        return ocib_error_set(err, "registry %s: CA file '%s' holds no PEM certificate",
                              t->host, path);
    strbuf_add(pem, buf, len);
    if (len && buf[len - 1] != '\n')
        strbuf_addch(pem, '\n');
    return 0;
}

/* Checks that path is a readable file (its content is libcurl's to judge;
 * a key is never read into ocib's memory). */
static int check_readable(const struct registry_tls *t, const char *path, const char *what,
                          struct ocib_error *err)
{
    if (access(path, R_OK) < 0)
        return ocib_error_errno(err, errno, "registry %s: %s '%s'", t->host, what, path);
    return 0;
}

/* Reads the directory's *.crt, *.cert and *.key into t. */
static int load_dir(struct registry_tls *t, struct ocib_error *err)
{
    _cleanup_close_ int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct fs_names names = {0};
    struct strbuf pem = STRBUF_INIT, files = STRBUF_INIT;
    int rc = -1;

    if (dfd < 0)
        return ocib_error_errno(err, errno, "registry %s: TLS directory '%s'", t->host,
                                t->dir);
    if (fs_read_names(dfd, t->dir, &names, err) < 0)
        return ocib_error_wrap(err, "registry %s", t->host);
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        _cleanup_free_ char *path = fs_path_join(t->dir, name);
        _cleanup_free_ char *pair = NULL;
        size_t stem;

        if (ends_with(name, ".crt")) {
            if (!pem.len && read_system_roots(&pem, err) < 0)
                goto out;
            if (add_ca(t, &pem, path, err) < 0)
                goto out;
            strbuf_addf(&files, "%s%s", files.len ? ", " : "", path);
            continue;
        }
        if (!ends_with(name, ".cert") && !ends_with(name, ".key"))
            continue;
        stem = strlen(name) - (ends_with(name, ".cert") ? 5 : 4);
        pair = xasprintf("%s/%.*s%s", t->dir, (int)stem, name,
                         ends_with(name, ".cert") ? ".key" : ".cert");
        if (!fs_exists(pair)) {
            ocib_error_set(err, "registry %s: '%s' has no matching '%s'", t->host, path,
                           pair);
            goto out;
        }
        if (ends_with(name, ".cert") && !t->cert) {
            if (check_readable(t, path, "client certificate", err) < 0 ||
                check_readable(t, pair, "client key", err) < 0)
                goto out;
            t->cert = TAKE_PTR(path);
            t->key = TAKE_PTR(pair);
        }
    }
    if (pem.len) {
        t->ca_len = pem.len;
        t->ca_pem = strbuf_detach(&pem);
    }
    t->ca_files = strbuf_detach(&files);
    rc = 0;
out:
    strbuf_release(&pem);
    strbuf_release(&files);
    fs_names_release(&names);
    return rc;
}

int registry_tls_load(const char *host, const char *cert_dir, struct registry_tls **ret,
                      struct ocib_error *err)
{
    struct registry_tls *t;
    struct stat st;

    *ret = NULL;
    if (cert_dir && stat(cert_dir, &st) < 0)
        return ocib_error_errno(err, errno, "--cert-dir '%s'", cert_dir);
    if (cert_dir && !S_ISDIR(st.st_mode))
        return ocib_error_usage(err, "--cert-dir '%s': not a directory", cert_dir);
    t = xcalloc(1, sizeof(*t));
    t->host = xstrdup(host);
    t->dir = cert_dir ? xstrdup(cert_dir) : find_dir(host);
    if (!t->dir) {
        registry_tls_free(t);
        return 0;
    }
    if (load_dir(t, err) < 0) {
        registry_tls_free(t);
        return -1;
    }
    *ret = t;
    return 0;
}

void registry_tls_free(struct registry_tls *t)
{
    if (!t)
        return;
    free(t->host);
    free(t->dir);
    free(t->ca_pem);
    free(t->ca_files);
    free(t->cert);
    free(t->key);
    free(t);
}

void registry_tls_http(const struct registry_tls *t, struct http_tls *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->host = t->host;
    ret->dir = t->dir;
    ret->ca_pem = t->ca_pem;
    ret->ca_len = t->ca_len;
    ret->ca_files = t->ca_files;
    ret->cert = t->cert;
    ret->key = t->key;
}
