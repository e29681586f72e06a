/*
 * Changing a directory tree only beneath its root, for layers/unpack.c.
 * Nothing outside layers/ includes this header.
 *
 * An unpack writes each entry relative to its parent directory, which is
 * opened here with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) relative
 * to the root: the kernel guarantees it resolves to a directory beneath the
 * root or fails.  What is removed (a replaced entry, a whiteout's victim, an
 * opaque directory's contents) is removed here too, never through a
 * symlink.  Unprivileged callers get read-only directories they own made
 * writable while they change them.
 *
 * Errors name the layer and the entry being applied, as
 * "layer D: entry 'N': ...".
 */
#ifndef OCIB_LAYERS_UNPACK_ROOT_H
#define OCIB_LAYERS_UNPACK_ROOT_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"

/* The root an unpack writes beneath, and what its messages name. */
struct unpack_root {
    int fd;             /* the root directory, open and owned by the caller */
    bool privileged;    /* euid 0: permission bits never stop us */
    const char *digest; /* the layer */
    const char *name;   /* the current entry's name as stored */
};

/* Records "layer D: entry 'N': <fmt>[: strerror(errnum)]".  Returns -1. */
int unpack_fail(struct ocib_error *err, const struct unpack_root *r, int errnum,
                const char *fmt, ...) OCIB_PRINTF(4, 5);

/* A parent directory opened beneath the root.  When we had to give its
 * owner write permission to change it, mode is what to put back. */
struct unpack_parent {
    int fd;
    bool restore;
    mode_t mode;
};

#define UNPACK_PARENT_INIT                                                                 \
    {                                                                                      \
        -1, false, 0                                                                       \
    }

/* Puts back the mode the directory had and closes it. */
void unpack_parent_release(struct unpack_parent *p);

/* Opens the parent directory path ("" for the root) beneath the root into
 * *ret.  With create, missing directories are made (0755, owned by the
 * caller); without, a missing one returns 1 (*ret untouched).  Returns 0, 1,
 * or -1 when the path leads outside the root or cannot be opened. */
int unpack_parent_open(const struct unpack_root *r, const char *path, bool create,
                       struct unpack_parent *ret, struct ocib_error *err);

/* Opens the directory at path ("" for the root) beneath the root.  Symlinks
 * are followed only while they stay beneath it.  Returns the fd (readable, or
 * O_PATH when the directory cannot be read) or -1 with errno set. */
int unpack_dir_open(const struct unpack_root *r, const char *path);

/* Unprivileged callers: gives the owner write and search permission on the
 * directory fd when it lacks them (a read-only directory from a lower layer),
 * so that an entry can be written into it.  Returns true when the mode was
 * changed, with the old one in *ret_mode. */
bool unpack_dir_widen(const struct unpack_root *r, int fd, mode_t *ret_mode);

/* Removes everything in the directory fd (which stays open), never following
 * a symlink.  Returns 0 or -1 with errno set. */
int unpack_dir_empty(const struct unpack_root *r, int fd);

/* Removes whatever is at name in dfd (recursively for a directory); a missing
 * entry is fine.  Returns 0 or -1 with errno set. */
int unpack_remove_at(const struct unpack_root *r, int dfd, const char *name);

#endif
