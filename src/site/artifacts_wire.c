/*
 * artifacts_wire: the messages of the artifact cache (docs/models.md). From
 * the hub: a fetch's manifest and peers, chunks, "wait" and "refused", and
 * "serve" (a grant: serve that site this artifact). On this site's peer
 * topics (outpost/v1/peer/<this site>/<from>): pulls from sites the hub
 * named, chunks and refusals from the peers this site pulls from. Each
 * message is signed by its sender and sealed to this site (msg_open_for);
 * a peer is known only through the hub (its key came in a grant or in a
 * manifest's peers), so nobody else reaches the chunk handling, and every
 * chunk is checked against the hub's manifest anyway.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/artifact.h"
#include "site/site_db.h"
#include "site/site_int.h"
#include "wire/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------- chunks in ---------- */

/* The slot waiting for chunk index, -1 none. */
static int slot_of(const art *a, int64_t index)
{
    for (int k = 0; k < a->n_slots; k++)
        if (a->slots[k].index == index) return k;
    return -1;
}

/* Writes the chunk into the .partial file (opened on first use). OP_OK or OP_EIO. */
static int write_chunk(site *s, art *a, int64_t index, const uint8_t *data, size_t len)
{
    char path[PATH_MAX];
    if (a->fd < 0 && site__art_path(s, a->sha, ".partial", path, sizeof path) == OP_OK)
        a->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) return OP_EIO;
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(a->fd, data + done, len - done,
                           (off_t)(index * a->m.chunk_bytes + (int64_t)done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return OP_EIO;
        done += (size_t)n;
    }
    return OP_OK;
}

/* Every chunk held: the window is closed and the whole file's check begins (artifacts.c). */
static void all_held(art *a)
{
    while (a->n_slots > 0)
        site__art_free_slot(a, 0);
    a->verifying = 1;
    a->verify_at = 0;
    crypto_hash_sha256_init(&a->vh);
}

/*
 * A chunk from the hub (source -1) or a peer (its index; -2 one no longer
 * asked): checked against the manifest, written once. A bad chunk is
 * counted and its peer dropped; one held already is counted, not written.
 */
static void take_chunk(site *s, art *a, int64_t index, const uint8_t *data, size_t len, int source)
{
    struct site_artifacts *c = s->artifacts;
    int slot = slot_of(a, index);
    if (artifact_chunk_check(&a->m, index, data, len) != OP_OK) {
        c->chunks_bad++;
        log_warn("site", "artifact %.16s...: chunk %lld from %s does not match the manifest",
                 a->sha, (long long)index, source == -1 ? "the hub" : "a peer");
        if (source >= 0 && !a->peers[source].dropped) site__art_drop_peer(a, &a->peers[source]);
        if (slot >= 0) site__art_free_slot(a, slot);
        return;
    }
    if (artifact_bit(a->held, index)) {
        c->chunks_dup++;
        if (slot >= 0) site__art_free_slot(a, slot);
        return;
    }
    if (write_chunk(s, a, index, data, len) != OP_OK) {
        log_error("site", "artifact %.16s...: cannot write chunk %lld: %s", a->sha,
                  (long long)index, strerror(errno));
        if (slot >= 0) site__art_free_slot(a, slot);
        return;
    }
    artifact_bit_set(a->held, index);
    a->dirty = 1;
    a->progress_mono = os_mono_ms();
    if (source == -1)
        c->from_hub_bytes += len;
    else
        c->from_peers_bytes += len;
    if (source >= 0) a->peers[source].progress_mono = a->progress_mono;
    if (slot >= 0) site__art_free_slot(a, slot);
    if (artifact_bits_count(a->held, a->m.n_chunks) == a->m.n_chunks) all_held(a);
}

/* A "chunk" message: {sha256, index, data}; source as for take_chunk. */
static void on_chunk(site *s, const cJSON *body, int source, const char *peer_id)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    int64_t index;
    uint8_t *data = NULL;
    size_t len = 0;
    const char *b64 = jsonx_str(body, "data");
    if (!a || a->complete || !a->have_manifest || a->verifying) return; /* late or unasked */
    if (peer_id) {
        source = -2;
        for (int k = 0; k < a->n_peers; k++)
            if (!strcmp(a->peers[k].id, peer_id)) source = k;
    }
    if (jsonx_int(body, "index", 0, a->m.n_chunks - 1, &index) != OP_OK || !b64 ||
        artifact_b64_decode(b64, (size_t)a->m.chunk_bytes, &data, &len) != OP_OK) {
        s->msg.malformed++;
        s->artifacts->chunks_bad++;
        return;
    }
    take_chunk(s, a, index, data, len, source);
    free(data);
}

/* ---------- from the hub ---------- */

/* The peers a manifest names replace the fetch's (chunks asked of old ones are asked again). */
static void take_peers(art *a, const cJSON *peers)
{
    for (int k = 0; k < a->n_slots;)
        if (a->slots[k].source >= 0)
            site__art_free_slot(a, k);
        else
            k++;
    a->n_peers = 0;
    a->next_peer = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, peers)
    {
        const char *id = jsonx_str(p, "site"), *pk = jsonx_str(p, "pk");
        if (a->n_peers == ART_MAX_PEERS) break;
        art_peer *peer = &a->peers[a->n_peers];
        memset(peer, 0, sizeof *peer);
        if (!id || !util_valid_id(id) || !pk || util_unhex(pk, peer->pk, 32) != OP_OK) continue;
        snprintf(peer->id, sizeof peer->id, "%s", id);
        peer->progress_mono = os_mono_ms();
        a->n_peers++;
    }
}

/* "manifest": {sha256, manifest, sig, peers, hub, wait_ms}. */
static void on_manifest(site *s, const cJSON *body)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    char err[200];
    int64_t wait_ms = 0;
    if (!a || a->complete) return;
    if (!a->have_manifest) {
        const char *text = jsonx_str(body, "manifest"), *sig = jsonx_str(body, "sig");
        if (site__art_take_manifest(s, a, text, sig, err, sizeof err) != OP_OK) {
            s->msg.malformed++;
            log_warn("site", "artifact %.16s...: manifest refused: %s", a->sha, err);
            return;
        }
        sitedb_artifact_row row = {.sha256 = a->sha,
                                   .size_bytes = a->size_bytes,
                                   .manifest = text,
                                   .sig = sig,
                                   .held = a->held,
                                   .held_len = artifact_bitmap_bytes(a->m.n_chunks)};
        if (site__ensure_tx(s) != OP_OK || sitedb_artifact_put(s->db, &row) != OP_OK)
            s->store_failed = 1;
    }
    take_peers(a, cJSON_GetObjectItemCaseSensitive(body, "peers"));
    a->hub_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "hub"));
    jsonx_int(body, "wait_ms", 0, 600000, &wait_ms);
    a->wait_until_mono = os_mono_ms() + wait_ms;
    a->progress_mono = os_mono_ms();
}

/* "fetch_wait": {sha256, indices, retry_ms}: those chunks not now, from the hub. */
static void on_wait(site *s, const cJSON *body)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    int64_t retry_ms = 1000;
    const cJSON *i;
    if (!a || !a->have_manifest) return;
    jsonx_int(body, "retry_ms", 0, 600000, &retry_ms);
    cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(body, "indices"))
    {
        int k = cJSON_IsNumber(i) ? slot_of(a, (int64_t)i->valuedouble) : -1;
        if (k >= 0 && a->slots[k].source == -1) site__art_free_slot(a, k);
    }
    a->wait_until_mono = os_mono_ms() + retry_ms;
    a->progress_mono = os_mono_ms(); /* waiting on the hub's word is not a stall */
}

/* "fetch_refused": the hub will not give it: the jobs waiting for it go back. */
static void on_refused(site *s, const cJSON *body)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    const char *reason = jsonx_str(body, "reason");
    char why[256];
    if (!a || a->complete) return;
    snprintf(why, sizeof why, "the hub refused its model: %.200s", reason ? reason : "?");
    site__art_give_back(s, a, why);
    for (int i = 0; i < s->artifacts->n; i++)
        if (s->artifacts->items[i] == a && !site__art_users(s, a->sha)) site__art_drop(s, i);
}

/* "serve": {sha256, to, pk, ttl_ms}: the hub lets site `to` pull the artifact from here. */
static void on_serve(site *s, const cJSON *body)
{
    struct site_artifacts *c = s->artifacts;
    const char *sha = jsonx_str(body, "sha256"), *to = jsonx_str(body, "to");
    const char *pk = jsonx_str(body, "pk");
    int64_t ttl_ms = 0, now = os_mono_ms();
    uint8_t key[32];
    if (!artifact_sha_ok(sha) || !to || !util_valid_id(to) || !pk ||
        util_unhex(pk, key, 32) != OP_OK || jsonx_int(body, "ttl_ms", 1, 86400000, &ttl_ms)) {
        s->msg.malformed++;
        return;
    }
    art_grant *g = NULL;
    for (int k = 0; k < ART_MAX_GRANTS && !g; k++) /* the same grant renewed, else a free one */
        if (c->grants[k].used && !strcmp(c->grants[k].to, to) && !strcmp(c->grants[k].sha, sha))
            g = &c->grants[k];
    for (int k = 0; k < ART_MAX_GRANTS && !g; k++)
        if (!c->grants[k].used) g = &c->grants[k];
    for (int k = 0; k < ART_MAX_GRANTS && !g; k++) /* full: the one expiring first goes */
        if (!g || c->grants[k].expires_mono < g->expires_mono) g = &c->grants[k];
    if (!g->used || strcmp(g->to, to) != 0) {
        memset(g, 0, sizeof *g);
        snprintf(g->to, sizeof g->to, "%s", to);
    }
    g->used = 1;
    snprintf(g->sha, sizeof g->sha, "%s", sha);
    memcpy(g->pk, key, 32);
    g->expires_mono = now + ttl_ms;
}

void site__artifacts_from_hub(site *s, const char *type, const cJSON *body)
{
    if (!s->artifacts) return;
    if (!strcmp(type, "chunk"))
        on_chunk(s, body, -1, NULL);
    else if (!strcmp(type, "manifest"))
        on_manifest(s, body);
    else if (!strcmp(type, "fetch_wait"))
        on_wait(s, body);
    else if (!strcmp(type, "fetch_refused"))
        on_refused(s, body);
    else if (!strcmp(type, "serve"))
        on_serve(s, body);
}

/* ---------- peers ---------- */

static art_grant *find_grant(site *s, const char *to, const char *sha)
{
    int64_t now = os_mono_ms();
    for (int k = 0; k < ART_MAX_GRANTS; k++) {
        art_grant *g = &s->artifacts->grants[k];
        if (g->used && now <= g->expires_mono && !strcmp(g->to, to) &&
            (!sha || !strcmp(g->sha, sha)))
            return g;
    }
    return NULL;
}

/* msg_lookup_fn over the sites the hub named: ones granted a pull here, ones this site pulls. */
static int lookup_peer(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    site *s = ctx;
    art_grant *g = find_grant(s, kid, NULL);
    if (g) {
        *pk = g->pk;
        *window = &g->window;
        return OP_OK;
    }
    for (int i = 0; i < s->artifacts->n; i++) {
        art *a = s->artifacts->items[i];
        for (int k = 0; !a->complete && k < a->n_peers; k++)
            if (!strcmp(a->peers[k].id, kid)) {
                *pk = a->peers[k].pk;
                *window = &a->peers[k].window;
                return OP_OK;
            }
    }
    return OP_EUNKNOWN;
}

/* Publishes body of type to peer id on peer/<id>/<this site>, sealed to pk. */
static int to_peer(site *s, const char *id, const uint8_t pk[32], cJSON *body, const char *type)
{
    char topic[PROTO_TOPIC_MAX];
    int rc = proto_peer_topic(topic, sizeof topic, id, s->identity.id);
    return rc == OP_OK ? bus_publish_sealed(s->bus, topic, body, type, pk) : rc;
}

static void refuse_pull(site *s, const char *to, const uint8_t pk[32], const char *sha,
                        const char *why)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) return;
    cJSON_AddStringToObject(b, "sha256", sha ? sha : "");
    cJSON_AddStringToObject(b, "reason", why);
    to_peer(s, to, pk, b, "pull_refused");
    cJSON_Delete(b);
    s->artifacts->pulls_refused++;
}

/* One chunk of a whole artifact here to the grantee. OP_OK, OP_EIO, OP_ENOMEM. */
static int send_chunk(site *s, art_grant *g, const art *a, int fd, int64_t index)
{
    int64_t len = artifact_chunk_len(&a->m, index);
    uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
    ssize_t got = buf ? pread(fd, buf, (size_t)len, (off_t)(index * a->m.chunk_bytes)) : -1;
    char *b64 = got == (ssize_t)len ? artifact_b64_encode(buf, (size_t)len) : NULL;
    free(buf);
    cJSON *b = b64 ? cJSON_CreateObject() : NULL;
    if (!b) {
        free(b64);
        return OP_EIO;
    }
    cJSON_AddStringToObject(b, "sha256", a->sha);
    jsonx_add_int(b, "index", index);
    cJSON_AddStringToObject(b, "data", b64);
    int rc = to_peer(s, g->to, g->pk, b, "chunk");
    cJSON_Delete(b);
    free(b64);
    if (rc == OP_OK) {
        s->artifacts->served_chunks++;
        s->artifacts->served_bytes += (uint64_t)len;
    }
    return rc;
}

/* "pull_later": the chunks asked for that this site does not hold yet (it fetches too). */
static void answer_later(site *s, art_grant *g, const char *sha, cJSON *later)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) {
        cJSON_Delete(later);
        return;
    }
    cJSON_AddStringToObject(b, "sha256", sha);
    cJSON_AddItemToObject(b, "indices", later);
    to_peer(s, g->to, g->pk, b, "pull_later");
    cJSON_Delete(b);
}

/*
 * "pull" {sha256, want}: from a site granted this artifact. The chunks held
 * here go (the file whole, or the .partial of a fetch in progress: a mesh of
 * fetchers), within the grant's budget; the ones not held yet are answered
 * "later".
 */
static void on_pull(site *s, const char *from, const cJSON *body)
{
    const char *sha = jsonx_str(body, "sha256");
    art_grant *g = find_grant(s, from, sha);
    art *a = site__art_find(s, sha);
    char path[PATH_MAX];
    if (!g) return; /* its grant expired between the lookup and here: nothing to answer */
    int fd =
        a && a->have_manifest &&
                site__art_path(s, a->sha, a->complete ? "" : ".partial", path, sizeof path) == OP_OK
            ? open(path, O_RDONLY | O_CLOEXEC)
            : -1;
    if (fd < 0) {
        refuse_pull(s, from, g->pk, sha, "not held here");
        return;
    }
    const cJSON *i;
    cJSON *later = cJSON_CreateArray();
    int n = 0;
    cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(body, "want"))
    {
        if (++n > ART_PULL_MAX || !cJSON_IsNumber(i) || i->valuedouble < 0 ||
            i->valuedouble >= (double)a->m.n_chunks)
            continue;
        int64_t index = (int64_t)i->valuedouble;
        if (!a->complete && !artifact_bit(a->held, index)) {
            cJSON_AddItemToArray(later, cJSON_CreateNumber((double)index));
            continue;
        }
        if (!msg_bucket_take(&g->budget, 1, ART_PEER_CHUNKS_PER_S, ART_PEER_BURST, os_mono_ms()) ||
            send_chunk(s, g, a, fd, index) != OP_OK)
            break; /* over its budget: the puller asks again after its timeout */
    }
    close(fd);
    if (cJSON_GetArraySize(later) > 0)
        answer_later(s, g, sha, later);
    else
        cJSON_Delete(later);
}

/* "pull_later" from a peer that does not hold those chunks yet: asked again in a while. */
static void on_pull_later(site *s, const char *from, const cJSON *body)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    const cJSON *i;
    for (int k = 0; a && k < a->n_peers; k++) {
        if (strcmp(a->peers[k].id, from) != 0) continue;
        cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(body, "indices"))
        {
            int slot = cJSON_IsNumber(i) ? slot_of(a, (int64_t)i->valuedouble) : -1;
            if (slot >= 0 && a->slots[slot].source == k) site__art_free_slot(a, slot);
        }
        a->peers[k].later_until_mono = os_mono_ms() + ART_LATER_MS;
    }
}

/* "pull_refused" from a peer this site pulls from: that peer is dropped for the fetch. */
static void on_pull_refused(site *s, const char *from, const cJSON *body)
{
    art *a = site__art_find(s, jsonx_str(body, "sha256"));
    for (int k = 0; a && k < a->n_peers; k++) {
        if (strcmp(a->peers[k].id, from) != 0 || a->peers[k].dropped) continue;
        site__art_drop_peer(a, &a->peers[k]);
        for (int j = 0; j < a->n_slots;)
            if (a->slots[j].source == k)
                site__art_free_slot(a, j);
            else
                j++;
    }
}

void site__artifacts_on_peer(site *s, const char *topic, const void *payload, size_t len,
                             const char *kid, const char *sig)
{
    char to[64], from[64], reason[256];
    cJSON *body = NULL;
    msg_header hdr;
    if (!s->artifacts || proto_parse_peer_topic(topic, to, from) != OP_OK ||
        strcmp(to, s->identity.id) != 0 || !kid || strcmp(from, kid) != 0) {
        s->msg.malformed++;
        return;
    }
    int rc =
        msg_open_for(&s->identity, 1, topic, payload, len, kid, sig, lookup_peer, s, os_now_ms(),
                     s->clock_skew_ms, &body, &hdr, &s->msg, reason, sizeof reason);
    if (rc != OP_OK) {
        log_debug("site", "dropped a peer message: %s", reason);
        return;
    }
    if (!strcmp(hdr.type, "pull"))
        on_pull(s, from, body);
    else if (!strcmp(hdr.type, "chunk"))
        on_chunk(s, body, -2, from);
    else if (!strcmp(hdr.type, "pull_refused"))
        on_pull_refused(s, from, body);
    else if (!strcmp(hdr.type, "pull_later"))
        on_pull_later(s, from, body);
    else
        s->msg.malformed++;
    cJSON_Delete(body);
}

/* ---------- the heartbeat's report ---------- */

void site__artifacts_report(site *s, cJSON *body)
{
    struct site_artifacts *c = s->artifacts;
    cJSON *r = c ? cJSON_AddObjectToObject(body, "artifacts") : NULL;
    cJSON *held = r ? cJSON_AddArrayToObject(r, "held") : NULL;
    if (!held) return;
    int64_t cache = 0, fetching = 0;
    char listed[ART_MAX] = {0};
    for (int i = 0; i < c->n; i++) {
        cache += c->items[i]->size_bytes;
        fetching += !c->items[i]->complete && site__art_users(s, c->items[i]->sha) > 0;
    }
    /* the most recently used whole ones first, at most ART_REPORT_MAX */
    for (int n = 0; n < ART_REPORT_MAX; n++) {
        int next = -1;
        for (int i = 0; i < c->n; i++)
            if (c->items[i]->complete && !listed[i] &&
                (next < 0 || c->items[i]->last_used_ms > c->items[next]->last_used_ms))
                next = i;
        if (next < 0) break;
        listed[next] = 1;
        cJSON_AddItemToArray(held, cJSON_CreateString(c->items[next]->sha));
    }
    jsonx_add_int(r, "fetching", fetching);
    jsonx_add_int(r, "cache_bytes", cache);
    jsonx_add_int(r, "budget_bytes", s->artifact_cache_mb * 1024 * 1024);
    jsonx_add_int(r, "from_hub_bytes", (int64_t)c->from_hub_bytes);
    jsonx_add_int(r, "from_peers_bytes", (int64_t)c->from_peers_bytes);
    jsonx_add_int(r, "served_bytes", (int64_t)c->served_bytes);
    jsonx_add_int(r, "served_chunks", (int64_t)c->served_chunks);
    jsonx_add_int(r, "chunks_dup", (int64_t)c->chunks_dup);
    jsonx_add_int(r, "chunks_bad", (int64_t)c->chunks_bad);
    jsonx_add_int(r, "evicted", (int64_t)c->evicted);
    jsonx_add_int(r, "restarts", (int64_t)c->restarts);
    jsonx_add_int(r, "pulls_refused", (int64_t)c->pulls_refused);
}
