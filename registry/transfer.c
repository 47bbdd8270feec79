/* transfer.c - one upstream request: what each kind of request is (one
 * table, kinds), the one easy-handle setup every request gets, token GETs
 * included (timeouts, the error buffer, NOSIGNAL, protocols, the policy
 * guard's socket callbacks, redirects, caps, credentials, Accept), and the
 * capture of its answer: the body under its cap, and the headers
 * (Docker-Content-Digest, WWW-Authenticate, Link, Retry-After, ratelimit-*).
 *
 * Authorization: the bearer token is given to curl as CURLOPT_XOAUTH2_BEARER
 * with CURLOPT_HTTPAUTH = CURLAUTH_BEARER, and Basic credentials as
 * CURLOPT_USERNAME/PASSWORD with CURLAUTH_BASIC, never as a custom header.
 * curl sends either only to the host, port and scheme of the first request
 * (Curl_auth_allowed_to_host, 7.83+), so a blob redirect to a CDN does not
 * carry the registry's credentials; tests/unit/test_registry_resolve.c and
 * test_registry_creds.c check it.
 * Foreign-layer HEADs carry none at all. */
#include "registry_int.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.h"

/* ---- callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *cls)
{
    struct reg__xfer *x = cls;
    size_t n = size * nmemb;
    /* most manifests and configs fit in the first 16 KiB: one allocation */
    int rc = x->body.cap ? 0 : im_buf_reserve(&x->body, 16384);
    if (!rc)
        rc = im_buf_append(&x->body, data, n);
    if (rc == IM_ETOOBIG)
        x->toobig = true;
    else if (rc)
        x->nomem = true; /* out of memory, not the registry's fault */
    return rc ? 0 : n;   /* 0 aborts with CURLE_WRITE_ERROR */
}

/* Copies a header's value (trimmed) into dst when the line is `name: value`. */
static bool header_value(const char *line, size_t len, const char *name, char *dst,
                         size_t n)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if ((size_t)(e - v) >= n)
        return false; /* over-long values are treated as absent */
    memcpy(dst, v, (size_t)(e - v));
    dst[e - v] = '\0';
    return true;
}

/* Docker Hub's "100;w=21600" -> 100; empty (";w=21600") or malformed -> -1. */
static long ratelimit_value(const char *v)
{
    char *end = NULL;
    if (!isdigit((unsigned char)v[0]))
        return -1;
    long n = strtol(v, &end, 10);
    return (end != v && (*end == '\0' || *end == ';' || *end == ' ')) ? n : -1;
}

static void on_ratelimit(struct reg__xfer *x, const char *line, size_t n)
{
    char v[64];
    if (header_value(line, n, "ratelimit-limit", v, sizeof v)) {
        x->rl_limit = ratelimit_value(v);
        x->rl_seen = true;
    }
    if (header_value(line, n, "ratelimit-remaining", v, sizeof v)) {
        x->rl_remaining = ratelimit_value(v);
        x->rl_seen = true;
    }
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *cls)
{
    struct reg__xfer *x = cls;
    size_t n = size * nmemb;
    char num[32];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer (redirects) */
        x->dcd[0] = '\0';
        x->www[0] = '\0';
        x->link[0] = '\0';
        x->retry_after[0] = '\0';
        x->clen = -1;
        return n;
    }
    on_ratelimit(x, line, n);
    header_value(line, n, "retry-after", x->retry_after, sizeof x->retry_after);
    header_value(line, n, "docker-content-digest", x->dcd, sizeof x->dcd);
    header_value(line, n, "link", x->link, sizeof x->link);
    char www[sizeof x->www];
    /* keep the first challenge, but prefer a Bearer one when several come */
    if (header_value(line, n, "www-authenticate", www, sizeof www) &&
        (!x->www[0] ||
         (strncasecmp(x->www, "Bearer ", 7) != 0 && strncasecmp(www, "Bearer ", 7) == 0)))
        memcpy(x->www, www, sizeof www);
    if (header_value(line, n, "content-length", num, sizeof num)) {
        char *end = NULL;
        long long v = strtoll(num, &end, 10);
        x->clen = (end != num && *end == '\0' && v >= 0) ? (int64_t)v : -1;
    }
    return n;
}

/* ---- what each kind of request is ---- */

/* Which bound an answer's body is held to. */
enum cap {
    CAP_MANIFEST, /* cfg.max_manifest_bytes: manifests, tag pages, any other answer */
    CAP_CONFIG,   /* cfg.max_config_bytes */
    CAP_TOKEN     /* TOKEN_MAX_BYTES: a token endpoint's JSON */
};
#define TOKEN_MAX_BYTES (64 * 1024)

/* Whose credentials a request carries (as CURLOPT_HTTPAUTH: see the top). */
enum creds {
    CREDS_NONE,    /* none: not the registry, or asking it how to authenticate */
    CREDS_SESSION, /* the session's: Basic when s->basic, else its bearer token */
    CREDS_LOGIN    /* the registry's Basic credentials, to its token realm */
};

enum method { GET, HEAD };
/* Redirects: either a 3xx is the answer, or it is followed (up to
 * cfg.max_redirects) and the credentials stay behind at the first origin. */
enum redirects { STAY, FOLLOW };
enum failure { FATAL, OPTIONAL };

/* What differs between the kinds of request; every request gets the rest
 * alike (reg__xfer_setup). */
struct kind {
    const char *resource;      /* URL: <base>/v2/<repository>/<resource>/<ref>; ""
                                  <base>/v2/; NULL the caller's (x->url) */
    enum method method;        /* a GET's body is held to cap */
    const char *const *accept; /* Accept headers (NULL-terminated), or NULL */
    enum cap cap;
    enum redirects redirects;
    enum creds creds;
    enum failure failure; /* OPTIONAL: recorded in x->failed, the run goes on */
    size_t counter;       /* offset of its reg_stats counter, or NO_COUNTER */
};

static const char *const accept_manifests[] = {
    "Accept: " IM_MT_OCI_INDEX,
    "Accept: " IM_MT_OCI_MANIFEST,
    "Accept: " IM_MT_DOCKER_LIST,
    "Accept: " IM_MT_DOCKER_V2,
    "Accept: " IM_MT_DOCKER_V1_SIGNED,
    "Accept: " IM_MT_DOCKER_V1,
    NULL,
};

#define COUNTER(field) offsetof(struct reg_stats, field)
#define NO_COUNTER SIZE_MAX

/* resource, method, accept, cap, redirects, creds, failure, counter */
static const struct kind kinds[] = {
    [REG__MANIFEST] = {"manifests", GET, accept_manifests, CAP_MANIFEST, FOLLOW,
                       CREDS_SESSION, FATAL, COUNTER(manifest_gets)},
    [REG__MANIFEST_HEAD] = {"manifests", HEAD, accept_manifests, CAP_MANIFEST, FOLLOW,
                            CREDS_SESSION, FATAL, COUNTER(manifest_heads)},
    [REG__CONFIG] = {"blobs", GET, NULL, CAP_CONFIG, FOLLOW, CREDS_SESSION, FATAL,
                     COUNTER(blob_gets)},
    [REG__LAYER] = {"blobs", HEAD, NULL, CAP_MANIFEST, FOLLOW, CREDS_SESSION, FATAL,
                    COUNTER(blob_heads)},
    [REG__TAGS] = {NULL, GET, NULL, CAP_MANIFEST, FOLLOW, CREDS_SESSION, FATAL,
                   COUNTER(tag_list_gets)},
    [REG__FOREIGN] = {NULL, HEAD, NULL, CAP_MANIFEST, FOLLOW, CREDS_NONE, OPTIONAL,
                      COUNTER(blob_heads)},
    [REG__PING] = {"", GET, NULL, CAP_MANIFEST, FOLLOW, CREDS_NONE, FATAL, NO_COUNTER},
    [REG__TOKEN] = {NULL, GET, NULL, CAP_TOKEN, FOLLOW, CREDS_LOGIN, FATAL,
                    COUNTER(token_gets)},
};

static size_t cap_bytes(const struct reg_config *cfg, enum cap cap)
{
    switch (cap) {
    case CAP_CONFIG:
        return cfg->max_config_bytes;
    case CAP_TOKEN:
        return TOKEN_MAX_BYTES;
    case CAP_MANIFEST:
        break;
    }
    return cfg->max_manifest_bytes;
}

/* ---- easy handle setup ---- */

static int build_url(struct reg__session *s, struct reg__xfer *x, const struct kind *k,
                     struct im_error *err)
{
    if (!k->resource) /* the caller's URL */
        return reg__check_url(x->url, err);
    int len = !k->resource[0] ? snprintf(x->url, sizeof x->url, "%s/v2/", s->base)
                              : snprintf(x->url, sizeof x->url, "%s/v2/%s/%s/%s", s->base,
                                         s->repository, k->resource, x->ref);
    if (len < 0 || (size_t)len >= sizeof x->url)
        return im_seterr(err, IM_EINVAL, "request URL is too long");
    return reg__check_url(x->url, err);
}

/* What every request gets, whatever its kind. */
static CURLcode easy_common(struct reg__session *s, struct reg__xfer *x)
{
    const struct reg_config *cfg = &s->c->cfg;
    CURL *h = x->easy;
    CURLcode e = CURLE_OK;
    x->errbuf[0] = '\0';
    e |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    e |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    e |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    e |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->request_timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
    e |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    e |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    e |= curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    e |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
                          (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    e |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, cfg->max_redirects);
    e |= curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    e |= curl_easy_setopt(h, CURLOPT_USERAGENT, cfg->user_agent);
    e |= curl_easy_setopt(h, CURLOPT_SHARE, s->c->share);
    e |= curl_easy_setopt(h, CURLOPT_URL, x->url);
    e |= curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    e |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    e |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    e |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    e |= curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    e |= curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    return e;
}

static CURLcode easy_credentials(const struct reg__session *s, CURL *h, enum creds who)
{
    CURLcode e = CURLE_OK;
    /* an identity token logs in with a POST form (handshake.c), never as Basic */
    if (s->cred && !s->cred->identity &&
        (who == CREDS_LOGIN || (who == CREDS_SESSION && s->basic))) {
        e |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        e |= curl_easy_setopt(h, CURLOPT_USERNAME, s->cred->username);
        e |= curl_easy_setopt(h, CURLOPT_PASSWORD, s->cred->password);
    } else if (who == CREDS_SESSION && s->bearer) {
        e |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        e |= curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, s->bearer);
    }
    return e;
}

/* What x's kind asks for: method and cap, redirects, credentials, Accept. */
static int easy_kind(struct reg__session *s, struct reg__xfer *x, const struct kind *k,
                     struct im_error *err)
{
    CURLcode e = CURLE_OK;
    if (k->method == HEAD)
        e |= curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
    else
        e |=
            curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->body.max);
    e |= curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION,
                          k->redirects == FOLLOW ? 1L : 0L);
    e |= easy_credentials(s, x->easy, k->creds);
    for (size_t i = 0; k->accept && k->accept[i]; i++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, k->accept[i]);
        if (!l)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        x->hdrs = l;
    }
    e |= curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    return e == CURLE_OK ? 0
                         : im_seterr(err, IM_EINTERNAL, "cannot configure a curl handle");
}

int reg__xfer_setup(struct reg__session *s, struct reg__xfer *x, struct im_error *err)
{
    const struct kind *k = &kinds[x->kind];
    int rc = build_url(s, x, k, err);
    if (rc)
        return rc;
    reg__xfer_release(x);
    x->clen = x->filetime = -1;
    x->status = 0;
    x->rl_limit = x->rl_remaining = -1;
    x->rl_seen = x->waiting = false;
    x->retry_after[0] = '\0';
    x->body.max = cap_bytes(&s->c->cfg, k->cap);
    x->easy = curl_easy_init();
    if (!x->easy)
        return im_seterr(err, IM_ENOMEM, "curl_easy_init failed");
    CURLcode e = easy_common(s, x);
    /* security policy (policy.c): every connection's address and scheme, to
     * the registry, a redirect's host or a token realm */
    if (reg__guard_install(&x->guard, &s->c->cfg, s->registry, s->base, x->easy))
        e = CURLE_FAILED_INIT;
    if (e != CURLE_OK)
        return im_seterr(err, IM_EINTERNAL, "cannot configure a curl handle");
    return easy_kind(s, x, k, err);
}

void reg__xfer_count(struct reg__session *s, const struct reg__xfer *x)
{
    size_t counter = kinds[x->kind].counter;
    s->st.requests++;
    if (counter != NO_COUNTER)
        (*(unsigned *)((char *)&s->st + counter))++;
}

bool reg__xfer_optional(const struct reg__xfer *x)
{
    return kinds[x->kind].failure == OPTIONAL;
}

bool reg__xfer_challenged(const struct reg__xfer *x)
{
    return kinds[x->kind].creds == CREDS_SESSION;
}

int reg__xfer_start(struct reg__session *s, struct reg__xfer *x, struct im_error *err)
{
    int rc = reg__xfer_setup(s, x, err);
    if (rc)
        return rc;
    if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK)
        return im_seterr(err, IM_EINTERNAL, "cannot add a transfer to the multi handle");
    x->attached = true;
    x->gen = s->bearer_gen;
    reg__xfer_count(s, x);
    return 0;
}

void reg__xfer_release(struct reg__xfer *x)
{
    if (x->easy) {
        /* the caller detaches from the multi before releasing (reg__run) */
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->body.p);
    memset(&x->body, 0, sizeof x->body);
    x->toobig = x->nomem = false;
}

/* Metrics for one finished upstream request. */
void reg__xfer_observe(struct reg__session *s, const struct reg__xfer *x, CURLcode cres)
{
    curl_off_t us = 0;
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
    im_metric_upstream(s->registry, cres == CURLE_OK ? x->status : 0, (double)us / 1e6);
    if (x->rl_seen)
        im_metric_ratelimit(s->registry, x->rl_limit, x->rl_remaining);
}

void reg__xfer_describe(const struct reg__session *s, const struct reg__xfer *x,
                        char *buf, size_t n)
{
    switch (x->kind) {
    case REG__MANIFEST:
    case REG__MANIFEST_HEAD:
        snprintf(buf, n, "manifest %s/%s%s%s", s->registry, s->repository,
                 x->by_digest ? "@" : ":", x->ref);
        break;
    case REG__CONFIG:
    case REG__LAYER:
        snprintf(buf, n, "%s blob %s in %s/%s",
                 x->kind == REG__CONFIG ? "config" : "layer", x->ref, s->registry,
                 s->repository);
        break;
    case REG__TAGS:
        snprintf(buf, n, "tag list of %s/%s", s->registry, s->repository);
        break;
    case REG__FOREIGN:
        snprintf(buf, n, "foreign layer %.71s at %.200s", x->ref, x->url);
        break;
    case REG__PING:
        snprintf(buf, n, "version check of %s at %.200s", s->registry, x->url);
        break;
    case REG__TOKEN:
        snprintf(buf, n, "token request for %s", s->registry);
        break;
    }
}
