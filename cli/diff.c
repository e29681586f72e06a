/*
 * `ocib diff A B`: compares two images for a reproducible-build audit and
 * prints the differences from the top down (manifest, config, layers), for
 * people or (--json) for programs.  Exit status as diff(1): 0 identical,
 * 1 different, 2 trouble (an input that cannot be read, a bad command line).
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "audit/diff.h"
#include "transport/source.h"
#include "oci/json.h"
#include "oci/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Differences kept and printed per group (manifest, config, each layer). */
#define DIFF_CAP 50

static const char *where_name(enum image_diff_where w)
{
    switch (w) {
    case IMAGE_DIFF_MANIFEST:
        return "manifest";
    case IMAGE_DIFF_CONFIG:
        return "config";
    default:
        return "layer";
    }
}

static void print_where(enum image_diff_where w, size_t layer)
{
    if (w == IMAGE_DIFF_LAYER)
        printf("layer %zu: ", layer);
    else
        printf("%s: ", where_name(w));
}

/* A value on one line: control characters escaped, absence said. */
static void print_value(const char *s)
{
    if (!s) {
        fputs("(absent)", stdout);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static void print_difference(const struct image_difference *x, const struct image_source *a,
                             const struct image_source *b)
{
    print_where(x->where, x->layer);
    if (x->where == IMAGE_DIFF_LAYER && !strcmp(x->field, "layer")) {
        printf("only in %s: %s", x->a ? "A" : "B", x->a ? x->a : x->b);
    } else if (x->where == IMAGE_DIFF_LAYER && !strcmp(x->field, "digest")) {
        const struct oci_layer *la = &a->img.layers[x->layer],
                               *lb = &b->img.layers[x->layer];

        printf("compressor difference, same diff_id %s: A %s (%s), B %s (%s)",
               la->diff_id.str, x->a, la->desc.media_type, x->b, lb->desc.media_type);
    } else if (!strcmp(x->field, "entry")) {
        printf("%s: only in %s (%s)", x->path, x->a ? "A" : "B", x->a ? x->a : x->b);
    } else {
        if (x->path)
            printf("%s: ", x->path);
        printf("%s: A ", x->field);
        print_value(x->a);
        fputs(", B ", stdout);
        print_value(x->b);
    }
    if (x->cause)
        printf(" (probable cause: %s)", x->cause);
    putchar('\n');
}

static bool same_group(enum image_diff_where w1, size_t l1, enum image_diff_where w2,
                       size_t l2)
{
    return w1 == w2 && (w1 != IMAGE_DIFF_LAYER || l1 == l2);
}

void cli_diff_print(const struct image_diff *d, const struct image_source *a,
                    const struct image_source *b)
{
    size_t k = 0;

    if (image_diff_identical(d)) {
        printf("identical\n");
        return;
    }
    /* A group with omitted differences kept some: its count follows the
     * group's last kept difference. */
    for (size_t i = 0; i < d->n; i++) {
        const struct image_difference *x = &d->items[i],
                                      *next = i + 1 < d->n ? x + 1 : NULL;

        print_difference(x, a, b);
        if (next && same_group(x->where, x->layer, next->where, next->layer))
            continue;
        if (k < d->n_omitted &&
            same_group(x->where, x->layer, d->omitted[k].where, d->omitted[k].layer)) {
            print_where(x->where, x->layer);
            printf("… and %zu more\n", d->omitted[k].count);
            k++;
        }
    }
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *diff_json(const struct image_diff *d)
{
    json_t *out = json_object(), *list = json_array(), *om = json_array();

    for (size_t i = 0; i < d->n; i++) {
        const struct image_difference *x = &d->items[i];
        json_t *j = json_object();

        json_object_set_new(j, "where", json_string(where_name(x->where)));
        json_object_set_new(j, "layer",
                            x->where == IMAGE_DIFF_LAYER
                                ? json_integer((json_int_t)x->layer)
                                : json_null());
        json_object_set_new(j, "path", str_or_null(x->path));
        json_object_set_new(j, "field", json_string(x->field));
        json_object_set_new(j, "a", str_or_null(x->a));
        json_object_set_new(j, "b", str_or_null(x->b));
        json_object_set_new(j, "cause", str_or_null(x->cause));
        json_array_append_new(list, j);
    }
    for (size_t i = 0; i < d->n_omitted; i++) {
        const struct image_diff_omitted *o = &d->omitted[i];

        json_array_append_new(
            om, json_pack("{s:s, s:o, s:I}", "where", where_name(o->where), "layer",
                          o->where == IMAGE_DIFF_LAYER ? json_integer((json_int_t)o->layer)
                                                       : json_null(),
                          "count", (json_int_t)o->count));
    }
    json_object_set_new(out, "identical", json_boolean(image_diff_identical(d)));
    json_object_set_new(out, "differences", list);
    json_object_set_new(out, "omitted", om);
    return out;
}

static void print_json_doc(json_t *out)
{
    char *s = json_dumps(out, JSON_INDENT(2));

    printf("%s\n", s);
    free(s);
    json_decref(out);
}

/* The platforms of an index, as "os/arch[/variant]" strings. */
static json_t *platforms_of(const struct oci_blob *index)
{
    json_t *j = json_loadb(index->data, index->len, 0, NULL), *e, *out = json_array();
    size_t i;

    json_array_foreach(json_object_get(j, "manifests"), i, e)
    {
        if (json_object_get(e, "platform")) {
            _cleanup_free_ char *d = oci_platform_describe(json_object_get(e, "platform"));

            json_array_append_new(out, json_string(d));
        }
    }
    json_decref(j);
    return out;
}

static bool listed(const json_t *list, const char *s)
{
    size_t i;
    json_t *e;

    json_array_foreach(list, i, e)
    {
        if (!strcmp(json_string_value(e), s))
            return true;
    }
    return false;
}

/* Two indexes: their images paired by platform, each pair compared; a
 * platform only one has is a difference. */
static int diff_indexes(struct cli_env *env, const char *const *names,
                        const struct image_source *a, const struct image_source *b,
                        bool as_json, bool *ret_identical, struct ocib_error *err)
{
    json_t *pa = platforms_of(&a->index_blob), *pb = platforms_of(&b->index_blob);
    json_t *all = json_copy(pa), *out = json_array(), *e;
    bool identical = true;
    size_t i;
    int r = -1;

    json_array_foreach(pb, i, e)
    {
        if (!listed(all, json_string_value(e)))
            json_array_append(all, e);
    }
    json_array_foreach(all, i, e)
    {
        const char *plat = json_string_value(e);
        struct image_source x = {0}, y = {0};
        struct image_diff d = {0};
        struct oci_platform p;
        int rc = 0;

        if (!listed(pa, plat) || !listed(pb, plat)) {
            identical = false;
            if (as_json)
                json_array_append_new(out,
                                      json_pack("{s:s, s:s}", "platform", plat, "only_in",
                                                listed(pa, plat) ? "A" : "B"));
            else
                printf("== %s: only in %s\n", plat, listed(pa, plat) ? "A" : "B");
            continue;
        }
        rc = oci_platform_parse(plat, &p, err);
        if (rc == 0)
            rc =
                image_source_open(names[0], NULL, env->cache, env->registries, &p, &x, err);
        if (rc == 0)
            rc =
                image_source_open(names[1], NULL, env->cache, env->registries, &p, &y, err);
        if (rc == 0)
            rc = image_diff_compare(&x, &y, env->cache, env->registries, DIFF_CAP, &d, err);
        if (rc == 0) {
            identical &= image_diff_identical(&d);
            if (as_json) {
                json_t *j = diff_json(&d);

                json_object_set_new(j, "platform", json_string(plat));
                json_array_append_new(out, j);
            } else {
                printf("== %s\n", plat);
                cli_diff_print(&d, &x, &y);
            }
        }
        image_diff_release(&d);
        image_source_release(&x);
        image_source_release(&y);
        if (rc < 0) {
            ocib_error_wrap(err, "diff %s %s, platform %s", names[0], names[1], plat);
            goto out;
        }
    }
    if (as_json)
        print_json_doc(json_pack("{s:b, s:O}", "identical", identical, "platforms", out));
    *ret_identical = identical;
    r = 0;
out:
    json_decref(pa);
    json_decref(pb);
    json_decref(all);
    json_decref(out);
    return r;
}

const struct cli_option cli_diff_options[] = {
    {CLI_OPT_JSON_ID, "--json", NULL, NULL, "print the differences as one JSON document"},
    {CLI_OPT_PLATFORM_ID, "--platform", NULL, "OS/ARCH[/VARIANT]",
     "the image of an index to compare (default: the host's)"},
    CLI_OPT_REGISTRY,
    {0, NULL, NULL, NULL, NULL},
};

static int run(int argc, char **argv, bool *ret_identical, struct ocib_error *err)
{
    struct image_source a = {0}, b = {0};
    struct image_diff d = {0};
    struct cli_env env = {0};
    struct cli_image_args args;
    const struct oci_platform *p;
    const char *const *names = args.names;
    int r = -1;

    if (cli_image_args_parse("diff", cli_diff_options, 2, argc, argv, &env, &args, err) < 0)
        goto out;
    if (args.n != 2) {
        ocib_error_usage(err, "diff: which two images? see 'ocib help diff'");
        goto out;
    }
    p = args.has_platform ? &args.platform : NULL;
    if (cli_env_open(&env, err) < 0)
        goto out;
    if (image_source_open(names[0], NULL, env.cache, env.registries, p, &a, err) < 0 ||
        image_source_open(names[1], NULL, env.cache, env.registries, p, &b, err) < 0)
        goto out;
    if (!p && a.index.str[0] && b.index.str[0] && a.index_blob.data && b.index_blob.data) {
        r = diff_indexes(&env, names, &a, &b, args.as_json, ret_identical, err);
        goto out;
    }
    if (image_diff_compare(&a, &b, env.cache, env.registries, DIFF_CAP, &d, err) < 0) {
        ocib_error_wrap(err, "diff %s %s", names[0], names[1]);
        goto out;
    }
    if (args.as_json)
        print_json_doc(diff_json(&d));
    else
        cli_diff_print(&d, &a, &b);
    *ret_identical = image_diff_identical(&d);
    r = 0;
out:
    image_diff_release(&d);
    image_source_release(&a);
    image_source_release(&b);
    cli_env_release(&env);
    return r;
}

int cli_diff(int argc, char **argv, struct ocib_error *err)
{
    bool identical = false;

    if (run(argc, argv, &identical, err) < 0) {
        err->code = OCIB_EXIT_USAGE; /* diff(1): 2 is trouble, whatever kind */
        return -1;
    }
    if (identical)
        return 0;
    /* Different is no error, yet its status is 1: a failure without a
     * message, which main() does not print. */
    ocib_error_clear(err);
    err->code = OCIB_EXIT_FAILURE;
    return -1;
}
