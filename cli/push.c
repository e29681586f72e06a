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
#include "oci/mediatype.h"
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

int cli_push(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct image_source src = {0};
    struct reference dest = {0};
    const char *args[2] = {NULL, NULL}, *digest_file = NULL, *v;
    _cleanup_free_ char *name = NULL;
    _cleanup_free_ char *line = NULL;
    char *tags[1];
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
    {
        struct image_name src_name;

        if (image_name_parse(args[0], IMAGE_NAME_LOCAL, &src_name, err) < 0) {
            ocib_error_wrap(err, "push: SRC");
            goto out;
        }
        image_name_release(&src_name);
    }
    if (image_name_reference(args[1], &dest, err) < 0) {
        ocib_error_wrap(err, "push: DEST");
        goto out;
    }
    if (cli_env_open(&env, err) < 0 ||
        image_source_open(args[0], NULL, env.cache, env.registries, NULL, &src, err) < 0)
        goto out;
    tags[0] = dest.tag;
    {
        json_t *mj = json_loadb(src.manifest.data, src.manifest.len, 0, NULL);
        const char *mt = json_string_value(json_object_get(mj, "mediaType"));
        _cleanup_free_ char *media_type = xstrdup(mt ? mt : OCI_MT_MANIFEST);

        json_decref(mj);
        if (dest.digest && strcmp(dest.digest, src.manifest.digest.str)) {
            ocib_error_usage(err, "push: DEST names digest %s but the image is %s",
                             dest.digest, src.manifest.digest.str);
            goto out;
        }
        if (remote_push_image(env.registries, env.cache, dest.registry, dest.repository,
                              &src.img, src.srcs, &src.config, &src.manifest, media_type,
                              tags, dest.tag ? 1 : 0, err) < 0)
            goto out;
    }
    name = reference_name(&dest);
    line = xasprintf("%s@%s\n", name, src.manifest.digest.str);
    if (digest_file &&
        fs_write_file_atomic(digest_file, line, strlen(line), 0644, err) < 0) {
        ocib_error_wrap(err, "--digest-file");
        goto out;
    }
    fputs(line, stdout);
    r = 0;
out:
    reference_release(&dest);
    image_source_release(&src);
    cli_env_release(&env);
    return r;
}
