/*
 * auditing: what the hub writes to its tamper-evident log (io/auditlog, in
 * hub.db): every decision and every step of a job, appended in the loop's
 * transaction so that an entry commits with the state it records, and the
 * signed tree heads sent to sites with acknowledgements.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "hub/api_int.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>

void hub__audit_record(hub *h, const char *kind, const char *subject, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!h->audit) {
        free(text);
        return;
    }
    if (!text || auditlog_append(h->audit, os_now_ms(), kind, subject, text, NULL) != OP_OK)
        h->store_failed = 1;
    free(text);
}

void hub__audit_detail(hub *h, const char *kind, const char *prefix, const char *id,
                       const char *detail)
{
    char subject[80];
    snprintf(subject, sizeof subject, "%s:%s", prefix, id);
    cJSON *body = cJSON_CreateObject();
    if (body) cJSON_AddStringToObject(body, "detail", detail);
    hub__audit_record(h, kind, subject, body);
}

void hub__audit_sign_head(hub *h)
{
    audit_sth head;
    if (!h->audit || auditlog_size(h->audit) == h->head_size) return;
    if (auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head) == OP_OK) {
        h->head_size = head.size;
        h->head = head;
    } else
        h->store_failed = 1;
}

void hub__audit_rollback(hub *h)
{
    if (!h->audit) return;
    if (auditlog_reload(h->audit) != OP_OK)
        log_error("hub", "audit log: cannot re-read after a rollback; run `outpost audit verify`");
    h->head = h->head_committed;
    h->head_size = h->head_size_committed;
}

void hub__audit_committed(hub *h)
{
    h->head_committed = h->head;
    h->head_size_committed = h->head_size;
}

void hub__job_event(hub *h, int64_t job_id, int64_t attempt, const char *site, const char *event,
                    const char *detail)
{
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)job_id);
    cJSON *body = cJSON_CreateObject();
    if (body) {
        jsonx_add_int(body, "job", job_id);
        jsonx_add_int(body, "attempt", attempt);
        if (site) cJSON_AddStringToObject(body, "site", site);
        if (detail) cJSON_AddStringToObject(body, "detail", detail);
    }
    hub__audit_record(h, event, subject, body);
    hub__check(h, hubdb_job_event(h->db, job_id, os_now_ms(), attempt, site, event, detail));
    hub__api_job_step(h, job_id, event, site);
}
