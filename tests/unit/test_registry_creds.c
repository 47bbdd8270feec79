/* test_registry_creds.c - credentials: base64 and keys, docker config.json,
 * and Basic and bearer logins against the mock registry. */
#include "registry_test.h"

/* -------------------------------------------------------- credentials --- */

Test(creds, base64_and_keys)
{
    char out[64];
    cr_expect_eq(reg__base64_decode("dXNlcjpwYTpzcw==", out, sizeof out), 10);
    cr_expect_str_eq(out, "user:pa:ss");
    cr_expect_eq(reg__base64_decode("dXNlcjpwYTpzcw", out, sizeof out), 10, "no padding");
    cr_expect_eq(reg__base64_decode("", out, sizeof out), 0);
    cr_expect_eq(reg__base64_decode("dXNl cjpw", out, sizeof out), -1);
    cr_expect_eq(reg__base64_decode("dXNlc", out, sizeof out), -1, "impossible length");
    cr_expect_eq(reg__base64_decode("dXNlcjpwYTpzcw===", out, sizeof out), -1);
    cr_expect_eq(reg__base64_decode("dXNlcjpwYTpzcw==", out, 5), -1, "too long for out");
    static const char *const keys[][2] = {
        {"https://index.docker.io/v1/", "docker.io"},
        {"index.docker.io", "docker.io"},
        {"registry-1.docker.io", "docker.io"},
        {"docker.io", "docker.io"},
        {"http://Localhost:5000/v2/", "localhost:5000"},
        {"ghcr.io", "ghcr.io"},
        {"https://quay.io", "quay.io"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cr_assert_eq(reg__cred_key(keys[i][0], out, sizeof out), 0, "%s", keys[i][0]);
        cr_expect_str_eq(out, keys[i][1], "key %s", keys[i][0]);
    }
    cr_expect_eq(reg__cred_key("https:///x", out, sizeof out), -1);
}

Test(creds, docker_config_json)
{
    static const char json[] =
        "{\"auths\":{"
        "\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
        "\"ghcr.io\":{\"username\":\"octo\",\"password\":\"ghp_x\"},"
        "\"quay.io\":{\"identitytoken\":\"abc\"},"
        "\"localhost:5000\":{}"
        "},\"credsStore\":\"desktop\"}";
    struct reg__creds c = {0};
    struct im_error e = {{0}};
    cr_assert_eq(reg__parse_docker_config(json, strlen(json), &c, &e), 0, "%s", e.msg);
    cr_assert_eq(c.n, 2, "entries without a secret are skipped");
    const struct reg__cred *k = reg__creds_find(&c, "docker.io");
    cr_assert_not_null(k);
    cr_expect_str_eq(k->username, "user");
    cr_expect_str_eq(k->password, "pa:ss", "the password may contain ':'");
    k = reg__creds_find(&c, "GHCR.io");
    cr_assert_not_null(k);
    cr_expect_str_eq(k->username, "octo");
    cr_expect_str_eq(k->password, "ghp_x");
    cr_expect_null(reg__creds_find(&c, "quay.io"));
    reg__creds_free(&c);
    cr_expect_eq(c.n, 0);
}

Test(creds, malformed_config_never_quotes_a_secret)
{
    static const char *const bad[] = {
        "{\"auths\":{\"ghcr.io\":{\"auth\":\"c2VjcmV0LW5vLWNvbG9u\"}}}", /* no ':' */
        "{\"auths\":{\"ghcr.io\":{\"auth\":\"!!secret!!\"}}}",
        "{\"auths\":{\"ghcr.io\":{\"auth\":\"secret-oops\" xx}}}",
        "{\"auths\":[\"secret\"]}",
        "[\"secret\"]",
        "{\"auths\":{\"ghcr.io\":\"secret\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct reg__creds c = {0};
        struct im_error e = {{0}};
        cr_expect_eq(reg__parse_docker_config(bad[i], strlen(bad[i]), &c, &e), IM_EINVAL,
                     "case %zu", i);
        cr_expect(e.msg[0] != '\0', "case %zu has a message", i);
        cr_expect(strstr(e.msg, "secret") == NULL && strstr(e.msg, "c2Vj") == NULL,
                  "case %zu leaks: %s", i, e.msg);
        reg__creds_free(&c);
    }
}

Test(creds, client_reads_config_file_and_options_win)
{
    char path[] = "/tmp/imgmeta-dockercfg-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static const char json[] =
        "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
        "\"ghcr.io\":{\"auth\":\"cm9ib3Q6czNjcmV0\"}}}";
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    cfg.docker_config_path = path;
    im_strlcpy(cfg.credentials[0].registry, "ghcr.io",
               sizeof cfg.credentials[0].registry);
    im_strlcpy(cfg.credentials[0].username, "opt", sizeof cfg.credentials[0].username);
    im_strlcpy(cfg.credentials[0].password, "optpw", sizeof cfg.credentials[0].password);
    cfg.n_credentials = 1;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_expect_str_eq(reg__creds_find(&c->creds, "ghcr.io")->username, "opt");
    cr_expect_str_eq(reg__creds_find(&c->creds, "docker.io")->username, "user");
    cr_expect_eq(c->cfg.n_credentials, 0, "one copy of the secrets, in creds");
    reg_client_free(c);
    unlink(path);
    cfg.n_credentials = 0;
    c = reg_client_new(&cfg, &e);
    cr_expect_null(c, "a missing config file is an error");
    cr_expect(strstr(e.msg, path) != NULL, "%s", e.msg);
}

Test(basic_mock, registry_basic_auth_from_credentials, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_BASIC);
    struct reg_config cfg;
    mock_config(&cfg);
    /* without credentials: a clear refusal */
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    im_bundle_init(&b);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), IM_EUNAUTH, "%s", e.msg);
    cr_expect(strstr(e.msg, "no credentials are configured for 127.0.0.1:") != NULL, "%s",
              e.msg);
    reg_client_free(c);
    /* wrong password */
    snprintf(cfg.credentials[0].registry, sizeof cfg.credentials[0].registry,
             "127.0.0.1:%d", M.reg.port);
    im_strlcpy(cfg.credentials[0].username, "robot", sizeof cfg.credentials[0].username);
    im_strlcpy(cfg.credentials[0].password, "wrong", sizeof cfg.credentials[0].password);
    cfg.n_credentials = 1;
    c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), IM_EUNAUTH, "%s", e.msg);
    cr_expect(strstr(e.msg, "credentials for 127.0.0.1:") != NULL, "%s", e.msg);
    cr_expect(strstr(e.msg, "wrong") == NULL, "the password is never quoted: %s", e.msg);
    reg_client_free(c);
    /* right password */
    im_strlcpy(cfg.credentials[0].password, "s3cret", sizeof cfg.credentials[0].password);
    c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_eq(b.ndocs, 4);
    cr_expect_eq(st.token_gets, 0);
    cr_expect_eq(st.manifest_gets, 4, "one 401, then 3 manifests");
    pthread_mutex_lock(&M.cdn.mu);
    for (int i = 0; i < M.cdn.nreq; i++)
        cr_expect(strstr(M.cdn.log[i], "auth=no") != NULL, "leaked: %s", M.cdn.log[i]);
    pthread_mutex_unlock(&M.cdn.mu);
    /* the next resolution sends Basic at once: no 401 */
    im_bundle_free(&b);
    memset(&st, 0, sizeof st);
    rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.manifest_gets, 3);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(basic_mock, bearer_login_carries_credentials, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_LOGIN);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, NULL, &e);
    cr_expect_eq(rc, IM_EUNAUTH, "anonymous token refused: %d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "HTTP 401") != NULL, "%s", e.msg);
    cr_expect_str_eq(M.token_auth, "");
    reg_client_free(c);

    char path[] = "/tmp/imgmeta-dockercfg-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char json[256];
    snprintf(json, sizeof json,
             "{\"auths\":{\"http://127.0.0.1:%d/v2/\":{\"auth\":\"cm9ib3Q6czNjcmV0\"}}}",
             M.reg.port);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    struct reg_config cfg;
    mock_config(&cfg);
    cfg.docker_config_path = path;
    c = reg_client_new(&cfg, &e);
    unlink(path);
    cr_assert_not_null(c, "%s", e.msg);
    rc = mock_resolve(c, "v1", &b, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(M.token_auth, BASIC_ROBOT);
    cr_expect_eq(mini_count(&M.reg, "GET /token"), 2);
    pthread_mutex_lock(&M.cdn.mu);
    for (int i = 0; i < M.cdn.nreq; i++)
        cr_expect(strstr(M.cdn.log[i], "auth=no") != NULL, "leaked: %s", M.cdn.log[i]);
    pthread_mutex_unlock(&M.cdn.mu);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(client, invalid_config_is_refused)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    cfg.max_parallel = 0;
    cr_expect_null(reg_client_new(&cfg, &e));
    cr_expect(strstr(e.msg, "invalid registry client configuration") != NULL, "%s",
              e.msg);
    reg_client_free(NULL);
}

Test(resolve_mock, unreachable_registry_is_upstream, .init = init_curl)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    struct im_ref ref;
    struct im_bundle b;
    int port;
    int fd = listen_loopback(&port);
    close(fd); /* nothing listens there now */
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    cr_assert_eq(reg_ref_parse("python:3", &ref, &e), 0);
    im_bundle_init(&b);
    cr_expect_eq(reg_resolve(c, &ref, &b, NULL, &e), IM_EUPSTREAM, "%s", e.msg);
    cr_expect(strstr(e.msg, "manifest docker.io/library/python:3") != NULL, "%s", e.msg);
    reg_client_free(c);
}
