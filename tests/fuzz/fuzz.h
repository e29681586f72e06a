/*
 * What the libFuzzer harnesses in tests/fuzz share: a private scratch
 * directory per fuzzing process (made on first use, removed at exit) and a
 * helper that writes the input into a file there, for parsers that read
 * files rather than buffers.
 *
 * Every harness is one fuzz_<name>.c defining LLVMFuzzerTestOneInput; a
 * crash, a sanitizer report or an abort() from a harness's own checks is a
 * defect.  `make fuzz` builds and runs them (see the Makefile).
 */
#ifndef OCIB_TESTS_FUZZ_H
#define OCIB_TESTS_FUZZ_H

#include <fcntl.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_dir_path;

static void fuzz_dir_remove(void)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (fuzz_dir_path && fs_rm_rf(fuzz_dir_path, &err) < 0)
        fprintf(stderr, "fuzz: %s\n", err.msg);
}

/* The process's scratch directory ("$TMPDIR/ocib-fuzz-XXXXXX"). */
static inline const char *fuzz_dir(void)
{
    static char buf[4096];
    const char *tmp = getenv("TMPDIR");

    if (fuzz_dir_path)
        return fuzz_dir_path;
    snprintf(buf, sizeof(buf), "%s/ocib-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    fuzz_dir_path = buf;
    atexit(fuzz_dir_remove);
    /* Paths are read as the CLI reads them (cli/main.c). */
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C");
    return fuzz_dir_path;
}

/* Writes data to path (replaced); aborts when it cannot, which is the
 * harness's fault, not the input's. */
static inline void fuzz_write_file(const char *path, const void *data, size_t size)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0 || fs_write_all(fd, data, size, &err) < 0 || close(fd) < 0) {
        fprintf(stderr, "fuzz: cannot write '%s': %s\n", path, err.msg);
        abort();
    }
}

/* Cuts the input at the first sep: *ret_rest points after it (NULL when
 * there is none) and the length before it is returned. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, const char *sep,
                                const uint8_t **ret_rest, size_t *ret_rest_size)
{
    const uint8_t *at = memmem(data, size, sep, strlen(sep));

    if (!at) {
        *ret_rest = NULL;
        *ret_rest_size = 0;
        return size;
    }
    *ret_rest = at + strlen(sep);
    *ret_rest_size = size - (size_t)(*ret_rest - data);
    return (size_t)(at - data);
}

#endif
