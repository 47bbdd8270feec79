/* test_registry.c - registry/: the reference grammar, the
 * WWW-Authenticate parser, the token and realm caches and the client's base
 * URLs (the route grammar is api/'s: test_api_route.c). The rest is in test_registry_*.c
 * (one executable, test_registry): reg_resolve end to end against (a) a small in-test
 * HTTP server playing registry, token server and CDN (registry_test.c), and (b) the real
 * Debian `docker-registry` started by the test on a loopback port (test_registry_real.c).
 */
#include "ref_cases.h"
#include "registry_test.h"

/* ---------------------------------------------------------------- refs --- */

Test(ref, docker_grammar_valid)
{
    static const struct ref_case cases[] = {
        {"python", "docker.io", "library/python", "latest", ""},
        {"python:3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"library/python:3.7", "docker.io", "library/python", "3.7", ""},
        {"docker.io/python", "docker.io", "library/python", "latest", ""},
        {"index.docker.io/library/python:3", "docker.io", "library/python", "3", ""},
        {"registry-1.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", ""},
        {"bitnami/redis", "docker.io", "bitnami/redis", "latest", ""},
        {"ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", ""},
        {"ghcr.io/org/team/app", "ghcr.io", "org/team/app", "latest", ""},
        {"localhost/app", "localhost", "app", "latest", ""},
        {"localhost:5000/team/app:1.0", "localhost:5000", "team/app", "1.0", ""},
        {"127.0.0.1:5000/a", "127.0.0.1:5000", "a", "latest", ""},
        {"Quay.IO/org/app", "quay.io", "org/app", "latest", ""},
        {"python@" D256, "docker.io", "library/python", "", D256},
        {"python:3.7@" D256, "docker.io", "library/python", "3.7", D256},
        {"foo/a_b__c.d-e---f", "docker.io", "foo/a_b__c.d-e---f", "latest", ""},
        {"a_b.c", "docker.io", "library/a_b.c", "latest", ""},
        {"python:_x", "docker.io", "library/python", "_x", ""},
        {"python:UPPER.case-ok_1", "docker.io", "library/python", "UPPER.case-ok_1", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_ref(reg_ref_parse, &cases[i]);
}

Test(ref, docker_grammar_invalid)
{
    char longtag[160], longname[300];
    memset(longtag, 'a', sizeof longtag);
    memcpy(longtag, "python:", 7);
    longtag[7 + 129] = '\0';
    memset(longname, 'a', sizeof longname);
    longname[256] = '\0';
    expect_bad(reg_ref_parse, "", "must not be empty");
    expect_bad(reg_ref_parse, "Python", "repository must be lowercase: 'Python'");
    expect_bad(reg_ref_parse, "python:.x", "tag must not start with '.' or '-'");
    expect_bad(reg_ref_parse, "python:-x", "tag must not start with '.' or '-'");
    expect_bad(reg_ref_parse, "python:", "tag must not be empty");
    expect_bad(reg_ref_parse, "python:a+b", "tag may contain only");
    expect_bad(reg_ref_parse, longtag, "the limit is 128");
    expect_bad(reg_ref_parse, longname, "the limit is 255");
    expect_bad(reg_ref_parse, "py thon", "may not contain ' '");
    expect_bad(reg_ref_parse, "-python", "start and end with a letter or digit");
    expect_bad(reg_ref_parse, "python-", "start and end with a letter or digit");
    expect_bad(reg_ref_parse, "a..b", "consecutive separators");
    expect_bad(reg_ref_parse, "a___b", "consecutive separators");
    expect_bad(reg_ref_parse, "a//b", "empty path component");
    expect_bad(reg_ref_parse, "ghcr.io/", "repository missing after registry host");
    expect_bad(reg_ref_parse, "localhost:abc/app", "invalid port");
    expect_bad(reg_ref_parse, "bad_host.io/app", "invalid registry host");
    expect_bad(reg_ref_parse, "python@sha256:abc", "must have 64 hex characters, not 3");
    expect_bad(reg_ref_parse, "python@md5:abc", "unsupported digest algorithm 'md5'");
    expect_bad(reg_ref_parse, "python@sha256", "digest must be 'algorithm:hex'");
    expect_bad(
        reg_ref_parse,
        "python@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "lowercase hexadecimal");
}

Test(ref, digest_valid)
{
    char d384[7 + 96 + 1], d512[7 + 128 + 1];
    memcpy(d384, "sha384:", 7);
    memset(d384 + 7, 'a', 96);
    d384[7 + 96] = '\0';
    memcpy(d512, "sha512:", 7);
    memset(d512 + 7, '0', 128);
    d512[7 + 128] = '\0';
    cr_expect(reg_digest_valid(D256));
    cr_expect(reg_digest_valid(d384));
    cr_expect(reg_digest_valid(d512));
    d512[10] = 'g';
    cr_expect_not(reg_digest_valid(d512));
    cr_expect_not(reg_digest_valid("sha256:abc"));
    cr_expect_not(reg_digest_valid("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    cr_expect_not(reg_digest_valid(""));
}

/* ------------------------------------------------------------- auth ----- */

Test(challenge, docker_hub)
{
    struct reg__challenge c;
    struct im_error e = {{0}};
    int rc = reg__parse_challenge(
        "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
        "scope=\"repository:library/python:pull\"",
        &c, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(c.scheme, "Bearer");
    cr_expect_str_eq(c.realm, "https://auth.docker.io/token");
    cr_expect_str_eq(c.service, "registry.docker.io");
    cr_expect_str_eq(c.scope, "repository:library/python:pull");
    cr_expect_str_eq(c.error, "");
}

Test(challenge, quoted_commas_spaces_and_escapes)
{
    struct reg__challenge c;
    struct im_error e = {{0}};
    int rc = reg__parse_challenge(
        "  bearer  realm = \"https://h/t?a=1,b=2\" , service=svc ,"
        "scope=\"repository:a/b:pull,push repository:c:pull\", error=\"invalid_token\","
        "error_description=\"say \\\"hi\\\", then go\"",
        &c, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(c.scheme, "bearer");
    cr_expect_str_eq(c.realm, "https://h/t?a=1,b=2");
    cr_expect_str_eq(c.service, "svc");
    cr_expect_str_eq(c.scope, "repository:a/b:pull,push repository:c:pull");
    cr_expect_str_eq(c.error, "invalid_token");
}

Test(challenge, basic_and_malformed)
{
    struct reg__challenge c;
    struct im_error e = {{0}};
    cr_assert_eq(reg__parse_challenge("Basic realm=\"Registry Realm\"", &c, &e), 0);
    cr_expect_str_eq(c.scheme, "Basic");
    cr_expect_str_eq(c.realm, "Registry Realm");
    cr_expect_eq(reg__parse_challenge("Bearer realm=\"unterminated", &c, &e), IM_EPROTO);
    cr_expect(strstr(e.msg, "unterminated") != NULL, "%s", e.msg);
    cr_expect_eq(reg__parse_challenge("Bearer realm", &c, &e), IM_EPROTO);
    cr_expect_eq(reg__parse_challenge("", &c, &e), IM_EPROTO);
    cr_expect_eq(reg__parse_challenge("Bearer a=\"x\" b=\"y\"", &c, &e), IM_EPROTO);
    char big[3000];
    snprintf(big, sizeof big, "Bearer realm=\"%02000d\"", 0);
    cr_expect_eq(reg__parse_challenge(big, &c, &e), IM_EPROTO);
    cr_expect(strstr(e.msg, "too long") != NULL, "%s", e.msg);
}

Test(token, response_forms)
{
    char *t = NULL;
    long ex = 0;
    struct im_error e = {{0}};
    const char *a =
        "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2020-01-01T00:00:00Z\"}";
    cr_assert_eq(reg__parse_token_response(a, strlen(a), &t, &ex, &e), 0, "%s", e.msg);
    cr_expect_str_eq(t, "abc");
    cr_expect_eq(ex, 300);
    free(t);
    const char *b = "{\"access_token\":\"xyz\"}";
    cr_assert_eq(reg__parse_token_response(b, strlen(b), &t, &ex, &e), 0, "%s", e.msg);
    cr_expect_str_eq(t, "xyz");
    cr_expect_eq(ex, 60, "expires_in defaults to 60 s");
    free(t);
    const char *c = "{\"expires_in\":30}";
    cr_expect_eq(reg__parse_token_response(c, strlen(c), &t, &ex, &e), IM_EPROTO);
    cr_expect_null(t);
    cr_expect_eq(reg__parse_token_response("nope", 4, &t, &ex, &e), IM_EPROTO);
}

Test(token, cache_expiry_and_drop)
{
    struct reg__tokens *tc = reg__tokens_new();
    char buf[64];
    cr_assert_not_null(tc);
    cr_assert_eq(reg__tokens_put(tc, "r", "s", "t1", im_now() + 100), 0);
    cr_assert_eq(reg__tokens_put(tc, "r", "old", "t0", im_now() - 1), 0);
    cr_expect_eq(reg__tokens_get(tc, "r", "s", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "t1");
    cr_expect_eq(reg__tokens_get(tc, "r", "old", buf, sizeof buf), -1, "expired");
    cr_expect_eq(reg__tokens_get(tc, "r2", "s", buf, sizeof buf), -1, "other registry");
    cr_assert_eq(reg__tokens_put(tc, "r", "s", "t2", im_now() + 100), 0);
    cr_expect_eq(reg__tokens_get(tc, "r", "s", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "t2", "replaced");
    reg__tokens_drop(tc, "r", "s");
    cr_expect_eq(reg__tokens_get(tc, "r", "s", buf, sizeof buf), -1, "dropped");
    for (int i = 0; i < 300; i++) { /* more than the cache holds: evicts, no leak */
        char scope[32];
        snprintf(scope, sizeof scope, "s%d", i);
        cr_assert_eq(reg__tokens_put(tc, "r", scope, "t", im_now() + i), 0);
    }
    cr_expect_eq(reg__tokens_get(tc, "r", "s299", buf, sizeof buf), 0);
    reg__tokens_free(tc);
}

Test(realms, remember_replace_forget_and_bound)
{
    struct reg__realms *t = reg__realms_new();
    struct reg__challenge ch;
    char reg[32], big[2000];
    cr_assert_not_null(t);
    cr_expect_eq(reg__realms_get(t, "r", &ch), -1);
    reg__realms_put(t, "r", "https://auth/token", "svc");
    cr_assert_eq(reg__realms_get(t, "r", &ch), 0);
    cr_expect_str_eq(ch.scheme, "Bearer");
    cr_expect_str_eq(ch.realm, "https://auth/token");
    cr_expect_str_eq(ch.service, "svc");
    cr_expect_str_eq(ch.scope, "");
    reg__realms_put(t, "r", "https://auth2/token", "");
    cr_assert_eq(reg__realms_get(t, "r", &ch), 0);
    cr_expect_str_eq(ch.realm, "https://auth2/token", "a new challenge replaces it");
    cr_expect_str_eq(ch.service, "");
    reg__realms_drop(t, "r");
    cr_expect_eq(reg__realms_get(t, "r", &ch), -1);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    reg__realms_put(t, "r", big, "svc");
    cr_expect_eq(reg__realms_get(t, "r", &ch), -1, "too long for a challenge: not kept");
    reg__realms_put(t, "r", "", "svc");
    cr_expect_eq(reg__realms_get(t, "r", &ch), -1, "no realm: not kept");
    /* bounded: 300 registries later, the recently used one is still there */
    reg__realms_put(t, "keep", "https://k/token", "k");
    for (int i = 0; i < 300; i++) {
        snprintf(reg, sizeof reg, "r%d", i);
        reg__realms_put(t, reg, "https://x/token", "x");
        cr_assert_eq(reg__realms_get(t, "keep", &ch), 0, "evicted at %d", i);
    }
    cr_expect_eq(reg__realms_get(t, "r0", &ch), -1, "the least recently used went");
    cr_expect_eq(reg__realms_get(t, "r299", &ch), 0);
    reg__realms_free(t);
    reg__realms_free(NULL);
}

Test(client, docker_hub_realm_is_known_unless_mirrored)
{
    struct reg_config cfg;
    struct reg__challenge ch;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_assert_eq(reg__realms_get(c->realms, "docker.io", &ch), 0);
    cr_expect_str_eq(ch.realm, "https://auth.docker.io/token");
    cr_expect_str_eq(ch.service, "registry.docker.io");
    cr_expect_eq(reg__realms_get(c->realms, "ghcr.io", &ch), -1);
    reg_client_free(c);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "Docker.io");
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:5000");
    cfg.n_mirrors = 1;
    c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_expect_eq(reg__realms_get(c->realms, "docker.io", &ch), -1,
                 "a mirror has its own realm: learnt from its 401");
    reg_client_free(c);
}

Test(client, base_urls_and_policy)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    char url[600];
    reg_config_defaults(&cfg);
    cr_assert_eq(reg__base_url(&cfg, "docker.io", url, sizeof url, &e), 0);
    cr_expect_str_eq(url, "https://registry-1.docker.io");
    cr_assert_eq(reg__base_url(&cfg, "ghcr.io", url, sizeof url, &e), 0);
    cr_expect_str_eq(url, "https://ghcr.io");
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    im_strlcpy(cfg.mirrors[0].base_url, "http://127.0.0.1:5000/",
               sizeof cfg.mirrors[0].base_url);
    cfg.n_mirrors = 1;
    cr_assert_eq(reg__base_url(&cfg, "docker.io", url, sizeof url, &e), 0);
    cr_expect_str_eq(url, "http://127.0.0.1:5000");
    im_strlcpy(cfg.mirrors[0].base_url, "file:///etc", sizeof cfg.mirrors[0].base_url);
    cr_expect_eq(reg__base_url(&cfg, "docker.io", url, sizeof url, &e), IM_EPOLICY);
    cr_expect_eq(reg__check_url("ftp://x/", &e), IM_EPOLICY);
    cr_expect_eq(reg__check_url("HTTPS://x/", &e), 0);
}
