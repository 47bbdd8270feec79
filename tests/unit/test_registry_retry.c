/* test_registry_retry.c - retries with backoff, Retry-After, the bound on
 * attempts, ratelimit headers and the upstream metrics, against the mock. */
#include "registry_test.h"

/* ------------------------------------------------------------ retries --- */

static struct reg_client *retry_client(int max_retries, long base_ms, long max_ms)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    mock_config(&cfg);
    cfg.max_retries = max_retries;
    cfg.retry_base_ms = base_ms;
    cfg.retry_max_ms = max_ms;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    return c;
}

/* A HEAD of team/app:v1 (no CDN involved) with the mock's faults armed. */
static int faulty_head(struct reg_client *c, int n, int status, const char *headers,
                       struct reg_head *h, struct reg_stats *st, struct im_error *e)
{
    struct im_ref ref;
    mock_ref("v1", &ref);
    /* get the token first so the faults hit the authorised requests */
    cr_assert_eq(reg_head_manifest(c, &ref, h, NULL, e), 0, "%s", e->msg);
    M.fail_status = status;
    snprintf(M.fail_headers, sizeof M.fail_headers, "%s", headers);
    M.fail_n = n;
    return reg_head_manifest(c, &ref, h, st, e);
}

Test(retry_mock, server_errors_are_retried_with_backoff, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(2, 100, 1000);
    int64_t t0 = im_monotonic_ms();
    int rc = faulty_head(c, 2, 503, "", &h, &st, &e);
    int64_t ms = im_monotonic_ms() - t0;
    cr_assert_eq(rc, 0, "two 503s then 200 within 2 retries: %d %s", rc, e.msg);
    cr_expect_str_eq(h.digest, M.dindex);
    cr_expect_eq(st.retries, 2);
    cr_expect_eq(st.manifest_heads, 3);
    cr_expect_eq(st.requests, 3);
    /* backoff 100 then 200 ms, each at least half fixed: >= 50 + 100 */
    cr_expect_geq(ms, 150, "backoff waited only %lld ms", (long long)ms);
    cr_expect_lt(ms, 2000, "backoff took %lld ms", (long long)ms);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, retries_are_bounded, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(3, 10, 50);
    int rc = faulty_head(c, -1, 502, "", &h, &st, &e);
    cr_expect_eq(rc, IM_EUPSTREAM, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "HTTP 502") != NULL, "%s", e.msg);
    cr_expect_eq(st.requests, 4, "1 + 3 retries, got %u", st.requests);
    cr_expect_eq(st.retries, 3);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, not_implemented_is_not_retried, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(3, 10, 50);
    int rc = faulty_head(c, -1, 501, "", &h, &st, &e);
    cr_expect_eq(rc, IM_EUPSTREAM, "%d %s", rc, e.msg);
    cr_expect_eq(st.requests, 1);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, too_many_requests_honours_retry_after, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(2, 10, 5000);
    int64_t t0 = im_monotonic_ms();
    int rc = faulty_head(c, 1, 429, "Retry-After: 1\r\n", &h, &st, &e);
    int64_t ms = im_monotonic_ms() - t0;
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_eq(st.retries, 1);
    cr_expect_geq(ms, 1000, "Retry-After: 1 was not waited for (%lld ms)", (long long)ms);
    cr_expect_eq(st.retry_after, 0, "only set on failure");
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, retry_after_as_http_date, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    char date[128];
    time_t t = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    mock_start(M_OK);
    struct reg_client *c = retry_client(2, 10, 5000);
    int64_t t0 = im_monotonic_ms();
    int rc = faulty_head(c, 1, 429, date, &h, &st, &e);
    int64_t ms = im_monotonic_ms() - t0;
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_geq(ms, 1000, "an HTTP date 3 s ahead waited only %lld ms", (long long)ms);
    cr_expect_lt(ms, 4500);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, long_retry_after_fails_at_once_and_is_exposed, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(2, 10, 5000);
    int64_t t0 = im_monotonic_ms();
    int rc = faulty_head(c, -1, 429, "Retry-After: 120\r\n", &h, &st, &e);
    int64_t ms = im_monotonic_ms() - t0;
    cr_expect_eq(rc, IM_ERATELIMIT, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "retry after 120 s") != NULL, "%s", e.msg);
    cr_expect_eq(st.retry_after, 120);
    cr_expect_eq(st.retries, 0, "a 2-minute wait is the caller's decision");
    cr_expect_lt(ms, 1000);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, persistent_429_without_retry_after, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = retry_client(2, 10, 100);
    int rc = faulty_head(c, -1, 429, "", &h, &st, &e);
    cr_expect_eq(rc, IM_ERATELIMIT, "%d %s", rc, e.msg);
    cr_expect_eq(st.requests, 3);
    cr_expect_eq(st.retry_after, 0);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, not_found_and_unauthorized_are_answers, .init = init_curl)
{
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_MISSING);
    struct reg_client *c = retry_client(3, 10, 100);
    struct im_ref ref;
    mock_ref("v1", &ref);
    cr_expect_eq(reg_head_manifest(c, &ref, &h, &st, &e), IM_ENOTFOUND, "%s", e.msg);
    cr_expect_eq(st.retries, 0);
    cr_expect_eq(st.manifest_heads, 2, "the 401, then the 404 with the token");
    reg_client_free(c);
    mock_stop();
    mock_start(M_DENY);
    c = retry_client(3, 10, 100);
    memset(&st, 0, sizeof st);
    mock_ref("v1", &ref);
    cr_expect_eq(reg_head_manifest(c, &ref, &h, &st, &e), IM_EUNAUTH, "%s", e.msg);
    cr_expect_eq(st.retries, 0);
    reg_client_free(c);
    mock_stop();
}

Test(retry_mock, connection_refused_is_retried, .init = init_curl)
{
    struct reg_config cfg;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    struct im_ref ref;
    struct im_bundle b;
    int port;
    int fd = listen_loopback(&port);
    close(fd);
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    cfg.retry_base_ms = 10;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    cr_assert_eq(reg_ref_parse("python:3", &ref, &e), 0);
    im_bundle_init(&b);
    cr_expect_eq(reg_resolve(c, &ref, &b, &st, &e), IM_EUPSTREAM, "%s", e.msg);
    cr_expect_eq(st.requests, 3, "1 + 2 retries: %u", st.requests);
    cr_expect_eq(st.retries, 2);
    reg_client_free(c);
}

static bool metrics_have(const char *needle)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    im_metrics_write(f);
    fclose(f);
    bool found = strstr(buf, needle) != NULL;
    if (!found)
        fprintf(stderr, "metrics lack '%s':\n%s\n", needle, buf);
    free(buf);
    return found;
}

Test(retry_mock, ratelimit_headers_and_upstream_metrics, .init = init_curl)
{
    struct reg_head h;
    struct im_error e = {{0}};
    struct im_ref ref;
    char label[128];
    mock_start(M_OK);
    im_metrics_reset();
    snprintf(M.extra_headers, sizeof M.extra_headers,
             "RateLimit-Limit: 100;w=21600\r\nratelimit-remaining: 76;w=21600\r\n");
    struct reg_client *c = retry_client(2, 10, 100);
    mock_ref("v1", &ref);
    cr_assert_eq(reg_head_manifest(c, &ref, &h, NULL, &e), 0, "%s", e.msg);
    snprintf(label, sizeof label, "{registry=\"127.0.0.1:%d\"} ", M.reg.port);
    char want[256];
    snprintf(want, sizeof want, "imgmeta_upstream_ratelimit_limit%s100", label);
    cr_expect(metrics_have(want));
    snprintf(want, sizeof want, "imgmeta_upstream_ratelimit_remaining%s76", label);
    cr_expect(metrics_have(want));
    /* empty values (";w=21600") are unknown, not zero */
    snprintf(M.extra_headers, sizeof M.extra_headers,
             "ratelimit-limit: ;w=21600\r\nratelimit-remaining: ;w=21600\r\n");
    cr_assert_eq(reg_head_manifest(c, &ref, &h, NULL, &e), 0, "%s", e.msg);
    snprintf(want, sizeof want, "imgmeta_upstream_ratelimit_remaining%s-1", label);
    cr_expect(metrics_have(want));
    /* every upstream request is timed: the 401, the token GET and 2 HEADs */
    snprintf(want, sizeof want,
             "imgmeta_upstream_request_duration_seconds_count{registry=\"127.0.0.1:%d\","
             "status=\"200\"} 3",
             M.reg.port);
    cr_expect(metrics_have(want));
    snprintf(want, sizeof want,
             "imgmeta_upstream_request_duration_seconds_count{registry=\"127.0.0.1:%d\","
             "status=\"401\"} 1",
             M.reg.port);
    cr_expect(metrics_have(want));
    reg_client_free(c);
    mock_stop();
}
