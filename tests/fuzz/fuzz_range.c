/*
 * Fuzzes the registry's Range header parser, registry_parse_range() of
 * registry/auth.h: the value of an upload's Range response header.
 *
 * Beyond not crashing: a value it accepts gives an offset that is not
 * negative, and a refused one leaves it untouched.
 */
#include "fuzz.h"
#include "registry/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    int64_t next = -7;

    if (registry_parse_range(s, &next) == 0) {
        if (next < 0)
            abort();
    } else if (next != -7) {
        abort();
    }
    free(s);
    return 0;
}
