/*
 * pgkit: a real PostgreSQL 15 server for the unit tests (Debian's
 * /usr/lib/postgresql/15/bin): initdb into a fresh temporary directory,
 * the server on a free loopback port with its socket in that directory,
 * trust authentication for the role `outpost`, fsync off (the tests kill
 * clients, never the server). Run as nobody when the tests run as root
 * (the server refuses root). A test calls pgkit_require() first: it skips
 * with a message naming what is missing.
 */
#ifndef OUTPOST_PGKIT_H
#define OUTPOST_PGKIT_H

#include <limits.h>
#include <sys/types.h>

typedef struct pgkit {
    pid_t pid;
    int port;
    char dir[PATH_MAX];
    char url[256]; /* postgresql://outpost@127.0.0.1:<port>/postgres */
} pgkit;

/* Skips the running test (cmocka) unless the server's binaries are installed. */
void pgkit_require(void);
/* Starts a server and waits until it accepts connections. 0, or -1 (why on stderr). */
int pgkit_start(pgkit *pg);
/* A fresh database named name: its URL into url. 0 or -1. */
int pgkit_database(pgkit *pg, const char *name, char *url, size_t size);
/* Stops the server (SIGINT, then SIGKILL after 10 s) and removes its directory. */
void pgkit_stop(pgkit *pg);

#endif
