/*
 * `ocib build --verify`: the target built twice in isolation and compared.
 *
 * Each build gets its own copy of the context (at a different path, made
 * under a different umask, its directory entries created in opposite
 * orders), its own empty cache and its own output; the git revision of the
 * real context is carried over.  Identical manifests mean the build is
 * reproducible; otherwise the two images are compared with audit/diff.h.
 */
#ifndef OCIB_AUDIT_VERIFY_H
#define OCIB_AUDIT_VERIFY_H

#include <stdbool.h>

#include "base/error.h"
#include "builder/build.h"
#include "audit/diff.h"

struct verify_result {
    bool identical;
    struct oci_digest a, b;
    struct image_diff diff;           /* filled when not identical */
    struct image_source a_src, b_src; /* the two images, when not identical */
    char platform[96]; /* several platforms: the one a_src and b_src are of */
};

int build_verify(const struct build_options *o, struct verify_result *ret,
                 struct ocib_error *err);
void verify_result_release(struct verify_result *r);

#endif
