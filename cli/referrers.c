/*
 * `ocib referrers IMAGE [--json]`: what is attached to an image (OCI 1.1
 * artifacts: type, digest, size, and whether a cosign signature names
 * it), from a registry's referrers API or fallback tag, or from a layout's
 * index.json.  `ocib sbom IMAGE [--generate]`: the attached SBOM's
 * document, or one computed from the image's layers.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "oci/artifact.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "sbom/sbom.h"
#include "transport/name.h"
#include "transport/remote.h"
#include "transport/source.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define OPT_GENERATE 1

const struct cli_option cli_referrers_options[] = {
    {CLI_OPT_JSON_ID, "--json", NULL, NULL, "print the referrers index as JSON"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

const struct cli_option cli_sbom_options[] = {
    {OPT_GENERATE, "--generate", NULL, NULL,
     "compute an SPDX SBOM from the image's layers instead of reading the attached one"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

/* The referrers index of src (named name) into *ret (a new reference);
 * *ret_reg the registry client for a registry image (else NULL). */
static int referrers_of(struct cli_env *env, const char *name,
                        const struct image_source *src, json_t **ret,
                        struct registry **ret_reg, char **ret_repo, struct ocib_error *err)
{
    struct image_name n;
    _cleanup_free_ char *data = NULL;
    size_t len;
    bool api;
    int rc = -1;

    if (image_name_parse(name, IMAGE_NAME_ANY, &n, err) < 0)
        return -1;
    *ret_reg = NULL;
    if (n.kind == IMAGE_NAME_REGISTRY) {
        if (registries_get(env->registries, n.ref.registry, ret_reg, err) == 0 &&
            registry_referrers_get(*ret_reg, n.ref.repository, &src->manifest.digest, &data,
                                   &len, &api, err) == 0 &&
            oci_json_parse(data, len, "referrers index", ret, err) == 0) {
            *ret_repo = xstrdup(n.ref.repository);
            rc = 0;
        }
    } else if (n.kind == IMAGE_NAME_OCI) {
        _cleanup_free_ char *ip = xasprintf("%s/index.json", n.path);
        json_t *idx = json_load_file(ip, 0, NULL), *e, *list = json_array();
        size_t i;

        json_array_foreach(json_object_get(idx, "manifests"), i, e)
        {
            const char *s = oci_json_str(json_object_get(e, "subject"), "digest");

            if (s && !strcmp(s, src->manifest.digest.str)) {
                json_t *c = json_deep_copy(e);

                json_object_del(c, "subject");
                json_array_append_new(list, c);
            }
        }
        json_decref(idx);
        *ret = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
                         "manifests", list);
        rc = 0;
    } else {
        rc = ocib_error_usage(err, "%s: a docker-archive holds no referrers", name);
    }
    image_name_release(&n);
    return rc;
}

/* Reads argv: the options of opts and one image; *ret_generate for sbom. */
static int parse(const char *verb, const struct cli_option *opts, int argc, char **argv,
                 struct cli_env *env, const char **ret_name, bool *ret_json,
                 bool *ret_generate, struct ocib_error *err)
{
    bool only = false;

    *ret_name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int id = cli_next(verb, opts, argc, argv, &i, &only, &v, err);

        if (id < 0 && id != CLI_SKIP)
            return -1;
        if (id == CLI_OPERAND && *ret_name)
            return ocib_error_usage(err, "%s: takes one image", verb);
        if (id == CLI_OPERAND)
            *ret_name = v;
        else if (id == CLI_OPT_JSON_ID)
            *ret_json = true;
        else if (id == OPT_GENERATE)
            *ret_generate = true;
        else if (id > 0)
            cli_env_take(env, id, v);
    }
    if (!*ret_name)
        return ocib_error_usage(err, "%s: which image? see 'ocib help %s'", verb, verb);
    return cli_env_open(env, err);
}

int cli_referrers(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct image_source src = {0};
    struct registry *reg = NULL;
    _cleanup_free_ char *repo = NULL;
    json_t *idx = NULL, *e;
    const char *name;
    bool as_json = false, gen = false;
    size_t i;
    int r = -1;

    if (parse("referrers", cli_referrers_options, argc, argv, &env, &name, &as_json, &gen,
              err) < 0 ||
        image_source_open(name, NULL, env.cache, env.registries, NULL, &src, err) < 0 ||
        referrers_of(&env, name, &src, &idx, &reg, &repo, err) < 0)
        goto out;
    json_array_foreach(json_object_get(idx, "manifests"), i, e)
    {
        struct oci_digest d;
        struct registry_manifest sig;
        _cleanup_free_ char *tag = NULL;
        bool signed_ = false;

        if (reg && oci_digest_parse(oci_json_str(e, "digest") ?: "", &d, NULL) == 0) {
            struct ocib_error ignored = OCIB_ERROR_INIT;

            tag = oci_cosign_tag(&d);
            signed_ = registry_manifest_get(reg, repo, tag, &sig, &ignored) == 0;
            if (signed_)
                registry_manifest_release(&sig);
        }
        json_object_set_new(e, "signed", json_boolean(signed_));
        if (!as_json)
            printf("%-32s %s %8lld%s\n", oci_json_str(e, "artifactType") ?: "-",
                   oci_json_str(e, "digest") ?: "-",
                   (long long)json_integer_value(json_object_get(e, "size")),
                   signed_ ? " signed" : "");
    }
    if (as_json) {
        _cleanup_free_ char *s = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);

        printf("%s\n", s);
    }
    r = 0;
out:
    json_decref(idx);
    image_source_release(&src);
    cli_env_release(&env);
    return r;
}

/* The attached SBOM of src, printed. */
static int print_attached(struct cli_env *env, const char *name,
                          const struct image_source *src, struct ocib_error *err)
{
    struct registry *reg = NULL;
    _cleanup_free_ char *repo = NULL;
    json_t *idx = NULL, *e, *m = NULL;
    const char *digest = NULL;
    _cleanup_free_ char *man = NULL, *doc = NULL;
    size_t i, len;
    struct oci_digest d;
    int r = -1;

    if (referrers_of(env, name, src, &idx, &reg, &repo, err) < 0)
        return -1;
    json_array_foreach(json_object_get(idx, "manifests"), i, e)
    {
        const char *t = oci_json_str(e, "artifactType") ?: "";

        if (!digest && (!strcmp(t, SBOM_SPDX_TYPE) || !strcmp(t, SBOM_CYCLONEDX_TYPE)))
            digest = oci_json_str(e, "digest");
    }
    if (!digest) {
        ocib_error_kind_set(err, OCIB_ERR_NOT_FOUND,
                            "sbom: %s has no SBOM attached; --generate computes one", name);
        goto out;
    }
    if (oci_digest_parse(digest, &d, err) < 0)
        goto out;
    if (reg) {
        struct registry_manifest rm;

        if (registry_manifest_get(reg, repo, digest, &rm, err) < 0)
            goto out;
        man = TAKE_PTR(rm.data);
        len = rm.len;
        registry_manifest_release(&rm);
    } else {
        struct image_name n;

        if (image_name_parse(name, IMAGE_NAME_OCI, &n, err) < 0)
            goto out;
        r = oci_layout_read_blob(n.path, &d, OCI_JSON_MAX, &man, &len, err);
        if (r == 0) {
            r = -1;
            if (oci_json_parse(man, len, "artifact", &m, err) == 0 &&
                oci_digest_parse(
                    oci_json_str(json_array_get(json_object_get(m, "layers"), 0), "digest")
                        ?: "",
                    &d, err) == 0 &&
                oci_layout_read_blob(n.path, &d, 64 * 1024 * 1024, &doc, &len, err) == 0) {
                fwrite(doc, 1, len, stdout);
                printf("\n");
                r = 0;
            }
        }
        image_name_release(&n);
        goto out;
    }
    if (oci_json_parse(man, len, "artifact", &m, err) < 0 ||
        oci_digest_parse(
            oci_json_str(json_array_get(json_object_get(m, "layers"), 0), "digest") ?: "",
            &d, err) < 0 ||
        registry_blob_get_mem(reg, repo, &d, 64 * 1024 * 1024, &doc, &len, err) < 0)
        goto out;
    fwrite(doc, 1, len, stdout);
    printf("\n");
    r = 0;
out:
    json_decref(m);
    json_decref(idx);
    return r;
}

int cli_sbom(int argc, char **argv, struct ocib_error *err)
{
    struct cli_env env = {0};
    struct image_source src = {0};
    const char *name;
    bool as_json = false, gen = false;
    int r = -1;

    if (parse("sbom", cli_sbom_options, argc, argv, &env, &name, &as_json, &gen, err) < 0 ||
        image_source_open(name, NULL, env.cache, env.registries, NULL, &src, err) < 0)
        goto out;
    if (!gen) {
        r = print_attached(&env, name, &src, err);
        goto out;
    }
    {
        _cleanup_free_ char **paths = xcalloc(src.n_srcs + 1, sizeof(char *));
        struct sbom_scan scan = {0};
        struct oci_blob doc = {0};
        char created[32];
        struct sbom_subject subj = {.manifest = &src.manifest.digest,
                                    .created = created,
                                    .layers = src.img.layers,
                                    .n_layers = src.img.n_layers};

        oci_time_format(0, created);
        for (size_t i = 0; i < src.n_srcs; i++) {
            if (blob_source_ensure_local(&src.srcs[i], env.cache, env.registries, err) < 0)
                goto out;
            paths[i] = src.srcs[i].path;
        }
        if (sbom_scan_layers(paths, src.n_srcs, &scan, err) < 0)
            goto out;
        sbom_document(SBOM_SPDX, &scan, &subj, &doc);
        printf("%s\n", doc.data);
        oci_blob_release(&doc);
        sbom_scan_release(&scan);
    }
    r = 0;
out:
    image_source_release(&src);
    cli_env_release(&env);
    return r;
}
