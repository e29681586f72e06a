/*
 * The rule table, the report, and the spec's rules; see lint.h.
 */
#include "audit/lint.h"
#include "base/xalloc.h"
#include "spec/lock.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const struct lint_rule lint_rules[] = {
    {"root-user", LINT_ERROR, "the image runs as root"},
    {"named-user", LINT_WARNING, "the image's user is a name runAsNonRoot cannot check"},
    {"no-healthcheck", LINT_WARNING, "neither a healthcheck nor probes"},
    {"mutable-base", LINT_WARNING, "a base image by a tag that moves, not locked"},
    {"toolchain", LINT_WARNING, "a compiler or make in the final image"},
    {"dev-dependencies", LINT_WARNING, "npm devDependencies in node_modules"},
    {"package-cache", LINT_WARNING, "a package manager's cache in the image"},
    {"credential", LINT_ERROR, "a credential in a layer"},
    {"image-size", LINT_WARNING, "the image is over its size budget"},
    {"latest-tag", LINT_ERROR, "a workload runs :latest (or no tag)"},
    {"no-digest", LINT_WARNING, "a workload's image is not pinned by digest"},
    {"no-readiness-probe", LINT_ERROR, "a container without a readiness probe"},
    {"no-liveness-probe", LINT_WARNING, "a container without a liveness probe"},
    {"same-probes", LINT_WARNING, "readiness and liveness probes check the same thing"},
    {"no-resources", LINT_ERROR, "a container without resource requests and limits"},
    {"rollout-downtime", LINT_ERROR, "a RollingUpdate without maxUnavailable: 0"},
    {"no-grace-headroom", LINT_WARNING,
     "terminationGracePeriodSeconds no longer than the readiness probe takes to fail"},
    {"writable-root-fs", LINT_WARNING, "a container without readOnlyRootFilesystem"},
    {"caps-not-dropped", LINT_WARNING, "a container that keeps its capabilities"},
    {"runs-as-root", LINT_ERROR, "a workload that may run as root"},
    {"nonroot-image-user", LINT_ERROR,
     "runAsNonRoot, and an ocib:// image that runs as root or as a name"},
    {NULL, 0, NULL},
};

const struct lint_rule *lint_rule_find(const char *id)
{
    for (const struct lint_rule *r = lint_rules; r->id; r++)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

void lint_report_ignore(struct lint_report *r, const char *id)
{
    XGROW(r->ignore, r->alloc_ignore, r->n_ignore + 1);
    r->ignore[r->n_ignore++] = xstrdup(id);
}

void lint_add(struct lint_report *r, const char *id, char *where, const char *fix,
              const char *fmt, ...)
{
    const struct lint_rule *rule = lint_rule_find(id);
    va_list ap;

    for (size_t i = 0; i < r->n_ignore; i++) {
        if (!strcmp(r->ignore[i], id)) {
            free(where);
            return;
        }
    }
    if (!rule)
        abort(); /* a rule missing from the table is a bug */
    XGROW(r->v, r->alloc, r->n + 1);
    va_start(ap, fmt);
    r->v[r->n++] = (struct lint_finding){rule, where, xvasprintf(fmt, ap), xstrdup(fix)};
    va_end(ap);
}

bool lint_has(const struct lint_report *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].rule->id, id))
            return true;
    return false;
}

size_t lint_count(const struct lint_report *r, enum lint_severity s)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n; i++)
        n += r->v[i].rule->severity == s;
    return n;
}

void lint_report_release(struct lint_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].where);
        free(r->v[i].what);
        free(r->v[i].fix);
    }
    free(r->v);
    for (size_t i = 0; i < r->n_ignore; i++)
        free(r->ignore[i]);
    free(r->ignore);
    memset(r, 0, sizeof(*r));
}

/* "file:line:col" of key in the object at path (a JSON pointer of keys and
 * indexes, given as a short list) of the spec. */
static char *spec_where(const struct spec *spec, const json_t *obj, const char *key)
{
    struct json_pos p = json_doc_key_pos(&spec->doc, obj, key);

    return xasprintf("%s:%d:%d", spec->file, p.line, p.col);
}

void lint_user(const char *user, char *where, struct lint_report *r)
{
    size_t n = strcspn(user, ":");
    bool numeric = n > 0;

    for (size_t i = 0; i < n; i++)
        numeric = numeric && user[i] >= '0' && user[i] <= '9';
    if (!n || (numeric && strtoull(user, NULL, 10) == 0) || !strncmp(user, "root", n)) {
        lint_add(r, "root-user", where, "set config.user to a numeric non-root uid:gid",
                 "the image runs as root (user '%s')", user);
    } else if (!numeric) {
        lint_add(r, "named-user", where,
                 "write the numeric uid:gid (runAsNonRoot can only check a number)",
                 "the user '%s' is a name, which Kubernetes runAsNonRoot cannot verify",
                 user);
    } else {
        free(where);
    }
}

void lint_spec(const struct spec *spec, struct lint_report *r)
{
    const json_t *stages = json_object_get(spec->doc.root, "stages");
    const struct spec_stage *last = &spec->stages[spec->n_declared - 1];
    json_t *lock = NULL;

    for (size_t i = 0; i < spec->lint.n_ignore; i++)
        lint_report_ignore(r, spec->lint.ignore[i]);
    if (lock_load(spec, &lock, NULL) < 0)
        lock = NULL;
    for (size_t i = 0; i < spec->n_declared; i++) {
        const struct spec_stage *st = &spec->stages[i];

        if (st->from.kind != SPEC_FROM_REGISTRY || st->from.ref.digest ||
            json_object_get(json_object_get(lock, "images"), st->from.text))
            continue;
        lint_add(r, "mutable-base", spec_where(spec, json_array_get(stages, i), "from"),
                 "run 'ocib lock' and build with --locked, or name the base by digest",
                 "stage '%s' is built from '%s', a tag that can move", st->name,
                 st->from.text);
    }
    json_decref(lock);
    if (last->config.user) {
        const json_t *config =
            json_object_get(json_array_get(stages, spec->n_declared - 1), "config");

        lint_user(last->config.user, spec_where(spec, config, "user"), r);
    } else if (last->from.kind == SPEC_FROM_SCRATCH) {
        lint_add(r, "root-user",
                 spec_where(spec, json_array_get(stages, spec->n_declared - 1), "from"),
                 "set config.user to a numeric non-root uid:gid",
                 "the image is built from scratch with no config.user: it runs as root");
    }
}
