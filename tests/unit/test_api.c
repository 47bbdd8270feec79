/* test_api.c - the request handler end to end over a real (in-memory) store
 * and a registry client whose only upstream is a closed port: any answer
 * that needed the network would fail, so a 200 proves it came from cache. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "registry.h"
#include "store.h"

static struct store *st;
static struct reg_client *reg;
static struct api *api;

static const char manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":10,"
    "\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\"},"
    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"size\":1001,\"digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"}]}";
static const char config[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"docker_version\":\"17.06.2-ce\","
    "\"config\":{\"Cmd\":[\"python3\"]},\"history\":[{\"created\":\"2018-07-17T00:28:04.5Z\","
    "\"created_by\":\"/bin/sh -c #(nop) ADD file:abc in / \"}],"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
#define ROOT "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void setup(void)
{
    struct im_error err;
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    st = store_open(":memory:", &err);
    cr_assert_not_null(st, "%s", err.msg);
    struct reg_config rc;
    reg_config_defaults(&rc);
    rc.n_mirrors = 1;
    strcpy(rc.mirrors[0].registry, "docker.io");
    strcpy(rc.mirrors[0].base_url, "http://127.0.0.1:1"); /* nothing listens there */
    rc.connect_timeout_ms = 1000;
    rc.request_timeout_ms = 2000;
    reg = reg_client_new(&rc, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    struct api_config ac;
    api_config_defaults(&ac);
    api = api_new(&ac, st, reg, &err);
    cr_assert_not_null(api);

    /* Pretend python:3.7-slim was resolved just now. */
    struct im_bundle b;
    im_bundle_init(&b);
    strcpy(b.root_digest, ROOT);
    cr_assert_eq(im_bundle_add_doc(&b, ROOT, "application/vnd.docker.distribution.manifest.v2+json",
                                   manifest, strlen(manifest)), 0);
    cr_assert_eq(im_bundle_add_doc(&b, "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                   "application/vnd.docker.container.image.v1+json", config,
                                   strlen(config)), 0);
    struct im_blob blob = {.size = 1001, .last_modified = 1531788244};
    strcpy(blob.digest, "sha256:2222222222222222222222222222222222222222222222222222222222222222");
    strcpy(blob.media_type, "application/octet-stream");
    cr_assert_eq(im_bundle_add_blob(&b, &blob), 0);
    struct im_ref ref;
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &err), 0, "%s", err.msg);
    cr_assert_eq(store_put(st, &ref, &b, im_now(), &err), 0, "%s", err.msg);
    im_bundle_free(&b);
}

static void teardown(void)
{
    api_free(api);
    reg_client_free(reg);
    store_close(st);
    curl_global_cleanup();
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 30);

static struct api_response get(const char *path, const char *accept, const char *format)
{
    struct api_request req;
    struct api_response resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    req.method = "GET";
    req.path = path;
    req.accept = accept;
    req.format = format;
    cr_assert_eq(api_handle(api, &req, &resp), 0);
    return resp;
}

Test(api, cached_tag_answers_json_without_upstream)
{
    struct api_response r = get("/images/python/3.7-slim", NULL, NULL);
    cr_assert_eq(r.status, 200, "status %d: %.*s", r.status, (int)r.len, r.body);
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert_eq(r.cache, API_CACHE_HIT);
    cr_assert(r.etag[0] == '"', "ETag is a quoted string: %s", r.etag);
    cr_assert(r.max_age > 0 && r.max_age <= 300, "max-age %ld", r.max_age);
    cr_assert(r.vary_accept);
    cr_assert_not_null(strstr(r.body, "\"totalSize\":1001"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\"dockerVersion\":\"17.06.2-ce\""), "%s", r.body);
    api_response_free(&r);
}

Test(api, markdown_by_query_and_by_accept)
{
    struct api_response r = get("/images/python/3.7-slim", NULL, "markdown");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/markdown; charset=utf-8");
    cr_assert(strncmp(r.body, "## `python:3.7-slim`\n", 21) == 0, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "-\tTotal Size: **1.0 KB (1001 bytes)**  \n"), "%s",
                       r.body);
    char etag_md[96];
    strcpy(etag_md, r.etag);
    api_response_free(&r);

    r = get("/images/python/3.7-slim", "text/markdown", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/markdown; charset=utf-8");
    cr_assert_str_eq(r.etag, etag_md, "same representation, same ETag");
    api_response_free(&r);

    r = get("/images/python/3.7-slim", "application/json", NULL);
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert_str_neq(r.etag, etag_md, "JSON and Markdown need different ETags");
    api_response_free(&r);
}

Test(api, if_none_match_gives_304_without_body)
{
    struct api_response r = get("/images/python/3.7-slim", NULL, NULL);
    char etag[96];
    strcpy(etag, r.etag);
    api_response_free(&r);

    struct api_request req;
    memset(&req, 0, sizeof req);
    memset(&r, 0, sizeof r);
    req.method = "GET";
    req.path = "/images/python/3.7-slim";
    req.if_none_match = etag;
    cr_assert_eq(api_handle(api, &req, &r), 0);
    cr_assert_eq(r.status, 304);
    cr_assert_null(r.body);
    cr_assert_str_eq(r.etag, etag);
    api_response_free(&r);
}

Test(api, invalid_reference_is_400_with_reason)
{
    struct api_response r = get("/images/Python/3.7-slim", NULL, NULL);
    cr_assert_eq(r.status, 400);
    cr_assert_not_null(strstr(r.body, "\"code\":\"invalid_reference\""), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "lowercase"), "message says why: %s", r.body);
    api_response_free(&r);
}

Test(api, bad_format_is_400)
{
    struct api_response r = get("/images/python/3.7-slim", NULL, "xml");
    cr_assert_eq(r.status, 400);
    cr_assert_not_null(strstr(r.body, "format must be"), "%s", r.body);
    api_response_free(&r);
}

Test(api, wrong_method_is_405_with_allow)
{
    struct api_request req;
    struct api_response r;
    memset(&req, 0, sizeof req);
    memset(&r, 0, sizeof r);
    req.method = "DELETE";
    req.path = "/images/python/3.7-slim";
    cr_assert_eq(api_handle(api, &req, &r), 0);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "GET, HEAD");
    api_response_free(&r);
}

Test(api, unknown_route_is_404_json)
{
    struct api_response r = get("/nothing", NULL, NULL);
    cr_assert_eq(r.status, 404);
    cr_assert_not_null(strstr(r.body, "\"error\""), "%s", r.body);
    api_response_free(&r);
}

Test(api, platform_filter_without_match_lists_platforms)
{
    struct api_request req;
    struct api_response r;
    memset(&req, 0, sizeof req);
    memset(&r, 0, sizeof r);
    req.method = "GET";
    req.path = "/images/python/3.7-slim";
    req.platforms[0] = "linux/s390x";
    req.n_platforms = 1;
    cr_assert_eq(api_handle(api, &req, &r), 0);
    cr_assert_eq(r.status, 404);
    cr_assert_not_null(strstr(r.body, "linux/amd64"), "%s", r.body);
    api_response_free(&r);
}

Test(api, uncached_tag_with_upstream_down_is_a_gateway_error)
{
    struct api_response r = get("/images/python/3.8-slim", NULL, NULL);
    cr_assert(r.status == 502 || r.status == 504, "status %d: %s", r.status, r.body);
    cr_assert_not_null(strstr(r.body, "\"error\""), "%s", r.body);
    api_response_free(&r);
}

Test(api, healthz_and_readyz)
{
    struct api_response r = get("/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    api_response_free(&r);
    r = get("/readyz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    api_response_free(&r);
}
