/*
 * Image sources; see source.h.
 */
#include "transport/source.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "transport/archive.h"
#include "oci/layout.h"
#include "registry/reference.h"

#include <string.h>

void image_ref_split_oci(const char *s, char **ret_path, char **ret_tag)
{
    const char *colon = strrchr(s, ':');

    if (colon && !strchr(colon, '/') && reference_tag_valid(colon + 1)) {
        *ret_path = xstrndup(s, (size_t)(colon - s));
        *ret_tag = xstrdup(colon + 1);
    } else {
        *ret_path = xstrdup(s);
        *ret_tag = NULL;
    }
}

static char *local_path(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir)
        return xstrdup(path);
    return fs_path_join(base_dir, path);
}

int image_source_open(const char *name, const char *base_dir, struct cache *c,
                      struct registries *rs, const struct oci_platform *p,
                      struct image_source *ret, struct ocib_error *err)
{
    struct image_source s;

    memset(&s, 0, sizeof(s));
    if (!strncmp(name, "oci:", 4)) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ char *tag = NULL;
        _cleanup_free_ char *path = NULL;

        image_ref_split_oci(name + 4, &dir, &tag);
        path = local_path(base_dir, dir);
        if (oci_layout_load(path, tag, p, &s.img, &s.manifest, &s.config, err) < 0)
            return -1;
        s.srcs = xcalloc(s.img.n_layers + 1, sizeof(*s.srcs));
        for (size_t i = 0; i < s.img.n_layers; i++) {
            _cleanup_free_ char *bp =
                oci_layout_blob_path(path, &s.img.layers[i].desc.digest);

            blob_source_init_local(&s.srcs[i], &s.img.layers[i].desc.digest,
                                   s.img.layers[i].desc.size, bp, true);
        }
    } else if (!strncmp(name, "docker-archive:", 15)) {
        _cleanup_free_ char *path = local_path(base_dir, name + 15);

        if (docker_archive_load(path, NULL, c, &s.img, &s.manifest, &s.config, err) < 0)
            return -1;
        s.srcs = xcalloc(s.img.n_layers + 1, sizeof(*s.srcs));
        for (size_t i = 0; i < s.img.n_layers; i++) {
            _cleanup_free_ char *bp = cache_blob_path(c, &s.img.layers[i].desc.digest);

            blob_source_init_local(&s.srcs[i], &s.img.layers[i].desc.digest,
                                   s.img.layers[i].desc.size, bp, false);
        }
    } else {
        struct reference ref;
        struct oci_platform host;
        int r;

        if (reference_parse(name, &ref, err) < 0)
            return -1;
        if (!p) {
            oci_platform_host(&host);
            p = &host;
        }
        r = remote_load_image(rs, c, &ref, p, &s.img, &s.srcs, &s.manifest, &s.config,
                              &s.index_blob, &s.choice, err);
        if (r == 0 && s.index_blob.data)
            s.index = s.index_blob.digest;
        reference_release(&ref);
        if (r < 0)
            return -1;
    }
    s.n_srcs = s.img.n_layers;
    *ret = s;
    return 0;
}

void image_source_release(struct image_source *s)
{
    for (size_t i = 0; s->srcs && i < s->n_srcs; i++)
        blob_source_release(&s->srcs[i]);
    free(s->srcs);
    oci_image_release(&s->img);
    oci_blob_release(&s->manifest);
    oci_blob_release(&s->config);
    oci_blob_release(&s->index_blob);
    free(s->choice);
    memset(s, 0, sizeof(*s));
}
