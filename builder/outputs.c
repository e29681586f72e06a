/*
 * What a build produces: the names (repository and tags) its image gets, the
 * registry targets of --push, the check that a SHA tag tells the truth, and
 * the outputs written (OCI layouts, docker-archives); see driver.h.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "builder/git.h"
#include "oci/index.h"
#include "oci/json.h"
#include "oci/layout.h"
#include "oci/mediatype.h"
#include "transport/archive.h"
#include "transport/name.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int result_names(struct build *b, struct result_name **ret, size_t *ret_n,
                 struct ocib_error *err)
{
    const struct build_options *o = b->o;
    struct result_name *names = xcalloc(o->n_tags + 1, sizeof(*names));
    size_t n = 0;

    for (size_t i = 0; i < o->n_tags; i++) {
        struct reference ref;

        if (image_name_reference(o->tags[i], &ref, err) < 0) {
            for (size_t k = 0; k < n; k++) {
                free(names[k].repo);
                free(names[k].tag);
            }
            free(names);
            return ocib_error_wrap(err, "--tag");
        }
        names[n].repo = reference_name(&ref);
        names[n].tag = xstrdup(ref.tag ?: "latest");
        n++;
        reference_release(&ref);
    }
    if (n == 0) {
        const char *fallback = b->git_short ?: "latest";

        if (b->p->spec.image) {
            struct reference ref;
            const char *slash = strrchr(b->p->spec.image, '/');
            bool explicit_tag = strchr(slash ? slash : b->p->spec.image, ':') != NULL;

            if (reference_parse(b->p->spec.image, &ref, err) < 0) {
                free(names);
                return -1;
            }
            names[n].repo = reference_name(&ref);
            names[n].tag = xstrdup(explicit_tag && ref.tag ? ref.tag : fallback);
            reference_release(&ref);
        } else {
            names[n].tag = xstrdup(fallback);
        }
        n++;
    }
    *ret = names;
    *ret_n = n;
    return 0;
}

void push_targets_free(struct push_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        reference_release(&t[i].ref);
        for (size_t k = 0; k < t[i].n_tags; k++)
            free(t[i].tags[k]);
        free(t[i].tags);
    }
    free(t);
}

static void push_target_add(struct push_target **list, size_t *n, size_t *alloc,
                            const struct reference *ref, const char *tag)
{
    struct push_target *t = NULL;

    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i].ref.registry, ref->registry) &&
            !strcmp((*list)[i].ref.repository, ref->repository))
            t = &(*list)[i];
    if (!t) {
        XGROW(*list, *alloc, *n + 1);
        t = &(*list)[(*n)++];
        memset(t, 0, sizeof(*t));
        t->ref.registry = xstrdup(ref->registry);
        t->ref.repository = xstrdup(ref->repository);
    }
    for (size_t k = 0; k < t->n_tags; k++)
        if (!strcmp(t->tags[k], tag))
            return;
    XGROW(t->tags, t->alloc_tags, t->n_tags + 1);
    t->tags[t->n_tags++] = xstrdup(tag);
}

/* Where --push sends the image: every --tag, else the spec's image tagged
 * with the git short SHA; "latest" never alone (the SHA is added). */
int push_targets(struct build *b, struct push_target **ret, size_t *ret_n,
                 struct ocib_error *err)
{
    struct push_target *list = NULL;
    size_t n = 0, alloc = 0;

    for (size_t i = 0; i < b->o->n_tags; i++) {
        struct reference ref;

        if (image_name_reference(b->o->tags[i], &ref, err) < 0) {
            push_targets_free(list, n);
            return ocib_error_wrap(err, "--tag");
        }
        if (ref.digest && !ref.tag) {
            reference_release(&ref);
            push_targets_free(list, n);
            return ocib_error_usage(
                err, "--tag %s: a digest cannot be pushed to; name a tag", b->o->tags[i]);
        }
        push_target_add(&list, &n, &alloc, &ref, ref.tag ?: "latest");
        reference_release(&ref);
    }
    if (n == 0) {
        struct reference ref;
        const char *slash;

        if (!b->p->spec.image)
            return ocib_error_usage(
                err, "--push: no --tag given and '%s' names no \"image\"", b->p->spec.file);
        if (!b->git_short)
            return ocib_error_usage(err,
                                    "--push: the context '%s' is not in a git checkout, so "
                                    "there is no commit to tag the image with; give --tag",
                                    b->ctx.dir);
        if (reference_parse(b->p->spec.image, &ref, err) < 0)
            return -1;
        push_target_add(&list, &n, &alloc, &ref, b->git_short);
        slash = strrchr(b->p->spec.image, '/');
        if (strchr(slash ? slash : b->p->spec.image, ':') && ref.tag)
            push_target_add(&list, &n, &alloc, &ref, ref.tag);
        reference_release(&ref);
    }
    for (size_t i = 0; i < n; i++) {
        bool only_latest = true;

        for (size_t k = 0; k < list[i].n_tags; k++)
            only_latest &= !strcmp(list[i].tags[k], "latest");
        if (!only_latest)
            continue;
        if (!b->git_short) {
            push_targets_free(list, n);
            return ocib_error_usage(err, "--push: 'latest' is pushed only alongside an "
                                         "immutable tag, and the context is not in a git "
                                         "checkout; add --tag with a version");
        }
        push_target_add(&list, &n, &alloc, &list[i].ref, b->git_short);
    }
    *ret = list;
    *ret_n = n;
    return 0;
}

/* The build read files the commit does not hold (b->ctx.dirty_read): the
 * commit's SHA would name other bytes.  A push tagged with it fails, naming
 * the files; otherwise the image just does not claim the commit: no revision
 * annotation, and a layout tag that fell back to the SHA becomes "latest". */
int untrue_revision(struct build *b, const struct push_target *targets, size_t n_targets,
                    struct result_name **names, size_t *n_names, struct ocib_error *err)
{
    struct strbuf files = STRBUF_INIT;
    size_t shown = sizeof(b->ctx.dirty_read) / sizeof(b->ctx.dirty_read[0]);
    bool sha_tag = false;

    for (size_t i = 0; i < b->ctx.n_dirty_read && i < shown; i++)
        strbuf_addf(&files, "%s%s", i ? ", " : "", b->ctx.dirty_read[i]);
    if (b->ctx.n_dirty_read > shown)
        strbuf_addf(&files, " and %zu more", b->ctx.n_dirty_read - shown);
    for (size_t i = 0; i < n_targets; i++)
        for (size_t k = 0; k < targets[i].n_tags; k++)
            sha_tag |= !strcmp(targets[i].tags[k], b->git_short);
    if (sha_tag) {
        ocib_error_set(
            err,
            "--push: commit %s does not hold every file the build read (modified "
            "or not committed: %s); commit them, or give --tag",
            b->git_short, files.buf);
        strbuf_release(&files);
        return -1;
    }
    {
        _cleanup_free_ char *text =
            xasprintf("not recording commit %s: the build read files it does not hold (%s)",
                      b->git_short, files.buf);
        struct build_event ev = {.kind = BUILD_EVENT_INFO, .text = text};

        progress(b, &ev);
    }
    strbuf_release(&files);
    for (size_t i = 0; i < *n_names; i++)
        if (!strcmp((*names)[i].tag, b->git_short)) {
            free((*names)[i].tag);
            (*names)[i].tag = xstrdup("latest");
        }
    free(b->git_full);
    b->git_full = NULL;
    return 0;
}

/* An OCI layout at path with the result (the image, or the index of every
 * platform's image) under each distinct tag. */
static int write_oci(struct build *b, const char *path, const struct result_name *names,
                     size_t n_names, struct ocib_error *err)
{
    const struct oci_blob *result = b->n_plats == 1 ? &b->plats[0].manifest : &b->index;
    const char *media_type = b->n_plats == 1 ? oci_format_manifest_type(b->o->format)
                                             : oci_format_index_type(b->o->format);
    struct oci_layout_writer w;
    int r = -1;

    if (oci_layout_writer_begin(&w, path, err) < 0)
        return -1;
    for (size_t p = 0; p < b->n_plats; p++) {
        const struct build_platform *bp = &b->plats[p];
        const struct stage_image *si = &bp->stages[bp->target];

        for (size_t i = 0; i < si->img.n_layers; i++)
            if (oci_layout_writer_put_file(&w, si->srcs[i].path,
                                           &si->img.layers[i].desc.digest,
                                           si->srcs[i].verify, err) < 0)
                goto out;
        if (oci_layout_writer_put_bytes(&w, &bp->config, err) < 0 ||
            oci_layout_writer_put_bytes(&w, &bp->manifest, err) < 0)
            goto out;
    }
    if (b->n_plats > 1 && oci_layout_writer_put_bytes(&w, &b->index, err) < 0)
        goto out;
    for (size_t i = 0; i < n_names; i++) {
        bool dup = false;

        for (size_t j = 0; j < i; j++)
            dup |= !strcmp(names[j].tag, names[i].tag);
        if (!dup)
            oci_layout_writer_add_manifest(&w, result, media_type, names[i].tag);
    }
    if (attest_layout_add(b, &w, err) < 0)
        goto out;
    r = oci_layout_writer_commit(&w, err);
out:
    oci_layout_writer_release(&w);
    return r < 0 ? ocib_error_wrap(err, "output oci:%s", path) : 0;
}

/* A docker-archive at path (one platform: build_prepare refuses more),
 * tagged repo:tag for each name with a repo. */
static int write_docker_archive(struct build *b, const char *path,
                                const struct result_name *names, size_t n_names,
                                struct ocib_error *err)
{
    const struct build_platform *bp = &b->plats[0];
    const struct stage_image *si = &bp->stages[bp->target];
    _cleanup_free_ char **tags = xcalloc(n_names + 1, sizeof(char *));
    _cleanup_free_ char **paths = xcalloc(si->n_srcs + 1, sizeof(char *));
    _cleanup_free_ bool *verify = xcalloc(si->n_srcs + 1, sizeof(bool));
    size_t nt = 0;
    int r;

    for (size_t i = 0; i < si->n_srcs; i++) {
        paths[i] = si->srcs[i].path;
        verify[i] = si->srcs[i].verify;
    }
    for (size_t i = 0; i < n_names; i++)
        if (names[i].repo)
            tags[nt++] = xasprintf("%s:%s", names[i].repo, names[i].tag);
    r = docker_archive_write(path, &si->img, &bp->config, &bp->manifest,
                             oci_format_manifest_type(b->o->format), paths, verify, tags,
                             nt, b->epoch, err);
    for (size_t i = 0; i < nt; i++)
        free(tags[i]);
    return r;
}

int write_outputs(struct build *b, struct ocib_error *err)
{
    /* Layers that are still only in a registry are fetched once, into the
     * cache, verified. */
    for (size_t p = 0; b->o->n_outputs && p < b->n_plats; p++) {
        struct stage_image *si = &b->plats[p].stages[b->plats[p].target];

        for (size_t i = 0; i < si->n_srcs; i++)
            if (blob_source_ensure_local(&si->srcs[i], &b->cache, b->registries, err) < 0)
                return -1;
    }
    for (size_t k = 0; k < b->o->n_outputs; k++) {
        const struct build_output *out = &b->o->outputs[k];
        struct build_event ev = {.kind = BUILD_EVENT_OUTPUT, .text = out->path};
        _cleanup_free_ char *pcopy = xstrdup(out->path);
        char *slash = strrchr(pcopy, '/');
        bool oci = out->kind == BUILD_OUTPUT_OCI;
        struct result_name own = {.tag = out->tag}; /* oci:DIR:TAG */
        int r;

        if (slash && slash != pcopy) {
            *slash = '\0';
            if (fs_mkdir_p(pcopy, 0755, err) < 0)
                return -1;
        }
        if (oci && out->tag)
            r = write_oci(b, out->path, &own, 1, err);
        else if (oci)
            r = write_oci(b, out->path, b->names, b->n_names, err);
        else
            r = write_docker_archive(b, out->path, b->names, b->n_names, err);
        if (r < 0)
            return -1;
        ev.status = oci ? "oci" : "docker-archive";
        progress(b, &ev);
    }
    return 0;
}

void result_names_free(struct result_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i].repo);
        free(names[i].tag);
    }
    free(names);
}
