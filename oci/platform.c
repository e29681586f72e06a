/*
 * Platform parsing and matching; see platform.h.
 */
#include "oci/platform.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "oci/json.h"
#include "oci/mediatype.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static const char *arch_alias(const char *a)
{
    if (!strcmp(a, "x86_64") || !strcmp(a, "x86-64"))
        return "amd64";
    if (!strcmp(a, "aarch64"))
        return "arm64";
    if (!strcmp(a, "i386") || !strcmp(a, "i686"))
        return "386";
    return a;
}

static void normalise(struct oci_platform *p)
{
    if (!strcmp(p->arch, "arm64") && !strcmp(p->variant, "v8"))
        p->variant[0] = '\0';
}

int oci_platform_parse(const char *s, struct oci_platform *ret, struct ocib_error *err)
{
    _cleanup_free_ char *copy = xstrdup(s);
    struct oci_platform p = {"", "", ""};
    char *os, *arch, *variant, *save = NULL;

    os = strtok_r(copy, "/", &save);
    arch = strtok_r(NULL, "/", &save);
    variant = strtok_r(NULL, "/", &save);
    if (!os || !arch || strtok_r(NULL, "/", &save) || strlen(os) >= sizeof(p.os) ||
        strlen(arch) >= sizeof(p.arch) || (variant && strlen(variant) >= sizeof(p.variant)))
        return ocib_error_usage(err, "invalid platform '%s': expected os/arch[/variant]",
                                s);
    snprintf(p.os, sizeof(p.os), "%s", os);
    snprintf(p.arch, sizeof(p.arch), "%s", arch_alias(arch));
    if (variant)
        snprintf(p.variant, sizeof(p.variant), "%s", variant);
    normalise(&p);
    *ret = p;
    return 0;
}

void oci_platform_host(struct oci_platform *ret)
{
    struct utsname u;

    memset(ret, 0, sizeof(*ret));
    snprintf(ret->os, sizeof(ret->os), "linux");
    if (uname(&u) < 0)
        snprintf(u.machine, sizeof(u.machine), "x86_64");
    if (!strncmp(u.machine, "armv7", 5)) {
        snprintf(ret->arch, sizeof(ret->arch), "arm");
        snprintf(ret->variant, sizeof(ret->variant), "v7");
        return;
    }
    snprintf(ret->arch, sizeof(ret->arch), "%s", arch_alias(u.machine));
}

void oci_platform_format(const struct oci_platform *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

bool oci_platform_match_json(const struct oci_platform *given, const json_t *platform)
{
    struct oci_platform p = *given, q = {"", "", ""};
    const char *os = json_string_value(json_object_get(platform, "os"));
    const char *arch = json_string_value(json_object_get(platform, "architecture"));
    const char *variant = json_string_value(json_object_get(platform, "variant"));

    if (!os || !arch || strlen(os) >= sizeof(q.os) || strlen(arch) >= sizeof(q.arch))
        return false;
    snprintf(q.os, sizeof(q.os), "%s", os);
    snprintf(q.arch, sizeof(q.arch), "%s", arch_alias(arch));
    if (variant && strlen(variant) < sizeof(q.variant))
        snprintf(q.variant, sizeof(q.variant), "%s", variant);
    /* Both sides normalised, so a platform made by hand (arm64/v8) matches
     * as one parsed from text does. */
    normalise(&p);
    normalise(&q);
    return !strcmp(p.os, q.os) && !strcmp(p.arch, q.arch) &&
           (!p.variant[0] || !strcmp(p.variant, q.variant));
}

char *oci_platform_describe(const json_t *platform)
{
    const char *variant = oci_json_str(platform, "variant");

    return xasprintf("%s/%s%s%s", oci_json_str(platform, "os") ?: "?",
                     oci_json_str(platform, "architecture") ?: "?", variant ? "/" : "",
                     variant ?: "");
}

const json_t *oci_index_pick(const json_t *manifests, const struct oci_platform *p,
                             char **ret_available)
{
    _cleanup_strbuf_ struct strbuf avail = STRBUF_INIT;

    for (size_t i = 0; i < json_array_size(manifests); i++) {
        const json_t *e = json_array_get(manifests, i);
        const json_t *plat = json_object_get(e, "platform");
        const char *mt = oci_json_str(e, "mediaType");

        if (oci_platform_match_json(p, plat) && (!mt || oci_mt_is_manifest(mt)))
            return e;
        if (plat && ret_available) {
            _cleanup_free_ char *d = oci_platform_describe(plat);

            strbuf_addf(&avail, "%s%s", avail.len ? ", " : "", d);
        }
    }
    if (ret_available)
        *ret_available = xstrdup(avail.len ? strbuf_str(&avail) : "none");
    return NULL;
}
