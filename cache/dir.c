/*
 * Where the cache lives; see dir.h.
 */
#include "cache/dir.h"
#include "base/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int cache_dir_resolve(const char *dir, char **ret_real, bool *ret_was_link,
                      struct ocib_error *err)
{
    struct stat st;
    bool link;
    char *real;

    if (lstat(dir, &st) < 0) {
        if (errno != ENOENT)
            return ocib_error_errno(err, errno, "cache directory '%s'", dir);
        if (fs_mkdir_p(dir, 0700, err) < 0)
            return ocib_error_wrap(err, "cache directory '%s'", dir);
        if (lstat(dir, &st) < 0)
            return ocib_error_errno(err, errno, "cache directory '%s'", dir);
    }
    link = S_ISLNK(st.st_mode);
    real = realpath(dir, NULL);
    if (!real)
        return ocib_error_errno(err, errno, "cache directory '%s'", dir);
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        ocib_error_set(err, "cache directory '%s' is no directory", real);
        free(real);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        ocib_error_set(
            err,
            "cache directory '%s' is owned by uid %u, not by this user (uid %u); "
            "refusing to use another user's cache",
            real, (unsigned)st.st_uid, (unsigned)geteuid());
        free(real);
        return -1;
    }
    *ret_real = real;
    *ret_was_link = link;
    return 0;
}
