/* listen.h - the test tools' listening socket: bound before the server starts,
 * so that --listen 127.0.0.1:0 gets a port from the kernel and the tool can say
 * which one (the integration harness reads it back: tests/integration/lib.sh).
 * Not thread-safe: call it from main before any thread starts. */
#ifndef IMGMETA_TOOLS_LISTEN_H
#define IMGMETA_TOOLS_LISTEN_H

#include <stddef.h>

/* Binds and listens on hostport ("127.0.0.1:PORT", IPv4; PORT 0 lets the
 * kernel choose), then writes "NAME: listening on HOST:PORT" with the port
 * bound to stderr and the same HOST:PORT into bound (size n; it may be
 * hostport itself). Returns the
 * listening socket, which the caller owns (libmicrohttpd's
 * MHD_OPTION_LISTEN_SOCKET), or -1 with a message on stderr. */
int tool_listen(const char *name, const char *hostport, char *bound, size_t n);

#endif
