/* registry_int.h - internals shared by the files of registry/ (and its unit
 * tests and fuzz target). Not part of the module's public contract. */
#ifndef REGISTRY_INT_H
#define REGISTRY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <sys/socket.h>

#include "im.h"
#include "manifest.h"
#include "registry.h"

/* A parsed WWW-Authenticate challenge. Values longer than their buffer make
 * the parse fail (IM_EPROTO) rather than being truncated. */
struct reg__challenge {
    char scheme[16]; /* "Bearer", "Basic" (as sent) */
    char realm[1024];
    char service[256];
    char scope[1024]; /* may list several scopes separated by spaces */
    char error[64];   /* e.g. "invalid_token", "insufficient_scope" */
};

/* Parses one challenge `Scheme k=v, k="quoted, \"v\""...`. Unknown parameters
 * are ignored. 0, or IM_EPROTO with err set. Pure. */
int reg__parse_challenge(const char *hdr, struct reg__challenge *out,
                         struct im_error *err);

/* ---- outbound security policy (policy.c; SECURITY.md) ---- */

/* The URL hook: every URL the client is about to request (base URLs, token
 * realms, pagination) passes through here: http(s) only, parseable, no
 * credentials, no spaces or control characters. Where a URL may *connect* to
 * is the guard's job (below). 0 or IM_EPOLICY. */
int reg__check_url(const char *url, struct im_error *err);

/* Whether cfg sends registry's traffic to a mirror. */
bool reg__policy_mirrored(const struct reg_config *cfg, const char *registry);
/* Whether a reference may name registry (mirrored, insecure or on the
 * allowlist). */
bool reg__policy_allowed(const struct reg_config *cfg, const char *registry);
/* The registry gate, called with the base URL just built for registry (size
 * n): IM_EPOLICY with a message saying how to allow it when the registry is
 * not allowed; an insecure registry's "https://" becomes "http://"; then
 * reg__check_url. 0, IM_EPOLICY or IM_EINVAL. */
int reg__policy_registry(const struct reg_config *cfg, const char *registry, char *url,
                         size_t n, struct im_error *err);

/* What an address is, for the connection guard. */
enum reg__addr_class {
    REG__ADDR_PUBLIC = 0,
    REG__ADDR_LOOPBACK,    /* 127/8, ::1 */
    REG__ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    REG__ADDR_LINKLOCAL,   /* 169.254/16 (cloud metadata), fe80::/10 */
    REG__ADDR_CGNAT,       /* 100.64/10 */
    REG__ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    REG__ADDR_UNSPECIFIED, /* 0.0.0.0, :: */
    REG__ADDR_BROADCAST,   /* 255.255.255.255 */
    REG__ADDR_RESERVED,    /* 0/8, 240/4, TEST-NETs, 198.18/15, 2001:db8::/32, ... */
    REG__ADDR_UNKNOWN      /* not IPv4 or IPv6 */
};
/* IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * addresses are classified by the IPv4 address they carry. Pure. */
enum reg__addr_class reg__addr_classify(const struct sockaddr *sa);
/* The same for a printable address; -1 when ip is not one. */
int reg__addr_classify_text(const char *ip);
const char *reg__addr_class_name(enum reg__addr_class c);

/* The connection guard of one easy handle (lives in its struct reg__xfer). */
struct reg__guard {
    CURL *easy;
    bool allow_private;
    bool trusted;               /* host below is the mirror/insecure registry's */
    char host[IM_REGISTRY_MAX]; /* as curl's URL parser gives it */
    long port;                  /* its port (for messages) */
    bool refused;               /* the guard refused a connection of this transfer */
    char why[400];              /* the reason, for IM_EPOLICY */
};
/* Installs the guard on easy (CURLOPT_OPENSOCKETFUNCTION and
 * CURLOPT_PREREQFUNCTION): every connection the handle opens, to whatever
 * URL and redirect hop, must go to a public address over https, except to
 * the host of base (any port) when registry is mirrored or insecure, or when
 * cfg->allow_private. g must stay
 * where it is until the handle is cleaned up. registry/base may be NULL. 0 or
 * IM_EINTERNAL. After a failed transfer, g->refused tells whether the guard
 * caused it (then answer IM_EPOLICY with g->why). */
int reg__guard_install(struct reg__guard *g, const struct reg_config *cfg,
                       const char *registry, const char *base, CURL *easy);

/* ---- token cache (auth.c): per registry + scope, with expiry; locked. ---- */
struct reg__tokens;
struct reg__tokens *reg__tokens_new(void);
void reg__tokens_free(struct reg__tokens *t);
/* Copies a live token for (registry, scope) into out (size n); 0 when found,
 * -1 when absent, expired or too long for out. */
int reg__tokens_get(struct reg__tokens *t, const char *registry, const char *scope,
                    char *out, size_t n);
/* Stores token with an absolute expiry (Unix seconds). IM_ENOMEM. */
int reg__tokens_put(struct reg__tokens *t, const char *registry, const char *scope,
                    const char *token, int64_t expires_at);
/* The cache key under which a registry that asked for Basic auth is
 * remembered (a scope never starts with a space). */
#define REG__BASIC_SCOPE " basic"
/* Remembers (for an hour) that registry asked for Basic auth: 0, IM_ENOMEM. */
int reg__basic_note(struct reg__tokens *t, const char *registry);
/* Whether registry asked for Basic auth within that hour. */
bool reg__basic_asked(struct reg__tokens *t, const char *registry);
/* Forgets the token for (registry, scope), e.g. after "invalid_token". */
void reg__tokens_drop(struct reg__tokens *t, const char *registry, const char *scope);

/* ---- token realms (auth.c): per registry, bounded (LRU), locked. ----
 * A registry's Bearer realm and service, learnt from its last challenge (or
 * known in advance: Docker Hub's), so that a session without a cached token
 * asks the realm first instead of being sent there by a 401. */
struct reg__realms;
struct reg__realms *reg__realms_new(void);
void reg__realms_free(struct reg__realms *t);
/* Fills out (scheme "Bearer", realm, service; no scope) for registry: 0, or
 * -1 when none is remembered. */
int reg__realms_get(struct reg__realms *t, const char *registry,
                    struct reg__challenge *out);
/* Remembers (replaces) registry's realm and service; values too long for a
 * challenge, or an empty realm, are not remembered. */
void reg__realms_put(struct reg__realms *t, const char *registry, const char *realm,
                     const char *service);
/* Forgets registry's realm (its token endpoint failed us). */
void reg__realms_drop(struct reg__realms *t, const char *registry);
/* Registries being learnt by a start-up probe (reg_prewarm): a session that
 * knows no realm for its registry waits for the probe instead of sending its
 * own first request to meet the 401. */
#define REG__PENDING_MAX (REG_MAX_MIRRORS + 1) /* docker.io and each mirror */
/* Marks registry as being learnt; false when the table is full. */
bool reg__realms_pending(struct reg__realms *t, const char *registry);
/* Unmarks registry (what the probe learnt is in place) and wakes the waiters. */
void reg__realms_settle(struct reg__realms *t, const char *registry);
/* Waits until registry is not being learnt, at most timeout_ms; true when it
 * was being learnt (whether or not it settled in time). */
bool reg__realms_wait(struct reg__realms *t, const char *registry, long timeout_ms);
/* Docker Hub's token realm, remembered from the start when docker.io is not
 * mirrored (a mirror has its own). */
#define REG__HUB_REALM "https://auth.docker.io/token"
#define REG__HUB_SERVICE "registry.docker.io"

/* Parses a token endpoint answer ({"token"|"access_token", "expires_in"}) into
 * a malloc'ed token (caller frees) and its lifetime in seconds (default 60).
 * IM_EPROTO when there is no token, IM_ENOMEM. */
int reg__parse_token_response(const char *body, size_t len, char **token,
                              long *expires_in, struct im_error *err);

/* ---- schema1 (schema1.c) ---- */

/* For a signed schema1 manifest (a JWS with "signatures"), the payload its
 * digest is computed over, malloc'ed in *payload (caller frees). For any
 * other body (including unsigned schema1 and invalid JSON) 0 with *payload
 * NULL: the body itself is what is hashed. IM_EPROTO when the signatures'
 * protected headers are unusable or disagree; IM_ENOMEM. Pure. */
int reg__schema1_payload(const unsigned char *body, size_t len, unsigned char **payload,
                         size_t *plen, struct im_error *err);

/* ---- credentials (creds.c) ---- */

/* One registry's credentials, as the client keeps them. */
struct reg__cred {
    char registry[IM_REGISTRY_MAX]; /* normalised: "docker.io", "localhost:5000" */
    char *username;                 /* malloc'ed */
    char *password;                 /* malloc'ed, wiped on free */
    bool identity; /* username is "<token>": password is an identity token */
};
/* The username a credential helper gives for an identity (refresh) token. */
#define REG__IDENTITY_USER "<token>"
#define REG__HELPER_NAME_MAX 64 /* a helper's name, without "docker-credential-" */

/* A registry whose credentials a helper holds (config.json credHelpers). */
struct reg__helper_map {
    char registry[IM_REGISTRY_MAX]; /* normalised */
    char name[REG__HELPER_NAME_MAX];
};

struct reg__creds {
    struct reg__cred *v;
    size_t n, cap;
    size_t n_explicit; /* v[0..n_explicit) came from reg_config.credentials */
    struct reg__helper_map *helpers; /* credHelpers */
    size_t nh, caph;
    char store[REG__HELPER_NAME_MAX]; /* credsStore, "" = none */
};

/* The registry a config.json "auths" key names, normalised like
 * reg_ref_parse's registry: "https://index.docker.io/v1/" -> "docker.io",
 * "http://Localhost:5000/v2/" -> "localhost:5000". -1 when it does not fit. */
int reg__cred_key(const char *key, char *out, size_t n);
/* Decodes standard base64 (padding optional, no whitespace) into out (size
 * n, NUL-terminated). Length decoded, or -1 when invalid or too long. */
long reg__base64_decode(const char *in, char *out, size_t n);
/* Parses a Docker config.json and appends its credentials to c (entries for
 * a registry c already has are skipped: the first wins). Pure. 0, IM_EINVAL
 * with err naming the key (never a secret), IM_ENOMEM. */
int reg__parse_docker_config(const char *json, size_t len, struct reg__creds *c,
                             struct im_error *err);
/* Appends one credential (copied) unless c already has registry. */
int reg__creds_add(struct reg__creds *c, const char *registry, const char *user,
                   const char *pass);
/* Borrowed: the credentials for a (normalised) registry, or NULL. */
const struct reg__cred *reg__creds_find(const struct reg__creds *c, const char *registry);
/* Wipes and frees everything; c is empty afterwards. */
void reg__creds_free(struct reg__creds *c);
/* Sets k's username and password to malloc'ed copies (identity when user is
 * "<token>"); k's registry is left alone. 0, or IM_ENOMEM with k empty. */
int reg__cred_set(struct reg__cred *k, const char *user, const char *pass);
/* Wipes and frees one credential's strings (zeroed; NULL ones accepted). */
void reg__cred_wipe(struct reg__cred *k);
/* Overwrites n bytes of s with zeros, in a way the compiler keeps. */
void reg__wipe(char *s, size_t n);
/* The helper that holds registry's credentials: credHelpers' entry, else
 * credsStore; NULL when neither names one. Borrowed. */
const char *reg__creds_helper(const struct reg__creds *c, const char *registry);
/* Fills c from cfg->credentials then cfg->docker_config_path (read with a
 * 1 MiB cap). 0, IM_EINVAL, IM_ENOMEM. */
int reg__creds_load(struct reg__creds *c, const struct reg_config *cfg,
                    struct im_error *err);

/* ---- credential helpers (helper.c) ---- */

#define REG__HELPER_OUT_MAX (64 * 1024) /* bytes of a helper's stdout */
#define REG__HELPER_ERR_MAX 4096        /* bytes of its stderr kept */
#define REG__HELPER_SECRET_MAX 16384    /* a Secret longer than this is refused */

/* Whether name may follow "docker-credential-": 1 to 63 of [A-Za-z0-9._-],
 * not starting with '.' or '-'. Pure. */
bool reg__helper_name_valid(const char *name);
/* What a helper is asked for registry: Docker Hub's "https://index.docker.io/v1/",
 * else the registry itself. 0, or -1 when it does not fit in out (size n). */
int reg__helper_server_url(const char *registry, char *out, size_t n);
/* Parses a helper's answer ({"ServerURL","Username","Secret"}) into out's
 * username and password (malloc'ed; identity set for "<token>"). Pure.
 * 0; IM_EUPSTREAM naming helper name (never quoting the answer); IM_ENOMEM. */
int reg__helper_parse(const char *name, const char *json, size_t len,
                      struct reg__cred *out, struct im_error *err);
/* Runs `docker-credential-<name> get` with server_url on its stdin, at most
 * timeout_ms (then it and its process group are killed), and parses its
 * answer into out. 0; IM_ENOTFOUND when it says it has no credentials;
 * IM_ETIMEOUT; IM_EUPSTREAM when it cannot be run, fails, prints over
 * REG__HELPER_OUT_MAX bytes or answers wrongly (messages name it);
 * IM_EINVAL for an invalid name; IM_ENOMEM. Thread-safe. */
int reg__helper_run(const char *name, const char *server_url, long timeout_ms,
                    struct reg__cred *out, struct im_error *err);

/* The answers of helpers, per registry, for ttl_s seconds (failures are not
 * kept; 0 = nothing kept). Thread-safe (one mutex). */
struct reg__helpers;
struct reg__helpers *reg__helpers_new(long ttl_s, long timeout_ms) IM_WUR;
void reg__helpers_free(struct reg__helpers *h);
/* registry's credentials from helper name, remembered or asked for: 0 with
 * out filled (the caller wipes it: reg__cred_wipe), or out->username NULL
 * when the helper has none; the errors of reg__helper_run. */
int reg__helpers_get(struct reg__helpers *h, const char *name, const char *registry,
                     struct reg__cred *out, struct im_error *err);

/* ---- the client handle (client.c) ---- */

#define REG__POOL_MAX 8 /* idle multi handles kept for connection reuse */

struct reg_client {
    struct reg_config cfg; /* cfg.user_agent points at user_agent */
    char *user_agent;
    struct reg__tokens *tokens;
    struct reg__realms *realms;
    CURLSH *share; /* DNS cache and TLS sessions, locked by share_mu */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    int nmu; /* share_mu entries initialised */
    pthread_mutex_t pool_mu;
    bool pool_mu_ok;
    CURLM *pool[REG__POOL_MAX];
    size_t npool;
    struct reg__creds creds;      /* read-only after reg_client_new */
    struct reg__helpers *helpers; /* credential helpers' answers (helper.c) */
    struct reg__prewarm *prewarm; /* start-up probes (prewarm.c), or NULL */
};

CURLM *reg__pool_get(struct reg_client *c);
void reg__pool_put(struct reg_client *c, CURLM *m);

/* Stops the start-up probes still running, waits for their thread and frees
 * p (NULL accepted). prewarm.c; called by reg_client_free first. */
void reg__prewarm_free(struct reg__prewarm *p);

/* ---- requests (transfer.c) and sessions (fetch.c) ---- */

/* MANIFEST: GET of a manifest; MANIFEST_HEAD: HEAD of one (revalidation);
 * CONFIG: GET of a config blob; LAYER: HEAD of a layer blob; TAGS: GET of a
 * tags/list page whose full URL the caller puts in url; FOREIGN: HEAD of the
 * first of a foreign layer's urls (in url; sent without credentials; its
 * failure is optional); PING: GET /v2/, the API version check (a start-up
 * probe; sent without credentials: the challenge is what it is for); TOKEN:
 * GET of a bearer token from a realm (the full URL in url; sent with the
 * registry's credentials as Basic when it has some, as `docker login` does).
 * What each is, on the wire, is one table (transfer.c: kinds). */
enum reg__kind {
    REG__MANIFEST,
    REG__MANIFEST_HEAD,
    REG__CONFIG,
    REG__LAYER,
    REG__TAGS,
    REG__FOREIGN,
    REG__PING,
    REG__TOKEN
};

/* One upstream request of a resolution: what is wanted (filled by the caller
 * before reg__run) and what came back (filled by reg__run). */
struct reg__xfer {
    /* wanted */
    enum reg__kind kind;
    char ref[IM_DIGEST_MAX]; /* tag or digest in the URL */
    bool by_digest;
    bool is_root;
    char desc_mt[IM_MEDIATYPE_MAX]; /* media type from the parent descriptor */
    int64_t desc_size;              /* size from the parent descriptor, -1 */
    int depth;                      /* index levels above this manifest (resolve.c) */
    /* answer */
    long status;
    struct im_buf body; /* the answer's bytes (GETs), at most body.max: the kind's cap */
    char content_type[IM_MEDIATYPE_MAX]; /* final answer, parameters stripped */
    char dcd[IM_DIGEST_MAX];             /* Docker-Content-Digest, "" if absent */
    int64_t clen;                        /* Content-Length of the final answer, -1 */
    int64_t filetime;                    /* Last-Modified in Unix seconds, -1 */
    /* transfer state (transfer.c, fetch.c) */
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    char url[2048];
    bool toobig, attached, auth_retried;
    bool nomem;     /* the body's buffer could not grow (on_body): IM_ENOMEM */
    bool failed;    /* an optional kind's failure (reg__xfer_optional), recorded */
    unsigned gen;   /* s->bearer_gen when x was (re)started */
    char www[2048]; /* first WWW-Authenticate of the final answer */
    struct reg__guard guard;     /* outbound policy of this transfer (policy.c) */
    char link[2048];             /* Link of the final answer (tags/list pagination), "" */
    char retry_after[64];        /* Retry-After of the final answer, "" */
    long rl_limit, rl_remaining; /* ratelimit-* headers, -1 absent or empty */
    bool rl_seen;                /* either ratelimit header came */
    /* retries (retry.c) */
    int attempts;     /* retries done so far */
    bool waiting;     /* detached, to be restarted at retry_at */
    int64_t retry_at; /* im_monotonic_ms() */
};

/* One resolution's upstream session: where to go and the credentials. */
struct reg__session {
    struct reg_client *c;
    const char *registry;   /* "docker.io" */
    const char *repository; /* "library/python" */
    char base[600];         /* "https://registry-1.docker.io", no trailing '/' */
    char scope[IM_REPOSITORY_MAX + 32]; /* "repository:library/python:pull" */
    char *bearer;                       /* malloc'ed token or NULL */
    const struct reg__cred *cred;       /* this registry's credentials, or NULL */
    struct reg__cred helper_cred;       /* a helper's answer (cred points here) */
    bool basic;                         /* send cred as Basic auth (bearer unused) */
    unsigned bearer_gen;                /* bumped whenever bearer changes */
    CURLM *multi;
    struct reg_stats st;
};

/* Sets up a new easy handle for x, the one setup of every request, token
 * GETs included: the URL (built for its kind, or x->url checked), the
 * options every request gets (NOSIGNAL, the error buffer, timeouts,
 * protocols, redirect bound, user agent, share, the body and header
 * callbacks), the policy guard, and what its kind wants (method, body cap,
 * redirects, credentials, Accept). Whatever x held is released first and its
 * answer fields reset. 0 or a project error (x may hold a handle to release
 * then). */
int reg__xfer_setup(struct reg__session *s, struct reg__xfer *x, struct im_error *err);
/* reg__xfer_setup, then adds x to s->multi (counted: reg__xfer_count). */
int reg__xfer_start(struct reg__session *s, struct reg__xfer *x, struct im_error *err);
/* Counts one request of x's kind in s->st (requests and its kind's counter). */
void reg__xfer_count(struct reg__session *s, const struct reg__xfer *x);
/* Whether a failure of x's kind is recorded (x->failed) instead of failing
 * the run. */
bool reg__xfer_optional(const struct reg__xfer *x);
/* Whether x's kind carries the session's credentials, so that a 401 calls
 * for the handshake (a host that gets none has no say). */
bool reg__xfer_challenged(const struct reg__xfer *x);
/* Frees x's handle, headers and body (detach it from a multi first); x may
 * be set up again. */
void reg__xfer_release(struct reg__xfer *x);
/* "manifest docker.io/library/python:3.7", "config blob sha256:... in
 * docker.io/library/python": x named in messages (buf of size n). */
void reg__xfer_describe(const struct reg__session *s, const struct reg__xfer *x,
                        char *buf, size_t n);
/* Metrics for x, which ended with cres: its status and time, and the
 * registry's rate limit if the answer told it. */
void reg__xfer_observe(struct reg__session *s, const struct reg__xfer *x, CURLcode cres);

/* ---- retries (retry.c) ---- */

/* Whether a request that ended so (cres, else the answer's status) is worth
 * another attempt: a connection that failed or broke, 429, 5xx but 501/505. */
bool reg__retryable(CURLcode cres, long status);
/* Seconds a Retry-After value asks for (delta-seconds or an HTTP date),
 * capped at a day; -1 when absent or unreadable. */
long reg__retry_after(const char *v);
/* Milliseconds to wait before the next attempt (attempts made so far; ra_s
 * the Retry-After seconds or -1), or -1 when there must be none. salt makes
 * the jitter differ between concurrent requests. */
int64_t reg__retry_delay(const struct reg_config *cfg, const void *salt, int attempts,
                         long ra_s);
/* Schedules x of a run to be sent again (x->waiting, x->retry_at; counted in
 * s->st.retries); false when it must not be. */
bool reg__retry_schedule(struct reg__session *s, struct reg__xfer *x, long ra_s);

/* ---- the session and its runs (fetch.c) ---- */

/* Opens a session for ref's registry and repository: base URL (through the
 * URL policy), a cached bearer token when there is one (else one fetched
 * from the registry's remembered realm: reg__token_prefetch), a pooled multi
 * handle. Close with reg__session_close (also after a failed open). */
int reg__session_open(struct reg__session *s, struct reg_client *c,
                      const struct im_ref *ref, struct im_error *err);
/* Adds the session's counters to stats (may be NULL) and releases it. */
void reg__session_close(struct reg__session *s, struct reg_stats *stats);

/* The transfers of one run (reg__run): pointers, because curl holds each
 * transfer's address until it ends, so x may grow (realloc) during the run
 * while the transfers stay put. */
struct reg__run {
    struct reg__xfer **x;
    size_t n;
    /* Called with each transfer that ended 2xx (or failed, if optional), in
     * the order they end; may append to x and n, and what it appends is
     * started at once. Non-zero (a project error) stops the run. May be NULL. */
    int (*done)(void *cls, struct reg__xfer *x, struct im_error *err);
    void *cls;
};

/* Runs run's transfers on s->multi, at most cfg.max_parallel at once, doing
 * the bearer handshake on 401 and mapping failures to project errors, until
 * every one (including those done() queued) has ended. Returns 0 when every
 * transfer ended 2xx; on the first failure the others are stopped and the
 * error returned. Release each xfer with reg__xfer_release. */
int reg__run(struct reg__session *s, struct reg__run *run, struct im_error *err);
/* reg__run of the one transfer x. */
int reg__run_one(struct reg__session *s, struct reg__xfer *x, struct im_error *err);

/* ---- the handshake (handshake.c) ---- */

/* x was answered 401: authenticates s as x's challenge asks (Basic: s's
 * credentials from now on; Bearer: a token for the challenge's scope, from
 * the cache or its realm) and restarts x, once. 1 when restarted; a project
 * error (IM_EUNAUTH when refused again, with no challenge, no credentials
 * for Basic, or an unsupported scheme) otherwise. */
int reg__on_unauthorized(struct reg__session *s, struct reg__xfer *x,
                         struct im_error *err);
/* For a session without a token or Basic credentials in use, on a registry
 * whose realm is remembered (or being learnt by a start-up probe: waited
 * for, at most a request timeout): fetches a token for s->scope from that
 * realm now (one attempt, no retries), saving the 401 round trip. Any failure is
 * forgotten (and so is the realm): the transfers then meet the 401 and the
 * challenge flow takes over, with its own errors. */
void reg__token_prefetch(struct reg__session *s);

/* ref.c: the tag grammar of reg_ref_parse: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
bool reg__tag_valid(const char *tag);

/* upstream.c: the base URL for a registry: a configured mirror, Docker Hub's API host, or
 * https://<registry>. 0, IM_EINVAL (too long) or IM_EPOLICY. */
int reg__base_url(const struct reg_config *cfg, const char *registry, char *out, size_t n,
                  struct im_error *err);

#endif
