/*
 * Leases held by running processes; see lease.h.
 */
#include "cache/lease.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "cache/blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MAX (64 * 1024 * 1024)
/* What a lease left with its lease file already gone (a sweep that was
 * itself killed) is removed once it is this old. */
#define ORPHAN_AGE 3600

struct cache_lease {
    int fd;    /* leases/<id>, locked exclusive */
    int gc_fd; /* leases/.gc */
    pid_t pid;
    bool in_gc; /* this process holds .gc exclusive (cache_pins_collect) */
    char *id, *path, *tmp;
    bool tmp_made;
    char **pinned; /* lines already written */
    size_t n_pinned, alloc_pinned;
};

static char *leases_dir(const struct cache *c)
{
    return fs_path_join(c->dir, "leases");
}

static int flock_retry(int fd, int op)
{
    int r;

    do
        r = flock(fd, op);
    while (r < 0 && errno == EINTR);
    return r;
}

/* True when fd is still the file named name in dirfd. */
static bool same_file(int dirfd, const char *name, int fd)
{
    struct stat a, b;

    return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int cache_lease_take(struct cache *c, struct ocib_error *err)
{
    _cleanup_free_ char *dir = leases_dir(c);
    _cleanup_free_ char *gc = fs_path_join(dir, ".gc");
    struct cache_lease *l;

    if (fs_mkdir_p(dir, 0700, err) < 0)
        return -1;
    l = xcalloc(1, sizeof(*l));
    l->fd = -1;
    l->pid = getpid();
    l->gc_fd = open(gc, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l->gc_fd < 0) {
        int e = errno;

        free(l);
        return ocib_error_errno(err, e, "cannot open '%s'", gc);
    }
    for (;;) {
        char *path = xasprintf("%s/l-%ld-XXXXXX", dir, (long)l->pid);
        int fd = mkostemp(path, O_CLOEXEC | O_APPEND);

        if (fd < 0) {
            int e = errno;

            free(path);
            close(l->gc_fd);
            free(l);
            return ocib_error_errno(err, e, "cannot create a lease in '%s'", dir);
        }
        /* A sweep may have taken the new file for a dead lease in the
         * instant before it was locked, and removed it: then again. */
        if (flock_retry(fd, LOCK_EX) == 0 && same_file(AT_FDCWD, path, fd)) {
            l->fd = fd;
            l->path = path;
            l->id = xstrdup(strrchr(path, '/') + 1);
            l->tmp = fs_path_join(c->tmp, l->id);
            break;
        }
        close(fd);
        free(path);
    }
    c->lease = l;
    return 0;
}

void cache_lease_drop(struct cache *c)
{
    struct cache_lease *l = c->lease;

    if (!l)
        return;
    if (l->pid == getpid()) {
        fs_rm_rf(l->tmp, NULL);
        unlink(l->path);
    }
    close(l->fd);
    close(l->gc_fd);
    for (size_t i = 0; i < l->n_pinned; i++)
        free(l->pinned[i]);
    free(l->pinned);
    free(l->id);
    free(l->path);
    free(l->tmp);
    free(l);
    c->lease = NULL;
}

const char *cache_lease_id(const struct cache *c)
{
    return c->lease ? c->lease->id : NULL;
}

const char *cache_lease_tmp(const struct cache *c, struct ocib_error *err)
{
    struct cache_lease *l = c->lease;

    if (!l) {
        ocib_error_set(err, "cache '%s': no lease", c->dir);
        return NULL;
    }
    if (!l->tmp_made) {
        if (mkdir(l->tmp, 0700) < 0 && errno != EEXIST) {
            ocib_error_errno(err, errno, "cannot create '%s'", l->tmp);
            return NULL;
        }
        l->tmp_made = true;
    }
    return l->tmp;
}

void cache_pin(const struct cache *c, const char *kind, const char *hex)
{
    struct cache_lease *l = c->lease;
    char *line;

    if (!l)
        return;
    line = xasprintf("%s %s\n", kind, hex);
    for (size_t i = 0; i < l->n_pinned; i++) {
        if (!strcmp(l->pinned[i], line)) {
            free(line);
            return;
        }
    }
    if (!l->in_gc)
        flock_retry(l->gc_fd, LOCK_SH);
    fs_write_all(l->fd, line, strlen(line), NULL);
    if (!l->in_gc)
        flock_retry(l->gc_fd, LOCK_UN);
    XGROW(l->pinned, l->alloc_pinned, l->n_pinned + 1);
    l->pinned[l->n_pinned++] = line;
}

bool cache_lease_live(const struct cache *c, const char *id)
{
    _cleanup_free_ char *dir = leases_dir(c);
    _cleanup_free_ char *path = fs_path_join(dir, id);
    _cleanup_close_ int fd = -1;

    if (c->lease && !strcmp(id, c->lease->id))
        return true;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    return flock(fd, LOCK_SH | LOCK_NB) < 0;
}

static bool is_lease_name(const char *name)
{
    return !strncmp(name, "l-", 2);
}

/* The lease id in a private root's name (work.<id>.XXXXXX, save.<id>.XXXXXX)
 * copied into buf; false when name is none. */
static bool root_lease_id(const char *name, char *buf, size_t size)
{
    const char *dot;

    if (strncmp(name, "work.", 5) && strncmp(name, "save.", 5))
        return false;
    dot = strchr(name + 5, '.');
    if (!dot || (size_t)(dot - (name + 5)) >= size)
        return false;
    memcpy(buf, name + 5, (size_t)(dot - (name + 5)));
    buf[dot - (name + 5)] = '\0';
    return is_lease_name(buf);
}

/* Removes the temporary directory and private roots of the dead lease id. */
static void remove_owned(struct cache *c, const char *id)
{
    _cleanup_free_ char *tmp = fs_path_join(c->tmp, id);
    _cleanup_free_ char *roots = fs_path_join(c->dir, "rootfs");
    _cleanup_closedir_ DIR *d = opendir(roots);
    struct dirent *de;
    char owner[64];

    fs_rm_rf(tmp, NULL);
    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d))
        if (root_lease_id(de->d_name, owner, sizeof(owner)) && !strcmp(owner, id))
            fs_rm_rf_at(dirfd(d), de->d_name, NULL);
}

/* What was left with no lease file at all (a sweep killed half-way). */
static void sweep_orphans(struct cache *c, const char *sub, int leases_fd)
{
    _cleanup_free_ char *dir = fs_path_join(c->dir, sub);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);
    char owner[64];

    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d)) {
        const char *id = de->d_name;
        struct stat st;

        if (!strcmp(sub, "rootfs")) {
            if (!root_lease_id(de->d_name, owner, sizeof(owner)))
                continue;
            id = owner;
        } else if (!is_lease_name(id)) {
            continue;
        }
        if (fstatat(leases_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtime > ORPHAN_AGE)
            fs_rm_rf_at(dirfd(d), de->d_name, NULL);
    }
}

void cache_lease_sweep(struct cache *c)
{
    _cleanup_free_ char *dir = leases_dir(c);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_close_ int fd = -1;

        if (!is_lease_name(de->d_name) || (c->lease && !strcmp(de->d_name, c->lease->id)))
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        /* A free lock is a dead owner; holding it, nobody else sweeps the
         * same lease, and the owner's files are its to remove. */
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 ||
            !same_file(dirfd(d), de->d_name, fd))
            continue;
        remove_owned(c, de->d_name);
        unlinkat(dirfd(d), de->d_name, 0);
    }
    sweep_orphans(c, "tmp", dirfd(d));
    sweep_orphans(c, "rootfs", dirfd(d));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the lines of a lease file to p. */
static void add_lines(struct cache_pins *p, char *buf)
{
    char *save = NULL;

    for (char *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        XGROW(p->v, p->alloc, p->n + 1);
        p->v[p->n++] = xstrdup(line);
    }
}

int cache_pins_collect(struct cache *c, struct cache_pins *ret, struct ocib_error *err)
{
    _cleanup_free_ char *dir = leases_dir(c);
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;

    memset(ret, 0, sizeof(*ret));
    if (!c->lease)
        return ocib_error_set(err, "cache '%s': no lease", c->dir);
    if (flock_retry(c->lease->gc_fd, LOCK_EX) < 0)
        return ocib_error_errno(err, errno, "cannot lock '%s/.gc'", dir);
    c->lease->in_gc = true;
    d = opendir(dir);
    if (!d)
        return 0; /* no readable leases: nothing is pinned */
    for (de = readdir(d); de; de = readdir(d)) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len;

        if (!is_lease_name(de->d_name))
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (strcmp(de->d_name, c->lease->id) && flock(fd, LOCK_SH | LOCK_NB) == 0)
            continue; /* dead: pins nothing */
        if (fs_read_file_at(dirfd(d), de->d_name, LEASE_MAX, &buf, &len, NULL) == 0)
            add_lines(ret, buf);
    }
    if (ret->n)
        qsort(ret->v, ret->n, sizeof(*ret->v), cmp_str);
    return 0;
}

bool cache_pins_has(const struct cache_pins *p, const char *kind, const char *hex)
{
    _cleanup_free_ char *line = xasprintf("%s %s", kind, hex);
    const char *key = line;

    return p->n && bsearch(&key, p->v, p->n, sizeof(*p->v), cmp_str);
}

void cache_pins_release(struct cache *c, struct cache_pins *p)
{
    if (c->lease && c->lease->in_gc) {
        c->lease->in_gc = false;
        flock_retry(c->lease->gc_fd, LOCK_UN);
    }
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof(*p));
}
