/* tags.c - GET /repositories/{repository}/tags?n=&last=: the registry's tag
 * list (reg_list_tags follows the registry's own pages), cut into pages the
 * distribution-spec way: the tags after `last` (in the registry's order; tags
 * lexically after it when the list does not hold it), at most `n`, and a
 * `Link: <...>; rel="next"` header while more remain. Every page asks the
 * registry for the whole list (up to 10000 tags): nothing is cached. */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define PREFIX "/repositories/"
#define SUFFIX "/tags"
#define MAX_PAGE 10000L

bool api__is_tags_path(const char *path)
{
    size_t len = strlen(path), pl = strlen(PREFIX), sl = strlen(SUFFIX);
    return len > pl + sl && strncmp(path, PREFIX, pl) == 0 &&
           strcmp(path + len - sl, SUFFIX) == 0;
}

struct page {
    char repo[IM_REPOSITORY_MAX + IM_REGISTRY_MAX]; /* as the path names it */
    struct im_ref ref;
    long n; /* 0: everything */
    const char *last;
};

/* Returns 0 with p filled, or 1 after writing a 400 (IM_ENOMEM if not even). */
static int parse_page(const struct api_request *req, struct page *p,
                      struct api_response *resp)
{
    struct im_error err = {{0}};
    const char *start = req->path + strlen(PREFIX);
    size_t len = strlen(start) - strlen(SUFFIX);
    char route[sizeof p->repo + 8];
    int rc;
    if (len >= sizeof p->repo)
        rc = api__error(resp, 400, "invalid_reference", "repository name too long");
    else {
        memcpy(p->repo, start, len);
        p->repo[len] = '\0';
        /* The route grammar with a placeholder tag: the same rules as /images/. */
        snprintf(route, sizeof route, "%s/latest", p->repo);
        const char *seg = strrchr(p->repo, '/');
        seg = seg ? seg + 1 : p->repo;
        if (strchr(p->repo, '@') || (strchr(seg, ':') && seg != p->repo))
            rc = api__error(resp, 400, "invalid_reference",
                            "name a repository without tag or digest, e.g. "
                            "/repositories/python/tags");
        else if (api__ref_from_route(route, &p->ref, &err) != 0)
            rc = api__error(resp, 400, "invalid_reference", err.msg);
        else
            rc = -1;
    }
    if (rc == -1 && req->n) {
        char *end = NULL;
        errno = 0;
        p->n = strtol(req->n, &end, 10);
        if (errno || end == req->n || *end || p->n < 1 || p->n > MAX_PAGE)
            rc = api__error(resp, 400, "invalid_parameter",
                            "n must be a whole number from 1 to 10000");
    }
    if (rc == -1 && req->last && (!*req->last || strlen(req->last) >= IM_TAG_MAX))
        rc = api__error(resp, 400, "invalid_parameter",
                        "last must be a tag (1 to 128 characters)");
    p->last = req->last;
    if (rc == -1)
        return 0;
    return rc != 0 ? rc : 1;
}

/* Where the page starts: after `last` in the registry's order when the list
 * holds it, else after the tags lexically up to it (the spec's rule). */
static size_t page_start(const struct page *p, const struct reg_tags *t, bool *lexical)
{
    *lexical = false;
    if (!p->last)
        return 0;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], p->last) == 0)
            return i + 1;
    *lexical = true;
    return 0;
}

/* Writes the page's tags into w's open array; sets *more when tags remain
 * after it. */
static void select_tags(const struct page *p, const struct reg_tags *t, struct im_jw *w,
                        const char **last_out, bool *more)
{
    size_t taken = 0;
    bool lexical = false;
    *more = false;
    for (size_t i = page_start(p, t, &lexical); i < t->n; i++) {
        if (lexical && strcmp(t->v[i], p->last) <= 0)
            continue;
        if (p->n > 0 && taken == (size_t)p->n) {
            *more = true;
            break;
        }
        im_jw_str(w, t->v[i]);
        *last_out = t->v[i];
        taken++;
    }
}

static int upstream_error(struct api_response *resp, int rc,
                          const struct reg_stats *stats, const struct im_error *err)
{
    if (rc == IM_ERATELIMIT || rc == IM_EBUSY)
        resp->retry_after = stats->retry_after > 0 ? stats->retry_after : 60;
    if (rc == IM_ENOTFOUND)
        return api__error(resp, 404, "not_found", err->msg);
    return api__error_code(resp, rc, err->msg);
}

int api__tags(struct api *a, const struct api_request *req, struct api_response *resp)
{
    struct page p;
    struct reg_tags tags = {0};
    struct reg_stats stats = {0};
    struct im_error err = {{0}};
    struct im_jw w = {.b = {.max = API_JSON_MAX}};
    const char *last = NULL;
    bool more = false;
    long busy_retry = 0;
    memset(&p, 0, sizeof p);
    int rc = parse_page(req, &p, resp);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (req->cache_only) {
        rc = API_SLOW; /* every listing asks the registry */
        goto out;
    }
    rc = api__upstream_enter(a, &busy_retry, &err);
    if (rc == 0) {
        rc = reg_list_tags(a->reg, &p.ref, 0, &tags, &stats, &err);
        api__upstream_leave(a);
    } else {
        stats.retry_after = (int)busy_retry;
    }
    if (rc != 0) {
        rc = upstream_error(resp, rc, &stats, &err);
        goto out;
    }
    im_jw_open(&w, '{');
    im_jw_kstr(&w, "registry", p.ref.registry);
    im_jw_kstr(&w, "repository", p.ref.repository);
    im_jw_key(&w, "tags");
    im_jw_open(&w, '[');
    select_tags(&p, &tags, &w, &last, &more);
    im_jw_close(&w, ']');
    im_jw_close(&w, '}');
    rc = api__set_json(resp, 200, &w, true);
    if (rc != 0) {
        rc = api__error_code(resp, rc, "cannot write the tag list");
        goto out;
    }
    if (more && last)
        snprintf(resp->link, sizeof resp->link, "<%s%s%s?n=%ld&last=%s>; rel=\"next\"",
                 PREFIX, p.repo, SUFFIX, p.n, last);
out:
    free(w.b.p);
    reg_tags_free(&tags);
    return rc;
}
