#include "helpers/site_fixture.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "site/site_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fields a configuration file gives, at the values a test expects. */
static void set_defaults(site *s)
{
    snprintf(s->identity.id, sizeof s->identity.id, "site-a");
    snprintf(s->class_name, sizeof s->class_name, "dc");
    snprintf(s->route_program, sizeof s->route_program, "/bin/false");
    s->cores = 8;
    s->memory_mb = 8192;
    s->max_jobs = 8;
    s->power_budget_watts = s->budget_watts = 100;
    s->watts_per_core = 10;
    s->idle_watts = 5;
    s->heartbeat_ms = 2000;
    s->reaction_ms = 2000;
    s->pause_max_ms = 120000;
    s->departure_lead_ms = 600000;
    s->resend_ms = 3000;
    s->last_contact_ms = os_now_ms();
    s->trace_start_mono = os_mono_ms();
    power_forecaster_init(&s->forecaster, 0.2, 3600000.0);
    power_grid_ring_init(&s->grid_ring);
}

site *site_fixture_new(int with_store)
{
    site *s = site__new();
    if (!s) return NULL;
    set_defaults(s);
    char tmpl[] = "/tmp/test_site.XXXXXX", path[PATH_MAX];
    if (!mkdtemp(tmpl)) goto fail;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", tmpl);
    if (util_fmt(path, sizeof path, "%s/work", s->data_dir) != OP_OK || os_mkdir_p(path) != OP_OK)
        goto fail;
    if (with_store &&
        (util_fmt(path, sizeof path, "%s/site.db", s->data_dir) != OP_OK ||
         sitedb_open(path, &s->db) != OP_OK || auditlog_attach(s->db, &s->audit) != OP_OK))
        goto fail;
    return s;
fail:
    site_fixture_free(s);
    return NULL;
}

void site_fixture_free(site *s)
{
    if (!s) return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", s->data_dir);
    site__free(s);
    if (dir[0]) os_rm_rf(dir);
}

cJSON *site_fixture_json(const char *text)
{
    cJSON *json = cJSON_Parse(text);
    if (!json) {
        fprintf(stderr, "site_fixture_json: not JSON: %s\n", text);
        abort();
    }
    return json;
}
