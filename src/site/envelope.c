/*
 * The site's power envelope and where it comes from: the configuration's
 * budget, a power trace over time, the site's own meter (its topic or
 * `outpost power`), a demand-response cap, a parked car's departure; the
 * grid's price and carbon; the power report each heartbeat carries; and the
 * energy receipt of a finished attempt.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/sched.h"
#include "site/site_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int site__load_trace(site *s, const char *path, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    if (os_read_file(path, 64 * 1024 * 1024, &text, &len) != OP_OK) {
        snprintf(err, err_len, "cannot read power_trace %s", path);
        return OP_EINVAL;
    }
    char why[200] = "";
    int rc = power_trace_parse(text, len, &s->trace, why, sizeof why);
    free(text);
    if (rc != OP_OK) snprintf(err, err_len, "power_trace %s: %s", path, why);
    snprintf(s->trace_path, sizeof s->trace_path, "%s", path);
    return rc;
}

/* The trace's row now (offsets count from the agent's start). */
static size_t trace_row(const site *s)
{
    return power_trace_at(&s->trace, os_mono_ms() - s->trace_start_mono);
}

/*
 * A grid signal now (price or carbon): the meter's or a command's (the config's
 * value stands there too), else the trace's column when that row gives one.
 */
static int grid_value(const site *s, unsigned bit, double meter_value, const double *column,
                      double *out)
{
    if (!(s->meter.has & bit) && s->trace.n) {
        double v = column[trace_row(s)];
        if (!isnan(v)) {
            *out = v;
            return 1;
        }
    }
    *out = meter_value;
    return (s->meter.has & bit) != 0;
}

int site__price(const site *s, double *out)
{
    return grid_value(s, POWER_METER_PRICE, s->meter.price, s->trace.price, out);
}

int site__carbon(const site *s, double *out)
{
    return grid_value(s, POWER_METER_CARBON, s->meter.carbon, s->trace.carbon, out);
}

/* The grid signal the rank is computed on: the price when known, else carbon. */
int site__grid_signal(const site *s, double *out)
{
    return site__price(s, out) || site__carbon(s, out);
}

/*
 * The envelope now and where it comes from: the meter's (or `outpost power`'s)
 * watts, else the trace, else the config; capped by a demand-response event
 * while it lasts; 0 from a parked car's stated departure, less a lead.
 */
double site__current_envelope(const site *s, int64_t now_wall, const char **source)
{
    double e = s->budget_watts;
    *source = "config";
    if (s->trace.n) {
        e = s->trace.watts[trace_row(s)];
        *source = "trace";
    }
    if (s->meter.has & POWER_METER_WATTS) {
        e = s->meter.watts;
        *source = "meter";
    }
    if ((s->meter.has & POWER_METER_DR) && now_wall < s->meter.dr_until_ms &&
        s->meter.dr_watts < e) {
        e = s->meter.dr_watts;
        *source = "demand response";
    }
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0 &&
        now_wall >= s->meter.departure_ms - s->departure_lead_ms) {
        e = 0;
        *source = "departure";
    }
    return e;
}

/* A meter message (the meter topic, or `outpost power`): validated, then each field kept. */
int site__apply_meter(site *s, const char *text, size_t len, const char *from, char *err,
                      size_t err_len)
{
    power_meter m;
    if (power_meter_parse(text, len, &m, err, err_len) != OP_OK) {
        log_warn("site", "meter message from %s refused: %s", from, err);
        return OP_EINVAL;
    }
    if (m.has & POWER_METER_WATTS) s->meter.watts = m.watts;
    if (m.has & POWER_METER_PRICE) s->meter.price = m.price;
    if (m.has & POWER_METER_CARBON) s->meter.carbon = m.carbon;
    if (m.has & POWER_METER_DEPARTURE) s->meter.departure_ms = m.departure_ms;
    if (m.has & POWER_METER_DR) {
        s->meter.dr_watts = m.dr_watts;
        s->meter.dr_until_ms = m.dr_until_ms;
    }
    s->meter.has |= m.has;
    log_debug("site", "meter message from %s applied", from);
    site__enforce_power(s); /* react now, not at the next check */
    return OP_OK;
}

/*
 * The envelope's forecast per scheduler horizon: the forecaster's minimum,
 * never above the envelope now, 0 past a stated departure (stay, 0: none).
 */
static void add_forecast(site *s, cJSON *p, int64_t now, double envelope, int64_t stay)
{
    cJSON *f = cJSON_AddArrayToObject(p, "forecast_watts");
    for (int k = 0; f && k < SCHED_HORIZONS; k++) {
        double v = power_forecast_min(&s->forecaster, now, sched_horizon_ms[k], 900000);
        if (envelope < v) v = envelope;
        if (stay && now + sched_horizon_ms[k] > stay) v = 0;
        cJSON_AddItemToArray(f, cJSON_CreateNumber(v > 0 ? v : 0));
    }
}

/* What the scheduler needs of this site's power, in each heartbeat. */
void site__add_power_report(site *s, cJSON *body)
{
    cJSON *p = cJSON_AddObjectToObject(body, "power");
    if (!p) return;
    int64_t now = os_now_ms();
    const char *source;
    double envelope = site__current_envelope(s, now, &source);
    cJSON_AddNumberToObject(p, "envelope_watts", envelope);
    cJSON_AddStringToObject(p, "source", source);
    cJSON_AddBoolToObject(p, "inside_envelope", s->inside_envelope);
    int64_t stay = 0;
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0)
        stay = s->meter.departure_ms - s->departure_lead_ms;
    if (s->forecaster.have_last) add_forecast(s, p, now, envelope, stay);
    if (stay) jsonx_add_int(p, "stay_until_ms", stay);
    double signal;
    if (site__grid_signal(s, &signal))
        cJSON_AddNumberToObject(p, "grid_rank", power_grid_rank(&s->grid_ring, now, signal));
    double value;
    if (site__price(s, &value)) cJSON_AddNumberToObject(p, "price", value);
    if (site__carbon(s, &value)) cJSON_AddNumberToObject(p, "carbon", value);
    jsonx_add_int(p, "region", s->region);
}

/*
 * The energy receipt of a finished attempt: joules (busy core-seconds at this
 * site's watts per core), the share of its run time the site was inside its
 * envelope (spare power: never above it longer than the reaction time), and
 * cost and carbon at the mean price and carbon of the time it ran.
 */
void site__add_receipt(site *s, site_job *j, cJSON *r, double joules)
{
    cJSON *o = cJSON_AddObjectToObject(r, "receipt");
    if (!o) return;
    double kwh = joules / 3.6e6;
    cJSON_AddNumberToObject(o, "joules", joules);
    double share = j->metered_ms > 0 ? (double)j->within_ms / (double)j->metered_ms : 1.0;
    cJSON_AddNumberToObject(o, "spare_share", share);
    cJSON_AddNumberToObject(o, "spare_joules", joules * share);
    if (j->price_ms > 0) {
        double price = j->price_ms_sum / (double)j->price_ms;
        cJSON_AddNumberToObject(o, "price_per_mwh", price);
        cJSON_AddNumberToObject(o, "cost", kwh * price / 1000.0);
    }
    if (j->carbon_ms > 0) {
        double carbon = j->carbon_ms_sum / (double)j->carbon_ms;
        cJSON_AddNumberToObject(o, "carbon_g_per_kwh", carbon);
        cJSON_AddNumberToObject(o, "carbon_g", kwh * carbon);
    }
}
