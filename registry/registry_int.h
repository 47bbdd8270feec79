/* registry_int.h - internals shared by the files of registry/ (and its unit
 * tests and fuzz target). Not part of the module's public contract. */
#ifndef REGISTRY_INT_H
#define REGISTRY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "im.h"
#include "registry.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

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

/* The outbound URL policy hook: every URL the client is about to request
 * (base URLs, token realms, redirects are limited by curl's protocol list)
 * passes through here. Today it only enforces http/https; the allowlist and
 * SSRF checks (issue: security) belong here. 0 or IM_EPOLICY. */
int reg__check_url(const char *url, struct im_error *err);

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
/* Forgets the token for (registry, scope), e.g. after "invalid_token". */
void reg__tokens_drop(struct reg__tokens *t, const char *registry, const char *scope);

/* Parses a token endpoint answer ({"token"|"access_token", "expires_in"}) into
 * a malloc'ed token (caller frees) and its lifetime in seconds (default 60).
 * IM_EPROTO when there is no token, IM_ENOMEM. */
int reg__parse_token_response(const char *body, size_t len, char **token,
                              long *expires_in, struct im_error *err);

/* ---- the client handle (client.c) ---- */

#define REG__POOL_MAX 8 /* idle multi handles kept for connection reuse */

struct reg_client {
    struct reg_config cfg; /* cfg.user_agent points at user_agent */
    char *user_agent;
    struct reg__tokens *tokens;
    CURLSH *share; /* DNS cache and TLS sessions, locked by share_mu */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    int nmu; /* share_mu entries initialised */
    pthread_mutex_t pool_mu;
    bool pool_mu_ok;
    CURLM *pool[REG__POOL_MAX];
    size_t npool;
};

CURLM *reg__pool_get(struct reg_client *c);
void reg__pool_put(struct reg_client *c, CURLM *m);

/* ---- transfers (fetch.c) ---- */

enum reg__kind { REG__MANIFEST, REG__CONFIG, REG__LAYER };

/* One upstream request of a resolution: what is wanted (filled by the caller
 * before reg__run_stage) and what came back (filled by reg__run_stage). */
struct reg__xfer {
    /* wanted */
    enum reg__kind kind;
    char ref[IM_DIGEST_MAX]; /* tag or digest in the URL */
    bool by_digest;
    bool is_root;
    char desc_mt[IM_MEDIATYPE_MAX]; /* media type from the parent descriptor */
    int64_t desc_size;              /* size from the parent descriptor, -1 */
    /* answer */
    long status;
    unsigned char *body; /* malloc'ed, len bytes (GETs) */
    size_t len;
    char content_type[IM_MEDIATYPE_MAX]; /* final answer, parameters stripped */
    char dcd[IM_DIGEST_MAX];             /* Docker-Content-Digest, "" if absent */
    int64_t clen;                        /* Content-Length of the final answer, -1 */
    int64_t filetime;                    /* Last-Modified in Unix seconds, -1 */
    /* transfer state (private to fetch.c) */
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    char url[2048];
    size_t alloc, limit;
    bool toobig, attached, auth_retried;
    unsigned gen;   /* s->bearer_gen when x was (re)started */
    char www[2048]; /* first WWW-Authenticate of the final answer */
};

/* One resolution's upstream session: where to go and the credentials. */
struct reg__session {
    struct reg_client *c;
    const char *registry;   /* "docker.io" */
    const char *repository; /* "library/python" */
    char base[600];         /* "https://registry-1.docker.io", no trailing '/' */
    char scope[IM_REPOSITORY_MAX + 32]; /* "repository:library/python:pull" */
    char *bearer;                       /* malloc'ed token or NULL */
    unsigned bearer_gen;                /* bumped whenever bearer changes */
    CURLM *multi;
    struct reg_stats st;
};

/* Base URL for a registry: a configured mirror, Docker Hub's API host, or
 * https://<registry>. 0, IM_EINVAL (too long) or IM_EPOLICY. */
int reg__base_url(const struct reg_config *cfg, const char *registry, char *out, size_t n,
                  struct im_error *err);

/* Runs n transfers on s->multi, at most cfg.max_parallel at once, doing the
 * bearer handshake on 401 and mapping failures to project errors. Returns 0
 * when every transfer ended 2xx; on the first failure the others are stopped
 * and the error returned. Release each xfer with reg__xfer_release. */
int reg__run_stage(struct reg__session *s, struct reg__xfer *x, size_t n,
                   struct im_error *err);
void reg__xfer_release(struct reg__xfer *x);

#endif
