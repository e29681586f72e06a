/*
 * Deterministic layer writer: tar entries in, a finished layer blob out.
 *
 * One pass: libarchive formats the tar (pax-restricted: plain ustar unless a
 * name or size needs a pax record), whose bytes are hashed for the diff_id,
 * compressed, hashed again for the digest and written to an fd.  No layer is
 * ever held in memory or read twice.  Every entry gets the writer's
 * timestamp, numeric owners and no uname/gname, atime or ctime; the caller
 * (layers/tree.h) supplies entries sorted and complete.
 *
 * Paths are written as UTF-8: the program must run with LC_CTYPE set to
 * C.UTF-8 (cli/main.c does), since libarchive converts names through the
 * C library's locale; in the plain C locale non-ASCII names fail.
 */
#ifndef OCIB_LAYERS_TAR_WRITER_H
#define OCIB_LAYERS_TAR_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "layers/compress.h"
#include "oci/digest.h"

struct layer_entry {
    const char *path; /* relative, '/'-separated, no leading "/" or "./" */
    mode_t mode;      /* file type and permission bits */
    unsigned uid, gid;
    uint64_t size;    /* regular files */
    const char *link; /* symlink target, or hardlink target path */
    bool hardlink;
    const void *caps; /* regular files: the security.capability xattr's
                       * value, written as SCHILY.xattr.security.capability
                       * (as Docker does), or NULL */
    size_t caps_len;
};

struct layer_result {
    struct oci_digest digest;  /* of the compressed blob */
    struct oci_digest diff_id; /* of the tar */
    uint64_t size;             /* compressed size */
    uint64_t tar_size;
    const char *media_type; /* static */
};

struct layer_writer;

/* Starts a layer written to out_fd (which the writer does not close). */
int layer_writer_new(int out_fd, enum layer_compression c, int64_t mtime,
                     struct layer_writer **ret, struct ocib_error *err);
/* Adds an entry with no content (directory, symlink, hardlink, empty file
 * when size is 0). */
int layer_writer_add(struct layer_writer *w, const struct layer_entry *e,
                     struct ocib_error *err);
/* Adds a regular file whose e->size bytes are read from fd; fails naming the
 * path if the file turns out shorter or longer (it changed while read).
 * content (may be NULL) is fed the file's bytes. */
int layer_writer_add_fd(struct layer_writer *w, const struct layer_entry *e, int fd,
                        struct sha256 *content, struct ocib_error *err);
/* Adds a regular file whose content is in memory (e->size bytes). */
int layer_writer_add_data(struct layer_writer *w, const struct layer_entry *e,
                          const void *data, struct ocib_error *err);
/* Ends the archive and the compressed stream and reports the digests. */
int layer_writer_finish(struct layer_writer *w, struct layer_result *ret,
                        struct ocib_error *err);
void layer_writer_free(struct layer_writer *w);
/* Tar bytes compressed so far; safe to call from another thread while the
 * writer's thread adds entries (live progress). */
uint64_t layer_writer_tar_bytes(struct layer_writer *w);

#endif
