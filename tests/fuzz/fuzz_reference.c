/*
 * Fuzzes registry/reference: reference_parse() of the input (up to its
 * first NUL), and the forms built from what it accepts.
 *
 * Beyond not crashing: the full and the familiar forms of an accepted
 * reference parse back to the same reference, within the documented
 * limits.
 */
#include "fuzz.h"
#include "registry/reference.h"

static bool same(const struct reference *a, const struct reference *b)
{
    return !strcmp(a->registry, b->registry) && !strcmp(a->repository, b->repository) &&
           !strcmp(a->tag ?: "", b->tag ?: "") && !strcmp(a->digest ?: "", b->digest ?: "");
}

static void reparse(const char *s, const struct reference *want)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct reference again = REFERENCE_INIT;

    if (reference_parse(s, &again, &err) < 0) {
        fprintf(stderr, "fuzz: '%s' does not parse back: %s\n", s, err.msg);
        abort();
    }
    if (!same(&again, want)) {
        fprintf(stderr, "fuzz: '%s' parses back to something else\n", s);
        abort();
    }
    reference_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct reference ref = REFERENCE_INIT;
    char *s = strndup((const char *)data, size);
    char *full, *name, *familiar;

    reference_tag_valid(s);
    reference_registry_is_loopback(s);
    if (reference_parse(s, &ref, &err) < 0) {
        if (!err.msg[0] || ref.registry || ref.repository)
            abort();
        free(s);
        return 0;
    }
    if (!ref.registry || !ref.repository || (!ref.tag && !ref.digest) ||
        (ref.tag && !reference_tag_valid(ref.tag)))
        abort();
    full = reference_string(&ref);
    name = reference_name(&ref);
    familiar = reference_familiar(&ref);
    if (strlen(name) > REFERENCE_NAME_MAX || strncmp(full, name, strlen(name)) != 0)
        abort();
    reparse(full, &ref);
    reparse(familiar, &ref);
    reference_registry_is_loopback(ref.registry);
    reference_registry_endpoint(ref.registry);
    free(full);
    free(name);
    free(familiar);
    reference_release(&ref);
    free(s);
    return 0;
}
