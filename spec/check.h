/*
 * What the files of spec/ share while they read a spec: the validation
 * context, the position of a value, and the checks that report at it
 * ("file:line:col: key.path: message").  Nothing outside spec/ includes it.
 */
#ifndef OCIB_SPEC_CHECK_H
#define OCIB_SPEC_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "spec/spec.h"

struct vctx {
    struct spec *spec;
    struct ocib_error *err;
};

/* Where a value sits: its key path and the position to report. */
struct at {
    const char *path;
    struct json_pos pos;
};

int spec_fail(struct vctx *v, const struct at *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *spec_type_name(const json_t *j);
struct at spec_at_key(struct vctx *v, const json_t *obj, const char *path, const char *key);
struct at spec_at_index(struct vctx *v, const json_t *arr, const char *path, size_t i);
void spec_at_free(struct at *a);
/* Levenshtein distance of two short strings (99 when either is 63 bytes or
 * more). */
size_t spec_edit_distance(const char *a, const char *b);
int spec_check_keys(struct vctx *v, const json_t *obj, const char *path,
                    const char *const *allowed);
int spec_expect_type(struct vctx *v, const struct at *at, const json_t *j, json_type type,
                     const char *want);
int spec_expect_string(struct vctx *v, const struct at *at, const json_t *j, bool nonempty);
int spec_expect_string_map(struct vctx *v, const struct at *at, const json_t *j,
                           bool (*key_ok)(const char *), const char *key_what);
int spec_expect_string_list(struct vctx *v, const struct at *at, const json_t *j,
                            bool nonempty_list, bool nonempty_items);
char **spec_strv_dup(const json_t *j, size_t *ret_n);

/* A string map (already checked) copied into m. */
void spec_map_dup(const json_t *obj, struct spec_map *m);
/* Appends key = value (copies) to m, which counts as written. */
void spec_map_add(struct spec_map *m, const char *key, const char *value);
void spec_map_release(struct spec_map *m);

/* A command: a string (non-empty if nonempty_string) or a list of strings
 * (non-empty if nonempty_list). */
int spec_parse_command(struct vctx *v, const struct at *at, const json_t *j,
                       bool nonempty_string, bool nonempty_list, struct spec_command *ret);
void spec_command_release(struct spec_command *c);
bool spec_env_name_ok(const char *s);
bool spec_stage_name_ok(const char *s);
int spec_check_ids(struct vctx *v, const struct at *at, const char *s, const char *what);
int spec_parse_from(struct vctx *v, const struct at *at, const json_t *j, bool is_copy,
                    struct spec_from *ret);
void spec_from_release(struct spec_from *f);
void spec_owner_release(struct spec_owner *o);
int spec_parse_layer(struct vctx *v, json_t *j, const char *path, const struct at *at,
                     size_t index, struct spec_layer *l);
void spec_copy_release(struct spec_copy *c);
void spec_run_release(struct spec_run *r);
int spec_parse_config(struct vctx *v, const json_t *c, const char *path,
                      const struct at *at, struct spec_config *ret);
void spec_config_release(struct spec_config *c);

/* Build arguments (args.c): the declared ones with --build-arg applied into
 * ret; the predefined ones of a target platform; and the substitution of
 * ${NAME} in the document's strings. */
int spec_args_declare(struct vctx *v, const json_t *root, const struct spec_inputs *in,
                      struct spec_map *ret);
void spec_args_predefined(const struct oci_platform *target, struct spec_map *ret);
int spec_args_substitute(struct vctx *v, json_t *root, const struct spec_map *declared,
                         const struct spec_inputs *in);

/* The top level's "lint" (lintcfg.c) into v->spec->lint. */
int spec_parse_lint(struct vctx *v, const json_t *root);

#define _cleanup_at_ __attribute__((cleanup(spec_at_free)))

#endif
