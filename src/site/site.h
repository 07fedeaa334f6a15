/*
 * site: the site agent role (`outpost site`). Enrolls with a hub through a
 * one-time token (pinning the hub's key), heart-beats its capacity and
 * power budget, admits offered jobs against its own limits, runs them in
 * the sandbox, and keeps every result in a durable outbox (SQLite) until
 * the hub acknowledges it, across restarts.
 *
 * State in <data-dir>: identity/ (the site's key), site.db (hub pin,
 * accepted jobs, outbox), work/ (one directory per running attempt),
 * local.sock (the local socket, io/localsock.h). The role's files and what
 * each holds are listed in site_int.h.
 */
#ifndef OUTPOST_SITE_H
#define OUTPOST_SITE_H

/* Entry point of `outpost site ARGS`; returns a process exit code (runctl.h). */
int site_main(int argc, char **argv);

#endif
