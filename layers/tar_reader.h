/*
 * Reading a layer tar as a stream of entries, for comparing layers.
 *
 * A tar_reader walks a layer blob (plain tar, or compressed with any filter
 * libarchive knows: gzip, zstd, ...) entry by entry and yields each entry's
 * metadata together with the sha256 of its content, hashed while the content
 * streams past in a fixed-size buffer.  Nothing is ever written to disk and
 * memory does not depend on the size of the layer or of any entry: content
 * is hashed and dropped.
 *
 * Limits on input from outside: at most TAR_READER_MAX_ENTRIES entries, path
 * and link target at most TAR_READER_MAX_PATH bytes, extended attributes at
 * most TAR_READER_MAX_XATTRS bytes in all per entry.  Exceeding one is an
 * error naming the entry.
 *
 * Paths are read as the C library's locale converts them: like the writer
 * (layers/tar_writer.h), the program should run with LC_CTYPE=C.UTF-8.
 */
#ifndef OCIB_LAYERS_TAR_READER_H
#define OCIB_LAYERS_TAR_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "oci/digest.h"

#define TAR_READER_MAX_ENTRIES (2 * 1000 * 1000)
#define TAR_READER_MAX_PATH 4096
#define TAR_READER_MAX_XATTRS (64 * 1024)

/* One tar entry.  Every string is owned by the entry (tar_entry_release). */
struct tar_entry {
    char *path;    /* normalised: no leading "/" or "./", no trailing "/" */
    char *name;    /* the name exactly as stored */
    char type;     /* '-' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c', 'b', 'p', '?' */
    unsigned mode; /* permission bits (07777) */
    int64_t uid, gid;
    char *uname; /* NULL when the entry has none */
    char *gname;
    int64_t mtime; /* seconds; 0 when unset */
    long mtime_nsec;
    int64_t size;              /* size of the content as stored */
    char *link;                /* symlink or hardlink target, or NULL */
    char *xattrs;              /* "name=value" lines sorted by name (value escaped
                                * as hex when not printable), or NULL when none */
    struct oci_digest content; /* regular files: sha256 of the content; else "" */
    size_t seq;                /* position in the stream, from 0 */
    char *data;                /* the content, for paths tar_reader_keep names; else NULL */
    size_t data_len;           /* (data is NUL-terminated besides) */
};

void tar_entry_release(struct tar_entry *e);

struct tar_reader;

/* Opens the layer blob at path.  Fails naming path if it cannot be read. */
int tar_reader_open_file(const char *path, struct tar_reader **ret, struct ocib_error *err);
/* Opens a layer held in memory (len bytes at buf, which must outlive the
 * reader). */
int tar_reader_open_memory(const void *buf, size_t len, struct tar_reader **ret,
                           struct ocib_error *err);

/* Reads the next entry and hashes its content.  Returns 1 with *ret filled
 * (the caller releases it), 0 at the end of the archive (*ret untouched), or
 * -1 on a corrupt or truncated stream or an exceeded limit.  After the end
 * it keeps returning 0. */
int tar_reader_next(struct tar_reader *r, struct tar_entry *ret, struct ocib_error *err);

/* Regular files whose normalised path is one of paths (NULL-terminated,
 * must outlive the reader) keep their content in the entry's data; one
 * larger than max bytes fails the read. */
void tar_reader_keep(struct tar_reader *r, const char *const *paths, size_t max);
/* The same for the regular files that want(path, size, opaque) accepts
 * (by their normalised path and size; called once per entry, before its
 * content is read); max is shared with the above. */
void tar_reader_keep_if(struct tar_reader *r,
                        bool (*want)(const char *path, int64_t size, void *opaque),
                        void *opaque, size_t max);

/* The tar format of the last header read ("POSIX pax interchange format",
 * "GNU tar format", ...), or "" before the first. */
const char *tar_reader_format(struct tar_reader *r);

void tar_reader_free(struct tar_reader *r);

#endif
