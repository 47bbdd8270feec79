/* im.h - what every imgmeta module shares: the error codes, the error message
 * buffer, the parsed image reference and the "bundle" of verified upstream
 * documents that flows registry -> store -> render.
 *
 * Thread-safety: everything here is plain data and pure functions; a value is
 * safe to share between threads as long as nobody modifies it. */
#ifndef IM_H
#define IM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#define IM_WUR __attribute__((warn_unused_result))
#define IM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IM_WUR
#define IM_PRINTF(a, b)
#endif

/* Project error codes: 0 is success, every failure is negative. api/ maps each
 * one to exactly one HTTP status and JSON error code. */
enum im_err {
    IM_OK = 0,
    IM_EINVAL = -1,     /* invalid reference or parameter (user input) */
    IM_ENOTFOUND = -2,  /* image, tag or blob does not exist */
    IM_EUNAUTH = -3,    /* upstream refused our credentials / token */
    IM_EPROTO = -4,     /* upstream answered something we cannot accept */
    IM_EDIGEST = -5,    /* body does not hash to the digest it was asked by */
    IM_ETOOBIG = -6,    /* a body or request part exceeded its cap */
    IM_ETIMEOUT = -7,   /* upstream did not answer in time */
    IM_ERATELIMIT = -8, /* upstream said 429 */
    IM_EPOLICY = -9,    /* refused by our own policy (allowlist, SSRF) */
    IM_ESTORE = -10,    /* the cache database failed */
    IM_ENOMEM = -11,    /* out of memory */
    IM_EUPSTREAM = -12, /* upstream unreachable or 5xx */
    IM_EINTERNAL = -13, /* a bug: should not happen */
    IM_EBUSY = -14,     /* too many upstream resolutions at once (--max-resolutions) */
    IM_EDBDOWN = -15,   /* the shared cache database (PostgreSQL) is unreachable */
};

/* Human-readable message for a failure, filled by the function that failed.
 * Short and fixed-size so it can live on the stack (like json_error_t). */
#define IM_ERRMSG_MAX 320
struct im_error {
    char msg[IM_ERRMSG_MAX];
};

/* Static text for a code ("invalid reference", ...); never NULL. */
const char *im_strerror(int code);
/* Stable snake_case name for a code ("invalid_reference", ...); never NULL. */
const char *im_errname(int code);
/* Formats the message into err (when err is not NULL) and returns code, so a
 * failure site reads `return im_seterr(err, IM_EINVAL, "bad tag %s", t);`. */
int im_seterr(struct im_error *err, int code, const char *fmt, ...) IM_PRINTF(3, 4);

/* Bounded sizes of the textual pieces we keep. */
#define IM_DIGEST_MAX 160 /* "sha512:" + 128 hex + NUL fits */
#define IM_MEDIATYPE_MAX 256
#define IM_REGISTRY_MAX 256
#define IM_REPOSITORY_MAX 256 /* Docker's 255-char name limit + NUL */
#define IM_TAG_MAX 129        /* 128 chars + NUL */

/* A normalised image reference: docker.io/library/python:3.7-slim is
 * {registry "docker.io", repository "library/python", tag "3.7-slim"}.
 * Exactly one of tag / digest is non-empty after parsing a reference; both may
 * be set after resolution. */
struct im_ref {
    char registry[IM_REGISTRY_MAX];
    char repository[IM_REPOSITORY_MAX];
    char tag[IM_TAG_MAX];
    char digest[IM_DIGEST_MAX];
};

/* One verified upstream document (manifest, list/index, or config blob),
 * stored verbatim. body is owned by the bundle that holds it. */
struct im_doc {
    char digest[IM_DIGEST_MAX];
    char media_type[IM_MEDIATYPE_MAX];
    unsigned char *body;
    size_t len;
};

/* What a HEAD of a layer blob told us. size/last_modified are -1 when unknown. */
struct im_blob {
    char digest[IM_DIGEST_MAX];
    char media_type[IM_MEDIATYPE_MAX]; /* Content-Type of the HEAD, may be "" */
    int64_t size;                      /* Content-Length, -1 unknown */
    int64_t last_modified;             /* Unix seconds of Last-Modified, -1 unknown */
    int64_t checked_at; /* Unix seconds the registry said so; 0: just now */
};

/* Everything needed to describe one reference: root_digest names the document
 * the tag (or digest) points to; docs holds it, its children and their configs;
 * blobs the layer facts. An im_bundle is plain data owned by its holder. */
struct im_bundle {
    char root_digest[IM_DIGEST_MAX];
    struct im_doc *docs;
    size_t ndocs, capdocs;
    struct im_blob *blobs;
    size_t nblobs, capblobs;
};

void im_bundle_init(struct im_bundle *b);
/* Frees everything the bundle holds and re-initialises it; NULL is accepted. */
void im_bundle_free(struct im_bundle *b);
/* Copies body (len bytes) into the bundle. A digest already present is kept
 * as it is and 0 returned. IM_ENOMEM or IM_EINVAL (over-long strings). */
int im_bundle_add_doc(struct im_bundle *b, const char *digest, const char *media_type,
                      const void *body, size_t len) IM_WUR;
/* Adds or replaces the facts for blob->digest. */
int im_bundle_add_blob(struct im_bundle *b, const struct im_blob *blob) IM_WUR;
/* Borrowed pointers into the bundle, NULL when absent. */
const struct im_doc *im_bundle_find_doc(const struct im_bundle *b, const char *digest);
const struct im_blob *im_bundle_find_blob(const struct im_bundle *b, const char *digest);

/* Bounded string copy: copies at most n-1 bytes and NUL-terminates. Returns 0,
 * or -1 when src did not fit (dst then holds a truncated copy). */
int im_strlcpy(char *dst, const char *src, size_t n);
/* The directory part of path into dir (n bytes): "." when path has no '/',
 * "/" for a file in the root. 0, or -1 when it does not fit (dir is "" then). */
int im_path_dir(const char *path, char *dir, size_t n);

/* Comma-separated lists ("a, b,c"): the next entry at *p with blanks (space,
 * tab) trimmed, in *item and *len (0 for an empty entry); *p moves past it.
 * false when the list is used up. Usage:
 *   for (const char *p = csv, *it; im_csv_next(&p, &it, &len);) ... */
bool im_csv_next(const char **p, const char **item, size_t *len);

/* The one growing buffer of the project: NUL-terminated, bounded by max (set
 * it before the first append; a zeroed im_buf with max 0 accepts nothing).
 * Two ways to write: im_buf_append says each failure and may be called again
 * after one (a transfer's body); im_buf_put and im_buf_putn keep the first
 * failure in err and do nothing after it, for writers that check once, at
 * im_buf_finish (the renderers, the JSON writer of json.h). */
struct im_buf {
    char *p;
    size_t len, cap, max;
    int err; /* the first failure of im_buf_put/putn: IM_ETOOBIG, IM_ENOMEM */
};

/* Appends n bytes. IM_ETOOBIG when the buffer would exceed max (nothing is
 * appended), IM_ENOMEM. Release with free(b->p). */
int im_buf_append(struct im_buf *b, const void *data, size_t n) IM_WUR;
/* Makes room for n bytes (at most max) before the first append, so that a
 * body of that size takes one allocation: 0 or IM_ENOMEM. */
int im_buf_reserve(struct im_buf *b, size_t n) IM_WUR;
/* Appends n bytes (s: its strlen), unless a failure came before: a failure is
 * kept in b->err. */
void im_buf_putn(struct im_buf *b, const char *s, size_t n);
void im_buf_put(struct im_buf *b, const char *s);
/* Hands the NUL-terminated text to *out and its length to *len (the caller
 * frees it; nothing appended gives ""): 0, or b->err (the buffer is released,
 * *out NULL, *len 0). */
int im_buf_finish(struct im_buf *b, char **out, size_t *len) IM_WUR;

/* Replaces, in place, every byte that is not part of a valid UTF-8 sequence
 * (overlong forms, surrogates and code points past U+10FFFF included) with
 * '?', so text from the network or cut at a byte limit can go into JSON. */
void im_utf8_sanitize(char *s);
/* Length of the valid UTF-8 sequence that starts at s (1 to 4; 1 for an
 * ASCII byte), or 0 when the byte there does not start one (NUL excluded:
 * call it on a byte before the terminator). */
size_t im_utf8_len(const unsigned char *s);

/* 64-bit FNV-1a of n bytes, going on from h: IM_FNV1A_START for a new hash.
 * The start is one digit short of FNV's published offset basis (as the first
 * copies of this loop had it); rendered rows are stored under these values,
 * so neither may change. */
#define IM_FNV1A_START 1469598103934665603ULL
uint64_t im_fnv1a(uint64_t h, const void *data, size_t n);

/* Wall clock in Unix seconds, and a monotonic clock in milliseconds. */
int64_t im_now(void);
int64_t im_monotonic_ms(void);
/* The CLOCK_MONOTONIC time ms milliseconds from now, for
 * pthread_cond_timedwait on a condition set to that clock. */
struct timespec im_deadline_after_ms(long ms);

#endif
