#include "helpers/capture.h"

#include <stdlib.h>
#include <unistd.h>

int capture_start(capture *c, int fd)
{
    fflush(stdout);
    fflush(stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    c->saved = c->tmp ? dup(fd) : -1;
    if (c->saved < 0 || dup2(fileno(c->tmp), fd) < 0) {
        if (c->saved >= 0) close(c->saved);
        if (c->tmp) fclose(c->tmp);
        c->tmp = NULL;
        return -1;
    }
    return 0;
}

char *capture_end(capture *c)
{
    fflush(stdout);
    fflush(stderr);
    if (!c->tmp) return NULL;
    dup2(c->saved, c->fd);
    close(c->saved);
    /* The writes went through the descriptor, not c->tmp's buffer: read them the same way. */
    int tmp_fd = fileno(c->tmp);
    off_t len = lseek(tmp_fd, 0, SEEK_END);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (text && pread(tmp_fd, text, (size_t)len, 0) != (ssize_t)len) {
        free(text);
        text = NULL;
    }
    if (text) text[len] = '\0';
    fclose(c->tmp);
    c->tmp = NULL;
    return text;
}
