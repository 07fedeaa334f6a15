#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/pgkit.h"
#include "helpers/testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGKIT_BIN "/usr/lib/postgresql/15/bin"

void pgkit_require(void)
{
    if (access(PGKIT_BIN "/initdb", X_OK) != 0 || access(PGKIT_BIN "/postgres", X_OK) != 0) {
        fprintf(stderr,
                "skipped: PostgreSQL 15 binaries missing in %s (apt-get install "
                "postgresql)\n",
                PGKIT_BIN);
        skip();
    }
}

/* In the child: nobody when root (the server refuses root), output to log, then argv. */
static void run_child(const char *dir, const char *log_path, char *const argv[])
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    setsid();
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    }
    if (chdir(dir) != 0) _exit(126);
    execv(argv[0], argv);
    _exit(127);
}

static pid_t spawn(const char *dir, const char *log_path, char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) run_child(dir, log_path, argv);
    return pid;
}

static int accepts(const pgkit *pg)
{
    PGconn *c = PQconnectdb(pg->url);
    int ok = PQstatus(c) == CONNECTION_OK;
    PQfinish(c);
    return ok;
}

int pgkit_start(pgkit *pg)
{
    memset(pg, 0, sizeof *pg);
    char data[PATH_MAX + 8], log_path[PATH_MAX + 16], port[16];
    if (testkit_mkdtemp(pg->dir, sizeof pg->dir) != 0) return -1;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw || chmod(pg->dir, 0755) != 0 || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(log_path, sizeof log_path, "%s/postgres.log", pg->dir);
    pg->port = testkit_free_port();
    snprintf(port, sizeof port, "%d", pg->port);
    snprintf(pg->url, sizeof pg->url, "postgresql://outpost@127.0.0.1:%d/postgres", pg->port);
    char *initdb[] = {PGKIT_BIN "/initdb", "-D",           data, "-U",
                      "outpost",           "--auth=trust", "-E", "UTF8",
                      "--locale=C",        "--no-sync",    NULL};
    pid_t pid = spawn(pg->dir, log_path, initdb);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pgkit: initdb failed (see %s)\n", log_path);
        return -1;
    }
    char *postgres[] = {PGKIT_BIN "/postgres",
                        "-D",
                        data,
                        "-p",
                        port,
                        "-k",
                        pg->dir,
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        NULL};
    if ((pg->pid = spawn(pg->dir, log_path, postgres)) < 0) return -1;
    for (int i = 0; i < 300; i++) {
        if (accepts(pg)) return 0;
        if (waitpid(pg->pid, NULL, WNOHANG) == pg->pid) break;
        testkit_sleep_ms(100);
    }
    fprintf(stderr, "pgkit: the server did not start (see %s)\n", log_path);
    pgkit_stop(pg);
    return -1;
}

int pgkit_database(pgkit *pg, const char *name, char *url, size_t size)
{
    PGconn *c = PQconnectdb(pg->url);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "pgkit: %s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(url, size, "postgresql://outpost@127.0.0.1:%d/%s", pg->port, name);
    return ok ? 0 : -1;
}

void pgkit_stop(pgkit *pg)
{
    if (pg->pid > 0) {
        kill(pg->pid, SIGINT);
        int i = 0;
        while (waitpid(pg->pid, NULL, WNOHANG) == 0 && i++ < 100)
            testkit_sleep_ms(100);
        if (i > 100) {
            kill(pg->pid, SIGKILL);
            waitpid(pg->pid, NULL, 0);
        }
        pg->pid = 0;
    }
    if (pg->dir[0]) testkit_rmtree(pg->dir);
    pg->dir[0] = '\0';
}
