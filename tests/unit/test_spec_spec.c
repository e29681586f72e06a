/*
 * Unit tests for builder/spec: every problem in an ocib.json is reported
 * once, as a usage error, as "FILE:LINE:COL: KEY.PATH: what is wrong" at the
 * spot to fix; valid specs (the bundled examples among them) load, and the
 * stage graph orders the stages a target needs.
 *
 * Each spec is written to ./ocib.json in the test's temporary directory.
 * Expected positions are found by searching the spec text for a unique
 * marker (the key with its quotes, or the first characters of an element),
 * so that the expected message states exactly where the error must point.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "spec/spec.h"
#include "tempdir.h"

#define SPEC_FILE "ocib.json"

static void write_spec(const char *text)
{
    FILE *f = fopen(SPEC_FILE, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* "LINE:COL" (1-based, bytes) of the only occurrence of marker in text. */
__attribute__((noinline)) static void pos_of(const char *text, const char *marker,
                                             char *buf, size_t size)
{
    const char *hit = strstr(text, marker);
    int line = 1, col = 1, count = 0;

    for (const char *p = text; (p = strstr(p, marker)) != NULL; p++)
        count++;
    if (count != 1)
        fail_msg("marker %s occurs %d times in the spec, not once", marker, count);
    for (const char *p = text; p < hit; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(buf, size, "%d:%d", line, col);
}

/* Loads text as ./ocib.json, which must fail with exactly
 * "ocib.json:<position of marker>: <what>" as a usage error, and must leave
 * the spec empty. */
static void expect_error_at(const char *text, const char *marker, const char *what)
{
    struct spec spec;
    struct ocib_error err = OCIB_ERROR_INIT;
    char pos[32], want[OCIB_ERROR_MAX];

    if (marker)
        pos_of(text, marker, pos, sizeof(pos));
    else
        snprintf(pos, sizeof(pos), "1:1");
    snprintf(want, sizeof(want), SPEC_FILE ":%s: %s", pos, what);
    write_spec(text);
    memset(&spec, 0xA5, sizeof(spec));
    if (spec_load(&spec, SPEC_FILE, NULL, &err) == 0) {
        spec_release(&spec);
        fail_msg("spec loaded but should fail with: %s", want);
    }
    if (strcmp(err.msg, want))
        fail_msg("\n  got:  %s\n  want: %s", err.msg, want);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    assert_int_equal(spec.n_stages, 0);
    assert_null(spec.stages);
    assert_null(spec.file);
    spec_release(&spec); /* an emptied spec may be released again */
}

static void load_ok(const char *file, struct spec *spec)
{
    struct ocib_error err = OCIB_ERROR_INIT;

    if (spec_load(spec, file, NULL, &err) < 0)
        fail_msg("%s: %s", file, err.msg);
}

static void load_text_ok(const char *text, struct spec *spec)
{
    write_spec(text);
    load_ok(SPEC_FILE, spec);
}

/* A one-stage spec around one layer definition. */
#define ONE_LAYER(layer)                                                                   \
    "{\n"                                                                                  \
    "  \"version\": 1,\n"                                                                  \
    "  \"stages\": [\n"                                                                    \
    "    {\"from\": \"scratch\", \"layers\": [\n"                                          \
    "      " layer "\n"                                                                    \
    "    ]}\n"                                                                             \
    "  ]\n"                                                                                \
    "}\n"

/* A one-stage spec around one config object. */
#define WITH_CONFIG(config)                                                                \
    "{\n"                                                                                  \
    "  \"version\": 1,\n"                                                                  \
    "  \"stages\": [\n"                                                                    \
    "    {\"from\": \"scratch\",\n"                                                        \
    "     \"config\": " config "}\n"                                                       \
    "  ]\n"                                                                                \
    "}\n"

/* ---- unknown keys and types --------------------------------------------- */

static void test_misspelt_key_is_reported_with_did_you_mean(void **state)
{
    static const char text[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dset\": \"/x\"}]}");

    expect_error_at(
        text, "\"dset\"",
        "stages[0].layers[0].copy[0].dset: unknown key; did you mean \"dest\"?");
}

static void test_misspelt_keys_at_other_levels_are_reported_with_their_path(void **state)
{
    static const char top[] = "{\"version\": 1, \"stagse\": []}";
    static const char stage[] = "{\"version\": 1, \"stages\": [{\"form\": \"scratch\"}]}";
    static const char config[] = WITH_CONFIG("{\"entrypont\": [\"/x\"]}");
    static const char hc[] =
        WITH_CONFIG("{\"healthcheck\": {\"test\": \"x\", \"timout\": \"3s\"}}");

    expect_error_at(top, "\"stagse\"", "stagse: unknown key; did you mean \"stages\"?");
    expect_error_at(stage, "\"form\"",
                    "stages[0].form: unknown key; did you mean \"from\"?");
    expect_error_at(
        config, "\"entrypont\"",
        "stages[0].config.entrypont: unknown key; did you mean \"entrypoint\"?");
    expect_error_at(
        hc, "\"timout\"",
        "stages[0].config.healthcheck.timout: unknown key; did you mean \"timeout\"?");
}

static void test_unknown_key_far_from_any_known_one_has_no_suggestion(void **state)
{
    static const char text[] = "{\"version\": 1, \"stages\": [], \"colour\": \"blue\"}";

    expect_error_at(text, "\"colour\"", "colour: unknown key");
}

static void test_value_of_the_wrong_type_names_both_types(void **state)
{
    static const char stages_obj[] = "{\"version\": 1,\n \"stages\": {}}";
    static const char dest_num[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dest\": 5}]}");
    static const char env_list[] =
        "{\"version\": 1, \"stages\": [{\"from\": \"scratch\", \"env\": [\"A=1\"]}]}";
    static const char retries[] =
        WITH_CONFIG("{\"healthcheck\": {\"test\": \"true\", \"retries\": \"3\"}}");
    static const char root[] = "[]";

    expect_error_at(stages_obj, "\"stages\"", "stages: expected an array, got an object");
    expect_error_at(dest_num, "\"dest\"",
                    "stages[0].layers[0].copy[0].dest: expected a string, got a number");
    expect_error_at(env_list, "\"env\"", "stages[0].env: expected an object, got an array");
    expect_error_at(
        retries, "\"retries\"",
        "stages[0].config.healthcheck.retries: expected a non-negative integer");
    expect_error_at(root, NULL, "(top level): expected an object, got an array");
}

static void test_src_as_a_string_suggests_the_array_form(void **state)
{
    static const char text[] =
        ONE_LAYER("{\"copy\": [{\"src\": \"app\", \"dest\": \"/x\"}]}");

    expect_error_at(text, "\"src\"",
                    "stages[0].layers[0].copy[0].src: expected an array of strings "
                    "(write [\"app\"])");
}

/* ---- required keys and version ------------------------------------------ */

static void test_missing_version_is_reported(void **state)
{
    expect_error_at("{\"stages\": [{\"from\": \"scratch\"}]}", NULL,
                    "(top level): missing required key \"version\"");
}

static void test_version_2_is_refused(void **state)
{
    static const char two[] =
        "{\n  \"version\": 2,\n  \"stages\": [{\"from\": \"scratch\"}]\n}";
    static const char str[] = "{\"version\": \"1\", \"stages\": [{\"from\": \"scratch\"}]}";

    expect_error_at(two, "\"version\"",
                    "version: unsupported version (this ocib reads version 1)");
    expect_error_at(str, "\"version\"",
                    "version: unsupported version (this ocib reads version 1)");
}

static void test_missing_or_empty_stages_is_reported(void **state)
{
    expect_error_at("{\"version\": 1}", NULL,
                    "(top level): missing required key \"stages\"");
    expect_error_at("{\"version\": 1, \"stages\": []}", "\"stages\"",
                    "stages: needs at least one stage");
}

static void test_stage_without_from_is_reported(void **state)
{
    static const char text[] = "{\"version\": 1, \"stages\": [\n  {\"from\": "
                               "\"scratch\"},\n  {\"name\": \"x\"}\n]}";

    expect_error_at(text, "{\"name\": \"x\"}", "stages[1]: missing required key \"from\"");
}

static void test_copy_without_src_or_dest_is_reported(void **state)
{
    static const char no_src[] = ONE_LAYER("{\"copy\": [{\"dest\": \"/x\"}]}");
    static const char no_dest[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/x\"}, {\"src\": [\"b\"]}]}");

    expect_error_at(no_src, "{\"dest\"",
                    "stages[0].layers[0].copy[0]: missing required key \"src\"");
    expect_error_at(no_dest, "{\"src\": [\"b\"]}",
                    "stages[0].layers[0].copy[1]: missing required key \"dest\"");
}

/* ---- layers ------------------------------------------------------------- */

static void test_layer_with_two_of_copy_run_files_is_refused(void **state)
{
    static const char copy_run[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}], \"run\": \"make\"}");
    static const char run_files[] = ONE_LAYER(
        "{\"run\": \"make\", \"files\": [{\"path\": \"/f\", \"content\": \"\"}]}");

    expect_error_at(copy_run, "{\"copy\"",
                    "stages[0].layers[0]: a layer has exactly one of \"copy\", \"run\" and "
                    "\"files\", not both \"copy\" and \"run\"");
    expect_error_at(run_files, "{\"run\"",
                    "stages[0].layers[0]: a layer has exactly one of \"copy\", \"run\" and "
                    "\"files\", not both \"run\" and \"files\"");
}

static void test_layer_with_none_of_copy_run_files_is_refused(void **state)
{
    expect_error_at(
        ONE_LAYER("{\"name\": \"empty\"}"), "{\"name\"",
        "stages[0].layers[0]: a layer needs one of \"copy\", \"run\" or \"files\"");
}

static void test_run_only_options_on_a_copy_layer_are_refused(void **state)
{
    static const char network[] = ONE_LAYER(
        "{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\"}], \"network\": \"none\"}");
    static const char env[] =
        ONE_LAYER("{\"files\": [{\"path\": \"/f\", \"content\": \"\"}], \"env\": {}}");

    expect_error_at(network, "\"network\"",
                    "stages[0].layers[0].network: only a \"run\" layer takes \"network\"");
    expect_error_at(env, "\"env\"",
                    "stages[0].layers[0].env: only a \"run\" layer takes \"env\"");
}

static void test_src_leaving_the_context_is_refused(void **state)
{
    static const char dotdot[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"ok\", \"lib/../../etc\"], \"dest\": \"/\"}]}");
    static const char plain[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"..\"], \"dest\": \"/\"}]}");

    expect_error_at(
        dotdot, "\"lib/../../etc\"",
        "stages[0].layers[0].copy[0].src[1]: \"lib/../../etc\" leaves the context "
        "through '..'");
    expect_error_at(
        plain, "\"..\"",
        "stages[0].layers[0].copy[0].src[0]: \"..\" leaves the context through '..'");
}

static void test_absolute_src_is_refused(void **state)
{
    static const char text[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"/etc/passwd\"], \"dest\": \"/\"}]}");

    expect_error_at(
        text, "\"/etc/passwd\"",
        "stages[0].layers[0].copy[0].src[0]: \"/etc/passwd\" is an absolute path "
        "outside the context");
}

static void test_dotdot_in_dest_is_refused(void **state)
{
    static const char text[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/x/../../y\"}]}");

    expect_error_at(text, "\"dest\"",
                    "stages[0].layers[0].copy[0].dest: \"/x/../../y\" contains '..'");
}

static void test_names_with_dots_are_not_mistaken_for_dotdot(void **state)
{
    struct spec spec;
    static const char text[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"..hidden\", \"a..b/c\", \"x/...\"], "
                  "\"dest\": \"/srv/v1..2/\"}]}");

    load_text_ok(text, &spec);
    assert_int_equal(spec.stages[0].layers[0].copies[0].n_src, 3);
    assert_string_equal(spec.stages[0].layers[0].copies[0].dest, "/srv/v1..2/");
    spec_release(&spec);
}

static void test_bad_mode_is_refused(void **state)
{
    static const char nine[] =
        ONE_LAYER("{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\", \"mode\": \"0999\"}]}");
    static const char num[] =
        ONE_LAYER("{\"files\": [{\"path\": \"/f\", \"content\": \"\", \"mode\": 644}]}");

    expect_error_at(
        nine, "\"mode\"",
        "stages[0].layers[0].copy[0].mode: invalid mode \"0999\": expected octal "
        "digits such as \"0644\" or \"preserve\"");
    expect_error_at(num, "\"mode\"",
                    "stages[0].layers[0].files[0].mode: expected a string, got a number");
}

static void test_bad_owner_is_refused(void **state)
{
    static const char trailing[] = ONE_LAYER(
        "{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\", \"owner\": \"1000:\"}]}");
    static const char three[] =
        ONE_LAYER("{\"files\": [{\"path\": \"/f\", \"dir\": true, \"owner\": \"a:b:c\"}]}");

    expect_error_at(trailing, "\"owner\"",
                    "stages[0].layers[0].copy[0].owner: invalid owner \"1000:\": expected "
                    "uid:gid or user:group");
    expect_error_at(three, "\"owner\"",
                    "stages[0].layers[0].files[0].owner: invalid owner \"a:b:c\": expected "
                    "uid:gid or user:group");
}

static void test_owner_forms_are_parsed(void **state)
{
    struct spec spec;
    static const char text[] = ONE_LAYER(
        "{\"copy\": [{\"src\": [\"a\"], \"dest\": \"/\", \"owner\": \"1000:50\"},"
        " {\"src\": [\"b\"], \"dest\": \"/\", \"owner\": \"app\"},"
        " {\"src\": [\"c\"], \"dest\": \"/\", \"owner\": \"0\", \"mode\": \"4755\"}]}");
    const struct spec_copy *c;

    load_text_ok(text, &spec);
    c = spec.stages[0].layers[0].copies;
    assert_true(c[0].owner.set && c[0].owner.numeric);
    assert_int_equal(c[0].owner.uid, 1000);
    assert_int_equal(c[0].owner.gid, 50);
    assert_int_equal(c[0].mode, -1);
    assert_true(c[1].owner.set);
    assert_false(c[1].owner.numeric);
    assert_string_equal(c[1].owner.user, "app");
    assert_string_equal(c[1].owner.group, "app");
    assert_true(c[2].owner.numeric);
    assert_int_equal(c[2].owner.uid, 0);
    assert_int_equal(c[2].owner.gid, 0);
    assert_int_equal(c[2].mode, 04755);
    spec_release(&spec);
}

/* ---- config ------------------------------------------------------------- */

static void test_bad_duration_is_refused(void **state)
{
    static const char text[] = WITH_CONFIG(
        "{\"healthcheck\": {\"test\": \"true\", \"interval\": \"10 seconds\"}}");

    expect_error_at(
        text, "\"interval\"",
        "stages[0].config.healthcheck.interval: invalid duration \"10 seconds\": "
        "expected e.g. \"30s\", \"1m30s\"");
}

static void test_bad_port_is_refused(void **state)
{
    static const char big[] = WITH_CONFIG("{\"expose\": [\"8080\", \"70000/tcp\"]}");
    static const char proto[] = WITH_CONFIG("{\"expose\": [\"80/http\"]}");
    static const char zero[] = WITH_CONFIG("{\"expose\": [\"0\"]}");

    expect_error_at(big, "\"70000/tcp\"",
                    "stages[0].config.expose[1]: invalid port \"70000/tcp\": expected "
                    "PORT[/tcp|/udp|/sctp]");
    expect_error_at(proto, "\"80/http\"",
                    "stages[0].config.expose[0]: invalid port \"80/http\": expected "
                    "PORT[/tcp|/udp|/sctp]");
    expect_error_at(zero, "\"0\"",
                    "stages[0].config.expose[0]: invalid port \"0\": expected "
                    "PORT[/tcp|/udp|/sctp]");
}

static void test_bad_healthcheck_test_is_refused(void **state)
{
    static const char first[] = WITH_CONFIG(
        "{\"healthcheck\": {\"test\": [\"RUN\", \"curl\", \"-f\", \"localhost\"]}}");
    static const char empty[] = WITH_CONFIG("{\"healthcheck\": {\"test\": []}}");
    static const char missing[] = WITH_CONFIG("{\"healthcheck\": {\"interval\": \"5s\"}}");

    expect_error_at(first, "\"test\"",
                    "stages[0].config.healthcheck.test: the first element must be \"CMD\", "
                    "\"CMD-SHELL\" or \"NONE\"");
    expect_error_at(empty, "\"test\"",
                    "stages[0].config.healthcheck.test: must not be empty");
    expect_error_at(missing, "\"healthcheck\"",
                    "stages[0].config.healthcheck: missing required key \"test\"");
}

static void test_bad_env_name_is_refused(void **state)
{
    static const char text[] = WITH_CONFIG("{\"env\": {\"OK\": \"1\", \"1BAD\": \"x\"}}");

    expect_error_at(text, "\"1BAD\"",
                    "stages[0].config.env.1BAD: invalid environment variable name");
}

/* ---- stages and references ---------------------------------------------- */

static void test_duplicate_stage_name_is_refused(void **state)
{
    static const char text[] = "{\"version\": 1, \"stages\": [\n"
                               "  {\"name\": \"a\", \"from\": \"scratch\"},\n"
                               "  {\"from\": \"scratch\", \"name\": \"a\"}\n"
                               "]}";

    expect_error_at(text, "\"name\": \"a\"}", "stages[1].name: duplicate stage name \"a\"");
}

static void test_stage_cycle_is_refused_naming_the_cycle(void **state)
{
    static const char text[] = "{\"version\": 1,\n"
                               " \"stages\": [\n"
                               "  {\"name\": \"a\", \"from\": \"b\"},\n"
                               "  {\"name\": \"b\", \"from\": \"a\"}\n"
                               "]}";

    expect_error_at(text, "\"stages\"", "stages: stage cycle: a -> b -> a");
}

static void test_stage_cycle_through_copy_from_is_refused(void **state)
{
    static const char text[] = "{\"version\": 1,\n"
                               " \"stages\": [\n"
                               "  {\"name\": \"x\", \"from\": \"scratch\"},\n"
                               "  {\"name\": \"a\", \"from\": \"x\",\n"
                               "   \"layers\": [{\"copy\": [{\"from\": \"c\", \"src\": "
                               "[\"/o\"], \"dest\": \"/\"}]}]},\n"
                               "  {\"name\": \"b\", \"from\": \"a\"},\n"
                               "  {\"name\": \"c\", \"from\": \"b\"}\n"
                               "]}";

    expect_error_at(text, "\"stages\"", "stages: stage cycle: a -> c -> b -> a");
}

static void test_stage_using_itself_is_refused(void **state)
{
    static const char text[] =
        "{\"version\": 1, \"stages\": [{\"name\": \"self\", \"from\": \"self\"}]}";

    expect_error_at(text, "\"from\"",
                    "stages[0].from: stage cycle: stage \"self\" uses itself");
}

static void test_invalid_image_reference_is_refused(void **state)
{
    static const char image[] =
        "{\"version\": 1, \"image\": \"Registry.example.com/Team/App\", "
        "\"stages\": [{\"from\": \"scratch\"}]}";
    static const char from[] =
        "{\"version\": 1, \"stages\": [{\"from\": \"Alpine:3.20\"}]}";

    expect_error_at(
        image, "\"image\"",
        "image: invalid reference \"Registry.example.com/Team/App\": repository "
        "name must be lowercase");
    expect_error_at(
        from, "\"from\"",
        "stages[0].from: invalid reference \"Alpine:3.20\": repository name must "
        "be lowercase");
}

static void test_from_that_is_neither_a_stage_nor_a_reference_is_refused(void **state)
{
    static const char stage[] = "{\"version\": 1, \"stages\": [\n"
                                "  {\"name\": \"tools\", \"from\": \"scratch\"},\n"
                                "  {\"from\": \"tools_\"}\n"
                                "]}";
    static const char copy[] = ONE_LAYER(
        "{\"copy\": [{\"from\": \"build__\", \"src\": [\"/x\"], \"dest\": \"/\"}]}");

    expect_error_at(
        stage, "\"from\": \"tools_\"",
        "stages[1].from: \"tools_\" is neither a stage nor a valid image reference");
    expect_error_at(
        copy, "\"from\": \"build__\"",
        "stages[0].layers[0].copy[0].from: \"build__\" is neither a stage nor a "
        "valid image reference");
}

static void test_from_kinds_are_classified(void **state)
{
    struct spec spec;
    static const char text[] =
        "{\"version\": 1, \"stages\": [\n"
        "  {\"name\": \"s0\", \"from\": \"scratch\"},\n"
        "  {\"name\": \"s1\", \"from\": \"alpine:3.20\"},\n"
        "  {\"name\": \"s2\", \"from\": \"oci:./layout:v1\"},\n"
        "  {\"name\": \"s3\", \"from\": \"docker-archive:img.tar\"},\n"
        "  {\"from\": \"s1\"}\n"
        "]}";

    load_text_ok(text, &spec);
    assert_int_equal(spec.n_stages, 5);
    assert_int_equal(spec.stages[0].from.kind, SPEC_FROM_SCRATCH);
    assert_int_equal(spec.stages[1].from.kind, SPEC_FROM_REGISTRY);
    assert_int_equal(spec.stages[2].from.kind, SPEC_FROM_OCI);
    assert_string_equal(spec.stages[2].from.path, "./layout");
    assert_string_equal(spec.stages[2].from.tag, "v1");
    assert_int_equal(spec.stages[3].from.kind, SPEC_FROM_ARCHIVE);
    assert_string_equal(spec.stages[3].from.path, "img.tar");
    assert_int_equal(spec.stages[4].from.kind, SPEC_FROM_STAGE);
    assert_int_equal(spec.stages[4].from.stage, 1);
    assert_string_equal(spec.stages[4].name, "4"); /* unnamed: its index */
    assert_int_equal(spec_stage_find(&spec, "s2"), 2);
    assert_int_equal(spec_stage_find(&spec, "nope"), -1);
    spec_release(&spec);
}

/* ---- valid specs and the stage graph ------------------------------------ */

/* A file of the source tree: under $OCIB_SRC when set, else two levels
 * above this file's directory.  The Makefile compiles with a relative
 * __FILE__ ("tests/unit/...") while run-unit runs each test in a temporary
 * directory, so a relative __FILE__ is resolved against the source tree the
 * binary sits in (BUILD/tests/unit/test_* -> three levels up). */
static char *example(const char *rel)
{
    const char *env = getenv("OCIB_SRC");
    char *copy = strdup(__FILE__);
    const char *dir = dirname(copy);
    char *path = NULL, exe[4096];
    struct stat st;
    ssize_t n;

    if (env && *env) {
        assert_true(asprintf(&path, "%s/%s", env, rel) > 0);
    } else if (dir[0] == '/') {
        assert_true(asprintf(&path, "%s/../../%s", dir, rel) > 0);
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(n > 0);
        exe[n] = '\0';
        assert_true(asprintf(&path, "%s/../../../%s/../../%s", dirname(exe), dir, rel) > 0);
    }
    free(copy);
    if (stat(path, &st) < 0)
        fail_msg("cannot find %s; set OCIB_SRC to the source tree", path);
    return path;
}

static void test_bundled_hello_example_loads(void **state)
{
    struct spec spec;
    char *file = example("specs/examples/hello/ocib.json");
    const struct spec_stage *s;

    load_ok(file, &spec);
    assert_string_equal(spec.image, "localhost:5000/ocib/hello");
    assert_int_equal(spec.n_stages, 1);
    s = &spec.stages[0];
    assert_string_equal(s->name, "hello");
    assert_int_equal(s->from.kind, SPEC_FROM_SCRATCH);
    assert_int_equal(s->n_layers, 2);
    assert_int_equal(s->layers[0].kind, SPEC_LAYER_COPY);
    assert_string_equal(s->layers[0].name, "site");
    assert_string_equal(s->layers[0].copies[0].dest, "/srv/hello/");
    assert_int_equal(s->layers[0].copies[0].n_exclude, 1);
    assert_int_equal(s->layers[1].kind, SPEC_LAYER_FILES);
    assert_int_equal(s->layers[1].n_files, 2);
    assert_int_equal(s->layers[1].files[1].kind, SPEC_FILE_SYMLINK);
    assert_string_equal(s->layers[1].files[1].content, "greeting.txt");
    assert_string_equal(s->config.user, "1000:1000");
    assert_string_equal(s->config.workdir, "/srv/hello");
    assert_true(s->config.env.set);
    assert_int_equal(s->config.env.n, 2);
    assert_string_equal(s->config.env.keys[0], "GREETING_FILE"); /* order as written */
    assert_string_equal(s->config.env.values[1], "C.UTF-8");
    assert_true(s->config.cmd.set);
    assert_false(s->config.cmd.shell);
    assert_int_equal(s->config.cmd.argc, 2);
    assert_false(s->config.entrypoint.set);
    assert_int_equal(s->config.n_expose, 1);
    assert_null(s->config.volumes);
    assert_int_equal(s->config.labels.n, 2);
    assert_false(s->config.healthcheck.set);
    assert_non_null(strstr(spec.dir, "specs/examples/hello"));
    spec_release(&spec);
    free(file);
}

static void test_run_layers_and_config_are_typed(void **state)
{
    struct spec spec;
    const struct spec_run *r, *sh;
    const struct spec_config *c;
    char **argv;
    size_t n;

    load_text_ok(
        "{\"version\": 1, \"stages\": [{\"from\": \"scratch\", \"env\": {\"A\": \"1\"},\n"
        " \"layers\": [\n"
        "  {\"run\": [\"make\", \"all\"], \"env\": {\"Z\": \"z\", \"B\": \"b\"},\n"
        "   \"workdir\": \"/src\", \"user\": \"1000\", \"network\": \"host\",\n"
        "   \"cache_mounts\": [\"/root/.npm\"],\n"
        "   \"secrets\": [{\"id\": \"ca\", \"target\": \"/etc/ca.pem\"}]},\n"
        "  {\"run\": \"echo hi\"}],\n"
        " \"config\": {\"entrypoint\": \"serve\", \"volumes\": [],\n"
        "  \"healthcheck\": {\"test\": \"true\", \"interval\": \"1m30s\", \"retries\": "
        "3}}}]}\n",
        &spec);
    r = &spec.stages[0].layers[0].run;
    sh = &spec.stages[0].layers[1].run;
    c = &spec.stages[0].config;
    assert_false(r->command.shell);
    assert_int_equal(r->command.argc, 2);
    assert_string_equal(r->command.argv[1], "all");
    assert_int_equal(r->env.n, 2);
    assert_string_equal(r->env.keys[0], "Z");
    assert_string_equal(r->workdir, "/src");
    assert_string_equal(r->user, "1000");
    assert_true(r->network_host);
    assert_int_equal(r->n_cache_mounts, 1);
    assert_string_equal(r->cache_mounts[0], "/root/.npm");
    assert_int_equal(r->n_secrets, 1);
    assert_string_equal(r->secrets[0].id, "ca");
    assert_string_equal(r->secrets[0].target, "/etc/ca.pem");
    assert_true(sh->command.shell);
    assert_false(sh->network_host);
    assert_null(sh->workdir);
    assert_false(sh->env.set);
    argv = spec_command_exec_argv(&sh->command, &n);
    assert_int_equal(n, 3);
    assert_string_equal(argv[0], "/bin/sh");
    assert_string_equal(argv[1], "-c");
    assert_string_equal(argv[2], "echo hi");
    assert_null(argv[3]);
    spec_strv_free(argv, n);
    assert_string_equal(spec.stages[0].env.values[0], "1");
    assert_true(c->entrypoint.set && c->entrypoint.shell);
    assert_false(c->cmd.set);
    assert_non_null(c->volumes); /* given, though empty */
    assert_int_equal(c->n_volumes, 0);
    assert_true(c->healthcheck.set);
    assert_true(c->healthcheck.test.shell);
    assert_true(c->healthcheck.interval == 90LL * 1000000000LL);
    assert_true(c->healthcheck.timeout == -1);
    assert_true(c->healthcheck.retries == 3);
    spec_release(&spec);
}

static void test_build_args_are_substituted_and_unknown_ones_refused_in_place(void **state)
{
    struct spec spec;
    struct ocib_error err = OCIB_ERROR_INIT;
    char *given[] = {(char *)"V=2"};
    struct spec_inputs in = {given, 1, NULL};

    write_spec(
        "{\"version\": 1, \"args\": {\"V\": \"1\"}, \"stages\": [{\"from\": \"scratch\",\n"
        " \"workdir\": \"/v${V}\", \"layers\": [{\"files\": [{\"path\": \"/a$${V}\", "
        "\"content\": \"${V}\"}]}]}]}\n");
    assert_int_equal(spec_load(&spec, SPEC_FILE, &in, &err), 0);
    assert_string_equal(spec.stages[0].workdir, "/v2");
    assert_string_equal(spec.stages[0].layers[0].files[0].path, "/a${V}");
    assert_string_equal(spec.stages[0].layers[0].files[0].content, "2");
    assert_int_equal(spec.args.n, 1);
    /* The stage's arguments: the predefined ones, then V. */
    assert_string_equal(spec.stages[0].args.keys[spec.stages[0].args.n - 1], "V");
    assert_string_equal(spec.stages[0].args.keys[0], "TARGETPLATFORM");
    spec_release(&spec);
    expect_error_at(
        "{\"version\": 1, \"stages\": [{\"from\": \"scratch\", \"user\": \"${NOPE}\"}]}",
        "\"user\"",
        "stages[0].user: unknown build argument ${NOPE}; declare it in \"args\" (or "
        "use a predefined one: TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, "
        "BUILDPLATFORM, BUILDOS, BUILDARCH)");
}

static void test_bundled_layered_example_loads_and_orders_its_stages(void **state)
{
    struct spec spec;
    char *file = example("specs/examples/layered/ocib.json");
    size_t order[2], n = 99;
    const struct spec_file *f;

    load_ok(file, &spec);
    assert_int_equal(spec.n_stages, 2);
    assert_string_equal(spec.stages[1].name, "app");
    assert_int_equal(spec.stages[1].from.kind, SPEC_FROM_STAGE);
    assert_int_equal(spec.stages[1].from.stage, 0);
    assert_int_equal(spec.stages[0].layers[1].copies[0].mode, 0600);
    f = &spec.stages[1].layers[1].files[1];
    assert_int_equal(f->kind, SPEC_FILE_CONTENT);
    assert_int_equal(f->content_len, 8);
    assert_memory_equal(f->content, "welcome\n", 8); /* content_base64 decoded */
    assert_int_equal(f->mode, 0640);
    assert_int_equal(spec.stages[1].layers[1].files[2].kind, SPEC_FILE_DIR);

    spec_stage_order(&spec, 1, order, &n);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    spec_stage_order(&spec, 0, order, &n);
    assert_int_equal(n, 1);
    assert_int_equal(order[0], 0);
    spec_release(&spec);
    free(file);
}

static void test_stage_order_gives_dependencies_first_and_only_needed_stages(void **state)
{
    struct spec spec;
    static const char text[] =
        "{\"version\": 1, \"stages\": [\n"
        "  {\"name\": \"final\", \"from\": \"runtime\", \"layers\": [\n"
        "    {\"copy\": [{\"from\": \"build\", \"src\": [\"/out\"], \"dest\": "
        "\"/app\"}]}]},\n"
        "  {\"name\": \"unused\", \"from\": \"scratch\"},\n"
        "  {\"name\": \"build\", \"from\": \"tools\"},\n"
        "  {\"name\": \"tools\", \"from\": \"scratch\"},\n"
        "  {\"name\": \"runtime\", \"from\": \"scratch\"}\n"
        "]}";
    size_t order[5], n = 99, pos[5];

    load_text_ok(text, &spec);
    spec_stage_order(&spec, 0, order, &n);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 5; i++)
        pos[i] = 99;
    for (size_t i = 0; i < n; i++) {
        assert_true(order[i] < 5);
        assert_int_equal(pos[order[i]], 99); /* each once */
        pos[order[i]] = i;
    }
    assert_int_equal(pos[1], 99);      /* "unused" is not built */
    assert_true(pos[3] < pos[2]);      /* tools before build */
    assert_true(pos[2] < pos[0]);      /* build before final */
    assert_true(pos[4] < pos[0]);      /* runtime before final */
    assert_int_equal(order[n - 1], 0); /* the target last */

    spec_stage_order(&spec, 2, order, &n);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    spec_release(&spec);
}

static void test_a_stage_may_depend_on_a_later_one(void **state)
{
    struct spec spec;
    static const char text[] = "{\"version\": 1, \"stages\": [\n"
                               "  {\"name\": \"a\", \"from\": \"b\"},\n"
                               "  {\"name\": \"b\", \"from\": \"scratch\"}\n"
                               "]}";
    size_t order[2], n;

    load_text_ok(text, &spec);
    assert_int_equal(spec.stages[0].from.kind, SPEC_FROM_STAGE);
    spec_stage_order(&spec, 0, order, &n);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 0);
    spec_release(&spec);
}

static void test_missing_spec_file_is_an_error(void **state)
{
    struct spec spec;
    struct ocib_error err = OCIB_ERROR_INIT;

    assert_int_equal(spec_load(&spec, "does-not-exist.json", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "does-not-exist.json"));
    assert_null(spec.stages);
}

static void test_syntax_error_points_at_the_spot(void **state)
{
    struct spec spec;
    struct ocib_error err = OCIB_ERROR_INIT;

    write_spec("{\"version\": 1,\n \"stages\": [],\n}");
    assert_int_equal(spec_load(&spec, SPEC_FILE, NULL, &err), -1);
    assert_int_equal(err.code, OCIB_EXIT_USAGE);
    /* At the offending comma. */
    assert_string_equal(err.msg, SPEC_FILE ":2:14: trailing comma in object");
}

/* ---- durations ---------------------------------------------------------- */

static void test_duration_parse_accepts_go_style_durations(void **state)
{
    static const struct {
        const char *s;
        long long ns;
    } ok[] = {
        {"1m30s", 90000000000LL},
        {"500ms", 500000000LL},
        {"0", 0},
        {"30s", 30000000000LL},
        {"1h", 3600000000000LL},
        {"2h45m", 9900000000000LL},
        {"1us", 1000},
        {"7ns", 7},
        {"0s", 0},
        {"1m1ms", 60001000000LL},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        long long ns = -42;

        if (spec_duration_parse(ok[i].s, &ns) < 0)
            fail_msg("\"%s\" refused", ok[i].s);
        if (ns != ok[i].ns)
            fail_msg("\"%s\" gave %lld ns, expected %lld", ok[i].s, ns, ok[i].ns);
    }
}

static void test_duration_parse_refuses_malformed_durations(void **state)
{
    static const char *const bad[] = {"",   "1",          "s",  "1x",   "-1s", "1 s", "1s ",
                                      "m1", "10 seconds", "1S", "1sec", "5m3", "ms"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long ns = -42;

        if (spec_duration_parse(bad[i], &ns) == 0)
            fail_msg("\"%s\" accepted as %lld ns", bad[i], ns);
        assert_int_equal(ns, -42);
    }
}

/* A duration beyond what a long long holds (about 2562047h) must be
 * refused, not wrapped into a negative interval.  Kept last: under UBSan
 * with -fno-sanitize-recover the overflow aborts the binary. */
static void test_duration_parse_refuses_overflowing_durations(void **state)
{
    static const char *const bad[] = {"9999999999h", "2562048h", "9223372037s",
                                      "2562047h1h", "1000000000h1000000000h"};
    long long ns = -42;

    assert_int_equal(spec_duration_parse("2562047h", &ns), 0);
    assert_int_equal(ns, 2562047LL * 3600000000000LL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ns = -42;
        if (spec_duration_parse(bad[i], &ns) == 0)
            fail_msg("\"%s\" accepted as %lld ns", bad[i], ns);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMPDIR_TEST(test_misspelt_key_is_reported_with_did_you_mean),
        TEMPDIR_TEST(test_misspelt_keys_at_other_levels_are_reported_with_their_path),
        TEMPDIR_TEST(test_unknown_key_far_from_any_known_one_has_no_suggestion),
        TEMPDIR_TEST(test_value_of_the_wrong_type_names_both_types),
        TEMPDIR_TEST(test_src_as_a_string_suggests_the_array_form),
        TEMPDIR_TEST(test_missing_version_is_reported),
        TEMPDIR_TEST(test_version_2_is_refused),
        TEMPDIR_TEST(test_missing_or_empty_stages_is_reported),
        TEMPDIR_TEST(test_stage_without_from_is_reported),
        TEMPDIR_TEST(test_copy_without_src_or_dest_is_reported),
        TEMPDIR_TEST(test_layer_with_two_of_copy_run_files_is_refused),
        TEMPDIR_TEST(test_layer_with_none_of_copy_run_files_is_refused),
        TEMPDIR_TEST(test_run_only_options_on_a_copy_layer_are_refused),
        TEMPDIR_TEST(test_src_leaving_the_context_is_refused),
        TEMPDIR_TEST(test_absolute_src_is_refused),
        TEMPDIR_TEST(test_dotdot_in_dest_is_refused),
        TEMPDIR_TEST(test_names_with_dots_are_not_mistaken_for_dotdot),
        TEMPDIR_TEST(test_bad_mode_is_refused),
        TEMPDIR_TEST(test_bad_owner_is_refused),
        TEMPDIR_TEST(test_owner_forms_are_parsed),
        TEMPDIR_TEST(test_bad_duration_is_refused),
        TEMPDIR_TEST(test_bad_port_is_refused),
        TEMPDIR_TEST(test_bad_healthcheck_test_is_refused),
        TEMPDIR_TEST(test_bad_env_name_is_refused),
        TEMPDIR_TEST(test_duplicate_stage_name_is_refused),
        TEMPDIR_TEST(test_stage_cycle_is_refused_naming_the_cycle),
        TEMPDIR_TEST(test_stage_cycle_through_copy_from_is_refused),
        TEMPDIR_TEST(test_stage_using_itself_is_refused),
        TEMPDIR_TEST(test_invalid_image_reference_is_refused),
        TEMPDIR_TEST(test_from_that_is_neither_a_stage_nor_a_reference_is_refused),
        TEMPDIR_TEST(test_from_kinds_are_classified),
        TEMPDIR_TEST(test_bundled_hello_example_loads),
        TEMPDIR_TEST(test_run_layers_and_config_are_typed),
        TEMPDIR_TEST(test_build_args_are_substituted_and_unknown_ones_refused_in_place),
        TEMPDIR_TEST(test_bundled_layered_example_loads_and_orders_its_stages),
        TEMPDIR_TEST(test_stage_order_gives_dependencies_first_and_only_needed_stages),
        TEMPDIR_TEST(test_a_stage_may_depend_on_a_later_one),
        TEMPDIR_TEST(test_missing_spec_file_is_an_error),
        TEMPDIR_TEST(test_syntax_error_points_at_the_spot),
        TEMPDIR_TEST(test_duration_parse_accepts_go_style_durations),
        TEMPDIR_TEST(test_duration_parse_refuses_malformed_durations),
        TEMPDIR_TEST(test_duration_parse_refuses_overflowing_durations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
