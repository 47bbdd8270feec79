/* fetch.c - the upstream session of a resolution (reg__session_open: base
 * URL, credentials, a pooled multi handle) and the runner (reg__run) of its
 * transfers (transfer.c) over one curl multi handle: at most max_parallel at
 * once, each finished answer handed on as it ends, a 401 answered by the
 * handshake (handshake.c), and failures mapped to project errors.
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

/* ---- the session ---- */

/* The session's credentials: reg_config's own for the registry, else its
 * credential helper's answer (a copy, s->helper_cred), else config.json's
 * `auths` entry, else none. */
static int session_cred(struct reg__session *s, struct reg_client *c,
                        struct im_error *err)
{
    const struct reg__cred *k = reg__creds_find(&c->creds, s->registry);
    const char *helper = reg__creds_helper(&c->creds, s->registry);
    if (k && (size_t)(k - c->creds.v) < c->creds.n_explicit)
        helper = NULL; /* given explicitly: no helper is asked */
    if (helper) {
        int rc = reg__helpers_get(c->helpers, helper, s->registry, &s->helper_cred, err);
        if (rc)
            return rc;
        if (s->helper_cred.username) {
            im_strlcpy(s->helper_cred.registry, s->registry,
                       sizeof s->helper_cred.registry);
            k = &s->helper_cred;
        }
    }
    s->cred = k;
    return 0;
}

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
    rc = session_cred(s, c, err);
    if (rc)
        return rc;
    if (s->cred && !s->cred->identity && reg__basic_asked(c->tokens, s->registry))
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
    reg__cred_wipe(&s->helper_cred);
    s->cred = NULL;
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
                         x->body.max);
    if (cres == CURLE_OPERATION_TIMEDOUT)
        return im_seterr(err, IM_ETIMEOUT, "%s: %s", what, why);
    if (cres == CURLE_UNSUPPORTED_PROTOCOL)
        return im_seterr(err, IM_EPOLICY, "%s: refused a non-http(s) URL: %s", what, why);
    return im_seterr(err, IM_EUPSTREAM, "%s: %s", what, why);
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
        return reg__on_unauthorized(s, x, err);
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
