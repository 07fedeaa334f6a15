#include "io/keyfile.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int keyfile_load_or_create(const char *dir, const char *id, ident *out)
{
    char path[PATH_MAX];
    char *text = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    if (util_fmt(out->id, sizeof out->id, "%s", id) != OP_OK) return OP_EINVAL;
    if ((rc = os_mkdir_p(dir)) != OP_OK) return rc;
    if (util_fmt(path, sizeof path, "%s/identity.key", dir) != OP_OK) return OP_ETOOBIG;
    rc = os_read_file(path, 4096, &text, NULL);
    if (rc == OP_ENOTFOUND) {
        crypto_sign_keypair(out->pk, out->sk);
        char sk_hex[129];
        util_hex(out->sk, 64, sk_hex);
        rc = os_write_file_atomic(path, sk_hex, 128, 0600);
        sodium_memzero(sk_hex, sizeof sk_hex);
        if (rc != OP_OK) goto out;
        util_hex(out->pk, 32, out->pk_hex);
        char pub_path[PATH_MAX];
        if (util_fmt(pub_path, sizeof pub_path, "%s/identity.pub", dir) != OP_OK) {
            rc = OP_ETOOBIG;
            goto out;
        }
        char line[66];
        snprintf(line, sizeof line, "%s\n", out->pk_hex);
        rc = os_write_file_atomic(pub_path, line, 65, 0644);
        if (rc == OP_OK) log_info("keyfile", "generated new Ed25519 identity in %s", dir);
        goto out;
    }
    if (rc != OP_OK) goto out;
    struct stat st;
    if (stat(path, &st) != 0) {
        rc = OP_EIO;
        goto out;
    }
    if (st.st_mode & 077) {
        log_error("keyfile", "%s is readable by others (mode %o); run chmod 600 on it", path,
                  st.st_mode & 0777);
        rc = OP_EPERM;
        goto out;
    }
    size_t n = strcspn(text, "\r\n");
    text[n] = '\0';
    if (util_unhex(text, out->sk, 64) != OP_OK) {
        log_error("keyfile", "%s is not a 128-hex-digit Ed25519 secret key", path);
        rc = OP_EINVAL;
        goto out;
    }
    /* The key is seed || public key: a damaged second half would sign with a key that
     * nobody can verify, so check it against the seed. */
    uint8_t seed_pk[32], seed_sk[64];
    crypto_sign_seed_keypair(seed_pk, seed_sk, out->sk);
    sodium_memzero(seed_sk, sizeof seed_sk);
    if (sodium_memcmp(seed_pk, out->sk + 32, 32) != 0) {
        log_error("keyfile", "%s is corrupt: its public half does not match its seed", path);
        rc = OP_EINVAL;
        goto out;
    }
    crypto_sign_ed25519_sk_to_pk(out->pk, out->sk);
    util_hex(out->pk, 32, out->pk_hex);
    rc = OP_OK;
out:
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    if (rc != OP_OK) ident_wipe(out);
    return rc;
}
