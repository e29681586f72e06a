/*
 * The builder's side of live progress: long steps announced as start and
 * end events, meters a watcher may read while a step runs, and the
 * registries' retries passed on as notes.
 */
#include "builder/driver.h"

#include <string.h>
#include <time.h>

const char *const build_phase_names[PHASE_N] = {
    "resolve", "unpack", "command", "capture", "layer", "push", "sbom",
};

double build_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void step_start(struct build *b, const char *stage, const char *layer, const char *text,
                const struct build_meter *meter)
{
    struct build_event ev = {.kind = BUILD_EVENT_STEP,
                             .stage = stage,
                             .layer = layer,
                             .status = "start",
                             .text = text,
                             .meter = meter};

    if (b->n_steps < (int)(sizeof(b->step_t0) / sizeof(b->step_t0[0])))
        b->step_t0[b->n_steps] = build_now();
    b->n_steps++;
    progress(b, &ev);
}

void step_end(struct build *b, const char *stage, const char *layer, const char *text,
              enum build_phase phase)
{
    struct build_event ev = {.kind = BUILD_EVENT_STEP,
                             .stage = stage,
                             .layer = layer,
                             .status = "end",
                             .text = text};

    /* A step inside another (none today) counts for the outer one only. */
    if (b->n_steps > 0 && --b->n_steps == 0)
        b->phase[phase] += build_now() - b->step_t0[0];
    progress(b, &ev);
}

void progress_summary(struct build *b)
{
    struct build_event ev = {.kind = BUILD_EVENT_SUMMARY,
                             .seconds = build_now() - b->started,
                             .phases = b->phase};

    progress(b, &ev);
}

static uint64_t registry_bytes_in(const struct build_meter *m)
{
    uint64_t in, out;

    registries_bytes(m->arg, &in, &out);
    return in;
}

static uint64_t registry_bytes_out(const struct build_meter *m)
{
    uint64_t in, out;

    registries_bytes(m->arg, &in, &out);
    return out;
}

void registry_meter(struct build *b, bool received, struct build_meter *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->read = received ? registry_bytes_in : registry_bytes_out;
    ret->arg = b->registries;
    ret->unit = received ? "received" : "sent";
    ret->start = ret->read(ret);
}

/* Retries happen in the HTTP client, on the builder's thread or a push
 * worker's: the callback is told either way. */
static void retry_note(void *opaque, const char *text)
{
    struct build *b = opaque;
    struct build_event ev = {.kind = BUILD_EVENT_INFO, .status = "retry", .text = text};

    progress(b, &ev);
}

void progress_watch_registries(struct build *b)
{
    registries_set_notify(b->registries, retry_note, b);
}
