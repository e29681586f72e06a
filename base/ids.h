/*
 * User and group ids written as text.
 *
 * One parser for every id ocib reads: an `owner` or `user` in a spec, a
 * numeric user or group of a run step, the id fields of a root's
 * /etc/passwd and /etc/group.  Text that starts with a digit, '-' or '+'
 * is meant as a number and must be one: decimal digits only, at most
 * OCIB_ID_MAX ((uid_t)-1 is reserved, it means "no change" to chown), so
 * that "4294967296" or "99999999999" can never wrap to another id (0).
 * Anything else is a name.
 */
#ifndef OCIB_BASE_IDS_H
#define OCIB_BASE_IDS_H

#include <stddef.h>

#define OCIB_ID_MAX 4294967294U

enum ocib_id_form {
    OCIB_ID_NAME,    /* not a number: a user or group name */
    OCIB_ID_NUMBER,  /* a valid id, stored in *ret */
    OCIB_ID_INVALID, /* meant as a number but not an id (range, sign, junk) */
};

/* Classifies the len bytes at s (a name, an id or neither) and stores a
 * valid id in *ret (untouched otherwise).  An empty text is a name. */
enum ocib_id_form ocib_id_parse(const char *s, size_t len, unsigned *ret);

/* Why text of form OCIB_ID_INVALID is no id, for messages ("larger than
 * 4294967294", "negative", "not a decimal number"). */
const char *ocib_id_problem(const char *s, size_t len);

#endif
