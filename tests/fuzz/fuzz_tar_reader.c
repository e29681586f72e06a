/*
 * Fuzzes layers/tar_reader: a layer blob (plain or compressed tar) read
 * from memory entry by entry, as `ocib diff` reads layers.
 *
 * Beyond not crashing: every entry it yields keeps the promises of
 * tar_reader.h (normalised path within the limits, known type, permission
 * bits only, a content digest for regular files alone, entries in order).
 */
#include "fuzz.h"
#include "layers/tar_reader.h"

static void check_entry(const struct tar_entry *e, size_t seq)
{
    size_t n = strlen(e->path);

    if (e->seq != seq || !strchr("-dlhcbp?", e->type) || e->type == '\0' ||
        (e->mode & ~07777u) != 0 || n > TAR_READER_MAX_PATH || e->path[0] == '/' ||
        !strncmp(e->path, "./", 2) || (n > 0 && e->path[n - 1] == '/') || e->size < 0)
        abort();
    if ((e->type == '-') != (e->content.str[0] != '\0'))
        abort();
    if (e->link && strlen(e->link) > TAR_READER_MAX_PATH)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct tar_reader *r;
    struct tar_entry e;
    size_t seq = 0;
    int rc;

    fuzz_dir(); /* sets the locale */
    if (tar_reader_open_memory(data, size, &r, &err) < 0)
        return 0;
    while ((rc = tar_reader_next(r, &e, &err)) == 1) {
        check_entry(&e, seq++);
        tar_entry_release(&e);
    }
    if (rc < 0 && !err.msg[0])
        abort();
    /* After the end or an error it stays there. */
    if (rc == 0 && tar_reader_next(r, &e, &err) != 0)
        abort();
    tar_reader_format(r);
    tar_reader_free(r);
    return 0;
}
