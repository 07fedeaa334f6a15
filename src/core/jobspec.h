/*
 * jobspec: the job specification an operator submits (pure, no I/O).
 *
 * JSON form (docs/jobs.md):
 *   {"kind": "exec" | "noop" | "route",
 *    "name": "hash-42",                      optional label
 *    "command": ["sha256sum", "in.csv"],     exec only, argv
 *    "resources": {"cores": 1, "memory_mb": 256, "wall_s": 300, "cpu_s": 300,
 *                  "output_bytes": 1048576, "open_files": 64},
 *    "inputs": [{"name": "in.csv", "sha256": "<hex>", "data_b64": "..."}],
 *    "outputs": ["out.gz"],                  files returned from the work dir
 *    "site_classes": ["pod", "car", "dc"],   where it may run (default all)
 *    "data_class": "public" | "confidential" | "site-private",
 *    "origin": "site-id",                    required for site-private
 *    "max_attempts": 3, "deterministic": true,
 *    "route": {"time_limit_s": 10, "seed": 1,   route only ("iterations": N
 *              "iterations": 20000},            makes the run reproducible)
 *    "checkpoint": "state.bin",              written on SIGTERM, given back on resume
 *    "deadline_s": 7200,                     finish within 2 h of submission
 *    "expected_s": 1800,                     expected run time (power forecast, departures)
 *    "deferrable": true,                     may wait for cheaper/cleaner power (needs a deadline)
 *    "model": "eta@3"}                       a model from the hub's registry (NAME or
 *                                            NAME@VERSION), read-only at $OUTPOST_MODEL;
 *                                            the hub adds "model_sha256" and "model_bytes"
 * A learn job ({"kind": "learn", "model": "NAME", "data_class": "site-private",
 *   "origin": SITE, "learn": {"rounds": 20, "heldout": 200, "min_heldout": 20,
 *   "margin": 0.02, "depth": 6, "eta": 0.1, "rows": "all" | "shareable",
 *   "rebuild": 0 (or the trees of a challenger trained afresh on the rows),
 *   "mode": "train" | "visit" | "offer", "from": "POOLED[@V]"}})
 * trains a challenger to the site's model NAME on the site's own exceptions
 * and keeps it only where it beats the champion (docs/learning.md); it runs
 * at its origin, where the rows are, and its one output is metrics.json.
 * A route job plans vehicle routes for its one input (a CVRPLIB, Solomon or
 * JSON instance, docs/routing.md) with the site's own solver; its outputs
 * are solution.json and routes.svg.
 * Every field is validated with a message naming it; inputs are checked
 * against their hash. Limits below bound what a hostile spec can ask for.
 */
#ifndef OUTPOST_JOBSPEC_H
#define OUTPOST_JOBSPEC_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define JOBSPEC_MAX_ARGS 64
#define JOBSPEC_MAX_ARG_BYTES 4096
#define JOBSPEC_MAX_FILES 16
#define JOBSPEC_MAX_INPUT_BYTES (4 * 1024 * 1024) /* all inputs together, decoded */
#define JOBSPEC_MAX_CORES 256
#define JOBSPEC_MAX_MEMORY_MB (1024 * 1024)
#define JOBSPEC_MAX_WALL_S (7 * 24 * 3600)
#define JOBSPEC_MAX_OUTPUT_BYTES (4 * 1024 * 1024)
#define JOBSPEC_MAX_DEADLINE_S (30 * 24 * 3600)

enum { JOB_KIND_EXEC = 1, JOB_KIND_NOOP = 2, JOB_KIND_ROUTE = 3, JOB_KIND_LEARN = 4 };
#define JOBSPEC_ROUTE_MAX_S 3600
#define JOBSPEC_ROUTE_MAX_ITERATIONS 1000000000
/* A learn job trains the site's own model, visits a pooled one (continues it on the
 * site's shareable rows and passes it on), weighs an offered pooled model against
 * the site's own on its held-out rows, or rolls the site's model back to the champion
 * before it (an operator's order: both measured, then rolled back whatever they show). */
enum {
    JOBSPEC_LEARN_TRAIN = 0,
    JOBSPEC_LEARN_VISIT = 1,
    JOBSPEC_LEARN_OFFER = 2,
    JOBSPEC_LEARN_ROLLBACK = 3
};
enum { DATA_PUBLIC = 0, DATA_CONFIDENTIAL = 1, DATA_SITE_PRIVATE = 2 };
enum { CLASS_POD = 1, CLASS_CAR = 2, CLASS_DC = 4, CLASS_ALL = 7 };

typedef struct jobspec_file {
    char name[128];
    char sha256[65];
    uint8_t *data; /* decoded bytes (inputs only) */
    size_t len;
} jobspec_file;

typedef struct jobspec {
    int kind;
    char name[64];
    char *argv[JOBSPEC_MAX_ARGS + 1]; /* NULL-terminated */
    int argc;
    int cores;
    int64_t memory_mb;
    int64_t wall_s;
    int64_t cpu_s;
    int64_t output_bytes;
    int64_t open_files;
    jobspec_file inputs[JOBSPEC_MAX_FILES];
    int n_inputs;
    char outputs[JOBSPEC_MAX_FILES][128];
    int n_outputs;
    unsigned class_mask;
    int data_class;
    char origin[64];
    int max_attempts;
    int deterministic;
    char checkpoint[128];      /* a file the job writes when stopped and reads when resumed */
    double route_time_limit_s; /* route jobs */
    int64_t route_seed;
    int64_t route_iterations; /* 0: none; else the solver stops after so many, reproducibly */
    int64_t deadline_s;       /* finish within this many seconds of submission; 0: no deadline */
    int64_t expected_s;       /* expected run time (forecasts, departures); 0: unknown */
    int deferrable;           /* may wait for cheaper/cleaner power inside its deadline */
    char model[64];           /* the model it reads ("" none): its name */
    int64_t model_version;    /* the version asked for or resolved, 0: the latest */
    char model_sha256[65];    /* the artifact's hash, as the hub resolved it ("" not yet) */
    int64_t model_bytes;      /* and its size */
    /* learn jobs: trees added, held-out rows (at most, at least), the margin a challenger
       must win by, tree depth and learning rate, and whether only rows that may leave the
       site are used (a model that can be pooled) */
    int64_t learn_rounds, learn_heldout, learn_min_heldout, learn_depth;
    int64_t learn_rebuild; /* trees of a challenger trained afresh, not continued (0: continued) */
    double learn_margin, learn_eta;
    int learn_shareable;
    int learn_mode;             /* JOBSPEC_LEARN_TRAIN, _VISIT, _OFFER or _ROLLBACK */
    char learn_from[64];        /* the pooled model it starts from or is offered ("" none) */
    int64_t learn_from_version; /* 0: the latest (the hub resolves it) */
} jobspec;

/*
 * Parses and validates a spec. On OP_EINVAL/OP_ETOOBIG err says which field
 * and why ("resources.cores: must be an integer from 1 to 256"). On OP_OK
 * the caller frees with jobspec_clear.
 */
int jobspec_parse(const char *text, size_t len, jobspec *out, char *err, size_t err_len);
int jobspec_from_json(const cJSON *root, jobspec *out, char *err, size_t err_len);
void jobspec_clear(jobspec *spec);

/* Site class name <-> bit. */
unsigned jobspec_class_bit(const char *cls);
const char *jobspec_class_name(unsigned bit);
const char *jobspec_kind_name(int kind);
/* JOB_KIND_* for a name, 0 when unknown. */
int jobspec_kind_of(const char *name);
const char *jobspec_data_class_name(int data_class);

/*
 * 1 if two honest sites running this job produce the same outputs, so that
 * their output hashes can be compared (core/verify): noop jobs, route jobs
 * with an iteration limit (the solver then ignores its time limit), exec
 * jobs whose submitter declared "deterministic": true.
 */
int jobspec_deterministic(const jobspec *spec);

#endif
