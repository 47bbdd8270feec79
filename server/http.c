/* http.c - libmicrohttpd front: one api_handle call per request, headers,
 * and one access-log line when the request completes. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "server.h"

struct srv_http {
    struct MHD_Daemon *mhd;
    struct api *api;
    atomic_ullong next_id;
};

/* Per-request state, hung off the connection context (*req_cls). */
struct request {
    char id[24];
    int64_t start_ms;
    bool has_body;
    int status;
    size_t bytes;
    enum api_cache_outcome cache;
    char method[16];
    char path[512];
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct api_request *req = cls;
    (void)kind;
    if (!value)
        value = "";
    if (strcmp(key, "format") == 0) {
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

static void free_body(void *p) { free(p); }

static struct MHD_Response *make_response(struct api_response *r)
{
    struct MHD_Response *resp;
    if (r->body) {
        resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->body, free_body);
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
    return resp;
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
    req.accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req.if_none_match =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &req);

    if (rq->has_body) {
        r.max_age = r.retry_after = -1;
        r.status = 413;
        r.content_type = "application/json";
        const char *msg = "{\"error\":{\"code\":\"body_not_allowed\","
                          "\"message\":\"requests to imgmeta carry no body\"}}\n";
        r.body = strdup(msg);
        r.len = r.body ? strlen(msg) : 0;
    } else if (api_handle(h->api, &req, &r) != 0) {
        api_response_free(&r);
        return MHD_NO; /* out of memory: drop the connection */
    }
    rq->status = r.status;
    rq->bytes = r.len;
    rq->cache = r.cache;
    struct MHD_Response *resp = make_response(&r);
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
    (void)version;
    (void)upload_data;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        snprintf(rq->id, sizeof rq->id, "%llx",
                 (unsigned long long)atomic_fetch_add(&h->next_id, 1));
        rq->start_ms = im_monotonic_ms();
        im_strlcpy(rq->method, method, sizeof rq->method);
        im_strlcpy(rq->path, url, sizeof rq->path);
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
    struct request *rq = *req_cls;
    (void)cls;
    (void)conn;
    if (!rq)
        return;
    srv_log(SRV_INFO, rq->id,
            "event=access method=%s path=\"%s\" status=%d bytes=%zu dur_ms=%lld cache=%s%s",
            rq->method, rq->path, rq->status, rq->bytes,
            (long long)(im_monotonic_ms() - rq->start_ms), api_cache_outcome_name(rq->cache),
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
    free(rq);
    *req_cls = NULL;
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
    long threads = cfg->threads;
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? 4 * cores : 8;
        if (threads < 8)
            threads = 8;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, 30U,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
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
    MHD_stop_daemon(h->mhd);
    free(h);
}
