/*
 * The Kubernetes rules of `ocib lint`: each workload of a YAML stream
 * (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, and
 * the items of a List) and each of its containers, against the seed's
 * mistakes: images by :latest or without a digest, missing or identical
 * probes, no requests and limits, rollouts that drop capacity, no time to
 * drain, writable root filesystems, kept capabilities, root, and
 * runAsNonRoot against the user an ocib:// image's spec gives it.
 */
#include "audit/lint.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a workload is and where its pod spec lives. */
struct workload {
    const struct k8s_stream *s;
    struct lint_report *r;
    const char *kind, *name;
    const struct k8s_node *doc, *pod; /* pod: the pod spec */
    bool serves;                      /* runs until stopped (not a Job) */
};

static char *where(const struct workload *w, const struct k8s_node *n)
{
    return xasprintf("%s:%d:%d", w->s->file, n ? n->line : 1, n ? n->col : 1);
}

/* The key node of key in map n, for positions (n itself when absent). */
static const struct k8s_node *key_node(const struct k8s_node *n, const char *key)
{
    const struct k8s_node *m = k8s_deref(n);

    for (size_t i = 0; m && m->kind == K8S_MAP && i + 1 < m->n_items; i += 2) {
        const char *k = k8s_str(m->items[i]);

        if (k && !strcmp(k, key))
            return m->items[i];
    }
    return n;
}

static void check_image(const struct workload *w, const struct k8s_node *c, const char *cn)
{
    const struct k8s_node *in = k8s_get(c, "image");
    const char *image = k8s_str(in), *slash, *colon;

    if (!image || !strncmp(image, "ocib://", 7) || strstr(image, "@sha256:"))
        return; /* ocib resolve pins ocib:// ones */
    slash = strrchr(image, '/');
    colon = strchr(slash ? slash : image, ':');
    if (!colon || !strcmp(colon, ":latest"))
        lint_add(w->r, "latest-tag", where(w, in),
                 "pin the image by digest (ocib resolve writes repo@sha256:...)",
                 "container '%s' of %s '%s' runs '%s', which means whatever :latest is "
                 "at pull time",
                 cn, w->kind, w->name, image);
    else
        lint_add(w->r, "no-digest", where(w, in),
                 "pin the image by digest (ocib resolve writes repo@sha256:...)",
                 "container '%s' of %s '%s' runs '%s', a tag that can move", cn, w->kind,
                 w->name, image);
}

/* The handler of a probe: the one of httpGet, tcpSocket, exec, grpc set. */
static const struct k8s_node *handler(const struct k8s_node *probe, const char **ret_kind)
{
    static const char *const kinds[] = {"httpGet", "tcpSocket", "exec", "grpc"};

    for (size_t i = 0; i < 4; i++) {
        const struct k8s_node *h = k8s_get(probe, kinds[i]);

        if (h) {
            *ret_kind = kinds[i];
            return h;
        }
    }
    return NULL;
}

static long long get_int(const struct k8s_node *n, const char *key, long long dflt)
{
    long long v;

    return k8s_int(k8s_get(n, key), &v) ? v : dflt;
}

static void check_probes(const struct workload *w, const struct k8s_node *c, const char *cn)
{
    const struct k8s_node *ready = k8s_get(c, "readinessProbe");
    const struct k8s_node *live = k8s_get(c, "livenessProbe");
    const char *rk = NULL, *lk = NULL;
    const struct k8s_node *rh, *lh;

    if (ready || live || k8s_get(c, "startupProbe"))
        w->r->saw_probes = true;
    if (!ready)
        lint_add(
            w->r, "no-readiness-probe", where(w, c),
            "add a readinessProbe that checks the app can serve (its dependencies too)",
            "container '%s' of %s '%s' has no readiness probe: it gets traffic before "
            "it can serve",
            cn, w->kind, w->name);
    if (!live)
        lint_add(w->r, "no-liveness-probe", where(w, c),
                 "add a livenessProbe that checks only that the process is alive",
                 "container '%s' of %s '%s' has no liveness probe: a hung process is never "
                 "restarted",
                 cn, w->kind, w->name);
    if (!ready || !live)
        return;
    rh = handler(ready, &rk);
    lh = handler(live, &lk);
    if (rh && lh && !strcmp(rk, lk) && k8s_equal(rh, lh))
        lint_add(w->r, "same-probes", where(w, key_node(c, "livenessProbe")),
                 "let liveness check the process only and readiness check it can serve",
                 "container '%s' of %s '%s' has readiness and liveness probes that check "
                 "the same thing: a dependency down restarts every pod",
                 cn, w->kind, w->name);
}

static void check_resources(const struct workload *w, const struct k8s_node *c,
                            const char *cn)
{
    const struct k8s_node *res = k8s_get(c, "resources");
    const struct k8s_node *req = k8s_get(res, "requests"), *lim = k8s_get(res, "limits");
    const char *missing = !k8s_get(req, "cpu")      ? "requests.cpu"
                          : !k8s_get(req, "memory") ? "requests.memory"
                          : !k8s_get(lim, "memory") ? "limits.memory"
                                                    : NULL;

    if (missing)
        lint_add(w->r, "no-resources", where(w, res ? key_node(c, "resources") : c),
                 "set resources.requests (cpu, memory) and resources.limits (memory)",
                 "container '%s' of %s '%s' has no %s: the scheduler guesses and a leak "
                 "takes the node",
                 cn, w->kind, w->name, missing);
}

/* Container securityContext over the pod's, for runAsUser/runAsNonRoot. */
static const struct k8s_node *sec(const struct workload *w, const struct k8s_node *c,
                                  const char *key)
{
    const struct k8s_node *v = k8s_get(k8s_get(c, "securityContext"), key);

    return v ? v : k8s_get(k8s_get(w->pod, "securityContext"), key);
}

/* The user the image of an `image: ocib://PATH` value runs as, from
 * PATH's spec (its last stage's config.user; "" for scratch without one),
 * or NULL when the spec cannot say (the base's config decides, or no
 * readable spec: resolve reports that). */
static char *spec_user(const char *image)
{
    _cleanup_free_ char *file = xasprintf("%s/ocib.json", image + strlen("ocib://"));
    struct spec spec = {0};
    const struct spec_stage *last;
    char *user = NULL;

    if (spec_load(&spec, file, NULL, NULL) < 0)
        return NULL;
    last = &spec.stages[spec.n_declared - 1];
    if (last->config.user)
        user = xstrdup(last->config.user);
    else if (last->from.kind == SPEC_FROM_SCRATCH)
        user = xstrdup("");
    spec_release(&spec);
    return user;
}

/* runAsNonRoot with no runAsUser leaves the check to the kubelet, which
 * refuses to start a container whose image runs as root or as a name. */
static void check_nonroot_image(const struct workload *w, const struct k8s_node *c,
                                const char *cn)
{
    const struct k8s_node *in = k8s_get(c, "image");
    const char *image = k8s_str(in);
    _cleanup_free_ char *user = NULL;
    size_t n;
    bool numeric;

    if (!image || strncmp(image, "ocib://", 7) || !(user = spec_user(image)))
        return;
    n = strcspn(user, ":");
    numeric = n > 0 && strspn(user, "0123456789") >= n;
    if (numeric && strtoull(user, NULL, 10) != 0)
        return;
    lint_add(w->r, "nonroot-image-user", where(w, in),
             "give the spec's config.user a numeric non-root uid:gid (or set runAsUser)",
             "container '%s' of %s '%s' sets runAsNonRoot, but its image %s: the kubelet "
             "will refuse to start it",
             cn, w->kind, w->name,
             numeric || !n || !strncmp(user, "root", n) ? "runs as root"
                                                        : "runs as a user name it cannot "
                                                          "verify");
}

static void check_security(const struct workload *w, const struct k8s_node *c,
                           const char *cn)
{
    const struct k8s_node *sc = k8s_get(c, "securityContext");
    const struct k8s_node *drop = k8s_get(k8s_get(sc, "capabilities"), "drop");
    const char *nonroot = k8s_str(sec(w, c, "runAsNonRoot"));
    long long uid = -1;
    bool dropped = false;

    k8s_int(sec(w, c, "runAsUser"), &uid);
    if (uid == 0 || (uid < 0 && !(nonroot && !strcmp(nonroot, "true"))))
        lint_add(w->r, "runs-as-root", where(w, sc ? key_node(c, "securityContext") : c),
                 "set runAsNonRoot: true and a numeric runAsUser (e.g. 1000)",
                 "container '%s' of %s '%s' %s", cn, w->kind, w->name,
                 uid == 0 ? "runs as root (runAsUser: 0)"
                          : "may run as root: nothing asks for a non-root user");
    if (uid < 0 && nonroot && !strcmp(nonroot, "true"))
        check_nonroot_image(w, c, cn);
    {
        const char *ro = k8s_get_str(sc, "readOnlyRootFilesystem");

        if (!ro || strcmp(ro, "true"))
            lint_add(w->r, "writable-root-fs",
                     where(w, sc ? key_node(c, "securityContext") : c),
                     "set securityContext.readOnlyRootFilesystem: true (an emptyDir for "
                     "what must be written)",
                     "container '%s' of %s '%s' can write its root filesystem", cn, w->kind,
                     w->name);
    }
    for (size_t i = 0; i < k8s_seq_len(drop); i++) {
        const char *cap = k8s_str(k8s_seq_item(drop, i));

        dropped = dropped || (cap && !strcasecmp(cap, "ALL"));
    }
    if (!dropped)
        lint_add(w->r, "caps-not-dropped",
                 where(w, sc ? key_node(c, "securityContext") : c),
                 "set securityContext.capabilities.drop: [ALL] and add back only what it "
                 "needs",
                 "container '%s' of %s '%s' keeps the runtime's default capabilities", cn,
                 w->kind, w->name);
}

static void check_container(const struct workload *w, const struct k8s_node *c, bool init)
{
    const char *cn = k8s_get_str(c, "name");

    if (!cn)
        cn = "?";
    check_image(w, c, cn);
    check_security(w, c, cn);
    if (init)
        return;
    check_resources(w, c, cn);
    if (w->serves)
        check_probes(w, c, cn);
}

/* The pod-level rules of a workload that serves: the rollout and the
 * grace period against the readiness probe. */
static void check_pod(const struct workload *w)
{
    const struct k8s_node *cs = k8s_get(w->pod, "containers");
    long long grace = get_int(w->pod, "terminationGracePeriodSeconds", 30);

    if (!strcmp(w->kind, "Deployment")) {
        const struct k8s_node *st = k8s_get(k8s_get(w->doc, "spec"), "strategy");
        const char *type = k8s_get_str(st, "type");
        const char *mu = k8s_get_str(k8s_get(st, "rollingUpdate"), "maxUnavailable");

        if ((!type || !strcmp(type, "RollingUpdate")) &&
            !(mu && (!strcmp(mu, "0") || !strcmp(mu, "0%"))))
            lint_add(w->r, "rollout-downtime",
                     where(w, st ? key_node(k8s_get(w->doc, "spec"), "strategy")
                                 : key_node(w->doc, "spec")),
                     "set strategy.rollingUpdate.maxUnavailable: 0 (and maxSurge: 1)",
                     "Deployment '%s' rolls out with maxUnavailable %s: pods go before "
                     "their replacements are ready",
                     w->name, mu ? mu : "25% (the default)");
    }
    for (size_t i = 0; i < k8s_seq_len(cs); i++) {
        const struct k8s_node *ready = k8s_get(k8s_seq_item(cs, i), "readinessProbe");
        long long fails =
            get_int(ready, "periodSeconds", 10) * get_int(ready, "failureThreshold", 3);

        if (ready && grace <= fails) {
            lint_add(
                w->r, "no-grace-headroom",
                where(w, key_node(w->pod, k8s_get(w->pod, "terminationGracePeriodSeconds")
                                              ? "terminationGracePeriodSeconds"
                                              : "containers")),
                "raise terminationGracePeriodSeconds above the readiness probe's "
                "periodSeconds x failureThreshold, plus the time to drain",
                "%s '%s' gives %llds to stop, no more than the %llds its readiness "
                "probe takes to fail: it is killed while still receiving traffic",
                w->kind, w->name, grace, fails);
            break;
        }
    }
}

static void check_workload(struct workload *w)
{
    static const char *const lists[] = {"containers", "initContainers"};

    for (size_t l = 0; l < 2; l++) {
        const struct k8s_node *cs = k8s_get(w->pod, lists[l]);

        for (size_t i = 0; i < k8s_seq_len(cs); i++)
            check_container(w, k8s_seq_item(cs, i), l == 1);
    }
    if (w->serves)
        check_pod(w);
}

/* A document: a workload's pod spec by its kind, or a List's items. */
static void check_doc(const struct k8s_stream *s, const struct k8s_node *doc,
                      struct lint_report *r, int depth)
{
    struct workload w = {s, r, k8s_get_str(doc, "kind"), NULL, doc, NULL, true};
    const struct k8s_node *spec = k8s_get(doc, "spec");

    if (!w.kind)
        return;
    if (!strcmp(w.kind, "List") && depth < 4) {
        for (size_t i = 0; i < k8s_seq_len(k8s_get(doc, "items")); i++)
            check_doc(s, k8s_seq_item(k8s_get(doc, "items"), i), r, depth + 1);
        return;
    }
    w.name = k8s_get_str(k8s_get(doc, "metadata"), "name");
    if (!w.name)
        w.name = "?";
    if (!strcmp(w.kind, "Pod")) {
        w.pod = spec;
    } else if (!strcmp(w.kind, "CronJob")) {
        w.pod = k8s_get(k8s_get(k8s_get(k8s_get(spec, "jobTemplate"), "spec"), "template"),
                        "spec");
        w.serves = false;
    } else if (!strcmp(w.kind, "Job")) {
        w.pod = k8s_get(k8s_get(spec, "template"), "spec");
        w.serves = false;
    } else if (!strcmp(w.kind, "Deployment") || !strcmp(w.kind, "StatefulSet") ||
               !strcmp(w.kind, "DaemonSet") || !strcmp(w.kind, "ReplicaSet") ||
               !strcmp(w.kind, "ReplicationController")) {
        w.pod = k8s_get(k8s_get(spec, "template"), "spec");
    }
    if (w.pod)
        check_workload(&w);
}

void lint_k8s(const struct k8s_stream *s, struct lint_report *r)
{
    for (size_t i = 0; i < s->n_docs; i++)
        if (s->docs[i])
            check_doc(s, s->docs[i], r, 0);
}
