/* faultreg.c - a tiny misbehaving registry for fault-injection tests.
 *
 *   faultreg --listen 127.0.0.1:PORT [--redirect-target URL] [--realm URL]
 *
 * PORT 0 lets the kernel choose; stderr says "faultreg: listening on ADDR".
 *
 * Serves one small single-platform image (docker schema2 manifest, config
 * blob, one layer answered to HEAD) per repository library/<mode>, where
 * <mode> picks how it misbehaves (each image is distinct: its config names
 * the mode, so nothing one mode serves is shared with another by digest):
 *   ok          behaves
 *   reset       manifest: headers, half the body, then a TCP reset
 *   truncated   manifest: half the body, then a clean close (Content-Length lies)
 *   stall       manifest: half the body, then nothing (until stopped, 120 s)
 *   slowhead    manifest: no answer at all (until stopped, 120 s)
 *   badjson     manifest: invalid JSON
 *   digest      config blob: bytes that do not match its digest
 *   dcd         manifest: a Docker-Content-Digest that does not match
 *   giant       manifest: Content-Length of 256 MiB (zeros)
 *   giantchunk  manifest: endless chunked body (zeros, stops at 256 MiB)
 *   loop        manifest: 307 to itself, forever
 *   429 / 429ra manifest: 429, without / with Retry-After: 1
 *   503 / 503ra manifest: 503, without / with Retry-After: 1
 *   redirect    manifest: 307 to --redirect-target (SSRF tests)
 *   realm       manifest: 401 Bearer with realm --realm (SSRF tests)
 *   nasty       behaves, but a history line holds a Markdown fence, a heading,
 *               newlines, backticks, HTML and an impossible date
 *   negsize     behaves, but the manifest gives the layer a negative size
 * Control (not part of any registry API):
 *   GET /_ctl/heal?mode=M    mode M behaves from now on ("ok")
 *   GET /_ctl/break?mode=M&as=F  mode M misbehaves as F from now on (its own
 *                            image, F's fault: stale-serving tests)
 *   GET /_ctl/digest?mode=M  the digest of M's manifest (text)
 *   GET /_ctl/count          requests seen so far (text)
 * SIGTERM or SIGINT stops it (exit 0).
 *
 * Thread-safety: one thread per connection (libmicrohttpd); the healed set
 * is locked; everything else is read-only after start. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "im.h"
#include "listen.h"
#include "sha256.h"

#define FR_GIANT (256u << 20)
#define FR_STALL_MS 120000
#define FR_MAX_HEALED 64

#define MT_V2 "application/vnd.docker.distribution.manifest.v2+json"

struct fr_conf {
    char listen[128]; /* --listen, then the address bound (listen.h) */
    char redirect_target[512];
    char realm[512];
    pthread_mutex_t mu;
    char healed[FR_MAX_HEALED][64]; /* mode */
    char as[FR_MAX_HEALED][64];     /* behaves as ("ok" when healed) */
    size_t nhealed;
    atomic_ulong count;
};

static atomic_bool stopping;

/* The image of one mode: config and manifest bytes and their digests. */
struct fr_image {
    char config[1024];
    size_t config_len;
    char config_digest[72];
    char layer_digest[72];
    char manifest[1024];
    size_t manifest_len;
    char manifest_digest[72];
};

/* The extra history entry of mode "nasty": Markdown and shell
 * metacharacters, a fence, a heading, newlines, tabs, an RTL override and an
 * impossible date. */
#define NASTY_HISTORY                                                                    \
    ",{\"created\":\"9999-99-99T99:99:99Z\",\"created_by\":\"/bin/sh -c echo '```' && "  \
    "printf '\\n```\\n## Injected heading\\n' # \\u202e `rm -rf /` "                     \
    "<script>x</script>\\t|a|b|"                                                         \
    "\",\"empty_layer\":true}"

/* The sha256 digest of data into out, or the end of this process: a registry
 * that cannot hash (no memory) has nothing true to answer. */
static void digest_of(const void *data, size_t len, char out[72])
{
    int rc = im_sha256_digest(data, len, out);
    if (rc != 0) {
        fprintf(stderr, "faultreg: cannot hash: %s\n", im_strerror(rc));
        exit(1);
    }
}

static void make_image(const char *mode, struct fr_image *im)
{
    char layer[96];
    int n = snprintf(layer, sizeof layer, "layer-of-%s", mode);
    digest_of(layer, (size_t)n, im->layer_digest);
    n = snprintf(
        im->config, sizeof im->config,
        "{\"architecture\":\"amd64\",\"os\":\"linux\","
        "\"config\":{\"Cmd\":[\"/bin/sh\"]},\"created\":\"2020-01-02T03:04:05Z\","
        "\"docker_version\":\"20.10.0\",\"history\":[{\"created\":"
        "\"2020-01-02T03:04:05Z\",\"created_by\":\"/bin/sh -c #(nop) ADD "
        "file:%s in / \"}%s],\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
        mode, strcmp(mode, "nasty") == 0 ? NASTY_HISTORY : "", im->layer_digest);
    im->config_len = (size_t)n;
    digest_of(im->config, im->config_len, im->config_digest);
    n = snprintf(im->manifest, sizeof im->manifest,
                 "{\"schemaVersion\":2,\"mediaType\":\"" MT_V2 "\",\"config\":{"
                 "\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
                 "\"size\":%zu,\"digest\":\"%s\"},\"layers\":[{\"mediaType\":"
                 "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":%s,"
                 "\"digest\":\"%s\"}]}",
                 im->config_len, im->config_digest,
                 strcmp(mode, "negsize") == 0 ? "-1234" : "1234", im->layer_digest);
    im->manifest_len = (size_t)n;
    digest_of(im->manifest, im->manifest_len, im->manifest_digest);
}

/* How mode behaves now: its override when there is one, else itself;
 * copied into out (size 64). */
static void behaviour(struct fr_conf *c, const char *mode, char *out)
{
    im_strlcpy(out, mode, 64);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nhealed; i++)
        if (strcmp(c->healed[i], mode) == 0)
            im_strlcpy(out, c->as[i], 64); /* the latest override wins */
    pthread_mutex_unlock(&c->mu);
}

static void override(struct fr_conf *c, const char *mode, const char *as)
{
    pthread_mutex_lock(&c->mu);
    if (c->nhealed < FR_MAX_HEALED) {
        im_strlcpy(c->healed[c->nhealed], mode, sizeof c->healed[0]);
        im_strlcpy(c->as[c->nhealed++], as, sizeof c->as[0]);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Sleeps up to ms, returning early when the server stops. */
static void nap(long ms)
{
    for (long t = 0; t < ms && !atomic_load(&stopping); t += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- streamed bodies for the partial modes ---- */

enum fr_stream { FR_RESET, FR_TRUNCATED, FR_STALL, FR_ZEROS };

struct fr_body {
    enum fr_stream kind;
    struct MHD_Connection *conn;
    char data[1024];
    size_t len;  /* bytes of data that exist */
    size_t half; /* bytes sent before misbehaving */
};

static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fr_body *b = cls;
    if (b->kind == FR_ZEROS) {
        if (pos >= FR_GIANT || atomic_load(&stopping))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        size_t n = max < 65536 ? max : 65536;
        memset(buf, 0, n);
        return (ssize_t)n;
    }
    if (pos < b->half) {
        size_t n = b->half - (size_t)pos;
        n = n < max ? n : max;
        memcpy(buf, b->data + pos, n);
        return (ssize_t)n;
    }
    if (b->kind == FR_STALL)
        nap(FR_STALL_MS);
    if (b->kind == FR_RESET) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(b->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct linger lg = {1, 0}; /* close() then sends RST */
        if (ci)
            setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result queue_stream(struct MHD_Connection *conn, enum fr_stream kind,
                                    const struct fr_image *im, uint64_t size)
{
    struct fr_body *b = calloc(1, sizeof *b);
    if (!b)
        return MHD_NO;
    b->kind = kind;
    b->conn = conn;
    memcpy(b->data, im->manifest, im->manifest_len);
    b->len = im->manifest_len;
    b->half = im->manifest_len / 2;
    struct MHD_Response *r =
        MHD_create_response_from_callback(size, 64 * 1024, body_reader, b, free);
    if (!r) {
        free(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, MT_V2);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- plain answers ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ct,
                             const void *body, size_t len, const char *h1, const char *v1)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (ct)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    if (h1)
        MHD_add_response_header(r, h1, v1);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result not_found(struct MHD_Connection *conn)
{
    static const char msg[] = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\","
                              "\"message\":\"manifest unknown\"}]}";
    return reply(conn, 404, "application/json", msg, sizeof msg - 1, NULL, NULL);
}

static enum MHD_Result control(struct fr_conf *c, struct MHD_Connection *conn,
                               const char *url)
{
    char text[128];
    const char *mode = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "mode");
    struct fr_image im;
    if (strcmp(url, "/_ctl/count") == 0) {
        int n = snprintf(text, sizeof text, "%lu\n", atomic_load(&c->count));
        return reply(conn, 200, "text/plain", text, (size_t)n, NULL, NULL);
    }
    if (!mode || strlen(mode) >= 64)
        return reply(conn, 400, "text/plain", "mode?\n", 6, NULL, NULL);
    if (strcmp(url, "/_ctl/heal") == 0) {
        override(c, mode, "ok");
        return reply(conn, 200, "text/plain", "healed\n", 7, NULL, NULL);
    }
    const char *as = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "as");
    if (strcmp(url, "/_ctl/break") == 0 && as && strlen(as) < 64) {
        override(c, mode, as);
        return reply(conn, 200, "text/plain", "broken\n", 7, NULL, NULL);
    }
    if (strcmp(url, "/_ctl/digest") == 0) {
        make_image(mode, &im);
        int n = snprintf(text, sizeof text, "%s\n", im.manifest_digest);
        return reply(conn, 200, "text/plain", text, (size_t)n, NULL, NULL);
    }
    return not_found(conn);
}

/* The manifest of mode (by tag or by its digest), misbehaving as asked. */
static enum MHD_Result manifest(struct fr_conf *c, struct MHD_Connection *conn,
                                const char *mode, const char *url,
                                const struct fr_image *im)
{
    char buf[1200];
    if (strcmp(mode, "reset") == 0)
        return queue_stream(conn, FR_RESET, im, im->manifest_len);
    if (strcmp(mode, "truncated") == 0)
        return queue_stream(conn, FR_TRUNCATED, im, im->manifest_len);
    if (strcmp(mode, "stall") == 0)
        return queue_stream(conn, FR_STALL, im, im->manifest_len);
    if (strcmp(mode, "giant") == 0)
        return queue_stream(conn, FR_ZEROS, im, FR_GIANT);
    if (strcmp(mode, "giantchunk") == 0)
        return queue_stream(conn, FR_ZEROS, im, MHD_SIZE_UNKNOWN);
    if (strcmp(mode, "slowhead") == 0) {
        nap(FR_STALL_MS);
        return MHD_NO;
    }
    if (strcmp(mode, "badjson") == 0)
        return reply(conn, 200, MT_V2, "{\"schemaVersion\": 2, \"config\": {", 32, NULL,
                     NULL);
    if (strcmp(mode, "loop") == 0)
        return reply(conn, 307, "text/plain", "", 0, "Location", url);
    if (strcmp(mode, "429") == 0 || strcmp(mode, "503") == 0)
        return reply(conn, mode[0] == '4' ? 429 : 503, "application/json", "{}", 2, NULL,
                     NULL);
    if (strcmp(mode, "429ra") == 0 || strcmp(mode, "503ra") == 0)
        return reply(conn, mode[0] == '4' ? 429 : 503, "application/json", "{}", 2,
                     "Retry-After", "1");
    if (strcmp(mode, "redirect") == 0) {
        snprintf(buf, sizeof buf, "%s%s", c->redirect_target, url);
        return reply(conn, 307, "text/plain", "", 0, "Location", buf);
    }
    if (strcmp(mode, "realm") == 0) {
        snprintf(buf, sizeof buf, "Bearer realm=\"%s\",service=\"faultreg\"", c->realm);
        return reply(conn, 401, "application/json", "{}", 2, "WWW-Authenticate", buf);
    }
    if (strcmp(mode, "dcd") == 0)
        return reply(conn, 200, MT_V2, im->manifest, im->manifest_len,
                     "Docker-Content-Digest", im->config_digest);
    return reply(conn, 200, MT_V2, im->manifest, im->manifest_len,
                 "Docker-Content-Digest", im->manifest_digest);
}

static enum MHD_Result blob(struct MHD_Connection *conn, const char *mode,
                            const char *digest, const struct fr_image *im)
{
    static const char zeros[1234];
    if (strcmp(digest, im->config_digest) == 0) {
        char bad[1024];
        memcpy(bad, im->config, im->config_len);
        if (strcmp(mode, "digest") == 0)
            bad[im->config_len - 2] ^= 1; /* one flipped bit, same length */
        return reply(conn, 200, "application/octet-stream", bad, im->config_len, NULL,
                     NULL);
    }
    if (strcmp(digest, im->layer_digest) == 0)
        return reply(conn, 200, "application/octet-stream", zeros, sizeof zeros,
                     "Last-Modified", "Thu, 02 Jan 2020 03:04:05 GMT");
    return not_found(conn);
}

/* /v2/library/<mode>/(manifests|blobs)/<ref> */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
    struct fr_conf *c = cls;
    char mode[64], kind[16], ref[160];
    struct fr_image im;
    (void)version;
    (void)upload;
    (void)upload_size;
    if (!*req_cls) {
        *req_cls = (void *)1;
        atomic_fetch_add(&c->count, 1);
        return MHD_YES;
    }
    if (strncmp(url, "/_ctl/", 6) == 0)
        return control(c, conn, url);
    if (strcmp(url, "/v2/") == 0)
        return reply(conn, 200, "application/json", "{}", 2, NULL, NULL);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", "", 0, NULL, NULL);
    if (sscanf(url, "/v2/library/%63[^/]/%15[^/]/%159s", mode, kind, ref) != 3)
        return not_found(conn);
    char eff[64];
    make_image(mode, &im);
    behaviour(c, mode, eff);
    if (strcmp(kind, "manifests") == 0)
        return manifest(c, conn, eff, url, &im);
    if (strcmp(kind, "blobs") == 0)
        return blob(conn, eff, ref, &im);
    return not_found(conn);
}

/* The --listen address (c->listen) and the other options; -1 on a usage error. */
static int parse_args(int argc, char **argv, struct fr_conf *c)
{
    const char *listen = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--redirect-target") == 0)
            im_strlcpy(c->redirect_target, argv[i + 1], sizeof c->redirect_target);
        else if (strcmp(argv[i], "--realm") == 0)
            im_strlcpy(c->realm, argv[i + 1], sizeof c->realm);
        else
            return -1;
    }
    if (!listen || argc % 2 == 0)
        return -1;
    return im_strlcpy(c->listen, listen, sizeof c->listen) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct fr_conf conf;
    sigset_t set;
    int sig = 0;
    if (parse_args(argc, argv, &conf) != 0) {
        fprintf(stderr, "usage: faultreg --listen 127.0.0.1:PORT [--redirect-target URL] "
                        "[--realm URL]\n");
        return 2;
    }
    int fd = tool_listen("faultreg", conf.listen, conf.listen, sizeof conf.listen);
    if (fd < 0)
        return 1;
    pthread_mutex_init(&conf.mu, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                         0, NULL, NULL, on_request, &conf, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_CONNECTION_TIMEOUT, 180u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "faultreg: cannot start the server on %s\n", conf.listen);
        close(fd);
        return 1;
    }
    do {
        if (sigwait(&set, &sig) != 0)
            break;
    } while (sig == SIGPIPE);
    atomic_store(&stopping, true);
    MHD_stop_daemon(d);
    pthread_mutex_destroy(&conf.mu);
    return 0;
}
