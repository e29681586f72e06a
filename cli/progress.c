/*
 * A build's progress on stderr, in one of four modes.
 *
 * plain: a line per event, for CI logs; when nothing was printed for a
 *   second while something runs, a "still ..." line says what, for how
 *   long and how many bytes moved (then every STATUS_EVERY seconds).
 * tty: the plain lines that stay (stages, bases, layers done, outputs,
 *   notes) scroll above a live area redrawn in place: a header with the
 *   elapsed time, a line per running layer or step with its timer and byte
 *   counter, and the running command's last lines.  When the build ends the
 *   live area collapses into one summary line.
 * json: one JSON object per line, errors included ("event": "error").
 * quiet: nothing.
 *
 * Events come from the builder's thread (and from push workers: retry
 * notes); a ticker thread redraws and writes the status lines.  One mutex
 * serialises them.
 */
#include "cli/cli.h"
#include "base/cleanup.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "builder/build.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define TAIL_LINES 3
#define SILENCE 1.0      /* seconds of silence before a plain status line */
#define STATUS_EVERY 5.0 /* seconds between status lines while silence lasts */
#define REDRAW_MS 100    /* the live area's refresh */

/* Something running: a layer, or a step of its own. */
struct row {
    char *stage, *layer; /* layer NULL for a step row */
    char *what;          /* "run /bin/sh -c make", "resolving base debian:12" */
    double started;
    char *step; /* the step it is in, or NULL */
    const struct build_meter *meter;
    char *tail[TAIL_LINES]; /* the command's last lines, tail[next] the oldest */
    size_t n_tail, next;
};

struct cli_progress {
    enum progress_mode mode;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t ticker;
    bool ticking, stop;
    double t0;
    double last_line;   /* when a line was last printed (plain) */
    double last_status; /* when the last status line was printed */
    struct row *rows;
    size_t n_rows, alloc_rows;
    size_t drawn; /* lines of the live area on the screen */
    double drawn_at;
    unsigned long built, cached;
    char *label; /* set by cli_progress_label: prefixes plain lines, json's "context" */
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void flush_buf(struct strbuf *sb)
{
    if (sb->len)
        fwrite(sb->buf, 1, sb->len, stderr);
    fflush(stderr);
}

/* Plain lines onto stderr, each behind the label when there is one, in one
 * write so that the lines of builds running side by side never mix. */
static void flush_lines(const struct cli_progress *p, struct strbuf *sb)
{
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    const char *s = strbuf_str(sb), *nl;

    if (!p->label || !sb->len) {
        flush_buf(sb);
        return;
    }
    for (; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        if (!nl)
            nl = s + strlen(s) - 1;
        strbuf_addf(&out, "%s: %.*s\n", p->label, (int)(nl - s), s);
    }
    flush_buf(&out);
}

int cli_progress_parse(const char *s, enum progress_mode *ret, struct ocib_error *err)
{
    static const char *const names[] = {"plain", "tty", "json", "quiet"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(s, names[i])) {
            *ret = (enum progress_mode)i;
            return 0;
        }
    }
    return ocib_error_usage(err,
                            "--progress: invalid value '%s': expected plain, tty, json or "
                            "quiet",
                            s);
}

/* ---------------------------------------------------------------- rows */

static void row_release(struct row *r)
{
    free(r->stage);
    free(r->layer);
    free(r->what);
    free(r->step);
    for (size_t i = 0; i < r->n_tail; i++)
        free(r->tail[i]);
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static struct row *row_add(struct cli_progress *p, const struct build_event *ev)
{
    struct row *r;

    XGROW(p->rows, p->alloc_rows, p->n_rows + 1);
    r = &p->rows[p->n_rows++];
    memset(r, 0, sizeof(*r));
    r->stage = ev->stage ? xstrdup(ev->stage) : NULL;
    r->layer = ev->layer ? xstrdup(ev->layer) : NULL;
    r->what = xstrdup(ev->text ? ev->text : "");
    r->started = now();
    return r;
}

static void row_remove(struct cli_progress *p, struct row *r)
{
    size_t i = (size_t)(r - p->rows);

    row_release(r);
    memmove(&p->rows[i], &p->rows[i + 1], (p->n_rows - i - 1) * sizeof(*r));
    p->n_rows--;
}

/* The running layer row (stage, layer), or with layer NULL the last
 * running layer of stage. */
static struct row *find_layer(struct cli_progress *p, const char *stage, const char *layer)
{
    for (size_t i = p->n_rows; i-- > 0;) {
        struct row *r = &p->rows[i];

        if (r->layer && same(r->stage, stage) && (!layer || !strcmp(r->layer, layer)))
            return r;
    }
    return NULL;
}

static void step_event(struct cli_progress *p, const struct build_event *ev)
{
    const char *text = ev->text ? ev->text : "";
    struct row *r;

    if (!strcmp(ev->status, "start")) {
        r = ev->stage ? find_layer(p, ev->stage, ev->layer) : NULL;
        if (!r)
            r = row_add(p, ev);
        free(r->step);
        r->step = xstrdup(text);
        r->meter = ev->meter;
        return;
    }
    for (size_t i = p->n_rows; i-- > 0;) {
        r = &p->rows[i];
        if (!r->step || strcmp(r->step, text) || !same(r->stage, ev->stage))
            continue;
        if (!r->layer) {
            row_remove(p, r);
        } else {
            free(r->step);
            r->step = NULL;
            r->meter = NULL;
        }
        return;
    }
}

static void tail_add(struct row *r, const char *line)
{
    if (r->n_tail < TAIL_LINES) {
        r->tail[r->n_tail++] = xstrdup(line);
        return;
    }
    free(r->tail[r->next]);
    r->tail[r->next] = xstrdup(line);
    r->next = (r->next + 1) % TAIL_LINES;
}

/* "3.2s", then " · writing the layer: 12.0 MiB of 30.0 MiB compressed". */
static void describe_state(struct strbuf *sb, const struct row *r, double t)
{
    strbuf_addf(sb, "%.1fs", t - r->started);
    if (r->step && r->layer)
        strbuf_addf(sb, ", %s", r->step);
    if (r->meter && (r->meter->total || build_meter_bytes(r->meter))) {
        char done[32], total[32];

        cli_human_size(build_meter_bytes(r->meter), done, sizeof(done));
        if (r->meter->total) {
            cli_human_size(r->meter->total, total, sizeof(total));
            strbuf_addf(sb, ", %s of %s %s", done, total, r->meter->unit);
        } else {
            strbuf_addf(sb, ", %s %s", done, r->meter->unit);
        }
    }
}

/* "[build] layer deps" or "[build] resolving base debian:12". */
static void row_title(struct strbuf *sb, const struct row *r)
{
    if (r->stage)
        strbuf_addf(sb, "[%s] ", r->stage);
    if (r->layer)
        strbuf_addf(sb, "layer %s", r->layer);
    else
        strbuf_addstr(sb, r->step ? r->step : r->what);
}

/* What a layer does, cut to at most max bytes (on a character boundary). */
static void add_what(struct strbuf *sb, const struct row *r, size_t max)
{
    size_t n = strlen(r->what);

    if (!r->layer || !n)
        return;
    if (n <= max) {
        strbuf_addf(sb, " (%s)", r->what);
        return;
    }
    while (max > 0 && ((unsigned char)r->what[max] & 0xc0) == 0x80)
        max--;
    strbuf_addf(sb, " (%.*s...)", (int)max, r->what);
}

/* ---------------------------------------------------------------- plain */

/* The line ev prints (plain, and above the live area on a tty). */
/* "built in 15.5s: commands 9.6s, ocib 5.9s (unpack 1.1, layer 2.1, ...)":
 * ocib's phases that took a tenth of a second or more, then the rest. */
static void summary_text(struct strbuf *sb, const struct build_event *ev)
{
    double ocib = ev->seconds - ev->phases[PHASE_COMMAND], rest = ocib;
    const char *sep = " (";

    strbuf_addf(sb, "built in %.1fs: commands %.1fs, ocib %.1fs", ev->seconds,
                ev->phases[PHASE_COMMAND], ocib);
    for (size_t k = 0; k < PHASE_N; k++) {
        if (k == PHASE_COMMAND)
            continue;
        rest -= ev->phases[k];
        if (ev->phases[k] >= 0.05) {
            strbuf_addf(sb, "%s%s %.1f", sep, build_phase_names[k], ev->phases[k]);
            sep = ", ";
        }
    }
    if (rest >= 0.05) {
        strbuf_addf(sb, "%sother %.1f", sep, rest);
        sep = ", ";
    }
    strbuf_addstr(sb, *sep == ',' ? ")\n" : "\n");
}

static void plain_text(struct strbuf *sb, const struct build_event *ev)
{
    char size[32];

    switch (ev->kind) {
    case BUILD_EVENT_STAGE:
        strbuf_addf(sb, "[%s] stage for %s\n", ev->stage, ev->text);
        break;
    case BUILD_EVENT_BASE:
        strbuf_addf(sb, "[%s] base %s %s\n", ev->stage, ev->text, ev->digest);
        break;
    case BUILD_EVENT_LAYER:
        cli_human_size(ev->size, size, sizeof(size));
        strbuf_addf(sb, "[%s] layer %s: %s %s (%s, %llu entries, %.2fs)%s%s\n", ev->stage,
                    ev->layer, ev->status, ev->digest, size, (unsigned long long)ev->files,
                    ev->seconds, ev->text ? ": " : "", ev->text ? ev->text : "");
        break;
    case BUILD_EVENT_OUTPUT:
        if (!strcmp(ev->status, "pushed"))
            strbuf_addf(sb, "pushed %s\n", ev->text);
        else
            strbuf_addf(sb, "wrote %s:%s\n", ev->status, ev->text);
        break;
    case BUILD_EVENT_INFO:
        strbuf_addf(sb, "%s\n", ev->text);
        break;
    case BUILD_EVENT_LOG:
        strbuf_addf(sb, "[%s/%s] %s\n", ev->stage, ev->layer, ev->text);
        break;
    case BUILD_EVENT_SUMMARY:
        summary_text(sb, ev);
        break;
    case BUILD_EVENT_LAYER_START:
    case BUILD_EVENT_STEP:
        break; /* the status lines say what runs, when it is worth saying */
    }
}

/* A plain status line when nothing was printed for a while (lock held). */
static void plain_status(struct cli_progress *p, double t)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const struct row *r;

    if (t - p->last_line < SILENCE ||
        (p->last_status > p->last_line && t - p->last_status < STATUS_EVERY))
        return;
    if (!p->n_rows) {
        strbuf_addf(&sb, "still building: %.1fs since the last line", t - p->last_line);
    } else {
        r = &p->rows[p->n_rows - 1];
        row_title(&sb, r);
        strbuf_addstr(&sb, ": still running, ");
        describe_state(&sb, r, t);
        add_what(&sb, r, 40);
    }
    strbuf_addch(&sb, '\n');
    flush_lines(p, &sb);
    p->last_status = t;
}

/* ---------------------------------------------------------------- tty */

static int terminal_size(int *ret_rows)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col < 20 || ws.ws_row < 4) {
        *ret_rows = 24;
        return 80;
    }
    *ret_rows = ws.ws_row;
    return ws.ws_col;
}

/* Appends s, control characters shown as spaces, cut to at most cols
 * columns (by wcwidth, invalid bytes as '?'), so that no line wraps. */
static void add_clipped(struct strbuf *sb, const char *s, int cols)
{
    mbstate_t st;
    int used = 0;

    memset(&st, 0, sizeof(st));
    while (*s) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &st);
        int w;

        if (n == (size_t)-1 || n == (size_t)-2) {
            memset(&st, 0, sizeof(st));
            wc = L'?';
            n = 1;
            s++;
            w = 1;
            if (used + w > cols)
                break;
            strbuf_addch(sb, '?');
            used += w;
            continue;
        }
        w = wc < 0x20 || wc == 0x7f ? 1 : wcwidth(wc);
        if (w < 0)
            w = 1;
        if (used + w > cols)
            break;
        if (wc < 0x20 || wc == 0x7f)
            strbuf_addch(sb, ' ');
        else
            strbuf_add(sb, s, n);
        used += w;
        s += n;
    }
    strbuf_addch(sb, '\n');
}

static void clear_live(struct cli_progress *p, struct strbuf *sb)
{
    if (p->drawn)
        strbuf_addf(sb, "\r\033[%zuA\033[J", p->drawn);
    p->drawn = 0;
}

static void draw_live(struct cli_progress *p, struct strbuf *sb, double t)
{
    _cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
    int height, width = terminal_size(&height) - 1;
    size_t max = (size_t)height - 2;

    strbuf_addf(&line, "[+] building %.1fs: %lu layers done (%lu cached)", t - p->t0,
                p->built + p->cached, p->cached);
    add_clipped(sb, strbuf_str(&line), width);
    p->drawn = 1;
    for (size_t i = 0; i < p->n_rows && p->drawn < max; i++) {
        const struct row *r = &p->rows[i];

        strbuf_reset(&line);
        strbuf_addstr(&line, " => ");
        row_title(&line, r);
        strbuf_addstr(&line, "  ");
        describe_state(&line, r, t);
        add_what(&line, r, (size_t)width);
        add_clipped(sb, strbuf_str(&line), width);
        p->drawn++;
        for (size_t k = 0; k < r->n_tail && p->drawn < max; k++) {
            strbuf_reset(&line);
            strbuf_addf(&line, "    | %s", r->tail[(r->next + k) % r->n_tail]);
            add_clipped(sb, strbuf_str(&line), width);
            p->drawn++;
        }
    }
    p->drawn_at = t;
}

static void tty_event(struct cli_progress *p, const struct build_event *ev, double t)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    struct row *r;

    if (ev->kind == BUILD_EVENT_LOG) {
        /* The command's lines live in its row, not above. */
        r = find_layer(p, ev->stage, ev->layer);
        if (r)
            tail_add(r, ev->text);
        if (t - p->drawn_at < REDRAW_MS / 2000.0)
            return; /* a chatty command: the ticker redraws soon */
        clear_live(p, &sb);
    } else {
        clear_live(p, &sb);
        plain_text(&sb, ev);
    }
    draw_live(p, &sb, t);
    flush_buf(&sb);
}

/* ---------------------------------------------------------------- json */

static void print_json(const struct cli_progress *p, const struct build_event *ev)
{
    static const char *const kinds[] = {"stage", "base",        "layer", "output", "info",
                                        "log",   "layer-start", "step",  "summary"};
    json_t *j = json_pack("{s:s}", "event", kinds[ev->kind]);
    char *s;

    if (p->label)
        json_object_set_new(j, "context", json_string(p->label));
    if (ev->stage)
        json_object_set_new(j, "stage", json_string(ev->stage));
    if (ev->layer)
        json_object_set_new(j, "layer", json_string(ev->layer));
    if (ev->status)
        json_object_set_new(j, "status", json_string(ev->status));
    if (ev->digest)
        json_object_set_new(j, "digest", json_string(ev->digest));
    if (ev->text)
        json_object_set_new(j, "text", json_string(ev->text));
    if (ev->detail)
        json_object_set_new(j, "detail", json_string(ev->detail));
    if (ev->kind == BUILD_EVENT_LAYER) {
        json_object_set_new(j, "size", json_integer((json_int_t)ev->size));
        json_object_set_new(j, "entries", json_integer((json_int_t)ev->files));
    }
    if (ev->kind == BUILD_EVENT_LAYER || ev->kind == BUILD_EVENT_SUMMARY)
        json_object_set_new(j, "seconds", json_real(ev->seconds));
    if (ev->phases) {
        json_t *ph = json_object();

        for (size_t k = 0; k < PHASE_N; k++)
            json_object_set_new(ph, build_phase_names[k], json_real(ev->phases[k]));
        json_object_set_new(j, "phases", ph);
    }
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(j);
}

/* ---------------------------------------------------------------- events */

void cli_progress_event(void *opaque, const struct build_event *ev)
{
    struct cli_progress *p = opaque;
    double t = now();

    if (p->mode == PROGRESS_QUIET)
        return;
    pthread_mutex_lock(&p->lock);
    switch (ev->kind) {
    case BUILD_EVENT_LAYER_START:
        row_add(p, ev);
        break;
    case BUILD_EVENT_STEP:
        step_event(p, ev);
        break;
    case BUILD_EVENT_LAYER: {
        struct row *r = find_layer(p, ev->stage, ev->layer);

        if (r)
            row_remove(p, r);
        if (!strcmp(ev->status, "cached"))
            p->cached++;
        else
            p->built++;
        break;
    }
    default:
        break;
    }
    if (p->mode == PROGRESS_JSON) {
        print_json(p, ev);
    } else if (p->mode == PROGRESS_TTY) {
        tty_event(p, ev, t);
    } else if (ev->kind != BUILD_EVENT_LAYER_START && ev->kind != BUILD_EVENT_STEP) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        plain_text(&sb, ev);
        flush_lines(p, &sb);
        p->last_line = t;
    }
    pthread_mutex_unlock(&p->lock);
}

static void *tick(void *opaque)
{
    struct cli_progress *p = opaque;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec ts;
        double t;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += REDRAW_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
        if (p->stop)
            break;
        t = now();
        if (p->mode == PROGRESS_TTY) {
            _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

            clear_live(p, &sb);
            draw_live(p, &sb, t);
            flush_buf(&sb);
        } else {
            plain_status(p, t);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct cli_progress *cli_progress_new(enum progress_mode mode)
{
    struct cli_progress *p = xcalloc(1, sizeof(*p));

    p->mode = mode;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->t0 = p->last_line = now();
    if ((mode == PROGRESS_PLAIN || mode == PROGRESS_TTY) &&
        pthread_create(&p->ticker, NULL, tick, p) == 0)
        p->ticking = true;
    return p;
}

void cli_progress_label(struct cli_progress *p, const char *label)
{
    free(p->label);
    p->label = label ? xstrdup(label) : NULL;
}

void cli_progress_end(struct cli_progress *p, struct ocib_error *err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    double t = now();

    if (p->ticking) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->ticker, NULL);
        p->ticking = false;
    }
    if (p->mode == PROGRESS_TTY) {
        clear_live(p, &sb);
        for (size_t i = 0; err && i < p->n_rows; i++) {
            _cleanup_strbuf_ struct strbuf line = STRBUF_INIT;

            row_title(&line, &p->rows[i]);
            strbuf_addf(&line, ": failed after %.1fs", t - p->rows[i].started);
            strbuf_addf(&sb, "%s\n", strbuf_str(&line));
        }
        if (err)
            strbuf_addf(&sb, "failed after %.1fs (%lu layers done, %lu cached)\n",
                        t - p->t0, p->built + p->cached, p->cached);
        else
            strbuf_addf(&sb, "built %lu layers (%lu cached) in %.1fs\n",
                        p->built + p->cached, p->cached, t - p->t0);
        flush_buf(&sb);
    }
    if (p->mode == PROGRESS_JSON && err && err->msg[0]) {
        json_t *j = json_pack("{s:s, s:s, s:i}", "event", "error", "text", err->msg, "exit",
                              err->code ? err->code : OCIB_EXIT_FAILURE);
        char *s;

        if (p->label)
            json_object_set_new(j, "context", json_string(p->label));
        s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
        /* Said as JSON: the command line prints no "ocib: " line besides. */
        err->msg[0] = '\0';
        if (!err->code)
            err->code = OCIB_EXIT_FAILURE;
    }
}

void cli_progress_free(struct cli_progress *p)
{
    if (!p)
        return;
    if (p->ticking)
        cli_progress_end(p, NULL);
    for (size_t i = 0; i < p->n_rows; i++)
        row_release(&p->rows[i]);
    free(p->rows);
    free(p->label);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
