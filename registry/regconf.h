/*
 * registries.conf, as containers/image reads it (containers-registries.conf(5),
 * version 2): the [[registry]] tables that say where a namespace of images
 * really lives, whether it is insecure (plain HTTP) or blocked, and the
 * [[registry.mirror]]s to pull it from first.
 *
 * The file is $CONTAINERS_REGISTRIES_CONF when set, else
 * $XDG_CONFIG_HOME/containers/registries.conf (~/.config/…) when it exists,
 * else /etc/containers/registries.conf; a missing file means no table.
 * Keys ocib does not use (unqualified-search-registries, short-name-mode,
 * [aliases], ...) are ignored; a key it uses with a wrong value is an error
 * "FILE:LINE: registry.KEY: why".  Drop-in files (registries.conf.d) and the
 * version 1 format are not read.
 *
 * Names are matched as containers/image matches them: "host[:port]/repo"
 * against each table's prefix ("host", "host/ns", "*.example.com"), the
 * longest match winning.  Nothing here prints.
 */
#ifndef OCIB_REGISTRY_REGCONF_H
#define OCIB_REGISTRY_REGCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* Longest list of mirrors one table may have. */
#define REGCONF_MIRRORS_MAX 16

enum regconf_pull {
    REGCONF_PULL_ALL,         /* "all": pulls by tag and by digest */
    REGCONF_PULL_DIGEST_ONLY, /* "digest-only" */
    REGCONF_PULL_TAG_ONLY,    /* "tag-only" */
};

struct regconf_mirror {
    char *location; /* "mirror.example.com:5000/docker" */
    bool insecure;
    enum regconf_pull pull;
};

struct regconf_registry {
    char *prefix;   /* what names it governs */
    char *location; /* where they live ("" for a wildcard prefix) */
    bool insecure, blocked;
    struct regconf_mirror *mirrors;
    size_t n_mirrors;
    int line;
};

struct regconf {
    char *path; /* the file read, NULL when none */
    struct regconf_registry *v;
    size_t n;
};

/* Reads the file the environment names (see above) into *ret; a missing
 * file gives an empty table. */
int regconf_load(struct regconf *ret, struct ocib_error *err);

/* Parses text (len bytes) read from path into *ret (untouched on failure). */
int regconf_parse(const char *path, const char *text, size_t len, struct regconf *ret,
                  struct ocib_error *err);
void regconf_release(struct regconf *c);

/* The table for name ("host[:port]/repo"), or NULL. */
const struct regconf_registry *regconf_find(const struct regconf *c, const char *name);

/* name with r's prefix replaced by location (r->location or a mirror's);
 * caller frees.  A wildcard prefix keeps name's own host. */
char *regconf_rewrite(const struct regconf_registry *r, const char *location,
                      const char *name);

/* True when host is marked insecure: its own table's, or as a mirror. */
bool regconf_host_insecure(const struct regconf *c, const char *host);

#endif
