/*
 * rollback: the hub's side of a site going back to its previous champion
 * (docs/learning.md). The operator orders one with `outpost model rollback
 * NAME --site SITE`: the hub submits a learn job in mode "rollback" at the
 * site on the operator's behalf, so policy, the queue's bounds and the
 * job's history apply as to any submit, and the order reaches a site that
 * is offline when it comes back. A site also rolls back by itself when a
 * train job finds its previous champion better on fresh rows. Either way
 * the job's result says "rolled-back" with both MAEs; the hub checks it is
 * the answer of that site's learn job of that model, maps the two models'
 * hashes to the registry's versions, audits "model-rollback" on model:NAME
 * and keeps the entry for `outpost model show`.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/artifact.h"
#include "hub/hub_db.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLLBACKS_SHOWN 5

/* The registry's version of a model the site reported by its hash (0: none known). */
static int64_t version_of(hub *h, const char *name, const char *sha, const char *site)
{
    int64_t v = 0;
    if (artifact_sha_ok(sha) && hubdb_model_version_of(h->db, name, sha, site, &v) != OP_OK) v = 0;
    return v;
}

/* The entry kept and audited: what the site sent, checked, and the registry's versions. */
static cJSON *rollback_entry(hub *h, const hub_site *s, const cJSON *learn, int64_t job_id)
{
    const char *name = jsonx_str(learn, "model"), *trigger = jsonx_str(learn, "trigger");
    const char *reason = jsonx_str(learn, "reason");
    const char *from = jsonx_str(learn, "from_sha256"), *to = jsonx_str(learn, "to_sha256");
    double champion_mae = 0, previous_mae = 0;
    int64_t rows = 0;
    if (!trigger || (strcmp(trigger, "automatic") && strcmp(trigger, "operator")) ||
        !artifact_sha_ok(from) || !artifact_sha_ok(to) ||
        jsonx_num(learn, "champion_mae", &champion_mae) != OP_OK ||
        jsonx_num(learn, "previous_mae", &previous_mae) != OP_OK ||
        jsonx_int(learn, "heldout_rows", 0, INT64_MAX, &rows) != OP_OK)
        return NULL;
    cJSON *e = cJSON_CreateObject();
    if (!e) return NULL;
    cJSON_AddStringToObject(e, "site", s->id);
    cJSON_AddStringToObject(e, "trigger", trigger);
    cJSON_AddStringToObject(e, "reason", reason ? reason : "");
    jsonx_add_int(e, "from_version", version_of(h, name, from, s->id));
    jsonx_add_int(e, "to_version", version_of(h, name, to, s->id));
    cJSON_AddStringToObject(e, "from_sha256", from);
    cJSON_AddStringToObject(e, "to_sha256", to);
    cJSON_AddNumberToObject(e, "champion_mae", champion_mae);
    cJSON_AddNumberToObject(e, "previous_mae", previous_mae);
    jsonx_add_int(e, "heldout_rows", rows);
    jsonx_add_int(e, "job", job_id);
    jsonx_add_int(e, "at", os_now_ms());
    return e;
}

int hub__rollback_learned(hub *h, hub_site *s, const cJSON *learn, int64_t job_id)
{
    const char *name = jsonx_str(learn, "model");
    if (!artifact_valid_name(name) || !hub__is_learn_job_of(h, job_id, s->id, name)) {
        log_warn("hub", "site %s: job %lld is not its learn job of that model: rollback ignored",
                 s->id, (long long)job_id);
        return OP_OK;
    }
    cJSON *e = rollback_entry(h, s, learn, job_id);
    if (!e) {
        log_warn("hub",
                 "site %s: learn job %lld: a rollback without its two models and MAEs:"
                 " ignored",
                 s->id, (long long)job_id);
        return OP_OK;
    }
    char *text = cJSON_PrintUnformatted(e), subject[80];
    int rc = text ? hub__check(h, hubdb_rollback_add(h->db, name, os_now_ms(), text)) : OP_ENOMEM;
    free(text);
    if (rc == OP_OK) {
        log_info("hub", "site %s rolled model %s back (%s): version %lld -> %lld", s->id, name,
                 jsonx_str(e, "trigger"),
                 (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "from_version")),
                 (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "to_version")));
        snprintf(subject, sizeof subject, "model:%s", name);
        hub__audit_record(h, "model-rollback", subject, e);
        e = NULL;
    }
    cJSON_Delete(e);
    return rc;
}

/* The learn job that orders site to roll name back. */
static cJSON *rollback_spec(const char *name, const char *site)
{
    cJSON *spec = cJSON_CreateObject(), *res, *learn;
    char job_name[96];
    if (!spec) return NULL;
    snprintf(job_name, sizeof job_name, "rollback %.63s", name);
    cJSON_AddStringToObject(spec, "kind", "learn");
    cJSON_AddStringToObject(spec, "name", job_name);
    cJSON_AddStringToObject(spec, "model", name);
    cJSON_AddStringToObject(spec, "data_class", "site-private");
    cJSON_AddStringToObject(spec, "origin", site);
    jsonx_add_int(spec, "deadline_s", 24 * 3600); /* a site offline for a day still gets it */
    jsonx_add_int(spec, "expected_s", 10);
    jsonx_add_int(spec, "max_attempts", 1);
    if ((res = cJSON_AddObjectToObject(spec, "resources"))) {
        jsonx_add_int(res, "cores", 1);
        jsonx_add_int(res, "memory_mb", 512);
        jsonx_add_int(res, "wall_s", 300);
    }
    if ((learn = cJSON_AddObjectToObject(spec, "learn")))
        cJSON_AddStringToObject(learn, "mode", "rollback");
    return spec;
}

/* The model's latest version was learned at site (a rollback is of a site's own model). */
static int site_made(hub *h, op_call *c, const char *name, const char *site)
{
    hubdb_model latest = {0};
    int rc = hubdb_model_get(h->db, name, 0, &latest);
    if (rc == OP_OK && strcmp(latest.origin, site)) rc = OP_EPERM;
    hubdb_model_clear(&latest);
    if (rc == OP_ENOTFOUND) snprintf(c->err, c->err_len, "no model %s", name);
    if (rc == OP_EPERM)
        snprintf(c->err, c->err_len,
                 "model %s was not learned at %s: only its own models roll back", name, site);
    return rc == OP_OK || rc == OP_ENOTFOUND || rc == OP_EPERM ? rc : hub__check(h, rc);
}

int hub__op_model_rollback(hub *h, op_call *c)
{
    const char *name = jsonx_str(c->req, "name"), *site = jsonx_str(c->req, "site");
    const hub_site *s = site ? hub__find_site(h, site) : NULL;
    char err[400] = "", subject[80];
    int64_t job_id = 0;
    if (!artifact_valid_name(name) || !site) {
        snprintf(c->err, c->err_len, "model rollback needs a model name and a site");
        return OP_EINVAL;
    }
    if (!s) {
        snprintf(c->err, c->err_len, "no site %s", site);
        return OP_ENOTFOUND;
    }
    int rc = site_made(h, c, name, site);
    cJSON *spec = rc == OP_OK ? rollback_spec(name, site) : NULL;
    if (rc == OP_OK && !spec) rc = OP_ENOMEM;
    if (rc == OP_OK) rc = hub__submit_spec(h, spec, c->op_id, &job_id, err, sizeof err);
    cJSON_Delete(spec);
    if (rc != OP_OK) {
        if (!c->err[0]) snprintf(c->err, c->err_len, "%s", err[0] ? err : op_strerror(rc));
        return rc;
    }
    jsonx_add_int(c->data, "job", job_id);
    cJSON *a = cJSON_CreateObject();
    if (a) {
        cJSON_AddStringToObject(a, "site", site);
        jsonx_add_int(a, "job", job_id);
        cJSON_AddStringToObject(a, "by", c->op_id);
    }
    snprintf(subject, sizeof subject, "model:%s", name);
    hub__audit_record(h, "model-rollback-order", subject, a);
    return OP_OK;
}

void hub__rollback_view(hub *h, const char *name, cJSON *data)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr && hubdb_rollbacks_view(h->db, name, ROLLBACKS_SHOWN, arr) == OP_OK &&
        cJSON_GetArraySize(arr))
        cJSON_AddItemToObject(data, "rollbacks", arr);
    else
        cJSON_Delete(arr);
}
