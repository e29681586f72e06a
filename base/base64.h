/*
 * Base64 (RFC 4648, standard alphabet, with padding), for spec files'
 * content_base64, Docker config.json "auth" entries and Basic credentials.
 */
#ifndef OCIB_BASE_BASE64_H
#define OCIB_BASE_BASE64_H

#include <stddef.h>

/* Encodes len bytes; the caller frees the NUL-terminated result. */
char *base64_encode(const void *data, size_t len);

/* Decodes s (padding required when the length is not a multiple of 4 is
 * tolerated only as RFC 4648 allows: complete 4-character groups).  On
 * success *ret (NUL-terminated, caller frees) and *ret_len are set; returns
 * -1 on a character outside the alphabet or a bad length. */
int base64_decode(const char *s, char **ret, size_t *ret_len);

#endif
