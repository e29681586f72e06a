/*
 * Reproducibility self-check; see verify.h.
 */
#include "audit/verify.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/xalloc.h"
#include "builder/git.h"
#include "transport/remote.h"
#include "transport/source.h"
#include "cache/blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies directory src_fd into dst (which exists): files, symlinks and
 * directories; entries are created in sorted or reverse-sorted order. */
static int copy_tree(int src_fd, int dst_fd, bool reverse, struct ocib_error *err)
{
    _cleanup_closedir_ DIR *d = NULL;
    char **names = NULL;
    size_t n = 0, alloc = 0;
    struct dirent *de;
    int fd = dup(src_fd), r = 0;

    d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ocib_error_errno(err, errno, "cannot read the context");
    }
    for (de = readdir(d); de; de = readdir(d)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        XGROW(names, alloc, n + 1);
        names[n++] = xstrdup(de->d_name);
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_name);
    for (size_t k = 0; k < n && r == 0; k++) {
        const char *name = names[reverse ? n - 1 - k : k];
        struct stat st;

        if (fstatat(src_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = ocib_error_errno(err, errno, "cannot stat '%s'", name);
        } else if (S_ISDIR(st.st_mode)) {
            int s2, d2;

            if (mkdirat(dst_fd, name, 0777) < 0) {
                r = ocib_error_errno(err, errno, "cannot copy '%s'", name);
                continue;
            }
            s2 = openat(src_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            d2 = openat(dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                r = ocib_error_errno(err, errno, "cannot copy '%s'", name);
            else
                r = copy_tree(s2, d2, reverse, err);
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t len = readlinkat(src_fd, name, target, sizeof(target) - 1);

            if (len < 0) {
                r = ocib_error_errno(err, errno, "cannot read '%s'", name);
                continue;
            }
            target[len] = '\0';
            if (symlinkat(target, dst_fd, name) < 0)
                r = ocib_error_errno(err, errno, "cannot copy '%s'", name);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int in =
                openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int out =
                openat(dst_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                       (st.st_mode & 0111) ? 0777 : 0666);

            if (in < 0 || out < 0 || fs_copy_fd(in, out, NULL, NULL, err) < 0)
                r = ocib_error_errno(err, errno, "cannot copy '%s'", name);
        }
        /* Special files are left out: the build would refuse them anyway. */
    }
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
    return r;
}

static int copy_context(const char *src, const char *dst, bool reverse, mode_t umask_,
                        struct ocib_error *err)
{
    _cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int d = -1;
    mode_t old = umask(umask_);
    int r;

    if (s < 0 || mkdir(dst, 0777) < 0 ||
        (d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        umask(old);
        return ocib_error_errno(err, errno, "cannot copy the context '%s'", src);
    }
    r = copy_tree(s, d, reverse, err);
    umask(old);
    return r;
}

/* Opens the two results into ret: with several platforms, the images of
 * the first platform whose images differ. */
static int open_differing(const struct build_options *o, const char *a, const char *b,
                          struct cache *c, struct registries *rs, struct verify_result *ret,
                          struct ocib_error *err)
{
    for (size_t k = 0; k < (o->n_platforms ? o->n_platforms : 1); k++) {
        const struct oci_platform *p = o->n_platforms ? &o->platforms[k] : NULL;

        image_source_release(&ret->a_src);
        image_source_release(&ret->b_src);
        memset(&ret->a_src, 0, sizeof(ret->a_src));
        memset(&ret->b_src, 0, sizeof(ret->b_src));
        if (image_source_open(a, NULL, c, rs, p, &ret->a_src, err) < 0 ||
            image_source_open(b, NULL, c, rs, p, &ret->b_src, err) < 0)
            return -1;
        if (p)
            oci_platform_format(p, ret->platform, sizeof(ret->platform));
        if (!oci_digest_equal(&ret->a_src.manifest.digest, &ret->b_src.manifest.digest))
            break;
    }
    return 0;
}

int build_verify(const struct build_options *o, struct verify_result *ret,
                 struct ocib_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    _cleanup_free_ char *root =
        xasprintf("%s/ocib-verify-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    _cleanup_free_ char *git_full = NULL;
    _cleanup_free_ char *git_short = NULL;
    const char *ctx = o->context_dir ? o->context_dir : ".";
    _cleanup_free_ char *image_dir = NULL;
    struct registries *rs = NULL;
    struct cache c = {0};
    int r = -1;

    memset(ret, 0, sizeof(*ret));
    if (!mkdtemp(root))
        return ocib_error_errno(err, errno,
                                "--verify: cannot create a temporary directory");
    git_head(ctx, &git_full, &git_short);
    /* Bases named relative to the context stay the user's, not the copy's. */
    image_dir = realpath(ctx, NULL);
    if (!image_dir) {
        r = ocib_error_errno(err, errno, "--verify: cannot resolve the context '%s'", ctx);
        goto out;
    }
    for (int side = 0; side < 2; side++) {
        _cleanup_free_ char *copy =
            xasprintf("%s/%s", root, side ? "second/context" : "ctx-a");
        _cleanup_free_ char *cache = xasprintf("%s/cache-%c", root, 'a' + side);
        _cleanup_free_ char *spec = NULL;
        struct build_output out = {.kind = BUILD_OUTPUT_OCI};
        struct build_options bo = *o;
        struct build_result res = {0};

        _cleanup_free_ char *second = xasprintf("%s/second", root);

        if (side && fs_mkdir_p(second, 0700, err) < 0)
            goto out;
        if (copy_context(ctx, copy, side == 1, side ? 077 : 022, err) < 0)
            goto out;
        out.path = xasprintf("%s/out-%c", root, 'a' + side);
        bo.context_dir = copy;
        if (!o->image_dir)
            bo.image_dir = image_dir;
        if (!o->spec_file) {
            spec = fs_path_join(copy, "ocib.json");
            bo.spec_file = spec;
        }
        bo.cache_dir = cache;
        bo.no_cache = true;
        bo.outputs = &out;
        bo.n_outputs = 1;
        bo.push = false;
        bo.cache_to = NULL;
        bo.n_cache_from = 0;
        bo.progress = NULL;
        bo.revision = git_full;
        bo.revision_short = git_short;
        r = build_run(&bo, &res, err);
        free(out.path);
        if (r < 0) {
            ocib_error_wrap(err, "--verify: build %c", 'A' + side);
            goto out;
        }
        if (side)
            ret->b = res.digest;
        else
            ret->a = res.digest;
        build_result_release(&res);
        r = -1;
    }
    ret->identical = oci_digest_equal(&ret->a, &ret->b);
    if (!ret->identical) {
        _cleanup_free_ char *a = xasprintf("oci:%s/out-a", root);
        _cleanup_free_ char *b = xasprintf("oci:%s/out-b", root);
        _cleanup_free_ char *cdir = xasprintf("%s/cache-a", root);

        if (cache_open(&c, cdir, err) < 0 ||
            registries_new(o->insecure, o->n_insecure, o->cert_dir, &rs, err) < 0)
            goto out;
        if (open_differing(o, a, b, &c, rs, ret, err) < 0)
            goto out;
        if (image_diff_compare(&ret->a_src, &ret->b_src, &c, rs, 50, &ret->diff, err) < 0)
            goto out;
    }
    r = 0;
out:
    registries_free(rs);
    cache_release(&c);
    fs_rm_rf(root, NULL);
    return r;
}

void verify_result_release(struct verify_result *r)
{
    image_diff_release(&r->diff);
    image_source_release(&r->a_src);
    image_source_release(&r->b_src);
}
