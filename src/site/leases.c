/*
 * Offline leases. The hub's signed offer may give a job a lease: how long it
 * may run without word from the hub. The lease runs from the hub's last
 * authenticated message (kept across restarts while leased work runs); a job
 * whose lease ran out stops, because by then the hub has placed it again.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <signal.h>
#include <stdio.h>

/*
 * A job whose offline lease ran out (no word from the hub for longer than the
 * lease its signed offer gave): stopped, with a retryable result that tells
 * the hub why when the link returns (by then it is usually placed elsewhere:
 * the result is then recorded as stale, never applied).
 */
void site__lease_expired(site *s, site_job *j, int64_t silent_ms)
{
    char why[200];
    snprintf(why, sizeof why,
             "offline lease expired: no word from the hub for %lld s (lease %lld s)",
             (long long)(silent_ms / 1000), (long long)(j->lease_ms / 1000));
    log_warn("site", "job %lld attempt %lld stopped: %s", (long long)j->job_id,
             (long long)j->attempt, why);
    site__audit_job(s, "lease-expired", j->job_id, j->attempt, why);
    site__hand_back(s, j, why, NULL);
}

/*
 * Saves the hub's last contact while there is leased work, at most once a
 * minute or a quarter of the shortest lease (a restart while offline needs
 * it); an idle site writes nothing.
 */
static void save_contact(site *s)
{
    int leased = 0;
    int64_t every = 60000;
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i]->lease_ms > 0 && !s->jobs[i]->cancelled) {
            leased = 1;
            if (s->jobs[i]->lease_ms / 4 < every) every = s->jobs[i]->lease_ms / 4;
        }
    if (leased && s->last_contact_ms - s->contact_saved_ms >= every) {
        char value[32];
        snprintf(value, sizeof value, "%lld", (long long)s->last_contact_ms);
        if (site__ensure_tx(s) == OP_OK &&
            sitedb_meta_set(s->db, "last_hub_contact", value) == OP_OK)
            s->contact_saved_ms = s->last_contact_ms;
    }
}

/* Once a second: stops running jobs whose offline lease ran out; keeps the contact time. */
void site__check_leases(site *s)
{
    int64_t now = os_now_ms(), silent = now - s->last_contact_ms;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (j->lease_ms <= 0 || j->cancelled || silent <= j->lease_ms) continue;
        j->cancelled = 1; /* once; its process's end is not a result */
        site__lease_expired(s, j, silent);
        if (j->run) sandbox_signal(j->run, SIGKILL);
    }
    save_contact(s);
}
