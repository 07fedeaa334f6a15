/*
 * hub_db_api: the part of the hub's data layer the HTTP API uses: API
 * tokens (only a hash of each secret is stored), and the brief views of a
 * job and of the audit log that live updates and metrics read.
 */
#ifndef OUTPOST_HUB_DB_API_H
#define OUTPOST_HUB_DB_API_H

#include "hub/hub_db.h"

#include <cJSON.h>
#include <stdint.h>

/* An API token as stored: the secret's hash, never the secret. */
typedef struct hubdb_api_token {
    char id[17];    /* 16 hex digits: the public half of the token */
    char hash[65];  /* hex BLAKE2b-256 of the secret half */
    char op_id[64]; /* the operator the token acts as */
    char role[16];  /* viewer, operator or admin */
    int64_t created_at_ms;
    int64_t expires_at_ms; /* 0: never */
    int64_t revoked_at_ms; /* 0: not revoked */
    char created_by[64];
} hubdb_api_token;

/* A new token's row. OP_ESTORE (also when the id exists). */
int hubdb_api_token_put(hubdb *db, const hubdb_api_token *t);
/* The token with that id. OP_ENOTFOUND, OP_ESTORE. */
int hubdb_api_token_get(hubdb *db, const char *id, hubdb_api_token *out);
/* Every token (without hashes), newest first, as objects appended to arr. OP_ESTORE. */
int hubdb_api_tokens_list(hubdb *db, cJSON *arr);
/* Marks the token revoked at now; *changed 0 when there was no such live token. OP_ESTORE. */
int hubdb_api_token_revoke(hubdb *db, const char *id, int64_t now_ms, int *changed);

/* What a live update says of one job. */
typedef struct hubdb_job_brief {
    char state[16];
    char kind[16];
    char site[64]; /* "" when none */
    int64_t submitted_at_ms, placed_at_ms;
} hubdb_job_brief;
/* OP_ENOTFOUND, OP_ESTORE. */
int hubdb_job_brief_get(hubdb *db, int64_t job_id, hubdb_job_brief *out);
/* The bytes of the audit log's entries. OP_ESTORE. */
int hubdb_audit_bytes(hubdb *db, int64_t *bytes);

#endif
