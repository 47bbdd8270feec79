/* http.c - libmicrohttpd front: one api_handle call per request, headers,
 * and one access-log line when the request completes. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "metrics.h"
#include "server.h"

/* The service's own limits on request parts; beyond them it answers JSON
 * 414 / 431. Beyond the connection memory (MHD_MEMORY_LIMIT) libmicrohttpd
 * answers itself, with its own HTML page, before the service sees anything. */
#define MAX_PATH_BYTES 2048
#define MAX_QUERY_BYTES 8192
#define MAX_HEADER_BYTES 16384
#define MHD_MEMORY_LIMIT ((size_t)64 * 1024)

struct srv_http {
    struct MHD_Daemon *mhd;
    struct api *api;
    atomic_ullong next_id;
    atomic_long in_flight; /* requests between their first call and completion */
    atomic_bool stopping;  /* srv_http_stop runs: answers close their connection */
    long drain_ms;         /* how long srv_http_stop waits for them */
};

/* Per-request state, hung off the connection context (*req_cls). */
struct request {
    char id[24];
    int64_t start_ms;
    bool has_body;
    enum api_reject reject;
    int status;
    size_t bytes;
    enum api_cache_outcome cache;
    const char *route; /* static metrics label */
    char method[16];
    char path[512];
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
    if (strcmp(key, "n") == 0) {
        req->n = value;
    } else if (strcmp(key, "last") == 0) {
        req->last = value;
    } else if (strcmp(key, "format") == 0) {
        req->format = value;
    } else if (strcmp(key, "view") == 0) {
        req->view = value;
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
    if (r->body) {
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
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept");
    if (r->retry_after >= 0) {
        snprintf(num, sizeof num, "%ld", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->link[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, r->link);
    for (size_t i = 0; i < r->n_extra_headers && i < API_MAX_EXTRA_HEADERS; i++)
        MHD_add_response_header(resp, r->extra_headers[i].name,
                                r->extra_headers[i].value);
    if (closing)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return resp;
}

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    size_t *total = cls;
    (void)kind;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    size_t *n = cls;
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        (*n)++;
    return MHD_YES;
}

/* RFC 9112, section 3.2: a server answers 400 to an HTTP/1.1 request without
 * a Host header, and to any request with more than one. libmicrohttpd
 * enforces the first only in its strict mode, with its own HTML answer; here
 * the client gets the service's JSON error like for every other refusal. */
static bool host_ok(struct MHD_Connection *conn, const char *version)
{
    size_t hosts = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_host, &hosts);
    if (hosts > 1)
        return false;
    return hosts == 1 || strcmp(version, MHD_HTTP_VERSION_1_1) != 0;
}

/* The service's limits, checked on the request's first call. */
static enum api_reject check_limits(struct MHD_Connection *conn, const char *url,
                                    const char *version)
{
    size_t headers = 0;
    if (strlen(url) > MAX_PATH_BYTES)
        return API_REJECT_URI_TOO_LONG;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, sum_header, &headers);
    if (headers > MAX_HEADER_BYTES)
        return API_REJECT_HEADERS_TOO_LARGE;
    if (!host_ok(conn, version))
        return API_REJECT_BAD_HOST;
    return API_REJECT_NONE;
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
    if (srv_metrics_text(h->api, &r->body, &r->len) == 0) {
        r->status = 200;
        r->content_type = SRV_METRICS_CONTENT_TYPE;
        return 0;
    }
    return api_error_response(req, r, 500, "out_of_memory", "cannot write the metrics");
}

static enum MHD_Result answer(struct srv_http *h, struct MHD_Connection *conn,
                              struct request *rq, const char *url, const char *method)
{
    struct api_request req;
    struct api_response r;
    memset(&req, 0, sizeof req);
    memset(&r, 0, sizeof r);
    req.method = method;
    req.path = url;
    req.request_id = rq->id;
    req.accept =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req.if_none_match =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    req.authorization =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    struct args args = {&req, 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    req.reject = rq->reject;
    if (req.reject == API_REJECT_NONE && args.bytes > MAX_QUERY_BYTES)
        req.reject = API_REJECT_URI_TOO_LONG;
    if (req.reject == API_REJECT_NONE && rq->has_body)
        req.reject = API_REJECT_BODY;

    if (build(h, &req, &r) != 0) {
        api_response_free(&r);
        return MHD_NO; /* out of memory: drop the connection */
    }
    rq->status = r.status;
    rq->bytes = strcmp(method, "HEAD") == 0 ? 0 : r.len;
    rq->cache = r.cache;
    rq->route = r.route ? r.route : "other";
    if (r.store_error[0])
        srv_log(SRV_WARN, rq->id, "event=store_write_failed msg=\"%s\"", r.store_error);
    struct MHD_Response *resp = make_response(&r, atomic_load(&h->stopping));
    api_response_free(&r);
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rq->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct srv_http *h = cls;
    struct request *rq = *req_cls;
    (void)upload_data;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        snprintf(rq->id, sizeof rq->id, "%llx",
                 (unsigned long long)atomic_fetch_add(&h->next_id, 1));
        rq->start_ms = im_monotonic_ms();
        rq->route = api_route_label(url);
        im_strlcpy(rq->method, method, sizeof rq->method);
        log_escape(rq->path, sizeof rq->path, url);
        rq->reject = check_limits(conn, url, version);
        atomic_fetch_add(&h->in_flight, 1);
        *req_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size) {
        rq->has_body = true; /* discard: no route takes a body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    return answer(h, conn, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_http *h = cls;
    struct request *rq = *req_cls;
    (void)conn;
    if (!rq)
        return;
    int64_t dur_ms = im_monotonic_ms() - rq->start_ms;
    if (rq->status > 0)
        im_metric_request(rq->route, rq->status, (double)dur_ms / 1000.0);
    srv_log(
        SRV_INFO, rq->id,
        "event=access method=%s path=\"%s\" status=%d bytes=%zu dur_ms=%lld cache=%s%s",
        rq->method, rq->path, rq->status, rq->bytes, (long long)dur_ms,
        api_cache_outcome_name(rq->cache),
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
    free(rq);
    *req_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 addresses). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, struct im_error *err)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s + strlen(s) - 1)
        return im_seterr(err, IM_EINVAL, "--listen wants ADDRESS:PORT, got '%s'", s);
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return im_seterr(err, IM_EINVAL, "--listen: bad port in '%s'", s);
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host)
        return im_seterr(err, IM_EINVAL, "--listen: address too long");
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return im_seterr(err, IM_EINVAL, "--listen: bad IPv6 address '%s'", host + 1);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (hl == 0)
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return im_seterr(err, IM_EINVAL, "--listen: bad IPv4 address '%s'", host);
    return 0;
}

struct srv_http *srv_http_start(const struct srv_config *cfg, struct api *api,
                                struct im_error *err)
{
    struct sockaddr_storage ss;
    if (parse_listen(cfg->listen, &ss, err) != 0)
        return NULL;
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        im_seterr(err, IM_ENOMEM, "out of memory");
        return NULL;
    }
    h->api = api;
    h->drain_ms = cfg->shutdown_timeout * 1000L;
    long threads = cfg->threads;
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? 4 * cores : 8;
        if (threads < 8)
            threads = 8;
    }
    /* ITC: MHD_quiesce_daemon needs it to stop accepting while requests finish. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, 30U,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, MHD_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        im_seterr(err, IM_EINVAL, "cannot listen on %s (address in use or not available)",
                  cfg->listen);
        return NULL;
    }
    return h;
}

void srv_http_stop(struct srv_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    MHD_socket fd = MHD_quiesce_daemon(h->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd); /* no new connections from here on */
    int64_t deadline = im_monotonic_ms() + h->drain_ms;
    long left = atomic_load(&h->in_flight);
    if (left > 0)
        srv_log(SRV_INFO, NULL, "event=draining in_flight=%ld wait_ms=%ld", left,
                h->drain_ms);
    while ((left = atomic_load(&h->in_flight)) > 0 && im_monotonic_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (left > 0)
        srv_log(SRV_WARN, NULL, "event=drain_timeout in_flight=%ld", left);
    MHD_stop_daemon(h->mhd);
    free(h);
}
