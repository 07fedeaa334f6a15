#include "base/err.h"

const char *op_strerror(int rc)
{
    switch (rc) {
    case OP_OK:
        return "ok";
    case OP_ENOMEM:
        return "out of memory";
    case OP_EINVAL:
        return "invalid input";
    case OP_EIO:
        return "I/O error";
    case OP_ENOTFOUND:
        return "not found";
    case OP_EEXIST:
        return "already exists";
    case OP_ESIG:
        return "bad or missing signature";
    case OP_EREPLAY:
        return "replayed message";
    case OP_EUNKNOWN:
        return "unknown sender";
    case OP_EEXPIRED:
        return "expired or out of time window";
    case OP_ETOOBIG:
        return "too large";
    case OP_ESTORE:
        return "store error";
    case OP_EBUS:
        return "message bus error";
    case OP_ETIMEOUT:
        return "timed out";
    case OP_EPERM:
        return "not permitted";
    case OP_ESTALE:
        return "stale attempt";
    case OP_EFULL:
        return "queue full, retry later";
    case OP_ESYS:
        return "system call failed";
    case OP_EUSED:
        return "token already used";
    case OP_ECAPACITY:
        return "no site can satisfy the request";
    }
    return "unknown error";
}
