/* libFuzzer target: the policy parser (outside input: files written by site owners). */
#include "base/err.h"
#include "core/policy.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    policy *p = NULL;
    char err[256];
    if (policy_parse(text, "fuzz", &p, err, sizeof err) == OP_OK) {
        if (policy_version(p) < 1 || strlen(policy_hash(p)) != 64) abort();
        policy_free(p);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(text);
    return 0;
}
