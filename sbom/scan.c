/*
 * The layer walk of sbom_scan_layers (see scan.h): which files are kept,
 * how whiteouts and opaque directories decide over lower layers, and the
 * scan's order and cache form.  The databases themselves are read by
 * pkgdb.c.
 */
#include "sbom/scan.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "layers/tar_reader.h"
#include "sbom/pkgdb.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *sbom_kind_name(enum sbom_kind k)
{
    return k == SBOM_DEB ? "deb" : k == SBOM_APK ? "apk" : "npm";
}

/* The last path component of p. */
static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');

    return s ? s + 1 : p;
}

/* True when p ends ".../node_modules/NAME/package.json" or
 * ".../node_modules/@SCOPE/NAME/package.json" (a package's root). */
static bool is_npm_package_json(const char *p)
{
    const char *c[5] = {NULL}; /* the last components' starts, c[0] the last */
    size_t n = 0;

    for (const char *s = p + strlen(p); n < 5;) {
        while (s > p && s[-1] != '/')
            s--;
        c[n++] = s;
        if (s == p)
            break;
        s--;
    }
    if (n < 3 || strcmp(c[0], "package.json") || *c[1] == '@')
        return false;
    if (!strncmp(c[2], "node_modules/", 13))
        return true;
    return n >= 4 && *c[2] == '@' && !strncmp(c[3], "node_modules/", 13);
}

/* The files the scan keeps. */
static bool wanted(const char *p, int64_t size, void *opaque)
{
    (void)opaque;
    (void)size;
    if (!strcmp(p, "var/lib/dpkg/status") || !strcmp(p, "lib/apk/db/installed"))
        return true;
    if (!strncmp(p, "var/lib/dpkg/status.d/", 22) && !strchr(p + 22, '/'))
        return true;
    if (!strncmp(p, "usr/share/doc/", 14)) {
        const char *rest = strchr(p + 14, '/');

        return rest && !strcmp(rest, "/copyright");
    }
    if (!strcmp(base_name(p), "package-lock.json"))
        return !strstr(p, "node_modules/");
    if (!strcmp(base_name(p), ".package-lock.json"))
        return strlen(p) >= 31 &&
               !strcmp(p + strlen(p) - 31, "node_modules/.package-lock.json");
    return is_npm_package_json(p);
}

/* Path sets as jansson objects (keys are paths). */
static bool in_set(const json_t *set, const char *p)
{
    return json_object_get(set, p) != NULL;
}

/* Whether an upper layer decided p: kept or deleted it, deleted an
 * ancestor, or made an ancestor opaque. */
static bool decided(const struct sbom_files *f, const char *p)
{
    _cleanup_free_ char *buf = xstrdup(p);

    if (in_set(f->seen, p) || in_set(f->deleted, p))
        return true;
    for (char *s = strrchr(buf, '/'); s; s = strrchr(buf, '/')) {
        *s = '\0';
        if (in_set(f->deleted, buf) || in_set(f->opaque, buf))
            return true;
    }
    return false;
}

static void files_add(struct sbom_files *f, const char *path, char *data, size_t len)
{
    XGROW(f->files, f->alloc, f->n + 1);
    f->files[f->n].path = xstrdup(path);
    f->files[f->n].data = data;
    f->files[f->n].len = len;
    f->n++;
}

/* One layer's entries into f: kept files no upper layer decided; its
 * whiteouts count for the layers below only. */
static int scan_one(const char *blob, struct sbom_files *f, struct ocib_error *err)
{
    struct tar_reader *r = NULL;
    json_t *deleted = json_object(), *opaque = json_object();
    struct tar_entry e;
    const char *k;
    json_t *v;
    int rc;

    if (tar_reader_open_file(blob, &r, err) < 0) {
        json_decref(deleted);
        json_decref(opaque);
        return -1;
    }
    tar_reader_keep_if(r, wanted, NULL, SBOM_FILE_MAX);
    while ((rc = tar_reader_next(r, &e, err)) > 0) {
        const char *b = base_name(e.path);

        if (!strncmp(b, ".wh.", 4)) {
            _cleanup_free_ char *dir = xstrndup(e.path, (size_t)(b - e.path));
            size_t dl = strlen(dir);

            if (dl)
                dir[dl - 1] = '\0';
            if (!strcmp(b, ".wh..wh..opq"))
                json_object_set_new(opaque, dir, json_true());
            else {
                _cleanup_free_ char *gone = xasprintf("%s%s%s", dir, dl ? "/" : "", b + 4);

                json_object_set_new(deleted, gone, json_true());
            }
        } else if (!decided(f, e.path)) {
            if (e.data)
                files_add(f, e.path, TAKE_PTR(e.data), e.data_len);
            if (e.type != 'd')
                json_object_set_new(f->seen, e.path, json_true());
        }
        tar_entry_release(&e);
    }
    tar_reader_free(r);
    json_object_foreach(deleted, k, v) json_object_set(f->deleted, k, v);
    json_object_foreach(opaque, k, v) json_object_set(f->opaque, k, v);
    json_decref(deleted);
    json_decref(opaque);
    return rc < 0 ? -1 : 0;
}

static int package_cmp(const void *a, const void *b)
{
    const struct sbom_package *x = a, *y = b;
    int c;

    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if ((c = strcmp(x->name, y->name)) != 0)
        return c;
    if ((c = strcmp(x->version, y->version)) != 0)
        return c;
    if ((c = strcmp(x->arch ?: "", y->arch ?: "")) != 0)
        return c;
    return strcmp(x->path, y->path);
}

int sbom_scan_layers(char *const *blobs, size_t n, struct sbom_scan *ret,
                     struct ocib_error *err)
{
    struct sbom_files f = {
        .seen = json_object(), .deleted = json_object(), .opaque = json_object()};
    struct sbom_scan s = {0};
    int r = 0;

    for (size_t i = n; i-- > 0;)
        if (scan_one(blobs[i], &f, err) < 0) {
            r = ocib_error_wrap(err, "sbom: layer %zu", i + 1);
            break;
        }
    if (r == 0) {
        sbom_pkgdb_read(&f, &s);
        if (s.n)
            qsort(s.pkgs, s.n, sizeof(*s.pkgs), package_cmp);
        *ret = s;
    }
    for (size_t i = 0; i < f.n; i++) {
        free(f.files[i].path);
        free(f.files[i].data);
    }
    free(f.files);
    json_decref(f.seen);
    json_decref(f.deleted);
    json_decref(f.opaque);
    return r;
}

void sbom_scan_release(struct sbom_scan *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct sbom_package *p = &s->pkgs[i];

        free(p->name);
        free(p->version);
        free(p->source);
        free(p->arch);
        free(p->license);
        free(p->purl);
        free(p->integrity);
        free(p->path);
    }
    free(s->pkgs);
    memset(s, 0, sizeof(*s));
}

#define SCAN_JSON_VERSION 1

json_t *sbom_scan_to_json(const struct sbom_scan *s)
{
    json_t *list = json_array();

    for (size_t i = 0; i < s->n; i++) {
        const struct sbom_package *p = &s->pkgs[i];
        json_t *o =
            json_pack("{s:i,s:s,s:s,s:s,s:s}", "kind", (int)p->kind, "name", p->name,
                      "version", p->version, "purl", p->purl, "path", p->path);

        if (p->source)
            json_object_set_new(o, "source", json_string(p->source));
        if (p->arch)
            json_object_set_new(o, "arch", json_string(p->arch));
        if (p->license)
            json_object_set_new(o, "license", json_string(p->license));
        if (p->integrity)
            json_object_set_new(o, "integrity", json_string(p->integrity));
        json_array_append_new(list, o);
    }
    return json_pack("{s:i,s:o}", "version", SCAN_JSON_VERSION, "packages", list);
}

static char *opt_dup(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? xstrdup(s) : NULL;
}

int sbom_scan_from_json(const json_t *j, struct sbom_scan *ret)
{
    const json_t *list = json_object_get(j, "packages"), *o;
    struct sbom_scan s = {0};
    size_t i;

    if (json_integer_value(json_object_get(j, "version")) != SCAN_JSON_VERSION ||
        !json_is_array(list))
        return -1;
    json_array_foreach(list, i, o)
    {
        struct sbom_package p = {
            .kind = (enum sbom_kind)json_integer_value(json_object_get(o, "kind"))};

        p.name = opt_dup(o, "name");
        p.version = opt_dup(o, "version");
        p.purl = opt_dup(o, "purl");
        p.path = opt_dup(o, "path");
        p.source = opt_dup(o, "source");
        p.arch = opt_dup(o, "arch");
        p.license = opt_dup(o, "license");
        p.integrity = opt_dup(o, "integrity");
        XGROW(s.pkgs, s.alloc, s.n + 1);
        s.pkgs[s.n++] = p;
        if (!p.name || !p.version || !p.purl || !p.path || p.kind > SBOM_NPM) {
            sbom_scan_release(&s);
            return -1;
        }
    }
    *ret = s;
    return 0;
}
