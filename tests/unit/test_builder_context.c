/*
 * Unit tests for builder/context: what a `copy` takes from the build
 * context into a layer tree (Docker COPY semantics for files, directories
 * and globs), what .ocibignore, .dockerignore, a copy's exclude and ocib's
 * own outputs keep out, that nothing outside the context is ever reached
 * (through '..' or a symlink), and the modes and owners copied entries get.
 * Each test builds its context in a fresh temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "builder/context.h"
#include "layers/tree.h"
#include "spec/spec.h"
#include "tempdir.h"
#include "tree_fixtures.h"

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One copy item, as the spec would give it. */
struct item {
    const char *const *src; /* NULL-terminated */
    const char *dest;
    const char *const *exclude; /* NULL-terminated, may be NULL */
    int mode;                   /* -1: not forced */
    bool owner;
    unsigned uid, gid;
    const char *workdir;
};

static size_t count(const char *const *v)
{
    size_t n = 0;

    while (v && v[n])
        n++;
    return n;
}

/* Runs context_copy for it into t (initialised here); its result. */
static int copy(struct context *ctx, const struct item *it, struct layer_tree *t,
                struct ocib_error *err)
{
    struct spec_copy c;

    memset(&c, 0, sizeof(c));
    c.where = "stages[0].layers[0].copy[0]";
    c.src = (char **)it->src;
    c.n_src = count(it->src);
    c.dest = (char *)it->dest;
    c.exclude = (char **)it->exclude;
    c.n_exclude = count(it->exclude);
    c.mode = it->mode ? it->mode : -1;
    c.owner.set = it->owner;
    c.owner.numeric = it->owner;
    c.owner.has_group = it->owner;
    c.owner.uid = it->uid;
    c.owner.gid = it->gid;
    layer_tree_init(t);
    return context_copy(ctx, &c, it->workdir, t, err);
}

/* Copies it and fails the test if that fails. */
static void copy_ok(struct context *ctx, const struct item *it, struct layer_tree *t)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (copy(ctx, it, t, &err) < 0)
        fail_msg("copy failed: %s", err.msg);
}

/* Copies it, which must fail with a message holding every one of needles. */
static void copy_fails(struct context *ctx, const struct item *it,
                       const char *const *needles)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_tree t;

    if (copy(ctx, it, &t, &err) == 0) {
        print_entries(&t);
        fail_msg("the copy succeeded");
    }
    assert_true(err.code != 0);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.msg, needles[i]))
            fail_msg("error \"%s\" does not say \"%s\"", err.msg, needles[i]);
    layer_tree_release(&t);
}

static void open_ctx(struct context *ctx)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (context_open(ctx, "ctx", &err) < 0)
        fail_msg("%s", err.msg);
}

/* ctx/ with:
 *   a.txt  b.txt  run.sh (0755)  .hidden
 *   sub/x.txt  sub/inner/y.txt
 * and, outside it, secret/passwd. */
static int make_ctx(void)
{
    int fd;

    assert_int_equal(mkdir("ctx", 0755), 0);
    fd = open("ctx", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    mk_file(fd, "a.txt", "a");
    mk_file(fd, "b.txt", "bb");
    mk_file(fd, "run.sh", "#!/bin/sh\n");
    assert_int_equal(fchmodat(fd, "run.sh", 0755, 0), 0);
    mk_file(fd, ".hidden", "h");
    mk_dir(fd, "sub", 0755);
    mk_file(fd, "sub/x.txt", "x");
    mk_dir(fd, "sub/inner", 0755);
    mk_file(fd, "sub/inner/y.txt", "y");
    assert_int_equal(mkdir("secret", 0700), 0);
    mk_file(AT_FDCWD, "secret/passwd", "root:x:0:0");
    return fd;
}

static void expect_file(const struct layer_tree *t, const char *path, const char *src,
                        int dirfd)
{
    const struct layer_tree_entry *e = must_find(t, path);

    if (!S_ISREG(e->mode))
        fail_msg("'%s' is not a regular file (mode %o)", path, (unsigned)e->mode);
    assert_non_null(e->src);
    assert_string_equal(e->src, src);
    assert_int_equal(e->dirfd, dirfd);
}

static void expect_mode(const struct layer_tree *t, const char *path, mode_t mode)
{
    const struct layer_tree_entry *e = must_find(t, path);

    if (e->mode != mode)
        fail_msg("'%s' has mode %o, expected %o", path, (unsigned)e->mode, (unsigned)mode);
}

/* --- what goes where --- */

static void test_a_file_goes_to_dest_or_into_a_dest_ending_in_a_slash(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("a.txt"), .dest = "/app/renamed"}, &t);
    expect_paths(&t, LIST("app/renamed"));
    expect_file(&t, "app/renamed", "a.txt", ctx.fd);
    assert_int_equal(must_find(&t, "app/renamed")->size, 1);
    layer_tree_release(&t);

    copy_ok(&ctx, &(struct item){.src = LIST("sub/x.txt"), .dest = "/app/"}, &t);
    expect_paths(&t, LIST("app/x.txt"));
    expect_file(&t, "app/x.txt", "sub/x.txt", ctx.fd);
    layer_tree_release(&t);

    /* A relative dest starts at the workdir, else at the root. */
    copy_ok(&ctx, &(struct item){.src = LIST("a.txt"), .dest = "conf/", .workdir = "/srv"},
            &t);
    expect_paths(&t, LIST("srv/conf/a.txt"));
    layer_tree_release(&t);
    copy_ok(&ctx, &(struct item){.src = LIST("a.txt"), .dest = "a"}, &t);
    expect_paths(&t, LIST("a"));
    layer_tree_release(&t);

    context_release(&ctx);
    close(fd);
}

static void test_a_directory_copies_its_contents_into_dest(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("sub"), .dest = "/app"}, &t);
    expect_paths(&t, LIST("app", "app/x.txt", "app/inner", "app/inner/y.txt"));
    assert_true(S_ISDIR(must_find(&t, "app")->mode));
    assert_true(S_ISDIR(must_find(&t, "app/inner")->mode));
    expect_file(&t, "app/inner/y.txt", "sub/inner/y.txt", ctx.fd);
    layer_tree_release(&t);

    /* The whole context at the root: no entry for "/" itself. */
    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/"}, &t);
    expect_paths(&t, LIST("a.txt", "b.txt", "run.sh", ".hidden", "sub", "sub/x.txt",
                          "sub/inner", "sub/inner/y.txt"));
    layer_tree_release(&t);

    context_release(&ctx);
    close(fd);
}

static void test_several_sources_need_a_directory_dest(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("a.txt", "sub/x.txt"), .dest = "/d/"}, &t);
    expect_paths(&t, LIST("d/a.txt", "d/x.txt"));
    layer_tree_release(&t);

    copy_fails(&ctx, &(struct item){.src = LIST("a.txt", "b.txt"), .dest = "/d"},
               LIST("stages[0].layers[0].copy[0].dest", "ending in '/'"));
    /* "/" ends in '/': the file goes into the root. */
    copy_ok(&ctx, &(struct item){.src = LIST("sub/x.txt"), .dest = "/"}, &t);
    expect_paths(&t, LIST("x.txt"));
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_globs_expand_inside_the_context_in_sorted_order(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("*.txt"), .dest = "/d/"}, &t);
    expect_paths(&t, LIST("d/a.txt", "d/b.txt"));
    assert_string_equal(t.entries[0].path, "d/a.txt");
    assert_string_equal(t.entries[1].path, "d/b.txt");
    layer_tree_release(&t);

    copy_ok(&ctx, &(struct item){.src = LIST("sub/*/?.txt"), .dest = "/d/"}, &t);
    expect_paths(&t, LIST("d/y.txt"));
    expect_file(&t, "d/y.txt", "sub/inner/y.txt", ctx.fd);
    layer_tree_release(&t);

    copy_ok(&ctx, &(struct item){.src = LIST("[ab].txt", "run.*"), .dest = "/d/"}, &t);
    expect_paths(&t, LIST("d/a.txt", "d/b.txt", "d/run.sh"));
    layer_tree_release(&t);

    copy_fails(&ctx, &(struct item){.src = LIST("*.none"), .dest = "/d/"},
               LIST("stages[0].layers[0].copy[0].src[0]", "no file", "'*.none'"));
    copy_fails(&ctx, &(struct item){.src = LIST("*.txt"), .dest = "/d"},
               LIST("ending in '/'"));
    context_release(&ctx);
    close(fd);
}

static void test_a_missing_source_is_an_error_naming_it_and_the_context(void **state)
{
    int fd = make_ctx();
    struct context ctx;

    open_ctx(&ctx);
    copy_fails(
        &ctx, &(struct item){.src = LIST("nope.txt"), .dest = "/d/"},
        LIST("stages[0].layers[0].copy[0]", "'nope.txt'", "does not exist", "'ctx'"));
    copy_fails(&ctx, &(struct item){.src = LIST("a.txt", "sub/none"), .dest = "/d/"},
               LIST("'sub/none'"));
    context_release(&ctx);
    close(fd);
}

static void test_open_fails_naming_a_missing_context(void **state)
{
    struct context ctx;
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(context_open(&ctx, "no-such-dir", &err), -1);
    assert_non_null(strstr(err.msg, "'no-such-dir'"));
}

/* --- nothing outside the context --- */

static void test_a_source_climbing_out_with_dotdot_is_refused(void **state)
{
    int fd = make_ctx();
    struct context ctx;

    open_ctx(&ctx);
    copy_fails(&ctx, &(struct item){.src = LIST("../secret/passwd"), .dest = "/d/"},
               LIST("'../secret/passwd'", "src[0]"));
    copy_fails(&ctx, &(struct item){.src = LIST("sub/../../secret"), .dest = "/d/"},
               LIST("'sub/../../secret'"));
    copy_fails(&ctx, &(struct item){.src = LIST("a.txt", ".."), .dest = "/d/"},
               LIST("'..'", "src[1]"));
    copy_fails(&ctx, &(struct item){.src = LIST("../*"), .dest = "/d/"}, LIST("'../*'"));
    context_release(&ctx);
    close(fd);
}

static void test_a_symlink_out_of_the_context_is_never_followed(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    char abs[4096];

    assert_non_null(realpath("secret", abs));
    assert_int_equal(symlinkat(abs, fd, "abs"), 0);         /* absolute, outside */
    assert_int_equal(symlinkat("../secret", fd, "rel"), 0); /* relative, outside */
    assert_int_equal(symlinkat("sub/../..", fd, "up"), 0);  /* the context's parent */
    assert_int_equal(symlinkat("/", fd, "root"), 0);
    open_ctx(&ctx);

    copy_fails(&ctx, &(struct item){.src = LIST("abs/passwd"), .dest = "/d/"},
               LIST("'abs/passwd'", "'abs'", "outside the context"));
    copy_fails(&ctx, &(struct item){.src = LIST("rel/passwd"), .dest = "/d/"},
               LIST("'rel/passwd'", "leaves the context"));
    copy_fails(&ctx, &(struct item){.src = LIST("up/secret/passwd"), .dest = "/d/"},
               LIST("'up/secret/passwd'"));
    copy_fails(&ctx, &(struct item){.src = LIST("root/etc"), .dest = "/d/"},
               LIST("'root/etc'"));
    /* A glob below such a link. */
    copy_fails(&ctx, &(struct item){.src = LIST("rel/*"), .dest = "/d/"},
               LIST("'rel/*'", "leaves the context"));
    context_release(&ctx);
    close(fd);
}

static void test_a_symlink_that_stays_inside_is_followed_in_the_middle(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    assert_int_equal(symlinkat("sub/inner", fd, "in"), 0);
    assert_int_equal(symlinkat("..", fd, "sub/inner/up"), 0);
    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("in/y.txt"), .dest = "/d/"}, &t);
    expect_paths(&t, LIST("d/y.txt"));
    /* read from where the link leads, never through the link */
    expect_file(&t, "d/y.txt", "sub/inner/y.txt", ctx.fd);
    layer_tree_release(&t);

    copy_ok(&ctx, &(struct item){.src = LIST("in/up/x.txt"), .dest = "/d/"}, &t);
    expect_file(&t, "d/x.txt", "sub/x.txt", ctx.fd);
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_symlinks_copied_are_kept_as_symlinks_whatever_their_target(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;
    const struct layer_tree_entry *e;

    assert_int_equal(symlinkat("/etc/shadow", fd, "sub/shadow"), 0);
    assert_int_equal(symlinkat("../../secret/passwd", fd, "sub/pw"), 0);
    assert_int_equal(symlinkat("x.txt", fd, "sub/x.link"), 0);
    open_ctx(&ctx);

    copy_ok(&ctx, &(struct item){.src = LIST("sub"), .dest = "/d"}, &t);
    for (size_t i = 0; i < 3; i++) {
        static const char *const links[][2] = {
            {"d/shadow", "/etc/shadow"},
            {"d/pw", "../../secret/passwd"},
            {"d/x.link", "x.txt"},
        };

        e = must_find(&t, links[i][0]);
        assert_true(S_ISLNK(e->mode));
        assert_string_equal(e->link, links[i][1]);
        assert_null(e->src);
        assert_null(e->data);
    }
    layer_tree_release(&t);

    /* A symlink named as the source itself is a symlink too. */
    copy_ok(&ctx, &(struct item){.src = LIST("sub/shadow"), .dest = "/etc/shadow"}, &t);
    expect_paths(&t, LIST("etc/shadow"));
    e = must_find(&t, "etc/shadow");
    assert_true(S_ISLNK(e->mode));
    assert_string_equal(e->link, "/etc/shadow");
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_a_special_file_is_refused_naming_it(void **state)
{
    int fd = make_ctx();
    struct context ctx;

    assert_int_equal(mkfifoat(fd, "sub/fifo", 0644), 0);
    open_ctx(&ctx);
    copy_fails(&ctx, &(struct item){.src = LIST("sub"), .dest = "/d"},
               LIST("'sub/fifo'", "special file"));
    context_release(&ctx);
    close(fd);
}

/* --- what is kept out --- */

static void test_ocibignore_keeps_files_out_and_an_explicit_source_fails(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_file(fd, "debug.log", "log");
    mk_file(fd, "sub/trace.log", "log");
    mk_dir(fd, "logs", 0755);
    mk_file(fd, "logs/keep.log", "k");
    mk_file(fd, "logs/drop.log", "d");
    /* logs/ is excluded as a whole, then one file below it re-included. */
    mk_file(fd, ".ocibignore", "**/*.log\nlogs\n!logs/keep.log\nsub/inner\n");
    open_ctx(&ctx);
    assert_string_equal(ctx.ignore_file, ".ocibignore");

    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/"}, &t);
    assert_null(find(&t, "debug.log"));
    assert_null(find(&t, "sub/trace.log"));
    assert_null(find(&t, "logs/drop.log"));
    assert_null(find(&t, "sub/inner"));
    assert_null(find(&t, "sub/inner/y.txt"));
    must_find(&t, "logs/keep.log");
    must_find(&t, "sub/x.txt");
    must_find(&t, "a.txt");
    layer_tree_release(&t);

    /* Named explicitly, an ignored file is an error, not a silent skip. */
    copy_fails(&ctx, &(struct item){.src = LIST("debug.log"), .dest = "/d/"},
               LIST("'debug.log'", "excluded", ".ocibignore"));
    /* A glob just does not match it. */
    copy_ok(&ctx, &(struct item){.src = LIST("*"), .dest = "/d/"}, &t);
    assert_null(find(&t, "d/debug.log"));
    must_find(&t, "d/a.txt");
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_dockerignore_is_read_only_without_an_ocibignore(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_file(fd, ".dockerignore", "a.txt\n");
    open_ctx(&ctx);
    assert_string_equal(ctx.ignore_file, ".dockerignore");
    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/"}, &t);
    assert_null(find(&t, "a.txt"));
    must_find(&t, "b.txt");
    layer_tree_release(&t);
    context_release(&ctx);

    mk_file(fd, ".ocibignore", "b.txt\n");
    open_ctx(&ctx);
    assert_string_equal(ctx.ignore_file, ".ocibignore");
    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/"}, &t);
    must_find(&t, "a.txt");
    assert_null(find(&t, "b.txt"));
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_a_bad_ignore_file_fails_the_open_naming_it(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct ocib_error err = OCIB_ERROR_INIT;

    mk_file(fd, ".ocibignore", "ok\n[unterminated\n");
    assert_int_equal(context_open(&ctx, "ctx", &err), -1);
    assert_non_null(strstr(err.msg, "'ctx'"));
    assert_non_null(strstr(err.msg, ".ocibignore"));
    assert_non_null(strstr(err.msg, "[unterminated"));
    close(fd);
}

static void test_exclude_uses_gitignore_rules_from_the_context_root(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_file(fd, "sub/inner/z.tmp", "t");
    mk_file(fd, "top.tmp", "t");
    open_ctx(&ctx);

    /* No inner '/': any depth. */
    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/", .exclude = LIST("*.tmp")},
            &t);
    assert_null(find(&t, "top.tmp"));
    assert_null(find(&t, "sub/inner/z.tmp"));
    must_find(&t, "sub/inner/y.txt");
    layer_tree_release(&t);

    /* Paths are the context's, not the source directory's. */
    copy_ok(
        &ctx,
        &(struct item){.src = LIST("sub"), .dest = "/app", .exclude = LIST("sub/x.txt")},
        &t);
    assert_null(find(&t, "app/x.txt"));
    must_find(&t, "app/inner/y.txt");
    layer_tree_release(&t);

    /* A trailing '/' matches directories only; '!' re-includes. */
    copy_ok(&ctx,
            &(struct item){.src = LIST("."),
                           .dest = "/",
                           .exclude = LIST("inner/", "*.txt", "!b.txt")},
            &t);
    assert_null(find(&t, "sub/inner"));
    assert_null(find(&t, "sub/inner/z.tmp"));
    assert_null(find(&t, "a.txt"));
    assert_null(find(&t, "sub/x.txt"));
    must_find(&t, "b.txt");
    must_find(&t, "run.sh");
    layer_tree_release(&t);

    copy_fails(&ctx,
               &(struct item){.src = LIST("a.txt"), .dest = "/", .exclude = LIST("[")},
               LIST("stages[0].layers[0].copy[0].exclude[0]"));
    context_release(&ctx);
    close(fd);
}

static void test_ocibs_own_outputs_are_never_context(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_dir(fd, "ocib-out", 0755);
    mk_file(fd, "ocib-out/index.json", "{}");
    mk_file(fd, "digest.txt", "sha256:...");
    /* A .ocibignore that re-includes everything changes nothing. */
    mk_file(fd, ".ocibignore", "!*\n");
    open_ctx(&ctx);
    context_exclude_own(&ctx, "ctx/ocib-out");
    context_exclude_own(&ctx, "ctx/digest.txt");
    context_exclude_own(&ctx, "ctx/not-yet-there");
    context_exclude_own(&ctx, "elsewhere/out"); /* outside: nothing happens */

    copy_ok(&ctx, &(struct item){.src = LIST("."), .dest = "/"}, &t);
    assert_null(find(&t, "ocib-out"));
    assert_null(find(&t, "ocib-out/index.json"));
    assert_null(find(&t, "digest.txt"));
    must_find(&t, "a.txt");
    layer_tree_release(&t);

    copy_fails(&ctx, &(struct item){.src = LIST("ocib-out/index.json"), .dest = "/d/"},
               LIST("'ocib-out/index.json'", "own output"));
    context_release(&ctx);
    close(fd);
}

/* --- modes, owners, sizes --- */

static void test_modes_are_normalised_keeping_setuid_setgid_and_sticky(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_dir(fd, "m", 0755);
    mk_file(fd, "m/private", "p");
    assert_int_equal(fchmodat(fd, "m/private", 0600, 0), 0);
    mk_file(fd, "m/userexec", "e");
    assert_int_equal(fchmodat(fd, "m/userexec", 0700, 0), 0);
    mk_file(fd, "m/groupexec", "e");
    assert_int_equal(fchmodat(fd, "m/groupexec", 0614, 0), 0);
    mk_file(fd, "m/su", "s");
    assert_int_equal(fchmodat(fd, "m/su", 04711, 0), 0);
    mk_dir(fd, "m/closed", 0700);
    mk_dir(fd, "m/tmp", 01777);
    mk_dir(fd, "m/shared", 02770);
    open_ctx(&ctx);

    copy_ok(&ctx, &(struct item){.src = LIST("m"), .dest = "/m"}, &t);
    expect_mode(&t, "m/private", S_IFREG | 0644);
    expect_mode(&t, "m/userexec", S_IFREG | 0755);
    expect_mode(&t, "m/groupexec", S_IFREG | 0755);
    expect_mode(&t, "m/su", S_IFREG | 04755);
    expect_mode(&t, "m/closed", S_IFDIR | 0755);
    expect_mode(&t, "m/tmp", S_IFDIR | 01755);
    expect_mode(&t, "m/shared", S_IFDIR | 02755);
    layer_tree_release(&t);

    copy_ok(&ctx,
            &(struct item){.src = LIST("m"), .dest = "/m", .mode = SPEC_MODE_PRESERVE}, &t);
    expect_mode(&t, "m/private", S_IFREG | 0600);
    expect_mode(&t, "m/groupexec", S_IFREG | 0614);
    expect_mode(&t, "m/su", S_IFREG | 04711);
    expect_mode(&t, "m/closed", S_IFDIR | 0700);
    expect_mode(&t, "m/tmp", S_IFDIR | 01777);
    layer_tree_release(&t);

    copy_ok(&ctx,
            &(struct item){.src = LIST("m/private", "m/su"), .dest = "/f/", .mode = 0640},
            &t);
    expect_mode(&t, "f/private", S_IFREG | 0640);
    expect_mode(&t, "f/su", S_IFREG | 0640);
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_entries_are_root_owned_unless_an_owner_is_given(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    /* The checkout's owner never leaks into the layer. */
    if (fchownat(fd, "sub/x.txt", 4321, 4321, 0) < 0 && errno != EPERM)
        fail_msg("chown: %s", strerror(errno));
    assert_int_equal(symlinkat("x.txt", fd, "sub/link"), 0);
    open_ctx(&ctx);

    copy_ok(&ctx, &(struct item){.src = LIST("sub"), .dest = "/d"}, &t);
    for (size_t i = 0; i < t.n; i++) {
        if (t.entries[i].uid != 0 || t.entries[i].gid != 0)
            fail_msg("'%s' is owned by %u:%u", t.entries[i].path, t.entries[i].uid,
                     t.entries[i].gid);
    }
    layer_tree_release(&t);

    copy_ok(&ctx,
            &(struct item){
                .src = LIST("sub"), .dest = "/d", .owner = true, .uid = 1000, .gid = 2000},
            &t);
    assert_int_equal(t.n, 5); /* d, x.txt, link, inner, inner/y.txt */
    for (size_t i = 0; i < t.n; i++) {
        if (t.entries[i].uid != 1000 || t.entries[i].gid != 2000)
            fail_msg("'%s' is owned by %u:%u, not 1000:2000", t.entries[i].path,
                     t.entries[i].uid, t.entries[i].gid);
    }
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

static void test_a_file_larger_than_the_limit_is_refused_before_it_is_read(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_tree t;
    int big;

    /* 1 GiB apparent size, no block written: sparse. */
    big = openat(fd, "sub/huge.img", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(big >= 0);
    assert_int_equal(ftruncate(big, 1LL << 30), 0);
    close(big);
    open_ctx(&ctx);
    ctx.max_file = 1 << 20;

    assert_int_equal(copy(&ctx, &(struct item){.src = LIST("sub"), .dest = "/d"}, &t, &err),
                     -1);
    assert_int_equal(ocib_error_kind(&err), OCIB_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "sub/huge.img"));
    assert_non_null(strstr(err.msg, "stages[0].layers[0].copy[0]"));
    layer_tree_release(&t);

    /* At the limit is fine; the small files were never a problem. */
    ctx.max_file = 1LL << 30;
    copy_ok(&ctx, &(struct item){.src = LIST("sub"), .dest = "/d"}, &t);
    assert_int_equal(must_find(&t, "d/huge.img")->size, 1LL << 30);
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

/* --- a stage's root as the source --- */

static void test_in_a_stage_root_symlinks_resolve_as_in_a_chroot(void **state)
{
    struct context ctx;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct layer_tree t;
    int fd;

    assert_int_equal(mkdir("root", 0755), 0);
    fd = open("root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    mk_dir(fd, "usr", 0755);
    mk_dir(fd, "usr/lib", 0755);
    mk_file(fd, "usr/lib/libc.so", "elf");
    assert_int_equal(symlinkat("/usr/lib", fd, "lib"), 0); /* absolute: at the root */
    assert_int_equal(symlinkat("../../../../usr", fd, "up"),
                     0); /* '..' stops at the root */
    mk_file(AT_FDCWD, "libc.so", "the host's");
    if (context_open_root(&ctx, "root", "build", &err) < 0)
        fail_msg("%s", err.msg);

    copy_ok(&ctx, &(struct item){.src = LIST("/lib/libc.so"), .dest = "/out/"}, &t);
    expect_file(&t, "out/libc.so", "usr/lib/libc.so", ctx.fd);
    layer_tree_release(&t);
    copy_ok(&ctx, &(struct item){.src = LIST("up/lib/libc.so"), .dest = "/out/"}, &t);
    expect_file(&t, "out/libc.so", "usr/lib/libc.so", ctx.fd);
    layer_tree_release(&t);

    copy_fails(&ctx, &(struct item){.src = LIST("/missing"), .dest = "/out/"},
               LIST("'/missing'", "stage 'build'"));
    context_release(&ctx);
    close(fd);
}

/* A fixed name after a wildcard matches only the directories that have it,
 * as Docker does. */
static void test_a_glob_skips_directories_without_the_named_file(void **state)
{
    int fd = make_ctx();
    struct context ctx;
    struct layer_tree t;

    mk_dir(fd, "svc", 0755);
    mk_dir(fd, "svc/api", 0755);
    mk_file(fd, "svc/api/config.json", "{}");
    mk_dir(fd, "svc/web", 0755);    /* no config.json */
    mk_file(fd, "svc/README", "r"); /* a file, not a directory */
    open_ctx(&ctx);
    copy_ok(&ctx, &(struct item){.src = LIST("svc/*/config.json"), .dest = "/etc/app/"},
            &t);
    expect_paths(&t, LIST("etc/app/config.json"));
    layer_tree_release(&t);
    context_release(&ctx);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_a_glob_skips_directories_without_the_named_file),
        TEMPDIR_TEST(test_a_file_goes_to_dest_or_into_a_dest_ending_in_a_slash),
        TEMPDIR_TEST(test_a_directory_copies_its_contents_into_dest),
        TEMPDIR_TEST(test_several_sources_need_a_directory_dest),
        TEMPDIR_TEST(test_globs_expand_inside_the_context_in_sorted_order),
        TEMPDIR_TEST(test_a_missing_source_is_an_error_naming_it_and_the_context),
        TEMPDIR_TEST(test_open_fails_naming_a_missing_context),
        TEMPDIR_TEST(test_a_source_climbing_out_with_dotdot_is_refused),
        TEMPDIR_TEST(test_a_symlink_out_of_the_context_is_never_followed),
        TEMPDIR_TEST(test_a_symlink_that_stays_inside_is_followed_in_the_middle),
        TEMPDIR_TEST(test_symlinks_copied_are_kept_as_symlinks_whatever_their_target),
        TEMPDIR_TEST(test_a_special_file_is_refused_naming_it),
        TEMPDIR_TEST(test_ocibignore_keeps_files_out_and_an_explicit_source_fails),
        TEMPDIR_TEST(test_dockerignore_is_read_only_without_an_ocibignore),
        TEMPDIR_TEST(test_a_bad_ignore_file_fails_the_open_naming_it),
        TEMPDIR_TEST(test_exclude_uses_gitignore_rules_from_the_context_root),
        TEMPDIR_TEST(test_ocibs_own_outputs_are_never_context),
        TEMPDIR_TEST(test_modes_are_normalised_keeping_setuid_setgid_and_sticky),
        TEMPDIR_TEST(test_entries_are_root_owned_unless_an_owner_is_given),
        TEMPDIR_TEST(test_a_file_larger_than_the_limit_is_refused_before_it_is_read),
        TEMPDIR_TEST(test_in_a_stage_root_symlinks_resolve_as_in_a_chroot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
