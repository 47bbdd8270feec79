/* regfront.c - a Docker Hub-like front for a local registry, for tests.
 *
 *   regfront --listen 127.0.0.1:PORT --upstream http://127.0.0.1:RPORT
 *            [--lastmod lastmod.tsv] [--log requests.log] [--bearer] [--cdn-cache]
 *            [--direct-blobs] [--keep-digests]
 *            [--delay-ms N] [--fault-429 N] [--retry-after S|-]
 *            [--fault-corrupt] [--fault-only SUBSTR]
 *            [--schema1 /v2/NAME/manifests/TAG FILE DIGEST]
 *
 * PORT 0 lets the kernel choose; stderr says "regfront: listening on ADDR"
 * with the address bound, which is also <listen> below.
 *
 * Proxies every request (method, raw path and query, request headers including
 * repeated Accept lines, body) to the upstream registry and relays the status,
 * headers and body. Like Docker Hub:
 * - GET/HEAD /v2/<name>/blobs/<digest> answer 307 with Location
 *   http://<listen>/cdn/<name>/blobs/<digest>; /cdn/ is proxied to upstream
 *   /v2/<name>/blobs/<digest> and carries "Last-Modified: <date>" when the
 *   digest is in --lastmod (lines "DIGEST<TAB>HTTP-date").
 * - --bearer: /v2/ requests without "Authorization: Bearer <token>" get 401 with
 *   a WWW-Authenticate Bearer challenge whose realm is http://<listen>/token;
 *   GET /token answers {"token":"...","expires_in":300}. /cdn/ needs no token.
 * - --cdn-cache: the /cdn/ path behaves as a CDN edge does for immutable
 *   blobs: a 200 answer is kept (per method and path, at most RF_CDN_MAX
 *   entries, GET bodies up to RF_CDN_BODY_MAX) and later requests for it are
 *   answered without asking the registry (still logged and still delayed).
 * - --direct-blobs: blob GET/HEAD are answered in place, as a registry that
 *   serves its blobs itself does (no 307, no CDN hop), with the /cdn/ path's
 *   Last-Modified and --cdn-cache behaviour; they still need the token.
 * - --keep-digests: GET/HEAD of /v2/<name>/manifests/sha256:... (immutable:
 *   the digest names the bytes) are kept as --cdn-cache keeps blobs, so a
 *   manifest asked again is answered from memory (still logged, still
 *   delayed, still behind the token), as a registry that keeps its hot
 *   manifests in memory does; faults still apply, and a --fault-corrupt
 *   answer is never kept.
 * - --log FILE: one line "METHOD PATH?QUERY STATUS" per request, flushed.
 * - --delay-ms N: waits N ms before answering each request.
 * - Faults, for requests to /v2/<name>/manifests/ that got past the bearer
 *   check and whose path contains --fault-only SUBSTR (default: all):
 *   --fault-429 N: the first N answer 429 with "Retry-After: S" (--retry-after,
 *   default 1; "-" sends none); --fault-corrupt: GET bodies are relayed with
 *   one byte changed ("schemaVersion" -> "schemaVersioN"), Docker-Content-Digest
 *   unchanged - a digest mismatch for the client to catch.
 * - --schema1 PATH FILE DIGEST: GET/HEAD of PATH, or of the same manifests/
 *   path by DIGEST, answer FILE (a signed schema1 manifest, which
 *   docker-registry refuses to store) as
 *   application/vnd.docker.distribution.manifest.v1+prettyjws with
 *   Docker-Content-Digest: DIGEST (the test computes it from the payload).
 * Upstream Location headers that point at the upstream are rewritten to the
 * front. Writes nothing else; SIGTERM or SIGINT stops it cleanly (exit 0).
 *
 * Upstream connections are kept alive, as a real front keeps its backend
 * connections: a request borrows a curl handle (with the connections it holds
 * open) from a small locked pool and gives it back, so the registry behind
 * does not pay a TCP set-up per request (it costs docker-registry ~1.5 ms of
 * CPU each, which a benchmark on loopback would otherwise charge to the
 * client under test).
 *
 * Thread-safety: one thread per connection (libmicrohttpd); the configuration
 * is read-only after start, the log file and the handle pool have their own
 * locks, and a curl handle is used by one request at a time. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "im.h"
#include "listen.h"

#define RF_BODY_MAX (64u << 20) /* cap on request and upstream bodies */
#define RF_HEADERS_MAX 64       /* upstream response headers kept */
#define RF_URL_MAX 4096
#define RF_LASTMOD_MAX 4096 /* entries in --lastmod */
#define RF_POOL_MAX 128     /* idle upstream curl handles kept */
#define RF_CDN_MAX 8192     /* --cdn-cache entries */
#define RF_CDN_BODY_MAX (4u << 20)

struct rf_lastmod {
    char digest[IM_DIGEST_MAX];
    char date[64];
};

struct rf_conf {
    char listen[128];   /* host:port as given, for Location and realm */
    char upstream[512]; /* base URL without trailing slash */
    struct rf_lastmod *lastmod;
    size_t nlastmod;
    FILE *log;
    pthread_mutex_t loglock;
    bool bearer;
    long delay_ms;
    char token[64];
    /* faults */
    long fault_429;       /* 429s still to answer */
    char retry_after[32]; /* "" = no Retry-After header */
    bool fault_corrupt;
    const char *fault_only; /* path substring the faults apply to, or NULL */
    pthread_mutex_t faultlock;
    /* idle upstream handles (keep-alive connections) */
    pthread_mutex_t poollock;
    CURL *pool[RF_POOL_MAX];
    size_t npool;
    /* --cdn-cache */
    bool cdn_cache;
    bool direct_blobs; /* --direct-blobs */
    bool keep_digests; /* --keep-digests (shares the --cdn-cache store) */
    pthread_mutex_t cdnlock;
    struct rf_cdn *cdn;
    size_t ncdn;
    /* --schema1 */
    char s1_path[RF_URL_MAX], s1_dpath[RF_URL_MAX], s1_digest[IM_DIGEST_MAX];
    char *s1_body;
};

/* What the upstream answered. */
struct rf_up {
    long status;
    struct im_buf body;
    char *headers[RF_HEADERS_MAX];
    size_t nheaders;
    long long content_length; /* -1 when not sent */
};

/* One --cdn-cache entry: "METHOD /cdn/..." and the upstream's answer. */
struct rf_cdn {
    char *key;
    struct rf_up up;
};

/* Per-request state, created by the URI log callback, freed on completion. */
struct rf_req {
    char *uri; /* raw request target: path and query, still escaped */
    bool started;
    bool too_big;
    struct im_buf body;
};

static void up_free(struct rf_up *u)
{
    free(u->body.p);
    for (size_t i = 0; i < u->nheaders; i++)
        free(u->headers[i]);
}

static void log_request(struct rf_conf *conf, const char *method, const char *uri,
                        unsigned status)
{
    if (conf->log == NULL)
        return;
    pthread_mutex_lock(&conf->loglock);
    fprintf(conf->log, "%s %s %u\n", method, uri, status);
    fflush(conf->log);
    pthread_mutex_unlock(&conf->loglock);
}

static const char *lastmod_find(const struct rf_conf *conf, const char *digest)
{
    for (size_t i = 0; i < conf->nlastmod; i++) {
        if (strcmp(conf->lastmod[i].digest, digest) == 0)
            return conf->lastmod[i].date;
    }
    return NULL;
}

/* --- upstream ------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct rf_up *u = ud;
    return im_buf_append(&u->body, data, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct rf_up *u = ud;
    size_t len = size * n;

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response: start over */
        for (size_t i = 0; i < u->nheaders; i++)
            free(u->headers[i]);
        u->nheaders = 0;
        u->content_length = -1;
        return len;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0 || memchr(data, ':', len) == NULL)
        return size * n;
    if (u->nheaders == RF_HEADERS_MAX)
        return 0;
    char *h = malloc(len + 1);
    if (h == NULL)
        return 0;
    memcpy(h, data, len);
    h[len] = '\0';
    if (strncasecmp(h, "Content-Length:", 15) == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(h + 15, &end, 10);
        u->content_length = (errno == 0 && v >= 0) ? v : -1;
    }
    u->headers[u->nheaders++] = h;
    return size * n;
}

struct rf_hdrctx {
    struct curl_slist *list;
    bool drop_auth, has_accept, has_ctype, oom;
};

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    static const char *const hop[] = {
        "Host",   "Connection", "Keep-Alive", "Content-Length",      "Transfer-Encoding",
        "Expect", "TE",         "Upgrade",    "Proxy-Authorization", "Proxy-Connection"};
    struct rf_hdrctx *h = cls;
    char line[8192];
    (void)kind;

    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++) {
        if (strcasecmp(key, hop[i]) == 0)
            return MHD_YES;
    }
    if (h->drop_auth && strcasecmp(key, "Authorization") == 0)
        return MHD_YES;
    h->has_accept |= strcasecmp(key, "Accept") == 0;
    h->has_ctype |= strcasecmp(key, "Content-Type") == 0;
    int n = snprintf(line, sizeof line, "%s: %s", key, value ? value : "");
    if (n < 0 || (size_t)n >= sizeof line)
        return MHD_YES; /* absurdly long header: drop it */
    struct curl_slist *t = curl_slist_append(h->list, line);
    if (t == NULL) {
        h->oom = true;
        return MHD_NO;
    }
    h->list = t;
    return MHD_YES;
}

static struct curl_slist *request_headers(struct MHD_Connection *conn, bool drop_auth)
{
    struct rf_hdrctx h = {.drop_auth = drop_auth};
    struct curl_slist *t;

    MHD_get_connection_values(conn, MHD_HEADER_KIND, copy_header, &h);
    /* Keep curl from adding headers the client did not send. */
    if (!h.oom && (t = curl_slist_append(h.list, "Expect:")) != NULL)
        h.list = t;
    if (!h.oom && !h.has_accept && (t = curl_slist_append(h.list, "Accept:")) != NULL)
        h.list = t;
    if (!h.oom && !h.has_ctype &&
        (t = curl_slist_append(h.list, "Content-Type:")) != NULL)
        h.list = t;
    return h.list;
}

/* A handle from the pool (reset, its connections kept), or a new one. */
static CURL *pool_get(struct rf_conf *conf)
{
    CURL *c = NULL;
    pthread_mutex_lock(&conf->poollock);
    if (conf->npool > 0)
        c = conf->pool[--conf->npool];
    pthread_mutex_unlock(&conf->poollock);
    if (c == NULL)
        return curl_easy_init();
    curl_easy_reset(c);
    return c;
}

static void pool_put(struct rf_conf *conf, CURL *c)
{
    pthread_mutex_lock(&conf->poollock);
    if (conf->npool < RF_POOL_MAX) {
        conf->pool[conf->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&conf->poollock);
    curl_easy_cleanup(c);
}

/* Sends method + url to the upstream with the client's headers and body. */
static int upstream_do(struct rf_conf *conf, struct MHD_Connection *conn,
                       const char *method, const char *url, const struct im_buf *body,
                       bool drop_auth, struct rf_up *u, char *errbuf)
{
    CURL *c = pool_get(conf);
    struct curl_slist *hdrs = NULL;
    int rc = 0;

    u->content_length = -1;
    if (c == NULL)
        return IM_ENOMEM;
    hdrs = request_headers(conn, drop_auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, u);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body->len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->p ? body->p : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
        }
    }
    errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (errbuf[0] == '\0')
            im_strlcpy(errbuf, curl_easy_strerror(cc), CURL_ERROR_SIZE);
        rc = IM_EUPSTREAM;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &u->status);
    }
    curl_slist_free_all(hdrs);
    pool_put(conf, c);
    return rc;
}

/* --- responses -------------------------------------------------------------- */

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result answer_text(struct rf_conf *conf, struct MHD_Connection *conn,
                                   const char *method, const char *uri, unsigned status,
                                   const char *ctype, const char *text, const char *hname,
                                   const char *hvalue)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (ctype != NULL)
        MHD_add_response_header(r, "Content-Type", ctype);
    if (hname != NULL)
        MHD_add_response_header(r, hname, hvalue);
    MHD_add_response_header(r, "Docker-Distribution-Api-Version", "registry/2.0");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    log_request(conf, method, uri, status);
    return ret;
}

static bool relayed_header(const char *h)
{
    static const char *const skip[] = {
        "Connection:", "Keep-Alive:", "Transfer-Encoding:", "Content-Length:", "Date:"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (strncasecmp(h, skip[i], strlen(skip[i])) == 0)
            return false;
    }
    return true;
}

/* Adds "Name: value" to r, rewriting an upstream Location to the front. */
static void add_relayed(const struct rf_conf *conf, struct MHD_Response *r, const char *h)
{
    char name[256], loc[RF_URL_MAX];
    const char *colon = strchr(h, ':');
    size_t ul = strlen(conf->upstream);

    if (colon == NULL || (size_t)(colon - h) >= sizeof name)
        return;
    memcpy(name, h, (size_t)(colon - h));
    name[colon - h] = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(name, "Location") == 0 && strncmp(v, conf->upstream, ul) == 0) {
        int n = snprintf(loc, sizeof loc, "http://%s%s", conf->listen, v + ul);
        if (n > 0 && (size_t)n < sizeof loc)
            v = loc;
    }
    MHD_add_response_header(r, name, v);
}

/* --fault-corrupt: one byte of a manifest changed, its length kept. */
static void corrupt(struct rf_up *u)
{
    char *p = u->body.p ? strstr(u->body.p, "schemaVersion") : NULL;
    if (p != NULL)
        p[12] = 'N';
}

/* Answers what the upstream answered (u is not changed); lastmod, when not
 * NULL, is added as Last-Modified to a successful answer. */
static enum MHD_Result respond(struct rf_conf *conf, struct MHD_Connection *conn,
                               const char *method, const char *uri, const struct rf_up *u,
                               const char *lastmod)
{
    struct MHD_Response *r = NULL;
    if (strcmp(method, "HEAD") == 0)
        r = MHD_create_response_from_callback(
            u->content_length >= 0 ? (uint64_t)u->content_length : MHD_SIZE_UNKNOWN, 4096,
            no_body, NULL, NULL);
    else
        r = MHD_create_response_from_buffer(
            u->body.len, u->body.p ? u->body.p : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    for (size_t i = 0; i < u->nheaders; i++) {
        if (relayed_header(u->headers[i]))
            add_relayed(conf, r, u->headers[i]);
    }
    if (lastmod != NULL && u->status >= 200 && u->status < 300)
        MHD_add_response_header(r, "Last-Modified", lastmod);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)u->status, r);
    MHD_destroy_response(r);
    log_request(conf, method, uri, (unsigned)u->status);
    return ret;
}

/* --cdn-cache: a deep copy of u under key, when there is room. */
static void cdn_keep(struct rf_conf *conf, const char *key, const struct rf_up *u)
{
    struct rf_cdn e = {.key = strdup(key),
                       .up = {.status = u->status,
                              .content_length = u->content_length,
                              .body.max = RF_CDN_BODY_MAX}};
    bool ok = e.key != NULL && im_buf_append(&e.up.body, u->body.p, u->body.len) == 0;
    for (size_t i = 0; ok && i < u->nheaders; i++) {
        e.up.headers[i] = strdup(u->headers[i]);
        ok = e.up.headers[i] != NULL;
        e.up.nheaders = i + 1;
    }
    pthread_mutex_lock(&conf->cdnlock);
    if (ok && conf->ncdn < RF_CDN_MAX) {
        conf->cdn[conf->ncdn++] = e;
        e.key = NULL;
    }
    pthread_mutex_unlock(&conf->cdnlock);
    if (e.key != NULL) {
        free(e.key);
        up_free(&e.up);
    }
}

/* --cdn-cache: the kept answer for key, or NULL. Entries are never removed
 * while the front runs, so the pointer stays valid. */
static const struct rf_up *cdn_find(struct rf_conf *conf, const char *key)
{
    const struct rf_up *found = NULL;
    pthread_mutex_lock(&conf->cdnlock);
    for (size_t i = 0; found == NULL && i < conf->ncdn; i++)
        if (strcmp(conf->cdn[i].key, key) == 0)
            found = &conf->cdn[i].up;
    pthread_mutex_unlock(&conf->cdnlock);
    return found;
}

/* Proxies the request to upstream_path; lastmod, when not NULL, is added as
 * Last-Modified to a successful answer; spoil corrupts a successful GET; a
 * cache_key (--cdn-cache) keeps a 200 answer for later requests. */
static enum MHD_Result proxy(struct rf_conf *conf, struct MHD_Connection *conn,
                             struct rf_req *req, const char *method,
                             const char *upstream_path, const char *lastmod,
                             bool drop_auth, bool spoil, const char *cache_key)
{
    struct rf_up u = {.body.max = RF_BODY_MAX};
    char url[RF_URL_MAX], errbuf[CURL_ERROR_SIZE];
    enum MHD_Result ret;

    int n = snprintf(url, sizeof url, "%s%s", conf->upstream, upstream_path);
    if (n < 0 || (size_t)n >= sizeof url)
        return answer_text(conf, conn, method, req->uri, 414, "text/plain",
                           "URI too long\n", NULL, NULL);
    if (upstream_do(conf, conn, method, url, &req->body, drop_auth, &u, errbuf) != 0) {
        char msg[CURL_ERROR_SIZE + 32];
        snprintf(msg, sizeof msg, "upstream: %s\n", errbuf);
        up_free(&u);
        return answer_text(conf, conn, method, req->uri, 502, "text/plain", msg, NULL,
                           NULL);
    }
    if (spoil && u.status == 200 && strcmp(method, "GET") == 0)
        corrupt(&u);
    ret = respond(conf, conn, method, req->uri, &u, lastmod);
    if (cache_key != NULL && u.status == 200 && u.body.len <= RF_CDN_BODY_MAX)
        cdn_keep(conf, cache_key, &u);
    up_free(&u);
    return ret;
}

/* With keep (--cdn-cache, --keep-digests): the answer kept for "METHOD path",
 * else proxy's answer, kept when it is a 200. Without: proxy. */
static enum MHD_Result kept_or_proxy(struct rf_conf *conf, struct MHD_Connection *conn,
                                     struct rf_req *req, const char *method,
                                     const char *path, const char *upstream_path,
                                     const char *lastmod, bool drop_auth, bool spoil,
                                     bool keep)
{
    char key[RF_URL_MAX + 16];
    snprintf(key, sizeof key, "%s %s", method, path);
    const struct rf_up *kept = keep ? cdn_find(conf, key) : NULL;
    if (kept != NULL)
        return respond(conf, conn, method, req->uri, kept, lastmod);
    return proxy(conf, conn, req, method, upstream_path, lastmod, drop_auth, spoil,
                 keep ? key : NULL);
}

/* --- routing ------------------------------------------------------------ */

/* For /v2/<name>/(blobs|manifests|tags)/..., copies <name> into out. */
static bool repo_name(const char *path, char *out, size_t n)
{
    static const char *const kinds[] = {"/blobs/", "/manifests/", "/tags/"};
    const char *start = path + 4, *end = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *k = strstr(start, kinds[i]);
        if (k != NULL && (end == NULL || k < end))
            end = k;
    }
    if (end == NULL || end == start || (size_t)(end - start) >= n)
        return false;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return true;
}

static enum MHD_Result challenge(struct rf_conf *conf, struct MHD_Connection *conn,
                                 const char *method, struct rf_req *req, const char *path)
{
    char name[IM_REPOSITORY_MAX], h[1024];
    if (repo_name(path, name, sizeof name))
        snprintf(h, sizeof h,
                 "Bearer realm=\"http://%s/token\",service=\"regfront\","
                 "scope=\"repository:%s:pull\"",
                 conf->listen, name);
    else
        snprintf(h, sizeof h, "Bearer realm=\"http://%s/token\",service=\"regfront\"",
                 conf->listen);
    return answer_text(conf, conn, method, req->uri, 401, "application/json",
                       "{\"errors\":[{\"code\":\"UNAUTHORIZED\","
                       "\"message\":\"authentication required\",\"detail\":null}]}\n",
                       "WWW-Authenticate", h);
}

static bool authorized(const struct rf_conf *conf, struct MHD_Connection *conn)
{
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    return a != NULL && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, conf->token) == 0;
}

/* --fault-429: true while 429s remain to be answered (counts one down). */
static bool take_429(struct rf_conf *conf)
{
    bool yes = false;
    pthread_mutex_lock(&conf->faultlock);
    if (conf->fault_429 > 0) {
        conf->fault_429--;
        yes = true;
    }
    pthread_mutex_unlock(&conf->faultlock);
    return yes;
}

static bool is_schema1(const struct rf_conf *conf, const char *path)
{
    return conf->s1_body != NULL &&
           (strcmp(path, conf->s1_path) == 0 || strcmp(path, conf->s1_dpath) == 0);
}

/* A blob GET/HEAD answered in place: path is what the client asked (the cache
 * key), upstream_path the registry's /v2/<name>/blobs/<digest> for it. The
 * answer carries Last-Modified from --lastmod and, with --cdn-cache, is kept. */
static enum MHD_Result blob(struct rf_conf *conf, struct MHD_Connection *conn,
                            struct rf_req *req, const char *method, const char *path,
                            const char *upstream_path)
{
    const char *digest = strstr(path, "/blobs/") + 7;
    return kept_or_proxy(conf, conn, req, method, path, upstream_path,
                         lastmod_find(conf, digest), true, false, conf->cdn_cache);
}

static enum MHD_Result route(struct rf_conf *conf, struct MHD_Connection *conn,
                             const char *method, struct rf_req *req)
{
    char path[RF_URL_MAX], up[RF_URL_MAX + 8], name[IM_REPOSITORY_MAX];
    size_t plen = strcspn(req->uri, "?");
    bool getlike = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (plen >= sizeof path)
        return answer_text(conf, conn, method, req->uri, 414, "text/plain",
                           "URI too long\n", NULL, NULL);
    memcpy(path, req->uri, plen);
    path[plen] = '\0';
    if (strcmp(path, "/token") == 0) {
        char body[256];
        snprintf(body, sizeof body, "{\"token\":\"%s\",\"expires_in\":300}\n",
                 conf->token);
        return answer_text(conf, conn, method, req->uri, 200, "application/json", body,
                           NULL, NULL);
    }
    if (strncmp(path, "/cdn/", 5) == 0) {
        if (!getlike || strstr(path, "/blobs/") == NULL)
            return answer_text(conf, conn, method, req->uri, 404, "text/plain",
                               "not found\n", NULL, NULL);
        snprintf(up, sizeof up, "/v2/%s", req->uri + 5);
        return blob(conf, conn, req, method, path, up);
    }
    if (strncmp(path, "/v2/", 4) == 0 || strcmp(path, "/v2") == 0) {
        if (conf->bearer && !authorized(conf, conn))
            return challenge(conf, conn, method, req, path);
        if (getlike && is_schema1(conf, path))
            return answer_text(
                conf, conn, method, req->uri, 200,
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                conf->s1_body, "Docker-Content-Digest", conf->s1_digest);
        const char *b = strstr(path, "/blobs/");
        if (getlike && b != NULL && strncmp(b + 7, "uploads", 7) != 0 &&
            conf->direct_blobs)
            return blob(conf, conn, req, method, path, req->uri);
        if (getlike && b != NULL && strncmp(b + 7, "uploads", 7) != 0 &&
            repo_name(path, name, sizeof name)) {
            char loc[RF_URL_MAX + 200];
            snprintf(loc, sizeof loc, "http://%s/cdn/%s/blobs/%s", conf->listen, name,
                     b + 7);
            return answer_text(conf, conn, method, req->uri, 307, NULL, "", "Location",
                               loc);
        }
    }
    bool faulty = strncmp(path, "/v2/", 4) == 0 && strstr(path, "/manifests/") != NULL &&
                  (conf->fault_only == NULL || strstr(path, conf->fault_only) != NULL);
    if (faulty && take_429(conf))
        return answer_text(conf, conn, method, req->uri, 429, "application/json",
                           "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\","
                           "\"message\":\"slow down\"}]}\n",
                           conf->retry_after[0] ? "Retry-After" : NULL,
                           conf->retry_after);
    /* --keep-digests: a manifest by digest, kept after its first 200 */
    const char *m = strstr(path, "/manifests/");
    bool spoil = faulty && conf->fault_corrupt;
    bool keep = conf->keep_digests && getlike && !spoil && m != NULL &&
                strncmp(m + 11, "sha256:", 7) == 0;
    return kept_or_proxy(conf, conn, req, method, path, req->uri, NULL, conf->bearer,
                         spoil, keep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct rf_conf *conf = cls;
    struct rf_req *req = *con_cls;
    (void)url, (void)version;

    if (req == NULL)
        return MHD_NO;
    if (!req->started) {
        req->started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!req->too_big &&
            im_buf_append(&req->body, upload_data, *upload_data_size) != 0)
            req->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (conf->delay_ms > 0) {
        struct timespec ts = {conf->delay_ms / 1000, (conf->delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    if (req->too_big)
        return answer_text(conf, conn, method, req->uri, 413, "text/plain",
                           "request body too large\n", NULL, NULL);
    return route(conf, conn, method, req);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct rf_req *req = calloc(1, sizeof *req);
    (void)cls, (void)conn;
    if (req == NULL)
        return NULL;
    req->body.max = RF_BODY_MAX;
    req->uri = strdup(uri);
    if (req->uri == NULL) {
        free(req);
        return NULL;
    }
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rf_req *req = *con_cls;
    (void)cls, (void)conn, (void)toe;
    if (req == NULL)
        return;
    free(req->uri);
    free(req->body.p);
    free(req);
    *con_cls = NULL;
}

/* --- start-up ------------------------------------------------------------- */

static int load_lastmod(struct rf_conf *conf, const char *file)
{
    FILE *f = fopen(file, "r");
    char line[512];

    if (f == NULL) {
        fprintf(stderr, "regfront: cannot open %s\n", file);
        return -1;
    }
    conf->lastmod = calloc(RF_LASTMOD_MAX, sizeof *conf->lastmod);
    if (conf->lastmod == NULL) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab = strchr(line, '\t');
        line[strcspn(line, "\r\n")] = '\0';
        if (tab == NULL || conf->nlastmod == RF_LASTMOD_MAX)
            continue;
        *tab = '\0';
        struct rf_lastmod *e = &conf->lastmod[conf->nlastmod];
        if (im_strlcpy(e->digest, line, sizeof e->digest) == 0 &&
            im_strlcpy(e->date, tab + 1, sizeof e->date) == 0)
            conf->nlastmod++;
    }
    fclose(f);
    return 0;
}

/* --schema1 PATH FILE DIGEST */
static int load_schema1(struct rf_conf *conf, const char *path, const char *file,
                        const char *digest)
{
    FILE *f = fopen(file, "rb");
    const char *slash = strrchr(path, '/');
    if (f == NULL || slash == NULL)
        goto fail;
    conf->s1_body = calloc(1, RF_BODY_MAX / 64 + 1);
    if (conf->s1_body == NULL)
        goto fail;
    size_t n = fread(conf->s1_body, 1, RF_BODY_MAX / 64, f);
    fclose(f);
    f = NULL;
    if (n == 0 || im_strlcpy(conf->s1_path, path, sizeof conf->s1_path) != 0 ||
        im_strlcpy(conf->s1_digest, digest, sizeof conf->s1_digest) != 0 ||
        snprintf(conf->s1_dpath, sizeof conf->s1_dpath, "%.*s/%s", (int)(slash - path),
                 path, digest) >= (int)sizeof conf->s1_dpath)
        goto fail;
    return 0;
fail:
    if (f != NULL)
        fclose(f);
    fprintf(stderr, "regfront: cannot use --schema1 %s %s\n", path, file);
    return -1;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: regfront --listen HOST:PORT --upstream URL [--lastmod FILE]\n"
            "                [--log FILE] [--bearer] [--delay-ms N] [--cdn-cache]\n"
            "                [--direct-blobs] [--keep-digests]\n"
            "                [--fault-429 N] [--retry-after S|-] [--fault-corrupt]\n"
            "                [--fault-only SUBSTR] [--schema1 PATH FILE DIGEST]\n");
    return 2;
}

static int parse_args(int argc, char **argv, struct rf_conf *conf)
{
    const char *listen = NULL, *upstream = NULL, *lastmod = NULL, *log = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "--bearer") == 0) {
            conf->bearer = true;
            continue;
        }
        if (strcmp(a, "--fault-corrupt") == 0) {
            conf->fault_corrupt = true;
            continue;
        }
        if (strcmp(a, "--cdn-cache") == 0) {
            conf->cdn_cache = true;
            continue;
        }
        if (strcmp(a, "--direct-blobs") == 0) {
            conf->direct_blobs = true;
            continue;
        }
        if (strcmp(a, "--keep-digests") == 0) {
            conf->keep_digests = true;
            continue;
        }
        if (v == NULL)
            return -1;
        if (strcmp(a, "--schema1") == 0) {
            if (i + 3 >= argc || load_schema1(conf, v, argv[i + 2], argv[i + 3]) != 0)
                return -1;
            i += 3;
            continue;
        }
        i++;
        if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--upstream") == 0)
            upstream = v;
        else if (strcmp(a, "--lastmod") == 0)
            lastmod = v;
        else if (strcmp(a, "--log") == 0)
            log = v;
        else if (strcmp(a, "--delay-ms") == 0) {
            errno = 0;
            conf->delay_ms = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || conf->delay_ms < 0 ||
                conf->delay_ms > 600000)
                return -1;
        } else if (strcmp(a, "--fault-429") == 0) {
            errno = 0;
            conf->fault_429 = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || conf->fault_429 < 0)
                return -1;
        } else if (strcmp(a, "--retry-after") == 0) {
            if (im_strlcpy(conf->retry_after, strcmp(v, "-") == 0 ? "" : v,
                           sizeof conf->retry_after) != 0)
                return -1;
        } else if (strcmp(a, "--fault-only") == 0) {
            conf->fault_only = v;
        } else
            return -1;
    }
    if (listen == NULL || upstream == NULL ||
        im_strlcpy(conf->listen, listen, sizeof conf->listen) != 0 ||
        im_strlcpy(conf->upstream, upstream, sizeof conf->upstream) != 0)
        return -1;
    size_t ul = strlen(conf->upstream);
    while (ul > 0 && conf->upstream[ul - 1] == '/')
        conf->upstream[--ul] = '\0';
    if (lastmod != NULL && load_lastmod(conf, lastmod) != 0)
        return -1;
    if (log != NULL && (conf->log = fopen(log, "a")) == NULL) {
        fprintf(stderr, "regfront: cannot open %s\n", log);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct rf_conf conf = {.retry_after = "1"};
    struct MHD_Daemon *d = NULL;
    sigset_t set;
    int sig, rc = 1, fd = -1;

    if (parse_args(argc, argv, &conf) != 0) {
        rc = usage();
        goto out;
    }
    /* bound before any thread starts: conf.listen (the Location and realm
     * host) becomes the address bound, the kernel's port for :0 */
    if ((fd = tool_listen("regfront", conf.listen, conf.listen, sizeof conf.listen)) < 0)
        goto out;
    snprintf(conf.token, sizeof conf.token, "regfront-%lld-%ld", (long long)im_now(),
             (long)getpid());
    pthread_mutex_init(&conf.loglock, NULL);
    pthread_mutex_init(&conf.faultlock, NULL);
    pthread_mutex_init(&conf.poollock, NULL);
    pthread_mutex_init(&conf.cdnlock, NULL);
    if ((conf.cdn_cache || conf.keep_digests) &&
        (conf.cdn = calloc(RF_CDN_MAX, sizeof *conf.cdn)) == NULL)
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    /* Threads inherit this mask: signals are taken by sigwait below only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* No MHD_USE_ERROR_LOG: skopeo probes with TLS first and every probe would
     * print a "Request malformed" line. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                         0, NULL, NULL, on_request, &conf, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_URI_LOG_CALLBACK, on_uri, &conf,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &conf,
                         MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "regfront: cannot start the server on %s\n", conf.listen);
        close(fd);
        goto out_curl;
    }
    do {
        if (sigwait(&set, &sig) != 0)
            break;
    } while (sig == SIGPIPE);
    MHD_stop_daemon(d);
    rc = 0;
out_curl:
    for (size_t i = 0; i < conf.npool; i++)
        curl_easy_cleanup(conf.pool[i]);
    curl_global_cleanup();
    pthread_mutex_destroy(&conf.loglock);
    pthread_mutex_destroy(&conf.faultlock);
    pthread_mutex_destroy(&conf.poollock);
    pthread_mutex_destroy(&conf.cdnlock);
    for (size_t i = 0; i < conf.ncdn; i++) {
        free(conf.cdn[i].key);
        up_free(&conf.cdn[i].up);
    }
    free(conf.cdn);
out:
    if (conf.log != NULL)
        fclose(conf.log);
    free(conf.lastmod);
    free(conf.s1_body);
    return rc;
}
