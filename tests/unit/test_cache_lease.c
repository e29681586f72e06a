/*
 * Unit tests for cache/lease: what a process holds in the cache survives
 * prune and other processes while it lives, and what it leaves when it
 * dies (however: here by _exit without releasing) is removed by the next
 * process that opens the cache.  Other processes are forked children that
 * open the same cache directory and report over a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "cache/blobs.h"
#include "cache/lease.h"
#include "cache/maint.h"
#include "oci/digest.h"
#include "tempdir.h"

struct child {
    pid_t pid;
    int to, from; /* pipe ends: to the child, from the child */
    char tmp[4096];
};

/* Stores data as a blob through the usual temporary file. */
static void put_blob(struct cache *c, const char *data, struct oci_digest *ret)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    char *tmp = NULL;
    int fd = -1;

    oci_digest_of(data, strlen(data), ret);
    if (cache_tmp_create(c, &tmp, &fd, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
    if (cache_blob_commit(c, tmp, ret, &err) < 0)
        fail_msg("%s", err.msg);
    free(tmp);
}

/* Forks a process that opens cache dir, writes a temporary file (its path
 * sent back), pins blob pin (if not NULL), and then waits for a byte: 'q'
 * makes it exit without releasing anything, as a killed build would. */
static void start_child(struct child *ch, const char *dir, const struct oci_digest *pin)
{
    int a[2], b[2];

    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    ch->pid = fork();
    assert_true(ch->pid >= 0);
    if (ch->pid == 0) {
        struct cache c;
        struct ocib_error err = OCIB_ERROR_INIT;
        char *tmp = NULL, cmd;
        int fd;

        close(a[1]);
        close(b[0]);
        if (cache_open(&c, dir, &err) < 0 || cache_tmp_create(&c, &tmp, &fd, &err) < 0)
            _exit(2);
        if (write(fd, "partial", 7) != 7)
            _exit(2);
        if (pin)
            free(cache_blob_path(&c, pin));
        if (write(b[1], tmp, strlen(tmp) + 1) < 0)
            _exit(2);
        if (read(a[0], &cmd, 1) != 1)
            _exit(3);
        _exit(0); /* no cache_release: the lease stays behind, its lock free */
    }
    close(a[0]);
    close(b[1]);
    ch->to = a[1];
    ch->from = b[0];
    {
        ssize_t n = read(ch->from, ch->tmp, sizeof(ch->tmp) - 1);

        assert_true(n > 0);
        ch->tmp[n] = '\0';
    }
}

static void stop_child(struct child *ch)
{
    int status;

    assert_int_equal(write(ch->to, "q", 1), 1);
    assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ch->to);
    close(ch->from);
}

static void test_a_dead_process_temporary_file_goes_at_the_next_open(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct child ch;

    start_child(&ch, "c-dead", NULL);
    assert_int_equal(access(ch.tmp, F_OK), 0);
    stop_child(&ch);
    /* Still there: nobody has opened the cache since. */
    assert_int_equal(access(ch.tmp, F_OK), 0);
    assert_int_equal(cache_open(&c, "c-dead", &err), 0);
    assert_int_equal(access(ch.tmp, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    cache_release(&c);
}

static void
test_a_live_process_keeps_its_temporary_file_through_open_prune_verify(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct cache_prune_result pr;
    struct cache_verify_result vr;
    struct child ch;

    start_child(&ch, "c-live", NULL);
    assert_int_equal(cache_open(&c, "c-live", &err), 0);
    assert_int_equal(cache_prune(&c, 0, &pr, &err), 0);
    assert_int_equal(cache_verify(&c, &vr, &err), 0);
    assert_int_equal(access(ch.tmp, F_OK), 0);
    stop_child(&ch);
    assert_int_equal(cache_prune(&c, 0, &pr, &err), 0);
    assert_int_equal(access(ch.tmp, F_OK), -1);
    cache_release(&c);
}

static void test_prune_leaves_a_blob_a_live_lease_pins(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct cache_prune_result pr;
    struct oci_digest kept, other;
    struct child ch;
    char *p_kept, *p_other;

    assert_int_equal(cache_open(&c, "c-pin", &err), 0);
    put_blob(&c, "pinned by the child", &kept);
    put_blob(&c, "pinned by nobody else", &other);
    p_kept = cache_blob_file(&c, &kept);
    p_other = cache_blob_file(&c, &other);
    /* This process's own pins do not count against its own prune. */
    cache_release(&c);
    assert_int_equal(cache_open(&c, "c-pin", &err), 0);

    start_child(&ch, "c-pin", &kept);
    assert_int_equal(cache_prune(&c, 0, &pr, &err), 0);
    assert_int_equal(access(p_kept, F_OK), 0);
    assert_int_equal(access(p_other, F_OK), -1);
    assert_int_equal(pr.removed_count, 1);
    assert_int_equal(pr.in_use_count, 1);
    stop_child(&ch);
    /* Its owner dead, the pin is worth nothing. */
    assert_int_equal(cache_prune(&c, 0, &pr, &err), 0);
    assert_int_equal(access(p_kept, F_OK), -1);
    free(p_kept);
    free(p_other);
    cache_release(&c);
}

static void test_a_released_lease_leaves_nothing(void **state)
{
    struct cache c;
    struct ocib_error err = OCIB_ERROR_INIT;
    struct oci_digest d;
    char *lease, *tmp;

    assert_int_equal(cache_open(&c, "c-rel", &err), 0);
    put_blob(&c, "x", &d);
    lease = strdup(cache_lease_id(&c));
    tmp = strdup(cache_lease_tmp(&c, NULL));
    assert_true(cache_lease_live(&c, lease));
    cache_release(&c);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(cache_open(&c, "c-rel", &err), 0);
    assert_false(cache_lease_live(&c, lease));
    assert_true(cache_blob_exists(&c, &d));
    cache_release(&c);
    free(lease);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_a_dead_process_temporary_file_goes_at_the_next_open),
        TEMPDIR_TEST(
            test_a_live_process_keeps_its_temporary_file_through_open_prune_verify),
        TEMPDIR_TEST(test_prune_leaves_a_blob_a_live_lease_pins),
        TEMPDIR_TEST(test_a_released_lease_leaves_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
