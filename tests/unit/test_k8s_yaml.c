/*
 * Unit tests for k8s/yaml: byte positions of scalars (after UTF-8, CRLF,
 * anchors and tags), lookups through aliases and merges, and splicing that
 * changes the replaced values and no other byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "k8s/yaml.h"

static int parse(struct k8s_stream *s, const char *text, struct ocib_error *err)
{
    return k8s_stream_parse(s, "t.yaml", xstrdup(text), strlen(text), err);
}

struct sites {
    const struct k8s_node *v[16];
    size_t n;
};

static int collect(const struct k8s_node *key, const struct k8s_node *value, void *opaque,
                   struct ocib_error *err)
{
    struct sites *s = opaque;

    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == value)
            return 0;
    s->v[s->n++] = value;
    return 0;
}

/* Replaces every image value by "R<n>" in its style, returns the text. */
static char *splice_all(struct k8s_stream *s, struct sites *st)
{
    struct k8s_splice sp[16];
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    for (size_t i = 0; i < st->n; i++) {
        char v[16];

        snprintf(v, sizeof(v), "R%zu", i);
        sp[i].start = st->v[i]->value_start;
        sp[i].end = st->v[i]->end;
        sp[i].text = k8s_scalar_render(st->v[i], v);
    }
    assert_int_equal(k8s_splice_write(f, s->data, s->len, sp, st->n), 0);
    fclose(f);
    for (size_t i = 0; i < st->n; i++)
        free(sp[i].text);
    return out;
}

static void test_positions_utf8_crlf(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct k8s_stream s;
    struct sites st = {0};
    const char *in = "# caf\xc3\xa9 \xe2\x82\xac\r\na: 1\r\nimage: ocib://x # \xc3\xa9\r\n";
    _cleanup_free_ char *out = NULL;

    assert_int_equal(parse(&s, in, &err), 0);
    assert_int_equal(k8s_images_foreach(&s, collect, &st, &err), 0);
    assert_int_equal(st.n, 1);
    assert_int_equal(st.v[0]->line, 3);
    assert_int_equal(st.v[0]->col, 8);
    assert_memory_equal(s.data + st.v[0]->value_start, "ocib://x", 8);
    assert_int_equal(st.v[0]->end - st.v[0]->value_start, 8);
    out = splice_all(&s, &st);
    assert_string_equal(out,
                        "# caf\xc3\xa9 \xe2\x82\xac\r\na: 1\r\nimage: R0 # \xc3\xa9\r\n");
    k8s_stream_release(&s);
}

static void test_styles_anchors_flow(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct k8s_stream s;
    struct sites st = {0};
    const char *in = "a: {image: 'ocib://a', name: x}\n"
                     "---\n"
                     "b:\n"
                     "  - image: &img !!str \"ocib://b\"  # c\n"
                     "  - image: *img\n"
                     "  - {image: ocib://c}\n";
    _cleanup_free_ char *out = NULL;

    assert_int_equal(parse(&s, in, &err), 0);
    assert_int_equal(s.n_docs, 2);
    assert_int_equal(k8s_images_foreach(&s, collect, &st, &err), 0);
    assert_int_equal(st.n, 3);
    out = splice_all(&s, &st);
    assert_string_equal(out, "a: {image: 'R0', name: x}\n"
                             "---\n"
                             "b:\n"
                             "  - image: &img !!str \"R1\"  # c\n"
                             "  - image: *img\n"
                             "  - {image: R2}\n");
    k8s_stream_release(&s);
}

static void test_lookups_merge_alias(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct k8s_stream s;
    long long v;
    const char *in = "base: &b {cpu: \"100m\", n: 3}\n"
                     "x:\n  <<: *b\n  own: yes\n"
                     "p1: {httpGet: {path: /h, port: 80}}\n"
                     "p2: {httpGet: {port: 80, path: /h}}\n";

    assert_int_equal(parse(&s, in, &err), 0);
    const struct k8s_node *x = k8s_get(s.docs[0], "x");
    assert_non_null(x);
    assert_string_equal(k8s_get_str(x, "cpu"), "100m");
    assert_true(k8s_int(k8s_get(x, "n"), &v));
    assert_int_equal(v, 3);
    assert_string_equal(k8s_get_str(x, "own"), "yes");
    assert_null(k8s_get(x, "missing"));
    assert_true(k8s_equal(k8s_get(s.docs[0], "p1"), k8s_get(s.docs[0], "p2")));
    assert_false(k8s_equal(k8s_get(s.docs[0], "p1"), k8s_get(s.docs[0], "base")));
    k8s_stream_release(&s);
}

static void test_errors_name_line_col(void **state)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct k8s_stream s;

    assert_int_equal(parse(&s, "a: 1\nb: [1, 2\n", &err), -1);
    assert_int_equal(err.code, 2);
    assert_non_null(strstr(err.msg, "t.yaml:"));
    ocib_error_clear(&err);
    assert_int_equal(parse(&s, "a: *nope\n", &err), -1);
    assert_non_null(strstr(err.msg, "t.yaml:1:4: an alias to an unknown anchor"));
    k8s_stream_release(&s);
}

static void test_render_quotes(void **state)
{
    struct k8s_node n = {.style = K8S_SINGLE};
    _cleanup_free_ char *a = k8s_scalar_render(&n, "it's");
    n.style = K8S_DOUBLE;
    _cleanup_free_ char *b = k8s_scalar_render(&n, "a\"b\\c");
    n.style = K8S_LITERAL;

    assert_string_equal(a, "'it''s'");
    assert_string_equal(b, "\"a\\\"b\\\\c\"");
    assert_null(k8s_scalar_render(&n, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_utf8_crlf),
        cmocka_unit_test(test_styles_anchors_flow),
        cmocka_unit_test(test_lookups_merge_alias),
        cmocka_unit_test(test_errors_name_line_col),
        cmocka_unit_test(test_render_quotes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
