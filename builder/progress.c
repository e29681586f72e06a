/*
 * The builder's side of live progress: long steps announced as start and
 * end events, meters a watcher may read while a step runs, and the
 * registries' retries passed on as notes.
 */
#include "builder/driver.h"

#include <string.h>

void step_start(struct build *b, const char *stage, const char *layer, const char *text,
                const struct build_meter *meter)
{
    struct build_event ev = {.kind = BUILD_EVENT_STEP,
                             .stage = stage,
                             .layer = layer,
                             .status = "start",
                             .text = text,
                             .meter = meter};

    progress(b, &ev);
}

void step_end(struct build *b, const char *stage, const char *layer, const char *text)
{
    struct build_event ev = {.kind = BUILD_EVENT_STEP,
                             .stage = stage,
                             .layer = layer,
                             .status = "end",
                             .text = text};

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
