/* test_registry_head.c - revalidation by manifest HEAD and the paginated tag
 * list against the mock registry. */
#include "registry_test.h"

/* ------------------------------------------- HEAD and tags/list --------- */

Test(head_mock, revalidation_is_one_head_with_the_get_accept_list, .init = init_curl)
{
    struct im_ref ref;
    struct reg_head h;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    mock_ref("v1", &ref);
    int rc = reg_head_manifest(c, &ref, &h, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(h.digest, M.dindex);
    cr_expect_str_eq(h.media_type, IM_MT_OCI_INDEX);
    cr_expect_eq(h.size, (int64_t)strlen(M.index));
    cr_expect_eq(st.manifest_heads, 2, "the 401 and the retry with the token");
    cr_expect_eq(st.manifest_gets, 0, "a HEAD never costs a GET");
    cr_expect_eq(st.token_gets, 1);
    cr_expect_eq(M.bad_accept, 0, "the HEAD sends the four Accept lines of the GET");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/"), 0);
    /* warm: the token is cached, so revalidation is exactly one request */
    struct reg_stats st2 = {0};
    rc = reg_head_manifest(c, &ref, &h, &st2, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st2.requests, 1);
    cr_expect_eq(st2.manifest_heads, 1);
    /* by digest: the same answer */
    mock_ref(M.dindex, &ref);
    rc = reg_head_manifest(c, &ref, &h, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(h.digest, M.dindex);
    reg_client_free(c);
    mock_stop();
}

static void expect_head_failure(enum mode mode, const char *what, int code,
                                const char *msg)
{
    struct im_ref ref;
    struct reg_head h;
    struct im_error e = {{0}};
    mock_start(mode);
    struct reg_client *c = mock_client(5000, 0);
    mock_ref(what, &ref);
    int rc = reg_head_manifest(c, &ref, &h, NULL, &e);
    cr_expect_eq(rc, code, "mode %d: got %d (%s), wanted %d", mode, rc, e.msg, code);
    cr_expect(strstr(e.msg, msg) != NULL, "message '%s' lacks '%s'", e.msg, msg);
    reg_client_free(c);
    mock_stop();
}

Test(head_mock, missing_tag_is_not_found, .init = init_curl)
{
    expect_head_failure(M_MISSING, "v1", IM_ENOTFOUND, "team/app:v1 not found");
}

Test(head_mock, no_docker_content_digest_is_a_protocol_error, .init = init_curl)
{
    expect_head_failure(M_NO_DCD, "v1", IM_EPROTO,
                        "without a valid Docker-Content-Digest");
}

Test(head_mock, pinned_digest_answered_with_another, .init = init_curl)
{
    struct im_ref ref;
    struct reg_head h;
    struct im_error e = {{0}};
    mock_start(M_BAD_ROOT);
    struct reg_client *c = mock_client(5000, 0);
    mock_ref(M.dindex, &ref);
    int rc = reg_head_manifest(c, &ref, &h, NULL, &e);
    cr_expect_eq(rc, IM_EDIGEST, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "registry says its digest is " D256) != NULL, "%s", e.msg);
    reg_client_free(c);
    mock_stop();
}

Test(tags_mock, pages_are_followed, .init = init_curl)
{
    struct im_ref ref;
    struct reg_tags t = {0};
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    mock_ref("ignored", &ref);
    int rc = reg_list_tags(c, &ref, 0, &t, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_assert_eq(t.n, 5);
    for (size_t i = 0; i < 5; i++) {
        char want[8];
        snprintf(want, sizeof want, "v%zu", i + 1);
        cr_expect_str_eq(t.v[i], want);
    }
    cr_expect_not(t.truncated);
    cr_expect_eq(st.tag_list_gets, 4, "3 pages + the retry after the 401");
    cr_expect_eq(st.token_gets, 1);
    reg_tags_free(&t);
    cr_expect_eq(t.n, 0);
    /* capped: stops early and says so */
    rc = reg_list_tags(c, &ref, 3, &t, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(t.n, 3);
    cr_expect(t.truncated);
    reg_tags_free(&t);
    rc = reg_list_tags(c, &ref, 4, &t, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(t.n, 4);
    cr_expect(t.truncated, "a next page exists");
    reg_tags_free(&t);
    reg_tags_free(NULL);
    reg_client_free(c);
    mock_stop();
}

Test(tags_mock, next_page_on_another_host_is_refused, .init = init_curl)
{
    struct im_ref ref;
    struct reg_tags t = {0};
    struct im_error e = {{0}};
    mock_start(M_FOREIGN_LINK);
    struct reg_client *c = mock_client(5000, 0);
    mock_ref("v1", &ref);
    int rc = reg_list_tags(c, &ref, 0, &t, NULL, &e);
    cr_expect_eq(rc, IM_EPOLICY, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "leaves the registry") != NULL, "%s", e.msg);
    cr_expect_eq(t.n, 0, "nothing is kept on failure");
    cr_expect_eq(mini_count(&M.cdn, "GET"), 0);
    reg_client_free(c);
    mock_stop();
}
