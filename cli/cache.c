/*
 * `ocib cache du | prune [--keep-bytes N] | verify`.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cache/blobs.h"
#include "cache/maint.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "N", "NK", "NM", "NG" (optionally followed by "B" or "iB"), in bytes. */
static int parse_bytes(const char *s, uint64_t *ret, struct ocib_error *err)
{
    static const char units[] = "kmg";
    const char *u;
    char *end;
    unsigned long long n;
    unsigned shift = 0;

    if (!isdigit((unsigned char)*s))
        return ocib_error_usage(err, "--keep-bytes: invalid size '%s'", s);
    errno = 0;
    n = strtoull(s, &end, 10);
    u = *end ? strchr(units, tolower((unsigned char)*end)) : NULL;
    if (u) {
        shift = 10 * (unsigned)(u - units + 1);
        end++;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end)
        return ocib_error_usage(err, "--keep-bytes: invalid size '%s' (e.g. 500M, 2G)", s);
    if (errno == ERANGE || n > (UINT64_MAX >> shift))
        return ocib_error_usage(err, "--keep-bytes: size '%s' is too large", s);
    *ret = (uint64_t)n << shift;
    return 0;
}

static void mib(uint64_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%.1f MiB", (double)n / (1024.0 * 1024.0));
}

static int show_usage(struct cache *c, bool json, struct ocib_error *err)
{
    struct cache_usage u;
    char a[32], b[32], d[32], e[32], f[32];

    if (cache_usage(c, &u, err) < 0)
        return -1;
    if (json) {
        printf("{\"blobs\":{\"bytes\":%llu,\"count\":%llu},\"keys\":{\"bytes\":%llu,"
               "\"count\":%llu},\"records\":{\"bytes\":%llu},\"stat\":{\"bytes\":%llu},"
               "\"tmp\":{\"bytes\":%llu,\"count\":%llu},\"rootfs\":{\"bytes\":%llu}}\n",
               (unsigned long long)u.blob_bytes, (unsigned long long)u.blob_count,
               (unsigned long long)u.key_bytes, (unsigned long long)u.key_count,
               (unsigned long long)u.record_bytes, (unsigned long long)u.stat_bytes,
               (unsigned long long)u.tmp_bytes, (unsigned long long)u.tmp_count,
               (unsigned long long)u.rootfs_bytes);
    } else {
        mib(u.blob_bytes, a, sizeof(a));
        mib(u.key_bytes, b, sizeof(b));
        mib(u.record_bytes, d, sizeof(d));
        mib(u.stat_bytes, e, sizeof(e));
        mib(u.tmp_bytes, f, sizeof(f));
        printf("cache %s\n", c->dir);
        printf("  blobs     %12s  %llu blobs\n", a, (unsigned long long)u.blob_count);
        printf("  keys      %12s  %llu layer keys\n", b, (unsigned long long)u.key_count);
        printf("  records   %12s\n", d);
        printf("  stat      %12s\n", e);
        printf("  tmp       %12s  %llu files\n", f, (unsigned long long)u.tmp_count);
        mib(u.rootfs_bytes, f, sizeof(f));
        printf("  rootfs    %12s  kept stage roots (shared files counted in each)\n", f);
    }
    return 0;
}

static int prune(struct cache *c, uint64_t keep, struct ocib_error *err)
{
    struct cache_prune_result pr;
    char a[32], b[32];

    if (cache_prune(c, keep, &pr, err) < 0)
        return -1;
    mib(pr.removed_bytes, a, sizeof(a));
    mib(pr.kept_bytes, b, sizeof(b));
    printf("removed %llu blobs (%s); kept %s; %llu in use by running builds\n",
           (unsigned long long)pr.removed_count, a, b, (unsigned long long)pr.in_use_count);
    return 0;
}

static int verify(struct cache *c, struct ocib_error *err)
{
    struct cache_verify_result vr;

    if (cache_verify(c, &vr, err) < 0)
        return -1;
    printf("checked %llu blobs: %llu bad (removed), %llu layer keys dropped\n",
           (unsigned long long)vr.checked, (unsigned long long)vr.bad,
           (unsigned long long)vr.orphan_keys);
    if (vr.bad) {
        ocib_error_set(err,
                       "cache %s: %llu corrupt blobs removed (first: %s); the next "
                       "build rebuilds or refetches them",
                       c->dir, (unsigned long long)vr.bad, vr.first_bad);
        return -1;
    }
    return 0;
}

enum { OPT_CACHE_DIR = 1, OPT_KEEP_BYTES, OPT_JSON };

const struct cli_option cli_cache_options[] = {
    {OPT_CACHE_DIR, "--cache-dir", NULL, "DIR",
     "the cache (default: $OCIB_CACHE_DIR, else ~/.cache/ocib)"},
    {OPT_JSON, "--json", NULL, NULL, "du: print the usage as JSON"},
    {OPT_KEEP_BYTES, "--keep-bytes", NULL, "N[K|M|G]",
     "prune: keep the most recently used blobs up to N bytes (default: 0)"},
    {0, NULL, NULL, NULL, NULL},
};

int cli_cache(int argc, char **argv, struct ocib_error *err)
{
    _cleanup_free_ char *dir = NULL;
    const char *verb = NULL, *cache_dir = NULL, *v;
    uint64_t keep = 0;
    bool json = false, operands_only = false;
    struct cache c;
    int r = -1;

    for (int i = 1; i < argc; i++) {
        int id =
            cli_next("cache", cli_cache_options, argc, argv, &i, &operands_only, &v, err);

        switch (id) {
        case OPT_CACHE_DIR:
            cache_dir = v;
            break;
        case OPT_KEEP_BYTES:
            if (parse_bytes(v, &keep, err) < 0)
                return -1;
            break;
        case OPT_JSON:
            json = true;
            break;
        case CLI_OPERAND:
            if (verb)
                return ocib_error_usage(err,
                                        "cache: unexpected '%s'; see 'ocib help cache'", v);
            verb = v;
            break;
        case CLI_SKIP:
            break;
        default:
            return -1;
        }
    }
    if (!verb || (strcmp(verb, "du") && strcmp(verb, "prune") && strcmp(verb, "verify")))
        return ocib_error_usage(err, "cache: expected du, prune or verify");
    if (cli_cache_dir(cache_dir, &dir, err) < 0 || cache_open(&c, dir, err) < 0)
        return -1;
    if (!strcmp(verb, "du"))
        r = show_usage(&c, json, err);
    else if (!strcmp(verb, "prune"))
        r = prune(&c, keep, err);
    else
        r = verify(&c, err);
    cache_release(&c);
    return r;
}
