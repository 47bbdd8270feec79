/* upstream.c - what every request to a registry shares: the base URL its
 * traffic goes to (a --mirror, Docker Hub's API host, or https://HOST; then
 * the security policy, policy.c), and the client's pool of curl multi
 * handles, kept between resolutions so their connections are reused.
 * Thread-safe: the pool locks inside. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "registry_int.h"

CURLM *reg__pool_get(struct reg_client *c)
{
    CURLM *m = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool > 0)
        m = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_mu);
    return m ? m : curl_multi_init();
}

void reg__pool_put(struct reg_client *c, CURLM *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool < REG__POOL_MAX) {
        c->pool[c->npool++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (m)
        curl_multi_cleanup(m);
}

int reg__base_url(const struct reg_config *cfg, const char *registry, char *out, size_t n,
                  struct im_error *err)
{
    int len = -1;
    for (size_t i = 0; i < cfg->n_mirrors && len < 0; i++) {
        if (strcasecmp(cfg->mirrors[i].registry, registry) != 0)
            continue;
        size_t bl = strnlen(cfg->mirrors[i].base_url, sizeof cfg->mirrors[i].base_url);
        while (bl > 0 && cfg->mirrors[i].base_url[bl - 1] == '/')
            bl--;
        len = snprintf(out, n, "%.*s", (int)bl, cfg->mirrors[i].base_url);
    }
    if (len < 0 && strcmp(registry, "docker.io") == 0)
        len = snprintf(out, n, "https://registry-1.docker.io");
    else if (len < 0)
        len = snprintf(out, n, "https://%s", registry);
    if (len < 0 || (size_t)len >= n)
        return im_seterr(err, IM_EINVAL, "registry URL is too long");
    /* security policy (policy.c): allowlist, insecure registries, URL check */
    return reg__policy_registry(cfg, registry, out, n, err);
}
