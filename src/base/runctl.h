/*
 * runctl: process-wide stop flag for the daemons (SIGTERM, SIGINT) and the
 * exit codes every role uses.
 */
#ifndef OUTPOST_RUNCTL_H
#define OUTPOST_RUNCTL_H

enum {
    EXIT_OK = 0,
    EXIT_FAILURE_RUNTIME = 1, /* a runtime failure (store, bus) after start */
    EXIT_USAGE = 2,           /* bad command line or configuration */
    EXIT_REFUSED = 3,         /* the hub refused this site's enrollment */
    EXIT_NOT_FOUND = 4,       /* CLI: no such job/site */
    EXIT_UNREACHABLE = 5,     /* CLI: hub did not answer */
    EXIT_REJECTED = 6,        /* CLI: the hub rejected the request (bad spec, queue full) */
    EXIT_AUDIT_FAILED = 7,    /* CLI: the audit log or a proof did not verify */
};

/* Installs SIGTERM/SIGINT handlers that set the stop flag; ignores SIGPIPE. */
void runctl_install(void);
int runctl_stopping(void);

#endif
