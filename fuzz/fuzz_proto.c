/*
 * libFuzzer target for proto_parse_topic: every topic a hub or site
 * receives from the broker passes through it before anything else. The
 * input is the topic text (copied and NUL-terminated, so bytes after an
 * embedded NUL are never seen, as with a C string from the bus). On
 * success the parts must be sane and must rebuild, through proto_topic,
 * exactly the topic that was parsed: a parse that accepted something the
 * builder would not produce is a hole in the topic layout.
 */
#include "base/err.h"
#include "base/util.h"
#include "wire/proto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *topic = malloc(size + 1);
    if (!topic) return 0;
    memcpy(topic, data, size);
    topic[size] = '\0';

    char realm[8], id[64], leaf[16];
    int rc = proto_parse_topic(topic, realm, id, leaf);
    if (rc != OP_OK && rc != OP_EINVAL) abort();
    if (rc == OP_OK) {
        if (strcmp(realm, "site") != 0 && strcmp(realm, "op") != 0) abort();
        if (!util_valid_id(id)) abort();
        size_t leaf_len = strnlen(leaf, sizeof leaf);
        if (leaf_len == 0 || leaf_len >= sizeof leaf || strchr(leaf, '/')) abort();
        char rebuilt[PROTO_TOPIC_MAX];
        if (proto_topic(rebuilt, sizeof rebuilt, realm, id, leaf) != OP_OK) abort();
        if (strcmp(rebuilt, topic) != 0) abort();
        /* Without an embedded NUL, that is the whole input, byte for byte. */
        if (memchr(data, 0, size) == NULL &&
            (strlen(rebuilt) != size || memcmp(rebuilt, data, size) != 0))
            abort();
    }
    free(topic);
    return 0;
}
