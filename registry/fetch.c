/* fetch.c - the upstream session of a resolution (reg__session_open: base
 * URL, credentials, a pooled multi handle) and its transfers: one easy-handle
 * setup for every request, token GETs included (what differs by kind is one
 * table, kinds), header capture (Docker-Content-Digest, WWW-Authenticate,
 * Link, Retry-After, ratelimit-*), the Bearer and Basic handshakes (and the
 * token prefetch from a remembered realm), metrics, and the runner (reg__run)
 * over one curl multi handle.
 *
 * Authorization: the bearer token is given to curl as CURLOPT_XOAUTH2_BEARER
 * with CURLOPT_HTTPAUTH = CURLAUTH_BEARER, and Basic credentials as
 * CURLOPT_USERNAME/PASSWORD with CURLAUTH_BASIC, never as a custom header.
 * curl sends either only to the host, port and scheme of the first request
 * (Curl_auth_allowed_to_host, 7.83+), so a blob redirect to a CDN does not
 * carry the registry's credentials; tests/unit/test_registry_resolve.c and
 * test_registry_creds.c check it.
 * Foreign-layer HEADs carry none at all.
 *
 * Retries (retry.c): a transfer that failed to connect, or was answered 5xx
 * or 429, is detached and scheduled instead of failing the stage, and
 * restarted here when due while the other transfers go on. */
#include "registry_int.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "metrics.h"

/* ---- callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *cls)
{
    struct reg__xfer *x = cls;
    size_t n = size * nmemb;
    if (n > x->limit - x->len) {
        x->toobig = true;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    if (x->len + n > x->alloc) {
        size_t na = x->alloc ? x->alloc : 16384;
        while (na < x->len + n)
            na *= 2;
        if (na > x->limit)
            na = x->limit;
        unsigned char *p = realloc(x->body, na);
        if (!p) {
            x->nomem = true; /* out of memory, not the registry's fault */
            return 0;        /* aborts with CURLE_WRITE_ERROR */
        }
        x->body = p;
        x->alloc = na;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    return n;
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

/* ---- the session ---- */

int reg__session_open(struct reg__session *s, struct reg_client *c,
                      const struct im_ref *ref, struct im_error *err)
{
    char tok[16384];
    s->c = c;
    s->registry = ref->registry;
    s->repository = ref->repository;
    int rc = reg__base_url(&c->cfg, ref->registry, s->base, sizeof s->base, err);
    if (rc)
        return rc;
    snprintf(s->scope, sizeof s->scope, "repository:%s:pull", ref->repository);
    s->cred = reg__creds_find(&c->creds, ref->registry);
    if (s->cred && reg__basic_asked(c->tokens, s->registry))
        s->basic = true; /* this registry asked for Basic before: no 401 first */
    if (reg__tokens_get(c->tokens, s->registry, s->scope, tok, sizeof tok) == 0) {
        s->bearer = strdup(tok); /* proactive: saves the 401 round trip */
        if (!s->bearer)
            return im_seterr(err, IM_ENOMEM, "out of memory");
    }
    s->multi = reg__pool_get(c);
    if (!s->multi)
        return im_seterr(err, IM_ENOMEM, "curl_multi_init failed");
    reg__token_prefetch(s); /* no token yet: ask the known realm, not for a 401 */
    return 0;
}

void reg__session_close(struct reg__session *s, struct reg_stats *stats)
{
    if (stats) {
        stats->requests += s->st.requests;
        stats->manifest_gets += s->st.manifest_gets;
        stats->manifest_heads += s->st.manifest_heads;
        stats->blob_gets += s->st.blob_gets;
        stats->blob_heads += s->st.blob_heads;
        stats->token_gets += s->st.token_gets;
        stats->tag_list_gets += s->st.tag_list_gets;
        stats->retries += s->st.retries;
        if (s->st.retry_after)
            stats->retry_after = s->st.retry_after;
    }
    if (s->multi)
        reg__pool_put(s->c, s->multi);
    s->multi = NULL;
    free(s->bearer);
    s->bearer = NULL;
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
    if (s->cred && (who == CREDS_LOGIN || (who == CREDS_SESSION && s->basic))) {
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
        e |= curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->limit);
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
    x->limit = cap_bytes(&s->c->cfg, k->cap);
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
    free(x->body);
    x->body = NULL;
    x->len = x->alloc = 0;
    x->toobig = x->nomem = false;
}

/* Metrics for one finished upstream request. */
static void observe(struct reg__session *s, CURL *h, CURLcode cres, long status,
                    const struct reg__xfer *x)
{
    curl_off_t us = 0;
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
    im_metric_upstream(s->registry, cres == CURLE_OK ? status : 0, (double)us / 1e6);
    if (x->rl_seen)
        im_metric_ratelimit(s->registry, x->rl_limit, x->rl_remaining);
}

/* ---- answers ---- */

static void describe(const struct reg__session *s, const struct reg__xfer *x, char *buf,
                     size_t n)
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

static int map_curl_error(struct reg__session *s, struct reg__xfer *x, CURLcode cres,
                          struct im_error *err)
{
    char what[IM_ERRMSG_MAX];
    describe(s, x, what, sizeof what);
    const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cres);
    if (x->guard.refused) /* security policy (policy.c) refused a connection */
        return im_seterr(err, IM_EPOLICY, "%s: %s", what, x->guard.why);
    if (x->nomem || cres == CURLE_OUT_OF_MEMORY)
        return im_seterr(err, IM_ENOMEM, "%s: out of memory", what);
    if (x->toobig || cres == CURLE_FILESIZE_EXCEEDED)
        return im_seterr(err, IM_ETOOBIG, "%s is larger than the %zu-byte cap", what,
                         x->limit);
    if (cres == CURLE_OPERATION_TIMEDOUT)
        return im_seterr(err, IM_ETIMEOUT, "%s: %s", what, why);
    if (cres == CURLE_UNSUPPORTED_PROTOCOL)
        return im_seterr(err, IM_EPOLICY, "%s: refused a non-http(s) URL: %s", what, why);
    return im_seterr(err, IM_EUPSTREAM, "%s: %s", what, why);
}

/* Appends "<sep>name=<escaped value>" to url (size n) at *o. */
static int append_param(char *url, size_t n, size_t *o, char *sep, const char *name,
                        const char *value, size_t vlen, struct im_error *err)
{
    char *esc = curl_easy_escape(NULL, value, (int)vlen);
    if (!esc)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    int l = snprintf(url + *o, *o < n ? n - *o : 0, "%c%s=%s", *sep, name, esc);
    curl_free(esc);
    *o += l > 0 ? (size_t)l : 0;
    *sep = '&';
    return *o < n ? 0 : im_seterr(err, IM_EPROTO, "token realm URL is too long");
}

/* realm?service=...&scope=...&scope=... (one scope parameter per scope). */
static int token_url(const struct reg__challenge *ch, char *url, size_t n,
                     struct im_error *err)
{
    int rc = reg__check_url(ch->realm, err);
    if (rc)
        return rc;
    size_t o = (size_t)snprintf(url, n, "%s", ch->realm);
    char sep = strchr(ch->realm, '?') ? '&' : '?';
    if (o >= n)
        return im_seterr(err, IM_EPROTO, "token realm URL is too long");
    if (ch->service[0])
        rc = append_param(url, n, &o, &sep, "service", ch->service, strlen(ch->service),
                          err);
    for (const char *p = ch->scope; rc == 0 && *p;) {
        size_t l = strcspn(p, " ");
        if (l > 0)
            rc = append_param(url, n, &o, &sep, "scope", p, l, err);
        p += l + (p[l] == ' ');
    }
    return rc;
}

/* The token GET, sent again (after a blocking backoff: this thread has
 * nothing else to do until the token comes) on the failures fetch retries. */
static CURLcode token_perform(struct reg__session *s, struct reg__xfer *tx)
{
    for (;;) {
        tx->len = 0;
        tx->retry_after[0] = '\0';
        tx->rl_limit = tx->rl_remaining = -1;
        tx->rl_seen = false;
        reg__xfer_count(s, tx);
        CURLcode cres = curl_easy_perform(tx->easy);
        tx->status = 0;
        curl_easy_getinfo(tx->easy, CURLINFO_RESPONSE_CODE, &tx->status);
        observe(s, tx->easy, cres, tx->status, tx);
        if (tx->guard.refused || tx->toobig || tx->nomem ||
            !reg__retryable(cres, tx->status))
            return cres;
        int64_t d =
            reg__retry_delay(&s->c->cfg, tx, tx->attempts,
                             cres == CURLE_OK ? reg__retry_after(tx->retry_after) : -1);
        if (d < 0)
            return cres;
        tx->attempts++;
        s->st.retries++;
        struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Blocking GET of a bearer token for the challenge (the only synchronous
 * request of a resolution: it happens once per registry+scope, before the
 * transfers that need it); on success s->bearer holds it and the cache has
 * it. once: a single attempt (reg__token_prefetch). */
static int fetch_token(struct reg__session *s, const struct reg__challenge *ch,
                       const char *scope_key, bool once, struct im_error *err)
{
    struct reg__xfer tx;
    char *tok = NULL;
    long expires_in = 60;
    memset(&tx, 0, sizeof tx);
    tx.kind = REG__TOKEN;
    if (once) /* no retries: the attempts are used up already */
        tx.attempts = s->c->cfg.max_retries;
    int rc = token_url(ch, tx.url, sizeof tx.url, err);
    if (rc)
        goto out;
    rc = reg__xfer_setup(s, &tx, err); /* the realm's connections are guarded too */
    if (rc)
        goto out;
    CURLcode cres = token_perform(s, &tx);
    if (cres != CURLE_OK && tx.guard.refused) { /* security policy (policy.c) */
        rc = im_seterr(err, IM_EPOLICY, "token request: %s", tx.guard.why);
        goto out;
    }
    if (tx.nomem || cres == CURLE_OUT_OF_MEMORY) {
        rc = im_seterr(err, IM_ENOMEM, "token request: out of memory");
        goto out;
    }
    if (cres != CURLE_OK) {
        rc = im_seterr(err, cres == CURLE_OPERATION_TIMEDOUT ? IM_ETIMEOUT : IM_EUPSTREAM,
                       "token request to %.120s failed: %s", ch->realm,
                       tx.errbuf[0] ? tx.errbuf : curl_easy_strerror(cres));
        goto out;
    }
    if (tx.status != 200) {
        long ra = reg__retry_after(tx.retry_after);
        if (tx.status == 429)
            s->st.retry_after = ra > 3600 ? 3600 : ra > 0 ? (int)ra : 0;
        rc = im_seterr(err,
                       tx.status == 429   ? IM_ERATELIMIT
                       : tx.status >= 500 ? IM_EUPSTREAM
                                          : IM_EUNAUTH,
                       "token endpoint %.120s answered HTTP %ld", ch->realm, tx.status);
        goto out;
    }
    rc = reg__parse_token_response((const char *)tx.body, tx.len, &tok, &expires_in, err);
    if (rc)
        goto out;
    /* keep a margin so a token never expires between cache and use */
    long margin = expires_in > 20 ? 10 : expires_in / 2;
    rc = reg__tokens_put(s->c->tokens, s->registry, scope_key, tok,
                         im_now() + expires_in - margin);
    if (rc)
        goto out;
    free(s->bearer);
    s->bearer = tok;
    tok = NULL;
    s->bearer_gen++;
out:
    free(tok);
    reg__xfer_release(&tx);
    return rc;
}

/* A Basic challenge: the registry's credentials from now on (remembered in
 * the token cache so later sessions send them at once). */
static int use_basic(struct reg__session *s, struct reg__xfer *x, const char *what,
                     struct im_error *err)
{
    if (!s->cred)
        return im_seterr(err, IM_EUNAUTH,
                         "%s: registry asks for Basic authentication and no credentials "
                         "are configured for %s",
                         what, s->registry);
    if (x->gen == s->bearer_gen && !s->basic) {
        s->basic = true;
        s->bearer_gen++;
        if (reg__basic_note(s->c->tokens, s->registry) != 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
    }
    return 0;
}

/* A Bearer challenge: a token from the cache (if another session refreshed
 * it) or from the realm. */
static int use_bearer(struct reg__session *s, struct reg__xfer *x,
                      const struct reg__challenge *ch, const char *what,
                      struct im_error *err)
{
    if (!ch->realm[0])
        return im_seterr(err, IM_EPROTO, "%s: Bearer challenge without a realm", what);
    const char *scope_key = ch->scope[0] ? ch->scope : s->scope;
    if (x->gen != s->bearer_gen) /* refreshed since x was sent: just resend */
        return 0;
    char tok[16384];
    if (strcmp(ch->error, "invalid_token") == 0 || s->bearer)
        reg__tokens_drop(s->c->tokens, s->registry, scope_key);
    if (reg__tokens_get(s->c->tokens, s->registry, scope_key, tok, sizeof tok) == 0 &&
        (!s->bearer || strcmp(tok, s->bearer) != 0)) {
        char *dup = strdup(tok);
        if (!dup)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        free(s->bearer);
        s->bearer = dup;
        s->bearer_gen++;
        return 0;
    }
    int rc = fetch_token(s, ch, scope_key, false, err);
    if (rc == 0) /* the next session asks this realm first (reg__token_prefetch) */
        reg__realms_put(s->c->realms, s->registry, ch->realm, ch->service);
    return rc;
}

/* No realm is remembered for s's registry: when a start-up probe is learning
 * it, waits for the probe (at most a request timeout) and takes what it
 * learnt. 0 when a realm is now known (in *ch); -1 otherwise, with s->basic
 * set when the registry asks for Basic and s has credentials. */
static int probed_realm(struct reg__session *s, struct reg__challenge *ch)
{
    if (!reg__realms_wait(s->c->realms, s->registry, s->c->cfg.request_timeout_ms))
        return -1;
    if (s->cred && reg__basic_asked(s->c->tokens, s->registry)) {
        s->basic = true;
        return -1;
    }
    return reg__realms_get(s->c->realms, s->registry, ch);
}

void reg__token_prefetch(struct reg__session *s)
{
    struct reg__challenge ch;
    struct im_error ignored;
    if (s->bearer || s->basic)
        return;
    if (reg__realms_get(s->c->realms, s->registry, &ch) != 0 && probed_realm(s, &ch) != 0)
        return;
    if (im_strlcpy(ch.scope, s->scope, sizeof ch.scope) != 0 ||
        fetch_token(s, &ch, s->scope, true, &ignored) != 0)
        reg__realms_drop(s->c->realms, s->registry); /* relearnt from the 401 */
}

/* 401: authenticate as the challenge asks and restart x once. 1 when
 * restarted. */
static int on_unauthorized(struct reg__session *s, struct reg__xfer *x,
                           struct im_error *err)
{
    struct reg__challenge ch;
    char what[IM_ERRMSG_MAX];
    describe(s, x, what, sizeof what);
    if (x->auth_retried && s->basic)
        return im_seterr(err, IM_EUNAUTH, "%s: the credentials for %s were refused", what,
                         s->registry);
    if (x->auth_retried)
        return im_seterr(err, IM_EUNAUTH,
                         "%s: access refused even with a token; the repository may not "
                         "exist or be private",
                         what);
    if (!x->www[0])
        return im_seterr(err, IM_EUNAUTH,
                         "%s: HTTP 401 without a WWW-Authenticate challenge", what);
    int rc = reg__parse_challenge(x->www, &ch, err);
    if (rc)
        return rc;
    if (strcasecmp(ch.scheme, "Basic") == 0)
        rc = use_basic(s, x, what, err);
    else if (strcasecmp(ch.scheme, "Bearer") == 0)
        rc = use_bearer(s, x, &ch, what, err);
    else
        rc = im_seterr(err, IM_EUNAUTH,
                       "%s: registry asks for %.16s authentication, which is not "
                       "supported",
                       what, ch.scheme);
    if (rc)
        return rc;
    x->auth_retried = true;
    rc = reg__xfer_start(s, x, err);
    return rc ? rc : 1;
}

/* A failed answer that will not be retried: the project error for it. */
static int answer_error(struct reg__session *s, struct reg__xfer *x, long ra_s,
                        struct im_error *err)
{
    char what[IM_ERRMSG_MAX];
    describe(s, x, what, sizeof what);
    if (x->status == 404)
        return im_seterr(err, IM_ENOTFOUND, "%s not found", what);
    if (x->status == 429) {
        s->st.retry_after = ra_s > 3600 ? 3600 : ra_s > 0 ? (int)ra_s : 0;
        if (ra_s >= 0)
            return im_seterr(err, IM_ERATELIMIT,
                             "%s: registry answered 429 Too Many Requests "
                             "(retry after %ld s)",
                             what, ra_s);
        return im_seterr(err, IM_ERATELIMIT,
                         "%s: registry answered 429 Too Many Requests", what);
    }
    if (x->status >= 500)
        return im_seterr(err, IM_EUPSTREAM, "%s: registry answered HTTP %ld", what,
                         x->status);
    return im_seterr(err, IM_EPROTO, "%s: unexpected HTTP %ld", what, x->status);
}

static void take_info(struct reg__session *s, struct reg__xfer *x)
{
    long redirects = 0;
    char *ct = NULL;
    curl_off_t ft = -1;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(x->easy, CURLINFO_FILETIME_T, &ft);
    s->st.requests += (unsigned)redirects;
    x->filetime = ft >= 0 ? (int64_t)ft : -1;
    x->content_type[0] = '\0';
    if (ct) {
        size_t l = strcspn(ct, "; \t");
        if (l < sizeof x->content_type) {
            for (size_t i = 0; i < l; i++)
                x->content_type[i] = (char)tolower((unsigned char)ct[i]);
            x->content_type[l] = '\0';
        }
    }
}

/* Returns 0 (done, 2xx), 1 (restarted: 401 handshake), 2 (scheduled for a
 * retry at x->retry_at) or a project error. */
static int finish(struct reg__session *s, struct reg__xfer *x, CURLcode cres,
                  struct im_error *err)
{
    take_info(s, x);
    observe(s, x->easy, cres, x->status, x);
    if (cres != CURLE_OK) {
        if (!x->toobig && !x->nomem && !x->guard.refused && reg__retryable(cres, 0) &&
            reg__retry_schedule(s, x, -1))
            return 2;
        return map_curl_error(s, x, cres, err);
    }
    if (x->status >= 200 && x->status < 300)
        return 0;
    if (x->status == 401 && reg__xfer_challenged(x)) /* a foreign host gets no say */
        return on_unauthorized(s, x, err);
    long ra = reg__retry_after(x->retry_after);
    if (reg__retryable(CURLE_OK, x->status) && reg__retry_schedule(s, x, ra))
        return 2;
    return answer_error(s, x, ra, err);
}

/* Restarts the waiting transfers whose time has come; *wait_ms becomes the
 * time until the next one is due (at most its initial value). */
static int restart_due(struct reg__session *s, struct reg__xfer *const *x, size_t n,
                       long *wait_ms, struct im_error *err)
{
    int64_t now = im_monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        if (!x[i]->waiting)
            continue;
        if (x[i]->retry_at <= now) {
            int rc = reg__xfer_start(s, x[i], err);
            if (rc)
                return rc;
        } else if (x[i]->retry_at - now < *wait_ms) {
            *wait_ms = (long)(x[i]->retry_at - now);
        }
    }
    return 0;
}

/* Takes every finished transfer off the multi handle and hands each answer
 * to run->done (which may queue more). */
static int collect(struct reg__session *s, struct reg__run *run, size_t *active,
                   struct im_error *err)
{
    for (;;) {
        int left = 0;
        CURLMsg *m = curl_multi_info_read(s->multi, &left);
        if (!m)
            return 0;
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode cres = m->data.result;
        struct reg__xfer *done = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&done);
        curl_multi_remove_handle(s->multi, done->easy);
        done->attached = false;
        int rc = finish(s, done, cres, err);
        if (rc < 0 && reg__xfer_optional(done)) { /* recorded, not fatal */
            done->failed = true;
            rc = 0;
        }
        if (rc < 0)
            return rc;
        if (rc == 0) {
            (*active)--;
            rc = run->done ? run->done(run->cls, done, err) : 0;
            if (rc)
                return rc;
        }
    }
}

int reg__run(struct reg__session *s, struct reg__run *run, struct im_error *err)
{
    size_t next = 0, active = 0, cap = (size_t)s->c->cfg.max_parallel;
    int rc = 0;
    while (next < run->n || active > 0) {
        while (next < run->n && active < cap) {
            rc = reg__xfer_start(s, run->x[next++], err);
            if (rc)
                goto out;
            active++;
        }
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
            rc = im_seterr(err, IM_EINTERNAL, "curl_multi_perform failed");
            goto out;
        }
        rc = collect(s, run, &active, err);
        if (rc)
            goto out;
        long wait_ms = 1000;
        rc = restart_due(s, run->x, next, &wait_ms, err);
        if (rc)
            goto out;
        if (next < run->n && active < cap) /* answers queued more: start them now */
            continue;
        if (active > 0 &&
            curl_multi_poll(s->multi, NULL, 0, (int)wait_ms, NULL) != CURLM_OK) {
            rc = im_seterr(err, IM_EINTERNAL, "curl_multi_poll failed");
            goto out;
        }
    }
out:
    for (size_t i = 0; i < run->n; i++) {
        if (run->x[i]->attached) {
            curl_multi_remove_handle(s->multi, run->x[i]->easy);
            run->x[i]->attached = false;
        }
        run->x[i]->waiting = false;
    }
    return rc;
}

int reg__run_one(struct reg__session *s, struct reg__xfer *x, struct im_error *err)
{
    struct reg__run run = {.x = &x, .n = 1};
    return reg__run(s, &run, err);
}
