#include "wire/proto.h"

#include "base/err.h"
#include "base/util.h"
#include "wire/msg.h"

#include <string.h>

int proto_topic(char *buf, size_t size, const char *realm, const char *id, const char *leaf)
{
    if (!util_valid_id(id)) return OP_EINVAL;
    return util_fmt(buf, size, MSG_TOPIC_ROOT "%s/%s/%s", realm, id, leaf);
}

size_t proto_max_bytes(const char *realm, const char *leaf)
{
    if (strcmp(realm, "op") == 0) return MSG_MAX_PAYLOAD_BYTES; /* req and resp */
    if (strcmp(leaf, "result") == 0 || strcmp(leaf, "inbox") == 0 || strcmp(leaf, "event") == 0)
        return MSG_MAX_PAYLOAD_BYTES;
    return PROTO_SMALL_BYTES; /* hello, state, and anything else */
}

int proto_peer_topic(char *buf, size_t size, const char *to, const char *from)
{
    if (!util_valid_id(to) || !util_valid_id(from)) return OP_EINVAL;
    return util_fmt(buf, size, MSG_TOPIC_ROOT "peer/%s/%s", to, from);
}

int proto_parse_peer_topic(const char *topic, char to[64], char from[64])
{
    const char *root = MSG_TOPIC_ROOT "peer/";
    size_t root_len = strlen(root);
    if (strncmp(topic, root, root_len) != 0) return OP_EINVAL;
    const char *a = topic + root_len, *slash = strchr(a, '/');
    if (!slash || slash == a || (size_t)(slash - a) >= 64 || strlen(slash + 1) >= 64)
        return OP_EINVAL;
    memcpy(to, a, (size_t)(slash - a));
    to[slash - a] = '\0';
    memcpy(from, slash + 1, strlen(slash + 1) + 1);
    return util_valid_id(to) && util_valid_id(from) ? OP_OK : OP_EINVAL;
}

int proto_parse_topic(const char *topic, char realm[8], char id[64], char leaf[16])
{
    size_t root_len = strlen(MSG_TOPIC_ROOT);
    if (strncmp(topic, MSG_TOPIC_ROOT, root_len) != 0) return OP_EINVAL;
    const char *p = topic + root_len;
    const char *s1 = strchr(p, '/');
    if (!s1 || (size_t)(s1 - p) >= 8) return OP_EINVAL;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || (size_t)(s2 - s1 - 1) >= 64) return OP_EINVAL;
    const char *l = s2 + 1;
    if (strlen(l) >= 16 || strchr(l, '/') || !*l) return OP_EINVAL;
    memcpy(realm, p, (size_t)(s1 - p));
    realm[s1 - p] = '\0';
    memcpy(id, s1 + 1, (size_t)(s2 - s1 - 1));
    id[s2 - s1 - 1] = '\0';
    memcpy(leaf, l, strlen(l) + 1); /* length checked above */
    if (strcmp(realm, "site") != 0 && strcmp(realm, "op") != 0) return OP_EINVAL;
    if (!util_valid_id(id)) return OP_EINVAL;
    return OP_OK;
}

int proto_must_seal(const char *topic)
{
    char realm[8], id[64], leaf[16];
    if (proto_parse_topic(topic, realm, id, leaf) != OP_OK) return 1;
    return !(strcmp(realm, "site") == 0 && strcmp(leaf, "state") == 0);
}
