/*
 * Unit tests for builder/ignore: .dockerignore (moby) and gitignore pattern
 * matching, re-inclusion, pruning hints and ignore file parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "builder/ignore.h"
#include "tempdir.h"

OCIB_DEFINE_CLEANUP(struct ignore, ignore_free)
#define _cleanup_ignore_ _cleanup_(ignore_freep)

/* Builds a list from NULL-terminated lines of one syntax; every line must
 * compile. */
static struct ignore *build(enum ignore_syntax syntax, const char *const *lines)
{
    struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;

    for (size_t i = 0; lines[i]; i++) {
        if (ignore_add(ig, syntax, lines[i], "test", &err) < 0)
            fail_msg("pattern \"%s\" rejected: %s", lines[i], err.msg);
    }
    return ig;
}

#define EXCLUDED(ig, path) assert_true(ignore_match((ig), (path), false))
#define KEPT(ig, path) assert_false(ignore_match((ig), (path), false))
#define EXCLUDED_DIR(ig, path) assert_true(ignore_match((ig), (path), true))
#define KEPT_DIR(ig, path) assert_false(ignore_match((ig), (path), true))

/* Makes a fresh directory under the current one and returns an fd on it. */
static int temp_dir_fd(void)
{
    char tmpl[] = "ignore-XXXXXX";
    int fd;

    assert_non_null(mkdtemp(tmpl));
    fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static void write_at(int dirfd, const char *name, const char *data, size_t len)
{
    _cleanup_close_ int fd =
        openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, data, len, NULL), 0);
}

/* --- Docker syntax: the examples of Docker's .dockerignore documentation --- */

static void test_docker_star_slash_temp_matches_one_level_down(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"# comment", "*/temp*", NULL});

    EXCLUDED(ig, "somedir/temporary.txt");
    EXCLUDED(ig, "somedir/temp");
    KEPT(ig, "temp.txt");
    KEPT(ig, "somedir/subdir/temporary.txt");
    KEPT(ig, "somedir/other.txt");
}

static void test_docker_two_stars_temp_matches_two_levels_down(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"*/*/temp*", NULL});

    EXCLUDED(ig, "somedir/subdir/temporary.txt");
    KEPT(ig, "somedir/temporary.txt");
    KEPT(ig, "temporary.txt");
}

static void test_docker_question_mark_is_one_char_at_root(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"temp?", NULL});

    EXCLUDED(ig, "tempa");
    EXCLUDED(ig, "tempb");
    EXCLUDED(ig, "temp\xc3\xa9"); /* "tempé": one character, two bytes */
    KEPT(ig, "temp");
    KEPT(ig, "tempab");
    KEPT(ig, "dir/tempa");
}

static void test_docker_double_star_go_matches_any_depth(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"**/*.go", NULL});

    EXCLUDED(ig, "main.go");
    EXCLUDED(ig, "cmd/tool/main.go");
    KEPT(ig, "cmd/tool/main.gox");
    KEPT(ig, "README.md");
}

static void test_docker_exception_reincludes_readme(void **state)
{
    _cleanup_ignore_ struct ignore *ig = build(
        IGNORE_DOCKER, (const char *[]){"*.md", "!README*.md", "README-secret.md", NULL});

    EXCLUDED(ig, "CHANGES.md");
    KEPT(ig, "README.md");
    KEPT(ig, "README-en.md");
    EXCLUDED(ig, "README-secret.md");
    KEPT(ig, "docs/guide.md"); /* "*.md" is anchored at the root */
}

static void test_docker_last_matching_pattern_wins(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"!README.md", "*.md", NULL});

    EXCLUDED(ig, "README.md");
}

static void test_docker_directory_pattern_excludes_contents(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"build", "docs/private/", NULL});

    EXCLUDED_DIR(ig, "build");
    EXCLUDED(ig, "build/out.o");
    EXCLUDED(ig, "build/deep/er/x.o");
    EXCLUDED(ig, "docs/private/a.txt");
    EXCLUDED(ig, "build"); /* docker drops the trailing '/': files too */
    KEPT(ig, "builder/x.c");
    KEPT(ig, "src/build");
    KEPT(ig, "docs/public/a.txt");
}

static void test_docker_patterns_are_cleaned_and_anchored(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"/secret", "./a//b/", "  spaced  ", "x/../y",
                                              "! /gen ", NULL});

    EXCLUDED(ig, "secret");
    KEPT(ig, "sub/secret");
    EXCLUDED(ig, "a/b");
    EXCLUDED(ig, "a/b/c");
    KEPT(ig, "a/bc");
    EXCLUDED(ig, "spaced");
    EXCLUDED(ig, "y");
    KEPT(ig, "x/y");
    KEPT(ig, "gen"); /* only re-including: nothing excluded it */
}

static void test_docker_double_star_forms(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"a/**/b", "c/**", "d**e", NULL});

    EXCLUDED(ig, "a/b");
    EXCLUDED(ig, "a/x/b");
    EXCLUDED(ig, "a/x/y/b");
    KEPT(ig, "a/xb");
    KEPT(ig, "a/x/bb");
    KEPT_DIR(ig, "c"); /* moby: "c" then "**" needs something below c */
    EXCLUDED(ig, "c/x");
    EXCLUDED(ig, "c/x/y");
    /* moby turns a "**" not followed by '/' into "(.*\/)?" */
    EXCLUDED(ig, "de");
    EXCLUDED(ig, "dx/y/e");
    KEPT(ig, "dxe");
}

static void test_docker_classes_and_escapes(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"[a-c].txt", "[^x-z]1", "[!q]2", "lit\\*",
                                              "q\\?", "[\\]]3", "a[^x]b", NULL});

    EXCLUDED(ig, "a.txt");
    EXCLUDED(ig, "c.txt");
    KEPT(ig, "d.txt");
    EXCLUDED(ig, "a1");
    KEPT(ig, "y1");
    EXCLUDED(ig, "p2");
    KEPT(ig, "q2");
    EXCLUDED(ig, "lit*");
    KEPT(ig, "litx");
    EXCLUDED(ig, "q?");
    KEPT(ig, "qx");
    EXCLUDED(ig, "]3");
    EXCLUDED(ig, "ayb");
    KEPT(ig, "a/b"); /* even a negated class never matches '/' */
}

static void test_docker_star_everything_then_reinclude(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"*", "!src", "src/*.tmp", NULL});

    EXCLUDED(ig, "README.md");
    EXCLUDED(ig, "docs/a/b");
    KEPT_DIR(ig, "src");
    KEPT(ig, "src/main.c");
    KEPT(ig, "src/lib/x.c");
    EXCLUDED(ig, "src/a.tmp");
}

/* --- Git syntax: gitignore(5) --- */

static void test_git_name_matches_at_any_depth(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT, (const char *[]){"node_modules", "*.log", NULL});

    EXCLUDED_DIR(ig, "node_modules");
    EXCLUDED(ig, "node_modules/left-pad/index.js");
    EXCLUDED_DIR(ig, "packages/web/node_modules");
    EXCLUDED(ig, "packages/web/node_modules/x/y.js");
    KEPT_DIR(ig, "node_modules_old");
    KEPT(ig, "my_node_modules");
    EXCLUDED(ig, "debug.log");
    EXCLUDED(ig, "var/app/debug.log");
    KEPT(ig, "debug.log.txt");
}

static void test_git_leading_slash_anchors_at_root(void **state)
{
    _cleanup_ignore_ struct ignore *ig = build(IGNORE_GIT, (const char *[]){"/dist", NULL});

    EXCLUDED_DIR(ig, "dist");
    EXCLUDED(ig, "dist/app.js");
    KEPT_DIR(ig, "web/dist");
    KEPT(ig, "web/dist/app.js");
}

static void test_git_trailing_slash_matches_only_directories(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT, (const char *[]){"build/", NULL});

    EXCLUDED_DIR(ig, "build");
    KEPT(ig, "build"); /* a file named build */
    EXCLUDED_DIR(ig, "sub/build");
    EXCLUDED(ig, "build/out.o");
    EXCLUDED(ig, "sub/build/out.o");
    KEPT(ig, "sub/build.o");
}

static void test_git_middle_slash_anchors_and_star_stays_in_component(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT, (const char *[]){"doc/*.txt", NULL});

    EXCLUDED(ig, "doc/notes.txt");
    KEPT(ig, "doc/server/arch.txt");
    KEPT(ig, "src/doc/notes.txt");
    KEPT(ig, "doc/notes.md");
}

static void test_git_double_star_forms(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT,
              (const char *[]){"**/foo", "**/x/bar", "a/**/b", "abc/**", "p**q", NULL});

    EXCLUDED(ig, "foo");
    EXCLUDED(ig, "m/foo");
    EXCLUDED(ig, "m/n/foo");
    KEPT(ig, "m/foox");
    EXCLUDED(ig, "x/bar");
    EXCLUDED(ig, "m/x/bar");
    KEPT(ig, "bar");
    EXCLUDED(ig, "a/b");
    EXCLUDED(ig, "a/x/b");
    EXCLUDED(ig, "a/x/y/b");
    KEPT(ig, "a/xb");
    KEPT_DIR(ig, "abc");
    EXCLUDED(ig, "abc/x");
    EXCLUDED(ig, "abc/x/y");
    /* not a whole component: "**" is a plain '*' */
    EXCLUDED(ig, "pxq");
    EXCLUDED(ig, "pq");
    KEPT(ig, "px/q");
}

static void test_git_negation_reincludes(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT,
              (const char *[]){"*.log", "!keep.log", "logs/", "!logs/important.txt", NULL});

    EXCLUDED(ig, "debug.log");
    KEPT(ig, "keep.log");
    KEPT(ig, "deep/keep.log");
    EXCLUDED(ig, "logs/a.txt");
    KEPT(ig, "logs/important.txt");
}

static void test_git_escapes_comments_and_spaces(void **state)
{
    _cleanup_ignore_ struct ignore *ig = build(
        IGNORE_GIT, (const char *[]){"# a comment", "", "\\#hash", "\\!bang", "trail   ",
                                     "kept\\ ", "a#b", "[[:digit:]]x", NULL});

    KEPT(ig, "# a comment");
    EXCLUDED(ig, "#hash");
    EXCLUDED(ig, "!bang");
    EXCLUDED(ig, "trail");
    KEPT(ig, "trail   ");
    EXCLUDED(ig, "kept ");
    KEPT(ig, "kept");
    EXCLUDED(ig, "a#b");
    EXCLUDED(ig, "7x");
    KEPT(ig, "ax");
}

static void test_git_leading_bracket_is_member(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_GIT, (const char *[]){"[]a]z", "[a-]y", NULL});

    EXCLUDED(ig, "]z");
    EXCLUDED(ig, "az");
    KEPT(ig, "bz");
    EXCLUDED(ig, "-y");
}

/* --- errors and limits --- */

static void expect_invalid(enum ignore_syntax syntax, const char *pattern, const char *msg)
{
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(
        ignore_add(ig, syntax, pattern, "stages[0].layers[1].copy[0].exclude[2]", &err),
        -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    assert_string_equal(err.msg, msg);
    assert_true(ignore_is_empty(ig));
}

static void test_invalid_patterns_name_origin_and_pattern(void **state)
{
    expect_invalid(IGNORE_GIT, "src/[abc",
                   "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"src/[abc\": "
                   "unterminated '['");
    expect_invalid(IGNORE_DOCKER, "foo[",
                   "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"foo[\": "
                   "unterminated '['");
    expect_invalid(IGNORE_DOCKER, "x\\",
                   "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"x\\\": "
                   "trailing '\\'");
    expect_invalid(IGNORE_DOCKER, "[]x]",
                   "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"[]x]\": "
                   "empty character class");
    expect_invalid(IGNORE_DOCKER, "!",
                   "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"!\": "
                   "'!' needs a pattern to re-include");
    expect_invalid(
        IGNORE_GIT, "[[:bogus:]]",
        "stages[0].layers[1].copy[0].exclude[2]: invalid pattern \"[[:bogus:]]\": "
        "unknown character class");
}

static void test_empty_and_comment_lines_add_nothing(void **state)
{
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_true(ignore_is_empty(ig));
    assert_int_equal(ignore_add(ig, IGNORE_DOCKER, "", "o", &err), 0);
    assert_int_equal(ignore_add(ig, IGNORE_DOCKER, "   ", "o", &err), 0);
    assert_int_equal(ignore_add(ig, IGNORE_DOCKER, "# *", "o", &err), 0);
    assert_int_equal(ignore_add(ig, IGNORE_GIT, "#*", "o", &err), 0);
    assert_true(ignore_is_empty(ig));
    KEPT(ig, "anything");
    assert_int_equal(ignore_add(ig, IGNORE_DOCKER, " # not a comment", "o", &err), 0);
    assert_false(ignore_is_empty(ig));
    EXCLUDED(ig, "# not a comment");
    ignore_free(NULL);
}

static void test_pattern_length_and_count_are_capped(void **state)
{
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    _cleanup_free_ char *longp = xmalloc(IGNORE_PATTERN_MAX + 2);
    struct ocib_error err = OCIB_ERROR_INIT;

    memset(longp, 'a', IGNORE_PATTERN_MAX);
    longp[IGNORE_PATTERN_MAX] = '\0';
    assert_int_equal(ignore_add(ig, IGNORE_GIT, longp, "o", &err), 0);
    EXCLUDED(ig, longp);
    longp[IGNORE_PATTERN_MAX] = 'a';
    longp[IGNORE_PATTERN_MAX + 1] = '\0';
    assert_int_equal(ignore_add(ig, IGNORE_GIT, longp, "o", &err), -1);
    assert_string_equal(err.msg, "o: pattern is longer than the limit of 4096 bytes");

    for (int i = 1; i < IGNORE_PATTERNS_MAX; i++) {
        char p[32];

        snprintf(p, sizeof(p), "f%d", i);
        assert_int_equal(ignore_add(ig, IGNORE_GIT, p, "o", &err), 0);
    }
    assert_int_equal(ignore_add(ig, IGNORE_GIT, "one-more", "x", &err), -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    assert_string_equal(err.msg, "x: too many patterns (the limit is 10000)");
    EXCLUDED(ig, "dir/f9999");
    KEPT(ig, "one-more");
}

static void test_many_stars_match_in_bounded_time(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
                                              "**/**/**/**/**/**/**/z", NULL});
    _cleanup_free_ char *path = xmalloc(4001);

    /* A backtracking matcher takes exponential time here. */
    memset(path, 'a', 4000);
    path[4000] = '\0';
    KEPT(ig, path);
    for (int i = 1; i < 4000; i += 2)
        path[i] = '/';
    path[3999] = '\0'; /* "a/a/.../a" */
    KEPT(ig, path);
    path[3998] = 'z';
    path[3999] = '\0';
    EXCLUDED(ig, path);
}

/* --- pruning hints --- */

static void test_may_reinclude_below_follows_exceptions(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER,
              (const char *[]){"*", "!src/keep.txt", "build", "!build/sub/x", NULL});

    EXCLUDED_DIR(ig, "src");
    assert_true(ignore_may_reinclude_below(ig, "src"));
    KEPT(ig, "src/keep.txt");
    EXCLUDED(ig, "src/other.txt");
    EXCLUDED_DIR(ig, "docs");
    assert_false(ignore_may_reinclude_below(ig, "docs"));
    assert_true(ignore_may_reinclude_below(ig, "build"));
    assert_true(ignore_may_reinclude_below(ig, "build/sub"));
    assert_false(ignore_may_reinclude_below(ig, "build/other"));
    KEPT(ig, "build/sub/x");
    KEPT(ig, "build/sub/x/deeper");
}

static void test_may_reinclude_below_ignores_earlier_exceptions(void **state)
{
    _cleanup_ignore_ struct ignore *ig =
        build(IGNORE_DOCKER, (const char *[]){"!vendor/keep", "vendor", NULL});

    EXCLUDED_DIR(ig, "vendor");
    EXCLUDED(ig, "vendor/keep");
    assert_false(ignore_may_reinclude_below(ig, "vendor"));
}

static void test_may_reinclude_below_with_wildcards(void **state)
{
    _cleanup_ignore_ struct ignore *docker =
        build(IGNORE_DOCKER, (const char *[]){"node_modules", "!**/*.keep", NULL});
    _cleanup_ignore_ struct ignore *docker_top =
        build(IGNORE_DOCKER, (const char *[]){"cache", "!*.keep", NULL});
    _cleanup_ignore_ struct ignore *git =
        build(IGNORE_GIT, (const char *[]){"tmp/", "!*.keep", NULL});
    _cleanup_ignore_ struct ignore *git_anchored =
        build(IGNORE_GIT, (const char *[]){"tmp/", "!/other/*.keep", NULL});

    assert_true(ignore_may_reinclude_below(docker, "node_modules"));
    KEPT(docker, "node_modules/a/b.keep");
    assert_false(ignore_may_reinclude_below(docker_top, "cache"));
    assert_true(ignore_may_reinclude_below(git, "a/tmp"));
    KEPT(git, "a/tmp/x.keep");
    assert_false(ignore_may_reinclude_below(git_anchored, "a/tmp"));
    assert_false(ignore_may_reinclude_below(git_anchored, "tmp"));
}

/* --- ignore files --- */

static void test_add_file_reads_comments_crlf_and_bom(void **state)
{
    _cleanup_close_ int dfd = temp_dir_fd();
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;
    static const char text[] = "\xef\xbb\xbf*.tmp\r\n"
                               "# build output\n"
                               "\n"
                               "/out/\n"
                               "!out/keep\n"
                               "   \n"
                               "node_modules"; /* no final newline */

    write_at(dfd, ".ocibignore", text, sizeof(text) - 1);
    assert_int_equal(ignore_add_file(ig, dfd, ".ocibignore", &err), 0);
    EXCLUDED(ig, "a.tmp");
    KEPT(ig, "sub/a.tmp");
    KEPT(ig, "# build output");
    EXCLUDED(ig, "out/x");
    KEPT(ig, "out/keep");
    EXCLUDED(ig, "node_modules/x");
    KEPT(ig, "src/node_modules");
}

static void test_add_file_missing_is_not_an_error(void **state)
{
    _cleanup_close_ int dfd = temp_dir_fd();
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(ignore_add_file(ig, dfd, ".ocibignore", &err), 0);
    assert_true(ignore_is_empty(ig));
    assert_string_equal(err.msg, "");
}

static void test_add_file_error_names_file_and_line(void **state)
{
    _cleanup_close_ int dfd = temp_dir_fd();
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    struct ocib_error err = OCIB_ERROR_INIT;
    static const char text[] = "# header\nok\n  [oops  \nnever\n";

    write_at(dfd, ".ocibignore", text, sizeof(text) - 1);
    assert_int_equal(ignore_add_file(ig, dfd, ".ocibignore", &err), -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    assert_string_equal(err.msg, "'.ocibignore' line 3: invalid pattern \"  [oops  \": "
                                 "unterminated '['");
}

static void test_add_file_over_one_mib_is_refused(void **state)
{
    _cleanup_close_ int dfd = temp_dir_fd();
    _cleanup_ignore_ struct ignore *ig = ignore_new();
    _cleanup_free_ char *big = xmalloc(IGNORE_FILE_MAX + 1);
    struct ocib_error err = OCIB_ERROR_INIT;

    memset(big, '\n', IGNORE_FILE_MAX + 1);
    write_at(dfd, "big", big, IGNORE_FILE_MAX + 1);
    assert_int_equal(ignore_add_file(ig, dfd, "big", &err), -1);
    assert_non_null(strstr(err.msg, "'big' is larger than the limit"));
    write_at(dfd, "fits", big, IGNORE_FILE_MAX);
    assert_int_equal(ignore_add_file(ig, dfd, "fits", &err), 0);
    assert_true(ignore_is_empty(ig));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_docker_star_slash_temp_matches_one_level_down),
        TEMPDIR_TEST(test_docker_two_stars_temp_matches_two_levels_down),
        TEMPDIR_TEST(test_docker_question_mark_is_one_char_at_root),
        TEMPDIR_TEST(test_docker_double_star_go_matches_any_depth),
        TEMPDIR_TEST(test_docker_exception_reincludes_readme),
        TEMPDIR_TEST(test_docker_last_matching_pattern_wins),
        TEMPDIR_TEST(test_docker_directory_pattern_excludes_contents),
        TEMPDIR_TEST(test_docker_patterns_are_cleaned_and_anchored),
        TEMPDIR_TEST(test_docker_double_star_forms),
        TEMPDIR_TEST(test_docker_classes_and_escapes),
        TEMPDIR_TEST(test_docker_star_everything_then_reinclude),
        TEMPDIR_TEST(test_git_name_matches_at_any_depth),
        TEMPDIR_TEST(test_git_leading_slash_anchors_at_root),
        TEMPDIR_TEST(test_git_trailing_slash_matches_only_directories),
        TEMPDIR_TEST(test_git_middle_slash_anchors_and_star_stays_in_component),
        TEMPDIR_TEST(test_git_double_star_forms),
        TEMPDIR_TEST(test_git_negation_reincludes),
        TEMPDIR_TEST(test_git_escapes_comments_and_spaces),
        TEMPDIR_TEST(test_git_leading_bracket_is_member),
        TEMPDIR_TEST(test_invalid_patterns_name_origin_and_pattern),
        TEMPDIR_TEST(test_empty_and_comment_lines_add_nothing),
        TEMPDIR_TEST(test_pattern_length_and_count_are_capped),
        TEMPDIR_TEST(test_many_stars_match_in_bounded_time),
        TEMPDIR_TEST(test_may_reinclude_below_follows_exceptions),
        TEMPDIR_TEST(test_may_reinclude_below_ignores_earlier_exceptions),
        TEMPDIR_TEST(test_may_reinclude_below_with_wildcards),
        TEMPDIR_TEST(test_add_file_reads_comments_crlf_and_bom),
        TEMPDIR_TEST(test_add_file_missing_is_not_an_error),
        TEMPDIR_TEST(test_add_file_error_names_file_and_line),
        TEMPDIR_TEST(test_add_file_over_one_mib_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
