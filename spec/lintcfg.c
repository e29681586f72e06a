/*
 * The spec's "lint" key: which findings of `ocib lint` the project
 * silences, and the image's size budget.  The rules themselves live in
 * audit/ (they read images and Kubernetes YAML); here the key is only
 * checked and typed, with positions for messages.
 */
#include "spec/check.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "500MB", "1.5GB", "300MiB", "1024" (bytes) into bytes; -1 when malformed. */
long long spec_size_parse(const char *s)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"", 1},         {"B", 1},           {"kB", 1e3},
                 {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},
                 {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
    const char *p = s;
    char *end;
    double v;

    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || end != p)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++)
        if (!strcmp(p, units[i].unit) && v * units[i].mult < 9e18)
            return (long long)(v * units[i].mult + 0.5);
    return -1;
}

/* A rule id as `ocib lint` prints them: lowercase words joined by '-'. */
static bool rule_id_ok(const char *s)
{
    if (!islower((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

int spec_parse_lint(struct vctx *v, const json_t *root)
{
    static const char *const keys[] = {"ignore", "max_size", NULL};
    const json_t *l = json_object_get(root, "lint"), *x;
    struct spec_lint *out = &v->spec->lint;
    size_t i;

    out->max_size = -1;
    if (!l)
        return 0;
    _cleanup_at_ struct at a = spec_at_key(v, root, "", "lint");
    if (spec_expect_type(v, &a, l, JSON_OBJECT, "an object") < 0 ||
        spec_check_keys(v, l, "lint", keys) < 0)
        return -1;
    x = json_object_get(l, "ignore");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, l, "lint", "ignore");
        json_t *id;

        if (spec_expect_string_list(v, &b, x, false, true) < 0)
            return -1;
        json_array_foreach(x, i, id)
        {
            if (!rule_id_ok(json_string_value(id))) {
                _cleanup_at_ struct at c = spec_at_index(v, x, "lint.ignore", i);

                return spec_fail(v, &c, "'%s' is not a rule id (see 'ocib lint --rules')",
                                 json_string_value(id));
            }
        }
        out->ignore = spec_strv_dup(x, &out->n_ignore);
    }
    x = json_object_get(l, "max_size");
    if (x) {
        _cleanup_at_ struct at b = spec_at_key(v, l, "lint", "max_size");

        if (json_is_integer(x) && json_integer_value(x) >= 0)
            out->max_size = json_integer_value(x);
        else if (json_is_string(x))
            out->max_size = spec_size_parse(json_string_value(x));
        if (out->max_size < 0)
            return spec_fail(v, &b,
                             "expected a size such as \"500MB\", \"1.5GB\" or \"300MiB\", "
                             "or a number of bytes");
    }
    return 0;
}
