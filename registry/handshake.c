/* handshake.c - authentication of a session's requests: a 401's challenge
 * answered (reg__on_unauthorized: Basic, the registry's credentials from then
 * on; Bearer, a token from the cache or from the realm), the token GET itself
 * (fetch_token: the one blocking request of a resolution, made once per
 * registry and scope before the transfers that need it), and the token
 * fetched ahead from a remembered or probed realm (reg__token_prefetch), so
 * that a session need not meet the 401 first.
 *
 * The token GET is a request of kind REG__TOKEN, set up as every other
 * (transfer.c): the policy guard checks the realm's connections too. It is
 * sent with the registry's credentials as Basic when there are some (a
 * login, as `docker login` makes Docker Hub's), and sent again after a
 * blocking backoff (retry.c) on the failures the runner retries. */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* An identity token's login, as Docker's OAuth2 one: the POST form
 * grant_type=refresh_token&service=...&scope=...&client_id=imgmeta&
 * refresh_token=<the token>, malloc'ed in *form (the caller wipes it). */
static int token_form(const struct reg__session *s, const struct reg__challenge *ch,
                      char **form, struct im_error *err)
{
    size_t n = 3 * REG__HELPER_SECRET_MAX + sizeof ch->service * 3 +
               sizeof ch->scope * 3 + 128,
           o = 0;
    char sep = '&';
    const char *secret = s->cred->password;
    *form = malloc(n);
    if (!*form)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    o = (size_t)snprintf(*form, n, "grant_type=refresh_token&client_id=imgmeta");
    int rc = 0;
    if (ch->service[0])
        rc = append_param(*form, n, &o, &sep, "service", ch->service, strlen(ch->service),
                          err);
    for (const char *p = ch->scope; rc == 0 && *p;) {
        size_t l = strcspn(p, " ");
        if (l > 0)
            rc = append_param(*form, n, &o, &sep, "scope", p, l, err);
        p += l + (p[l] == ' ');
    }
    if (rc == 0 && strlen(secret) >= REG__HELPER_SECRET_MAX)
        rc = im_seterr(err, IM_EINVAL, "the identity token for %s is too long",
                       s->registry);
    if (rc == 0)
        rc = append_param(*form, n, &o, &sep, "refresh_token", secret, strlen(secret),
                          err);
    return rc;
}

/* The token GET, sent again (after a blocking backoff: this thread has
 * nothing else to do until the token comes) on the failures the runner
 * retries (reg__retryable). */
static CURLcode token_perform(struct reg__session *s, struct reg__xfer *tx)
{
    for (;;) {
        tx->body.len = 0;
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
    char *tok = NULL, *form = NULL;
    long expires_in = 60;
    memset(&tx, 0, sizeof tx);
    tx.kind = REG__TOKEN;
    if (once) /* no retries: the attempts are used up already */
        tx.attempts = s->c->cfg.max_retries;
    bool identity = s->cred && s->cred->identity;
    int rc = identity ? reg__check_url(ch->realm, err)
                      : token_url(ch, tx.url, sizeof tx.url, err);
    if (rc == 0 && identity && im_strlcpy(tx.url, ch->realm, sizeof tx.url) != 0)
        rc = im_seterr(err, IM_EPROTO, "token realm URL is too long");
    if (rc == 0 && identity)
        rc = token_form(s, ch, &form, err);
    if (rc)
        goto out;
    rc = reg__xfer_setup(s, &tx, err); /* the realm's connections are guarded too */
    if (rc == 0 && form &&
        curl_easy_setopt(tx.easy, CURLOPT_POSTFIELDS, form) != CURLE_OK)
        rc = im_seterr(err, IM_EINTERNAL, "cannot configure a curl handle");
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
    rc = reg__parse_token_response(tx.body.p, tx.body.len, &tok, &expires_in, err);
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
    if (form) {
        reg__wipe(form, strlen(form));
        free(form);
    }
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
    if (s->cred->identity)
        return im_seterr(err, IM_EUNAUTH,
                         "%s: registry asks for Basic authentication and the credentials "
                         "for %s are an identity token, which only a token login takes",
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
    if (s->cred && !s->cred->identity && reg__basic_asked(s->c->tokens, s->registry)) {
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

int reg__on_unauthorized(struct reg__session *s, struct reg__xfer *x,
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
