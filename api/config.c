/* config.c - the api's configuration: its defaults and the per-registry tag
 * TTLs (api.h, struct api_config). Pure; read by every handler, calls none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "registry.h"

void api_config_defaults(struct api_config *c)
{
    memset(c, 0, sizeof *c);
    c->tag_ttl_seconds = 300;
    c->resolve_wait_ms = 60000;
    c->max_resolutions = 32;
    c->answer_cache_bytes = (size_t)16 << 20;
    c->markdown_style = RENDER_STYLE_SEED;
}

/* One "REGISTRY=SECONDS" entry, the registry normalised as references are. */
static int registry_ttl_entry(const char *entry, size_t len, struct api_registry_ttl *out,
                              struct im_error *err)
{
    const char *eq = memchr(entry, '=', len);
    if (!eq || eq == entry)
        return im_seterr(err, IM_EINVAL, "'%.*s' is not REGISTRY=SECONDS", (int)len,
                         entry);
    size_t hlen = (size_t)(eq - entry);
    int rc = reg_registry_name(entry, hlen, out->registry, sizeof out->registry, err);
    if (rc)
        return rc;
    char num[32];
    size_t nlen = len - hlen - 1;
    if (nlen == 0 || nlen >= sizeof num)
        return im_seterr(err, IM_EINVAL, "'%.*s': SECONDS missing or too long", (int)len,
                         entry);
    memcpy(num, eq + 1, nlen);
    num[nlen] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (errno || *end || v < 0 || v > API_MAX_TTL_SECONDS)
        return im_seterr(err, IM_EINVAL,
                         "'%.*s': TTL '%s' is not a number of seconds in [0, %d]",
                         (int)hlen, entry, num, API_MAX_TTL_SECONDS);
    out->seconds = v;
    return 0;
}

int api_config_registry_ttls(struct api_config *c, const char *spec, struct im_error *err)
{
    struct api_registry_ttl ttls[API_MAX_REGISTRY_TTLS];
    size_t n = 0;
    const char *item;
    size_t len;
    for (const char *p = spec; im_csv_next(&p, &item, &len);) {
        if (len == 0)
            continue;
        if (n == API_MAX_REGISTRY_TTLS)
            return im_seterr(err, IM_EINVAL, "at most %d registry TTLs",
                             API_MAX_REGISTRY_TTLS);
        int rc = registry_ttl_entry(item, len, &ttls[n], err);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (strcmp(ttls[i].registry, ttls[n].registry) == 0)
                return im_seterr(err, IM_EINVAL, "registry '%s' is given twice",
                                 ttls[n].registry);
        n++;
    }
    memcpy(c->registry_ttls, ttls, n * sizeof ttls[0]);
    c->n_registry_ttls = n;
    return 0;
}

int64_t api_config_tag_ttl(const struct api_config *c, const char *registry)
{
    for (size_t i = 0; i < c->n_registry_ttls; i++)
        if (strcmp(c->registry_ttls[i].registry, registry) == 0)
            return c->registry_ttls[i].seconds;
    return c->tag_ttl_seconds;
}
