/*
 * Registry header parsers; see headers.h.
 */
#include "registry/headers.h"
#include "base/xalloc.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads digits at *p into *ret (no sign, no overflow past max).  Returns the
 * number of digits read, 0 when none or on overflow. */
static size_t read_digits(const char **p, int64_t max, int64_t *ret)
{
    const char *s = *p;
    int64_t v = 0;

    while (*s >= '0' && *s <= '9') {
        int d = *s - '0';

        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
        s++;
    }
    if (s == *p)
        return 0;
    *ret = v;
    *p = s;
    return 1;
}

int registry_parse_count(const char *value, int64_t max, int64_t *ret)
{
    const char *p = value;
    int64_t v;

    if (!value || !read_digits(&p, max, &v) || *p)
        return -1;
    *ret = v;
    return 0;
}

int registry_parse_range(const char *value, int64_t *next_offset)
{
    const char *p = value;
    int64_t last;

    if (!value)
        return -1;
    if (!strncasecmp(p, "bytes=", 6))
        p += 6;
    if (p[0] != '0' || p[1] != '-')
        return -1;
    p += 2;
    if (!strcmp(p, "-1")) {
        *next_offset = 0;
        return 0;
    }
    if (p[0] == '0' && p[1]) /* one spelling per offset: no leading zeros */
        return -1;
    if (!read_digits(&p, INT64_MAX - 1, &last) || *p)
        return -1;
    *next_offset = last == 0 ? -1 : last + 1;
    return 0;
}

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* Reads a token or a quoted string at *p into a new string. */
static char *read_value(const char **p)
{
    const char *s = *p;
    char *out, *o;

    if (*s != '"') {
        while (is_token_char(*s) || *s == '/' || *s == ':' || *s == '=')
            s++;
        out = xstrndup(*p, (size_t)(s - *p));
        *p = s;
        return out;
    }
    out = o = xmalloc(strlen(s));
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        *o++ = *s;
    }
    if (*s != '"') {
        free(out);
        return NULL;
    }
    *o = '\0';
    *p = s + 1;
    return out;
}

int registry_parse_challenge(const char *value, char **scheme, char **realm, char **service,
                             char **scope)
{
    const char *p = value, *start;
    char *sch, *params[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"realm", "service", "scope"};

    if (!value)
        return -1;
    skip_space(&p);
    for (start = p; is_token_char(*p); p++)
        ;
    if (p == start || (*p && *p != ' ' && *p != '\t'))
        return -1;
    sch = xstrndup(start, (size_t)(p - start));
    for (;;) {
        const char *name;
        size_t name_len;
        char *v;
        int slot = -1;

        skip_space(&p);
        while (*p == ',') {
            p++;
            skip_space(&p);
        }
        if (!*p)
            break;
        for (name = p; is_token_char(*p); p++)
            ;
        name_len = (size_t)(p - name);
        skip_space(&p);
        if (!name_len || *p != '=')
            goto bad;
        p++;
        skip_space(&p);
        v = read_value(&p);
        if (!v)
            goto bad;
        for (int i = 0; i < 3; i++)
            if (strlen(names[i]) == name_len && !strncasecmp(name, names[i], name_len))
                slot = i;
        if (slot >= 0) {
            free(params[slot]);
            params[slot] = v;
        } else {
            free(v);
        }
        skip_space(&p);
        if (*p && *p != ',')
            goto bad;
    }
    *scheme = sch;
    *realm = params[0];
    *service = params[1];
    *scope = params[2];
    return 0;
bad:
    free(sch);
    for (int i = 0; i < 3; i++)
        free(params[i]);
    return -1;
}

int registry_parse_retry_after(const char *value, time_t now, long cap_ms, long *ms)
{
    int64_t secs;
    time_t when;

    if (!value)
        return -1;
    if (registry_parse_count(value, INT64_MAX, &secs) == 0) {
        *ms = secs > cap_ms / 1000 ? cap_ms : (long)secs * 1000;
        return 0;
    }
    when = curl_getdate(value, NULL);
    if (when < 0)
        return -1;
    if (when <= now)
        *ms = 0;
    else
        *ms = when - now > cap_ms / 1000 ? cap_ms : (long)(when - now) * 1000;
    return 0;
}
