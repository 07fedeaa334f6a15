#include "core/power.h"

#include "base/err.h"
#include "base/util.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define SLOT_MS (DAY_MS / POWER_PROFILE_SLOTS)

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

size_t power_sessions_load(const power_session *sessions, size_t n, int64_t t0_ms, int64_t step_ms,
                           double *out, size_t n_steps)
{
    for (size_t k = 0; k < n_steps; k++)
        out[k] = 0;
    if (step_ms <= 0 || n_steps == 0) return 0;
    int64_t t1_ms = t0_ms + step_ms * (int64_t)n_steps;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const power_session *s = &sessions[i];
        if (s->done_ms <= s->connect_ms || !(s->kwh >= 0)) continue;
        used++;
        double watts = s->kwh * 3.6e6 / ((double)(s->done_ms - s->connect_ms) / 1000.0);
        int64_t a = max64(s->connect_ms, t0_ms), b = min64(s->done_ms, t1_ms);
        if (a >= b) continue;
        /* spread over the steps it overlaps, in proportion to the overlap */
        for (int64_t k = (a - t0_ms) / step_ms; k < (int64_t)n_steps; k++) {
            int64_t ks = t0_ms + k * step_ms, ke = ks + step_ms;
            int64_t lo = max64(a, ks), hi = min64(b, ke);
            if (lo >= b) break;
            if (hi > lo) out[k] += watts * (double)(hi - lo) / (double)step_ms;
        }
    }
    return used;
}

double power_pod_envelope(double grid_limit_watts, double chargers_watts, double margin_watts)
{
    double e = grid_limit_watts - chargers_watts - margin_watts;
    return e > 0 ? e : 0;
}

double power_car_envelope(const power_car *car, int64_t t_ms)
{
    if (t_ms < car->plug_in_ms || t_ms >= car->departure_ms - car->departure_lead_ms) return 0;
    if (car->battery_kwh <= car->floor_kwh) return 0;
    return car->budget_watts > 0 ? car->budget_watts : 0;
}

double power_dc_envelope(const power_dc *dc, int64_t t_ms)
{
    if (dc->n_slots <= 0 || !dc->slots) return dc->budget_watts > 0 ? dc->budget_watts : 0;
    int64_t in_day = ((t_ms % DAY_MS) + DAY_MS) % DAY_MS;
    int slot = (int)(in_day / (DAY_MS / dc->n_slots));
    if (slot >= dc->n_slots) slot = dc->n_slots - 1;
    double w = dc->slots[slot];
    return w > 0 ? w : 0;
}

double power_job_draw(double units, double watts_per_unit)
{
    double w = units * watts_per_unit;
    return w > 0 ? w : 0;
}

static int slot_of(int64_t t_ms)
{
    int64_t in_day = ((t_ms % DAY_MS) + DAY_MS) % DAY_MS;
    return (int)(in_day / SLOT_MS);
}

void power_forecaster_init(power_forecaster *f, double alpha, double tau_ms)
{
    for (int i = 0; i < POWER_PROFILE_SLOTS; i++) {
        f->profile[i] = 0;
        f->seen[i] = 0;
    }
    f->alpha = alpha > 0 && alpha <= 1 ? alpha : 0.2;
    f->tau_ms = tau_ms > 0 ? tau_ms : 3600000.0;
    f->last_watts = 0;
    f->last_ms = 0;
    f->have_last = 0;
}

void power_forecaster_observe(power_forecaster *f, int64_t t_ms, double watts)
{
    int s = slot_of(t_ms);
    if (!f->seen[s]) {
        f->profile[s] = watts;
        f->seen[s] = 1;
    } else {
        f->profile[s] += f->alpha * (watts - f->profile[s]);
    }
    f->last_watts = watts;
    f->last_ms = t_ms;
    f->have_last = 1;
}

double power_forecast(const power_forecaster *f, int64_t t_ms)
{
    if (!f->have_last) return 0;
    double horizon = (double)(t_ms > f->last_ms ? t_ms - f->last_ms : 0);
    double w = exp(-horizon / f->tau_ms);
    int s = slot_of(t_ms);
    double profile = f->seen[s] ? f->profile[s] : f->last_watts;
    double v = w * f->last_watts + (1 - w) * profile;
    return v > 0 ? v : 0;
}

double power_forecast_min(const power_forecaster *f, int64_t from_ms, int64_t duration_ms,
                          int64_t step_ms)
{
    if (step_ms <= 0) step_ms = SLOT_MS;
    double least = power_forecast(f, from_ms);
    for (int64_t t = from_ms + step_ms; t <= from_ms + duration_ms; t += step_ms) {
        double v = power_forecast(f, t);
        if (v < least) least = v;
    }
    double end = power_forecast(f, from_ms + duration_ms);
    return end < least ? end : least;
}

static int meter_number(const cJSON *o, const char *key, const char *path, double min, double max,
                        double *out, char *err, size_t err_len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max) {
        snprintf(err, err_len, "%s%s: must be a number from %g to %g", path, key, min, max);
        return -1;
    }
    *out = v->valuedouble;
    return 1;
}

int power_meter_parse(const char *text, size_t len, power_meter *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (len > POWER_METER_MAX_BYTES) {
        snprintf(err, err_len, "meter message larger than %d bytes", POWER_METER_MAX_BYTES);
        return OP_EINVAL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    int rc = OP_EINVAL;
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_len, "meter message must be a JSON object");
        goto out;
    }
    static const char *known[] = {"watts", "price", "carbon", "departure_ms", "dr", NULL};
    const cJSON *field;
    cJSON_ArrayForEach(field, root)
    {
        int ok = 0;
        for (const char **k = known; *k; k++)
            ok = ok || (field->string && strcmp(field->string, *k) == 0);
        if (!ok) {
            snprintf(err, err_len, "%.64s: unknown field", field->string ? field->string : "?");
            goto out;
        }
    }
    double v;
    int got;
    if ((got = meter_number(root, "watts", "", 0, 1e9, &out->watts, err, err_len)) < 0) goto out;
    if (got) out->has |= POWER_METER_WATTS;
    if ((got = meter_number(root, "price", "", -1e5, 1e5, &out->price, err, err_len)) < 0) goto out;
    if (got) out->has |= POWER_METER_PRICE;
    if ((got = meter_number(root, "carbon", "", 0, 1e5, &out->carbon, err, err_len)) < 0) goto out;
    if (got) out->has |= POWER_METER_CARBON;
    if ((got = meter_number(root, "departure_ms", "", 0, 9e15, &v, err, err_len)) < 0) goto out;
    if (got) {
        out->has |= POWER_METER_DEPARTURE;
        out->departure_ms = (int64_t)v;
    }
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(root, "dr");
    if (dr) {
        if (!cJSON_IsObject(dr) || cJSON_GetArraySize(dr) != 2) {
            snprintf(err, err_len, "dr: must be {\"watts\": W, \"until_ms\": T}");
            goto out;
        }
        if (meter_number(dr, "watts", "dr.", 0, 1e9, &out->dr_watts, err, err_len) != 1 ||
            meter_number(dr, "until_ms", "dr.", 0, 9e15, &v, err, err_len) != 1) {
            if (!err[0]) snprintf(err, err_len, "dr: must be {\"watts\": W, \"until_ms\": T}");
            goto out;
        }
        out->dr_until_ms = (int64_t)v;
        out->has |= POWER_METER_DR;
    }
    if (!out->has) {
        snprintf(err, err_len, "meter message: no field (watts, price, carbon, departure_ms, dr)");
        goto out;
    }
    rc = OP_OK;
out:
    cJSON_Delete(root);
    return rc;
}

void power_grid_ring_init(power_grid_ring *r)
{
    for (int i = 0; i < 24; i++) {
        r->hourly[i] = 0;
        r->hour[i] = -1;
    }
}

void power_grid_ring_observe(power_grid_ring *r, int64_t t_ms, double value)
{
    int64_t hour = t_ms / 3600000;
    int slot = (int)(((hour % 24) + 24) % 24);
    r->hourly[slot] = value;
    r->hour[slot] = hour;
}

double power_grid_rank(const power_grid_ring *r, int64_t t_ms, double value)
{
    int64_t hour = t_ms / 3600000;
    int seen = 0, lower = 0;
    for (int i = 0; i < 24; i++) {
        if (r->hour[i] < 0 || r->hour[i] > hour || r->hour[i] <= hour - 24) continue;
        seen++;
        lower += r->hourly[i] < value;
    }
    return seen ? (double)lower / seen : 0;
}

void power_trace_clear(power_trace *t)
{
    free(t->offset_ms);
    free(t->watts);
    free(t->price);
    free(t->carbon);
    memset(t, 0, sizeof *t);
}

/* One number field: digits, sign, point, exponent; finite. */
static int trace_number(const char **p, double *out)
{
    char *end;
    double v = strtod(*p, &end);
    if (end == *p || !isfinite(v)) return 0;
    *p = end;
    *out = v;
    return 1;
}

static int trace_grow(power_trace *t, size_t *cap)
{
    if (t->n < *cap) return OP_OK;
    size_t c = *cap ? *cap * 2 : 256;
    int64_t *o = realloc(t->offset_ms, c * sizeof *o);
    if (o) t->offset_ms = o;
    double *w = o ? realloc(t->watts, c * sizeof *w) : NULL;
    if (w) t->watts = w;
    double *pr = w ? realloc(t->price, c * sizeof *pr) : NULL;
    if (pr) t->price = pr;
    double *ca = pr ? realloc(t->carbon, c * sizeof *ca) : NULL;
    if (ca) t->carbon = ca;
    if (!ca) return OP_ENOMEM;
    *cap = c;
    return OP_OK;
}

int power_trace_parse(const char *text, size_t len, power_trace *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0, pos = 0;
    int line = 0, rc = OP_OK;
    while (pos < len && rc == OP_OK) {
        size_t start = pos, end = pos;
        while (end < len && text[end] != '\n')
            end++;
        pos = end + 1;
        line++;
        size_t l = end - start;
        if (l && text[start + l - 1] == '\r') l--;
        if (l == 0) continue;
        char buf[256];
        if (l >= sizeof buf) {
            snprintf(err, err_len, "line %d: longer than %zu bytes", line, sizeof buf - 1);
            rc = OP_EINVAL;
            break;
        }
        memcpy(buf, text + start, l);
        buf[l] = '\0';
        if (strlen(buf) != l) {
            snprintf(err, err_len, "line %d: a NUL byte", line);
            rc = OP_EINVAL;
            break;
        }
        if (buf[0] == '#' || (line == 1 && !strchr("0123456789.+-", buf[0]))) continue;
        const char *p = buf;
        double off, watts, price = NAN, carbon = NAN;
        int ok = trace_number(&p, &off) && *p++ == ',' && trace_number(&p, &watts);
        if (ok && *p == ',') {
            p++;
            ok = trace_number(&p, &price) && fabs(price) <= 1e5;
            if (ok && *p == ',') {
                p++;
                ok = trace_number(&p, &carbon) && carbon >= 0 && carbon <= 1e5;
            }
        }
        if (!ok || *p || !(off >= 0 && off <= 1e10) || !(watts >= 0 && watts <= 1e9) ||
            (out->n && off * 1000 < (double)out->offset_ms[out->n - 1])) {
            snprintf(err, err_len,
                     "line %d: expected 'seconds,watts[,price[,carbon]]' with seconds not "
                     "decreasing, watts >= 0",
                     line);
            rc = OP_EINVAL;
            break;
        }
        if (out->n == POWER_TRACE_MAX_LINES) {
            snprintf(err, err_len, "line %d: more than %d lines", line, POWER_TRACE_MAX_LINES);
            rc = OP_EINVAL;
            break;
        }
        if ((rc = trace_grow(out, &cap)) != OP_OK) break;
        out->offset_ms[out->n] = (int64_t)(off * 1000);
        out->watts[out->n] = watts;
        out->price[out->n] = price;
        out->carbon[out->n++] = carbon;
    }
    if (rc == OP_OK && !out->n) {
        snprintf(err, err_len, "no 'seconds,watts' lines");
        rc = OP_EINVAL;
    }
    if (rc != OP_OK) power_trace_clear(out);
    return rc;
}

size_t power_trace_at(const power_trace *t, int64_t offset_ms)
{
    return util_last_at_or_before(t->offset_ms, t->n, offset_ms);
}
