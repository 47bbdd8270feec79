/* history.c - GET /images/{ref}?view=history: the changes of a tag the store
 * recorded (store_history.c), newest first, a page at a time the way the tag
 * list pages (?n=, ?last=, a Link header to the next page), as JSON or a
 * Markdown table. The request first obtains the tag as any image request
 * does (describe.c), so a tag that moved since it was last seen is recorded
 * before its history is read. Also what a change records of each platform
 * (api__platform_sizes, the store's sizes function). */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0 after a 400 with message (1), or IM_ENOMEM. */
static int bad_param(struct api_response *resp, const char *message)
{
    int rc = api__error(resp, 400, "invalid_parameter", message);
    return rc != 0 ? rc : 1;
}

/* A whole decimal number from 1 to max (no sign, no blanks): 0, or -1. */
static int whole_number(const char *s, long long max, long long *out)
{
    char *end = NULL;
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

int api__history_params(const struct api_request *req, const struct im_ref *ref,
                        struct api__hpage *p, struct api_response *resp)
{
    long long v = 0;
    p->n = STORE_HISTORY_MAX;
    p->before = 0;
    if (!ref->tag[0])
        return bad_param(resp, "view=history needs a tag: a digest never moves");
    if (req->n_platforms > 0 || req->too_many_platforms)
        return bad_param(resp, "view=history takes no platform: each change lists them");
    if (req->repeated)
        return bad_param(resp, "n and last may each be given once");
    if (req->n) {
        if (whole_number(req->n, STORE_HISTORY_MAX, &v) != 0)
            return bad_param(resp, "n must be a whole number from 1 to 100");
        p->n = (long)v;
    }
    if (req->last) {
        if (whole_number(req->last, INT64_MAX, &v) != 0)
            return bad_param(resp, "last must be the change number a Link header gave "
                                   "(a whole number from 1)");
        p->before = v;
    }
    return 0;
}

/* The next page's Link: the reference in its docker form, which the route
 * reads back as the same tag. */
static void next_link(const struct im_ref *ref, bool markdown, const struct api__hpage *p,
                      int64_t last, struct api_response *resp)
{
    int w = snprintf(resp->link, sizeof resp->link,
                     "</images/%s/%s:%s?view=history&n=%ld&last=%lld%s>; rel=\"next\"",
                     ref->registry, ref->repository, ref->tag, p->n, (long long)last,
                     markdown ? "&format=markdown" : "");
    if (w < 0 || (size_t)w >= sizeof resp->link)
        resp->link[0] = '\0'; /* cannot happen within the reference's bounds */
}

/* The store's changes as the renderer reads them (platforms borrowed). */
static int as_render(const struct store_change *c, size_t n, struct render_change **out,
                     struct render_psize **sizes)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += c[i].n_platforms;
    *out = calloc(n + 1, sizeof **out);
    *sizes = calloc(total + 1, sizeof **sizes);
    if (!*out || !*sizes)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct render_change *r = &(*out)[i];
        r->seen = c[i].seen;
        r->digest = c[i].digest;
        r->previous = c[i].previous[0] ? c[i].previous : NULL;
        r->platforms = *sizes + k;
        r->n_platforms = c[i].n_platforms;
        for (size_t j = 0; j < c[i].n_platforms; j++, k++)
            (*sizes)[k] = (struct render_psize){c[i].platforms[j].platform,
                                                c[i].platforms[j].total_size};
    }
    return 0;
}

int api__history(struct api *a, const struct im_ref *ref, bool markdown,
                 const struct api__hpage *p, struct api_response *resp)
{
    struct store_change *c = NULL;
    struct render_change *rows = NULL;
    struct render_psize *sizes = NULL;
    struct im_error err = {{0}};
    char *body = NULL;
    size_t n = 0, len = 0;
    bool more = false;
    int rc =
        store_get_history(a->store, ref, p->before, (size_t)p->n, &c, &n, &more, &err);
    if (rc != 0) {
        rc = api__obtain_error(resp, rc, 0, err.msg);
        goto out;
    }
    rc = as_render(c, n, &rows, &sizes);
    if (rc == 0)
        rc = markdown ? render_history_markdown(ref, rows, n, &body, &len)
                      : render_history_json(ref, rows, n, &body, &len);
    if (rc != 0) {
        rc = api__error_code(resp, rc, "cannot write the history");
        goto out;
    }
    if (more && n > 0)
        next_link(ref, markdown, p, c[n - 1].seq, resp);
    api__answer_200(resp, markdown ? API_CT_MARKDOWN : API_CT_JSON, body, len, NULL);
    body = NULL;
out:
    free(body);
    free(rows);
    free(sizes);
    store_changes_free(c, n);
    return rc;
}

int api__tag_changes(struct api *a, const struct im_ref *ref, struct api__changes *out)
{
    struct im_error err = {{0}};
    bool more = false;
    int rc = store_get_history(a->store, ref, 0, STORE_HISTORY_MAX, &out->c, &out->n,
                               &more, &err);
    if (rc == 0)
        rc = as_render(out->c, out->n, &out->rows, &out->sizes);
    if (rc != 0)
        api__changes_free(out);
    return rc;
}

void api__changes_free(struct api__changes *h)
{
    free(h->rows);
    free(h->sizes);
    store_changes_free(h->c, h->n);
    memset(h, 0, sizeof *h);
}

int api__platform_sizes(const struct im_ref *ref, const struct im_bundle *bundle,
                        struct store_platform_size *out, size_t max, size_t *n)
{
    struct render_image *img = NULL;
    struct im_error err;
    *n = 0;
    if (render_image_build(ref, bundle, &img, &err) != 0)
        return -1;
    for (size_t i = 0; i < img->n_entries && *n < max; i++) {
        const struct render_entry *e = &img->entries[i];
        struct store_platform_size *p = &out[*n];
        if (e->kind != RENDER_KIND_IMAGE ||
            render_platform_short(&e->platform, p->platform, sizeof p->platform) != 0)
            continue; /* an attestation, a nested index, an absurdly long name */
        p->total_size = render_entry_total(e);
        (*n)++;
    }
    render_image_free(img);
    return 0;
}
