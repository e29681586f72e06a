/*
 * Unit tests for cache/statcache: a file's recorded content digest is
 * given back only while every field of its stat (device, inode, size,
 * mtime, ctime) is what it was, the cache survives a save and a load, each
 * context has its own, and a damaged cache file costs re-hashing, never a
 * digest for a file it was not recorded for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "cache/blobs.h"
#include "cache/statcache.h"
#include "tempdir.h"

#define CTX "/work/some/context"

/* Three distinct digests (64 hex). */
#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_C "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void open_cache(struct cache *c)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (cache_open(c, "cache", &err) < 0)
        fail_msg("%s", err.msg);
}

static void save(struct stat_cache *sc)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (stat_cache_save(sc, &err) < 0)
        fail_msg("%s", err.msg);
}

static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    assert_int_equal(close(fd), 0);
}

static struct stat stat_of(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        fail_msg("%s: %s", path, strerror(errno));
    return st;
}

/* A stat no file has, for tests of one field at a time. */
static struct stat fake_stat(void)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    st.st_mode = S_IFREG | 0644;
    st.st_dev = 2049;
    st.st_ino = 131077;
    st.st_size = 4096;
    st.st_mtim.tv_sec = 1700000000;
    st.st_mtim.tv_nsec = 123456789;
    st.st_ctim.tv_sec = 1700000001;
    st.st_ctim.tv_nsec = 987654321;
    return st;
}

/* The kernel stamps times from a clock that ticks every few milliseconds:
 * wait for the next tick so that a change gets a new ctime. */
static void next_tick(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

static void expect_hit(struct stat_cache *sc, const char *path, const struct stat *st,
                       const char *hex)
{
    const char *got = stat_cache_lookup(sc, path, st);

    if (!got)
        fail_msg("no digest for '%s'", path);
    assert_string_equal(got, hex);
}

static void expect_miss(struct stat_cache *sc, const char *path, const struct stat *st)
{
    const char *got = stat_cache_lookup(sc, path, st);

    if (got)
        fail_msg("'%s' still has digest %s", path, got);
}

/* The one file under cache/stat/ (the cache of the one context saved);
 * caller frees. */
static char *the_cache_file(void)
{
    DIR *d = opendir("cache/stat");
    struct dirent *de;
    char *found = NULL;

    assert_non_null(d);
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (found)
            fail_msg("more than one file in cache/stat");
        assert_true(asprintf(&found, "cache/stat/%s", de->d_name) > 0);
    }
    closedir(d);
    if (!found)
        fail_msg("no file in cache/stat");
    return found;
}

static size_t count_cache_files(void)
{
    DIR *d = opendir("cache/stat");
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void replace_file(const char *path, const char *data, size_t len)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (fs_write_file_atomic(path, data, len, 0600, &err) < 0)
        fail_msg("%s", err.msg);
}

/* --- lookups --- */

static void test_an_unchanged_file_gives_back_its_digest(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    assert_non_null(sc);
    write_file("f", "hello");
    st = stat_of("f");
    expect_miss(sc, "f", &st);
    stat_cache_put(sc, "f", &st, HEX_A);
    expect_hit(sc, "f", &st, HEX_A);
    /* A fresh stat of the untouched file is the same stat. */
    st = stat_of("f");
    expect_hit(sc, "f", &st, HEX_A);
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_a_path_never_put_misses_even_with_a_known_stat(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "dir/f", &st, HEX_A);
    /* Same stat (a hardlink, say), other names: the path is the key. */
    expect_miss(sc, "dir/g", &st);
    expect_miss(sc, "dir", &st);
    expect_miss(sc, "dir/f/", &st);
    expect_miss(sc, "f", &st);
    expect_hit(sc, "dir/f", &st, HEX_A);
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_each_stat_field_alone_makes_a_miss(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    const struct stat base = fake_stat();
    struct stat st;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &base, HEX_B);
    expect_hit(sc, "f", &base, HEX_B);

    st = base;
    st.st_dev++;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_ino++;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_size++;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_size = 0;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_mtim.tv_sec++;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_mtim.tv_nsec++; /* a nanosecond counts */
    expect_miss(sc, "f", &st);
    st = base;
    st.st_ctim.tv_sec--;
    expect_miss(sc, "f", &st);
    st = base;
    st.st_ctim.tv_nsec--;
    expect_miss(sc, "f", &st);
    /* and nothing was forgotten by asking */
    expect_hit(sc, "f", &base, HEX_B);
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_a_rewritten_file_misses(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat before, after;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);

    /* Grown. */
    write_file("grown", "v1");
    before = stat_of("grown");
    stat_cache_put(sc, "grown", &before, HEX_A);
    next_tick();
    write_file("grown", "v1 and more");
    after = stat_of("grown");
    expect_miss(sc, "grown", &after);

    /* Same size, new content, the old mtime put back (as a checkout or
     * `touch -r` does): only the ctime tells. */
    write_file("same", "AAAA");
    before = stat_of("same");
    stat_cache_put(sc, "same", &before, HEX_A);
    next_tick();
    write_file("same", "BBBB");
    {
        struct timespec ts[2] = {before.st_atim, before.st_mtim};

        assert_int_equal(utimensat(AT_FDCWD, "same", ts, AT_SYMLINK_NOFOLLOW), 0);
    }
    after = stat_of("same");
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    expect_miss(sc, "same", &after);

    /* Only touched: the mtime moves. */
    write_file("touched", "x");
    before = stat_of("touched");
    stat_cache_put(sc, "touched", &before, HEX_A);
    {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 0}};

        assert_int_equal(utimensat(AT_FDCWD, "touched", ts, 0), 0);
    }
    after = stat_of("touched");
    expect_miss(sc, "touched", &after);

    /* Replaced by rename (an editor's save): another inode. */
    write_file("renamed", "same bytes");
    before = stat_of("renamed");
    stat_cache_put(sc, "renamed", &before, HEX_A);
    write_file("renamed.new", "same bytes");
    assert_int_equal(rename("renamed.new", "renamed"), 0);
    after = stat_of("renamed");
    assert_true(after.st_ino != before.st_ino);
    expect_miss(sc, "renamed", &after);

    /* chmod: only the ctime moves. */
    write_file("chmodded", "x");
    before = stat_of("chmodded");
    stat_cache_put(sc, "chmodded", &before, HEX_A);
    next_tick();
    assert_int_equal(chmod("chmodded", 0755), 0);
    after = stat_of("chmodded");
    expect_miss(sc, "chmodded", &after);

    stat_cache_free(sc);
    cache_release(&c);
}

static void test_the_latest_put_wins(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st1 = fake_stat(), st2 = fake_stat();

    st2.st_size = 99;
    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &st1, HEX_A);
    stat_cache_put(sc, "f", &st2, HEX_B);
    expect_miss(sc, "f", &st1);
    expect_hit(sc, "f", &st2, HEX_B);
    save(sc);
    stat_cache_free(sc);

    sc = stat_cache_load(&c, CTX);
    expect_miss(sc, "f", &st1);
    expect_hit(sc, "f", &st2, HEX_B);
    stat_cache_free(sc);
    cache_release(&c);
}

/* --- persistence --- */

static void test_entries_survive_save_and_load(void **state)
{
    /* Names a line-based file could trip on. */
    static const char *const names[] = {
        "plain", "with space", "new\nline", "colon:42:", "ünïcödé", "a/b/c/deep", "x",
    };
    const size_t n = sizeof(names) / sizeof(names[0]);
    struct cache c;
    struct stat_cache *sc;
    struct stat st[sizeof(names) / sizeof(names[0])];

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    for (size_t i = 0; i < n; i++) {
        st[i] = fake_stat();
        st[i].st_ino += i;
        stat_cache_put(sc, names[i], &st[i], i % 2 ? HEX_B : HEX_C);
    }
    save(sc);
    stat_cache_free(sc);

    sc = stat_cache_load(&c, CTX);
    for (size_t i = 0; i < n; i++) {
        expect_hit(sc, names[i], &st[i], i % 2 ? HEX_B : HEX_C);
        /* the stat travelled with its entry */
        expect_miss(sc, names[i], &st[(i + 1) % n]);
    }
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_thousands_of_entries_survive_save_and_load(void **state)
{
    enum { N = 5000 };
    struct cache c;
    struct stat_cache *sc;
    char path[64];

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    for (int i = 0; i < N; i++) {
        struct stat st = fake_stat();

        st.st_ino = (ino_t)(1000 + i);
        snprintf(path, sizeof(path), "src/file-%d.c", i);
        stat_cache_put(sc, path, &st, i % 3 ? HEX_A : HEX_B);
    }
    save(sc);
    stat_cache_free(sc);

    sc = stat_cache_load(&c, CTX);
    for (int i = 0; i < N; i++) {
        struct stat st = fake_stat();

        st.st_ino = (ino_t)(1000 + i);
        snprintf(path, sizeof(path), "src/file-%d.c", i);
        expect_hit(sc, path, &st, i % 3 ? HEX_A : HEX_B);
    }
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_an_unsaved_put_is_not_kept(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &st, HEX_A);
    stat_cache_free(sc);

    sc = stat_cache_load(&c, CTX);
    expect_miss(sc, "f", &st);
    stat_cache_free(sc);
    cache_release(&c);
}

static void test_each_context_has_its_own_cache(void **state)
{
    struct cache c;
    struct stat_cache *a, *b;
    struct stat st = fake_stat();

    open_cache(&c);
    a = stat_cache_load(&c, "/ctx/one");
    stat_cache_put(a, "f", &st, HEX_A);
    save(a);
    b = stat_cache_load(&c, "/ctx/two");
    expect_miss(b, "f", &st);
    stat_cache_put(b, "f", &st, HEX_B);
    save(b);
    stat_cache_free(a);
    stat_cache_free(b);
    assert_int_equal(count_cache_files(), 2);

    a = stat_cache_load(&c, "/ctx/one");
    b = stat_cache_load(&c, "/ctx/two");
    expect_hit(a, "f", &st, HEX_A);
    expect_hit(b, "f", &st, HEX_B);
    stat_cache_free(a);
    stat_cache_free(b);
    /* A context that is a prefix of another is still another. */
    a = stat_cache_load(&c, "/ctx/on");
    expect_miss(a, "f", &st);
    stat_cache_free(a);
    cache_release(&c);
}

static void test_saving_an_unchanged_cache_writes_nothing(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();
    char *file;
    struct stat before, after;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    save(sc);
    assert_int_equal(count_cache_files(), 0);
    stat_cache_put(sc, "f", &st, HEX_A);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();
    before = stat_of(file);

    /* Loaded and looked up, nothing put: the file stays as it is. */
    next_tick();
    sc = stat_cache_load(&c, CTX);
    expect_hit(sc, "f", &st, HEX_A);
    save(sc);
    stat_cache_free(sc);
    after = stat_of(file);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    free(file);
    cache_release(&c);
}

/* --- damaged files --- */

static void test_a_garbage_cache_file_is_an_empty_cache(void **state)
{
    static const char garbage[] = "\x7f"
                                  "ELF\x02\x01\x01 not a stat cache\n\0\0\xff\xfe";
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();
    char *file;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &st, HEX_A);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();
    replace_file(file, garbage, sizeof(garbage) - 1);

    sc = stat_cache_load(&c, CTX);
    assert_non_null(sc);
    expect_miss(sc, "f", &st);
    /* and it is usable: the next save replaces the garbage */
    stat_cache_put(sc, "g", &st, HEX_B);
    save(sc);
    stat_cache_free(sc);
    sc = stat_cache_load(&c, CTX);
    expect_hit(sc, "g", &st, HEX_B);
    stat_cache_free(sc);
    free(file);
    cache_release(&c);
}

static void test_an_empty_or_unreadable_cache_file_is_an_empty_cache(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();
    char *file;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &st, HEX_A);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();

    replace_file(file, "", 0);
    sc = stat_cache_load(&c, CTX);
    assert_non_null(sc);
    expect_miss(sc, "f", &st);
    stat_cache_free(sc);

    /* A directory where the file should be. */
    assert_int_equal(unlink(file), 0);
    assert_int_equal(mkdir(file, 0700), 0);
    sc = stat_cache_load(&c, CTX);
    assert_non_null(sc);
    expect_miss(sc, "f", &st);
    stat_cache_free(sc);
    free(file);
    cache_release(&c);
}

/* A cache file cut short (a full disk, a crash without the rename the cache
 * relies on) at any byte: the entry it cuts is never given back, and no
 * lookup ever gives a digest other than the one put. */
static void test_a_truncated_cache_file_never_gives_a_cut_entry(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();
    char *file, *full = NULL;
    size_t len;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "some/dir/file.txt", &st, HEX_B);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();
    assert_int_equal(fs_read_file(file, 1 << 20, &full, &len, NULL), 0);
    assert_true(len > 64);

    for (size_t cut = 0; cut <= len; cut++) {
        const char *got;

        replace_file(file, full, cut);
        sc = stat_cache_load(&c, CTX);
        assert_non_null(sc);
        got = stat_cache_lookup(sc, "some/dir/file.txt", &st);
        if (got && strcmp(got, HEX_B))
            fail_msg("cut at %zu of %zu bytes: digest %s, put %s", cut, len, got, HEX_B);
        /* Whatever ends a record, it is at most its last byte. */
        if (got && cut + 1 < len)
            fail_msg("cut at %zu of %zu bytes: the entry is still trusted", cut, len);
        if (!got && cut == len)
            fail_msg("the whole file gives no entry");
        stat_cache_free(sc);
    }
    free(full);
    free(file);
    cache_release(&c);
}

/* Of two entries, the file cut inside the second keeps the first intact. */
static void test_a_truncated_cache_file_keeps_no_wrong_digest_for_any_entry(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat s1 = fake_stat(), s2 = fake_stat();
    char *file, *full = NULL;
    size_t len;

    s2.st_ino++;
    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "one", &s1, HEX_A);
    stat_cache_put(sc, "two", &s2, HEX_C);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();
    assert_int_equal(fs_read_file(file, 1 << 20, &full, &len, NULL), 0);

    for (size_t cut = 0; cut <= len; cut++) {
        const char *g1, *g2;

        replace_file(file, full, cut);
        sc = stat_cache_load(&c, CTX);
        g1 = stat_cache_lookup(sc, "one", &s1);
        g2 = stat_cache_lookup(sc, "two", &s2);
        if (g1 && strcmp(g1, HEX_A))
            fail_msg("cut at %zu: 'one' has digest %s", cut, g1);
        if (g2 && strcmp(g2, HEX_C))
            fail_msg("cut at %zu: 'two' has digest %s", cut, g2);
        /* Both trusted only once (almost) the whole file is there. */
        if (g1 && g2 && cut + 1 < len)
            fail_msg("cut at %zu of %zu: both entries trusted", cut, len);
        if (cut == len && !(g1 && g2))
            fail_msg("the whole file lost an entry");
        stat_cache_free(sc);
    }
    free(full);
    free(file);
    cache_release(&c);
}

/* A file dated before 1970 (an archive with a bogus date) keeps its entry,
 * and the entries saved after it. */
static void test_a_pre_1970_mtime_survives_save_and_load(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat old = fake_stat(), other[50];
    char p[16];

    open_cache(&c);
    old.st_mtim.tv_sec = -86400;
    old.st_ctim.tv_sec = -1;
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "old", &old, HEX_A);
    for (int i = 0; i < 50; i++) {
        other[i] = fake_stat();
        other[i].st_ino = 1000 + (ino_t)i;
        snprintf(p, sizeof(p), "f%d", i);
        stat_cache_put(sc, p, &other[i], HEX_B);
    }
    save(sc);
    stat_cache_free(sc);
    sc = stat_cache_load(&c, CTX);
    assert_non_null(stat_cache_lookup(sc, "old", &old));
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof(p), "f%d", i);
        if (!stat_cache_lookup(sc, p, &other[i]))
            fail_msg("entry %s lost after a pre-1970 one", p);
    }
    stat_cache_free(sc);
    cache_release(&c);
}

/* Any one byte of the file changed (bit rot, a stray write) makes the whole
 * file ignored: no digest comes back, least of all a wrong one. */
static void test_a_changed_byte_anywhere_makes_the_file_ignored(void **state)
{
    struct cache c;
    struct stat_cache *sc;
    struct stat st = fake_stat();
    char *file, *full = NULL;
    size_t len;

    open_cache(&c);
    sc = stat_cache_load(&c, CTX);
    stat_cache_put(sc, "f", &st, HEX_A);
    save(sc);
    stat_cache_free(sc);
    file = the_cache_file();
    assert_int_equal(fs_read_file(file, 1 << 20, &full, &len, NULL), 0);
    for (size_t i = 0; i < len; i++) {
        char saved = full[i];

        full[i] = saved == 'b' ? 'c' : 'b';
        replace_file(file, full, len);
        sc = stat_cache_load(&c, CTX);
        if (stat_cache_lookup(sc, "f", &st))
            fail_msg("byte %zu changed: the entry is still trusted", i);
        stat_cache_free(sc);
        full[i] = saved;
    }
    replace_file(file, full, len);
    sc = stat_cache_load(&c, CTX);
    assert_non_null(stat_cache_lookup(sc, "f", &st)); /* the file as saved is read */
    stat_cache_free(sc);
    free(full);
    free(file);
    cache_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_an_unchanged_file_gives_back_its_digest),
        TEMPDIR_TEST(test_a_path_never_put_misses_even_with_a_known_stat),
        TEMPDIR_TEST(test_each_stat_field_alone_makes_a_miss),
        TEMPDIR_TEST(test_a_rewritten_file_misses),
        TEMPDIR_TEST(test_the_latest_put_wins),
        TEMPDIR_TEST(test_entries_survive_save_and_load),
        TEMPDIR_TEST(test_thousands_of_entries_survive_save_and_load),
        TEMPDIR_TEST(test_an_unsaved_put_is_not_kept),
        TEMPDIR_TEST(test_each_context_has_its_own_cache),
        TEMPDIR_TEST(test_saving_an_unchanged_cache_writes_nothing),
        TEMPDIR_TEST(test_a_garbage_cache_file_is_an_empty_cache),
        TEMPDIR_TEST(test_an_empty_or_unreadable_cache_file_is_an_empty_cache),
        TEMPDIR_TEST(test_a_truncated_cache_file_never_gives_a_cut_entry),
        TEMPDIR_TEST(test_a_truncated_cache_file_keeps_no_wrong_digest_for_any_entry),
        TEMPDIR_TEST(test_a_pre_1970_mtime_survives_save_and_load),
        TEMPDIR_TEST(test_a_changed_byte_anywhere_makes_the_file_ignored),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
