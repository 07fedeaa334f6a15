/*
 * libFuzzer target: the hub's handlers for authenticated site messages
 * (heartbeat, events, results, capacity) and operator requests, which parse
 * bodies from outside after the signature check. First byte: which handler.
 */
#include "hub/hub.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0) return 0;
        ready = 1;
    }
    if (size > 65536) return 0;
    return hub__fuzz_one(data, size);
}
