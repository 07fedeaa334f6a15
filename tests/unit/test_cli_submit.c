/*
 * Unit tests for `outpost submit`'s arguments turned into a request, with
 * no hub: flags into a spec the job spec parser accepts, --count copies,
 * attached inputs, spec files and arrays, route jobs, the program after
 * "--" kept verbatim, options before or after positionals, and every
 * usage error refused with exit 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/runctl.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "core/jobspec.h"
#include "helpers/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    char dir[64];
    char spec_path[96], array_path[96], input_path[96], bad_path[96];
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/outpost-test-cli-submit-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->spec_path, sizeof fx->spec_path, "%s/spec.json", fx->dir);
    snprintf(fx->array_path, sizeof fx->array_path, "%s/specs.json", fx->dir);
    snprintf(fx->input_path, sizeof fx->input_path, "%s/day.vrp", fx->dir);
    snprintf(fx->bad_path, sizeof fx->bad_path, "%s/bad.json", fx->dir);
    write_file(fx->spec_path, "{\"kind\": \"noop\", \"name\": \"from-file\"}");
    write_file(fx->array_path, "[{\"kind\": \"noop\"}, {\"kind\": \"noop\"}]");
    write_file(fx->input_path, "hello");
    write_file(fx->bad_path, "{not json");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    remove(fx->spec_path);
    remove(fx->array_path);
    remove(fx->input_path);
    remove(fx->bad_path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Parses `outpost submit ARGS...` (NULL-terminated) into s; stderr is swallowed. */
static int parse(cli *c, cli_submit *s, ...)
{
    char *argv[32] = {"submit"};
    int argc = 1;
    va_list ap;
    va_start(ap, s);
    for (char *a; argc < 31 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    cli__init(c, "submit");
    capture err;
    assert_int_equal(capture_start(&err, 2), 0);
    int rc = cli__submit_parse(c, argc, argv, s);
    free(capture_end(&err));
    return rc;
}

/* The request's single spec passes the hub's own spec validation. */
static void assert_valid_spec(const cJSON *spec)
{
    jobspec js;
    char err[256] = "";
    if (jobspec_from_json(spec, &js, err, sizeof err) != 0) fail_msg("spec refused: %s", err);
    jobspec_clear(&js);
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_flags_make_an_exec_spec(void **state)
{
    (void)state;
    cli c;
    cli_submit s;
    assert_int_equal(parse(&c, &s, "--name", "hash-1", "--cores", "2", "--memory-mb", "512",
                           "--wall-s", "60", "--classes", "pod,dc", "--data-class", "confidential",
                           "--output", "a.out", "--output", "b.out", "--", "sh", "-c",
                           "echo hi --name x", NULL),
                     EXIT_OK);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s.req, "spec");
    assert_non_null(spec);
    assert_string_equal(str_at(spec, "kind"), "exec");
    assert_string_equal(str_at(spec, "name"), "hash-1");
    assert_string_equal(str_at(spec, "data_class"), "confidential");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(spec, "resources");
    assert_int_equal((int)num_at(res, "cores"), 2);
    assert_int_equal((int)num_at(res, "memory_mb"), 512);
    assert_int_equal((int)num_at(res, "wall_s"), 60);
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(spec, "site_classes");
    assert_int_equal(cJSON_GetArraySize(classes), 2);
    assert_string_equal(cJSON_GetArrayItem(classes, 1)->valuestring, "dc");
    /* everything after "--" is the program, options included */
    const cJSON *command = cJSON_GetObjectItemCaseSensitive(spec, "command");
    assert_int_equal(cJSON_GetArraySize(command), 3);
    assert_string_equal(cJSON_GetArrayItem(command, 2)->valuestring, "echo hi --name x");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "outputs")), 2);
    assert_valid_spec(spec);
    assert_false(s.wait || s.quiet || s.local);
    cJSON_Delete(s.req);
    cli__close(&c);
}

static void test_count_makes_copies_and_flags_are_read(void **state)
{
    (void)state;
    cli c;
    cli_submit s;
    assert_int_equal(parse(&c, &s, "--kind", "noop", "--count", "3", "-q", "--wait", "--json",
                           "--hub-dir", "/srv/hub", "--timeout", "2500", NULL),
                     EXIT_OK);
    const cJSON *specs = cJSON_GetObjectItemCaseSensitive(s.req, "specs");
    assert_int_equal(cJSON_GetArraySize(specs), 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(s.req, "spec"));
    assert_string_equal(str_at(cJSON_GetArrayItem(specs, 2), "kind"), "noop");
    assert_valid_spec(cJSON_GetArrayItem(specs, 0));
    assert_true(s.quiet && s.wait);
    /* the common options go to the context */
    assert_true(c.json);
    assert_string_equal(c.hub_dir, "/srv/hub");
    assert_int_equal(c.timeout_ms, 2500);
    cJSON_Delete(s.req);
    cli__close(&c);
}

static void test_inputs_are_attached_with_their_hash(void **state)
{
    fixture *fx = *state;
    cli c;
    cli_submit s;
    assert_int_equal(parse(&c, &s, "--input", fx->input_path, "--", "cat", "day.vrp", NULL),
                     EXIT_OK);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s.req, "spec");
    const cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "inputs"), 0);
    assert_string_equal(str_at(in, "name"), "day.vrp");
    char hash[65];
    util_sha256_hex("hello", 5, hash);
    assert_string_equal(str_at(in, "sha256"), hash);
    assert_string_equal(str_at(in, "data_b64"), "aGVsbG8=");
    assert_valid_spec(spec);
    cJSON_Delete(s.req);
    cli__close(&c);
}

static void test_spec_files(void **state)
{
    fixture *fx = *state;
    cli c;
    cli_submit s;
    /* options after the file are read too */
    assert_int_equal(parse(&c, &s, fx->spec_path, "--wait", NULL), EXIT_OK);
    assert_string_equal(str_at(cJSON_GetObjectItemCaseSensitive(s.req, "spec"), "name"),
                        "from-file");
    assert_true(s.wait);
    cJSON_Delete(s.req);
    cli__close(&c);
    assert_int_equal(parse(&c, &s, "--local", fx->dir, fx->array_path, NULL), EXIT_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s.req, "specs")), 2);
    assert_string_equal(s.local, fx->dir);
    cJSON_Delete(s.req);
    cli__close(&c);
}

static void test_route_jobs(void **state)
{
    fixture *fx = *state;
    cli c;
    cli_submit s;
    assert_int_equal(parse(&c, &s, "--kind", "route", fx->input_path, "--time-limit", "3.5",
                           "--seed", "7", "--origin", "dc-1", "--data-class", "confidential", NULL),
                     EXIT_OK);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s.req, "spec");
    assert_string_equal(str_at(spec, "kind"), "route");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "inputs")), 1);
    const cJSON *route = cJSON_GetObjectItemCaseSensitive(spec, "route");
    assert_true(num_at(route, "time_limit_s") == 3.5);
    assert_int_equal((int)num_at(route, "seed"), 7);
    assert_valid_spec(spec);
    cJSON_Delete(s.req);
    cli__close(&c);
}

static void test_help(void **state)
{
    (void)state;
    cli c;
    cli_submit s;
    capture out;
    assert_int_equal(capture_start(&out, 1), 0);
    int rc = parse(&c, &s, "--kind", "noop", "--help", NULL);
    char *text = capture_end(&out);
    assert_int_equal(rc, EXIT_OK);
    assert_true(s.help);
    assert_null(s.req);
    assert_non_null(strstr(text, "usage: outpost submit"));
    free(text);
    cli__close(&c);
}

static void test_usage_errors(void **state)
{
    fixture *fx = *state;
    cli c;
    cli_submit s;
    const char *cases[][5] = {
        {NULL},                                        /* nothing to submit */
        {"--count", "0", "--kind", "noop", NULL},      /* not positive */
        {"--cores", "two", "--kind", "noop", NULL},    /* not a number */
        {"--kind", "noop", "--time-limit", "3", NULL}, /* a route option on another kind */
        {"--kind", "route", "x", "--time-limit", "-1"},
        {fx->spec_path, fx->array_path, NULL}, /* one spec file at a time */
        {fx->bad_path, NULL},                  /* not JSON */
        {"/nonexistent/spec.json", NULL},
        {"--input", "/nonexistent/in", "--", "true"},
        {"--kind", "noop", "--frobnicate", NULL},
        {"--kind", "noop", "--name", NULL}, /* a value missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc =
            parse(&c, &s, cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], NULL);
        if (rc != EXIT_USAGE || s.req)
            fail_msg("case %zu (%s ...): exit %d, request %p", i, cases[i][0] ? cases[i][0] : "",
                     rc, (void *)s.req);
        cli__close(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_make_an_exec_spec),
        cmocka_unit_test(test_count_makes_copies_and_flags_are_read),
        cmocka_unit_test_setup_teardown(test_inputs_are_attached_with_their_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_jobs, setup, teardown),
        cmocka_unit_test(test_help),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
