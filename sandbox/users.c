/*
 * Users and groups of a stage's root: sandbox_resolve_user(); see
 * sandbox.h.
 *
 * The root's /etc/passwd and /etc/group are read as files, never through
 * NSS (the host's users are not the image's), opened beneath the root
 * without following any symlink, so that none can lead outside it.
 */
#include "sandbox/sandbox.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/xalloc.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Finds name in a passwd or group style file of root ("name:x:id:gid:..."
 * or "name:x:id:..."): 1 with its ids (and home), 0 when no line names it,
 * -1 with err when the line's ids are none (a uid of 4294967296 is no 0). */
static int lookup_id(const char *root, const char *file, const char *name, unsigned *ret_id,
                     unsigned *ret_gid, char **ret_home, struct ocib_error *err)
{
    _cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_fclose_ FILE *f = NULL;
    char line[1024];
    int fd;

    if (root_fd < 0)
        return 0;
    fd = fs_open_beneath(root_fd, file, O_RDONLY);
    if (fd < 0)
        return 0;
    f = fdopen(fd, "re");
    if (!f) {
        close(fd);
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        char *field[7] = {NULL};
        size_t n = 0;
        unsigned id, gid;

        line[strcspn(line, "\n")] = '\0';
        for (char *p = line; n < 7; p++) {
            field[n++] = p;
            p = strchr(p, ':');
            if (!p)
                break;
            *p = '\0';
        }
        if (n < 3 || strcmp(field[0], name))
            continue;
        if (ocib_id_parse(field[2], strlen(field[2]), &id) != OCIB_ID_NUMBER)
            return ocib_error_set(err,
                                  "the stage's /%s gives '%s' the id \"%s\", which is "
                                  "no id (%s)",
                                  file, name, field[2],
                                  ocib_id_problem(field[2], strlen(field[2])));
        gid = id;
        if (n >= 4 && ret_gid &&
            ocib_id_parse(field[3], strlen(field[3]), &gid) != OCIB_ID_NUMBER)
            return ocib_error_set(err,
                                  "the stage's /%s gives '%s' the group \"%s\", which "
                                  "is no id (%s)",
                                  file, name, field[3],
                                  ocib_id_problem(field[3], strlen(field[3])));
        *ret_id = id;
        if (ret_gid)
            *ret_gid = gid;
        if (ret_home && n >= 6 && field[5][0] == '/')
            *ret_home = xstrdup(field[5]);
        return 1;
    }
    return 0;
}

int sandbox_resolve_user(const char *root, const char *user, uid_t *ret_uid, gid_t *ret_gid,
                         char **ret_home, struct ocib_error *err)
{
    _cleanup_free_ char *u = xstrdup(user);
    char *g = strchr(u, ':');
    unsigned uid = 0, gid = 0, named_uid;
    int found;

    if (g)
        *g++ = '\0';
    switch (ocib_id_parse(u, strlen(u), &uid)) {
    case OCIB_ID_INVALID:
        return ocib_error_set(err, "user \"%s\" is no id (%s)", u,
                              ocib_id_problem(u, strlen(u)));
    case OCIB_ID_NUMBER:
        /* A numeric user need not exist; its group defaults to its id
         * unless the passwd file says otherwise. */
        gid = uid;
        found = lookup_id(root, "etc/passwd", u, &named_uid, &gid, ret_home, err);
        if (found < 0)
            return -1;
        break;
    default:
        found = lookup_id(root, "etc/passwd", u, &uid, &gid, ret_home, err);
        if (found < 0)
            return -1;
        if (!found)
            return ocib_error_set(err, "user '%s' is not in the stage's /etc/passwd", u);
    }
    if (g) {
        switch (ocib_id_parse(g, strlen(g), &gid)) {
        case OCIB_ID_INVALID:
            return ocib_error_set(err, "group \"%s\" is no id (%s)", g,
                                  ocib_id_problem(g, strlen(g)));
        case OCIB_ID_NUMBER:
            break;
        default:
            found = lookup_id(root, "etc/group", g, &gid, NULL, NULL, err);
            if (found < 0)
                return -1;
            if (!found)
                return ocib_error_set(err, "group '%s' is not in the stage's /etc/group",
                                      g);
        }
    }
    *ret_uid = uid;
    *ret_gid = gid;
    return 0;
}
