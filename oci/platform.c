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

/* The operating systems and architectures images are built for (Go's
 * GOOS/GOARCH pairs, which the OCI image spec refers to). */
static const struct {
    const char *os;
    const char *arches;
} known[] = {
    {"linux", " 386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le "
              "riscv64 s390x "},
    {"windows", " 386 amd64 arm arm64 "},
    {"darwin", " amd64 arm64 "},
    {"freebsd", " 386 amd64 arm arm64 riscv64 "},
    {"netbsd", " 386 amd64 arm arm64 "},
    {"openbsd", " 386 amd64 arm arm64 ppc64 riscv64 "},
    {"dragonfly", " amd64 "},
    {"illumos", " amd64 "},
    {"solaris", " amd64 "},
    {"aix", " ppc64 "},
    {"plan9", " 386 amd64 arm "},
    {"wasip1", " wasm "},
};

static bool listed(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if (p[-1] == ' ' && p[n] == ' ')
            return true;
    return false;
}

/* arm v5-v8, arm64 v8[.N] and v9[.N], amd64's micro-architecture levels. */
static bool variant_ok(const char *arch, const char *v)
{
    if (!*v)
        return true;
    if (!strcmp(arch, "arm"))
        return listed(" v5 v6 v7 v8 ", v);
    if (!strcmp(arch, "arm64"))
        return (v[0] == 'v' && (v[1] == '8' || v[1] == '9') &&
                (!v[2] || (v[2] == '.' && v[3] >= '0' && v[3] <= '9' && !v[4])));
    if (!strcmp(arch, "amd64"))
        return listed(" v1 v2 v3 v4 ", v);
    return false;
}

/* Refuses a platform no image is built for, naming what is known. */
static int check_known(const char *s, const struct oci_platform *p, struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf oses = STRBUF_INIT;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(known[i].os, p->os)) {
            strbuf_addf(&oses, "%s%s", i ? ", " : "", known[i].os);
            continue;
        }
        if (!listed(known[i].arches, p->arch)) {
            _cleanup_strbuf_ struct strbuf arches = STRBUF_INIT;
            _cleanup_free_ char *words = xstrdup(known[i].arches);
            char *save = NULL;

            for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
                strbuf_addf(&arches, "%s%s", arches.len ? ", " : "", w);
            return ocib_error_usage(err,
                                    "invalid platform '%s': %s has no architecture %s "
                                    "(known: %s)",
                                    s, p->os, p->arch, strbuf_str(&arches));
        }
        if (!variant_ok(p->arch, p->variant))
            return ocib_error_usage(err, "invalid platform '%s': %s has no variant %s", s,
                                    p->arch, p->variant);
        return 0;
    }
    return ocib_error_usage(err,
                            "invalid platform '%s': unknown operating system %s "
                            "(known: %s)",
                            s, p->os, strbuf_str(&oses));
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
    if (check_known(s, &p, err) < 0)
        return -1;
    *ret = p;
    return 0;
}

int oci_platform_list_parse(const char *s, struct oci_platform **ret, size_t *ret_n,
                            struct ocib_error *err)
{
    _cleanup_free_ char *copy = xstrdup(s);
    struct oci_platform *list = NULL;
    size_t n = 0, alloc = 0;
    char *save = NULL;

    for (char *one = strtok_r(copy, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
        struct oci_platform p;
        char a[96], b[96];

        while (*one == ' ')
            one++;
        if (oci_platform_parse(one, &p, err) < 0) {
            free(list);
            return -1;
        }
        oci_platform_format(&p, a, sizeof(a));
        for (size_t i = 0; i < n; i++) {
            oci_platform_format(&list[i], b, sizeof(b));
            if (!strcmp(a, b)) {
                free(list);
                return ocib_error_usage(err, "platform '%s' is listed twice in '%s'", a, s);
            }
        }
        XGROW(list, alloc, n + 1);
        list[n++] = p;
    }
    if (!n)
        return ocib_error_usage(err,
                                "invalid platform list '%s': expected "
                                "os/arch[/variant][,os/arch[/variant]...]",
                                s);
    *ret = list;
    *ret_n = n;
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
