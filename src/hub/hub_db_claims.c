/*
 * hub_db_claims: the part of the hub's data layer about what sites claim
 * and deliver: their join tokens' limits and probe verdicts (site_claims),
 * their quarantine (sites.quarantined) and the figures of their applied
 * results. See hub_db.h.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "hub/hub_db.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

int hubdb_claims_put(hubdb *db, const hubdb_claims *c)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT OR REPLACE INTO site_claims(site, max_cores,"
                                          " max_memory_mb, max_watts, measured_cores,"
                                          " counted_cores, claimed_cores, failures, checked_at,"
                                          " verdict) VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, c->site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, c->max_cores);
    sqlite3_bind_int64(st, 3, c->max_memory_mb);
    sqlite3_bind_double(st, 4, c->max_watts);
    sqlite3_bind_double(st, 5, c->measured_cores);
    sqlite3_bind_int(st, 6, c->counted_cores);
    sqlite3_bind_int(st, 7, c->claimed_cores);
    sqlite3_bind_int(st, 8, c->failures);
    sqlite3_bind_int64(st, 9, c->checked_at_ms);
    sqlite3_bind_text(st, 10, c->verdict ? c->verdict : "", -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_claims_each(hubdb *db, int (*fn)(void *ctx, const hubdb_claims *claims), void *ctx)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT site, max_cores, max_memory_mb, max_watts,"
                                          " measured_cores, counted_cores, claimed_cores,"
                                          " failures, checked_at, verdict FROM site_claims"
                                          " ORDER BY site");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && sqlite3_step(st) == SQLITE_ROW) {
        hubdb_claims c = {.site = store_col_text(st, 0),
                          .max_cores = sqlite3_column_int64(st, 1),
                          .max_memory_mb = sqlite3_column_int64(st, 2),
                          .max_watts = sqlite3_column_double(st, 3),
                          .measured_cores = sqlite3_column_double(st, 4),
                          .counted_cores = sqlite3_column_int(st, 5),
                          .claimed_cores = sqlite3_column_int(st, 6),
                          .failures = sqlite3_column_int(st, 7),
                          .checked_at_ms = sqlite3_column_int64(st, 8),
                          .verdict = store_col_text(st, 9)};
        rc = fn(ctx, &c);
    }
    sqlite3_reset(st);
    return rc;
}

int hubdb_site_set_quarantined(hubdb *db, const char *site_id, const char *reason)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE sites SET quarantined=? WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, reason ? reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, site_id, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

/*
 * One pass over the applied results, grouped by site: what the site says
 * (CPU seconds, wall time) beside what the hub saw (the attempt placed to
 * finished, times the cores reserved for it). A result applies to the
 * job's attempt on its site, so the join is on both.
 */
int hubdb_sites_delivered(hubdb *db, cJSON *by_site)
{
    sqlite3_stmt *st = store_stmt(
        db->st, "SELECT r.site, COUNT(*), IFNULL(SUM(r.cpu_seconds), 0),"
                " IFNULL(SUM(r.wall_ms), 0), IFNULL(SUM(MAX(j.finished_at - j.placed_at, 0)), 0),"
                " IFNULL(SUM(MAX(j.finished_at - j.placed_at, 0) * j.cores), 0) / 1000.0"
                " FROM results r JOIN jobs j ON j.id = r.job_id AND j.attempt = r.attempt"
                " AND j.site = r.site WHERE r.applied = 1 GROUP BY r.site");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_AddObjectToObject(by_site, store_col_text(st, 0));
        if (!o) {
            rc = OP_ENOMEM;
            break;
        }
        jsonx_add_int(o, "results", sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(o, "cpu_seconds", sqlite3_column_double(st, 2));
        jsonx_add_int(o, "wall_ms", sqlite3_column_int64(st, 3));
        jsonx_add_int(o, "observed_ms", sqlite3_column_int64(st, 4));
        cJSON_AddNumberToObject(o, "core_seconds", sqlite3_column_double(st, 5));
    }
    sqlite3_reset(st);
    return rc;
}
