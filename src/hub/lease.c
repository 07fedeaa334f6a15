/*
 * lease: a hub in a failover group (`failover = on`, docs/failover.md).
 * Two or three hub processes share one database (PostgreSQL, `store =
 * postgresql://...`); the one holding the lease row is active, the others
 * wait here before they read any state or connect to the broker. The
 * active hub's every commit renews the lease and is fenced by it
 * (hub_db_lease.c), a chore opens a transaction when no work did for a
 * second, and a hub that finds its lease stale (it was paused, or could not
 * reach the database) stops before touching the broker again: the standby
 * that took over owns the MQTT session (same client id) from then on.
 */
#include "base/conf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "hub/hub_int.h"
#include "io/sdnotify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A renewal when no commit renewed the lease for this long. */
#define LEASE_RENEW_MS 1000
/* How often a standby tries to take an expired lease. */
#define LEASE_POLL_MS 200

struct hub_failover {
    int on;
    int must_stop; /* the lease is lost or could not be renewed: stop without writing */
    char holder[128];
    int64_t lease_ms;
    hubdb_lease before, after; /* the row before and after this hub took it */
    int64_t waited_ms;         /* from the first try to taking it */
};

int hub__failover_configure(hub *h, conf *c, char *err, size_t err_len)
{
    const char *where = conf_str(c, "store", NULL), *url = conf_str(c, "store_url", NULL);
    const char *on = conf_str(c, "failover", "off");
    const char *instance = conf_str(c, "hub_instance", NULL);
    if (where && url) {
        snprintf(err, err_len, "store and store_url name the same thing: set one");
        return OP_EINVAL;
    }
    if (url && !store_is_url(url)) {
        snprintf(err, err_len, "store_url must be a postgresql:// URL");
        return OP_EINVAL;
    }
    snprintf(h->store_where, sizeof h->store_where, "%s", url ? url : where ? where : "");
    if (strcmp(on, "on") != 0 && strcmp(on, "off") != 0) {
        snprintf(err, err_len, "failover must be on or off");
        return OP_EINVAL;
    }
    free(h->failover);
    if (!(h->failover = calloc(1, sizeof *h->failover))) return OP_ENOMEM;
    h->failover->on = strcmp(on, "on") == 0;
    if (instance && (!*instance || strlen(instance) > 63 || !util_valid_id(instance))) {
        snprintf(err, err_len, "hub_instance '%s' must be [A-Za-z0-9_-]{1,63}", instance);
        return OP_EINVAL;
    }
    /* unique per process, so a restarted hub is a new holder, never the one it replaces */
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    uint32_t nonce = (uint32_t)os_mono_us() ^ ((uint32_t)getpid() << 16);
    snprintf(h->failover->holder, sizeof h->failover->holder, "%s/%.63s/%d/%08x",
             instance ? instance : "hub", host, (int)getpid(), nonce);
    return conf_int(c, "failover_lease_ms", 3000, 1000, 60000, &h->failover->lease_ms, err,
                    err_len);
}

void hub__failover_free(hub *h)
{
    free(h->failover);
    h->failover = NULL;
}

int hub__failover_on(const hub *h)
{
    return h->failover && h->failover->on;
}

/*
 * A standby's wait: the database opened, the lease tried every 200 ms until
 * this hub holds it or is told to stop. Only then does the caller read the
 * state a restarted hub reads and connect to the broker. OP_OK (active),
 * OP_ETIMEOUT (stopped while waiting), OP_ESTORE.
 */
int hub__failover_open(hub *h, const char *where)
{
    if (!hub__failover_on(h)) return OP_OK;
    struct hub_failover *f = h->failover;
    int rc = h->db ? OP_OK : hubdb_open(where, 1, &h->db);
    if (rc != OP_OK) return rc;
    if (!store_is_url(where))
        log_warn("hub",
                 "failover = on with a SQLite store (%s): only hubs on this machine "
                 "sharing that file take turns; use a PostgreSQL store across machines",
                 where);
    runctl_install();
    int64_t start = os_mono_ms(), said = 0;
    for (;;) {
        int taken = 0;
        rc = hubdb_lease_try(h->db, f->holder, f->lease_ms, &taken, &f->before, &f->after);
        if (rc == OP_OK && taken) break;
        if (runctl_stopping()) return OP_ETIMEOUT;
        int64_t now = os_mono_ms();
        if (rc == OP_OK && (!said || now - said > 60000)) {
            log_info("hub", "standby (%s): the lease is held by %s (epoch %lld), waiting",
                     f->holder, f->after.holder, (long long)f->after.epoch);
            /* ready as a standby: a service manager must not time the wait out */
            sdnotify_sendf("READY=1\nSTATUS=standby: the lease is held by %s", f->after.holder);
            said = now;
        }
        sdnotify_watchdog_tick(now);
        struct timespec ts = {0, LEASE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL); /* a signal cuts it short: the stop flag is checked next */
    }
    f->waited_ms = os_mono_ms() - start;
    log_info("hub",
             "active: took the lease as %s (epoch %lld; before: %s, epoch %lld, expired at %lld, "
             "now %lld on the database's clock)",
             f->holder, (long long)f->after.epoch, f->before.holder[0] ? f->before.holder : "none",
             (long long)f->before.epoch, (long long)f->before.expires_at_ms,
             (long long)f->after.now_ms);
    return OP_OK;
}

/*
 * The takeover in the audit log, once the log is attached: both holders and
 * epochs, committed in a transaction of its own (fenced like any other).
 * A first start (no previous holder) is recorded too, as a takeover from none.
 */
int hub__failover_record(hub *h)
{
    if (!hub__failover_on(h)) return OP_OK;
    struct hub_failover *f = h->failover;
    cJSON *body = cJSON_CreateObject();
    if (!body) return OP_ENOMEM;
    cJSON_AddStringToObject(body, "holder", f->holder);
    cJSON_AddNumberToObject(body, "epoch", (double)f->after.epoch);
    cJSON_AddStringToObject(body, "previous_holder", f->before.holder);
    cJSON_AddNumberToObject(body, "previous_epoch", (double)f->before.epoch);
    cJSON_AddNumberToObject(body, "previous_expired_at_ms", (double)f->before.expires_at_ms);
    cJSON_AddNumberToObject(body, "taken_at_ms", (double)f->after.now_ms);
    if (hubdb_begin(h->db) != OP_OK) {
        cJSON_Delete(body);
        return OP_ESTORE;
    }
    hub__audit_record(h, "hub-takeover", "hub", body);
    return hub__commit(h);
}

/*
 * Once per loop iteration, before the broker is read. 0 to go on, -1 to
 * stop now: the lease went to another hub, or this hub could not renew it
 * for a whole lease (paused, or cut off from the database) and must assume
 * it did. A renewal is due after a second without a commit: a transaction
 * is opened so that the iteration's commit carries it.
 */
int hub__failover_tick(hub *h)
{
    if (!hub__failover_on(h) || !h->db) return 0;
    struct hub_failover *f = h->failover;
    if (f->must_stop || hubdb_lease_lost(h->db)) {
        f->must_stop = 1;
        return -1;
    }
    int64_t since = os_mono_ms() - hubdb_lease_renewed_mono_ms(h->db);
    if (since >= f->lease_ms) {
        /* a stale lease is checked before anything else is done: commit now, fenced */
        if (!hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK) h->store_failed = 1;
        if (hub__commit(h) != OP_OK) {
            f->must_stop = 1;
            log_error("hub",
                      "%s: the lease was not renewed for %lld ms (%s): stopping so that a "
                      "standby takes over",
                      f->holder, (long long)since,
                      hubdb_lease_lost(h->db) ? "another hub holds it" : "the database failed");
            return -1;
        }
        return 0;
    }
    if (since >= LEASE_RENEW_MS && !hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK)
        h->store_failed = 1;
    return 0;
}

int hub__failover_stopped(const hub *h)
{
    return h->failover && (h->failover->must_stop || (h->db && hubdb_lease_lost(h->db)));
}

/* A clean stop hands the lease over at once: a standby need not wait for it to expire. */
void hub__failover_release(hub *h)
{
    if (!hub__failover_on(h) || !h->db || hub__failover_stopped(h)) return;
    if (hubdb_lease_release(h->db) == OP_OK)
        log_info("hub", "lease released (%s): a standby may take over now", h->failover->holder);
}
