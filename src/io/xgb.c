#include "io/xgb.h"

#include "base/err.h"
#include "base/log.h"
#include "base/util.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

/*
 * libxgboost is opened with dlopen on first use, not linked: the site agent
 * and the hub never train nor load a model (children do: `outpost learn
 * fit`, `outpost learn predict`), so they never map its 6 MB and the C++
 * runtime it brings. The header gives the types; each call goes through
 * this table, filled by load_library.
 */
#define XGB_FUNCTIONS(X)                                                                           \
    X(XGBGetLastError)                                                                             \
    X(XGBRegisterLogCallback)                                                                      \
    X(XGBSetGlobalConfig)                                                                          \
    X(XGBoosterBoostedRounds)                                                                      \
    X(XGBoosterCreate)                                                                             \
    X(XGBoosterFree)                                                                               \
    X(XGBoosterGetNumFeature)                                                                      \
    X(XGBoosterLoadModelFromBuffer)                                                                \
    X(XGBoosterPredict)                                                                            \
    X(XGBoosterSaveModelToBuffer)                                                                  \
    X(XGBoosterSetParam)                                                                           \
    X(XGBoosterUpdateOneIter)                                                                      \
    X(XGDMatrixCreateFromMat_omp)                                                                  \
    X(XGDMatrixFree)                                                                               \
    X(XGDMatrixSetFloatInfo)

#define XGB_MEMBER(name) __typeof__(&name) name;
static struct {
    void *handle;
    int tried;
    XGB_FUNCTIONS(XGB_MEMBER)
} lib;
#undef XGB_MEMBER

/* Opens libxgboost and finds every function this module calls. OP_OK or OP_EIO. */
static int load_library(void)
{
    static const char *const names[] = {"libxgboost.so.0", "libxgboost.so"};
    for (size_t i = 0; !lib.handle && i < sizeof names / sizeof names[0]; i++)
        lib.handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle) return OP_EIO;
    int missing = 0;
#define XGB_FIND(name)                                                                             \
    *(void **)&lib.name = dlsym(lib.handle, #name);                                                \
    missing |= lib.name == NULL;
    XGB_FUNCTIONS(XGB_FIND)
#undef XGB_FIND
    if (!missing) return OP_OK;
    dlclose(lib.handle);
    lib.handle = NULL;
    return OP_EIO;
}

#define XGBGetLastError lib.XGBGetLastError
#define XGBRegisterLogCallback lib.XGBRegisterLogCallback
#define XGBSetGlobalConfig lib.XGBSetGlobalConfig
#define XGBoosterBoostedRounds lib.XGBoosterBoostedRounds
#define XGBoosterCreate lib.XGBoosterCreate
#define XGBoosterFree lib.XGBoosterFree
#define XGBoosterGetNumFeature lib.XGBoosterGetNumFeature
#define XGBoosterLoadModelFromBuffer lib.XGBoosterLoadModelFromBuffer
#define XGBoosterPredict lib.XGBoosterPredict
#define XGBoosterSaveModelToBuffer lib.XGBoosterSaveModelToBuffer
#define XGBoosterSetParam lib.XGBoosterSetParam
#define XGBoosterUpdateOneIter lib.XGBoosterUpdateOneIter
#define XGDMatrixCreateFromMat_omp lib.XGDMatrixCreateFromMat_omp
#define XGDMatrixFree lib.XGDMatrixFree
#define XGDMatrixSetFloatInfo lib.XGDMatrixSetFloatInfo

struct xgb_model {
    BoosterHandle booster;
    size_t cols;
};

static _Thread_local char last_error[512] = "no error";

const char *xgb_last_error(void)
{
    return last_error;
}

/* Records why something failed (for xgb_last_error) and logs it; returns rc. */
static int refuse(int rc, const char *what)
{
    snprintf(last_error, sizeof last_error, "%s", what);
    log_warn("xgb", "%s", what);
    return rc;
}

/*
 * An XGBoost call failed. Its message reads "[hh:mm:ss] file.cc:line: why"
 * followed by a C++ stack trace: keep the call's name and the why.
 */
static int library_failed(const char *call)
{
    const char *why = XGBGetLastError();
    if (!why || !*why) why = "unknown error";
    if (why[0] == '[') {
        const char *after_time = strstr(why, "] ");
        const char *after_place = after_time ? strstr(after_time + 2, ": ") : NULL;
        if (after_place) why = after_place + 2;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s: %s", (int)strcspn(call, "("), call, why);
    msg[strcspn(msg, "\n")] = '\0';
    return refuse(OP_EINVAL, msg);
}

#define XGB_CHECK(call)                                                                            \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            rc = library_failed(#call);                                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static void log_from_xgboost(const char *text)
{
    log_info("xgb", "xgboost: %s", text);
}

/*
 * The library opened, and its own messages sent to our log; done once per
 * process. OP_OK, or OP_EIO (no libxgboost here: xgb_last_error says so).
 */
static int init_library(void)
{
    if (lib.tried)
        return lib.handle ? OP_OK
                          : refuse(OP_EIO, "libxgboost (Debian's libxgboost0) cannot be opened");
    lib.tried = 1;
    if (load_library() != OP_OK)
        return refuse(OP_EIO, "libxgboost (Debian's libxgboost0) cannot be opened");
    XGBRegisterLogCallback(log_from_xgboost);
    if (XGBSetGlobalConfig("{\"verbosity\": 1}") != 0) (void)library_failed("XGBSetGlobalConfig");
    return OP_OK;
}

void xgb_params_default(xgb_params *p)
{
    memset(p, 0, sizeof *p);
    p->objective = XGB_SQUARED;
    p->max_depth = 6;
    p->eta = 0.1;
    p->rounds = 100;
    p->min_child_weight = 1;
    p->lambda = 1;
}

static int check_params(const xgb_params *p)
{
    if (p->objective != XGB_SQUARED && p->objective != XGB_ABSOLUTE)
        return refuse(OP_EINVAL, "unknown objective");
    if (p->max_depth < 1 || p->max_depth > 16) return refuse(OP_EINVAL, "max_depth not in 1..16");
    if (!(p->eta > 0 && p->eta <= 1)) return refuse(OP_EINVAL, "eta not in (0, 1]");
    if (!(p->min_child_weight >= 0 && p->min_child_weight < 1e9) ||
        !(p->lambda >= 0 && p->lambda < 1e9))
        return refuse(OP_EINVAL, "min_child_weight or lambda out of range");
    return OP_OK;
}

/* Checks shape and values before XGBoost sees them: NaN is a missing feature, infinity is not. */
static int check_rows(const float *x, size_t rows, size_t cols, const float *y)
{
    if (!x || rows == 0 || cols == 0) return refuse(OP_EINVAL, "no rows");
    if (cols > XGB_MAX_COLS || rows > XGB_MAX_CELLS / cols)
        return refuse(OP_ETOOBIG, "too many rows or columns");
    for (size_t i = 0; i < rows * cols; i++)
        if (isinf(x[i])) return refuse(OP_EINVAL, "an infinite feature value");
    for (size_t i = 0; y && i < rows; i++)
        if (!isfinite(y[i])) return refuse(OP_EINVAL, "a label that is not a finite number");
    return OP_OK;
}

static int set_param(BoosterHandle b, const char *name, const char *value)
{
    if (XGBoosterSetParam(b, name, value) != 0) return library_failed("XGBoosterSetParam");
    return OP_OK;
}

/* Applies p to a booster; the fixed ones (one thread, hist, seed) make training deterministic. */
static int apply_params(BoosterHandle b, const xgb_params *p)
{
    char depth[16], eta[32], mcw[32], lambda[32], seed[16];
    snprintf(depth, sizeof depth, "%d", p->max_depth);
    snprintf(eta, sizeof eta, "%.17g", p->eta);
    snprintf(mcw, sizeof mcw, "%.17g", p->min_child_weight);
    snprintf(lambda, sizeof lambda, "%.17g", p->lambda);
    snprintf(seed, sizeof seed, "%u", (unsigned)p->seed);
    const char *kv[][2] = {
        {"objective", p->objective == XGB_ABSOLUTE ? "reg:absoluteerror" : "reg:squarederror"},
        {"nthread", "1"},
        {"tree_method", "hist"},
        {"max_depth", depth},
        {"eta", eta},
        {"min_child_weight", mcw},
        {"lambda", lambda},
        {"seed", seed},
        {"validate_parameters", "1"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        int rc = set_param(b, kv[i][0], kv[i][1]);
        if (rc != OP_OK) return rc;
    }
    return OP_OK;
}

static int make_matrix(const float *x, size_t rows, size_t cols, const float *y, DMatrixHandle *out)
{
    int rc = OP_OK;
    *out = NULL;
    XGB_CHECK(XGDMatrixCreateFromMat_omp(x, (bst_ulong)rows, (bst_ulong)cols, NAN, out, 1));
    if (y) XGB_CHECK(XGDMatrixSetFloatInfo(*out, "label", y, (bst_ulong)rows));
out:
    if (rc != OP_OK && *out) {
        XGDMatrixFree(*out);
        *out = NULL;
    }
    return rc;
}

/* Checks a training call's inputs and builds its matrix; model_cols 0: any column count. */
static int training_matrix(const xgb_params *p, const float *x, size_t rows, size_t cols,
                           const float *y, size_t model_cols, DMatrixHandle *d)
{
    *d = NULL;
    int rc = check_params(p);
    if (rc == OP_OK) rc = check_rows(x, rows, cols, y);
    if (rc == OP_OK && !y) rc = refuse(OP_EINVAL, "no labels");
    if (rc == OP_OK && model_cols && cols != model_cols)
        rc = refuse(OP_EINVAL, "the rows' columns differ from the model's");
    if (rc == OP_OK) rc = make_matrix(x, rows, cols, y, d);
    return rc;
}

/* Grows `rounds` trees on d; the iteration number continues from the model's rounds. */
static int boost(xgb_model *m, const xgb_params *p, DMatrixHandle d, int rounds)
{
    if (rounds < 1 || rounds > XGB_MAX_ROUNDS) return refuse(OP_EINVAL, "rounds out of range");
    if (xgb_rounds(m) > XGB_MAX_ROUNDS - rounds) return refuse(OP_ETOOBIG, "too many trees");
    int rc = apply_params(m->booster, p);
    int start = xgb_rounds(m);
    for (int i = 0; rc == OP_OK && i < rounds; i++)
        XGB_CHECK(XGBoosterUpdateOneIter(m->booster, start + i, d));
out:
    return rc;
}

/* A booster bound to the training matrix d (XGBoost learns the feature count from it). */
static int new_model(DMatrixHandle d, xgb_model **out)
{
    int rc = init_library();
    if (rc != OP_OK) return rc;
    xgb_model *m = calloc(1, sizeof *m);
    if (!m) return OP_ENOMEM;
    XGB_CHECK(XGBoosterCreate(d ? &d : NULL, d ? 1 : 0, &m->booster));
out:
    if (rc != OP_OK) {
        free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

int xgb_train(const xgb_params *p, const float *x, size_t rows, size_t cols, const float *y,
              xgb_model **out)
{
    *out = NULL;
    xgb_model *m = NULL;
    DMatrixHandle d = NULL;
    int rc = init_library();
    if (rc == OP_OK) rc = training_matrix(p, x, rows, cols, y, 0, &d);
    if (rc == OP_OK) rc = new_model(d, &m);
    /* the model predicts 0 before its first tree: a residual's natural prior */
    if (rc == OP_OK) rc = set_param(m->booster, "base_score", "0");
    if (rc == OP_OK) rc = boost(m, p, d, p->rounds);
    if (d) XGDMatrixFree(d);
    if (rc != OP_OK) {
        xgb_free(m);
        return rc;
    }
    m->cols = cols;
    *out = m;
    return OP_OK;
}

int xgb_continue(xgb_model *m, const xgb_params *p, const float *x, size_t rows, size_t cols,
                 const float *y, int rounds)
{
    DMatrixHandle d;
    int rc = training_matrix(p, x, rows, cols, y, m->cols, &d);
    if (rc == OP_OK) rc = boost(m, p, d, rounds);
    if (d) XGDMatrixFree(d);
    return rc;
}

int xgb_predict(const xgb_model *m, const float *x, size_t rows, size_t cols, float *out)
{
    int rc = check_rows(x, rows, cols, NULL);
    if (rc == OP_OK && cols != m->cols)
        rc = refuse(OP_EINVAL, "the rows' columns differ from the model's");
    if (rc != OP_OK) return rc;
    DMatrixHandle d = NULL;
    if ((rc = make_matrix(x, rows, cols, NULL, &d)) != OP_OK) return rc;
    bst_ulong len = 0;
    const float *result = NULL;
    XGB_CHECK(XGBoosterPredict(m->booster, d, 0, 0, 0, &len, &result));
    if (len != rows) {
        rc = refuse(OP_EINVAL, "XGBoost answered a different number of predictions");
        goto out;
    }
    memcpy(out, result, rows * sizeof *out);
out:
    XGDMatrixFree(d);
    return rc;
}

int xgb_rounds(const xgb_model *m)
{
    int n = 0;
    if (XGBoosterBoostedRounds(m->booster, &n) != 0) return 0;
    return n;
}

size_t xgb_cols(const xgb_model *m)
{
    return m->cols;
}

int xgb_save(const xgb_model *m, xgb_artifact *out)
{
    int rc = OP_OK;
    memset(out, 0, sizeof *out);
    bst_ulong len = 0;
    const char *bytes = NULL;
    XGB_CHECK(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"ubj\"}", &len, &bytes));
    if (len == 0 || len > XGB_MAX_MODEL_BYTES) {
        rc = refuse(OP_ETOOBIG, "the model's bytes are empty or over the bound");
        goto out;
    }
    out->bytes = malloc(len);
    if (!out->bytes) return OP_ENOMEM;
    memcpy(out->bytes, bytes, len);
    out->len = len;
    util_sha256_hex(out->bytes, out->len, out->sha256);
out:
    return rc;
}

void xgb_artifact_clear(xgb_artifact *a)
{
    free(a->bytes);
    memset(a, 0, sizeof *a);
}

/* The checks of xgb_load before XGBoost's parser sees the bytes, cheapest first. */
static int check_artifact(const uint8_t *bytes, size_t len, const char *expected_sha256)
{
    if (!bytes || len == 0) return refuse(OP_EINVAL, "not a model: no bytes");
    if (len > XGB_MAX_MODEL_BYTES) return refuse(OP_ETOOBIG, "not a model: over the size bound");
    /* UBJSON and JSON models are both one object: '{' first */
    if (bytes[0] != '{') return refuse(OP_EINVAL, "not a model: it does not start as an object");
    char actual[65];
    util_sha256_hex(bytes, len, actual);
    if (!expected_sha256 || strcmp(actual, expected_sha256) != 0)
        return refuse(OP_EINVAL, "not the expected model: its SHA-256 differs");
    return OP_OK;
}

int xgb_load(const uint8_t *bytes, size_t len, const char *expected_sha256, xgb_model **out)
{
    *out = NULL;
    int rc = check_artifact(bytes, len, expected_sha256);
    xgb_model *m = NULL;
    if (rc == OP_OK) rc = new_model(NULL, &m);
    if (rc != OP_OK) return rc;
    XGB_CHECK(XGBoosterLoadModelFromBuffer(m->booster, bytes, (bst_ulong)len));
    bst_ulong cols = 0;
    XGB_CHECK(XGBoosterGetNumFeature(m->booster, &cols));
    if (cols == 0 || cols > XGB_MAX_COLS || xgb_rounds(m) < 1) {
        rc = refuse(OP_EINVAL, "not a model: no features or no trees");
        goto out;
    }
    m->cols = (size_t)cols;
    rc = set_param(m->booster, "nthread", "1");
out:
    if (rc != OP_OK) {
        xgb_free(m);
        return rc;
    }
    *out = m;
    return OP_OK;
}

int xgb_clone(const xgb_model *m, xgb_model **out)
{
    xgb_artifact a;
    *out = NULL;
    int rc = xgb_save(m, &a);
    if (rc == OP_OK) rc = xgb_load(a.bytes, a.len, a.sha256, out);
    xgb_artifact_clear(&a);
    return rc;
}

void xgb_free(xgb_model *m)
{
    if (!m) return;
    if (m->booster) XGBoosterFree(m->booster);
    free(m);
}
