/*
 * Fuzzes the registry's WWW-Authenticate parser, registry_parse_challenge()
 * of registry/headers.h: a challenge as a registry (or anything posing as one)
 * sends it.
 *
 * Beyond not crashing: whatever it hands back are NUL-terminated strings
 * the caller frees, none longer than the header.
 */
#include "fuzz.h"
#include "registry/headers.h"

static void check(char *s, size_t max)
{
    if (s && strlen(s) > max)
        abort();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
    size_t n = strlen(s);

    registry_parse_challenge(s, &scheme, &realm, &service, &scope);
    check(scheme, n);
    check(realm, n);
    check(service, n);
    check(scope, n);
    free(s);
    return 0;
}
