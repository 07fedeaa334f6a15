/*
 * The hub's side of the broker's TLS: a certificate authority in
 * <data-dir>/tls that the broker trusts for client certificates, the hub's
 * own certificate (its broker user name is its id), the local admin
 * operator's, and the site certificates that go out in join bundles. The
 * broker needs no change when a site enrolls: it trusts whatever the CA
 * signed, and its ACL patterns (%u = the certificate's CN) do the rest.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/hub_int.h"
#include "io/opclient.h"
#include "io/pki.h"
#include "wire/token.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A certificate is renewed at start when it has fewer days left than this. */
#define HUB_TLS_RENEW_DAYS 30

/*
 * dir/base.crt and .key for CN cn, issued when missing or close to expiry.
 * A certificate issued earlier keeps working meanwhile: the CA is the same.
 */
static int ensure_client_cert(const pki_ca *ca, const char *dir, const char *base, const char *cn)
{
    char path[PATH_MAX];
    int days = 0;
    if (util_fmt(path, sizeof path, "%s/%s.crt", dir, base) != OP_OK) return OP_ETOOBIG;
    if (pki_cert_days_left(path, &days) == OP_OK && days >= HUB_TLS_RENEW_DAYS) return OP_OK;
    pki_issued issued;
    int rc = pki_issue(ca, PKI_CLIENT, &cn, 1, PKI_CLIENT_DAYS, &issued);
    if (rc == OP_OK) rc = pki_write_pair(dir, base, &issued);
    pki_issued_free(&issued);
    if (rc == OP_OK) log_info("hub", "issued a broker certificate for %s in %s", cn, path);
    return rc;
}

/* The local admin's certificate, when the admin key exists (it is made at first start). */
static int ensure_admin_cert(hub *h, const pki_ca *ca)
{
    char admin_dir[PATH_MAX], key_path[PATH_MAX];
    if (util_fmt(admin_dir, sizeof admin_dir, "%s/admin", h->data_dir) != OP_OK ||
        util_fmt(key_path, sizeof key_path, "%s/identity.key", admin_dir) != OP_OK)
        return OP_ETOOBIG;
    if (access(key_path, F_OK) != 0) return OP_OK;
    ident admin;
    int rc = opclient_identity(admin_dir, &admin);
    if (rc == OP_OK) rc = ensure_client_cert(ca, admin_dir, "broker", admin.id);
    ident_wipe(&admin);
    return rc;
}

int hub__tls_setup(hub *h)
{
    char dir[PATH_MAX];
    if (!h->broker_tls) return OP_OK;
    if (util_fmt(dir, sizeof dir, "%s/tls", h->data_dir) != OP_OK ||
        util_fmt(h->tls_ca, sizeof h->tls_ca, "%s/ca.crt", dir) != OP_OK ||
        util_fmt(h->tls_cert, sizeof h->tls_cert, "%s/hub.crt", dir) != OP_OK ||
        util_fmt(h->tls_key, sizeof h->tls_key, "%s/hub.key", dir) != OP_OK)
        return OP_ETOOBIG;
    pki_ca *ca = NULL;
    int rc = pki_ca_open(dir, 1, &ca);
    if (rc == OP_OK) rc = ensure_client_cert(ca, dir, "hub", h->identity.id);
    if (rc == OP_OK) rc = ensure_admin_cert(h, ca);
    pki_ca_free(ca);
    if (rc != OP_OK)
        log_error("hub", "cannot set up the broker CA in %s: %s", dir, op_strerror(rc));
    return rc;
}

void hub__tls_files(const hub *h, const char **ca, const char **cert, const char **key)
{
    *ca = h->broker_tls ? h->tls_ca : NULL;
    *cert = h->broker_tls ? h->tls_cert : NULL;
    *key = h->broker_tls ? h->tls_key : NULL;
}

int hub__join_text(hub *h, const char *sid, const char *token_text, char **out)
{
    char dir[PATH_MAX];
    *out = NULL;
    if (!h->broker_tls) return (*out = strdup(token_text)) ? OP_OK : OP_ENOMEM;
    if (util_fmt(dir, sizeof dir, "%s/tls", h->data_dir) != OP_OK) return OP_ETOOBIG;
    pki_ca *ca = NULL;
    pki_issued issued = {0};
    int rc = pki_ca_open(dir, 0, &ca);
    if (rc == OP_OK) rc = pki_issue(ca, PKI_CLIENT, &sid, 1, PKI_CLIENT_DAYS, &issued);
    if (rc == OP_OK) {
        token_bundle b = {(char *)token_text, (char *)pki_ca_cert_pem(ca), issued.cert_pem,
                          issued.key_pem};
        rc = token_bundle_make(&b, out);
    }
    pki_issued_free(&issued);
    pki_ca_free(ca);
    return rc;
}
