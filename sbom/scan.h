/*
 * What an image holds, read for its SBOM: the packages its package
 * databases and node_modules trees list, from the image's file system as
 * its layers leave it.
 *
 * sbom_scan_layers() streams each layer blob (top layer first) through the
 * tar reader and keeps only the files that say what is installed:
 * var/lib/dpkg/status (and status.d/), usr/share/doc/PKG/copyright,
 * lib/apk/db/installed, every node_modules/[@SCOPE/]NAME/package.json and
 * every package-lock.json (node_modules/.package-lock.json too).  A file an
 * upper layer holds, deletes (.wh.NAME) or hides (an opaque directory)
 * decides over the layers below, as a container runtime's overlay would;
 * nothing is written to disk.  The result is sorted (kind, name, version,
 * path) so that equal images give equal scans.
 */
#ifndef OCIB_SBOM_SCAN_H
#define OCIB_SBOM_SCAN_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

/* The largest package database, package.json or lock kept in memory. */
#define SBOM_FILE_MAX (32 * 1024 * 1024)

enum sbom_kind { SBOM_DEB, SBOM_APK, SBOM_NPM };

struct sbom_package {
    enum sbom_kind kind;
    char *name, *version;
    char *source;    /* deb: the source package ("src" or "src (version)"); else NULL */
    char *arch;      /* deb, apk; else NULL */
    char *license;   /* as the package states it (an SPDX expression or names), or NULL */
    char *purl;      /* pkg:deb/debian/..., pkg:apk/alpine/..., pkg:npm/... */
    char *integrity; /* npm: the lock's "sha512-<base64>", or NULL */
    char *path;      /* the file in the image that lists the package */
};

struct sbom_scan {
    struct sbom_package *pkgs;
    size_t n, alloc;
};

/* Scans the n layer blobs (blobs[0] the lowest layer) into *ret (caller
 * releases).  Fails naming the layer (its index from 1) on a corrupt blob
 * or a kept file over SBOM_FILE_MAX; a database that does not parse is
 * skipped, not an error. */
int sbom_scan_layers(char *const *blobs, size_t n, struct sbom_scan *ret,
                     struct ocib_error *err);
void sbom_scan_release(struct sbom_scan *s);

/* The scan as JSON (a new reference) and back, for the cache; from_json
 * fails (-1) on a document this version did not write. */
json_t *sbom_scan_to_json(const struct sbom_scan *s);
int sbom_scan_from_json(const json_t *j, struct sbom_scan *ret);

/* The kind's name: "deb", "apk", "npm". */
const char *sbom_kind_name(enum sbom_kind k);

#endif
