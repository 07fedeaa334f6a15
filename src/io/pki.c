#include "io/pki.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pki_ca {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem;
};

/* ---------- PEM in memory ---------- */

static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (text) {
        memcpy(text, data, (size_t)n);
        text[n] = '\0';
    }
    return text;
}

static char *cert_to_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = bio && PEM_write_bio_X509(bio, cert) ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

static char *key_to_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text =
        bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

static X509 *cert_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return cert;
}

static EVP_PKEY *key_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return key;
}

static void free_secret(char *text)
{
    if (!text) return;
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

/* ---------- names ---------- */

static int is_ip(const char *name, unsigned char addr[16], int *len)
{
    if (inet_pton(AF_INET, name, addr) == 1) {
        *len = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, name, addr) == 1) {
        *len = 16;
        return 1;
    }
    return 0;
}

/* A DNS name: labels of letters, digits and hyphens, 1-63 each, 253 in all. */
static int valid_dns(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > 253 || name[0] == '.' || name[len - 1] == '.') return 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (label == 0) return 0;
            label = 0;
            continue;
        }
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-';
        if (!ok || ++label > 63) return 0;
    }
    return 1;
}

int pki_valid_name(pki_kind kind, const char *name)
{
    unsigned char addr[16];
    int len;
    if (!name) return 0;
    if (kind == PKI_CLIENT) return util_valid_id(name);
    return is_ip(name, addr, &len) || valid_dns(name);
}

/* ---------- certificates ---------- */

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A random positive 128-bit serial: unique without a counter kept anywhere. */
static int set_serial(X509 *cert)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return 0;
    raw[0] &= 0x7f;
    raw[0] |= 0x40; /* always 16 bytes long */
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = serial && X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* subjectAltName: "IP:a,DNS:b,..." from names (already checked). */
static int add_san(X509 *cert, const char *const *names, size_t n_names)
{
    char text[PKI_MAX_NAMES * 270] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_names; i++) {
        unsigned char addr[16];
        int len;
        int n = snprintf(text + used, sizeof text - used, "%s%s:%s", i ? "," : "",
                         is_ip(names[i], addr, &len) ? "IP" : "DNS", names[i]);
        if (n < 0 || (size_t)n >= sizeof text - used) return 0;
        used += (size_t)n;
    }
    return add_ext(cert, cert, NID_subject_alt_name, text);
}

/* A certificate for key with subject CN=cn, valid from five minutes ago for days days. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, int days)
{
    X509 *cert = X509_new();
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
    if (!name || !X509_set_version(cert, 2) || !set_serial(cert) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) || !X509_set_pubkey(cert, key)) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* The CA's own certificate: self-signed, CA:TRUE, for signing certificates and CRLs only. */
static X509 *make_ca_cert(EVP_PKEY *key)
{
    X509 *cert = new_cert(key, "Outpost hub CA", PKI_CA_DAYS);
    if (!cert || !X509_set_issuer_name(cert, X509_get_subject_name(cert)) ||
        !add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(cert, cert, NID_subject_key_identifier, "hash") ||
        !X509_sign(cert, key, EVP_sha256())) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* ---------- the CA on disk ---------- */

void pki_ca_free(pki_ca *ca)
{
    if (!ca) return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->cert_pem);
    free(ca);
}

const char *pki_ca_cert_pem(const pki_ca *ca)
{
    return ca->cert_pem;
}

int pki_write_pair(const char *dir, const char *base, const pki_issued *issued)
{
    char path[PATH_MAX];
    int rc = os_mkdir_p(dir);
    if (rc == OP_OK && util_fmt(path, sizeof path, "%s/%s.key", dir, base) != OP_OK)
        rc = OP_ETOOBIG;
    if (rc == OP_OK)
        rc = os_write_file_atomic(path, issued->key_pem, strlen(issued->key_pem), 0600);
    if (rc == OP_OK && util_fmt(path, sizeof path, "%s/%s.crt", dir, base) != OP_OK)
        rc = OP_ETOOBIG;
    if (rc == OP_OK)
        rc = os_write_file_atomic(path, issued->cert_pem, strlen(issued->cert_pem), 0644);
    return rc;
}

/* A new CA in dir: key and self-signed certificate, written as ca.key and ca.crt. */
static int create_ca(const char *dir, pki_ca *ca)
{
    ca->key = new_key();
    ca->cert = ca->key ? make_ca_cert(ca->key) : NULL;
    if (!ca->cert) return OP_EIO;
    pki_issued files = {cert_to_pem(ca->cert), key_to_pem(ca->key)};
    int rc = files.cert_pem && files.key_pem ? pki_write_pair(dir, "ca", &files) : OP_ENOMEM;
    ca->cert_pem = files.cert_pem;
    free_secret(files.key_pem);
    if (rc == OP_OK) log_info("pki", "created a new certificate authority in %s", dir);
    return rc;
}

/* Reads a key file, refusing one that others may read (as keyfile does). */
static int read_key_file(const char *path, char **text)
{
    struct stat st;
    if (stat(path, &st) != 0) return OP_ENOTFOUND;
    if (st.st_mode & 077) {
        log_error("pki", "%s is readable by others (mode %o); run chmod 600 on it", path,
                  st.st_mode & 0777);
        return OP_EPERM;
    }
    return os_read_file(path, 64 * 1024, text, NULL);
}

/* Loads ca.key and ca.crt and checks they are a CA and its key. */
static int load_ca(const char *key_path, const char *cert_path, pki_ca *ca)
{
    char *key_text = NULL;
    int rc = read_key_file(key_path, &key_text);
    if (rc == OP_OK) rc = os_read_file(cert_path, 64 * 1024, &ca->cert_pem, NULL);
    if (rc == OP_OK) {
        ca->key = key_from_pem(key_text);
        ca->cert = cert_from_pem(ca->cert_pem);
        if (!ca->key || !ca->cert || X509_check_private_key(ca->cert, ca->key) != 1 ||
            X509_check_ca(ca->cert) == 0) {
            log_error("pki", "%s and %s are not a certificate authority and its key", cert_path,
                      key_path);
            rc = OP_EINVAL;
        }
    }
    free_secret(key_text);
    return rc;
}

int pki_ca_open(const char *dir, int create, pki_ca **out)
{
    char key_path[PATH_MAX], cert_path[PATH_MAX];
    *out = NULL;
    if (util_fmt(key_path, sizeof key_path, "%s/ca.key", dir) != OP_OK ||
        util_fmt(cert_path, sizeof cert_path, "%s/ca.crt", dir) != OP_OK)
        return OP_ETOOBIG;
    pki_ca *ca = calloc(1, sizeof *ca);
    if (!ca) return OP_ENOMEM;
    struct stat st;
    int have_key = stat(key_path, &st) == 0, have_cert = stat(cert_path, &st) == 0;
    int rc;
    if (have_key && have_cert)
        rc = load_ca(key_path, cert_path, ca);
    else if (have_key || have_cert) {
        log_error("pki", "%s has only one of ca.key and ca.crt", dir);
        rc = OP_EINVAL;
    } else
        rc = create ? create_ca(dir, ca) : OP_ENOTFOUND;
    if (rc != OP_OK) {
        pki_ca_free(ca);
        return rc;
    }
    *out = ca;
    return OP_OK;
}

/* ---------- issuing ---------- */

void pki_issued_free(pki_issued *issued)
{
    free(issued->cert_pem);
    free_secret(issued->key_pem);
    issued->cert_pem = issued->key_pem = NULL;
}

/* The extensions of a leaf: not a CA, signing only, the usage its kind needs. */
static int add_leaf_exts(const pki_ca *ca, X509 *cert, pki_kind kind, const char *const *names,
                         size_t n_names)
{
    int ok = add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature,keyAgreement") &&
             add_ext(cert, ca->cert, NID_ext_key_usage,
                     kind == PKI_CLIENT ? "clientAuth" : "serverAuth") &&
             add_ext(cert, ca->cert, NID_subject_key_identifier, "hash") &&
             add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always");
    if (ok && kind == PKI_SERVER) ok = add_san(cert, names, n_names);
    return ok;
}

int pki_issue(const pki_ca *ca, pki_kind kind, const char *const *names, size_t n_names, int days,
              pki_issued *out)
{
    memset(out, 0, sizeof *out);
    if (n_names < 1 || n_names > PKI_MAX_NAMES || (kind == PKI_CLIENT && n_names != 1) ||
        days < 1 || days > PKI_CA_DAYS)
        return OP_EINVAL;
    for (size_t i = 0; i < n_names; i++)
        if (!pki_valid_name(kind, names[i])) return OP_EINVAL;
    EVP_PKEY *key = new_key();
    X509 *cert = key ? new_cert(key, names[0], days) : NULL;
    int rc = OP_EIO;
    if (cert && X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) &&
        add_leaf_exts(ca, cert, kind, names, n_names) && X509_sign(cert, ca->key, EVP_sha256())) {
        out->cert_pem = cert_to_pem(cert);
        out->key_pem = key_to_pem(key);
        rc = out->cert_pem && out->key_pem ? OP_OK : OP_ENOMEM;
    }
    if (rc != OP_OK) pki_issued_free(out);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* ---------- reading certificates ---------- */

int pki_cert_days_left(const char *path, int *days_left)
{
    char *text = NULL;
    int rc = os_read_file(path, 64 * 1024, &text, NULL);
    if (rc != OP_OK) return rc == OP_ENOTFOUND ? rc : OP_EINVAL;
    X509 *cert = cert_from_pem(text);
    free(text);
    int days = 0, secs = 0;
    rc = cert && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) ? OP_OK : OP_EINVAL;
    X509_free(cert);
    *days_left = days;
    return rc;
}

int pki_cert_cn(const char *pem, char *cn, size_t cn_len)
{
    X509 *cert = cert_from_pem(pem);
    int n = cert ? X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                             (int)cn_len)
                 : -1;
    X509_free(cert);
    return n > 0 ? OP_OK : OP_EINVAL;
}

int pki_verify(const char *ca_pem, const char *cert_pem)
{
    X509 *ca = cert_from_pem(ca_pem), *cert = cert_from_pem(cert_pem);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = OP_EINVAL;
    if (ca && cert && store && ctx && X509_STORE_add_cert(store, ca) &&
        X509_STORE_CTX_init(ctx, store, cert, NULL))
        rc = X509_verify_cert(ctx) == 1 ? OP_OK : OP_ESIG;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(cert);
    X509_free(ca);
    return rc;
}
