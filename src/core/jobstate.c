#include "core/jobstate.h"

#include "base/err.h"

#include <string.h>

static const char *names[JOB_STATE_COUNT] = {"queued",    "placed", "running",
                                             "succeeded", "failed", "cancelled"};

const char *jobstate_name(int state)
{
    return state >= 0 && state < JOB_STATE_COUNT ? names[state] : "?";
}

int jobstate_parse(const char *name)
{
    for (int i = 0; name && i < JOB_STATE_COUNT; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

int jobstate_terminal(int state)
{
    return state == JOB_SUCCEEDED || state == JOB_FAILED || state == JOB_CANCELLED;
}

static int active(int state)
{
    return state == JOB_PLACED || state == JOB_RUNNING;
}

int jobstate_next(int state, int64_t attempt, int64_t max_attempts, int event, int *next)
{
    if (state < 0 || state >= JOB_STATE_COUNT) return OP_EINVAL;
    switch (event) {
    case JOB_EV_PLACE:
        if (state != JOB_QUEUED || attempt >= max_attempts) return OP_EINVAL;
        *next = JOB_PLACED;
        return OP_OK;
    case JOB_EV_START:
        if (state != JOB_PLACED) return OP_EINVAL;
        *next = JOB_RUNNING;
        return OP_OK;
    case JOB_EV_RESULT_OK:
    case JOB_EV_RESULT_FAIL:
        if (!active(state)) return OP_EINVAL;
        *next = event == JOB_EV_RESULT_OK ? JOB_SUCCEEDED : JOB_FAILED;
        return OP_OK;
    case JOB_EV_TAKEN_BACK:
        if (!active(state)) return OP_EINVAL;
        *next = attempt >= max_attempts ? JOB_FAILED : JOB_QUEUED;
        return OP_OK;
    case JOB_EV_CANCEL:
        if (jobstate_terminal(state)) return OP_EINVAL;
        *next = JOB_CANCELLED;
        return OP_OK;
    case JOB_EV_IMPOSSIBLE:
        if (state != JOB_QUEUED) return OP_EINVAL;
        *next = JOB_FAILED;
        return OP_OK;
    case JOB_EV_EARLIER_OK:
        if (jobstate_terminal(state)) return OP_EINVAL;
        *next = JOB_SUCCEEDED;
        return OP_OK;
    case JOB_EV_VERIFIED_OK:
    case JOB_EV_VERIFIED_FAIL:
        if (jobstate_terminal(state)) return OP_EINVAL;
        *next = event == JOB_EV_VERIFIED_OK ? JOB_SUCCEEDED : JOB_FAILED;
        return OP_OK;
    }
    return OP_EINVAL;
}

int jobstate_result_applies(int state, int64_t current_attempt, const char *current_site,
                            int64_t result_attempt, const char *result_site)
{
    return active(state) && current_attempt == result_attempt && current_site && result_site &&
           strcmp(current_site, result_site) == 0;
}

int jobstate_earlier_success_wins(int state, int64_t current_attempt, int64_t result_attempt,
                                  int success)
{
    return success && state >= 0 && !jobstate_terminal(state) && result_attempt >= 1 &&
           result_attempt < current_attempt;
}
