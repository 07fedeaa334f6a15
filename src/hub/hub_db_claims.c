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
    store_q *st = store_prepare(db->st, "INSERT OR REPLACE INTO site_claims(site, max_cores,"
                                        " max_memory_mb, max_watts, measured_cores,"
                                        " counted_cores, claimed_cores, failures, checked_at,"
                                        " verdict) VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, c->site);
    store_q_bind_int64(st, 2, c->max_cores);
    store_q_bind_int64(st, 3, c->max_memory_mb);
    store_q_bind_double(st, 4, c->max_watts);
    store_q_bind_double(st, 5, c->measured_cores);
    store_q_bind_int(st, 6, c->counted_cores);
    store_q_bind_int(st, 7, c->claimed_cores);
    store_q_bind_int(st, 8, c->failures);
    store_q_bind_int64(st, 9, c->checked_at_ms);
    store_q_bind_text(st, 10, c->verdict ? c->verdict : "");
    return store_q_run(st);
}

int hubdb_claims_each(hubdb *db, int (*fn)(void *ctx, const hubdb_claims *claims), void *ctx)
{
    store_q *st = store_prepare(db->st, "SELECT site, max_cores, max_memory_mb, max_watts,"
                                        " measured_cores, counted_cores, claimed_cores,"
                                        " failures, checked_at, verdict FROM site_claims"
                                        " ORDER BY site");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && store_q_step(st) == STORE_ROW) {
        hubdb_claims c = {.site = store_q_text(st, 0),
                          .max_cores = store_q_int64(st, 1),
                          .max_memory_mb = store_q_int64(st, 2),
                          .max_watts = store_q_double(st, 3),
                          .measured_cores = store_q_double(st, 4),
                          .counted_cores = store_q_int(st, 5),
                          .claimed_cores = store_q_int(st, 6),
                          .failures = store_q_int(st, 7),
                          .checked_at_ms = store_q_int64(st, 8),
                          .verdict = store_q_text(st, 9)};
        rc = fn(ctx, &c);
    }
    store_q_reset(st);
    return rc;
}

int hubdb_site_set_quarantined(hubdb *db, const char *site_id, const char *reason)
{
    store_q *st = store_prepare(db->st, "UPDATE sites SET quarantined=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, reason ? reason : "");
    store_q_bind_text(st, 2, site_id);
    return store_q_run(st);
}

/*
 * One pass over the applied results, grouped by site: what the site says
 * (CPU seconds, wall time) beside what the hub saw (the attempt placed to
 * finished, times the cores reserved for it). A result applies to the
 * job's attempt on its site, so the join is on both.
 */
int hubdb_sites_delivered(hubdb *db, cJSON *by_site)
{
    store_q *st = store_prepare(
        db->st, "SELECT r.site, COUNT(*), IFNULL(SUM(r.cpu_seconds), 0),"
                " IFNULL(SUM(r.wall_ms), 0), IFNULL(SUM(CASE WHEN j.finished_at > j.placed_at"
                " THEN j.finished_at - j.placed_at ELSE 0 END), 0),"
                " IFNULL(SUM(CASE WHEN j.finished_at > j.placed_at THEN (j.finished_at -"
                " j.placed_at) * j.cores ELSE 0 END), 0) / 1000.0"
                " FROM results r JOIN jobs j ON j.id = r.job_id AND j.attempt = r.attempt"
                " AND j.site = r.site WHERE r.applied = 1 GROUP BY r.site");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && store_q_step(st) == STORE_ROW) {
        cJSON *o = cJSON_AddObjectToObject(by_site, store_q_text(st, 0));
        if (!o) {
            rc = OP_ENOMEM;
            break;
        }
        jsonx_add_int(o, "results", store_q_int64(st, 1));
        cJSON_AddNumberToObject(o, "cpu_seconds", store_q_double(st, 2));
        jsonx_add_int(o, "wall_ms", store_q_int64(st, 3));
        jsonx_add_int(o, "observed_ms", store_q_int64(st, 4));
        cJSON_AddNumberToObject(o, "core_seconds", store_q_double(st, 5));
    }
    store_q_reset(st);
    return rc;
}
