/*
 * predict: joint inference's far end. A site whose own model is not
 * confident about a question, and whose own policy lets the question's
 * features leave it (`predict escalate`), sends them here (event
 * "predict"). The larger model is the one the site's policy names, else its
 * owner's pooled model (the newest pooling round of the owner): models the
 * hub holds the bytes of already, as the registry, so no other site need be
 * up and no model travels. Why the hub and not a peer site holding the
 * pool: the hub is the one place every site of the owner reaches, it holds
 * every version's bytes and their hashes, and it is up when a peer may not
 * be; the price is that the question's features reach the hub, which the
 * owner's policy decides class by class.
 *
 * The hub never loads the model itself: io/predictor runs `outpost learn
 * predict` in a child under the sandbox's limits (XGBoost's loader is not
 * built for hostile bytes, and a pooled model was made by sites). The hub's
 * loop never waits for that child: it starts it and answers when the loop
 * finds it ended (a fork, an exec and one model load: tens of
 * milliseconds; PREDICTOR_TIMEOUT_MS at most, which a model built to be
 * slow would take every time). At most HUB_PREDICT_IN_FLIGHT children run
 * at once (a question beyond is refused: the hub is busy) and each site may
 * ask at most HUB_PREDICT_PER_MINUTE questions a minute. Nothing of a
 * question is stored; the answer goes back sealed to the site ("predicted").
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/artifact.h"
#include "hub/hub_db.h"
#include "hub/hub_int.h"
#include "io/predictor.h"
#include "io/sandbox.h"
#include "learn/learn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB_PREDICT_PER_MINUTE 120
#define HUB_PREDICT_IN_FLIGHT 4

/* A question whose child runs: who asked, which model answers. */
struct hub_predicting {
    predictor_call *call;
    char site[64];
    int64_t id;
    char model[64];
    int64_t version;
};

/* The question's features: an array of LEARN_FEATURES numbers or nulls. */
static int read_row(const cJSON *arr, float row[LEARN_FEATURES])
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != LEARN_FEATURES) return OP_EINVAL;
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (cJSON_IsNull(v))
            row[k] = NAN;
        else if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) < 1e9)
            row[k] = (float)v->valuedouble;
        else
            return OP_EINVAL;
        k++;
    }
    return OP_OK;
}

/* Within the site's questions for this minute. */
static int within_budget(hub_site *s)
{
    int64_t minute = os_mono_ms() / 60000;
    if (s->predict_minute != minute) {
        s->predict_minute = minute;
        s->predict_count = 0;
    }
    return ++s->predict_count <= HUB_PREDICT_PER_MINUTE;
}

/*
 * The larger model for s: named (by the site's policy) or its owner's pool;
 * one whose bytes the hub holds, not site-private, and a confidential one
 * only for a site of its origin's owner. OP_OK with m filled, or an error
 * with why.
 */
static int larger_model(hub *h, const hub_site *s, const char *named, hubdb_model *m, char *why,
                        size_t why_len)
{
    char name[64] = "";
    int rc = OP_OK;
    memset(m, 0, sizeof *m);
    if (named)
        snprintf(name, sizeof name, "%s", named);
    else if ((rc = hubdb_pool_latest_of(h->db, s->owner, name)) != OP_OK) {
        snprintf(why, why_len, "owner %s has no pooled model", s->owner);
        return rc;
    }
    if ((rc = hubdb_model_get(h->db, name, 0, m)) != OP_OK) {
        snprintf(why, why_len, "no model %s at the hub", name);
        return rc;
    }
    const hub_site *origin = hub__find_site(h, m->origin);
    if (m->data_class == DATA_SITE_PRIVATE ||
        hubdb_artifact_get(h->db, m->sha256, NULL, NULL, NULL) != OP_OK) {
        snprintf(why, why_len, "%s@%lld: its bytes stay at its site", name, (long long)m->version);
        rc = OP_EPERM;
    } else if (m->data_class == DATA_CONFIDENTIAL && m->origin[0] &&
               (!origin || strcmp(origin->owner, s->owner))) {
        snprintf(why, why_len, "%s@%lld is another owner's confidential model", name,
                 (long long)m->version);
        rc = OP_EPERM;
    }
    return rc;
}

/* Starts the model's child: the hub itself never maps XGBoost nor parses model bytes. */
static int ask_model(hub *h, const hubdb_model *m, double planned, const float *row,
                     predictor_call **call, char *why, size_t why_len)
{
    char path[PATH_MAX], dir[PATH_MAX];
    if (!h->predict_probed) {
        sandbox_caps caps;
        sandbox_probe(NULL, &caps);
        h->predict_seccomp = caps.seccomp;
        h->predict_netns = caps.netns;
        h->predict_probed = 1;
    }
    if (hub__artifact_path(h, m->sha256, "", path, sizeof path, 0) != OP_OK ||
        util_fmt(dir, sizeof dir, "%s/predict", h->data_dir) != OP_OK || os_mkdir_p(dir)) {
        snprintf(why, why_len, "the hub cannot reach the model's file");
        return OP_EIO;
    }
    predictor_opts o = {.program = h->predict_program,
                        .workdir = dir,
                        .use_seccomp = h->predict_seccomp,
                        .use_netns = h->predict_netns};
    return predictor_start(&o, path, m->sha256, planned, row, call, why, why_len);
}

/* The answer (seconds, when rc is OP_OK) or the refusal, sealed to the site that asked. */
static void answer(hub *h, hub_site *s, int64_t id, const char *model, int64_t version, int rc,
                   double seconds, const char *why)
{
    cJSON *b = cJSON_CreateObject();
    if (!b) return;
    jsonx_add_int(b, "id", id);
    if (rc == OP_OK) {
        cJSON_AddStringToObject(b, "model", model);
        jsonx_add_int(b, "version", version);
        cJSON_AddNumberToObject(b, "seconds", seconds);
    } else {
        cJSON_AddStringToObject(b, "error", why);
    }
    log_info("hub", "site %s escalated a question%s%s: %s", s->id, rc == OP_OK ? " to " : "",
             rc == OP_OK ? model : "", rc == OP_OK ? "answered" : why);
    hub__queue_reply(h, "site", s->id, "inbox", b, "predicted", s->pk);
}

/* Keeps a started call until its child ends. OP_OK, or OP_ENOMEM. */
static int keep_call(hub *h, const hub_site *s, int64_t id, const hubdb_model *m,
                     predictor_call *call)
{
    if (!h->predicting) h->predicting = calloc(HUB_PREDICT_IN_FLIGHT, sizeof *h->predicting);
    if (!h->predicting || h->n_predicting >= HUB_PREDICT_IN_FLIGHT) return OP_ENOMEM;
    struct hub_predicting *p = &h->predicting[h->n_predicting++];
    p->call = call;
    p->id = id;
    p->version = m->version;
    snprintf(p->site, sizeof p->site, "%s", s->id);
    snprintf(p->model, sizeof p->model, "%s", m->name);
    return OP_OK;
}

void hub__predict_tick(hub *h)
{
    for (int i = 0; i < h->n_predicting;) {
        struct hub_predicting *p = &h->predicting[i];
        double seconds = 0;
        char why[300] = "";
        int rc = predictor_poll(p->call, &seconds, why, sizeof why);
        if (rc == 1) {
            i++;
            continue;
        }
        hub_site *s = hub__find_site(h, p->site);
        if (s) answer(h, s, p->id, p->model, p->version, rc, seconds, why);
        predictor_free(p->call);
        *p = h->predicting[--h->n_predicting];
    }
}

void hub__predict_free(hub *h)
{
    for (int i = 0; i < h->n_predicting; i++)
        predictor_free(h->predicting[i].call);
    free(h->predicting);
    h->predicting = NULL;
    h->n_predicting = 0;
}

void hub__predict_question(hub *h, hub_site *s, const cJSON *body)
{
    float row[LEARN_FEATURES];
    double planned = 0;
    int64_t id = 0;
    char why[300] = "";
    const char *dc = jsonx_str(body, "data_class"), *named = jsonx_str(body, "model");
    hubdb_model m = {0};
    predictor_call *call = NULL;
    int rc = OP_EINVAL;
    if (jsonx_int(body, "id", 1, INT64_MAX, &id) != OP_OK ||
        jsonx_num(body, "planned_s", &planned) != OP_OK || !(planned > 0) || planned > 2.6e6 ||
        read_row(cJSON_GetObjectItemCaseSensitive(body, "row"), row) != OP_OK ||
        (named && !artifact_valid_name(named)))
        snprintf(why, sizeof why, "a question needs an id, planned_s, a row of %d features",
                 LEARN_FEATURES);
    else if (!dc || (strcmp(dc, "public") && strcmp(dc, "confidential")))
        snprintf(why, sizeof why, "only public or confidential features may leave a site");
    else if (!within_budget(s))
        snprintf(why, sizeof why, "over %d questions a minute", HUB_PREDICT_PER_MINUTE);
    else if (h->n_predicting >= HUB_PREDICT_IN_FLIGHT)
        snprintf(why, sizeof why, "the hub is answering %d questions already; ask again later",
                 HUB_PREDICT_IN_FLIGHT);
    else if ((rc = larger_model(h, s, named, &m, why, sizeof why)) == OP_OK &&
             (rc = ask_model(h, &m, planned, row, &call, why, sizeof why)) == OP_OK &&
             (rc = keep_call(h, s, id, &m, call)) != OP_OK) {
        predictor_free(call);
        snprintf(why, sizeof why, "the hub cannot keep the question");
    }
    if (rc != OP_OK) answer(h, s, id, m.name, m.version, rc, 0, why);
    hubdb_model_clear(&m);
}
