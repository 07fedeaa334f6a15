#include "io/sdnotify.h"

#include "base/err.h"
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SDNOTIFY_MAX_BYTES 4096

static struct {
    struct sockaddr_un addr;
    socklen_t addr_len; /* 0: no manager listens */
    int fd;
    int64_t watchdog_ms;
    int64_t last_watchdog_ms;
} notify = {.fd = -1};

/* NOTIFY_SOCKET into notify.addr. 1 when set, 0 when unset, OP_EINVAL when malformed. */
static int parse_socket(const char *name)
{
    if (!name || !*name) return 0;
    size_t len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof notify.addr.sun_path) return OP_EINVAL;
    memset(&notify.addr, 0, sizeof notify.addr);
    notify.addr.sun_family = AF_UNIX;
    memcpy(notify.addr.sun_path, name, len);
    /* An abstract name starts with a NUL and has no terminator: its length says where it ends. */
    if (name[0] == '@') notify.addr.sun_path[0] = '\0';
    notify.addr_len =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/' ? 1 : 0));
    return 1;
}

/* WATCHDOG_USEC, when it is meant for this process (WATCHDOG_PID unset or ours). */
static void parse_watchdog(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    int64_t value = 0, for_pid = 0;
    notify.watchdog_ms = 0;
    if (!usec || util_parse_i64(usec, 1, INT64_MAX, &value) != OP_OK) return;
    if (pid && (util_parse_i64(pid, 1, INT64_MAX, &for_pid) != OP_OK || for_pid != getpid()))
        return;
    notify.watchdog_ms = value / 1000 > 0 ? value / 1000 : 1;
}

int sdnotify_init(void)
{
    sdnotify_reset();
    int rc = parse_socket(getenv("NOTIFY_SOCKET"));
    if (rc != 1) notify.addr_len = 0;
    if (rc == 1) parse_watchdog();
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return rc;
}

int sdnotify_send(const char *text)
{
    if (notify.addr_len == 0) return OP_OK;
    size_t len = strlen(text);
    if (len > SDNOTIFY_MAX_BYTES) return OP_ETOOBIG;
    if (notify.fd < 0) notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify.fd < 0) return OP_ESYS;
    ssize_t sent;
    do
        sent = sendto(notify.fd, text, len, MSG_NOSIGNAL, (const struct sockaddr *)&notify.addr,
                      notify.addr_len);
    while (sent < 0 && errno == EINTR);
    return sent == (ssize_t)len ? OP_OK : OP_ESYS;
}

int sdnotify_sendf(const char *fmt, ...)
{
    char text[SDNOTIFY_MAX_BYTES + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text) return OP_ETOOBIG;
    return sdnotify_send(text);
}

int64_t sdnotify_watchdog_ms(void)
{
    return notify.watchdog_ms;
}

void sdnotify_watchdog_tick(int64_t now_ms)
{
    if (notify.watchdog_ms <= 0 || now_ms - notify.last_watchdog_ms < notify.watchdog_ms / 2)
        return;
    notify.last_watchdog_ms = now_ms;
    sdnotify_send("WATCHDOG=1");
}

void sdnotify_reset(void)
{
    if (notify.fd >= 0) close(notify.fd);
    memset(&notify, 0, sizeof notify);
    notify.fd = -1;
}
