#include "core/jobspec.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "core/artifact.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned jobspec_class_bit(const char *cls)
{
    if (!cls) return 0;
    if (strcmp(cls, "pod") == 0) return CLASS_POD;
    if (strcmp(cls, "car") == 0) return CLASS_CAR;
    if (strcmp(cls, "dc") == 0) return CLASS_DC;
    return 0;
}

const char *jobspec_class_name(unsigned bit)
{
    switch (bit) {
    case CLASS_POD:
        return "pod";
    case CLASS_CAR:
        return "car";
    case CLASS_DC:
        return "dc";
    }
    return "?";
}

int jobspec_kind_of(const char *name)
{
    if (strcmp(name, "exec") == 0) return JOB_KIND_EXEC;
    if (strcmp(name, "noop") == 0) return JOB_KIND_NOOP;
    if (strcmp(name, "route") == 0) return JOB_KIND_ROUTE;
    if (strcmp(name, "learn") == 0) return JOB_KIND_LEARN;
    return 0;
}

const char *jobspec_kind_name(int kind)
{
    return kind == JOB_KIND_EXEC    ? "exec"
           : kind == JOB_KIND_NOOP  ? "noop"
           : kind == JOB_KIND_ROUTE ? "route"
           : kind == JOB_KIND_LEARN ? "learn"
                                    : "?";
}

int jobspec_deterministic(const jobspec *spec)
{
    switch (spec->kind) {
    case JOB_KIND_NOOP:
        return 1;
    case JOB_KIND_ROUTE:
        return spec->route_iterations > 0;
    default:
        return spec->deterministic;
    }
}

const char *jobspec_data_class_name(int data_class)
{
    switch (data_class) {
    case DATA_PUBLIC:
        return "public";
    case DATA_CONFIDENTIAL:
        return "confidential";
    case DATA_SITE_PRIVATE:
        return "site-private";
    }
    return "?";
}

void jobspec_clear(jobspec *spec)
{
    for (int i = 0; i < spec->argc; i++)
        free(spec->argv[i]);
    for (int i = 0; i < spec->n_inputs; i++)
        free(spec->inputs[i].data);
    memset(spec, 0, sizeof *spec);
}

/* A file name inside the work dir: no path separators, no leading dot, printable. */
static int safe_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= 128 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static int get_int(const cJSON *obj, const char *key, const char *path, int64_t def, int64_t min,
                   int64_t max, int64_t *out, char *err, size_t err_len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) {
        *out = def;
        return OP_OK;
    }
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(v) || floor(v) != v || v < (double)min || v > (double)max) {
        snprintf(err, err_len, "%s%s: must be an integer from %lld to %lld", path, key,
                 (long long)min, (long long)max);
        return OP_EINVAL;
    }
    *out = (int64_t)v;
    return OP_OK;
}

static int parse_inputs(const cJSON *inputs, jobspec *spec, char *err, size_t err_len)
{
    size_t total = 0;
    if (!inputs) return OP_OK;
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) > JOBSPEC_MAX_FILES) {
        snprintf(err, err_len, "inputs: must be an array of at most %d files", JOBSPEC_MAX_FILES);
        return OP_EINVAL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, inputs)
    {
        jobspec_file *f = &spec->inputs[spec->n_inputs];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(item, "sha256");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(item, "data_b64");
        int idx = spec->n_inputs;
        if (!cJSON_IsString(name) || !safe_file_name(name->valuestring)) {
            snprintf(err, err_len,
                     "inputs[%d].name: must be a plain file name (no '/', no leading '.')", idx);
            return OP_EINVAL;
        }
        for (int j = 0; j < idx; j++)
            if (strcmp(spec->inputs[j].name, name->valuestring) == 0) {
                snprintf(err, err_len, "inputs[%d].name: '%s' appears twice", idx,
                         name->valuestring);
                return OP_EINVAL;
            }
        if (!cJSON_IsString(hash) || strlen(hash->valuestring) != 64) {
            snprintf(err, err_len, "inputs[%d].sha256: must be 64 hex digits", idx);
            return OP_EINVAL;
        }
        if (!cJSON_IsString(data)) {
            snprintf(err, err_len, "inputs[%d].data_b64: missing (inputs travel with the job)",
                     idx);
            return OP_EINVAL;
        }
        int rc =
            util_b64_decode(data->valuestring, JOBSPEC_MAX_INPUT_BYTES - total, &f->data, &f->len);
        if (rc == OP_ETOOBIG) {
            snprintf(err, err_len, "inputs: more than %d bytes in all", JOBSPEC_MAX_INPUT_BYTES);
            return OP_ETOOBIG;
        }
        if (rc != OP_OK) {
            snprintf(err, err_len, "inputs[%d].data_b64: not valid base64", idx);
            return rc;
        }
        spec->n_inputs++;
        total += f->len;
        snprintf(f->name, sizeof f->name, "%s", name->valuestring);
        util_sha256_hex(f->data, f->len, f->sha256);
        if (strcmp(f->sha256, hash->valuestring) != 0) {
            snprintf(err, err_len, "inputs[%d].sha256: does not match the attached bytes", idx);
            return OP_EINVAL;
        }
    }
    return OP_OK;
}

static int parse_strings(const cJSON *arr, const char *path, int max, size_t max_len, char *err,
                         size_t err_len)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > max) {
        snprintf(err, err_len, "%s: must be an array of at most %d strings", path, max);
        return OP_EINVAL;
    }
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsString(item) || strlen(item->valuestring) >= max_len) {
            snprintf(err, err_len, "%s[%d]: must be a string shorter than %zu bytes", path, i,
                     max_len);
            return OP_EINVAL;
        }
        i++;
    }
    return OP_OK;
}

/* The "route" options of a route job; its single input and fixed outputs. */
static int parse_route(const cJSON *root, const cJSON *res, jobspec *spec, char *err,
                       size_t err_len)
{
    const cJSON *route = cJSON_GetObjectItemCaseSensitive(root, "route");
    if (spec->kind != JOB_KIND_ROUTE) {
        if (!route) return OP_OK;
        snprintf(err, err_len, "route: only route jobs take route options");
        return OP_EINVAL;
    }
    if (route && !cJSON_IsObject(route)) {
        snprintf(err, err_len, "route: must be an object");
        return OP_EINVAL;
    }
    /* the instance, and the checkpoint a departing site handed back */
    if (spec->n_inputs != 1 &&
        !(spec->n_inputs == 2 && strcmp(spec->inputs[1].name, spec->checkpoint) == 0)) {
        snprintf(err, err_len, "inputs: a route job takes exactly one input, the instance");
        return OP_EINVAL;
    }
    if (spec->n_outputs) {
        snprintf(err, err_len, "outputs: a route job's outputs are solution.json and routes.svg");
        return OP_EINVAL;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, route)
    {
        if (strcmp(f->string, "time_limit_s") != 0 && strcmp(f->string, "seed") != 0 &&
            strcmp(f->string, "iterations") != 0) {
            snprintf(err, err_len, "route.%.64s: unknown field", f->string);
            return OP_EINVAL;
        }
    }
    spec->route_time_limit_s = 10;
    int rc = route ? jsonx_num(route, "time_limit_s", &spec->route_time_limit_s) : OP_ENOTFOUND;
    if (rc == OP_EINVAL || !(spec->route_time_limit_s > 0) ||
        spec->route_time_limit_s > JOBSPEC_ROUTE_MAX_S) {
        snprintf(err, err_len, "route.time_limit_s: must be a number of seconds, 0 < S <= %d",
                 JOBSPEC_ROUTE_MAX_S);
        return OP_EINVAL;
    }
    if ((rc = get_int(route, "seed", "route.", 1, 0, INT64_MAX / 2, &spec->route_seed, err,
                      err_len)) ||
        (rc = get_int(route, "iterations", "route.", 0, 1, JOBSPEC_ROUTE_MAX_ITERATIONS,
                      &spec->route_iterations, err, err_len)))
        return rc;
    int64_t need = (int64_t)ceil(spec->route_time_limit_s) + 30;
    if (!cJSON_GetObjectItemCaseSensitive(res, "wall_s") && spec->wall_s < need) {
        spec->wall_s = need;
        if (!cJSON_GetObjectItemCaseSensitive(res, "cpu_s")) spec->cpu_s = need * spec->cores;
    }
    if (spec->wall_s < (int64_t)ceil(spec->route_time_limit_s) + 1) {
        snprintf(err, err_len, "resources.wall_s: must be more than route.time_limit_s");
        return OP_EINVAL;
    }
    snprintf(spec->outputs[0], sizeof spec->outputs[0], "solution.json");
    snprintf(spec->outputs[1], sizeof spec->outputs[1], "routes.svg");
    spec->n_outputs = 2;
    return OP_OK;
}

/* Every top-level field is one we know: a typo is an error, not a silently ignored option. */
static int check_known_fields(const cJSON *root, char *err, size_t err_len)
{
    static const char *known[] = {
        "kind",         "name",       "command",    "resources",    "inputs",        "outputs",
        "site_classes", "data_class", "origin",     "max_attempts", "deterministic", "route",
        "checkpoint",   "deadline_s", "expected_s", "deferrable",   "model",         "model_sha256",
        "model_bytes",  "learn",      NULL};
    const cJSON *field;
    cJSON_ArrayForEach(field, root)
    {
        int ok = 0;
        for (const char **k = known; *k; k++)
            if (field->string && strcmp(field->string, *k) == 0) ok = 1;
        if (!ok) {
            snprintf(err, err_len, "%.64s: unknown field", field->string ? field->string : "?");
            return OP_EINVAL;
        }
    }
    return OP_OK;
}

static int parse_kind_and_name(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (!cJSON_IsString(kind)) {
        snprintf(err, err_len, "kind: required, one of exec, noop, route, learn");
        return OP_EINVAL;
    }
    spec->kind = jobspec_kind_of(kind->valuestring);
    if (!spec->kind) {
        snprintf(err, err_len, "kind: '%.32s' is not a job kind (exec, noop, route, learn)",
                 kind->valuestring);
        return OP_EINVAL;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (name) {
        if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof spec->name) {
            snprintf(err, err_len, "name: must be a string of at most 63 bytes");
            return OP_EINVAL;
        }
        snprintf(spec->name, sizeof spec->name, "%s", name->valuestring);
    }
    return OP_OK;
}

/* An exec job's argv (required, a program first); no other kind takes one. */
static int parse_command(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *command = cJSON_GetObjectItemCaseSensitive(root, "command");
    if (spec->kind != JOB_KIND_EXEC) {
        if (!command) return OP_OK;
        snprintf(err, err_len, "command: only exec jobs take a command");
        return OP_EINVAL;
    }
    if (!command) {
        snprintf(err, err_len, "command: required for exec jobs (an array: program, args)");
        return OP_EINVAL;
    }
    int rc =
        parse_strings(command, "command", JOBSPEC_MAX_ARGS, JOBSPEC_MAX_ARG_BYTES, err, err_len);
    if (rc != OP_OK) return rc;
    if (cJSON_GetArraySize(command) == 0 || !*command->child->valuestring) {
        snprintf(err, err_len, "command: must name a program");
        return OP_EINVAL;
    }
    const cJSON *arg;
    cJSON_ArrayForEach(arg, command)
    {
        spec->argv[spec->argc] = strdup(arg->valuestring);
        if (!spec->argv[spec->argc]) return OP_ENOMEM;
        spec->argc++;
    }
    return OP_OK;
}

/* "resources": each limit within its bounds, defaults for the rest, no unknown field. */
static int parse_resources(const cJSON *res, jobspec *spec, char *err, size_t err_len)
{
    int64_t v;
    int rc;
    if (res && !cJSON_IsObject(res)) {
        snprintf(err, err_len, "resources: must be an object");
        return OP_EINVAL;
    }
    if ((rc = get_int(res, "cores", "resources.", 1, 1, JOBSPEC_MAX_CORES, &v, err, err_len)))
        return rc;
    spec->cores = (int)v;
    if ((rc = get_int(res, "memory_mb", "resources.", 256, 1, JOBSPEC_MAX_MEMORY_MB,
                      &spec->memory_mb, err, err_len)) ||
        (rc = get_int(res, "wall_s", "resources.", 600, 1, JOBSPEC_MAX_WALL_S, &spec->wall_s, err,
                      err_len)) ||
        (rc = get_int(res, "cpu_s", "resources.", spec->wall_s * spec->cores, 1,
                      JOBSPEC_MAX_WALL_S * JOBSPEC_MAX_CORES, &spec->cpu_s, err, err_len)) ||
        (rc = get_int(res, "output_bytes", "resources.", 1024 * 1024, 1, JOBSPEC_MAX_OUTPUT_BYTES,
                      &spec->output_bytes, err, err_len)) ||
        (rc = get_int(res, "open_files", "resources.", 64, 8, 4096, &spec->open_files, err,
                      err_len)))
        return rc;
    const cJSON *r;
    cJSON_ArrayForEach(r, res)
    {
        static const char *rk[] = {"cores",        "memory_mb",  "wall_s", "cpu_s",
                                   "output_bytes", "open_files", NULL};
        int ok = 0;
        for (const char **k = rk; *k; k++)
            if (strcmp(r->string, *k) == 0) ok = 1;
        if (!ok) {
            snprintf(err, err_len, "resources.%.64s: unknown field", r->string);
            return OP_EINVAL;
        }
    }
    return OP_OK;
}

static int parse_outputs(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!outputs) return OP_OK;
    int rc = parse_strings(outputs, "outputs", JOBSPEC_MAX_FILES, 128, err, err_len);
    if (rc != OP_OK) return rc;
    const cJSON *o;
    cJSON_ArrayForEach(o, outputs)
    {
        if (!safe_file_name(o->valuestring)) {
            snprintf(err, err_len, "outputs[%d]: must be a plain file name", spec->n_outputs);
            return OP_EINVAL;
        }
        snprintf(spec->outputs[spec->n_outputs++], 128, "%s", o->valuestring);
    }
    return OP_OK;
}

/* "site_classes": where it may run; all classes when absent. */
static int parse_site_classes(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    spec->class_mask = CLASS_ALL;
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "site_classes");
    if (!classes) return OP_OK;
    int rc = parse_strings(classes, "site_classes", 3, 8, err, err_len);
    if (rc != OP_OK) return rc;
    spec->class_mask = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, classes)
    {
        unsigned bit = jobspec_class_bit(c->valuestring);
        if (!bit) {
            snprintf(err, err_len, "site_classes: '%s' is not a class (pod, car, dc)",
                     c->valuestring);
            return OP_EINVAL;
        }
        spec->class_mask |= bit;
    }
    if (!spec->class_mask) {
        snprintf(err, err_len, "site_classes: must name at least one class");
        return OP_EINVAL;
    }
    return OP_OK;
}

/* "data_class" and "origin": site-private data names the site it may run on. */
static int parse_data_class(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *data_class = cJSON_GetObjectItemCaseSensitive(root, "data_class");
    spec->data_class = DATA_PUBLIC;
    if (data_class) {
        const char *dc = cJSON_IsString(data_class) ? data_class->valuestring : "";
        if (strcmp(dc, "public") == 0)
            spec->data_class = DATA_PUBLIC;
        else if (strcmp(dc, "confidential") == 0)
            spec->data_class = DATA_CONFIDENTIAL;
        else if (strcmp(dc, "site-private") == 0)
            spec->data_class = DATA_SITE_PRIVATE;
        else {
            snprintf(err, err_len, "data_class: must be public, confidential or site-private");
            return OP_EINVAL;
        }
    }
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(root, "origin");
    if (origin) {
        if (!cJSON_IsString(origin) || !util_valid_id(origin->valuestring)) {
            snprintf(err, err_len, "origin: must be a site id ([A-Za-z0-9_-], 1-63 chars)");
            return OP_EINVAL;
        }
        snprintf(spec->origin, sizeof spec->origin, "%s", origin->valuestring);
    }
    if (spec->data_class == DATA_SITE_PRIVATE && !spec->origin[0]) {
        snprintf(err, err_len, "origin: required for site-private data (it may run nowhere else)");
        return OP_EINVAL;
    }
    return OP_OK;
}

/* A true/false field; *out 0 when absent. */
static int get_bool(const cJSON *root, const char *key, int *out, char *err, size_t err_len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (item && !cJSON_IsBool(item)) {
        snprintf(err, err_len, "%s: must be true or false", key);
        return OP_EINVAL;
    }
    *out = item ? cJSON_IsTrue(item) : 0;
    return OP_OK;
}

/* Attempts, determinism and time: deadline_s, expected_s, deferrable (which needs a deadline). */
static int parse_scheduling(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    int64_t v;
    int rc = get_int(root, "max_attempts", "", 3, 1, 100, &v, err, err_len);
    if (rc != OP_OK) return rc;
    spec->max_attempts = (int)v;
    if ((rc = get_bool(root, "deterministic", &spec->deterministic, err, err_len)) ||
        (rc = get_int(root, "deadline_s", "", 0, 0, JOBSPEC_MAX_DEADLINE_S, &spec->deadline_s, err,
                      err_len)) ||
        (rc = get_int(root, "expected_s", "", 0, 0, JOBSPEC_MAX_WALL_S, &spec->expected_s, err,
                      err_len)))
        return rc;
    if (spec->deadline_s && spec->expected_s > spec->deadline_s) {
        snprintf(err, err_len,
                 "expected_s: longer than deadline_s (it could never finish in time)");
        return OP_EINVAL;
    }
    if ((rc = get_bool(root, "deferrable", &spec->deferrable, err, err_len))) return rc;
    if (spec->deferrable && !spec->deadline_s) {
        snprintf(err, err_len, "deferrable: needs a deadline_s (it may wait only inside one)");
        return OP_EINVAL;
    }
    return OP_OK;
}

/*
 * "model": "NAME" or "NAME@VERSION", the model the job reads; the hub
 * resolves it at submission and adds the version, "model_sha256" and
 * "model_bytes" of the artifact (a submitter's own values are replaced).
 */
static int parse_model(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "model_sha256");
    if (!model) {
        if (!sha && !cJSON_GetObjectItemCaseSensitive(root, "model_bytes")) return OP_OK;
        snprintf(err, err_len, "model_sha256, model_bytes: only with a model");
        return OP_EINVAL;
    }
    if (!cJSON_IsString(model) ||
        artifact_parse_ref(model->valuestring, spec->model, &spec->model_version) != OP_OK) {
        snprintf(err, err_len, "model: must be NAME or NAME@VERSION (NAME [A-Za-z0-9_-]{1,63})");
        return OP_EINVAL;
    }
    if (sha && (!cJSON_IsString(sha) || !artifact_sha_ok(sha->valuestring))) {
        snprintf(err, err_len, "model_sha256: must be 64 lowercase hex digits");
        return OP_EINVAL;
    }
    if (sha) snprintf(spec->model_sha256, sizeof spec->model_sha256, "%s", sha->valuestring);
    return get_int(root, "model_bytes", "", 0, 0, ARTIFACT_MAX_BYTES, &spec->model_bytes, err,
                   err_len);
}

/* "checkpoint": the file a stopped job leaves; a route job's is checkpoint.json by default. */
static int parse_checkpoint(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *ckpt = cJSON_GetObjectItemCaseSensitive(root, "checkpoint");
    if (ckpt && (!cJSON_IsString(ckpt) || !safe_file_name(ckpt->valuestring) ||
                 strlen(ckpt->valuestring) >= sizeof spec->checkpoint)) {
        snprintf(err, err_len, "checkpoint: must be a plain file name");
        return OP_EINVAL;
    }
    if (ckpt)
        snprintf(spec->checkpoint, sizeof spec->checkpoint, "%s", ckpt->valuestring);
    else if (spec->kind == JOB_KIND_ROUTE)
        snprintf(spec->checkpoint, sizeof spec->checkpoint, "checkpoint.json");
    return OP_OK;
}

/*
 * Field by field, in a fixed order (so that the first error reported does
 * not depend on the order of the JSON's keys). On an error spec is cleared.
 */
/*
 * "mode" and "from": a visit continues the pooled model "from" (none on
 * the first visit) on rows that may leave the site; an offer weighs "from"
 * against the site's own model. The hub resolves "from" like a model and
 * adds its hash ("model_sha256"), so the site fetches it like one.
 */
static int parse_learn_pooling(const cJSON *learn, jobspec *spec, char *err, size_t err_len)
{
    const char *mode = jsonx_str(learn, "mode"), *from = jsonx_str(learn, "from");
    spec->learn_mode = !mode || !strcmp(mode, "train") ? JOBSPEC_LEARN_TRAIN
                       : !strcmp(mode, "visit")        ? JOBSPEC_LEARN_VISIT
                       : !strcmp(mode, "offer")        ? JOBSPEC_LEARN_OFFER
                       : !strcmp(mode, "rollback")     ? JOBSPEC_LEARN_ROLLBACK
                                                       : -1;
    if (spec->learn_mode < 0 || (cJSON_HasObjectItem(learn, "mode") && !mode)) {
        snprintf(err, err_len, "learn.mode: train, visit, offer or rollback");
        return OP_EINVAL;
    }
    if ((cJSON_HasObjectItem(learn, "from") &&
         (!from || artifact_parse_ref(from, spec->learn_from, &spec->learn_from_version))) ||
        (spec->learn_mode == JOBSPEC_LEARN_OFFER && !from) ||
        ((spec->learn_mode == JOBSPEC_LEARN_TRAIN || spec->learn_mode == JOBSPEC_LEARN_ROLLBACK) &&
         from)) {
        snprintf(err, err_len,
                 "learn.from: the pooled model (NAME or NAME@VERSION) a visit"
                 " continues or an offer weighs; only with mode visit or offer");
        return OP_EINVAL;
    }
    if (spec->model_sha256[0] && !from) {
        snprintf(err, err_len, "model_sha256: only the hub's, for learn.from");
        return OP_EINVAL;
    }
    if (spec->learn_rebuild && spec->learn_mode != JOBSPEC_LEARN_TRAIN) {
        snprintf(err, err_len,
                 "learn.rebuild: only for mode train (a visit continues the pooled"
                 " model, an offer weighs it as it is)");
        return OP_EINVAL;
    }
    if (spec->learn_mode == JOBSPEC_LEARN_VISIT) spec->learn_shareable = 1;
    return OP_OK;
}

/* The "learn" options' numbers, each within its bounds. */
static int parse_learn_numbers(const cJSON *learn, jobspec *spec, char *err, size_t err_len)
{
    int rc;
    if ((rc = get_int(learn, "rounds", "learn.", 20, 1, 1000, &spec->learn_rounds, err, err_len)) ||
        (rc = get_int(learn, "heldout", "learn.", 200, 1, 5000, &spec->learn_heldout, err,
                      err_len)) ||
        (rc = get_int(learn, "min_heldout", "learn.", 20, 1, spec->learn_heldout,
                      &spec->learn_min_heldout, err, err_len)) ||
        (rc = get_int(learn, "depth", "learn.", 6, 1, 16, &spec->learn_depth, err, err_len)) ||
        (rc = get_int(learn, "rebuild", "learn.", 0, 0, 1000, &spec->learn_rebuild, err, err_len)))
        return rc;
    spec->learn_margin = 0.02;
    spec->learn_eta = 0.1;
    if ((cJSON_HasObjectItem(learn, "margin") &&
         (jsonx_num(learn, "margin", &spec->learn_margin) != OP_OK ||
          !(spec->learn_margin >= 0 && spec->learn_margin < 1))) ||
        (cJSON_HasObjectItem(learn, "eta") && (jsonx_num(learn, "eta", &spec->learn_eta) != OP_OK ||
                                               !(spec->learn_eta > 0 && spec->learn_eta <= 1)))) {
        snprintf(err, err_len, "learn.margin: 0 <= M < 1; learn.eta: 0 < E <= 1");
        return OP_EINVAL;
    }
    const char *rows = jsonx_str(learn, "rows");
    if (cJSON_HasObjectItem(learn, "rows") &&
        (!rows || (strcmp(rows, "all") && strcmp(rows, "shareable")))) {
        snprintf(err, err_len, "learn.rows: all or shareable");
        return OP_EINVAL;
    }
    spec->learn_shareable = rows && strcmp(rows, "shareable") == 0;
    return parse_learn_pooling(learn, spec, err, err_len);
}

/*
 * A learn job: a model name (no version: it makes the next one), no command,
 * inputs or outputs of its own (metrics.json is its output), and it runs at
 * its origin, the site whose rows it learns from.
 */
static int parse_learn(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    const cJSON *learn = cJSON_GetObjectItemCaseSensitive(root, "learn"), *f;
    if (spec->kind != JOB_KIND_LEARN) {
        if (!learn) return OP_OK;
        snprintf(err, err_len, "learn: only learn jobs take learn options");
        return OP_EINVAL;
    }
    if (learn && !cJSON_IsObject(learn)) {
        snprintf(err, err_len, "learn: must be an object");
        return OP_EINVAL;
    }
    cJSON_ArrayForEach(f, learn)
    {
        static const char *known[] = {"rounds", "heldout", "min_heldout", "margin",  "depth", "eta",
                                      "rows",   "mode",    "from",        "rebuild", NULL};
        const char **k = known;
        while (*k && strcmp(f->string, *k) != 0)
            k++;
        if (!*k) {
            snprintf(err, err_len, "learn.%.64s: unknown field", f->string);
            return OP_EINVAL;
        }
    }
    if (!spec->model[0] || spec->model_version) {
        snprintf(err, err_len, "model: a learn job names the model it trains (NAME, no version)");
        return OP_EINVAL;
    }
    if (spec->n_inputs || spec->n_outputs) {
        snprintf(err, err_len,
                 "inputs, outputs: a learn job reads the site's exceptions and"
                 " writes metrics.json");
        return OP_EINVAL;
    }
    if (spec->data_class != DATA_SITE_PRIVATE) {
        snprintf(err, err_len,
                 "data_class: a learn job is site-private, with origin the site"
                 " whose exceptions it learns from");
        return OP_EINVAL;
    }
    snprintf(spec->outputs[0], sizeof spec->outputs[0], "metrics.json");
    spec->n_outputs = 1;
    return parse_learn_numbers(learn, spec, err, err_len);
}

int jobspec_from_json(const cJSON *root, jobspec *spec, char *err, size_t err_len)
{
    memset(spec, 0, sizeof *spec);
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_len, "job spec must be a JSON object");
        return OP_EINVAL;
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "resources");
    int rc;
    if ((rc = check_known_fields(root, err, err_len)) ||
        (rc = parse_kind_and_name(root, spec, err, err_len)) ||
        (rc = parse_command(root, spec, err, err_len)) ||
        (rc = parse_resources(res, spec, err, err_len)) ||
        (rc = parse_inputs(cJSON_GetObjectItemCaseSensitive(root, "inputs"), spec, err, err_len)) ||
        (rc = parse_outputs(root, spec, err, err_len)) ||
        (rc = parse_site_classes(root, spec, err, err_len)) ||
        (rc = parse_data_class(root, spec, err, err_len)) ||
        (rc = parse_scheduling(root, spec, err, err_len)) ||
        (rc = parse_checkpoint(root, spec, err, err_len)) ||
        (rc = parse_model(root, spec, err, err_len)) ||
        (rc = parse_route(root, res, spec, err, err_len)) ||
        (rc = parse_learn(root, spec, err, err_len))) {
        jobspec_clear(spec);
        return rc;
    }
    return OP_OK;
}

int jobspec_parse(const char *text, size_t len, jobspec *spec, char *err, size_t err_len)
{
    memset(spec, 0, sizeof *spec);
    if (len > JOBSPEC_MAX_INPUT_BYTES * 2) {
        snprintf(err, err_len, "job spec larger than %d bytes", JOBSPEC_MAX_INPUT_BYTES * 2);
        return OP_ETOOBIG;
    }
    size_t at = 0;
    if (jsonx_check_nul(text, len, &at) != OP_OK) { /* cJSON would cut the string there */
        snprintf(err, err_len, "job spec: a string holds a NUL character (\\u0000) at byte %zu",
                 at);
        return OP_EINVAL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long offset = where && where >= text && where <= text + len ? (long)(where - text) : -1;
        snprintf(err, err_len, "job spec is not valid JSON (near byte %ld)", offset);
        return OP_EINVAL;
    }
    int rc = jobspec_from_json(root, spec, err, err_len);
    cJSON_Delete(root);
    return rc;
}
