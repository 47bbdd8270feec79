/* server_int.h - internal to server/: what its files share (double-underscore
 * names), which only server/ sees (CMakeLists.txt exports server.h alone).
 *
 * http.c is the HTTP front on libmicrohttpd and owns each request's state;
 * head.c checks a request's head on its first call; setup.c works out what
 * the front starts with (address, workers, descriptors); pool.c runs the
 * requests that wait on a registry on threads of its own while their
 * connections are suspended (the park/resume protocol, docs/CONCURRENCY.md).
 *
 * Thread-safety: a struct srv__request belongs to its connection's worker,
 * but for its pool fields, which pool.c reads and writes under the pool's
 * lock; the pool's functions are thread-safe; head.c runs on the worker of
 * the request it is given, setup.c once at start. */
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
    bool has_body; /* a body no route takes: refused */
    /* the body of a route that takes one (api_takes_body): malloc'd, NUL
     * after its body_len bytes; body_too_large past API_BATCH_BODY_MAX */
    char *body;
    size_t body_len;
    bool body_too_large;
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
    struct srv__request *parked; /* srv__pool_abandon's list of requests to resume */
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

/* ---- the HTTP front's start-up settings (setup.c) ---- */

struct sockaddr_storage;

/* Parses --listen: "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4
 * addresses), port 0 for one the kernel chooses. 0, or IM_EINVAL with err. */
int srv__parse_listen(const char *s, struct sockaddr_storage *ss, struct im_error *err);
/* How many libmicrohttpd workers to run: --threads, else one per CPU the
 * process may run on; at most SRV_THREADS_MAX. */
long srv__http_threads(const struct srv_config *cfg);
/* Raises the soft descriptor limit towards what --connection-limit needs, as
 * far as the hard limit allows; logs event=fd_limit when it falls short. */
void srv__raise_fd_limit(const struct srv_config *cfg);

/* ---- the upstream pool (pool.c) ---- */

struct srv__pool;

/* Starts the upstream threads for api: --upstream-threads of them (or the
 * default derived from --max-resolutions), queueing at most --upstream-queue
 * requests. NULL with err when they cannot all be started. */
struct srv__pool *srv__pool_new(struct api *api, const struct srv_config *cfg,
                                struct im_error *err) IM_WUR;

/* What srv__pool_suspend did with a request. */
enum srv__handover {
    SRV__QUEUED,   /* its connection is suspended, its job queued */
    SRV__FULL,     /* --upstream-queue requests wait already: answer 503 busy */
    SRV__STOPPING, /* the daemon stops: answer 503 shutting_down */
    SRV__NOMEM     /* no job: drop the connection */
};

/* Hands the request (req, made on the worker from conn's request rq) to the
 * pool and suspends its connection; on the worker. */
enum srv__handover srv__pool_suspend(struct srv__pool *p, struct MHD_Connection *conn,
                                     struct srv__request *rq,
                                     const struct api_request *req);
/* The connection is back from the pool (on its worker): takes rq's job back.
 * true with the job's api_handle result in *rc and its answer moved to *resp
 * (the caller's to send or free; the job is freed); false when the daemon
 * stopped before the job ended (answer 503 shutting_down). */
bool srv__pool_resumed(struct srv__pool *p, struct srv__request *rq, int *rc,
                       struct api_response *resp);
/* The request ends with its job still queued, running or done (libmicrohttpd
 * closed the connection): a job that ended is freed, another is left to its
 * thread, which frees it. */
void srv__pool_drop(struct srv__pool *p, struct srv__request *rq);
/* Stopping: gives up the jobs that did not end (their connections are resumed
 * and answered 503 shutting_down) and lets the threads return once the queue
 * is empty. */
void srv__pool_abandon(struct srv__pool *p);
/* Waits up to ms milliseconds for the threads to return after
 * srv__pool_abandon: how many have not (0 when all did). */
long srv__pool_wait(struct srv__pool *p, long ms);
/* Joins the threads (stopping them first) and frees the pool. NULL accepted. */
void srv__pool_free(struct srv__pool *p);

/* Waits, looking every 20 ms, until *n is 0 or ms milliseconds have passed:
 * what is left (0 when all ended). The stop waits so for requests in flight
 * and for the upstream threads. */
long srv__wait_for_zero(atomic_long *n, long ms);

#endif
