/*
 * hub_db_lease: the row that says which hub of a failover group is active
 * (table hub_lease: holder, epoch, expires_at on the database's clock), and
 * the fence every commit of the active hub passes: its transaction renews
 * the lease only while the row still names it, and is rolled back when it
 * does not (a standby took over while this hub was paused or cut off).
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "hub/hub_db.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <string.h>

int hubdb__lease_schema(hubdb *db)
{
    return store_exec(db->st, "CREATE TABLE IF NOT EXISTS hub_lease(name TEXT PRIMARY KEY,"
                              " holder TEXT NOT NULL, epoch INTEGER NOT NULL,"
                              " expires_at INTEGER NOT NULL);"
                              "INSERT OR IGNORE INTO hub_lease(name, holder, epoch, expires_at)"
                              " VALUES('hub', '', 0, 0);");
}

static int read_lease(hubdb *db, hubdb_lease *out)
{
    store_q *st = store_prepare(db->st, "SELECT holder, epoch, expires_at FROM hub_lease"
                                        " WHERE name='hub'");
    if (!st) return OP_ESTORE;
    int rc = store_q_step(st);
    if (rc == STORE_ROW) {
        snprintf(out->holder, sizeof out->holder, "%s", store_q_text(st, 0));
        out->epoch = store_q_int64(st, 1);
        out->expires_at_ms = store_q_int64(st, 2);
    }
    store_q_reset(st);
    return rc == STORE_ROW ? OP_OK : OP_ESTORE;
}

int hubdb_lease_get(hubdb *db, hubdb_lease *out)
{
    memset(out, 0, sizeof *out);
    out->now_ms = store_now_ms(db->st);
    return read_lease(db, out);
}

/*
 * One attempt, in a transaction of its own: the lease is taken when it has
 * expired on the database's clock. Two standbys trying at once serialize on
 * the row (PostgreSQL re-checks the WHERE after the first one's commit;
 * SQLite's write lock lets one in at a time): one of them gets it.
 */
int hubdb_lease_try(hubdb *db, const char *holder, int64_t lease_ms, int *taken,
                    hubdb_lease *before, hubdb_lease *after)
{
    *taken = 0;
    memset(before, 0, sizeof *before);
    memset(after, 0, sizeof *after);
    int64_t now = store_now_ms(db->st);
    if (now <= 0 || store_begin(db->st) != OP_OK) return OP_ESTORE;
    store_q *up = store_prepare(db->st, "UPDATE hub_lease SET holder=?, epoch=epoch+1,"
                                        " expires_at=? WHERE name='hub' AND expires_at<?");
    int rc = read_lease(db, before);
    if (rc == OP_OK && !up) rc = OP_ESTORE;
    if (rc == OP_OK) {
        store_q_bind_text(up, 1, holder);
        store_q_bind_int64(up, 2, now + lease_ms);
        store_q_bind_int64(up, 3, now);
        rc = store_q_run(up);
    }
    if (rc == OP_OK && store_changes(db->st) == 1) *taken = 1;
    if (rc == OP_OK) rc = read_lease(db, after);
    if (rc == OP_OK) rc = store_commit(db->st);
    if (rc != OP_OK) {
        store_rollback(db->st);
        *taken = 0;
        return rc;
    }
    before->now_ms = after->now_ms = now;
    if (*taken) {
        db->fence.on = 1;
        snprintf(db->fence.holder, sizeof db->fence.holder, "%s", holder);
        db->fence.epoch = after->epoch;
        db->fence.lease_ms = lease_ms;
        db->fence.db_minus_mono_ms = now - os_mono_ms();
        db->fence.renewed_mono_ms = os_mono_ms();
    }
    return OP_OK;
}

/*
 * Inside the commit's transaction: the lease pushed out by lease_ms on the
 * database's clock (as read when it was taken, carried forward by this
 * machine's monotonic clock), only where the row still names this holder
 * and epoch. No row: another hub holds it; the caller rolls back.
 */
int hubdb__lease_fence(hubdb *db)
{
    store_q *st = store_prepare(db->st, "UPDATE hub_lease SET expires_at=? WHERE name='hub'"
                                        " AND holder=? AND epoch=?");
    if (!st) return OP_ESTORE;
    int64_t mono = os_mono_ms();
    store_q_bind_int64(st, 1, mono + db->fence.db_minus_mono_ms + db->fence.lease_ms);
    store_q_bind_text(st, 2, db->fence.holder);
    store_q_bind_int64(st, 3, db->fence.epoch);
    int rc = store_q_run(st);
    if (rc != OP_OK) return rc;
    if (store_changes(db->st) != 1) {
        db->fence.lost = 1;
        log_error("hub",
                  "lease lost: epoch %lld of holder %s is no longer the lease's; this"
                  " hub's transaction is rolled back and it stops (another hub is active)",
                  (long long)db->fence.epoch, db->fence.holder);
        return OP_EEXPIRED;
    }
    db->fence.pending_mono_ms = mono;
    return OP_OK;
}

int hubdb_lease_lost(const hubdb *db)
{
    return db->fence.lost;
}

int64_t hubdb_lease_renewed_mono_ms(const hubdb *db)
{
    return db->fence.on ? db->fence.renewed_mono_ms : 0;
}

int hubdb_lease_release(hubdb *db)
{
    if (!db->fence.on || db->fence.lost) return OP_OK;
    store_q *st = store_prepare(db->st, "UPDATE hub_lease SET expires_at=0 WHERE name='hub'"
                                        " AND holder=? AND epoch=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, db->fence.holder);
    store_q_bind_int64(st, 2, db->fence.epoch);
    int rc = store_q_run(st);
    db->fence.on = 0;
    return rc;
}
