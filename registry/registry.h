/* registry.h - the distribution/OCI registry client and the reference grammar.
 *
 * Thread-safety: reg_ref_* are pure and reentrant. A struct reg_client is
 * shared by all server threads: reg_resolve may be called concurrently; the
 * token cache, the DNS/TLS share and the pool of multi handles lock inside
 * this module. */
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
/* Parses the part of a route after "/images/" (already percent-decoded):
 *  - anything containing '@', or whose last '/'-segment contains ':', is a
 *    docker reference and goes to reg_ref_parse: "python@sha256:...",
 *    "python:3.7-slim", "ghcr.io/org/app:v1";
 *  - otherwise the last segment is the tag and the segments before it are the
 *    name: "python/3.7-slim", "library/python/3.7-slim", "ghcr.io/org/app/v1",
 *    "localhost:5000/team/app/1.0" (registry localhost:5000, repository
 *    team/app, tag 1.0);
 *  - a single segment without ':' or '@' ("python") is IM_EINVAL "missing tag:
 *    use /images/python/TAG", and a name that is only a host
 *    ("localhost:5000/app") is IM_EINVAL too (no repository).
 * IM_EINVAL with a message, as reg_ref_parse. */
int reg_ref_from_route(const char *path, struct im_ref *out, struct im_error *err) IM_WUR;
/* Checks a digest string "algo:hex" (sha256/384/512, exact lowercase hex
 * length). */
bool reg_digest_valid(const char *digest);

/* ---- client ---- */

struct reg_mirror {
    char registry[IM_REGISTRY_MAX]; /* "docker.io" */
    char base_url[512];             /* "http://127.0.0.1:5000" */
};

#define REG_MAX_MIRRORS 16

struct reg_config {
    struct reg_mirror mirrors[REG_MAX_MIRRORS];
    size_t n_mirrors;
    long connect_timeout_ms;   /* default 5000 */
    long request_timeout_ms;   /* per request, default 30000 */
    size_t max_manifest_bytes; /* default 4 MiB */
    size_t max_config_bytes;   /* default 8 MiB */
    long max_redirects;        /* default 5 */
    int max_parallel;          /* concurrent transfers per resolution, default 16 */
    const char *user_agent;    /* default "imgmeta/VERSION" */
};

/* Fills c with the defaults above (no mirrors). */
void reg_config_defaults(struct reg_config *c);

/* Counters a resolution adds to (for logs and metrics). requests counts
 * every request sent upstream, including token GETs, the retry after a 401
 * and each redirect followed; the others count requests by kind. */
struct reg_stats {
    unsigned requests; /* HTTP requests sent upstream, incl. token GETs */
    unsigned manifest_gets;
    unsigned blob_gets;
    unsigned blob_heads;
    unsigned token_gets;
};

struct reg_client;

/* Copies cfg (user_agent is duplicated; mirrors are matched by registry name,
 * case-insensitively). NULL on failure (err says why). curl_global_init must
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
 * sha512; another algorithm is IM_EPROTO). Schema1 manifests give
 * IM_EPROTO (not supported yet).
 * Errors: IM_EINVAL, IM_ENOTFOUND, IM_EUNAUTH, IM_EPROTO, IM_EDIGEST,
 * IM_ETOOBIG, IM_ETIMEOUT, IM_ERATELIMIT, IM_EUPSTREAM, IM_EPOLICY, IM_ENOMEM. */
int reg_resolve(struct reg_client *c, const struct im_ref *ref, struct im_bundle *out,
                struct reg_stats *stats, struct im_error *err) IM_WUR;

/* SHA-256 for digest checks lives in common/sha256.h (im_sha256_digest). */

#endif
