/*
 * Layer cache keys.
 *
 * A layer's key is the digest of a canonical description of its inputs: the
 * parent's key (the chain starts at the base image's manifest digest, or at
 * "scratch" and the platform), the layer's definition from the spec (minus
 * its name, which only reaches the history), the platform, the compressor
 * settings and the timestamp, and, for copy layers, every entry's path,
 * normalised metadata and content digest.  The definition part alone is the
 * "definition key": when no key was ever stored under it, hashing the inputs
 * first cannot find a hit.  Nothing host-specific (checkout path, user,
 * mtimes) enters a key.
 */
#ifndef OCIB_BUILDER_CACHEKEY_H
#define OCIB_BUILDER_CACHEKEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "layers/tree.h"
#include "oci/digest.h"

#define CACHEKEY_VERSION 1

/* The start of a chain: "scratch/<platform>" or a base manifest digest. */
void cachekey_base(const char *base, struct oci_digest *ret);

void cachekey_def(const struct oci_digest *parent, const json_t *layer,
                  const char *platform, const char *compression, int64_t epoch,
                  const char *workdir, struct oci_digest *ret);

/* The full key: def plus the finalised tree's entries (every regular file
 * must have its content digest). */
void cachekey_layer(const struct oci_digest *def, const struct layer_tree *t,
                    struct oci_digest *ret);

/* The inputs of a layer as recorded for the next build's explanation of a
 * miss: one line per entry, "<path length>:<path> <mode>:<uid>:<gid>:<digest
 * prefix><link>", in the tree's byte-wise order; caller frees. */
char *cachekey_inputs_record(const struct layer_tree *t);

/* Why a layer missed, comparing with what the last build of its slot
 * recorded (last: {parent, def, inputs}, NULL for the first build): the base
 * or an earlier layer, the spec's definition, or the first path added,
 * removed or changed.  first: the layer sits on the base.  Caller frees. */
char *cachekey_explain_miss(const json_t *last, const struct oci_digest *parent,
                            const struct oci_digest *def, const char *inputs, bool first);

#endif
