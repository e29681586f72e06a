/*
 * What a build attaches to its image: the SBOM (--sbom), the provenance
 * (--provenance), each an OCI 1.1 artifact whose subject is a platform's
 * image manifest, and with --sign-key cosign-style signatures of the
 * result, of each platform's manifest and of each artifact.
 *
 * The SBOM's scan reads the layer blobs (sbom/scan.h) once per set of
 * layers: it is kept in the cache under the digest of the layer digests,
 * so a rebuild that gives the same layers reads none of them.  Documents
 * and artifact manifests are functions of the build's inputs; signatures
 * are not (ECDSA draws a fresh nonce), and are made only when pushing.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/sha256.h"
#include "base/sign.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cache/keys.h"
#include "oci/artifact.h"
#include "oci/json.h"
#include "oci/mediatype.h"
#include "sbom/sbom.h"

#include <stdlib.h>
#include <string.h>

#define PROVENANCE_TYPE "application/vnd.in-toto+json"

int attest_load_key(struct build *b, struct ocib_error *err)
{
    if (!b->o->sign_key)
        return 0;
    return sign_key_load(b->o->sign_key, &b->key, err);
}

/* The cache slot of the scan of the image's layers. */
static char *scan_slot(const struct oci_image *img)
{
    struct strbuf sb = STRBUF_INIT;
    char hex[SHA256_HEX_LEN + 1];

    for (size_t i = 0; i < img->n_layers; i++)
        strbuf_addf(&sb, "%s\n", img->layers[i].desc.digest.str);
    sha256_hex(sb.buf ?: "", sb.len, hex);
    strbuf_release(&sb);
    return xasprintf("sbom-scan\n%s", hex);
}

/* The scan of stage si's image: from the cache, else its layers. */
static int scan_image(struct build *b, struct stage_image *si, struct sbom_scan *ret,
                      struct ocib_error *err)
{
    _cleanup_free_ char *slot = scan_slot(&si->img);
    _cleanup_free_ char **paths = xcalloc(si->n_srcs + 1, sizeof(char *));
    json_t *rec = cache_record_get(&b->cache, slot);
    int rc;

    if (rec && sbom_scan_from_json(rec, ret) == 0) {
        json_decref(rec);
        return 0;
    }
    json_decref(rec);
    step_start(b, NULL, NULL, "scanning layers for the SBOM", NULL);
    for (size_t i = 0; i < si->n_srcs; i++) {
        if (blob_source_ensure_local(&si->srcs[i], &b->cache, b->registries, err) < 0) {
            step_end(b, NULL, NULL, "scanning layers for the SBOM", PHASE_SBOM);
            return -1;
        }
        paths[i] = si->srcs[i].path;
    }
    rc = sbom_scan_layers(paths, si->n_srcs, ret, err);
    step_end(b, NULL, NULL, "scanning layers for the SBOM", PHASE_SBOM);
    if (rc < 0)
        return -1;
    rec = sbom_scan_to_json(ret);
    cache_record_put(&b->cache, slot, rec, NULL);
    json_decref(rec);
    return 0;
}

static int make_sbom(struct build *b, struct build_platform *bp, struct oci_blob *ret,
                     struct ocib_error *err)
{
    struct stage_image *si = &bp->stages[bp->target];
    const char *base = oci_json_str(si->img.annotations, ANNOTATION_PREFIX "base.name");
    const char *base_digest =
        oci_json_str(si->img.annotations, ANNOTATION_PREFIX "base.digest");
    char plat[96];
    struct sbom_scan scan = {0};
    struct sbom_subject subj = {
        .name = b->names[0].repo,
        .manifest = &bp->manifest.digest,
        .platform = plat,
        .created = b->created,
        .layers = si->img.layers,
        .n_layers = si->img.n_layers,
        .base_name = base && base_digest && *base_digest ? base : NULL,
        .base_digest = base_digest && *base_digest ? base_digest : NULL,
    };

    oci_platform_format(&bp->platform, plat, sizeof(plat));
    if (scan_image(b, si, &scan, err) < 0)
        return -1;
    sbom_document(b->o->sbom, &scan, &subj, ret);
    sbom_scan_release(&scan);
    return 0;
}

static void add_attest(struct build *b, struct build_platform *bp, const char *type,
                       struct oci_blob *doc)
{
    struct attest *a = &bp->att[bp->n_att++];

    a->type = type;
    a->doc = *doc;
    oci_artifact_manifest(type, &a->doc, &bp->manifest,
                          oci_format_manifest_type(b->o->format), b->created, &a->manifest);
}

int attest_make(struct build *b, struct ocib_error *err)
{
    for (size_t p = 0; p < b->n_plats; p++) {
        struct build_platform *bp = &b->plats[p];
        struct oci_blob doc = {0};

        if (b->o->sbom) {
            if (make_sbom(b, bp, &doc, err) < 0)
                return ocib_error_wrap(err, "--sbom");
            add_attest(b, bp, sbom_format_type(b->o->sbom), &doc);
        }
        if (b->o->provenance) {
            provenance_document(b, bp, &doc);
            add_attest(b, bp, PROVENANCE_TYPE, &doc);
        }
    }
    return 0;
}

int attest_layout_add(struct build *b, struct oci_layout_writer *w, struct ocib_error *err)
{
    struct oci_blob empty;
    bool any = false;
    int rc = 0;

    oci_empty_blob(&empty);
    for (size_t p = 0; p < b->n_plats && rc == 0; p++)
        for (size_t i = 0; i < b->plats[p].n_att && rc == 0; i++) {
            const struct attest *a = &b->plats[p].att[i];

            any = true;
            rc = oci_layout_writer_put_bytes(w, &a->doc, err);
            if (rc == 0)
                rc = oci_layout_writer_put_bytes(w, &a->manifest, err);
            if (rc == 0) {
                json_t *d = oci_artifact_descriptor(&a->manifest);
                json_t *m = json_loadb(a->manifest.data, a->manifest.len, 0, NULL);

                /* index.json names the subject too (image-spec allows
                 * descriptor fields it does not define). */
                json_object_set(d, "subject", json_object_get(m, "subject"));
                json_array_append_new(w->manifests, d);
                json_decref(m);
            }
        }
    if (any && rc == 0)
        rc = oci_layout_writer_put_bytes(w, &empty, err);
    oci_blob_release(&empty);
    return rc;
}

/* Signs manifest m of target t: the payload and the signature manifest
 * under its sha256-<hex>.sig tag. */
static int push_signature(struct build *b, const struct push_target *t,
                          const struct oci_blob *m, struct ocib_error *err)
{
    _cleanup_free_ char *name = reference_name(&t->ref);
    _cleanup_free_ char *ident =
        t->n_tags ? xasprintf("%s:%s", name, t->tags[0]) : xstrdup(name);
    _cleanup_free_ char *tag = oci_cosign_tag(&m->digest);
    _cleanup_free_ char *sig = NULL;
    struct oci_blob blobs[2] = {{0}}, sm = {0};
    int rc;

    oci_simple_signing_payload(ident, &m->digest, &blobs[0]);
    if (sign_data(b->key, blobs[0].data, blobs[0].len, &sig, err) < 0) {
        oci_blob_release(&blobs[0]);
        return -1;
    }
    oci_cosign_manifest(&blobs[0], sig, &blobs[1], &sm);
    rc = remote_push_artifact(b->registries, t->ref.registry, t->ref.repository, &sm, blobs,
                              2, tag, false, err);
    oci_blob_release(&blobs[0]);
    oci_blob_release(&blobs[1]);
    oci_blob_release(&sm);
    return rc < 0 ? ocib_error_wrap(err, "signing %s", m->digest.str) : 0;
}

int attest_push(struct build *b, const struct push_target *t, struct ocib_error *err)
{
    struct oci_blob blobs[2] = {{0}};
    int rc = 0;

    oci_empty_blob(&blobs[0]);
    for (size_t p = 0; p < b->n_plats && rc == 0; p++) {
        struct build_platform *bp = &b->plats[p];

        for (size_t i = 0; i < bp->n_att && rc == 0; i++) {
            blobs[1] = bp->att[i].doc;
            rc = remote_push_artifact(b->registries, t->ref.registry, t->ref.repository,
                                      &bp->att[i].manifest, blobs, 2, NULL, true, err);
            if (rc == 0 && b->key)
                rc = push_signature(b, t, &bp->att[i].manifest, err);
        }
        if (rc == 0 && b->key)
            rc = push_signature(b, t, &bp->manifest, err);
    }
    if (rc == 0 && b->key && b->n_plats > 1)
        rc = push_signature(b, t, &b->index, err);
    oci_blob_release(&blobs[0]);
    return rc;
}

void attest_release(struct build *b)
{
    for (size_t p = 0; p < b->n_plats; p++)
        for (size_t i = 0; i < b->plats[p].n_att; i++) {
            oci_blob_release(&b->plats[p].att[i].doc);
            oci_blob_release(&b->plats[p].att[i].manifest);
        }
    sign_key_free(b->key);
    b->key = NULL;
}
