/* prewarm.c - start-up probes (reg_prewarm): one GET /v2/ to each registry the
 * client talks to by default, all at once on one multi handle run by a
 * background thread, to learn how each authenticates before the first
 * resolution needs to know.
 *
 * What a probe learns goes where a resolution's own 401 would put it (the
 * remembered realms, or the Basic mark in the token cache); while it is on
 * its way the registry is "pending" in the realms table, and a session that
 * has nothing better waits for it there (reg__token_prefetch). The multi
 * handle goes to the client's pool afterwards, so the first resolution
 * reuses the probes' connections (and the share keeps their DNS answers and
 * TLS sessions). */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.h"

#define PROBES_MAX (REG_MAX_MIRRORS + 1) /* docker.io and each mirror */

struct probe {
    char registry[IM_REGISTRY_MAX];
    struct reg__session s;   /* registry, base URL and the shared multi handle */
    struct reg__xfer x;      /* the GET /v2/ */
    bool pending;            /* marked in the realms table: settle when it ends */
    bool running;            /* attached to the multi handle */
    char why[IM_ERRMSG_MAX]; /* why it could not be sent, "" */
    int64_t t0;
};

struct reg__prewarm {
    struct reg_client *c;
    void (*done)(void *cls, const struct reg_probe *p);
    void *cls;
    struct probe pr[PROBES_MAX];
    size_t n;
    pthread_t thread;
    pthread_mutex_t mu; /* stop and multi: reg__prewarm_free wakes the thread */
    bool mu_ok;
    bool stop;
    CURLM *multi; /* the thread's, NULL once it is done with it */
};

/* Adds a probe of registry unless there is one already. */
static void add_registry(struct reg__prewarm *p, const char *registry)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->pr[i].registry, registry) == 0)
            return;
    if (p->n < PROBES_MAX &&
        im_strlcpy(p->pr[p->n].registry, registry, sizeof p->pr[p->n].registry) == 0)
        p->n++;
}

/* docker.io (the default registry) and every mirrored registry, by the name
 * references give them ("Index.Docker.io" -> docker.io); a mirror whose name
 * is no registry host can never be asked for, and is left out. */
static void list_registries(struct reg__prewarm *p)
{
    const struct reg_config *cfg = &p->c->cfg;
    add_registry(p, "docker.io");
    for (size_t i = 0; i < cfg->n_mirrors; i++) {
        char name[IM_REGISTRY_MAX];
        struct im_error ignored;
        const char *m = cfg->mirrors[i].registry;
        if (reg_registry_name(m, strnlen(m, sizeof cfg->mirrors[i].registry), name,
                              sizeof name, &ignored) == 0)
            add_registry(p, name);
    }
}

/* The probe's registry is no longer being learnt: whoever waits goes on. */
static void settle(struct reg__prewarm *p, struct probe *pr)
{
    if (pr->pending)
        reg__realms_settle(p->c->realms, pr->registry);
    pr->pending = false;
}

/* Builds probe's URL through the policy, marks its registry pending and
 * starts the GET on multi; on failure pr->why says why. */
static void probe_start(struct reg__prewarm *p, struct probe *pr, CURLM *multi)
{
    struct im_error err = {{0}};
    int rc = 0;
    pr->s.c = p->c;
    pr->s.registry = pr->registry;
    pr->s.repository = "";
    pr->s.multi = multi;
    pr->x.kind = REG__PING;
    pr->t0 = im_monotonic_ms();
    rc = reg__base_url(&p->c->cfg, pr->registry, pr->s.base, sizeof pr->s.base, &err);
    if (rc == 0)
        pr->pending = reg__realms_pending(p->c->realms, pr->registry);
    if (rc == 0)
        rc = reg__xfer_start(&pr->s, &pr->x, &err);
    if (rc == 0) {
        pr->running = true;
        return;
    }
    im_strlcpy(pr->why, err.msg[0] ? err.msg : im_strerror(rc), sizeof pr->why);
    reg__xfer_release(&pr->x);
    settle(p, pr);
}

static void report(struct reg__prewarm *p, struct probe *pr, const char *outcome,
                   const char *detail)
{
    struct reg_probe r = {.registry = pr->registry,
                          .url = pr->x.url,
                          .outcome = outcome,
                          .detail = detail,
                          .ms = (long)(im_monotonic_ms() - pr->t0)};
    if (p->done)
        p->done(p->cls, &r);
}

/* A 401's challenge: remembered as reg__on_unauthorized would. The outcome, or
 * NULL (with why) when it is of no use. */
static const char *learn_challenge(struct reg__prewarm *p, struct probe *pr, char *why,
                                   size_t n)
{
    struct reg__challenge ch;
    struct im_error err = {{0}};
    if (!pr->x.www[0]) {
        snprintf(why, n, "HTTP 401 without a WWW-Authenticate challenge");
        return NULL;
    }
    if (reg__parse_challenge(pr->x.www, &ch, &err) != 0) {
        snprintf(why, n, "%s", err.msg);
        return NULL;
    }
    if (strcasecmp(ch.scheme, "Bearer") == 0 && ch.realm[0]) {
        reg__realms_put(p->c->realms, pr->registry, ch.realm, ch.service);
        snprintf(why, n, "%s", ch.realm);
        return "bearer";
    }
    if (strcasecmp(ch.scheme, "Basic") == 0) {
        why[0] = '\0';
        return reg__basic_note(p->c->tokens, pr->registry) == 0 ? "basic" : NULL;
    }
    snprintf(why, n, "HTTP 401 asking for %.16s authentication, which is not supported",
             ch.scheme);
    return NULL;
}

/* The probe's answer: what it teaches is put in place, its registry
 * settled, then reported. */
static void probe_done(struct reg__prewarm *p, struct probe *pr, CURLcode cres)
{
    char detail[1100] = ""; /* a realm (1 KiB), a policy refusal, curl's error */
    const char *outcome = NULL;
    long status = 0;
    curl_off_t us = 0;
    curl_multi_remove_handle(pr->s.multi, pr->x.easy);
    pr->running = false;
    curl_easy_getinfo(pr->x.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(pr->x.easy, CURLINFO_TOTAL_TIME_T, &us);
    im_metric_upstream(pr->registry, cres == CURLE_OK ? status : 0, (double)us / 1e6);
    if (cres != CURLE_OK && pr->x.guard.refused)
        snprintf(detail, sizeof detail, "refused by policy: %s", pr->x.guard.why);
    else if (cres != CURLE_OK)
        snprintf(detail, sizeof detail, "%s",
                 pr->x.errbuf[0] ? pr->x.errbuf : curl_easy_strerror(cres));
    else if (status >= 200 && status < 300)
        outcome = "anonymous";
    else if (status == 401)
        outcome = learn_challenge(p, pr, detail, sizeof detail);
    else
        snprintf(detail, sizeof detail, "HTTP %ld", status);
    settle(p, pr);
    report(p, pr, outcome ? outcome : "failed", detail);
    reg__xfer_release(&pr->x);
}

static bool stopping(struct reg__prewarm *p)
{
    pthread_mutex_lock(&p->mu);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

/* Takes the finished probes off the multi handle; the number still running. */
static size_t collect(struct reg__prewarm *p, CURLM *multi, size_t active)
{
    int left = 0;
    CURLMsg *m = NULL;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        for (size_t i = 0; i < p->n; i++) {
            if (p->pr[i].running && p->pr[i].x.easy == m->easy_handle) {
                probe_done(p, &p->pr[i], m->data.result);
                active--;
                break;
            }
        }
    }
    return active;
}

/* Stops what still runs (reg__prewarm_free), settles it, and hands the multi
 * handle, with the probes' connections, to the client's pool. */
static void runner_end(struct reg__prewarm *p, CURLM *multi)
{
    for (size_t i = 0; i < p->n; i++) {
        struct probe *pr = &p->pr[i];
        if (pr->running)
            curl_multi_remove_handle(multi, pr->x.easy);
        pr->running = false;
        reg__xfer_release(&pr->x);
        settle(p, pr);
    }
    pthread_mutex_lock(&p->mu);
    p->multi = NULL;
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop)
        curl_multi_cleanup(multi);
    else
        reg__pool_put(p->c, multi);
}

static void *runner(void *arg)
{
    struct reg__prewarm *p = arg;
    CURLM *multi = p->multi;
    size_t active = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->pr[i].running)
            active++;
        else
            report(p, &p->pr[i], "failed", p->pr[i].why);
    }
    while (active > 0 && !stopping(p)) {
        int running = 0;
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        active = collect(p, multi, active);
        if (active > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    runner_end(p, multi);
    return NULL;
}

/* Releases a probe set whose thread never started (NULL accepted). */
static void prewarm_discard(struct reg__prewarm *p)
{
    if (!p)
        return;
    if (p->multi)
        runner_end(p, p->multi);
    if (p->mu_ok)
        pthread_mutex_destroy(&p->mu);
    free(p);
}

int reg_prewarm(struct reg_client *c, void (*done)(void *cls, const struct reg_probe *p),
                void *cls, struct im_error *err)
{
    struct reg__prewarm *p = NULL;
    int rc = 0;
    if (c->prewarm) {
        rc = im_seterr(err, IM_EINVAL, "the registries are probed once per client");
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (!p || pthread_mutex_init(&p->mu, NULL) != 0) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory starting the registry probes");
        goto out;
    }
    p->mu_ok = true;
    p->c = c;
    p->done = done;
    p->cls = cls;
    list_registries(p);
    p->multi = reg__pool_get(c);
    if (!p->multi) {
        rc = im_seterr(err, IM_ENOMEM, "curl_multi_init failed");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++)
        probe_start(p, &p->pr[i], p->multi);
    if (pthread_create(&p->thread, NULL, runner, p) != 0) {
        rc = im_seterr(err, IM_EINTERNAL, "cannot start the registry probes' thread");
        goto out;
    }
    c->prewarm = p;
    p = NULL;
out:
    prewarm_discard(p); /* what was marked pending is settled: nobody waits */
    return rc;
}

void reg__prewarm_free(struct reg__prewarm *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    if (p->multi)
        curl_multi_wakeup(p->multi);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
