/*
 * Per-registry TLS settings, found as containers/image finds them
 * (containers-certs.d(5)).
 *
 * A registry host ("HOST" or "HOST:PORT", exactly as the reference spells
 * it) has a TLS directory: the --cert-dir given for the command, else the
 * first that exists of
 *   $XDG_CONFIG_HOME/containers/certs.d/HOST (or ~/.config/containers/…),
 *   /etc/containers/certs.d/HOST,
 *   /usr/share/containers/certs.d/HOST,
 *   /etc/docker/certs.d/HOST.
 * In it, every *.crt is a CA root trusted in addition to the system's
 * (SSL_CERT_FILE, else libcurl's bundle), and NAME.cert with NAME.key is a
 * client certificate and its key (the first pair by name is used).  A .cert
 * without its .key, or a .key without its .cert, is an error naming both.
 *
 * Verification is never turned off.  Nothing here prints; no key byte ever
 * goes into a message.
 */
#ifndef OCIB_REGISTRY_TLSCONF_H
#define OCIB_REGISTRY_TLSCONF_H

#include <stddef.h>

#include "base/error.h"
#include "registry/http.h"

struct registry_tls {
    char *host;
    char *dir;        /* the directory the files came from */
    char *ca_pem;     /* the system roots, then every *.crt; NULL when no *.crt */
    size_t ca_len;    /* bytes in ca_pem */
    char *ca_files;   /* the *.crt read, ", "-separated ("" when none) */
    char *cert, *key; /* the client pair's paths, NULL when none */
};

/* Loads host's TLS settings into *ret (the caller frees it with
 * registry_tls_free).  *ret is NULL when cert_dir is NULL and no certs.d
 * directory exists for host: the host then gets libcurl's defaults.  Fails
 * when cert_dir is not a directory, on an unreadable or non-PEM file, and on
 * an unmatched .cert or .key, naming the file and the host. */
int registry_tls_load(const char *host, const char *cert_dir, struct registry_tls **ret,
                      struct ocib_error *err);
void registry_tls_free(struct registry_tls *t);

/* t as http_request.tls takes it (pointers into t, which must outlive
 * ret's use). */
void registry_tls_http(const struct registry_tls *t, struct http_tls *ret);

#endif
