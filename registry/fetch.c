/* fetch.c - upstream transfers of a resolution: easy-handle setup (timeouts,
 * protocols, caps, error buffer), header capture, the bearer handshake and the
 * stage runner over one curl multi handle.
 *
 * Authorization: the bearer token is given to curl as CURLOPT_XOAUTH2_BEARER
 * with CURLOPT_HTTPAUTH = CURLAUTH_BEARER, never as a custom header. curl
 * sends it only to the host, port and scheme of the first request
 * (Curl_auth_allowed_to_host, 7.83+), so a blob redirect to a CDN does not
 * carry the registry's credentials; tests/unit/test_registry.c checks it. */
#include "registry_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const accept_manifests[] = {
    "Accept: " MT_OCI_INDEX,
    "Accept: " MT_OCI_MANIFEST,
    "Accept: " MT_DOCKER_LIST,
    "Accept: " MT_DOCKER_V2,
};

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
        if (!p)
            return 0;
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

static size_t on_header(char *line, size_t size, size_t nmemb, void *cls)
{
    struct reg__xfer *x = cls;
    size_t n = size * nmemb;
    char num[32];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer (redirects) */
        x->dcd[0] = '\0';
        x->www[0] = '\0';
        x->clen = -1;
        return n;
    }
    header_value(line, n, "docker-content-digest", x->dcd, sizeof x->dcd);
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

/* ---- easy handle setup ---- */

static int build_url(struct reg__session *s, struct reg__xfer *x, struct im_error *err)
{
    const char *what = x->kind == REG__MANIFEST ? "manifests" : "blobs";
    int len = snprintf(x->url, sizeof x->url, "%s/v2/%s/%s/%s", s->base, s->repository,
                       what, x->ref);
    if (len < 0 || (size_t)len >= sizeof x->url)
        return im_seterr(err, IM_EINVAL, "request URL is too long");
    return reg__check_url(x->url, err);
}

/* Options every handle of the client gets, including token requests. */
static int easy_common(struct reg_client *c, CURL *h, char *errbuf)
{
    CURLcode e = CURLE_OK;
    errbuf[0] = '\0';
    e |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    e |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    e |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    e |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.request_timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
    e |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    e |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    e |= curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    e |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
                          (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    e |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    e |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, c->cfg.max_redirects);
    e |= curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    e |= curl_easy_setopt(h, CURLOPT_USERAGENT, c->cfg.user_agent);
    e |= curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    return e == CURLE_OK ? 0 : IM_EINTERNAL;
}

static int xfer_start(struct reg__session *s, struct reg__xfer *x, struct im_error *err)
{
    struct reg_client *c = s->c;
    int rc = build_url(s, x, err);
    if (rc)
        return rc;
    reg__xfer_release(x);
    x->clen = x->filetime = -1;
    x->status = 0;
    x->limit =
        x->kind == REG__CONFIG ? c->cfg.max_config_bytes : c->cfg.max_manifest_bytes;
    x->easy = curl_easy_init();
    if (!x->easy)
        return im_seterr(err, IM_ENOMEM, "curl_easy_init failed");
    CURLcode e = CURLE_OK;
    if (easy_common(c, x->easy, x->errbuf))
        e = CURLE_FAILED_INIT;
    e |= curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    e |= curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    e |= curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    e |= curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    e |= curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    e |= curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    e |= curl_easy_setopt(x->easy, CURLOPT_FILETIME, 1L);
    if (x->kind == REG__LAYER)
        e |= curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
    else
        e |= curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->limit);
    if (s->bearer) {
        e |= curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        e |= curl_easy_setopt(x->easy, CURLOPT_XOAUTH2_BEARER, s->bearer);
    }
    for (size_t i = 0; x->kind == REG__MANIFEST && i < 4; i++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, accept_manifests[i]);
        if (!l)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        x->hdrs = l;
    }
    e |= curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    if (e != CURLE_OK)
        return im_seterr(err, IM_EINTERNAL, "cannot configure a curl handle");
    if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK)
        return im_seterr(err, IM_EINTERNAL, "cannot add a transfer to the multi handle");
    x->attached = true;
    x->gen = s->bearer_gen;
    s->st.requests++;
    if (x->kind == REG__MANIFEST)
        s->st.manifest_gets++;
    else if (x->kind == REG__CONFIG)
        s->st.blob_gets++;
    else
        s->st.blob_heads++;
    return 0;
}

void reg__xfer_release(struct reg__xfer *x)
{
    if (x->easy) {
        /* the caller detaches from the multi before releasing (reg__run_stage) */
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->body);
    x->body = NULL;
    x->len = x->alloc = 0;
    x->toobig = false;
}

/* ---- answers ---- */

static void describe(const struct reg__session *s, const struct reg__xfer *x, char *buf,
                     size_t n)
{
    if (x->kind == REG__MANIFEST)
        snprintf(buf, n, "manifest %s/%s%s%s", s->registry, s->repository,
                 x->by_digest ? "@" : ":", x->ref);
    else
        snprintf(buf, n, "%s blob %s in %s/%s",
                 x->kind == REG__CONFIG ? "config" : "layer", x->ref, s->registry,
                 s->repository);
}

static int map_curl_error(struct reg__session *s, struct reg__xfer *x, CURLcode cres,
                          struct im_error *err)
{
    char what[IM_ERRMSG_MAX];
    describe(s, x, what, sizeof what);
    const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cres);
    if (x->toobig || cres == CURLE_FILESIZE_EXCEEDED)
        return im_seterr(err, IM_ETOOBIG, "%s is larger than the %zu-byte cap", what,
                         x->limit);
    if (cres == CURLE_OPERATION_TIMEDOUT)
        return im_seterr(err, IM_ETIMEOUT, "%s: %s", what, why);
    if (cres == CURLE_UNSUPPORTED_PROTOCOL)
        return im_seterr(err, IM_EPOLICY, "%s: refused a non-http(s) URL: %s", what, why);
    if (cres == CURLE_OUT_OF_MEMORY)
        return im_seterr(err, IM_ENOMEM, "%s: out of memory", what);
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

/* Blocking GET of a bearer token for the challenge (the only synchronous
 * request of a resolution: it happens once per registry+scope, before the
 * transfers that need it); on success s->bearer holds it and the cache has
 * it. */
static int fetch_token(struct reg__session *s, const struct reg__challenge *ch,
                       const char *scope_key, struct im_error *err)
{
    struct reg__xfer tx;
    char *tok = NULL;
    long expires_in = 60;
    memset(&tx, 0, sizeof tx);
    int rc = token_url(ch, tx.url, sizeof tx.url, err);
    if (rc)
        goto out;
    tx.limit = 64 * 1024;
    tx.easy = curl_easy_init();
    if (!tx.easy) {
        rc = im_seterr(err, IM_ENOMEM, "curl_easy_init failed");
        goto out;
    }
    if (easy_common(s->c, tx.easy, tx.errbuf) ||
        curl_easy_setopt(tx.easy, CURLOPT_URL, tx.url) ||
        curl_easy_setopt(tx.easy, CURLOPT_WRITEFUNCTION, on_body) ||
        curl_easy_setopt(tx.easy, CURLOPT_WRITEDATA, &tx) ||
        curl_easy_setopt(tx.easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)tx.limit)) {
        rc = im_seterr(err, IM_EINTERNAL, "cannot configure a curl handle");
        goto out;
    }
    s->st.requests++;
    s->st.token_gets++;
    CURLcode cres = curl_easy_perform(tx.easy);
    curl_easy_getinfo(tx.easy, CURLINFO_RESPONSE_CODE, &tx.status);
    if (cres != CURLE_OK) {
        rc = im_seterr(err, cres == CURLE_OPERATION_TIMEDOUT ? IM_ETIMEOUT : IM_EUPSTREAM,
                       "token request to %.120s failed: %s", ch->realm,
                       tx.errbuf[0] ? tx.errbuf : curl_easy_strerror(cres));
        goto out;
    }
    if (tx.status != 200) {
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

/* 401: get (or refresh) a token and restart x once. 1 when restarted. */
static int on_unauthorized(struct reg__session *s, struct reg__xfer *x,
                           struct im_error *err)
{
    struct reg__challenge ch;
    char what[IM_ERRMSG_MAX];
    describe(s, x, what, sizeof what);
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
    if (strcasecmp(ch.scheme, "Bearer") != 0)
        return im_seterr(err, IM_EUNAUTH,
                         "%s: registry asks for %s authentication, which "
                         "is not supported yet",
                         what, ch.scheme);
    if (!ch.realm[0])
        return im_seterr(err, IM_EPROTO, "%s: Bearer challenge without a realm", what);
    const char *scope_key = ch.scope[0] ? ch.scope : s->scope;
    if (x->gen == s->bearer_gen) { /* nobody refreshed since x was sent */
        char tok[16384];
        if (strcmp(ch.error, "invalid_token") == 0 || s->bearer)
            reg__tokens_drop(s->c->tokens, s->registry, scope_key);
        if (reg__tokens_get(s->c->tokens, s->registry, scope_key, tok, sizeof tok) == 0 &&
            (!s->bearer || strcmp(tok, s->bearer) != 0)) {
            char *dup = strdup(tok);
            if (!dup)
                return im_seterr(err, IM_ENOMEM, "out of memory");
            free(s->bearer);
            s->bearer = dup;
            s->bearer_gen++;
        } else {
            rc = fetch_token(s, &ch, scope_key, err);
            if (rc)
                return rc;
        }
    }
    x->auth_retried = true;
    rc = xfer_start(s, x, err);
    return rc ? rc : 1;
}

/* Retries with exponential backoff and jitter on connection errors, 5xx and
 * 429 (honouring Retry-After) belong here (issue 3): today every failure is
 * final. Returns 0 (done, 2xx), 1 (restarted) or a project error. */
static int finish(struct reg__session *s, struct reg__xfer *x, CURLcode cres,
                  struct im_error *err)
{
    char what[IM_ERRMSG_MAX];
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
    if (cres != CURLE_OK)
        return map_curl_error(s, x, cres, err);
    describe(s, x, what, sizeof what);
    if (x->status >= 200 && x->status < 300)
        return 0;
    if (x->status == 401)
        return on_unauthorized(s, x, err);
    if (x->status == 404)
        return im_seterr(err, IM_ENOTFOUND, "%s not found", what);
    if (x->status == 429)
        return im_seterr(err, IM_ERATELIMIT,
                         "%s: registry answered 429 Too Many Requests", what);
    if (x->status >= 500)
        return im_seterr(err, IM_EUPSTREAM, "%s: registry answered HTTP %ld", what,
                         x->status);
    return im_seterr(err, IM_EPROTO, "%s: unexpected HTTP %ld", what, x->status);
}

int reg__run_stage(struct reg__session *s, struct reg__xfer *x, size_t n,
                   struct im_error *err)
{
    size_t next = 0, active = 0, cap = (size_t)s->c->cfg.max_parallel;
    int rc = 0;
    while (next < n || active > 0) {
        while (next < n && active < cap) {
            rc = xfer_start(s, &x[next++], err);
            if (rc)
                goto out;
            active++;
        }
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
            rc = im_seterr(err, IM_EINTERNAL, "curl_multi_perform failed");
            goto out;
        }
        for (;;) {
            int left = 0;
            CURLMsg *m = curl_multi_info_read(s->multi, &left);
            if (!m)
                break;
            if (m->msg != CURLMSG_DONE)
                continue;
            CURLcode cres = m->data.result;
            struct reg__xfer *done = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&done);
            curl_multi_remove_handle(s->multi, done->easy);
            done->attached = false;
            rc = finish(s, done, cres, err);
            if (rc < 0)
                goto out;
            if (rc == 0)
                active--;
            rc = 0;
        }
        if (active > 0 && curl_multi_poll(s->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            rc = im_seterr(err, IM_EINTERNAL, "curl_multi_poll failed");
            goto out;
        }
    }
out:
    for (size_t i = 0; i < n; i++) {
        if (x[i].attached) {
            curl_multi_remove_handle(s->multi, x[i].easy);
            x[i].attached = false;
        }
    }
    return rc;
}
