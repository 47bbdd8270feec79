/* client.c - the registry client: configuration and the client handle (token
 * cache, remembered token realms, DNS/TLS share, pool of multi handles);
 * reg_resolve itself is in resolve.c, the start-up probes in prewarm.c.
 *
 * Connection reuse: every resolution borrows a curl multi handle from a small
 * pool kept by the client and returns it afterwards; the multi handle's own
 * connection cache therefore carries keep-alive (and HTTP/2) connections from
 * one resolution to the next without ever being used by two threads at once.
 * A CURLSH shares only the DNS cache and TLS sessions between all handles
 * (sharing the connection cache itself between threads is not safe in curl). */
#include "registry_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- configuration and the client handle ---- */

void reg_config_defaults(struct reg_config *c)
{
    memset(c, 0, sizeof *c);
    c->connect_timeout_ms = 5000;
    c->request_timeout_ms = 30000;
    c->max_manifest_bytes = 4u << 20;
    c->max_config_bytes = 8u << 20;
    c->max_redirects = 5;
    c->max_parallel = 64; /* stage 3 of a 7-platform list is ~42 transfers: one wave */
    c->max_retries = 2;
    c->retry_base_ms = 200;
    c->retry_max_ms = 5000;
    c->helper_timeout_ms = 5000;
    c->helper_ttl_s = 300;
#ifdef IMGMETA_VERSION
    c->user_agent = "imgmeta/" IMGMETA_VERSION;
#else
    c->user_agent = "imgmeta/0.1.0";
#endif
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *cls)
{
    struct reg_client *c = cls;
    (void)h;
    (void)a;
    if (d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *cls)
{
    struct reg_client *c = cls;
    (void)h;
    if (d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_mu[d]);
}

static int client_share_init(struct reg_client *c, struct im_error *err)
{
    c->share = curl_share_init();
    if (!c->share)
        return im_seterr(err, IM_ENOMEM, "curl_share_init failed");
    if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION))
        return im_seterr(err, IM_EINTERNAL, "cannot configure the curl share handle");
    return 0;
}

struct reg_client *reg_client_new(const struct reg_config *cfg, struct im_error *err)
{
    struct reg_client *c = NULL;
    if (cfg->n_mirrors > REG_MAX_MIRRORS || cfg->max_parallel < 1 ||
        cfg->max_manifest_bytes == 0 || cfg->max_config_bytes == 0 ||
        cfg->max_retries < 0 || cfg->max_retries > 10 || cfg->retry_base_ms <= 0 ||
        cfg->retry_max_ms < cfg->retry_base_ms || cfg->helper_timeout_ms <= 0 ||
        cfg->helper_ttl_s < 0) {
        im_seterr(err, IM_EINVAL, "invalid registry client configuration");
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail_nomem;
    c->cfg = *cfg;
    c->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "imgmeta");
    c->tokens = reg__tokens_new();
    c->realms = reg__realms_new();
    c->helpers = reg__helpers_new(cfg->helper_ttl_s, cfg->helper_timeout_ms);
    if (!c->user_agent || !c->tokens || !c->realms || !c->helpers)
        goto fail_nomem;
    if (!reg__policy_mirrored(
            cfg, "docker.io")) /* the first Docker Hub pull needs no 401 either */
        reg__realms_put(c->realms, "docker.io", REG__HUB_REALM, REG__HUB_SERVICE);
    c->cfg.user_agent = c->user_agent;
    /* the credentials live in c->creds only (wiped on free) */
    memset(c->cfg.credentials, 0, sizeof c->cfg.credentials);
    c->cfg.n_credentials = 0;
    c->cfg.docker_config_path = NULL;
    if (reg__creds_load(&c->creds, cfg, err) != 0)
        goto fail;
    for (; c->nmu < CURL_LOCK_DATA_LAST; c->nmu++)
        if (pthread_mutex_init(&c->share_mu[c->nmu], NULL) != 0)
            goto fail_nomem;
    if (pthread_mutex_init(&c->pool_mu, NULL) != 0)
        goto fail_nomem;
    c->pool_mu_ok = true;
    if (client_share_init(c, err) != 0)
        goto fail;
    return c;
fail_nomem:
    im_seterr(err, IM_ENOMEM, "out of memory creating the registry client");
fail:
    reg_client_free(c);
    return NULL;
}

/* Also releases a partially constructed client (reg_client_new's failures). */
void reg_client_free(struct reg_client *c)
{
    if (!c)
        return;
    reg__prewarm_free(c->prewarm); /* its thread uses the realms and the pool */
    for (size_t i = 0; i < c->npool; i++)
        curl_multi_cleanup(c->pool[i]);
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < c->nmu; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    if (c->pool_mu_ok)
        pthread_mutex_destroy(&c->pool_mu);
    reg__tokens_free(c->tokens);
    reg__realms_free(c->realms);
    reg__creds_free(&c->creds);
    reg__helpers_free(c->helpers);
    free(c->user_agent);
    free(c);
}
