/* http.c - libmicrohttpd front: one api_handle call per request, headers,
 * and one access-log line when the request completes.
 *
 * The request path: a libmicrohttpd worker (one of a small pool, each holding
 * many connections) asks api_handle for a cache-only answer. Cached answers,
 * 304s and errors found on the spot are sent from there. A request that needs
 * a registry (API_SLOW) is copied into a job for the upstream pool while its
 * connection is suspended, so the worker goes on serving its other
 * connections; when the job is done the connection is resumed and the worker
 * sends the job's answer. */

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "metrics.h"
#include "server_int.h"

struct srv_http {
    struct MHD_Daemon *mhd;
    struct api *api;
    struct srv_watch *watch; /* the watched images' series for /metrics, or NULL */
    struct srv__pool *pool;  /* the upstream threads (pool.c) */
    atomic_ullong next_id;
    atomic_long in_flight; /* requests between their first call and completion */
    atomic_bool stopping;  /* srv_http_stop runs: answers close their connection */
    long drain_ms;         /* how long srv_http_stop waits for them */
    long threads;          /* libmicrohttpd's workers */
};

/* Query arguments as api_request fields, and their total size. */
struct args {
    struct api_request *req;
    size_t bytes;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct args *args = cls;
    struct api_request *req = args->req;
    (void)kind;
    if (!value)
        value = "";
    args->bytes += strlen(key) + strlen(value) + 2;
    const char **once = strcmp(key, "n") == 0      ? &req->n
                        : strcmp(key, "last") == 0 ? &req->last
                        : strcmp(key, "from") == 0 ? &req->from
                        : strcmp(key, "to") == 0   ? &req->to
                                                   : NULL;
    if (once) {
        req->repeated = req->repeated || *once != NULL;
        *once = value;
    } else if (strcmp(key, "format") == 0) {
        req->format = value;
    } else if (strcmp(key, "view") == 0) {
        req->view = value;
    } else if (strcmp(key, "style") == 0) {
        req->style = value;
    } else if (strcmp(key, "ref") == 0) {
        req->ref = value;
    } else if (strcmp(key, "platform") == 0) {
        if (req->n_platforms < API_MAX_PLATFORMS)
            req->platforms[req->n_platforms++] = value;
        else
            req->too_many_platforms = true;
    }
    return MHD_YES;
}

static void free_body(void *p)
{
    free(p);
}

static void release_shared(void *shared)
{
    api_shared_release(shared);
}

/* Copies s for a logfmt quoted value: '"' and '\\' escaped, control bytes as
 * \\xNN, cut to fit n. */
static void log_escape(char *dst, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(dst + o, n - o, "\\x%02x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

static struct MHD_Response *make_response(struct api_response *r, bool closing)
{
    struct MHD_Response *resp;
    if (r->file_body) { /* an answers-file hit: sent from the file (sendfile) */
        resp = MHD_create_response_from_fd_at_offset64(r->len, r->file_fd,
                                                       (int64_t)r->file_off);
        if (resp)
            r->file_body = false;      /* MHD closes the descriptor now */
    } else if (r->body && r->shared) { /* the answer cache's bytes: sent as they are */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            r->len, r->body, release_shared, r->shared);
        if (resp) { /* MHD holds the reference now */
            r->body = NULL;
            r->shared = NULL;
        }
    } else if (r->body) {
        resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->body,
                                                                  free_body);
        if (resp)
            r->body = NULL; /* owned by MHD now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return NULL;
    char num[32];
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->max_age >= 0) {
        snprintf(num, sizeof num, "max-age=%ld", r->max_age);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, num);
    }
    if (r->vary_accept)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
    if (r->content_encoding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                r->content_encoding);
    if (r->retry_after >= 0) {
        snprintf(num, sizeof num, "%ld", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->link[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, r->link);
    if (r->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->csp) {
        MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    for (size_t i = 0; i < r->n_extra_headers && i < API_MAX_EXTRA_HEADERS; i++)
        MHD_add_response_header(resp, r->extra_headers[i].name,
                                r->extra_headers[i].value);
    if (closing)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return resp;
}

/* ---- answers queued again (the warm path) ----
 *
 * A warm answer is the same bytes with the same headers request after
 * request (max-age changes once a second). Building a libmicrohttpd response
 * for each costs about 25 allocations and as many frees (the response, its
 * mutex, three per header) for bytes that do not change; a response can be
 * queued on any number of connections at once, on any thread (it is reference
 * counted, and read-only once queued). So each worker keeps its last
 * REUSE_SLOTS answers from the in-memory cache as responses, and an answer
 * identical to one of them in every byte it would send (the same cache block
 * and length, the same status and header values) is queued as that response.
 * A slot holds its answer's cache block alive (the response's reference) until
 * another answer takes the slot or the worker ends: at most REUSE_SLOTS
 * answers of at most REUSE_MAX_BYTES per worker. */
#define REUSE_SLOTS 4
#define REUSE_MAX_BYTES ((size_t)256 * 1024)

struct reuse_slot {
    struct MHD_Response *resp; /* NULL: empty */
    uint64_t used;             /* the worker's tick when last queued */
    struct api_shared *shared; /* identity of the bytes: the block and where */
    const char *body;
    size_t len;
    int status;
    const char *content_type, *content_encoding, *allow, *csp; /* static */
    long max_age, retry_after;
    bool vary_accept;
    char etag[96];
    size_t n_extra;
    struct api_header extra[API_MAX_EXTRA_HEADERS];
};

struct reuse {
    struct reuse_slot slot[REUSE_SLOTS];
    uint64_t tick;
};

static pthread_key_t reuse_key;
static pthread_once_t reuse_once = PTHREAD_ONCE_INIT;
static bool reuse_ok; /* the key exists */

/* A worker ends: its responses go (each freed once no connection sends it). */
static void reuse_end(void *p)
{
    struct reuse *ru = p;
    for (size_t i = 0; i < REUSE_SLOTS; i++)
        if (ru->slot[i].resp)
            MHD_destroy_response(ru->slot[i].resp);
    free(ru);
}

static void reuse_init(void)
{
    reuse_ok = pthread_key_create(&reuse_key, reuse_end) == 0;
}

/* This worker's slots, made on first use; NULL without memory. */
static struct reuse *reuse_mine(void)
{
    pthread_once(&reuse_once, reuse_init);
    if (!reuse_ok)
        return NULL;
    struct reuse *ru = pthread_getspecific(reuse_key);
    if (!ru) {
        ru = calloc(1, sizeof *ru);
        if (ru && pthread_setspecific(reuse_key, ru) != 0) {
            free(ru);
            ru = NULL;
        }
    }
    return ru;
}

/* Whether r may be sent as a kept response: bytes of the in-memory cache
 * and only headers a slot compares. */
static bool reusable(const struct api_response *r, bool closing)
{
    return !closing && r->shared && r->body && !r->file_body &&
           r->len <= REUSE_MAX_BYTES && !r->location && !r->link[0] &&
           r->n_extra_headers <= API_MAX_EXTRA_HEADERS;
}

static bool same_answer(const struct reuse_slot *s, const struct api_response *r)
{
    if (!s->resp || s->shared != r->shared || s->body != r->body || s->len != r->len ||
        s->status != r->status || s->content_type != r->content_type ||
        s->content_encoding != r->content_encoding || s->allow != r->allow ||
        s->csp != r->csp || s->max_age != r->max_age ||
        s->retry_after != r->retry_after || s->vary_accept != r->vary_accept ||
        strcmp(s->etag, r->etag) != 0 || s->n_extra != r->n_extra_headers)
        return false;
    for (size_t i = 0; i < s->n_extra; i++)
        if (s->extra[i].name != r->extra_headers[i].name ||
            strcmp(s->extra[i].value, r->extra_headers[i].value) != 0)
            return false;
    return true;
}

/* The kept response that sends exactly r, or NULL. */
static struct MHD_Response *reuse_find(struct reuse *ru, const struct api_response *r)
{
    for (size_t i = 0; i < REUSE_SLOTS; i++)
        if (same_answer(&ru->slot[i], r)) {
            ru->slot[i].used = ++ru->tick;
            return ru->slot[i].resp;
        }
    return NULL;
}

/* What a slot compares of r (same_answer), taken before make_response takes
 * r's body; no response yet. */
static void slot_of(const struct api_response *r, struct reuse_slot *s)
{
    s->resp = NULL;
    s->used = 0;
    s->shared = r->shared;
    s->body = r->body;
    s->len = r->len;
    s->status = r->status;
    s->content_type = r->content_type;
    s->content_encoding = r->content_encoding;
    s->allow = r->allow;
    s->csp = r->csp;
    s->max_age = r->max_age;
    s->retry_after = r->retry_after;
    s->vary_accept = r->vary_accept;
    memcpy(s->etag, r->etag, sizeof s->etag);
    s->n_extra = r->n_extra_headers;
    memcpy(s->extra, r->extra_headers, s->n_extra * sizeof s->extra[0]);
}

/* Keeps resp, made for the answer cand describes, in the least recently used
 * slot; the slot's reference is the caller's. */
static void reuse_keep(struct reuse *ru, const struct reuse_slot *cand,
                       struct MHD_Response *resp)
{
    struct reuse_slot *s = &ru->slot[0];
    for (size_t i = 1; i < REUSE_SLOTS; i++)
        if (!ru->slot[i].resp || (s->resp && ru->slot[i].used < s->used))
            s = &ru->slot[i];
    if (s->resp)
        MHD_destroy_response(s->resp);
    *s = *cand;
    s->resp = resp;
    s->used = ++ru->tick;
}

/* libmicrohttpd's first look at a request (MHD_OPTION_URI_LOG_CALLBACK): the
 * request target as the client sent it, before libmicrohttpd splits off the
 * query and percent-decodes path, keys and values in place, cutting each at
 * the first NUL it decodes ("/images/python/3.7-slim%00" would be the image).
 * The target is judged here, while its escapes can still be seen. The
 * request's state starts here: the return value becomes its *req_cls. */
static void *on_target(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct srv__request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->target = uri;
    rq->target_len = strlen(uri);
    rq->target_end = memchr(uri, '?', rq->target_len) ? SRV_PART_QUERY : SRV_PART_PATH;
    rq->fault = srv_check_target(uri, rq->target_len, &rq->fault_part);
    return rq;
}

static bool is_metrics(const struct api_request *req)
{
    return strcmp(req->path, "/metrics") == 0 && req->reject == API_REJECT_NONE &&
           (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0);
}

/* Builds the answer: GET /metrics here (server/ formats metrics), every other
 * request through api_handle. 0, or IM_ENOMEM. */
static int build(struct srv_http *h, const struct api_request *req,
                 struct api_response *r)
{
    if (!is_metrics(req))
        return api_handle(h->api, req, r);
    r->max_age = r->retry_after = -1;
    r->route = "metrics";
    if (srv_metrics_text(h->api, h->watch, &r->body, &r->len) == 0) {
        r->status = 200;
        r->content_type = SRV_METRICS_CONTENT_TYPE;
        return 0;
    }
    return api_error_response(req, r, 500, "out_of_memory", "cannot write the metrics");
}

/* The api_request of the connection's request; strings borrowed from
 * libmicrohttpd for as long as the request lasts. */
static void read_request(struct MHD_Connection *conn, const struct srv__request *rq,
                         const char *url, const char *method, struct api_request *req)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->path = url;
    req->request_id = rq->id;
    req->file_body = true; /* make_response sends those with sendfile */
    req->accept =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req->if_none_match =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    req->accept_encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (api_takes_body(method, url)) { /* only a body's route looks at its type */
        req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE);
        req->body = rq->body;
        req->body_len = rq->body_len;
    }
    req->authorization =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    struct args args = {req, 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    req->reject = rq->reject;
    if (req->reject == API_REJECT_BAD_ENCODING)
        req->reject_reason = srv_fault_text(rq->fault, rq->fault_part);
    if (req->reject == API_REJECT_NONE && args.bytes > MAX_QUERY_BYTES)
        req->reject = API_REJECT_URI_TOO_LONG;
    if (req->reject == API_REJECT_NONE && rq->has_body)
        req->reject = API_REJECT_BODY;
    if (req->reject == API_REJECT_NONE && rq->body_too_large)
        req->reject = API_REJECT_BODY_TOO_LARGE;
}

/* Holds back (on) or lets go (off) the partial segments of conn's socket
 * (TCP_CORK). libmicrohttpd sends a file's headers with one send() and its
 * bytes with sendfile(); uncorked, the headers would leave as a segment of
 * their own, waking the client twice per answer. Corked while the answer is
 * queued, they leave together with its bytes when on_completed lets go.
 * Whether the socket is corked now. */
static bool cork(struct MHD_Connection *conn, bool on)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int v = on;
    return ci && setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0 &&
           on;
}

/* Queues r as the answer to rq; r's body passes to libmicrohttpd. */
static enum MHD_Result deliver(struct srv_http *h, struct MHD_Connection *conn,
                               struct srv__request *rq, struct api_response *r)
{
    rq->status = r->status;
    rq->bytes = strcmp(rq->method, "HEAD") == 0 ? 0 : r->len;
    rq->cache = r->cache;
    rq->route = r->route ? r->route : "other";
    if (r->store_error[0])
        srv_log(SRV_WARN, rq->id, "event=store_write_failed msg=\"%s\"", r->store_error);
    if (r->file_body)
        rq->corked = cork(conn, true);
    bool closing = atomic_load(&h->stopping);
    struct reuse *ru = reusable(r, closing) ? reuse_mine() : NULL;
    struct MHD_Response *resp = ru ? reuse_find(ru, r) : NULL;
    if (resp) { /* the same bytes and headers as a kept response: queued again */
        api_response_free(r);
        return MHD_queue_response(conn, (unsigned)rq->status, resp);
    }
    struct reuse_slot cand;
    if (ru)
        slot_of(r, &cand);
    resp = make_response(r, closing);
    api_response_free(r);
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rq->status, resp);
    if (ru && ret == MHD_YES)
        reuse_keep(ru, &cand, resp); /* the slot keeps our reference */
    else
        MHD_destroy_response(resp);
    return ret;
}

#define SHUTTING_DOWN_MSG "imgmeta is shutting down: retry in 1 s"

/* 503 with Retry-After: 1 (code "busy" or "shutting_down"), from the worker. */
static enum MHD_Result refuse(struct srv_http *h, struct MHD_Connection *conn,
                              struct srv__request *rq, const struct api_request *req,
                              const char *code, const char *message)
{
    struct api_response r;
    memset(&r, 0, sizeof r);
    r.max_age = -1;
    r.retry_after = 1;
    r.route = api_route_label(req->path);
    if (api_error_response(req, &r, 503, code, message) != 0) {
        api_response_free(&r);
        return MHD_NO;
    }
    return deliver(h, conn, rq, &r);
}

/* Queues r, an answer built with the result rc (0, or IM_ENOMEM: then the
 * connection is dropped). */
static enum MHD_Result send_built(struct srv_http *h, struct MHD_Connection *conn,
                                  struct srv__request *rq, int rc, struct api_response *r)
{
    if (rc != 0) {
        api_response_free(r);
        return MHD_NO; /* out of memory: drop the connection */
    }
    return deliver(h, conn, rq, r);
}

/* Hands the request to the upstream pool, which suspends its connection; a
 * full queue (or a daemon stopping) is answered 503 at once instead. */
static enum MHD_Result go_slow(struct srv_http *h, struct MHD_Connection *conn,
                               struct srv__request *rq, const struct api_request *req)
{
    switch (srv__pool_suspend(h->pool, conn, rq, req)) {
    case SRV__QUEUED:
        return MHD_YES;
    case SRV__FULL:
        return refuse(h, conn, rq, req, "busy",
                      "imgmeta has as many requests waiting for a registry as it queues "
                      "(--upstream-queue): retry in 1 s");
    case SRV__STOPPING:
        return refuse(h, conn, rq, req, "shutting_down", SHUTTING_DOWN_MSG);
    default:
        return MHD_NO; /* out of memory: drop the connection */
    }
}

/* The connection is back from the pool: the job's answer, or (the daemon
 * stopped before the job ended) 503 shutting_down. */
static enum MHD_Result resumed(struct srv_http *h, struct MHD_Connection *conn,
                               struct srv__request *rq, const char *url,
                               const char *method)
{
    struct api_response r;
    int rc = 0;
    if (!srv__pool_resumed(h->pool, rq, &rc, &r)) {
        struct api_request req;
        read_request(conn, rq, url, method, &req);
        return refuse(h, conn, rq, &req, "shutting_down", SHUTTING_DOWN_MSG);
    }
    return send_built(h, conn, rq, rc, &r);
}

static enum MHD_Result answer(struct srv_http *h, struct MHD_Connection *conn,
                              struct srv__request *rq, const char *url,
                              const char *method)
{
    struct api_request req;
    struct api_response r;
    read_request(conn, rq, url, method, &req);
    req.cache_only = true; /* upstream work goes to the pool */
    memset(&r, 0, sizeof r);
    int rc = build(h, &req, &r);
    if (rc == API_SLOW) {
        api_response_free(&r);
        return go_slow(h, conn, rq, &req);
    }
    return send_built(h, conn, rq, rc, &r);
}

/* A piece of the request's body: kept for a route that takes one, up to
 * API_BATCH_BODY_MAX bytes (past that, or without memory, the rest is
 * dropped and the request refused 413); any other body is dropped and the
 * request refused (413 body_not_allowed). */
static void take_body(struct srv__request *rq, const char *url, const char *method,
                      const char *data, size_t n)
{
    if (!api_takes_body(method, url)) {
        rq->has_body = true;
        return;
    }
    if (rq->body_too_large)
        return;
    if (n > API_BATCH_BODY_MAX - rq->body_len) {
        rq->body_too_large = true;
        return;
    }
    char *grown = realloc(rq->body, rq->body_len + n + 1);
    if (!grown) {
        rq->body_too_large = true;
        return;
    }
    memcpy(grown + rq->body_len, data, n);
    rq->body = grown;
    rq->body_len += n;
    rq->body[rq->body_len] = '\0';
}

/* The request's id: n in lowercase hex ("%llx", without snprintf: every
 * request makes one). */
static void request_id(char id[static 17], unsigned long long n)
{
    char rev[16];
    size_t k = 0;
    do {
        rev[k++] = "0123456789abcdef"[n & 0xf];
        n >>= 4;
    } while (n);
    for (size_t i = 0; i < k; i++)
        id[i] = rev[k - 1 - i];
    id[k] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct srv_http *h = cls;
    struct srv__request *rq = *req_cls;
    if (!rq)
        return MHD_NO; /* on_target could not allocate it */
    if (!rq->started) {
        rq->started = true;
        request_id(rq->id, atomic_fetch_add(&h->next_id, 1));
        rq->start_ms = im_monotonic_ms();
        rq->route = api_route_label(url);
        im_strlcpy(rq->method, method, sizeof rq->method);
        log_escape(rq->path, sizeof rq->path, url);
        rq->reject = srv__check_limits(conn, rq, url, method, version);
        atomic_fetch_add(&h->in_flight, 1);
        return MHD_YES;
    }
    if (*upload_data_size) {
        take_body(rq, url, method, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->suspended)
        return resumed(h, conn, rq, url, method);
    return answer(h, conn, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_http *h = cls;
    struct srv__request *rq = *req_cls;
    if (!rq)
        return;
    if (!rq->started) { /* libmicrohttpd answered it itself, before the handler */
        free(rq);
        *req_cls = NULL;
        return;
    }
    if (rq->corked) /* every byte of the answer is queued: let it go */
        rq->corked = cork(conn, false);
    if (rq->suspended)
        srv__pool_drop(h->pool, rq);
    int64_t dur_ms = im_monotonic_ms() - rq->start_ms;
    if (rq->status > 0)
        im_metric_request(rq->route, rq->status, (double)dur_ms / 1000.0);
    srv_log(
        SRV_INFO, rq->id,
        "event=access method=%s path=\"%s\" status=%d bytes=%zu dur_ms=%lld cache=%s%s",
        rq->method, rq->path, rq->status, rq->bytes, (long long)dur_ms,
        im_outcome_words(rq->cache)->word,
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
    free(rq->body);
    free(rq);
    *req_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
}

long srv_http_threads(const struct srv_http *h)
{
    return h ? h->threads : 0;
}

unsigned srv_http_port(const struct srv_http *h)
{
    const union MHD_DaemonInfo *info =
        h ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info ? info->port : 0;
}

struct srv_http *srv_http_start(const struct srv_config *cfg, struct api *api,
                                struct srv_watch *watch, struct im_error *err)
{
    struct sockaddr_storage ss;
    if (srv__parse_listen(cfg->listen, &ss, err) != 0)
        return NULL;
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        im_seterr(err, IM_ENOMEM, "out of memory");
        return NULL;
    }
    srv__raise_fd_limit(cfg);
    h->api = api;
    h->watch = watch;
    h->drain_ms = cfg->shutdown_timeout * 1000L;
    h->threads = srv__http_threads(cfg);
    h->pool = srv__pool_new(api, cfg, err);
    if (!h->pool) {
        free(h);
        return NULL;
    }
    /* ITC: MHD_quiesce_daemon needs it to stop accepting while requests
     * finish, and MHD_resume_connection to wake the connection's worker. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)h->threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, 30U,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, MHD_MEMORY_LIMIT, MHD_OPTION_URI_LOG_CALLBACK,
        on_target, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->mhd) {
        srv__pool_free(h->pool);
        free(h);
        im_seterr(err, IM_EINVAL, "cannot listen on %s (address in use or not available)",
                  cfg->listen);
        return NULL;
    }
    return h;
}

bool srv_http_stop(struct srv_http *h)
{
    if (!h)
        return true;
    atomic_store(&h->stopping, true);
    MHD_socket fd = MHD_quiesce_daemon(h->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd); /* no new connections from here on */
    long left = atomic_load(&h->in_flight);
    if (left > 0)
        srv_log(SRV_INFO, NULL, "event=draining in_flight=%ld wait_ms=%ld", left,
                h->drain_ms);
    left = srv__wait_for_zero(&h->in_flight, h->drain_ms);
    if (left > 0)
        srv_log(SRV_WARN, NULL, "event=drain_timeout in_flight=%ld", left);
    srv__pool_abandon(h->pool);
    /* a thread still in a job's upstream work ends when that work does
     * (bounded by the upstream timeouts): it is given SRV_STOP_GRACE_MS, and
     * then left to the process's exit */
    long jobs = srv__pool_wait(h->pool, SRV_STOP_GRACE_MS);
    if (jobs > 0) {
        srv_log(SRV_WARN, NULL, "event=stop_forced upstream_jobs=%ld wait_ms=%d", jobs,
                SRV_STOP_GRACE_MS);
        MHD_stop_daemon(h->mhd); /* every connection was answered or resumed */
        return false;
    }
    srv__pool_free(h->pool);
    MHD_stop_daemon(h->mhd);
    free(h);
    return true;
}
