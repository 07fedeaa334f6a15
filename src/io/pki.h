/*
 * pki: the hub's certificate authority for the broker link (OpenSSL
 * libcrypto). It owns a CA in a directory (ca.key 0600, ca.crt), issues new
 * ECDSA P-256 keys with certificates signed by it (SHA-256) for a client
 * (extendedKeyUsage clientAuth, its common name is its broker user name) or
 * a broker (serverAuth, with subjectAltName entries: IP for an address, DNS
 * otherwise), and writes them as PEM files, the keys 0600 and atomically.
 *
 * Why a CA and not broker passwords: the broker checks any certificate the
 * CA signed without being told, so enrolling a site changes nothing on the
 * broker, and no secret is shared with it.
 */
#ifndef OUTPOST_PKI_H
#define OUTPOST_PKI_H

#include <stddef.h>
#include <stdint.h>

typedef struct pki_ca pki_ca;

#define PKI_CA_DAYS 3650
#define PKI_CLIENT_DAYS 365
#define PKI_SERVER_DAYS 825
#define PKI_MAX_NAMES 16

typedef enum { PKI_CLIENT, PKI_SERVER } pki_kind;

/* A key and its certificate, PEM, malloc'd. pki_issued_free wipes the key. */
typedef struct pki_issued {
    char *cert_pem;
    char *key_pem;
} pki_issued;

/*
 * Loads the CA in dir (dir/ca.key, dir/ca.crt), or creates it (and dir,
 * 0700) when both are missing and create is set. A key readable by group or
 * others is refused (OP_EPERM); only one of the two files present, a key
 * that does not match the certificate or a certificate that is not a CA is
 * OP_EINVAL; none and !create is OP_ENOTFOUND. Also OP_EIO, OP_ENOMEM.
 */
int pki_ca_open(const char *dir, int create, pki_ca **out);
void pki_ca_free(pki_ca *ca);

/* The CA certificate, PEM (owned by ca, valid until pki_ca_free). */
const char *pki_ca_cert_pem(const pki_ca *ca);

/*
 * A name a certificate may carry: a client's common name is an Outpost id
 * ([A-Za-z0-9_-]{1,63}, what the broker substitutes for %u); a server name
 * is a DNS name or an IP address. 1 if valid.
 */
int pki_valid_name(pki_kind kind, const char *name);

/*
 * Issues a new key and a certificate signed by ca, valid for days days
 * (from five minutes ago: clocks differ). A client certificate has
 * common_name as CN; a server certificate has names[0] as CN and every name
 * as subjectAltName (n_names >= 1). OP_EINVAL for a bad name or count
 * (pki_valid_name), OP_ENOMEM, OP_EIO (libcrypto failed). The caller frees
 * out with pki_issued_free.
 */
int pki_issue(const pki_ca *ca, pki_kind kind, const char *const *names, size_t n_names, int days,
              pki_issued *out);
void pki_issued_free(pki_issued *issued);

/*
 * Writes dir/<base>.crt (0644) and dir/<base>.key (0600), each atomically,
 * creating dir (0700). OP_EIO, OP_ETOOBIG.
 */
int pki_write_pair(const char *dir, const char *base, const pki_issued *issued);

/*
 * Days the PEM certificate at path is still valid (negative once expired).
 * OP_OK, OP_ENOTFOUND, OP_EINVAL (not a certificate).
 */
int pki_cert_days_left(const char *path, int *days_left);

/* The common name of a PEM certificate (text). OP_OK, OP_EINVAL. */
int pki_cert_cn(const char *pem, char *cn, size_t cn_len);

/*
 * Checks that cert_pem was signed by the CA ca_pem and is valid now, with
 * OpenSSL's chain verification. OP_OK, OP_ESIG (does not verify), OP_EINVAL.
 */
int pki_verify(const char *ca_pem, const char *cert_pem);

#endif
