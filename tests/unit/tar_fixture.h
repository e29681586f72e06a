/*
 * The one tar fixture of the unit tests: entries described as data, written
 * with libarchive (an independent tar writer, so that ocib's readers are not
 * tested against ocib's own writer).  Header-only, for the test binaries.
 */
#ifndef OCIB_TESTS_TAR_FIXTURE_H
#define OCIB_TESTS_TAR_FIXTURE_H

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct tar_fixture_entry {
    const char *name;
    mode_t type; /* AE_IFREG, AE_IFDIR, … */
    unsigned perm;
    int64_t uid, gid, mtime;
    long mtime_nsec;
    const char *data;     /* regular files */
    size_t data_len;      /* 0: strlen(data) */
    const char *link;     /* symlink target */
    const char *hardlink; /* hardlink target */
    const char *xattr_name, *xattr_value;
    const char *uname;
    unsigned major, minor; /* devices */
};

/* Writes the entries into a, opened for writing; 0, or -1 at the first
 * libarchive failure. */
static inline int tar_fixture_write(struct archive *a, const struct tar_fixture_entry *es,
                                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        const struct tar_fixture_entry *e = &es[i];
        size_t len = e->data ? (e->data_len ? e->data_len : strlen(e->data)) : 0;
        int ok;

        archive_entry_set_pathname(ae, e->name);
        archive_entry_set_filetype(ae, e->type);
        archive_entry_set_perm(ae, e->perm);
        archive_entry_set_uid(ae, e->uid);
        archive_entry_set_gid(ae, e->gid);
        archive_entry_set_mtime(ae, e->mtime, e->mtime_nsec);
        if (e->uname)
            archive_entry_set_uname(ae, e->uname);
        if (e->link)
            archive_entry_set_symlink(ae, e->link);
        if (e->hardlink)
            archive_entry_set_hardlink(ae, e->hardlink);
        if (e->xattr_name)
            archive_entry_xattr_add_entry(ae, e->xattr_name, e->xattr_value,
                                          strlen(e->xattr_value));
        if (e->type == AE_IFCHR || e->type == AE_IFBLK) {
            archive_entry_set_rdevmajor(ae, e->major);
            archive_entry_set_rdevminor(ae, e->minor);
        }
        archive_entry_set_size(ae, (la_int64_t)len);
        ok = archive_write_header(a, ae) == ARCHIVE_OK &&
             (!len || archive_write_data(a, e->data, len) == (la_ssize_t)len);
        archive_entry_free(ae);
        if (!ok)
            return -1;
    }
    return 0;
}

#endif
