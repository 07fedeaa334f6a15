/*
 * The site's side of the broker's TLS: the join bundle taken apart at
 * enrollment (its token for the hub, the CA, the site's certificate and key
 * kept in <data-dir>/tls for every later start), the files the bus uses, and
 * the meter topic's form that the broker's ACL lets only this site read.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "io/pki.h"
#include "site/site_int.h"
#include "wire/proto.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int site__unbundle(site *s, const char *text, token_bundle *b, const char **token_text, char *err,
                   size_t err_len)
{
    char reason[160];
    *token_text = text;
    if (!text || strncmp(text, TOKEN_BUNDLE_PREFIX, strlen(TOKEN_BUNDLE_PREFIX)) != 0) return OP_OK;
    if (token_bundle_parse(text, b, reason, sizeof reason) != OP_OK) {
        snprintf(err, err_len, "bad join bundle: %s", reason);
        return OP_EINVAL;
    }
    if (util_fmt(s->token_buf, sizeof s->token_buf, "%s", b->token) != OP_OK) {
        snprintf(err, err_len, "bad join bundle: its token is too long");
        return OP_ETOOBIG;
    }
    *token_text = s->token_buf;
    return OP_OK;
}

int site__store_bundle(site *s, const token_bundle *b, char *err, size_t err_len)
{
    char dir[PATH_MAX], path[PATH_MAX], cn[64] = "";
    if (pki_cert_cn(b->cert, cn, sizeof cn) != OP_OK || strcmp(cn, s->identity.id) != 0 ||
        pki_verify(b->ca, b->cert) != OP_OK) {
        snprintf(err, err_len, "bad join bundle: its certificate is not for site %s from its CA",
                 s->identity.id);
        return OP_EINVAL;
    }
    pki_issued pair = {b->cert, b->key};
    int rc = util_fmt(dir, sizeof dir, "%s/tls", s->data_dir);
    if (rc == OP_OK) rc = pki_write_pair(dir, "site", &pair);
    if (rc == OP_OK) rc = util_fmt(path, sizeof path, "%s/ca.crt", dir);
    if (rc == OP_OK) rc = os_write_file_atomic(path, b->ca, strlen(b->ca), 0644);
    if (rc != OP_OK) {
        snprintf(err, err_len, "cannot store the broker certificate in %s: %s", dir,
                 op_strerror(rc));
        return OP_EIO;
    }
    log_info("site", "stored its broker certificate from the join bundle in %s", dir);
    return OP_OK;
}

int site__tls_files(const site *s, char ca[PATH_MAX], char cert[PATH_MAX], char key[PATH_MAX],
                    char *err, size_t err_len)
{
    if (util_fmt(ca, PATH_MAX, "%s/tls/ca.crt", s->data_dir) != OP_OK ||
        util_fmt(cert, PATH_MAX, "%s/tls/site.crt", s->data_dir) != OP_OK ||
        util_fmt(key, PATH_MAX, "%s/tls/site.key", s->data_dir) != OP_OK)
        return OP_ETOOBIG;
    if (access(ca, R_OK) == 0 && access(cert, R_OK) == 0 && access(key, R_OK) == 0) return OP_OK;
    snprintf(err, err_len,
             "broker_tls is on but %s/tls holds no broker certificate: enroll with the join"
             " bundle (opj1.) `outpost token create` prints, or set broker_tls = off",
             s->data_dir);
    return OP_ENOTFOUND;
}

int site__meter_topic_ok(const site *s)
{
    char prefix[PROTO_TOPIC_MAX];
    if (util_fmt(prefix, sizeof prefix, MSG_TOPIC_ROOT "meter/%s/", s->identity.id) != OP_OK)
        return 0;
    size_t n = strlen(prefix);
    const char *meter = s->meter_topic + n;
    return strncmp(s->meter_topic, prefix, n) == 0 && util_valid_id(meter);
}
