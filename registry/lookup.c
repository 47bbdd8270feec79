/* lookup.c - the registry calls that are not a resolution: reg_head_manifest
 * (one HEAD to revalidate a cached tag) and reg_list_tags (tags/list with Link
 * pagination). Both run on the same session, auth and transfer machinery as
 * reg_resolve (fetch.c), one transfer per stage. */
#include "registry_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TAGS_DEFAULT_MAX 10000
#define TAGS_MAX_PAGES 1000

static int check_ref(const struct im_ref *ref, bool need_ref, struct im_error *err)
{
    if (!ref->registry[0] || !ref->repository[0] ||
        (need_ref && !ref->tag[0] && !ref->digest[0]))
        return im_seterr(err, IM_EINVAL, "incomplete reference");
    if (need_ref && ref->digest[0] && !reg_digest_valid(ref->digest))
        return im_seterr(err, IM_EINVAL, "invalid digest '%.80s'", ref->digest);
    return 0;
}

/* ---- reg_head_manifest ---- */

static int take_head(const struct reg__session *s, const struct reg__xfer *x,
                     struct reg_head *out, struct im_error *err)
{
    const char *sep = x->by_digest ? "@" : ":";
    if (!x->dcd[0] || !reg_digest_valid(x->dcd))
        return im_seterr(err, IM_EPROTO,
                         "manifest %s/%s%s%s: HEAD answer without a valid "
                         "Docker-Content-Digest ('%.80s')",
                         s->registry, s->repository, sep, x->ref, x->dcd);
    if (x->by_digest && strcmp(x->dcd, x->ref) != 0)
        return im_seterr(err, IM_EDIGEST,
                         "manifest %s/%s@%s: registry says its digest is %s", s->registry,
                         s->repository, x->ref, x->dcd);
    memset(out, 0, sizeof *out);
    im_strlcpy(out->digest, x->dcd, sizeof out->digest);
    im_strlcpy(out->media_type, x->content_type, sizeof out->media_type);
    out->size = x->clen;
    return 0;
}

int reg_head_manifest(struct reg_client *c, const struct im_ref *ref,
                      struct reg_head *out, struct reg_stats *stats, struct im_error *err)
{
    struct reg__session s;
    struct reg__xfer x;
    memset(&s, 0, sizeof s);
    memset(&x, 0, sizeof x);
    int rc = check_ref(ref, true, err);
    if (rc)
        goto out;
    rc = reg__session_open(&s, c, ref, err);
    if (rc)
        goto out;
    x.kind = REG__MANIFEST_HEAD;
    x.by_digest = ref->digest[0] != '\0';
    x.desc_size = -1;
    im_strlcpy(x.ref, x.by_digest ? ref->digest : ref->tag, sizeof x.ref);
    rc = reg__run_one(&s, &x, err);
    if (rc)
        goto out;
    rc = take_head(&s, &x, out, err);
out:
    reg__xfer_release(&x);
    reg__session_close(&s, stats);
    return rc;
}

/* ---- reg_list_tags ---- */

void reg_tags_free(struct reg_tags *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static int tags_push(struct reg_tags *t, size_t *cap, const char *tag)
{
    if (t->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **p = realloc(t->v, nc * sizeof *p);
        if (!p)
            return IM_ENOMEM;
        t->v = p;
        *cap = nc;
    }
    t->v[t->n] = strdup(tag);
    if (!t->v[t->n])
        return IM_ENOMEM;
    t->n++;
    return 0;
}

/* Appends the page's tags to t; *more tells whether the page was cut short
 * by max. */
static int take_page(const struct reg__session *s, const struct reg__xfer *x,
                     struct reg_tags *t, size_t *cap, size_t max, struct im_error *err)
{
    json_error_t jerr;
    int rc = 0;
    json_t *root = json_loadb(x->body.p, x->body.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *tags = json_object_get(root, "tags");
    size_t i;
    json_t *v;
    if (!json_is_object(root) || !(json_is_array(tags) || json_is_null(tags) || !tags)) {
        rc = im_seterr(err, IM_EPROTO, "tag list of %s/%s is not {\"tags\": [...]}: %s",
                       s->registry, s->repository, root ? "wrong shape" : jerr.text);
        goto out;
    }
    json_array_foreach(tags, i, v)
    {
        const char *tag = json_string_value(v);
        if (!tag || !reg__tag_valid(tag)) {
            rc = im_seterr(err, IM_EPROTO,
                           "tag list of %s/%s holds an invalid tag '%.80s'", s->registry,
                           s->repository, tag ? tag : "(not a string)");
            goto out;
        }
        if (t->n >= max) {
            t->truncated = true;
            break;
        }
        if (tags_push(t, cap, tag) != 0) {
            rc = im_seterr(err, IM_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

/* Length of "scheme://authority" at the start of url, 0 when it has none. */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

/* The next page's URL from `Link: <url>; rel="next"` (RFC 8288), resolved
 * against the registry's origin; "" in next when there is none. A next URL on
 * another origin is IM_EPOLICY. */
static int next_page(const struct reg__session *s, const char *link, char *next, size_t n,
                     struct im_error *err)
{
    next[0] = '\0';
    for (const char *p = strchr(link, '<'); p; p = strchr(p, '<')) {
        const char *e = strchr(p, '>');
        if (!e)
            break;
        const char *params = e + 1, *end = params + strcspn(params, ",");
        const char *rel = strstr(params, "rel=");
        if (!rel || rel > end ||
            (strncmp(rel + 4, "\"next\"", 6) != 0 && strncmp(rel + 4, "next", 4) != 0)) {
            p = end;
            continue;
        }
        size_t ul = (size_t)(e - p - 1), ol = origin_len(s->base);
        int len;
        if (p[1] == '/')
            len = snprintf(next, n, "%.*s%.*s", (int)ol, s->base, (int)ul, p + 1);
        else if (origin_len(p + 1) == ol && strncasecmp(p + 1, s->base, ol) == 0)
            len = snprintf(next, n, "%.*s", (int)ul, p + 1);
        else
            return im_seterr(err, IM_EPOLICY,
                             "tag list of %s/%s: next page '%.100s' leaves the registry",
                             s->registry, s->repository, p + 1);
        if (len < 0 || (size_t)len >= n)
            return im_seterr(err, IM_EPROTO, "tag list of %s/%s: next page URL too long",
                             s->registry, s->repository);
        return reg__check_url(next, err);
    }
    return 0;
}

static int list_pages(struct reg__session *s, size_t max, struct reg_tags *t,
                      struct im_error *err)
{
    struct reg__xfer x;
    char next[sizeof x.url];
    size_t cap = 0;
    int rc = 0;
    int len = snprintf(next, sizeof next, "%s/v2/%s/tags/list", s->base, s->repository);
    if (len < 0 || (size_t)len >= sizeof next)
        return im_seterr(err, IM_EINVAL, "request URL is too long");
    for (int page = 0; rc == 0 && next[0] && !t->truncated; page++) {
        if (page >= TAGS_MAX_PAGES)
            return im_seterr(err, IM_ETOOBIG, "tag list of %s/%s has over %d pages",
                             s->registry, s->repository, TAGS_MAX_PAGES);
        memset(&x, 0, sizeof x);
        x.kind = REG__TAGS;
        x.desc_size = -1;
        memcpy(x.url, next, sizeof x.url);
        rc = reg__run_one(s, &x, err);
        if (rc == 0)
            rc = take_page(s, &x, t, &cap, max, err);
        if (rc == 0)
            rc = next_page(s, x.link, next, sizeof next, err);
        if (rc == 0 && t->n >= max && next[0])
            t->truncated = true;
        reg__xfer_release(&x);
    }
    return rc;
}

int reg_list_tags(struct reg_client *c, const struct im_ref *ref, size_t max_tags,
                  struct reg_tags *out, struct reg_stats *stats, struct im_error *err)
{
    struct reg__session s;
    struct reg_tags t = {0};
    memset(&s, 0, sizeof s);
    int rc = check_ref(ref, false, err);
    if (rc)
        goto out;
    rc = reg__session_open(&s, c, ref, err);
    if (rc)
        goto out;
    rc = list_pages(&s, max_tags ? max_tags : TAGS_DEFAULT_MAX, &t, err);
    if (rc)
        goto out;
    reg_tags_free(out);
    *out = t;
    memset(&t, 0, sizeof t);
out:
    reg_tags_free(&t);
    reg__session_close(&s, stats);
    return rc;
}
