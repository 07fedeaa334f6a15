/*
 * Unit tests for jobspec: defaults of a minimal spec, every validation
 * error naming its field, size bounds on inputs, and input bytes decoded
 * and checked against their hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_text(const char *text, jobspec *spec, char *err, size_t err_len)
{
    err[0] = '\0';
    return jobspec_parse(text, strlen(text), spec, err, err_len);
}

/* Parses text, expects rc and an error message containing needle; checks nothing is held. */
static void expect_error_rc(const char *text, int rc, const char *needle)
{
    jobspec spec;
    char err[512];
    int got = parse_text(text, &spec, err, sizeof err);
    if (got != rc || !strstr(err, needle))
        print_error("spec %.200s\n  rc %d (want %d), err '%s' (want '%s')\n", text, got, rc, err,
                    needle);
    assert_int_equal(got, rc);
    assert_non_null(strstr(err, needle));
    assert_int_equal(spec.argc, 0);
    assert_int_equal(spec.n_inputs, 0);
    assert_null(spec.argv[0]);
}

static void expect_error(const char *text, const char *needle)
{
    expect_error_rc(text, OP_EINVAL, needle);
}

/* An input entry {"name", "sha256", "data_b64"} for bytes (hash computed unless given). */
static cJSON *input_item(const char *name, const void *bytes, size_t len, const char *hash)
{
    cJSON *item = cJSON_CreateObject();
    char hex[65];
    util_sha256_hex(bytes, len, hex);
    char *b64 = util_b64_encode(bytes, len);
    assert_non_null(b64);
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddStringToObject(item, "sha256", hash ? hash : hex);
    cJSON_AddStringToObject(item, "data_b64", b64);
    free(b64);
    return item;
}

/* {"kind":"exec","command":["cat","in"],"inputs":[...]} as text (caller frees). */
static char *spec_with_inputs(cJSON *inputs)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kind", "exec");
    const char *argv[] = {"cat", "in"};
    cJSON_AddItemToObject(root, "command", cJSON_CreateStringArray(argv, 2));
    cJSON_AddItemToObject(root, "inputs", inputs);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    assert_non_null(text);
    return text;
}

static void test_minimal_exec_defaults(void **state)
{
    jobspec spec;
    char err[256];
    assert_int_equal(
        parse_text("{\"kind\":\"exec\",\"command\":[\"echo\",\"hi\"]}", &spec, err, sizeof err),
        OP_OK);
    assert_int_equal(spec.kind, JOB_KIND_EXEC);
    assert_int_equal(spec.argc, 2);
    assert_string_equal(spec.argv[0], "echo");
    assert_string_equal(spec.argv[1], "hi");
    assert_null(spec.argv[2]);
    assert_string_equal(spec.name, "");
    assert_int_equal(spec.cores, 1);
    assert_int_equal(spec.memory_mb, 256);
    assert_int_equal(spec.wall_s, 600);
    assert_int_equal(spec.cpu_s, 600);
    assert_int_equal(spec.output_bytes, 1024 * 1024);
    assert_int_equal(spec.open_files, 64);
    assert_int_equal(spec.class_mask, CLASS_ALL);
    assert_int_equal(spec.data_class, DATA_PUBLIC);
    assert_string_equal(spec.origin, "");
    assert_int_equal(spec.max_attempts, 3);
    assert_int_equal(spec.deterministic, 0);
    assert_int_equal(spec.n_inputs, 0);
    assert_int_equal(spec.n_outputs, 0);
    jobspec_clear(&spec);
    assert_int_equal(spec.argc, 0);
    assert_null(spec.argv[0]);
}

static void test_noop(void **state)
{
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text("{\"kind\":\"noop\"}", &spec, err, sizeof err), OP_OK);
    assert_int_equal(spec.kind, JOB_KIND_NOOP);
    assert_int_equal(spec.argc, 0);
    assert_int_equal(spec.cores, 1);
    assert_int_equal(spec.max_attempts, 3);
    jobspec_clear(&spec);
    expect_error("{\"kind\":\"noop\",\"command\":[\"ls\"]}", "command: only exec jobs");
}

/* A learn job: its defaults, its bounds, and what it may not carry. */
static void test_learn(void **state)
{
    (void)state;
    jobspec spec;
    char err[256];
    const char *ok = "{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                     "\"origin\":\"wh1\",\"learn\":{\"rounds\":5,\"rows\":\"shareable\","
                     "\"margin\":0.05}}";
    assert_int_equal(parse_text(ok, &spec, err, sizeof err), OP_OK);
    assert_int_equal(spec.kind, JOB_KIND_LEARN);
    assert_string_equal(jobspec_kind_name(spec.kind), "learn");
    assert_int_equal(spec.learn_rounds, 5);
    assert_int_equal(spec.learn_heldout, 200);
    assert_int_equal(spec.learn_min_heldout, 20);
    assert_int_equal(spec.learn_depth, 6);
    assert_int_equal(spec.learn_rebuild, 0); /* continued, unless asked */
    assert_true(spec.learn_margin > 0.049 && spec.learn_margin < 0.051);
    assert_int_equal(spec.learn_shareable, 1);
    assert_int_equal(spec.n_outputs, 1);
    assert_string_equal(spec.outputs[0], "metrics.json");
    assert_string_equal(spec.model, "eta");
    jobspec_clear(&spec);
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\"}", "data_class");
    expect_error("{\"kind\":\"learn\",\"data_class\":\"site-private\",\"origin\":\"a\"}", "model");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta@3\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\"}",
                 "no version");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"outputs\":[\"x\"]}",
                 "metrics.json");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"learn\":{\"rounds\":0}}",
                 "learn.rounds");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"learn\":{\"rebuild\":1001}}",
                 "learn.rebuild");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta-wh1\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"learn\":{\"rebuild\":100,\"mode\":\"offer\","
                 "\"from\":\"eta-pool\"}}",
                 "learn.rebuild");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"learn\":{\"margin\":1.5}}",
                 "learn.margin");
    expect_error("{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
                 "\"origin\":\"a\",\"learn\":{\"epochs\":3}}",
                 "learn.epochs");
    expect_error("{\"kind\":\"exec\",\"command\":[\"true\"],\"learn\":{}}", "only learn jobs");
}

static void test_full_spec(void **state)
{
    const char *text =
        "{\"kind\":\"exec\",\"name\":\"hash-42\",\"command\":[\"sha256sum\",\"in.csv\"],"
        "\"resources\":{\"cores\":4,\"memory_mb\":2048,\"wall_s\":60,"
        "\"output_bytes\":4096,\"open_files\":128},"
        "\"inputs\":[{\"name\":\"in.csv\",\"sha256\":"
        "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
        "\"data_b64\":\"YWJj\"}],"
        "\"outputs\":[\"out.gz\",\"log.txt\"],"
        "\"site_classes\":[\"pod\",\"dc\"],"
        "\"data_class\":\"site-private\",\"origin\":\"site-7\","
        "\"max_attempts\":5,\"deterministic\":true}";
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text(text, &spec, err, sizeof err), OP_OK);
    assert_string_equal(spec.name, "hash-42");
    assert_int_equal(spec.argc, 2);
    assert_string_equal(spec.argv[1], "in.csv");
    assert_int_equal(spec.cores, 4);
    assert_int_equal(spec.memory_mb, 2048);
    assert_int_equal(spec.wall_s, 60);
    assert_int_equal(spec.cpu_s, 240); /* default: wall_s x cores */
    assert_int_equal(spec.output_bytes, 4096);
    assert_int_equal(spec.open_files, 128);
    assert_int_equal(spec.n_inputs, 1);
    assert_string_equal(spec.inputs[0].name, "in.csv");
    assert_int_equal(spec.inputs[0].len, 3);
    assert_memory_equal(spec.inputs[0].data, "abc", 3);
    assert_string_equal(spec.inputs[0].sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(spec.n_outputs, 2);
    assert_string_equal(spec.outputs[0], "out.gz");
    assert_string_equal(spec.outputs[1], "log.txt");
    assert_int_equal(spec.class_mask, CLASS_POD | CLASS_DC);
    assert_int_equal(spec.data_class, DATA_SITE_PRIVATE);
    assert_string_equal(spec.origin, "site-7");
    assert_int_equal(spec.max_attempts, 5);
    assert_int_equal(spec.deterministic, 1);
    jobspec_clear(&spec);

    assert_int_equal(parse_text("{\"kind\":\"noop\",\"data_class\":\"confidential\","
                                "\"deterministic\":false,\"resources\":{\"cpu_s\":7}}",
                                &spec, err, sizeof err),
                     OP_OK);
    assert_int_equal(spec.data_class, DATA_CONFIDENTIAL);
    assert_int_equal(spec.deterministic, 0);
    assert_int_equal(spec.cpu_s, 7);
    jobspec_clear(&spec);
}

static void test_from_json(void **state)
{
    cJSON *root = cJSON_Parse("{\"kind\":\"exec\",\"command\":[\"true\"]}");
    jobspec spec;
    char err[256] = "";
    assert_int_equal(jobspec_from_json(root, &spec, err, sizeof err), OP_OK);
    assert_string_equal(spec.argv[0], "true");
    jobspec_clear(&spec);
    cJSON_Delete(root);
    assert_int_equal(jobspec_from_json(NULL, &spec, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "JSON object"));
}

static void test_not_json_or_not_object(void **state)
{
    expect_error("", "not valid JSON");
    expect_error("{", "not valid JSON");
    expect_error("{\"kind\":\"exec\",}", "not valid JSON");
    expect_error("[1,2]", "must be a JSON object");
    expect_error("\"exec\"", "must be a JSON object");
    expect_error("null", "must be a JSON object");

    /* Only len bytes are parsed. */
    jobspec spec;
    char err[256];
    const char *text = "{\"kind\":\"noop\"}{{{{";
    assert_int_equal(jobspec_parse(text, 15, &spec, err, sizeof err), OP_OK);
    jobspec_clear(&spec);
    assert_int_equal(jobspec_parse(text, 14, &spec, err, sizeof err), OP_EINVAL);
}

static void test_unknown_field(void **state)
{
    expect_error("{\"kind\":\"exec\",\"command\":[\"a\"],\"colour\":\"red\"}",
                 "colour: unknown field");
    expect_error("{\"Kind\":\"noop\"}", "Kind: unknown field"); /* keys are case-sensitive */
}

static void test_kind(void **state)
{
    expect_error("{\"command\":[\"a\"]}", "kind: required");
    expect_error("{}", "kind: required");
    expect_error("{\"kind\":5}", "kind: required");
    expect_error("{\"kind\":\"shell\",\"command\":[\"a\"]}", "kind: 'shell' is not a job kind");
    expect_error("{\"kind\":\"EXEC\",\"command\":[\"a\"]}", "kind:");
}

static void test_name(void **state)
{
    expect_error("{\"kind\":\"noop\",\"name\":7}", "name:");
    char text[256];
    char long_name[65];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    snprintf(text, sizeof text, "{\"kind\":\"noop\",\"name\":\"%s\"}", long_name);
    expect_error(text, "name:");
    long_name[63] = '\0';
    snprintf(text, sizeof text, "{\"kind\":\"noop\",\"name\":\"%s\"}", long_name);
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text(text, &spec, err, sizeof err), OP_OK);
    assert_string_equal(spec.name, long_name);
    jobspec_clear(&spec);
}

static void test_command(void **state)
{
    expect_error("{\"kind\":\"exec\"}", "command: required");
    expect_error("{\"kind\":\"exec\",\"command\":[]}", "command: must name a program");
    expect_error("{\"kind\":\"exec\",\"command\":[\"\"]}", "command: must name a program");
    expect_error("{\"kind\":\"exec\",\"command\":\"ls -l\"}", "command: must be an array");
    expect_error("{\"kind\":\"exec\",\"command\":{\"a\":\"b\"}}", "command: must be an array");
    expect_error("{\"kind\":\"exec\",\"command\":[\"ls\",1]}", "command[1]: must be a string");
    expect_error("{\"kind\":\"exec\",\"command\":[null]}", "command[0]: must be a string");
    expect_error("{\"kind\":\"exec\",\"command\":[[\"ls\"]]}", "command[0]: must be a string");

    /* 64 arguments are allowed, 65 are too many. */
    char text[1024];
    size_t len = (size_t)snprintf(text, sizeof text, "{\"kind\":\"exec\",\"command\":[\"p\"");
    for (int i = 1; i < 64; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ",\"a\"");
    snprintf(text + len, sizeof text - len, "]}");
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text(text, &spec, err, sizeof err), OP_OK);
    assert_int_equal(spec.argc, 64);
    assert_null(spec.argv[64]);
    jobspec_clear(&spec);
    snprintf(text + len, sizeof text - len, ",\"a\"]}");
    expect_error(text, "command: must be an array of at most 64");

    /* An argument of 4096 bytes is too long. */
    size_t big = 4096 + 64;
    char *long_arg = malloc(big);
    assert_non_null(long_arg);
    int n = snprintf(long_arg, big, "{\"kind\":\"exec\",\"command\":[\"p\",\"");
    memset(long_arg + n, 'x', 4096);
    snprintf(long_arg + n + 4096, big - (size_t)n - 4096, "\"]}");
    expect_error(long_arg, "command[1]: must be a string shorter than 4096");
    free(long_arg);
}

static void test_resources(void **state)
{
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cores\":0}}",
                 "resources.cores: must be an integer from 1 to 256");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cores\":1000}}", "resources.cores");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cores\":1.5}}", "resources.cores");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cores\":\"2\"}}", "resources.cores");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cores\":1e999}}", "resources.cores");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"memory_mb\":0}}", "resources.memory_mb");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"memory_mb\":1048577}}",
                 "resources.memory_mb");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"wall_s\":604801}}", "resources.wall_s");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"cpu_s\":-1}}", "resources.cpu_s");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"output_bytes\":4194305}}",
                 "resources.output_bytes");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"open_files\":7}}", "resources.open_files");
    expect_error("{\"kind\":\"noop\",\"resources\":{\"gpus\":1}}", "resources.gpus: unknown field");
    expect_error("{\"kind\":\"noop\",\"resources\":[1]}", "resources: must be an object");
    expect_error("{\"kind\":\"noop\",\"resources\":4}", "resources: must be an object");

    /* The bounds themselves are accepted. */
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text("{\"kind\":\"noop\",\"resources\":{\"cores\":256,"
                                "\"memory_mb\":1048576,\"wall_s\":604800,\"open_files\":8}}",
                                &spec, err, sizeof err),
                     OP_OK);
    assert_int_equal(spec.cores, 256);
    assert_int_equal(spec.memory_mb, 1048576);
    assert_int_equal(spec.cpu_s, 604800LL * 256);
    assert_int_equal(spec.open_files, 8);
    jobspec_clear(&spec);

    /* A failure after the command was copied releases it (checked by LeakSanitizer). */
    expect_error("{\"kind\":\"exec\",\"command\":[\"a\",\"b\"],\"resources\":{\"cores\":0}}",
                 "resources.cores");
}

static void test_inputs_decoded_and_verified(void **state)
{
    const uint8_t bin[] = {0, 1, 2, 0xff, '\n', 0};
    cJSON *inputs = cJSON_CreateArray();
    cJSON_AddItemToArray(inputs, input_item("data.bin", bin, sizeof bin, NULL));
    cJSON_AddItemToArray(inputs, input_item("empty", "", 0, NULL));
    cJSON_AddItemToArray(inputs, input_item("in put .txt", "hello\n", 6, NULL));
    char *text = spec_with_inputs(inputs);
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text(text, &spec, err, sizeof err), OP_OK);
    assert_int_equal(spec.n_inputs, 3);
    assert_string_equal(spec.inputs[0].name, "data.bin");
    assert_int_equal(spec.inputs[0].len, sizeof bin);
    assert_memory_equal(spec.inputs[0].data, bin, sizeof bin);
    char hex[65];
    util_sha256_hex(bin, sizeof bin, hex);
    assert_string_equal(spec.inputs[0].sha256, hex);
    assert_int_equal(spec.inputs[1].len, 0);
    assert_string_equal(spec.inputs[1].sha256,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(spec.inputs[2].name, "in put .txt");
    assert_memory_equal(spec.inputs[2].data, "hello\n", 6);
    jobspec_clear(&spec);
    free(text);
}

static void test_input_errors(void **state)
{
    const char *abc_hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    char text[1024];
#define INPUT_SPEC(items) "{\"kind\":\"exec\",\"command\":[\"cat\"],\"inputs\":" items "}"
    expect_error(INPUT_SPEC("{}"), "inputs: must be an array");
    expect_error(INPUT_SPEC("[{\"sha256\":\"x\",\"data_b64\":\"YWJj\"}]"), "inputs[0].name");
    expect_error(INPUT_SPEC("[7]"), "inputs[0].name");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a/b\",\"sha256\":\"%s\",\"data_b64\":"
                        "\"YWJj\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].name");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\".hidden\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJj\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].name");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"..\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJj\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].name");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJj\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].name");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\\nb\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJj\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].name");
    /* Bad hashes: too short, not matching the bytes, upper case of the right hash. */
    expect_error(INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"abcd\",\"data_b64\":\"YWJj\"}]"),
                 "inputs[0].sha256");
    expect_error(INPUT_SPEC("[{\"name\":\"a\",\"sha256\":7,\"data_b64\":\"YWJj\"}]"),
                 "inputs[0].sha256");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJk\"}]"),
             abc_hash); /* "abd" */
    expect_error(text, "inputs[0].sha256: does not match");
    /* Bad or missing base64. */
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YW!j\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].data_b64: not valid base64");
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\","
                        "\"data_b64\":\"YWJ\"}]"),
             abc_hash);
    expect_error(text, "inputs[0].data_b64");
    snprintf(text, sizeof text, INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\"}]"), abc_hash);
    expect_error(text, "inputs[0].data_b64: missing");
    /* Duplicate names: the second one is named. */
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\",\"data_b64\":\"YWJj\"},"
                        "{\"name\":\"a\",\"sha256\":\"%s\",\"data_b64\":\"YWJj\"}]"),
             abc_hash, abc_hash);
    expect_error(text, "inputs[1].name: 'a' appears twice");
    /* A later failure releases the decoded bytes of earlier inputs (LeakSanitizer). */
    snprintf(text, sizeof text,
             INPUT_SPEC("[{\"name\":\"a\",\"sha256\":\"%s\",\"data_b64\":\"YWJj\"},"
                        "{\"name\":\"b\",\"sha256\":\"%s\",\"data_b64\":\"YWJk\"}]"),
             abc_hash, abc_hash);
    expect_error(text, "inputs[1].sha256: does not match");
#undef INPUT_SPEC
}

static void test_too_many_inputs(void **state)
{
    cJSON *inputs = cJSON_CreateArray();
    for (int i = 0; i < 17; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        cJSON_AddItemToArray(inputs, input_item(name, "x", 1, NULL));
    }
    char *text = spec_with_inputs(inputs);
    expect_error(text, "inputs: must be an array of at most 16");
    free(text);
}

static void test_inputs_total_size(void **state)
{
    size_t max = JOBSPEC_MAX_INPUT_BYTES;
    uint8_t *bytes = malloc(max + 1);
    assert_non_null(bytes);
    for (size_t i = 0; i <= max; i++)
        bytes[i] = (uint8_t)(i * 31);

    /* Exactly the bound in one input: accepted. */
    cJSON *inputs = cJSON_CreateArray();
    cJSON_AddItemToArray(inputs, input_item("big", bytes, max, NULL));
    char *text = spec_with_inputs(inputs);
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text(text, &spec, err, sizeof err), OP_OK);
    assert_int_equal(spec.inputs[0].len, max);
    jobspec_clear(&spec);
    free(text);

    /* One byte more: too big. */
    inputs = cJSON_CreateArray();
    cJSON_AddItemToArray(inputs, input_item("big", bytes, max + 1, NULL));
    text = spec_with_inputs(inputs);
    expect_error_rc(text, OP_ETOOBIG, "inputs: more than 4194304 bytes");
    free(text);

    /* Two inputs that fit alone but not together. */
    inputs = cJSON_CreateArray();
    cJSON_AddItemToArray(inputs, input_item("one", bytes, max / 2 + 1, NULL));
    cJSON_AddItemToArray(inputs, input_item("two", bytes, max / 2 + 1, NULL));
    text = spec_with_inputs(inputs);
    expect_error_rc(text, OP_ETOOBIG, "inputs: more than");
    free(text);
    free(bytes);
}

static void test_spec_text_too_big(void **state)
{
    size_t len = (size_t)JOBSPEC_MAX_INPUT_BYTES * 2 + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, ' ', len);
    jobspec spec;
    char err[256];
    assert_int_equal(jobspec_parse(text, len, &spec, err, sizeof err), OP_ETOOBIG);
    assert_non_null(strstr(err, "larger than"));
    free(text);
}

static void test_outputs(void **state)
{
    expect_error("{\"kind\":\"noop\",\"outputs\":[\"../x\"]}", "outputs[0]: must be a plain file");
    expect_error("{\"kind\":\"noop\",\"outputs\":[\"ok\",\"a/b\"]}", "outputs[1]");
    expect_error("{\"kind\":\"noop\",\"outputs\":[\".hidden\"]}", "outputs[0]");
    expect_error("{\"kind\":\"noop\",\"outputs\":[\"\"]}", "outputs[0]");
    expect_error("{\"kind\":\"noop\",\"outputs\":[1]}", "outputs[0]: must be a string");
    expect_error("{\"kind\":\"noop\",\"outputs\":\"out\"}", "outputs: must be an array");
    char text[2048];
    char name[129];
    memset(name, 'o', 128);
    name[128] = '\0';
    snprintf(text, sizeof text, "{\"kind\":\"noop\",\"outputs\":[\"%s\"]}", name);
    expect_error(text, "outputs[0]");
    size_t len = (size_t)snprintf(text, sizeof text, "{\"kind\":\"noop\",\"outputs\":[\"o0\"");
    for (int i = 1; i < 17; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ",\"o%d\"", i);
    snprintf(text + len, sizeof text - len, "]}");
    expect_error(text, "outputs: must be an array of at most 16");
}

static void test_site_classes(void **state)
{
    expect_error("{\"kind\":\"noop\",\"site_classes\":[\"truck\"]}",
                 "site_classes: 'truck' is not a class");
    expect_error("{\"kind\":\"noop\",\"site_classes\":[\"pod\",\"Car\"]}", "site_classes");
    expect_error("{\"kind\":\"noop\",\"site_classes\":[]}", "site_classes: must name at least");
    expect_error("{\"kind\":\"noop\",\"site_classes\":\"pod\"}", "site_classes");
    expect_error("{\"kind\":\"noop\",\"site_classes\":[1]}", "site_classes[0]");
    expect_error("{\"kind\":\"noop\",\"site_classes\":[\"pod\",\"car\",\"dc\",\"pod\"]}",
                 "site_classes");
    jobspec spec;
    char err[256];
    assert_int_equal(
        parse_text("{\"kind\":\"noop\",\"site_classes\":[\"car\"]}", &spec, err, sizeof err),
        OP_OK);
    assert_int_equal(spec.class_mask, CLASS_CAR);
    jobspec_clear(&spec);
}

static void test_data_class_and_origin(void **state)
{
    expect_error("{\"kind\":\"noop\",\"data_class\":\"site-private\"}", "origin: required");
    expect_error("{\"kind\":\"noop\",\"data_class\":\"secret\"}", "data_class: must be");
    expect_error("{\"kind\":\"noop\",\"data_class\":1}", "data_class: must be");
    expect_error("{\"kind\":\"noop\",\"data_class\":\"site-private\",\"origin\":\"a/b\"}",
                 "origin: must be a site id");
    expect_error("{\"kind\":\"noop\",\"origin\":\"\"}", "origin: must be a site id");
    expect_error("{\"kind\":\"noop\",\"origin\":5}", "origin: must be a site id");
    /* An origin without site-private data is allowed (informational). */
    jobspec spec;
    char err[256];
    assert_int_equal(parse_text("{\"kind\":\"noop\",\"origin\":\"s1\"}", &spec, err, sizeof err),
                     OP_OK);
    assert_string_equal(spec.origin, "s1");
    assert_int_equal(spec.data_class, DATA_PUBLIC);
    jobspec_clear(&spec);
}

static void test_attempts_and_deterministic(void **state)
{
    expect_error("{\"kind\":\"noop\",\"deterministic\":\"yes\"}", "deterministic: must be true");
    expect_error("{\"kind\":\"noop\",\"deterministic\":1}", "deterministic");
    expect_error("{\"kind\":\"noop\",\"deterministic\":null}", "deterministic");
    expect_error("{\"kind\":\"noop\",\"max_attempts\":0}", "max_attempts: must be an integer");
    expect_error("{\"kind\":\"noop\",\"max_attempts\":101}", "max_attempts");
    expect_error("{\"kind\":\"noop\",\"max_attempts\":true}", "max_attempts");
}

static void test_name_helpers(void **state)
{
    assert_int_equal(jobspec_class_bit("pod"), CLASS_POD);
    assert_int_equal(jobspec_class_bit("car"), CLASS_CAR);
    assert_int_equal(jobspec_class_bit("dc"), CLASS_DC);
    assert_int_equal(jobspec_class_bit("DC"), 0);
    assert_int_equal(jobspec_class_bit(NULL), 0);
    assert_string_equal(jobspec_class_name(CLASS_POD), "pod");
    assert_string_equal(jobspec_class_name(CLASS_CAR), "car");
    assert_string_equal(jobspec_class_name(CLASS_DC), "dc");
    assert_string_equal(jobspec_class_name(CLASS_ALL), "?");
    assert_string_equal(jobspec_kind_name(JOB_KIND_EXEC), "exec");
    assert_string_equal(jobspec_kind_name(JOB_KIND_NOOP), "noop");
    assert_string_equal(jobspec_kind_name(0), "?");
    assert_string_equal(jobspec_data_class_name(DATA_PUBLIC), "public");
    assert_string_equal(jobspec_data_class_name(DATA_CONFIDENTIAL), "confidential");
    assert_string_equal(jobspec_data_class_name(DATA_SITE_PRIVATE), "site-private");
    assert_string_equal(jobspec_data_class_name(9), "?");
}

/* cJSON would cut "tr\u0000ue" to "tr": any string with an escaped NUL is refused. */
static void test_nul_in_strings_refused(void **state)
{
    (void)state;
    expect_error_rc("{\"kind\":\"exec\",\"command\":[\"tr\\u0000ue\"]}", OP_EINVAL,
                    "a string holds a NUL character (\\u0000) at byte 29");
    expect_error_rc("{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"x\\u0000\"]}", OP_EINVAL,
                    "NUL character");
    expect_error_rc("{\"kind\":\"noop\",\"name\":\"a\\u0000b\"}", OP_EINVAL, "NUL character");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_exec_defaults),
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_learn),
        cmocka_unit_test(test_full_spec),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_not_json_or_not_object),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_inputs_decoded_and_verified),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_too_many_inputs),
        cmocka_unit_test(test_inputs_total_size),
        cmocka_unit_test(test_spec_text_too_big),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_site_classes),
        cmocka_unit_test(test_data_class_and_origin),
        cmocka_unit_test(test_attempts_and_deterministic),
        cmocka_unit_test(test_name_helpers),
        cmocka_unit_test(test_nul_in_strings_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
