/*
 * Layer cache keys; see cachekey.h.
 */
#include "builder/cachekey.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/xalloc.h"
#include "oci/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cachekey_base(const char *base, struct oci_digest *ret)
{
    _cleanup_free_ char *s = xasprintf("ocib-base-v%d\n%s", CACHEKEY_VERSION, base);

    oci_digest_of(s, strlen(s), ret);
}

void cachekey_def(const struct oci_digest *parent, const json_t *layer,
                  const char *platform, const char *compression, int64_t epoch,
                  const char *workdir, struct oci_digest *ret)
{
    json_t *def = json_deep_copy(layer);
    json_t *j;
    char *s;
    size_t len;

    json_object_del(def, "name");
    /* build.c passes {"layer": <definition>, ...}: the name is not an input
     * there either (it only reaches the history). */
    if (json_is_object(json_object_get(def, "layer")))
        json_object_del(json_object_get(def, "layer"), "name");
    j = json_pack("{s:i, s:s, s:o, s:s, s:s, s:I, s:s}", "v", CACHEKEY_VERSION, "parent",
                  parent->str, "layer", def, "platform", platform, "compression",
                  compression, "epoch", (json_int_t)epoch, "workdir",
                  workdir ? workdir : "/");
    s = oci_json_canonical(j, &len);
    oci_digest_of(s, len, ret);
    free(s);
    json_decref(j);
}

struct inode_first {
    dev_t dev;
    ino_t ino;
    const char *path;
};

void cachekey_layer(const struct oci_digest *def, const struct layer_tree *t,
                    struct oci_digest *ret)
{
    struct inode_first *seen = NULL;
    size_t n_seen = 0, alloc = 0;
    struct sha256 h;
    char line[128];

    sha256_init(&h);
    sha256_update(&h, def->str, strlen(def->str));
    sha256_update(&h, "\n", 1);
    for (size_t i = 0; i < t->n; i++) {
        const struct layer_tree_entry *e = &t->entries[i];
        const char *link_to = "";

        /* Files that will be written as hard links to an earlier path. */
        if (e->has_st && e->st.st_nlink > 1 && S_ISREG(e->mode)) {
            size_t k;

            for (k = 0; k < n_seen; k++)
                if (seen[k].dev == e->st.st_dev && seen[k].ino == e->st.st_ino)
                    break;
            if (k < n_seen) {
                link_to = seen[k].path;
            } else {
                XGROW(seen, alloc, n_seen + 1);
                seen[n_seen++] = (struct inode_first){e->st.st_dev, e->st.st_ino, e->path};
            }
        }
        sha256_update(&h, e->path, strlen(e->path) + 1);
        snprintf(line, sizeof(line), "%o %u %u %llu ", (unsigned)e->mode, e->uid, e->gid,
                 (unsigned long long)(S_ISREG(e->mode) ? e->size : 0));
        sha256_update(&h, line, strlen(line));
        sha256_update(&h, e->link ? e->link : "", strlen(e->link ? e->link : "") + 1);
        sha256_update(&h, e->digest, strlen(e->digest) + 1);
        sha256_update(&h, link_to, strlen(link_to) + 1);
        sha256_update(&h, "\n", 1);
    }
    free(seen);
    oci_digest_from_sha256(&h, ret);
}
