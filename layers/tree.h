/*
 * The set of entries that make one layer, and the rules that make its tar
 * deterministic: entries sorted byte-wise by path (a directory precedes its
 * contents), every parent directory present (0755 root:root unless given),
 * a later entry for the same path replacing an earlier one, and files that
 * share an inode within the layer written as hardlinks to the first path.
 *
 * Regular file content comes from a file under a source directory (opened
 * with O_NOFOLLOW relative to the directory fd given to layer_tree_write,
 * never through a symlink) or from memory.
 */
#ifndef OCIB_LAYERS_TREE_H
#define OCIB_LAYERS_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/error.h"
#include "layers/tar_writer.h"

struct layer_tree_entry {
    char *path;  /* normalised layer path */
    mode_t mode; /* type and permissions */
    unsigned uid, gid;
    uint64_t size;
    char *link;     /* symlink target */
    char *src;      /* regular file: path relative to the source dir fd */
    int dirfd;      /* the directory src is relative to; 0: the one given to
                     * layer_tree_write / layer_tree_hash_files */
    char *data;     /* regular file: content in memory (when src is NULL) */
    struct stat st; /* of src when there is one (hardlinks, stat cache) */
    bool has_st;
    char digest[65]; /* content digest (hex) of a regular file, "" until known */
    size_t seq;      /* insertion order, so that the last one wins */
    bool implicit;   /* parent directory added by the tree */
    bool keep_caps;  /* a file a command made: its security.capability
                      * xattr, if any, goes into the layer */
};

struct layer_tree {
    struct layer_tree_entry *entries;
    size_t n, alloc;
};

void layer_tree_init(struct layer_tree *t);
void layer_tree_release(struct layer_tree *t);

/* Normalises a destination path: strips leading '/', "./", repeated and
 * trailing '/', resolves nothing ("..": error).  Returns NULL for the root,
 * else a new string.  Fails on ".." components and NUL-free over-long paths. */
int layer_path_normalise(const char *path, char **ret, struct ocib_error *err);

/* Adds an entry; the tree takes ownership of the strings in e (path, link,
 * src, data), which must be heap-allocated. */
void layer_tree_put(struct layer_tree *t, struct layer_tree_entry *e);

/* Sorts, completes parents and writes every entry to w, reading file
 * contents relative to src_dirfd; the content digest of each file read is
 * recorded in its entry on the way.  The tree is left sorted. */
int layer_tree_write(struct layer_tree *t, int src_dirfd, struct layer_writer *w,
                     struct ocib_error *err);

/* Sorts and completes the tree without writing (for listing and keys). */
void layer_tree_finalise(struct layer_tree *t);

/* Moves the entries of a finalised tree: paths[i] (owned by the tree from
 * now on) is entry i's new path, NULL to drop it.  The parents the tree had
 * added are dropped and the tree finalised again; of entries that meet at
 * one path the later one stays. */
void layer_tree_retarget(struct layer_tree *t, char **paths);

/* Fills the content digest of every regular file entry that has none, by
 * reading it (relative to src_dirfd).  on_hashed (may be NULL) is told of
 * each file hashed, e.g. to update a stat cache. */
int layer_tree_hash_files(struct layer_tree *t, int src_dirfd,
                          void (*on_hashed)(void *opaque, const struct layer_tree_entry *e),
                          void *opaque, struct ocib_error *err);

#endif
