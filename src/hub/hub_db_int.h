/*
 * hub_db_int: what the files of the hub's data layer (hub_db.c,
 * hub_db_jobs.c) share and nothing else sees: the handle's layout.
 */
#ifndef OUTPOST_HUB_DB_INT_H
#define OUTPOST_HUB_DB_INT_H

#include "io/store.h"

struct hubdb {
    store *st;
    /* hub_db_lease.c: the lease every commit is fenced by, once this hub took it */
    struct {
        int on, lost;
        char holder[128];
        int64_t epoch, lease_ms;
        int64_t db_minus_mono_ms; /* the database's clock minus the monotonic one, when taken */
        int64_t renewed_mono_ms;  /* when the last fenced commit renewed it */
        int64_t pending_mono_ms;  /* the renewal of the commit in progress */
    } fence;
};

/* hub_db_runtimes.c: its table, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__runtimes_schema(hubdb *db);
/* hub_db_pool.c: the pooling rounds' tables, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__pool_schema(hubdb *db);
/* hub_db_api.c: the API tokens' table, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__api_schema(hubdb *db);

/* hub_db_lease.c: the lease's table and row, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__lease_schema(hubdb *db);
/*
 * In the transaction about to commit: renews the lease if this hub still
 * holds it. OP_OK, OP_EEXPIRED (another hub holds it: roll back), OP_ESTORE.
 */
int hubdb__lease_fence(hubdb *db);

#endif
