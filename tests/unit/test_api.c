/* test_api.c - the request handler end to end over a real (in-memory) store
 * and a registry client whose only upstream is a closed port: any answer
 * that needed the network would fail, so a 200 proves it came from cache. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "api_int.h"
#include "registry.h"
#include "sha256.h"
#include "store.h"

static struct store *st;
static struct reg_client *reg;
static struct api *api;

/* python:3.7-slim's manifest, naming its config by CONFIG_DIGEST_AT. */
static const char manifest_fmt[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/"
    "vnd.docker.distribution.manifest.v2+json\","
    "\"config\":{\"mediaType\":\"application/"
    "vnd.docker.container.image.v1+json\",\"size\":%zu,"
    "\"digest\":\"%s\"},"
    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"size\":1001,\"digest\":\"sha256:"
    "2222222222222222222222222222222222222222222222222222222222222222\"}]}";
static const char config[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"docker_version\":\"17.06.2-ce\","
    "\"config\":{\"Cmd\":[\"python3\"]},\"history\":[{\"created\":\"2018-07-17T00:28:04."
    "5Z\","
    "\"created_by\":\"/bin/sh -c #(nop) ADD file:abc in / \"}],"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* Pretends name was resolved just now into s with cfg as its config: its
 * documents under their real digests, as a resolution keeps them (the store
 * checks a document it reads against its digest). */
static void put_image(struct store *s, const char *name, const char *cfg)
{
    struct im_error err;
    struct im_bundle b;
    char config_digest[IM_DIGEST_MAX], root[IM_DIGEST_MAX], manifest[1024];
    cr_assert_eq(im_sha256_digest(cfg, strlen(cfg), config_digest), 0);
    int n = snprintf(manifest, sizeof manifest, manifest_fmt, strlen(cfg), config_digest);
    cr_assert(n > 0 && (size_t)n < sizeof manifest);
    cr_assert_eq(im_sha256_digest(manifest, (size_t)n, root), 0);
    im_bundle_init(&b);
    strcpy(b.root_digest, root);
    cr_assert_eq(im_bundle_add_doc(&b, root,
                                   "application/vnd.docker.distribution.manifest.v2+json",
                                   manifest, (size_t)n),
                 0);
    cr_assert_eq(im_bundle_add_doc(&b, config_digest,
                                   "application/vnd.docker.container.image.v1+json", cfg,
                                   strlen(cfg)),
                 0);
    struct im_blob blob = {.size = 1001, .last_modified = 1531788244};
    strcpy(blob.digest,
           "sha256:2222222222222222222222222222222222222222222222222222222222222222");
    strcpy(blob.media_type, "application/octet-stream");
    cr_assert_eq(im_bundle_add_blob(&b, &blob), 0);
    struct im_ref ref;
    cr_assert_eq(reg_ref_parse(name, &ref, &err), 0, "%s", err.msg);
    cr_assert_eq(store_put(s, &ref, &b, im_now(), &err), 0, "%s", err.msg);
    im_bundle_free(&b);
}

static void put_python(struct store *s)
{
    put_image(s, "python:3.7-slim", config);
}

/* A loopback port where nothing listens, held for the test: bound and never
 * listened on, so a connection to it is refused, and no other process can
 * start listening there meanwhile (as one might on a fixed port such as 1). */
static int closed_fd = -1;

static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    closed_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(closed_fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(closed_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(closed_fd, (struct sockaddr *)&a, &al), 0);
    return ntohs(a.sin_port);
}

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
    snprintf(rc.mirrors[0].base_url, sizeof rc.mirrors[0].base_url, "http://127.0.0.1:%d",
             closed_port()); /* nothing listens there */
    rc.connect_timeout_ms = 1000;
    rc.request_timeout_ms = 2000;
    reg = reg_client_new(&rc, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    struct api_config ac;
    api_config_defaults(&ac);
    api = api_new(&ac, st, reg, &err);
    cr_assert_not_null(api);
    put_python(st);
}

static void teardown(void)
{
    api_free(api);
    reg_client_free(reg);
    store_close(st);
    curl_global_cleanup();
    if (closed_fd >= 0)
        close(closed_fd);
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 30);

/* a's answer to req, which must be built (api_handle returns 0). */
static struct api_response answer_to(struct api *a, const struct api_request *req)
{
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    cr_assert_eq(api_handle(a, req, &resp), 0);
    return resp;
}

static struct api_response get_on(struct api *a, const char *path, const char *accept,
                                  const char *format)
{
    struct api_request req = {
        .method = "GET", .path = path, .accept = accept, .format = format};
    return answer_to(a, &req);
}

static struct api_response get(const char *path, const char *accept, const char *format)
{
    return get_on(api, path, accept, format);
}

/* The libmicrohttpd workers ask with cache_only and hand API_SLOW requests to
 * the upstream pool: what the cache holds, and errors found on the spot, are
 * answered there; anything needing the registry is API_SLOW with nothing to
 * send. */
static int cache_only(const char *path, struct api_response *resp)
{
    struct api_request req;
    memset(&req, 0, sizeof req);
    memset(resp, 0, sizeof *resp);
    req.method = "GET";
    req.path = path;
    req.cache_only = true;
    return api_handle(api, &req, resp);
}

Test(api, cache_only_answers_what_the_cache_holds_and_defers_the_rest)
{
    struct api_response hit, full, slow, bad;
    cr_assert_eq(cache_only("/images/python/3.7-slim", &hit), 0);
    full = get("/images/python/3.7-slim", NULL, NULL);
    cr_assert_eq(hit.status, 200);
    cr_assert_eq(hit.len, full.len);
    cr_assert(memcmp(hit.body, full.body, hit.len) == 0, "the same answer as in full");
    cr_assert_eq(cache_only("/images/python/3.8-slim", &slow), API_SLOW, "not cached");
    cr_assert_eq(slow.status, 0, "nothing to send");
    cr_assert_null(slow.body);
    cr_assert_eq(cache_only("/repositories/python/tags", &slow), API_SLOW, "tag listing");
    cr_assert_eq(slow.status, 0, "nothing to send");
    cr_assert_eq(cache_only("/images/UPPER/case", &bad), 0, "a bad reference");
    cr_assert_eq(bad.status, 400, "answered on the spot: %d", bad.status);
    api_response_free(&hit);
    api_response_free(&full);
    api_response_free(&bad);
}

Test(api, cached_tag_answers_json_without_upstream)
{
    struct api_response r = get("/images/python/3.7-slim", NULL, NULL);
    cr_assert_eq(r.status, 200, "status %d: %.*s", r.status, (int)r.len, r.body);
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert_eq(r.cache, IM_OUTCOME_HIT);
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

#define BROWSER_ACCEPT "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

Test(api, html_page_for_browsers_and_format_html)
{
    struct api_response page = get("/images/python/3.7-slim", BROWSER_ACCEPT, NULL);
    struct api_response asked = get("/images/python/3.7-slim", NULL, "html");
    struct api_response json = get("/images/python/3.7-slim", NULL, NULL);
    cr_assert_eq(page.status, 200);
    cr_expect_str_eq(page.content_type, "text/html; charset=utf-8");
    cr_assert_not_null(page.csp);
    cr_expect_not_null(strstr(page.csp, "default-src 'none'"));
    cr_expect_null(strstr(page.csp, "script-src"), "scripts fall under default-src");
    cr_expect(page.vary_accept);
    cr_expect_not_null(strstr(page.body, "<!DOCTYPE html>"));
    cr_expect_not_null(strstr(page.body, "<title>python:3.7-slim - imgmeta</title>"));
    cr_assert_eq(asked.status, 200);
    cr_expect_eq(asked.len, page.len);
    cr_expect_str_eq(asked.etag, page.etag);
    cr_expect_str_neq(json.etag, page.etag, "each representation has its own ETag");
    cr_expect_null(json.csp);
    api_response_free(&page);
    api_response_free(&asked);
    api_response_free(&json);
}

/* A home source as server/watch.c is: one watched image with one platform
 * whose name is hostile, or a failure (ctx non-NULL). */
static int fake_home(void *ctx, struct api_home_list *out)
{
    out->v = NULL;
    out->n = 0;
    if (ctx)
        return IM_ENOMEM;
    out->v = calloc(1, sizeof *out->v);
    cr_assert_not_null(out->v);
    out->n = 1;
    struct api_home_image *h = &out->v[0];
    snprintf(h->image, sizeof h->image, "python:3.7-slim");
    struct im_error err = {{0}};
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &h->ref, &err), 0);
    snprintf(h->digest, sizeof h->digest, "sha256:%064d", 7);
    h->platforms = calloc(1, sizeof *h->platforms);
    cr_assert_not_null(h->platforms);
    h->n_platforms = 1;
    snprintf(h->platforms[0].platform, sizeof h->platforms[0].platform,
             "linux/<script>x");
    h->platforms[0].size = 50868652;
    return 0;
}

Test(api, home_page_lists_watched_images_briefly_cached)
{
    struct api_response plain = get("/", NULL, NULL);
    cr_expect_eq(plain.max_age, 3600);
    cr_expect_null(strstr(plain.body, "Watched images"));
    api_response_free(&plain);

    static int failing;
    api_set_home_source(api, fake_home, &failing);
    struct api_response failed = get("/", NULL, NULL);
    cr_expect_eq(failed.status, 200, "a failed snapshot leaves the form");
    cr_expect_eq(failed.max_age, 3600);
    cr_expect_null(strstr(failed.body, "Watched images"));
    api_response_free(&failed);

    api_set_home_source(api, fake_home, NULL);
    struct api_response home = get("/", NULL, NULL);
    cr_assert_eq(home.status, 200);
    cr_expect_eq(home.max_age, 10);
    cr_expect_not_null(strstr(home.body, "Watched images"));
    cr_expect_not_null(strstr(home.body, "<a href=\"/images/python/3.7-slim\">"));
    cr_expect_not_null(strstr(home.body, "linux/&lt;script&gt;x"));
    cr_expect_null(strstr(home.body, "<script"));
    cr_expect_not_null(strstr(home.body, "(50868652 bytes)"));
    cr_expect_not_null(strstr(home.body, "<code>sha256:000000000000</code>"));
    api_set_home_source(api, NULL, NULL);
    api_response_free(&home);
}

/* GET /images?ref=REF, the home page's form (ref NULL: no parameter). */
static struct api_response find(const char *ref)
{
    struct api_request req = {.method = "GET", .path = "/images", .ref = ref};
    struct api_response resp = {0};
    cr_assert_eq(api_handle(api, &req, &resp), 0);
    return resp;
}

Test(api, home_page_and_its_form)
{
    struct api_response home = get("/", NULL, NULL);
    cr_assert_eq(home.status, 200);
    cr_expect_str_eq(home.content_type, "text/html; charset=utf-8");
    cr_expect_not_null(home.csp);
    cr_expect_not_null(strstr(home.body, "action=\"/images\""));
    api_response_free(&home);

    struct api_response r = find(" python:3.7-slim ");
    cr_assert_eq(r.status, 303);
    cr_assert_not_null(r.location);
    cr_expect_str_eq(r.location, "/images/python/3.7-slim");
    api_response_free(&r);
    r = find("ghcr.io/org/app@sha256:"
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_assert_eq(r.status, 303);
    cr_expect_str_eq(r.location,
                     "/images/ghcr.io/org/app@sha256:"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    api_response_free(&r);
    r = find("Python:3.7");
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(r.body, "\"code\":\"invalid_reference\""), "%s", r.body);
    cr_expect_null(r.location);
    api_response_free(&r);
    r = find(NULL);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(r.body, "\"code\":\"invalid_parameter\""), "%s", r.body);
    api_response_free(&r);
    r = find("   ");
    cr_expect_eq(r.status, 400);
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

/* ---- compressed answers (api/answers.c) ---- */

#include <zlib.h>

static struct api_response get_gz(const char *path, const char *format,
                                  const char *accept_encoding, const char *inm)
{
    struct api_request req = {.method = "GET",
                              .path = path,
                              .format = format,
                              .accept_encoding = accept_encoding,
                              .if_none_match = inm};
    return answer_to(api, &req);
}

/* The gzip bytes of r, inflated: must be exactly the plain answer's. */
static void expect_inflates_to(const struct api_response *r,
                               const struct api_response *plain)
{
    char *out = malloc(plain->len + 16);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    cr_assert_not_null(out);
    cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)r->body;
    zs.avail_in = (uInt)r->len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)plain->len + 16;
    cr_assert_eq(inflate(&zs, Z_FINISH), Z_STREAM_END, "a whole gzip stream");
    cr_assert_eq(zs.total_out, plain->len, "inflated %lu bytes, plain %zu", zs.total_out,
                 plain->len);
    cr_assert(memcmp(out, plain->body, plain->len) == 0,
              "the plain bytes, byte for byte");
    inflateEnd(&zs);
    free(out);
}

/* An image whose answers are over 1 KiB: a config with a long history line. */
static const char *put_big(void)
{
    static char big[4096];
    char cmd[2048];
    memset(cmd, 'x', sizeof cmd - 1);
    cmd[sizeof cmd - 1] = '\0';
    snprintf(big, sizeof big,
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"history\":"
             "[{\"created\":\"2018-07-17T00:28:04.5Z\",\"created_by\":\"/bin/sh -c "
             "echo %s\"}],\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
             cmd);
    put_image(st, "big:1", big);
    return "/images/big/1";
}

static void gzip_roundtrip(const char *format)
{
    const char *path = put_big();
    struct api_response plain = get_gz(path, format, NULL, NULL);
    cr_assert_eq(plain.status, 200);
    cr_assert_gt(plain.len, API_GZIP_MIN, "the fixture's answer is over 1 KiB");
    cr_assert_null(plain.content_encoding, "no Accept-Encoding: plain");
    for (int i = 0; i < 2; i++) { /* compressed, then from the LRU */
        struct api_response gz = get_gz(path, format, "gzip", NULL);
        cr_assert_eq(gz.status, 200);
        cr_assert_str_eq(gz.content_encoding, "gzip");
        cr_assert_str_eq(gz.content_type, plain.content_type);
        cr_assert_lt(gz.len, plain.len);
        expect_inflates_to(&gz, &plain);
        cr_assert_str_neq(gz.etag, plain.etag, "an ETag per encoding");
        cr_assert_not_null(strstr(gz.etag, "-gzip\""), "%s", gz.etag);
        struct api_response nm = get_gz(path, format, "gzip", gz.etag);
        cr_assert_eq(nm.status, 304, "the gzip ETag validates");
        cr_assert_str_eq(nm.etag, gz.etag);
        api_response_free(&nm);
        nm = get_gz(path, format, NULL, gz.etag);
        cr_assert_eq(nm.status, 200, "not for a request without gzip");
        cr_assert_null(nm.content_encoding);
        api_response_free(&nm);
        api_response_free(&gz);
    }
    api_response_free(&plain);
}

Test(api, gzip_json_inflates_to_the_plain_answer)
{
    gzip_roundtrip("json");
}

Test(api, gzip_markdown_inflates_to_the_plain_answer)
{
    gzip_roundtrip("markdown");
}

Test(api, gzip_refused_or_small_answers_are_plain)
{
    const char *path = put_big();
    struct api_response plain = get_gz(path, NULL, NULL, NULL);
    const char *plain_codings[] = {"gzip;q=0",    "identity", "",
                                   "br, deflate", "*;q=0",    "gzip;q=0, *"};
    for (size_t i = 0; i < sizeof plain_codings / sizeof *plain_codings; i++) {
        struct api_response r = get_gz(path, NULL, plain_codings[i], NULL);
        cr_assert_null(r.content_encoding, "Accept-Encoding: %s", plain_codings[i]);
        cr_assert_eq(r.len, plain.len);
        cr_assert_str_eq(r.etag, plain.etag);
        api_response_free(&r);
    }
    struct api_response r = get_gz(path, NULL, "*", NULL);
    cr_assert_str_eq(r.content_encoding, "gzip", "the wildcard takes gzip");
    api_response_free(&r);
    r = get_gz("/images/python/3.7-slim", NULL, "gzip", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_leq(r.len, API_GZIP_MIN, "python's answer is small: %zu", r.len);
    cr_assert_null(r.content_encoding, "1 KiB or less is sent plain");
    cr_assert_null(strstr(r.etag, "-gzip"), "%s", r.etag);
    api_response_free(&r);
    api_response_free(&plain);
}

Test(negotiate, accept_encoding_gzip)
{
    const char *yes[] = {"gzip",
                         "GZIP",
                         "x-gzip",
                         "deflate, gzip;q=0.5",
                         "*",
                         "br;q=1, *;q=0.1",
                         " gzip ; q=1.0 ",
                         "gzip;q=bad",
                         "identity, gzip"};
    const char *no[] = {NULL,           "",      "identity",      "gzip;q=0",
                        "gzip;q=0.000", "*;q=0", "gzip;q=0, *",   "br, deflate",
                        ",,;;",         "gzipx", "gzip;q=0, gzip"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        cr_expect(api__accepts_gzip(yes[i]), "Accept-Encoding: %s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        cr_expect_not(api__accepts_gzip(no[i]), "Accept-Encoding: %s",
                      no[i] ? no[i] : "(none)");
}

/* ---- content negotiation (api/negotiate.c) ---- */

static void expect_format(const char *accept, enum api_format want, bool want_acceptable)
{
    bool acceptable = !want_acceptable;
    enum api_format got = api__negotiate(accept, &acceptable);
    static const char *const names[] = {"json", "markdown", "html"};
    cr_expect_eq(got, want, "Accept: %s -> %s", accept ? accept : "(none)", names[got]);
    cr_expect_eq(acceptable, want_acceptable, "Accept: %s acceptable",
                 accept ? accept : "");
}

Test(negotiate, defaults_and_exact_types)
{
    expect_format(NULL, API_FORMAT_JSON, true);
    expect_format("", API_FORMAT_JSON, true);
    expect_format("*/*", API_FORMAT_JSON, true);
    expect_format("application/json", API_FORMAT_JSON, true);
    expect_format("text/markdown", API_FORMAT_MARKDOWN, true);
    expect_format("TEXT/Markdown; charset=utf-8", API_FORMAT_MARKDOWN, true);
}

Test(negotiate, q_values_decide)
{
    expect_format("text/markdown;q=0.9, application/json;q=0.5", API_FORMAT_MARKDOWN,
                  true);
    expect_format("text/markdown;q=0.5, application/json;q=0.9", API_FORMAT_JSON, true);
    expect_format("application/json;q=0.1, text/markdown ; q = 0.2", API_FORMAT_MARKDOWN,
                  true);
    expect_format("application/json;q=0, */*", API_FORMAT_MARKDOWN, true);
    expect_format("text/markdown;q=0, */*", API_FORMAT_JSON, true);
    expect_format("text/markdown;q=1.000", API_FORMAT_MARKDOWN, true);
}

Test(negotiate, equal_q_prefers_exact_then_order)
{
    /* a browser: the page, JSON and Markdown only through a wildcard at 0.8 */
    expect_format("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                  API_FORMAT_HTML, true);
    expect_format("text/markdown, application/json", API_FORMAT_MARKDOWN, true);
    expect_format("application/json, text/markdown", API_FORMAT_JSON, true);
    expect_format("text/markdown, */*", API_FORMAT_MARKDOWN, true);
    expect_format("*/*, text/markdown", API_FORMAT_MARKDOWN, true);
}

Test(negotiate, html_when_preferred)
{
    /* what Chromium and Firefox send for a page */
    expect_format("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;"
                  "q=0.7",
                  API_FORMAT_HTML, true);
    expect_format("text/html", API_FORMAT_HTML, true);
    expect_format("text/html;q=0.5, application/json", API_FORMAT_JSON, true);
    expect_format("text/markdown, text/html", API_FORMAT_MARKDOWN, true);
    expect_format("text/html, text/markdown", API_FORMAT_HTML, true);
    expect_format("text/html;q=0, text/*", API_FORMAT_MARKDOWN, true);
    expect_format("text/html;q=0, application/json;q=0, text/markdown;q=0",
                  API_FORMAT_JSON, false);
}

Test(negotiate, type_wildcards)
{
    expect_format("text/*", API_FORMAT_MARKDOWN, true);
    expect_format("application/*", API_FORMAT_JSON, true);
    expect_format("text/*;q=0.8, application/*;q=0.9", API_FORMAT_JSON, true);
    /* the most specific range decides: text/markdown;q=0 beats text/STAR, which
     * leaves the page */
    expect_format("text/*, text/markdown;q=0", API_FORMAT_HTML, true);
    expect_format("text/*, text/markdown;q=0, text/html;q=0", API_FORMAT_JSON, false);
}

Test(negotiate, nothing_acceptable_still_json)
{
    expect_format("image/png", API_FORMAT_JSON, false);
    expect_format("application/json;q=0", API_FORMAT_JSON, false);
    expect_format("garbage, ,;;", API_FORMAT_JSON, false);
}

Test(negotiate, format_parameter_wins)
{
    struct api_request req;
    bool valid = false;
    memset(&req, 0, sizeof req);
    req.accept = "application/json";
    req.format = "md";
    cr_expect_eq(api__request_format(&req, &valid), API_FORMAT_MARKDOWN);
    cr_expect(valid);
    req.format = "yaml";
    cr_expect_eq(api__request_format(&req, &valid), API_FORMAT_JSON);
    cr_expect_not(valid);
}

/* ---- error mapping and error bodies ---- */

#include "api_int.h"

Test(errors, every_project_code_has_its_status)
{
    cr_expect_eq(api__status_for(IM_EINVAL), 400);
    cr_expect_eq(api__status_for(IM_ENOTFOUND), 404);
    cr_expect_eq(api__status_for(IM_EPROTO), 502);
    cr_expect_eq(api__status_for(IM_EDIGEST), 502);
    cr_expect_eq(api__status_for(IM_EUPSTREAM), 502);
    cr_expect_eq(api__status_for(IM_ERATELIMIT), 503);
    cr_expect_eq(api__status_for(IM_ETIMEOUT), 504);
    cr_expect_eq(api__status_for(IM_ESTORE), 500);
    cr_expect_eq(api__status_for(12345), 500, "unknown codes are internal errors");
}

static struct api_response handle(struct api_request *req)
{
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    if (!req->method)
        req->method = "GET";
    cr_assert_eq(api_handle(api, req, &resp), 0);
    return resp;
}

Test(api, markdown_request_gets_errors_as_plain_text)
{
    struct api_request req;
    memset(&req, 0, sizeof req);
    req.path = "/images/Python/3.7-slim";
    req.accept = "text/markdown";
    struct api_response r = handle(&req);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
    cr_assert(r.len > 1 && r.body[r.len - 1] == '\n' && r.body[0] != '{', "%s", r.body);
    cr_assert_not_null(strstr(r.body, "lowercase"), "%s", r.body);
    api_response_free(&r);

    memset(&req, 0, sizeof req);
    req.path = "/nothing";
    req.format = "markdown";
    r = handle(&req);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
    api_response_free(&r);
}

Test(api, markdown_platform_miss_is_plain_text_listing_platforms)
{
    struct api_request req;
    memset(&req, 0, sizeof req);
    req.path = "/images/python/3.7-slim";
    req.accept = "text/markdown";
    req.platforms[0] = "linux/s390x";
    req.n_platforms = 1;
    struct api_response r = handle(&req);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
    cr_assert_not_null(strstr(r.body, "linux/amd64"), "%s", r.body);
    api_response_free(&r);
}

Test(api, server_rejections_are_json_errors)
{
    static const struct {
        enum api_reject reject;
        int status;
        const char *code;
    } cases[] = {{API_REJECT_BODY, 413, "body_not_allowed"},
                 {API_REJECT_URI_TOO_LONG, 414, "uri_too_long"},
                 {API_REJECT_HEADERS_TOO_LARGE, 431, "headers_too_large"},
                 {API_REJECT_BAD_HOST, 400, "invalid_request"},
                 {API_REJECT_BAD_ENCODING, 400, "invalid_request"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct api_request req;
        memset(&req, 0, sizeof req);
        req.path = "/images/python/3.7-slim";
        req.reject = cases[i].reject;
        struct api_response r = handle(&req);
        cr_expect_eq(r.status, cases[i].status);
        cr_expect_str_eq(r.content_type, "application/json");
        cr_expect_not_null(strstr(r.body, cases[i].code), "%s", r.body);
        api_response_free(&r);
    }
}

Test(api, bad_encoding_says_what_server_found)
{
    struct api_request req;
    memset(&req, 0, sizeof req);
    req.path = "/images/python/3.7-slim";
    req.reject = API_REJECT_BAD_ENCODING;
    req.reject_reason = "the path decodes to a control character";
    struct api_response r = handle(&req);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(r.body, "\"invalid_request\""), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "the path decodes to a control character"), "%s",
                       r.body);
    api_response_free(&r);
    /* a Markdown request gets the message as text, like every other refusal */
    req.format = "markdown";
    r = handle(&req);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(r.content_type, "text/plain; charset=utf-8");
    cr_expect_not_null(strstr(r.body, "control character"), "%s", r.body);
    api_response_free(&r);
}

Test(api, route_labels_are_fixed)
{
    cr_expect_str_eq(api_route_label("/images/python/3.7-slim"), "images");
    cr_expect_str_eq(api_route_label("/repositories/python/tags"), "tags");
    cr_expect_str_eq(api_route_label("/healthz"), "healthz");
    cr_expect_str_eq(api_route_label("/metrics"), "metrics");
    cr_expect_str_eq(api_route_label("/whatever/user/text"), "other");
}

Test(api, tags_route_validates_before_asking_upstream)
{
    static const struct {
        const char *path, *n, *last, *code;
    } cases[] = {
        {"/repositories/Python/tags", NULL, NULL, "invalid_reference"},
        {"/repositories/python:3.7/tags", NULL, NULL, "invalid_reference"},
        {"/repositories/python/tags", "0", NULL, "invalid_parameter"},
        {"/repositories/python/tags", "ten", NULL, "invalid_parameter"},
        {"/repositories/python/tags", "10001", NULL, "invalid_parameter"},
        {"/repositories/python/tags", "5", "", "invalid_parameter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct api_request req;
        memset(&req, 0, sizeof req);
        req.path = cases[i].path;
        req.n = cases[i].n;
        req.last = cases[i].last;
        struct api_response r = handle(&req);
        cr_expect_eq(r.status, 400, "%s n=%s: %d", cases[i].path, cases[i].n, r.status);
        cr_expect_not_null(strstr(r.body, cases[i].code), "%s", r.body);
        cr_expect_eq(r.link[0], '\0');
        api_response_free(&r);
    }
}

Test(api, tags_upstream_down_is_a_gateway_error)
{
    struct api_request req;
    memset(&req, 0, sizeof req);
    req.path = "/repositories/python/tags";
    struct api_response r = handle(&req);
    cr_assert(r.status == 502 || r.status == 504, "status %d: %s", r.status, r.body);
    cr_assert_not_null(strstr(r.body, "\"error\""), "%s", r.body);
    api_response_free(&r);
}

Test(config, registry_ttls_override_the_tag_ttl_per_registry)
{
    struct api_config c;
    struct im_error err;
    api_config_defaults(&c);
    cr_assert_eq(api_config_registry_ttls(&c,
                                          " ghcr.io=60, registry-1.docker.io=0,"
                                          "localhost:5000=7",
                                          &err),
                 0, "%s", err.msg);
    cr_assert_eq(c.n_registry_ttls, 3);
    cr_assert_eq(api_config_tag_ttl(&c, "ghcr.io"), 60);
    cr_assert_eq(api_config_tag_ttl(&c, "docker.io"), 0, "alias names docker.io");
    cr_assert_eq(api_config_tag_ttl(&c, "localhost:5000"), 7);
    cr_assert_eq(api_config_tag_ttl(&c, "quay.io"), 300, "others keep --tag-ttl");
    cr_assert_eq(api_config_registry_ttls(&c, "", &err), 0);
    cr_assert_eq(api_config_tag_ttl(&c, "ghcr.io"), 300, "\"\" clears the list");
}

Test(config, bad_registry_ttls_are_refused_and_change_nothing)
{
    static const char *bad[] = {"ghcr.io",
                                "ghcr.io=",
                                "=60",
                                "ghcr.io=6x",
                                "ghcr.io=-1",
                                "ghcr.io=604801",
                                "ghcr=5",
                                "gh cr.io=5",
                                "ghcr.io=1,ghcr.io=2",
                                "ghcr.io=99999999999999999999"};
    struct api_config c;
    struct im_error err;
    api_config_defaults(&c);
    cr_assert_eq(api_config_registry_ttls(&c, "quay.io=9", &err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        cr_expect_eq(api_config_registry_ttls(&c, bad[i], &err), IM_EINVAL, "%s", bad[i]);
        cr_expect_neq(err.msg[0], '\0', "%s: a message", bad[i]);
        cr_expect_eq(api_config_tag_ttl(&c, "quay.io"), 9, "%s left the list", bad[i]);
    }
}

/* ---- rendered answers kept in the store --------------------------------- */

static struct api_response get_from(struct api *a, const char *path)
{
    struct api_request req;
    struct api_response resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    req.method = "GET";
    req.path = path;
    cr_assert_eq(api_handle(a, &req, &resp), 0);
    cr_assert_eq(resp.status, 200, "status %d: %.*s", resp.status, (int)resp.len,
                 resp.body);
    return resp;
}

static struct api *api_on(struct store *s)
{
    struct im_error err;
    struct api_config ac;
    api_config_defaults(&ac);
    ac.max_stale_seconds = 86400; /* as the daemon's default */
    struct api *a = api_new(&ac, s, reg, &err);
    cr_assert_not_null(a);
    return a;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

/* A file database in a fresh directory: path (64 bytes) gets its name. */
static void tmp_db(char *dir, char *path)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, 64, "%s/cache.db", dir);
}

static void tmp_db_remove(const char *dir, const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char p[80];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
}

static const char *header_of(const struct api_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_extra_headers; i++)
        if (strcmp(r->extra_headers[i].name, name) == 0)
            return r->extra_headers[i].value;
    return "";
}

/* Replaces the kept rendering's bytes with a marker no renderer writes. */
#define KEPT_MARKER "{\"kept\":true}"
#define KEPT_MARKER_SQL                                                                  \
    "UPDATE rendered SET body = CAST('" KEPT_MARKER "' AS BLOB), encoding = 0"

/* A daemon's first run on a new file database: python:3.7-slim resolved, then
 * asked once (rendered and kept). Returns that answer. */
static struct api_response first_run(char *dir, char *path)
{
    struct im_error err;
    tmp_db(dir, path);
    struct store *fs = store_open(path, &err);
    cr_assert_not_null(fs, "%s", err.msg);
    put_python(fs);
    struct api *fa = api_on(fs);
    struct api_response fresh = get_from(fa, "/images/python/3.7-slim");
    api_free(fa);
    store_close(fs);
    return fresh;
}

Test(api, after_a_restart_the_kept_rendering_is_served_until_the_renderer_changes)
{
    char dir[] = "/tmp/imgmeta-api-XXXXXX", path[64];
    struct im_error err;
    struct api_response fresh = first_run(dir, path);
    /* The kept rendering is marked behind the daemon's back (the documents
     * stay as they are: the store checks them against their digests), so
     * that what is served tells the kept rendering from a new one. */
    raw_exec(path, KEPT_MARKER_SQL);
    struct store *fs = store_open(path, &err);
    cr_assert_not_null(fs, "%s", err.msg);
    struct api *fa = api_on(fs); /* a restart: the in-memory cache is empty */
    struct api_response kept = get_from(fa, "/images/python/3.7-slim");
    cr_assert_eq(kept.len, strlen(KEPT_MARKER), "%.*s", (int)kept.len, kept.body);
    cr_assert(memcmp(kept.body, KEPT_MARKER, kept.len) == 0, "the kept rendering");
    cr_assert_str_eq(kept.content_type, fresh.content_type);
    api_free(fa);
    /* Another renderer build (a fix) ran on this file: this one's rows are
     * gone, and the answer is rendered again from the stored documents. */
    int64_t dropped = 0;
    cr_assert_eq(store_set_renderer(fs, "another-build", &dropped, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(dropped, 1);
    fa = api_on(fs);
    struct api_response again = get_from(fa, "/images/python/3.7-slim");
    cr_assert_eq(again.len, fresh.len, "%.*s", (int)again.len, again.body);
    cr_assert(memcmp(again.body, fresh.body, fresh.len) == 0,
              "rendered again, byte for byte what the first render gave");
    api_free(fa);
    store_close(fs);
    api_response_free(&fresh);
    api_response_free(&kept);
    api_response_free(&again);
    tmp_db_remove(dir, path);
}

Test(api, a_stale_answer_is_the_kept_rendering_marked_stale)
{
    char dir[] = "/tmp/imgmeta-api-XXXXXX", path[64];
    struct im_error err;
    struct api_response fresh = first_run(dir, path);
    /* an hour later, the registry unreachable; the kept rendering marked (a
     * new render would not say "kept") */
    raw_exec(path, "UPDATE tags SET checked_at = checked_at - 3600;");
    raw_exec(path, KEPT_MARKER_SQL);
    struct store *fs = store_open(path, &err);
    cr_assert_not_null(fs, "%s", err.msg);
    struct api *fa = api_on(fs);
    struct api_response stale = get_from(fa, "/images/python/3.7-slim");
    cr_assert_str_eq(header_of(&stale, "X-Imgmeta-Cache"), "stale");
    static const char want[] = "{\"stale\":true,\"kept\":true}";
    cr_assert_eq(stale.len, strlen(want), "%.*s", (int)stale.len, stale.body);
    cr_assert(memcmp(stale.body, want, stale.len) == 0,
              "the kept rendering, marked stale, not a new one: %s", stale.body);
    api_free(fa);
    store_close(fs);
    api_response_free(&fresh);
    api_response_free(&stale);
    tmp_db_remove(dir, path);
}

/* ---- the in-memory answer cache ------------------------------------------ */

static bool rcache_has(struct api__rcache *c, const char *key, const char *want)
{
    const char *body = NULL;
    size_t len = 0;
    const char *ctype = NULL;
    struct api_shared *held = NULL;
    if (api__rcache_get(c, key, strlen(key), &body, &len, &ctype, &held) != 0)
        return false;
    cr_assert_not_null(held);
    cr_assert_eq(len, strlen(want));
    cr_assert(memcmp(body, want, len) == 0 && body[len] == '\0');
    cr_assert_str_eq(ctype, API_CT_JSON);
    api_shared_release(held);
    return true;
}

Test(rcache, keeps_recent_answers_within_its_bytes)
{
    struct api__rcache *c = api__rcache_new(64 * 1024);
    cr_assert_not_null(c);
    static char body[1000];
    memset(body, 'b', sizeof body - 1);
    char key[32];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof key, "k%d", i);
        body[0] = (char)('A' + i % 26);
        api__rcache_put(c, key, strlen(key), body, strlen(body), API_CT_JSON);
    }
    int kept = 0;
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof key, "k%d", i);
        body[0] = (char)('A' + i % 26);
        kept += rcache_has(c, key, body);
    }
    cr_assert_gt(kept, 20, "recent answers are kept (%d)", kept);
    cr_assert_leq(kept, 64, "no more than its bytes hold (%d)", kept);
    body[0] = (char)('A' + 399 % 26);
    cr_assert(rcache_has(c, "k399", body), "the latest is kept");
    cr_assert(!rcache_has(c, "k0", ""), "the oldest went");
    static char huge[40000];
    memset(huge, 'h', sizeof huge - 1);
    api__rcache_put(c, "huge", 4, huge, strlen(huge), API_CT_JSON);
    cr_assert(!rcache_has(c, "huge", huge), "one answer never takes over the cache");
    api__rcache_free(c);

    c = api__rcache_new(0); /* --answer-cache-bytes 0: none */
    cr_assert_not_null(c);
    api__rcache_put(c, "k", 1, "v", 1, API_CT_JSON);
    cr_assert(!rcache_has(c, "k", "v"));
    api__rcache_free(c);
}

/* A hit is sent from the cache's own bytes: an answer evicted (or the whole
 * cache freed) while a response still sends it keeps its bytes until the
 * response lets go (ASan: no use after free, no leak). */
Test(rcache, an_answer_being_sent_outlives_its_eviction)
{
    struct api__rcache *c = api__rcache_new(64 * 1024);
    cr_assert_not_null(c);
    static char first[1000], other[1000];
    memset(first, 'f', sizeof first - 1);
    memset(other, 'o', sizeof other - 1);
    api__rcache_put(c, "first", 5, first, strlen(first), API_CT_JSON);
    const char *body = NULL, *ctype = NULL, *again = NULL;
    size_t len = 0;
    struct api_shared *held = NULL, *held2 = NULL;
    cr_assert_eq(api__rcache_get(c, "first", 5, &body, &len, &ctype, &held), 0);
    cr_assert_eq(api__rcache_get(c, "first", 5, &again, &len, &ctype, &held2), 0);
    cr_assert_eq(again, body, "a hit copies nothing: both share the cache's bytes");
    api_shared_release(held2);
    char key[32];
    for (int i = 0; i < 400; i++) { /* 400 KB through a 64 KB cache */
        snprintf(key, sizeof key, "k%d", i);
        api__rcache_put(c, key, strlen(key), other, strlen(other), API_CT_JSON);
    }
    cr_assert(!rcache_has(c, "first", first), "evicted from the cache");
    cr_assert_eq(len, strlen(first));
    cr_assert(memcmp(body, first, len) == 0 && body[len] == '\0',
              "the bytes being sent are intact after the eviction");
    api_shared_release(held); /* the last reference: freed now */
    cr_assert_eq(api__rcache_get(c, "k399", 4, &body, &len, &ctype, &held), 0,
                 "(held is released below, after the cache is gone)");
    api__rcache_free(c);
    cr_assert_eq(len, strlen(other));
    cr_assert(memcmp(body, other, len) == 0, "and after the cache is freed");
    api_shared_release(held);
}

/* Threads hammering an answer cache (hammer_run: 4 of them): answer k is
 * "key-k" and 1000 + 31k bytes of one letter, so any byte of another answer
 * shows. */
struct hammer {
    struct api__rcache *c;
    struct api__afile *f;
    unsigned seed;
    int bad, hits;
};

/* A random answer's key and body (body: 3000 bytes or more); its length. */
static size_t hammer_answer(struct hammer *h, int *k, char *key, size_t ksz, char *body)
{
    *k = (int)(rand_r(&h->seed) % 64);
    snprintf(key, ksz, "key-%d", *k);
    size_t n = 1000 + (size_t)*k * 31;
    memset(body, 'A' + *k % 50, n);
    return n;
}

/* Whether got (len bytes) is answer k's body; counted in h. */
static void hammer_check(struct hammer *h, int k, const char *got, size_t len)
{
    bool ok = len == 1000 + (size_t)k * 31;
    for (size_t j = 0; ok && j < len; j++)
        ok = got[j] == 'A' + k % 50;
    h->hits++;
    h->bad += !ok;
}

/* Runs 4 threads of run over h0's cache (seeds from h0's); *bad and *hits
 * summed. */
static void hammer_run(void *(*run)(void *), const struct hammer *h0, int *bad, int *hits)
{
    struct hammer h[4];
    pthread_t t[4];
    for (unsigned i = 0; i < 4; i++) {
        h[i] = *h0;
        h[i].seed = h0->seed + i;
        cr_assert_eq(pthread_create(&t[i], NULL, run, &h[i]), 0);
    }
    *bad = *hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        *bad += h[i].bad;
        *hits += h[i].hits;
    }
}

/* Puts answers into a cache that holds a few of them (so every put evicts)
 * and, holding one it got, puts two more: every answer held keeps its own
 * bytes until released, whatever the others evicted (under ASan: no use
 * after free; no leak once the cache is freed). */
static void *rc_hammer_run(void *cls)
{
    struct hammer *h = cls;
    char key[32], body[3000];
    int k = 0, other = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = hammer_answer(h, &k, key, sizeof key, body);
        api__rcache_put(h->c, key, strlen(key), body, n, API_CT_JSON);
        hammer_answer(h, &k, key, sizeof key, body);
        const char *got = NULL, *ct = NULL;
        size_t len = 0;
        struct api_shared *held = NULL;
        if (api__rcache_get(h->c, key, strlen(key), &got, &len, &ct, &held) != 0)
            continue;
        for (int j = 0; j < 2; j++) {
            char okey[32];
            n = hammer_answer(h, &other, okey, sizeof okey, body);
            api__rcache_put(h->c, okey, strlen(okey), body, n, API_CT_JSON);
        }
        hammer_check(h, k, got, len);
        h->bad += got[len] != '\0';
        api_shared_release(held);
    }
    return NULL;
}

Test(rcache, answers_held_by_threads_survive_the_others_evictions)
{
    struct hammer h0 = {.c = api__rcache_new(8 * 8 * 1024),
                        .seed = 11}; /* 8 KiB a shard */
    cr_assert_not_null(h0.c);
    int bad = 0, hits = 0;
    hammer_run(rc_hammer_run, &h0, &bad, &hits);
    cr_assert_gt(hits, 1000, "answers were found (%d)", hits);
    cr_assert_eq(bad, 0, "%d of %d answers held changed or lost their bytes", bad, hits);
    api__rcache_free(h0.c);
}

/* ---- the answers file (api/afile.c) ----------------------------------------- */

/* A fresh directory for an answers file (dir: a mkdtemp template). */
static void afile_dir(char *dir)
{
    cr_assert_not_null(mkdtemp(dir));
}

/* An answers file of max_bytes in a new directory dir (a mkdtemp template). */
static struct api__afile *afile_in(char *dir, uint64_t max_bytes)
{
    struct im_error err;
    afile_dir(dir);
    struct api__afile *f = api__afile_new(dir, max_bytes, &err);
    cr_assert_not_null(f, "%s", err.msg);
    return f;
}

/* An api on the shared in-memory store with the LRU off and an answers file
 * of max_bytes in dir: every answer asked again comes from the file. */
static struct api *api_with_answers_file(const char *dir, uint64_t max_bytes)
{
    struct im_error err;
    struct api_config ac;
    api_config_defaults(&ac);
    ac.answer_cache_bytes = 0;
    ac.answer_file_bytes = max_bytes;
    snprintf(ac.answer_file_dir, sizeof ac.answer_file_dir, "%s", dir);
    struct api *a = api_new(&ac, st, reg, &err);
    cr_assert_not_null(a, "%s", err.msg);
    return a;
}

static void assert_same_answer(const struct api_response *a, const struct api_response *b)
{
    cr_assert_eq(a->status, b->status);
    cr_assert_str_eq(a->content_type, b->content_type);
    cr_assert_str_eq(a->etag, b->etag);
    cr_assert_eq(a->len, b->len, "%zu vs %zu bytes", a->len, b->len);
    cr_assert(memcmp(a->body, b->body, a->len) == 0, "bodies differ");
}

/* The len bytes at off of fd, read into a new NUL-terminated buffer. */
static char *read_at(int fd, uint64_t off, size_t len)
{
    char *buf = malloc(len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    buf[len] = '\0';
    return buf;
}

Test(api, answers_file_serves_the_fresh_render_byte_for_byte)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    afile_dir(dir);
    /* the reference: an api with neither the LRU nor the file renders afresh
     * (the store's rendered rows are dropped between asks) */
    struct api_config ac;
    struct im_error err;
    api_config_defaults(&ac);
    ac.answer_cache_bytes = 0;
    struct api *plain = api_new(&ac, st, reg, &err);
    cr_assert_not_null(plain);
    struct api *a = api_with_answers_file(dir, 1 << 20);
    static const char *const formats[] = {NULL, "markdown"};
    for (size_t i = 0; i < 2; i++) {
        struct api_response first =
            get_on(a, "/images/python/3.7-slim", NULL, formats[i]);
        cr_assert_eq(first.status, 200);
        struct api__afile_stats s0, s1;
        api__answers_stats(a->answers, &s0);
        struct api_response again =
            get_on(a, "/images/python/3.7-slim", NULL, formats[i]);
        api__answers_stats(a->answers, &s1);
        cr_assert_eq(s1.hits, s0.hits + 1, "asked again: from the answers file");
        /* another renderer name drops the store's rendered rows: plain must
         * render afresh */
        cr_assert_eq(
            store_set_renderer(st, i ? "test-fresh-1" : "test-fresh-0", NULL, &err), 0);
        struct api_response fresh =
            get_on(plain, "/images/python/3.7-slim", NULL, formats[i]);
        assert_same_answer(&again, &fresh);
        assert_same_answer(&again, &first);
        api_response_free(&first);
        api_response_free(&again);
        api_response_free(&fresh);
    }
    api_free(plain);
    api_free(a);
    rmdir(dir);
}

/* A request from a server that sends files (api_request.file_body), the LRU
 * off: asked again, the answer is the answers file's descriptor and offset,
 * and the bytes there are the fresh render's, byte for byte; a request that
 * cannot take a descriptor gets the same bytes in memory. */
Test(api, answers_file_answer_as_a_descriptor_is_the_fresh_render)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    afile_dir(dir);
    struct api *a = api_with_answers_file(dir, 1 << 20);
    static const char *const formats[] = {NULL, "markdown"};
    for (size_t i = 0; i < 2; i++) {
        struct api_request req;
        memset(&req, 0, sizeof req);
        req.method = "GET";
        req.path = "/images/python/3.7-slim";
        req.format = formats[i];
        req.file_body = true;
        struct api_response first, again;
        memset(&first, 0, sizeof first);
        memset(&again, 0, sizeof again);
        cr_assert_eq(api_handle(a, &req, &first), 0);
        cr_assert_eq(first.status, 200);
        cr_assert_eq(api_handle(a, &req, &again), 0);
        cr_assert_eq(again.status, 200);
        cr_assert(again.file_body, "asked again: a descriptor of the answers file");
        cr_assert_null(again.body);
        cr_assert_str_eq(again.content_type, first.content_type);
        cr_assert_str_eq(again.etag, first.etag);
        cr_assert_eq(again.len, first.len);
        char *bytes = read_at(again.file_fd, again.file_off, again.len);
        cr_assert(memcmp(bytes, first.body, first.len) == 0, "bodies differ");
        free(bytes);
        struct api_response in_memory = get_on(a, req.path, NULL, formats[i]);
        cr_assert_not(in_memory.file_body);
        assert_same_answer(&in_memory, &first);
        api_response_free(&first);
        api_response_free(&again); /* closes the descriptor */
        api_response_free(&in_memory);
    }
    api_free(a);
    rmdir(dir);
}

/* Puts answers "k<from>" to "k<to - 1>" into f (of 64 KiB), each 4 KiB of
 * the letter 'a' + i % 26: from 0 to 40, the file starts over twice. */
static void put_answers(struct api__afile *f, int from, int to)
{
    char key[32], body[4096];
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof key, "k%d", i);
        memset(body, 'a' + i % 26, sizeof body);
        api__afile_put(f, key, strlen(key), body, sizeof body, API_CT_JSON);
    }
    struct api__afile_stats s;
    api__afile_stats(f, &s);
    cr_assert_geq(s.epoch, 2, "started over (epoch %llu)", (unsigned long long)s.epoch);
}

Test(api, answers_file_starts_over_when_full_and_never_mixes_answers)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 64 * 1024);
    char key[32], body[4096];
    struct api_shared *got = NULL;
    const char *bytes = NULL;
    size_t len = 0;
    const char *ct = NULL;
    /* 40 answers of 4 KiB through a 64 KiB file: it starts over twice */
    put_answers(f, 0, 40);
    struct api__afile_stats s;
    api__afile_stats(f, &s);
    cr_assert_leq(s.bytes, 64 * 1024);
    int found = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if (api__afile_get(f, key, strlen(key), &got, &bytes, &len, &ct) != 0)
            continue;
        found++;
        cr_assert_eq(len, sizeof body);
        cr_assert_str_eq(ct, API_CT_JSON);
        for (size_t j = 0; j < len; j++)
            cr_assert_eq(bytes[j], 'a' + i % 26, "answer %d holds its own bytes", i);
        cr_assert_eq(bytes[len], '\0');
        api_shared_release(got);
    }
    cr_assert(found > 0 && found < 40, "the newest are kept, the oldest gone (%d)",
              found);
    snprintf(key, sizeof key, "k%d", 39);
    cr_assert_eq(api__afile_get(f, key, strlen(key), &got, &bytes, &len, &ct), 0,
                 "the newest");
    api_shared_release(got);
    cr_assert_eq(api__afile_get(f, "k0", 2, &got, &bytes, &len, &ct), IM_ENOTFOUND);
    api__afile_free(f);
    rmdir(dir);
}

/* For a server that sends files: an answer comes as a descriptor of its own
 * and the offset of its bytes, which are the answer's (its key is not among
 * them); a key never put is a miss. */
Test(api, answers_file_hands_out_an_answer_as_a_descriptor)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 1 << 20);
    api__afile_put(f, "key-1", 5, "{\"answer\":1}", 12, API_CT_JSON);
    api__afile_put(f, "key-2", 5, "# answer 2\n", 11, API_CT_MARKDOWN);
    int fd = -1;
    uint64_t off = 0;
    size_t len = 0;
    const char *ct = NULL;
    cr_assert_eq(api__afile_open(f, "key-2", 5, &fd, &off, &len, &ct), 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(len, 11);
    cr_assert_str_eq(ct, API_CT_MARKDOWN);
    char *got = read_at(fd, off, len);
    cr_assert_str_eq(got, "# answer 2\n");
    free(got);
    close(fd);
    cr_assert_eq(api__afile_open(f, "key-3", 5, &fd, &off, &len, &ct), IM_ENOTFOUND);
    cr_assert_eq(api__afile_open(f, "key-", 4, &fd, &off, &len, &ct), IM_ENOTFOUND);
    api__afile_free(f);
    rmdir(dir);
}

/* Out of descriptors, open says so (IM_EBUSY, not a miss): the answer is
 * still there and get reads it, so the caller falls back to reading. */
Test(api, answers_file_out_of_descriptors_is_not_a_miss)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 1 << 20);
    api__afile_put(f, "key-1", 5, "{\"answer\":1}", 12, API_CT_JSON);
    struct rlimit was, none;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &was), 0);
    none = was;
    none.rlim_cur = 3; /* 0, 1 and 2 are taken: no new descriptor */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
    int fd = -1;
    uint64_t off = 0;
    size_t len = 0;
    const char *ct = NULL;
    int rc = api__afile_open(f, "key-1", 5, &fd, &off, &len, &ct);
    struct api_shared *got = NULL;
    const char *bytes = NULL;
    int read_rc = api__afile_get(f, "key-1", 5, &got, &bytes, &len, &ct);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
    cr_assert_eq(rc, IM_EBUSY, "open with no descriptor left: %d", rc);
    cr_assert_eq(read_rc, 0, "get still reads it");
    cr_assert_eq(memcmp(bytes, "{\"answer\":1}", 12), 0);
    api_shared_release(got);
    api__afile_free(f);
    rmdir(dir);
}

/* An answer handed out as a descriptor is being sent while the file fills up
 * and starts over (twice): what the descriptor reads is still that answer,
 * never bytes written since; the answer itself is gone from the index. */
Test(api, answers_file_answer_being_sent_survives_start_overs)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 64 * 1024);
    char key[32], body[4096];
    memset(body, 'a', sizeof body);
    api__afile_put(f, "k0", 2, body, sizeof body, API_CT_JSON);
    int fd = -1;
    uint64_t off = 0;
    size_t len = 0;
    const char *ct = NULL;
    cr_assert_eq(api__afile_open(f, "k0", 2, &fd, &off, &len, &ct), 0);
    put_answers(f, 1, 40);
    char *got = read_at(fd, off, len);
    for (size_t j = 0; j < len; j++)
        cr_assert_eq(got[j], 'a', "byte %zu of the answer being sent changed", j);
    free(got);
    close(fd);
    int fd2 = -1;
    cr_assert_eq(api__afile_open(f, "k0", 2, &fd2, &off, &len, &ct), IM_ENOTFOUND);
    snprintf(key, sizeof key, "k%d", 39);
    cr_assert_eq(api__afile_open(f, key, strlen(key), &fd2, &off, &len, &ct), 0,
                 "the newest is there");
    got = read_at(fd2, off, len);
    cr_assert_eq(got[0], 'a' + 39 % 26);
    free(got);
    close(fd2);
    api__afile_free(f);
    rmdir(dir);
}

/* Threads putting and getting through a file that starts over every few
 * answers: every answer read holds its own key's bytes. A writer still filling
 * a region of an old epoch must never land on a region handed out since. Every
 * other answer is taken as a descriptor and read only after one more put (a
 * start-over, now and then): still its own bytes, as a response sent from it
 * would be. */
static void *af_hammer_run(void *cls)
{
    struct hammer *h = cls;
    char key[32], body[3000], sent[3000];
    struct api_shared *got = NULL;
    const char *bytes = NULL;
    size_t len = 0;
    const char *ct = NULL;
    int k = 0, other = 0, fd = -1;
    uint64_t off = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = hammer_answer(h, &k, key, sizeof key, body);
        api__afile_put(h->f, key, strlen(key), body, n, API_CT_JSON);
        hammer_answer(h, &k, key, sizeof key, body);
        if (i % 2 == 0) {
            if (api__afile_get(h->f, key, strlen(key), &got, &bytes, &len, &ct) != 0)
                continue;
            hammer_check(h, k, bytes, len);
            api_shared_release(got);
            continue;
        }
        if (api__afile_open(h->f, key, strlen(key), &fd, &off, &len, &ct) != 0)
            continue;
        char okey[32];
        n = hammer_answer(h, &other, okey, sizeof okey, body);
        api__afile_put(h->f, okey, strlen(okey), body, n, API_CT_JSON);
        bool whole =
            len <= sizeof sent && pread(fd, sent, len, (off_t)off) == (ssize_t)len;
        close(fd);
        hammer_check(h, k, whole ? sent : "", whole ? len : 0);
    }
    return NULL;
}

Test(api, answers_file_concurrent_start_overs_never_mix_answers)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct hammer h0 = {.f = afile_in(dir, 32 * 1024), .seed = 7};
    int bad = 0, hits = 0;
    hammer_run(af_hammer_run, &h0, &bad, &hits);
    struct api__afile_stats s;
    api__afile_stats(h0.f, &s);
    cr_assert_gt(s.epoch, 10, "started over again and again (epoch %llu)",
                 (unsigned long long)s.epoch);
    cr_assert_gt(hits, 0, "answers were read back");
    cr_assert_eq(bad, 0, "%d of %d answers read held another answer's bytes", bad, hits);
    api__afile_free(h0.f);
    rmdir(dir);
}

/* The answers file's descriptor in this process: the one whose link names a
 * file of dir. -1 when none. */
static int afile_fd_in(const char *dir)
{
    char link[64], target[4096];
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, dir, strlen(dir)) == 0 && target[strlen(dir)] == '/')
            return fd;
    }
    return -1;
}

/* The index keeps only a key's hash: a read checks the key written before the
 * answer, so bytes under another key (a hash collision, a damaged file) are a
 * miss, never another answer. */
Test(api, answers_file_never_serves_bytes_under_another_key)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 1 << 20);
    struct api_shared *got = NULL;
    const char *bytes = NULL, *ct = NULL;
    size_t len = 0;
    api__afile_put(f, "key-1", 5, "{\"answer\":1}", 12, API_CT_JSON);
    cr_assert_eq(api__afile_get(f, "key-1", 5, &got, &bytes, &len, &ct), 0);
    cr_assert_eq(len, 12);
    cr_assert_eq(memcmp(bytes, "{\"answer\":1}", 12), 0);
    cr_assert_eq(bytes[len], '\0');
    api_shared_release(got);
    int fd = afile_fd_in(dir);
    cr_assert_geq(fd, 0, "the answers file is open in %s", dir);
    cr_assert_eq(pwrite(fd, "kez", 3, 0), 3, "the key's bytes changed in place");
    cr_assert_eq(api__afile_get(f, "key-1", 5, &got, &bytes, &len, &ct), IM_ENOTFOUND,
                 "a key that does not match is a miss");
    api__afile_free(f);
    rmdir(dir);
}

/* An answer read from the file is sent once: its block goes back to a pool and
 * the next read reuses it, instead of a large malloc and free per request. The
 * pool keeps a bounded number of idle blocks, and a block is never reused
 * while a response still holds it. */
Test(api, answers_file_reads_recycle_a_bounded_pool_of_blocks)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    struct api__afile *f = afile_in(dir, 1 << 20);
    static char body[9000];
    memset(body, 'j', sizeof body);
    api__afile_put(f, "k", 1, body, sizeof body, API_CT_JSON);
    struct api_shared *held[3 * API__SHARED_POOL_KEEP];
    const char *bytes[3 * API__SHARED_POOL_KEEP];
    size_t len = 0;
    const char *ct = NULL;
    cr_assert_eq(api__afile_get(f, "k", 1, &held[0], &bytes[0], &len, &ct), 0);
    const char *first = api__shared_bytes(held[0]);
    api_shared_release(held[0]);
    cr_assert_eq(api__shared_pool_held(), 1, "the block went back to the pool");
    cr_assert_eq(api__afile_get(f, "k", 1, &held[0], &bytes[0], &len, &ct), 0);
    cr_assert_eq(api__shared_bytes(held[0]), first, "the next read reused it");
    cr_assert_eq(api__shared_pool_held(), 0);
    api_shared_release(held[0]);
    /* many answers held at once: each its own block, the pool bounded after */
    size_t n = sizeof held / sizeof *held;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(api__afile_get(f, "k", 1, &held[i], &bytes[i], &len, &ct), 0);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(api__shared_bytes(held[j]), api__shared_bytes(held[i]),
                          "a block held is not handed out again");
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(len, sizeof body);
        cr_assert_eq(memcmp(bytes[i], body, sizeof body), 0);
        api_shared_release(held[i]);
    }
    cr_assert_eq(api__shared_pool_held(), API__SHARED_POOL_KEEP, "idle blocks kept: %zu",
                 api__shared_pool_held());
    api__shared_pool_drain();
    cr_assert_eq(api__shared_pool_held(), 0);
    api__afile_free(f);
    rmdir(dir);
}

Test(api, answers_file_write_failure_still_answers_right)
{
    char dir[] = "/tmp/imgmeta-afile-XXXXXX";
    afile_dir(dir);
    struct api_response before = get("/images/python/3.7-slim", NULL, NULL);
    /* the file may not grow at all: every write fails with EFBIG (as a full
     * disk fails with ENOSPC); Criterion runs each test in its own process */
    struct rlimit lim = {.rlim_cur = 0, .rlim_max = 0};
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct api *a = api_with_answers_file(dir, 1 << 20);
    for (int i = 0; i < 3; i++) {
        struct api_response r = get_on(a, "/images/python/3.7-slim", NULL, NULL);
        assert_same_answer(&r, &before);
        api_response_free(&r);
    }
    struct api__afile_stats s;
    api__answers_stats(a->answers, &s);
    cr_assert_geq(s.write_failures, 1, "the writes did fail");
    cr_assert_eq(s.entries, 0, "a failed write indexes nothing");
    cr_assert_eq(s.hits, 0);
    api_free(a);
    api_response_free(&before);
    rmdir(dir);
}

Test(api, answers_file_in_a_missing_directory_is_off_and_answers_still_come)
{
    struct api *a = api_with_answers_file("/nonexistent/imgmeta-dir", 1 << 20);
    cr_assert_not_null(api_answers_file_error(a));
    cr_assert_not_null(strstr(api_answers_file_error(a), "/nonexistent/imgmeta-dir"),
                       "%s", api_answers_file_error(a));
    struct api_response r = get_on(a, "/images/python/3.7-slim", NULL, "markdown");
    cr_assert_eq(r.status, 200);
    cr_assert(strncmp(r.body, "## `python:3.7-slim`\n", 21) == 0, "%s", r.body);
    api_response_free(&r);
    struct api__afile_stats fs;
    api__answers_stats(a->answers, &fs);
    cr_assert_eq(fs.entries + fs.bytes + fs.write_failures, 0, "no answers file is used");
    api_free(a);
}

/* ---- POST /images: a batch (api/batch.c) ---- */

static struct api_response post_batch(const char *body, const char *ctype,
                                      bool cache_only)
{
    struct api_request req = {.method = "POST",
                              .path = "/images",
                              .content_type = ctype,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .cache_only = cache_only};
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    int rc = api_handle(api, &req, &resp);
    cr_assert_eq(rc, cache_only && rc == API_SLOW ? API_SLOW : 0);
    return resp;
}

static json_t *batch_results(const struct api_response *r)
{
    json_error_t jerr;
    cr_assert_eq(r->status, 200, "%.*s", (int)r->len, r->body);
    json_t *root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(root, "%s", jerr.text);
    json_t *results = json_object_get(root, "results");
    cr_assert(json_is_array(results));
    json_incref(results);
    json_decref(root);
    return results;
}

Test(api, batch_answers_each_reference_in_order)
{
    struct api_response one = get("/images/python/3.7-slim?view=summary", NULL, NULL);
    struct api_request sreq = {
        .method = "GET", .path = "/images/python/3.7-slim", .view = "summary"};
    api_response_free(&one);
    one = answer_to(api, &sreq);
    struct api_response r = post_batch(
        "{\"references\":[\"python:3.7-slim\",\"python:3.8-slim\",\"NOT A REF\","
        "\"python/3.7-slim\"],\"view\":\"summary\"}",
        "application/json", false);
    json_t *res = batch_results(&r);
    cr_assert_eq(json_array_size(res), 4);
    const char *refs[] = {"python:3.7-slim", "python:3.8-slim", "NOT A REF",
                          "python/3.7-slim"};
    int statuses[] = {200, 502, 400, 200};
    for (size_t i = 0; i < 4; i++) {
        json_t *it = json_array_get(res, i);
        cr_assert_str_eq(json_string_value(json_object_get(it, "reference")), refs[i]);
        cr_assert_eq(json_integer_value(json_object_get(it, "status")), statuses[i],
                     "item %zu", i);
        cr_assert_not_null(json_object_get(it, statuses[i] == 200 ? "image" : "error"));
    }
    /* the image is the GET's answer, byte for byte */
    char *image = json_dumps(json_object_get(json_array_get(res, 0), "image"),
                             JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len = one.len;
    while (len > 0 && one.body[len - 1] == '\n')
        len--;
    cr_assert(strlen(image) == len && memcmp(image, one.body, len) == 0, "%s", image);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(res, 2), "error"), "code")),
                     "invalid_reference");
    free(image);
    json_decref(res);
    api_response_free(&r);
    api_response_free(&one);
}

Test(api, batch_cache_only_defers_when_one_reference_needs_the_registry)
{
    struct api_response r =
        post_batch("{\"references\":[\"python:3.7-slim\"]}", "application/json", true);
    json_t *res = batch_results(&r);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(res, 0), "status")),
                 200, "a cached reference is answered on the HTTP thread");
    json_decref(res);
    api_response_free(&r);
    r = post_batch("{\"references\":[\"python:3.7-slim\",\"python:3.8-slim\"]}",
                   "application/json", true);
    cr_assert_eq(r.status, 0, "deferred: nothing to send");
    cr_assert_null(r.body);
}

Test(api, batch_hostile_bodies_are_clear_4xx)
{
    char many[8192];
    size_t off = (size_t)snprintf(many, sizeof many, "{\"references\":[");
    for (int i = 0; i < 101; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "%s\"python:3.7-slim\"",
                                i ? "," : "");
    snprintf(many + off, sizeof many - off, "]}");
    const struct {
        const char *body, *ctype;
        int status;
        const char *code;
    } cases[] = {
        {"{\"references\":[\"python:3.7-slim\"]}", "text/plain", 415,
         "unsupported_media_type"},
        {"{\"references\":[\"python:3.7-slim\"]}", NULL, 415, "unsupported_media_type"},
        {"not json", "application/json", 400, "invalid_body"},
        {"", "application/json", 400, "invalid_body"},
        {"[\"python:3.7-slim\"]", "application/json", 400, "invalid_body"},
        {"{\"references\":\"python:3.7-slim\"}", "application/json", 400, "invalid_body"},
        {"{\"references\":[1]}", "application/json", 400, "invalid_body"},
        {"{\"references\":[null]}", "application/json", 400, "invalid_body"},
        {"{\"references\":[],\"view\":\"full\"}", "application/json", 400,
         "too_many_references"},
        {many, "application/json; charset=utf-8", 400, "too_many_references"},
        {"{\"references\":[\"a:1\"],\"view\":\"tiny\"}", "application/json", 400,
         "invalid_parameter"},
        {"{\"references\":[\"a:1\"],\"view\":1}", "application/json", 400,
         "invalid_body"},
        {"{\"references\":[\"a:1\"],\"extra\":1}", "application/json", 400,
         "invalid_body"},
        {"{\"references\":[\"a:1\"],\"references\":[\"b:1\"]}", "application/json", 400,
         "invalid_body"},
        {"{\"references\":[\"a:1\"]} trailing", "application/json", 400, "invalid_body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct api_response r = post_batch(cases[i].body, cases[i].ctype, false);
        cr_expect_eq(r.status, cases[i].status, "case %zu: %d %.*s", i, r.status,
                     (int)r.len, r.body);
        cr_expect(r.body && strstr(r.body, cases[i].code), "case %zu: %s", i, r.body);
        api_response_free(&r);
    }
    struct api_request put = {.method = "PUT", .path = "/images"};
    struct api_response r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(api_handle(api, &put, &r), 0);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "GET, HEAD, POST");
    api_response_free(&r);
}
