/* admin.c - DELETE (or POST) /admin/cache/{ref}: purges a reference from the
 * cache. Off unless an admin token is configured; the request must carry
 * "Authorization: Bearer <token>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "registry.h"
#include "store.h"

#define ADMIN_CACHE_PREFIX "/admin/cache/"

/* Compares in time independent of where the strings differ. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0 && lb > 0;
}

static bool authorized(const struct api *a, const char *authorization)
{
    static const char scheme[] = "Bearer ";
    if (!authorization || strncmp(authorization, scheme, sizeof scheme - 1) != 0)
        return false;
    return same_secret(authorization + sizeof scheme - 1, a->cfg.admin_token);
}

static int purged(struct api_response *resp, const struct im_ref *ref,
                  const struct store_removed *r)
{
    char name[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    snprintf(name, sizeof name, "%s/%s%s%s%s%s", ref->registry, ref->repository,
             ref->tag[0] ? ":" : "", ref->tag, ref->digest[0] ? "@" : "", ref->digest);
    struct im_jw w = {.b = {.max = API_JSON_MAX}};
    im_jw_open(&w, '{');
    im_jw_kstr(&w, "purged", name);
    im_jw_key(&w, "removed");
    im_jw_open(&w, '{');
    im_jw_kint(&w, "tags", r->tags);
    im_jw_kint(&w, "roots", r->roots);
    im_jw_kint(&w, "documents", r->documents);
    im_jw_kint(&w, "blobs", r->blobs);
    im_jw_kint(&w, "misses", r->misses);
    im_jw_close(&w, '}');
    im_jw_close(&w, '}');
    return api__set_json(resp, 200, &w, false);
}

int api__admin(struct api *a, const struct api_request *req, struct api_response *resp)
{
    struct im_ref ref;
    struct im_error err = {{0}};
    struct store_removed r;
    if (a->cfg.admin_token[0] == '\0' ||
        strncmp(req->path, ADMIN_CACHE_PREFIX, strlen(ADMIN_CACHE_PREFIX)) != 0)
        return api__error(resp, 404, "no_such_route",
                          "no such route (the admin endpoint needs --admin-token)");
    if (strcmp(req->method, "DELETE") != 0 && strcmp(req->method, "POST") != 0) {
        resp->allow = "DELETE, POST";
        return api__error(resp, 405, "method_not_allowed",
                          "purge with DELETE (or POST) /admin/cache/{reference}");
    }
    if (!authorized(a, req->authorization)) {
        if (resp->n_extra_headers < API_MAX_EXTRA_HEADERS) {
            struct api_header *h = &resp->extra_headers[resp->n_extra_headers++];
            h->name = "WWW-Authenticate";
            im_strlcpy(h->value, "Bearer realm=\"imgmeta-admin\"", sizeof h->value);
        }
        return api__error(resp, 401, "unauthorized",
                          "the admin endpoint needs Authorization: Bearer <admin token>");
    }
    if (api__ref_from_route(req->path + strlen(ADMIN_CACHE_PREFIX), &ref, &err) != 0)
        return api__error(resp, 400, "invalid_reference", err.msg);
    if (store_purge(a->store, &ref, &r, &err) != 0)
        return api__error_code(resp, IM_ESTORE, err.msg);
    return purged(resp, &ref, &r);
}
