/* api_int.h - internal to api/: its cross-file internals (double-underscore
 * names), which only api/ and its own tests see (CMakeLists.txt gives no other
 * target this directory). */
#ifndef API_INT_H
#define API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api.h"
#include "json.h"
#include "render.h"
#include "store.h"

#define API_CT_JSON "application/json"
#define API_CT_MARKDOWN "text/markdown; charset=utf-8"
#define API_CT_TEXT "text/plain; charset=utf-8"
#define API_CT_HTML "text/html; charset=utf-8"
/* Every HTML answer's policy: nothing but its own inline style (no script, no
 * remote source of any kind, no framing; the home page's form submits to
 * this origin only). */
#define API_HTML_CSP                                                                     \
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; " \
    "base-uri 'none'; frame-ancestors 'none'"

/* One resolution (or revalidation) in progress, shared by every request for
 * the same key. */
struct api__flight {
    struct api__flight *next;
    char key[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    bool done;
    int rc;
    struct im_error err;
    unsigned waiters;
    bool revalidated;        /* a HEAD confirmed the cached digest */
    long retry_after;        /* the upstream's Retry-After (seconds), 0 = none */
    struct im_bundle bundle; /* on success, a copy for the waiters */
};

/* Requests counted since the last write to the store's persistent counters
 * (C11 atomics; written out at most every API__COUNTERS_FLUSH_S seconds). */
struct api__pending_counters {
    _Atomic int_least64_t n[IM_OUTCOME__COUNT]; /* by outcome (outcome.h) */
    _Atomic int_least64_t last_flush;
};

/* The in-flight table: a short list under one lock (entries live only while
 * their resolution runs), and the count of upstream operations running
 * (flights and tag listings), bounded by cfg.max_resolutions. */
struct api__inflight {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct api__flight *head;
    long running;
};

/* Releases resp's body, malloc'd or shared; resp then has none. */
void api__drop_body(struct api_response *resp);

/* Reference-counted answer bodies (body.c). new: one reference to room for
 * len bytes and a NUL (set), NULL when out of memory; pooled: the block comes
 * from, and goes back to, a bounded pool of recycled blocks (for answers sent
 * once: the answers file's), else it is malloc'd to size (the LRU's). ref adds
 * a reference; api_shared_release drops one. pool_drain frees the pool's idle
 * blocks; pool_held counts them. */
#define API__SHARED_POOL_KEEP 16 /* idle blocks kept per block size */
struct api_shared *api__shared_new(size_t len, bool pooled);
char *api__shared_bytes(struct api_shared *s);
void api__shared_ref(struct api_shared *s);
void api__shared_pool_drain(void);
size_t api__shared_pool_held(void);

/* 64-bit FNV-1a of a rendered-answer key (rcache.c), for both tiers' tables. */
uint64_t api__key_hash(const char *k, size_t n);

/* Rendered answers (rcache.c): a byte-bounded LRU, thread-safe. get copies
 * nothing: *body is the cached bytes (NUL-terminated, read-only), valid until
 * the caller releases *shared (api_shared_release), whatever the cache evicts
 * meanwhile; IM_ENOTFOUND on a miss. */
struct api__rcache;
struct api__rcache *api__rcache_new(size_t max_bytes);
void api__rcache_free(struct api__rcache *c);
int api__rcache_get(struct api__rcache *c, const char *key, size_t klen,
                    const char **body, size_t *len, const char **ctype,
                    struct api_shared **shared);
void api__rcache_put(struct api__rcache *c, const char *key, size_t klen,
                     const char *body, size_t len, const char *ctype);

/* The answers file (afile.c): rendered answers appended to an unlinked file
 * in a directory (next to the database), indexed in memory, at most max_bytes
 * of file; when full it starts over. Thread-safe. new: NULL with err on
 * failure (no memory, the file cannot be created, no SipHash in libcrypto).
 * get: the answer's len bytes at *body (NUL-terminated) inside a pooled
 * *block, which the caller releases with api_shared_release; IM_ENOTFOUND on
 * a miss, also when f is NULL or the bytes could not be read back; IM_ENOMEM.
 * open: the answer as a descriptor of its own (*fd, which the caller closes:
 * it keeps the answer's bytes as they are even if the file starts over
 * meanwhile) and the offset of its len bytes in it, for a server to send
 * without reading them (sendfile); IM_ENOTFOUND on a miss, IM_EBUSY when no
 * descriptor is left (get can still read it). get and open give
 * im_siphash128's failure when the key cannot be hashed. put: keeps a copy; a
 * failure (disk full, I/O error: counted; a key that cannot be hashed) only
 * costs a later miss. */
struct api__afile;
struct api__afile *api__afile_new(const char *dir, uint64_t max_bytes,
                                  struct im_error *err);
void api__afile_free(struct api__afile *f);
int api__afile_get(struct api__afile *f, const char *key, size_t klen,
                   struct api_shared **block, const char **body, size_t *len,
                   const char **ctype);
int api__afile_open(struct api__afile *f, const char *key, size_t klen, int *fd,
                    uint64_t *off, size_t *len, const char **ctype);
void api__afile_put(struct api__afile *f, const char *key, size_t klen, const char *body,
                    size_t len, const char *ctype);
struct api__afile_stats {
    size_t entries;
    uint64_t bytes; /* written since the file last started over */
    uint64_t epoch; /* how many times it started over */
    uint64_t hits, write_failures;
};
void api__afile_stats(struct api__afile *f, struct api__afile_stats *out);

/* Rendered answers (answers.c): the tiers above (the LRU, the answers file)
 * and the store's rendered rows, behind one get and one put. Thread-safe.
 * new: NULL when out of memory; an answers file that cannot be made is left
 * out (api__answers_file_error says why). get: the answer kept under key, in
 * resp (200: its bytes shared with a tier, malloc'd, or with file_ok a
 * descriptor of its own), or IM_ENOTFOUND; ctype is the answer's Content-Type
 * (the store's rows keep none). put: keeps a fresh rendering of ref's answer in
 * every tier, the store's within its budget; a failed store write is counted
 * and said in resp->store_error (the answer is still right). klen 0: nothing
 * is kept or found. */
struct api__answers;
struct api__answers *api__answers_new(const struct api_config *cfg, struct store *store);
void api__answers_free(struct api__answers *t);
const char *api__answers_file_error(const struct api__answers *t);
int api__answers_get(struct api__answers *t, const char *key, size_t klen,
                     const char *ctype, bool file_ok, struct api_response *resp);
void api__answers_put(struct api__answers *t, const struct im_ref *ref, const char *key,
                      size_t klen, const char *body, size_t len, const char *ctype,
                      struct api_response *resp);
void api__answers_stats(struct api__answers *t, struct api__afile_stats *out);
/* Compressed answers: an answer of more than API_GZIP_MIN bytes is compressed
 * once (gzip) and the compressed bytes are kept in the tiers above the store
 * (the LRU, the answers file) under a key of their own, gzkey (the answer's
 * key with the encoding in it; gzklen 0: not kept). get_gzip: resp answers the
 * kept gzip bytes (content_encoding "gzip"); when none are kept, the plain
 * answer under key compressed now and kept, or the plain answer itself when it
 * is API_GZIP_MIN bytes or less; IM_ENOTFOUND when no tier holds the answer.
 * put_gzip: for a fresh rendering (body, len) of the answer: 0 with resp
 * answering its compressed bytes, kept; 1 (resp unchanged) when the answer is
 * small or could not be compressed. */
#define API_GZIP_MIN 1024
int api__answers_get_gzip(struct api__answers *t, const char *key, size_t klen,
                          const char *gzkey, size_t gzklen, const char *ctype,
                          bool file_ok, struct api_response *resp);
int api__answers_put_gzip(struct api__answers *t, const char *gzkey, size_t gzklen,
                          const char *body, size_t len, const char *ctype,
                          struct api_response *resp);
/* resp answers 200 with body: malloc'd (shared NULL) or held by shared. */
void api__answer_200(struct api_response *resp, const char *ctype, char *body, size_t len,
                     struct api_shared *shared);

struct api {
    struct api_config cfg;
    struct api__answers *answers;
    struct store *store;
    struct reg_client *reg;
    struct api__inflight inflight;
    struct api__pending_counters counters;
    api_home_source_fn home_source; /* the watched images for GET /, or NULL */
    void *home_ctx;
};

int api__inflight_init(struct api__inflight *t);
void api__inflight_destroy(struct api__inflight *t);

/* What api__resolve_shared did. */
struct api__shared {
    bool coalesced;   /* waited for another request's work */
    bool revalidated; /* a HEAD confirmed the cached digest: nothing was fetched */
    bool store_failed;
    struct im_error store_err; /* why the result could not be stored */
    long retry_after;          /* on IM_ERATELIMIT or IM_EBUSY: seconds to tell the
                                  client (the upstream's Retry-After), 0 = unknown */
    /* after a resolution by this request: the image model of its answer, built
     * while the answer was being stored (the caller owns it), else NULL */
    struct render_image *model;
};

/* Resolves ref upstream and stores the result, or waits for a concurrent
 * request already doing so. With prior (the tag's cached row, may be NULL)
 * it first revalidates with one manifest HEAD: an unchanged digest only
 * touches the tag; a changed one is resolved with every document the cache
 * already holds pre-filled, so nothing known by digest is fetched again. A
 * tag the registry says does not exist is remembered (negative cache). On 0,
 * out (initialised, empty) holds the answer and *how says what happened.
 * IM_EBUSY (at once, nothing asked upstream) when cfg.max_resolutions other
 * references are being resolved already and none of them is ref. */
int api__resolve_shared(struct api *a, const struct im_ref *ref,
                        const struct store_tag *prior, struct im_bundle *out,
                        struct api__shared *how, struct im_error *err);

/* One upstream operation that is not a resolution (a tag listing) takes a
 * slot of cfg.max_resolutions: 0, or IM_EBUSY (counted, *retry_after set)
 * when none is free. Every 0 is paired with one api__upstream_leave. */
int api__upstream_enter(struct api *a, long *retry_after, struct im_error *err);
void api__upstream_leave(struct api *a);

/* Copies every document and blob of src into dst (initialised, empty). 0 or
 * IM_ENOMEM (dst then emptied). */
int api__bundle_copy(struct im_bundle *dst, const struct im_bundle *src);

/* POST /images: a batch of references described at once (batch.c): 0 with
 * the answer (or a 4xx) in resp, API_SLOW for a cache_only request that needs
 * upstream work, IM_ENOMEM. */
int api__batch(struct api *a, const struct api_request *req, struct api_response *resp);
/* GET / (home.c): the home page, HTML. 0 or IM_ENOMEM. */
int api__home(struct api *a, struct api_response *resp);
/* GET /images?ref=REF (home.c): 303 to /images/ROUTE (render_ref_route's
 * form of REF, trimmed), with Location; 400 invalid_parameter without a
 * ref, invalid_reference for a bad one. 0 or IM_ENOMEM. */
int api__find_image(const struct api_request *req, struct api_response *resp);

/* POST or DELETE /admin/cache/{ref}: purges ref from the cache (admin.c). */
int api__admin(struct api *a, const struct api_request *req, struct api_response *resp);

/* Writes the pending request counters to the store; on failure they stay
 * pending. */
int api__flush_counters(struct api *a, struct im_error *err);
int api__describe(struct api *a, const struct api_request *req,
                  struct api_response *resp);

int api__status_for(int code);
int api__set_body(struct api_response *resp, int status, const char *content_type,
                  const char *text);
/* The same with a newline after text (JSON answers and errors end with one). */
int api__set_line(struct api_response *resp, int status, const char *content_type,
                  const char *text);
/* The largest small JSON document api/ writes (errors, the tag list, admin). */
#define API_JSON_MAX ((size_t)16 << 20)
/* resp's body becomes what the JSON writer w wrote (and a newline when line):
 * 0, or w's failure (IM_ETOOBIG, IM_ENOMEM; w's buffer is released). */
int api__set_json(struct api_response *resp, int status, struct im_jw *w, bool line);
int api__error(struct api_response *resp, int status, const char *code,
               const char *message);
int api__error_code(struct api_response *resp, int code, const char *message);
/* A JSON error answer to a request that asked for Markdown becomes its
 * message as plain text (error.c). 0 or IM_ENOMEM. */
int api__finish_error(const struct api_request *req, struct api_response *resp);

/* The /images/ route grammar (route.c): the part of a path after "/images/"
 * (percent-decoded) as a reference:
 *  - anything containing '@', or whose last '/'-segment contains ':', is a
 *    docker reference (reg_ref_parse): "python@sha256:...",
 *    "python:3.7-slim", "ghcr.io/org/app:v1";
 *  - otherwise the last segment is the tag and the segments before it are the
 *    name: "python/3.7-slim", "library/python/3.7-slim", "ghcr.io/org/app/v1",
 *    "localhost:5000/team/app/1.0" (registry localhost:5000, repository
 *    team/app, tag 1.0);
 *  - a single segment without ':' or '@' ("python") is IM_EINVAL "missing
 *    tag: use /images/python/TAG", and a name that is only a host
 *    ("localhost:5000/app") is IM_EINVAL too (no repository).
 * IM_EINVAL with a message, as reg_ref_parse. */
int api__ref_from_route(const char *path, struct im_ref *out, struct im_error *err);

/* ---- content negotiation (negotiate.c): which representation an Accept
 * header asks for (RFC 9110 section 12.5.1, q-values included); pure ---- */

/* Chooses JSON, Markdown or HTML for an Accept header (NULL or "" = no
 * header; a browser's "text/html,...,STAR/STAR;q=0.8" asks for HTML).
 * Each representation gets the q of the most specific media range matching
 * it (exact type, then "type/STAR", then "STAR/STAR", where STAR is the
 * asterisk wildcard); the higher q wins; on equal q an exact match beats a
 * wildcard, then the one listed first wins, then JSON, Markdown, HTML in
 * that order (so "STAR/STAR" is JSON and "text/STAR" Markdown). Media-type parameters
 * other than q are ignored; a malformed q counts as 1; q=0 means "not
 * acceptable".
 * *acceptable (may be NULL) is set false when no representation has a
 * q above 0 (e.g. "Accept: image/png"): the service then still answers JSON,
 * as RFC 9110 allows, instead of a 406 (see openapi.yaml). */
enum api_format api__negotiate(const char *accept, bool *acceptable);

/* The representation a request asks for: ?format= when present and valid
 * ("json", "markdown" or "md", "html"), else the Accept header. *valid (may be NULL)
 * is false when ?format= has another value (then JSON is returned). */
enum api_format api__request_format(const struct api_request *req, bool *valid);

/* An error answer for what obtaining an image failed with (describe.c):
 * Retry-After for the upstream's limits (retry_after, else 60 s) and for the
 * shared database being away (5 s). 0 or IM_ENOMEM. */
int api__obtain_error(struct api_response *resp, int rc, long retry_after,
                      const char *message);
/* "no platform matches; this image has: linux/amd64, linux/arm/v7" */
void api__list_platforms(const struct render_image *img, char *msg, size_t n);

/* The image model of ref, from the cache or resolved as GET /images/ does
 * (describe.c; it may wait for the registry): 0 with out->img (the caller
 * frees it), or the error with out->err, out->retry_after. A failed cache
 * write is said in resp->store_error. */
struct api__model {
    struct render_image *img;
    long max_age, retry_after;
    struct im_error err;
};
int api__model(struct api *a, const struct im_ref *ref, struct api__model *out,
               struct api_response *resp);

/* ---- ?view=history (history.c) ---- */

/* A page of a tag's history: at most n changes (1 to STORE_HISTORY_MAX),
 * older than change number before (0: from the newest). */
struct api__hpage {
    long n;
    int64_t before;
};
/* Reads ?n= and ?last= (the page cursor: a change number), and refuses what
 * history cannot answer (a digest reference, ?platform=): 0, or 1 after
 * writing a 400 (IM_ENOMEM when not even that). */
int api__history_params(const struct api_request *req, const struct im_ref *ref,
                        struct api__hpage *p, struct api_response *resp);
/* Answers the page of ref's tag's history into resp (a Link header to the
 * next page while older changes remain). 0 or IM_ENOMEM. */
int api__history(struct api *a, const struct im_ref *ref, bool markdown,
                 const struct api__hpage *p, struct api_response *resp);
/* A tag's changes for the HTML page's chart: the newest STORE_HISTORY_MAX,
 * newest first, as the store gives them (c) and as the renderer reads them
 * (rows, borrowing from c). */
struct api__changes {
    struct store_change *c;
    struct render_change *rows;
    struct render_psize *sizes;
    size_t n;
};
/* Reads them into *out (zero it first; release with api__changes_free, also
 * after a failure): 0, or the store's error code (out then holds none). */
int api__tag_changes(struct api *a, const struct im_ref *ref, struct api__changes *out);
void api__changes_free(struct api__changes *h);
/* store_sizes_fn: each image entry's short platform and total size, read
 * from the model of bundle. */
int api__platform_sizes(const struct im_ref *ref, const struct im_bundle *bundle,
                        struct store_platform_size *out, size_t max, size_t *n);

/* ---- GET /diff (diff.c) ---- */
int api__diff(struct api *a, const struct api_request *req, struct api_response *resp);

/* Whether an Accept-Encoding header (NULL: absent) accepts gzip (RFC 9110
 * section 12.5.3): the q of the first element naming "gzip" or "x-gzip" (case
 * insensitive), else of the first "*", must be above 0; a header naming
 * neither, an empty one or none at all asks for the identity coding. q is
 * read as for Accept (a malformed q counts as 1). Identity is always served
 * when gzip is not: "identity;q=0" gets no 406. Pure; reads the whole header
 * (the server bounds its size). */
bool api__accepts_gzip(const char *accept_encoding);

/* ---- GET /repositories/{repository}/tags (tags.c): the registry's tag
 * list, paginated the registry's way (n, last, Link) ---- */

/* True when path is /repositories/{something}/tags. */
bool api__is_tags_path(const char *path);

/* Answers the tag list route into resp (0), IM_ENOMEM when not even an error
 * answer could be built. */
int api__tags(struct api *a, const struct api_request *req, struct api_response *resp);

#endif
