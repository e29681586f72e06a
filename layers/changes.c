/*
 * Filesystem changes as layer entries; see changes.h.
 *
 * Design note.  A snapshot is an array of fixed-size records in depth-first
 * order, siblings sorted byte-wise, with every path and symlink target kept
 * in one string arena (offsets, not pointers, since the arena grows).  That
 * order is the one path_cmp() defines, where '/' sorts before any other
 * byte: a directory is followed directly by everything below it, so two
 * snapshots are compared by a single merge and "everything below P" is a
 * contiguous run that a small stack of frames (one per enclosing directory
 * with a special status) can ignore or reinterpret while the merge passes.
 */
#include "layers/changes.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_PATH_MAX 4096
#define SNAPSHOT_ENTRIES_MAX ((size_t)1 << 24)
#define SNAPSHOT_DEPTH_MAX 1024
#define NO_LINK SIZE_MAX

#define WHITEOUT_PREFIX ".wh."

struct snap_entry {
    size_t path; /* offset of the path in names */
    size_t link; /* offset of the symlink target in names, or NO_LINK */
    uint64_t size, dev, ino, nlink;
    struct timespec mtim, ctim;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    bool mount; /* on another file system: a mount point, never a change */
};

struct snapshot {
    struct snap_entry *e;
    size_t n, alloc;
    struct strbuf names; /* NUL-separated paths and symlink targets */
};

static const char *snap_path(const struct snapshot *s, size_t i)
{
    return s->names.buf + s->e[i].path;
}

static const char *snap_link(const struct snapshot *s, size_t i)
{
    return s->e[i].link == NO_LINK ? NULL : s->names.buf + s->e[i].link;
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    free(s->e);
    strbuf_release(&s->names);
    free(s);
}
OCIB_DEFINE_CLEANUP(struct snapshot, snapshot_free)

size_t snapshot_count(const struct snapshot *s)
{
    return s->n;
}

/* '/' ranks below every other byte, so that "a/x" < "a-b" and a directory's
 * contents follow it directly. */
static int path_rank(unsigned char c)
{
    return c == '\0' ? 0 : c == '/' ? 1 : c + 1;
}

static int path_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        if (*a != *b)
            return path_rank((unsigned char)*a) - path_rank((unsigned char)*b);
        if (!*a)
            return 0;
    }
}

/* Index of path in s, or -1. */
static ssize_t snap_find(const struct snapshot *s, const char *path)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = path_cmp(path, snap_path(s, mid));

        if (!c)
            return (ssize_t)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

bool changes_path_skipped(const char *path, const char *const *skip)
{
    for (; skip && *skip; skip++) {
        const char *s = *skip;
        size_t len;

        while (*s == '/')
            s++;
        len = strlen(s);
        while (len && s[len - 1] == '/')
            len--;
        if (len && !strncmp(path, s, len) && (path[len] == '\0' || path[len] == '/'))
            return true;
    }
    return false;
}

/* ---- taking a snapshot ------------------------------------------------- */

struct walker {
    struct snapshot *s;
    const char *const *skip;
    dev_t root_dev;
    struct strbuf path; /* of the directory being walked, "" for the root */
};

static int record(struct walker *w, const struct stat *st, const char *link, bool mount,
                  struct ocib_error *err)
{
    struct snapshot *s = w->s;
    struct snap_entry *e;

    if (s->n >= SNAPSHOT_ENTRIES_MAX)
        return ocib_error_set(err, "more than %zu entries under the root",
                              SNAPSHOT_ENTRIES_MAX);
    XGROW(s->e, s->alloc, s->n + 1);
    e = &s->e[s->n++];
    memset(e, 0, sizeof(*e));
    e->path = s->names.len;
    strbuf_add(&s->names, w->path.buf, w->path.len + 1);
    e->link = NO_LINK;
    if (link) {
        e->link = s->names.len;
        strbuf_add(&s->names, link, strlen(link) + 1);
    }
    e->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    e->dev = (uint64_t)st->st_dev;
    e->ino = (uint64_t)st->st_ino;
    e->nlink = (uint64_t)st->st_nlink;
    e->mtim = st->st_mtim;
    e->ctim = st->st_ctim;
    e->mode = st->st_mode;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    e->mount = mount;
    return 0;
}

static int walk_dir(struct walker *w, int dirfd, unsigned depth, struct ocib_error *err);

/* Records the entry name in dirfd (w->path already names it) and, for a
 * directory on the root's file system, everything below it. */
static int walk_entry(struct walker *w, int dirfd, const char *name, unsigned depth,
                      struct ocib_error *err)
{
    const char *path = w->path.buf;
    _cleanup_close_ int fd = -1;
    char target[SNAPSHOT_PATH_MAX + 1];
    struct stat st, st2;

    if (w->path.len > SNAPSHOT_PATH_MAX)
        return ocib_error_set(err, "path '%.64s...' is longer than %d bytes", path,
                              SNAPSHOT_PATH_MAX);
    if (changes_path_skipped(path, w->skip))
        return 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) /* gone while we looked: absent */
            return 0;
        return ocib_error_errno(err, errno, "cannot stat '%s'", path);
    }
    if (st.st_dev != w->root_dev)
        return record(w, &st, NULL, true, err);
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target));

        if (n < 0)
            return ocib_error_errno(err, errno, "cannot read symlink '%s'", path);
        if ((size_t)n >= sizeof(target))
            return ocib_error_set(err, "symlink '%s' has a target longer than %d bytes",
                                  path, SNAPSHOT_PATH_MAX);
        target[n] = '\0';
        return record(w, &st, target, false, err);
    }
    if (record(w, &st, NULL, false, err) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (depth >= SNAPSHOT_DEPTH_MAX)
        return ocib_error_set(err, "'%s' is more than %d directories deep", path,
                              SNAPSHOT_DEPTH_MAX);
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ocib_error_errno(err, errno, "cannot open directory '%s'", path);
    if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
        return ocib_error_set(err, "directory '%s' changed while it was listed", path);
    return walk_dir(w, fd, depth + 1, err);
}

static int walk_dir(struct walker *w, int dirfd, unsigned depth, struct ocib_error *err)
{
    struct fs_names names = {NULL, 0, 0};
    size_t base = w->path.len;
    int r = 0;

    if (fs_read_names(dirfd, w->path.buf, &names, err) < 0)
        return -1;
    for (size_t i = 0; i < names.n && r == 0; i++) {
        strbuf_setlen(&w->path, base);
        if (base)
            strbuf_addch(&w->path, '/');
        strbuf_addstr(&w->path, names.v[i]);
        r = walk_entry(w, dirfd, names.v[i], depth, err);
    }
    strbuf_setlen(&w->path, base);
    fs_names_release(&names);
    return r;
}

int snapshot_take(int root_fd, const char *const *skip, struct snapshot **ret,
                  struct ocib_error *err)
{
    _cleanup_(snapshot_freep) struct snapshot *s = xcalloc(1, sizeof(*s));
    struct walker w = {.s = s, .skip = skip, .path = STRBUF_INIT};
    struct stat st;
    int r;

    if (fstat(root_fd, &st) < 0)
        return ocib_error_errno(err, errno, "cannot stat the root directory");
    if (!S_ISDIR(st.st_mode))
        return ocib_error_set(err, "the root is not a directory");
    w.root_dev = st.st_dev;
    strbuf_str(&w.path);
    strbuf_str(&s->names);
    r = walk_dir(&w, root_fd, 0, err);
    strbuf_release(&w.path);
    if (r < 0)
        return ocib_error_wrap(err, "cannot snapshot the root");
    *ret = TAKE_PTR(s);
    return 0;
}

/* ---- comparing --------------------------------------------------------- */

/* A directory whose subtree the merge treats specially. */
enum {
    FRAME_IGNORE = 1, /* skipped or mounted: no entry, no whiteout */
    FRAME_GONE = 2,   /* the old contents are gone as a whole: no whiteouts
                       * below, and every current entry below is new */
};

struct frame {
    const char *path;
    size_t len;
    int flags; /* its own and those of the frames around it */
};

enum { EMIT_NONE, EMIT_SELF, EMIT_PARENT };

struct whiteout {
    const char *path; /* the deleted path */
};

struct differ {
    const struct snapshot *before, *after;
    const char *const *skip;
    unsigned char *emit; /* per after entry */
    struct frame *frames;
    size_t n_frames, alloc_frames;
    struct whiteout *wh;
    size_t n_wh, alloc_wh;
    bool in_place; /* a file that was there changed without a new inode */
};

static void push_frame(struct differ *d, const char *path, int flags)
{
    int outer = d->n_frames ? d->frames[d->n_frames - 1].flags : 0;

    XGROW(d->frames, d->alloc_frames, d->n_frames + 1);
    d->frames[d->n_frames++] = (struct frame){path, strlen(path), flags | outer};
}

static bool frame_holds(const struct frame *f, const char *path)
{
    return !strncmp(path, f->path, f->len) && path[f->len] == '/';
}

static void add_whiteout(struct differ *d, const char *path)
{
    XGROW(d->wh, d->alloc_wh, d->n_wh + 1);
    d->wh[d->n_wh++] = (struct whiteout){path};
}

static bool same_metadata(const struct snapshot *b, size_t i, const struct snapshot *a,
                          size_t j)
{
    const struct snap_entry *x = &b->e[i], *y = &a->e[j];
    const char *lx = snap_link(b, i), *ly = snap_link(a, j);

    /* A directory's ctime says nothing a layer records (its entries are
     * compared one by one); a file's catches a rewrite that kept its size
     * and put its mtime back. */
    return x->mode == y->mode && x->uid == y->uid && x->gid == y->gid &&
           x->size == y->size && x->dev == y->dev && x->ino == y->ino &&
           x->mtim.tv_sec == y->mtim.tv_sec && x->mtim.tv_nsec == y->mtim.tv_nsec &&
           (S_ISDIR(x->mode) ||
            (x->ctim.tv_sec == y->ctim.tv_sec && x->ctim.tv_nsec == y->ctim.tv_nsec)) &&
           (lx && ly ? !strcmp(lx, ly) : lx == ly);
}

/* One step of the merge: path is in before at index bi (or bi < 0) and in
 * after at index ai (or ai < 0). */
static void diff_one(struct differ *d, const char *path, ssize_t bi, ssize_t ai)
{
    const struct snapshot *b = d->before, *a = d->after;
    int flags;

    while (d->n_frames && !frame_holds(&d->frames[d->n_frames - 1], path))
        d->n_frames--;
    flags = d->n_frames ? d->frames[d->n_frames - 1].flags : 0;
    if (flags & FRAME_IGNORE)
        return;
    if ((bi >= 0 && b->e[bi].mount) || (ai >= 0 && a->e[ai].mount) ||
        (bi >= 0 && changes_path_skipped(path, d->skip))) {
        push_frame(d, path, FRAME_IGNORE);
        return;
    }
    if (flags & FRAME_GONE)
        bi = -1;
    if (ai < 0) {
        if (bi < 0)
            return;
        add_whiteout(d, path);
        if (S_ISDIR(b->e[bi].mode))
            push_frame(d, path, FRAME_GONE);
        return;
    }
    if (bi < 0) {
        d->emit[ai] = EMIT_SELF;
        return;
    }
    if ((b->e[bi].mode & S_IFMT) != (a->e[ai].mode & S_IFMT)) {
        /* The unpacker replaces the old entry, old children and all. */
        d->emit[ai] = EMIT_SELF;
        if (S_ISDIR(b->e[bi].mode))
            push_frame(d, path, FRAME_GONE);
        return;
    }
    /* A directory deleted and created again is compared child by child like
     * any other (its gone children get whiteouts), never made opaque: whether
     * the file system hands it a new inode number is chance, and a layer's
     * bytes must not depend on chance. */
    if (!same_metadata(b, (size_t)bi, a, (size_t)ai)) {
        d->emit[ai] = EMIT_SELF;
        if (!S_ISDIR(a->e[ai].mode) && a->e[ai].ino == b->e[bi].ino &&
            a->e[ai].dev == b->e[bi].dev)
            d->in_place = true;
    }
}

/* Marks the directories that hold path (which need not be in after) for the
 * layer, stopping at one already marked: its own parents are marked, or will
 * be when it is visited. */
static void mark_parents(struct differ *d, const char *path)
{
    _cleanup_free_ char *p = xstrdup(path);
    char *slash;

    for (slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        ssize_t k;

        *slash = '\0';
        k = snap_find(d->after, p);
        if (k < 0 || d->emit[k] != EMIT_NONE)
            break;
        d->emit[k] = EMIT_PARENT;
    }
}

static unsigned map_id(unsigned (*map)(unsigned), unsigned id)
{
    return map ? map(id) : id;
}

static void put_after(const struct snapshot *a, size_t j, unsigned (*map_uid)(unsigned),
                      unsigned (*map_gid)(unsigned), struct layer_tree *t)
{
    const struct snap_entry *x = &a->e[j];
    const char *link = snap_link(a, j);
    struct layer_tree_entry e = {
        .path = xstrdup(snap_path(a, j)),
        .mode = x->mode,
        .uid = map_id(map_uid, x->uid),
        .gid = map_id(map_gid, x->gid),
        .size = x->size,
        .link = link ? xstrdup(link) : NULL,
        .src = S_ISREG(x->mode) ? xstrdup(snap_path(a, j)) : NULL,
        .has_st = true,
        .keep_caps = true,
    };

    e.st.st_dev = (dev_t)x->dev;
    e.st.st_ino = (ino_t)x->ino;
    e.st.st_nlink = (nlink_t)x->nlink;
    e.st.st_mode = x->mode;
    e.st.st_uid = x->uid;
    e.st.st_gid = x->gid;
    e.st.st_size = (off_t)x->size;
    e.st.st_mtim = x->mtim;
    e.st.st_ctim = x->ctim;
    layer_tree_put(t, &e);
}

void changes_put_whiteout(struct layer_tree *t, const char *path)
{
    const char *slash = strrchr(path, '/');
    struct layer_tree_entry e = {.mode = S_IFREG, .data = xstrdup("")};

    if (slash)
        e.path =
            xasprintf("%.*s/" WHITEOUT_PREFIX "%s", (int)(slash - path), path, slash + 1);
    else
        e.path = xasprintf(WHITEOUT_PREFIX "%s", path);
    layer_tree_put(t, &e);
}

bool changes_representable(mode_t mode)
{
    return S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode) || S_ISFIFO(mode);
}

int snapshot_diff(const struct snapshot *before, int root_fd, const char *const *skip,
                  unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                  struct layer_tree *t, struct ocib_error *err)
{
    return snapshot_diff_ex(before, root_fd, skip, map_uid, map_gid, t, NULL, err);
}

int snapshot_diff_ex(const struct snapshot *before, int root_fd, const char *const *skip,
                     unsigned (*map_uid)(unsigned), unsigned (*map_gid)(unsigned),
                     struct layer_tree *t, bool *ret_in_place, struct ocib_error *err)
{
    _cleanup_(snapshot_freep) struct snapshot *after = NULL;
    _cleanup_free_ unsigned char *emit = NULL;
    struct differ d = {.before = before, .skip = skip};
    size_t i = 0, j = 0;

    if (snapshot_take(root_fd, skip, &after, err) < 0)
        return -1;
    emit = xcalloc(after->n ? after->n : 1, 1);
    d.after = after;
    d.emit = emit;
    while (i < before->n || j < after->n) {
        int c = i >= before->n  ? 1
                : j >= after->n ? -1
                                : path_cmp(snap_path(before, i), snap_path(after, j));

        if (c < 0)
            diff_one(&d, snap_path(before, i), (ssize_t)i, -1);
        else
            diff_one(&d, snap_path(after, j), c ? -1 : (ssize_t)i, (ssize_t)j);
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
    }
    for (j = 0; j < after->n; j++) {
        if (emit[j] == EMIT_SELF && !changes_representable(after->e[j].mode))
            emit[j] = EMIT_NONE;
    }
    for (j = 0; j < after->n; j++) {
        if (emit[j] == EMIT_SELF)
            mark_parents(&d, snap_path(after, j));
    }
    for (size_t k = 0; k < d.n_wh; k++)
        mark_parents(&d, d.wh[k].path);

    for (j = 0; j < after->n; j++) {
        if (emit[j] != EMIT_NONE)
            put_after(after, j, map_uid, map_gid, t);
    }
    for (size_t k = 0; k < d.n_wh; k++)
        changes_put_whiteout(t, d.wh[k].path);
    free(d.frames);
    free(d.wh);
    if (ret_in_place)
        *ret_in_place = d.in_place;
    return 0;
}
