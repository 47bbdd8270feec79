/* describe.c - GET /images/{ref}: reference -> (cache | registry) -> model ->
 * Markdown or JSON, with ETag and Cache-Control.
 *
 * The cache rules, in the order a request meets them:
 *  - a digest reference is answered from the cache for good (never revalidated);
 *  - a tag the registry said does not exist is answered 404 from the negative
 *    cache for --negative-ttl seconds;
 *  - a tag is fresh for --tag-ttl seconds (store_freshness): answered from
 *    the cache, Cache-Control max-age = the freshness left;
 *  - after that it is revalidated (coalesced, inflight.c) with one manifest
 *    HEAD: the same digest only touches the tag; another is resolved;
 *  - when that fails upstream (unreachable, 5xx, 429, timeout) and the entry
 *    is stale by less than --max-stale, the stale answer is served, marked in
 *    headers (Warning: 110, X-Imgmeta-Stale: true) and, for JSON, with a
 *    top-level "stale": true (the renderer is pure and knows no clock, so the
 *    flag is put in front of its object here); Markdown carries it in the
 *    headers only. Past --max-stale the error is returned.
 * Every image answer says where it came from in X-Imgmeta-Cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "metrics.h"
#include "registry.h"
#include "render.h"
#include "store.h"

#define IMMUTABLE_MAX_AGE 31536000L

enum view { VIEW_FULL, VIEW_SUMMARY, VIEW_HISTORY };

struct describe {
    struct im_ref ref;
    enum api_format format;
    enum view view;
    enum render_style style; /* of a Markdown answer */
    struct im_bundle bundle;
    long max_age;
    enum im_outcome outcome; /* IM_OUTCOME_NONE before the cache was asked */
    bool stale;              /* served past its freshness because the upstream failed */
    bool lazy;               /* bundle holds only root_digest: load it when rendering */
    bool store_failed;       /* a cache write failed (the answer is still right) */
    bool cache_only;         /* upstream work ends the call with API_SLOW */
    long retry_after;        /* on IM_ERATELIMIT/IM_EBUSY: seconds for Retry-After, 0 */
    struct im_error store_err;
    struct im_error err;
    struct render_image *model; /* built during the resolution, or NULL */
    /* The HTML page of a tag: the tag's changes (its chart) and the newest
     * one's number (0: none), part of the answer's key and ETag. */
    struct api__changes changes;
    int64_t changes_seq;
};

static void note_store_failure(struct describe *d, const struct im_error *serr);

/* Returns 0 when the options are valid; otherwise writes a 400 response and
 * returns 1 (or IM_ENOMEM when even that failed). */
static int bad_option(struct api_response *resp, const char *message)
{
    int rc = api__error(resp, 400, "invalid_parameter", message);
    return rc != 0 ? rc : 1;
}

static int parse_options(const struct api *a, const struct api_request *req,
                         struct describe *d, struct api_response *resp)
{
    d->style = a->cfg.markdown_style;
    if (req->style && render_style_parse(req->style, &d->style) != 0)
        return bad_option(resp, "style must be 'seed' (the 2018 page's form) or "
                                "'current' (today's: the platform count shown)");
    bool valid = true;
    d->format = api__request_format(req, &valid);
    if (!valid)
        return bad_option(resp, "format must be 'json', 'markdown' or 'html'");
    d->view = VIEW_FULL;
    if (req->view) {
        if (strcmp(req->view, "summary") == 0)
            d->view = VIEW_SUMMARY;
        else if (strcmp(req->view, "history") == 0)
            d->view = VIEW_HISTORY;
        else if (strcmp(req->view, "full") != 0)
            return bad_option(resp, "view must be 'full', 'summary' or 'history'");
    }
    if (d->format == API_FORMAT_HTML) /* the page has the one view */
        d->view = VIEW_FULL;
    if (req->too_many_platforms)
        return bad_option(resp, "too many platform parameters (at most 16)");
    return 0;
}

/* ---- the cache --------------------------------------------------------------- */

/* accessed_at is bumped at most this often: it only orders eviction under the
 * size budget, and every write on the read path takes the write lock (and, over
 * 10,000 tags asked at random, made one write every few requests) */
#define ACCESS_NOTE_EVERY_S 3600
#define API__COUNTERS_FLUSH_S 10

/* Counts an outcome for /metrics and for the store's persistent counters, and
 * remembers it for the answer's header and the access log. */
static void count(struct api *a, struct describe *d, enum im_outcome o)
{
    d->outcome = o;
    im_metric_outcome(o);
    atomic_fetch_add(&a->counters.n[o], 1);
}

/* Writes the pending counters to the store: 0, or the store's error with
 * the counts put back, to be written by a later flush (nothing is lost while
 * the database is busy or away). */
int api__flush_counters(struct api *a, struct im_error *err)
{
    struct api__pending_counters *k = &a->counters;
    struct store_counters delta;
    bool any = false;
    for (size_t i = 0; i < IM_OUTCOME__COUNT; i++) {
        delta.n[i] = atomic_exchange(&k->n[i], 0);
        any = any || delta.n[i] != 0;
    }
    if (!any)
        return 0;
    int rc = store_add_counters(a->store, &delta, err);
    if (rc != 0)
        for (size_t i = 0; i < IM_OUTCOME__COUNT; i++)
            atomic_fetch_add(&k->n[i], delta.n[i]);
    return rc;
}

/* api__flush_counters at most every API__COUNTERS_FLUSH_S seconds (one
 * request wins the compare-exchange). */
static void flush_counters(struct api *a, int64_t now, struct describe *d)
{
    struct api__pending_counters *k = &a->counters;
    int_least64_t last = atomic_load(&k->last_flush);
    if (now - last < API__COUNTERS_FLUSH_S ||
        !atomic_compare_exchange_strong(&k->last_flush, &last, now))
        return;
    struct im_error serr;
    if (api__flush_counters(a, &serr) != 0)
        note_store_failure(d, &serr);
}

static void note_store_failure(struct describe *d, const struct im_error *serr)
{
    im_metric_inc(IM_STORE_WRITE_FAILURES);
    if (!d->store_failed)
        d->store_err = *serr;
    d->store_failed = true;
}

/* Upstream failures that let a stale entry be served instead. */
static bool stale_if_error(int rc)
{
    return rc == IM_EUPSTREAM || rc == IM_ETIMEOUT || rc == IM_ERATELIMIT ||
           rc == IM_EBUSY;
}

/* A digest reference from the cache: 0 with d->bundle filled, IM_ENOTFOUND. */
static int digest_from_cache(struct api *a, struct describe *d)
{
    /* Content is shared by digest, but only this repository's own roots
     * answer for it: the registry never said another repository has it. */
    bool mine = false;
    int rc = store_has_root(a->store, &d->ref, d->ref.digest, &mine, &d->err);
    if (rc != 0)
        return rc; /* IM_EDBDOWN too: obtain answers 503, not a resolution */
    if (!mine)
        return IM_ENOTFOUND;
    d->max_age = IMMUTABLE_MAX_AGE;
    /* as for a fresh tag: the documents are read only if the answer must be
     * rendered (render_answer falls back to a resolution if they are gone) */
    if (im_strlcpy(d->bundle.root_digest, d->ref.digest, sizeof d->bundle.root_digest))
        return IM_ENOTFOUND;
    d->lazy = true;
    return 0;
}

/* Resolution (or revalidation, with prior) shared with concurrent requests. */
static int shared(struct api *a, struct describe *d, const struct store_tag *prior)
{
    struct api__shared how;
    if (d->cache_only)
        return API_SLOW;
    im_bundle_free(&d->bundle);
    int rc = api__resolve_shared(a, &d->ref, prior, &d->bundle, &how, &d->err);
    render_image_free(d->model);
    d->model = how.model;
    d->retry_after = how.retry_after;
    if (how.store_failed)
        note_store_failure(d, &how.store_err);
    if (rc != 0)
        return rc;
    d->max_age = d->ref.tag[0] ? (long)api_config_tag_ttl(&a->cfg, d->ref.registry)
                               : IMMUTABLE_MAX_AGE;
    if (how.coalesced) {
        count(a, d, IM_OUTCOME_COALESCED);
    } else if (how.revalidated) {
        count(a, d, IM_OUTCOME_REVALIDATED);
    } else {
        count(a, d, IM_OUTCOME_MISS);
    }
    return 0;
}

/* The negative cache: IM_ENOTFOUND while a miss is remembered for the tag
 * (until: when it ends, INT64_MIN when none is). */
static int negative(struct api *a, struct describe *d, int64_t until, int64_t now)
{
    if (a->cfg.negative_ttl_seconds <= 0 || now >= until)
        return 0;
    d->max_age = (long)(until - now);
    count(a, d, IM_OUTCOME_NEGATIVE);
    return im_seterr(&d->err, IM_ENOTFOUND,
                     "%s/%s:%s does not exist (the registry said so less than %lld s "
                     "ago)",
                     d->ref.registry, d->ref.repository, d->ref.tag,
                     (long long)a->cfg.negative_ttl_seconds);
}

/* A fresh tag: from the store, noting the access at most once a minute. */
static int fresh_hit(struct api *a, struct describe *d, const struct store_tag *t,
                     int64_t now)
{
    struct im_error serr;
    /* The ETag and a rendered answer need only the root digest: the
     * documents are read when (and only when) the answer must be rendered. */
    if (im_strlcpy(d->bundle.root_digest, t->digest, sizeof d->bundle.root_digest) != 0)
        return IM_ENOTFOUND;
    d->lazy = true;
    if (now - t->accessed_at >= ACCESS_NOTE_EVERY_S &&
        store_note_access(a->store, &d->ref, now, &serr) != 0)
        note_store_failure(d, &serr);
    d->max_age =
        (long)store_fresh_for(t, now, api_config_tag_ttl(&a->cfg, d->ref.registry));
    count(a, d, IM_OUTCOME_HIT);
    return 0;
}

/* Revalidation failed upstream: the stale entry when policy allows. */
static int serve_stale(struct api *a, struct describe *d, const struct store_tag *t,
                       int rc)
{
    im_bundle_free(&d->bundle);
    if (store_load(a->store, t->digest, &d->bundle, NULL) != 0) {
        im_bundle_free(&d->bundle);
        return rc;
    }
    d->stale = true;
    d->max_age = 0;
    count(a, d, IM_OUTCOME_STALE);
    return 0;
}

static int obtain_tag(struct api *a, struct describe *d)
{
    struct store_tag t;
    int64_t now = im_now(), until = INT64_MIN;
    /* the tag and its remembered miss in one read; an unreadable store is
     * asked upstream, as a tag it does not hold */
    int rc = store_lookup_tag(a->store, &d->ref, &t, &until, &d->err);
    int neg = negative(a, d, until, now);
    if (neg != 0)
        return neg;
    /* the shared database is away: what it does not hold in memory cannot be
     * answered (resolving it anyway would cost the upstream on every request,
     * since nothing can be kept) */
    if (rc == IM_EDBDOWN)
        return rc;
    if (rc != 0 || (d->ref.digest[0] && strcmp(d->ref.digest, t.digest) != 0))
        return shared(a, d, NULL); /* unknown, unreadable, or name:tag@digest moved */
    enum store_freshness fr = store_freshness(
        &t, now, api_config_tag_ttl(&a->cfg, d->ref.registry), a->cfg.max_stale_seconds);
    if (fr == STORE_FRESH && fresh_hit(a, d, &t, now) == 0)
        return 0;
    rc = shared(a, d, &t);
    if (rc != 0 && fr == STORE_STALE_REVALIDATE && stale_if_error(rc))
        rc = serve_stale(a, d, &t, rc);
    return rc;
}

static int obtain(struct api *a, struct describe *d)
{
    int rc;
    if (d->ref.tag[0])
        rc = obtain_tag(a, d);
    else if ((rc = digest_from_cache(a, d)) == 0)
        count(a, d, IM_OUTCOME_HIT);
    else if (rc != IM_EDBDOWN)
        rc = shared(a, d, NULL);
    flush_counters(a, im_now(), d);
    return rc;
}

/* Response headers of the cache: X-Imgmeta-Cache always; Warning and
 * X-Imgmeta-Stale on a stale answer. */
static void add_header(struct api_response *resp, const char *name, const char *value)
{
    if (resp->n_extra_headers >= API_MAX_EXTRA_HEADERS)
        return;
    struct api_header *h = &resp->extra_headers[resp->n_extra_headers++];
    h->name = name;
    im_strlcpy(h->value, value, sizeof h->value);
}

static void cache_headers(const struct describe *d, struct api_response *resp)
{
    if (d->outcome != IM_OUTCOME_NONE)
        add_header(resp, "X-Imgmeta-Cache", im_outcome_words(d->outcome)->word);
    if (d->stale) {
        add_header(resp, "Warning", "110 - \"Response is Stale\"");
        add_header(resp, "X-Imgmeta-Stale", "true");
    }
    if (d->store_failed)
        im_strlcpy(resp->store_error, d->store_err.msg, sizeof resp->store_error);
}

/* A stale JSON answer says so in the body too: {"stale":true,...}. The
 * renderer is pure and knows nothing of freshness, so the flag goes in front
 * of its object here. */
static int mark_stale_json(struct api_response *resp)
{
    static const char flag[] = "\"stale\":true,";
    if (resp->len < 2 || resp->body[0] != '{')
        return 0;
    char *grown = malloc(resp->len + sizeof flag);
    if (!grown)
        return IM_ENOMEM;
    grown[0] = '{';
    memcpy(grown + 1, flag, sizeof flag - 1);
    /* The body may be the in-memory cache's shared bytes (resp->shared), which
     * are never changed in place: a new body, exactly len bytes copied and
     * terminated here. */
    memcpy(grown + sizeof flag, resp->body + 1, resp->len - 1);
    size_t len = resp->len + sizeof flag - 1;
    grown[len] = '\0';
    api__drop_body(resp);
    resp->body = grown;
    resp->len = len;
    return 0;
}

/* One character for the representation, in the answer's key and ETag: 'j'
 * JSON, 'm' the seed's Markdown page, 'c' today's, 'h' the HTML page. */
static char representation(const struct describe *d)
{
    if (d->format == API_FORMAT_HTML)
        return 'h';
    if (d->format != API_FORMAT_MARKDOWN)
        return 'j';
    return d->style == RENDER_STYLE_CURRENT ? 'c' : 'm';
}

/* A fixed buffer written in order (the ETag, the answer key): len counts
 * every byte asked for, so len >= cap says it did not fit; what is written
 * stops at the end of the buffer. */
struct kbuf {
    char *p;
    size_t cap, len;
};

static void kput(struct kbuf *b, const char *s, size_t n)
{
    if (b->len < b->cap)
        memcpy(b->p + b->len, s, n < b->cap - b->len ? n : b->cap - b->len);
    b->len += n;
}

static void kputc(struct kbuf *b, char c)
{
    kput(b, &c, 1);
}

/* Ends b's string with a NUL (cut at its last byte when it did not fit):
 * whether everything fitted. */
static bool kend(struct kbuf *b)
{
    if (b->cap == 0)
        return false;
    b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
    return b->len < b->cap;
}

/* The answer's entity tag; each content coding has its own (gz: gzip). */
static void make_etag(const struct describe *d, const struct api_request *req, bool gz,
                      char *buf, size_t n)
{
    uint64_t h = IM_FNV1A_START; /* the platform filter, folded into the ETag */
    for (size_t i = 0; i < req->n_platforms; i++)
        h = im_fnv1a(im_fnv1a(h, req->platforms[i], strlen(req->platforms[i])), ",", 1);
    const char *digest = d->bundle.root_digest;
    const char *hex = strchr(digest, ':');
    hex = hex ? hex + 1 : digest;
    char seq[32] = ""; /* a tag's HTML page: its newest change (answer_key) */
    if (d->changes_seq > 0)
        snprintf(seq, sizeof seq, "-@%lld", (long long)d->changes_seq);
    /* "HEX40-RV-H16[-@SEQ][-stale][-gzip]", written by hand: every answer
     * makes one, and snprintf was a visible part of a warm answer's cost */
    static const char xdigit[] = "0123456789abcdef";
    struct kbuf b = {buf, n, 0};
    kputc(&b, '"');
    kput(&b, hex, strnlen(hex, 40));
    kputc(&b, '-');
    kputc(&b, representation(d));
    kputc(&b, d->view == VIEW_SUMMARY ? 's' : 'f');
    kputc(&b, '-');
    for (int shift = 60; shift >= 0; shift -= 4)
        kputc(&b, xdigit[(h >> shift) & 0xf]);
    kput(&b, seq, strlen(seq));
    if (d->stale)
        kput(&b, "-stale", 6);
    if (gz)
        kput(&b, "-gzip", 5);
    kputc(&b, '"');
    kend(&b); /* cut as snprintf would, were buf ever too short */
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

/* If-None-Match: 304 (true) when it names the plain answer's entity tag or,
 * for a request that accepts gzip, the gzip encoding's; the 304 carries the
 * tag that matched (only an answer over API_GZIP_MIN bytes was ever given the
 * gzip one). Else resp->etag is the plain answer's (false). */
static bool not_modified(const struct describe *d, const struct api_request *req, bool gz,
                         struct api_response *resp)
{
    make_etag(d, req, false, resp->etag, sizeof resp->etag);
    bool hit = etag_matches(req->if_none_match, resp->etag);
    if (!hit && gz && req->if_none_match) {
        char tag[sizeof resp->etag];
        make_etag(d, req, true, tag, sizeof tag);
        hit = etag_matches(req->if_none_match, tag);
        if (hit)
            memcpy(resp->etag, tag, sizeof tag);
    }
    if (hit) {
        resp->status = 304;
        resp->content_type = NULL;
    }
    return hit;
}

/* "no platform matches; this image has: linux/amd64, linux/arm/v7" */
void api__list_platforms(const struct render_image *img, char *msg, size_t n)
{
    size_t off = (size_t)snprintf(msg, n, "no platform matches; this image has: ");
    for (size_t i = 0; i < img->n_entries && off < n; i++) {
        const struct render_platform *p = &img->entries[i].platform;
        off += (size_t)snprintf(msg + off, n - off, "%s%s/%s%s%s", i ? ", " : "", p->os,
                                p->architecture, p->variant ? "/" : "",
                                p->variant ? p->variant : "");
    }
}

/* The rendered-answer key: root digest, the reference as asked (registry,
 * repository, tag, digest: the page names it), representation (the Markdown
 * page's form included) and platform filter, NUL-separated. *coding_at is
 * where gzip_key puts the encoding: right after the representation.
 *
 * A tag's HTML page also shows the tag's history, so its key names the newest
 * change's number too ('@' and the number after the representation). The
 * root digest alone would nearly do, since a new change means a new digest,
 * but not when a tag goes back to a digest it had: A, B, A again would find
 * the page rendered when the history was only A. The change number grows
 * with every change (store_history.c), so a page kept in any tier (memory,
 * answers file, the store's rendered rows) is never one with a shorter
 * history. */
static size_t answer_key(const struct describe *d, const struct api_request *req,
                         char *key, size_t n, size_t *coding_at)
{
    /* written by hand, as make_etag: every answer makes one */
    struct kbuf b = {key, n, 0};
    const char *const parts[] = {d->bundle.root_digest, d->ref.registry,
                                 d->ref.repository, d->ref.tag, d->ref.digest};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        kput(&b, parts[i], strlen(parts[i]));
        kputc(&b, '\0');
    }
    kputc(&b, representation(d));
    kputc(&b, d->view == VIEW_SUMMARY ? 's' : 'f');
    *coding_at = b.len;
    if (d->changes_seq > 0) {
        char seq[32];
        int m = snprintf(seq, sizeof seq, "@%lld", (long long)d->changes_seq);
        kputc(&b, '\0');
        kput(&b, seq, m > 0 ? (size_t)m : 0);
    }
    for (size_t i = 0; i < req->n_platforms; i++) {
        kputc(&b, '\0');
        kput(&b, req->platforms[i], strlen(req->platforms[i]));
    }
    return kend(&b) ? b.len : 0; /* 0: too long, no caching */
}

/* The key of the gzip encoding of the answer under key: a 'z' after its
 * representation (so no platform filter can spell it). 0 when there is none. */
static size_t gzip_key(const char *key, size_t klen, size_t at, char *gkey, size_t n)
{
    if (!klen || klen + 1 >= n || at > klen)
        return 0;
    memcpy(gkey, key, at);
    gkey[at] = 'z';
    memcpy(gkey + at + 1, key + at, klen - at);
    gkey[klen + 1] = '\0';
    return klen + 1;
}

/* The Content-Type of d's answers. */
static const char *answer_ctype(const struct describe *d)
{
    if (d->format == API_FORMAT_HTML)
        return API_CT_HTML;
    return d->format == API_FORMAT_MARKDOWN ? API_CT_MARKDOWN : API_CT_JSON;
}

/* A fresh hit read only its root digest (d->lazy): reads its documents, or
 * resolves it again when they are gone from the store meanwhile. 0, API_SLOW
 * or the error code with d->err. */
static int load_documents(struct api *a, struct describe *d)
{
    char root[IM_DIGEST_MAX];
    if (!d->lazy)
        return 0;
    im_strlcpy(root, d->bundle.root_digest, sizeof root);
    im_bundle_free(&d->bundle);
    d->lazy = false;
    int rc = store_load(a->store, root, &d->bundle, &d->err);
    if (rc != 0 && rc != IM_EDBDOWN)
        rc = shared(a, d, NULL);
    return rc;
}

/* The answer from the tiers, gzip-encoded when gz allows (gkey: its key
 * then): 0, or IM_ENOTFOUND. */
static int kept_answer(struct api *a, const struct describe *d,
                       const struct api_request *req, const char *key, size_t klen,
                       const char *gkey, size_t gklen, struct api_response *resp)
{
    /* a stale JSON answer gets a flag into its bytes (mark_stale_json) */
    bool file_ok = req->file_body && !(d->stale && d->format == API_FORMAT_JSON);
    if (gkey)
        return api__answers_get_gzip(a->answers, key, klen, gkey, gklen, answer_ctype(d),
                                     file_ok, resp);
    return api__answers_get(a->answers, key, klen, answer_ctype(d), file_ok, resp);
}

/* The answer, rendered if no tier holds it; with gz, gzip-encoded when it is
 * over API_GZIP_MIN bytes (resp->content_encoding then says so). */
static int render_answer(struct api *a, struct describe *d, const struct api_request *req,
                         bool gz, struct api_response *resp)
{
    struct render_image *img = NULL;
    char *body = NULL, key[1024], gkey[1024];
    size_t len = 0, at = 0, klen = answer_key(d, req, key, sizeof key, &at);
    size_t gklen = gz ? gzip_key(key, klen, at, gkey, sizeof gkey) : 0;
    if (kept_answer(a, d, req, key, klen, gz ? gkey : NULL, gklen, resp) == 0)
        return 0;
    int rc = load_documents(a, d);
    if (rc == API_SLOW)
        goto out;
    if (rc != 0) {
        rc = api__error_code(resp, rc, d->err.msg);
        goto out;
    }
    img = d->model; /* built while the answer was stored, or built now */
    d->model = NULL;
    rc = img ? 0 : render_image_build(&d->ref, &d->bundle, &img, &d->err);
    if (rc != 0) {
        rc = api__error_code(resp, rc, d->err.msg);
        goto out;
    }
    if (req->n_platforms > 0) {
        char msg[IM_ERRMSG_MAX];
        api__list_platforms(img, msg, sizeof msg);
        if (render_image_filter(img, req->platforms, req->n_platforms) == 0) {
            rc = api__error(resp, 404, "platform_not_found", msg);
            goto out;
        }
    }
    if (d->format == API_FORMAT_MARKDOWN)
        rc = render_markdown(img, d->style, &body, &len);
    else if (d->format == API_FORMAT_HTML)
        rc = render_html_with_history(img, d->changes.rows, d->changes.n, &body, &len);
    else if (d->view == VIEW_SUMMARY)
        rc = render_json_summary(img, &body, &len);
    else
        rc = render_json(img, &body, &len);
    if (rc != 0) {
        rc = api__error_code(resp, IM_ENOMEM, "out of memory while rendering");
        goto out;
    }
    api__answers_put(a->answers, &d->ref, key, klen, body, len, answer_ctype(d), resp);
    if (gz && api__answers_put_gzip(a->answers, gkey, gklen, body, len, answer_ctype(d),
                                    resp) == 0)
        goto out; /* the answer is the compressed copy; body is freed below */
    api__answer_200(resp, answer_ctype(d), body, len, NULL);
    body = NULL;
out:
    free(body);
    render_image_free(img);
    return rc;
}

/* A missing tag: the "does not exist" page for Markdown and HTML, else the
 * JSON error. */
static int not_found(struct describe *d, struct api_response *resp)
{
    char *body = NULL;
    size_t len = 0;
    int rc;
    if (d->format == API_FORMAT_MARKDOWN)
        rc = render_markdown_not_found(&d->ref, &body, &len);
    else if (d->format == API_FORMAT_HTML)
        rc = render_html_not_found(&d->ref, &body, &len);
    else
        return api__error(resp, 404, "not_found", d->err.msg);
    if (rc != 0)
        return IM_ENOMEM;
    api__drop_body(resp);
    resp->status = 404;
    resp->content_type = answer_ctype(d);
    resp->body = body;
    resp->len = len;
    return 0;
}

int api__obtain_error(struct api_response *resp, int rc, long retry_after,
                      const char *message)
{
    if (rc == IM_ERATELIMIT || rc == IM_EBUSY)
        resp->retry_after = retry_after > 0 ? retry_after : 60;
    if (rc == IM_EDBDOWN)
        resp->retry_after = 5; /* the store reconnects at the next request */
    return api__error_code(resp, rc, message);
}

/* The tag's changes for the HTML page's chart. A store that cannot read them
 * leaves the page without its chart (the page is still right, and is kept
 * under the key of a tag without history). */
static void tag_changes(struct api *a, struct describe *d)
{
    int64_t newest = 0;
    if (api__tag_changes(a, &d->ref, &d->changes) != 0)
        return;
    for (size_t i = 0; i < d->changes.n; i++)
        newest = d->changes.c[i].seq > newest ? d->changes.c[i].seq : newest;
    d->changes_seq = newest;
}

int api__describe(struct api *a, const struct api_request *req, struct api_response *resp)
{
    struct describe d;
    struct api__hpage page = {0, 0};
    memset(&d, 0, sizeof d);
    im_bundle_init(&d.bundle);
    int rc = parse_options(a, req, &d, resp);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    resp->vary_accept = true;
    rc = api__ref_from_route(req->path + strlen("/images/"), &d.ref, &d.err);
    if (rc != 0) {
        rc = api__error(resp, 400, "invalid_reference", d.err.msg);
        goto out;
    }
    if (d.view == VIEW_HISTORY) {
        rc = api__history_params(req, &d.ref, &page, resp);
        if (rc != 0) {
            rc = rc < 0 ? rc : 0;
            goto out;
        }
    }
    d.cache_only = req->cache_only;
    rc = obtain(a, &d);
    if (rc == API_SLOW)
        goto out;
    resp->cache = d.outcome;
    cache_headers(&d, resp);
    if (rc == IM_ENOTFOUND) {
        rc = not_found(&d, resp);
        if (rc == 0 && d.outcome == IM_OUTCOME_NEGATIVE)
            resp->max_age = d.max_age;
        goto out;
    }
    if (rc != 0) {
        rc = api__obtain_error(resp, rc, d.retry_after, d.err.msg);
        goto out;
    }
    if (d.view == VIEW_HISTORY) {
        resp->max_age = d.max_age < 0 ? 0 : d.max_age;
        rc = api__history(a, &d.ref, d.format == API_FORMAT_MARKDOWN, &page, resp);
        goto out;
    }
    resp->max_age = d.max_age < 0 ? 0 : d.max_age;
    /* a stale JSON answer gets a flag into its bytes: sent plain */
    bool gz = api__accepts_gzip(req->accept_encoding) &&
              !(d.stale && d.format == API_FORMAT_JSON);
    if (d.format == API_FORMAT_HTML && d.ref.tag[0])
        tag_changes(a, &d);
    if (not_modified(&d, req, gz, resp))
        goto out;
    rc = render_answer(a, &d, req, gz, resp);
    if (rc == API_SLOW)
        goto out;
    if (rc == 0 && resp->content_encoding)
        make_etag(&d, req, true, resp->etag, sizeof resp->etag);
    if (rc == 0 && d.stale && resp->status == 200 && d.format == API_FORMAT_JSON)
        rc = mark_stale_json(resp);
out:
    api__changes_free(&d.changes);
    render_image_free(d.model);
    im_bundle_free(&d.bundle);
    return rc;
}

int api__model(struct api *a, const struct im_ref *ref, struct api__model *out,
               struct api_response *resp)
{
    struct describe d;
    memset(&d, 0, sizeof d);
    im_bundle_init(&d.bundle);
    d.ref = *ref;
    out->img = NULL;
    int rc = obtain(a, &d);
    if (rc == 0)
        rc = load_documents(a, &d);
    if (rc == 0 && !d.model)
        rc = render_image_build(&d.ref, &d.bundle, &d.model, &d.err);
    if (rc == 0) {
        out->img = d.model;
        d.model = NULL;
    }
    out->max_age = d.max_age < 0 ? 0 : d.max_age;
    out->retry_after = d.retry_after;
    out->err = d.err;
    if (d.store_failed)
        im_strlcpy(resp->store_error, d.store_err.msg, sizeof resp->store_error);
    render_image_free(d.model);
    im_bundle_free(&d.bundle);
    return rc;
}

/* ---- watched images ---- */

static bool seen_platform(const struct api_watch_facts *f, const char *platform)
{
    for (size_t i = 0; i < f->n_platforms; i++)
        if (strcmp(f->platforms[i].platform, platform) == 0)
            return true;
    return false;
}

/* The image entries of img (no attestations, no nested indexes) into f. */
static int watch_platforms(const struct render_image *img, struct api_watch_facts *f)
{
    size_t n = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        n += img->entries[i].kind == RENDER_KIND_IMAGE;
    n = n < API_WATCH_PLATFORMS_MAX ? n : API_WATCH_PLATFORMS_MAX;
    f->platforms = calloc(n ? n : 1, sizeof *f->platforms); /* kept per reference */
    if (!f->platforms)
        return IM_ENOMEM;
    for (size_t i = 0; i < img->n_entries && f->n_platforms < n; i++) {
        const struct render_entry *e = &img->entries[i];
        struct api_watch_platform *p = &f->platforms[f->n_platforms];
        if (e->kind != RENDER_KIND_IMAGE)
            continue;
        snprintf(p->platform, sizeof p->platform, "%s/%s%s%s", e->platform.os,
                 e->platform.architecture, e->platform.variant ? "/" : "",
                 e->platform.variant ? e->platform.variant : "");
        /* Windows images list one platform per OS version: those tell apart */
        if (seen_platform(f, p->platform) && e->platform.os_version) {
            size_t at = strlen(p->platform);
            snprintf(p->platform + at, sizeof p->platform - at, ":%s",
                     e->platform.os_version);
        }
        if (seen_platform(f, p->platform))
            continue; /* one series per platform label: the first entry's */
        p->size = render_entry_total(e); /* the page's Total Size, -1 unknown */
        p->layers = (long)e->n_layers;
        f->n_platforms++;
    }
    return 0;
}

/* When the store first saw digest for ref's tag (the tag row's resolved_at,
 * kept across restarts and shared by replicas); 0 when it cannot tell. */
static int64_t digest_since(struct api *a, const struct im_ref *ref, const char *digest)
{
    struct store_tag t;
    struct im_error serr;
    if (!ref->tag[0] || store_lookup_tag(a->store, ref, &t, NULL, &serr) != 0 ||
        strcmp(t.digest, digest) != 0)
        return 0;
    return t.resolved_at;
}

int api_watch_check(struct api *a, const struct im_ref *ref, const char *known,
                    struct api_watch_facts *out, struct im_error *err)
{
    struct describe d;
    struct render_image *img = NULL;
    memset(&d, 0, sizeof d);
    memset(out, 0, sizeof *out);
    im_bundle_init(&d.bundle);
    d.ref = *ref;
    d.format = API_FORMAT_JSON;
    int rc = obtain(a, &d);
    out->cache = d.outcome;
    out->retry_after = d.retry_after;
    if (rc != 0)
        goto out;
    out->stale = d.stale;
    out->fresh_for = d.max_age < 0 ? 0 : d.max_age;
    im_strlcpy(out->digest, d.bundle.root_digest, sizeof out->digest);
    if (known && strcmp(known, out->digest) == 0)
        goto out;
    out->changed = true;
    rc = load_documents(a, &d);
    if (rc == 0 && !d.model)
        rc = render_image_build(&d.ref, &d.bundle, &d.model, &d.err);
    if (rc != 0)
        goto out;
    img = d.model;
    d.model = NULL;
    im_strlcpy(out->digest, img->digest ? img->digest : d.bundle.root_digest,
               sizeof out->digest);
    rc = watch_platforms(img, out);
    if (rc == 0)
        out->since = digest_since(a, &d.ref, out->digest);
out:
    if (rc != 0) {
        im_seterr(err, rc, "%s", d.err.msg[0] ? d.err.msg : im_strerror(rc));
        api_watch_facts_free(out);
    }
    render_image_free(img);
    render_image_free(d.model);
    im_bundle_free(&d.bundle);
    return rc;
}

void api_watch_facts_free(struct api_watch_facts *f)
{
    if (!f)
        return;
    free(f->platforms);
    f->platforms = NULL;
    f->n_platforms = 0;
}
