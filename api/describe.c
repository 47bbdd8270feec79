/* describe.c - GET /images/{ref}: reference -> (cache | registry) -> model ->
 * Markdown or JSON, with ETag and Cache-Control. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "registry.h"
#include "render.h"
#include "store.h"

#define IMMUTABLE_MAX_AGE 31536000L

enum view { VIEW_FULL, VIEW_SUMMARY };

struct describe {
    struct im_ref ref;
    enum api_format format;
    enum view view;
    struct im_bundle bundle;
    long max_age;
    enum api_cache_outcome cache;
    struct im_error err;
};

/* Accept negotiation: Markdown when text/markdown is acceptable and listed
 * before application/json (or JSON is absent). q-values come with the HTTP
 * API issue. */
static enum api_format negotiate(const char *accept)
{
    if (!accept)
        return API_FORMAT_JSON;
    const char *md = strstr(accept, "text/markdown");
    if (!md)
        return API_FORMAT_JSON;
    const char *js = strstr(accept, "application/json");
    return (!js || md < js) ? API_FORMAT_MARKDOWN : API_FORMAT_JSON;
}

/* Returns 0 when the options are valid; otherwise writes a 400 response and
 * returns 1 (or IM_ENOMEM when even that failed). */
static int bad_option(struct api_response *resp, const char *message)
{
    int rc = api__error(resp, 400, "invalid_parameter", message);
    return rc != 0 ? rc : 1;
}

static int parse_options(const struct api_request *req, struct describe *d,
                         struct api_response *resp)
{
    if (req->format) {
        if (strcmp(req->format, "json") == 0)
            d->format = API_FORMAT_JSON;
        else if (strcmp(req->format, "markdown") == 0 || strcmp(req->format, "md") == 0)
            d->format = API_FORMAT_MARKDOWN;
        else
            return bad_option(resp, "format must be 'json' or 'markdown'");
    } else {
        d->format = negotiate(req->accept);
    }
    d->view = VIEW_FULL;
    if (req->view) {
        if (strcmp(req->view, "summary") == 0)
            d->view = VIEW_SUMMARY;
        else if (strcmp(req->view, "full") != 0)
            return bad_option(resp, "view must be 'full' or 'summary'");
    }
    if (req->too_many_platforms)
        return bad_option(resp, "too many platform parameters (at most 16)");
    return 0;
}

/* Reads what the cache has for d->ref. 0 with d->bundle filled when it has a
 * fresh answer, IM_ENOTFOUND when it has none, another code on failure. */
static int from_cache(struct api *a, struct describe *d)
{
    struct store_tag t;
    const char *root = d->ref.digest;
    if (d->ref.tag[0]) {
        int rc = store_get_tag(a->store, &d->ref, &t, &d->err);
        if (rc != 0)
            return rc;
        int64_t now = im_now();
        if (!store_tag_fresh(&t, now, a->cfg.tag_ttl_seconds))
            return IM_ENOTFOUND;
        if (d->ref.digest[0] && strcmp(d->ref.digest, t.digest) != 0)
            return IM_ENOTFOUND; /* name:tag@digest where the tag moved */
        d->max_age = (long)(a->cfg.tag_ttl_seconds - (now - t.checked_at));
        root = t.digest;
    } else {
        /* Content is shared by digest, but only this repository's own roots
         * answer for it: the registry never said another repository has it. */
        bool mine = false;
        int rc = store_has_root(a->store, &d->ref, root, &mine, &d->err);
        if (rc != 0)
            return rc;
        if (!mine)
            return IM_ENOTFOUND;
        d->max_age = IMMUTABLE_MAX_AGE;
    }
    return store_load(a->store, root, &d->bundle, &d->err);
}

static int obtain(struct api *a, struct describe *d)
{
    int rc = from_cache(a, d);
    if (rc == 0) {
        d->cache = API_CACHE_HIT;
        return 0;
    }
    im_bundle_free(&d->bundle);
    bool coalesced = false;
    rc = api__resolve_shared(a, &d->ref, &d->bundle, &coalesced, &d->err);
    if (rc != 0)
        return rc;
    d->cache = coalesced ? API_CACHE_COALESCED : API_CACHE_MISS;
    d->max_age = d->ref.tag[0] ? (long)a->cfg.tag_ttl_seconds : IMMUTABLE_MAX_AGE;
    if (!coalesced)
        return 0;
    rc = from_cache(a, d);
    if (rc != 0) {
        /* The other request could not store its answer: resolve ourselves. */
        im_bundle_free(&d->bundle);
        rc = api__resolve_shared(a, &d->ref, &d->bundle, &coalesced, &d->err);
    }
    return rc;
}

/* 64-bit FNV-1a, to fold the platform filter into the ETag. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void make_etag(const struct describe *d, const struct api_request *req, char *buf,
                      size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < req->n_platforms; i++)
        h = fnv1a(fnv1a(h, req->platforms[i]), ",");
    const char *digest = d->bundle.root_digest;
    const char *hex = strchr(digest, ':');
    hex = hex ? hex + 1 : digest;
    snprintf(buf, n, "\"%.40s-%c%c-%016llx\"", hex,
             d->format == API_FORMAT_MARKDOWN ? 'm' : 'j',
             d->view == VIEW_SUMMARY ? 's' : 'f', (unsigned long long)h);
}

/* If-None-Match: a list of entity tags or "*". */
static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    return strstr(inm, etag) != NULL;
}

/* "no platform matches; this image has: linux/amd64, linux/arm/v7" */
static void list_platforms(const struct render_image *img, char *msg, size_t n)
{
    size_t off = (size_t)snprintf(msg, n, "no platform matches; this image has: ");
    for (size_t i = 0; i < img->n_entries && off < n; i++) {
        const struct render_platform *p = &img->entries[i].platform;
        off += (size_t)snprintf(msg + off, n - off, "%s%s/%s%s%s", i ? ", " : "", p->os,
                                p->architecture, p->variant ? "/" : "",
                                p->variant ? p->variant : "");
    }
}

static int render_answer(struct describe *d, const struct api_request *req,
                         struct api_response *resp)
{
    struct render_image *img = NULL;
    char *body = NULL;
    size_t len = 0;
    int rc = render_image_build(&d->ref, &d->bundle, &img, &d->err);
    if (rc != 0) {
        rc = api__error_code(resp, rc, d->err.msg);
        goto out;
    }
    if (req->n_platforms > 0) {
        char msg[IM_ERRMSG_MAX];
        list_platforms(img, msg, sizeof msg);
        if (render_image_filter(img, req->platforms, req->n_platforms) == 0) {
            rc = api__error(resp, 404, "platform_not_found", msg);
            goto out;
        }
    }
    if (d->format == API_FORMAT_MARKDOWN)
        rc = render_markdown(img, &body, &len);
    else if (d->view == VIEW_SUMMARY)
        rc = render_json_summary(img, &body, &len);
    else
        rc = render_json(img, &body, &len);
    if (rc != 0) {
        rc = api__error_code(resp, IM_ENOMEM, "out of memory while rendering");
        goto out;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = d->format == API_FORMAT_MARKDOWN ? API_CT_MARKDOWN : API_CT_JSON;
    resp->body = body;
    resp->len = len;
    body = NULL;
out:
    free(body);
    render_image_free(img);
    return rc;
}

static int not_found(struct describe *d, struct api_response *resp)
{
    if (d->format != API_FORMAT_MARKDOWN)
        return api__error(resp, 404, "not_found", d->err.msg);
    char *body = NULL;
    size_t len = 0;
    if (render_markdown_not_found(&d->ref, &body, &len) != 0)
        return IM_ENOMEM;
    free(resp->body);
    resp->status = 404;
    resp->content_type = API_CT_MARKDOWN;
    resp->body = body;
    resp->len = len;
    return 0;
}

int api__describe(struct api *a, const struct api_request *req, struct api_response *resp)
{
    struct describe d;
    memset(&d, 0, sizeof d);
    im_bundle_init(&d.bundle);
    int rc = parse_options(req, &d, resp);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    resp->vary_accept = true;
    rc = reg_ref_from_route(req->path + strlen("/images/"), &d.ref, &d.err);
    if (rc != 0) {
        rc = api__error(resp, 400, "invalid_reference", d.err.msg);
        goto out;
    }
    rc = obtain(a, &d);
    resp->cache = d.cache;
    if (rc == IM_ENOTFOUND) {
        rc = not_found(&d, resp);
        goto out;
    }
    if (rc != 0) {
        if (rc == IM_ERATELIMIT)
            resp->retry_after = 60;
        rc = api__error_code(resp, rc, d.err.msg);
        goto out;
    }
    make_etag(&d, req, resp->etag, sizeof resp->etag);
    resp->max_age = d.max_age < 0 ? 0 : d.max_age;
    if (etag_matches(req->if_none_match, resp->etag)) {
        resp->status = 304;
        resp->content_type = NULL;
        goto out;
    }
    rc = render_answer(&d, req, resp);
out:
    im_bundle_free(&d.bundle);
    return rc;
}
