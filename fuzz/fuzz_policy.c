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
        /* What the parser promises about the verification rules it accepted. */
        verify_params v;
        policy_verify_params(p, &v);
        if (v.quorum < 2 || v.quorum > v.max_replicas || v.max_replicas > VERIFY_MAX_RESULTS ||
            v.n_kinds > VERIFY_MAX_KINDS || (v.reexec_on_trusted && !v.trusted_classes) ||
            !(v.spot_check_floor > 0 && v.spot_check_floor <= 1))
            abort();
        for (size_t i = 0; i < v.n_kinds; i++)
            if (v.kinds[i].replicas > v.max_replicas) abort();
        policy_free(p);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(text);
    return 0;
}
