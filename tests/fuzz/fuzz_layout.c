/*
 * Fuzzes reading an OCI image layout (oci/layout.c): the input is an
 * index.json followed by blobs, each after a "\n--blob--\n" line, which
 * the harness stores under their own sha256 in a scratch layout.  Seeds
 * whose index points at their blobs lead the fuzzer through nested
 * indexes, platform and tag picking, manifests and configs.
 *
 * Beyond not crashing: an image that loads comes with the exact bytes of
 * its manifest and config, whose digests match.
 */
#include "fuzz.h"
#include "oci/digest.h"
#include "oci/layout.h"

static void try_load(const char *dir, const char *tag, const char *platform)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_platform p;
    struct oci_image img;
    struct oci_blob m, c;
    struct oci_digest d;

    if (platform && oci_platform_parse(platform, &p, &err) < 0)
        abort();
    if (oci_layout_load(dir, tag, platform ? &p : NULL, &img, &m, &c, &err) < 0) {
        if (!err.msg[0])
            abort();
        return;
    }
    oci_digest_of(m.data, m.len, &d);
    if (strcmp(d.str, m.digest.str) != 0)
        abort();
    oci_digest_of(c.data, c.len, &d);
    if (strcmp(d.str, c.digest.str) != 0)
        abort();
    oci_blob_release(&m);
    oci_blob_release(&c);
    oci_image_release(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200], blobs[4300];
    struct ocib_error err = OCIB_ERROR_INIT;
    char path[4500];
    const uint8_t *rest;
    size_t len, rest_len;

    if (!*dir) {
        snprintf(dir, sizeof(dir), "%s/layout", fuzz_dir());
        snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", dir);
    }
    if (fs_rm_rf(dir, &err) < 0 || fs_mkdir_p(blobs, 0755, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    snprintf(path, sizeof(path), "%s/oci-layout", dir);
    fuzz_write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
    len = fuzz_split(data, size, "\n--blob--\n", &rest, &rest_len);
    snprintf(path, sizeof(path), "%s/index.json", dir);
    fuzz_write_file(path, data, len);
    while (rest) {
        const uint8_t *blob = rest;
        struct oci_digest d;

        len = fuzz_split(blob, rest_len, "\n--blob--\n", &rest, &rest_len);
        oci_digest_of(blob, len, &d);
        snprintf(path, sizeof(path), "%s/%s", blobs, oci_digest_hex(&d));
        fuzz_write_file(path, blob, len);
    }
    try_load(dir, NULL, NULL);
    try_load(dir, "latest", NULL);
    try_load(dir, NULL, "linux/arm64");
    return 0;
}
