/*
 * Unit tests for base/ids: ids written as text never wrap (2^32 is no 0),
 * what starts like a number must be one, and names stay names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/ids.h"

static enum ocib_id_form parse(const char *s, unsigned *id)
{
    return ocib_id_parse(s, strlen(s), id);
}

static void test_valid_ids(void **state)
{
    unsigned id = 7;

    (void)state;
    assert_int_equal(parse("0", &id), OCIB_ID_NUMBER);
    assert_int_equal(id, 0);
    assert_int_equal(parse("1000", &id), OCIB_ID_NUMBER);
    assert_int_equal(id, 1000);
    assert_int_equal(parse("4294967294", &id), OCIB_ID_NUMBER);
    assert_int_equal(id, 4294967294U);
    assert_int_equal(parse("00042", &id), OCIB_ID_NUMBER);
    assert_int_equal(id, 42);
}

static void test_out_of_range_never_wraps(void **state)
{
    static const char *const bad[] = {"4294967295",
                                      "4294967296",
                                      "9223372036854775808",
                                      "99999999999",
                                      "18446744073709551616",
                                      "-1",
                                      "-0",
                                      "+5",
                                      "12abc",
                                      "1 ",
                                      "0x10"};
    unsigned id = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &id), OCIB_ID_INVALID);
        assert_int_equal(id, 7); /* untouched */
    }
    assert_non_null(strstr(ocib_id_problem("4294967296", 10), "larger than 4294967294"));
    assert_non_null(strstr(ocib_id_problem("-1", 2), "negative"));
    assert_non_null(strstr(ocib_id_problem("12abc", 5), "not a decimal number"));
}

static void test_names_are_names(void **state)
{
    unsigned id = 7;

    (void)state;
    assert_int_equal(parse("app", &id), OCIB_ID_NAME);
    assert_int_equal(parse("www-data", &id), OCIB_ID_NAME);
    assert_int_equal(parse("", &id), OCIB_ID_NAME);
    assert_int_equal(id, 7);
    /* only the given bytes count: "10:20" read as its first two */
    assert_int_equal(ocib_id_parse("10:20", 2, &id), OCIB_ID_NUMBER);
    assert_int_equal(id, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids),
        cmocka_unit_test(test_out_of_range_never_wraps),
        cmocka_unit_test(test_names_are_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
