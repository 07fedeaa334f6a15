#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_threshold = LOG_LEVEL_INFO;
static int journal_mode = -1; /* -1: not yet looked at; 0: own timestamps; 1: journald */

/*
 * systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connects
 * to stdout and stderr; comparing it with stderr's own tells whether our
 * lines really go to the journal (a child that redirected stderr to a file
 * inherits the variable but not the stream).
 */
int log_journal_detect(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev = 0, ino = 0;
    char tail;
    journal_mode = 0;
    if (stream && sscanf(stream, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
        fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        journal_mode = 1;
    return journal_mode;
}

void log_set_journal(int on)
{
    journal_mode = on ? 1 : 0;
}

void log_set_level(int level)
{
    log_threshold = level;
}

int log_parse_level(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void log_msg(int level, const char *component, const char *fmt, ...)
{
    static const char *labels[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    static const int priorities[] = {7, 6, 4, 3}; /* syslog's debug, info, warning, err */
    if (level < log_threshold) return;
    if (journal_mode < 0) log_journal_detect();
    char line[2048];
    int n;
    if (journal_mode) {
        /* sd-daemon(3): "<N>" sets the entry's priority; the journal stamps the time */
        n = snprintf(line, sizeof line, "<%d>%s %s: ", priorities[level & 3], labels[level & 3],
                     component);
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), labels[level & 3], component);
    }
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so that lines from concurrent processes do not interleave. */
    size_t len = strnlen(line, sizeof line - 2);
    line[len] = '\n';
    fwrite(line, 1, len + 1, stderr);
}
