/*
 * predictor: one question to one model, answered by a child process
 * (`PROGRAM learn predict`) under the sandbox's limits, so that the process
 * asking (the site agent, the hub) never maps XGBoost nor parses a model's
 * bytes: a model crafted to break XGBoost's loader (a pooled model comes
 * from other sites) breaks a short-lived child with no network, a seccomp
 * filter, rlimits on memory, CPU and files, and a wall-time limit. An
 * answer takes tens of milliseconds (a fork, an exec, one model load); a
 * hostile model can make it take the whole wall-time limit, so a process
 * serving others (the hub) starts a call and polls it from its loop
 * instead of waiting.
 *
 * A predictor_call owns its child until predictor_free.
 */
#ifndef OUTPOST_PREDICTOR_H
#define OUTPOST_PREDICTOR_H

#include "learn/learn.h"

#include <stddef.h>
#include <stdint.h>

typedef struct predictor_opts {
    const char *program;  /* the outpost binary the child runs */
    const char *workdir;  /* an existing directory: the child's cwd (it writes .stdout there) */
    int use_seccomp;      /* from sandbox_probe's caps */
    int use_netns;        /* from sandbox_probe's caps */
    int64_t timeout_ms;   /* the child is killed after it; 0: PREDICTOR_TIMEOUT_MS */
    int64_t memory_bytes; /* RLIMIT_AS; 0: no limit (an ASan build cannot start under one) */
} predictor_opts;

#define PREDICTOR_TIMEOUT_MS 3000

/* One question being answered by its child. */
typedef struct predictor_call predictor_call;

/*
 * Starts the child that asks the model at model_path (whose bytes must hash
 * to sha256) the question (features row, the plan's planned_s). OP_OK with
 * *out, OP_EINVAL (a bad argument) or OP_ESYS (no child), err saying why.
 */
int predictor_start(const predictor_opts *o, const char *model_path, const char *sha256,
                    double planned_s, const float row[LEARN_FEATURES], predictor_call **out,
                    char *err, size_t err_len);
/*
 * Never blocks: 1 while the child runs (the wall-time limit is enforced
 * here), else the call's outcome as predictor_run returns it.
 */
int predictor_poll(predictor_call *c, double *seconds, char *err, size_t err_len);
/* Kills a child still running, reaps it, frees the call (NULL is fine). */
void predictor_free(predictor_call *c);

/*
 * The model at model_path, whose bytes must hash to sha256 (from a record
 * the caller trusts), answers the question (features row, the plan's
 * planned_s): *seconds. OP_OK; OP_EINVAL (a bad argument, or the child
 * refused the model or the row: err says why), OP_ETIMEOUT (killed at the
 * time limit), OP_ESYS (the child could not be started), OP_EIO (it died or
 * answered nothing readable).
 */
int predictor_run(const predictor_opts *o, const char *model_path, const char *sha256,
                  double planned_s, const float row[LEARN_FEATURES], double *seconds, char *err,
                  size_t err_len);

#endif
