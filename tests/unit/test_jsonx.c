/*
 * Unit tests for jsonx, the strict accessors over cJSON that every message
 * from outside goes through: integers inside their bounds and nothing else
 * (fractions, non-finite numbers, the wrong type, an absent field each have
 * their code, and the output is left alone on failure, which callers rely
 * on for defaults), finite numbers, strings, and integers written as JSON
 * numbers that read back exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/err.h"
#include "base/jsonx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNTOUCHED 4242
#define TWO_POW_52 4503599627370496LL
#define TWO_POW_53 9007199254740992LL

static cJSON *parse(const char *text)
{
    cJSON *obj = cJSON_Parse(text);
    if (!obj) fail_msg("test input is not JSON: %s", text);
    return obj;
}

/* jsonx_int on {"v": <literal>} with the bounds; *out starts as UNTOUCHED. */
static int int_of(const char *literal, int64_t min, int64_t max, int64_t *out)
{
    char text[128];
    snprintf(text, sizeof text, "{\"v\": %s}", literal);
    cJSON *obj = parse(text);
    *out = UNTOUCHED;
    int rc = jsonx_int(obj, "v", min, max, out);
    cJSON_Delete(obj);
    return rc;
}

static void expect_int(const char *literal, int64_t min, int64_t max, int64_t want)
{
    int64_t got;
    assert_int_equal(int_of(literal, min, max, &got), OP_OK);
    assert_int_equal(got, want);
}

/* Refused with OP_EINVAL, and the caller's value left as it was. */
static void expect_int_refused(const char *literal, int64_t min, int64_t max)
{
    int64_t got;
    int rc = int_of(literal, min, max, &got);
    if (rc != OP_EINVAL)
        fail_msg("%s in [%lld, %lld]: rc %d", literal, (long long)min, (long long)max, rc);
    assert_int_equal(got, UNTOUCHED);
}

static void test_int_inside_bounds(void **state)
{
    (void)state;
    expect_int("5", 0, 10, 5);
    expect_int("0", 0, 10, 0);   /* at min */
    expect_int("10", 0, 10, 10); /* at max */
    expect_int("-10", -10, -1, -10);
    expect_int("7", 7, 7, 7); /* a range of one */
    expect_int("-0", 0, 0, 0);
    expect_int("1e3", 0, 1000, 1000); /* an exponent that makes an integer */
    expect_int("2.0", 0, 10, 2);      /* integral value written as a fraction */
    expect_int("-2147483649", INT64_MIN, 0, -2147483649LL); /* past 32 bits */
    expect_int("9007199254740992", 0, TWO_POW_53, TWO_POW_53);
    expect_int("-9007199254740992", -TWO_POW_53, 0, -TWO_POW_53);
    expect_int("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
}

static void test_int_outside_bounds(void **state)
{
    (void)state;
    expect_int_refused("-1", 0, 10);
    expect_int_refused("11", 0, 10);
    expect_int_refused("0", -10, -1);
    expect_int_refused("8", 7, 7);
    expect_int_refused("6", 7, 7);
    expect_int_refused("1e3", 0, 999);
    expect_int_refused("65536", 1, 65535);
    expect_int_refused("9007199254740994", 0, TWO_POW_53);
}

static void test_int_refuses_fractions_and_non_finite(void **state)
{
    (void)state;
    expect_int_refused("1.5", 0, 10);
    expect_int_refused("-0.5", -10, 10);
    expect_int_refused("0.000001", 0, 10);
    expect_int_refused("1e400", INT64_MIN, INT64_MAX);  /* cJSON reads it as +inf */
    expect_int_refused("-1e400", INT64_MIN, INT64_MAX); /* -inf */
    expect_int_refused("1e300", INT64_MIN, INT64_MAX);  /* finite, far past int64 */
    /* NaN and infinities cannot be written in JSON text, but a built object can hold them. */
    const double odd[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cJSON *obj = cJSON_CreateObject();
        assert_non_null(cJSON_AddNumberToObject(obj, "v", odd[i]));
        int64_t got = UNTOUCHED;
        assert_int_equal(jsonx_int(obj, "v", INT64_MIN, INT64_MAX, &got), OP_EINVAL);
        assert_int_equal(got, UNTOUCHED);
        cJSON_Delete(obj);
    }
}

static void test_int_refuses_other_types(void **state)
{
    (void)state;
    const char *const others[] = {"\"5\"", "\"\"", "true", "false", "null", "[5]", "{\"v\":5}"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        expect_int_refused(others[i], INT64_MIN, INT64_MAX);
}

static void test_absent_field(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"V\": 1, \"inner\": {\"v\": 2}, \"v \": 3}");
    int64_t i = UNTOUCHED;
    double d = UNTOUCHED;
    /* keys match exactly: another case, a nested field or a padded name is not the field */
    assert_int_equal(jsonx_int(obj, "v", INT64_MIN, INT64_MAX, &i), OP_ENOTFOUND);
    assert_int_equal(jsonx_num(obj, "v", &d), OP_ENOTFOUND);
    assert_null(jsonx_str(obj, "v"));
    assert_int_equal(i, UNTOUCHED);
    assert_true(d == UNTOUCHED);
    /* not an object at all */
    cJSON *array = parse("[1, 2]");
    assert_int_equal(jsonx_int(array, "v", 0, 10, &i), OP_ENOTFOUND);
    assert_int_equal(jsonx_num(array, "v", &d), OP_ENOTFOUND);
    assert_null(jsonx_str(array, "v"));
    assert_int_equal(jsonx_int(NULL, "v", 0, 10, &i), OP_ENOTFOUND);
    assert_int_equal(jsonx_num(NULL, "v", &d), OP_ENOTFOUND);
    assert_null(jsonx_str(NULL, "v"));
    assert_int_equal(i, UNTOUCHED);
    cJSON_Delete(array);
    cJSON_Delete(obj);
}

/*
 * A max that a double cannot hold (INT64_MAX, INT64_MAX / 2: the hub reads
 * job ids and times from sites with them) must not let through the next
 * power of two: 2^63 converted to int64_t is undefined, and 2^62 is above
 * INT64_MAX / 2.
 */
static void test_int_bounds_that_a_double_cannot_hold(void **state)
{
    (void)state;
    expect_int_refused("9223372036854775808", INT64_MIN, INT64_MAX);
    expect_int_refused("9223372036854775807", 1, INT64_MAX); /* read as 2^63 */
    expect_int_refused("4611686018427387904", 0, INT64_MAX / 2);
}

static void test_num(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"half\": 0.5, \"neg\": -3, \"big\": 1e300, \"tiny\": -1e-300, "
                       "\"zero\": -0, \"inf\": 1e400, \"s\": \"1\", \"b\": true, \"n\": null, "
                       "\"a\": [1], \"o\": {}}");
    double d = UNTOUCHED;
    assert_int_equal(jsonx_num(obj, "half", &d), OP_OK);
    assert_true(d == 0.5);
    assert_int_equal(jsonx_num(obj, "neg", &d), OP_OK);
    assert_true(d == -3);
    assert_int_equal(jsonx_num(obj, "big", &d), OP_OK);
    assert_true(d == 1e300);
    assert_int_equal(jsonx_num(obj, "tiny", &d), OP_OK);
    assert_true(d == -1e-300);
    assert_int_equal(jsonx_num(obj, "zero", &d), OP_OK);
    assert_true(d == 0);
    const char *const refused[] = {"inf", "s", "b", "n", "a", "o"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        d = UNTOUCHED;
        if (jsonx_num(obj, refused[i], &d) != OP_EINVAL) fail_msg("%s accepted", refused[i]);
        assert_true(d == UNTOUCHED);
    }
    assert_int_equal(jsonx_num(obj, "missing", &d), OP_ENOTFOUND);
    assert_true(d == UNTOUCHED);
    cJSON_Delete(obj);

    const double odd[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cJSON *built = cJSON_CreateObject();
        assert_non_null(cJSON_AddNumberToObject(built, "v", odd[i]));
        d = UNTOUCHED;
        assert_int_equal(jsonx_num(built, "v", &d), OP_EINVAL);
        assert_true(d == UNTOUCHED);
        cJSON_Delete(built);
    }
}

static void test_str(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"name\": \"dc-1\", \"empty\": \"\", \"num\": 1, \"null\": null, "
                       "\"bool\": false, \"list\": [\"x\"], \"obj\": {\"name\": \"inner\"}, "
                       "\"utf8\": \"caf\\u00e9\"}");
    const char *name = jsonx_str(obj, "name");
    assert_string_equal(name, "dc-1");
    /* it points into obj: no copy to free */
    assert_ptr_equal(name, cJSON_GetObjectItemCaseSensitive(obj, "name")->valuestring);
    assert_string_equal(jsonx_str(obj, "empty"), ""); /* empty, not absent */
    assert_string_equal(jsonx_str(obj, "utf8"), "caf\xc3\xa9");
    const char *const not_strings[] = {"num", "null", "bool", "list", "obj", "missing", "Name"};
    for (size_t i = 0; i < sizeof not_strings / sizeof not_strings[0]; i++)
        if (jsonx_str(obj, not_strings[i])) fail_msg("%s read as a string", not_strings[i]);
    cJSON_Delete(obj);
}

/* jsonx_add_int, printed to text and read back with jsonx_int. */
static int64_t round_trip(int64_t value)
{
    cJSON *obj = cJSON_CreateObject();
    assert_non_null(obj);
    jsonx_add_int(obj, "v", value);
    char *text = cJSON_PrintUnformatted(obj);
    assert_non_null(text);
    cJSON *back = parse(text);
    int64_t got = 0;
    int rc = jsonx_int(back, "v", -TWO_POW_53, TWO_POW_53, &got);
    if (rc != OP_OK || got != value)
        fail_msg("%lld written as %s, read back as %lld (rc %d)", (long long)value, text,
                 (long long)got, rc);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(obj);
    return got;
}

static void test_add_int_round_trips(void **state)
{
    (void)state;
    /* around every power of two up to 2^52, both signs */
    for (int k = 0; k <= 52; k++)
        for (int64_t delta = -1; delta <= 1; delta++) {
            int64_t v = ((int64_t)1 << k) + delta;
            round_trip(v);
            round_trip(-v);
        }
    /* values from the wire: a millisecond clock, a microsecond sequence number */
    round_trip(1767225600000LL);
    round_trip(1767225600000123LL);
    /* a spread of values below 2^52 (a fixed xorshift sequence) */
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < 5000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        round_trip((int64_t)(s % (uint64_t)TWO_POW_52));
    }
}

/*
 * Exact integers up to 2^53 and beyond: cJSON 1.7 prints with 15
 * significant digits whenever the result reads back within a relative
 * DBL_EPSILON, which above 2^52 is more than 1 (about one value in ten
 * between 2^52 and 2^53 would come back off by one or two).
 */
static void test_add_int_exact_up_to_2_53(void **state)
{
    (void)state;
    round_trip(4503851499569531LL);
    round_trip(TWO_POW_53 - 1);
    round_trip(TWO_POW_53);
    round_trip(-TWO_POW_53);
}

/* A large integer added and read back from the same object, before any printing. */
static void test_add_int_reads_back_in_memory(void **state)
{
    (void)state;
    cJSON *obj = cJSON_CreateObject();
    assert_non_null(obj);
    jsonx_add_int(obj, "big", TWO_POW_53 + 1);
    jsonx_add_int(obj, "small", 42);
    int64_t got = 0;
    assert_int_equal(jsonx_int(obj, "big", 0, INT64_MAX, &got), OP_OK);
    assert_true(got == TWO_POW_53 + 1);
    assert_int_equal(jsonx_int(obj, "big", 0, TWO_POW_53, &got), OP_EINVAL);
    assert_int_equal(jsonx_int(obj, "small", 0, 100, &got), OP_OK);
    assert_int_equal(got, 42);
    cJSON_Delete(obj);
}

/* A NUL in a string, escaped or raw, is found wherever it is; escaped backslashes are not. */
static void test_check_nul(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int rc;
        size_t at;
    } cases[] = {
        {"{\"command\":[\"tr\\u0000ue\"]}", 0, OP_EINVAL, 15},
        {"{\"a\":\"\\u0000\"}", 0, OP_EINVAL, 6},
        {"{\"k\\u0000\":1}", 0, OP_EINVAL, 3},
        {"{\"a\":\"x\\\\u0000\"}", 0, OP_OK, 0},      /* "x\\u0000": a backslash, then text */
        {"{\"a\":\"\\\\\\u0000\"}", 0, OP_EINVAL, 8}, /* "\\\u0000": a backslash, then NUL */
        {"{\"a\":\"\\u0001 \\u00000\"}", 0, OP_EINVAL, 13},
        {"{\"a\":\"\\u000\"}", 0, OP_OK, 0}, /* too short: cJSON refuses it itself */
        {"{\"a\":\"fine \\\" \\n\"}", 0, OP_OK, 0},
        {"{\"a\":\"x\0y\"}", 11, OP_EINVAL, 7},
        {"{\"a\":1}\0", 8, OP_EINVAL, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        size_t at = 999;
        int rc = jsonx_check_nul(cases[i].text, len, &at);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, expected %d", i, rc, cases[i].rc);
        if (rc != OP_OK) assert_int_equal(at, cases[i].at);
    }
    assert_int_equal(jsonx_check_nul("", 0, NULL), OP_OK);
}

static void test_parse_refuses_nul_and_bad_json(void **state)
{
    (void)state;
    char err[128];
    const char *nul = "{\"command\":[\"tr\\u0000ue\"]}";
    assert_null(jsonx_parse(nul, strlen(nul), err, sizeof err));
    assert_string_equal(err, "a string holds a NUL character (\\u0000) at byte 15");
    assert_null(jsonx_parse("{\"a\":", 5, err, sizeof err));
    assert_non_null(strstr(err, "not valid JSON"));
    cJSON *ok = jsonx_parse("{\"a\":\"b\"}", 9, err, sizeof err);
    assert_non_null(ok);
    assert_string_equal(jsonx_str(ok, "a"), "b");
    cJSON_Delete(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_inside_bounds),
        cmocka_unit_test(test_int_outside_bounds),
        cmocka_unit_test(test_int_refuses_fractions_and_non_finite),
        cmocka_unit_test(test_int_refuses_other_types),
        cmocka_unit_test(test_absent_field),
        cmocka_unit_test(test_int_bounds_that_a_double_cannot_hold),
        cmocka_unit_test(test_num),
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_add_int_round_trips),
        cmocka_unit_test(test_add_int_exact_up_to_2_53),
        cmocka_unit_test(test_add_int_reads_back_in_memory),
        cmocka_unit_test(test_check_nul),
        cmocka_unit_test(test_parse_refuses_nul_and_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
