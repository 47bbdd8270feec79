/* test_registry_helper.c - Docker credential helpers: names, answers, the run
 * itself (stdin, environment, timeout, caps, failures) with fake helpers on
 * PATH, the cache, and logins with a helper's answer against the mock
 * registry (Basic to the token realm, and an identity token's POST). */
#include "registry_test.h"

/* A directory of fake helpers, first on PATH; each helper is a shell script
 * that may record what it was given in the directory. */
static char dir[64];

static void helpers_dir(void)
{
    char path[4200];
    snprintf(dir, sizeof dir, "/tmp/imgmeta-helpers-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", dir);
    setenv("PATH", path, 1);
}

static void helpers_rm(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        cr_log_warn("cannot remove %s", dir);
}

/* Writes docker-credential-<name>: `#!/bin/sh`, then body with every "@D"
 * replaced by the directory. */
static void helper(const char *name, const char *body)
{
    char path[256], text[4096];
    size_t o = 0;
    for (const char *p = body; *p && o + 80 < sizeof text; p++) {
        if (p[0] == '@' && p[1] == 'D') {
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", dir);
            p++;
        } else {
            text[o++] = *p;
        }
    }
    text[o] = '\0';
    snprintf(path, sizeof path, "%s/docker-credential-%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", text);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

/* The contents of dir/name (at most n - 1 bytes), "" when missing. */
static const char *slurp(const char *name, char *out, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t l = fread(out, 1, n - 1, f);
        out[l] = '\0';
        fclose(f);
    }
    return out;
}

static int lines(const char *name)
{
    char buf[4096];
    int n = 0;
    for (const char *p = slurp(name, buf, sizeof buf); *p; p++)
        n += *p == '\n';
    return n;
}

#define GOOD_BODY                                                                        \
    "url=$(cat); echo \"$url\" >>@D/calls; env >@D/env\n"                                \
    "printf '{\"ServerURL\":\"%s\",\"Username\":\"robot\",\"Secret\":\"s3cret\"}' "      \
    "\"$url\""

Test(helper, names_and_server_urls)
{
    static const char *const good[] = {"desktop", "ecr-login", "osxkeychain",
                                       "pass",    "gcloud",    "a.b_c-9"};
    static const char *const bad[] = {"",
                                      "../bin/sh",
                                      "a/b",
                                      "-x",
                                      ".hidden",
                                      "a b",
                                      "a;rm",
                                      "$(id)",
                                      "x\n",
                                      ("0123456789012345678901234567890123456789012345678"
                                       "90123456789012345")};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect(reg__helper_name_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!reg__helper_name_valid(bad[i]), "%s", bad[i]);
    char url[128];
    cr_assert_eq(reg__helper_server_url("docker.io", url, sizeof url), 0);
    cr_expect_str_eq(url, "https://index.docker.io/v1/", "Docker Hub as Docker asks");
    cr_assert_eq(reg__helper_server_url("ghcr.io", url, sizeof url), 0);
    cr_expect_str_eq(url, "ghcr.io");
}

Test(helper, answers_parsed_and_never_quoted)
{
    struct reg__cred k;
    struct im_error e = {{0}};
    static const char ok[] = "{\"ServerURL\":\"ghcr.io\",\"Username\":\"octo\","
                             "\"Secret\":\"ghp_secret\"}";
    memset(&k, 0, sizeof k);
    cr_assert_eq(reg__helper_parse("pass", ok, strlen(ok), &k, &e), 0, "%s", e.msg);
    cr_expect_str_eq(k.username, "octo");
    cr_expect_str_eq(k.password, "ghp_secret");
    cr_expect(!k.identity);
    reg__cred_wipe(&k);
    static const char tok[] = "{\"Username\":\"<token>\",\"Secret\":\"refresh-secret\"}";
    cr_assert_eq(reg__helper_parse("pass", tok, strlen(tok), &k, &e), 0, "%s", e.msg);
    cr_expect(k.identity, "a <token> username is an identity token");
    reg__cred_wipe(&k);
    static const char *const bad[] = {
        "secret-not-json",
        "[\"secret\"]",
        "{\"Username\":\"u\"}",
        "{\"Username\":\"u\",\"Secret\":\"\"}",
        "{\"Username\":1,\"Secret\":\"secret\"}",
        "{\"Username\":\"u\",\"Secret\":\"sec\\u0000ret\"}",
        "{\"Username\":\"u\",\"Secret\":\"secret\",\"Secret\":\"secret2\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        cr_expect_eq(reg__helper_parse("pass", bad[i], strlen(bad[i]), &k, &e),
                     IM_EUPSTREAM, "case %zu", i);
        cr_expect(strstr(e.msg, "docker-credential-pass") != NULL, "%s", e.msg);
        cr_expect(strstr(e.msg, "secret") == NULL, "case %zu leaks: %s", i, e.msg);
        cr_expect_null(k.username);
    }
}

Test(helper, run_gives_the_url_on_stdin_and_a_clean_environment, .init = helpers_dir,
     .fini = helpers_rm)
{
    struct reg__cred k;
    struct im_error e = {{0}};
    char buf[4096];
    helper("good", GOOD_BODY);
    setenv("IMGMETA_ADMIN_TOKEN", "do-not-pass-me", 1);
    cr_assert_eq(reg__helper_run("good", "https://index.docker.io/v1/", 5000, &k, &e), 0,
                 "%s", e.msg);
    cr_expect_str_eq(k.username, "robot");
    cr_expect_str_eq(k.password, "s3cret");
    reg__cred_wipe(&k);
    cr_expect_str_eq(slurp("calls", buf, sizeof buf), "https://index.docker.io/v1/\n");
    slurp("env", buf, sizeof buf);
    cr_expect(strstr(buf, "do-not-pass-me") == NULL, "the daemon's environment leaked");
    cr_expect(strstr(buf, "PATH=") != NULL && strstr(buf, "HOME=") != NULL, "%s", buf);
}

Test(helper, failures_are_clear_and_bounded, .init = helpers_dir, .fini = helpers_rm)
{
    struct reg__cred k;
    struct im_error e = {{0}};
    helper("fail", "echo 'keychain locked' >&2; exit 3");
    cr_expect_eq(reg__helper_run("fail", "ghcr.io", 5000, &k, &e), IM_EUPSTREAM);
    cr_expect(strstr(e.msg, "docker-credential-fail failed (exit status 3): keychain "
                            "locked") != NULL,
              "%s", e.msg);
    helper("none", "echo 'credentials not found in native keychain'; exit 1");
    cr_expect_eq(reg__helper_run("none", "ghcr.io", 5000, &k, &e), IM_ENOTFOUND);
    /* sleeps, and so does a child of its own that keeps stdout open */
    helper("slow", "sleep 30 & sleep 30");
    memset(&e, 0, sizeof e);
    cr_expect_eq(reg__helper_run("slow", "ghcr.io", 300, &k, &e), IM_ETIMEOUT);
    cr_expect(strstr(e.msg, "docker-credential-slow did not answer within 300 ms") !=
                  NULL,
              "%s", e.msg);
    helper("chatty", "exec yes");
    cr_expect_eq(reg__helper_run("chatty", "ghcr.io", 5000, &k, &e), IM_EUPSTREAM);
    cr_expect(strstr(e.msg, "docker-credential-chatty printed more than 65536 bytes") !=
                  NULL,
              "%s", e.msg);
    cr_expect_eq(reg__helper_run("absent", "ghcr.io", 5000, &k, &e), IM_EUPSTREAM);
    cr_expect(strstr(e.msg,
                     "docker-credential-absent cannot be run: not found on PATH") != NULL,
              "%s", e.msg);
    cr_expect_eq(reg__helper_run("../x", "ghcr.io", 5000, &k, &e), IM_EINVAL);
    helper("garbage", "echo 'Secret: hunter2'");
    cr_expect_eq(reg__helper_run("garbage", "ghcr.io", 5000, &k, &e), IM_EUPSTREAM);
    cr_expect(strstr(e.msg, "hunter2") == NULL, "%s", e.msg);
    cr_expect_null(k.username);
}

Test(helper, answers_are_kept_for_the_ttl_only, .init = helpers_dir, .fini = helpers_rm)
{
    struct reg__cred k;
    struct im_error e = {{0}};
    helper("good", GOOD_BODY);
    struct reg__helpers *h = reg__helpers_new(1, 5000);
    cr_assert_not_null(h);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(reg__helpers_get(h, "good", "ghcr.io", &k, &e), 0, "%s", e.msg);
        cr_expect_str_eq(k.password, "s3cret");
        reg__cred_wipe(&k);
    }
    cr_expect_eq(lines("calls"), 1, "asked once, then remembered");
    cr_assert_eq(reg__helpers_get(h, "good", "quay.io", &k, &e), 0, "%s", e.msg);
    reg__cred_wipe(&k);
    cr_expect_eq(lines("calls"), 2, "each registry asked for its own");
    struct timespec ts = {1, 100000000};
    nanosleep(&ts, NULL);
    cr_assert_eq(reg__helpers_get(h, "good", "ghcr.io", &k, &e), 0, "%s", e.msg);
    reg__cred_wipe(&k);
    cr_expect_eq(lines("calls"), 3, "asked again after the TTL");
    reg__helpers_free(h);

    h = reg__helpers_new(300, 5000);
    helper("flaky", "echo x >>@D/flaky; exit 1");
    for (int i = 0; i < 2; i++)
        cr_expect_eq(reg__helpers_get(h, "flaky", "ghcr.io", &k, &e), IM_EUPSTREAM);
    cr_expect_eq(lines("flaky"), 2, "a failure is not remembered");
    helper("none", "echo x >>@D/none; echo 'credentials not found'; exit 1");
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(reg__helpers_get(h, "none", "quay.io", &k, &e), 0);
        cr_expect_null(k.username, "no credentials: anonymous");
    }
    cr_expect_eq(lines("none"), 1, "'none' is an answer, remembered");
    reg__helpers_free(h);
}

Test(helper, config_names_helpers_and_rejects_unsafe_names)
{
    static const char json[] = "{\"auths\":{\"ghcr.io\":{\"auth\":\"dXNlcjpwYTpzcw==\"}},"
                               "\"credHelpers\":{\"https://index.docker.io/v1/\":\"hub\","
                               "\"quay.io\":\"quay-login\"},"
                               "\"credsStore\":\"desktop\"}";
    struct reg__creds c = {0};
    struct im_error e = {{0}};
    cr_assert_eq(reg__parse_docker_config(json, strlen(json), &c, &e), 0, "%s", e.msg);
    cr_expect_str_eq(reg__creds_helper(&c, "docker.io"), "hub");
    cr_expect_str_eq(reg__creds_helper(&c, "quay.io"), "quay-login");
    cr_expect_str_eq(reg__creds_helper(&c, "ghcr.io"), "desktop", "credsStore: the rest");
    reg__creds_free(&c);
    static const char *const bad[] = {
        "{\"credsStore\":\"../../bin/sh\"}",
        "{\"credsStore\":\"a b\"}",
        "{\"credsStore\":7}",
        "{\"credHelpers\":{\"ghcr.io\":\"x;id\"}}",
        "{\"credHelpers\":{\"ghcr.io\":\"/usr/bin/id\"}}",
        "{\"credHelpers\":[\"x\"]}",
        "{\"credHelpers\":{\"https:///\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        cr_expect_eq(reg__parse_docker_config(bad[i], strlen(bad[i]), &c, &e), IM_EINVAL,
                     "case %zu", i);
        cr_expect(e.msg[0] != '\0');
        reg__creds_free(&c);
    }
}

/* A client of the mock registry whose config.json is json. */
static struct reg_client *helper_client(const char *json, struct im_error *e)
{
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    struct reg_config cfg;
    mock_config(&cfg);
    cfg.docker_config_path = path;
    cfg.helper_timeout_ms = 500;
    return reg_client_new(&cfg, e);
}

static void helper_mock_start(void)
{
    helpers_dir();
    init_curl();
}

Test(helper_mock, token_login_with_a_helpers_answer, .init = helper_mock_start,
     .fini = helpers_rm)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    char buf[256];
    mock_start(M_LOGIN);
    helper("good", GOOD_BODY);
    char json[128];
    snprintf(json, sizeof json, "{\"credHelpers\":{\"127.0.0.1:%d\":\"good\"}}",
             M.reg.port);
    struct reg_client *c = helper_client(json, &e);
    cr_assert_not_null(c, "%s", e.msg);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(M.token_auth, BASIC_ROBOT, "the helper's user and secret log in");
    snprintf(buf, sizeof buf, "127.0.0.1:%d\n", M.reg.port);
    char calls[256];
    cr_expect_str_eq(slurp("calls", calls, sizeof calls), buf, "asked for this registry");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(helper_mock, identity_token_is_a_refresh_token_post, .init = helper_mock_start,
     .fini = helpers_rm)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_LOGIN);
    helper(
        "idtok",
        "cat >/dev/null; printf '{\"Username\":\"<token>\",\"Secret\":\"" IDENTITY_TOKEN
        "\"}'");
    struct reg_client *c = helper_client("{\"credsStore\":\"idtok\"}", &e);
    cr_assert_not_null(c, "%s", e.msg);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(M.token_method, "POST");
    cr_expect_str_eq(M.token_auth, "", "an identity token is never sent as Basic");
    cr_expect(strstr(M.token_body, "grant_type=refresh_token") != NULL, "%s",
              M.token_body);
    cr_expect(strstr(M.token_body, "service=mock%2Cregistry") != NULL, "%s",
              M.token_body);
    cr_expect(strstr(M.token_body, "scope=repository%3Ateam%2Fapp%3Apull") != NULL, "%s",
              M.token_body);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(helper_mock, failing_or_slow_helper_fails_the_resolution_naming_it,
     .init = helper_mock_start, .fini = helpers_rm)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_LOGIN);
    helper("broken", "echo 'no keyring' >&2; exit 1");
    struct reg_client *c = helper_client("{\"credsStore\":\"broken\"}", &e);
    cr_assert_not_null(c, "%s", e.msg);
    im_bundle_init(&b);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), IM_EUPSTREAM);
    cr_expect(
        strstr(e.msg, "docker-credential-broken failed (exit status 1): no keyring") !=
            NULL,
        "%s", e.msg);
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests"), 0,
                 "nothing sent without the credentials");
    reg_client_free(c);
    helper("stuck", "sleep 30");
    c = helper_client("{\"credsStore\":\"stuck\"}", &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), IM_ETIMEOUT);
    cr_expect(strstr(e.msg, "docker-credential-stuck did not answer within 500 ms") !=
                  NULL,
              "%s", e.msg);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}
