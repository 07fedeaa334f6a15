/*
 * probe: the site's side of a capacity probe (the hub's check of the cores
 * it claims; the puzzle is core/probe). A "probe" from the hub names a seed,
 * a difficulty, the cores to prove (lanes) and a duration; the site hashes
 * on as many threads as that, its configured cores and the CPUs it may run
 * on allow, for that long (or until it has the most nonces an answer may
 * carry), and answers with every solution it found. The hub times the
 * answer on its own clock, so sending late only makes the site look slower.
 *
 * The threads are this agent's own code, not a job: they run outside the
 * sandbox at the agent's priority (the priority jobs get), each with every
 * signal blocked (the agent's handlers run on its loop thread), touching
 * nothing but their own hasher and the shared list of solutions. One probe
 * at a time: a new challenge stops the one in progress.
 */
#include "core/probe.h"
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "site/site_int.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE_PROBE_MAX_THREADS 256
#define SITE_PROBE_CHUNK 2048 /* hashes between looks at the clock and the stop flag */

typedef struct probe_lane {
    struct site_probe *probe;
    int index;
    probe_hasher *hasher;
    pthread_t thread;
    int started;
} probe_lane;

struct site_probe {
    uint64_t id;
    uint8_t seed[PROBE_SEED_BYTES];
    int bits;
    size_t max;
    int64_t started_mono, deadline_mono;
    atomic_int stop;
    atomic_int running; /* threads that have not finished */
    atomic_size_t n_found;
    uint64_t *found; /* max entries */
    probe_lane lanes[SITE_PROBE_MAX_THREADS];
    int n_lanes;
    cJSON *answer; /* built once the threads are done, until it is sent */
};

/* Lane i tries nonces from i * 2^40 upwards: lanes never repeat each other's. */
static void *lane_main(void *arg)
{
    probe_lane *lane = arg;
    struct site_probe *p = lane->probe;
    uint64_t next = (uint64_t)lane->index << 40, local[SITE_PROBE_CHUNK];
    while (!atomic_load(&p->stop) && os_mono_ms() < p->deadline_mono) {
        size_t n = 0;
        probe_search(lane->hasher, p->seed, p->bits, &next, SITE_PROBE_CHUNK, local,
                     SITE_PROBE_CHUNK, &n);
        for (size_t i = 0; i < n; i++) {
            size_t at = atomic_fetch_add(&p->n_found, 1);
            if (at >= p->max) {
                atomic_store(&p->stop, 1); /* an answer holds no more: send what there is */
                break;
            }
            p->found[at] = local[i];
        }
    }
    atomic_fetch_sub(&p->running, 1);
    return NULL;
}

/* The CPUs this process may run on (its affinity mask), at least 1. */
static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Stops the threads, waits for them, frees everything (NULL is fine). */
static void probe_free(struct site_probe *p)
{
    if (!p) return;
    atomic_store(&p->stop, 1);
    for (int i = 0; i < p->n_lanes; i++) {
        if (p->lanes[i].started) pthread_join(p->lanes[i].thread, NULL);
        probe_hasher_free(p->lanes[i].hasher);
    }
    cJSON_Delete(p->answer);
    free(p->found);
    free(p);
}

void site__probe_stop(site *s)
{
    probe_free(s->probe);
    s->probe = NULL;
}

/*
 * The challenge's fields, each within its bounds; OP_EINVAL for anything
 * else. threads: what the site gives it.
 */
static int parse_challenge(site *s, const cJSON *body, struct site_probe *p, int *threads)
{
    int64_t id, bits, lanes, ms, max;
    const char *seed = jsonx_str(body, "seed");
    if (jsonx_int(body, "probe", 1, (int64_t)PROBE_MAX_NONCE, &id) != OP_OK ||
        jsonx_int(body, "bits", PROBE_MIN_BITS, PROBE_MAX_BITS, &bits) != OP_OK ||
        jsonx_int(body, "lanes", 1, PROBE_MAX_LANES, &lanes) != OP_OK ||
        jsonx_int(body, "ms", PROBE_MIN_MS, PROBE_MAX_MS, &ms) != OP_OK ||
        jsonx_int(body, "max", 1, PROBE_MAX_SOLUTIONS, &max) != OP_OK || !seed ||
        util_unhex(seed, p->seed, PROBE_SEED_BYTES) != OP_OK)
        return OP_EINVAL;
    p->id = (uint64_t)id;
    p->bits = (int)bits;
    p->max = (size_t)max;
    p->started_mono = os_mono_ms();
    p->deadline_mono = p->started_mono + ms;
    /* the cores the hub asks about, no more than this site has or may use */
    int64_t n = lanes < s->cores ? lanes : s->cores;
    int cpus = usable_cpus();
    if (n > cpus) n = cpus;
    *threads = n > SITE_PROBE_MAX_THREADS ? SITE_PROBE_MAX_THREADS : n < 1 ? 1 : (int)n;
    return OP_OK;
}

/* The lanes' threads, every signal blocked in them. Returns how many started. */
static int start_lanes(struct site_probe *p, int threads)
{
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    atomic_store(&p->running, threads);
    for (int i = 0; i < threads; i++) {
        probe_lane *lane = &p->lanes[i];
        lane->probe = p;
        lane->index = i;
        lane->hasher = probe_hasher_new();
        p->n_lanes = i + 1;
        lane->started = lane->hasher && pthread_create(&lane->thread, NULL, lane_main, lane) == 0;
        if (!lane->started) atomic_fetch_sub(&p->running, 1);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    int started = 0;
    for (int i = 0; i < p->n_lanes; i++)
        started += p->lanes[i].started;
    return started;
}

/* An answer saying why there is none (the hub takes it as a failed probe). */
static cJSON *refusal(uint64_t id, const char *why)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return NULL;
    jsonx_add_int(body, "probe", (int64_t)id);
    cJSON_AddStringToObject(body, "refused", why);
    return body;
}

void site__probe_start(site *s, const cJSON *body)
{
    site__probe_stop(s); /* the newest challenge is the one the hub waits for */
    struct site_probe *p = calloc(1, sizeof *p);
    int threads = 0;
    if (!p) return;
    if (parse_challenge(s, body, p, &threads) != OP_OK) {
        s->msg.malformed++;
        log_warn("site", "malformed probe from the hub ignored");
        free(p);
        return;
    }
    s->probe = p;
    p->found = calloc(p->max, sizeof *p->found);
    int started = p->found ? start_lanes(p, threads) : 0;
    if (!started) {
        log_error("site", "probe %llu: cannot start its threads", (unsigned long long)p->id);
        p->answer = refusal(p->id, "the site could not start its probe threads");
        return;
    }
    log_info("site", "probe %llu: %d thread(s) for %lld ms, %d-bit puzzle",
             (unsigned long long)p->id, started, (long long)(p->deadline_mono - p->started_mono),
             p->bits);
}

/* The threads are done: the answer with every nonce found (at most max). */
static cJSON *answer_of(struct site_probe *p)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *arr = body ? cJSON_AddArrayToObject(body, "nonces") : NULL;
    if (!arr) {
        cJSON_Delete(body);
        return NULL;
    }
    jsonx_add_int(body, "probe", (int64_t)p->id);
    size_t n = atomic_load(&p->n_found);
    if (n > p->max) n = p->max;
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)p->found[i]));
    log_info("site", "probe %llu answered: %zu solutions in %lld ms", (unsigned long long)p->id, n,
             (long long)(os_mono_ms() - p->started_mono));
    return body;
}

void site__probe_poll(site *s)
{
    struct site_probe *p = s->probe;
    if (!p) return;
    if (!p->answer) {
        if (atomic_load(&p->running) > 0) return;
        for (int i = 0; i < p->n_lanes; i++) {
            if (p->lanes[i].started) pthread_join(p->lanes[i].thread, NULL);
            p->lanes[i].started = 0; /* joined: probe_free has nothing more to wait for */
        }
        p->answer = answer_of(p);
        if (!p->answer) { /* no memory for it: the hub times the probe out */
            site__probe_stop(s);
            return;
        }
    }
    /* the loop polls while connected only; the answer waits for the broker otherwise */
    if (site__publish(s, "event", p->answer, "probe") != OP_OK)
        log_warn("site", "probe %llu: answer not sent", (unsigned long long)p->id);
    site__probe_stop(s);
}
