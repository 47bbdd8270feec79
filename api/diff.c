/* diff.c - GET /diff?from=REF&to=REF[&platform=...]: what changed between two
 * images. Each reference is written as `docker pull` takes it (python:3.7,
 * ghcr.io/org/app:v1, name@sha256:...) and obtained as GET /images/ would
 * (the cache, else the registry; a tag that moved is recorded in its
 * history), on an upstream thread once the parameters passed; the models are
 * then compared by the renderer (render_diff_*), per platform both have,
 * after the ?platform= filter. */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

/* The longest reference a side may name (registry, repository, tag and a
 * sha512 digest with their separators fit). */
#define DIFF_REF_MAX (IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX)
/* A platform filter's part (os, architecture, variant). */
#define DIFF_PLATFORM_PART_MAX 64

/* What the helpers below return once they wrote an error answer (API_SLOW
 * is 1). */
#define ANSWERED 2

/* ANSWERED after a 400, or IM_ENOMEM. */
static int refuse(struct api_response *resp, const char *code, const char *message)
{
    int rc = api__error(resp, 400, code, message);
    return rc != 0 ? rc : ANSWERED;
}

/* os/arch[/variant], each part 1 to 64 of [A-Za-z0-9._-]. */
static bool platform_ok(const char *p)
{
    static const char part[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789._-";
    int parts = 0;
    for (const char *s = p;; s++) {
        size_t n = strspn(s, part);
        if (n == 0 || n > DIFF_PLATFORM_PART_MAX)
            return false;
        parts++;
        s += n;
        if (*s == '\0')
            return parts >= 2;
        if (*s != '/' || parts == 3)
            return false;
    }
}

/* One side: present, bounded, a reference. */
static int side(const char *name, const char *value, struct im_ref *ref,
                struct api_response *resp)
{
    struct im_error err = {{0}};
    char msg[IM_ERRMSG_MAX];
    if (!value || !*value) {
        snprintf(msg, sizeof msg,
                 "%s is missing: GET /diff?from=REF&to=REF, each REF as docker pull "
                 "takes it (python:3.7-slim, ghcr.io/org/app:v1, name@sha256:...)",
                 name);
        return refuse(resp, "invalid_parameter", msg);
    }
    if (strlen(value) >= DIFF_REF_MAX) {
        snprintf(msg, sizeof msg, "%s is too long for a reference", name);
        return refuse(resp, "invalid_reference", msg);
    }
    if (reg_ref_parse(value, ref, &err) != 0) {
        snprintf(msg, sizeof msg, "%s: %.300s", name, err.msg);
        return refuse(resp, "invalid_reference", msg);
    }
    return 0;
}

static int parse(const struct api_request *req, struct im_ref *from, struct im_ref *to,
                 struct api_response *resp)
{
    bool format_ok = true;
    (void)api__request_format(req, &format_ok);
    if (!format_ok)
        return refuse(resp, "invalid_parameter", "format must be 'json' or 'markdown'");
    if (req->repeated)
        return refuse(resp, "invalid_parameter", "from and to may each be given once");
    if (req->too_many_platforms)
        return refuse(resp, "invalid_parameter",
                      "too many platform parameters (at most 16)");
    for (size_t i = 0; i < req->n_platforms; i++)
        if (!platform_ok(req->platforms[i]))
            return refuse(
                resp, "invalid_parameter",
                "platform must be os/architecture[/variant], e.g. linux/arm64/v8 "
                "(letters, digits, '.', '_' and '-', at most 64 each)");
    int rc = side("from", req->from, from, resp);
    return rc != 0 ? rc : side("to", req->to, to, resp);
}

/* The model of one side into *m: 0, or ANSWERED after an error answer naming
 * the side (IM_ENOMEM when not even that). */
static int obtain_side(struct api *a, const char *name, const struct im_ref *ref,
                       struct api__model *m, struct api_response *resp)
{
    char msg[IM_ERRMSG_MAX];
    int rc = api__model(a, ref, m, resp);
    if (rc == 0)
        return rc;
    snprintf(msg, sizeof msg, "%s: %.300s", name, m->err.msg);
    rc = rc == IM_ENOTFOUND ? api__error(resp, 404, "not_found", msg)
                            : api__obtain_error(resp, rc, m->retry_after, msg);
    return rc != 0 ? rc : ANSWERED;
}

/* The ?platform= filter on one side: 0, or ANSWERED after a 404 naming what
 * it has. */
static int filter(const struct api_request *req, const char *name,
                  struct render_image *img, struct api_response *resp)
{
    char list[IM_ERRMSG_MAX - 16], msg[IM_ERRMSG_MAX];
    if (req->n_platforms == 0)
        return 0;
    api__list_platforms(img, list, sizeof list);
    if (render_image_filter(img, req->platforms, req->n_platforms) > 0)
        return 0;
    snprintf(msg, sizeof msg, "%s: %s", name, list);
    int rc = api__error(resp, 404, "platform_not_found", msg);
    return rc != 0 ? rc : ANSWERED;
}

int api__diff(struct api *a, const struct api_request *req, struct api_response *resp)
{
    struct im_ref from, to;
    struct api__model m[2];
    char *body = NULL;
    size_t len = 0;
    memset(m, 0, sizeof m);
    resp->vary_accept = true;
    int rc = parse(req, &from, &to, resp);
    /* A diff that passed its checks is answered on an upstream thread, both
     * sides at once: were the first side a cache hit and the second not, the
     * hit would be counted again when the request came back there. */
    if (rc == 0 && req->cache_only)
        rc = API_SLOW;
    if (rc == 0)
        rc = obtain_side(a, "from", &from, &m[0], resp);
    if (rc == 0)
        rc = obtain_side(a, "to", &to, &m[1], resp);
    if (rc == 0)
        rc = filter(req, "from", m[0].img, resp);
    if (rc == 0)
        rc = filter(req, "to", m[1].img, resp);
    if (rc != 0)
        goto out;
    bool markdown = api__request_format(req, NULL) == API_FORMAT_MARKDOWN;
    rc = markdown ? render_diff_markdown(m[0].img, m[1].img, &body, &len)
                  : render_diff_json(m[0].img, m[1].img, &body, &len);
    if (rc != 0) {
        rc = api__error_code(resp, rc, "cannot write the diff");
        goto out;
    }
    api__answer_200(resp, markdown ? API_CT_MARKDOWN : API_CT_JSON, body, len, NULL);
    resp->max_age = m[0].max_age < m[1].max_age ? m[0].max_age : m[1].max_age;
    body = NULL;
out:
    render_image_free(m[0].img);
    render_image_free(m[1].img);
    free(body);
    return rc == ANSWERED ? 0 : rc;
}
