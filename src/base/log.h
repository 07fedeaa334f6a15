/*
 * log: one line per event on stderr: "<UTC time> <LEVEL> <component>: text".
 * The level threshold comes from log_set_level() (default INFO).
 */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO = 1, LOG_LEVEL_WARN = 2, LOG_LEVEL_ERROR = 3 };

void log_set_level(int level);
/* Parses "debug|info|warn|error"; returns the level or -1. */
int log_parse_level(const char *name);
void log_msg(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_LEVEL_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_LEVEL_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_LEVEL_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_LEVEL_ERROR, c, __VA_ARGS__)

#endif
