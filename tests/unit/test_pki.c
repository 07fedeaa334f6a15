/*
 * Unit tests for pki: a CA created and loaded back, client and server
 * certificates that verify against it (and not against another CA), with
 * the CN, key usage and subjectAltName entries asked for, bad names and
 * broken CA directories refused, key files 0600.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "helpers/testkit.h"
#include "io/pki.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static X509 *parse(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(cert);
    return cert;
}

static int file_mode(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    testkit_path(path, sizeof path, dir, name);
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

static void test_ca_created_then_loaded(void **state)
{
    const char *dir = *state;
    char ca_dir[PATH_MAX];
    testkit_path(ca_dir, sizeof ca_dir, dir, "tls");
    pki_ca *ca = NULL, *again = NULL;
    assert_int_equal(pki_ca_open(ca_dir, 0, &ca), OP_ENOTFOUND);
    assert_int_equal(pki_ca_open(ca_dir, 1, &ca), OP_OK);
    assert_int_equal(file_mode(ca_dir, "ca.key"), 0600);
    assert_int_equal(pki_ca_open(ca_dir, 0, &again), OP_OK);
    assert_string_equal(pki_ca_cert_pem(ca), pki_ca_cert_pem(again));
    X509 *cert = parse(pki_ca_cert_pem(ca));
    assert_int_equal(X509_check_ca(cert), 1);
    assert_true(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN);
    assert_int_equal(pki_verify(pki_ca_cert_pem(ca), pki_ca_cert_pem(ca)), OP_OK);
    X509_free(cert);
    pki_ca_free(ca);
    pki_ca_free(again);
}

static void test_client_cert_verifies_with_its_cn(void **state)
{
    const char *dir = *state;
    pki_ca *ca = NULL, *other = NULL;
    char other_dir[PATH_MAX], cn[64];
    testkit_path(other_dir, sizeof other_dir, dir, "other");
    assert_int_equal(pki_ca_open(dir, 1, &ca), OP_OK);
    assert_int_equal(pki_ca_open(other_dir, 1, &other), OP_OK);
    const char *name[] = {"pod-1"};
    pki_issued out;
    assert_int_equal(pki_issue(ca, PKI_CLIENT, name, 1, PKI_CLIENT_DAYS, &out), OP_OK);
    assert_int_equal(pki_verify(pki_ca_cert_pem(ca), out.cert_pem), OP_OK);
    assert_int_equal(pki_verify(pki_ca_cert_pem(other), out.cert_pem), OP_ESIG);
    assert_int_equal(pki_cert_cn(out.cert_pem, cn, sizeof cn), OP_OK);
    assert_string_equal(cn, "pod-1");
    X509 *cert = parse(out.cert_pem);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
    X509_free(cert);
    assert_int_equal(pki_write_pair(dir, "site", &out), OP_OK);
    assert_int_equal(file_mode(dir, "site.key"), 0600);
    char path[PATH_MAX];
    int days = 0;
    testkit_path(path, sizeof path, dir, "site.crt");
    assert_int_equal(pki_cert_days_left(path, &days), OP_OK);
    assert_in_range(days, PKI_CLIENT_DAYS - 1, PKI_CLIENT_DAYS);
    pki_issued_free(&out);
    pki_ca_free(ca);
    pki_ca_free(other);
}

static void test_server_cert_has_ip_and_dns_names(void **state)
{
    pki_ca *ca = NULL;
    assert_int_equal(pki_ca_open(*state, 1, &ca), OP_OK);
    const char *names[] = {"127.0.0.1", "localhost", "broker.example.org", "::1"};
    pki_issued out;
    assert_int_equal(pki_issue(ca, PKI_SERVER, names, 4, 30, &out), OP_OK);
    assert_int_equal(pki_verify(pki_ca_cert_pem(ca), out.cert_pem), OP_OK);
    X509 *cert = parse(out.cert_pem);
    assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(cert, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(cert, "10.0.0.1", 0), 0);
    assert_int_equal(X509_check_host(cert, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(cert, "broker.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(cert, "evil.example.org", 0, 0, NULL), 0);
    X509_free(cert);
    pki_issued_free(&out);
    pki_ca_free(ca);
}

static void test_bad_names_refused(void **state)
{
    pki_ca *ca = NULL;
    pki_issued out;
    assert_int_equal(pki_ca_open(*state, 1, &ca), OP_OK);
    const char *bad_clients[] = {"", "a/b", "site+", "#", "x y", "CN=evil,O=x"};
    for (size_t i = 0; i < sizeof bad_clients / sizeof bad_clients[0]; i++)
        assert_int_equal(pki_issue(ca, PKI_CLIENT, &bad_clients[i], 1, 30, &out), OP_EINVAL);
    const char *bad_servers[] = {"", "a..b", ".x", "under_score", "a b", "x,DNS:evil"};
    for (size_t i = 0; i < sizeof bad_servers / sizeof bad_servers[0]; i++)
        assert_int_equal(pki_issue(ca, PKI_SERVER, &bad_servers[i], 1, 30, &out), OP_EINVAL);
    const char *two[] = {"a", "b"};
    assert_int_equal(pki_issue(ca, PKI_CLIENT, two, 2, 30, &out), OP_EINVAL);
    assert_int_equal(pki_issue(ca, PKI_CLIENT, two, 1, 0, &out), OP_EINVAL);
    assert_int_equal(pki_issue(ca, PKI_SERVER, two, 0, 30, &out), OP_EINVAL);
    pki_ca_free(ca);
}

static void test_broken_ca_dirs_refused(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    pki_ca *ca = NULL;
    assert_int_equal(pki_ca_open(dir, 1, &ca), OP_OK);
    pki_ca_free(ca);
    testkit_path(path, sizeof path, dir, "ca.key");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pki_ca_open(dir, 1, &ca), OP_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    testkit_write_file(dir, "ca.crt", "not a certificate\n", 0644);
    assert_int_equal(pki_ca_open(dir, 1, &ca), OP_EINVAL);
    testkit_path(path, sizeof path, dir, "ca.crt");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(pki_ca_open(dir, 1, &ca), OP_EINVAL); /* a key without its certificate */
    assert_null(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_created_then_loaded, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_verifies_with_its_cn, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_server_cert_has_ip_and_dns_names, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_bad_names_refused, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_broken_ca_dirs_refused, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
