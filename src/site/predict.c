/*
 * predict: `outpost predict` at a site, and joint inference. The site's own
 * model (its champion of the name asked, else route_model) answers in a
 * child process (io/predictor: the agent never maps XGBoost nor parses a
 * model). The answer is judged by learn_confident: the rows the model
 * learned from, its held-out MAE against the answer, and whether the
 * question's features lie inside the ranges it was trained on. A confident
 * answer is final ("local", or "local (offline)" without the hub).
 *
 * A question it is not confident about goes to a larger model through the
 * hub (hub/predict.c) only when all of these hold: the asker says what
 * class its features are ("data_class"; site-private by default, and a
 * site-private question never leaves), the site's own policy lets that
 * class leave (`predict escalate`), and the hub is in reach. The asker's
 * connection is then held (at most SITE_MAX_ESCALATIONS at once, each at
 * most SITE_ESCALATE_WAIT_MS) and answered with both predictions, marked
 * "escalated to MODEL@V at the hub"; a refusal or no answer in time leaves
 * the local answer, with why. What leaves: the feature row, the plan's
 * seconds, the class, the policy's model name; never a row the site learned
 * from.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "io/localsock.h"
#include "io/predictor.h"
#include "site/site_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE_ESCALATE_WAIT_MS 5000

/* What the site knows of its champion of name, for the answer and its confidence. */
typedef struct champion_view {
    learn_model_facts facts;
    int64_t version;
    char sha[65];
    char path[PATH_MAX];
} champion_view;

static void read_ranges(const cJSON *ranges, learn_model_facts *f)
{
    if (!cJSON_IsArray(ranges) || cJSON_GetArraySize(ranges) != LEARN_FEATURES) return;
    int k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, ranges)
    {
        const cJSON *lo = cJSON_GetArrayItem(r, 0), *hi = cJSON_GetArrayItem(r, 1);
        f->range[k][0] = cJSON_IsNumber(lo) ? (float)lo->valuedouble : NAN;
        f->range[k][1] = cJSON_IsNumber(hi) ? (float)hi->valuedouble : NAN;
        k++;
    }
    f->has_ranges = 1;
}

static int champion_of(site *s, const char *name, champion_view *v)
{
    memset(v, 0, sizeof *v);
    cJSON *champ = site__learn_champion(s, name, NULL);
    if (!champ) return 0;
    v->facts.has_model = 1;
    jsonx_int(champ, "version", 0, INT64_MAX, &v->version);
    jsonx_int(champ, "rows", 0, INT64_MAX, &v->facts.rows);
    jsonx_num(champ, "mae", &v->facts.heldout_mae_s);
    read_ranges(cJSON_GetObjectItemCaseSensitive(champ, "ranges"), &v->facts);
    snprintf(v->sha, sizeof v->sha, "%s", jsonx_str(champ, "sha256"));
    cJSON_Delete(champ);
    return site__learn_model_path(s, v->sha, v->path, sizeof v->path, 0) == OP_OK;
}

/* The champion's answer from a child process; the plan when it cannot answer. */
static int local_answer(site *s, const champion_view *v, double planned, const float *row,
                        double *seconds)
{
    char dir[PATH_MAX], err[300];
    *seconds = planned;
    if (!v->facts.has_model) return 0;
    predictor_opts o = {.program = s->route_program,
                        .workdir = dir,
                        .use_seccomp = s->caps.seccomp,
                        .use_netns = s->caps.netns};
    int rc = util_fmt(dir, sizeof dir, "%s/predict", s->data_dir);
    if (rc == OP_OK) rc = os_mkdir_p(dir);
    if (rc == OP_OK)
        rc = predictor_run(&o, v->path, v->sha, planned, row, seconds, err, sizeof err);
    if (rc != OP_OK) {
        *seconds = planned;
        log_warn("site", "predict: the model could not answer: %s", rc == OP_ESYS ? err : err);
    }
    return rc == OP_OK;
}

/* The request's fields. OP_OK, or OP_EINVAL with why. */
static int read_question(const cJSON *req, const char **name, double *planned, int *data_class,
                         float row[LEARN_FEATURES], char *why, size_t why_len)
{
    const char *dc = jsonx_str(req, "data_class");
    char err[256];
    *data_class = !dc || !strcmp(dc, "site-private") ? DATA_SITE_PRIVATE
                  : !strcmp(dc, "confidential")      ? DATA_CONFIDENTIAL
                  : !strcmp(dc, "public")            ? DATA_PUBLIC
                                                     : -1;
    if (!artifact_valid_name(*name))
        snprintf(why, why_len, "model: a model name");
    else if (jsonx_num(req, "planned_s", planned) != OP_OK || !(*planned > 0) || *planned > 2.6e6)
        snprintf(why, why_len, "planned_s: the plan's seconds, above 0 and at most 30 days");
    else if (*data_class < 0)
        snprintf(why, why_len, "data_class: public, confidential or site-private");
    else if (site__learn_features(cJSON_GetObjectItemCaseSensitive(req, "features"), row, err,
                                  sizeof err) != OP_OK)
        snprintf(why, why_len, "%s", err);
    return why[0] ? OP_EINVAL : OP_OK;
}

/* Why the question stays here although the answer is not confident ("" when it may go). */
static void may_escalate(site *s, int data_class, const char **model, char *why, size_t why_len)
{
    int online = s->bus && bus_connected(s->bus) && s->enrolled;
    if (data_class == DATA_SITE_PRIVATE)
        snprintf(why, why_len, "site-private features never leave the site");
    else if (!policy_predict_escalates(s->policy, data_class, model))
        snprintf(why, why_len, "the site's policy keeps %s features here (predict escalate)",
                 jobspec_data_class_name(data_class));
    else if (!online)
        snprintf(why, why_len, "the hub is out of reach");
}

/* Sends the question to the hub and holds fd; 0 when no slot is free. */
static int escalate(site *s, int fd, cJSON *reply, const char *model, double planned,
                    const float *row, int data_class)
{
    int k = 0;
    while (k < SITE_MAX_ESCALATIONS && s->escalations[k].reply)
        k++;
    cJSON *b = k < SITE_MAX_ESCALATIONS ? cJSON_CreateObject() : NULL;
    cJSON *arr = b ? cJSON_AddArrayToObject(b, "row") : NULL;
    if (!arr) {
        cJSON_Delete(b);
        return 0;
    }
    int64_t id = ++s->next_escalation;
    jsonx_add_int(b, "id", id);
    cJSON_AddNumberToObject(b, "planned_s", planned);
    cJSON_AddStringToObject(b, "data_class", jobspec_data_class_name(data_class));
    if (model) cJSON_AddStringToObject(b, "model", model);
    for (int f = 0; f < LEARN_FEATURES; f++)
        cJSON_AddItemToArray(arr, isnan(row[f]) ? cJSON_CreateNull()
                                                : cJSON_CreateNumber((double)row[f]));
    int rc = site__publish(s, "event", b, "predict");
    cJSON_Delete(b);
    if (rc != OP_OK) return 0;
    s->escalations[k] =
        (struct site_escalation){fd, id, os_mono_ms() + SITE_ESCALATE_WAIT_MS, reply};
    return 1;
}

int site__predict_op(site *s, const cJSON *req, cJSON *reply, int fd, char *why, size_t why_len)
{
    const char *name = jsonx_str(req, "model"), *model = NULL;
    float row[LEARN_FEATURES];
    double planned = 0, seconds = 0;
    int data_class = DATA_SITE_PRIVATE;
    char low[400] = "", stays[200] = "";
    champion_view v;
    if (!name) name = s->route_model[0] ? s->route_model : "eta";
    if (read_question(req, &name, &planned, &data_class, row, why, why_len) != OP_OK) return 0;
    champion_of(s, name, &v);
    int ok = local_answer(s, &v, planned, row, &seconds);
    if (!ok) v.facts.has_model = 0;
    int confident = learn_confident(&v.facts, row, seconds, low, sizeof low);
    int online = s->bus && bus_connected(s->bus) && s->enrolled;
    cJSON_AddStringToObject(reply, "model", name);
    cJSON_AddNumberToObject(reply, "planned_s", planned);
    cJSON_AddNumberToObject(reply, "seconds", seconds);
    if (ok) {
        cJSON_AddNumberToObject(reply, "version", (double)v.version);
        cJSON_AddStringToObject(reply, "sha256", v.sha);
    }
    cJSON_AddStringToObject(reply, "confidence", confident ? "high" : "low");
    if (!confident) cJSON_AddStringToObject(reply, "low_because", low);
    cJSON_AddStringToObject(reply, "source",
                            !ok      ? "static plan (no model at this site)"
                            : online ? "local"
                                     : "local (offline)");
    if (confident) return 0;
    may_escalate(s, data_class, &model, stays, sizeof stays);
    if (!stays[0] && escalate(s, fd, reply, model, planned, row, data_class)) return 1;
    cJSON_AddStringToObject(reply, "escalation",
                            stays[0] ? stays : "too many questions waiting for the hub");
    return 0;
}

/* Answers the held question k (the reply completed) and frees its slot. */
static void answer(site *s, int k)
{
    struct site_escalation *e = &s->escalations[k];
    localsock_reply(e->fd, e->reply);
    close(e->fd);
    cJSON_Delete(e->reply);
    memset(e, 0, sizeof *e);
    e->fd = -1;
}

void site__predict_answered(site *s, const cJSON *body)
{
    int64_t id = 0;
    jsonx_int(body, "id", 1, INT64_MAX, &id);
    for (int k = 0; k < SITE_MAX_ESCALATIONS; k++) {
        struct site_escalation *e = &s->escalations[k];
        if (!e->reply || e->id != id) continue;
        const char *model = jsonx_str(body, "model"), *error = jsonx_str(body, "error");
        double seconds = 0, local = 0;
        int64_t version = 0;
        jsonx_num(e->reply, "seconds", &local);
        jsonx_int(body, "version", 0, INT64_MAX, &version);
        if (model && artifact_valid_name(model) && jsonx_num(body, "seconds", &seconds) == OP_OK &&
            seconds > 0 && isfinite(seconds)) {
            char source[160];
            snprintf(source, sizeof source, "escalated to %s@%lld at the hub", model,
                     (long long)version);
            cJSON_ReplaceItemInObject(e->reply, "source", cJSON_CreateString(source));
            cJSON_ReplaceItemInObject(e->reply, "seconds", cJSON_CreateNumber(seconds));
            cJSON_AddNumberToObject(e->reply, "local_seconds", local);
            cJSON_AddNumberToObject(e->reply, "escalated_seconds", seconds);
        } else {
            char text[360];
            snprintf(text, sizeof text, "the hub did not answer: %.300s",
                     error ? error : "no answer in its message");
            cJSON_AddStringToObject(e->reply, "escalation", text);
        }
        answer(s, k);
        return;
    }
}

void site__predict_expire(site *s, int all)
{
    int64_t now = os_mono_ms();
    for (int k = 0; k < SITE_MAX_ESCALATIONS; k++) {
        struct site_escalation *e = &s->escalations[k];
        if (!e->reply || (!all && now < e->due_mono)) continue;
        cJSON_AddStringToObject(e->reply, "escalation", "no answer from the hub in time");
        answer(s, k);
    }
}
