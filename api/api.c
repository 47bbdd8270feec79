/* api.c - routing of API paths, error mapping, and the non-image endpoints. */
#include "api_int.h"
#include "renderer_id.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "registry.h"
#include "store.h"

struct api *api_new(const struct api_config *cfg, struct store *store,
                    struct reg_client *reg, struct im_error *err)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a) {
        im_seterr(err, IM_ENOMEM, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->store = store;
    a->reg = reg;
    a->answers = api__answers_new(cfg, store);
    if (!a->answers || api__inflight_init(&a->inflight) != 0) {
        api__answers_free(a->answers);
        free(a);
        im_seterr(err, IM_ENOMEM,
                  "cannot initialise the answer tiers or in-flight table");
        return NULL;
    }
    /* Rendered answers of another renderer build are dropped now and never
     * served; a failure to drop them leaves rows that are only never read. */
    struct im_error serr;
    if (store && store_set_renderer(store, IMGMETA_RENDERER_ID, NULL, &serr) != 0)
        im_metric_inc(IM_STORE_WRITE_FAILURES);
    /* a tag's history records each platform's total size, read from the
     * model of what is stored */
    if (store)
        store_set_sizes_fn(store, api__platform_sizes);
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    /* the last seconds' counts, or cache stats would miss them */
    struct im_error serr;
    if (a->store && api__flush_counters(a, &serr) != 0)
        im_metric_inc(IM_STORE_WRITE_FAILURES);
    api__inflight_destroy(&a->inflight);
    api__answers_free(a->answers);
    api__shared_pool_drain();
    free(a);
}

const char *api_answers_file_error(const struct api *a)
{
    return api__answers_file_error(a->answers);
}

static int handle_healthz(struct api_response *resp)
{
    return api__set_body(resp, 200, API_CT_JSON, "{\"status\":\"ok\"}\n");
}

static int handle_readyz(struct api *a, struct api_response *resp)
{
    struct im_error err = {{0}};
    if (store_ping(a->store, &err) != 0)
        return api__error(resp, 503, "not_ready", err.msg);
    return api__set_body(resp, 200, API_CT_JSON, "{\"status\":\"ready\"}\n");
}

int api_update_store_gauges(struct api *a)
{
    struct store_stats st;
    struct im_error err = {{0}};
    int rc = store_stats(a->store, &st, &err);
    if (rc != 0)
        return rc;
    im_metric_gauge_set(IM_DB_BYTES, st.bytes);
    im_metric_gauge_set(IM_DB_DOCUMENTS, st.documents);
    im_metric_gauge_set(IM_DB_BLOBS, st.blobs);
    im_metric_gauge_set(IM_DB_TAGS, st.tags);
    struct api__afile_stats af;
    api__answers_stats(a->answers, &af);
    im_metric_gauge_set(IM_ANSWER_FILE_ENTRIES, (int64_t)af.entries);
    im_metric_gauge_set(IM_ANSWER_FILE_BYTES, (int64_t)af.bytes);
    return 0;
}

static bool is_get_or_head(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

const char *api_route_label(const char *path)
{
    if (!path)
        return "other";
    if (strncmp(path, "/images/", 8) == 0 || strcmp(path, "/images") == 0)
        return "images";
    if (api__is_tags_path(path))
        return "tags";
    if (strcmp(path, "/diff") == 0)
        return "diff";
    if (strcmp(path, "/healthz") == 0)
        return "healthz";
    if (strcmp(path, "/readyz") == 0)
        return "readyz";
    if (strcmp(path, "/metrics") == 0)
        return "metrics";
    if (strncmp(path, "/admin/", 7) == 0)
        return "admin";
    return "other";
}

/* What server/ refused, as the client is told. */
static const struct {
    enum api_reject reject;
    int status;
    const char *code, *message;
} rejects[] = {
    {API_REJECT_BODY, 413, "body_not_allowed",
     "requests to imgmeta carry no body: send GET or HEAD without one"},
    {API_REJECT_URI_TOO_LONG, 414, "uri_too_long",
     "the request target is too long (at most 2048 bytes of path and 8192 of query): "
     "shorten the reference or the parameters"},
    {API_REJECT_HEADERS_TOO_LARGE, 431, "headers_too_large",
     "the request header fields are too large (at most 16384 bytes in all): send fewer "
     "or shorter headers"},
    {API_REJECT_BAD_HOST, 400, "invalid_request",
     "an HTTP/1.1 request carries exactly one Host header (RFC 9112, section 3.2)"},
    {API_REJECT_BAD_ENCODING, 400, "invalid_request",
     "the request target or a header field has bytes imgmeta does not accept"},
    {API_REJECT_BODY_TOO_LARGE, 413, "body_too_large",
     "the request body is over 65536 bytes: send at most 100 references a request"},
};

bool api_takes_body(const char *method, const char *path)
{
    return method && path && strcmp(method, "POST") == 0 && strcmp(path, "/images") == 0;
}

static int handle_reject(const struct api_request *req, struct api_response *resp)
{
    for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++)
        if (rejects[i].reject == req->reject)
            return api__error(resp, rejects[i].status, rejects[i].code,
                              req->reject == API_REJECT_BAD_ENCODING && req->reject_reason
                                  ? req->reject_reason
                                  : rejects[i].message);
    return api__error(resp, 500, "internal_error", "unknown rejection");
}

static int route(struct api *a, const struct api_request *req, struct api_response *resp)
{
    if (req->reject != API_REJECT_NONE)
        return handle_reject(req, resp);
    if (strncmp(req->path, "/admin/", 7) == 0)
        return api__admin(a, req, resp);
    /* /images: POST is a batch, GET and HEAD the home page's form */
    if (strcmp(req->path, "/images") == 0 && !is_get_or_head(req->method))
        return api__batch(a, req, resp);
    if (!is_get_or_head(req->method)) {
        resp->allow = "GET, HEAD";
        return api__error(resp, 405, "method_not_allowed",
                          "only GET and HEAD are supported");
    }
    if (strncmp(req->path, "/images/", 8) == 0) {
        /* Negotiation happens here (q-values, wildcards): describe sees the
         * outcome as an explicit format. */
        static const char *const names[] = {"json", "markdown", "html"};
        struct api_request negotiated = *req;
        if (!negotiated.format)
            negotiated.format = names[api__negotiate(req->accept, NULL)];
        return api__describe(a, &negotiated, resp);
    }
    if (strcmp(req->path, "/images") == 0)
        return api__find_image(req, resp);
    if (strcmp(req->path, "/") == 0)
        return api__home(a, resp);
    if (api__is_tags_path(req->path))
        return api__tags(a, req, resp);
    if (strcmp(req->path, "/diff") == 0)
        return api__diff(a, req, resp);
    if (strcmp(req->path, "/healthz") == 0)
        return handle_healthz(resp);
    if (strcmp(req->path, "/readyz") == 0)
        return handle_readyz(a, resp);
    return api__error(resp, 404, "no_such_route",
                      "no such route: try /images/{repository}/{tag} (e.g. "
                      "/images/python/3.7-slim), /repositories/{repository}/tags, /, "
                      "/diff?from=REF&to=REF, /healthz, /readyz or /metrics");
}

int api_handle(struct api *a, const struct api_request *req, struct api_response *resp)
{
    resp->max_age = -1;
    resp->retry_after = -1;
    resp->route = api_route_label(req->path);
    int rc = route(a, req, resp);
    if (rc == 0)
        rc = api__finish_error(req, resp);
    if (resp->content_type && strcmp(resp->content_type, API_CT_HTML) == 0)
        resp->csp = API_HTML_CSP;
    return rc;
}
