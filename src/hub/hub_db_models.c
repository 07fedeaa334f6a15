/*
 * hub_db_models: the model registry's SQL (tables models and artifacts,
 * created with the rest of the schema in hub_db.c). A model version is a
 * row of models, never changed once written but for its removal time; an
 * artifact is the manifest of bytes some version names, kept while any
 * version that is not removed names it.
 */
#include "base/err.h"
#include "core/jobstate.h"
#include "hub/hub_db.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_col(store_q *st, int col)
{
    const char *text = store_q_text(st, col);
    return strdup(text ? text : "");
}

void hubdb_model_clear(hubdb_model *m)
{
    if (!m) return;
    free(m->record);
    free(m->sig);
    memset(m, 0, sizeof *m);
}

int hubdb_artifact_add(hubdb *db, const char *sha256, int64_t size_bytes, const char *manifest,
                       const char *sig, int64_t now_ms)
{
    store_q *st = store_prepare(db->st, "INSERT OR IGNORE INTO artifacts(sha256, size,"
                                        " manifest, sig, created_at) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    store_q_bind_int64(st, 2, size_bytes);
    store_q_bind_text(st, 3, manifest);
    store_q_bind_text(st, 4, sig);
    store_q_bind_int64(st, 5, now_ms);
    return store_q_run(st);
}

int hubdb_artifact_get(hubdb *db, const char *sha256, int64_t *size_bytes, char **manifest,
                       char **sig)
{
    store_q *st = store_prepare(db->st, "SELECT size, manifest, sig FROM artifacts WHERE sha256=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW) {
        if (size_bytes) *size_bytes = store_q_int64(st, 0);
        rc = OP_OK;
        if (manifest && !(*manifest = dup_col(st, 1))) rc = OP_ENOMEM;
        if (sig && rc == OP_OK && !(*sig = dup_col(st, 2))) rc = OP_ENOMEM;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_artifact_delete(hubdb *db, const char *sha256)
{
    store_q *st = store_prepare(db->st, "DELETE FROM artifacts WHERE sha256=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    return store_q_run(st);
}

int hubdb_model_next_version(hubdb *db, const char *name, int64_t *version)
{
    store_q *st =
        store_prepare(db->st, "SELECT IFNULL(MAX(version), 0) + 1 FROM models WHERE name=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *version = store_q_int64(st, 0);
    store_q_reset(st);
    return rc;
}

int hubdb_model_insert(hubdb *db, const hubdb_model *m)
{
    store_q *st = store_prepare(db->st, "INSERT INTO models(name, version, sha256, size,"
                                        " data_class, origin, created_at, record, sig)"
                                        " VALUES(?,?,?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, m->name);
    store_q_bind_int64(st, 2, m->version);
    store_q_bind_text(st, 3, m->sha256);
    store_q_bind_int64(st, 4, m->size_bytes);
    store_q_bind_int(st, 5, m->data_class);
    store_q_bind_text(st, 6, m->origin);
    store_q_bind_int64(st, 7, m->created_at_ms);
    store_q_bind_text(st, 8, m->record);
    store_q_bind_text(st, 9, m->sig);
    return store_q_run(st);
}

#define MODEL_COLUMNS "name, version, sha256, size, data_class, origin, created_at, removed_at,"
#define MODEL_COLUMNS2 " record, sig"

/* One row of MODEL_COLUMNS into out (strings malloc'd). */
static int read_model(store_q *st, hubdb_model *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", store_q_text(st, 0));
    out->version = store_q_int64(st, 1);
    snprintf(out->sha256, sizeof out->sha256, "%s", store_q_text(st, 2));
    out->size_bytes = store_q_int64(st, 3);
    out->data_class = store_q_int(st, 4);
    snprintf(out->origin, sizeof out->origin, "%s", store_q_text(st, 5));
    out->created_at_ms = store_q_int64(st, 6);
    out->removed_at_ms = store_q_int64(st, 7);
    out->record = dup_col(st, 8);
    out->sig = dup_col(st, 9);
    if (out->record && out->sig) return OP_OK;
    hubdb_model_clear(out);
    return OP_ENOMEM;
}

int hubdb_model_get(hubdb *db, const char *name, int64_t version, hubdb_model *out)
{
    memset(out, 0, sizeof *out); /* cleared safely whatever the outcome */
    store_q *st =
        version > 0
            ? store_prepare(db->st, "SELECT " MODEL_COLUMNS MODEL_COLUMNS2
                                    " FROM models WHERE name=? AND version=?")
            : store_prepare(db->st, "SELECT " MODEL_COLUMNS MODEL_COLUMNS2 " FROM models"
                                    " WHERE name=? AND removed_at=0 ORDER BY version DESC LIMIT 1");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    if (version > 0) store_q_bind_int64(st, 2, version);
    int rc = store_q_step(st) == STORE_ROW ? read_model(st, out) : OP_ENOTFOUND;
    store_q_reset(st);
    return rc;
}

int hubdb_model_by_sha(hubdb *db, const char *sha256, hubdb_model *out)
{
    memset(out, 0, sizeof *out);
    store_q *st = store_prepare(db->st, "SELECT " MODEL_COLUMNS MODEL_COLUMNS2 " FROM models"
                                        " WHERE sha256=? AND removed_at=0"
                                        " ORDER BY data_class DESC, created_at DESC LIMIT 1");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    int rc = store_q_step(st) == STORE_ROW ? read_model(st, out) : OP_ENOTFOUND;
    store_q_reset(st);
    return rc;
}

int hubdb_models_list(hubdb *db, const char *name, int with_removed, int64_t limit, cJSON *out)
{
    store_q *st = store_prepare(db->st, "SELECT " MODEL_COLUMNS MODEL_COLUMNS2 " FROM models"
                                        " WHERE (?1 IS NULL OR name=?1) AND (?2 OR removed_at=0)"
                                        " ORDER BY name, version DESC LIMIT ?3");
    if (!st || !out) return OP_ESTORE;
    store_q_bind_text(st, 1, name);
    store_q_bind_int(st, 2, with_removed);
    store_q_bind_int64(st, 3, limit);
    int rc = OP_OK;
    while (rc == OP_OK && store_q_step(st) == STORE_ROW) {
        hubdb_model m;
        cJSON *o = cJSON_CreateObject();
        rc = o ? read_model(st, &m) : OP_ENOMEM;
        if (rc != OP_OK) {
            cJSON_Delete(o);
            break;
        }
        cJSON_AddStringToObject(o, "name", m.name);
        cJSON_AddNumberToObject(o, "version", (double)m.version);
        cJSON_AddStringToObject(o, "sha256", m.sha256);
        cJSON_AddNumberToObject(o, "size", (double)m.size_bytes);
        cJSON_AddNumberToObject(o, "created_at", (double)m.created_at_ms);
        cJSON_AddNumberToObject(o, "removed_at", (double)m.removed_at_ms);
        cJSON_AddStringToObject(o, "record", m.record);
        cJSON_AddStringToObject(o, "sig", m.sig);
        cJSON_AddItemToArray(out, o);
        hubdb_model_clear(&m);
    }
    store_q_reset(st);
    return rc;
}

int hubdb_model_remove(hubdb *db, const char *name, int64_t version, int64_t now_ms, int *removed)
{
    store_q *st = store_prepare(db->st, "UPDATE models SET removed_at=?1 WHERE name=?2"
                                        " AND removed_at=0 AND (?3=0 OR version=?3)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, now_ms);
    store_q_bind_text(st, 2, name);
    store_q_bind_int64(st, 3, version);
    int rc = store_q_run(st);
    if (rc == OP_OK) *removed = store_changes(db->st);
    return rc;
}

int hubdb_sha_in_use(hubdb *db, const char *sha256, int *used)
{
    store_q *st =
        store_prepare(db->st, "SELECT COUNT(*) FROM models WHERE sha256=? AND removed_at=0");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *used = store_q_int(st, 0) > 0;
    store_q_reset(st);
    return rc;
}

int hubdb_site_has_model_job(hubdb *db, const char *site, const char *sha256, int *has)
{
    store_q *st = store_prepare(db->st, "SELECT COUNT(*) FROM jobs WHERE site=? AND"
                                        " state IN (?, ?) AND model_sha=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, site);
    store_q_bind_text(st, 2, jobstate_name(JOB_PLACED));
    store_q_bind_text(st, 3, jobstate_name(JOB_RUNNING));
    store_q_bind_text(st, 4, sha256);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *has = store_q_int(st, 0) > 0;
    store_q_reset(st);
    return rc;
}

int hubdb_model_classes(hubdb *db, const char *sha256,
                        int (*fn)(void *ctx, int data_class, const char *origin), void *ctx)
{
    store_q *st = store_prepare(db->st, "SELECT data_class, origin FROM models"
                                        " WHERE sha256=? AND removed_at=0");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sha256);
    int stop = 0;
    while (!stop && store_q_step(st) == STORE_ROW)
        stop = fn(ctx, store_q_int(st, 0), store_q_text(st, 1));
    store_q_reset(st);
    return OP_OK;
}
