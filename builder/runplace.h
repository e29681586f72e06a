/*
 * What a run step puts into the stage root for the time of its command and
 * takes away once its change was captured, so that none of it reaches a
 * layer.
 *
 * Placeholders are the mount points the root lacks (the sandbox mounts
 * cache directories, secrets and the host's resolv.conf onto them).  Under
 * --isolation chroot nothing can be mounted, so the things themselves are
 * placed: a secret file copied in (with its mode and owner), a cache
 * directory moved in by rename (the cache and the stage roots share one
 * file system), the host's resolv.conf and hosts copied.  Whatever the
 * root had at such a target waits beside the root meanwhile and is put
 * back.  Nothing is created, moved or removed through a path that leads
 * outside the root.
 */
#ifndef OCIB_BUILDER_RUNPLACE_H
#define OCIB_BUILDER_RUNPLACE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* A mount point the root lacks, made before the command and removed after. */
struct placeholder {
    char *path; /* relative to the root */
    bool dir;
};

/* The placeholders made so far, deepest last. */
struct placeholders {
    struct placeholder *v;
    size_t n, alloc;
};

/* Makes sure target exists in the root (root_fd) for a bind mount,
 * creating what is missing (remembered in list for removal, deepest last).
 * A target that leads outside (an absolute symlink, "..") is refused. */
int make_placeholder(int root_fd, const char *target, bool dir, struct placeholders *list,
                     struct ocib_error *err);

/* Removes the placeholders, never through a path that now leads outside
 * the root (the command may have replaced a directory with a symlink);
 * frees the list. */
void remove_placeholders(int root_fd, struct placeholders *list);

/* One thing placed at a target for --isolation chroot. */
struct placed {
    char *path;  /* relative to the root */
    char *aside; /* the root's own entry there, moved beside the root; or NULL */
    char *back;  /* a moved-in directory: where it goes back; NULL: a copy */
};

struct placements {
    struct placed *v;
    size_t n, alloc;
    struct placeholders ph; /* the targets and parents made for them */
    char *aside_dir;        /* "<root>.aside-XXXXXX", made on first use */
};

/* Copies the file src into the root (root_fd, at root_path) at target,
 * with src's mode and owner. */
int place_copy(int root_fd, const char *root_path, const char *target, const char *src,
               struct placements *pl, struct ocib_error *err);

/* Moves the directory dir (on the root's file system) into the root at
 * target. */
int place_dir(int root_fd, const char *root_path, const char *target, const char *dir,
              struct placements *pl, struct ocib_error *err);

/* Takes away everything placed (moved directories go back, copies are
 * removed), then the placeholders, then puts the root's own entries back;
 * frees pl.  Best effort: what the command removed stays removed. */
void placements_undo(int root_fd, struct placements *pl);

#endif
