/*
 * hub_db_pool: the part of the hub's data layer that pooling rounds use
 * (same interface, hub_db.h): pool_rounds (one row per round: its plan and
 * how far it got) and pool_jobs (the learn jobs a round submitted and what
 * came of each), read back for `outpost model show`; and model_rollbacks
 * (a site that went back to its previous champion, shown on the lineage).
 */
#include "hub/hub_db.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hubdb__pool_schema(hubdb *db)
{
    return store_exec(db->st, "CREATE TABLE IF NOT EXISTS pool_rounds(id INTEGER PRIMARY KEY,"
                              " name TEXT NOT NULL, owner TEXT NOT NULL, own TEXT NOT NULL,"
                              " sites TEXT NOT NULL, passes INTEGER NOT NULL,"
                              " rounds INTEGER NOT NULL, deadline_at INTEGER NOT NULL,"
                              " step INTEGER NOT NULL, versions INTEGER NOT NULL,"
                              " state TEXT NOT NULL, started_by TEXT NOT NULL,"
                              " started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL);"
                              "CREATE INDEX IF NOT EXISTS pool_rounds_name ON pool_rounds(name);"
                              "CREATE TABLE IF NOT EXISTS pool_jobs(job_id INTEGER PRIMARY KEY,"
                              " round INTEGER NOT NULL, site TEXT NOT NULL, mode TEXT NOT NULL,"
                              " outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
                              " version INTEGER NOT NULL DEFAULT 0);"
                              "CREATE INDEX IF NOT EXISTS pool_jobs_round ON pool_jobs(round);"
                              "CREATE TABLE IF NOT EXISTS model_rollbacks(id INTEGER PRIMARY KEY,"
                              " name TEXT NOT NULL, at INTEGER NOT NULL, entry TEXT NOT NULL);"
                              "CREATE INDEX IF NOT EXISTS model_rollbacks_name"
                              " ON model_rollbacks(name);");
}

void hubdb_pool_round_clear(hubdb_pool_round *r)
{
    if (!r) return;
    free(r->sites);
    memset(r, 0, sizeof *r);
}

int hubdb_pool_round_add(hubdb *db, const hubdb_pool_round *r, int64_t *id)
{
    store_q *st = store_prepare(db->st, "INSERT INTO pool_rounds(name, owner, own, sites,"
                                        " passes, rounds, deadline_at, step, versions, state,"
                                        " started_by, started_at, finished_at)"
                                        " VALUES(?,?,?,?,?,?,?,0,0,'visiting',?,?,0)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, r->name);
    store_q_bind_text(st, 2, r->owner);
    store_q_bind_text(st, 3, r->own);
    store_q_bind_text(st, 4, r->sites);
    store_q_bind_int64(st, 5, r->passes);
    store_q_bind_int64(st, 6, r->rounds);
    store_q_bind_int64(st, 7, r->deadline_at_ms);
    store_q_bind_text(st, 8, r->by);
    store_q_bind_int64(st, 9, r->started_at_ms);
    int rc = store_q_run(st);
    if (rc == OP_OK) *id = store_last_rowid(db->st);
    return rc;
}

#define ROUND_COLUMNS                                                                              \
    "id, name, owner, own, sites, passes, rounds, deadline_at, step, versions, state, started_by," \
    " started_at, finished_at"

static int read_round(store_q *st, hubdb_pool_round *r)
{
    memset(r, 0, sizeof *r);
    r->id = store_q_int64(st, 0);
    snprintf(r->name, sizeof r->name, "%s", store_q_text(st, 1));
    snprintf(r->owner, sizeof r->owner, "%s", store_q_text(st, 2));
    snprintf(r->own, sizeof r->own, "%s", store_q_text(st, 3));
    r->sites = strdup(store_q_text(st, 4));
    r->passes = store_q_int64(st, 5);
    r->rounds = store_q_int64(st, 6);
    r->deadline_at_ms = store_q_int64(st, 7);
    r->step = store_q_int64(st, 8);
    r->versions = store_q_int64(st, 9);
    snprintf(r->state, sizeof r->state, "%s", store_q_text(st, 10));
    snprintf(r->by, sizeof r->by, "%s", store_q_text(st, 11));
    r->started_at_ms = store_q_int64(st, 12);
    r->finished_at_ms = store_q_int64(st, 13);
    return r->sites ? OP_OK : OP_ENOMEM;
}

int hubdb_pool_round_get(hubdb *db, int64_t id, const char *name, hubdb_pool_round *out)
{
    store_q *st =
        id ? store_prepare(db->st, "SELECT " ROUND_COLUMNS " FROM pool_rounds WHERE id=?")
           : store_prepare(db->st, "SELECT " ROUND_COLUMNS " FROM pool_rounds WHERE name=? AND"
                                   " state IN ('visiting','offering') ORDER BY id DESC LIMIT 1");
    if (!st) return OP_ESTORE;
    if (id)
        store_q_bind_int64(st, 1, id);
    else
        store_q_bind_text(st, 1, name ? name : "");
    int rc = store_q_step(st) == STORE_ROW ? read_round(st, out) : OP_ENOTFOUND;
    store_q_reset(st);
    return rc;
}

int hubdb_pool_round_update(hubdb *db, const hubdb_pool_round *r)
{
    store_q *st = store_prepare(db->st, "UPDATE pool_rounds SET step=?, versions=?, state=?,"
                                        " finished_at=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, r->step);
    store_q_bind_int64(st, 2, r->versions);
    store_q_bind_text(st, 3, r->state);
    store_q_bind_int64(st, 4, r->finished_at_ms);
    store_q_bind_int64(st, 5, r->id);
    return store_q_run(st);
}

int hubdb_pool_job_add(hubdb *db, int64_t job_id, int64_t round, const char *site, const char *mode)
{
    store_q *st = store_prepare(db->st, "INSERT INTO pool_jobs(job_id, round, site, mode,"
                                        " outcome) VALUES(?,?,?,?,'running')");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, round);
    store_q_bind_text(st, 3, site);
    store_q_bind_text(st, 4, mode);
    return store_q_run(st);
}

int hubdb_pool_job_get(hubdb *db, int64_t job_id, hubdb_pool_job *out)
{
    store_q *st =
        store_prepare(db->st, "SELECT round, site, mode, outcome FROM pool_jobs WHERE job_id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW) {
        memset(out, 0, sizeof *out);
        out->job_id = job_id;
        out->round = store_q_int64(st, 0);
        snprintf(out->site, sizeof out->site, "%s", store_q_text(st, 1));
        snprintf(out->mode, sizeof out->mode, "%s", store_q_text(st, 2));
        snprintf(out->outcome, sizeof out->outcome, "%s", store_q_text(st, 3));
        rc = OP_OK;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_pool_job_set(hubdb *db, int64_t job_id, const char *outcome, const char *detail,
                       int64_t version)
{
    store_q *st =
        store_prepare(db->st, "UPDATE pool_jobs SET outcome=?, detail=?, version=? WHERE job_id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, outcome);
    store_q_bind_text(st, 2, detail ? detail : "");
    store_q_bind_int64(st, 3, version);
    store_q_bind_int64(st, 4, job_id);
    return store_q_run(st);
}

int hubdb_pool_jobs_running(hubdb *db, int64_t round, const char *mode, int64_t *n)
{
    store_q *st = store_prepare(db->st, "SELECT COUNT(*) FROM pool_jobs WHERE round=? AND"
                                        " mode=? AND outcome='running'");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, round);
    store_q_bind_text(st, 2, mode);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *n = store_q_int64(st, 0);
    store_q_reset(st);
    return rc;
}

int hubdb_job_reason(hubdb *db, int64_t job_id, char **reason)
{
    store_q *st = store_prepare(db->st, "SELECT IFNULL(reason, '') FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW)
        rc = (*reason = strdup(store_q_text(st, 0))) ? OP_OK : OP_ENOMEM;
    store_q_reset(st);
    return rc;
}

/* The jobs of round id, in the order submitted, into arr. */
static int round_jobs(hubdb *db, int64_t id, cJSON *arr)
{
    store_q *st = store_prepare(db->st, "SELECT job_id, site, mode, outcome, detail, version"
                                        " FROM pool_jobs WHERE round=? ORDER BY job_id");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, id);
    int rc = OP_OK;
    while (rc == OP_OK && store_q_step(st) == STORE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            rc = OP_ENOMEM;
            break;
        }
        jsonx_add_int(o, "job", store_q_int64(st, 0));
        cJSON_AddStringToObject(o, "site", store_q_text(st, 1));
        cJSON_AddStringToObject(o, "mode", store_q_text(st, 2));
        cJSON_AddStringToObject(o, "outcome", store_q_text(st, 3));
        cJSON_AddStringToObject(o, "detail", store_q_text(st, 4));
        if (store_q_int64(st, 5)) jsonx_add_int(o, "version", store_q_int64(st, 5));
        cJSON_AddItemToArray(arr, o);
    }
    store_q_reset(st);
    return rc;
}

int hubdb_pool_rounds_view(hubdb *db, const char *name, int64_t limit, cJSON *out)
{
    store_q *st = store_prepare(db->st, "SELECT " ROUND_COLUMNS " FROM pool_rounds WHERE"
                                        " name=? ORDER BY id DESC LIMIT ?");
    if (!st || !out) return st ? OP_ENOMEM : OP_ESTORE;
    store_q_bind_text(st, 1, name);
    store_q_bind_int64(st, 2, limit);
    hubdb_pool_round rows[8];
    int n = 0, rc = OP_OK;
    while (rc == OP_OK && n < 8 && store_q_step(st) == STORE_ROW)
        rc = read_round(st, &rows[n++]);
    store_q_reset(st);
    /* the jobs are read after: one statement at a time on the cache's entries */
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (rc == OP_OK && o) {
            jsonx_add_int(o, "round", rows[i].id);
            cJSON_AddStringToObject(o, "owner", rows[i].owner);
            cJSON_AddStringToObject(o, "state", rows[i].state);
            cJSON_AddStringToObject(o, "by", rows[i].by);
            jsonx_add_int(o, "passes", rows[i].passes);
            jsonx_add_int(o, "versions", rows[i].versions);
            jsonx_add_int(o, "started_at", rows[i].started_at_ms);
            jsonx_add_int(o, "finished_at", rows[i].finished_at_ms);
            cJSON_AddItemToObject(o, "sites", cJSON_Parse(rows[i].sites));
            rc = round_jobs(db, rows[i].id, cJSON_AddArrayToObject(o, "jobs"));
            cJSON_AddItemToArray(out, o);
        } else {
            cJSON_Delete(o);
            if (rc == OP_OK) rc = OP_ENOMEM;
        }
        hubdb_pool_round_clear(&rows[i]);
    }
    return rc;
}

int hubdb_rollback_add(hubdb *db, const char *name, int64_t at_ms, const char *entry)
{
    store_q *st =
        store_prepare(db->st, "INSERT INTO model_rollbacks(name, at, entry) VALUES(?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    store_q_bind_int64(st, 2, at_ms);
    store_q_bind_text(st, 3, entry);
    int rc = store_q_step(st) == STORE_DONE ? OP_OK : OP_ESTORE;
    store_q_reset(st);
    return rc;
}

int hubdb_rollbacks_view(hubdb *db, const char *name, int64_t limit, cJSON *out)
{
    store_q *st = store_prepare(db->st, "SELECT entry FROM model_rollbacks WHERE name=?"
                                        " ORDER BY id DESC LIMIT ?");
    if (!st || !out) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    store_q_bind_int64(st, 2, limit);
    while (store_q_step(st) == STORE_ROW) {
        cJSON *e = cJSON_Parse(store_q_text(st, 0));
        if (e) cJSON_AddItemToArray(out, e);
    }
    store_q_reset(st);
    return OP_OK;
}

int hubdb_model_version_of(hubdb *db, const char *name, const char *sha256, const char *site,
                           int64_t *version)
{
    store_q *st = store_prepare(db->st, "SELECT version FROM models WHERE name=? AND sha256=?"
                                        " AND origin=? ORDER BY version DESC LIMIT 1");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    store_q_bind_text(st, 2, sha256);
    store_q_bind_text(st, 3, site);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ENOTFOUND;
    if (rc == OP_OK) *version = store_q_int64(st, 0);
    store_q_reset(st);
    return rc;
}

int hubdb_pool_latest_of(hubdb *db, const char *owner, char name[64])
{
    store_q *st = store_prepare(db->st, "SELECT name FROM pool_rounds WHERE owner=?"
                                        " ORDER BY id DESC LIMIT 1");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, owner);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ENOTFOUND;
    if (rc == OP_OK) snprintf(name, 64, "%s", store_q_text(st, 0));
    store_q_reset(st);
    return rc;
}
