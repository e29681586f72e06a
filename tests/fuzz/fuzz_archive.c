/*
 * Fuzzes transport/archive: docker_archive_load() of the input as a
 * docker-archive tarball (`docker save`'s manifest.json, or the OCI layout
 * Docker 25 puts beside it), into a scratch cache wiped before each run.
 *
 * Beyond not crashing: an archive that loads leaves its manifest and
 * config as cache-independent bytes whose digests match, and every layer
 * of the image in the cache.
 */
#include "transport/archive.h"
#include "cache/blobs.h"
#include "fuzz.h"

static void try_load(const char *path, const char *cache_dir, const char *tag)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct cache c;
    struct oci_image img;
    struct oci_blob m, cfg;
    struct oci_digest d;

    if (fs_rm_rf(cache_dir, &err) < 0 || cache_open(&c, cache_dir, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    if (docker_archive_load(path, tag, &c, &img, &m, &cfg, &err) < 0) {
        if (!err.msg[0])
            abort();
        cache_release(&c);
        return;
    }
    oci_digest_of(m.data, m.len, &d);
    if (strcmp(d.str, m.digest.str) != 0)
        abort();
    oci_digest_of(cfg.data, cfg.len, &d);
    if (strcmp(d.str, cfg.digest.str) != 0)
        abort();
    for (size_t i = 0; i < img.n_layers; i++)
        if (!cache_blob_exists(&c, &img.layers[i].desc.digest))
            abort();
    oci_blob_release(&m);
    oci_blob_release(&cfg);
    oci_image_release(&img);
    cache_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[4200], cache_dir[4200];

    if (!*path) {
        snprintf(path, sizeof(path), "%s/archive.tar", fuzz_dir());
        snprintf(cache_dir, sizeof(cache_dir), "%s/cache", fuzz_dir());
    }
    fuzz_write_file(path, data, size);
    try_load(path, cache_dir, NULL);
    /* By tag only when there is one to find (each load costs a cache). */
    if (memmem(data, size, "latest", 6))
        try_load(path, cache_dir, "latest");
    return 0;
}
