/* registry_test.h - what the registry's unit tests (tests/unit/test_registry*.c)
 * share: a tiny HTTP server on loopback, and on it a mock registry, token
 * server and CDN that each test starts in a mode (registry_test.c). Criterion
 * runs each test in a process of its own, which has one mock, M. The
 * headers the tests use come with it. */
#ifndef IMGMETA_REGISTRY_TEST_H
#define IMGMETA_REGISTRY_TEST_H

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
#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"
#include "registry.h"
#include "registry_int.h"
#include "sha256.h"

#define MT_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define BASIC_ROBOT "Basic cm9ib3Q6czNjcmV0" /* robot:s3cret */
#define IDENTITY_TOKEN "idtok-robot"         /* M_LOGIN's token endpoint takes it too */
#define D256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct req {
    char method[8];
    char path[2048];
    char auth[2048]; /* Authorization value, "" if absent */
    int naccept;     /* Accept header lines */
    char accept[1024];
    char body[1024]; /* the request's body (Content-Length bytes), cut to fit */
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
    atomic_int stop; /* set by mini_stop, read by the server thread */
    handler_fn handler;
    void *ctx;
    pthread_mutex_t mu;
    int nreq;
    char log[256][160]; /* "METHOD path auth=yes|no" */
};

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
    M_LOGIN,        /* the token endpoint wants Basic robot:s3cret, or a POST with
                       the refresh token IDENTITY_TOKEN */
    M_FOREIGN,      /* the image has foreign layers (urls on the CDN, refused, none) */
    M_SCHEMA1,      /* v1 is a signed schema1 manifest */
    M_FOREIGN_LINK, /* tags/list pagination points at another host */
    M_REALM2,       /* the realm moved: /token2 gives tok-2, the only one accepted */
    M_BAD_CONFIG    /* the config blob's bytes are not those its digest names */
};

struct mock {
    enum mode mode;
    struct mini reg, cdn;
    char config[256], manifest[8192], attest[8192], index[32768];
    char dconfig[72], dmanifest[72], dattest[72], dindex[72], dlayer1[72], dlayer2[72];
    char dforeign[3][72];
    char token_query[2048];
    char token_auth[2048]; /* Authorization of the last token request */
    char token_method[8];  /* its method, and its body (a POST's form) */
    char token_body[1024];
    int bad_accept; /* manifest requests without the four Accept lines */
    char dindex512[IM_DIGEST_MAX], dindex384[IM_DIGEST_MAX];
    char dother512[IM_DIGEST_MAX];    /* a sha512 digest of other bytes: the index
                                         is answered under it too */
    char schema1[8192], dschema1[72]; /* signed body; digest of its payload */
    /* faults: the next fail_n authorised manifest requests answer fail_status
     * with fail_headers (e.g. Retry-After); -1 = every one */
    int fail_n, fail_status;
    char fail_headers[256];
    char extra_headers[256]; /* added to every manifest answer */
    int ping_delay_ms;       /* before answering GET /v2/ (a start-up probe) */
    bool ping_redirect;      /* GET /v2/ answers 307 to a link-local address */
};

/* The mock of the running test (Criterion forks per test). */
extern struct mock M;

int listen_loopback(int *port);
void mini_start(struct mini *m, handler_fn h, void *ctx);
void mini_stop(struct mini *m);
int mini_count(struct mini *m, const char *prefix);
void digest_of(const char *s, char out[72]);
/* A signed schema1 manifest the way libtrust lays it out: the pretty
 * payload without its closing "\n}", the signatures, then the tail. Layer
 * one repeats (an empty layer), as in real schema1 manifests. */
void make_schema1(struct mock *k);
void mock_start(enum mode mode);
void mock_stop(void);
/* reg_config_defaults, with the mock registry as the mirror of
 * 127.0.0.1:<its port> (a client of it, once built). */
void mock_config(struct reg_config *cfg);
struct reg_client *mock_client_caps(long timeout_ms, size_t max_config,
                                    size_t max_manifest);
struct reg_client *mock_client(long timeout_ms, size_t max_config);
int mock_resolve(struct reg_client *c, const char *tag_or_digest, struct im_bundle *b,
                 struct reg_stats *st, struct im_error *e);
void init_curl(void);
/* The registry's key in the client's caches, as reg_ref_parse gives it. */
void mock_registry(char *out, size_t n);
void mock_ref(const char *tag_or_digest, struct im_ref *ref);

#endif
