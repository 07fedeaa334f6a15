/*
 * models_serve: artifacts on their way to sites (docs/models.md). What each
 * site holds (from its heartbeat) and the "fetch" events of sites that need
 * an artifact: the signed manifest, peers that hold it and may give it (any
 * site for a public model, one of the same owner for a confidential one,
 * none for a site-private one: the hub tells each peer whom to serve), and
 * chunks from the hub itself for what no peer gives. While nobody holds an
 * artifact yet, at most artifact_hub_streams sites fetch it from the hub at
 * once; the others wait for the first to finish and serve them.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/artifact.h"
#include "hub/hub_int.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVE_MAX_WANT 16     /* chunks one fetch may ask for */
#define SERVE_MAX_PEERS 3     /* peers named to one fetcher */
#define SERVE_MAX_HELD 64     /* artifacts a heartbeat may list */
#define SERVE_MAX_STREAMS 256 /* sites fetching from the hub, remembered */
#define SERVE_STREAM_IDLE_MS 5000
#define SERVE_WAIT_MS 2000        /* what a site told to wait waits */
#define SERVE_GRANT_TTL_MS 600000 /* how long a peer serves a fetcher it was told of */
#define SERVE_CHUNKS_PER_S 1000.0 /* chunks the hub reads and sends, at most (250 MB/s) */
#define SERVE_CHUNKS_BURST 64.0   /* ... in one go */

/* A site fetching an artifact from the hub itself (not from peers), lately. */
typedef struct stream {
    char sha[65];
    char site[64];
    int64_t last_mono;
} stream;

struct hub_serving {
    stream streams[SERVE_MAX_STREAMS];
    int n_streams;
    msg_bucket budget; /* chunks read and sent */
    uint64_t chunks_served, bytes_served, refused, waited, grants;
};

static struct hub_serving *state(hub *h)
{
    if (!h->serving) h->serving = calloc(1, sizeof *h->serving);
    return h->serving;
}

void hub__serving_free(hub *h)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        free(h->sites[i].holds);
        h->sites[i].holds = NULL;
        h->sites[i].n_holds = 0;
        cJSON_Delete(h->sites[i].artifacts);
        h->sites[i].artifacts = NULL;
    }
    free(h->serving);
    h->serving = NULL;
}

int hub__site_holds(void *ctx, const sched_site *site)
{
    const hub_site *s = (const hub_site *)(const void *)(site->id - offsetof(hub_site, id));
    uint8_t raw[32];
    if (!s->n_holds || util_unhex((const char *)ctx, raw, 32) != OP_OK) return 0;
    for (int k = 0; k < s->n_holds; k++)
        if (memcmp(s->holds[k], raw, 32) == 0) return 1;
    return 0;
}

/* ---------- what sites hold ---------- */

void hub__models_heartbeat(hub *h, hub_site *s, const cJSON *body)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "artifacts");
    if (!cJSON_IsObject(a)) return;
    const cJSON *held = cJSON_GetObjectItemCaseSensitive(a, "held"), *item;
    int n = 0;
    if (!s->holds && !(s->holds = calloc(SERVE_MAX_HELD, 32))) return;
    cJSON_ArrayForEach(item, held)
    {
        if (n == SERVE_MAX_HELD) break;
        if (cJSON_IsString(item) && artifact_sha_ok(item->valuestring) &&
            util_unhex(item->valuestring, s->holds[n], 32) == OP_OK)
            n++;
    }
    s->n_holds = n;
    cJSON *copy = cJSON_Duplicate(a, 1);
    if (copy) {
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "held");
        jsonx_add_int(copy, "held", n);
        cJSON_Delete(s->artifacts);
        s->artifacts = copy;
    }
    (void)h;
}

/* ---------- serving ---------- */

static void refuse_fetch(hub *h, hub_site *s, const char *sha, const char *why)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) return;
    cJSON_AddStringToObject(b, "sha256", sha);
    cJSON_AddStringToObject(b, "reason", why);
    state(h)->refused++;
    log_info("hub", "refused %s the artifact %.16s...: %s", s->id, sha, why);
    hub__queue_reply(h, "site", s->id, "inbox", b, "fetch_refused", s->pk);
}

/* The versions naming some bytes, as hubdb_model_classes gives them. */
typedef struct uses {
    int n;
    int data_class[16];
    char origin[16][64];
} uses;

static int add_use(void *ctx, int data_class, const char *origin)
{
    uses *u = ctx;
    u->data_class[u->n] = data_class;
    snprintf(u->origin[u->n], sizeof u->origin[0], "%s", origin ? origin : "");
    return ++u->n == 16;
}

/*
 * Whether s may have the bytes of m: yes when any version naming them lets
 * it (a public one any enrolled site; a site-private one its origin; a
 * confidential one a site the hub placed a job using it on), and then
 * m->data_class and m->origin become those of the least strict such version
 * (it decides who may serve as a peer). OP_OK, OP_EPERM (why set),
 * OP_ESTORE.
 */
static int may_fetch(hub *h, hub_site *s, hubdb_model *m, char *why, size_t len)
{
    uses u = {0};
    int best = -1, has = -1;
    if (hub__check(h, hubdb_model_classes(h->db, m->sha256, add_use, &u)) != OP_OK)
        return OP_ESTORE;
    snprintf(why, len, "no model in the registry has these bytes (removed?)");
    for (int i = 0; i < u.n; i++) {
        int c = u.data_class[i];
        if (c == DATA_SITE_PRIVATE && strcmp(u.origin[i], s->id) != 0) {
            snprintf(why, len, "site-private to %s", u.origin[i]);
            continue;
        }
        if (c == DATA_CONFIDENTIAL && has < 0 &&
            hub__check(h, hubdb_site_has_model_job(h->db, s->id, m->sha256, &has)) != OP_OK)
            return OP_ESTORE;
        if (c == DATA_CONFIDENTIAL && !has) {
            snprintf(why, len, "confidential, and no job here uses it");
            continue;
        }
        /* public < confidential < site-private: the least strict governs */
        int rank = c == DATA_PUBLIC ? 0 : c == DATA_CONFIDENTIAL ? 1 : 2;
        int best_rank = best < 0                                  ? 3
                        : u.data_class[best] == DATA_PUBLIC       ? 0
                        : u.data_class[best] == DATA_CONFIDENTIAL ? 1
                                                                  : 2;
        if (rank < best_rank) best = i;
    }
    if (best < 0) return OP_EPERM;
    m->data_class = u.data_class[best];
    snprintf(m->origin, sizeof m->origin, "%s", u.origin[best]);
    return OP_OK;
}

/* Peer load, decayed by half every minute: who was named to fetchers lately. */
static double peer_load(hub_site *s, int64_t now)
{
    double minutes = (double)(now - s->peer_load_mono) / 60000.0;
    return minutes > 0 ? s->peer_load / (1.0 + minutes) : s->peer_load;
}

static int holds_raw(const hub_site *s, const uint8_t raw[32])
{
    for (int k = 0; k < s->n_holds; k++)
        if (memcmp(s->holds[k], raw, 32) == 0) return 1;
    return 0;
}

/* A site that may serve the artifact to s: alive, held whole, of s's owner when confidential. */
static int peer_ok(const hub_site *p, const hub_site *s, const hubdb_model *m, const cJSON *failed,
                   const uint8_t raw[32])
{
    const cJSON *f;
    if (p == s || !p->alive || p->quarantined[0] || !holds_raw(p, raw)) return 0;
    if (m->data_class == DATA_CONFIDENTIAL && strcmp(p->owner, s->owner) != 0) return 0;
    cJSON_ArrayForEach(f, failed) if (cJSON_IsString(f) && !strcmp(f->valuestring, p->id)) return 0;
    return 1;
}

/* A peer's cost for s: its recent load, and far more when it is in another region. */
static double peer_cost(hub_site *p, const hub_site *s, int64_t now)
{
    return peer_load(p, now) + (p->region == s->region ? 0.0 : 1000.0);
}

/* Tells p to serve s the artifact ("serve") and names p to s in peers. */
static void grant(hub *h, hub_site *p, hub_site *s, const char *sha, cJSON *peers, int64_t now)
{
    cJSON *g = cJSON_CreateObject(), *peer = cJSON_CreateObject();
    char pk_hex[65];
    if (!g || !peer) {
        cJSON_Delete(g);
        cJSON_Delete(peer);
        return;
    }
    cJSON_AddStringToObject(g, "sha256", sha);
    cJSON_AddStringToObject(g, "to", s->id);
    util_hex(s->pk, 32, pk_hex);
    cJSON_AddStringToObject(g, "pk", pk_hex);
    jsonx_add_int(g, "ttl_ms", SERVE_GRANT_TTL_MS);
    hub__queue_reply(h, "site", p->id, "inbox", g, "serve", p->pk);
    cJSON_AddStringToObject(peer, "site", p->id);
    util_hex(p->pk, 32, pk_hex);
    cJSON_AddStringToObject(peer, "pk", pk_hex);
    cJSON_AddItemToArray(peers, peer);
    p->peer_load = peer_load(p, now) + 1.0;
    p->peer_load_mono = now;
    state(h)->grants++;
}

/*
 * Up to SERVE_MAX_PEERS sites that hold the artifact and may give it to s,
 * nearest (same region) and least used lately first, each granted. Returns
 * how many.
 */
static int choose_peers(hub *h, hub_site *s, const hubdb_model *m, const cJSON *failed,
                        cJSON *peers)
{
    hub_site *chosen[SERVE_MAX_PEERS];
    int n = 0;
    uint8_t raw[32];
    int64_t now = os_mono_ms();
    if (!h->artifact_peers || m->data_class == DATA_SITE_PRIVATE ||
        util_unhex(m->sha256, raw, 32) != OP_OK)
        return 0;
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *p = &h->sites[i];
        if (!peer_ok(p, s, m, failed, raw)) continue;
        int full = n == SERVE_MAX_PEERS;
        if (full && peer_cost(chosen[n - 1], s, now) <= peer_cost(p, s, now))
            continue; /* this one costs no less than the dearest kept */
        int at = full ? n - 1 : n++;
        chosen[at] = p;
        for (; at > 0 && peer_cost(chosen[at - 1], s, now) > peer_cost(chosen[at], s, now); at--) {
            hub_site *t = chosen[at - 1];
            chosen[at - 1] = chosen[at];
            chosen[at] = t;
        }
    }
    for (int k = 0; k < n; k++)
        grant(h, chosen[k], s, m->sha256, peers, now);
    return n;
}

/* The stream of s fetching sha from the hub: found, or made when fewer than the limit run. */
static stream *hub_stream(hub *h, hub_site *s, const char *sha, int make)
{
    struct hub_serving *m = state(h);
    int64_t now = os_mono_ms();
    int active = 0;
    stream *free_slot = NULL;
    for (int i = 0; i < m->n_streams; i++) {
        stream *st = &m->streams[i];
        int idle = now - st->last_mono > SERVE_STREAM_IDLE_MS;
        if (idle && !free_slot) free_slot = st;
        if (idle || strcmp(st->sha, sha) != 0) continue;
        if (!strcmp(st->site, s->id)) return st;
        active++;
    }
    if (!make || (h->artifact_peers && active >= h->artifact_hub_streams)) return NULL;
    if (!free_slot && m->n_streams < SERVE_MAX_STREAMS) free_slot = &m->streams[m->n_streams++];
    if (!free_slot) return NULL;
    snprintf(free_slot->sha, sizeof free_slot->sha, "%s", sha);
    snprintf(free_slot->site, sizeof free_slot->site, "%s", s->id);
    free_slot->last_mono = now;
    return free_slot;
}

/* "manifest": the signed manifest, peers to pull from, and whether the hub serves it now. */
static void send_manifest(hub *h, hub_site *s, const hubdb_model *m, const cJSON *failed)
{
    char *manifest = NULL, *sig = NULL;
    if (hub__check(h, hubdb_artifact_get(h->db, m->sha256, NULL, &manifest, &sig)) != OP_OK) {
        free(manifest);
        return;
    }
    cJSON *b = cJSON_CreateObject(), *peers = b ? cJSON_AddArrayToObject(b, "peers") : NULL;
    if (peers) {
        cJSON_AddStringToObject(b, "sha256", m->sha256);
        cJSON_AddStringToObject(b, "manifest", manifest);
        cJSON_AddStringToObject(b, "sig", sig);
        int n = choose_peers(h, s, m, failed, peers);
        /* the hub itself only when no peer can give it, and then within the streams it
         * serves while nobody holds the artifact yet */
        int hub_ok = n == 0 && hub_stream(h, s, m->sha256, 1) != NULL;
        cJSON_AddBoolToObject(b, "hub", hub_ok);
        if (!hub_ok && n == 0) {
            jsonx_add_int(b, "wait_ms", SERVE_WAIT_MS);
            state(h)->waited++;
        }
        hub__queue_reply(h, "site", s->id, "inbox", b, "manifest", s->pk);
    } else {
        cJSON_Delete(b);
    }
    free(manifest);
    free(sig);
}

/* One chunk read from the artifact's file (fd) into a "chunk" message. OP_OK, OP_EIO. */
static int send_chunk(hub *h, hub_site *s, int fd, const char *sha, int64_t index, int64_t size)
{
    int64_t off = index * ARTIFACT_CHUNK_BYTES;
    size_t len = (size_t)(size - off < ARTIFACT_CHUNK_BYTES ? size - off : ARTIFACT_CHUNK_BYTES);
    uint8_t *buf = malloc(len);
    if (!buf) return OP_ENOMEM;
    ssize_t n = pread(fd, buf, len, (off_t)off);
    char *b64 = n == (ssize_t)len ? artifact_b64_encode(buf, len) : NULL;
    free(buf);
    if (!b64) return OP_EIO;
    cJSON *b = cJSON_CreateObject();
    if (b) {
        cJSON_AddStringToObject(b, "sha256", sha);
        jsonx_add_int(b, "index", index);
        cJSON_AddStringToObject(b, "data", b64);
        hub__queue_reply(h, "site", s->id, "inbox", b, "chunk", s->pk);
        state(h)->chunks_served++;
        state(h)->bytes_served += len;
    }
    free(b64);
    return b ? OP_OK : OP_ENOMEM;
}

/* "fetch_wait": these chunks not now (the hub's budget, or its streams); ask again later. */
static void send_wait(hub *h, hub_site *s, const char *sha, cJSON *indices, const char *why)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) {
        cJSON_Delete(indices);
        return;
    }
    cJSON_AddStringToObject(b, "sha256", sha);
    cJSON_AddItemToObject(b, "indices", indices);
    jsonx_add_int(b, "retry_ms", SERVE_WAIT_MS);
    cJSON_AddStringToObject(b, "reason", why);
    state(h)->waited++;
    hub__queue_reply(h, "site", s->id, "inbox", b, "fetch_wait", s->pk);
}

/* The chunks asked for, each one a message, within the hub's budget; the rest wait. */
static void serve_chunks(hub *h, hub_site *s, const hubdb_model *m, const cJSON *want)
{
    char path[PATH_MAX];
    cJSON *later = cJSON_CreateArray();
    int64_t n_chunks = (m->size_bytes + ARTIFACT_CHUNK_BYTES - 1) / ARTIFACT_CHUNK_BYTES;
    int streaming = hub_stream(h, s, m->sha256, 1) != NULL;
    if (streaming) hub_stream(h, s, m->sha256, 0)->last_mono = os_mono_ms();
    int fd = streaming && hub__artifact_path(h, m->sha256, "", path, sizeof path, 0) == OP_OK
                 ? open(path, O_RDONLY | O_CLOEXEC)
                 : -1;
    if (streaming && fd < 0) {
        cJSON_Delete(later);
        refuse_fetch(h, s, m->sha256, "the hub lost the artifact's bytes");
        return;
    }
    const cJSON *item;
    int asked = 0;
    cJSON_ArrayForEach(item, want)
    {
        if (++asked > SERVE_MAX_WANT || !cJSON_IsNumber(item) || item->valuedouble < 0 ||
            item->valuedouble >= (double)n_chunks)
            continue;
        int64_t index = (int64_t)item->valuedouble;
        if (!streaming ||
            !msg_bucket_take(&state(h)->budget, 1, SERVE_CHUNKS_PER_S, SERVE_CHUNKS_BURST,
                             os_mono_ms()) ||
            send_chunk(h, s, fd, m->sha256, index, m->size_bytes) != OP_OK)
            cJSON_AddItemToArray(later, cJSON_CreateNumber((double)index));
    }
    if (fd >= 0) close(fd);
    if (cJSON_GetArraySize(later) > 0)
        send_wait(h, s, m->sha256, later,
                  streaming ? "the hub is busy" : "the hub serves enough sites this artifact now");
    else
        cJSON_Delete(later);
}

void hub__models_fetch(hub *h, hub_site *s, const cJSON *body)
{
    const char *sha = jsonx_str(body, "sha256");
    char why[160];
    hubdb_model m;
    if (!state(h)) return;
    if (!artifact_sha_ok(sha)) {
        h->msg.malformed++;
        return;
    }
    int rc = hubdb_model_by_sha(h->db, sha, &m);
    if (rc == OP_ENOTFOUND) {
        refuse_fetch(h, s, sha, "no model in the registry has these bytes (removed?)");
        return;
    }
    if (hub__check(h, rc) != OP_OK) return;
    rc = may_fetch(h, s, &m, why, sizeof why);
    if (rc == OP_EPERM) refuse_fetch(h, s, sha, why);
    if (rc == OP_OK && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "manifest")))
        send_manifest(h, s, &m, cJSON_GetObjectItemCaseSensitive(body, "failed_peers"));
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(body, "want");
    if (rc == OP_OK && cJSON_GetArraySize(want) > 0) serve_chunks(h, s, &m, want);
    hubdb_model_clear(&m);
}

void hub__models_stats(hub *h, cJSON *data)
{
    cJSON *a = cJSON_AddObjectToObject(data, "artifacts");
    struct hub_serving *m = state(h);
    if (!a || !m) return;
    jsonx_add_int(a, "chunks_served", (int64_t)m->chunks_served);
    jsonx_add_int(a, "bytes_served", (int64_t)m->bytes_served);
    jsonx_add_int(a, "peer_grants", (int64_t)m->grants);
    jsonx_add_int(a, "fetches_refused", (int64_t)m->refused);
    jsonx_add_int(a, "waits", (int64_t)m->waited);
}
