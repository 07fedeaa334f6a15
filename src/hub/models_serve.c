/*
 * models_serve: artifacts on their way to sites (docs/models.md). What each
 * site holds (from its heartbeat) and the "fetch" events of sites that need
 * an artifact: the signed manifest, peers that hold it and may give it (any
 * site for a public model, one of the same owner for a confidential one,
 * none for a site-private one: the hub tells each peer whom to serve), and
 * chunks from the hub itself for what no peer gives.
 *
 * At most artifact_hub_streams sites fetch one artifact from the hub itself
 * at once. Every other fetcher is named peers among the sites that hold it
 * whole and, while few do, among the sites that asked for it before it
 * (they serve the chunks they already hold and say "later" for the rest):
 * the fetchers form a mesh whose first members pull from the hub, so the hub
 * sends a few copies and everyone finishes close behind them.
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

#define SERVE_MAX_WANT 16            /* chunks one fetch may ask for */
#define SERVE_MAX_PEERS 3            /* peers named to one fetcher */
#define SERVE_MAX_HELD 64            /* artifacts a heartbeat may list */
#define SERVE_MAX_FETCHERS 1024      /* sites fetching an artifact, remembered */
#define SERVE_STREAM_IDLE_MS 5000    /* a hub stream unused this long ends */
#define SERVE_FETCHER_IDLE_MS 300000 /* a fetcher not heard of this long is no peer */
#define SERVE_WAIT_MS 2000           /* what a site told to wait waits */
#define SERVE_GRANT_TTL_MS 600000    /* how long a peer serves a fetcher it was told of */
#define SERVE_CHUNKS_PER_S 1000.0    /* chunks the hub reads and sends, at most (250 MB/s) */
#define SERVE_CHUNKS_BURST 64.0      /* ... in one go */

/*
 * A site that asked for an artifact lately: in which order it first did (it
 * may serve fetchers that came after it), when last, and when it last took
 * chunks from the hub itself (a stream, 0 none).
 */
typedef struct fetcher {
    char sha[65];
    char site[64];
    uint64_t order; /* when it first asked, as a count: later ones may pull from it */
    int64_t last_mono, stream_mono;
} fetcher;

struct hub_serving {
    fetcher fetchers[SERVE_MAX_FETCHERS];
    int n_fetchers;
    uint64_t next_order;
    msg_bucket budget; /* chunks read and sent */
    uint64_t chunks_served, bytes_served, refused, waited, grants;
};

static struct hub_serving *state(hub *h);
static fetcher *find_fetcher(hub *h, const char *site, const char *sha, int make);

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

/*
 * Whether p may serve the artifact to s: alive, of s's owner when the model
 * is confidential, not failed s before, and either holding it whole (1) or
 * fetching it since before s asked (2: it gives what it has so far).
 */
static int peer_ok(hub *h, const hub_site *p, const hub_site *s, const hubdb_model *m,
                   const cJSON *failed, const uint8_t raw[32], const fetcher *me)
{
    const cJSON *f;
    if (p == s || !p->alive || p->quarantined[0]) return 0;
    if (m->data_class == DATA_CONFIDENTIAL && strcmp(p->owner, s->owner) != 0) return 0;
    cJSON_ArrayForEach(f, failed) if (cJSON_IsString(f) && !strcmp(f->valuestring, p->id)) return 0;
    if (holds_raw(p, raw)) return 1;
    const fetcher *pf = find_fetcher(h, p->id, m->sha256, 0);
    return pf && me && pf->order < me->order &&
                   os_mono_ms() - pf->last_mono <= SERVE_FETCHER_IDLE_MS
               ? 2
               : 0;
}

/*
 * A peer's cost for s: its recent load, more when it holds only part of the
 * artifact, far more when it is in another region.
 */
static double peer_cost(hub_site *p, const hub_site *s, int64_t now, int whole)
{
    return peer_load(p, now) + (whole ? 0.0 : 0.5) + (p->region == s->region ? 0.0 : 1000.0);
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
                        cJSON *peers, int partial)
{
    hub_site *chosen[SERVE_MAX_PEERS];
    double cost[SERVE_MAX_PEERS];
    int n = 0;
    uint8_t raw[32];
    int64_t now = os_mono_ms();
    if (!h->artifact_peers || m->data_class == DATA_SITE_PRIVATE ||
        util_unhex(m->sha256, raw, 32) != OP_OK)
        return 0;
    const fetcher *me = find_fetcher(h, s->id, m->sha256, 0);
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *p = &h->sites[i];
        int ok = peer_ok(h, p, s, m, failed, raw, me);
        if (!ok || (ok == 2 && !partial)) continue;
        double c = peer_cost(p, s, now, ok == 1);
        if (n == SERVE_MAX_PEERS && cost[n - 1] <= c) continue; /* no cheaper than those kept */
        int at = n == SERVE_MAX_PEERS ? n - 1 : n++;
        for (; at > 0 && cost[at - 1] > c; at--) {
            chosen[at] = chosen[at - 1];
            cost[at] = cost[at - 1];
        }
        chosen[at] = p;
        cost[at] = c;
    }
    for (int k = 0; k < n; k++)
        grant(h, chosen[k], s, m->sha256, peers, now);
    return n;
}

/* The entry of s fetching sha, made (or a stale one reused) when make; NULL when none. */
static fetcher *find_fetcher(hub *h, const char *site, const char *sha, int make)
{
    struct hub_serving *m = state(h);
    int64_t now = os_mono_ms();
    fetcher *stale = NULL;
    for (int i = 0; m && i < m->n_fetchers; i++) {
        fetcher *f = &m->fetchers[i];
        if (!strcmp(f->sha, sha) && !strcmp(f->site, site)) return f;
        if (!stale && now - f->last_mono > SERVE_FETCHER_IDLE_MS) stale = f;
    }
    if (!m || !make) return NULL;
    if (!stale && m->n_fetchers < SERVE_MAX_FETCHERS) stale = &m->fetchers[m->n_fetchers++];
    if (!stale) return NULL;
    memset(stale, 0, sizeof *stale);
    snprintf(stale->sha, sizeof stale->sha, "%s", sha);
    snprintf(stale->site, sizeof stale->site, "%s", site);
    stale->order = ++m->next_order;
    stale->last_mono = now;
    return stale;
}

/*
 * Whether s may take chunks of sha from the hub itself now: it has a stream
 * already, or fewer than artifact_hub_streams run (any number with peers
 * off). Taking one starts or renews it.
 */
static int hub_stream(hub *h, hub_site *s, const char *sha)
{
    struct hub_serving *m = state(h);
    int64_t now = os_mono_ms();
    fetcher *me = find_fetcher(h, s->id, sha, 1);
    if (!me) return 0;
    me->last_mono = now;
    int active = 0;
    for (int i = 0; i < m->n_fetchers; i++) {
        const fetcher *f = &m->fetchers[i];
        active += f != me && f->stream_mono && now - f->stream_mono <= SERVE_STREAM_IDLE_MS &&
                  !strcmp(f->sha, sha);
    }
    int mine = me->stream_mono && now - me->stream_mono <= SERVE_STREAM_IDLE_MS;
    if (!mine && h->artifact_peers && active >= h->artifact_hub_streams) return 0;
    me->stream_mono = now;
    return 1;
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
    fetcher *me = find_fetcher(h, s->id, m->sha256, 1); /* a partial peer for later ones */
    if (me) me->last_mono = os_mono_ms();
    if (peers) {
        cJSON_AddStringToObject(b, "sha256", m->sha256);
        cJSON_AddStringToObject(b, "manifest", manifest);
        cJSON_AddStringToObject(b, "sig", sig);
        /* sites holding it whole first; else the hub itself, within its streams; else the
         * sites that fetch it since before this one (a mesh behind the hub's streams) */
        int n = choose_peers(h, s, m, failed, peers, 0);
        int hub_ok = n == 0 && hub_stream(h, s, m->sha256);
        if (n == 0 && !hub_ok) n = choose_peers(h, s, m, failed, peers, 1);
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
    int streaming = hub_stream(h, s, m->sha256);
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
