/* test_registry_prewarm.c - the start-up probes (reg_prewarm) against the mock
 * registry: what a probe learns, and the first resolution after it. */
#include "registry_test.h"

/* ------------------------------------------- start-up probes ----------- */

/* What reg_prewarm reported, per registry, as the daemon's log would. */
struct probes_seen {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n;
    char line[4][400]; /* "registry outcome detail" */
};

static struct probes_seen PS; /* one per test process, as M */

static void on_probe(void *cls, const struct reg_probe *p)
{
    struct probes_seen *ps = cls;
    pthread_mutex_lock(&ps->mu);
    if (ps->n < 4)
        snprintf(ps->line[ps->n], sizeof ps->line[0], "%s %s %s", p->registry, p->outcome,
                 p->detail);
    ps->n++;
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->mu);
}

/* Waits (bounded) until n probes were reported; the number reported. */
static int probes_wait(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&PS.mu);
    while (PS.n < n && pthread_cond_timedwait(&PS.cond, &PS.mu, &until) == 0)
        ;
    int got = PS.n;
    pthread_mutex_unlock(&PS.mu);
    return got;
}

/* The line reported for a registry starting with prefix, or "". */
static const char *probe_line(const char *prefix)
{
    for (int i = 0; i < PS.n && i < 4; i++)
        if (strncmp(PS.line[i], prefix, strlen(prefix)) == 0)
            return PS.line[i];
    return "";
}

/* The mock registry mirrored as itself (with robot's credentials if asked),
 * and, unless cfg is given, docker.io mirrored to the CDN server, whose /v2/
 * answers 404: no network. The probes are started, nothing waited for. */
static struct reg_client *prewarmed(struct reg_config *cfg, bool with_credentials)
{
    struct reg_config dflt;
    struct im_error e = {{0}};
    memset(&PS, 0, sizeof PS);
    pthread_mutex_init(&PS.mu, NULL);
    pthread_cond_init(&PS.cond, NULL);
    if (!cfg) {
        cfg = &dflt;
        reg_config_defaults(cfg);
        snprintf(cfg->mirrors[1].registry, sizeof cfg->mirrors[1].registry, "docker.io");
        snprintf(cfg->mirrors[1].base_url, sizeof cfg->mirrors[1].base_url,
                 "http://127.0.0.1:%d", M.cdn.port);
        cfg->n_mirrors = 2;
    }
    snprintf(cfg->mirrors[0].registry, sizeof cfg->mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg->mirrors[0].base_url, sizeof cfg->mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    if (with_credentials) {
        snprintf(cfg->credentials[0].registry, sizeof cfg->credentials[0].registry,
                 "127.0.0.1:%d", M.reg.port);
        im_strlcpy(cfg->credentials[0].username, "robot",
                   sizeof cfg->credentials[0].username);
        im_strlcpy(cfg->credentials[0].password, "s3cret",
                   sizeof cfg->credentials[0].password);
        cfg->n_credentials = 1;
    }
    struct reg_client *c = reg_client_new(cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_assert_eq(reg_prewarm(c, on_probe, &PS, &e), 0, "%s", e.msg);
    return c;
}

/* Resolves v1: with what the probe learnt, no request goes out without its
 * token or credentials (no 401, no resend). */
static void resolve_after_probe(struct reg_client *c, struct reg_stats *st)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &b, st, &e), 0, "%s", e.msg);
    cr_expect_eq(st->manifest_gets, 3, "no 401, no resend");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 0);
    im_bundle_free(&b);
}

Test(prewarm_mock, probe_learns_the_realm_and_the_first_resolution_skips_the_401,
     .init = init_curl)
{
    char registry[64], prefix[160];
    struct reg__challenge ch;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = prewarmed(NULL, false);
    mock_registry(registry, sizeof registry);
    cr_assert_eq(probes_wait(2), 2, "one report per registry");
    snprintf(prefix, sizeof prefix, "%s bearer http://127.0.0.1:%d/token", registry,
             M.reg.port);
    cr_expect_str_eq(probe_line(registry), prefix);
    cr_expect_str_eq(probe_line("docker.io"), "docker.io failed HTTP 404",
                     "a registry without the API answers 404: nothing learnt");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ auth=no"), 1, "one GET /v2/, no token");
    cr_assert_eq(reg__realms_get(c->realms, registry, &ch), 0);
    cr_expect_str_eq(ch.service, "mock,registry");
    cr_expect_eq(reg__realms_get(c->realms, "docker.io", &ch), -1);
    cr_expect_eq(reg_prewarm(c, on_probe, &PS, &e), IM_EINVAL, "once per client");
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 1, "the token first, from the probed realm");
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, resolution_during_the_probe_waits_for_it, .init = init_curl)
{
    struct reg_stats st = {0};
    mock_start(M_OK);
    M.ping_delay_ms = 300; /* the probe is still on its way when the request comes */
    struct reg_client *c = prewarmed(NULL, false);
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 1);
    pthread_mutex_lock(&M.reg.mu);
    cr_expect(strncmp(M.reg.log[0], "GET /v2/ ", 9) == 0, "first: %s", M.reg.log[0]);
    cr_expect(strncmp(M.reg.log[1], "GET /token?", 11) == 0, "then: %s", M.reg.log[1]);
    pthread_mutex_unlock(&M.reg.mu);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, basic_registry_gets_credentials_from_the_first_request,
     .init = init_curl)
{
    char registry[64];
    struct reg_stats st = {0};
    mock_start(M_BASIC);
    struct reg_client *c = prewarmed(NULL, true);
    mock_registry(registry, sizeof registry);
    cr_assert_eq(probes_wait(2), 2);
    cr_expect(strstr(probe_line(registry), " basic") != NULL, "%s", probe_line(registry));
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ auth=no"), 1,
                 "the probe sends no password");
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 0);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, probes_go_through_the_outbound_policy, .init = init_curl)
{
    char registry[64];
    struct reg_config cfg;
    struct im_error e = {{0}};
    mock_start(M_OK);
    M.ping_redirect = true;
    mock_registry(registry, sizeof registry);
    reg_config_defaults(&cfg);
    cfg.n_mirrors = 1;
    /* docker.io, not mirrored, is not on this allowlist */
    cr_assert_eq(reg_config_policy(&cfg, "ghcr.io", NULL, false, &e), 0, "%s", e.msg);
    struct reg_client *c = prewarmed(&cfg, false);
    cr_assert_eq(probes_wait(2), 2);
    cr_expect(strstr(probe_line("docker.io failed"), "not allowed") != NULL,
              "a registry a request may not name is not asked either: %s",
              probe_line("docker.io"));
    cr_expect(strstr(probe_line(registry), " failed refused by policy: ") != NULL,
              "the mirror's redirect elsewhere is not followed: %s",
              probe_line(registry));
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ "), 1);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, freeing_the_client_stops_a_probe_in_flight, .init = init_curl)
{
    mock_start(M_OK);
    M.ping_delay_ms = 1500;
    struct reg_client *c = prewarmed(NULL, false);
    cr_assert_eq(probes_wait(1), 1, "docker.io's mirror answers at once");
    reg_client_free(c); /* the registry's probe is still waiting for its answer */
    cr_expect_eq(PS.n, 1, "the stopped probe was not waited for, nor reported");
    mock_stop();
}
