/*
 * A static stand-in for setcap(8) in the busybox test images (which have
 * none): gives the file argv[1] the capability CAP_NET_BIND_SERVICE,
 * permitted and effective, as a version 2 security.capability xattr.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#define VFS_CAP_REVISION_2 0x02000000u
#define VFS_CAP_FLAGS_EFFECTIVE 0x000001u
#define CAP_NET_BIND_SERVICE 10

struct cap_data {
    uint32_t magic_etc;
    struct {
        uint32_t permitted, inheritable;
    } data[2];
};

int main(int argc, char **argv)
{
    struct cap_data d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    memset(&d, 0, sizeof(d));
    d.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
    d.data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
    if (setxattr(argv[1], "security.capability", &d, sizeof(d), 0) < 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
