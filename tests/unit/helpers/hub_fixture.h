/*
 * hub_fixture: a hub for unit tests, without processes. A fresh hub.db in a
 * temp dir (a real SQLite file), a hub identity, no bus (what the hub would
 * send stays queued in its batches until committed and dropped), quiet logs;
 * and the small builders the hub tests share: sites, submissions, signed
 * messages, operator requests.
 */
#ifndef OUTPOST_TEST_HUB_FIXTURE_H
#define OUTPOST_TEST_HUB_FIXTURE_H

#include "hub/hub_int.h"

#include <limits.h>
#include <stdint.h>

typedef struct hubfix {
    char dir[PATH_MAX];
    char db_path[PATH_MAX];
    hub *h;
    ident site_keys[8]; /* the keys of the sites hubfix_site added, in order */
    int n_site_keys;
    uint64_t seq; /* the next sequence number of hubfix_signed */
    ident op;     /* "op-test", the operator of hubfix_request, listed as the hub's operator */
} hubfix;

/* cmocka setup/teardown: *state is a hubfix with its hub open. */
int hubfix_setup(void **state);
int hubfix_teardown(void **state);
/* The same with the store in memory (":memory:"): for timings the disk would blur. */
int hubfix_setup_memory(void **state);

/* hubfix_setup with one heartbeat worker thread running (workers.h); its teardown stops it. */
int hubfix_setup_workers(void **state);
int hubfix_teardown_workers(void **state);

/* Closes the hub and opens a new one on the same files (what survived a restart). */
void hubfix_reopen(hubfix *f);

/* An identity from a seed byte (the same seed gives the same key). */
void hubfix_ident(ident *out, const char *id, uint8_t seed);

/* A live site in memory with its own key: class, cores, power envelope, watts per core. */
hub_site *hubfix_site(hubfix *f, const char *id, unsigned class_bit, int cores, double budget_watts,
                      double watts_per_core);
/* The key hubfix_site gave to site id. */
const ident *hubfix_site_key(hubfix *f, const char *id);

/* An operator request (JSON text) through the API; the response (caller frees). */
cJSON *hubfix_request(hubfix *f, const char *json);
/* Submits one spec (JSON text), asserts it was accepted, returns the job id. */
int64_t hubfix_submit(hubfix *f, const char *spec_json);
/* The job's state (JOB_*), asserting it exists. */
int hubfix_state(hubfix *f, int64_t job_id);
/* The job's "reason" and "explanation" as `outpost job` shows them (into buffers). */
void hubfix_job_text(hubfix *f, int64_t job_id, char *reason, size_t reason_len, char *explanation,
                     size_t explanation_len);

/*
 * What a sender's bus makes of the message text (taken): sealed to the hub
 * when the topic must be (proto_must_seal), then signed. The payload
 * (caller frees) and its length (updated in *len).
 */
char *hubfix_wrap(hubfix *f, const ident *sender, const char *topic, char *text, size_t *len,
                  char sig[129]);
/*
 * A signed envelope of type from sender on topic (body kept by the caller),
 * sealed to the hub where the topic must be: the payload (caller frees),
 * its length and signature, timestamped now.
 */
char *hubfix_signed(hubfix *f, const ident *sender, const char *topic, cJSON *body,
                    const char *type, size_t *len, char sig[129]);
/* Delivers a signed message from site id on its <leaf> topic through the hub's dispatch. */
void hubfix_site_says(hubfix *f, const char *id, const char *leaf, const char *type, cJSON *body);
/*
 * A join token of class cls for site sid from the operator API, opened as
 * the operator opens it (it comes sealed, never in clear); caller frees.
 */
char *hubfix_token(hubfix *f, const char *cls, const char *sid);

#endif
