/* fetch.c - the upstream session of a resolution (reg__session_open: base
 * URL, credentials, a pooled multi handle) and the runner (reg__run) of its
 * transfers (transfer.c) over one curl multi handle: at most max_parallel at
 * once, each finished answer handed on as it ends, the Bearer and Basic
 * handshakes on 401, and failures mapped to project errors.
 *
 * Retries (retry.c): a transfer that failed to connect, or was answered 5xx
 * or 429, is detached and scheduled instead of failing the stage, and
 * restarted here when due while the other transfers go on. */
#include "registry_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* ---- answers ---- */

static int map_curl_error(struct reg__session *s, struct reg__xfer *x, CURLcode cres,
                          struct im_error *err)
{
    char what[IM_ERRMSG_MAX];
    reg__xfer_describe(s, x, what, sizeof what);
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
        reg__xfer_observe(s, tx, cres);
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
    reg__xfer_describe(s, x, what, sizeof what);
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
    reg__xfer_describe(s, x, what, sizeof what);
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
    reg__xfer_observe(s, x, cres);
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
