/*
 * hub: the hub role (`outpost hub`). Owns the fleet registry, the job
 * store, placement (through sched), enrollment and the operator API, all
 * over the bus. One thread, one loop: messages received in an iteration
 * are handled inside one SQLite transaction, committed (synchronous=FULL),
 * and only then are offers, acknowledgements and replies published, so
 * nothing is promised to anyone before it is durable (group commit).
 *
 * State in <data-dir>: hub.db (sites, tokens, jobs, results, job events),
 * identity/ (the hub's key), operators (authorized operator public keys),
 * admin/ (a local operator identity created at first start), cli.conf
 * (what a CLI needs to reach this hub).
 *
 * The role's files, one per concern, are listed in hub_int.h.
 */
#ifndef OUTPOST_HUB_H
#define OUTPOST_HUB_H

#include <stddef.h>
#include <stdint.h>

/* Entry point of `outpost hub ARGS`; returns a process exit code (runctl.h). */
int hub_main(int argc, char **argv);

/* Fuzzing only (fuzz/fuzz_hub.c): one message body into the hub's handlers. Returns 0. */
int hub__fuzz_one(const uint8_t *data, size_t len);

#endif
