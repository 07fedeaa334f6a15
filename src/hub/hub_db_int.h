/*
 * hub_db_int: what the files of the hub's data layer (hub_db.c,
 * hub_db_jobs.c) share and nothing else sees: the handle's layout.
 */
#ifndef OUTPOST_HUB_DB_INT_H
#define OUTPOST_HUB_DB_INT_H

#include "io/store.h"

struct hubdb {
    store *st;
};

/* hub_db_runtimes.c: its table, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__runtimes_schema(hubdb *db);
/* hub_db_pool.c: the pooling rounds' tables, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__pool_schema(hubdb *db);
/* hub_db_api.c: the API tokens' table, made when missing (hubdb_open). OP_ESTORE. */
int hubdb__api_schema(hubdb *db);

#endif
