/*
 * `ocib lint`'s findings and rules: the mistakes the seed names, found in a
 * spec (lint_spec), a built image (lint_image) and Kubernetes YAML
 * (lint_k8s).  Each rule has an id and a severity (lint_rules); each
 * finding says where (spec or YAML "file:line:col", or "layer N (digest):
 * path" in an image), what is wrong and, in one line, what to do.  Nothing
 * here prints; the command line renders a report as text or JSON.
 */
#ifndef OCIB_AUDIT_LINT_H
#define OCIB_AUDIT_LINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "k8s/yaml.h"
#include "oci/image.h"
#include "spec/spec.h"

enum lint_severity { LINT_WARNING, LINT_ERROR };

struct lint_rule {
    const char *id;
    enum lint_severity severity;
    const char *summary;
};

/* Every rule, ending with an entry whose id is NULL. */
extern const struct lint_rule lint_rules[];
const struct lint_rule *lint_rule_find(const char *id);

struct lint_finding {
    const struct lint_rule *rule;
    char *where, *what, *fix;
};

struct lint_report {
    struct lint_finding *v;
    size_t n, alloc;
    char **ignore; /* ids silenced (--ignore, the spec's lint.ignore) */
    size_t n_ignore, alloc_ignore;
    bool saw_probes; /* some workload of the YAML has a probe */
};

void lint_report_ignore(struct lint_report *r, const char *id);
/* Adds a finding of rule id unless it is silenced; where is taken. */
void lint_add(struct lint_report *r, const char *id, char *where, const char *fix,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool lint_has(const struct lint_report *r, const char *id);
size_t lint_count(const struct lint_report *r, enum lint_severity s);
void lint_report_release(struct lint_report *r);

/* The user rules on "user[:group]" (root: "", "0" or "root"; a name;
 * a number is fine); where is taken. */
void lint_user(const char *user, char *where, struct lint_report *r);

/* The rules on every workload of a YAML stream. */
void lint_k8s(const struct k8s_stream *s, struct lint_report *r);

/* The rules on a spec: mutable bases without a lock, the final stage's
 * user.  The spec's lint.ignore joins r's. */
void lint_spec(const struct spec *spec, struct lint_report *r);

/* A layer of an image to read: its blob's path (NULL: not at hand, its
 * content rules are skipped). */
struct lint_layer {
    const char *path;
};

/* The rules on an image: its config (user, healthcheck), its size against
 * max_size bytes (-1: the default), and the files of its layers, read as
 * streams with whiteouts applied (toolchains, dev dependencies, caches,
 * credentials).  Fails only when a layer cannot be read. */
int lint_image(const struct oci_image *img, const struct lint_layer *layers,
               long long max_size, struct lint_report *r, struct ocib_error *err);

#define LINT_DEFAULT_MAX_SIZE 500000000LL

#endif
