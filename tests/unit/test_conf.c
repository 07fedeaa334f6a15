/*
 * Unit tests for conf: "key = value" parsing, comments and blank lines,
 * errors that name the file and line, typed getters and their defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/conf.h"
#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "helpers/testkit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const allowed[] = {"hub_id", "broker", "port", "headroom_watts", "label", NULL};

static void test_valid_file(void **state)
{
    const char *text = "# hub configuration\n"
                       "\n"
                       "hub_id = hub-1\n"
                       "   # indented comment\n"
                       "broker=mqtt://localhost:1883  \n"
                       "\t\n"
                       "  port   =   8883\n"
                       "label = a value = with equals and # hash\n"
                       "headroom_watts = 1500.5"; /* no trailing newline */
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse(text, "hub.conf", allowed, &c, err, sizeof err), OP_OK);
    assert_non_null(c);
    assert_string_equal(conf_str(c, "hub_id", NULL), "hub-1");
    assert_string_equal(conf_str(c, "broker", NULL), "mqtt://localhost:1883");
    assert_string_equal(conf_str(c, "port", NULL), "8883");
    assert_string_equal(conf_str(c, "label", NULL), "a value = with equals and # hash");
    int64_t port = 0;
    assert_int_equal(conf_int(c, "port", 1883, 1, 65535, &port, err, sizeof err), OP_OK);
    assert_int_equal(port, 8883);
    double watts = 0;
    assert_int_equal(conf_double(c, "headroom_watts", 0, 0, 1e6, &watts, err, sizeof err), OP_OK);
    assert_true(watts == 1500.5);
    conf_free(c);
}

static void test_empty_text(void **state)
{
    conf *c = NULL;
    char err[128] = "";
    assert_int_equal(conf_parse("", "empty.conf", allowed, &c, err, sizeof err), OP_OK);
    assert_null(conf_str(c, "hub_id", NULL));
    conf_free(c);
    assert_int_equal(conf_parse("\n\n# only comments\n", "c.conf", allowed, &c, err, sizeof err),
                     OP_OK);
    assert_string_equal(conf_str(c, "hub_id", "dflt"), "dflt");
    conf_free(c);
}

static void test_unknown_key(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    const char *text = "hub_id = x\n# comment\n\nbrokr = mqtt://x\n";
    assert_int_equal(conf_parse(text, "site.conf", allowed, &c, err, sizeof err), OP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "site.conf:4: unknown key"));
    assert_non_null(strstr(err, "brokr"));
}

static void test_unknown_key_with_no_allowed_list(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse("a = 1\n", "x.conf", NULL, &c, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "x.conf:1: unknown key 'a'"));
}

static void test_duplicate_key(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    const char *text = "port = 1\nhub_id = h\nport = 2\n";
    assert_int_equal(conf_parse(text, "dup.conf", allowed, &c, err, sizeof err), OP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "dup.conf:3:"));
    assert_non_null(strstr(err, "port"));
    assert_non_null(strstr(err, "twice"));
}

static void test_missing_equals(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    const char *text = "hub_id = h\nport 1883\n";
    assert_int_equal(conf_parse(text, "eq.conf", allowed, &c, err, sizeof err), OP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "eq.conf:2:"));
    assert_non_null(strstr(err, "key = value"));
}

static void test_empty_key(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse(" = value\n", "k.conf", allowed, &c, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "k.conf:1: unknown key"));
}

static void test_empty_value_is_kept(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse("label =\n", "v.conf", allowed, &c, err, sizeof err), OP_OK);
    assert_string_equal(conf_str(c, "label", "dflt"), "");
    int64_t v = 5;
    assert_int_equal(conf_int(c, "label", 7, 0, 10, &v, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "v.conf:1:"));
    conf_free(c);
}

static void test_int_out_of_range(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    const char *text = "hub_id = h\n\nport = 70000\nlabel = 12x\n";
    assert_int_equal(conf_parse(text, "r.conf", allowed, &c, err, sizeof err), OP_OK);
    int64_t v = -1;
    assert_int_equal(conf_int(c, "port", 1883, 1, 65535, &v, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "r.conf:3:"));
    assert_non_null(strstr(err, "port"));
    assert_non_null(strstr(err, "1 to 65535"));
    assert_non_null(strstr(err, "70000"));
    assert_int_equal(conf_int(c, "label", 0, 0, 100, &v, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "r.conf:4:"));
    assert_non_null(strstr(err, "12x"));
    double d = 0;
    assert_int_equal(conf_double(c, "port", 0, 0, 100, &d, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "r.conf:3:"));
    assert_int_equal(conf_double(c, "hub_id", 0, 0, 100, &d, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "r.conf:1:"));
    conf_free(c);
}

static void test_defaults_when_absent(void **state)
{
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse("hub_id = h\n", "d.conf", allowed, &c, err, sizeof err), OP_OK);
    int64_t port = 0;
    assert_int_equal(conf_int(c, "port", 1883, 1, 65535, &port, err, sizeof err), OP_OK);
    assert_int_equal(port, 1883);
    double watts = 0;
    assert_int_equal(conf_double(c, "headroom_watts", 2.5, 0, 10, &watts, err, sizeof err), OP_OK);
    assert_true(watts == 2.5);
    assert_string_equal(conf_str(c, "broker", "mqtt://default"), "mqtt://default");
    assert_null(conf_str(c, "broker", NULL));
    conf_free(c);

    /* conf_empty and a NULL conf both give defaults. */
    conf *empty = conf_empty();
    assert_non_null(empty);
    assert_string_equal(conf_str(empty, "hub_id", "d"), "d");
    assert_int_equal(conf_int(empty, "port", 42, 1, 65535, &port, err, sizeof err), OP_OK);
    assert_int_equal(port, 42);
    conf_free(empty);
    assert_string_equal(conf_str(NULL, "hub_id", "n"), "n");
    assert_int_equal(conf_int(NULL, "port", 43, 1, 65535, &port, err, sizeof err), OP_OK);
    assert_int_equal(port, 43);
    conf_free(NULL);
}

static void test_too_large(void **state)
{
    size_t size = 64 * 1024 + 16;
    char *text = malloc(size + 1);
    assert_non_null(text);
    memset(text, '#', size);
    text[size] = '\0';
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse(text, "big.conf", allowed, &c, err, sizeof err), OP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "big.conf"));
    free(text);
}

static void test_too_many_keys(void **state)
{
    /* 200 distinct allowed keys, more than the 128-entry bound. */
    enum { N = 200 };
    static char names[N][16];
    const char *keys[N + 1];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        keys[i] = names[i];
    }
    keys[N] = NULL;
    size_t cap = N * 24;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d = %d\n", i, i);
    conf *c = NULL;
    char err[256] = "";
    assert_int_equal(conf_parse(text, "many.conf", keys, &c, err, sizeof err), OP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "many.conf:129: too many keys"));
    free(text);
}

static void test_load_file(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    testkit_path(path, sizeof path, dir, "site.conf");
    conf *c = NULL;
    char err[512] = "";
    assert_int_equal(conf_load(path, allowed, &c, err, sizeof err), OP_ENOTFOUND);
    assert_null(c);
    assert_non_null(strstr(err, "site.conf"));

    const char *text = "hub_id = h7\nbogus = 1\n";
    assert_int_equal(os_write_file_atomic(path, text, strlen(text), 0600), OP_OK);
    assert_int_equal(conf_load(path, allowed, &c, err, sizeof err), OP_EINVAL);
    char expect[PATH_MAX + 32];
    snprintf(expect, sizeof expect, "%s:2: unknown key", path);
    assert_non_null(strstr(err, expect));

    text = "hub_id = h7\n";
    assert_int_equal(os_write_file_atomic(path, text, strlen(text), 0600), OP_OK);
    assert_int_equal(conf_load(path, allowed, &c, err, sizeof err), OP_OK);
    assert_string_equal(conf_str(c, "hub_id", NULL), "h7");
    conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_key_with_no_allowed_list),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_missing_equals),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_empty_value_is_kept),
        cmocka_unit_test(test_int_out_of_range),
        cmocka_unit_test(test_defaults_when_absent),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_many_keys),
        cmocka_unit_test_setup_teardown(test_load_file, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
