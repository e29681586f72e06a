/*
 * File system helpers shared by every layer of ocib.
 *
 * Small files are read whole only under an explicit size cap; state is
 * written through a temporary file and rename() so that a reader never sees
 * half a file; trees are created and removed without following symlinks.
 */
#ifndef OCIB_BASE_FS_H
#define OCIB_BASE_FS_H

#include <stdint.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/types.h>

#include "base/error.h"

struct sha256;

/* Reads the whole file at path (relative to dirfd, AT_FDCWD for the current
 * directory) into a NUL-terminated buffer the caller frees.  Fails when the
 * file is larger than cap bytes.  The outputs are untouched on failure. */
int fs_read_file_at(int dirfd, const char *path, size_t cap, char **ret_buf,
                    size_t *ret_len, struct ocib_error *err);
static inline int fs_read_file(const char *path, size_t cap, char **ret_buf,
                               size_t *ret_len, struct ocib_error *err)
{
    return fs_read_file_at(AT_FDCWD, path, cap, ret_buf, ret_len, err);
}

/* Writes all len bytes, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *buf, size_t len, struct ocib_error *err);

/* Writes path atomically and durably: a temporary file in the same
 * directory, synced, then rename(), then the directory synced.  The file
 * gets exactly mode (the umask does not apply). */
int fs_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                         struct ocib_error *err);

/* fsync of the directory dir (so that names renamed into it survive a power
 * loss), and of the directory holding path. */
int fs_sync_dir(const char *dir, struct ocib_error *err);
int fs_sync_parent(const char *path, struct ocib_error *err);

/* Creates path and its missing parents with mode; existing dirs are fine. */
int fs_mkdir_p(const char *path, mode_t mode, struct ocib_error *err);

/* Removes path recursively, never following symlinks.  A missing path is
 * not an error. */
int fs_rm_rf(const char *path, struct ocib_error *err);

/* The names in a directory ("." and ".." left out), sorted byte-wise. */
struct fs_names {
    char **v;
    size_t n, alloc;
};

/* Lists the directory dirfd (which stays open); path names it in errors
 * ("" for "."). */
int fs_read_names(int dirfd, const char *path, struct fs_names *ret,
                  struct ocib_error *err);
void fs_names_release(struct fs_names *l);

/* fs_rm_rf of name in the directory parent (never following a symlink). */
int fs_rm_rf_at(int parent, const char *name, struct ocib_error *err);

/* Creates a fresh directory next to path, named ".<basename>.tmp-XXXXXX",
 * and returns its path (caller frees). */
int fs_mkdtemp_beside(const char *path, char **ret_path, struct ocib_error *err);

/* Copies everything from in_fd to out_fd (out_fd < 0: reads only), feeding
 * the bytes to h when h is not NULL.  Uses a bounded buffer.  ret_size (may
 * be NULL) gets the count. */
int fs_copy_fd(int in_fd, int out_fd, struct sha256 *h, unsigned long long *ret_size,
               struct ocib_error *err);

/* Returns 1 if path exists (without following a final symlink), 0 if not. */
int fs_exists(const char *path);

/* Joins a and b with exactly one '/'; caller frees. */
char *fs_path_join(const char *a, const char *b);

/* The one openat2 caller: opens path ("" for dirfd itself) relative to dirfd
 * with open flags (O_CLOEXEC added) and RESOLVE_* bits, retrying while the
 * kernel answers EAGAIN (a rename raced with the lookup) or EINTR.  Returns
 * the fd or -1 with errno set (ENOSYS before Linux 5.6). */
int fs_openat2(int dirfd, const char *path, int flags, uint64_t resolve);

/* Opens path below dirfd without ever following a symlink or leaving dirfd
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS; on kernels without openat2,
 * openat with O_NOFOLLOW).  Returns the fd or -1 with errno set. */
int fs_open_beneath(int dirfd, const char *path, int flags);

/* Opens path ("" for dirfd itself) below dirfd, following symlinks only
 * while they stay beneath it, as a bind mount or a process chrooted there
 * would resolve them; ".." never climbs out and magic links (/proc/self/fd)
 * are refused.  -1 with errno set: EXDEV or ELOOP when the path leads
 * outside, ENOSYS without openat2. */
int fs_open_within(int dirfd, const char *path, int flags);
#endif
