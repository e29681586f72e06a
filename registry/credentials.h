/*
 * Registry credentials in Docker's config.json ($DOCKER_CONFIG/config.json,
 * else ~/.docker/config.json): "auths" entries (base64 user:password),
 * "credHelpers" per registry and "credsStore" as the default helper, each a
 * docker-credential-<name> program spoken to on stdin/stdout.
 *
 * Secrets never reach an error message.  The file is written atomically with
 * mode 0600, keeping every key ocib does not manage.
 */
#ifndef OCIB_REGISTRY_CREDENTIALS_H
#define OCIB_REGISTRY_CREDENTIALS_H

#include "base/error.h"

struct credentials {
    char *username;
    char *secret; /* password or identity token */
};

void credentials_release(struct credentials *c);

/* Looks up credentials for registry ("docker.io" also matches Docker's
 * "https://index.docker.io/v1/" key).  Returns 1 when found, 0 when none,
 * -1 on a broken config or helper failure. */
int credentials_lookup(const char *registry, struct credentials *ret,
                       struct ocib_error *err);

/* Stores user/secret for registry in config.json "auths" (or through the
 * configured helper when one is set for it). */
int credentials_store(const char *registry, const char *user, const char *secret,
                      struct ocib_error *err);

/* Removes the registry's entry; returns 1 if there was one, 0 if not. */
int credentials_erase(const char *registry, struct ocib_error *err);

/* Path of config.json; caller frees. */
char *credentials_config_path(void);

#endif
