/*
 * capture: what a piece of code writes to one of this process's file
 * descriptors (standard output or error), for tests of a command's output.
 * Between capture_start and capture_end the descriptor goes to a temporary
 * file, so the test asserts only after capture_end (cmocka prints too).
 */
#ifndef OUTPOST_TEST_CAPTURE_H
#define OUTPOST_TEST_CAPTURE_H

#include <stdio.h>

typedef struct capture {
    int fd;    /* the descriptor captured: 1 or 2 */
    int saved; /* its original, restored by capture_end */
    FILE *tmp;
} capture;

/* Redirects fd (1 or 2) to a temporary file. 0, or -1 (nothing redirected). */
int capture_start(capture *c, int fd);
/* Restores fd and returns everything written meanwhile (malloc'd, NUL-terminated; the caller
 * frees it), or NULL when it cannot be read back. */
char *capture_end(capture *c);

#endif
