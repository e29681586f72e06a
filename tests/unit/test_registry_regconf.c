/*
 * Unit tests for registry/toml and registry/regconf: the TOML subset
 * registries.conf uses (strings and their escapes, arrays over lines,
 * tables, arrays of tables, inline tables), the errors a user's slip gets
 * ("FILE:LINE: key: why"), and how names find their [[registry]] table and
 * are rewritten to a mirror, as containers/image does it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/regconf.h"
#include "registry/toml.h"

static struct toml_value *parse_ok(const char *text)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct toml_value *doc = NULL;

    if (toml_parse("t.conf", text, strlen(text), &doc, &err) < 0)
        fail_msg("toml_parse: %s", err.msg);
    return doc;
}

static void parse_fails(const char *text, const char *want)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct toml_value *doc = NULL;

    assert_int_equal(toml_parse("t.conf", text, strlen(text), &doc, &err), -1);
    assert_null(doc);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' lacks '%s'", err.msg, want);
}

static void test_toml_values(void **state)
{
    struct toml_value *doc =
        parse_ok("# comment\n"
                 "unqualified-search-registries = [\"a.io\", 'b.io',  # inside\n"
                 "   \"c.io\",\n"
                 "]\n"
                 "short-name-mode = \"enforcing\"\r\n"
                 "n = -1_000\n"
                 "esc = \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\U0001F600\"\n"
                 "lit = 'C:\\path\\no\\escape'\n"
                 "[aliases]\n"
                 "  \"alpine\" = \"docker.io/library/alpine\"\n"
                 "[[registry]]\n"
                 "location = \"x.io\"\n"
                 "[[registry.mirror]]\n"
                 "location = \"m1.io\"\n"
                 "[[registry.mirror]]\n"
                 "location = \"m2.io\"\n"
                 "[[registry]]\n"
                 "prefix = \"y.io\"\n"
                 "inline = { a = true, b.c = false }\n");
    const struct toml_value *v = toml_get(doc, "unqualified-search-registries");

    assert_non_null(v);
    assert_int_equal(v->kind, TOML_ARRAY);
    assert_int_equal(v->n, 3);
    assert_string_equal(v->items[1]->str, "b.io");
    assert_int_equal(v->items[2]->line, 3);
    assert_int_equal(toml_get(doc, "n")->integer, -1000);
    assert_string_equal(toml_get(doc, "esc")->str,
                        "tab\there \"q\" \\ \xc3\xa9 \xf0\x9f\x98\x80");
    assert_string_equal(toml_get(doc, "lit")->str, "C:\\path\\no\\escape");
    assert_string_equal(toml_get(toml_get(doc, "aliases"), "alpine")->str,
                        "docker.io/library/alpine");
    v = toml_get(doc, "registry");
    assert_int_equal(v->n, 2);
    assert_int_equal(toml_get(v->items[0], "mirror")->n, 2);
    assert_string_equal(
        toml_get(toml_get(v->items[0], "mirror")->items[1], "location")->str, "m2.io");
    assert_int_equal(toml_get(toml_get(v->items[0], "mirror")->items[1], "location")->line,
                     16);
    assert_true(toml_get(toml_get(v->items[1], "inline"), "a")->boolean);
    assert_false(toml_get(toml_get(toml_get(v->items[1], "inline"), "b"), "c")->boolean);
    toml_free(doc);
}

static void test_toml_errors(void **state)
{
    parse_fails("a = \"open\n", "t.conf:1: unterminated string");
    parse_fails("\n\na = 1\na = 2\n",
                "t.conf:4: key 'a' is defined twice (first on line 3)");
    parse_fails("[t]\n[t]\n", "t.conf:2: [t] is defined twice");
    parse_fails("a = \"x\" b\n", "t.conf:1: unexpected 'b' after the value");
    parse_fails("a = 1.5\n", "unsupported value '1.5'");
    parse_fails("a = \"\"\"x\"\"\"\n", "multi-line strings are not supported");
    parse_fails("a = \"\\q\"\n", "invalid escape '\\q'");
    parse_fails("a = \"\\u0000\"\n", "not a character");
    parse_fails("a = [1 2]\n", "expected ',' or ']'");
    parse_fails("a = 1\n[a.b]\n", "t.conf:2: key 'a' is an integer (line 1), not a table");
    parse_fails("[a]\n[[a]]\n", "[[a]]: 'a' is a table");
    parse_fails("= 1\n", "expected a key");
    parse_fails("a\n", "expected '=' after key 'a'");
    parse_fails("a = [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\n", "nested deeper");
}

static struct regconf conf_ok(const char *text)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct regconf c;

    if (regconf_parse("r.conf", text, strlen(text), &c, &err) < 0)
        fail_msg("regconf_parse: %s", err.msg);
    return c;
}

static void conf_fails(const char *text, const char *want)
{
    struct ocib_error err = OCIB_ERROR_INIT;
    struct regconf c = {0};

    assert_int_equal(regconf_parse("r.conf", text, strlen(text), &c, &err), -1);
    assert_int_equal(c.n, 0);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' lacks '%s'", err.msg, want);
}

static void test_regconf_tables(void **state)
{
    struct regconf c = conf_ok("unqualified-search-registries = [\"docker.io\"]\n"
                               "[[registry]]\n"
                               "prefix = \"docker.io\"\n"
                               "location = \"docker.io\"\n"
                               "[[registry.mirror]]\n"
                               "location = \"mirror.corp:5000/hub\"\n"
                               "insecure = true\n"
                               "[[registry.mirror]]\n"
                               "location = \"m2.corp\"\n"
                               "pull-from-mirror = \"digest-only\"\n"
                               "[[registry]]\n"
                               "prefix = \"docker.io/acme\"\n"
                               "location = \"internal.corp/acme-copy\"\n"
                               "[[registry]]\n"
                               "location = \"evil.io\"\n"
                               "blocked = true\n"
                               "[[registry]]\n"
                               "prefix = \"*.corp.example\"\n"
                               "[[registry.mirror]]\n"
                               "location = \"cache.local\"\n");
    const struct regconf_registry *r;
    char *s;

    assert_int_equal(c.n, 4);
    r = regconf_find(&c, "docker.io/library/alpine");
    assert_non_null(r);
    assert_string_equal(r->prefix, "docker.io");
    assert_int_equal(r->n_mirrors, 2);
    assert_true(r->mirrors[0].insecure);
    assert_int_equal(r->mirrors[0].pull, REGCONF_PULL_ALL);
    assert_int_equal(r->mirrors[1].pull, REGCONF_PULL_DIGEST_ONLY);
    s = regconf_rewrite(r, r->mirrors[0].location, "docker.io/library/alpine");
    assert_string_equal(s, "mirror.corp:5000/hub/library/alpine");
    free(s);
    /* the longest prefix wins; a prefix matches whole components only */
    r = regconf_find(&c, "docker.io/acme/api");
    assert_string_equal(r->prefix, "docker.io/acme");
    s = regconf_rewrite(r, r->location, "docker.io/acme/api");
    assert_string_equal(s, "internal.corp/acme-copy/api");
    free(s);
    assert_string_equal(regconf_find(&c, "docker.io/acmex/api")->prefix, "docker.io");
    assert_null(regconf_find(&c, "docker.iox/a"));
    assert_null(regconf_find(&c, "quay.io/a/b"));
    /* a location without a prefix is its own prefix */
    r = regconf_find(&c, "evil.io/x");
    assert_non_null(r);
    assert_true(r->blocked);
    /* wildcards match subdomains, not the domain itself */
    r = regconf_find(&c, "reg.corp.example/team/app");
    assert_non_null(r);
    s = regconf_rewrite(r, r->mirrors[0].location, "reg.corp.example/team/app");
    assert_string_equal(s, "cache.local/team/app");
    free(s);
    s = regconf_rewrite(r, r->location, "reg.corp.example/team/app");
    assert_string_equal(s, "reg.corp.example/team/app");
    free(s);
    assert_null(regconf_find(&c, "corp.example/team/app"));
    assert_true(regconf_host_insecure(&c, "mirror.corp:5000"));
    assert_false(regconf_host_insecure(&c, "mirror.corp"));
    assert_false(regconf_host_insecure(&c, "docker.io"));
    regconf_release(&c);
}

static void test_regconf_errors(void **state)
{
    conf_fails("[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n",
               "r.conf:3: registry.insecure: expected a boolean, got a string");
    conf_fails("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\n"
               "location = \"m.io\"\npull-from-mirror = \"digest\"\n",
               "r.conf:5: registry.mirror.pull-from-mirror: 'digest'");
    conf_fails("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
               "r.conf:3: registry.mirror.location: missing or empty");
    conf_fails("[[registry]]\nlocation = \"https://a.io\"\n",
               "r.conf:2: registry.location: 'https://a.io' has a scheme");
    conf_fails("[registry]\nlocation = \"a.io\"\n",
               "r.conf:1: registry: expected [[registry]] tables, got a table");
    conf_fails("[[registry]]\nblocked = true\n",
               "r.conf:1: registry: has neither a location nor a prefix");
    conf_fails("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"a.io\"\n",
               "r.conf:3: registry.prefix: 'a.io' is given twice (line 1)");
    conf_fails("[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n",
               "must be empty with the wildcard prefix");
    conf_fails("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n"
               "[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"\n",
               "cannot be set with mirror-by-digest-only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml_values),
        cmocka_unit_test(test_toml_errors),
        cmocka_unit_test(test_regconf_tables),
        cmocka_unit_test(test_regconf_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
