/*
 * Whether this machine can run another architecture's programs: a
 * binfmt_misc handler (qemu-user-static's) that matches an ELF header of
 * that architecture, enabled, and registered with the F flag (the kernel
 * opens the interpreter at registration, so it works inside a root where
 * the interpreter's path does not exist).
 */
#include "sandbox/sandbox.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BINFMT_DIR "/proc/sys/fs/binfmt_misc"
#define HEADER_LEN 20

struct elf_kind {
    const char *arch;
    unsigned char class, data; /* ELFCLASS32/64, ELFDATA2LSB/MSB */
    unsigned machine;
};

static const struct elf_kind kinds[] = {
    {"amd64", 2, 1, 0x3e},    {"386", 1, 1, 0x03},     {"arm64", 2, 1, 0xb7},
    {"arm", 1, 1, 0x28},      {"ppc64le", 2, 1, 0x15}, {"ppc64", 2, 2, 0x15},
    {"s390x", 2, 2, 0x16},    {"riscv64", 2, 1, 0xf3}, {"mips64le", 2, 1, 0x08},
    {"mips64", 2, 2, 0x08},   {"mipsle", 1, 1, 0x08},  {"mips", 1, 2, 0x08},
    {"loong64", 2, 1, 0x102},
};

/* The first HEADER_LEN bytes of an executable of kind k. */
static void elf_header(const struct elf_kind *k, unsigned char h[HEADER_LEN])
{
    memset(h, 0, HEADER_LEN);
    memcpy(h,
           "\x7f"
           "ELF",
           4);
    h[4] = k->class;
    h[5] = k->data;
    h[6] = 1; /* EV_CURRENT */
    if (k->data == 1) {
        h[16] = 2; /* ET_EXEC */
        h[18] = (unsigned char)(k->machine & 0xff);
        h[19] = (unsigned char)(k->machine >> 8);
    } else {
        h[17] = 2;
        h[18] = (unsigned char)(k->machine >> 8);
        h[19] = (unsigned char)(k->machine & 0xff);
    }
}

static int hex_bytes(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;

    while (s[0] && s[1] && s[0] != '\n' && n < max) {
        unsigned v;

        if (sscanf(s, "%2x", &v) != 1)
            return -1;
        out[n++] = (unsigned char)v;
        s += 2;
    }
    return (int)n;
}

/* What one handler file says: 1 when it matches header h (*ret_fixed: its
 * flags hold F), 0 when not, or when it is disabled. */
static int handler_matches(const char *path, const unsigned char h[HEADER_LEN],
                           bool *ret_fixed)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    unsigned char magic[128], mask[128];
    int n_magic = -1, n_mask = -1;
    long offset = 0;
    bool enabled = false, fixed = false;
    char line[512];

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "enabled", 7))
            enabled = true;
        else if (!strncmp(line, "flags: ", 7))
            fixed = strchr(line + 7, 'F') != NULL;
        else if (!strncmp(line, "offset ", 7))
            offset = strtol(line + 7, NULL, 10);
        else if (!strncmp(line, "magic ", 6))
            n_magic = hex_bytes(line + 6, magic, sizeof(magic));
        else if (!strncmp(line, "mask ", 5))
            n_mask = hex_bytes(line + 5, mask, sizeof(mask));
    }
    if (!enabled || n_magic <= 0 || offset != 0 || n_magic > HEADER_LEN)
        return 0;
    for (int i = 0; i < n_magic; i++) {
        unsigned char m = i < n_mask ? mask[i] : 0xff;

        if ((h[i] & m) != (magic[i] & m))
            return 0;
    }
    *ret_fixed = fixed;
    return 1;
}

int sandbox_check_foreign(const char *arch, const char *host_arch, struct ocib_error *err)
{
    const struct elf_kind *k = NULL;
    unsigned char h[HEADER_LEN];
    _cleanup_free_ char *unfixed = NULL;
    DIR *d;
    struct dirent *de;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kinds[i].arch, arch))
            k = &kinds[i];
    if (!k)
        return ocib_error_set(err,
                              "cannot run %s programs on this %s machine: ocib knows "
                              "no ELF machine for %s",
                              arch, host_arch, arch);
    elf_header(k, h);
    d = opendir(BINFMT_DIR);
    if (!d)
        return ocib_error_set(err,
                              "cannot run %s programs on this %s machine: binfmt_misc is "
                              "not mounted (mount -t binfmt_misc binfmt_misc " BINFMT_DIR
                              ", then apt-get install qemu-user-static)",
                              arch, host_arch);
    while ((de = readdir(d))) {
        _cleanup_free_ char *path = NULL;
        bool fixed = false;

        if (de->d_name[0] == '.' || !strcmp(de->d_name, "register") ||
            !strcmp(de->d_name, "status"))
            continue;
        path = xasprintf("%s/%s", BINFMT_DIR, de->d_name);
        if (!handler_matches(path, h, &fixed))
            continue;
        if (fixed) {
            closedir(d);
            return 0;
        }
        if (!unfixed)
            unfixed = xstrdup(de->d_name);
    }
    closedir(d);
    if (unfixed)
        return ocib_error_set(err,
                              "cannot run %s programs in a build root: the binfmt_misc "
                              "handler %s lacks the F flag (the interpreter must be opened "
                              "when it is registered); register it with F, as Debian's "
                              "qemu-user-static does",
                              arch, unfixed);
    return ocib_error_set(err,
                          "cannot run %s programs on this %s machine: no binfmt_misc "
                          "handler for them (apt-get install qemu-user-static, with "
                          "binfmt_misc mounted at " BINFMT_DIR ")",
                          arch, host_arch);
}
