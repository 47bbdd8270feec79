/* api.h - request handlers: a parsed HTTP request in, a complete response
 * out. No libmicrohttpd here (server/ translates), no SQL or curl (store/ and
 * registry/ do that), no formatting of pages (render/ does).
 *
 * Thread-safety: api_handle may be called from any number of threads at once
 * on one struct api; shared state (the in-flight table) locks inside. */
#ifndef API_H
#define API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "im.h"

struct store;
struct reg_client;

struct api_config {
    int64_t tag_ttl_seconds;   /* how long a tag resolution is fresh; default 300 */
    long resolve_wait_ms;      /* max wait for a coalesced resolution; default 60000 */
};

void api_config_defaults(struct api_config *c);

struct api;

/* Borrows store and reg (they must outlive the api). NULL on ENOMEM. */
struct api *api_new(const struct api_config *cfg, struct store *store,
                    struct reg_client *reg, struct im_error *err) IM_WUR;
void api_free(struct api *a);

#define API_MAX_PLATFORMS 16

enum api_format { API_FORMAT_JSON = 0, API_FORMAT_MARKDOWN = 1 };

/* One request as server/ understood it. Strings are borrowed for the call. */
struct api_request {
    const char *method;        /* "GET", "HEAD", ... */
    const char *path;          /* percent-decoded path, e.g. "/images/python/3.7-slim" */
    const char *format;        /* ?format=, NULL when absent */
    const char *view;          /* ?view=, NULL when absent */
    const char *accept;        /* Accept header, NULL when absent */
    const char *if_none_match; /* If-None-Match header, NULL when absent */
    const char *platforms[API_MAX_PLATFORMS]; /* ?platform= values */
    size_t n_platforms;
    bool too_many_platforms;   /* more ?platform= than API_MAX_PLATFORMS */
    const char *request_id;    /* for logs */
};

/* Where the answer came from, for the access log and metrics. */
enum api_cache_outcome {
    API_CACHE_NONE = 0, /* not an image request, or failed before the cache */
    API_CACHE_HIT,      /* fresh in cache, no upstream request */
    API_CACHE_MISS,     /* resolved upstream */
    API_CACHE_COALESCED /* waited for another request's resolution */
};

struct api_response {
    int status;
    const char *content_type;  /* static string */
    char *body;                /* malloc'd, owned by the response; NULL for none */
    size_t len;
    char etag[96];             /* "" when none */
    long max_age;              /* Cache-Control max-age, -1 for no header */
    bool vary_accept;
    long retry_after;          /* seconds, -1 for no header */
    const char *allow;         /* Allow header for 405, NULL otherwise */
    enum api_cache_outcome cache;
};

/* Fills resp (which the caller zero-initialises) and returns 0; returns
 * IM_ENOMEM only when not even an error response could be built. The caller
 * releases resp with api_response_free. */
int api_handle(struct api *a, const struct api_request *req, struct api_response *resp);
void api_response_free(struct api_response *resp);

const char *api_cache_outcome_name(enum api_cache_outcome c);

#endif
