/*
 * jobstate: the job lifecycle as a pure transition function (no I/O).
 *
 *   queued --place--> placed --start--> running --result ok--> succeeded
 *                        |                 |    --result fail--> failed
 *                        +--taken back-----+--> queued (attempts left) | failed (none left)
 *   queued | placed | running --cancel--> cancelled
 *   queued | placed | running --an earlier attempt's success--> succeeded
 *   queued | placed | running --replicas agreed (verified)--> succeeded | failed
 *
 * "Taken back" covers a lost site, an expired lease, a refusal and a
 * retryable site-side error. A result is applied only if it answers the
 * job's current attempt on the site that attempt was placed on, while the
 * job is placed or running: anything else is a late or duplicate result,
 * recorded but never applied, with one exception: the first success wins.
 * A successful result of an earlier attempt (its site came back after the
 * job was taken back) that arrives while the job is still unfinished is
 * applied, and the current attempt is then the late one. A job whose result
 * must be verified (core/verify) ends when its replicas agree, whichever
 * attempt is current then: the accepted result may be an earlier attempt's.
 * The hub drives its SQLite rows with this.
 */
#ifndef OUTPOST_JOBSTATE_H
#define OUTPOST_JOBSTATE_H

#include <stdint.h>

enum {
    JOB_QUEUED = 0,
    JOB_PLACED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_STATE_COUNT
};

enum {
    JOB_EV_PLACE = 0,
    JOB_EV_START,
    JOB_EV_RESULT_OK,
    JOB_EV_RESULT_FAIL,
    JOB_EV_TAKEN_BACK,
    JOB_EV_CANCEL,
    JOB_EV_IMPOSSIBLE,
    JOB_EV_EARLIER_OK,
    JOB_EV_VERIFIED_OK,   /* the accepted result of a verified job succeeded */
    JOB_EV_VERIFIED_FAIL, /* ...or failed (its replicas agreed on the failure) */
};

const char *jobstate_name(int state);
/* The state for its name, or -1. */
int jobstate_parse(const char *name);
int jobstate_terminal(int state);

/*
 * The state after event, given the attempt number in use and the job's
 * maximum. OP_OK with *next set, or OP_EINVAL when the event is not
 * allowed in that state (e.g. cancel of a finished job, start of a queued one).
 */
int jobstate_next(int state, int64_t attempt, int64_t max_attempts, int event, int *next);

/*
 * 1 if a result for (result_attempt, from result_site) is to be applied to
 * a job in state at current_attempt on current_site; 0 if it is late,
 * duplicate or from the wrong site.
 */
int jobstate_result_applies(int state, int64_t current_attempt, const char *current_site,
                            int64_t result_attempt, const char *result_site);

/*
 * 1 if a successful result of an earlier attempt is to be applied: the job
 * is not finished yet and result_attempt precedes current_attempt.
 */
int jobstate_earlier_success_wins(int state, int64_t current_attempt, int64_t result_attempt,
                                  int success);

#endif
