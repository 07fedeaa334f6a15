#include "io/opclient.h"

#include "base/conf.h"
#include "base/err.h"
#include "base/util.h"
#include "io/keyfile.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* broker_ca as given, or relative to the directory of conf_path. */
static int resolve_ca(const char *conf_path, const char *ca, opclient_hub *out)
{
    const char *slash = strrchr(conf_path, '/');
    if (!*ca || ca[0] == '/' || !slash)
        return util_fmt(out->broker_ca, sizeof out->broker_ca, "%s", ca);
    return util_fmt(out->broker_ca, sizeof out->broker_ca, "%.*s/%s", (int)(slash - conf_path),
                    conf_path, ca);
}

int opclient_load_hub(const char *conf_path, opclient_hub *out, char *err, size_t err_len)
{
    static const char *keys[] = {"hub_id",    "hub_pubkey", "broker_host", "broker_port",
                                 "broker_ca", "store",      NULL};
    conf *cf = NULL;
    int rc = conf_load(conf_path, keys, &cf, err, err_len);
    if (rc != OP_OK) return rc;
    const char *hub_id = conf_str(cf, "hub_id", "");
    snprintf(out->hub_id, sizeof out->hub_id, "%s", hub_id);
    snprintf(out->broker_host, sizeof out->broker_host, "%s",
             conf_str(cf, "broker_host", "127.0.0.1"));
    rc = conf_int(cf, "broker_port", 1883, 1, 65535, &out->broker_port, err, err_len);
    if (rc == OP_OK &&
        util_fmt(out->store, sizeof out->store, "%s", conf_str(cf, "store", "")) != OP_OK) {
        snprintf(err, err_len, "%.400s: store is too long", conf_path);
        rc = OP_ETOOBIG;
    }
    if (rc == OP_OK && (!util_valid_id(hub_id) ||
                        util_unhex(conf_str(cf, "hub_pubkey", ""), out->hub_pk, 32) != OP_OK)) {
        snprintf(err, err_len, "%.400s: hub_id and hub_pubkey (64 hex digits) are required",
                 conf_path);
        rc = OP_EINVAL;
    }
    if (rc == OP_OK && resolve_ca(conf_path, conf_str(cf, "broker_ca", ""), out) != OP_OK) {
        snprintf(err, err_len, "%.400s: broker_ca is too long", conf_path);
        rc = OP_ETOOBIG;
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

int opclient_broker_cert(const char *dir, char *cert, char *key, size_t len)
{
    if (util_fmt(cert, len, "%s/broker.crt", dir) != OP_OK ||
        util_fmt(key, len, "%s/broker.key", dir) != OP_OK)
        return OP_ETOOBIG;
    return access(cert, R_OK) == 0 && access(key, R_OK) == 0 ? OP_OK : OP_ENOTFOUND;
}
