/*
 * opclient: what an operator program (the CLI, the benchmark client) needs
 * before it can talk to a hub: the hub's address and public key, read from
 * the cli.conf the hub writes into its data dir, and the operator's own
 * identity, whose id is derived from its public key ("op-" and the first
 * 16 hex digits), so that the hub's operators file is the only list.
 * With a broker on TLS, cli.conf names the CA (broker_ca) and the operator's
 * broker certificate lies beside its identity key (broker.crt, broker.key).
 */
#ifndef OUTPOST_OPCLIENT_H
#define OUTPOST_OPCLIENT_H

#include "wire/ident.h"

#include <stddef.h>
#include <stdint.h>

typedef struct opclient_hub {
    char hub_id[64];
    uint8_t hub_pk[32];
    char broker_host[256];
    int64_t broker_port;
    /* broker_ca: the CA file, relative paths taken from cli.conf's directory; "" for plain TCP */
    char broker_ca[4096];
    /* store: the hub's database when its config names one (a path, or a PostgreSQL URL
     * without its password); "" for the default <hub-dir>/hub.db */
    char store[4096];
} opclient_hub;

/*
 * Reads a hub's cli.conf. OP_OK, or OP_ENOTFOUND / OP_EIO / OP_EINVAL with
 * "file:line: what" in err, or OP_ETOOBIG for a file over 64 KiB.
 */
int opclient_load_hub(const char *conf_path, opclient_hub *out, char *err, size_t err_len);

/* The operator id for a public key in hex: "op-" + its first 16 hex digits. */
void opclient_id(const char *pk_hex, char id[64]);

/* Loads (or creates) the operator identity in dir, with its derived id. OP_EIO, OP_EPERM,
 * OP_EINVAL. */
int opclient_identity(const char *dir, ident *out);

/*
 * The operator's broker certificate and key in its key dir (dir/broker.crt,
 * dir/broker.key). OP_OK, OP_ENOTFOUND (either missing), OP_ETOOBIG.
 */
int opclient_broker_cert(const char *dir, char *cert, char *key, size_t len);

#endif
