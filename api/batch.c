/* batch.c - POST /images: several references answered in one request, each
 * as GET /images/{ref}?format=json&view=VIEW would answer it (the same cache,
 * coalescing, limits and errors), in request order.
 *
 * The body is {"references":[...], "view":"summary"|"full"} (view optional,
 * "full" by default), at most API_BATCH_MAX references of at most
 * BATCH_REF_MAX bytes each, in at most API_BATCH_BODY_MAX bytes (server/
 * refuses a longer body). Called with cache_only (an HTTP thread) it answers
 * only when every reference is answered from the cache, else API_SLOW; on an
 * upstream thread the references are described by up to BATCH_THREADS
 * threads at once. The answer is {"results":[{"reference","status","image"}
 * or {"reference","status","error"}, ...]}, at most API_JSON_MAX bytes. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"

#define BATCH_THREADS 8
#define BATCH_REF_MAX 512

struct item {
    const char *ref; /* borrowed from the parsed body */
    struct api_response resp;
    int rc;
};

struct batch {
    struct api *a;
    const struct api_request *req;
    const char *view;
    struct item *items;
    size_t n;
    atomic_size_t next; /* the next item a thread takes */
};

/* 0, or a 4xx answer in resp (1), or IM_ENOMEM. */
static int refuse(struct api_response *resp, int status, const char *code,
                  const char *message)
{
    int rc = api__error(resp, status, code, message);
    return rc != 0 ? rc : 1;
}

static bool json_content_type(const char *ct)
{
    static const char json[] = "application/json";
    if (!ct || strncasecmp(ct, json, sizeof json - 1) != 0)
        return false;
    ct += sizeof json - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* The body's references and view into b (items allocated, refs borrowed
 * from *root); 0, 1 with a 4xx answer in resp, or IM_ENOMEM. */
static int parse_body(const struct api_request *req, json_t **root, struct batch *b,
                      struct api_response *resp)
{
    json_error_t jerr;
    char msg[IM_ERRMSG_MAX];
    json_t *refs = NULL, *view = NULL;
    if (!json_content_type(req->content_type))
        return refuse(
            resp, 415, "unsupported_media_type",
            "POST /images takes a JSON body: send Content-Type: application/json");
    *root = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES,
                       &jerr);
    if (!*root) {
        snprintf(msg, sizeof msg, "the body is not JSON: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        return refuse(resp, 400, "invalid_body", msg);
    }
    if (json_unpack_ex(*root, &jerr, JSON_STRICT, "{s:o, s?o}", "references", &refs,
                       "view", &view) != 0 ||
        !json_is_array(refs) || (view && !json_is_string(view)))
        return refuse(
            resp, 400, "invalid_body",
            "the body is {\"references\": [\"REF\", ...], \"view\": \"summary\" or "
            "\"full\"} (view optional), with no other member");
    b->view = view ? json_string_value(view) : "full";
    if (strcmp(b->view, "summary") != 0 && strcmp(b->view, "full") != 0)
        return refuse(resp, 400, "invalid_parameter", "view must be 'full' or 'summary'");
    b->n = json_array_size(refs);
    if (b->n == 0 || b->n > API_BATCH_MAX)
        return refuse(resp, 400, "too_many_references",
                      "references lists 1 to 100 image references");
    b->items = calloc(b->n, sizeof *b->items);
    if (!b->items)
        return IM_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        b->items[i].ref = json_string_value(json_array_get(refs, i));
        if (!b->items[i].ref)
            return refuse(resp, 400, "invalid_body",
                          "each of references is a string: an image reference");
    }
    return 0;
}

/* Describes item it as a GET of /images/{ref} would be answered. */
static void describe_item(struct batch *b, struct item *it, bool cache_only)
{
    char path[sizeof "/images/" + BATCH_REF_MAX];
    memset(&it->resp, 0, sizeof it->resp);
    it->resp.max_age = it->resp.retry_after = -1;
    if (strlen(it->ref) > BATCH_REF_MAX || memchr(it->ref, '?', strlen(it->ref))) {
        it->rc = api__error(&it->resp, 400, "invalid_reference",
                            "not an image reference (at most 512 bytes, no '?')");
        return;
    }
    snprintf(path, sizeof path, "/images/%s", it->ref);
    struct api_request r = {.method = "GET",
                            .path = path,
                            .format = "json",
                            .view = b->view,
                            .request_id = b->req->request_id,
                            .cache_only = cache_only};
    it->rc = api__describe(b->a, &r, &it->resp);
}

static void *worker(void *arg)
{
    struct batch *b = arg;
    for (size_t i; (i = atomic_fetch_add(&b->next, 1)) < b->n;)
        describe_item(b, &b->items[i], false);
    return NULL;
}

/* Every item described, by up to BATCH_THREADS threads (this one too; fewer
 * when a thread cannot be started). */
static void describe_all(struct batch *b)
{
    pthread_t tids[BATCH_THREADS - 1];
    size_t started = 0, want = b->n < BATCH_THREADS ? b->n - 1 : BATCH_THREADS - 1;
    while (started < want && pthread_create(&tids[started], NULL, worker, b) == 0)
        started++;
    worker(b);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
}

/* The cache-only pass: true when every item was answered without upstream
 * work (it stops at the first that needs some). */
static bool describe_cached(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        describe_item(b, &b->items[i], true);
        if (b->items[i].rc == API_SLOW)
            return false;
    }
    return true;
}

/* One result: {"reference":R,"status":S,"image":{...}} or ...,"error":{...}}. */
static void write_item(struct im_jw *w, const struct item *it)
{
    static const char err_open[] = "{\"error\":";
    const struct api_response *r = &it->resp;
    size_t len = r->len;
    while (len > 0 && r->body[len - 1] == '\n')
        len--;
    im_jw_open(w, '{');
    im_jw_kstr(w, "reference", it->ref);
    bool ok = it->rc == 0 && r->status == 200 && r->body && len > 0;
    bool err = it->rc == 0 && r->body && len > sizeof err_open &&
               strncmp(r->body, err_open, sizeof err_open - 1) == 0;
    im_jw_kint(w, "status", ok || err ? r->status : 500);
    if (ok) {
        im_jw_key(w, "image");
        im_jw_raw(w, "");
        im_buf_putn(&w->b, r->body, len);
    } else if (err) { /* the error object inside {"error":{...}} */
        im_jw_key(w, "error");
        im_jw_raw(w, "");
        im_buf_putn(&w->b, r->body + sizeof err_open - 1, len - sizeof err_open);
    } else {
        im_jw_key(w, "error");
        im_jw_open(w, '{');
        im_jw_kstr(w, "code", "out_of_memory");
        im_jw_kstr(w, "message", "this reference could not be answered (out of memory)");
        im_jw_close(w, '}');
    }
    im_jw_close(w, '}');
}

static int write_results(const struct batch *b, struct api_response *resp)
{
    struct im_jw w = {.b = {.max = API_JSON_MAX}};
    im_jw_open(&w, '{');
    im_jw_key(&w, "results");
    im_jw_open(&w, '[');
    for (size_t i = 0; i < b->n; i++)
        write_item(&w, &b->items[i]);
    im_jw_close(&w, ']');
    im_jw_close(&w, '}');
    int rc = api__set_json(resp, 200, &w, true);
    if (rc == IM_ETOOBIG)
        return api__error(
            resp, 400, "too_many_references",
            "the answers together are over 16 MiB: ask for fewer references "
            "or view=summary");
    return rc;
}

int api__batch(struct api *a, const struct api_request *req, struct api_response *resp)
{
    json_t *root = NULL;
    struct batch b = {.a = a, .req = req};
    int rc;
    if (strcmp(req->method, "POST") != 0) {
        resp->allow = "GET, HEAD, POST";
        return api__error(resp, 405, "method_not_allowed",
                          "/images takes POST (a batch of references) or GET ?ref= "
                          "(303 to an image's page); describe one image with GET "
                          "/images/{ref}");
    }
    rc = parse_body(req, &root, &b, resp);
    if (rc != 0) {
        rc = rc < 0 ? rc : 0; /* 1: refused, the answer is in resp */
        goto out;
    }
    if (req->cache_only) {
        if (!describe_cached(&b)) {
            rc = API_SLOW;
            goto out;
        }
    } else {
        describe_all(&b);
    }
    rc = write_results(&b, resp);
out:
    for (size_t i = 0; b.items && i < b.n; i++)
        api_response_free(&b.items[i].resp);
    free(b.items);
    json_decref(root);
    return rc;
}
