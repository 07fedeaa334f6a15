/*
 * sdnotify: the service manager's notification protocol (systemd's
 * sd_notify(3), Type=notify units). It owns the process-wide notification
 * socket and the watchdog interval, both taken from the environment once.
 *
 * The protocol: one datagram of "KEY=value" lines (READY=1, STATUS=...,
 * STOPPING=1, WATCHDOG=1) sent to the AF_UNIX socket named by NOTIFY_SOCKET,
 * a path or, with a leading '@', a name in the abstract namespace. The
 * manager learns the sender's pid from the socket's credentials.
 *
 * Why our own twenty lines and not libsystemd's sd_notify(): the protocol is
 * a documented, stable interface that systemd invites daemons to speak
 * themselves; linking libsystemd would put it (and its compression and
 * crypto libraries) into every outpost process, CLI included, for one
 * sendto(). Without NOTIFY_SOCKET every call is a no-op, so the daemons run
 * the same under any other supervisor or none.
 *
 * sdnotify_init() removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
 * from the environment, so jobs a site starts never inherit the channel
 * to the service manager.
 */
#ifndef OUTPOST_SDNOTIFY_H
#define OUTPOST_SDNOTIFY_H

#include <stdint.h>

/*
 * Reads NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC, honoured
 * only when WATCHDOG_PID is unset or this process's pid) and clears them
 * from the environment. Call once at a daemon's start, before any thread
 * or child. Returns 1 when a manager listens, 0 when none does, and
 * OP_EINVAL for a NOTIFY_SOCKET that is not an absolute path or '@' name
 * (or too long): notifications then stay off.
 */
int sdnotify_init(void);

/*
 * Sends text ("READY=1\nSTATUS=...") as one datagram. OP_OK, also when no
 * manager listens; OP_ESYS when the socket cannot be made or the send
 * fails (errno kept); OP_ETOOBIG for text over 4 KiB.
 */
int sdnotify_send(const char *text);

/* sdnotify_send with printf formatting (bounded to 4 KiB). */
int sdnotify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the manager asked for, in ms; 0 when none. */
int64_t sdnotify_watchdog_ms(void);

/*
 * Sends WATCHDOG=1 when half the watchdog interval has passed since the
 * last one (now_ms: a monotonic clock). A loop calls it every iteration;
 * it costs a comparison when nothing is due or no watchdog is set.
 */
void sdnotify_watchdog_tick(int64_t now_ms);

/* Closes the socket and forgets the settings (tests; a daemon need not). */
void sdnotify_reset(void);

#endif
