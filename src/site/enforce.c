/*
 * Keeping the site inside its power envelope. The site is the last line:
 * whatever the hub planned, when the draw of its running jobs exceeds the
 * envelope, jobs stop here, newest first (the least work lost): paused
 * (SIGSTOP) through a short demand-response cut, else handed back (SIGTERM,
 * SIGKILL after half the reaction time, checkpoint kept) to be placed
 * elsewhere. Each check also advances the running jobs' energy receipts and
 * feeds the forecaster and the grid ring.
 */
#include "base/log.h"
#include "base/os.h"
#include "site/site_int.h"

#include <signal.h>
#include <string.h>

/* 1 when j draws power now: running, neither cancelled, stopping nor paused. */
int site__job_draws(const site_job *j)
{
    return j->run && !j->cancelled && !j->departing_until && !j->paused_since;
}

/* The site's draw now: its idle draw, then its drawing jobs' cores. */
static double current_draw(const site *s)
{
    double draw = s->idle_watts;
    for (int i = 0; i < s->n_jobs; i++)
        if (site__job_draws(s->jobs[i])) draw += s->jobs[i]->spec.cores * s->watts_per_core;
    return draw;
}

site_job *site__over_envelope(const site *s, double envelope, double *draw)
{
    site_job *newest = NULL;
    *draw = s->idle_watts;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (!site__job_draws(j)) continue;
        *draw += j->spec.cores * s->watts_per_core;
        if (!newest || j->started_mono > newest->started_mono) newest = j;
    }
    return *draw <= envelope + 1e-9 ? NULL : newest;
}

int site__short_cut(const site *s, const char *source, int64_t now_wall)
{
    return strcmp(source, "demand response") == 0 &&
           s->meter.dr_until_ms - now_wall <= s->pause_max_ms;
}

/* The envelope now, logged when it changed; the forecaster and grid ring learn from it. */
static double update_envelope(site *s, int64_t now, int64_t mono, const char **source)
{
    double envelope = site__current_envelope(s, now, source);
    int from_trace = s->trace.n && strcmp(*source, "trace") == 0;
    if (envelope != s->power_budget_watts)
        log_info("site", "power envelope now %.0f W (%s%s%s)", envelope, *source,
                 from_trace ? " " : "", from_trace ? s->trace_path : "");
    s->power_budget_watts = envelope;
    double signal;
    int have_signal = site__grid_signal(s, &signal);
    if (timer_due(&s->observe_timer, mono, 0)) {
        power_forecaster_observe(&s->forecaster, now, envelope);
        if (have_signal) power_grid_ring_observe(&s->grid_ring, now, signal);
    }
    return envelope;
}

/*
 * Receipts: the time each drawing job ran since the last check, the part of
 * it inside the envelope, and the price and carbon over it.
 */
static void meter_jobs(site *s, int64_t mono)
{
    int64_t dt = s->last_meter_check_ms ? mono - s->last_meter_check_ms : 0;
    s->last_meter_check_ms = mono;
    double price, carbon;
    int have_price = site__price(s, &price), have_carbon = site__carbon(s, &carbon);
    for (int i = 0; i < s->n_jobs && dt > 0; i++) {
        site_job *j = s->jobs[i];
        if (!site__job_draws(j)) continue;
        j->metered_ms += dt;
        if (s->inside_envelope) j->within_ms += dt;
        if (have_price) {
            j->price_ms_sum += price * (double)dt;
            j->price_ms += dt;
        }
        if (have_carbon) {
            j->carbon_ms_sum += carbon * (double)dt;
            j->carbon_ms += dt;
        }
    }
}

static void shed_job(site *s, site_job *j, double draw, double envelope)
{
    log_warn("site", "draw %.0f W over the %.0f W envelope: handing back job %lld", draw, envelope,
             (long long)j->job_id);
    if (j->paused_since) sandbox_signal(j->run, SIGCONT); /* so it can write its checkpoint */
    j->paused_since = 0;
    j->shed = 1;
    j->departing_until = os_mono_ms() + s->reaction_ms / 2;
    sandbox_signal(j->run, SIGTERM);
}

static void pause_job(site *s, site_job *j, double draw, double envelope, int64_t now, int64_t mono)
{
    log_warn(
        "site", "draw %.0f W over the %.0f W demand-response cap (%lld s left): pausing job %lld",
        draw, envelope, (long long)((s->meter.dr_until_ms - now) / 1000), (long long)j->job_id);
    sandbox_signal(j->run, SIGSTOP);
    j->paused_since = mono;
    site__audit_job(s, "paused", j->job_id, j->attempt,
                    "demand-response cut shorter than pause_max_ms");
}

/* The paused job that has waited longest (started first), or NULL. */
static site_job *oldest_paused(const site *s)
{
    site_job *oldest = NULL;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (j->paused_since && !j->departing_until &&
            (!oldest || j->started_mono < oldest->started_mono))
            oldest = j;
    }
    return oldest;
}

/* Paused jobs resume when they fit again, oldest first; those paused too long are handed back. */
static void resume_paused(site *s, double draw, double envelope, int64_t mono)
{
    site_job *oldest;
    while ((oldest = oldest_paused(s))) {
        double need = oldest->spec.cores * s->watts_per_core;
        if (draw + need <= envelope + 1e-9) {
            sandbox_signal(oldest->run, SIGCONT);
            oldest->paused_since = 0;
            draw += need;
            log_info("site", "job %lld resumed: the envelope (%.0f W) has room again",
                     (long long)oldest->job_id, envelope);
            site__audit_job(s, "resumed", oldest->job_id, oldest->attempt,
                            "the envelope has room again");
        } else if (mono - oldest->paused_since > s->pause_max_ms) {
            shed_job(s, oldest, draw + need, envelope);
        } else {
            break;
        }
    }
}

/*
 * One check: the envelope from its sources, receipts, paused jobs resumed
 * where they fit, then jobs stopped newest first while the draw is over the
 * envelope (paused through a short demand-response cut, else handed back).
 */
void site__enforce_power(site *s)
{
    int64_t now = os_now_ms(), mono = os_mono_ms();
    const char *source;
    double envelope = update_envelope(s, now, mono, &source);
    double draw = current_draw(s);
    s->inside_envelope = draw <= envelope + 1e-9;
    meter_jobs(s, mono);
    resume_paused(s, draw, envelope, mono);
    int pause = site__short_cut(s, source, now);
    site_job *newest;
    while ((newest = site__over_envelope(s, envelope, &draw))) {
        if (pause)
            pause_job(s, newest, draw, envelope, now, mono);
        else
            shed_job(s, newest, draw, envelope);
    }
}
