/*
 * `ocib inspect REF`: an image's manifest, config and layers, for people or
 * (--json) for programs.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "transport/source.h"
#include "cache/blobs.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/platform.h"
#include "registry/reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The history entry of layer `layer` of n_layers: entries that are not
 * empty_layer describe layers in order, and when some are missing (a base
 * without history) the ones there describe the last layers. */
static json_t *layer_history(const json_t *config, size_t layer, size_t n_layers)
{
    json_t *h = json_object_get(config, "history"), *e;
    size_t i, n = 0, k = 0, offset;

    json_array_foreach(h, i, e) if (!json_is_true(json_object_get(e, "empty_layer"))) n++;
    offset = n_layers > n ? n_layers - n : 0;
    if (layer < offset)
        return NULL;
    json_array_foreach(h, i, e)
    {
        if (json_is_true(json_object_get(e, "empty_layer")))
            continue;
        if (k++ == layer - offset)
            return e;
    }
    return NULL;
}

/* "os/arch[/variant]" of every manifest an index lists. */
static json_t *index_platforms(const json_t *index)
{
    json_t *out = json_array(), *e;
    size_t i;

    json_array_foreach(json_object_get(index, "manifests"), i, e)
    {
        const json_t *p = json_object_get(e, "platform");

        if (p) {
            _cleanup_free_ char *d = oci_platform_describe(p);

            json_array_append_new(out, json_string(d));
        }
    }
    return out;
}

/* Each layer's descriptor, diff_id and, from the history, how it was made. */
static json_t *layers_json(const struct oci_image *img)
{
    json_t *layers = json_array();

    for (size_t i = 0; i < img->n_layers; i++) {
        const json_t *h = layer_history(img->config, i, img->n_layers);
        json_t *l = json_pack(
            "{s:s, s:s, s:I, s:s}", "mediaType", img->layers[i].desc.media_type, "digest",
            img->layers[i].desc.digest.str, "size", (json_int_t)img->layers[i].desc.size,
            "diff_id", img->layers[i].diff_id.str);

        if (h && oci_json_str(h, "created_by"))
            json_object_set(l, "created_by", json_object_get(h, "created_by"));
        if (h && oci_json_str(h, "comment"))
            json_object_set(l, "comment", json_object_get(h, "comment"));
        json_array_append_new(layers, l);
    }
    return layers;
}

static void print_json(const char *ref, const struct image_source *src, json_t *layers)
{
    json_t *mj = NULL, *out;
    char *s;

    if (src->manifest.data)
        mj = json_loadb(src->manifest.data, src->manifest.len, 0, NULL);
    out = json_pack("{s:s, s:s, s:o, s:O, s:O}", "reference", ref, "digest",
                    src->manifest.digest.str, "manifest", mj ? mj : json_null(), "config",
                    src->img.config, "layers", layers);
    if (src->index_blob.data) {
        json_t *ij = json_loadb(src->index_blob.data, src->index_blob.len, 0, NULL);

        json_object_set_new(out, "index",
                            json_pack("{s:s, s:o, s:o}", "digest", src->index.str,
                                      "manifest", ij ? ij : json_null(), "platforms",
                                      index_platforms(ij)));
        json_object_set_new(out, "platform", json_string(src->choice ? src->choice : ""));
    }
    s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
    json_decref(out);
}

static void print_text(const char *ref, const struct image_source *src,
                       const json_t *layers)
{
    static const char *const listed[] = {"Entrypoint",   "Cmd",        "Env",
                                         "ExposedPorts", "Volumes",    "Labels",
                                         "StopSignal",   "Healthcheck"};
    const struct oci_image *img = &src->img;
    const json_t *ic = json_object_get(img->config, "config");
    _cleanup_free_ char *platform = oci_platform_describe(img->config);

    printf("Reference:  %s\n", ref);
    if (src->index_blob.data) {
        json_t *ij = json_loadb(src->index_blob.data, src->index_blob.len, 0, NULL);
        json_t *plats = index_platforms(ij), *p;
        size_t i;

        printf("Index:      %s\n", src->index.str);
        printf("Platforms: ");
        json_array_foreach(plats, i, p) printf(" %s", json_string_value(p));
        printf("\n");
        printf("Picked:     %s\n", src->choice ? src->choice : "-");
        json_decref(plats);
        json_decref(ij);
    }
    printf("Digest:     %s\n", src->manifest.digest.str);
    printf("Platform:   %s\n", platform);
    printf("Created:    %s\n", oci_json_str(img->config, "created") ?: "-");
    if (oci_json_str(ic, "User"))
        printf("User:       %s\n", oci_json_str(ic, "User"));
    if (oci_json_str(ic, "WorkingDir"))
        printf("WorkingDir: %s\n", oci_json_str(ic, "WorkingDir"));
    for (size_t k = 0; k < ARRAY_SIZE(listed); k++) {
        json_t *val = json_object_get(ic, listed[k]);

        if (val && json_is_object(val) && strcmp(listed[k], "Healthcheck") &&
            strcmp(listed[k], "Labels")) {
            /* A set ({"80/tcp": {}}): its keys. */
            const char *key;
            json_t *unused;

            printf("%-11s", listed[k]);
            json_object_foreach(val, key, unused) printf(" %s", key);
            printf("\n");
        } else if (val) {
            char *s = json_is_string(val) ? strdup(json_string_value(val))
                                          : json_dumps(val, JSON_COMPACT | JSON_SORT_KEYS);

            printf("%-11s %s\n", listed[k], s);
            free(s);
        }
    }
    {
        uint64_t total = src->config.len + src->manifest.len;
        char size[32];

        for (size_t i = 0; i < img->n_layers; i++)
            total += (uint64_t)img->layers[i].desc.size;
        cli_human_size(total, size, sizeof(size));
        printf("Size:       %s (%llu bytes: layers as stored, config and manifest)\n", size,
               (unsigned long long)total);
    }
    printf("Layers:     %zu\n", img->n_layers);
    for (size_t i = 0; i < img->n_layers; i++) {
        const json_t *l = json_array_get(layers, i);
        const char *comment = oci_json_str(l, "comment");

        printf("  %s  %10lld  %s%s%s%s\n", img->layers[i].desc.digest.str,
               (long long)img->layers[i].desc.size, oci_json_str(l, "created_by") ?: "",
               comment ? " (" : "", comment ?: "", comment ? ")" : "");
    }
}

const struct cli_option cli_inspect_options[] = {
    {CLI_OPT_JSON_ID, "--json", NULL, NULL, "print one JSON document"},
    {CLI_OPT_PLATFORM_ID, "--platform", NULL, "OS/ARCH[/VARIANT]",
     "the image of an index to show (default: the host's)"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

int cli_inspect(int argc, char **argv, struct ocib_error *err)
{
    struct image_source src = {0};
    struct cli_env env = {0};
    struct cli_image_args args;
    const char *ref;
    int r = -1;
    json_t *layers;

    if (cli_image_args_parse("inspect", cli_inspect_options, 1, argc, argv, &env, &args,
                             err) < 0)
        goto out;
    if (!args.n) {
        ocib_error_usage(err, "inspect: which image? see 'ocib help inspect'");
        goto out;
    }
    ref = args.names[0];
    if (cli_env_open(&env, err) < 0 ||
        image_source_open(ref, NULL, env.cache, env.registries,
                          args.has_platform ? &args.platform : NULL, &src, err) < 0)
        goto out;
    layers = layers_json(&src.img);
    if (args.as_json)
        print_json(ref, &src, layers);
    else
        print_text(ref, &src, layers);
    json_decref(layers);
    r = 0;
out:
    image_source_release(&src);
    cli_env_release(&env);
    return r;
}
