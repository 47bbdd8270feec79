/* test_registry.c - registry/: the reference and route grammars, the
 * WWW-Authenticate parser, and reg_resolve end to end against (a) a small
 * in-test HTTP server playing registry, token server and CDN, and (b) the real
 * Debian `docker-registry` started by the test on a loopback port. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "registry.h"
#include "registry_int.h"
#include "sha256.h"

#define MT_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define BASIC_ROBOT "Basic cm9ib3Q6czNjcmV0" /* robot:s3cret */
#define D256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---------------------------------------------------------------- refs --- */

struct ref_case {
    const char *in;
    const char *registry, *repository, *tag, *digest;
};

static void expect_ref(int (*fn)(const char *, struct im_ref *, struct im_error *),
                       const struct ref_case *c)
{
    struct im_ref r;
    struct im_error e = {{0}};
    int rc = fn(c->in, &r, &e);
    cr_assert_eq(rc, 0, "'%s' should parse, got %d: %s", c->in, rc, e.msg);
    cr_expect_str_eq(r.registry, c->registry, "registry of '%s'", c->in);
    cr_expect_str_eq(r.repository, c->repository, "repository of '%s'", c->in);
    cr_expect_str_eq(r.tag, c->tag, "tag of '%s'", c->in);
    cr_expect_str_eq(r.digest, c->digest, "digest of '%s'", c->in);
}

static void expect_bad(int (*fn)(const char *, struct im_ref *, struct im_error *),
                       const char *in, const char *msg_part)
{
    struct im_ref r;
    struct im_error e = {{0}};
    int rc = fn(in, &r, &e);
    cr_assert_eq(rc, IM_EINVAL, "'%s' should be refused, got %d", in, rc);
    cr_expect(strstr(e.msg, msg_part) != NULL, "message for '%s' is '%s', wanted '%s'",
              in, e.msg, msg_part);
}

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

Test(route, forms)
{
    static const struct ref_case cases[] = {
        {"python/3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"python:3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"python@" D256, "docker.io", "library/python", "", D256},
        {"library/python/3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"bitnami/redis/7.2", "docker.io", "bitnami/redis", "7.2", ""},
        {"ghcr.io/org/app/v1", "ghcr.io", "org/app", "v1", ""},
        {"ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", ""},
        {"ghcr.io/org/app@" D256, "ghcr.io", "org/app", "", D256},
        {"localhost:5000/team/app/1.0", "localhost:5000", "team/app", "1.0", ""},
        {"docker.io/library/python/latest", "docker.io", "library/python", "latest", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_ref(reg_ref_from_route, &cases[i]);
}

Test(route, invalid)
{
    expect_bad(reg_ref_from_route, "python", "missing tag: use /images/python/TAG");
    expect_bad(reg_ref_from_route, "", "missing image");
    expect_bad(reg_ref_from_route, "python/", "missing tag after '/'");
    expect_bad(reg_ref_from_route, "Python/3", "repository must be lowercase: 'Python'");
    expect_bad(reg_ref_from_route, "python/.x", "tag must not start with '.' or '-'");
    expect_bad(reg_ref_from_route, "localhost:5000/app",
               "looks like a registry host: use /images/localhost:5000/REPOSITORY/TAG");
    expect_bad(reg_ref_from_route, "python@sha256:12", "must have 64 hex characters");
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

/* ------------------------------------------------- a tiny HTTP server --- */

struct req {
    char method[8];
    char path[2048];
    char auth[2048]; /* Authorization value, "" if absent */
    int naccept;     /* Accept header lines */
    char accept[1024];
};

struct resp {
    int status;
    char headers[2048]; /* extra header lines, each ending in \r\n */
    const char *body;
    size_t len;
    int delay_ms;
    bool no_length; /* body delimited by closing the connection */
};

struct mini;
typedef void (*handler_fn)(struct mini *m, const struct req *rq, struct resp *rs);

struct mini {
    int fd, port;
    pthread_t th;
    volatile int stop;
    handler_fn handler;
    void *ctx;
    pthread_mutex_t mu;
    int nreq;
    char log[256][160]; /* "METHOD path auth=yes|no" */
};

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void header_copy(const char *head, const char *name, char *dst, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(dst, n, "%.*s", (int)l, v);
            return;
        }
    }
}

static void serve_one(struct mini *m, int cfd)
{
    char head[16384];
    size_t o = 0;
    struct req rq;
    struct resp rs;
    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    while (o + 1 < sizeof head) {
        ssize_t r = recv(cfd, head + o, sizeof head - 1 - o, 0);
        if (r <= 0)
            return;
        o += (size_t)r;
        head[o] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    sscanf(head, "%7s %2047s", rq.method, rq.path);
    header_copy(head, "Authorization", rq.auth, sizeof rq.auth);
    for (const char *p = strstr(head, "\r\nAccept:"); p;
         p = strstr(p + 2, "\r\nAccept:")) {
        size_t l = strlen(rq.accept);
        size_t vl = strcspn(p + 10, "\r\n");
        snprintf(rq.accept + l, sizeof rq.accept - l, "%.*s|", (int)vl, p + 10);
        rq.naccept++;
    }
    pthread_mutex_lock(&m->mu);
    if (m->nreq < 256)
        snprintf(m->log[m->nreq], sizeof m->log[0], "%s %.100s auth=%s", rq.method,
                 rq.path, rq.auth[0] ? "yes" : "no");
    m->nreq++;
    pthread_mutex_unlock(&m->mu);
    rs.status = 404;
    m->handler(m, &rq, &rs);
    if (rs.delay_ms) {
        struct timespec ts = {rs.delay_ms / 1000, (long)(rs.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    char out[4096];
    char clen[64] = "";
    if (!rs.no_length)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", rs.len);
    int n = snprintf(out, sizeof out, "HTTP/1.1 %d X\r\n%s%sConnection: close\r\n\r\n",
                     rs.status, rs.headers, clen);
    send(cfd, out, (size_t)n, MSG_NOSIGNAL);
    if (strcmp(rq.method, "HEAD") != 0 && rs.len)
        send(cfd, rs.body, rs.len, MSG_NOSIGNAL);
}

static void *mini_main(void *arg)
{
    struct mini *m = arg;
    while (!m->stop) {
        struct pollfd p = {.fd = m->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int cfd = accept(m->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        serve_one(m, cfd);
        shutdown(cfd, SHUT_WR);
        close(cfd);
    }
    return NULL;
}

static void mini_start(struct mini *m, handler_fn h, void *ctx)
{
    memset(m, 0, sizeof *m);
    m->handler = h;
    m->ctx = ctx;
    pthread_mutex_init(&m->mu, NULL);
    m->fd = listen_loopback(&m->port);
    cr_assert_eq(pthread_create(&m->th, NULL, mini_main, m), 0);
}

static void mini_stop(struct mini *m)
{
    m->stop = 1;
    pthread_join(m->th, NULL);
    close(m->fd);
    pthread_mutex_destroy(&m->mu);
}

static int mini_count(struct mini *m, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->nreq && i < 256; i++)
        n += strncmp(m->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ------------------------------------------- a mock registry + CDN ------ */

enum mode {
    M_OK,
    M_BAD_CHILD,
    M_BAD_TYPE,
    M_BAD_ROOT,
    M_MISSING,
    M_429,
    M_DENY,
    M_SLOW,
    M_500,
    M_NOLEN,
    M_FILE_REDIRECT,
    M_NO_DCD,       /* manifests answered without Docker-Content-Digest */
    M_BASIC,        /* the registry wants Basic robot:s3cret, no tokens */
    M_LOGIN,        /* the token endpoint wants Basic robot:s3cret */
    M_FOREIGN,      /* the image has foreign layers (urls on the CDN, refused, none) */
    M_SCHEMA1,      /* v1 is a signed schema1 manifest */
    M_FOREIGN_LINK, /* tags/list pagination points at another host */
    M_REALM2        /* the realm moved: /token2 gives tok-2, the only one accepted */
};

struct mock {
    enum mode mode;
    struct mini reg, cdn;
    char config[256], manifest[8192], attest[8192], index[32768];
    char dconfig[72], dmanifest[72], dattest[72], dindex[72], dlayer1[72], dlayer2[72];
    char dforeign[3][72];
    char token_query[2048];
    char token_auth[2048]; /* Authorization of the last token request */
    int bad_accept;        /* manifest requests without the four Accept lines */
    char dindex512[IM_DIGEST_MAX];
    char schema1[8192], dschema1[72]; /* signed body; digest of its payload */
    /* faults: the next fail_n authorised manifest requests answer fail_status
     * with fail_headers (e.g. Retry-After); -1 = every one */
    int fail_n, fail_status;
    char fail_headers[256];
    char extra_headers[256]; /* added to every manifest answer */
    int ping_delay_ms;       /* before answering GET /v2/ (a start-up probe) */
    bool ping_redirect;      /* GET /v2/ answers 307 to a link-local address */
};

static struct mock M; /* one per test process (Criterion forks per test) */

static void put_body(struct resp *rs, int status, const char *ct, const char *body)
{
    rs->status = status;
    rs->body = body;
    rs->len = strlen(body);
    if (ct)
        snprintf(rs->headers + strlen(rs->headers),
                 sizeof rs->headers - strlen(rs->headers), "Content-Type: %s\r\n", ct);
}

static void cdn_handler(struct mini *m, const struct req *rq, struct resp *rs)
{
    struct mock *k = m->ctx;
    const char *d = strrchr(rq->path, '/') + 1;
    snprintf(rs->headers, sizeof rs->headers,
             "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    if (strncmp(rq->path, "/foreign/", 9) == 0 && strcmp(d, k->dforeign[0]) == 0) {
        rs->status = 200;
        rs->len = 1; /* the manifest's size wins */
        rs->body = "x";
        snprintf(rs->headers + strlen(rs->headers), 200,
                 "Content-Type: application/octet-stream\r\n");
        return;
    }
    if (strcmp(d, k->dconfig) == 0) {
        put_body(rs, 200, "application/octet-stream", k->config);
    } else if (strcmp(d, k->dlayer1) == 0 || strcmp(d, k->dlayer2) == 0) {
        rs->status = 200;
        rs->len = strcmp(d, k->dlayer1) == 0 ? 1234 : 5678;
        rs->body = NULL; /* HEAD only */
        snprintf(rs->headers + strlen(rs->headers), 200,
                 "Content-Type: application/octet-stream\r\n");
    }
}

/* tags/list in pages of two: v1 v2 | v3 v4 | v5, linked by Link headers
 * (relative, as docker-registry sends them). */
static void tags_page(struct mini *m, struct mock *k, const struct req *rq,
                      struct resp *rs)
{
    static const char *const pages[] = {
        "{\"name\":\"team/app\",\"tags\":[\"v1\",\"v2\"]}",
        "{\"name\":\"team/app\",\"tags\":[\"v3\",\"v4\"]}",
        "{\"name\":\"team/app\",\"tags\":[\"v5\"]}"};
    int page = strstr(rq->path, "last=v4") ? 2 : strstr(rq->path, "last=v2") ? 1 : 0;
    if (page < 2 && k->mode == M_FOREIGN_LINK)
        snprintf(rs->headers, sizeof rs->headers,
                 "Link: <http://127.0.0.1:%d/v2/team/app/tags/list?n=2&last=v%d>; "
                 "rel=\"next\"\r\n",
                 k->cdn.port, 2 * page + 2);
    else if (page < 2)
        snprintf(rs->headers, sizeof rs->headers,
                 "Link: </v2/team/app/tags/list?n=2&last=v%d>; rel=\"next\"\r\n",
                 2 * page + 2);
    (void)m;
    put_body(rs, 200, "application/json", pages[page]);
}

static void reg_handler(struct mini *m, const struct req *rq, struct resp *rs)
{
    struct mock *k = m->ctx;
    char want[160];
    if (strcmp(rq->path, "/v2/") == 0)
        rs->delay_ms = k->ping_delay_ms;
    if (strcmp(rq->path, "/v2/") == 0 && k->ping_redirect) {
        rs->status = 307;
        snprintf(rs->headers, sizeof rs->headers,
                 "Location: http://169.254.169.254/v2/\r\n");
        return;
    }
    if (strncmp(rq->path, "/token", 6) == 0) {
        snprintf(k->token_query, sizeof k->token_query, "%s", rq->path);
        snprintf(k->token_auth, sizeof k->token_auth, "%s", rq->auth);
        if (k->mode == M_LOGIN && strcmp(rq->auth, BASIC_ROBOT) != 0) {
            put_body(rs, 401, "application/json", "{\"details\":\"incorrect login\"}");
            return;
        }
        put_body(rs, 200, "application/json",
                 strncmp(rq->path, "/token2", 7) == 0
                     ? "{\"token\":\"tok-2\",\"expires_in\":300}"
                     : "{\"token\":\"tok-1\",\"expires_in\":300}");
        return;
    }
    if (strstr(rq->path, "/manifests/") &&
        (rq->naccept != 6 || !strstr(rq->accept, MT_OCI_INDEX "|") ||
         !strstr(rq->accept, MT_DOCKER_V1_SIGNED "|") ||
         !strstr(rq->accept, MT_DOCKER_V1 "|") ||
         !strstr(rq->accept, MT_OCI_MANIFEST "|") ||
         !strstr(rq->accept, MT_DOCKER_LIST "|") ||
         !strstr(rq->accept, MT_DOCKER_V2 "|")))
        k->bad_accept++;
    if (k->mode == M_BASIC && strcmp(rq->auth, BASIC_ROBOT) != 0) {
        snprintf(rs->headers, sizeof rs->headers,
                 "WWW-Authenticate: Basic realm=\"Registry Realm\"\r\n");
        put_body(rs, 401, "application/json",
                 "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        return;
    }
    if (k->mode != M_BASIC &&
        (strcmp(rq->auth, k->mode == M_REALM2 ? "Bearer tok-2" : "Bearer tok-1") != 0 ||
         k->mode == M_DENY)) {
        snprintf(rs->headers, sizeof rs->headers,
                 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token%s\","
                 "service=\"mock,registry\",scope=\"repository:team/app:pull\"%s\r\n",
                 m->port, k->mode == M_REALM2 ? "2" : "",
                 k->mode == M_DENY ? ",error=\"insufficient_scope\"" : "");
        put_body(rs, 401, "application/json",
                 "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        return;
    }
    if (k->mode == M_429) {
        put_body(rs, 429, "application/json", "{}");
        return;
    }
    if (strstr(rq->path, "/manifests/") && k->fail_n != 0) {
        pthread_mutex_lock(&m->mu);
        if (k->fail_n > 0)
            k->fail_n--;
        pthread_mutex_unlock(&m->mu);
        snprintf(rs->headers, sizeof rs->headers, "%s", k->fail_headers);
        put_body(rs, k->fail_status, "application/json", "{\"errors\":[]}");
        return;
    }
    if (k->mode == M_500) {
        put_body(rs, 503, "text/plain", "down");
        return;
    }
    if (strncmp(rq->path, "/v2/team/app/tags/list", 22) == 0) {
        tags_page(m, k, rq, rs);
        return;
    }
    if (k->mode == M_SCHEMA1 && strcmp(rq->path, "/v2/team/app/manifests/v1") == 0) {
        snprintf(rs->headers, sizeof rs->headers, "Docker-Content-Digest: %s\r\n",
                 k->dschema1);
        put_body(rs, 200, MT_DOCKER_V1_SIGNED, k->schema1);
        return;
    }
    char want512[200];
    snprintf(want, sizeof want, "/v2/team/app/manifests/%s", k->dindex);
    snprintf(want512, sizeof want512, "/v2/team/app/manifests/%s", k->dindex512);
    if ((strcmp(rq->path, "/v2/team/app/manifests/v1") == 0 ||
         strcmp(rq->path, want) == 0 || strcmp(rq->path, want512) == 0) &&
        k->mode != M_MISSING) {
        rs->delay_ms = k->mode == M_SLOW ? 1500 : 0;
        rs->no_length = k->mode == M_NOLEN;
        if (k->mode != M_NO_DCD)
            snprintf(rs->headers, sizeof rs->headers, "Docker-Content-Digest: %s\r\n%s",
                     k->mode == M_BAD_ROOT ? D256 : k->dindex, k->extra_headers);
        put_body(rs, 200, "application/vnd.oci.image.index.v1+json", k->index);
        return;
    }
    snprintf(want, sizeof want, "/v2/team/app/manifests/%s", k->dmanifest);
    if (strcmp(rq->path, want) == 0) {
        static char bad[8300];
        snprintf(bad, sizeof bad, "%s ", k->manifest);
        put_body(rs, 200,
                 k->mode == M_BAD_TYPE
                     ? "application/vnd.oci.image.manifest.v1+json"
                     : "application/vnd.docker.distribution.manifest.v2+json",
                 k->mode == M_BAD_CHILD ? bad : k->manifest);
        return;
    }
    snprintf(want, sizeof want, "/v2/team/app/manifests/%s", k->dattest);
    if (strcmp(rq->path, want) == 0) {
        put_body(rs, 200, "application/vnd.oci.image.manifest.v1+json", k->attest);
        return;
    }
    if (strncmp(rq->path, "/v2/team/app/blobs/", 19) == 0 && k->mode == M_FILE_REDIRECT) {
        rs->status = 307;
        snprintf(rs->headers, sizeof rs->headers, "Location: file:///etc/passwd\r\n");
        return;
    }
    if (strncmp(rq->path, "/v2/team/app/blobs/", 19) == 0) {
        rs->status = 307;
        snprintf(rs->headers, sizeof rs->headers,
                 "Location: http://127.0.0.1:%d/cdn/%s\r\n", k->cdn.port, rq->path + 19);
        return;
    }
}

static void digest_of(const char *s, char out[72])
{
    im_sha256_digest(s, strlen(s), out);
}

static void b64url(const char *in, char *out, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t l = strlen(in), o = 0;
    for (size_t i = 0; i < l && o + 5 < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < l)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < l)
            v |= (unsigned char)in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < l)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < l)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* A signed schema1 manifest the way libtrust lays it out: the pretty
 * payload without its closing "\n}", the signatures, then the tail. Layer
 * one repeats (an empty layer), as in real schema1 manifests. */
static void make_schema1(struct mock *k)
{
    char payload[4096], prot[256], prot64[400], tail64[16];
    snprintf(
        payload, sizeof payload,
        "{\n   \"schemaVersion\": 1,\n   \"name\": \"team/app\",\n   \"tag\": \"v1\",\n"
        "   \"architecture\": \"amd64\",\n   \"fsLayers\": [\n"
        "      {\"blobSum\": \"%.71s\"},\n      {\"blobSum\": \"%.71s\"},\n"
        "      {\"blobSum\": \"%.71s\"}\n   ],\n   \"history\": [\n"
        "      {\"v1Compatibility\": \"{\\\"id\\\":\\\"c\\\",\\\"parent\\\":\\\"b\\\","
        "\\\"architecture\\\":\\\"amd64\\\",\\\"os\\\":\\\"linux\\\","
        "\\\"created\\\":\\\"2016-01-01T00:00:02Z\\\"}\"},\n"
        "      {\"v1Compatibility\": \"{\\\"id\\\":\\\"b\\\",\\\"parent\\\":\\\"a\\\","
        "\\\"created\\\":\\\"2016-01-01T00:00:01Z\\\"}\"},\n"
        "      {\"v1Compatibility\": \"{\\\"id\\\":\\\"a\\\","
        "\\\"created\\\":\\\"2016-01-01T00:00:00Z\\\"}\"}\n   ]\n}",
        k->dlayer1, k->dlayer1, k->dlayer2);
    size_t flen = strlen(payload) - 2; /* without "\n}" */
    b64url("\n}", tail64, sizeof tail64);
    snprintf(
        prot, sizeof prot,
        "{\"formatLength\":%zu,\"formatTail\":\"%s\",\"time\":\"2016-01-01T00:00:03Z\"}",
        flen, tail64);
    b64url(prot, prot64, sizeof prot64);
    snprintf(
        k->schema1, sizeof k->schema1,
        "%.*s,\n   \"signatures\": [\n      {\n         \"header\": {\"alg\": "
        "\"ES256\"},\n"
        "         \"signature\": \"bm90IHZlcmlmaWVk\",\n         \"protected\": \"%s\"\n"
        "      }\n   ]\n}",
        (int)flen, payload, prot64);
    digest_of(payload, k->dschema1);
}

static void mock_start(enum mode mode)
{
    struct mock *k = &M;
    memset(k, 0, sizeof *k);
    k->mode = mode;
    mini_start(&k->cdn, cdn_handler, k);
    char foreign[2048] = "";
    for (int i = 0; i < 3; i++) {
        char what[32];
        snprintf(what, sizeof what, "foreign %d", i);
        digest_of(what, k->dforeign[i]);
    }
    if (mode == M_FOREIGN)
        snprintf(foreign, sizeof foreign,
                 ",{\"mediaType\":\"" MT_FOREIGN "\",\"size\":777,\"digest\":\"%.71s\","
                 "\"urls\":[\"http://127.0.0.1:%d/foreign/%.71s\",\"http://x/\"]},"
                 "{\"mediaType\":\"" MT_FOREIGN "\",\"size\":888,\"digest\":\"%.71s\","
                 "\"urls\":[\"http://192.0.2.1/refused-by-policy\"]},"
                 "{\"mediaType\":\"" MT_FOREIGN "\",\"size\":999,\"digest\":\"%.71s\","
                 "\"urls\":[\"ftp://example.com/x\"]}",
                 k->dforeign[0], k->cdn.port, k->dforeign[0], k->dforeign[1],
                 k->dforeign[2]);
    digest_of("layer one", k->dlayer1);
    digest_of("layer two", k->dlayer2);
    snprintf(
        k->config, sizeof k->config,
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]}}");
    digest_of(k->config, k->dconfig);
    snprintf(k->manifest, sizeof k->manifest,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
             "manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker."
             "container.image.v1+json\",\"size\":%zu,\"digest\":\"%.71s\"},\"layers\":["
             "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
             "\"size\":1234,\"digest\":\"%.71s\"},"
             "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
             "\"size\":5678,\"digest\":\"%.71s\"}%s]}",
             strlen(k->config), k->dconfig, k->dlayer1, k->dlayer2, foreign);
    digest_of(k->manifest, k->dmanifest);
    /* the attestation shares the config (unusual but legal) and layer one */
    snprintf(
        k->attest, sizeof k->attest,
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"size\":%zu,\"digest\":\"%.71s\"},\"layers\":[{\"mediaType\":"
        "\"application/vnd.in-toto+json\",\"size\":1234,\"digest\":\"%.71s\"}]}",
        strlen(k->config), k->dconfig, k->dlayer1);
    digest_of(k->attest, k->dattest);
    snprintf(
        k->index, sizeof k->index,
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest."
        "v2+json\",\"size\":%zu,\"digest\":\"%.71s\",\"platform\":{\"architecture\":"
        "\"amd64\",\"os\":\"linux\"}},{\"mediaType\":\"application/vnd.oci.image."
        "manifest.v1+json\",\"size\":%zu,\"digest\":\"%.71s\",\"annotations\":{"
        "\"vnd.docker.reference.type\":\"attestation-manifest\","
        "\"vnd.docker.reference.digest\":\"%.71s\"},\"platform\":{\"architecture\":"
        "\"unknown\",\"os\":\"unknown\"}}]}",
        strlen(k->manifest), k->dmanifest, strlen(k->attest), k->dattest, k->dmanifest);
    digest_of(k->index, k->dindex);
    make_schema1(k);
    cr_assert_eq(im_digest_compute("sha512", k->index, strlen(k->index), k->dindex512,
                                   sizeof k->dindex512),
                 0);
    mini_start(&k->reg, reg_handler, k);
}

static void mock_stop(void)
{
    mini_stop(&M.reg);
    mini_stop(&M.cdn);
}

static struct reg_client *mock_client_caps(long timeout_ms, size_t max_config,
                                           size_t max_manifest)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    cfg.n_mirrors = 1;
    cfg.request_timeout_ms = timeout_ms;
    if (max_config)
        cfg.max_config_bytes = max_config;
    if (max_manifest)
        cfg.max_manifest_bytes = max_manifest;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    return c;
}

static struct reg_client *mock_client(long timeout_ms, size_t max_config)
{
    return mock_client_caps(timeout_ms, max_config, 0);
}

static int mock_resolve(struct reg_client *c, const char *tag_or_digest,
                        struct im_bundle *b, struct reg_stats *st, struct im_error *e)
{
    char s[512];
    struct im_ref ref;
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app%s%s", M.reg.port,
             strncmp(tag_or_digest, "sha", 3) == 0 ? "@" : ":", tag_or_digest);
    cr_assert_eq(reg_ref_parse(s, &ref, e), 0, "%s", e->msg);
    return reg_resolve(c, &ref, b, st, e);
}

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

Test(resolve_mock, index_with_attestation_auth_and_cdn_redirects, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "resolve failed: %d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, 4, "index, image, attestation, one shared config: %zu",
                 b.ndocs);
    const struct im_doc *d = im_bundle_find_doc(&b, M.dindex);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.oci.image.index.v1+json");
    cr_expect_eq(d->len, strlen(M.index));
    d = im_bundle_find_doc(&b, M.dmanifest);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type,
                     "application/vnd.docker.distribution.manifest.v2+json");
    cr_assert_not_null(im_bundle_find_doc(&b, M.dattest), "attestation manifest fetched");
    d = im_bundle_find_doc(&b, M.dconfig);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.docker.container.image.v1+json");
    cr_expect_eq(b.nblobs, 2);
    const struct im_blob *l = im_bundle_find_blob(&b, M.dlayer1);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 1234);
    cr_expect_eq(l->last_modified, 1445412480, "Last-Modified from the CDN answer");
    cr_expect_str_eq(l->media_type, "application/octet-stream");
    cr_expect_eq(im_bundle_find_blob(&b, M.dlayer2)->size, 5678);
    /* one manifest GET each (no duplicates), one config GET, one HEAD per layer */
    cr_expect_eq(st.manifest_gets, 3 + 1, "3 manifests + the retry after the 401");
    cr_expect_eq(st.blob_gets, 1);
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(st.token_gets, 1);
    cr_expect_eq(M.bad_accept, 0, "every manifest GET sends the four Accept lines");
    cr_expect_eq(mini_count(&M.reg, "GET /token"), 1);
    cr_expect(strstr(M.token_query, "service=mock%2Cregistry") != NULL, "%s",
              M.token_query);
    cr_expect(strstr(M.token_query, "scope=repository%3Ateam%2Fapp%3Apull") != NULL, "%s",
              M.token_query);
    /* the CDN on another port must never see the registry's token */
    cr_expect_eq(mini_count(&M.cdn, "GET"), 1);
    cr_expect_eq(mini_count(&M.cdn, "HEAD"), 2);
    cr_expect_eq(mini_count(&M.cdn, "GET /cdn/sha256"), 1);
    pthread_mutex_lock(&M.cdn.mu);
    for (int i = 0; i < M.cdn.nreq; i++)
        cr_expect(strstr(M.cdn.log[i], "auth=no") != NULL, "leaked: %s", M.cdn.log[i]);
    pthread_mutex_unlock(&M.cdn.mu);
    /* every registry request after the first carried the token */
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    /* a second resolution reuses the cached token: no 401, no token GET */
    struct reg_stats st2 = {0};
    im_bundle_free(&b);
    rc = mock_resolve(c, "v1", &b, &st2, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st2.token_gets, 0);
    cr_expect_eq(st2.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

/* The registry's key in the client's caches, as reg_ref_parse gives it. */
static void mock_registry(char *out, size_t n)
{
    snprintf(out, n, "127.0.0.1:%d", M.reg.port);
}

/* Resolves v1 with the token cache emptied first: what a running daemon
 * does for a repository of this registry it has no token for yet. */
static void resolve_without_token(struct reg_client *c, struct reg_stats *st)
{
    char registry[64];
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_registry(registry, sizeof registry);
    reg__tokens_drop(c->tokens, registry, "repository:team/app:pull");
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
}

Test(resolve_mock, remembered_realm_saves_the_401, .init = init_curl)
{
    struct reg_stats st1 = {0}, st2 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    resolve_without_token(c, &st1);
    cr_expect_eq(st1.manifest_gets, 3 + 1, "the first resolution meets one 401");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.token_gets, 1, "a token for the new scope, from the known realm");
    cr_expect_eq(st2.manifest_gets, 3, "no 401 and no resend");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1,
                 "the second resolution sent nothing without its token");
    cr_expect_eq(mini_count(&M.reg, "GET /token"), 2);
    cr_expect(strstr(M.token_query, "service=mock%2Cregistry") != NULL, "%s",
              M.token_query);
    cr_expect(strstr(M.token_query, "scope=repository%3Ateam%2Fapp%3Apull") != NULL, "%s",
              M.token_query);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, moved_realm_falls_back_to_the_challenge, .init = init_curl)
{
    struct reg_stats st1 = {0}, st2 = {0}, st3 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    resolve_without_token(c, &st1);
    M.mode = M_REALM2; /* the old realm still answers, its token is refused */
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.token_gets, 2, "the old realm's token, then the new realm's");
    cr_expect_eq(st2.manifest_gets, 3 + 1, "one 401 names the new realm");
    cr_expect_eq(mini_count(&M.reg, "GET /token2"), 1);
    resolve_without_token(c, &st3);
    cr_expect_eq(st3.token_gets, 1, "the new realm is the one remembered");
    cr_expect_eq(st3.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.reg, "GET /token2"), 2);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, failing_realm_is_forgotten, .init = init_curl)
{
    char registry[64], realm[128];
    struct reg__challenge ch;
    struct reg_stats st1 = {0}, st2 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    mock_registry(registry, sizeof registry);
    snprintf(realm, sizeof realm, "http://127.0.0.1:%d/gone", M.cdn.port);
    reg__realms_put(c->realms, registry, realm, "mock");
    resolve_without_token(c, &st1);
    cr_expect_eq(mini_count(&M.cdn, "GET /gone"), 1, "the remembered realm was asked");
    cr_expect_eq(st1.token_gets, 2, "it answered 404: the challenge's realm was asked");
    cr_expect_eq(st1.manifest_gets, 3 + 1);
    cr_assert_eq(reg__realms_get(c->realms, registry, &ch), 0);
    cr_expect(strstr(ch.realm, "/token") != NULL, "relearnt: %s", ch.realm);
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.cdn, "GET /gone"), 1);
    reg_client_free(c);
    mock_stop();
}

/* ------------------------------------------- start-up probes ----------- */

/* What reg_prewarm reported, per registry, as the daemon's log would. */
struct probes_seen {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n;
    char line[4][400]; /* "registry outcome detail" */
};

static struct probes_seen PS; /* one per test process, as M */

static void on_probe(void *cls, const struct reg_probe *p)
{
    struct probes_seen *ps = cls;
    pthread_mutex_lock(&ps->mu);
    if (ps->n < 4)
        snprintf(ps->line[ps->n], sizeof ps->line[0], "%s %s %s", p->registry, p->outcome,
                 p->detail);
    ps->n++;
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->mu);
}

/* Waits (bounded) until n probes were reported; the number reported. */
static int probes_wait(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&PS.mu);
    while (PS.n < n && pthread_cond_timedwait(&PS.cond, &PS.mu, &until) == 0)
        ;
    int got = PS.n;
    pthread_mutex_unlock(&PS.mu);
    return got;
}

/* The line reported for a registry starting with prefix, or "". */
static const char *probe_line(const char *prefix)
{
    for (int i = 0; i < PS.n && i < 4; i++)
        if (strncmp(PS.line[i], prefix, strlen(prefix)) == 0)
            return PS.line[i];
    return "";
}

/* The mock registry mirrored as itself (with robot's credentials if asked),
 * and, unless cfg is given, docker.io mirrored to the CDN server, whose /v2/
 * answers 404: no network. The probes are started, nothing waited for. */
static struct reg_client *prewarmed(struct reg_config *cfg, bool with_credentials)
{
    struct reg_config dflt;
    struct im_error e = {{0}};
    memset(&PS, 0, sizeof PS);
    pthread_mutex_init(&PS.mu, NULL);
    pthread_cond_init(&PS.cond, NULL);
    if (!cfg) {
        cfg = &dflt;
        reg_config_defaults(cfg);
        snprintf(cfg->mirrors[1].registry, sizeof cfg->mirrors[1].registry, "docker.io");
        snprintf(cfg->mirrors[1].base_url, sizeof cfg->mirrors[1].base_url,
                 "http://127.0.0.1:%d", M.cdn.port);
        cfg->n_mirrors = 2;
    }
    snprintf(cfg->mirrors[0].registry, sizeof cfg->mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg->mirrors[0].base_url, sizeof cfg->mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    if (with_credentials) {
        snprintf(cfg->credentials[0].registry, sizeof cfg->credentials[0].registry,
                 "127.0.0.1:%d", M.reg.port);
        im_strlcpy(cfg->credentials[0].username, "robot",
                   sizeof cfg->credentials[0].username);
        im_strlcpy(cfg->credentials[0].password, "s3cret",
                   sizeof cfg->credentials[0].password);
        cfg->n_credentials = 1;
    }
    struct reg_client *c = reg_client_new(cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    cr_assert_eq(reg_prewarm(c, on_probe, &PS, &e), 0, "%s", e.msg);
    return c;
}

/* Resolves v1: with what the probe learnt, no request goes out without its
 * token or credentials (no 401, no resend). */
static void resolve_after_probe(struct reg_client *c, struct reg_stats *st)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &b, st, &e), 0, "%s", e.msg);
    cr_expect_eq(st->manifest_gets, 3, "no 401, no resend");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 0);
    im_bundle_free(&b);
}

Test(prewarm_mock, probe_learns_the_realm_and_the_first_resolution_skips_the_401,
     .init = init_curl)
{
    char registry[64], prefix[160];
    struct reg__challenge ch;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = prewarmed(NULL, false);
    mock_registry(registry, sizeof registry);
    cr_assert_eq(probes_wait(2), 2, "one report per registry");
    snprintf(prefix, sizeof prefix, "%s bearer http://127.0.0.1:%d/token", registry,
             M.reg.port);
    cr_expect_str_eq(probe_line(registry), prefix);
    cr_expect_str_eq(probe_line("docker.io"), "docker.io failed HTTP 404",
                     "a registry without the API answers 404: nothing learnt");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ auth=no"), 1, "one GET /v2/, no token");
    cr_assert_eq(reg__realms_get(c->realms, registry, &ch), 0);
    cr_expect_str_eq(ch.service, "mock,registry");
    cr_expect_eq(reg__realms_get(c->realms, "docker.io", &ch), -1);
    cr_expect_eq(reg_prewarm(c, on_probe, &PS, &e), IM_EINVAL, "once per client");
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 1, "the token first, from the probed realm");
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, resolution_during_the_probe_waits_for_it, .init = init_curl)
{
    struct reg_stats st = {0};
    mock_start(M_OK);
    M.ping_delay_ms = 300; /* the probe is still on its way when the request comes */
    struct reg_client *c = prewarmed(NULL, false);
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 1);
    pthread_mutex_lock(&M.reg.mu);
    cr_expect(strncmp(M.reg.log[0], "GET /v2/ ", 9) == 0, "first: %s", M.reg.log[0]);
    cr_expect(strncmp(M.reg.log[1], "GET /token?", 11) == 0, "then: %s", M.reg.log[1]);
    pthread_mutex_unlock(&M.reg.mu);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, basic_registry_gets_credentials_from_the_first_request,
     .init = init_curl)
{
    char registry[64];
    struct reg_stats st = {0};
    mock_start(M_BASIC);
    struct reg_client *c = prewarmed(NULL, true);
    mock_registry(registry, sizeof registry);
    cr_assert_eq(probes_wait(2), 2);
    cr_expect(strstr(probe_line(registry), " basic") != NULL, "%s", probe_line(registry));
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ auth=no"), 1,
                 "the probe sends no password");
    resolve_after_probe(c, &st);
    cr_expect_eq(st.token_gets, 0);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, probes_go_through_the_outbound_policy, .init = init_curl)
{
    char registry[64];
    struct reg_config cfg;
    struct im_error e = {{0}};
    mock_start(M_OK);
    M.ping_redirect = true;
    mock_registry(registry, sizeof registry);
    reg_config_defaults(&cfg);
    cfg.n_mirrors = 1;
    /* docker.io, not mirrored, is not on this allowlist */
    cr_assert_eq(reg_config_policy(&cfg, "ghcr.io", NULL, false, &e), 0, "%s", e.msg);
    struct reg_client *c = prewarmed(&cfg, false);
    cr_assert_eq(probes_wait(2), 2);
    cr_expect(strstr(probe_line("docker.io failed"), "not allowed") != NULL,
              "a registry a request may not name is not asked either: %s",
              probe_line("docker.io"));
    cr_expect(strstr(probe_line(registry), " failed refused by policy: ") != NULL,
              "the mirror's redirect elsewhere is not followed: %s",
              probe_line(registry));
    cr_expect_eq(mini_count(&M.reg, "GET /v2/ "), 1);
    reg_client_free(c);
    mock_stop();
}

Test(prewarm_mock, freeing_the_client_stops_a_probe_in_flight, .init = init_curl)
{
    mock_start(M_OK);
    M.ping_delay_ms = 1500;
    struct reg_client *c = prewarmed(NULL, false);
    cr_assert_eq(probes_wait(1), 1, "docker.io's mirror answers at once");
    reg_client_free(c); /* the registry's probe is still waiting for its answer */
    cr_expect_eq(PS.n, 1, "the stopped probe was not waited for, nor reported");
    mock_stop();
}

Test(resolve_mock, known_documents_are_not_fetched_again, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_assert_eq(im_bundle_add_doc(&b, M.dmanifest,
                                   "application/vnd.docker.distribution.manifest.v2+json",
                                   M.manifest, strlen(M.manifest)),
                 0);
    int rc = mock_resolve(c, M.dindex, &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, 4);
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/"), 2 + 1,
                 "index (twice: 401 then token) and attestation, not the known image");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

/* A reg_known over a bundle (a cache's stand-in), recording what it was asked. */
struct known_from {
    const struct im_bundle *b;
    char asked[16][IM_DIGEST_MAX];
    int nasked;
    char registry[64]; /* the registry a blob was asked for */
    bool lie;          /* answer every document with another one */
};

static void note_asked(struct known_from *k, const char *digest)
{
    if (k->nasked < 16)
        im_strlcpy(k->asked[k->nasked++], digest, IM_DIGEST_MAX);
}

static int known_doc_from(void *cls, const char *digest, struct im_doc *out)
{
    struct known_from *k = cls;
    note_asked(k, digest);
    const struct im_doc *d = im_bundle_find_doc(k->b, digest);
    if (!d || (k->lie && k->b->ndocs < 2))
        return IM_ENOTFOUND;
    if (k->lie) /* a document under another digest: must not be taken */
        d = d == &k->b->docs[0] ? &k->b->docs[1] : &k->b->docs[0];
    *out = *d;
    out->body = malloc(d->len);
    cr_assert_not_null(out->body);
    memcpy(out->body, d->body, d->len);
    return 0;
}

static int known_blob_from(void *cls, const char *registry, const char *digest,
                           struct im_blob *out)
{
    struct known_from *k = cls;
    note_asked(k, digest);
    im_strlcpy(k->registry, registry, sizeof k->registry);
    const struct im_blob *b = im_bundle_find_blob(k->b, digest);
    if (!b || k->lie)
        return IM_ENOTFOUND;
    *out = *b;
    return 0;
}

Test(resolve_mock, what_the_cache_knows_below_the_root_is_not_fetched, .init = init_curl)
{
    struct im_bundle full, b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&full);
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &full, NULL, &e), 0, "%s", e.msg);
    int before_cdn = mini_count(&M.cdn, "");
    /* another tag naming the same children: only its own manifest is fetched */
    struct known_from k = {.b = &full};
    struct reg_known known = {.doc = known_doc_from, .blob = known_blob_from, .cls = &k};
    struct im_ref ref;
    char s[512];
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app:v1", M.reg.port);
    cr_assert_eq(reg_ref_parse(s, &ref, &e), 0, "%s", e.msg);
    int rc = reg_resolve_known(c, &ref, &b, &known, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.manifest_gets, 1, "the tag's manifest only, got %u",
                 st.manifest_gets);
    cr_expect_eq(st.blob_gets + st.blob_heads, 0);
    cr_expect_eq(mini_count(&M.cdn, ""), before_cdn, "no CDN request");
    cr_expect_eq(st.known, 5, "image, attestation, config, 2 layers: %u", st.known);
    char registry[64];
    mock_registry(registry, sizeof registry);
    cr_expect_str_eq(k.registry, registry, "layer facts are asked per registry");
    for (int i = 0; i < k.nasked; i++)
        cr_expect_str_neq(k.asked[i], M.dindex, "the root is the registry's to say");
    /* the answer is the full one: every document and layer fact */
    cr_expect_str_eq(b.root_digest, full.root_digest);
    cr_expect_eq(b.ndocs, full.ndocs);
    cr_expect_eq(b.nblobs, full.nblobs);
    for (size_t i = 0; i < full.ndocs; i++) {
        const struct im_doc *d = im_bundle_find_doc(&b, full.docs[i].digest);
        cr_assert_not_null(d, "%s", full.docs[i].digest);
        cr_expect_eq(d->len, full.docs[i].len);
        cr_expect_str_eq(d->media_type, full.docs[i].media_type);
    }
    const struct im_blob *l = im_bundle_find_blob(&b, M.dlayer1);
    cr_assert_not_null(l);
    cr_expect_eq(l->last_modified, 1445412480);
    cr_expect_eq(l->size, 1234);
    /* a cache that answers with the wrong document is not believed */
    im_bundle_free(&b);
    memset(&st, 0, sizeof st);
    k.lie = true;
    k.nasked = 0;
    rc = reg_resolve_known(c, &ref, &b, &known, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.known, 0);
    cr_expect_eq(st.manifest_gets, 3, "everything fetched: %u", st.manifest_gets);
    cr_expect_eq(b.ndocs, full.ndocs);
    im_bundle_free(&b);
    im_bundle_free(&full);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, a_cached_image_costs_only_its_tag, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &b, NULL, &e), 0, "%s", e.msg);
    size_t ndocs = b.ndocs, nblobs = b.nblobs;
    /* by tag, everything cached by digest: the tag's manifest and nothing else */
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.requests, 1, "one GET of the tag, got %u requests", st.requests);
    cr_expect_eq(st.manifest_gets, 1);
    cr_expect_eq(st.blob_gets + st.blob_heads, 0);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, ndocs);
    cr_expect_eq(b.nblobs, nblobs);
    /* by digest, everything cached: no request at all */
    memset(&st, 0, sizeof st);
    rc = mock_resolve(c, M.dindex, &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.requests, 0, "got %u requests", st.requests);
    cr_expect_str_eq(b.root_digest, M.dindex);
    /* only the layer facts missing: only their HEADs */
    struct im_bundle docs;
    im_bundle_init(&docs);
    for (size_t i = 0; i < b.ndocs; i++)
        cr_assert_eq(im_bundle_add_doc(&docs, b.docs[i].digest, b.docs[i].media_type,
                                       b.docs[i].body, b.docs[i].len),
                     0);
    memset(&st, 0, sizeof st);
    rc = mock_resolve(c, M.dindex, &docs, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.manifest_gets + st.blob_gets, 0);
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(docs.nblobs, 2);
    im_bundle_free(&docs);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, foreign_layers, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_FOREIGN);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_eq(b.nblobs, 5);
    const struct im_blob *l = im_bundle_find_blob(&b, M.dforeign[0]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 777, "size from the manifest");
    cr_expect_eq(l->last_modified, 1445412480, "Last-Modified of its first url");
    cr_expect_str_eq(l->media_type, MT_FOREIGN);
    l = im_bundle_find_blob(&b, M.dforeign[1]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 888);
    cr_expect_eq(l->last_modified, -1, "a url the policy refuses gives no date");
    l = im_bundle_find_blob(&b, M.dforeign[2]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 999);
    cr_expect_eq(l->last_modified, -1, "a non-http url is not asked");
    char head[200];
    snprintf(head, sizeof head, "HEAD /foreign/%s auth=no", M.dforeign[0]);
    cr_expect_eq(mini_count(&M.cdn, head), 1, "one HEAD, without the registry's token");
    cr_expect_eq(mini_count(&M.reg, "HEAD /v2/team/app/blobs/sha256"), 2,
                 "foreign layers are not asked of the registry");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, signed_schema1_is_identified_by_its_payload, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_SCHEMA1);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, M.dschema1, "the digest is over the payload");
    char whole[72];
    digest_of(M.schema1, whole);
    cr_expect_str_neq(b.root_digest, whole);
    cr_assert_eq(b.ndocs, 1);
    cr_expect_str_eq(b.docs[0].media_type, MT_DOCKER_V1_SIGNED);
    cr_expect_eq(b.docs[0].len, strlen(M.schema1), "kept verbatim, signatures and all");
    cr_expect_eq(b.nblobs, 2, "the repeated fsLayer is asked about once");
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(st.blob_gets, 0, "schema1 has no config blob");
    cr_expect_eq(im_bundle_find_blob(&b, M.dlayer2)->size, 5678);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(schema1, payload_of_signed_and_unsigned)
{
    struct im_error e = {{0}};
    unsigned char *p = NULL;
    size_t pl = 0;
    mock_start(M_SCHEMA1); /* for make_schema1's output only */
    mock_stop();
    cr_assert_eq(
        reg__schema1_payload((unsigned char *)M.schema1, strlen(M.schema1), &p, &pl, &e),
        0, "%s", e.msg);
    cr_assert_not_null(p);
    char d[72];
    im_sha256_digest(p, pl, d);
    cr_expect_str_eq(d, M.dschema1);
    cr_expect_eq(p[pl - 1], '}');
    free(p);
    static const char unsigned_s1[] =
        "{\"schemaVersion\":1,\"fsLayers\":[],\"history\":[]}";
    cr_assert_eq(reg__schema1_payload((const unsigned char *)unsigned_s1,
                                      strlen(unsigned_s1), &p, &pl, &e),
                 0);
    cr_expect_null(p, "unsigned: hashed as it is");
    static const char bad[] =
        "{\"schemaVersion\":1,\"signatures\":[{\"protected\":"
        "\"eyJmb3JtYXRMZW5ndGgiOjk5OTksImZvcm1hdFRhaWwiOiJDbjAifQ\"}]}";
    cr_expect_eq(
        reg__schema1_payload((const unsigned char *)bad, strlen(bad), &p, &pl, &e),
        IM_EPROTO, "formatLength beyond the body");
    cr_expect(strstr(e.msg, "formatLength 9999") != NULL, "%s", e.msg);
}

struct worker {
    struct reg_client *c;
    int rc;
    size_t ndocs;
    struct reg_stats st;
    char msg[IM_ERRMSG_MAX];
};

static void *resolve_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 3 && w->rc == 0; i++) {
        struct im_bundle b;
        struct im_ref ref;
        struct im_error e = {{0}};
        char s[200];
        snprintf(s, sizeof s, "127.0.0.1:%d/team/app:v1", M.reg.port);
        w->rc = reg_ref_parse(s, &ref, &e);
        im_bundle_init(&b);
        if (w->rc == 0)
            w->rc = reg_resolve(w->c, &ref, &b, &w->st, &e);
        w->ndocs = b.ndocs;
        snprintf(w->msg, sizeof w->msg, "%s", e.msg);
        im_bundle_free(&b);
    }
    return NULL;
}

Test(resolve_mock, concurrent_resolutions_share_one_client, .init = init_curl)
{
    struct worker w[8];
    pthread_t th[8];
    mock_start(M_OK);
    struct reg_client *c = mock_client(10000, 0);
    memset(w, 0, sizeof w);
    for (int i = 0; i < 8; i++) {
        w[i].c = c;
        cr_assert_eq(pthread_create(&th[i], NULL, resolve_worker, &w[i]), 0);
    }
    unsigned tokens = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(w[i].rc, 0, "worker %d: %s", i, w[i].msg);
        cr_expect_eq(w[i].ndocs, 4);
        tokens += w[i].st.token_gets;
    }
    cr_expect_geq(tokens, 1);
    cr_expect_leq(tokens, 8, "the token cache is shared: %u token GETs", tokens);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, sha512_pinned_index_is_verified, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, M.dindex512, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, M.dindex512);
    cr_expect_not_null(im_bundle_find_doc(&b, M.dindex512));
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

struct fail_case {
    enum mode mode;
    int code;
    const char *msg;
};

static void expect_failure_caps(const struct fail_case *fc, long timeout_ms,
                                size_t max_config, size_t max_manifest)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(fc->mode);
    struct reg_client *c = mock_client_caps(timeout_ms, max_config, max_manifest);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, NULL, &e);
    cr_expect_eq(rc, fc->code, "mode %d: got %d (%s), wanted %d", fc->mode, rc, e.msg,
                 fc->code);
    cr_expect(strstr(e.msg, fc->msg) != NULL, "mode %d: message '%s' lacks '%s'",
              fc->mode, e.msg, fc->msg);
    cr_expect_eq(b.ndocs, 0, "nothing is kept on failure");
    cr_expect_eq(b.nblobs, 0);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

static void expect_failure(const struct fail_case *fc, long timeout_ms, size_t max_config)
{
    expect_failure_caps(fc, timeout_ms, max_config, 0);
}

Test(resolve_mock, manifest_over_cap_by_content_length, .init = init_curl)
{
    struct fail_case fc = {M_OK, IM_ETOOBIG, "is larger than the 300-byte cap"};
    expect_failure_caps(&fc, 5000, 0, 300);
}

Test(resolve_mock, manifest_over_cap_while_reading, .init = init_curl)
{
    struct fail_case fc = {M_NOLEN, IM_ETOOBIG, "is larger than the 300-byte cap"};
    expect_failure_caps(&fc, 5000, 0, 300);
}

/* realloc as the registry's code in this executable sees it (tests/CMakeLists.txt
 * links it with -Wl,--wrap=realloc; libcurl and Criterion are shared libraries,
 * left alone): while fail_realloc_from is not 0, every request for that many
 * bytes or more fails, as when the allocator is out of memory. */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static atomic_size_t fail_realloc_from;
void *__wrap_realloc(void *p, size_t n)
{
    size_t from = atomic_load(&fail_realloc_from);
    if (from != 0 && n >= from)
        return NULL;
    return __real_realloc(p, n);
}

/* The body callback's buffer (16 KiB at first) cannot be had: that is out of
 * memory (IM_ENOMEM: the API answers 500 out_of_memory), not the registry's
 * failure (IM_EUPSTREAM: 502, and a stale answer where one is kept), and it is
 * not retried. */
Test(resolve_mock, body_allocation_failure_is_out_of_memory, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    struct reg_stats st;
    memset(&st, 0, sizeof st);
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    atomic_store(&fail_realloc_from, 16384);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    atomic_store(&fail_realloc_from, 0);
    cr_expect_eq(rc, IM_ENOMEM, "got %d (%s), wanted IM_ENOMEM", rc, e.msg);
    cr_expect_not_null(strstr(e.msg, "out of memory"), "message: %s", e.msg);
    cr_expect_eq(st.retries, 0, "retried %u times", st.retries);
    cr_expect_eq(b.ndocs, 0, "nothing is kept on failure");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, body_without_content_length_is_fine_under_cap, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_NOLEN);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, child_digest_mismatch, .init = init_curl)
{
    struct fail_case fc = {M_BAD_CHILD, IM_EDIGEST, "content hashes to"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, root_digest_mismatch_with_docker_content_digest, .init = init_curl)
{
    struct fail_case fc = {M_BAD_ROOT, IM_EDIGEST, "not " D256};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, content_type_disagrees_with_media_type, .init = init_curl)
{
    struct fail_case fc = {
        M_BAD_TYPE, IM_EPROTO,
        "Content-Type application/vnd.oci.image.manifest.v1+json disagrees "
        "with its mediaType application/vnd.docker.distribution.manifest."
        "v2+json"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, missing_tag_is_not_found, .init = init_curl)
{
    struct fail_case fc = {M_MISSING, IM_ENOTFOUND, "team/app:v1 not found"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, rate_limited, .init = init_curl)
{
    struct fail_case fc = {M_429, IM_ERATELIMIT, "429"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, server_error_is_upstream, .init = init_curl)
{
    struct fail_case fc = {M_500, IM_EUPSTREAM, "HTTP 503"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, refused_after_token_is_unauthorized, .init = init_curl)
{
    struct fail_case fc = {M_DENY, IM_EUNAUTH, "may not exist or be private"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, slow_upstream_times_out, .init = init_curl)
{
    struct fail_case fc = {M_SLOW, IM_ETIMEOUT, "manifest"};
    expect_failure(&fc, 700, 0);
}

Test(resolve_mock, config_over_cap_is_too_big, .init = init_curl)
{
    struct fail_case fc = {M_OK, IM_ETOOBIG, "the cap is 16"};
    expect_failure(&fc, 5000, 16);
}

Test(resolve_mock, redirect_to_file_url_is_refused, .init = init_curl)
{
    struct fail_case fc = {M_FILE_REDIRECT, IM_EPOLICY, "refused a non-http(s) URL"};
    expect_failure(&fc, 5000, 0);
}

/* ------------------------------------------- HEAD and tags/list --------- */

static void mock_ref(const char *tag_or_digest, struct im_ref *ref)
{
    char s[512];
    struct im_error e = {{0}};
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app%s%s", M.reg.port,
             strncmp(tag_or_digest, "sha", 3) == 0 ? "@" : ":", tag_or_digest);
    cr_assert_eq(reg_ref_parse(s, ref, &e), 0, "%s", e.msg);
}

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
    cr_expect_str_eq(h.media_type, MT_OCI_INDEX);
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

/* ------------------------------------------------------------ retries --- */

static struct reg_client *retry_client(int max_retries, long base_ms, long max_ms)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    cfg.n_mirrors = 1;
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
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    cfg.n_mirrors = 1;
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
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    cfg.n_mirrors = 1;
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

/* ------------------------------- the real registry (docker-registry) --- */

static pid_t registry_pid = -1;
static char registry_dir[256];

static void registry_stop(void)
{
    if (registry_pid > 0) {
        kill(registry_pid, SIGTERM);
        waitpid(registry_pid, NULL, 0);
        registry_pid = -1;
    }
    if (registry_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", registry_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", registry_dir);
        registry_dir[0] = '\0';
    }
}

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];
    while (path && *path) {
        size_t l = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += l + (path[l] == ':');
    }
    return false;
}

static size_t sink(char *d, size_t s, size_t n, void *cls)
{
    (void)d;
    (void)cls;
    return s * n;
}

struct hdrcap {
    char location[2048];
    char dcd[160];
};

static size_t cap_header(char *line, size_t s, size_t n, void *cls)
{
    struct hdrcap *h = cls;
    size_t len = s * n;
    char tmp[2100];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 2099 ? len : 2099), line);
    tmp[strcspn(tmp, "\r\n")] = '\0';
    if (strncasecmp(tmp, "Location: ", 10) == 0)
        snprintf(h->location, sizeof h->location, "%.2000s", tmp + 10);
    if (strncasecmp(tmp, "Docker-Content-Digest: ", 23) == 0)
        snprintf(h->dcd, sizeof h->dcd, "%.150s", tmp + 23);
    return len;
}

static const char *http_userpwd; /* "user:password" for the test's own pushes */

/* One HTTP request to the test registry; returns the status. */
static long http(const char *method, const char *url, const char *ctype, const void *body,
                 size_t len, struct hdrcap *h)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char ct[300];
    long status = 0;
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, cap_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (http_userpwd)
        curl_easy_setopt(c, CURLOPT_USERPWD, http_userpwd);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 ctype ? ctype : "application/octet-stream");
        hl = curl_slist_append(hl, ct);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return status;
}

static void registry_start_with(int *port_out, const char *extra_yaml);

static void registry_start(int *port_out)
{
    registry_start_with(port_out, "");
}

/* The port docker-registry says in its log (logpath) that it listens on
 * ("listening on 127.0.0.1:PORT", level info); 0 while it has not said it. */
static int registry_log_port(const char *logpath)
{
    char line[4096];
    int port = 0;
    FILE *f = fopen(logpath, "r");
    if (!f)
        return 0;
    while (port == 0 && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "listening on 127.0.0.1:");
        if (p)
            port = (int)strtol(p + strlen("listening on 127.0.0.1:"), NULL, 10);
    }
    fclose(f);
    return port;
}

/* docker-registry on a loopback port of its choosing (addr :0: no port is
 * picked beforehand, which another test could take meanwhile). */
static void registry_start_with(int *port_out, const char *extra_yaml)
{
    char cfgpath[300], logpath[300];
    int port = 0;
    cr_assert(on_path("docker-registry"),
              "docker-registry is not on PATH: install Debian's docker-registry package "
              "(this end-to-end test does not skip)");
    snprintf(registry_dir, sizeof registry_dir, "/tmp/imgmeta-reg-XXXXXX");
    cr_assert_not_null(mkdtemp(registry_dir));
    snprintf(cfgpath, sizeof cfgpath, "%s/config.yml", registry_dir);
    snprintf(logpath, sizeof logpath, "%s/registry.log", registry_dir);
    FILE *f = fopen(cfgpath, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
            "storage:\n  filesystem:\n"
            "    rootdirectory: %s/data\n  delete:\n    enabled: true\n"
            "http:\n  addr: 127.0.0.1:0\n%s",
            registry_dir, extra_yaml);
    fclose(f);
    registry_pid = fork();
    cr_assert_geq(registry_pid, 0);
    if (registry_pid == 0) {
        int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        execlp("docker-registry", "docker-registry", "serve", cfgpath, (char *)NULL);
        _exit(127);
    }
    char url[128] = "";
    for (int i = 0; i < 100; i++) {
        struct hdrcap h;
        memset(&h, 0, sizeof h);
        if (port == 0) {
            port = registry_log_port(logpath);
            snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/", port);
        }
        long code = port ? http("GET", url, NULL, NULL, 0, &h) : 0;
        if (code == 200 || (code == 401 && extra_yaml[0])) {
            *port_out = port;
            return;
        }
        int st = 0;
        cr_assert_eq(waitpid(registry_pid, &st, WNOHANG), 0,
                     "docker-registry exited early; see %s", logpath);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("docker-registry did not answer on [%s] within 10 s; see %s", url,
                   logpath);
}

static void push_blob(int port, const char *repo, const char *data, char digest[72])
{
    char url[2200];
    struct hdrcap h;
    memset(&h, 0, sizeof h);
    digest_of(data, digest);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/%s/blobs/uploads/", port, repo);
    cr_assert_eq(http("POST", url, NULL, "", 0, &h), 202);
    cr_assert(h.location[0], "no Location for the upload");
    if (h.location[0] == '/')
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s%cdigest=%s", port, h.location,
                 strchr(h.location, '?') ? '&' : '?', digest);
    else
        snprintf(url, sizeof url, "%s%cdigest=%s", h.location,
                 strchr(h.location, '?') ? '&' : '?', digest);
    cr_assert_eq(http("PUT", url, NULL, data, strlen(data), &h), 201, "blob PUT %s", url);
}

static void push_manifest(int port, const char *repo, const char *ref, const char *mt,
                          const char *body, char digest[72])
{
    char url[512];
    struct hdrcap h;
    memset(&h, 0, sizeof h);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/%s/manifests/%s", port, repo, ref);
    cr_assert_eq(http("PUT", url, mt, body, strlen(body), &h), 201, "manifest PUT %s",
                 url);
    digest_of(body, digest);
    cr_assert_str_eq(h.dcd, digest, "registry and test agree on the manifest digest");
}

struct image_fixture {
    char la[72], lb[72], lc[72], ca[72], cb[72], ma[72], mb[72], list[72];
    char ca_body[512], cb_body[512], ma_body[2048], mb_body[2048];
};

static const char *const LAYER_A = "shared base layer bytes";
static const char *const LAYER_B = "amd64 layer";
static const char *const LAYER_C = "arm64 layer, a bit longer";

static void image_manifest(char *out, size_t n, const char *cfg, const char *cfgd,
                           const char *l1, const char *d1, const char *l2, const char *d2)
{
    snprintf(
        out, n,
        "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" MT_DOCKER_V2 "\",\n"
        "   \"config\": {\"mediaType\": "
        "\"application/vnd.docker.container.image.v1+json\","
        " \"size\": %zu, \"digest\": \"%s\"},\n   \"layers\": [\n"
        "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        " \"size\": %zu, \"digest\": \"%s\"},\n"
        "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        " \"size\": %zu, \"digest\": \"%s\"}\n   ]\n}",
        strlen(cfg), cfgd, strlen(l1), d1, strlen(l2), d2);
}

static void push_fixture(int port, const char *repo, struct image_fixture *fx)
{
    char list[4096];
    push_blob(port, repo, LAYER_A, fx->la);
    push_blob(port, repo, LAYER_B, fx->lb);
    push_blob(port, repo, LAYER_C, fx->lc);
    snprintf(
        fx->ca_body, sizeof fx->ca_body,
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"python3\"]},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    snprintf(fx->cb_body, sizeof fx->cb_body,
             "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\","
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    push_blob(port, repo, fx->ca_body, fx->ca);
    push_blob(port, repo, fx->cb_body, fx->cb);
    image_manifest(fx->ma_body, sizeof fx->ma_body, fx->ca_body, fx->ca, LAYER_A, fx->la,
                   LAYER_B, fx->lb);
    image_manifest(fx->mb_body, sizeof fx->mb_body, fx->cb_body, fx->cb, LAYER_A, fx->la,
                   LAYER_C, fx->lc);
    char d[72];
    digest_of(fx->ma_body, d);
    push_manifest(port, repo, d, MT_DOCKER_V2, fx->ma_body, fx->ma);
    digest_of(fx->mb_body, d);
    push_manifest(port, repo, d, MT_DOCKER_V2, fx->mb_body, fx->mb);
    snprintf(list, sizeof list,
             "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" MT_DOCKER_LIST "\",\n"
             "   \"manifests\": [\n      {\"mediaType\": \"" MT_DOCKER_V2
             "\", \"size\": %zu,"
             " \"digest\": \"%s\", \"platform\": {\"architecture\": \"amd64\", \"os\": "
             "\"linux\"}},\n      {\"mediaType\": \"" MT_DOCKER_V2 "\", \"size\": %zu,"
             " \"digest\": \"%s\", \"platform\": {\"architecture\": \"arm64\", \"os\": "
             "\"linux\", \"variant\": \"v8\"}}\n   ]\n}",
             strlen(fx->ma_body), fx->ma, strlen(fx->mb_body), fx->mb);
    push_manifest(port, repo, "3.7-slim", MT_DOCKER_LIST, list, fx->list);
}

static struct reg_client *registry_client(int port)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    return c;
}

Test(resolve_registry, docker_list_of_schema2_via_docker_io_mirror, .init = init_curl,
     .fini = registry_stop, .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    int port = 0;
    registry_start(&port);
    push_fixture(port, "library/python", &fx);
    struct reg_client *c = registry_client(port);
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, &st, &e);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, fx.list);
    cr_expect_eq(b.ndocs, 5, "list + 2 manifests + 2 configs, got %zu", b.ndocs);
    const struct im_doc *d = im_bundle_find_doc(&b, fx.list);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, MT_DOCKER_LIST);
    d = im_bundle_find_doc(&b, fx.ma);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, MT_DOCKER_V2);
    cr_expect_eq(d->len, strlen(fx.ma_body));
    cr_expect_eq(memcmp(d->body, fx.ma_body, d->len), 0, "stored verbatim");
    cr_assert_not_null(im_bundle_find_doc(&b, fx.mb));
    d = im_bundle_find_doc(&b, fx.cb);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.docker.container.image.v1+json");
    cr_expect_eq(d->len, strlen(fx.cb_body));
    cr_assert_not_null(im_bundle_find_doc(&b, fx.ca));
    cr_expect_eq(b.nblobs, 3, "three distinct layers");
    cr_expect_eq(im_bundle_find_blob(&b, fx.la)->size, (int64_t)strlen(LAYER_A));
    cr_expect_eq(im_bundle_find_blob(&b, fx.lb)->size, (int64_t)strlen(LAYER_B));
    cr_expect_eq(im_bundle_find_blob(&b, fx.lc)->size, (int64_t)strlen(LAYER_C));
    cr_expect_eq(st.manifest_gets, 3);
    cr_expect_eq(st.blob_gets, 2);
    cr_expect_eq(st.blob_heads, 3, "the shared layer is asked about once");
    cr_expect_eq(st.token_gets, 0);
    im_bundle_free(&b);

    /* by digest: the amd64 image alone */
    char s[200];
    snprintf(s, sizeof s, "python@%s", fx.ma);
    cr_assert_eq(reg_ref_parse(s, &ref, &e), 0);
    rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, fx.ma);
    cr_expect_eq(b.ndocs, 2);
    cr_expect_eq(b.nblobs, 2);
    im_bundle_free(&b);

    /* a tag that does not exist */
    cr_assert_eq(reg_ref_parse("python:nope", &ref, &e), 0);
    rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_expect_eq(rc, IM_ENOTFOUND, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "docker.io/library/python:nope not found") != NULL, "%s",
              e.msg);
    cr_expect_eq(b.ndocs, 0);

    /* revalidation: one HEAD gives the digest the GET gave */
    struct reg_head h;
    struct reg_stats hs = {0};
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    rc = reg_head_manifest(c, &ref, &h, &hs, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(h.digest, fx.list);
    cr_expect_str_eq(h.media_type, MT_DOCKER_LIST);
    cr_expect_eq(hs.requests, 1);
    cr_expect_eq(hs.manifest_heads, 1);
    cr_assert_eq(reg_ref_parse("python:nope", &ref, &e), 0);
    cr_expect_eq(reg_head_manifest(c, &ref, &h, NULL, &e), IM_ENOTFOUND, "%s", e.msg);

    /* tags, in the registry's (lexical) order */
    char d37[72];
    push_manifest(port, "library/python", "3.7", MT_DOCKER_V2, fx.ma_body, d37);
    struct reg_tags t = {0};
    rc = reg_list_tags(c, &ref, 0, &t, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_assert_eq(t.n, 2);
    cr_expect_str_eq(t.v[0], "3.7");
    cr_expect_str_eq(t.v[1], "3.7-slim");
    cr_expect_not(t.truncated);
    reg_tags_free(&t);
    cr_assert_eq(reg_ref_parse("nothere:1", &ref, &e), 0);
    rc = reg_list_tags(c, &ref, 0, &t, NULL, &e);
    cr_expect_eq(rc, IM_ENOTFOUND, "%d %s", rc, e.msg);
    reg_client_free(c);
}

Test(resolve_registry, oci_index_with_attestation, .init = init_curl,
     .fini = registry_stop, .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct im_error e = {{0}};
    char att[2048], attd[72], idx[4096], idxd[72], intoto[72], empty[72];
    int port = 0;
    registry_start(&port);
    push_fixture(port, "team/app", &fx);
    push_blob(port, "team/app", "{\"_type\":\"https://in-toto.io/Statement/v0.1\"}",
              intoto);
    push_blob(port, "team/app", "{}", empty);
    snprintf(
        att, sizeof att,
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{"
        "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
        "\"digest\":\"%s\"},\"layers\":[{\"mediaType\":\"application/vnd.in-toto+json\","
        "\"size\":%zu,\"digest\":\"%s\",\"annotations\":{\"in-toto.io/predicate-type\":"
        "\"https://spdx.dev/Document\"}}]}",
        empty, strlen("{\"_type\":\"https://in-toto.io/Statement/v0.1\"}"), intoto);
    digest_of(att, attd);
    push_manifest(port, "team/app", attd, MT_OCI_MANIFEST, att, attd);
    snprintf(idx, sizeof idx,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
             "{\"mediaType\":\"" MT_DOCKER_V2
             "\",\"size\":%zu,\"digest\":\"%s\",\"platform\":"
             "{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
             "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":%zu,\"digest\":\"%s\","
             "\"annotations\":{\"vnd.docker.reference.digest\":\"%s\","
             "\"vnd.docker.reference.type\":\"attestation-manifest\"},\"platform\":"
             "{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}",
             strlen(fx.ma_body), fx.ma, strlen(att), attd, fx.ma);
    digest_of(idx, idxd);
    push_manifest(port, "team/app", "v1", MT_OCI_INDEX, idx, idxd);

    struct reg_config cfg;
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "localhost:%d",
             port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    cfg.max_parallel = 1; /* also exercise the queue */
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    char route[200];
    snprintf(route, sizeof route, "localhost:%d/team/app/v1", port);
    cr_assert_eq(reg_ref_from_route(route, &ref, &e), 0, "%s", e.msg);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, idxd);
    cr_expect_str_eq(im_bundle_find_doc(&b, idxd)->media_type, MT_OCI_INDEX);
    cr_expect_str_eq(im_bundle_find_doc(&b, attd)->media_type, MT_OCI_MANIFEST);
    cr_expect_str_eq(im_bundle_find_doc(&b, empty)->media_type,
                     "application/vnd.oci.image.config.v1+json");
    cr_expect_eq(b.ndocs, 5, "index, image, attestation, 2 configs: %zu", b.ndocs);
    cr_expect_eq(b.nblobs, 3, "two image layers and the in-toto statement: %zu",
                 b.nblobs);
    im_bundle_free(&b);
    reg_client_free(c);
}

/* htpasswd -nbB robot s3cret-pw */
#define HTPASSWD "robot:$2y$05$92NH6vOjopdAvM3sAmGMEeqA2WQErSoH4ICwiWoEELgncsUZDHT0q\n"

static char htpasswd_path[64];

static void htpasswd_stop(void)
{
    registry_stop();
    if (htpasswd_path[0])
        unlink(htpasswd_path);
}

Test(resolve_registry, htpasswd_basic_auth, .init = init_curl, .fini = htpasswd_stop,
     .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    char yaml[256];
    int port = 0;
    snprintf(htpasswd_path, sizeof htpasswd_path, "/tmp/imgmeta-htpasswd-XXXXXX");
    int fd = mkstemp(htpasswd_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, HTPASSWD, strlen(HTPASSWD)), (ssize_t)strlen(HTPASSWD));
    close(fd);
    snprintf(yaml, sizeof yaml, "auth:\n  htpasswd:\n    realm: test\n    path: %s\n",
             htpasswd_path);
    registry_start_with(&port, yaml);
    http_userpwd = "robot:s3cret-pw";
    push_fixture(port, "library/python", &fx);
    http_userpwd = NULL;

    struct reg_config cfg;
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    /* no credentials: refused, and told why */
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_expect_eq(rc, IM_EUNAUTH, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "asks for Basic authentication") != NULL, "%s", e.msg);
    reg_client_free(c);
    /* Docker Hub's config.json key names docker.io, mirrored here */
    char path[] = "/tmp/imgmeta-dockercfg-XXXXXX";
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static const char json[] = "{\"auths\":{\"https://index.docker.io/v1/"
                               "\":{\"auth\":\"cm9ib3Q6czNjcmV0LXB3\"}}}";
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    cfg.docker_config_path = path;
    c = reg_client_new(&cfg, &e);
    unlink(path);
    cr_assert_not_null(c, "%s", e.msg);
    rc = reg_resolve(c, &ref, &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, fx.list);
    cr_expect_eq(b.ndocs, 5);
    cr_expect_eq(b.nblobs, 3);
    cr_expect_eq(st.manifest_gets, 4, "one 401, then list + 2 manifests");
    cr_expect_eq(st.token_gets, 0);
    im_bundle_free(&b);
    /* revalidation and tags with the same credentials, no 401 any more */
    struct reg_head h;
    memset(&st, 0, sizeof st);
    cr_assert_eq(reg_head_manifest(c, &ref, &h, &st, &e), 0, "%s", e.msg);
    cr_expect_str_eq(h.digest, fx.list);
    cr_expect_eq(st.requests, 1);
    struct reg_tags t = {0};
    cr_assert_eq(reg_list_tags(c, &ref, 0, &t, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(t.n, 1);
    reg_tags_free(&t);
    reg_client_free(c);
}
