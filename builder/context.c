/*
 * Context copies; see context.h.
 */
#include "builder/context.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "builder/git.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SYMLINK_HOPS 40
#define MAX_ENTRIES 2000000

int context_open(struct context *ctx, const char *dir, struct ocib_error *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ctx->fd < 0)
        return ocib_error_errno(err, errno, "context '%s'", dir);
    ctx->dir = xstrdup(dir);
    ctx->label = xasprintf("the context '%s'", dir);
    ctx->ignore = ignore_new();
    ctx->ignore_file = faccessat(ctx->fd, ".ocibignore", F_OK, AT_SYMLINK_NOFOLLOW) == 0
                           ? ".ocibignore"
                       : faccessat(ctx->fd, ".dockerignore", F_OK, AT_SYMLINK_NOFOLLOW) == 0
                           ? ".dockerignore"
                           : NULL;
    if (ctx->ignore_file &&
        ignore_add_file(ctx->ignore, ctx->fd, ctx->ignore_file, err) < 0) {
        context_release(ctx);
        return ocib_error_wrap(err, "context '%s'", dir);
    }
    return 0;
}

int context_open_root(struct context *ctx, const char *dir, const char *stage,
                      struct ocib_error *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ctx->fd < 0)
        return ocib_error_errno(err, errno, "stage root '%s'", dir);
    ctx->dir = xstrdup(dir);
    ctx->ignore = ignore_new();
    ctx->in_root = true;
    ctx->label = xasprintf("stage '%s'", stage);
    return 0;
}

/* The absolute, symlink-free form of path, whose last components need not
 * exist (resolved up to the deepest one that does); caller frees. */
static char *resolve_maybe_missing(const char *path)
{
    _cleanup_free_ char *head = xstrdup(path);
    char *tail = xstrdup(""), *real;

    for (;;) {
        char *slash, *t;

        real = realpath(*head ? head : ".", NULL);
        if (real)
            break;
        slash = strrchr(head, '/');
        if (!*head || !strcmp(head, "/")) {
            free(tail);
            return NULL; /* not even the current directory resolves */
        }
        t = xasprintf("%s%s%s", slash ? slash + 1 : head, *tail ? "/" : "", tail);
        free(tail);
        tail = t;
        if (!slash)
            head[0] = '\0';
        else if (slash == head)
            head[1] = '\0';
        else
            *slash = '\0';
    }
    if (*tail) {
        char *out = xasprintf("%s%s%s", real, strcmp(real, "/") ? "/" : "", tail);

        free(real);
        real = out;
    }
    free(tail);
    return real;
}

/* path (relative to the current directory, or absolute) relative to the
 * context's root, or NULL when it lies outside (or is the root). */
static char *context_rel(const struct context *ctx, const char *path)
{
    _cleanup_free_ char *root = realpath(ctx->dir, NULL);
    _cleanup_free_ char *abs = NULL;
    size_t n;

    if (!root || !path || !*path)
        return NULL;
    abs = resolve_maybe_missing(path);
    n = strlen(root);
    if (!abs || strncmp(abs, root, n) || (abs[n] != '/' && abs[n] != '\0'))
        return NULL;
    if (!abs[n] || !abs[n + 1])
        return NULL;
    return xstrdup(abs + n + 1);
}

void context_exclude_own(struct context *ctx, const char *path)
{
    char *rel = context_rel(ctx, path);

    if (!rel)
        return;
    XGROW(ctx->own, ctx->alloc_own, ctx->n_own + 1);
    ctx->own[ctx->n_own++] = rel;
}

/* Records that a copy read rel, which the commit does not hold. */
static void note_dirty(struct context *ctx, const char *rel)
{
    size_t shown = sizeof(ctx->dirty_read) / sizeof(ctx->dirty_read[0]);

    for (size_t i = 0; i < ctx->n_dirty_read && i < shown; i++)
        if (!strcmp(ctx->dirty_read[i], rel))
            return;
    if (ctx->n_dirty_read < shown)
        ctx->dirty_read[ctx->n_dirty_read] = xstrdup(rel);
    ctx->n_dirty_read++;
}

void context_note_read(struct context *ctx, const char *path)
{
    _cleanup_free_ char *rel = context_rel(ctx, path);

    if (rel && git_dirty_has(ctx->dirty, rel))
        note_dirty(ctx, rel);
}

void context_release(struct context *ctx)
{
    for (size_t i = 0; i < ctx->n_dirty_read && i < 10; i++)
        free(ctx->dirty_read[i]);
    for (size_t i = 0; i < ctx->n_own; i++)
        free(ctx->own[i]);
    free(ctx->own);
    if (ctx->fd >= 0 && ctx->dir)
        close(ctx->fd);
    free(ctx->dir);
    free(ctx->label);
    ignore_free(ctx->ignore);
    memset(ctx, 0, sizeof(*ctx));
    ctx->fd = -1;
}

/* Component list of a relative path. */
struct comps {
    char **v;
    size_t n, alloc;
};

static void comps_push(struct comps *c, const char *s, size_t len)
{
    XGROW(c->v, c->alloc, c->n + 1);
    c->v[c->n++] = xstrndup(s, len);
}

static void comps_clear(struct comps *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static char *comps_join(const struct comps *c, size_t n)
{
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_addch(&sb, '/');
        strbuf_addstr(&sb, c->v[i]);
    }
    return strbuf_detach(&sb);
}

/* Pushes the components of path onto c, last first, so that popping them
 * walks path in order; empty and "." components are skipped. */
static void comps_push_path(struct comps *c, const char *path)
{
    struct comps fwd = {0};
    const char *p = path;

    while (*p) {
        size_t n = strcspn(p, "/");

        if (n && !(n == 1 && *p == '.'))
            comps_push(&fwd, p, n);
        p += n;
        while (*p == '/')
            p++;
    }
    for (size_t i = fwd.n; i-- > 0;)
        comps_push(c, fwd.v[i], strlen(fwd.v[i]));
    comps_clear(&fwd);
}

/* Resolves every component of rel but the last inside the context: symlinks
 * are followed only while they stay inside.  Returns the resolved relative
 * path ("" for the root). */
static int resolve_parents(struct context *ctx, const char *src, const char *rel,
                           char **ret, struct ocib_error *err)
{
    struct comps todo = {0}, done = {0};
    size_t hops = 0;
    int r = -1;

    /* todo holds components still to walk, last component first. */
    comps_push_path(&todo, rel);
    while (todo.n > 0) {
        char *c = todo.v[--todo.n];
        _cleanup_free_ char *path = NULL;
        char target[4096];
        struct stat st;
        ssize_t len;

        if (!strcmp(c, "..")) {
            free(c);
            if (done.n == 0) {
                if (ctx->in_root)
                    continue; /* "/.." is "/" */
                ocib_error_set(err, "copy '%s': leaves the context", src);
                goto out;
            }
            free(done.v[--done.n]);
            continue;
        }
        if (todo.n == 0) { /* the last component is not followed */
            XGROW(done.v, done.alloc, done.n + 1);
            done.v[done.n++] = c;
            break;
        }
        XGROW(done.v, done.alloc, done.n + 1);
        done.v[done.n++] = c;
        path = comps_join(&done, done.n);
        if (fstatat(ctx->fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            ocib_error_errno(err, errno, "copy '%s': cannot access '%s'", src, path);
            goto out;
        }
        if (!S_ISLNK(st.st_mode))
            continue;
        if (++hops > MAX_SYMLINK_HOPS) {
            ocib_error_set(err, "copy '%s': too many levels of symlinks", src);
            goto out;
        }
        len = readlinkat(ctx->fd, path, target, sizeof(target) - 1);
        if (len < 0) {
            ocib_error_errno(err, errno, "copy '%s': cannot read symlink '%s'", src, path);
            goto out;
        }
        target[len] = '\0';
        if (target[0] == '/' && ctx->in_root) {
            for (size_t k = 0; k < done.n; k++)
                free(done.v[k]);
            done.n = 0;
        } else if (target[0] == '/') {
            ocib_error_set(
                err,
                "copy '%s': '%s' is a symlink to '%s', outside the context; sources "
                "are never read through such links",
                src, path, target);
            goto out;
        } else {
            free(done.v[--done.n]); /* the link itself; its target follows */
        }
        /* The target's components are walked next; a ".." that climbs
         * above the root is detected when popped. */
        comps_push_path(&todo, target);
    }
    *ret = comps_join(&done, done.n);
    r = 0;
out:
    comps_clear(&todo);
    comps_clear(&done);
    return r;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

struct match_list {
    char **v;
    size_t n, alloc;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands a glob pattern relative to the context root, one component at a
 * time; matches are resolved relative paths. */
static int expand_glob(struct context *ctx, const char *src, const char *prefix,
                       const char *rest, struct match_list *out, struct ocib_error *err)
{
    size_t n = strcspn(rest, "/");
    _cleanup_free_ char *comp = xstrndup(rest, n);
    const char *next = rest + n;
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    int fd;

    while (*next == '/')
        next++;
    if (!has_glob(comp)) {
        _cleanup_free_ char *p = *prefix ? xasprintf("%s/%s", prefix, comp) : xstrdup(comp);

        if (!*next) {
            /* A fixed name below a wildcard is a match only where it
             * exists: a pattern svc / * / config.json skips the services
             * without one. */
            _cleanup_free_ char *resolved = NULL;
            struct stat st;

            if (resolve_parents(ctx, src, p, &resolved, err) < 0)
                return -1;
            if (fstatat(ctx->fd, resolved, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
            XGROW(out->v, out->alloc, out->n + 1);
            out->v[out->n++] = TAKE_PTR(p);
            return 0;
        }
        return expand_glob(ctx, src, p, next, out, err);
    }
    {
        _cleanup_free_ char *resolved = NULL;

        if (*prefix) {
            _cleanup_free_ char *probe = xasprintf("%s/x", prefix);

            if (resolve_parents(ctx, src, probe, &resolved, err) < 0)
                return -1;
            resolved[strlen(resolved) - 2] = '\0';
        }
        fd = fs_open_beneath(ctx->fd, resolved && *resolved ? resolved : ".",
                             O_RDONLY | O_DIRECTORY);
    }
    if (fd < 0)
        return 0; /* nothing matches below a missing or non-directory prefix */
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ocib_error_errno(err, errno, "copy '%s'", src);
    }
    {
        struct match_list names = {0};
        int r = 0;

        for (de = readdir(d); de; de = readdir(d)) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (fnmatch(comp, de->d_name, 0) == 0) {
                XGROW(names.v, names.alloc, names.n + 1);
                names.v[names.n++] = xstrdup(de->d_name);
            }
        }
        if (names.n)
            qsort(names.v, names.n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < names.n; i++) {
            _cleanup_free_ char *p =
                *prefix ? xasprintf("%s/%s", prefix, names.v[i]) : xstrdup(names.v[i]);

            if (r == 0) {
                if (!*next) {
                    XGROW(out->v, out->alloc, out->n + 1);
                    out->v[out->n++] = TAKE_PTR(p);
                } else {
                    r = expand_glob(ctx, src, p, next, out, err);
                }
            }
            free(names.v[i]);
        }
        free(names.v);
        return r;
    }
}

struct copy_state {
    struct context *ctx;
    const struct spec_copy *c;
    struct ignore *exclude;
    struct layer_tree *t;
    size_t count;
};

/* Whether rel is one of ocib's own outputs or lies below one. */
static bool own_output(const struct context *ctx, const char *rel)
{
    for (size_t i = 0; i < ctx->n_own; i++) {
        size_t n = strlen(ctx->own[i]);

        if (!strncmp(rel, ctx->own[i], n) && (rel[n] == '\0' || rel[n] == '/'))
            return true;
    }
    return false;
}

static bool excluded(struct copy_state *s, const char *rel, bool is_dir)
{
    return own_output(s->ctx, rel) || ignore_match(s->ctx->ignore, rel, is_dir) ||
           (s->exclude && ignore_match(s->exclude, rel, is_dir));
}

static bool may_reinclude(struct copy_state *s, const char *rel)
{
    if (own_output(s->ctx, rel))
        return false;
    return ignore_may_reinclude_below(s->ctx->ignore, rel) ||
           (s->exclude && ignore_may_reinclude_below(s->exclude, rel));
}

/* The permission bits a copied file or directory gets: the forced mode;
 * with "preserve" the source's; else 0755 for a directory or a file with any
 * exec bit and 0644 for other files (a checkout's umask and a CI runner's
 * must not change the digest), keeping setuid, setgid and sticky, which no
 * umask sets and which mean something (su, /tmp). */
static int copy_mode(const struct spec_copy *c, const struct stat *st)
{
    if (c->mode == SPEC_MODE_PRESERVE)
        return (int)(st->st_mode & 07777);
    if (c->mode >= 0)
        return c->mode;
    if (S_ISDIR(st->st_mode) || (st->st_mode & 0111))
        return 0755 | (int)(st->st_mode & 07000);
    return 0644 | (int)(st->st_mode & 07000);
}

/* Adds one context object (already lstat'ed) at layer path dest. */
static int add_entry(struct copy_state *s, const char *rel, const struct stat *st,
                     const char *dest, struct ocib_error *err)
{
    const struct spec_copy *c = s->c;
    struct layer_tree_entry e = {0};
    char target[4096];

    if (++s->count > MAX_ENTRIES)
        return ocib_error_set(err, "copy: more than %d entries", MAX_ENTRIES);
    e.uid = c->owner.set ? c->owner.uid : 0;
    e.gid = c->owner.set ? c->owner.gid : 0;
    if (S_ISREG(st->st_mode)) {
        int perm = copy_mode(c, st);

        if (s->ctx->max_file && (uint64_t)st->st_size > s->ctx->max_file)
            return ocib_error_kind_set(
                err, OCIB_ERR_LIMIT,
                "%s: '%s%s' in %s is %llu bytes%s, more than a layer may hold (%llu, "
                "limit OCIB_MAX_LAYER_BYTES)",
                c->where, s->ctx->in_root ? "/" : "", rel, s->ctx->label,
                (unsigned long long)st->st_size,
                (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size / 2 ? " (sparse)"
                                                                          : "",
                (unsigned long long)s->ctx->max_file);
        e.mode = S_IFREG | (mode_t)perm;
        e.size = (uint64_t)st->st_size;
        e.src = xstrdup(rel);
        e.st = *st;
        e.has_st = true;
    } else if (S_ISDIR(st->st_mode)) {
        e.mode = S_IFDIR | (mode_t)copy_mode(c, st);
    } else if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(s->ctx->fd, rel, target, sizeof(target) - 1);

        if (n < 0)
            return ocib_error_errno(err, errno, "cannot read symlink '%s'", rel);
        target[n] = '\0';
        e.mode = S_IFLNK | 0777;
        e.link = xstrdup(target);
    } else {
        return ocib_error_set(err,
                              "'%s' is a special file (device, fifo or socket); only "
                              "files, directories and symlinks can be copied",
                              rel);
    }
    if (!s->ctx->in_root && !S_ISDIR(st->st_mode) && git_dirty_has(s->ctx->dirty, rel))
        note_dirty(s->ctx, rel);
    e.path = xstrdup(dest);
    e.dirfd = s->ctx->fd;
    layer_tree_put(s->t, &e);
    return 0;
}

/* Adds the contents of directory rel (resolved) under layer path dest. */
static int add_dir_contents(struct copy_state *s, const char *rel, const char *dest,
                            struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    int fd = fs_open_beneath(s->ctx->fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY);

    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open directory '%s'", *rel ? rel : ".");
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ocib_error_errno(err, errno, "cannot read directory '%s'", rel);
    }
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_free_ char *crel = NULL;
        _cleanup_free_ char *cdest = NULL;
        struct stat st;
        bool is_dir;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        crel = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return ocib_error_errno(err, errno, "cannot stat '%s'", crel);
        is_dir = S_ISDIR(st.st_mode);
        cdest = *dest ? xasprintf("%s/%s", dest, de->d_name) : xstrdup(de->d_name);
        if (excluded(s, crel, is_dir)) {
            if (is_dir && may_reinclude(s, crel) &&
                add_dir_contents(s, crel, cdest, err) < 0)
                return -1;
            continue;
        }
        if (add_entry(s, crel, &st, cdest, err) < 0)
            return -1;
        if (is_dir && add_dir_contents(s, crel, cdest, err) < 0)
            return -1;
    }
    return 0;
}

/* The copy's own exclude patterns (gitignore syntax) into *ret: NULL when
 * it has none. */
static int exclude_of(const struct spec_copy *c, struct ignore **ret,
                      struct ocib_error *err)
{
    struct ignore *ex;

    *ret = NULL;
    if (!c->n_exclude)
        return 0;
    ex = ignore_new();
    for (size_t i = 0; i < c->n_exclude; i++) {
        _cleanup_free_ char *origin = xasprintf("%s.exclude[%zu]", c->where, i);

        if (ignore_add(ex, IGNORE_GIT, c->exclude[i], origin, err) < 0) {
            ignore_free(ex);
            return -1;
        }
    }
    *ret = ex;
    return 0;
}

/* Appends to srcs the copy's sources, normalised, with each glob expanded
 * to what it matches in the context (sorted); sets *multi when there is a
 * glob.  A glob that matches nothing fails naming it. */
static int expand_sources(struct context *ctx, const struct spec_copy *c,
                          struct match_list *srcs, bool *multi, struct ocib_error *err)
{
    for (size_t i = 0; i < c->n_src; i++) {
        size_t before = srcs->n;
        _cleanup_free_ char *norm = NULL;

        if (layer_path_normalise(c->src[i], &norm, err) < 0)
            return ocib_error_wrap(err, "%s.src[%zu]", c->where, i);
        if (!norm)
            norm = xstrdup("");
        if (!has_glob(norm)) {
            XGROW(srcs->v, srcs->alloc, srcs->n + 1);
            srcs->v[srcs->n++] = TAKE_PTR(norm);
            continue;
        }
        *multi = true;
        if (expand_glob(ctx, c->src[i], "", norm, srcs, err) < 0)
            return -1;
        if (srcs->n == before)
            return ocib_error_set(err, "%s.src[%zu]: no file in the context matches '%s'",
                                  c->where, i, c->src[i]);
    }
    return 0;
}

/* Adds source rel (normalised, relative to the context) at layer path dest
 * ("" for the root): a directory's contents go into dest; a file goes to
 * dest, or into it when into_dest (dest ends in '/', or there are several
 * sources).  An excluded source is skipped when multi (the copy has a glob
 * or several sources), else fails naming why. */
static int copy_source(struct copy_state *s, const char *rel, const char *dest,
                       bool into_dest, bool multi, struct ocib_error *err)
{
    struct context *ctx = s->ctx;
    const struct spec_copy *c = s->c;
    _cleanup_free_ char *resolved = NULL;
    _cleanup_free_ char *target = NULL;
    struct stat st;

    if (*rel) {
        if (resolve_parents(ctx, rel, rel, &resolved, err) < 0)
            return -1;
    } else {
        resolved = xstrdup("");
    }
    if (fstatat(ctx->fd, *resolved ? resolved : ".", &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return ocib_error_set(err, "%s: '%s%s' does not exist in %s", c->where,
                                  ctx->in_root ? "/" : "", rel, ctx->label);
        return ocib_error_errno(err, errno, "%s: cannot access '%s'", c->where, rel);
    }
    if (*resolved && excluded(s, resolved, S_ISDIR(st.st_mode)) &&
        !(S_ISDIR(st.st_mode) && may_reinclude(s, resolved))) {
        if (has_glob(c->src[0]) || multi)
            return 0;
        if (own_output(ctx, rel))
            return ocib_error_set(
                err, "%s: '%s' is ocib's own output, never part of the context", c->where,
                rel);
        return ocib_error_set(err, "%s: '%s' is excluded (by %s or exclude)", c->where, rel,
                              ctx->ignore_file ?: ".ocibignore");
    }
    if (S_ISDIR(st.st_mode)) {
        /* The directory's contents go into dest; dest itself is a dir. */
        if (*dest && add_entry(s, resolved, &st, dest, err) < 0)
            return -1;
        return add_dir_contents(s, resolved, dest, err);
    }
    if (into_dest) {
        const char *base = strrchr(resolved, '/');

        base = base ? base + 1 : resolved;
        target = *dest ? xasprintf("%s/%s", dest, base) : xstrdup(base);
    } else {
        if (!*dest)
            return ocib_error_usage(err, "%s.dest: cannot copy a file onto '/'", c->where);
        target = xstrdup(dest);
    }
    return add_entry(s, resolved, &st, target, err);
}

int context_copy(struct context *ctx, const struct spec_copy *c, const char *workdir,
                 struct layer_tree *t, struct ocib_error *err)
{
    struct match_list srcs = {0};
    struct copy_state s = {ctx, c, NULL, t, 0};
    _cleanup_free_ char *dest_abs = NULL;
    _cleanup_free_ char *dest = NULL;
    bool dest_is_dir = spec_dest_is_dir(c->dest);
    bool multi = c->n_src > 1;
    int r = -1;

    dest_abs = c->dest[0] == '/' ? xstrdup(c->dest)
                                 : xasprintf("%s/%s", workdir ? workdir : "/", c->dest);
    if (layer_path_normalise(dest_abs, &dest, err) < 0)
        return ocib_error_wrap(err, "%s.dest", c->where);
    if (!dest)
        dest = xstrdup("");
    if (exclude_of(c, &s.exclude, err) < 0 ||
        expand_sources(ctx, c, &srcs, &multi, err) < 0)
        goto out;
    if (multi && !dest_is_dir && srcs.n > 1) {
        ocib_error_usage(err,
                         "%s.dest: several sources need a directory dest (ending in '/')",
                         c->where);
        goto out;
    }
    for (size_t i = 0; i < srcs.n; i++)
        if (copy_source(&s, srcs.v[i], dest, dest_is_dir || multi, multi, err) < 0)
            goto out;
    r = 0;
out:
    for (size_t i = 0; i < srcs.n; i++)
        free(srcs.v[i]);
    free(srcs.v);
    ignore_free(s.exclude);
    return r;
}
