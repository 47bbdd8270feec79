/* home.c - GET / (the home page: a form asking for a reference, and the
 * watched images with their sizes when the daemon watches some) and
 * GET /images?ref=REF, where that form sends it: 303 to the image's page. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "registry.h"

/* GET /'s max-age while it lists watched images: their sizes change with
 * every check, so a browser asks again soon. */
#define API_HOME_WATCHED_MAX_AGE 10

void api_set_home_source(struct api *a, api_home_source_fn fn, void *ctx)
{
    a->home_source = fn;
    a->home_ctx = ctx;
}

void api_home_list_free(struct api_home_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].platforms);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The page with the watched images of list, as the renderer reads them. */
static int render_home(const struct api_home_list *list, char **body, size_t *len)
{
    struct render_watched *w = NULL;
    struct render_psize *sizes = NULL;
    size_t total = 0, k = 0;
    int rc = IM_ENOMEM;
    for (size_t i = 0; i < list->n; i++)
        total += list->v[i].n_platforms;
    w = calloc(list->n + 1, sizeof *w);
    sizes = calloc(total + 1, sizeof *sizes);
    if (!w || !sizes)
        goto out;
    for (size_t i = 0; i < list->n; i++) {
        const struct api_home_image *h = &list->v[i];
        w[i] = (struct render_watched){h->image, &h->ref, h->digest, sizes + k,
                                       h->n_platforms};
        for (size_t j = 0; j < h->n_platforms; j++, k++)
            sizes[k] =
                (struct render_psize){h->platforms[j].platform, h->platforms[j].size};
    }
    rc = render_html_home_watched(w, list->n, body, len);
out:
    free(w);
    free(sizes);
    return rc;
}

/* The form, and the watched images when the daemon has any (then the page
 * changes as they do: a short max-age; else it is the same for an hour). A
 * snapshot or a page that cannot be made leaves the form alone. */
int api__home(struct api *a, struct api_response *resp)
{
    struct api_home_list list = {NULL, 0};
    char *body = NULL;
    size_t len = 0;
    int rc = -1;
    if (a->home_source && a->home_source(a->home_ctx, &list) == 0 && list.n > 0)
        rc = render_home(&list, &body, &len);
    api_home_list_free(&list);
    if (rc == 0) {
        api__answer_200(resp, API_CT_HTML, body, len, NULL);
        resp->max_age = API_HOME_WATCHED_MAX_AGE;
        return 0;
    }
    if (render_html_home(&body, &len) != 0)
        return api__error_code(resp, IM_ENOMEM, "out of memory while rendering");
    api__answer_200(resp, API_CT_HTML, body, len, NULL);
    resp->max_age = 3600;
    return 0;
}

/* The reference as typed, without the blanks around it. */
static size_t trimmed(const char *s, const char **start)
{
    size_t len = strlen(s);
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    *start = s;
    return len;
}

int api__find_image(const struct api_request *req, struct api_response *resp)
{
    struct im_error err = {{0}};
    struct im_ref ref;
    char typed[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    char route[sizeof typed + 16];
    const char *start = NULL;
    size_t len = req->ref ? trimmed(req->ref, &start) : 0;
    if (len == 0)
        return api__error(resp, 400, "invalid_parameter",
                          "ref must name an image, e.g. /images?ref=python:3.7-slim");
    if (len >= sizeof typed)
        return api__error(resp, 400, "invalid_reference", "the reference is too long");
    memcpy(typed, start, len);
    typed[len] = '\0';
    if (reg_ref_parse(typed, &ref, &err) != 0)
        return api__error(resp, 400, "invalid_reference", err.msg);
    if (render_ref_route(&ref, route, sizeof route) != 0)
        return api__error(resp, 400, "invalid_reference", "the reference is too long");
    size_t n = strlen("/images/") + strlen(route) + 1;
    char *location = malloc(n);
    if (!location)
        return api__error_code(resp, IM_ENOMEM, "out of memory");
    memcpy(location, "/images/", 8);
    memcpy(location + 8, route, n - 8);
    free(resp->location);
    resp->location = location;
    return api__set_line(resp, 303, API_CT_TEXT, location);
}
