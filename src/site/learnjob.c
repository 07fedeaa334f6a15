/*
 * learnjob: a learn job at its site. The rows never leave the site: the
 * site writes them into the job's work dir and runs `outpost learn fit` in
 * the sandbox like any job (so a training run is metered, paused, shed and
 * limited like any other work, and a crash in XGBoost takes down a job, not
 * the agent). The site itself then decides with learn_decide: the
 * challenger replaces the champion (or, before any, the static plan) only
 * when it beats it on held-out rows. Adoption and rejection go into the
 * site's audit log with their metrics; an adopted model is kept in
 * <data-dir>/models/<sha256>.ubj, and its record (lineage, metrics, hash)
 * goes to the hub's registry in the job's result. The bytes go along only
 * when every row the model learned from may leave the site. (`predict`,
 * which answers from the champion, is predict.c.)
 *
 * The champion of model NAME is meta key "model:NAME" (JSON: sha256, bytes,
 * version, mae, rows, to_id: the last row it trained on, seen_id: the last row the
 * decision saw, data_class); the one before it
 * "model_prev:NAME".
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "io/xgb.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEARN_META_MAX 2048
#define LEARN_METRICS_MAX 4096

/* The champion of name (NULL when none): the parsed meta value, the caller deletes it. */
cJSON *site__learn_champion(site *s, const char *name, const char *prefix)
{
    char key[96], value[LEARN_META_MAX];
    snprintf(key, sizeof key, "%s:%s", prefix ? prefix : "model", name);
    if (sitedb_meta_get(s->db, key, value, sizeof value) != OP_OK) return NULL;
    cJSON *c = cJSON_Parse(value);
    if (c && !artifact_sha_ok(jsonx_str(c, "sha256"))) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* <data-dir>/models/<sha>.ubj (the directory made when make_dir). */
int site__learn_model_path(const site *s, const char *sha, char *out, size_t len, int make_dir)
{
    char dir[PATH_MAX];
    if (util_fmt(dir, sizeof dir, "%s/models", s->data_dir) != OP_OK ||
        util_fmt(out, len, "%s/%s.ubj", dir, sha) != OP_OK)
        return OP_ETOOBIG;
    return make_dir ? os_mkdir_p(dir) : OP_OK;
}

/* The rows a learn job writes: train.csv and heldout.csv, and what it knows of them. */
typedef struct learn_split {
    FILE *train, *heldout;
    int64_t after_id;     /* rows above it are new to the champion */
    int64_t heldout_from; /* new rows from this id on are held out */
    int64_t n_new, n_train, n_heldout, last_train_id, max_id, from_ms, to_ms;
    int max_class, bad;
} learn_split;

static int count_new(void *ctx, const sitedb_exception *e)
{
    learn_split *sp = ctx;
    if (e->id > sp->after_id) sp->n_new++;
    return 0;
}

/* Finds the first held-out id: the newest `want` new rows. */
typedef struct nth_ctx {
    int64_t skip, seen, id, after_id;
} nth_ctx;

static int find_nth(void *ctx, const sitedb_exception *e)
{
    nth_ctx *n = ctx;
    if (e->id <= n->after_id) return 0;
    if (n->seen++ == n->skip) {
        n->id = e->id;
        return 1;
    }
    return 0;
}

/* One row as CSV: id, planned, actual, the features (empty when unknown). */
static int write_row(void *ctx, const sitedb_exception *e)
{
    learn_split *sp = ctx;
    float row[LEARN_FEATURES];
    char err[200];
    cJSON *f = cJSON_Parse(e->features);
    int ok = site__learn_features(f, row, err, sizeof err) == OP_OK;
    cJSON_Delete(f);
    if (!ok) {
        sp->bad++;
        return 0;
    }
    int held = sp->heldout_from && e->id >= sp->heldout_from;
    FILE *out = held ? sp->heldout : sp->train;
    fprintf(out, "%lld,%.9g,%.9g", (long long)e->id, e->planned_s, e->actual_s);
    for (int k = 0; k < LEARN_FEATURES; k++)
        isnan(row[k]) ? fputs(",", out) : fprintf(out, ",%.9g", (double)row[k]);
    fputc('\n', out);
    if (held) {
        sp->n_heldout++;
    } else {
        sp->n_train++;
        sp->last_train_id = e->id;
        if (!sp->from_ms || e->at_ms < sp->from_ms) sp->from_ms = e->at_ms;
        if (e->at_ms > sp->to_ms) sp->to_ms = e->at_ms;
    }
    if (e->data_class > sp->max_class) sp->max_class = e->data_class;
    if (e->id > sp->max_id) sp->max_id = e->id;
    return 0;
}

static FILE *open_in(const site_job *j, const char *name)
{
    char path[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/%s", j->workdir, name) != OP_OK) return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return fd < 0 ? NULL : fdopen(fd, "w");
}

/*
 * Writes the rows: held out are the newest `heldout` of the rows that came
 * after the champion was chosen (so neither model, nor the decision that
 * made the champion, has seen them); the challenger trains on all the
 * others the site keeps. No new rows: nothing held out, and learn_decide
 * rejects the challenger for too few rows.
 */
static int write_split(site *s, site_job *j, learn_split *sp)
{
    int max_class = j->spec.learn_shareable ? DATA_CONFIDENTIAL : DATA_SITE_PRIVATE;
    int rc = sitedb_exceptions_each(s->db, "route-leg", max_class, 0, count_new, sp);
    if (rc == OP_OK && sp->n_new > 0) {
        int64_t want = sp->n_new < j->spec.learn_heldout ? sp->n_new : j->spec.learn_heldout;
        nth_ctx n = {.skip = sp->n_new - want, .after_id = sp->after_id};
        rc = sitedb_exceptions_each(s->db, "route-leg", max_class, 0, find_nth, &n);
        sp->heldout_from = n.id;
    }
    sp->train = open_in(j, "train.csv");
    sp->heldout = open_in(j, "heldout.csv");
    if (rc == OP_OK && (!sp->train || !sp->heldout)) rc = OP_EIO;
    if (rc == OP_OK) rc = sitedb_exceptions_each(s->db, "route-leg", max_class, 0, write_row, sp);
    if (sp->train && fclose(sp->train) != 0) rc = OP_EIO;
    if (sp->heldout && fclose(sp->heldout) != 0) rc = OP_EIO;
    sp->train = sp->heldout = NULL;
    return rc;
}

/* A model file copied into the work dir as name. */
int site__learn_copy_model(const site_job *j, const char *from, const char *name)
{
    char to[PATH_MAX], *bytes = NULL;
    size_t len = 0;
    int rc = util_fmt(to, sizeof to, "%s/%s", j->workdir, name);
    if (rc == OP_OK) rc = os_read_file(from, XGB_MAX_MODEL_BYTES, &bytes, &len);
    if (rc == OP_OK) rc = os_write_file_atomic(to, bytes, len, 0600);
    free(bytes);
    return rc;
}

/* The champion's bytes into the work dir as champion.ubj; *sha gets its hash. */
static int copy_champion(site *s, site_job *j, const cJSON *champ, char sha[65])
{
    char from[PATH_MAX];
    snprintf(sha, 65, "%s", jsonx_str(champ, "sha256"));
    int rc = site__learn_model_path(s, sha, from, sizeof from, 0);
    return rc == OP_OK ? site__learn_copy_model(j, from, "champion.ubj") : rc;
}

/*
 * The model a learn job starts from or weighs: its own champion (train, and
 * offer: the incumbent), or none for a visit; a model that may leave the
 * site never continues one that learned from private rows.
 */
static cJSON *starting_champion(site *s, const site_job *j)
{
    if (j->spec.learn_mode == JOBSPEC_LEARN_VISIT) return NULL;
    cJSON *champ = site__learn_champion(s, j->spec.model, NULL);
    int64_t champ_class = DATA_SITE_PRIVATE;
    if (champ) jsonx_int(champ, "data_class", 0, 2, &champ_class);
    if (champ && j->spec.learn_shareable && champ_class == DATA_SITE_PRIVATE) {
        cJSON_Delete(champ);
        champ = NULL;
    }
    return champ;
}

/* The pooled model the hub had fetched for a visit (to continue) or an offer (to weigh). */
static int copy_pooled(site_job *j, learn_command *cmd)
{
    if (!j->spec.learn_from[0] || !j->model_path[0]) return OP_OK;
    int offer = j->spec.learn_mode == JOBSPEC_LEARN_OFFER;
    snprintf(offer ? cmd->cand_sha : cmd->sha, 65, "%s", j->spec.model_sha256);
    return site__learn_copy_model(j, j->model_path, offer ? "candidate.ubj" : "champion.ubj");
}

/*
 * Before a learn job starts: its rows and the champion into the work dir,
 * its command line into cmd, what it will have learned from into j.
 * OP_OK, or an error with why set (the job is handed back).
 */
int site__learn_prepare(site *s, site_job *j, learn_command *cmd, char *why, size_t why_len)
{
    cJSON *champ = starting_champion(s, j);
    learn_split sp = {0};
    int n = 0, rc;
    /* held out: only rows that came after the champion was chosen (no decision saw them) */
    if (champ) jsonx_int(champ, "seen_id", 0, INT64_MAX, &sp.after_id);
    rc = write_split(s, j, &sp);
    if (rc == OP_OK && champ) rc = copy_champion(s, j, champ, cmd->sha);
    if (rc == OP_OK) rc = copy_pooled(j, cmd);
    if (rc != OP_OK)
        snprintf(why, why_len, "learn: cannot write the rows or the champion into the work dir: %s",
                 op_strerror(rc));
    else /* the champion before it, to watch or to go back to: says why itself */
        rc = site__rollback_prepare(s, j, champ != NULL, cmd, why, why_len);
    cJSON_Delete(champ);
    if (rc != OP_OK) return rc;
    j->learn_rows = sp.n_train;
    j->learn_to_id = sp.last_train_id;
    j->learn_seen_id = sp.max_id;
    j->learn_from_ms = sp.from_ms;
    j->learn_to_ms = sp.to_ms;
    j->learn_class = sp.max_class;
    snprintf(cmd->rounds, sizeof cmd->rounds, "%lld", (long long)j->spec.learn_rounds);
    snprintf(cmd->depth, sizeof cmd->depth, "%lld", (long long)j->spec.learn_depth);
    snprintf(cmd->eta, sizeof cmd->eta, "%g", j->spec.learn_eta);
    const char *fixed[] = {"learn",     "fit",          "--train",  "train.csv",
                           "--heldout", "heldout.csv",  "--out",    "challenger.ubj",
                           "--metrics", "metrics.json", "--rounds", cmd->rounds,
                           "--depth",   cmd->depth,     "--eta",    cmd->eta};
    cmd->argv[n++] = s->route_program;
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        cmd->argv[n++] = (char *)fixed[k];
    if (cmd->sha[0]) {
        cmd->argv[n++] = "--champion";
        cmd->argv[n++] = "champion.ubj";
        cmd->argv[n++] = "--champion-sha";
        cmd->argv[n++] = cmd->sha;
    }
    if (j->spec.learn_rebuild > 0) { /* a challenger trained afresh on every row kept */
        snprintf(cmd->rebuild, sizeof cmd->rebuild, "%lld", (long long)j->spec.learn_rebuild);
        cmd->argv[n++] = "--rebuild";
        cmd->argv[n++] = cmd->rebuild;
    }
    if (cmd->cand_sha[0]) {
        cmd->argv[n++] = "--candidate";
        cmd->argv[n++] = "candidate.ubj";
        cmd->argv[n++] = "--candidate-sha";
        cmd->argv[n++] = cmd->cand_sha;
    }
    if (cmd->prev_sha[0]) {
        cmd->argv[n++] = "--previous";
        cmd->argv[n++] = "previous.ubj";
        cmd->argv[n++] = "--previous-sha";
        cmd->argv[n++] = cmd->prev_sha;
    }
    cmd->argv[n] = NULL;
    log_info("site", "learn job %lld: model %s, %lld rows to train on, %lld held out%s",
             (long long)j->job_id, j->spec.model, (long long)sp.n_train, (long long)sp.n_heldout,
             sp.bad ? " (some rows unreadable, skipped)" : "");
    return OP_OK;
}

/* What the learn job measured (metrics.json) and made (challenger.ubj), checked. */
typedef struct learn_outcome {
    cJSON *metrics;
    char *bytes;
    size_t len;
    char sha[65];
    double static_mae, champion_mae, challenger_mae;
    int64_t heldout_rows, train_rows;
    int has_champion;
} learn_outcome;

static void outcome_clear(learn_outcome *o)
{
    cJSON_Delete(o->metrics);
    free(o->bytes);
    memset(o, 0, sizeof *o);
}

/* Reads and checks the job's two files. OP_OK, or an error with why set. */
static int read_outcome(site_job *j, learn_outcome *o, char *why, size_t why_len)
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    int rc = util_fmt(path, sizeof path, "%s/metrics.json", j->workdir);
    if (rc == OP_OK) rc = os_read_file(path, LEARN_METRICS_MAX, &text, &len);
    o->metrics = rc == OP_OK ? cJSON_Parse(text) : NULL;
    free(text);
    if (rc == OP_OK) rc = util_fmt(path, sizeof path, "%s/challenger.ubj", j->workdir);
    if (rc == OP_OK) rc = os_read_file(path, XGB_MAX_MODEL_BYTES, &o->bytes, &o->len);
    if (rc == OP_OK) util_sha256_hex(o->bytes, o->len, o->sha);
    const char *said = jsonx_str(o->metrics, "challenger_sha256");
    o->has_champion = cJSON_HasObjectItem(o->metrics, "champion_mae");
    if (rc != OP_OK || !o->metrics || !said || strcmp(said, o->sha) != 0 ||
        jsonx_num(o->metrics, "static_mae", &o->static_mae) != OP_OK ||
        jsonx_num(o->metrics, "challenger_mae", &o->challenger_mae) != OP_OK ||
        (o->has_champion && jsonx_num(o->metrics, "champion_mae", &o->champion_mae) != OP_OK) ||
        jsonx_int(o->metrics, "heldout_rows", 0, INT64_MAX, &o->heldout_rows) != OP_OK ||
        jsonx_int(o->metrics, "train_rows", 0, INT64_MAX, &o->train_rows) != OP_OK ||
        !isfinite(o->challenger_mae) || o->len == 0) {
        snprintf(why, why_len, "learn: the job left no readable metrics.json and challenger.ubj");
        return OP_EINVAL;
    }
    return OP_OK;
}

/* The lineage the registry keeps for an adopted model (no row in it: counts and errors). */
static cJSON *lineage_of(site *s, const site_job *j, const learn_outcome *o)
{
    cJSON *l = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (!l || !m) {
        cJSON_Delete(l);
        cJSON_Delete(m);
        return NULL;
    }
    char note[200];
    cJSON_AddStringToObject(l, "site", s->identity.id);
    cJSON_AddNumberToObject(l, "from", (double)(j->learn_from_ms / 1000));
    cJSON_AddNumberToObject(l, "to", (double)(j->learn_to_ms / 1000));
    cJSON_AddNumberToObject(l, "rows", (double)o->train_rows);
    cJSON_AddNumberToObject(m, "mae", o->challenger_mae);
    cJSON_AddNumberToObject(m, o->has_champion ? "champion_mae" : "static_mae",
                            o->has_champion ? o->champion_mae : o->static_mae);
    cJSON_AddNumberToObject(m, "heldout_rows", (double)o->heldout_rows);
    cJSON_AddItemToObject(l, "metrics", m);
    if (j->spec.learn_mode == JOBSPEC_LEARN_OFFER)
        snprintf(note, sizeof note, "learn job %lld: the pooled %s@%lld, better here",
                 (long long)j->job_id, j->spec.learn_from, (long long)j->spec.learn_from_version);
    else if (j->spec.learn_mode == JOBSPEC_LEARN_VISIT)
        snprintf(note, sizeof note,
                 "learn job %lld: a pooled visit, continued on %s's"
                 " shareable rows",
                 (long long)j->job_id, s->identity.id);
    else
        snprintf(note, sizeof note, "learn job %lld: continued from %s on the site's exceptions",
                 (long long)j->job_id, o->has_champion ? "the site's champion" : "nothing (new)");
    cJSON_AddStringToObject(l, "note", note);
    return l;
}

/* The adopted model on disk and as the champion (the one before kept for a rollback). */
static int adopt(site *s, site_job *j, const learn_outcome *o, int64_t *version)
{
    char path[PATH_MAX], key[96], *text = NULL;
    cJSON *old = site__learn_champion(s, j->spec.model, NULL), *c = cJSON_CreateObject();
    int64_t prev = 0, top = 0;
    if (old) jsonx_int(old, "version", 0, INT64_MAX, &prev);
    if (old) jsonx_int(old, "top_version", 0, INT64_MAX, &top); /* past a rolled-back one */
    *version = (prev > top ? prev : top) + 1;
    int rc = c ? site__learn_model_path(s, o->sha, path, sizeof path, 1) : OP_ENOMEM;
    if (rc == OP_OK) rc = os_write_file_atomic(path, o->bytes, o->len, 0644);
    if (rc == OP_OK) {
        cJSON_AddStringToObject(c, "sha256", o->sha);
        cJSON_AddNumberToObject(c, "bytes", (double)o->len);
        cJSON_AddNumberToObject(c, "version", (double)*version);
        cJSON_AddNumberToObject(c, "mae", o->challenger_mae);
        cJSON_AddNumberToObject(c, "rows", (double)o->train_rows);
        cJSON_AddNumberToObject(c, "to_id", (double)j->learn_to_id);
        cJSON_AddNumberToObject(c, "seen_id", (double)j->learn_seen_id);
        cJSON_AddNumberToObject(c, "data_class", j->learn_class);
        cJSON_AddNumberToObject(c, "job", (double)j->job_id);
        /* what predict calls familiar ground (a pooled model's is unknown here) */
        const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(o->metrics, "ranges");
        if (cJSON_IsArray(ranges)) cJSON_AddItemToObject(c, "ranges", cJSON_Duplicate(ranges, 1));
        text = cJSON_PrintUnformatted(c);
        if (!text) rc = OP_ENOMEM;
    }
    if (rc == OP_OK && site__ensure_tx(s) != OP_OK) rc = OP_ESTORE;
    if (rc == OP_OK && old) {
        char *old_text = cJSON_PrintUnformatted(old);
        snprintf(key, sizeof key, "model_prev:%s", j->spec.model);
        if (!old_text || sitedb_meta_set(s->db, key, old_text) != OP_OK) rc = OP_ESTORE;
        free(old_text);
    }
    snprintf(key, sizeof key, "model:%s", j->spec.model);
    if (rc == OP_OK && sitedb_meta_set(s->db, key, text) != OP_OK) rc = OP_ESTORE;
    if (rc == OP_ESTORE) s->store_failed = 1;
    free(text);
    cJSON_Delete(old);
    cJSON_Delete(c);
    return rc;
}

/* The result's "learn": the verdict and metrics, and for the registry the record's fields. */
static void add_learn(site *s, site_job *j, cJSON *r, const learn_outcome *o,
                      const learn_verdict *v, int64_t version)
{
    cJSON *l = cJSON_AddObjectToObject(r, "learn");
    if (!l) return;
    cJSON_AddStringToObject(l, "model", j->spec.model);
    cJSON_AddStringToObject(l, "verdict",
                            !v->adopt                                   ? "rejected"
                            : j->spec.learn_mode == JOBSPEC_LEARN_VISIT ? "visited"
                                                                        : "adopted");
    cJSON_AddStringToObject(l, "reason", v->reason);
    cJSON_AddNumberToObject(l, "challenger_mae", o->challenger_mae);
    cJSON_AddNumberToObject(l, "incumbent_mae", o->has_champion ? o->champion_mae : o->static_mae);
    cJSON_AddStringToObject(l, "incumbent", o->has_champion ? "champion" : "static plan");
    cJSON_AddNumberToObject(l, "heldout_rows", (double)o->heldout_rows);
    cJSON_AddNumberToObject(l, "train_rows", (double)o->train_rows);
    if (!v->adopt) return;
    cJSON_AddNumberToObject(l, "site_version", (double)version);
    cJSON_AddStringToObject(l, "sha256", o->sha);
    cJSON_AddNumberToObject(l, "size", (double)o->len);
    cJSON_AddStringToObject(l, "data_class", jobspec_data_class_name(j->learn_class));
    cJSON *lineage = lineage_of(s, j, o);
    if (lineage) cJSON_AddItemToObject(l, "lineage", lineage);
    if (j->learn_class != DATA_SITE_PRIVATE && j->spec.learn_mode != JOBSPEC_LEARN_OFFER) {
        /* rows that may leave: so may the model (an offered one the hub holds already) */
        char *b64 = util_b64_encode(o->bytes, o->len);
        if (b64) cJSON_AddStringToObject(l, "model_b64", b64);
        free(b64);
    }
}

/*
 * A rollback (rollback.c) in place of the usual verdict: an operator's, or
 * an automatic one when the previous champion beat the current one on the
 * fresh rows. An operator's rollback whose job left nothing readable is
 * audited as not done. 1 when the job is dealt with here.
 */
static int rollback_instead(site *s, site_job *j, cJSON *r, const cJSON *metrics, const char *why)
{
    if (metrics && site__rollback_finish(s, j, metrics, r)) return 1;
    if (j->spec.learn_mode != JOBSPEC_LEARN_ROLLBACK) return 0;
    char detail[400];
    snprintf(detail, sizeof detail, "model %s: not rolled back: %s", j->spec.model, why);
    site__audit_job(s, "learn-reject", j->job_id, j->attempt, detail);
    cJSON_AddStringToObject(r, "error", detail);
    return 1;
}

/*
 * A learn job that exited 0: champion or challenger, decided here with the
 * job's rule, audited ("learn-adopt" / "learn-reject" with the metrics),
 * and the verdict added to the result r. A job whose files are not right
 * is audited as rejected with the reason.
 */
void site__learn_finish(site *s, site_job *j, cJSON *r)
{
    learn_outcome o = {0};
    char why[256] = "", detail[512], what[160];
    learn_verdict v = {0, 0, why};
    int64_t version = 0;
    int mode = j->spec.learn_mode;
    if (mode == JOBSPEC_LEARN_OFFER) j->learn_class = DATA_CONFIDENTIAL; /* pooled: shareable */
    int readable = read_outcome(j, &o, why, sizeof why) == OP_OK;
    if (rollback_instead(s, j, r, readable ? o.metrics : NULL, why)) {
        outcome_clear(&o);
        return;
    }
    if (readable && mode == JOBSPEC_LEARN_VISIT) {
        /* a visit does not replace this site's model: it passes the pooled one on */
        v = (learn_verdict){1, 0, "continued on this site's shareable rows, passed on"};
    } else if (readable) {
        learn_rule rule = {.margin = j->spec.learn_margin,
                           .min_rows = (size_t)j->spec.learn_min_heldout};
        v = learn_decide(&rule, 1, o.has_champion ? o.champion_mae : o.static_mae, o.challenger_mae,
                         (size_t)o.heldout_rows);
        if (v.adopt && adopt(s, j, &o, &version) != OP_OK) {
            v.adopt = 0;
            v.reason = "the site could not keep the model (disk or store)";
        }
    }
    if (mode == JOBSPEC_LEARN_TRAIN)
        snprintf(what, sizeof what, "model %s: %s", j->spec.model,
                 v.adopt ? "adopted" : "rejected");
    else
        snprintf(what, sizeof what, "pooled model %s@%lld %s",
                 j->spec.learn_from[0] ? j->spec.learn_from : j->spec.model,
                 (long long)j->spec.learn_from_version,
                 mode == JOBSPEC_LEARN_VISIT ? "visited"
                 : v.adopt                   ? "adopted as this site's model"
                                             : "refused");
    if (mode == JOBSPEC_LEARN_VISIT && !j->spec.learn_from[0]) /* the first visit starts it */
        snprintf(what, sizeof what, "pooled model %s started here", j->spec.model);
    char trained[48] = "";
    if (mode != JOBSPEC_LEARN_OFFER)
        snprintf(trained, sizeof trained, ", trained on %lld rows", (long long)o.train_rows);
    snprintf(
        detail, sizeof detail, "%s (%s): %s MAE %.1f s vs %s %.1f s on %lld held-out rows%s%s%.12s",
        what, v.reason, mode == JOBSPEC_LEARN_OFFER ? "pooled" : "challenger", o.challenger_mae,
        o.has_champion ? "champion" : "static plan", o.has_champion ? o.champion_mae : o.static_mae,
        (long long)o.heldout_rows, trained, v.adopt ? ", sha256 " : "", v.adopt ? o.sha : "");
    site__audit_job(s,
                    mode == JOBSPEC_LEARN_VISIT && v.adopt ? "learn-visit"
                    : v.adopt                              ? "learn-adopt"
                                                           : "learn-reject",
                    j->job_id, j->attempt, detail);
    log_info("site", "learn job %lld: %s", (long long)j->job_id, detail);
    if (o.metrics) add_learn(s, j, r, &o, &v, version);
    outcome_clear(&o);
}

int site__route_model_args(site *s, site_job *j, char **argv, int *n, char sha[65], char start[24])
{
    j->route_model_note[0] = 0;
    if (!s->route_model[0] || j->spec.data_class == DATA_PUBLIC) return OP_OK;
    cJSON *champ = site__learn_champion(s, s->route_model, NULL);
    if (!champ) return OP_OK;
    char from[PATH_MAX], to[PATH_MAX], *bytes = NULL;
    size_t len = 0;
    int64_t version = 0;
    jsonx_int(champ, "version", 0, INT64_MAX, &version);
    snprintf(sha, 65, "%s", jsonx_str(champ, "sha256"));
    cJSON_Delete(champ);
    int rc = site__learn_model_path(s, sha, from, sizeof from, 0);
    if (rc == OP_OK) rc = util_fmt(to, sizeof to, "%s/travel.ubj", j->workdir);
    if (rc == OP_OK) rc = os_read_file(from, XGB_MAX_MODEL_BYTES, &bytes, &len);
    if (rc == OP_OK) rc = os_write_file_atomic(to, bytes, len, 0600);
    free(bytes);
    if (rc != OP_OK) {
        log_warn("site", "route job %lld: the model %s is unreadable (%s): planned without it",
                 (long long)j->job_id, s->route_model, op_strerror(rc));
        return OP_OK;
    }
    /* the departure: now on the site's clock (the legs it learned from are local times) */
    snprintf(start, 24, "%lld", (long long)(os_now_ms() / 1000));
    argv[(*n)++] = "--model";
    argv[(*n)++] = "travel.ubj";
    argv[(*n)++] = "--model-sha";
    argv[(*n)++] = sha;
    argv[(*n)++] = "--model-start";
    argv[(*n)++] = start;
    snprintf(j->route_model_note, sizeof j->route_model_note, "%s site version %lld (sha256 %.16s)",
             s->route_model, (long long)version, sha);
    return OP_OK;
}
