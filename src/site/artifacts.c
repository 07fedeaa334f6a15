/*
 * artifacts: the site's artifact cache and the fetches that fill it
 * (docs/models.md). A job whose spec names a model waits ("fetching") until
 * the artifact is here whole, then runs with it read-only at
 * $OUTPOST_MODEL.
 *
 * The cache is <data-dir>/artifacts: <sha256> for whole artifacts,
 * <sha256>.partial while fetching, and a row per artifact in site.db with
 * the hub's signed manifest and the bitmap of chunks held. It keeps to a
 * byte budget (artifact_cache_mb): room for a new artifact is made by
 * evicting the least recently used ones that no job of this site uses.
 *
 * A fetch asks the hub ("fetch" events) for the manifest and for peers,
 * then pulls chunks, ART_WINDOW in flight: from the peers the hub named
 * (on outpost/v1/peer/<peer>/<this site>, the hub told each of them to
 * serve this site), from the hub for what no peer gives. Every chunk is
 * checked against the manifest before it is written; a bad one is refused
 * and its sender dropped. Written chunks are synced and their bits stored
 * with the loop's commit, so a cut link or a restart resumes with the
 * chunks it lacks and never asks again for one it holds. Whole, the file
 * is hashed again (a step per loop iteration) and renamed.
 *
 * The site serves peers too: a pull from a site the hub named ("serve"),
 * for an artifact held whole here, gets its chunks, sealed to that site.
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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ART_TIMEOUT_MS 10000 /* a chunk asked for and not come is asked for again */
#define ART_MANIFEST_RETRY_MS 5000
#define ART_STALL_MS 120000 /* a fetch without progress this long gives its jobs back */
#define ART_VERIFY_STEP (64 << 20)
/*
 * After a (re)connect, chunks are asked for only once the link has been up
 * this long: what the broker kept for this site's session (chunks asked
 * for before a restart or a cut) arrives first and is not asked for again.
 */
#define ART_SETTLE_MS 1500

/* ---------- the cache ---------- */

int site__art_path(const site *s, const char *sha, const char *suffix, char *out, size_t len)
{
    return util_fmt(out, len, "%s/artifacts/%s%s", s->data_dir, sha, suffix);
}

art *site__art_find(site *s, const char *sha)
{
    for (int i = 0; s->artifacts && sha && i < s->artifacts->n; i++)
        if (strcmp(s->artifacts->items[i]->sha, sha) == 0) return s->artifacts->items[i];
    return NULL;
}

static void art_free(art *a)
{
    if (!a) return;
    if (a->fd >= 0) close(a->fd);
    artifact_manifest_clear(&a->m);
    free(a->held);
    free(a->asked);
    free(a);
}

/* Jobs of this site that use the artifact: running with it, or waiting for it. */
int site__art_users(const site *s, const char *sha)
{
    int n = 0;
    for (int i = 0; i < s->n_jobs; i++) {
        const site_job *j = s->jobs[i];
        if (!j->cancelled && (j->fetching || j->run) && !strcmp(j->spec.model_sha256, sha)) n++;
    }
    return n;
}

static int64_t cache_bytes(const site *s)
{
    int64_t total = 0;
    for (int i = 0; s->artifacts && i < s->artifacts->n; i++)
        total += s->artifacts->items[i]->size_bytes;
    return total;
}

static int64_t budget_bytes(const site *s)
{
    return s->artifact_cache_mb * 1024 * 1024;
}

/* Forgets an artifact: its files, its row, its entry. */
void site__art_drop(site *s, int index)
{
    struct site_artifacts *c = s->artifacts;
    art *a = c->items[index];
    char path[PATH_MAX];
    if (site__art_path(s, a->sha, "", path, sizeof path) == OP_OK) unlink(path);
    if (site__art_path(s, a->sha, ".partial", path, sizeof path) == OP_OK) unlink(path);
    if (site__ensure_tx(s) != OP_OK || sitedb_artifact_delete(s->db, a->sha) != OP_OK)
        s->store_failed = 1;
    art_free(a);
    c->items[index] = c->items[--c->n];
}

/*
 * Room for need more bytes within the budget: the least recently used
 * artifacts no job uses are evicted (whole ones first, then fetches nobody
 * waits for) until it fits. OP_OK, or OP_EFULL when the ones in use leave
 * too little (nothing evicted then).
 */
static int make_room(site *s, int64_t need)
{
    struct site_artifacts *c = s->artifacts;
    int64_t free_able = 0;
    for (int i = 0; i < c->n; i++)
        if (!site__art_users(s, c->items[i]->sha)) free_able += c->items[i]->size_bytes;
    if (cache_bytes(s) - free_able + need > budget_bytes(s)) return OP_EFULL;
    while (cache_bytes(s) + need > budget_bytes(s)) {
        int victim = -1;
        for (int i = 0; i < c->n; i++) {
            art *a = c->items[i];
            if (site__art_users(s, a->sha)) continue;
            if (victim < 0 || a->complete > c->items[victim]->complete ||
                (a->complete == c->items[victim]->complete &&
                 a->last_used_ms < c->items[victim]->last_used_ms))
                victim = i;
        }
        if (victim < 0) return OP_EFULL;
        log_info("site", "artifact cache: evicted %.16s... (%lld bytes, budget %lld MB)",
                 c->items[victim]->sha, (long long)c->items[victim]->size_bytes,
                 (long long)s->artifact_cache_mb);
        c->evicted++;
        site__art_drop(s, victim);
    }
    return OP_OK;
}

/* A manifest (text and signature from the hub) taken into a: bitmaps sized for it. */
int site__art_take_manifest(site *s, art *a, const char *text, const char *sig, char *err,
                            size_t err_len)
{
    artifact_manifest m;
    int rc = artifact_manifest_open(text, sig, s->hub_pk, &m, err, err_len);
    if (rc == OP_OK && (strcmp(m.sha256_hex, a->sha) != 0 || m.size_bytes != a->size_bytes)) {
        snprintf(err, err_len, "manifest for %.16s... of %lld bytes, not the one asked for",
                 m.sha256_hex, (long long)m.size_bytes);
        artifact_manifest_clear(&m);
        rc = OP_EINVAL;
    }
    size_t bytes = rc == OP_OK ? artifact_bitmap_bytes(m.n_chunks) : 0;
    uint8_t *held = rc == OP_OK ? calloc(1, bytes) : NULL, *asked = held ? calloc(1, bytes) : NULL;
    if (rc == OP_OK && !asked) {
        free(held);
        artifact_manifest_clear(&m);
        return OP_ENOMEM;
    }
    if (rc != OP_OK) return rc;
    artifact_manifest_clear(&a->m);
    free(a->held);
    free(a->asked);
    a->m = m;
    a->held = held;
    a->asked = asked;
    a->have_manifest = 1;
    return OP_OK;
}

static art *new_art(site *s, const char *sha, int64_t size)
{
    struct site_artifacts *c = s->artifacts;
    art *a = c->n < ART_MAX ? calloc(1, sizeof *a) : NULL;
    if (!a) return NULL;
    snprintf(a->sha, sizeof a->sha, "%s", sha);
    a->size_bytes = size;
    a->fd = -1;
    a->progress_mono = os_mono_ms();
    c->items[c->n++] = a;
    return a;
}

/* One stored row back into the cache; a whole artifact whose file is gone is forgotten. */
static int load_row(void *ctx, const sitedb_artifact_row *r)
{
    site *s = ctx;
    char path[PATH_MAX], err[200];
    art *a = artifact_sha_ok(r->sha256) ? new_art(s, r->sha256, r->size_bytes) : NULL;
    if (!a) return 0;
    a->complete = r->complete;
    a->last_used_ms = r->last_used_ms;
    if (r->manifest && r->sig &&
        site__art_take_manifest(s, a, r->manifest, r->sig, err, sizeof err) == OP_OK && r->held &&
        r->held_len == artifact_bitmap_bytes(a->m.n_chunks))
        memcpy(a->held, r->held, r->held_len);
    if (site__art_path(s, a->sha, a->complete ? "" : ".partial", path, sizeof path) != OP_OK ||
        (a->complete && access(path, R_OK) != 0)) {
        art_free(a);
        s->artifacts->n--;
    }
    return 0;
}

/* Files in the cache directory that no row knows (a crash before a commit) are removed. */
static void remove_strays(site *s, const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        char sha[65], path[PATH_MAX];
        if (e->d_name[0] == '.' || strlen(e->d_name) < 64) continue;
        memcpy(sha, e->d_name, 64);
        sha[64] = '\0';
        if (!site__art_find(s, sha) &&
            util_fmt(path, sizeof path, "%s/%s", dir, e->d_name) == OP_OK)
            unlink(path);
    }
    if (d) closedir(d);
}

int site__artifacts_open(site *s)
{
    char dir[PATH_MAX];
    s->artifacts = calloc(1, sizeof *s->artifacts);
    if (!s->artifacts) return OP_ENOMEM;
    if (util_fmt(dir, sizeof dir, "%s/artifacts", s->data_dir) != OP_OK || os_mkdir_p(dir) != OP_OK)
        return OP_EIO;
    int rc = sitedb_artifacts_each(s->db, load_row, s);
    remove_strays(s, dir);
    return rc;
}

void site__artifacts_close(site *s)
{
    if (!s->artifacts) return;
    for (int i = 0; i < s->artifacts->n; i++)
        art_free(s->artifacts->items[i]);
    free(s->artifacts);
    s->artifacts = NULL;
}

/* ---------- jobs ---------- */

int site__artifacts_admit(site *s, const jobspec *spec, char *why, size_t why_len)
{
    /* a learn job reads a model only when it visits or is offered a pooled one */
    if (!spec->model[0] || (spec->kind == JOB_KIND_LEARN && !spec->learn_from[0])) return OP_OK;
    if (!spec->model_sha256[0] || spec->model_bytes <= 0) {
        snprintf(why, why_len, "model %s was not resolved by the hub", spec->model);
        return OP_EPERM;
    }
    if (spec->model_bytes > budget_bytes(s)) {
        snprintf(why, why_len,
                 "model %s@%lld needs %lld MB, over this site's artifact cache of "
                 "%lld MB",
                 spec->model, (long long)spec->model_version,
                 (long long)((spec->model_bytes + (1 << 20) - 1) >> 20),
                 (long long)s->artifact_cache_mb);
        return OP_EPERM;
    }
    if (site__art_find(s, spec->model_sha256)) return OP_OK;
    int64_t in_use = 0;
    for (int i = 0; i < s->artifacts->n; i++)
        if (site__art_users(s, s->artifacts->items[i]->sha))
            in_use += s->artifacts->items[i]->size_bytes;
    if (in_use + spec->model_bytes > budget_bytes(s)) {
        snprintf(why, why_len, "artifact cache busy: %lld of %lld MB in use by jobs",
                 (long long)(in_use >> 20), (long long)s->artifact_cache_mb);
        return OP_EFULL;
    }
    return OP_OK;
}

/* The job reads the whole artifact a: its path, and a use for the LRU. */
static void give_to_job(site *s, site_job *j, art *a)
{
    site__art_path(s, a->sha, "", j->model_path, sizeof j->model_path);
    a->last_used_ms = os_now_ms();
    if (site__ensure_tx(s) != OP_OK || sitedb_artifact_touch(s->db, a->sha, a->last_used_ms))
        s->store_failed = 1;
}

/* A new fetch for the job's model: room made, its row stored, its file started. */
static art *start_fetch(site *s, const jobspec *spec, char *why, size_t why_len)
{
    char path[PATH_MAX];
    if (make_room(s, spec->model_bytes) != OP_OK) {
        snprintf(why, why_len, "artifact cache full of artifacts in use");
        return NULL;
    }
    art *a = new_art(s, spec->model_sha256, spec->model_bytes);
    sitedb_artifact_row row = {.sha256 = spec->model_sha256, .size_bytes = spec->model_bytes};
    if (!a || site__art_path(s, a->sha, ".partial", path, sizeof path) != OP_OK ||
        site__ensure_tx(s) != OP_OK || sitedb_artifact_put(s->db, &row) != OP_OK) {
        if (a) site__art_drop(s, s->artifacts->n - 1);
        snprintf(why, why_len, "cannot start fetching the model");
        return NULL;
    }
    log_info("site", "fetching model %s@%lld (%.16s..., %lld bytes)", spec->model,
             (long long)spec->model_version, a->sha, (long long)a->size_bytes);
    return a;
}

int site__artifacts_prepare(site *s, site_job *j, char *why, size_t why_len)
{
    art *a = site__art_find(s, j->spec.model_sha256);
    if (a && a->complete) {
        give_to_job(s, j, a);
        return 1;
    }
    if (!a && !(a = start_fetch(s, &j->spec, why, why_len))) return OP_EFULL;
    char detail[200];
    snprintf(detail, sizeof detail, "model %s@%lld, %lld bytes (%lld%% here)", j->spec.model,
             (long long)j->spec.model_version, (long long)a->size_bytes,
             a->have_manifest
                 ? (long long)(artifact_bits_count(a->held, a->m.n_chunks) * 100 / a->m.n_chunks)
                 : 0LL);
    site__add_event(s, j->job_id, j->attempt, "fetching", detail);
    a->progress_mono = os_mono_ms();
    j->fetching = 1;
    return 0;
}

/* The artifact is whole: every job waiting for it starts. */
static void release_jobs(site *s, art *a)
{
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (!j->fetching || j->cancelled || strcmp(j->spec.model_sha256, a->sha) != 0) continue;
        j->fetching = 0;
        give_to_job(s, j, a);
        site__start_job(s, j);
    }
}

/* The jobs waiting for the artifact are handed back (the hub places them again). */
void site__art_give_back(site *s, art *a, const char *why)
{
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (!j->fetching || j->cancelled || strcmp(j->spec.model_sha256, a->sha) != 0) continue;
        log_warn("site", "job %lld: %s", (long long)j->job_id, why);
        site__hand_back(s, j, why, NULL);
    }
}

/* ---------- the fetch ---------- */

/* A "fetch" event to the hub: the manifest and peers, chunks, or both. */
static void ask_hub(site *s, art *a, int manifest, const int64_t *want, int n_want)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) return;
    cJSON_AddStringToObject(b, "sha256", a->sha);
    if (manifest) {
        cJSON_AddBoolToObject(b, "manifest", 1);
        cJSON *f = cJSON_AddArrayToObject(b, "failed_peers");
        for (int k = 0; f && k < a->n_failed; k++)
            cJSON_AddItemToArray(f, cJSON_CreateString(a->failed[k]));
        a->manifest_asked_mono = os_mono_ms();
    }
    cJSON *w = n_want ? cJSON_AddArrayToObject(b, "want") : NULL;
    for (int k = 0; w && k < n_want; k++)
        cJSON_AddItemToArray(w, cJSON_CreateNumber((double)want[k]));
    site__publish(s, "event", b, "fetch");
    cJSON_Delete(b);
}

/* A pull to a peer for the chunks in want, sealed to it, on peer/<it>/<this site>. */
static void ask_peer(site *s, art *a, art_peer *p, const int64_t *want, int n_want)
{
    char topic[PROTO_TOPIC_MAX];
    cJSON *b = cJSON_CreateObject(), *w = b ? cJSON_AddArrayToObject(b, "want") : NULL;
    if (!w || proto_peer_topic(topic, sizeof topic, p->id, s->identity.id) != OP_OK) {
        cJSON_Delete(b);
        return;
    }
    cJSON_AddStringToObject(b, "sha256", a->sha);
    for (int k = 0; k < n_want; k++)
        cJSON_AddItemToArray(w, cJSON_CreateNumber((double)want[k]));
    bus_publish_sealed(s->bus, topic, b, "pull", p->pk);
    cJSON_Delete(b);
}

void site__art_drop_peer(art *a, art_peer *p)
{
    p->dropped = 1;
    if (a->n_failed < ART_MAX_FAILED) /* both 64 bytes, NUL-terminated */
        memcpy(a->failed[a->n_failed++], p->id, sizeof a->failed[0]);
    log_info("site", "artifact %.16s...: peer %s dropped", a->sha, p->id);
}

/* Frees slot k (its chunk no longer asked for). */
void site__art_free_slot(art *a, int k)
{
    art_slot *slot = &a->slots[k];
    artifact_bit_clear(a->asked, slot->index);
    if (slot->source >= 0) a->peers[slot->source].inflight--;
    a->slots[k] = a->slots[--a->n_slots];
}

/* Chunks asked for longer than ART_TIMEOUT_MS (counted from the link's return) asked again. */
static void expire_slots(site *s, art *a, int64_t now)
{
    int64_t since = s->artifacts->connected_since_mono;
    for (int k = 0; k < a->n_slots;) {
        art_slot *slot = &a->slots[k];
        int64_t from = slot->asked_mono > since ? slot->asked_mono : since;
        if (now - from < ART_TIMEOUT_MS) {
            k++;
            continue;
        }
        if (slot->source >= 0) {
            art_peer *p = &a->peers[slot->source];
            if (++p->fails >= 2 && !p->dropped) site__art_drop_peer(a, p);
        }
        site__art_free_slot(a, k);
    }
}

/* The next live peer with room in its window and no "later" pending, round robin; -1 none. */
static int next_peer(art *a, int64_t now)
{
    for (int k = 0; k < a->n_peers; k++) {
        int i = (a->next_peer + k) % a->n_peers;
        if (!a->peers[i].dropped && a->peers[i].inflight < ART_PEER_WINDOW &&
            now >= a->peers[i].later_until_mono) {
            a->next_peer = i + 1;
            return i;
        }
    }
    return -1;
}

/* Fills the window: missing chunks to peers first, to the hub for the rest when it serves. */
static void fill_window(site *s, art *a, int64_t now)
{
    int64_t idx[ART_WINDOW], hub_want[ART_WINDOW], peer_want[ART_MAX_PEERS][ART_WINDOW];
    int n_hub = 0, n_peer[ART_MAX_PEERS] = {0};
    int n = artifact_missing(a->held, a->asked, a->m.n_chunks, a->next_from, idx,
                             ART_WINDOW - a->n_slots);
    int live = 0;
    for (int p = 0; p < a->n_peers; p++)
        live += !a->peers[p].dropped;
    int hub = !live && a->hub_ok && now >= a->wait_until_mono; /* peers first, then the hub */
    for (int k = 0; k < n; k++) {
        int source = next_peer(a, now);
        if (source < 0 && !hub) break;
        art_slot *slot = &a->slots[a->n_slots++];
        slot->index = idx[k];
        slot->source = source;
        slot->asked_mono = now;
        artifact_bit_set(a->asked, idx[k]);
        if (source >= 0) {
            a->peers[source].inflight++;
            peer_want[source][n_peer[source]++] = idx[k];
        } else {
            hub_want[n_hub++] = idx[k];
        }
        a->next_from = idx[k] + 1;
    }
    if (n_hub) ask_hub(s, a, 0, hub_want, n_hub);
    for (int p = 0; p < a->n_peers; p++)
        if (n_peer[p]) ask_peer(s, a, &a->peers[p], peer_want[p], n_peer[p]);
}

/* Peers that gave no chunk for ART_PEER_STALL_MS (a fetcher that stopped, say) are dropped. */
static void drop_stalled_peers(site *s, art *a, int64_t now)
{
    int64_t since = s->artifacts->connected_since_mono;
    for (int k = 0; k < a->n_peers; k++) {
        art_peer *p = &a->peers[k];
        int64_t from = p->progress_mono > since ? p->progress_mono : since;
        if (!p->dropped && now - from > ART_PEER_STALL_MS) site__art_drop_peer(a, p);
    }
}

/* One step of a fetch: the manifest asked for, slots expired, the window filled. */
static void drive(site *s, art *a, int64_t now)
{
    drop_stalled_peers(s, a, now);
    int live_peers = 0;
    for (int k = 0; k < a->n_peers; k++)
        live_peers += !a->peers[k].dropped;
    int stuck = !live_peers && (!a->hub_ok || now < a->wait_until_mono);
    if ((!a->have_manifest || (stuck && a->n_slots == 0)) && now >= a->wait_until_mono &&
        now - a->manifest_asked_mono >= ART_MANIFEST_RETRY_MS) {
        ask_hub(s, a, 1, NULL, 0); /* the manifest, or new peers and the hub's leave */
        return;
    }
    if (!a->have_manifest || a->verifying) return;
    if (now - s->artifacts->connected_since_mono < ART_SETTLE_MS) return;
    expire_slots(s, a, now);
    fill_window(s, a, now);
}

/* The whole file hashed a step at a time; whole and right, it becomes the artifact. */
static void verify_step(site *s, art *a)
{
    size_t len =
        (size_t)(a->size_bytes - a->verify_at < ART_VERIFY_STEP ? a->size_bytes - a->verify_at
                                                                : ART_VERIFY_STEP);
    uint8_t *buf = malloc(len);
    ssize_t got = buf ? pread(a->fd, buf, len, (off_t)a->verify_at) : -1;
    if (got == (ssize_t)len) crypto_hash_sha256_update(&a->vh, buf, len);
    free(buf);
    if (got != (ssize_t)len) return; /* out of memory or a short read: again next time */
    a->verify_at += (int64_t)len;
    if (a->verify_at < a->size_bytes) return;
    uint8_t sha[32];
    char from[PATH_MAX], to[PATH_MAX];
    crypto_hash_sha256_final(&a->vh, sha);
    a->verifying = 0;
    if (sodium_memcmp(sha, a->m.sha256, 32) != 0) {
        /* chunks matched their hashes but not the whole: start again (never seen) */
        memset(a->held, 0, artifact_bitmap_bytes(a->m.n_chunks));
        a->dirty = 1;
        s->artifacts->restarts++;
        log_error("site", "artifact %.16s...: whole hash differs; fetching again", a->sha);
        return;
    }
    /* read-only for everyone: a job runs as its own uid and sees this one file only */
    if (fchmod(a->fd, 0444) != 0 || fdatasync(a->fd) != 0 ||
        site__art_path(s, a->sha, ".partial", from, sizeof from) != OP_OK ||
        site__art_path(s, a->sha, "", to, sizeof to) != OP_OK || rename(from, to) != 0) {
        log_error("site", "artifact %.16s...: cannot keep it: %s", a->sha, strerror(errno));
        return;
    }
    close(a->fd);
    a->fd = -1;
    a->complete = 1;
    a->dirty = 1;
    log_info("site", "artifact %.16s... complete (%lld bytes)", a->sha, (long long)a->size_bytes);
    release_jobs(s, a);
}

/* Chunks written since the last commit: synced, then their bits go with this commit. */
static void store_progress(site *s, art *a)
{
    if (!a->dirty) return;
    if (a->fd >= 0 && fdatasync(a->fd) != 0) return;
    if (site__ensure_tx(s) != OP_OK ||
        sitedb_artifact_held(s->db, a->sha, a->held, artifact_bitmap_bytes(a->m.n_chunks),
                             a->complete) != OP_OK) {
        s->store_failed = 1;
        return;
    }
    a->dirty = 0;
}

/*
 * A fetch no one waits for pauses, and so does one while the link is down;
 * one whose jobs waited too long without progress, connected, gives up.
 */
static void tick_one(site *s, art *a, int64_t now, int connected)
{
    if (a->verifying) verify_step(s, a);
    if (a->complete || a->verifying) return;
    if (!site__art_users(s, a->sha) || !connected) return; /* offline: nothing stalls */
    int64_t since = s->artifacts->connected_since_mono;
    if (now - (a->progress_mono > since ? a->progress_mono : since) > ART_STALL_MS) {
        site__art_give_back(s, a, "its model did not arrive: no chunk in 120 s");
        a->progress_mono = now;
        return;
    }
    drive(s, a, now);
}

void site__artifacts_tick(site *s)
{
    struct site_artifacts *c = s->artifacts;
    if (!c) return;
    int64_t now = os_mono_ms();
    int connected = s->bus && bus_connected(s->bus) && s->enrolled;
    if (!connected) c->connected_since_mono = 0;
    if (connected && !c->connected_since_mono) c->connected_since_mono = now;
    for (int i = 0; i < c->n; i++) {
        tick_one(s, c->items[i], now, connected);
        if (c->items[i]->have_manifest) store_progress(s, c->items[i]);
    }
    for (int g = 0; g < ART_MAX_GRANTS; g++)
        if (c->grants[g].used && now > c->grants[g].expires_mono) c->grants[g].used = 0;
}
