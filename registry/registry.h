/* registry.h - the distribution/OCI registry client and the reference grammar.
 *
 * Thread-safety: reg_ref_* are pure and reentrant. A struct reg_client is
 * shared by all server threads: reg_resolve may be called concurrently; the
 * token cache and connection share lock inside this module. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "im.h"

/* ---- references (pure) ---- */

/* Parses a reference as `docker pull` takes it: "python:3.7-slim",
 * "ghcr.io/org/app@sha256:...", "localhost:5000/team/app". Normalises
 * docker.io/library/; a missing tag becomes "latest" (unless a digest is
 * given). IM_EINVAL with err saying what is wrong. */
int reg_ref_parse(const char *s, struct im_ref *out, struct im_error *err) IM_WUR;
/* Parses the part of a route after "/images/": "python/3.7-slim" (last
 * segment is the tag), "python@sha256:...", "python:3.7-slim" (one-segment
 * docker form), "ghcr.io/org/app/v1". IM_EINVAL with a message. */
int reg_ref_from_route(const char *path, struct im_ref *out, struct im_error *err) IM_WUR;
/* Checks a digest string "algo:hex" (sha256/384/512, exact hex length). */
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

/* Counters a resolution adds to (for logs and metrics). */
struct reg_stats {
    unsigned requests;       /* HTTP requests sent upstream, incl. token GETs */
    unsigned manifest_gets;
    unsigned blob_gets;
    unsigned blob_heads;
    unsigned token_gets;
};

struct reg_client;

/* NULL on failure (err says why). curl_global_init must have been called. */
struct reg_client *reg_client_new(const struct reg_config *cfg, struct im_error *err) IM_WUR;
void reg_client_free(struct reg_client *c);

/* Cold resolution of ref: the manifest (tag or digest), every child of a
 * list/index, every config blob, and a HEAD per distinct layer blob (redirects
 * followed; Last-Modified, Content-Length, Content-Type recorded). Every
 * document is verified against its digest before it is added. On success out
 * holds everything (out->root_digest = digest the reference points to).
 * Errors: IM_ENOTFOUND, IM_EUNAUTH, IM_EPROTO, IM_EDIGEST, IM_ETOOBIG,
 * IM_ETIMEOUT, IM_ERATELIMIT, IM_EUPSTREAM, IM_EPOLICY, IM_ENOMEM. */
int reg_resolve(struct reg_client *c, const struct im_ref *ref, struct im_bundle *out,
                struct reg_stats *stats, struct im_error *err) IM_WUR;

/* Hex digest helpers (SHA-256 implemented in common/sha256.c). */

#endif
