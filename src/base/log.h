/*
 * log: one line per event on stderr: "<UTC time> <LEVEL> <component>: text".
 * The level threshold comes from log_set_level() (default INFO).
 *
 * Under systemd, when stderr is the journal stream (JOURNAL_STREAM names
 * it), lines are "<N><LEVEL> <component>: text" instead: N is the syslog
 * priority (7 debug, 6 info, 4 warning, 3 error) that journald reads off the
 * line (sd-daemon(3)), and there is no timestamp of our own, since the
 * journal keeps one. A stderr redirected to a file keeps the timestamps.
 */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO = 1, LOG_LEVEL_WARN = 2, LOG_LEVEL_ERROR = 3 };

void log_set_level(int level);
/* Parses "debug|info|warn|error"; returns the level or -1. */
int log_parse_level(const char *name);
/*
 * Looks at JOURNAL_STREAM and stderr again and picks the line format:
 * returns 1 for journald's, 0 for our own. log_msg calls it before its
 * first line; call it again after redirecting stderr.
 */
int log_journal_detect(void);
/* Forces the format (1 journald's, 0 our own), whatever the environment. */
void log_set_journal(int on);
void log_msg(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_LEVEL_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_LEVEL_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_LEVEL_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_LEVEL_ERROR, c, __VA_ARGS__)

#endif
