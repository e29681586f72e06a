/*
 * Fuzzes spec/spec: spec_load() of an ocib.json written into a scratch
 * directory, then the stage graph of what it accepts.
 *
 * Beyond not crashing: a refused spec gets a message naming the file, and
 * an accepted one has a well-formed, acyclic stage graph.
 */
#include "spec/spec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[4200];
    struct ocib_error err = OCIB_ERROR_INIT;
    struct spec spec;
    size_t *order, n, i;

    if (!*path)
        snprintf(path, sizeof(path), "%s/ocib.json", fuzz_dir());
    fuzz_write_file(path, data, size);
    if (spec_load(&spec, path, &err) < 0) {
        if (!strstr(err.msg, "ocib.json"))
            abort();
        spec_release(&spec);
        return 0;
    }
    if (spec.n_declared == 0 || spec.n_declared > spec.n_stages)
        abort();
    order = calloc(spec.n_stages, sizeof(*order));
    for (i = 0; i < spec.n_declared; i++) {
        int found = spec_stage_find(&spec, spec.stages[i].name);

        /* A name finds a stage of that name (a later one may share it). */
        if (found < 0 || strcmp(spec.stages[found].name, spec.stages[i].name) != 0)
            abort();
        spec_stage_order(&spec, i, order, &n);
        /* The target comes last, after what it depends on, each once. */
        if (n == 0 || n > spec.n_stages || order[n - 1] != i)
            abort();
    }
    free(order);
    spec_release(&spec);
    return 0;
}
