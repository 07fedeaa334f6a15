/*
 * libFuzzer target: a request on a site's local socket (outside input: any
 * local user allowed on the socket). The bytes arrive through a real socket
 * pair and go through io/localsock's framing, bounds and JSON parsing, as the
 * site reads them.
 */
#include "base/err.h"
#include "io/localsock.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_BYTES 4096 /* a small bound, so that the too-big path is reached too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int pair[2];
    if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 0;
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = write(pair[0], data + sent, size - sent);
        if (n <= 0) break;
        sent += (size_t)n;
    }
    shutdown(pair[0], SHUT_WR);
    cJSON *req = NULL;
    int rc = localsock_read_request(pair[1], 1000, FUZZ_MAX_BYTES, &req);
    if (rc == OP_OK) {
        if (!req) abort(); /* OK always hands back a request */
        cJSON_Delete(req);
    } else if (req) {
        abort(); /* a refusal leaves nothing to free */
    } else if (rc != OP_EINVAL && rc != OP_ETOOBIG && rc != OP_ETIMEOUT && rc != OP_ENOMEM) {
        abort(); /* only the documented refusals */
    }
    close(pair[0]);
    close(pair[1]);
    return 0;
}
