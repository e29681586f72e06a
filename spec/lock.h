/*
 * ocib.lock.json: every registry base image of a spec pinned to digests.
 *
 * `ocib lock` resolves each registry `from` to its index digest (when it is
 * an index) and, for each platform the spec builds, the platform's manifest
 * digest; `ocib build` then builds from those digests, so a tag moved in the
 * registry does not change the build.  The file also records ocib's version,
 * output format and compressor settings.  Its bytes are deterministic
 * (canonical JSON, sorted keys).
 */
#ifndef OCIB_SPEC_LOCK_H
#define OCIB_SPEC_LOCK_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "transport/remote.h"
#include "spec/spec.h"

/* Path of the lock beside the spec; caller frees. */
char *lock_path(const struct spec *spec);

/* Writes (or, with update, refreshes) the lock for spec.  Without update,
 * images already locked keep their digests and only new ones are resolved.
 * platform is the default for stages without one (NULL: the host's). */
int lock_write(const struct spec *spec, struct registries *rs, struct cache *c,
               const struct oci_platform *platform, bool update, struct ocib_error *err);

/* Loads the lock (*ret NULL when there is none). */
int lock_load(const struct spec *spec, json_t **ret, struct ocib_error *err);

/* The pinned reference ("registry/repo@sha256:…") for a stage's from text
 * and platform, or NULL when the lock has none; caller frees. */
char *lock_pinned(const json_t *lock, const char *from, const char *platform);

/* Checks that the lock covers every registry base of the stages in order
 * for their platforms (--locked); fails naming what is missing or stale. */
int lock_check(const json_t *lock, const struct spec *spec, const size_t *order, size_t n,
               const struct oci_platform *default_platform, struct ocib_error *err);

#endif
