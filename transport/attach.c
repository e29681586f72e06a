/*
 * Attaching artifacts to a pushed image: the artifact's blobs, its manifest
 * by digest, and, when the registry does not keep referrers itself
 * (no OCI-Subject in its answer), the fallback referrers tag.  See
 * remote.h.
 */
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "oci/artifact.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "transport/remote.h"

#include <jansson.h>
#include <stdlib.h>

int remote_push_artifact(struct registries *rs, const char *host, const char *repo,
                         const struct oci_blob *manifest, const struct oci_blob *blobs,
                         size_t n_blobs, const char *tag, bool referrer,
                         struct ocib_error *err)
{
    struct registry *r;
    bool kept = false;

    if (registries_check_push(rs, host, repo, err) < 0 ||
        registries_get(rs, host, &r, err) < 0)
        return -1;
    for (size_t i = 0; i < n_blobs; i++)
        if (registry_blob_push(r, repo, &blobs[i].digest, (int64_t)blobs[i].len, -1,
                               blobs[i].data, NULL, err) < 0)
            return -1;
    if (registry_manifest_put_subject(r, repo, tag ?: manifest->digest.str, OCI_MT_MANIFEST,
                                      manifest->data, manifest->len, &kept, err) < 0)
        return -1;
    if (referrer && !kept) {
        json_t *m = json_loadb(manifest->data, manifest->len, 0, NULL);
        json_t *d = oci_artifact_descriptor(manifest);
        struct oci_digest subject;
        _cleanup_free_ char *desc = oci_json_canonical(d, NULL);
        int rc = oci_digest_parse(
            oci_json_str(json_object_get(m, "subject"), "digest") ?: "", &subject, err);

        json_decref(m);
        json_decref(d);
        if (rc < 0)
            return ocib_error_wrap(err, "artifact %s: no subject", manifest->digest.str);
        return registry_referrers_tag_add(r, repo, &subject, desc, err);
    }
    return 0;
}
