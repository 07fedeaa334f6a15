/*
 * Unit tests for opclient, what an operator program needs before it talks
 * to a hub: the hub's cli.conf (every key read, defaults, each refusal with
 * the file and, where there is one, the line), the operator id derived
 * from a public key, and the operator identity created in and reloaded
 * from a directory. Each test works in its own temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "io/opclient.h"
#include "wire/ident.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The hub's public key in the files below: the key of testkit_ident(..., 7). */
static ident hub_key(void)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    return hub;
}

/* Writes text as dir/cli.conf and loads it; path receives the file's path. */
static int load(const char *dir, const char *text, opclient_hub *hub, char *path, char *err,
                size_t err_len)
{
    testkit_write_file(dir, "cli.conf", text, 0600);
    testkit_path(path, PATH_MAX, dir, "cli.conf");
    memset(hub, 0, sizeof *hub);
    err[0] = '\0';
    return opclient_load_hub(path, hub, err, err_len);
}

/* Refused with OP_EINVAL and "<path><where>" in the message, where is ":3: what" or ": what". */
static void expect_refused(const char *dir, const char *text, const char *where)
{
    opclient_hub hub;
    char path[PATH_MAX], err[1024], want[PATH_MAX + 256];
    int rc = load(dir, text, &hub, path, err, sizeof err);
    if (rc != OP_EINVAL) fail_msg("rc %d for:\n%s", rc, text);
    snprintf(want, sizeof want, "%s%s", path, where);
    testkit_assert_contains(err, want);
}

static void test_load_every_key(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    char text[512], path[PATH_MAX], err[512];
    snprintf(text, sizeof text,
             "# written by the hub\n"
             "hub_id = hub-1\n"
             "\n"
             "hub_pubkey = %s\n"
             "broker_host = broker.example\n"
             "broker_port = 8883\n",
             hub_id.pk_hex);
    opclient_hub hub;
    assert_int_equal(load(dir, text, &hub, path, err, sizeof err), OP_OK);
    assert_string_equal(hub.hub_id, "hub-1");
    assert_memory_equal(hub.hub_pk, hub_id.pk, 32);
    assert_string_equal(hub.broker_host, "broker.example");
    assert_int_equal(hub.broker_port, 8883);

    /* upper-case hex is the same key; the port's lowest and highest values */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)toupper((unsigned char)hub_id.pk_hex[i]);
    snprintf(text, sizeof text, "hub_id = hub-1\nhub_pubkey = %s\nbroker_port = 1\n", upper);
    assert_int_equal(load(dir, text, &hub, path, err, sizeof err), OP_OK);
    assert_memory_equal(hub.hub_pk, hub_id.pk, 32);
    assert_int_equal(hub.broker_port, 1);
    snprintf(text, sizeof text, "hub_id = hub-1\nhub_pubkey = %s\nbroker_port = 65535\n",
             hub_id.pk_hex);
    assert_int_equal(load(dir, text, &hub, path, err, sizeof err), OP_OK);
    assert_int_equal(hub.broker_port, 65535);
}

static void test_defaults(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    char text[256], path[PATH_MAX], err[512];
    snprintf(text, sizeof text, "hub_pubkey = %s\nhub_id = h\n", hub_id.pk_hex);
    opclient_hub hub;
    assert_int_equal(load(dir, text, &hub, path, err, sizeof err), OP_OK);
    assert_string_equal(hub.hub_id, "h");
    assert_string_equal(hub.broker_host, "127.0.0.1");
    assert_int_equal(hub.broker_port, 1883);
}

static void test_required_keys(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    const char *required = ": hub_id and hub_pubkey (64 hex digits) are required";
    char text[512];
    snprintf(text, sizeof text, "hub_pubkey = %s\n", hub_id.pk_hex);
    expect_refused(dir, text, required); /* no hub_id */
    expect_refused(dir, "hub_id = hub-1\n", required);
    expect_refused(dir, "", required);
    snprintf(text, sizeof text, "hub_id =\nhub_pubkey = %s\n", hub_id.pk_hex);
    expect_refused(dir, text, required); /* empty */
    const char *const bad_ids[] = {
        "hub 1", "hub/1", "../hub", "h\xc3\xa9",
        "a234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        snprintf(text, sizeof text, "hub_id = %s\nhub_pubkey = %s\n", bad_ids[i], hub_id.pk_hex);
        expect_refused(dir, text, required);
    }
}

static void test_bad_key_hex(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    const char *h = hub_id.pk_hex;
    char keys[7][160];
    snprintf(keys[0], sizeof keys[0], "%.63s", h);            /* one digit short */
    snprintf(keys[1], sizeof keys[1], "%s0", h);              /* one too many */
    snprintf(keys[2], sizeof keys[2], "g%.63s", h);           /* not a hex digit */
    snprintf(keys[3], sizeof keys[3], "%.30s %s", h, h + 31); /* a space inside */
    snprintf(keys[4], sizeof keys[4], "0x%.62s", h);          /* a prefix */
    snprintf(keys[5], sizeof keys[5], "%s%s", h, h);          /* a signature's length */
    snprintf(keys[6], sizeof keys[6], "%.62s\xc3\xa9", h);    /* 64 bytes, not 64 digits */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "hub_id = hub-1\nhub_pubkey = %s\n", keys[i]);
        expect_refused(dir, text, ": hub_id and hub_pubkey (64 hex digits) are required");
    }
}

static void test_bad_port_names_the_line(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    const char *const ports[] = {"0", "65536", "-1", "abc", "1883x", "18 83", "1e3", ""};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        char text[512], where[128];
        snprintf(text, sizeof text,
                 "hub_id = hub-1\nhub_pubkey = %s\n# the broker\nbroker_port = %s\n", hub_id.pk_hex,
                 ports[i]);
        snprintf(where, sizeof where,
                 ":4: broker_port must be an integer from 1 to 65535, got '%s'", ports[i]);
        expect_refused(dir, text, where);
    }
}

static void test_file_errors_name_the_file_and_line(void **state)
{
    const char *dir = *state;
    ident hub_id = hub_key();
    char text[512];
    snprintf(text, sizeof text, "hub_id = hub-1\nhub_pubkey = %s\nbrokr_port = 1883\n",
             hub_id.pk_hex);
    expect_refused(dir, text, ":3: unknown key 'brokr_port'");
    snprintf(text, sizeof text, "hub_id = hub-1\nhub_pubkey = %s\nhub_id = hub-2\n", hub_id.pk_hex);
    expect_refused(dir, text, ":3: key 'hub_id' set twice");
    expect_refused(dir, "hub_id = hub-1\nhub_pubkey\n", ":2: expected 'key = value'");

    /* a file that is not there, and a folder where the file should be */
    opclient_hub hub;
    char path[PATH_MAX], err[1024];
    testkit_path(path, sizeof path, dir, "missing.conf");
    assert_int_equal(opclient_load_hub(path, &hub, err, sizeof err), OP_ENOTFOUND);
    testkit_assert_contains(err, path);
    assert_int_equal(opclient_load_hub(dir, &hub, err, sizeof err), OP_EIO);
    testkit_assert_contains(err, dir);
}

static void test_operator_id(void **state)
{
    (void)state;
    char id[64];
    opclient_id("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", id);
    assert_string_equal(id, "op-0123456789abcdef");
    assert_true(util_valid_id(id));
    /* keys that differ after the 16th digit share an id: the hub's operators file decides */
    char other[64];
    opclient_id("0123456789abcdefffffffffffffffffffffffffffffffffffffffffffffffff", other);
    assert_string_equal(other, id);
    opclient_id("1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", other);
    assert_string_not_equal(other, id);
}

/* The operator's public key file, without its newline. */
static void read_pub(const char *dir, char hex[65])
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    testkit_path(path, sizeof path, dir, "identity.pub");
    assert_int_equal(os_read_file(path, 4096, &text, &len), OP_OK);
    assert_int_equal(len, 65);
    assert_int_equal(text[64], '\n');
    memcpy(hex, text, 64);
    hex[64] = '\0';
    free(text);
}

static void test_identity_created_and_reloaded(void **state)
{
    const char *dir = *state;
    char op_dir[PATH_MAX], key_path[PATH_MAX], id[64], pub[65];
    testkit_path(op_dir, sizeof op_dir, dir, "home/.outpost/op"); /* made on first use */
    ident first, again;
    assert_int_equal(opclient_identity(op_dir, &first), OP_OK);
    opclient_id(first.pk_hex, id);
    assert_string_equal(first.id, id);
    read_pub(op_dir, pub);
    assert_string_equal(pub, first.pk_hex);
    testkit_path(key_path, sizeof key_path, op_dir, "identity.key");
    struct stat st;
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(opclient_identity(op_dir, &again), OP_OK);
    assert_string_equal(again.id, first.id);
    assert_memory_equal(again.pk, first.pk, 32);
    uint8_t sig[64];
    ident_sign(&again, "job", 3, sig);
    assert_int_equal(ident_verify(first.pk, "job", 3, sig), OP_OK);

    /* another directory is another operator */
    char other_dir[PATH_MAX];
    testkit_path(other_dir, sizeof other_dir, dir, "other");
    ident other;
    assert_int_equal(opclient_identity(other_dir, &other), OP_OK);
    assert_string_not_equal(other.id, first.id);
    assert_int_equal(ident_verify(other.pk, "job", 3, sig), OP_ESIG);
    ident_wipe(&first);
    ident_wipe(&again);
    ident_wipe(&other);
}

static void test_identity_refusals(void **state)
{
    const char *dir = *state;
    char key_path[PATH_MAX];
    ident op;
    assert_int_equal(opclient_identity(dir, &op), OP_OK);
    testkit_path(key_path, sizeof key_path, dir, "identity.key");
    assert_int_equal(chmod(key_path, 0640), 0);
    assert_int_equal(opclient_identity(dir, &op), OP_EPERM); /* readable by the group */
    testkit_write_file(dir, "identity.key", "not a key\n", 0600);
    assert_int_equal(opclient_identity(dir, &op), OP_EINVAL);

    /* a file where the directory should be */
    char blocked[PATH_MAX];
    testkit_path(blocked, sizeof blocked, dir, "identity.key/op");
    assert_int_equal(opclient_identity(blocked, &op), OP_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_every_key, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_defaults, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_required_keys, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_hex, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_bad_port_names_the_line, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_file_errors_name_the_file_and_line,
                                        testkit_tmpdir_setup, testkit_tmpdir_teardown),
        cmocka_unit_test(test_operator_id),
        cmocka_unit_test_setup_teardown(test_identity_created_and_reloaded, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_identity_refusals, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
