/*
 * Unit tests of the output hash (src/core/outhash.c): the same outputs in
 * another order give the same hash; any byte changed in stdout, stderr or
 * an output file, the exit code or the signal, an output's name or a
 * missing output give another; wall time, CPU, memory, energy, receipts,
 * the site and the attempt do not count; malformed outputs (a stated hash
 * that is not the data's, no data, bad base64, a name twice) are refused.
 */
#include "base/err.h"
#include "base/util.h"
#include "core/outhash.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An output entry as a site sends it: name, sha256 of data, size, data_b64. */
static cJSON *output(const char *name, const char *data)
{
    cJSON *o = cJSON_CreateObject();
    char hash[65];
    util_sha256_hex(data, strlen(data), hash);
    char *b64 = util_b64_encode(data, strlen(data));
    assert_non_null(b64);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "sha256", hash);
    cJSON_AddNumberToObject(o, "size", (double)strlen(data));
    cJSON_AddStringToObject(o, "data_b64", b64);
    free(b64);
    return o;
}

/* A result like a site's: exit 0, two outputs in the given order, figures that vary. */
static cJSON *result(int swapped)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "job", 7);
    cJSON_AddNumberToObject(r, "attempt", 1);
    cJSON_AddStringToObject(r, "site", "car-1");
    cJSON_AddStringToObject(r, "kind", "exec");
    cJSON_AddNumberToObject(r, "exit_code", 0);
    cJSON_AddNumberToObject(r, "term_signal", 0);
    cJSON_AddNumberToObject(r, "cpu_seconds", 1.25);
    cJSON_AddNumberToObject(r, "peak_rss_bytes", 1 << 20);
    cJSON_AddNumberToObject(r, "wall_ms", 1300);
    cJSON_AddNumberToObject(r, "energy_joules", 37.5);
    cJSON_AddStringToObject(r, "stdout", "real answer 7\n");
    cJSON_AddStringToObject(r, "stderr", "");
    cJSON_AddFalseToObject(r, "stdout_truncated");
    cJSON *outs = cJSON_AddArrayToObject(r, "outputs");
    cJSON_AddItemToArray(outs, output(swapped ? "b.txt" : "a.txt", swapped ? "bee" : "ay"));
    cJSON_AddItemToArray(outs, output(swapped ? "a.txt" : "b.txt", swapped ? "ay" : "bee"));
    cJSON *missing = cJSON_AddArrayToObject(r, "missing_outputs");
    cJSON_AddItemToArray(missing, cJSON_CreateString(swapped ? "z.bin" : "y.bin"));
    cJSON_AddItemToArray(missing, cJSON_CreateString(swapped ? "y.bin" : "z.bin"));
    return r;
}

static void hash_of(const cJSON *r, char hex[65])
{
    assert_int_equal(outhash_result(r, hex), OP_OK);
    assert_int_equal(strlen(hex), 64);
}

static void test_order_does_not_matter(void **state)
{
    cJSON *a = result(0), *b = result(1);
    char ha[65], hb[65];
    hash_of(a, ha);
    hash_of(b, hb);
    assert_string_equal(ha, hb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_figures_do_not_matter(void **state)
{
    cJSON *a = result(0), *b = result(0);
    char ha[65], hb[65];
    hash_of(a, ha);
    static const char *keys[] = {"cpu_seconds",   "peak_rss_bytes", "wall_ms",
                                 "energy_joules", "attempt",        "job"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cJSON_ReplaceItemInObjectCaseSensitive(b, keys[i], cJSON_CreateNumber(999999));
    cJSON_ReplaceItemInObjectCaseSensitive(b, "site", cJSON_CreateString("car-2"));
    cJSON_AddStringToObject(b, "receipt", "anything");
    cJSON_ReplaceItemInObjectCaseSensitive(b, "stdout_truncated", cJSON_CreateTrue());
    hash_of(b, hb);
    assert_string_equal(ha, hb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Flips one bit of byte i of the string item key in r. */
static void flip_text(cJSON *r, const char *key, size_t i)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(r, key);
    char *copy = strdup(item->valuestring);
    copy[i] ^= 0x01;
    cJSON_ReplaceItemInObjectCaseSensitive(r, key, cJSON_CreateString(copy));
    free(copy);
}

static void test_any_stdout_byte_matters(void **state)
{
    char base[65];
    cJSON *r = result(0);
    hash_of(r, base);
    size_t len = strlen(cJSON_GetObjectItemCaseSensitive(r, "stdout")->valuestring);
    cJSON_Delete(r);
    for (size_t i = 0; i < len; i++) {
        r = result(0);
        flip_text(r, "stdout", i);
        char h[65];
        hash_of(r, h);
        assert_string_not_equal(h, base);
        cJSON_Delete(r);
    }
    /* the same text moved from stdout to stderr is another result */
    r = result(0);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "stderr", cJSON_CreateString("real answer 7\n"));
    cJSON_ReplaceItemInObjectCaseSensitive(r, "stdout", cJSON_CreateString(""));
    char h[65];
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_Delete(r);
}

/* Output idx of r replaced by one named name with data (its stated hash matching). */
static void set_output(cJSON *r, int idx, const char *name, const char *data)
{
    cJSON_ReplaceItemInArray(cJSON_GetObjectItemCaseSensitive(r, "outputs"), idx,
                             output(name, data));
}

static void test_any_output_byte_and_name_matter(void **state)
{
    char base[65], h[65];
    cJSON *r = result(0);
    hash_of(r, base);
    cJSON_Delete(r);
    const char *bee = "bee";
    for (size_t i = 0; i < strlen(bee); i++) {
        char changed[4];
        snprintf(changed, sizeof changed, "%s", bee);
        changed[i] ^= 0x01;
        r = result(0);
        set_output(r, 1, "b.txt", changed);
        hash_of(r, h);
        assert_string_not_equal(h, base);
        cJSON_Delete(r);
    }
    r = result(0);
    set_output(r, 1, "c.txt", "bee"); /* same data, another name */
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_Delete(r);
    r = result(0);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(r, "outputs"), 1);
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_Delete(r);
    /* an output that went missing is not the same as one that was produced */
    r = result(0);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(r, "missing_outputs"), 1);
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_Delete(r);
}

static void test_exit_code_and_signal_matter(void **state)
{
    char base[65], h[65];
    cJSON *r = result(0);
    hash_of(r, base);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "exit_code", cJSON_CreateNumber(3));
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "exit_code", cJSON_CreateNumber(0));
    cJSON_ReplaceItemInObjectCaseSensitive(r, "term_signal", cJSON_CreateNumber(9));
    hash_of(r, h);
    assert_string_not_equal(h, base);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "term_signal", cJSON_CreateNumber(0));
    hash_of(r, h);
    assert_string_equal(h, base);
    cJSON_Delete(r);
}

/* A forged output: the data changed and its stated hash kept, or no data, or not base64. */
static void test_malformed_outputs_refused(void **state)
{
    char h[65];
    cJSON *r = result(0);
    cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "outputs"), 0);
    char *b64 = util_b64_encode("forged", 6);
    cJSON_ReplaceItemInObjectCaseSensitive(out, "data_b64", cJSON_CreateString(b64));
    free(b64);
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_ReplaceItemInObjectCaseSensitive(out, "data_b64", cJSON_CreateString("!!not base64"));
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_DeleteItemFromObjectCaseSensitive(out, "data_b64");
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_Delete(r);
    /* the same name twice, a nameless output, outputs that are not a list */
    r = result(0);
    set_output(r, 1, "a.txt", "ay");
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_ReplaceItemInArray(cJSON_GetObjectItemCaseSensitive(r, "outputs"), 1,
                             cJSON_CreateObject());
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "outputs", cJSON_CreateString("a.txt"));
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_Delete(r);
    /* too many entries */
    r = cJSON_CreateObject();
    cJSON *missing = cJSON_AddArrayToObject(r, "missing_outputs");
    for (int i = 0; i <= OUTHASH_MAX_FILES; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        cJSON_AddItemToArray(missing, cJSON_CreateString(name));
    }
    assert_int_equal(outhash_result(r, h), OP_EINVAL);
    cJSON_DeleteItemFromArray(missing, 0);
    assert_int_equal(outhash_result(r, h), OP_OK);
    cJSON_Delete(r);
    assert_int_equal(outhash_result(NULL, h), OP_EINVAL);
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(outhash_result(arr, h), OP_EINVAL);
    cJSON_Delete(arr);
}

/* A result with nothing in it (a hand-back) and an empty output file still hash. */
static void test_empty_results_hash(void **state)
{
    char h1[65], h2[65];
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "exit_code", -1);
    hash_of(r, h1);
    cJSON *outs = cJSON_AddArrayToObject(r, "outputs");
    cJSON_AddItemToArray(outs, output("empty", ""));
    hash_of(r, h2);
    assert_string_not_equal(h1, h2);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_does_not_matter),
        cmocka_unit_test(test_figures_do_not_matter),
        cmocka_unit_test(test_any_stdout_byte_matters),
        cmocka_unit_test(test_any_output_byte_and_name_matter),
        cmocka_unit_test(test_exit_code_and_signal_matter),
        cmocka_unit_test(test_malformed_outputs_refused),
        cmocka_unit_test(test_empty_results_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
