#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobstate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hub *open_hub(hubfix *f)
{
    hub *h = hub__new();
    assert_non_null(h);
    snprintf(h->data_dir, sizeof h->data_dir, "%s", f->dir);
    h->broker_tls = 0; /* the unit tests' broker is plain TCP */
    hubfix_ident(&h->identity, "hub", 200);
    assert_int_equal(hub__open_store(h, f->db_path, 0), OP_OK);
    hubfix_ident(&f->op, "op-test", 201);
    hub_operator *op = &h->operators[h->n_operators++];
    snprintf(op->id, sizeof op->id, "%s", f->op.id);
    memcpy(op->pk, f->op.pk, sizeof op->pk);
    return h;
}

static int setup_at(void **state, int in_memory)
{
    if (sodium_init() < 0) return -1;
    log_set_level(LOG_LEVEL_ERROR + 1);
    hubfix *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/outpost-test-hub-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    int rc = in_memory ? util_fmt(f->db_path, sizeof f->db_path, ":memory:")
                       : util_fmt(f->db_path, sizeof f->db_path, "%s/hub.db", f->dir);
    if (rc != OP_OK) return -1;
    f->h = open_hub(f);
    f->seq = 1;
    *state = f;
    return 0;
}

int hubfix_setup(void **state)
{
    return setup_at(state, 0);
}

int hubfix_setup_memory(void **state)
{
    return setup_at(state, 1);
}

int hubfix_teardown(void **state)
{
    hubfix *f = *state;
    hub__free(f->h);
    int rc = os_rm_rf(f->dir);
    free(f);
    return rc == OP_OK ? 0 : -1;
}

int hubfix_setup_workers(void **state)
{
    int rc = hubfix_setup(state);
    if (rc == 0) rc = hub__workers_start(((hubfix *)*state)->h, 1) == OP_OK ? 0 : -1;
    return rc;
}

int hubfix_teardown_workers(void **state)
{
    hub__workers_stop(((hubfix *)*state)->h);
    return hubfix_teardown(state);
}

void hubfix_reopen(hubfix *f)
{
    hub__free(f->h);
    f->h = open_hub(f);
}

void hubfix_ident(ident *out, const char *id, uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof seed);
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    assert_int_equal(crypto_sign_seed_keypair(out->pk, out->sk, seed), 0);
    util_hex(out->pk, 32, out->pk_hex);
}

hub_site *hubfix_site(hubfix *f, const char *id, unsigned class_bit, int cores, double budget_watts,
                      double watts_per_core)
{
    assert_true(f->n_site_keys < 8);
    ident *key = &f->site_keys[f->n_site_keys];
    hubfix_ident(key, id, (uint8_t)(10 + f->n_site_keys++));
    hub_site *s = hub__add_site(f->h, id);
    assert_non_null(s);
    memcpy(s->pk, key->pk, 32);
    s->class_bit = class_bit;
    s->cores = cores;
    s->memory_mb = 1024LL * cores;
    s->power_budget_watts = budget_watts;
    s->watts_per_core = watts_per_core;
    s->alive = 1;
    s->heard = 1;
    s->last_heartbeat_mono = os_mono_ms();
    return s;
}

const ident *hubfix_site_key(hubfix *f, const char *id)
{
    for (int i = 0; i < f->n_site_keys; i++)
        if (strcmp(f->site_keys[i].id, id) == 0) return &f->site_keys[i];
    fail_msg("no key for site %s", id);
    return NULL;
}

cJSON *hubfix_request(hubfix *f, const char *json)
{
    cJSON *req = cJSON_Parse(json);
    assert_non_null(req);
    cJSON *resp = hub__op_dispatch(f->h, req, "op-test");
    cJSON_Delete(req);
    assert_non_null(resp);
    return resp;
}

int64_t hubfix_submit(hubfix *f, const char *spec_json)
{
    char req[2048];
    snprintf(req, sizeof req, "{\"cmd\":\"submit\",\"spec\":%s}", spec_json);
    cJSON *resp = hubfix_request(f, req);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")))
        fail_msg("submit refused: %s", jsonx_str(resp, "error"));
    const cJSON *ids =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "ids");
    int64_t id = (int64_t)cJSON_GetArrayItem(ids, 0)->valuedouble;
    cJSON_Delete(resp);
    return id;
}

int hubfix_state(hubfix *f, int64_t job_id)
{
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, job_id, &job), OP_OK);
    return job.state;
}

void hubfix_job_text(hubfix *f, int64_t job_id, char *reason, size_t reason_len, char *explanation,
                     size_t explanation_len)
{
    char req[96];
    snprintf(req, sizeof req, "{\"cmd\":\"job\",\"id\":%lld}", (long long)job_id);
    cJSON *resp = hubfix_request(f, req);
    const cJSON *job =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "job");
    assert_non_null(job);
    snprintf(reason, reason_len, "%s", jsonx_str(job, "reason"));
    snprintf(explanation, explanation_len, "%s", jsonx_str(job, "explanation"));
    cJSON_Delete(resp);
}

char *hubfix_wrap(hubfix *f, const ident *sender, const char *topic, char *text, size_t *len,
                  char sig[129])
{
    char *payload = text;
    assert_non_null(text);
    if (proto_must_seal(topic)) {
        uint8_t *sealed = NULL;
        assert_int_equal(msg_seal(f->h->identity.pk, text, *len, &sealed, len), OP_OK);
        free(text);
        payload = (char *)sealed;
    }
    assert_int_equal(msg_sign(sender, topic, payload, *len, sig), OP_OK);
    return payload;
}

char *hubfix_signed(hubfix *f, const ident *sender, const char *topic, cJSON *body,
                    const char *type, size_t *len, char sig[129])
{
    char *text = msg_encode(body, sender->id, type, f->seq++, os_now_ms(), len);
    return hubfix_wrap(f, sender, topic, text, len, sig);
}

void hubfix_site_says(hubfix *f, const char *id, const char *leaf, const char *type, cJSON *body)
{
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", id, leaf), OP_OK);
    char *payload = hubfix_signed(f, hubfix_site_key(f, id), topic, body, type, &len, sig);
    hub__site_message(f->h, id, leaf, topic, payload, len, id, sig);
    free(payload);
}

char *hubfix_token(hubfix *f, const char *cls, const char *sid)
{
    char req[160];
    snprintf(req, sizeof req, "{\"cmd\":\"token\",\"class\":\"%s\",\"site\":\"%s\"}", cls, sid);
    cJSON *resp = hubfix_request(f, req);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    const char *sealed = jsonx_str(data, "sealed_token");
    assert_non_null(sealed);
    assert_null(jsonx_str(data, "token"));
    char *text = NULL;
    assert_int_equal(ident_open_sealed(&f->op, sealed, TOKEN_MAX_TEXT, &text, NULL), OP_OK);
    cJSON_Delete(resp);
    return text;
}
