/*
 * The image's config.user, checked at build time: a user or group given by
 * name must be in the image's /etc/passwd or /etc/group, or podman and
 * Kubernetes would refuse to start the container long after the build said
 * it was fine.
 *
 * The files are read as the image has them: from the stage's root when it
 * is current, else from the layers top down (a layer that holds the file,
 * or deletes it with a whiteout or an opaque /etc, decides), streamed with
 * only those two files kept.  A passing check is remembered in the cache
 * under the image's key, so a rebuild reads nothing.
 */
#include "builder/driver.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/xalloc.h"
#include "cache/keys.h"
#include "cache/lease.h"
#include "layers/tar_reader.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_FILE_MAX (4 * 1024 * 1024)

static const char *const id_files[] = {"etc/passwd", "etc/group", NULL};

/* What the layers above decided about one file. */
struct id_file {
    bool decided;
    char *data; /* NULL: absent */
    size_t len;
};

static bool is_name(const char *s, size_t n)
{
    unsigned id;

    return n && ocib_id_parse(s, n, &id) != OCIB_ID_NUMBER;
}

/* Reads one layer into files[], for the files no upper layer decided. */
static int scan_layer(const char *blob, struct id_file *files, struct ocib_error *err)
{
    struct tar_reader *r = NULL;
    struct tar_entry e;
    bool opaque = false, deleted[2] = {false, false};
    int rc;

    if (tar_reader_open_file(blob, &r, err) < 0)
        return -1;
    tar_reader_keep(r, id_files, ID_FILE_MAX);
    while ((rc = tar_reader_next(r, &e, err)) > 0) {
        for (size_t i = 0; i < 2; i++) {
            const char *base = id_files[i] + strlen("etc/");

            if (files[i].decided)
                continue;
            if (!strcmp(e.path, id_files[i]) && e.data) {
                files[i].data = TAKE_PTR(e.data);
                files[i].len = e.data_len;
                files[i].decided = true;
            } else if (!strncmp(e.path, "etc/.wh.", 8) && !strcmp(e.path + 8, base)) {
                deleted[i] = true;
            }
        }
        if (!strcmp(e.path, "etc/.wh..wh..opq") || !strcmp(e.path, ".wh.etc"))
            opaque = true;
        tar_entry_release(&e);
    }
    tar_reader_free(r);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < 2; i++)
        if (!files[i].decided && (deleted[i] || opaque))
            files[i].decided = true;
    return 0;
}

/* Writes what the layers hold of the id files under a fresh directory. */
static int id_files_root(struct build *b, const struct id_file *files, char **ret_dir,
                         struct ocib_error *err)
{
    const char *tmp = cache_lease_tmp(&b->cache, err);
    _cleanup_free_ char *anchor = NULL;
    _cleanup_free_ char *etc = NULL;

    if (!tmp)
        return -1;
    anchor = xasprintf("%s/usercheck", tmp);
    if (fs_mkdtemp_beside(anchor, ret_dir, err) < 0)
        return -1;
    etc = xasprintf("%s/etc", *ret_dir);
    if (mkdir(etc, 0700) < 0)
        return ocib_error_errno(err, errno, "cannot create '%s'", etc);
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *path = NULL;

        if (!files[i].data)
            continue;
        path = xasprintf("%s/%s", *ret_dir, id_files[i]);
        if (fs_write_file_atomic(path, files[i].data, files[i].len, 0600, err) < 0)
            return -1;
    }
    return 0;
}

static int check_in_layers(struct build *b, struct stage_image *si, const char *user,
                           struct ocib_error *err)
{
    struct id_file files[2] = {{0}};
    _cleanup_free_ char *dir = NULL;
    uid_t uid;
    gid_t gid;
    int r = -1;

    for (size_t i = si->img.n_layers; i-- > 0 && !(files[0].decided && files[1].decided);) {
        if (blob_source_ensure_local(&si->srcs[i], &b->cache, b->registries, err) < 0 ||
            scan_layer(si->srcs[i].path, files, err) < 0) {
            ocib_error_wrap(err, "layer %zu (%s)", i + 1,
                            si->img.layers[i].desc.digest.str);
            goto out;
        }
    }
    if (id_files_root(b, files, &dir, err) < 0)
        goto out;
    r = sandbox_resolve_user(dir, user, &uid, &gid, NULL, err);
out:
    if (dir)
        fs_rm_rf(dir, NULL);
    free(files[0].data);
    free(files[1].data);
    return r;
}

int check_config_user(struct build *b, size_t s, struct ocib_error *err)
{
    const struct spec_stage *st = &b->p->spec.stages[s];
    struct stage_image *si = &b->p->stages[s];
    const char *user = st->config.user;
    _cleanup_free_ char *slot = NULL;
    json_t *rec;
    size_t un;
    uid_t uid;
    gid_t gid;
    int r;

    if (!user)
        return 0;
    un = strcspn(user, ":");
    if (!is_name(user, un) && !(user[un] && is_name(user + un + 1, strlen(user + un + 1))))
        return 0;
    slot = xasprintf("config.user\n%s\n%s", si->top_key.str, user);
    rec = cache_record_get(&b->cache, slot);
    if (rec && json_is_true(json_object_get(rec, "ok"))) {
        json_decref(rec);
        return 0;
    }
    json_decref(rec);
    if (si->root.path && si->root.n_applied == si->img.n_layers)
        r = sandbox_resolve_user(si->root.path, user, &uid, &gid, NULL, err);
    else
        r = check_in_layers(b, si, user, err);
    if (r < 0)
        return ocib_error_wrap(err, "%s.config.user \"%s\"", st->where, user);
    rec = json_pack("{s:b}", "ok", 1);
    cache_record_put(&b->cache, slot, rec, NULL);
    json_decref(rec);
    return 0;
}
