/*
 * `ocib push SRC DEST`: copies an image from a local OCI layout or
 * docker-archive to a registry, byte for byte (same manifest, same digest).
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "transport/name.h"
#include "transport/source.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/mediatype.h"
#include "oci/platform.h"
#include "registry/reference.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

enum { OPT_DIGEST_FILE = 1 };

const struct cli_option cli_push_options[] = {
    {OPT_DIGEST_FILE, "--digest-file", NULL, "FILE", "also write REPO@DIGEST into FILE"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

/* Pushes one image under tag (NULL: its digest). */
static int push_one(struct cli_env *env, const struct image_source *src,
                    const struct reference *dest, char *tag, struct ocib_error *err)
{
    json_t *mj = json_loadb(src->manifest.data, src->manifest.len, 0, NULL);
    const char *mt = json_string_value(json_object_get(mj, "mediaType"));
    _cleanup_free_ char *media_type = xstrdup(mt ? mt : OCI_MT_MANIFEST);
    char *tags[1] = {tag};

    json_decref(mj);
    return remote_push_image(env->registries, env->cache, dest->registry, dest->repository,
                             &src->img, src->srcs, &src->config, &src->manifest, media_type,
                             tags, tag ? 1 : 0, err);
}

/* A layout's index of several platforms: every platform's image under its
 * digest, then the index's exact bytes under the tag. */
static int push_index(struct cli_env *env, const char *name, const char *dir,
                      const struct oci_digest *index, const struct reference *dest,
                      struct ocib_error *err)
{
    struct oci_blob idx = {0};
    json_t *j = NULL, *m;
    size_t i;
    int r = -1;

    if (oci_layout_read_blob(dir, index, OCI_JSON_MAX, &idx.data, &idx.len, err) < 0)
        return ocib_error_wrap(err, "push: %s: index %s", name, index->str);
    idx.digest = *index;
    j = json_loadb(idx.data, idx.len, 0, NULL);
    json_array_foreach(json_object_get(j, "manifests"), i, m)
    {
        const json_t *pj = json_object_get(m, "platform");
        _cleanup_free_ char *text = oci_platform_describe(pj);
        struct oci_platform p;
        struct image_source one = {0};
        int rc;

        if (!pj || oci_platform_parse(text, &p, err) < 0) {
            ocib_error_set(err,
                           "push: %s: index %s: entry %zu has no platform ocib can push "
                           "by (%s)",
                           name, index->str, i, text);
            goto out;
        }
        rc = image_source_open(name, NULL, env->cache, env->registries, &p, &one, err);
        if (rc == 0)
            rc = push_one(env, &one, dest, NULL, err);
        image_source_release(&one);
        if (rc < 0)
            goto out;
    }
    r = remote_push_manifest(
        env->registries, dest->registry, dest->repository, &idx,
        json_string_value(json_object_get(j, "mediaType")) ?: OCI_MT_INDEX,
        dest->tag ? (char *const[]){dest->tag} : NULL, dest->tag ? 1 : 0, err);
out:
    json_decref(j);
    free(idx.data);
    return r;
}

int cli_push(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct image_source src = {0};
    struct reference dest = {0};
    const char *args[2] = {NULL, NULL}, *digest_file = NULL, *v;
    _cleanup_free_ char *name = NULL;
    _cleanup_free_ char *line = NULL;
    struct image_name src_name = {0};
    struct oci_digest pushed;
    size_t n_args = 0;
    bool operands_only = false;
    int r = -1;

    for (int i = 1; i < argc; i++) {
        int id =
            cli_next("push", cli_push_options, argc, argv, &i, &operands_only, &v, err);

        switch (id) {
        case CLI_OPT_INSECURE_ID:
        case CLI_OPT_CERT_DIR_ID:
            cli_env_take(&env, id, v);
            break;
        case OPT_DIGEST_FILE:
            digest_file = v;
            break;
        case CLI_SKIP:
            break;
        case CLI_OPERAND:
            if (n_args == 2) {
                ocib_error_usage(err, "push: takes SRC and DEST");
                goto out;
            }
            args[n_args++] = v;
            break;
        default:
            goto out;
        }
    }
    if (n_args != 2) {
        ocib_error_usage(err, "push: takes SRC and DEST; see 'ocib help push'");
        goto out;
    }
    if (image_name_parse(args[0], IMAGE_NAME_LOCAL, &src_name, err) < 0) {
        ocib_error_wrap(err, "push: SRC");
        goto out;
    }
    if (image_name_reference(args[1], &dest, err) < 0) {
        ocib_error_wrap(err, "push: DEST");
        goto out;
    }
    if (cli_env_open(&env, err) < 0 ||
        image_source_open(args[0], NULL, env.cache, env.registries, NULL, &src, err) < 0)
        goto out;
    if (src.index.str[0] && src_name.kind == IMAGE_NAME_OCI) {
        if (push_index(&env, args[0], src_name.path, &src.index, &dest, err) < 0)
            goto out;
        pushed = src.index;
    } else {
        if (push_one(&env, &src, &dest, dest.tag, err) < 0)
            goto out;
        pushed = src.manifest.digest;
    }
    if (dest.digest && strcmp(dest.digest, pushed.str)) {
        ocib_error_usage(err, "push: DEST names digest %s but the image is %s", dest.digest,
                         pushed.str);
        goto out;
    }
    name = reference_name(&dest);
    line = xasprintf("%s@%s\n", name, pushed.str);
    if (digest_file &&
        fs_write_file_atomic(digest_file, line, strlen(line), 0644, err) < 0) {
        ocib_error_wrap(err, "--digest-file");
        goto out;
    }
    fputs(line, stdout);
    r = 0;
out:
    image_name_release(&src_name);
    reference_release(&dest);
    image_source_release(&src);
    cli_env_release(&env);
    return r;
}
