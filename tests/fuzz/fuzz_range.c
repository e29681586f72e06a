/*
 * Fuzzes the registry's Range header parser, registry_parse_range() of
 * registry/headers.h: the value of an upload's Range response header.
 *
 * Beyond not crashing: a value it accepts gives an offset that is not
 * negative, or -1 for exactly the ambiguous "0-0" (distribution 2.x's empty
 * upload, or one byte); a refused one leaves the offset untouched.
 */
#include "fuzz.h"
#include "registry/headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    int64_t next = -7;

    if (registry_parse_range(s, &next) == 0) {
        const char *v = strncasecmp(s, "bytes=", 6) ? s : s + 6;

        if (next < -1 || (next == -1) != !strcmp(v, "0-0"))
            abort();
    } else if (next != -7) {
        abort();
    }
    free(s);
    return 0;
}
