/*
 * Image references: "host[:port]/repo[:tag][@sha256:...]".
 *
 * This module parses and normalises references the way Docker does (the
 * grammar of github.com/distribution/reference): Docker Hub short names such
 * as "alpine:3.20" become "docker.io/library/alpine:3.20", "index.docker.io"
 * becomes "docker.io", and a reference with neither tag nor digest gets the
 * tag "latest".  It also answers the two questions the transport asks of a
 * registry name: which host serves its API, and whether plain HTTP is
 * acceptable (loopback only).
 *
 * Grammar accepted (a reference is rejected unless all of it matches):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ registry "/" ] path            (at most 255 characters,
 *                                                   counted after normalising)
 *   registry   := ( domain-name | "[" [0-9A-Fa-f:]+ "]" ) [ ":" port ]
 *   domain-name:= label ( "." label )*,  label := [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?
 *   port       := [0-9]+ in 1..65535
 *   path       := component ( "/" component )*
 *   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" [0-9a-f]{64}
 *
 * The first path element is taken as the registry only when it contains '.'
 * or ':', is "localhost", or is a bracketed IPv6 literal; otherwise the
 * registry is docker.io.  Registry hosts keep their case; repository paths
 * must be lowercase.  A bare 64-hex-digit name is refused, as Docker refuses
 * it, because it would be mistaken for an image ID.
 *
 * Ownership: every string in a struct reference is owned by it and freed by
 * reference_release(); the string-building functions return memory the
 * caller frees.
 */
#ifndef OCIB_REGISTRY_REFERENCE_H
#define OCIB_REGISTRY_REFERENCE_H

#include <stdbool.h>

#include "base/error.h"

/* Longest name (registry "/" repository) accepted, as in Docker. */
#define REFERENCE_NAME_MAX 255
/* Longest tag accepted. */
#define REFERENCE_TAG_MAX 128

struct reference {
    char
        *registry; /* "docker.io", "localhost:5000", "[::1]:5000", "registry.example.com" */
    char *repository; /* "library/alpine", "acme/api" (lowercase path components) */
    char *tag;        /* NULL when absent; see reference_parse */
    char *digest;     /* "sha256:<64 hex>" or NULL */
};

#define REFERENCE_INIT                                                                     \
    {                                                                                      \
        NULL, NULL, NULL, NULL                                                             \
    }

/*
 * Parses s into *ret, normalised as described above.  When neither tag nor
 * digest is given the tag becomes "latest"; when only a digest is given the
 * tag stays NULL.  On failure returns -1 with a usage error naming the
 * reference and what is wrong (uppercase repository, empty component, bad
 * tag, bad digest, bad port, name too long, or "invalid reference format"),
 * and *ret is untouched.
 */
int reference_parse(const char *s, struct reference *ret, struct ocib_error *err);

/* Frees the fields of r and zeroes them.  Accepts NULL and a zeroed struct. */
void reference_release(struct reference *r);

/* "registry/repository[:tag][@digest]", the fully qualified form; caller frees. */
char *reference_string(const struct reference *r);

/* "registry/repository" without tag or digest; caller frees. */
char *reference_name(const struct reference *r);

/*
 * The short form Docker prints: "alpine:3.20" for docker.io/library/alpine,
 * "acme/api:1" for docker.io/acme/api, and the full form for any other
 * registry.  Parsing the result gives back r.  Caller frees.
 */
char *reference_familiar(const struct reference *r);

/*
 * True when the registry host, with or without a port, is loopback:
 * "localhost" (any case), an IPv4 address in 127.0.0.0/8, or "[::1]".  Used
 * to allow plain HTTP.  NULL gives false.
 */
bool reference_registry_is_loopback(const char *registry);

/*
 * The host serving the registry API: "registry-1.docker.io" for "docker.io",
 * registry itself otherwise.  The result is a static string or registry; do
 * not free it.
 */
const char *reference_registry_endpoint(const char *registry);

/* True when s is a valid tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.  NULL gives false. */
bool reference_tag_valid(const char *s);

#endif
