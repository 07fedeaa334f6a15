/*
 * hub_db_api: API tokens, job briefs and the audit log's size for the HTTP
 * API (hub_db_api.h). The api_tokens table is made when missing
 * (hubdb_open calls hubdb__api_schema).
 */
#include "hub/hub_db_api.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <string.h>

int hubdb__api_schema(hubdb *db)
{
    return store_exec(db->st, "CREATE TABLE IF NOT EXISTS api_tokens(id TEXT PRIMARY KEY,"
                              " hash TEXT NOT NULL, op_id TEXT NOT NULL, role TEXT NOT NULL,"
                              " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
                              " revoked_at INTEGER NOT NULL DEFAULT 0, created_by TEXT)");
}

int hubdb_api_token_put(hubdb *db, const hubdb_api_token *t)
{
    store_q *st = store_prepare(db->st, "INSERT INTO api_tokens(id, hash, op_id, role,"
                                        " created_at, expires_at, revoked_at, created_by)"
                                        " VALUES(?,?,?,?,?,?,0,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, t->id);
    store_q_bind_text(st, 2, t->hash);
    store_q_bind_text(st, 3, t->op_id);
    store_q_bind_text(st, 4, t->role);
    store_q_bind_int64(st, 5, t->created_at_ms);
    store_q_bind_int64(st, 6, t->expires_at_ms);
    store_q_bind_text(st, 7, t->created_by);
    return store_q_run(st);
}

int hubdb_api_token_get(hubdb *db, const char *id, hubdb_api_token *out)
{
    store_q *st = store_prepare(db->st, "SELECT id, hash, op_id, role, created_at, expires_at,"
                                        " revoked_at, created_by FROM api_tokens WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, id);
    int step = store_q_step(st), rc = OP_ENOTFOUND;
    if (step == STORE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->id, sizeof out->id, "%s", store_q_text(st, 0));
        snprintf(out->hash, sizeof out->hash, "%s", store_q_text(st, 1));
        snprintf(out->op_id, sizeof out->op_id, "%s", store_q_text(st, 2));
        snprintf(out->role, sizeof out->role, "%s", store_q_text(st, 3));
        out->created_at_ms = store_q_int64(st, 4);
        out->expires_at_ms = store_q_int64(st, 5);
        out->revoked_at_ms = store_q_int64(st, 6);
        snprintf(out->created_by, sizeof out->created_by, "%s", store_q_text(st, 7));
        rc = OP_OK;
    } else if (step != STORE_DONE) {
        rc = OP_ESTORE;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_api_tokens_list(hubdb *db, cJSON *arr)
{
    store_q *st = store_prepare(db->st, "SELECT id, op_id, role, created_at, expires_at,"
                                        " revoked_at, created_by FROM api_tokens"
                                        " ORDER BY created_at DESC, id LIMIT 1000");
    if (!st || !arr) return OP_ESTORE;
    while (store_q_step(st) == STORE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "id", store_q_text(st, 0));
        cJSON_AddStringToObject(o, "operator", store_q_text(st, 1));
        cJSON_AddStringToObject(o, "role", store_q_text(st, 2));
        jsonx_add_int(o, "created_at", store_q_int64(st, 3));
        jsonx_add_int(o, "expires_at", store_q_int64(st, 4));
        jsonx_add_int(o, "revoked_at", store_q_int64(st, 5));
        cJSON_AddStringToObject(o, "created_by", store_q_text(st, 6));
        cJSON_AddItemToArray(arr, o);
    }
    store_q_reset(st);
    return OP_OK;
}

int hubdb_api_token_revoke(hubdb *db, const char *id, int64_t now_ms, int *changed)
{
    store_q *st =
        store_prepare(db->st, "UPDATE api_tokens SET revoked_at=? WHERE id=? AND revoked_at=0");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, now_ms);
    store_q_bind_text(st, 2, id);
    int rc = store_q_run(st);
    *changed = rc == OP_OK && store_changes(db->st) > 0;
    return rc;
}

int hubdb_job_brief_get(hubdb *db, int64_t job_id, hubdb_job_brief *out)
{
    store_q *st = store_prepare(db->st, "SELECT state, kind, site, submitted_at, placed_at"
                                        " FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    int step = store_q_step(st), rc = OP_ENOTFOUND;
    if (step == STORE_ROW) {
        snprintf(out->state, sizeof out->state, "%s", store_q_text(st, 0));
        snprintf(out->kind, sizeof out->kind, "%s", store_q_text(st, 1));
        snprintf(out->site, sizeof out->site, "%s", store_q_text(st, 2));
        out->submitted_at_ms = store_q_int64(st, 3);
        out->placed_at_ms = store_q_int64(st, 4);
        rc = OP_OK;
    } else if (step != STORE_DONE) {
        rc = OP_ESTORE;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_audit_bytes(hubdb *db, int64_t *bytes)
{
    store_q *st = store_prepare(db->st, "SELECT COALESCE(SUM(length(entry)), 0)"
                                        " FROM audit_entries");
    if (!st) return OP_ESTORE;
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *bytes = store_q_int64(st, 0);
    store_q_reset(st);
    return rc;
}
