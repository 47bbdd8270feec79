/* server_int.h - internal to server/: what its files share (double-underscore
 * names), which only server/ sees (CMakeLists.txt exports server.h alone).
 *
 * http.c is the HTTP front on libmicrohttpd and owns each request's state;
 * head.c checks a request's head on its first call.
 *
 * Thread-safety: a struct srv__request belongs to its connection's worker,
 * but for its upstream pool fields, which are read and written under the
 * pool's lock; head.c runs on the worker of the request it is given. */
#ifndef SERVER_INT_H
#define SERVER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "server.h"

struct MHD_Connection;

/* The service's own limits on request parts; beyond them it answers JSON
 * 414 / 431. Beyond the connection memory (MHD_MEMORY_LIMIT) libmicrohttpd
 * answers itself, with its own HTML page, before the service sees anything.
 * libmicrohttpd zeroes all of that memory for every request on a connection,
 * so it is no larger than the largest request within the limits needs: 32 KiB
 * holds them all (a request over them, up to ~30 KB, still gets the JSON);
 * 64 KiB cost ~4% more CPU per warm answer in zeroing alone. */
#define MAX_PATH_BYTES 2048
#define MAX_QUERY_BYTES 8192
#define MAX_HEADER_BYTES 16384
#define MHD_MEMORY_LIMIT ((size_t)32 * 1024)

struct srv__job;

/* Per-request state, hung off the connection context (*req_cls): made by
 * http.c:on_target, freed by http.c:on_completed. */
struct srv__request {
    bool started; /* the access handler has seen the request */
    /* What on_target saw: the request target as the client sent it (in
     * libmicrohttpd's buffer, where it is split and decoded in place
     * afterwards), its length up to the first NUL, the part that length ends
     * in, and the first fault in it. */
    const char *target;
    size_t target_len;
    enum srv_part target_end;
    enum srv_fault fault;
    enum srv_part fault_part;
    char id[24];
    int64_t start_ms;
    bool has_body;
    bool corked; /* TCP_CORK set for a file's answer, until on_completed */
    enum api_reject reject;
    int status;
    size_t bytes;
    enum im_outcome cache;
    const char *route; /* static metrics label */
    /* The upstream pool: set on the worker while the request is suspended,
     * read and cleared under pool.lock after it is resumed. */
    bool suspended;
    struct srv__job *job;        /* the job, NULL when the stop abandoned it */
    struct srv__request *parked; /* srv_http_stop's list of requests to resume */
    struct MHD_Connection *conn;
    char method[16];
    char path[512];
};

/* ---- the request's head, checked on its first call (head.c) ---- */

/* The service's limits and the rules on a request's bytes, checked on the
 * request's first call; a fault is left in rq for the message. */
enum api_reject srv__check_limits(struct MHD_Connection *conn, struct srv__request *rq,
                                  const char *url, const char *method,
                                  const char *version);

#endif
