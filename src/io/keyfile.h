/*
 * keyfile: a role's Ed25519 identity on disk (<dir>/identity.key, mode 0600,
 * and identity.pub). The signing itself is in wire/ident, which does no I/O.
 */
#ifndef OUTPOST_KEYFILE_H
#define OUTPOST_KEYFILE_H

#include "wire/ident.h"

/*
 * Loads dir/identity.key or creates it (and dir) when missing. A key file
 * readable by group or others is refused (OP_EPERM): fix its mode to 0600.
 * Errors: OP_EIO, OP_EINVAL (corrupt key file), OP_EPERM.
 */
int keyfile_load_or_create(const char *dir, const char *id, ident *out);

#endif
