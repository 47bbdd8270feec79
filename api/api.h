/* api.h - request handlers: a parsed HTTP request in, a complete response
 * out. No libmicrohttpd here (server/ translates), no SQL or curl (store/ and
 * registry/ do that), no formatting of pages (render/ does).
 *
 * Thread-safety: api_handle may be called from any number of threads at once
 * on one struct api; shared state (the in-flight table) locks inside. */
#ifndef API_H
#define API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "im.h"
#include "outcome.h"
#include "render.h"

struct store;
struct reg_client;

#define API_MAX_REGISTRY_TTLS 32
#define API_MAX_TTL_SECONDS 604800 /* a week */

struct api_config {
    int64_t tag_ttl_seconds; /* how long a tag resolution is fresh; default 300 */
    long resolve_wait_ms;    /* max wait for a coalesced resolution; default 60000 */
    /* Distinct references resolved (or revalidated, or tag lists fetched)
     * upstream at once; a request that would start one more is refused 503
     * busy with Retry-After (a stale entry is served instead where the cache
     * rules allow). Requests joining a running resolution do not count.
     * Default 32; 0 = unbounded. */
    long max_resolutions;
    /* The cache. api_config_defaults leaves these 0 (off); server/ passes the
     * configured values (defaults 86400, 30, 1 GiB). */
    int64_t max_stale_seconds;    /* serve stale this long past the TTL when the
                                     upstream fails; 0 = never */
    int64_t negative_ttl_seconds; /* remember a missing tag this long; 0 = never */
    int64_t cache_max_bytes;      /* database size budget; 0 = none */
    int64_t layer_ttl_seconds;    /* a layer's size and date, once a registry
                                     gave them, answer for its other images this
                                     long without a HEAD; 0 = always ask */
    size_t answer_cache_bytes;    /* in-memory LRU of rendered answers; 0 = none;
                                     api_config_defaults: 16 MiB */
    /* The answers file behind that LRU (api/afile.c): at most this many bytes of
     * rendered answers in an unlinked file in answer_file_dir; 0 or "" = none
     * (api_config_defaults leaves both so; server/ passes the database's
     * directory and --answer-file-bytes). */
    uint64_t answer_file_bytes;
    char answer_file_dir[1024];
    char admin_token[128]; /* bearer token for /admin/; "" = /admin/ disabled */
    /* The Markdown page's form when a request names none (?style=): the
     * seed's (api_config_defaults) or today's. */
    enum render_style markdown_style;
    /* Per-registry tag TTLs overriding tag_ttl_seconds (api_config_registry_ttls). */
    struct api_registry_ttl {
        char registry[256]; /* as in a normalised reference: "docker.io", "ghcr.io" */
        int64_t seconds;
    } registry_ttls[API_MAX_REGISTRY_TTLS];
    size_t n_registry_ttls;
};

void api_config_defaults(struct api_config *c);

/* Parses "REGISTRY=SECONDS[,REGISTRY=SECONDS...]" (e.g. "ghcr.io=60,quay.io=900";
 * docker.io's aliases index.docker.io and registry-1.docker.io name docker.io)
 * into c->registry_ttls, replacing what was there. "" clears the list. Returns 0,
 * or IM_EINVAL with err naming the bad entry (c unchanged). */
int api_config_registry_ttls(struct api_config *c, const char *spec,
                             struct im_error *err);

/* The tag TTL for a registry: its own entry, else c->tag_ttl_seconds. */
int64_t api_config_tag_ttl(const struct api_config *c, const char *registry);

struct api;

/* Borrows store and reg (they must outlive the api). NULL on ENOMEM. */
struct api *api_new(const struct api_config *cfg, struct store *store,
                    struct reg_client *reg, struct im_error *err) IM_WUR;
void api_free(struct api *a);
/* Why the answers file asked for in the config could not be made (answers
 * are then served without it), or NULL. Borrowed from a. */
const char *api_answers_file_error(const struct api *a);

#define API_MAX_PLATFORMS 16

enum api_format { API_FORMAT_JSON = 0, API_FORMAT_MARKDOWN = 1, API_FORMAT_HTML = 2 };

/* Requests server/ refuses before routing; api_handle answers them with the
 * error in the representation the request asked for. */
enum api_reject {
    API_REJECT_NONE = 0,
    API_REJECT_BODY,              /* 413: the request carried a body */
    API_REJECT_URI_TOO_LONG,      /* 414: path or query over the service's limit */
    API_REJECT_HEADERS_TOO_LARGE, /* 431: header fields over the service's limit */
    API_REJECT_BAD_HOST,          /* 400: HTTP/1.1 without exactly one Host header */
    API_REJECT_BAD_ENCODING,      /* 400: the path, the query or a header field has a
                                     control character (as it is or percent-encoded), a
                                     bad escape, invalid UTF-8, or the path an encoded
                                     '/'; api_request.reject_reason says which */
    API_REJECT_BODY_TOO_LARGE     /* 413: a body over API_BATCH_BODY_MAX */
};

/* One request as server/ understood it. Strings are borrowed for the call. */
struct api_request {
    const char *method;        /* "GET", "HEAD", ... */
    const char *path;          /* percent-decoded path, e.g. "/images/python/3.7-slim" */
    const char *format;        /* ?format=, NULL when absent */
    const char *view;          /* ?view=, NULL when absent */
    const char *style;         /* ?style= (the Markdown page's form), NULL when absent */
    const char *accept;        /* Accept header, NULL when absent */
    const char *if_none_match; /* If-None-Match header, NULL when absent */
    const char *accept_encoding; /* Accept-Encoding header, NULL when absent */
    const char *content_type;    /* Content-Type header, NULL when absent */
    /* The body of a request to a route that takes one (api_takes_body), at
     * most API_BATCH_BODY_MAX bytes; NULL and 0 for none. */
    const char *body;
    size_t body_len;
    const char *platforms[API_MAX_PLATFORMS]; /* ?platform= values */
    size_t n_platforms;
    bool too_many_platforms;   /* more ?platform= than API_MAX_PLATFORMS */
    const char *request_id;    /* for logs */
    const char *authorization; /* Authorization header (for /admin/), NULL when absent */
    const char *n;             /* ?n= (tag list page size), NULL when absent */
    const char *last;          /* ?last= (tag list cursor), NULL when absent */
    const char *from;          /* ?from= (GET /diff), NULL when absent */
    const char *to;            /* ?to= (GET /diff), NULL when absent */
    bool repeated;             /* ?from=, ?to=, ?n= or ?last= given more than once */
    const char *ref;           /* ?ref= (GET /images: the home page's form), NULL */
    enum api_reject reject;    /* set by server/ for requests it refuses */
    /* API_REJECT_BAD_ENCODING: a static sentence saying what was wrong ("the
     * path decodes to a control character ..."), NULL for a general one. */
    const char *reject_reason;
    /* Answer only what needs no upstream work (the cache, errors found on the
     * spot); api_handle returns API_SLOW instead of resolving, revalidating,
     * joining a resolution in flight or listing tags. */
    bool cache_only;
    /* The server can send a body from a file descriptor (sendfile): an
     * answer the answers file holds may then come back as one
     * (api_response.file_body) instead of bytes read into memory. */
    bool file_body;
};

/* A response header server/ sends as is (name and value are never user-chosen
 * text that could split a header: values are built by api/). */
struct api_header {
    const char *name; /* static string, e.g. "X-Imgmeta-Cache" */
    char value[64];
};
#define API_MAX_EXTRA_HEADERS 4

struct api_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd, owned by the response; NULL for none */
    size_t len;
    /* When set, body is not malloc'd: it points into this reference-counted
     * block (an answer the in-memory cache holds, or one read from the answers
     * file into a pooled block), read-only until released
     * (api_shared_release; api_response_free does it). */
    struct api_shared *shared;
    /* When file_body is set, body is NULL and the answer is the len bytes at
     * file_off of file_fd, a descriptor the response owns (closed by
     * api_response_free unless the server took it): an answers-file hit for a
     * request that allowed it (api_request.file_body). */
    bool file_body;
    int file_fd;
    uint64_t file_off;
    char etag[96];    /* "" when none */
    long max_age;     /* Cache-Control max-age, -1 for no header */
    bool vary_accept; /* Vary: Accept, Accept-Encoding */
    /* Content-Encoding of body (static string: "gzip"), NULL for none */
    const char *content_encoding;
    long retry_after;      /* seconds, -1 for no header */
    const char *allow;     /* Allow header for 405, NULL otherwise */
    enum im_outcome cache; /* where the answer came from (outcome.h), for the log */
    /* Headers to send in addition to the ones above, in order: X-Imgmeta-Cache
     * (hit|miss|coalesced|revalidated|stale|negative) on image answers, and for
     * a stale answer Warning: 110 - "Response is Stale" and X-Imgmeta-Stale. */
    struct api_header extra_headers[API_MAX_EXTRA_HEADERS];
    size_t n_extra_headers;
    /* A cache write failed while answering (the answer is still right): ""
     * when none. For server/ to log; already counted in
     * imgmeta_store_write_failures. */
    char store_error[IM_ERRMSG_MAX];
    char link[1280]; /* Link header ("" for none): the next tag list page */
    /* An HTML answer's Content-Security-Policy (static string; server/ then
     * sends X-Content-Type-Options: nosniff too), NULL for none. */
    const char *csp;
    char *location;    /* Location header (a 303), malloc'd, NULL for none */
    const char *route; /* fixed metrics label: "images", "tags", "diff", "healthz",
                          "readyz", "metrics", "admin", "other" (never NULL after
                          api_handle) */
};

/* api_handle's answer to a req->cache_only request that needs upstream work:
 * resp holds nothing to send; call again without cache_only on a thread that
 * may wait (up to the upstream timeouts). */
#define API_SLOW 1

/* Fills resp (which the caller zero-initialises) and returns 0; returns
 * IM_ENOMEM only when not even an error response could be built, API_SLOW
 * as above. The caller releases resp with api_response_free. */
int api_handle(struct api *a, const struct api_request *req, struct api_response *resp);
void api_response_free(struct api_response *resp);

/* Drops one reference to a response's shared body block; the last frees it,
 * or gives a pooled block back to its pool (an eviction from the in-memory
 * cache drops the cache's own). */
struct api_shared;
void api_shared_release(struct api_shared *s);

/* Fills resp with an error answer: JSON {"error":{"code","message"}}, or the
 * message as text/plain when the request asked for Markdown (?format= or
 * Accept). For errors server/ finds itself (e.g. a /metrics failure). 0 or
 * IM_ENOMEM. */
int api_error_response(const struct api_request *req, struct api_response *resp,
                       int status, const char *code, const char *message);

/* Reads the cache's size and entry counts into the process metrics
 * (imgmeta_db_* gauges); called before GET /metrics is written. 0 or the
 * store's error code. */
int api_update_store_gauges(struct api *a);

/* ---- watched images (server/watch.c keeps them fresh) ---- */

#define API_WATCH_PLATFORM_MAX 160 /* "os/arch/variant" as written, NUL included */
#define API_WATCH_PLATFORMS_MAX 64 /* platforms reported per image; more are left out */

/* One platform of an image (attestation entries and nested indexes are left
 * out): "os/arch[/variant]" as upstream wrote it (not escaped; cut at
 * API_WATCH_PLATFORM_MAX - 1 bytes; ":OS_VERSION" added when an earlier entry
 * has the same one, as Windows images do; an entry still the same as an
 * earlier one is left out), the compressed size of its layers (the
 * Markdown page's Total Size; -1 when a layer's size is unknown) and its
 * layer count. */
struct api_watch_platform {
    char platform[API_WATCH_PLATFORM_MAX];
    int64_t size;
    long layers;
};

struct api_watch_facts {
    char digest[IM_DIGEST_MAX]; /* what the reference points to now */
    /* false when digest equals the known one given: platforms is then empty */
    bool changed;
    bool stale;            /* the registry failed; digest is the cached one's */
    int64_t since;         /* changed: when the cache first saw the tag at digest
                              (Unix seconds; kept across restarts, shared by
                              replicas); 0 when it cannot tell (a digest reference) */
    enum im_outcome cache; /* how it was answered (hit, revalidated, miss, ...) */
    long fresh_for;        /* seconds before it needs revalidating again */
    long retry_after;      /* on a 429 or busy refusal: seconds, else 0 */
    struct api_watch_platform *platforms; /* malloc'd, n_platforms of them */
    size_t n_platforms;
};

/* What GET /images/REF would answer for ref, through the same cache rules,
 * coalescing and store (a fresh tag costs nothing upstream; one past its TTL
 * one manifest HEAD; one that moved a resolution), without rendering: its
 * digest and, when that differs from known (NULL: none known), its
 * platforms. May wait on the registry (up to its timeouts): never call it
 * from an HTTP thread. 0 with *out filled (release with
 * api_watch_facts_free), or the error code (IM_ENOTFOUND, IM_EUPSTREAM, ...)
 * with err; out->retry_after is set on failure too. */
int api_watch_check(struct api *a, const struct im_ref *ref, const char *known,
                    struct api_watch_facts *out, struct im_error *err) IM_WUR;
void api_watch_facts_free(struct api_watch_facts *f);

/* ---- the home page's watched images ---- */

#define API_HOME_IMAGE_MAX 560 /* an image's name as the watch list wrote it */

/* One watched image as the home page lists it: its name, its reference, its
 * digest ("" before its first successful check) and its platforms. */
struct api_home_image {
    char image[API_HOME_IMAGE_MAX];
    struct im_ref ref;
    char digest[IM_DIGEST_MAX];
    struct api_watch_platform *platforms; /* malloc'd, n_platforms of them */
    size_t n_platforms;
};
/* A snapshot of the watched images, owned by whoever holds it. */
struct api_home_list {
    struct api_home_image *v; /* malloc'd, n of them */
    size_t n;
};
/* Fills *out with a copy of the watched images taken under the watcher's
 * lock (at most its limit of references): 0, or IM_ENOMEM (*out empty). */
typedef int (*api_home_source_fn)(void *ctx, struct api_home_list *out);
/* Registers where GET / reads the watched images from (NULL: none, the
 * page is the form alone). Call before api_handle runs on any thread; ctx
 * must outlive a. */
void api_set_home_source(struct api *a, api_home_source_fn fn, void *ctx);
/* Frees what a snapshot holds and empties it; NULL is accepted. */
void api_home_list_free(struct api_home_list *l);

/* POST /images (the batch): at most API_BATCH_MAX references in a body of at
 * most API_BATCH_BODY_MAX bytes. */
#define API_BATCH_MAX 100
#define API_BATCH_BODY_MAX ((size_t)64 * 1024)

/* Whether a request to path with method carries a body api_handle reads
 * (server/ keeps it, up to API_BATCH_BODY_MAX; any other body is refused). */
bool api_takes_body(const char *method, const char *path);

/* The route label api_handle would give path (for requests it never sees). */
const char *api_route_label(const char *path);

#endif
