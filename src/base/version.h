/*
 * version: Outpost's version, one place for every role to say it (the
 * CLI's --version, the HTTP API's /v1/health, the Debian package's name,
 * which the Makefile reads from here).
 */
#ifndef OUTPOST_BASE_VERSION_H
#define OUTPOST_BASE_VERSION_H

#define OUTPOST_VERSION "0.1.0"

#endif
