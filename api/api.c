/* api.c - routing of API paths, error mapping, and the non-image endpoints. */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Every project error maps to exactly one HTTP status here. */
static const struct {
    int code;
    int status;
} status_table[] = {
    {IM_EINVAL, 400},     {IM_ENOTFOUND, 404},  {IM_EUNAUTH, 502},
    {IM_EPROTO, 502},     {IM_EDIGEST, 502},    {IM_ETOOBIG, 502},
    {IM_ETIMEOUT, 504},   {IM_ERATELIMIT, 503}, {IM_EPOLICY, 403},
    {IM_ESTORE, 500},     {IM_ENOMEM, 500},     {IM_EUPSTREAM, 502},
    {IM_EINTERNAL, 500},
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
}

struct api *api_new(const struct api_config *cfg, struct store *store, struct reg_client *reg,
                    struct im_error *err)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a) {
        im_seterr(err, IM_ENOMEM, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->store = store;
    a->reg = reg;
    if (api__inflight_init(&a->inflight) != 0) {
        free(a);
        im_seterr(err, IM_ENOMEM, "cannot initialise the in-flight table");
        return NULL;
    }
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api__inflight_destroy(&a->inflight);
    free(a);
}

void api_response_free(struct api_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

const char *api_cache_outcome_name(enum api_cache_outcome c)
{
    switch (c) {
    case API_CACHE_HIT:
        return "hit";
    case API_CACHE_MISS:
        return "miss";
    case API_CACHE_COALESCED:
        return "coalesced";
    case API_CACHE_NONE:
        break;
    }
    return "-";
}

int api__set_body(struct api_response *resp, int status, const char *content_type,
                  const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy)
        return IM_ENOMEM;
    memcpy(copy, text, len + 1);
    free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = copy;
    resp->len = len;
    return 0;
}

/* {"error":{"code":"...","message":"..."}} with the message JSON-escaped. */
int api__error(struct api_response *resp, int status, const char *code, const char *message)
{
    json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
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

static bool is_get_or_head(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

int api_handle(struct api *a, const struct api_request *req, struct api_response *resp)
{
    int rc;
    resp->max_age = -1;
    resp->retry_after = -1;
    if (!is_get_or_head(req->method)) {
        resp->allow = "GET, HEAD";
        rc = api__error(resp, 405, "method_not_allowed",
                        "only GET and HEAD are supported");
    } else if (strncmp(req->path, "/images/", 8) == 0) {
        rc = api__describe(a, req, resp);
    } else if (strcmp(req->path, "/healthz") == 0) {
        rc = handle_healthz(resp);
    } else if (strcmp(req->path, "/readyz") == 0) {
        rc = handle_readyz(a, resp);
    } else {
        rc = api__error(resp, 404, "no_such_route",
                        "no such route: try /images/{repository}/{tag}, e.g. "
                        "/images/python/3.7-slim");
    }
    return rc;
}
