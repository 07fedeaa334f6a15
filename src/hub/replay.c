/*
 * replay: what keeps an operator's request from taking effect twice.
 *
 * Two walls. The first is the nonce: each request carries a "seq" that is a
 * nonce (wire/msg.h), and each operator's set of nonces seen within the
 * clock skew is kept in memory and in hub.db (op_nonces, written in the
 * request's own transaction; op_floors, with the periodic chores), so a
 * captured request is refused after a restart as before it. The second is
 * the request id: a request that says "once": true promises that its rid is
 * unique to it (the CLI's are 64 random bits), and then a command that
 * changes something (submit, token, cancel, approve, policy_set) keeps its
 * answer under (operator, rid) with a digest of the request's content; the
 * same request again, retried by a client that lost the answer (or
 * replayed with a fresh signature, which only the key's holder can make),
 * gets that answer and does nothing. A different request under a reused rid
 * is a new request, and a request without "once" (an older client, or one
 * that numbers its requests from 0 in every run, as the benchmark does) is
 * run as it comes. Answers are kept HUB_ANSWER_TTL_MS, at most
 * HUB_ANSWERS_MAX of them.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB_ANSWER_TTL_MS (24LL * 3600 * 1000)
#define HUB_ANSWERS_MAX 10000

int hub__op_fresh(hub *h, hub_operator *op, const msg_header *hdr)
{
    int rc = msg_nonces_accept(&op->nonces, hdr->seq, hdr->ts_ms);
    if (rc == OP_OK) return hub__check(h, hubdb_op_nonce_add(h->db, op->id, hdr->seq, hdr->ts_ms));
    if (h->msg.accepted) h->msg.accepted--; /* msg_open counted it before this check */
    if (rc == OP_EREPLAY) {
        h->msg.replayed++;
        log_warn("hub", "dropped: replayed request (nonce %llu) from '%s'",
                 (unsigned long long)hdr->seq, op->id);
    }
    return rc;
}

static void load_nonce(void *ctx, uint64_t nonce, int64_t ts_ms)
{
    msg_nonces_accept(ctx, nonce, ts_ms);
}

int hub__replay_load(hub *h)
{
    for (int i = 0; i < h->n_operators; i++) {
        hub_operator *op = &h->operators[i];
        msg_nonces_clear(&op->nonces);
        int64_t floor_ms = 0;
        int rc = hubdb_op_nonces_each(h->db, op->id, &floor_ms, load_nonce, &op->nonces);
        if (rc != OP_OK) return rc;
        if (floor_ms > op->nonces.floor_ms) op->nonces.floor_ms = floor_ms;
        op->persisted_floor_ms = floor_ms;
    }
    return OP_OK;
}

void hub__replay_prune(hub *h)
{
    int64_t now = os_now_ms(), cutoff = now - h->clock_skew_ms;
    for (int i = 0; i < h->n_operators; i++) {
        hub_operator *op = &h->operators[i];
        msg_nonces_prune(&op->nonces, cutoff);
        if (op->nonces.floor_ms == op->persisted_floor_ms) continue;
        if (hub__check(h, hubdb_op_floor_set(h->db, op->id, op->nonces.floor_ms)) != OP_OK) return;
        op->persisted_floor_ms = op->nonces.floor_ms;
    }
    hub__check(h, hubdb_op_prune(h->db, cutoff, now - HUB_ANSWER_TTL_MS, HUB_ANSWERS_MAX));
}

/* SHA-256 of the request without its envelope (from, type, seq, ts differ between copies). */
static int request_digest(const cJSON *req, char digest[65])
{
    cJSON *copy = cJSON_Duplicate(req, 1);
    if (!copy) return OP_ENOMEM;
    const char *envelope[] = {"from", "type", "seq", "ts"};
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(copy, envelope[i]);
    char *text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (!text) return OP_ENOMEM;
    util_sha256_hex(text, strlen(text), digest);
    free(text);
    return OP_OK;
}

cJSON *hub__answer_recall(hub *h, const char *op_id, const char *rid, const cJSON *req,
                          char digest[65])
{
    char *text = NULL;
    digest[0] = '\0';
    if (request_digest(req, digest) != OP_OK ||
        hubdb_op_answer_get(h->db, op_id, rid, digest, &text) != OP_OK)
        return NULL;
    cJSON *resp = cJSON_Parse(text);
    free(text);
    if (resp)
        log_info("hub", "operator %s sent request %.64s again: answered as before, nothing done",
                 op_id, rid);
    return resp;
}

void hub__answer_keep(hub *h, const char *op_id, const char *rid, const char digest[65],
                      const cJSON *resp)
{
    if (!digest[0]) return;
    char *text = cJSON_PrintUnformatted(resp);
    if (!text) return;
    hub__check(h, hubdb_op_answer_put(h->db, op_id, rid, digest, os_now_ms(), text));
    free(text);
}
