/*
 * User and group ids written as text; see ids.h.
 */
#include "base/ids.h"

#include <stdbool.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

enum ocib_id_form ocib_id_parse(const char *s, size_t len, unsigned *ret)
{
    unsigned long long n = 0;

    if (!len || (!is_digit(s[0]) && s[0] != '-' && s[0] != '+'))
        return OCIB_ID_NAME;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return OCIB_ID_INVALID;
        n = n * 10 + (unsigned)(s[i] - '0');
        if (n > OCIB_ID_MAX)
            return OCIB_ID_INVALID;
    }
    *ret = (unsigned)n;
    return OCIB_ID_NUMBER;
}

const char *ocib_id_problem(const char *s, size_t len)
{
    unsigned id;

    if (len && s[0] == '-')
        return "ids are not negative";
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return "not a decimal number";
    if (ocib_id_parse(s, len, &id) == OCIB_ID_INVALID)
        return "larger than 4294967294, the largest id";
    return "not an id";
}
