/* registry_test.c - the registry's unit tests' HTTP server and mock registry
 * (registry_test.h). */
#include "registry_test.h"

struct mock M;

/* ------------------------------------------------- a tiny HTTP server --- */

int listen_loopback(int *port)
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

/* The body after the head (o bytes in head), up to its Content-Length. */
static void read_body(int cfd, const char *head, size_t o, struct req *rq)
{
    char clen[32] = "";
    header_copy(head, "Content-Length", clen, sizeof clen);
    size_t want = (size_t)strtoul(clen, NULL, 10);
    const char *start = strstr(head, "\r\n\r\n") + 4;
    size_t have = o - (size_t)(start - head);
    if (want >= sizeof rq->body)
        want = sizeof rq->body - 1;
    memcpy(rq->body, start, have < want ? have : want);
    while (have < want) {
        ssize_t r = recv(cfd, rq->body + have, want - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
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
    read_body(cfd, head, o, &rq);
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

void mini_start(struct mini *m, handler_fn h, void *ctx)
{
    memset(m, 0, sizeof *m);
    m->handler = h;
    m->ctx = ctx;
    pthread_mutex_init(&m->mu, NULL);
    m->fd = listen_loopback(&m->port);
    cr_assert_eq(pthread_create(&m->th, NULL, mini_main, m), 0);
}

void mini_stop(struct mini *m)
{
    m->stop = 1;
    pthread_join(m->th, NULL);
    close(m->fd);
    pthread_mutex_destroy(&m->mu);
}

int mini_count(struct mini *m, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->nreq && i < 256; i++)
        n += strncmp(m->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ------------------------------------------- a mock registry + CDN ------ */

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
        static char bad[300];
        snprintf(bad, sizeof bad, "%s ", k->config);
        put_body(rs, 200, "application/octet-stream",
                 k->mode == M_BAD_CONFIG ? bad : k->config);
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
        snprintf(k->token_method, sizeof k->token_method, "%s", rq->method);
        snprintf(k->token_body, sizeof k->token_body, "%s", rq->body);
        bool refresh = strcmp(rq->method, "POST") == 0 &&
                       strstr(rq->body, "grant_type=refresh_token") &&
                       strstr(rq->body, "refresh_token=" IDENTITY_TOKEN);
        if (k->mode == M_LOGIN && strcmp(rq->auth, BASIC_ROBOT) != 0 && !refresh) {
            put_body(rs, 401, "application/json", "{\"details\":\"incorrect login\"}");
            return;
        }
        put_body(rs, 200, "application/json",
                 strncmp(rq->path, "/token2", 7) == 0
                     ? "{\"token\":\"tok-2\",\"expires_in\":300}"
                 : refresh ? "{\"access_token\":\"tok-1\",\"expires_in\":300}"
                           : "{\"token\":\"tok-1\",\"expires_in\":300}");
        return;
    }
    if (strstr(rq->path, "/manifests/") &&
        (rq->naccept != 6 || !strstr(rq->accept, IM_MT_OCI_INDEX "|") ||
         !strstr(rq->accept, IM_MT_DOCKER_V1_SIGNED "|") ||
         !strstr(rq->accept, IM_MT_DOCKER_V1 "|") ||
         !strstr(rq->accept, IM_MT_OCI_MANIFEST "|") ||
         !strstr(rq->accept, IM_MT_DOCKER_LIST "|") ||
         !strstr(rq->accept, IM_MT_DOCKER_V2 "|")))
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
        put_body(rs, 200, IM_MT_DOCKER_V1_SIGNED, k->schema1);
        return;
    }
    char want512[200], want384[200], other512[200];
    snprintf(want, sizeof want, "/v2/team/app/manifests/%s", k->dindex);
    snprintf(want512, sizeof want512, "/v2/team/app/manifests/%s", k->dindex512);
    snprintf(want384, sizeof want384, "/v2/team/app/manifests/%s", k->dindex384);
    snprintf(other512, sizeof other512, "/v2/team/app/manifests/%s", k->dother512);
    if ((strcmp(rq->path, "/v2/team/app/manifests/v1") == 0 ||
         strcmp(rq->path, want) == 0 || strcmp(rq->path, want512) == 0 ||
         strcmp(rq->path, want384) == 0 || strcmp(rq->path, other512) == 0) &&
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

void digest_of(const char *s, char out[72])
{
    cr_assert_eq(im_sha256_digest(s, strlen(s), out), 0);
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
void make_schema1(struct mock *k)
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

void mock_start(enum mode mode)
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
    cr_assert_eq(im_digest_compute("sha384", k->index, strlen(k->index), k->dindex384,
                                   sizeof k->dindex384),
                 0);
    cr_assert_eq(
        im_digest_compute("sha512", "other", 5, k->dother512, sizeof k->dother512), 0);
    mini_start(&k->reg, reg_handler, k);
}

void mock_stop(void)
{
    mini_stop(&M.reg);
    mini_stop(&M.cdn);
}

void mock_config(struct reg_config *cfg)
{
    reg_config_defaults(cfg);
    snprintf(cfg->mirrors[0].registry, sizeof cfg->mirrors[0].registry, "127.0.0.1:%d",
             M.reg.port);
    snprintf(cfg->mirrors[0].base_url, sizeof cfg->mirrors[0].base_url,
             "http://127.0.0.1:%d", M.reg.port);
    cfg->n_mirrors = 1;
}

struct reg_client *mock_client_caps(long timeout_ms, size_t max_config,
                                    size_t max_manifest)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    mock_config(&cfg);
    cfg.request_timeout_ms = timeout_ms;
    if (max_config)
        cfg.max_config_bytes = max_config;
    if (max_manifest)
        cfg.max_manifest_bytes = max_manifest;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    return c;
}

struct reg_client *mock_client(long timeout_ms, size_t max_config)
{
    return mock_client_caps(timeout_ms, max_config, 0);
}

int mock_resolve(struct reg_client *c, const char *tag_or_digest, struct im_bundle *b,
                 struct reg_stats *st, struct im_error *e)
{
    char s[512];
    struct im_ref ref;
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app%s%s", M.reg.port,
             strncmp(tag_or_digest, "sha", 3) == 0 ? "@" : ":", tag_or_digest);
    cr_assert_eq(reg_ref_parse(s, &ref, e), 0, "%s", e->msg);
    return reg_resolve(c, &ref, b, st, e);
}

void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The registry's key in the client's caches, as reg_ref_parse gives it. */
void mock_registry(char *out, size_t n)
{
    snprintf(out, n, "127.0.0.1:%d", M.reg.port);
}

void mock_ref(const char *tag_or_digest, struct im_ref *ref)
{
    char s[512];
    struct im_error e = {{0}};
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app%s%s", M.reg.port,
             strncmp(tag_or_digest, "sha", 3) == 0 ? "@" : ":", tag_or_digest);
    cr_assert_eq(reg_ref_parse(s, ref, &e), 0, "%s", e.msg);
}
