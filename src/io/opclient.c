#include "io/opclient.h"

#include "base/conf.h"
#include "base/err.h"
#include "base/util.h"
#include "io/keyfile.h"

#include <stdio.h>

int opclient_load_hub(const char *conf_path, opclient_hub *out, char *err, size_t err_len)
{
    static const char *keys[] = {"hub_id", "hub_pubkey", "broker_host", "broker_port", NULL};
    conf *cf = NULL;
    int rc = conf_load(conf_path, keys, &cf, err, err_len);
    if (rc != OP_OK) return rc;
    const char *hub_id = conf_str(cf, "hub_id", "");
    snprintf(out->hub_id, sizeof out->hub_id, "%s", hub_id);
    snprintf(out->broker_host, sizeof out->broker_host, "%s",
             conf_str(cf, "broker_host", "127.0.0.1"));
    rc = conf_int(cf, "broker_port", 1883, 1, 65535, &out->broker_port, err, err_len);
    if (rc == OP_OK && (!util_valid_id(hub_id) ||
                        util_unhex(conf_str(cf, "hub_pubkey", ""), out->hub_pk, 32) != OP_OK)) {
        snprintf(err, err_len, "%.400s: hub_id and hub_pubkey (64 hex digits) are required",
                 conf_path);
        rc = OP_EINVAL;
    }
    conf_free(cf);
    return rc;
}

void opclient_id(const char *pk_hex, char id[64])
{
    snprintf(id, 64, "op-%.16s", pk_hex);
}

int opclient_identity(const char *dir, ident *out)
{
    ident probe;
    int rc = keyfile_load_or_create(dir, "op", &probe);
    if (rc != OP_OK) return rc;
    ident_wipe(&probe);
    char id[64];
    opclient_id(probe.pk_hex, id);
    return keyfile_load_or_create(dir, id, out);
}
