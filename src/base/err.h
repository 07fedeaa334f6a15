/*
 * err: the one result-code family of Outpost.
 *
 * Every fallible function returns int: OP_OK (0) on success or one of the
 * negative codes below. Codes from SQLite, libsodium and libmosquitto are
 * mapped at the module boundary and never leak upward raw.
 */
#ifndef OUTPOST_ERR_H
#define OUTPOST_ERR_H

enum {
    OP_OK = 0,
    OP_ENOMEM = -1,     /* allocation failed */
    OP_EINVAL = -2,     /* malformed or invalid input */
    OP_EIO = -3,        /* file or device I/O failed */
    OP_ENOTFOUND = -4,  /* no such object */
    OP_EEXIST = -5,     /* object already exists */
    OP_ESIG = -6,       /* signature missing or invalid */
    OP_EREPLAY = -7,    /* message sequence already seen */
    OP_EUNKNOWN = -8,   /* sender unknown or revoked */
    OP_EEXPIRED = -9,   /* token, lease or timestamp out of its window */
    OP_ETOOBIG = -10,   /* a size bound was hit */
    OP_ESTORE = -11,    /* the SQLite store failed */
    OP_EBUS = -12,      /* the MQTT bus failed */
    OP_ETIMEOUT = -13,  /* no answer in time */
    OP_EPERM = -14,     /* not allowed */
    OP_ESTALE = -15,    /* refers to a superseded attempt */
    OP_EFULL = -16,     /* a bounded queue is full: retry later */
    OP_ESYS = -17,      /* a system call failed (errno logged) */
    OP_EUSED = -18,     /* one-time token already used */
    OP_ECAPACITY = -19, /* no site can ever satisfy the request */
};

/* Human-readable, static text for a result code; never NULL. */
const char *op_strerror(int rc);

#endif
