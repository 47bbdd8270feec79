/* registry.h - the distribution/OCI registry client and the reference grammar.
 *
 * Thread-safety: reg_ref_* are pure and reentrant. A struct reg_client is
 * shared by all server threads: reg_resolve may be called concurrently; the
 * token cache, the remembered token realms, the DNS/TLS share, the pool
 * of multi handles and the start-up probes (reg_prewarm, a thread of their
 * own) lock inside this module. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "im.h"

/* ---- references (pure) ---- */

/* Parses a reference as `docker pull` takes it: "python:3.7-slim",
 * "ghcr.io/org/app@sha256:...", "localhost:5000/team/app". Grammar (Docker's
 * distribution/reference): [host "/"] component ("/" component)* [":" tag]
 * ["@" digest]. The first component is a host when it is "localhost" or
 * contains '.' or ':' (host names are lowercased; "index.docker.io" and
 * "registry-1.docker.io" become "docker.io"); otherwise the registry is
 * docker.io and a one-component repository gets "library/". Components are
 * lowercase [a-z0-9]+ joined by '.', '_', '__' or runs of '-'; the name as
 * written is at most 255 characters; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
 * a digest is sha256/sha384/sha512 with 64/96/128 lowercase hex digits.
 * "name:tag@digest" keeps both. A missing tag becomes "latest" unless a
 * digest is given. On success *out is filled; IM_EINVAL with err saying
 * precisely what is wrong (*out untouched). */
int reg_ref_parse(const char *s, struct im_ref *out, struct im_error *err) IM_WUR;
/* The registry part of a reference, normalised as reg_ref_parse does it:
 * host[:port] that looks like a host (has a '.' or ':', or is localhost),
 * lowercased, with index.docker.io and registry-1.docker.io named docker.io.
 * Writes it to out (n bytes); IM_EINVAL with err when it is no registry host. */
int reg_registry_name(const char *host, size_t len, char *out, size_t n,
                      struct im_error *err) IM_WUR;
/* Whether s (len bytes) looks like a registry host rather than a repository
 * component: it has a '.' or a ':', or is "localhost". */
bool reg_looks_like_host(const char *s, size_t len);
/* Checks a digest string "algo:hex" (sha256/384/512, exact lowercase hex
 * length). */
bool reg_digest_valid(const char *digest);

/* ---- client ---- */

struct reg_mirror {
    char registry[IM_REGISTRY_MAX]; /* "docker.io" */
    char base_url[512];             /* "http://127.0.0.1:5000" */
};

#define REG_MAX_MIRRORS 16
#define REG_MAX_CREDENTIALS 16

/* Credentials for one registry (reg_config.credentials). */
struct reg_credential {
    char registry[IM_REGISTRY_MAX]; /* "docker.io", "ghcr.io", "localhost:5000" */
    char username[256];
    char password[1024]; /* a password or an access token */
};
#define REG_MAX_POLICY 32 /* entries in reg_config's allowlist and insecure lists */

struct reg_config {
    struct reg_mirror mirrors[REG_MAX_MIRRORS];
    size_t n_mirrors;
    long connect_timeout_ms;   /* default 5000 */
    long request_timeout_ms;   /* per request, default 30000 */
    size_t max_manifest_bytes; /* default 4 MiB */
    size_t max_config_bytes;   /* default 8 MiB */
    long max_redirects;        /* default 5 */
    int max_parallel;          /* concurrent transfers per resolution, default 64 */
    const char *user_agent;    /* default "imgmeta/VERSION" */
    /* Retries: a request that failed to connect (or lost its connection),
     * or was answered 5xx (not 501/505) or 429, is sent again up to
     * max_retries more times after a backoff of retry_base_ms * 2^attempt
     * (capped at retry_max_ms) with jitter (half of it random), or after
     * the answer's Retry-After (seconds or an HTTP date) when longer. A
     * Retry-After above retry_max_ms is not waited for: the call fails at
     * once (IM_ERATELIMIT for a 429, with reg_stats.retry_after set). 401,
     * 404, timeouts and caps are never retried. */
    int max_retries;    /* default 2; 0..10 */
    long retry_base_ms; /* default 200; > 0 */
    long retry_max_ms;  /* default 5000; >= retry_base_ms */
    /* Credentials, used only for the registry they name (or the mirror that
     * stands in for it, which gets them instead): sent as Basic auth
     * when the registry answers `WWW-Authenticate: Basic`, and with the
     * token request when it answers `Bearer` (that is how Docker Hub logins
     * work). Never sent to a redirect target, never logged nor put in an
     * error message. credentials[] wins over docker_config_path, which names
     * a Docker config.json read once by reg_client_new: `auths.<key>.auth`
     * (base64 "user:password") or `auths.<key>.username`/`password`, where
     * <key> is a registry host, a URL of one, or Docker Hub's
     * "https://index.docker.io/v1/". Its credential helpers are run as
     * Docker runs them (registry/helper.c): `credHelpers.<key>` for that
     * registry, else `credsStore` for any, before `auths`: `docker-credential-
     * <name> get` with the server URL on stdin, killed after
     * helper_timeout_ms; what it answers is kept helper_ttl_s seconds (0 =
     * asked every time; a failure is not kept); a helper with none for the
     * registry leaves `auths` (or no credentials). A "<token>" username
     * means the secret is an identity token, sent as an OAuth2 refresh
     * token to the token realm (POST) and never as Basic; an `auths`
     * entry's own "identitytoken" is not used. NULL = none. */
    struct reg_credential credentials[REG_MAX_CREDENTIALS];
    size_t n_credentials;
    const char *docker_config_path;
    long helper_timeout_ms; /* default 5000; > 0 */
    long helper_ttl_s;      /* default 300; >= 0 */
    /* Outbound security policy (registry/policy.c, SECURITY.md); set with
     * reg_config_policy. allowlist: registries a reference may name
     * ("host[:port]", "*.suffix", "*"); empty = the built-in public list.
     * insecure: registries spoken to over plain http that may resolve to
     * non-public addresses. allow_private: no address or scheme check at all:
     * any registry, realm or redirect may connect to loopback, private or
     * link-local addresses over http (closed networks and tests). */
    char allowlist[REG_MAX_POLICY][IM_REGISTRY_MAX];
    size_t n_allowlist;
    char insecure[REG_MAX_POLICY][IM_REGISTRY_MAX];
    size_t n_insecure;
    bool allow_private;
};

/* Fills c with the defaults above (no mirrors). */
void reg_config_defaults(struct reg_config *c);

/* Sets c's policy fields from comma-separated lists: allow (NULL or "" =
 * the built-in list; the entry "default" stands for that list, so
 * "default,registry.example.com" adds one) and insecure (NULL = none).
 * Mirrored registries are always allowed. 0, or IM_EINVAL with err. */
int reg_config_policy(struct reg_config *c, const char *allow, const char *insecure,
                      bool allow_private, struct im_error *err) IM_WUR;

/* Counters a call adds to (for logs and metrics). requests counts every
 * request sent upstream, including token GETs, the retry after a 401, each
 * retry after a failure and each redirect followed; the others count
 * requests by kind. Zero-initialise before the first call. */
struct reg_stats {
    unsigned requests; /* HTTP requests sent upstream, incl. token GETs */
    unsigned manifest_gets;
    unsigned manifest_heads; /* reg_head_manifest */
    unsigned blob_gets;
    unsigned blob_heads;
    unsigned token_gets;
    unsigned tag_list_gets; /* pages of reg_list_tags */
    unsigned retries;       /* requests repeated after 5xx, 429 or a connection error */
    unsigned known; /* documents and layers the caller's cache answered (reg_known) */
    /* Set (not added to) when a call fails with IM_ERATELIMIT: the seconds the
     * registry asked us to wait (Retry-After, capped at 3600), or 0 when it
     * did not say. Left alone otherwise. */
    int retry_after;
};

struct reg_client;

/* Copies cfg (user_agent is duplicated; mirrors are matched by registry name,
 * case-insensitively; credentials are copied and docker_config_path is read
 * now: an unreadable or malformed file fails with IM_EINVAL naming the file
 * and the key, never a secret). NULL on failure (err says why). curl_global_init must
 * have been called. Free with reg_client_free (NULL accepted) after every
 * reg_resolve using it has returned. */
struct reg_client *reg_client_new(const struct reg_config *cfg,
                                  struct im_error *err) IM_WUR;
void reg_client_free(struct reg_client *c);

/* Cold resolution of ref: the manifest (tag or digest), every child of a
 * list/index, every config blob, and a HEAD per distinct layer blob (redirects
 * followed; Last-Modified, Content-Length, Content-Type recorded). Every
 * document is verified against its digest before it is added. On success out
 * holds everything (out->root_digest = digest the reference points to).
 * out must be initialised; documents and blobs it already holds (e.g. from
 * the cache, by digest) are trusted and not fetched again. Nothing is added
 * to out unless the whole resolution succeeds. stats (may be NULL) is added
 * to, also on failure. For a tag, the root is verified against
 * Docker-Content-Digest when the registry sends it (sha256, sha384 or
 * sha512; another algorithm is IM_EPROTO). Schema1 manifests (signed or
 * not) are accepted: a signed one is identified by the digest of its payload
 * (the manifest without "signatures"; signatures are not verified) and kept
 * verbatim; its layers are the distinct fsLayers, HEADed like any other.
 * Errors: IM_EINVAL, IM_ENOTFOUND, IM_EUNAUTH, IM_EPROTO, IM_EDIGEST,
 * IM_ETOOBIG, IM_ETIMEOUT, IM_ERATELIMIT, IM_EUPSTREAM, IM_EPOLICY, IM_ENOMEM. */
int reg_resolve(struct reg_client *c, const struct im_ref *ref, struct im_bundle *out,
                struct reg_stats *stats, struct im_error *err) IM_WUR;

/* What the caller's cache knows beyond out, asked as a resolution meets each
 * digest below its root (never for the root itself: whether the repository
 * has it is for the registry to say). A document named by a manifest the
 * registry just served is the same bytes wherever it was fetched; a layer's
 * facts (size, Last-Modified) are the registry's own, so blob is asked with
 * the registry's name. Each callback returns 0 with its out-parameter filled
 * (doc: body malloc'd, the resolution frees it) or anything else for "not
 * known"; either may be NULL. What they answer is added to out as if
 * fetched, and counted in reg_stats.known. */
struct reg_known {
    int (*doc)(void *cls, const char *digest, struct im_doc *out);
    int (*blob)(void *cls, const char *registry, const char *digest, struct im_blob *out);
    void *cls;
};

/* reg_resolve that asks known (NULL: as reg_resolve) before fetching. */
int reg_resolve_known(struct reg_client *c, const struct im_ref *ref,
                      struct im_bundle *out, const struct reg_known *known,
                      struct reg_stats *stats, struct im_error *err) IM_WUR;

/* What a manifest HEAD says about a reference (reg_head_manifest). */
struct reg_head {
    char digest[IM_DIGEST_MAX];        /* Docker-Content-Digest */
    char media_type[IM_MEDIATYPE_MAX]; /* Content-Type, parameters stripped; may be "" */
    int64_t size;                      /* Content-Length, -1 when absent */
};

/* Revalidation: one HEAD of ref's manifest (by tag, or by digest when ref has
 * one) with exactly the Accept list reg_resolve's GET sends, so the digest is
 * the one a GET would give. Docker Hub does not count HEADs against the pull
 * limit. Auth, retries and errors as reg_resolve (the bearer handshake may
 * add a token GET). On success *out is filled and out->digest is a valid
 * digest. A 2xx without a valid Docker-Content-Digest is IM_EPROTO (the
 * registry does not support revalidation: call reg_resolve). When ref has a
 * digest, a different Docker-Content-Digest is IM_EDIGEST. 404 (and Docker
 * Hub's 401 for a missing repository) are IM_ENOTFOUND / IM_EUNAUTH as for
 * reg_resolve. stats (may be NULL) is added to. Thread-safe like reg_resolve. */
int reg_head_manifest(struct reg_client *c, const struct im_ref *ref,
                      struct reg_head *out, struct reg_stats *stats,
                      struct im_error *err) IM_WUR;

/* A list of tags (reg_list_tags). v[0..n-1] are NUL-terminated strings in the
 * registry's order (lexical per the distribution spec); owned by the list. */
struct reg_tags {
    char **v;
    size_t n;
    bool truncated; /* stopped at max_tags: the repository has more */
};

/* Frees every string and re-initialises t (NULL accepted). */
void reg_tags_free(struct reg_tags *t);

/* GET /v2/<repository>/tags/list of ref's registry and repository (ref's
 * tag and digest are ignored), following the `Link: <...>; rel="next"`
 * pagination (each next URL passes the outbound URL policy and must stay on
 * the registry's host) until the list ends or max_tags tags are held (0 means
 * 10000); then out->truncated tells whether more exist. Each page is capped
 * at cfg.max_manifest_bytes. out must be zero-initialised (or reg_tags_free'd);
 * on success the caller owns it (reg_tags_free); on failure *out is untouched.
 * Every tag is checked against the tag grammar (IM_EPROTO otherwise).
 * Errors: as reg_resolve. stats (may be NULL) is added to. */
int reg_list_tags(struct reg_client *c, const struct im_ref *ref, size_t max_tags,
                  struct reg_tags *out, struct reg_stats *stats,
                  struct im_error *err) IM_WUR;

/* ---- start-up probes ---- */

/* What one start-up probe of reg_prewarm found. Borrowed strings, valid
 * during the callback only. */
struct reg_probe {
    const char *registry; /* "docker.io" */
    const char *url;      /* what was asked: "http://127.0.0.1:5000/v2/"; "" if none */
    const char *outcome;  /* "bearer", "basic", "anonymous" or "failed" */
    const char *detail;   /* the realm ("bearer"), why ("failed"), else "" */
    long ms;              /* the probe's wall time */
};

/* Learns in the background how each registry the client talks to by default
 * authenticates, so that the first resolution need not meet a 401 to find
 * out: docker.io (through its mirror when one is configured) and every
 * mirrored registry get one GET /v2/ (the API version check; Docker Hub
 * answers it 401 with its challenge and does not count it as a pull), built
 * and guarded by the outbound policy like any request, without credentials,
 * one attempt. A Bearer challenge's realm and service are remembered as a
 * resolution's 401 would be; a Basic one makes the registry's credentials be
 * sent from the first request; 2xx means anonymous; a failure changes
 * nothing. Until a registry's probe has ended, a resolution for it (or a
 * HEAD, a tag list) that holds no token and knows no realm waits for the
 * probe, at most cfg.request_timeout_ms, instead of sending its own first
 * request. done (may be NULL) is called once per registry from the probes'
 * thread, after what the probe learnt is in place. Returns at once: 0, or
 * IM_EINVAL (called twice) / IM_ENOMEM / IM_EINTERNAL (no thread) with err,
 * and then nothing waits. reg_client_free stops the probes still running. */
int reg_prewarm(struct reg_client *c, void (*done)(void *cls, const struct reg_probe *p),
                void *cls, struct im_error *err) IM_WUR;

/* The digests that checks compare (sha256, sha384, sha512, from libcrypto)
 * live in common/sha256.h (im_digest_compute, im_sha256_digest). */

#endif
