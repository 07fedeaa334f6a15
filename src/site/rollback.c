/*
 * rollback: a site going back to the champion before its current one.
 * The site keeps that one as meta "model_prev:NAME" (learnjob.c's adopt).
 * Two ways back, both through a learn job, so the models are loaded and
 * measured only in the sandboxed `outpost learn fit`, never in the agent:
 *
 *   automatic  every train job of NAME also measures the previous champion
 *              on the job's held-out rows (rows that came after the current
 *              champion was chosen, so neither model nor any decision saw
 *              them); when learn_rollback_decide finds it better by more
 *              than the margin, the site switches back and the challenger
 *              of that job is not weighed (it continued the champion that
 *              just failed);
 *   operator   a learn job in mode "rollback" (`outpost model rollback NAME
 *              --site SITE`, through the hub): both measured the same way,
 *              then rolled back whatever they show.
 *
 * Either way the site audits "learn-rollback" with both MAEs and the result
 * of the job tells the hub (verdict "rolled-back"), which records it on the
 * model's lineage. The champion rolled back to becomes the current one with
 * a fresh held-out window; the one it replaced is no longer kept as
 * previous, so a model is not bounced back and forth.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/util.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The previous champion's bytes into the work dir as name; sha gets its hash. */
static int copy_previous(site *s, site_job *j, const cJSON *prev, const char *name, char sha[65])
{
    char from[PATH_MAX];
    snprintf(sha, 65, "%s", jsonx_str(prev, "sha256"));
    int rc = site__learn_model_path(s, sha, from, sizeof from, 0);
    return rc == OP_OK ? site__learn_copy_model(j, from, name) : rc;
}

int site__rollback_prepare(site *s, site_job *j, int has_champion, learn_command *cmd, char *why,
                           size_t why_len)
{
    int mode = j->spec.learn_mode;
    if (mode != JOBSPEC_LEARN_TRAIN && mode != JOBSPEC_LEARN_ROLLBACK) return OP_OK;
    cJSON *prev = has_champion ? site__learn_champion(s, j->spec.model, "model_prev") : NULL;
    int rc = OP_OK;
    if (!prev && mode == JOBSPEC_LEARN_ROLLBACK) {
        snprintf(why, why_len, "rollback: model %s has %s at %s", j->spec.model,
                 has_champion ? "no previous champion to go back to" : "no champion",
                 s->identity.id);
        return OP_ENOTFOUND;
    }
    if (prev && mode == JOBSPEC_LEARN_ROLLBACK) /* weighed as it is, as an offer would be */
        rc = copy_previous(s, j, prev, "candidate.ubj", cmd->cand_sha);
    else if (prev) /* watched: measured beside the champion on the fresh rows */
        rc = copy_previous(s, j, prev, "previous.ubj", cmd->prev_sha);
    cJSON_Delete(prev);
    if (rc != OP_OK)
        snprintf(why, why_len, "rollback: the previous champion of %s is unreadable: %s",
                 j->spec.model, op_strerror(rc));
    return rc;
}

/*
 * The switch in site.db: the previous champion becomes the current one,
 * with seen_id moved up to what this job saw (its next held-out rows are
 * fresh), and the version counter kept past the one rolled back (the next
 * adopted model takes a new number). *from_v and *to_v: the site versions.
 */
static int switch_back(site *s, const site_job *j, int64_t *from_v, int64_t *to_v)
{
    char key[96], *text = NULL;
    cJSON *cur = site__learn_champion(s, j->spec.model, NULL);
    cJSON *prev = site__learn_champion(s, j->spec.model, "model_prev");
    int64_t top = 0;
    if (!cur || !prev) {
        cJSON_Delete(cur);
        cJSON_Delete(prev);
        return OP_ENOTFOUND;
    }
    jsonx_int(cur, "version", 0, INT64_MAX, from_v);
    jsonx_int(prev, "version", 0, INT64_MAX, to_v);
    jsonx_int(cur, "top_version", 0, INT64_MAX, &top);
    if (*from_v > top) top = *from_v;
    cJSON_DeleteItemFromObject(prev, "top_version");
    cJSON_DeleteItemFromObject(prev, "seen_id");
    cJSON_AddNumberToObject(prev, "top_version", (double)top);
    cJSON_AddNumberToObject(prev, "seen_id", (double)j->learn_seen_id);
    cJSON_AddStringToObject(prev, "rolled_back_from", jsonx_str(cur, "sha256"));
    text = cJSON_PrintUnformatted(prev);
    int rc = text ? OP_OK : OP_ENOMEM;
    if (rc == OP_OK && site__ensure_tx(s) != OP_OK) rc = OP_ESTORE;
    snprintf(key, sizeof key, "model:%s", j->spec.model);
    if (rc == OP_OK && sitedb_meta_set(s->db, key, text) != OP_OK) rc = OP_ESTORE;
    /* no previous any more: "{}" has no hash, so site__learn_champion finds none */
    snprintf(key, sizeof key, "model_prev:%s", j->spec.model);
    if (rc == OP_OK && sitedb_meta_set(s->db, key, "{}") != OP_OK) rc = OP_ESTORE;
    if (rc == OP_ESTORE) s->store_failed = 1;
    free(text);
    cJSON_Delete(cur);
    cJSON_Delete(prev);
    return rc;
}

/* The result's "learn" of a rollback: both MAEs and the two models, for the hub's lineage. */
static void add_rollback(cJSON *r, const site_job *j, const char *trigger, const char *reason,
                         const double mae[2], int64_t rows, const char sha[2][65],
                         const int64_t v[2])
{
    cJSON *l = cJSON_AddObjectToObject(r, "learn");
    if (!l) return;
    cJSON_AddStringToObject(l, "model", j->spec.model);
    cJSON_AddStringToObject(l, "verdict", "rolled-back");
    cJSON_AddStringToObject(l, "trigger", trigger);
    cJSON_AddStringToObject(l, "reason", reason);
    cJSON_AddNumberToObject(l, "champion_mae", mae[0]);
    cJSON_AddNumberToObject(l, "previous_mae", mae[1]);
    cJSON_AddNumberToObject(l, "heldout_rows", (double)rows);
    cJSON_AddStringToObject(l, "from_sha256", sha[0]);
    cJSON_AddStringToObject(l, "to_sha256", sha[1]);
    cJSON_AddNumberToObject(l, "from_site_version", (double)v[0]);
    cJSON_AddNumberToObject(l, "to_site_version", (double)v[1]);
}

/*
 * What the job measured: the champion's MAE and the previous champion's
 * (an automatic check: "previous_mae"; an operator's rollback: the
 * candidate's, "challenger_mae"). 0 when the job measured no previous one.
 */
static int measured(const site_job *j, const cJSON *metrics, double mae[2], int64_t *rows)
{
    const char *prev_key =
        j->spec.learn_mode == JOBSPEC_LEARN_ROLLBACK ? "challenger_mae" : "previous_mae";
    mae[0] = mae[1] = NAN;
    *rows = 0;
    if (!cJSON_HasObjectItem(metrics, prev_key)) return 0;
    jsonx_num(metrics, "champion_mae", &mae[0]);
    jsonx_num(metrics, prev_key, &mae[1]);
    jsonx_int(metrics, "heldout_rows", 0, INT64_MAX, rows);
    return 1;
}

int site__rollback_finish(site *s, site_job *j, const cJSON *metrics, cJSON *r)
{
    int mode = j->spec.learn_mode, automatic = mode == JOBSPEC_LEARN_TRAIN;
    double mae[2];
    int64_t rows = 0, v[2] = {0, 0};
    char sha[2][65] = {"", ""}, detail[600];
    if (mode != JOBSPEC_LEARN_TRAIN && mode != JOBSPEC_LEARN_ROLLBACK) return 0;
    if (!measured(j, metrics, mae, &rows)) return 0;
    learn_rule rule = {.margin = j->spec.learn_margin,
                       .min_rows = (size_t)j->spec.learn_min_heldout};
    learn_verdict verdict = learn_rollback_decide(&rule, mae[0], mae[1], (size_t)rows);
    if (automatic && !verdict.adopt) return 0;
    const char *reason = automatic ? verdict.reason : "the operator's order";
    cJSON *cur = site__learn_champion(s, j->spec.model, NULL);
    cJSON *prev = site__learn_champion(s, j->spec.model, "model_prev");
    snprintf(sha[0], 65, "%s", cur ? jsonx_str(cur, "sha256") : "");
    snprintf(sha[1], 65, "%s", prev ? jsonx_str(prev, "sha256") : "");
    cJSON_Delete(cur);
    cJSON_Delete(prev);
    int rc = switch_back(s, j, &v[0], &v[1]);
    if (rc != OP_OK) {
        snprintf(detail, sizeof detail, "model %s: not rolled back: %s", j->spec.model,
                 rc == OP_ENOTFOUND ? "no previous champion any more" : op_strerror(rc));
        site__audit_job(s, "learn-reject", j->job_id, j->attempt, detail);
        cJSON_AddStringToObject(r, "error", detail);
        return 1;
    }
    snprintf(detail, sizeof detail,
             "model %s: rolled back (%s, %s) from site version %lld (sha256 %.12s) to site"
             " version %lld (sha256 %.12s): champion MAE %.1f s vs previous champion %.1f s on"
             " %lld held-out rows",
             j->spec.model, automatic ? "automatic" : "operator", reason, (long long)v[0], sha[0],
             (long long)v[1], sha[1], mae[0], mae[1], (long long)rows);
    site__audit_job(s, "learn-rollback", j->job_id, j->attempt, detail);
    log_info("site", "learn job %lld: %s", (long long)j->job_id, detail);
    add_rollback(r, j, automatic ? "automatic" : "operator", reason, mae, rows,
                 (const char(*)[65])sha, v);
    return 1;
}
