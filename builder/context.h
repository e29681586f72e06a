/*
 * The build context: the directory whose files `copy` layers read.
 *
 * Nothing outside the context is ever read: sources are resolved inside the
 * context root (a symlink in the middle of a source path is followed only
 * while it stays inside, otherwise the copy fails naming it), files are
 * opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and a symlink
 * that is itself a source or inside a copied directory is stored as a
 * symlink without reading its target.  `.ocibignore` (dockerignore syntax)
 * and each copy's `exclude` (gitignore syntax) filter what is copied.
 */
#ifndef OCIB_BUILDER_CONTEXT_H
#define OCIB_BUILDER_CONTEXT_H

#include <stdint.h>

#include "base/error.h"
#include "builder/ignore.h"
#include "spec/spec.h"
#include "layers/tree.h"

struct git_dirty;

struct context {
    char *dir;               /* as given */
    int fd;                  /* the root, O_DIRECTORY */
    struct ignore *ignore;   /* .ocibignore (else .dockerignore), may be empty */
    const char *ignore_file; /* which of the two was read, NULL when none */
    char **own;              /* ocib's own outputs inside the context (relative) */
    size_t n_own, alloc_own;
    /* Set by the build: what git says HEAD does not hold, and which of the
     * files the copies read are among them (the first CONTEXT_DIRTY_SHOWN,
     * and how many in all). */
    const struct git_dirty *dirty;
    char *dirty_read[10];
    size_t n_dirty_read;
    bool in_root;      /* a stage's root: symlinks resolve as in a chroot */
    char *label;       /* for messages: "the context 'DIR'", "stage 'NAME'" */
    uint64_t max_file; /* a larger file is refused before it is read; 0: no
                        * limit (the build sets OCIB_MAX_LAYER_BYTES) */
};

/* Opens the context directory and reads its .ocibignore, or its
 * .dockerignore when it has no .ocibignore (as BuildKit reads
 * Dockerfile.dockerignore before .dockerignore). */
int context_open(struct context *ctx, const char *dir, struct ocib_error *err);

/* Keeps path (an output, the cache, the digest file: relative to the
 * current directory, or absolute; it need not exist yet) out of the
 * context when it lies inside it, whatever the ignore files say: ocib's
 * own outputs are never its input.  Nothing happens for a path outside. */
void context_exclude_own(struct context *ctx, const char *path);

/* Records that the build read path (the spec, an ignore file) for the
 * dirty-tree check, when it lies in the context and git says the commit
 * does not hold it.  Copies record what they read themselves. */
void context_note_read(struct context *ctx, const char *path);

/* Opens a stage's root file system as a copy source: no ignore file, and
 * symlinks in the middle of a source path resolve inside the root the way
 * they would in the container (absolute targets start at the root, ".."
 * stops there). */
int context_open_root(struct context *ctx, const char *dir, const char *stage,
                      struct ocib_error *err);
void context_release(struct context *ctx);

/* Adds to t the entries that copy item c takes from the context (each entry
 * records ctx->fd as the directory its source is relative to), with Docker
 * COPY semantics: a directory's contents go into dest, a file goes to dest
 * (or into it when dest ends in '/' or there are several sources).  workdir
 * anchors a relative dest.  File contents are not read here; t records where
 * they are (relative to ctx->fd).  A file larger than ctx->max_file (a huge
 * or sparse file: its apparent size counts) fails with an OCIB_ERR_LIMIT
 * error naming it. */
int context_copy(struct context *ctx, const struct spec_copy *c, const char *workdir,
                 struct layer_tree *t, struct ocib_error *err);

#endif
