/* listen.c - the test tools' listening socket (listen.h). */
#define _GNU_SOURCE /* strerror_r returning the text */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    char host[64], *end;

    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int tool_listen(const char *name, const char *hostport, char *bound, size_t n)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    char host[INET_ADDRSTRLEN];
    char why[128];
    int one = 1, fd = -1;

    if (parse_hostport(hostport, &sa) != 0) {
        fprintf(stderr, "%s: bad --listen %s (want IPV4:PORT)\n", name, hostport);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* a test may restart a tool on the port it had before */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
        inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host) == NULL) {
        fprintf(stderr, "%s: cannot listen on %s: %s\n", name, hostport,
                strerror_r(errno, why, sizeof why));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int w = snprintf(bound, n, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    if (w < 0 || (size_t)w >= n) {
        close(fd);
        return -1;
    }
    fprintf(stderr, "%s: listening on %s\n", name, bound);
    fflush(stderr);
    return fd;
}
