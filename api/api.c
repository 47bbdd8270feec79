/* api.c - routing of API paths, error mapping, and the non-image endpoints. */
#include "api_internal.h"
#include "renderer_id.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "negotiate.h"
#include "registry.h"
#include "store.h"
#include "tags.h"

/* Every project error maps to exactly one HTTP status here. */
static const struct {
    int code;
    int status;
} status_table[] = {
    {IM_EINVAL, 400},    {IM_ENOTFOUND, 404}, {IM_EUNAUTH, 502},  {IM_EPROTO, 502},
    {IM_EDIGEST, 502},   {IM_ETOOBIG, 502},   {IM_ETIMEOUT, 504}, {IM_ERATELIMIT, 503},
    {IM_EPOLICY, 403},   {IM_ESTORE, 500},    {IM_ENOMEM, 500},   {IM_EUPSTREAM, 502},
    {IM_EINTERNAL, 500}, {IM_EBUSY, 503},
};

int api__status_for(int code)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].code == code)
            return status_table[i].status;
    return 500;
}

void api_config_defaults(struct api_config *c)
{
    memset(c, 0, sizeof *c);
    c->tag_ttl_seconds = 300;
    c->resolve_wait_ms = 60000;
    c->max_resolutions = 32;
    c->answer_cache_bytes = (size_t)16 << 20;
    c->markdown_style = RENDER_STYLE_SEED;
}

/* One "REGISTRY=SECONDS" entry, the registry normalised as references are. */
static int registry_ttl_entry(const char *entry, size_t len, struct api_registry_ttl *out,
                              struct im_error *err)
{
    const char *eq = memchr(entry, '=', len);
    if (!eq || eq == entry)
        return im_seterr(err, IM_EINVAL, "'%.*s' is not REGISTRY=SECONDS", (int)len,
                         entry);
    size_t hlen = (size_t)(eq - entry);
    int rc = reg_registry_name(entry, hlen, out->registry, sizeof out->registry, err);
    if (rc)
        return rc;
    char num[32];
    size_t nlen = len - hlen - 1;
    if (nlen == 0 || nlen >= sizeof num)
        return im_seterr(err, IM_EINVAL, "'%.*s': SECONDS missing or too long", (int)len,
                         entry);
    memcpy(num, eq + 1, nlen);
    num[nlen] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (errno || *end || v < 0 || v > API_MAX_TTL_SECONDS)
        return im_seterr(err, IM_EINVAL,
                         "'%.*s': TTL '%s' is not a number of seconds in [0, %d]",
                         (int)hlen, entry, num, API_MAX_TTL_SECONDS);
    out->seconds = v;
    return 0;
}

int api_config_registry_ttls(struct api_config *c, const char *spec, struct im_error *err)
{
    struct api_registry_ttl ttls[API_MAX_REGISTRY_TTLS];
    size_t n = 0;
    const char *item;
    size_t len;
    for (const char *p = spec; im_csv_next(&p, &item, &len);) {
        if (len == 0)
            continue;
        if (n == API_MAX_REGISTRY_TTLS)
            return im_seterr(err, IM_EINVAL, "at most %d registry TTLs",
                             API_MAX_REGISTRY_TTLS);
        int rc = registry_ttl_entry(item, len, &ttls[n], err);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (strcmp(ttls[i].registry, ttls[n].registry) == 0)
                return im_seterr(err, IM_EINVAL, "registry '%s' is given twice",
                                 ttls[n].registry);
        n++;
    }
    memcpy(c->registry_ttls, ttls, n * sizeof ttls[0]);
    c->n_registry_ttls = n;
    return 0;
}

int64_t api_config_tag_ttl(const struct api_config *c, const char *registry)
{
    for (size_t i = 0; i < c->n_registry_ttls; i++)
        if (strcmp(c->registry_ttls[i].registry, registry) == 0)
            return c->registry_ttls[i].seconds;
    return c->tag_ttl_seconds;
}

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
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api__inflight_destroy(&a->inflight);
    api__answers_free(a->answers);
    api__shared_pool_drain();
    free(a);
}

const char *api_answers_file_error(const struct api *a)
{
    return api__answers_file_error(a->answers);
}

void api__drop_body(struct api_response *resp)
{
    if (resp->file_body)
        close(resp->file_fd);
    resp->file_body = false;
    if (resp->shared)
        api_shared_release(resp->shared);
    else
        free(resp->body);
    resp->shared = NULL;
    resp->body = NULL;
    resp->len = 0;
}

void api_response_free(struct api_response *resp)
{
    if (resp)
        api__drop_body(resp);
}

int api__set_body(struct api_response *resp, int status, const char *content_type,
                  const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy)
        return IM_ENOMEM;
    memcpy(copy, text, len + 1);
    api__drop_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = copy;
    resp->len = len;
    return 0;
}

/* {"error":{"code":"...","message":"..."}} with the message JSON-escaped. */
int api__error(struct api_response *resp, int status, const char *code,
               const char *message)
{
    /* Messages quote user input and upstream text, possibly cut mid-character:
     * make them valid UTF-8 so the error itself cannot fail. */
    char safe[2 * IM_ERRMSG_MAX];
    im_strlcpy(safe, message, sizeof safe);
    im_utf8_sanitize(safe);
    json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", safe);
    if (!doc)
        return IM_ENOMEM;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return IM_ENOMEM;
    int rc = api__set_body(resp, status, API_CT_JSON, text);
    free(text);
    if (rc == 0 && resp->len + 1 > resp->len) {
        /* Errors end with a newline like every other body, for curl users. */
        char *grown = realloc(resp->body, resp->len + 2);
        if (grown) {
            grown[resp->len++] = '\n';
            grown[resp->len] = '\0';
            resp->body = grown;
        }
    }
    return rc;
}

int api__error_code(struct api_response *resp, int code, const char *message)
{
    return api__error(resp, api__status_for(code), im_errname(code), message);
}

static int handle_healthz(struct api_response *resp)
{
    return api__set_body(resp, 200, API_CT_JSON, "{\"status\":\"ok\"}\n");
}

static int handle_readyz(struct api *a, struct api_response *resp)
{
    struct store_stats st;
    struct im_error err = {{0}};
    if (store_stats(a->store, &st, &err) != 0)
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
    if (strncmp(path, "/images/", 8) == 0)
        return "images";
    if (api__is_tags_path(path))
        return "tags";
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

/* Rewrites a JSON error answer as its message in plain text, for a request
 * that asked for Markdown: a Markdown reader gets a line, not JSON. */
static int error_as_text(struct api_response *resp)
{
    json_error_t jerr;
    json_t *doc = json_loadb(resp->body, resp->len, 0, &jerr);
    const char *msg =
        json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    int rc = 0;
    if (msg) {
        size_t len = strlen(msg);
        char *text = malloc(len + 2);
        if (!text) {
            rc = IM_ENOMEM;
        } else {
            memcpy(text, msg, len);
            text[len] = '\n';
            text[len + 1] = '\0';
            api__drop_body(resp);
            resp->body = text;
            resp->len = len + 1;
            resp->content_type = API_CT_TEXT;
        }
    }
    json_decref(doc);
    return rc;
}

static int finish_error(const struct api_request *req, struct api_response *resp)
{
    if (resp->status < 400 || !resp->body || !resp->content_type ||
        strcmp(resp->content_type, API_CT_JSON) != 0)
        return 0;
    if (api__request_format(req, NULL) != API_FORMAT_MARKDOWN)
        return 0;
    return error_as_text(resp);
}

int api_error_response(const struct api_request *req, struct api_response *resp,
                       int status, const char *code, const char *message)
{
    int rc = api__error(resp, status, code, message);
    return rc != 0 ? rc : finish_error(req, resp);
}

static int handle_reject(const struct api_request *req, struct api_response *resp)
{
    switch (req->reject) {
    case API_REJECT_BODY:
        return api__error(
            resp, 413, "body_not_allowed",
            "requests to imgmeta carry no body: send GET or HEAD without one");
    case API_REJECT_URI_TOO_LONG:
        return api__error(
            resp, 414, "uri_too_long",
            "the request target is too long (at most 2048 bytes of path and "
            "8192 of query): shorten the reference or the parameters");
    case API_REJECT_HEADERS_TOO_LARGE:
        return api__error(resp, 431, "headers_too_large",
                          "the request header fields are too large (at most 16384 bytes "
                          "in all): send fewer or shorter headers");
    case API_REJECT_BAD_HOST:
        return api__error(
            resp, 400, "invalid_request",
            "an HTTP/1.1 request carries exactly one Host header (RFC 9112, "
            "section 3.2)");
    case API_REJECT_BAD_ENCODING:
        return api__error(resp, 400, "invalid_request",
                          req->reject_reason
                              ? req->reject_reason
                              : "the request target or a header field has bytes imgmeta "
                                "does not accept");
    case API_REJECT_NONE:
        break;
    }
    return api__error(resp, 500, "internal_error", "unknown rejection");
}

static int route(struct api *a, const struct api_request *req, struct api_response *resp)
{
    if (req->reject != API_REJECT_NONE)
        return handle_reject(req, resp);
    if (strncmp(req->path, "/admin/", 7) == 0)
        return api__admin(a, req, resp);
    if (!is_get_or_head(req->method)) {
        resp->allow = "GET, HEAD";
        return api__error(resp, 405, "method_not_allowed",
                          "only GET and HEAD are supported");
    }
    if (strncmp(req->path, "/images/", 8) == 0) {
        /* Negotiation happens here (q-values, wildcards): describe sees the
         * outcome as an explicit format. */
        struct api_request negotiated = *req;
        if (!negotiated.format)
            negotiated.format = api__negotiate(req->accept, NULL) == API_FORMAT_MARKDOWN
                                    ? "markdown"
                                    : "json";
        return api__describe(a, &negotiated, resp);
    }
    if (api__is_tags_path(req->path))
        return api__tags(a, req, resp);
    if (strcmp(req->path, "/healthz") == 0)
        return handle_healthz(resp);
    if (strcmp(req->path, "/readyz") == 0)
        return handle_readyz(a, resp);
    return api__error(resp, 404, "no_such_route",
                      "no such route: try /images/{repository}/{tag} (e.g. "
                      "/images/python/3.7-slim), /repositories/{repository}/tags, "
                      "/healthz, /readyz or /metrics");
}

int api_handle(struct api *a, const struct api_request *req, struct api_response *resp)
{
    resp->max_age = -1;
    resp->retry_after = -1;
    resp->route = api_route_label(req->path);
    int rc = route(a, req, resp);
    if (rc == 0)
        rc = finish_error(req, resp);
    return rc;
}
