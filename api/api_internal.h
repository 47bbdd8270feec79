/* api_internal.h - cross-file internals of api/ (double-underscore names). */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "api.h"

#define API_CT_JSON "application/json"
#define API_CT_MARKDOWN "text/markdown; charset=utf-8"
#define API_CT_TEXT "text/plain; charset=utf-8"

/* One resolution in progress, shared by every request for the same key. */
struct api__flight {
    struct api__flight *next;
    char key[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    bool done;
    int rc;
    struct im_error err;
    unsigned waiters;
};

/* The in-flight table: a short list under one lock (entries live only while
 * their resolution runs). */
struct api__inflight {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct api__flight *head;
};

struct api {
    struct api_config cfg;
    struct store *store;
    struct reg_client *reg;
    struct api__inflight inflight;
};

int api__inflight_init(struct api__inflight *t);
void api__inflight_destroy(struct api__inflight *t);

/* Resolves ref upstream and stores the result, or waits for a concurrent
 * request already doing so. On 0, *coalesced says whether this call waited
 * for another's resolution (then out is empty: read the store) or did the
 * work itself (out holds the bundle). */
int api__resolve_shared(struct api *a, const struct im_ref *ref, struct im_bundle *out,
                        bool *coalesced, struct im_error *err);

int api__describe(struct api *a, const struct api_request *req, struct api_response *resp);

int api__status_for(int code);
int api__set_body(struct api_response *resp, int status, const char *content_type,
                  const char *text);
int api__error(struct api_response *resp, int status, const char *code, const char *message);
int api__error_code(struct api_response *resp, int code, const char *message);

#endif
