/*
 * Reading the package databases the layer walk kept (see pkgdb.h): dpkg's
 * status (and distroless status.d/) with licenses from DEP-5 copyright
 * files, apk's installed database, and npm package.json files with the
 * integrity their package-lock.json records.
 */
#include "sbom/pkgdb.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

char *sbom_purl_encode(const char *s)
{
    struct strbuf sb = STRBUF_INIT;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr(".-_~", *p))
            strbuf_addch(&sb, (char)*p);
        else
            strbuf_addf(&sb, "%%%02X", *p);
    return strbuf_detach(&sb);
}

static void add(struct sbom_scan *s, const struct sbom_package *p)
{
    XGROW(s->pkgs, s->alloc, s->n + 1);
    s->pkgs[s->n++] = *p;
}

/* A stanza's fields ("Name: value" lines, continuations folded away). */
struct stanza {
    const char *start, *end;
};

/* The value of field in the stanza (its first line, trimmed), or NULL. */
static char *field(const struct stanza *st, const char *name, char sep)
{
    size_t nl = strlen(name);

    for (const char *l = st->start; l < st->end;) {
        const char *eol = memchr(l, '\n', (size_t)(st->end - l)) ?: st->end;

        if ((size_t)(eol - l) > nl && !strncmp(l, name, nl) && l[nl] == sep) {
            const char *v = l + nl + 1, *e = eol;

            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
            return xstrndup(v, (size_t)(e - v));
        }
        l = eol + 1;
    }
    return NULL;
}

/* The next stanza of data from *pos (blank-line separated); false at the end. */
static bool next_stanza(const char *data, size_t len, size_t *pos, struct stanza *ret)
{
    const char *p = data + *pos, *end = data + len;

    while (p < end && (*p == '\n' || *p == '\r'))
        p++;
    if (p >= end)
        return false;
    ret->start = p;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (!nl) {
            p = end;
            break;
        }
        p = nl + 1;
        if (p >= end || *p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
            break;
    }
    ret->end = p;
    *pos = (size_t)(p - data);
    return true;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const struct sbom_file *find_file(const struct sbom_files *f, const char *path)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->files[i].path, path))
            return &f->files[i];
    return NULL;
}

char *sbom_dep5_licenses(const char *data)
{
    struct stanza st;
    size_t pos = 0, len = strlen(data), n = 0;
    char *names[256];
    struct strbuf sb = STRBUF_INIT;

    if (strncmp(data, "Format:", 7) || !strstr(data, "copyright-format"))
        return NULL;
    while (next_stanza(data, len, &pos, &st) && n < 256) {
        _cleanup_free_ char *files = field(&st, "Files", ':');
        char *lic = files ? field(&st, "License", ':') : NULL;
        bool dup = false;

        if (!lic || !*lic) {
            free(lic);
            continue;
        }
        for (size_t i = 0; i < n && !dup; i++)
            dup = !strcmp(names[i], lic);
        if (dup)
            free(lic);
        else
            names[n++] = lic;
    }
    qsort(names, n, sizeof(*names), str_cmp);
    for (size_t i = 0; i < n; i++) {
        bool compound = strchr(names[i], ' ') != NULL;

        strbuf_addf(&sb, "%s%s%s%s", i ? " AND " : "", compound && n > 1 ? "(" : "",
                    names[i], compound && n > 1 ? ")" : "");
        free(names[i]);
    }
    if (!n) {
        strbuf_release(&sb);
        return NULL;
    }
    return strbuf_detach(&sb);
}

/* The dpkg stanzas of data (from path) that are installed. */
static void read_dpkg(const struct sbom_files *f, const struct sbom_file *db,
                      struct sbom_scan *s)
{
    struct stanza st;
    size_t pos = 0;

    while (next_stanza(db->data, db->len, &pos, &st)) {
        _cleanup_free_ char *status = field(&st, "Status", ':');
        struct sbom_package p = {.kind = SBOM_DEB};
        _cleanup_free_ char *copyright = NULL;
        _cleanup_free_ char *name_enc = NULL, *ver_enc = NULL;
        const struct sbom_file *c;

        /* status.d/ files (distroless) have no Status: they are installed. */
        if (status && !strstr(status, " installed"))
            continue;
        p.name = field(&st, "Package", ':');
        p.version = field(&st, "Version", ':');
        if (!p.name || !p.version) {
            free(p.name);
            free(p.version);
            continue;
        }
        p.arch = field(&st, "Architecture", ':');
        p.source = field(&st, "Source", ':');
        copyright = xasprintf("usr/share/doc/%s/copyright", p.name);
        c = find_file(f, copyright);
        if (c)
            p.license = sbom_dep5_licenses(c->data);
        name_enc = sbom_purl_encode(p.name);
        ver_enc = sbom_purl_encode(p.version);
        p.purl = xasprintf("pkg:deb/debian/%s@%s%s%s", name_enc, ver_enc,
                           p.arch ? "?arch=" : "", p.arch ?: "");
        p.path = xstrdup(db->path);
        add(s, &p);
    }
}

/* apk's installed database: "P:name", "V:version", "A:arch", "L:license". */
static void read_apk(const struct sbom_file *db, struct sbom_scan *s)
{
    struct stanza st;
    size_t pos = 0;

    while (next_stanza(db->data, db->len, &pos, &st)) {
        struct sbom_package p = {.kind = SBOM_APK};
        _cleanup_free_ char *name_enc = NULL, *ver_enc = NULL;

        p.name = field(&st, "P", ':');
        p.version = field(&st, "V", ':');
        if (!p.name || !p.version) {
            free(p.name);
            free(p.version);
            continue;
        }
        p.arch = field(&st, "A", ':');
        p.license = field(&st, "L", ':');
        p.source = field(&st, "o", ':');
        name_enc = sbom_purl_encode(p.name);
        ver_enc = sbom_purl_encode(p.version);
        p.purl = xasprintf("pkg:apk/alpine/%s@%s%s%s", name_enc, ver_enc,
                           p.arch ? "?arch=" : "", p.arch ?: "");
        p.path = xstrdup(db->path);
        add(s, &p);
    }
}

/* A package.json's license: "license" as a string or {"type"}, else the
 * old "licenses" list joined with OR. */
static char *npm_license(const json_t *pj)
{
    const json_t *l = json_object_get(pj, "license"), *e;
    struct strbuf sb = STRBUF_INIT;
    size_t i;

    if (json_is_string(l))
        return xstrdup(json_string_value(l));
    if (json_is_string(json_object_get(l, "type")))
        return xstrdup(json_string_value(json_object_get(l, "type")));
    json_array_foreach(json_object_get(pj, "licenses"), i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));

        if (t)
            strbuf_addf(&sb, "%s%s", sb.len ? " OR " : "", t);
    }
    if (!sb.len) {
        strbuf_release(&sb);
        return NULL;
    }
    return strbuf_detach(&sb);
}

/* The integrity a lock in the image records for the package in directory
 * dir (at version), or NULL.  A lock at B/package-lock.json or
 * B/node_modules/.package-lock.json names it "dir relative to B". */
static char *npm_integrity(json_t *const *locks, char *const *bases, size_t n,
                           const char *dir, const char *version)
{
    for (size_t i = 0; i < n; i++) {
        size_t bl = strlen(bases[i]);
        const char *key;
        const json_t *e;

        if (bl && (strncmp(dir, bases[i], bl) || dir[bl] != '/'))
            continue;
        key = dir + (bl ? bl + 1 : 0);
        e = json_object_get(json_object_get(locks[i], "packages"), key);
        if (json_is_string(json_object_get(e, "integrity")) &&
            !strcmp(json_string_value(json_object_get(e, "version")) ?: "", version))
            return xstrdup(json_string_value(json_object_get(e, "integrity")));
    }
    return NULL;
}

static void read_npm(const struct sbom_files *f, struct sbom_scan *s)
{
    json_t **locks = xcalloc(f->n + 1, sizeof(*locks));
    char **bases = xcalloc(f->n + 1, sizeof(*bases));
    size_t nl = 0;

    for (size_t i = 0; i < f->n; i++) {
        const char *p = f->files[i].path, *b = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
        size_t cut;
        json_t *j;

        if (strcmp(b, "package-lock.json") && strcmp(b, ".package-lock.json"))
            continue;
        j = json_loadb(f->files[i].data, f->files[i].len, 0, NULL);
        if (!j)
            continue;
        cut = (size_t)(b - p) - (strcmp(b, ".package-lock.json") ? 0 : 13);
        locks[nl] = j;
        bases[nl++] = xstrndup(p, cut ? cut - 1 : 0);
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct sbom_file *pf = &f->files[i];
        size_t len = strlen(pf->path);
        struct sbom_package p = {.kind = SBOM_NPM};
        _cleanup_free_ char *dir = NULL, *name_enc = NULL, *ver_enc = NULL;
        const char *name, *version;
        json_t *j;

        if (len < 13 || strcmp(pf->path + len - 13, "/package.json"))
            continue;
        j = json_loadb(pf->data, pf->len, 0, NULL);
        name = json_string_value(json_object_get(j, "name"));
        version = json_string_value(json_object_get(j, "version"));
        if (!name || !version || !*name || !*version) {
            json_decref(j);
            continue;
        }
        dir = xstrndup(pf->path, len - 13);
        p.name = xstrdup(name);
        p.version = xstrdup(version);
        p.license = npm_license(j);
        p.integrity = npm_integrity(locks, bases, nl, dir, version);
        name_enc = sbom_purl_encode(name);
        ver_enc = sbom_purl_encode(version);
        /* A scoped name keeps its "/" between namespace and name. */
        if (name[0] == '@' && strchr(name, '/')) {
            _cleanup_free_ char *ns = xstrndup(name, (size_t)(strchr(name, '/') - name));
            _cleanup_free_ char *ns_enc = sbom_purl_encode(ns);
            _cleanup_free_ char *nm_enc = sbom_purl_encode(strchr(name, '/') + 1);

            p.purl = xasprintf("pkg:npm/%s/%s@%s", ns_enc, nm_enc, ver_enc);
        } else {
            p.purl = xasprintf("pkg:npm/%s@%s", name_enc, ver_enc);
        }
        p.path = xstrdup(pf->path);
        json_decref(j);
        add(s, &p);
    }
    for (size_t i = 0; i < nl; i++) {
        json_decref(locks[i]);
        free(bases[i]);
    }
    free(locks);
    free(bases);
}

void sbom_pkgdb_read(const struct sbom_files *f, struct sbom_scan *s)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *p = f->files[i].path;

        if (!strcmp(p, "var/lib/dpkg/status") || !strncmp(p, "var/lib/dpkg/status.d/", 22))
            read_dpkg(f, &f->files[i], s);
        else if (!strcmp(p, "lib/apk/db/installed"))
            read_apk(&f->files[i], s);
    }
    read_npm(f, s);
}
