/*
 * Fuzzes layers/unpack: layer_unpack() of the input, as a layer blob, onto
 * a fresh root directory inside the harness's scratch directory, which is
 * wiped after each run.
 *
 * Beyond not crashing: nothing outside the root changes.  Beside the root
 * lies a directory "outside" holding a file "canary"; after each unpack
 * the scratch directory must hold exactly the blob, the root and outside/,
 * and outside/ exactly the untouched canary (an entry escaping through
 * "..", a symlink or a hardlink would show there first).  Seeds include
 * such tricks.
 */
#include <sys/stat.h>

#include "fuzz.h"
#include "layers/unpack.h"

#define CANARY "the unpack must never reach this file\n"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz: unpack escaped its root: %s\n", what);
    abort();
}

/* The names in the directory at path. */
static void list(const char *path, struct fs_names *ret)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    memset(ret, 0, sizeof(*ret));
    if (fd < 0 || fs_read_names(fd, path, ret, &err) < 0)
        fail(path);
    close(fd);
}

/* Checks the scratch directory holds what it held before the unpack. */
static void check_outside(const char *dir)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct fs_names names;
    char path[4300], *buf = NULL;
    size_t len;
    struct stat st;

    list(dir, &names);
    if (names.n != 3 || strcmp(names.v[0], "layer") || strcmp(names.v[1], "outside") ||
        strcmp(names.v[2], "root"))
        fail("a new name beside the root");
    fs_names_release(&names);
    snprintf(path, sizeof(path), "%s/outside", dir);
    list(path, &names);
    if (names.n != 1 || strcmp(names.v[0], "canary"))
        fail("outside/ changed");
    fs_names_release(&names);
    snprintf(path, sizeof(path), "%s/outside/canary", dir);
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (st.st_mode & 07777) != 0644)
        fail("the canary's inode changed");
    if (fs_read_file(path, 4096, &buf, &len, &err) < 0 || len != strlen(CANARY) ||
        memcmp(buf, CANARY, len) != 0)
        fail("the canary's content changed");
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200], blob[4300], root[4300];
    struct ocib_error err = OCIB_ERROR_INIT;
    struct unpack_stats st;
    int fd;

    if (!*dir) {
        char path[4300];

        snprintf(dir, sizeof(dir), "%s", fuzz_dir());
        snprintf(blob, sizeof(blob), "%s/layer", dir);
        snprintf(root, sizeof(root), "%s/root", dir);
        snprintf(path, sizeof(path), "%s/outside", dir);
        if (mkdir(path, 0755) < 0)
            abort();
        snprintf(path, sizeof(path), "%s/outside/canary", dir);
        fuzz_write_file(path, CANARY, strlen(CANARY));
        if (chmod(path, 0644) < 0)
            abort();
    }
    fuzz_write_file(blob, data, size);
    if (mkdir(root, 0755) < 0)
        abort();
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        abort();
    if (layer_unpack(fd, blob, "sha256:fuzz", &st, &err) < 0 && !err.msg[0])
        abort();
    close(fd);
    check_outside(dir);
    if (fs_rm_rf(root, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    return 0;
}
