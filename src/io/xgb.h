/*
 * xgb: gradient-boosted tree regressors through XGBoost's C API (Debian's
 * libxgboost-dev 1.7). It owns the boosters (xgb_model, opaque) and turns
 * every XGBoost failure into an OP_ code with a logged message; no XGBoost
 * type or code leaks out of this module.
 *
 * A model is an artifact of bytes (UBJSON) with a SHA-256: xgb_save writes
 * one, xgb_load reads one back and gives identical predictions. Training is
 * deterministic: one thread, a fixed seed, the histogram tree method.
 * Continued training (xgb_continue) adds rounds to an existing model from new
 * rows, which is how a site keeps learning without keeping every row.
 *
 * Rows are dense row-major floats, NaN for a missing value; labels are finite.
 *
 * The library is opened with dlopen on the first call that needs it (not
 * linked), so a process that never trains nor loads a model never maps it;
 * where it cannot be opened, xgb_train and xgb_load fail with OP_EIO.
 */
#ifndef OUTPOST_XGB_H
#define OUTPOST_XGB_H

#include <stddef.h>
#include <stdint.h>

typedef struct xgb_model xgb_model;

typedef enum {
    XGB_SQUARED = 0,  /* reg:squarederror */
    XGB_ABSOLUTE = 1, /* reg:absoluteerror */
} xgb_objective;

typedef struct xgb_params {
    xgb_objective objective;
    int max_depth;           /* 1..16 */
    double eta;              /* learning rate, (0, 1] */
    int rounds;              /* trees xgb_train grows, 1..10000 */
    double min_child_weight; /* >= 0: a split needs this much hessian on each side */
    double lambda;           /* >= 0: L2 regularisation of leaf weights */
    uint32_t seed;
} xgb_params;

/* Bounds on what this module accepts. */
enum {
    XGB_MAX_COLS = 1024,
    XGB_MAX_ROUNDS = 10000,
};
#define XGB_MAX_CELLS ((size_t)1 << 28)       /* rows * cols of one call */
#define XGB_MAX_MODEL_BYTES ((size_t)1 << 28) /* 256 MiB: a bigger artifact is refused */

/* Depth 6, eta 0.1, 100 rounds, squared error, min_child_weight 1, lambda 1, seed 0. */
void xgb_params_default(xgb_params *p);

/*
 * Trains a new model on rows x (rows * cols) with labels y; *out is released
 * with xgb_free. The model starts from 0 (base_score 0): callers train on a
 * residual when they have a prior. Errors: OP_EINVAL (bad shape, parameter or
 * label, or XGBoost refused: xgb_last_error says why), OP_ETOOBIG, OP_ENOMEM.
 */
int xgb_train(const xgb_params *p, const float *x, size_t rows, size_t cols, const float *y,
              xgb_model **out);

/*
 * Continued training: adds `rounds` trees to m, fitted on the new rows (the
 * residuals of m's current predictions there); p's tree parameters apply to
 * the new trees (its objective must be m's). Same errors as xgb_train; on an
 * error m may have some of the new trees.
 */
int xgb_continue(xgb_model *m, const xgb_params *p, const float *x, size_t rows, size_t cols,
                 const float *y, int rounds);

/* The model's output for each of `rows` rows into out[rows]. OP_EINVAL, OP_ENOMEM. */
int xgb_predict(const xgb_model *m, const float *x, size_t rows, size_t cols, float *out);

/* Trees grown so far, and the number of feature columns the model expects. */
int xgb_rounds(const xgb_model *m);
size_t xgb_cols(const xgb_model *m);

/* A model as bytes: UBJSON, with its SHA-256 in hex. Released with xgb_artifact_clear. */
typedef struct xgb_artifact {
    uint8_t *bytes;
    size_t len;
    char sha256[65];
} xgb_artifact;

/* Serialises m into *out. OP_EINVAL (XGBoost refused), OP_ENOMEM. */
int xgb_save(const xgb_model *m, xgb_artifact *out);
void xgb_artifact_clear(xgb_artifact *a);

/*
 * Loads a model from bytes written by xgb_save (or XGBoost's JSON) whose
 * SHA-256 must be expected_sha256 (64 hex digits, from the artifact's signed
 * record). XGBoost's parser is not built for hostile bytes (one flipped byte
 * in a UBJSON model can crash it), so the hash is checked first, with the size
 * and the first byte; then XGBoost parses, then the model must have at least
 * one feature and one tree. OP_EINVAL (not a model, or not the expected
 * bytes: xgb_last_error says why), OP_ETOOBIG (over XGB_MAX_MODEL_BYTES),
 * OP_ENOMEM.
 */
int xgb_load(const uint8_t *bytes, size_t len, const char *expected_sha256, xgb_model **out);

/* A copy of m (through its bytes). OP_EINVAL, OP_ENOMEM. */
int xgb_clone(const xgb_model *m, xgb_model **out);

void xgb_free(xgb_model *m);

/* The reason for the calling thread's last failed xgb_ call (static text, never NULL). */
const char *xgb_last_error(void);

#endif
