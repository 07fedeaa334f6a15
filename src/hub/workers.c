/*
 * workers: heartbeats authenticated on a pool of threads (workers.h). Each
 * lane is a thread with two singly linked FIFOs under one mutex: "in" (to be
 * checked) and "out" (checked, for the loop). A lane's count covers both,
 * which is the bound.
 */
#include "hub/workers.h"

#include "base/err.h"
#include "base/os.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct lane {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    hub_beat *in_head, *in_tail, *out_head, *out_tail;
    size_t count; /* in + out + the one in hand */
    int stop;
    struct hub_workers *pool;
} lane;

struct hub_workers {
    lane *lanes;
    int n_lanes, started;
    size_t lane_cap;
    ident self;
    int64_t skew_ms;
    int next_take; /* the lane hub_workers_take looks at first */
};

hub_beat *hub_beat_new(const void *payload, size_t len)
{
    hub_beat *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->payload = malloc(len ? len : 1);
    if (!b->payload) {
        free(b);
        return NULL;
    }
    memcpy(b->payload, payload, len);
    b->len = len;
    return b;
}

void hub_beat_free(hub_beat *b)
{
    if (!b) return;
    cJSON_Delete(b->body);
    cJSON_Delete(b->enrolling.body);
    free(b->payload);
    free(b);
}

/* The beat's own key: the site it names was looked up on the loop, when it arrived. */
static int lookup_beat(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    hub_beat *b = ctx;
    if (strcmp(kid, b->kid) != 0) return OP_EUNKNOWN;
    *pk = b->pk;
    *window = NULL; /* the replay window is the loop's to check and move */
    return OP_OK;
}

/* The check itself: every step of msg_open_for but the window, against the clock now. */
static void check(hub_workers *w, hub_beat *b)
{
    if (b->enroll) {
        b->rc = hub_hello_open(&w->self, b->kid, b->topic, b->payload, b->len, b->kid,
                               b->sig[0] ? b->sig : NULL, os_now_ms(), w->skew_ms, &b->enrolling);
        return;
    }
    b->rc = msg_open_for(&w->self, proto_must_seal(b->topic), b->topic, b->payload, b->len,
                         b->kid[0] ? b->kid : NULL, b->sig[0] ? b->sig : NULL, lookup_beat, b,
                         os_now_ms(), w->skew_ms, &b->body, &b->hdr, &b->stats, b->reason,
                         sizeof b->reason);
}

static void *lane_main(void *arg)
{
    lane *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->in_head && !l->stop)
            pthread_cond_wait(&l->wake, &l->lock);
        if (l->stop) break;
        hub_beat *b = l->in_head;
        l->in_head = b->next;
        if (!l->in_head) l->in_tail = NULL;
        pthread_mutex_unlock(&l->lock);
        b->next = NULL;
        check(l->pool, b);
        pthread_mutex_lock(&l->lock);
        if (l->out_tail)
            l->out_tail->next = b;
        else
            l->out_head = b;
        l->out_tail = b;
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int hub_workers_new(int lanes, int lane_cap, const ident *self, int64_t skew_ms, hub_workers **out)
{
    *out = NULL;
    if (lanes < 1 || lanes > 64 || lane_cap < 1) return OP_EINVAL;
    hub_workers *w = calloc(1, sizeof *w);
    if (!w) return OP_ENOMEM;
    w->lanes = calloc((size_t)lanes, sizeof *w->lanes);
    if (!w->lanes) {
        free(w);
        return OP_ENOMEM;
    }
    w->n_lanes = lanes;
    w->lane_cap = (size_t)lane_cap;
    w->self = *self;
    w->skew_ms = skew_ms;
    for (int i = 0; i < lanes; i++) {
        w->lanes[i].pool = w;
        pthread_mutex_init(&w->lanes[i].lock, NULL);
        pthread_cond_init(&w->lanes[i].wake, NULL);
    }
    for (int i = 0; i < lanes; i++) {
        lane *l = &w->lanes[i];
        if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
            hub_workers_free(w);
            return OP_EIO;
        }
        w->started = i + 1;
    }
    *out = w;
    return OP_OK;
}

int hub_workers_submit(hub_workers *w, hub_beat *b)
{
    lane *l = &w->lanes[b->site % (size_t)w->n_lanes];
    pthread_mutex_lock(&l->lock);
    if (l->count >= w->lane_cap) {
        pthread_mutex_unlock(&l->lock);
        return OP_EFULL;
    }
    b->next = NULL;
    if (l->in_tail)
        l->in_tail->next = b;
    else
        l->in_head = b;
    l->in_tail = b;
    l->count++;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    return OP_OK;
}

hub_beat *hub_workers_take(hub_workers *w)
{
    for (int k = 0; k < w->n_lanes; k++) {
        lane *l = &w->lanes[(w->next_take + k) % w->n_lanes];
        pthread_mutex_lock(&l->lock);
        hub_beat *b = l->out_head;
        if (b) {
            l->out_head = b->next;
            if (!l->out_head) l->out_tail = NULL;
            l->count--;
        }
        pthread_mutex_unlock(&l->lock);
        if (b) {
            b->next = NULL;
            w->next_take = (w->next_take + k + 1) % w->n_lanes;
            return b;
        }
    }
    return NULL;
}

size_t hub_workers_pending(hub_workers *w)
{
    size_t n = 0;
    for (int i = 0; i < w->n_lanes; i++) {
        pthread_mutex_lock(&w->lanes[i].lock);
        n += w->lanes[i].count;
        pthread_mutex_unlock(&w->lanes[i].lock);
    }
    return n;
}

static void free_list(hub_beat *b)
{
    while (b) {
        hub_beat *next = b->next;
        hub_beat_free(b);
        b = next;
    }
}

void hub_workers_free(hub_workers *w)
{
    if (!w) return;
    for (int i = 0; i < w->started; i++) {
        lane *l = &w->lanes[i];
        pthread_mutex_lock(&l->lock);
        l->stop = 1;
        pthread_cond_signal(&l->wake);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
    }
    for (int i = 0; i < w->n_lanes; i++) {
        free_list(w->lanes[i].in_head);
        free_list(w->lanes[i].out_head);
        pthread_mutex_destroy(&w->lanes[i].lock);
        pthread_cond_destroy(&w->lanes[i].wake);
    }
    sodium_memzero(&w->self, sizeof w->self);
    free(w->lanes);
    free(w);
}
