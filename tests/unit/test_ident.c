/*
 * Unit tests for ident: key files created with the right modes and
 * reloaded to the same identity, unsafe or corrupt key files refused,
 * Ed25519 sign/verify. Each test works in its own mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "helpers/testkit.h"
#include "io/keyfile.h"
#include "wire/ident.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void test_create_and_reload(void **state)
{
    const char *dir = *state;
    char key_dir[PATH_MAX], key_path[PATH_MAX], pub_path[PATH_MAX];
    testkit_path(key_dir, sizeof key_dir, dir, "hub/keys"); /* created on first use */
    testkit_path(key_path, sizeof key_path, dir, "hub/keys/identity.key");
    testkit_path(pub_path, sizeof pub_path, dir, "hub/keys/identity.pub");

    ident first, second;
    assert_int_equal(keyfile_load_or_create(key_dir, "hub-1", &first), OP_OK);
    assert_string_equal(first.id, "hub-1");
    assert_false(all_zero(first.pk, 32));
    assert_false(all_zero(first.sk, 64));
    assert_int_equal(strlen(first.pk_hex), 64);
    char hex[65];
    util_hex(first.pk, 32, hex);
    assert_string_equal(first.pk_hex, hex);

    struct stat st;
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 128);
    assert_int_equal(stat(pub_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    char *pub = NULL;
    assert_int_equal(os_read_file(pub_path, 256, &pub, NULL), OP_OK);
    assert_int_equal(strlen(pub), 65);
    assert_memory_equal(pub, first.pk_hex, 64);
    assert_int_equal(pub[64], '\n');
    free(pub);

    assert_int_equal(keyfile_load_or_create(key_dir, "hub-1", &second), OP_OK);
    assert_memory_equal(second.pk, first.pk, 32);
    assert_memory_equal(second.sk, first.sk, 64);
    assert_string_equal(second.pk_hex, first.pk_hex);

    /* A fresh directory gives a different key. */
    char other_dir[PATH_MAX];
    testkit_path(other_dir, sizeof other_dir, dir, "other");
    ident other;
    assert_int_equal(keyfile_load_or_create(other_dir, "site-1", &other), OP_OK);
    assert_memory_not_equal(other.pk, first.pk, 32);

    ident_wipe(&first);
    assert_true(all_zero(first.sk, 64));
    ident_wipe(&second);
    ident_wipe(&other);
}

static void test_key_file_with_trailing_newline(void **state)
{
    const char *dir = *state;
    ident first, second;
    assert_int_equal(keyfile_load_or_create(dir, "s", &first), OP_OK);
    char key_path[PATH_MAX], hex[130];
    testkit_path(key_path, sizeof key_path, dir, "identity.key");
    util_hex(first.sk, 64, hex);
    hex[128] = '\n';
    hex[129] = '\0';
    assert_int_equal(os_write_file_atomic(key_path, hex, 129, 0600), OP_OK);
    assert_int_equal(keyfile_load_or_create(dir, "s", &second), OP_OK);
    assert_memory_equal(second.pk, first.pk, 32);
    ident_wipe(&first);
    ident_wipe(&second);
}

static void test_group_readable_key_refused(void **state)
{
    const char *dir = *state;
    ident id;
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_OK);
    ident_wipe(&id);
    char key_path[PATH_MAX];
    testkit_path(key_path, sizeof key_path, dir, "identity.key");
    assert_int_equal(chmod(key_path, 0644), 0);
    memset(&id, 0xaa, sizeof id);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_EPERM);
    assert_true(all_zero(id.sk, 64)); /* nothing secret is left behind on failure */

    assert_int_equal(chmod(key_path, 0640), 0);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_EPERM);
    assert_int_equal(chmod(key_path, 0604), 0);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_EPERM);

    assert_int_equal(chmod(key_path, 0600), 0);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_OK);
    ident_wipe(&id);
}

static void test_corrupt_key_refused(void **state)
{
    const char *dir = *state;
    char key_path[PATH_MAX];
    testkit_path(key_path, sizeof key_path, dir, "identity.key");
    ident id;

    static const char *bad[] = {
        "not a key",
        "",
        /* 127 hex digits */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        /* 128 characters, one not hex */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        /* 130 hex digits */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(os_write_file_atomic(key_path, bad[i], strlen(bad[i]), 0600), OP_OK);
        memset(&id, 0x55, sizeof id);
        assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_EINVAL);
        assert_true(all_zero(id.sk, 64));
    }
    /* Larger than the read bound: refused, not truncated. */
    size_t big_len = 8192;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'a', big_len);
    assert_int_equal(os_write_file_atomic(key_path, big, big_len, 0600), OP_OK);
    free(big);
    assert_int_not_equal(keyfile_load_or_create(dir, "site-1", &id), OP_OK);
}

static void test_key_with_mismatched_public_half_refused(void **state)
{
    /* 128 valid hex digits whose second half is not the seed's public key. */
    const char *dir = *state;
    ident id;
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_OK);
    uint8_t sk[64];
    memcpy(sk, id.sk, 64);
    ident_wipe(&id);
    sk[40] ^= 0x01;
    char hex[129], key_path[PATH_MAX];
    util_hex(sk, 64, hex);
    testkit_path(key_path, sizeof key_path, dir, "identity.key");
    assert_int_equal(os_write_file_atomic(key_path, hex, 128, 0600), OP_OK);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_EINVAL);
    assert_true(all_zero(id.sk, 64));
    /* Restoring the byte makes it loadable again. */
    sk[40] ^= 0x01;
    util_hex(sk, 64, hex);
    assert_int_equal(os_write_file_atomic(key_path, hex, 128, 0600), OP_OK);
    assert_int_equal(keyfile_load_or_create(dir, "site-1", &id), OP_OK);
    ident_wipe(&id);
}

static void test_id_too_long(void **state)
{
    const char *dir = *state;
    char long_id[100];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    ident id;
    assert_int_equal(keyfile_load_or_create(dir, long_id, &id), OP_EINVAL);
}

static void test_sign_verify(void **state)
{
    const char *dir = *state;
    char dir_a[PATH_MAX], dir_b[PATH_MAX];
    testkit_path(dir_a, sizeof dir_a, dir, "a");
    testkit_path(dir_b, sizeof dir_b, dir, "b");
    ident a, b;
    assert_int_equal(keyfile_load_or_create(dir_a, "a", &a), OP_OK);
    assert_int_equal(keyfile_load_or_create(dir_b, "b", &b), OP_OK);

    const char data[] = "place job 42 on site-7";
    uint8_t sig[64];
    ident_sign(&a, data, sizeof data - 1, sig);
    assert_int_equal(ident_verify(a.pk, data, sizeof data - 1, sig), OP_OK);

    /* Altered data, truncated data, altered signature, wrong key. */
    char altered[sizeof data];
    memcpy(altered, data, sizeof data);
    altered[0] ^= 1;
    assert_int_equal(ident_verify(a.pk, altered, sizeof data - 1, sig), OP_ESIG);
    assert_int_equal(ident_verify(a.pk, data, sizeof data - 2, sig), OP_ESIG);
    for (size_t i = 0; i < 64; i += 9) {
        uint8_t bad_sig[64];
        memcpy(bad_sig, sig, 64);
        bad_sig[i] ^= 0x80;
        assert_int_equal(ident_verify(a.pk, data, sizeof data - 1, bad_sig), OP_ESIG);
    }
    assert_int_equal(ident_verify(b.pk, data, sizeof data - 1, sig), OP_ESIG);

    /* Ed25519 is deterministic; an identity reloaded from disk signs the same. */
    ident a_again;
    assert_int_equal(keyfile_load_or_create(dir_a, "a", &a_again), OP_OK);
    uint8_t sig_again[64];
    ident_sign(&a_again, data, sizeof data - 1, sig_again);
    assert_memory_equal(sig, sig_again, 64);

    /* Empty message. */
    ident_sign(&b, "", 0, sig);
    assert_int_equal(ident_verify(b.pk, "", 0, sig), OP_OK);
    assert_int_equal(ident_verify(a.pk, "", 0, sig), OP_ESIG);

    ident_wipe(&a);
    ident_wipe(&a_again);
    ident_wipe(&b);
}

/* A sealed box opens only for its recipient, and not once altered. */
static void test_seal_opens_only_for_its_recipient(void **state)
{
    (void)state;
    ident alice, mallory;
    testkit_ident(&alice, "op-alice", 7);
    testkit_ident(&mallory, "op-mallory", 8);
    const char *secret = "opt1.claims.signature";
    char *sealed = NULL, *plain = NULL;
    size_t len = 0;
    assert_int_equal(ident_seal(alice.pk, secret, strlen(secret), &sealed), OP_OK);
    assert_null(strstr(sealed, "claims"));
    assert_int_equal(ident_open_sealed(&alice, sealed, 1024, &plain, &len), OP_OK);
    assert_string_equal(plain, secret);
    assert_int_equal(len, strlen(secret));
    free(plain);
    plain = NULL;
    assert_int_equal(ident_open_sealed(&mallory, sealed, 1024, &plain, NULL), OP_EINVAL);
    assert_null(plain);
    sealed[10] = sealed[10] == 'A' ? 'B' : 'A'; /* one base64 digit of the box changed */
    assert_int_equal(ident_open_sealed(&alice, sealed, 1024, &plain, NULL), OP_EINVAL);
    assert_int_not_equal(ident_open_sealed(&alice, "not base64!", 1024, &plain, NULL), OP_OK);
    assert_int_equal(ident_open_sealed(&alice, sealed, 4, &plain, NULL), OP_ETOOBIG);
    free(sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_opens_only_for_its_recipient),
        cmocka_unit_test_setup_teardown(test_create_and_reload, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_key_file_with_trailing_newline, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_group_readable_key_refused, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_key_refused, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_key_with_mismatched_public_half_refused,
                                        testkit_tmpdir_setup, testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_id_too_long, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_sign_verify, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
