/*
 * builder/cachekey: what enters a layer's key and what does not, and the
 * explanation of a miss from the recorded inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "base/xalloc.h"
#include "builder/cachekey.h"

static void add_file(struct layer_tree *t, const char *path, unsigned mode, const char *hex)
{
    struct layer_tree_entry e = {0};

    e.path = xstrdup(path);
    e.mode = S_IFREG | mode;
    e.data = xstrdup("");
    memset(e.digest, hex[0], 64);
    e.digest[64] = '\0';
    layer_tree_put(t, &e);
}

static void key_of(const char *paths[], const unsigned modes[], const char *hexes, size_t n,
                   struct oci_digest *ret)
{
    struct layer_tree t;
    struct oci_digest def = {"sha256:def"};

    layer_tree_init(&t);
    for (size_t i = 0; i < n; i++)
        add_file(&t, paths[i], modes[i], &hexes[i]);
    layer_tree_finalise(&t);
    cachekey_layer(&def, &t, ret);
    layer_tree_release(&t);
}

static void def_of(const char *layer_json, const char *platform, int64_t epoch,
                   struct oci_digest *ret)
{
    struct oci_digest parent;
    json_t *layer = json_loads(layer_json, 0, NULL);

    assert_non_null(layer);
    cachekey_base("scratch/linux/amd64", &parent);
    cachekey_def(&parent, layer, platform, "gzip;zlib-level=6", epoch, NULL, ret);
    json_decref(layer);
}

static void test_base_key_is_a_digest_of_its_name(void **state)
{
    struct oci_digest a, b, c;

    cachekey_base("scratch/linux/amd64", &a);
    cachekey_base("scratch/linux/amd64", &b);
    cachekey_base("scratch/linux/arm64", &c);
    assert_string_equal(a.str, b.str);
    assert_string_not_equal(a.str, c.str);
    assert_memory_equal(a.str, "sha256:", 7);
    assert_int_equal(strlen(a.str), 7 + 64);
}

static void test_def_ignores_the_layer_name_but_not_its_definition(void **state)
{
    struct oci_digest a, b, c, d;

    def_of("{\"name\": \"deps\", \"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}]}",
           "linux/amd64", 0, &a);
    def_of("{\"name\": \"other\", \"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}]}",
           "linux/amd64", 0, &b);
    def_of(
        "{\"layer\": {\"name\": \"x\", \"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}]}}",
        "linux/amd64", 0, &c);
    def_of("{\"name\": \"deps\", \"copy\": [{\"src\": [\"b\"], \"dest\": \"/\"}]}",
           "linux/amd64", 0, &d);
    assert_string_equal(a.str, b.str);
    assert_string_not_equal(a.str, c.str); /* another shape is another input */
    assert_string_not_equal(a.str, d.str);
}

static void test_def_holds_platform_and_epoch(void **state)
{
    struct oci_digest a, b, c;
    const char *ly = "{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}]}";

    def_of(ly, "linux/amd64", 0, &a);
    def_of(ly, "linux/arm64", 0, &b);
    def_of(ly, "linux/amd64", 1, &c);
    assert_string_not_equal(a.str, b.str);
    assert_string_not_equal(a.str, c.str);
}

static void
test_layer_key_holds_paths_modes_and_contents_in_any_insertion_order(void **state)
{
    const char *p1[] = {"a", "b"}, *p2[] = {"b", "a"};
    const unsigned m[] = {0644, 0644}, m2[] = {0644, 0755};
    struct oci_digest k1, k2, k3, k4;

    key_of(p1, m, "12", 2, &k1);
    /* The tree sorts: the order files were found in does not matter. */
    key_of(p2, m, "21", 2, &k2);
    assert_string_equal(k1.str, k2.str);
    key_of(p1, m2, "12", 2, &k3);
    assert_string_not_equal(k1.str, k3.str);
    key_of(p1, m, "13", 2, &k4);
    assert_string_not_equal(k1.str, k4.str);
}

static char *record_of(const char *paths[], const char *hexes, size_t n)
{
    struct layer_tree t;
    char *s;

    layer_tree_init(&t);
    for (size_t i = 0; i < n; i++)
        add_file(&t, paths[i], 0644, &hexes[i]);
    layer_tree_finalise(&t);
    s = cachekey_inputs_record(&t);
    layer_tree_release(&t);
    return s;
}

static json_t *last_of(const char *parent, const char *def, const char *inputs)
{
    return json_pack("{s:s, s:s, s:s}", "parent", parent, "def", def, "inputs", inputs);
}

static void test_explain_names_the_first_path_that_changed(void **state)
{
    const char *ab[] = {"src/a.ts", "src/b.ts"},
               *abc[] = {"src/a.ts", "src/b.ts", "src/c.ts"};
    const char *b_only[] = {"src/b.ts"};
    struct oci_digest parent = {"sha256:p"}, def = {"sha256:d"};
    char *old = record_of(ab, "11", 2);
    char *same = record_of(ab, "11", 2), *changed = record_of(ab, "12", 2);
    char *added = record_of(abc, "111", 3), *removed = record_of(b_only, "1", 1);
    json_t *last = last_of("sha256:p", "sha256:d", old);
    char *s;

    assert_non_null(strstr(old, "8:src/a.ts 100644:0:0:"));
    s = cachekey_explain_miss(last, &parent, &def, changed, false);
    assert_string_equal(s, "src/b.ts changed");
    free(s);
    s = cachekey_explain_miss(last, &parent, &def, added, false);
    assert_string_equal(s, "src/c.ts added");
    free(s);
    s = cachekey_explain_miss(last, &parent, &def, removed, false);
    assert_string_equal(s, "src/a.ts removed");
    free(s);
    s = cachekey_explain_miss(last, &parent, &def, same, false);
    assert_string_equal(s, "not in the cache");
    free(s);
    json_decref(last);
    free(old);
    free(same);
    free(changed);
    free(added);
    free(removed);
}

static void test_explain_blames_the_parent_then_the_definition(void **state)
{
    struct oci_digest parent = {"sha256:p2"}, def = {"sha256:d"}, def2 = {"sha256:d2"};
    struct oci_digest parent1 = {"sha256:p"};
    json_t *last = last_of("sha256:p", "sha256:d", "");
    char *s;

    s = cachekey_explain_miss(NULL, &parent, &def, "", true);
    assert_string_equal(s, "first build");
    free(s);
    s = cachekey_explain_miss(last, &parent, &def, "", true);
    assert_string_equal(s, "base: digest changed");
    free(s);
    s = cachekey_explain_miss(last, &parent, &def, "", false);
    assert_string_equal(s, "an earlier layer changed");
    free(s);
    s = cachekey_explain_miss(last, &parent1, &def2, "", false);
    assert_string_equal(s, "definition changed in the spec");
    free(s);
    json_decref(last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_key_is_a_digest_of_its_name),
        cmocka_unit_test(test_def_ignores_the_layer_name_but_not_its_definition),
        cmocka_unit_test(test_def_holds_platform_and_epoch),
        cmocka_unit_test(
            test_layer_key_holds_paths_modes_and_contents_in_any_insertion_order),
        cmocka_unit_test(test_explain_names_the_first_path_that_changed),
        cmocka_unit_test(test_explain_blames_the_parent_then_the_definition),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
