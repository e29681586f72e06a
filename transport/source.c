/*
 * Image sources; see source.h.
 */
#include "transport/source.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "transport/archive.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/platform.h"
#include "transport/name.h"

#include <string.h>

static char *local_path(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir)
        return xstrdup(path);
    return fs_path_join(base_dir, path);
}

/* The index a layout's image was picked from: its bytes, and which
 * platform's image was taken. */
static int layout_index(const char *path, struct image_source *s, struct ocib_error *err)
{
    json_t *j = NULL, *e;
    size_t i;

    if (oci_layout_read_blob(path, &s->index, OCI_JSON_MAX, &s->index_blob.data,
                             &s->index_blob.len, err) < 0)
        return ocib_error_wrap(err, "oci:%s", path);
    s->index_blob.digest = s->index;
    j = json_loadb(s->index_blob.data, s->index_blob.len, 0, NULL);
    json_array_foreach(json_object_get(j, "manifests"), i, e)
    {
        if (!strcmp(oci_json_str(e, "digest") ?: "", s->manifest.digest.str) &&
            json_object_get(e, "platform")) {
            s->choice = oci_platform_describe(json_object_get(e, "platform"));
            break;
        }
    }
    json_decref(j);
    return 0;
}

int image_source_open(const char *name, const char *base_dir, struct cache *c,
                      struct registries *rs, const struct oci_platform *p,
                      struct image_source *ret, struct ocib_error *err)
{
    struct image_source s;
    struct image_name n;
    int r = -1;

    memset(&s, 0, sizeof(s));
    if (image_name_parse(name, IMAGE_NAME_ANY, &n, err) < 0)
        return -1;
    if (n.kind == IMAGE_NAME_OCI) {
        _cleanup_free_ char *path = local_path(base_dir, n.path);

        if (oci_layout_load(path, n.tag, p, &s.img, &s.manifest, &s.config, err) < 0 ||
            oci_layout_index_of(path, n.tag, &s.index, err) < 0)
            goto out;
        if (s.index.str[0] && layout_index(path, &s, err) < 0)
            goto out;
        s.srcs = xcalloc(s.img.n_layers + 1, sizeof(*s.srcs));
        for (size_t i = 0; i < s.img.n_layers; i++) {
            _cleanup_free_ char *bp =
                oci_layout_blob_path(path, &s.img.layers[i].desc.digest);

            blob_source_init_local(&s.srcs[i], &s.img.layers[i].desc.digest,
                                   s.img.layers[i].desc.size, bp, true);
        }
    } else if (n.kind == IMAGE_NAME_ARCHIVE) {
        _cleanup_free_ char *path = local_path(base_dir, n.path);

        if (docker_archive_load(path, NULL, c, &s.img, &s.manifest, &s.config, err) < 0)
            goto out;
        s.srcs = xcalloc(s.img.n_layers + 1, sizeof(*s.srcs));
        for (size_t i = 0; i < s.img.n_layers; i++) {
            _cleanup_free_ char *bp = cache_blob_path(c, &s.img.layers[i].desc.digest);

            blob_source_init_local(&s.srcs[i], &s.img.layers[i].desc.digest,
                                   s.img.layers[i].desc.size, bp, false);
        }
    } else {
        struct oci_platform host;

        if (!p) {
            oci_platform_host(&host);
            p = &host;
        }
        if (remote_load_image(rs, c, &n.ref, p, &s.img, &s.srcs, &s.manifest, &s.config,
                              &s.index_blob, &s.choice, &s.mirror, err) < 0)
            goto out;
        if (s.index_blob.data)
            s.index = s.index_blob.digest;
    }
    s.n_srcs = s.img.n_layers;
    *ret = s;
    r = 0;
out:
    image_name_release(&n);
    return r;
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
    free(s->mirror);
    memset(s, 0, sizeof(*s));
}
