/*
 * site_fixture: an in-memory site agent for unit tests of the site's logic
 * (admission, enforcement, the data layer), without a broker or a process.
 * Each fixture owns a fresh temp data dir (with work/), removed when freed.
 */
#ifndef OUTPOST_TEST_SITE_FIXTURE_H
#define OUTPOST_TEST_SITE_FIXTURE_H

#include "site/site_int.h"

#include <cJSON.h>

/*
 * A site "site-a" of class dc as a fresh config would make it: 8 cores,
 * 8192 MB, 8 job slots, a 100 W budget, 10 W per core, 5 W idle, no trace,
 * no meter, no policy, no sandbox protections. with_store: site.db (and its
 * audit log) open in the data dir. NULL when the temp dir or store fails.
 */
site *site_fixture_new(int with_store);

/* Frees the site (its jobs' processes are killed) and removes its data dir. */
void site_fixture_free(site *s);

/* Parses a JSON spec for site__accept_job; the caller frees it. Fails the test if invalid. */
cJSON *site_fixture_json(const char *text);

#endif
