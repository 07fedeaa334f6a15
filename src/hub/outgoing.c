/*
 * outgoing: what the hub sends, only once the transaction that decided it
 * committed. Offers, acknowledgements and cancels are batched per site (one
 * signed message of each kind per site per iteration); "done" notices per
 * operator; replies (welcome, refused, operator responses) in order.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hub__queue_reply(hub *h, const char *realm, const char *id, const char *leaf, cJSON *body,
                      const char *type, const uint8_t to_pk[32])
{
    hub_reply *r = calloc(1, sizeof *r);
    if (!r || proto_topic(r->topic, sizeof r->topic, realm, id, leaf) != OP_OK) {
        free(r);
        cJSON_Delete(body);
        h->bound_hits++;
        return;
    }
    r->body = body;
    r->type = type;
    r->link = h->msg_link;
    memcpy(r->to_pk, to_pk, sizeof r->to_pk);
    if (h->replies_tail)
        h->replies_tail->next = r;
    else
        h->replies = r;
    h->replies_tail = r;
}

void hub__add_to_batch(cJSON **batch, cJSON *item)
{
    if (!*batch) *batch = cJSON_CreateArray();
    if (*batch)
        cJSON_AddItemToArray(*batch, item);
    else
        cJSON_Delete(item);
}

/*
 * The site goes on the list of those with something queued, once. When the
 * list cannot grow, the next flush visits every site instead (nothing is
 * lost but the saving).
 */
void hub__site_queued(hub *h, hub_site *s)
{
    if (s->queued) return;
    s->queued = 1;
    if (h->queued_all) return;
    if (h->n_queued == h->cap_queued) {
        size_t cap = h->cap_queued ? 2 * h->cap_queued : 64;
        size_t *grown = realloc(h->queued_sites, cap * sizeof *grown);
        if (!grown) {
            h->queued_all = 1;
            return;
        }
        h->queued_sites = grown;
        h->cap_queued = cap;
    }
    h->queued_sites[h->n_queued++] = (size_t)(s - h->sites);
}

void hub__site_batch(hub *h, hub_site *s, cJSON **batch, cJSON *item)
{
    hub__add_to_batch(batch, item);
    if (*batch) hub__site_queued(h, s);
}

void hub__send_cancel(hub *h, hub_site *s, int64_t job_id, int64_t attempt, const char *why)
{
    cJSON *c = cJSON_CreateObject();
    if (!c) return;
    jsonx_add_int(c, "job", job_id);
    jsonx_add_int(c, "attempt", attempt);
    cJSON_AddStringToObject(c, "reason", why);
    hub__site_batch(h, s, &s->cancels, c);
}

/*
 * Every message the hub sends is sealed to its recipient (wire/msg.h), on
 * the link it was last heard on, or the first that is connected when that
 * one is not (after a move the recipient is heard there again); a hub
 * without a bus (tests, fuzzing) answers with a failure.
 */
static int publish(hub *h, int link, const char *topic, cJSON *body, const char *type,
                   const uint8_t to_pk[32])
{
    bus *b = h->bus;
    if (link > 0 && link < h->n_links && link < BUS_MAX_BROKERS &&
        bus_connected(h->links[link].main))
        b = h->links[link].main;
    else if (h->n_links > 1 && !bus_connected(h->bus))
        for (int i = 1; i < h->n_links; i++)
            if (bus_connected(h->links[i].main)) {
                b = h->links[i].main;
                break;
            }
    return b ? bus_publish_sealed(b, topic, body, type, to_pk) : OP_EINVAL;
}

/* One signed message per kind of batch; acknowledgements carry the hub's signed log head. */
static void flush_site_batches(hub *h, hub_site *s)
{
    char topic[PROTO_TOPIC_MAX];
    if (proto_topic(topic, sizeof topic, "site", s->id, "inbox") != OP_OK) return;
    struct {
        cJSON **batch;
        const char *key;
        const char *type;
    } kinds[] = {
        {&s->offers, "jobs", "offer"}, {&s->acks, "acks", "ack"}, {&s->cancels, "jobs", "cancel"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!*kinds[k].batch) continue;
        cJSON *body = cJSON_CreateObject();
        if (body) {
            cJSON_AddItemToObject(body, kinds[k].key, *kinds[k].batch);
            if (k == 1 && h->head.size > 0)
                cJSON_AddItemToObject(body, "hub_head", auditlog_head_to_json(&h->head));
            if (publish(h, s->link, topic, body, kinds[k].type, s->pk) != OP_OK)
                log_warn("hub", "could not send %s to %s now; the protocol will retry",
                         kinds[k].type, s->id);
            else if (k == 0)
                h->offers_sent++;
            cJSON_Delete(body);
        } else {
            cJSON_Delete(*kinds[k].batch);
        }
        *kinds[k].batch = NULL;
    }
    s->offers_bytes = 0;
}

static void drop_site_batches(hub *h, hub_site *s)
{
    cJSON_Delete(s->offers);
    cJSON_Delete(s->acks);
    cJSON_Delete(s->cancels);
    s->offers = s->acks = s->cancels = NULL;
    s->offers_bytes = 0;
}

/*
 * Sends (or drops) the batches of every site that has some: those on the
 * list, in the order they were first queued to (a site's own messages keep
 * their order: offers, acknowledgements, cancels), or every site when the
 * list could not grow. The list is empty after.
 */
static void each_queued_site(hub *h, void (*fn)(hub *h, hub_site *s))
{
    size_t n = h->queued_all ? h->n_sites : h->n_queued;
    for (size_t k = 0; k < n; k++) {
        hub_site *s = &h->sites[h->queued_all ? k : h->queued_sites[k]];
        if (!s->queued) continue;
        s->queued = 0;
        h->sites_flushed++;
        fn(h, s);
    }
    h->n_queued = 0;
    h->queued_all = 0;
}

static void flush_operator_done(hub *h, hub_operator *op)
{
    char topic[PROTO_TOPIC_MAX];
    cJSON *body = cJSON_CreateObject();
    if (body && proto_topic(topic, sizeof topic, "op", op->id, "resp") == OP_OK) {
        cJSON_AddItemToObject(body, "jobs", op->done);
        op->done = NULL;
        if (publish(h, op->link, topic, body, "done", op->pk) != OP_OK)
            log_warn("hub", "could not notify %s of finished jobs", op->id);
    }
    cJSON_Delete(body);
    cJSON_Delete(op->done);
    op->done = NULL;
}

/*
 * A link's main session moved to another broker: offers it published into
 * the old one just before it failed may never have crossed to the sites'
 * broker. The placed attempts of every site heard last on it are offered
 * again (a site drops a copy of one it holds), rather than each waiting for
 * its lease to expire.
 */
static void reoffer_after_move(hub *h)
{
    for (int k = 0; k < h->n_links; k++) {
        hub_link *l = &h->links[k];
        if (bus_moves(l->main) == l->moves_seen || !bus_connected(l->main)) continue;
        l->moves_seen = bus_moves(l->main);
        for (size_t i = 0; i < h->n_sites; i++)
            if (h->sites[i].reserved_jobs > 0 && (h->n_links == 1 || h->sites[i].link == k))
                hub__reoffer_placed(h, &h->sites[i]);
    }
}

/* In place of operator answer r, an error with its request id, why and code. OP_OK or not. */
static int answer_error(hub *h, const hub_reply *r, const char *why, int code)
{
    const char *rid = jsonx_str(r->body, "rid");
    cJSON *err = cJSON_CreateObject();
    if (!err) return OP_ENOMEM;
    cJSON_AddStringToObject(err, "rid", rid ? rid : "");
    cJSON_AddBoolToObject(err, "ok", 0);
    cJSON_AddStringToObject(err, "error", why);
    jsonx_add_int(err, "code", code);
    int rc = publish(h, r->link, r->topic, err, r->type, r->to_pk);
    cJSON_Delete(err);
    return rc;
}

/*
 * An operator's answer larger than a message may be (MSG_MAX_PAYLOAD_BYTES:
 * 2,000 join bundles, say): the operator is told so, rather than waiting
 * for an answer that never comes (its retries would get the same).
 */
static void too_big(hub *h, const hub_reply *r)
{
    char why[160];
    snprintf(why, sizeof why,
             "the answer is larger than a message may be (%d bytes): ask for less at once",
             MSG_MAX_PAYLOAD_BYTES);
    log_warn("hub", "answer on %s too large to send: the operator is told to ask for less",
             r->topic);
    if (answer_error(h, r, why, OP_ETOOBIG) != OP_OK)
        log_warn("hub", "could not publish resp on %s", r->topic);
}

void hub__flush_outgoing(hub *h)
{
    reoffer_after_move(h);
    if (!h->bus) { /* nobody to send to: what was queued is dropped */
        hub__discard_outgoing(h);
        return;
    }
    /*
     * Replies first: a site's welcome must reach it before the offers placed
     * on it in the same iteration, which it ignores until it is enrolled
     * (the broker keeps one publisher's order on a topic).
     */
    while (h->replies) {
        hub_reply *r = h->replies;
        h->replies = r->next;
        int rc = publish(h, r->link, r->topic, r->body, r->type, r->to_pk);
        if (rc == OP_ETOOBIG && strcmp(r->type, "resp") == 0)
            too_big(h, r);
        else if (rc != OP_OK)
            log_warn("hub", "could not publish %s on %s", r->type, r->topic);
        cJSON_Delete(r->body);
        free(r);
    }
    h->replies_tail = NULL;
    each_queued_site(h, flush_site_batches);
    for (int i = 0; i < h->n_operators; i++)
        if (h->operators[i].done) flush_operator_done(h, &h->operators[i]);
}

void hub__discard_outgoing(hub *h)
{
    for (int i = 0; i < h->n_operators; i++) {
        cJSON_Delete(h->operators[i].done);
        h->operators[i].done = NULL;
    }
    each_queued_site(h, drop_site_batches);
    while (h->replies) {
        hub_reply *r = h->replies;
        h->replies = r->next;
        cJSON_Delete(r->body);
        free(r);
    }
    h->replies_tail = NULL;
}

void hub__fail_outgoing(hub *h, const char *why)
{
    hub_reply *answers = NULL, **tail = &answers;
    while (h->replies) { /* keep the operators' answers, drop the rest below */
        hub_reply *r = h->replies;
        h->replies = r->next;
        r->next = NULL;
        if (strcmp(r->type, "resp") == 0) {
            *tail = r;
            tail = &r->next;
        } else {
            cJSON_Delete(r->body);
            free(r);
        }
    }
    h->replies_tail = NULL;
    hub__discard_outgoing(h);
    while (answers) {
        hub_reply *r = answers;
        answers = r->next;
        if (answer_error(h, r, why, OP_ESTORE) != OP_OK)
            log_debug("hub", "could not tell an operator on %s", r->topic);
        cJSON_Delete(r->body);
        free(r);
    }
}

/*
 * Which broker each of the hub's two connections is on, and how often they
 * moved; with broker_mode all, every link and the sites heard last on each.
 */
void hub__broker_stats(hub *h, cJSON *data)
{
    cJSON *o = h->bus ? cJSON_AddObjectToObject(data, "broker") : NULL;
    if (!o) return;
    cJSON_AddStringToObject(o, "main", bus_broker_name(h->bus));
    cJSON_AddBoolToObject(o, "main_connected", bus_connected(h->bus));
    cJSON_AddStringToObject(o, "beats", bus_broker_name(h->beat_bus));
    cJSON_AddBoolToObject(o, "beats_connected", bus_connected(h->beat_bus));
    cJSON_AddStringToObject(o, "mode", h->broker_all ? "all" : "failover");
    uint64_t moves = 0;
    cJSON *links = cJSON_AddArrayToObject(o, "links");
    for (int i = 0; i < h->n_links; i++) {
        const hub_link *l = &h->links[i];
        moves += bus_moves(l->main) + bus_moves(l->beats);
        cJSON *e = links ? cJSON_CreateObject() : NULL;
        if (!e) continue;
        int64_t sites = 0;
        for (size_t k = 0; k < h->n_sites; k++)
            sites += h->sites[k].link == i;
        cJSON_AddStringToObject(e, "broker", bus_broker_name(l->main));
        cJSON_AddBoolToObject(e, "connected", bus_connected(l->main) && bus_connected(l->beats));
        jsonx_add_int(e, "sites", sites);
        cJSON_AddItemToArray(links, e);
    }
    jsonx_add_int(o, "moves", (int64_t)moves);
}
