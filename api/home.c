/* home.c - GET / (the home page: a form asking for a reference) and
 * GET /images?ref=REF, where that form sends it: 303 to the image's page. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "registry.h"

int api__home(struct api_response *resp)
{
    char *body = NULL;
    size_t len = 0;
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
