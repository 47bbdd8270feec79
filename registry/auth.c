/* auth.c - WWW-Authenticate challenge parsing, the bearer token cache and the
 * token realms remembered per registry. */
#include "registry_int.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a token or quoted-string value at *pp into dst (size n). */
static int read_value(const char **pp, char *dst, size_t n, struct im_error *err)
{
    const char *p = *pp;
    size_t o = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (o + 1 >= n)
                return im_seterr(err, IM_EPROTO, "WWW-Authenticate value is too long");
            dst[o++] = *p;
        }
        if (*p != '"')
            return im_seterr(err, IM_EPROTO,
                             "WWW-Authenticate has an unterminated quote");
        p++;
    } else {
        for (; *p && *p != ',' && *p != ' ' && *p != '\t'; p++) {
            if (o + 1 >= n)
                return im_seterr(err, IM_EPROTO, "WWW-Authenticate value is too long");
            dst[o++] = *p;
        }
    }
    dst[o] = '\0';
    *pp = p;
    return 0;
}

static char *param_slot(struct reg__challenge *c, const char *key, size_t klen, size_t *n)
{
    struct {
        const char *name;
        char *buf;
        size_t size;
    } slots[] = {{"realm", c->realm, sizeof c->realm},
                 {"service", c->service, sizeof c->service},
                 {"scope", c->scope, sizeof c->scope},
                 {"error", c->error, sizeof c->error}};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        if (strlen(slots[i].name) == klen && strncasecmp(slots[i].name, key, klen) == 0) {
            *n = slots[i].size;
            return slots[i].buf;
        }
    }
    *n = 0;
    return NULL;
}

int reg__parse_challenge(const char *hdr, struct reg__challenge *out,
                         struct im_error *err)
{
    struct reg__challenge c;
    char scratch[1024];
    int rc = 0;
    memset(&c, 0, sizeof c);
    const char *p = skip_ws(hdr);
    size_t sl = 0;
    while (p[sl] && p[sl] != ' ' && p[sl] != '\t')
        sl++;
    if (sl == 0 || sl >= sizeof c.scheme) {
        rc = im_seterr(err, IM_EPROTO, "WWW-Authenticate has no valid scheme");
        goto out;
    }
    memcpy(c.scheme, p, sl);
    p = skip_ws(p + sl);
    while (*p) {
        const char *key = p;
        while (*p && *p != '=' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t klen = (size_t)(p - key);
        p = skip_ws(p);
        if (klen == 0 || *p != '=') {
            rc = im_seterr(err, IM_EPROTO,
                           "WWW-Authenticate parameter without value: '%.40s'", key);
            goto out;
        }
        p = skip_ws(p + 1);
        size_t n = 0;
        char *dst = param_slot(&c, key, klen, &n);
        rc = dst ? read_value(&p, dst, n, err)
                 : read_value(&p, scratch, sizeof scratch, err);
        if (rc)
            goto out;
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p) {
            rc = im_seterr(err, IM_EPROTO,
                           "WWW-Authenticate: expected ',' before '%.40s'", p);
            goto out;
        }
    }
    *out = c;
out:
    return rc;
}

/* reg__check_url lives in policy.c with the rest of the outbound policy. */

int reg__parse_token_response(const char *body, size_t len, char **token,
                              long *expires_in, struct im_error *err)
{
    json_error_t jerr;
    int rc = 0;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    *token = NULL;
    *expires_in = 60;
    if (!root || !json_is_object(root)) {
        rc = im_seterr(err, IM_EPROTO, "token endpoint answered invalid JSON: %s",
                       jerr.text);
        goto out;
    }
    const char *t = json_string_value(json_object_get(root, "token"));
    if (!t || !*t)
        t = json_string_value(json_object_get(root, "access_token"));
    if (!t || !*t) {
        rc = im_seterr(err, IM_EPROTO, "token endpoint answered without a token");
        goto out;
    }
    json_t *ei = json_object_get(root, "expires_in");
    if (json_is_integer(ei) && json_integer_value(ei) > 0 &&
        json_integer_value(ei) < 7L * 24 * 3600)
        *expires_in = (long)json_integer_value(ei);
    size_t tl = strlen(t);
    *token = malloc(tl + 1);
    if (!*token) {
        rc = IM_ENOMEM;
        goto out;
    }
    memcpy(*token, t, tl + 1);
out:
    json_decref(root);
    return rc;
}

/* ---- token cache ---- */

#define TOKENS_MAX 128

struct token_entry {
    char *key; /* "registry\nscope", NULL when the slot is free */
    char *token;
    int64_t expires_at;
};

struct reg__tokens {
    pthread_mutex_t mu; /* first: locked_new */
    struct token_entry e[TOKENS_MAX];
};

/* A zeroed struct of size bytes whose first member is its mutex, initialised;
 * NULL when out of memory. */
static void *locked_new(size_t size)
{
    pthread_mutex_t *mu = calloc(1, size);
    if (mu && pthread_mutex_init(mu, NULL) != 0) {
        free(mu);
        mu = NULL;
    }
    return mu;
}

struct reg__tokens *reg__tokens_new(void)
{
    return locked_new(sizeof(struct reg__tokens));
}

static void entry_clear(struct token_entry *e)
{
    free(e->key);
    free(e->token);
    memset(e, 0, sizeof *e);
}

void reg__tokens_free(struct reg__tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < TOKENS_MAX; i++)
        entry_clear(&t->e[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static bool key_is(const struct token_entry *e, const char *registry, const char *scope)
{
    size_t rl = strlen(registry);
    return e->key && strncmp(e->key, registry, rl) == 0 && e->key[rl] == '\n' &&
           strcmp(e->key + rl + 1, scope) == 0;
}

int reg__tokens_get(struct reg__tokens *t, const char *registry, const char *scope,
                    char *out, size_t n)
{
    int rc = -1;
    int64_t now = im_now();
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < TOKENS_MAX; i++) {
        if (!key_is(&t->e[i], registry, scope))
            continue;
        if (t->e[i].expires_at > now && im_strlcpy(out, t->e[i].token, n) == 0)
            rc = 0;
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int reg__tokens_put(struct reg__tokens *t, const char *registry, const char *scope,
                    const char *token, int64_t expires_at)
{
    size_t rl = strlen(registry), sl = strlen(scope), tl = strlen(token);
    char *key = malloc(rl + sl + 2);
    char *tok = malloc(tl + 1);
    int rc = 0;
    if (!key || !tok) {
        rc = IM_ENOMEM;
        goto out;
    }
    memcpy(key, registry, rl);
    key[rl] = '\n';
    memcpy(key + rl + 1, scope, sl + 1);
    memcpy(tok, token, tl + 1);
    pthread_mutex_lock(&t->mu);
    size_t slot = 0; /* same key, else a free slot, else the soonest to expire */
    for (size_t i = 0; i < TOKENS_MAX; i++) {
        if (key_is(&t->e[i], registry, scope)) {
            slot = i;
            break;
        }
        if (!t->e[i].key ||
            (t->e[slot].key && t->e[i].expires_at < t->e[slot].expires_at))
            slot = i;
    }
    entry_clear(&t->e[slot]);
    t->e[slot].key = key;
    t->e[slot].token = tok;
    t->e[slot].expires_at = expires_at;
    key = tok = NULL;
    pthread_mutex_unlock(&t->mu);
out:
    free(key);
    free(tok);
    return rc;
}

void reg__tokens_drop(struct reg__tokens *t, const char *registry, const char *scope)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < TOKENS_MAX; i++)
        if (key_is(&t->e[i], registry, scope))
            entry_clear(&t->e[i]);
    pthread_mutex_unlock(&t->mu);
}

/* How long a registry's Basic challenge is remembered. */
#define BASIC_REMEMBERED_S 3600

int reg__basic_note(struct reg__tokens *t, const char *registry)
{
    return reg__tokens_put(t, registry, REG__BASIC_SCOPE, "basic",
                           im_now() + BASIC_REMEMBERED_S);
}

bool reg__basic_asked(struct reg__tokens *t, const char *registry)
{
    char mark[8];
    return reg__tokens_get(t, registry, REG__BASIC_SCOPE, mark, sizeof mark) == 0;
}

/* ---- token realms ---- */

#define REALMS_MAX 64

struct realm_entry {
    char registry[IM_REGISTRY_MAX]; /* "" when the slot is free */
    char realm[sizeof((struct reg__challenge *)0)->realm];
    char service[sizeof((struct reg__challenge *)0)->service];
    uint64_t used; /* tick of the last put or get, for eviction */
};

struct reg__realms {
    pthread_mutex_t mu; /* first: locked_new */
    uint64_t tick;
    struct realm_entry e[REALMS_MAX];
    /* registries a start-up probe is learning (reg__realms_pending) */
    pthread_cond_t settled; /* broadcast when one of them is settled */
    bool cond_ok;
    char pending[REG__PENDING_MAX][IM_REGISTRY_MAX]; /* "" when the slot is free */
};

struct reg__realms *reg__realms_new(void)
{
    struct reg__realms *t = locked_new(sizeof(struct reg__realms));
    pthread_condattr_t attr;
    if (!t || pthread_condattr_init(&attr) != 0)
        goto fail;
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(&t->settled, &attr) == 0)
        t->cond_ok = true;
    pthread_condattr_destroy(&attr);
    if (!t->cond_ok)
        goto fail;
    return t;
fail:
    reg__realms_free(t);
    return NULL;
}

void reg__realms_free(struct reg__realms *t)
{
    if (!t)
        return;
    if (t->cond_ok)
        pthread_cond_destroy(&t->settled);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct realm_entry *realm_find(struct reg__realms *t, const char *registry)
{
    for (size_t i = 0; i < REALMS_MAX; i++)
        if (t->e[i].registry[0] && strcmp(t->e[i].registry, registry) == 0)
            return &t->e[i];
    return NULL;
}

int reg__realms_get(struct reg__realms *t, const char *registry,
                    struct reg__challenge *out)
{
    int rc = -1;
    pthread_mutex_lock(&t->mu);
    struct realm_entry *e = realm_find(t, registry);
    if (e) {
        memset(out, 0, sizeof *out);
        memcpy(out->scheme, "Bearer", sizeof "Bearer");
        memcpy(out->realm, e->realm, sizeof out->realm);
        memcpy(out->service, e->service, sizeof out->service);
        e->used = ++t->tick;
        rc = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void reg__realms_put(struct reg__realms *t, const char *registry, const char *realm,
                     const char *service)
{
    struct realm_entry n;
    memset(&n, 0, sizeof n);
    if (im_strlcpy(n.registry, registry, sizeof n.registry) != 0 || !realm[0] ||
        im_strlcpy(n.realm, realm, sizeof n.realm) != 0 ||
        im_strlcpy(n.service, service, sizeof n.service) != 0)
        return; /* not remembered: the next resolution asks with a 401 again */
    pthread_mutex_lock(&t->mu);
    struct realm_entry *e = realm_find(t, registry);
    if (!e) { /* a free slot, else the least recently used */
        e = &t->e[0];
        for (size_t i = 0; i < REALMS_MAX && e->registry[0]; i++)
            if (!t->e[i].registry[0] || t->e[i].used < e->used)
                e = &t->e[i];
    }
    n.used = ++t->tick;
    *e = n;
    pthread_mutex_unlock(&t->mu);
}

void reg__realms_drop(struct reg__realms *t, const char *registry)
{
    pthread_mutex_lock(&t->mu);
    struct realm_entry *e = realm_find(t, registry);
    if (e)
        memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&t->mu);
}

/* ---- registries being learnt (start-up probes) ---- */

static char *pending_find(struct reg__realms *t, const char *registry)
{
    for (size_t i = 0; i < REG__PENDING_MAX; i++)
        if (t->pending[i][0] && strcmp(t->pending[i], registry) == 0)
            return t->pending[i];
    return NULL;
}

bool reg__realms_pending(struct reg__realms *t, const char *registry)
{
    bool ok = false;
    if (strlen(registry) >= IM_REGISTRY_MAX)
        return false;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < REG__PENDING_MAX && !ok; i++) {
        if (!t->pending[i][0]) {
            im_strlcpy(t->pending[i], registry, IM_REGISTRY_MAX);
            ok = true;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void reg__realms_settle(struct reg__realms *t, const char *registry)
{
    pthread_mutex_lock(&t->mu);
    char *slot = pending_find(t, registry);
    if (slot)
        slot[0] = '\0';
    pthread_cond_broadcast(&t->settled);
    pthread_mutex_unlock(&t->mu);
}

bool reg__realms_wait(struct reg__realms *t, const char *registry, long timeout_ms)
{
    struct timespec until = im_deadline_after_ms(timeout_ms);
    bool waited = false;
    pthread_mutex_lock(&t->mu);
    while (pending_find(t, registry)) {
        waited = true;
        if (pthread_cond_timedwait(&t->settled, &t->mu, &until) != 0)
            break; /* timed out: go on as if nobody were learning it */
    }
    pthread_mutex_unlock(&t->mu);
    return waited;
}
