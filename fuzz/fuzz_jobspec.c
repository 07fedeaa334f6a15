/*
 * libFuzzer target for jobspec_parse: the job spec an operator submits is
 * outside input. Every accepted spec is released again (no leaks), and the
 * fields it promises are checked to be within their documented bounds.
 */
#include "base/err.h"
#include "core/jobspec.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jobspec spec;
    char err[256];
    err[0] = '\0';
    int rc = jobspec_parse((const char *)data, size, &spec, err, sizeof err);
    if (rc != OP_OK) {
        /* A refusal always says why, and holds nothing. */
        if (err[0] == '\0' || spec.argc != 0 || spec.n_inputs != 0) abort();
        return 0;
    }
    if (spec.kind != JOB_KIND_EXEC && spec.kind != JOB_KIND_NOOP) abort();
    if (spec.kind == JOB_KIND_EXEC && (spec.argc < 1 || spec.argv[0][0] == '\0')) abort();
    if (spec.argc > JOBSPEC_MAX_ARGS || spec.argv[spec.argc] != NULL) abort();
    if (spec.cores < 1 || spec.cores > JOBSPEC_MAX_CORES) abort();
    if (spec.class_mask == 0 || (spec.class_mask & ~(unsigned)CLASS_ALL)) abort();
    if (spec.data_class == DATA_SITE_PRIVATE && spec.origin[0] == '\0') abort();
    size_t total = 0;
    for (int i = 0; i < spec.n_inputs; i++) {
        const jobspec_file *f = &spec.inputs[i];
        if (f->name[0] == '\0' || f->name[0] == '.' || strchr(f->name, '/')) abort();
        total += f->len;
    }
    if (total > JOBSPEC_MAX_INPUT_BYTES) abort();
    for (int i = 0; i < spec.n_outputs; i++)
        if (spec.outputs[i][0] == '\0' || spec.outputs[i][0] == '.' || strchr(spec.outputs[i], '/'))
            abort();
    jobspec_clear(&spec);
    return 0;
}
