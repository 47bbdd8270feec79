/* fuzz_batch.c - libFuzzer target for the body of POST /images (api/batch.c),
 * the one request body imgmeta reads. Each input is the body, sent as
 * api_handle would get it from an HTTP thread (cache_only) to a service
 * whose cache is an empty in-memory store: nothing is ever asked upstream.
 * Besides "no crash, no UB, no leak": the answer is a deferral (API_SLOW) or
 * JSON with a 200, 400 or 413 status, and a 200 lists at most 100 results,
 * each with a reference, a status and an image or an error. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "registry.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct api *api;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct im_error err;
    struct reg_config rc;
    struct api_config ac;
    (void)argc;
    (void)argv;
    struct store *st = store_open(":memory:", &err);
    reg_config_defaults(&rc);
    struct reg_client *reg = st ? reg_client_new(&rc, &err) : NULL;
    api_config_defaults(&ac);
    api = reg ? api_new(&ac, st, reg, &err) : NULL;
    if (!api)
        abort();
    return 0; /* st and reg live as long as the process */
}

static bool result_ok(json_t *r)
{
    json_t *status = json_object_get(r, "status");
    return json_is_string(json_object_get(r, "reference")) && json_is_integer(status) &&
           (json_integer_value(status) == 200
                ? json_is_object(json_object_get(r, "image"))
                : json_is_object(json_object_get(r, "error")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > API_BATCH_BODY_MAX)
        return 0; /* server/ refuses those before api/ sees them */
    struct api_request req = {.method = "POST",
                              .path = "/images",
                              .content_type = "application/json",
                              .body = (const char *)data,
                              .body_len = size,
                              .cache_only = true};
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    int rc = api_handle(api, &req, &resp);
    if (rc == API_SLOW) {
        api_response_free(&resp);
        return 0;
    }
    if (rc != 0 || (resp.status != 200 && resp.status != 400 && resp.status != 413))
        abort();
    json_t *root = json_loadb(resp.body, resp.len, 0, NULL);
    json_t *results = json_object_get(root, "results");
    if (!root || (resp.status == 200 &&
                  (!json_is_array(results) || json_array_size(results) > API_BATCH_MAX)))
        abort();
    for (size_t i = 0; resp.status == 200 && i < json_array_size(results); i++)
        if (!result_ok(json_array_get(results, i)))
            abort();
    json_decref(root);
    api_response_free(&resp);
    return 0;
}
