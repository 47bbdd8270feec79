/* answers.c - rendered answers kept for the next request: the tiers and their
 * promotion policy (api_int.h, "Rendered answers"). The request handler
 * only asks "get, or render and put".
 *
 * The tiers, fastest first:
 *  1. the in-memory LRU (rcache.c): sent from its own bytes, no copy;
 *  2. the answers file (afile.c): sent from a descriptor of the answer's own
 *     (sendfile) when the server can, else read into a pooled block; one hit
 *     in ANSWERS_PROMOTE_EVERY is read and copied up into the LRU, so that an
 *     answer asked again and again moves up there soon while a random mix over
 *     more answers than the LRU holds does not churn it on every request;
 *  3. the store's rendered rows: an answer found there is copied up into both
 *     tiers above (it survives restarts and is shared by processes on the
 *     same database).
 * A fresh rendering is put into all three, the store's within its size
 * budget. The gzip encoding of an answer over API_GZIP_MIN bytes is made once,
 * when a request that accepts it first meets the answer, and kept in the two
 * tiers above the store under a key of its own (the store keeps the plain
 * bytes only: the encoding is made again from them after a restart). Thread-safety: every
 * function may be called from any thread; the tiers lock inside. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "api_int.h"
#include "metrics.h"
#include "store.h"

#define ANSWERS_PROMOTE_EVERY 16

struct api__answers {
    struct api__rcache *lru;
    struct api__afile *file; /* NULL: none (off, or it could not be made) */
    struct im_error file_err;
    _Atomic unsigned promotions; /* answers-file hits, to copy 1 in N to the LRU */
    bool promote;                /* there is an LRU to promote into */
    struct store *store;
    int64_t cache_max_bytes; /* the store's size budget; 0 = none */
};

struct api__answers *api__answers_new(const struct api_config *cfg, struct store *store)
{
    struct api__answers *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->lru = api__rcache_new(cfg->answer_cache_bytes);
    if (!t->lru) {
        free(t);
        return NULL;
    }
    t->promote = cfg->answer_cache_bytes > 0;
    t->store = store;
    t->cache_max_bytes = cfg->cache_max_bytes;
    /* without the answers file every answer is still served, only slower:
     * api__answers_file_error says why, for server/ to log */
    if (cfg->answer_file_bytes > 0 && cfg->answer_file_dir[0])
        t->file =
            api__afile_new(cfg->answer_file_dir, cfg->answer_file_bytes, &t->file_err);
    return t;
}

void api__answers_free(struct api__answers *t)
{
    if (!t)
        return;
    api__rcache_free(t->lru);
    api__afile_free(t->file);
    free(t);
}

const char *api__answers_file_error(const struct api__answers *t)
{
    return t->file_err.msg[0] ? t->file_err.msg : NULL;
}

void api__answers_stats(struct api__answers *t, struct api__afile_stats *out)
{
    api__afile_stats(t->file, out);
}

void api__answer_200(struct api_response *resp, const char *ctype, char *body, size_t len,
                     struct api_shared *shared)
{
    api__drop_body(resp);
    resp->status = 200;
    resp->content_type = ctype;
    resp->body = body;
    resp->len = len;
    resp->shared = shared;
    resp->content_encoding = NULL;
}

/* resp answers 200 with the len bytes at off of fd, a descriptor it now owns. */
static void answer_file_200(struct api_response *resp, const char *ctype, int fd,
                            uint64_t off, size_t len)
{
    api__answer_200(resp, ctype, NULL, len, NULL);
    resp->file_body = true;
    resp->file_fd = fd;
    resp->file_off = off;
}

/* Keeps an answer in the two tiers above the store. */
static void keep_above_store(struct api__answers *t, const char *key, size_t klen,
                             const char *body, size_t len, const char *ctype)
{
    api__afile_put(t->file, key, klen, body, len, ctype);
    api__rcache_put(t->lru, key, klen, body, len, ctype);
}

/* The answers file's tier: 0 with the answer in resp, IM_ENOTFOUND. */
static int from_file(struct api__answers *t, const char *key, size_t klen, bool file_ok,
                     struct api_response *resp)
{
    const char *held = NULL, *ctype = NULL;
    struct api_shared *shared = NULL;
    size_t len = 0;
    if (!t->file)
        return IM_ENOTFOUND;
    bool promote =
        t->promote && atomic_fetch_add(&t->promotions, 1) % ANSWERS_PROMOTE_EVERY == 0;
    if (file_ok && !promote) {
        int fd = -1;
        uint64_t off = 0;
        int rc = api__afile_open(t->file, key, klen, &fd, &off, &len, &ctype);
        if (rc == 0) {
            answer_file_200(resp, ctype, fd, off, len);
            return 0;
        }
        if (rc == IM_ENOTFOUND) /* a miss is not asked again below */
            return IM_ENOTFOUND;
    }
    if (api__afile_get(t->file, key, klen, &shared, &held, &len, &ctype) != 0)
        return IM_ENOTFOUND;
    if (promote)
        api__rcache_put(t->lru, key, klen, held, len, ctype);
    api__answer_200(resp, ctype, (char *)held, len, shared);
    return 0;
}

/* The two tiers above the store: 0 with the answer in resp, IM_ENOTFOUND. */
static int from_tiers(struct api__answers *t, const char *key, size_t klen, bool file_ok,
                      struct api_response *resp)
{
    const char *held = NULL, *held_ctype = NULL;
    struct api_shared *shared = NULL;
    size_t len = 0;
    /* sent as the LRU holds it: no copy (the response keeps it alive) */
    if (api__rcache_get(t->lru, key, klen, &held, &len, &held_ctype, &shared) == 0) {
        api__answer_200(resp, held_ctype, (char *)held, len, shared);
        return 0;
    }
    return from_file(t, key, klen, file_ok, resp);
}

int api__answers_get(struct api__answers *t, const char *key, size_t klen,
                     const char *ctype, bool file_ok, struct api_response *resp)
{
    char *body = NULL;
    size_t len = 0;
    if (!klen)
        return IM_ENOTFOUND;
    if (from_tiers(t, key, klen, file_ok, resp) == 0)
        return 0;
    /* a resolution that stored its root again forgot the root's rows; after a
     * revalidation (same digest) or a coalesced wait they still answer */
    if (store_get_rendered(t->store, key, klen, &body, &len, NULL) != 0)
        return IM_ENOTFOUND;
    keep_above_store(t, key, klen, body, len, ctype);
    api__answer_200(resp, ctype, body, len, NULL);
    return 0;
}

/* The gzip encoding of the len bytes at body: *out (malloc'd, NUL after its
 * *out_len bytes). 0, IM_ENOMEM, or IM_ETOOBIG past zlib's 32-bit counts. */
static int gzip_bytes(const char *body, size_t len, char **out, size_t *out_len)
{
    z_stream zs;
    char *buf = NULL;
    int rc = IM_ENOMEM;
    memset(&zs, 0, sizeof zs);
    if (len > UINT_MAX / 2)
        return IM_ETOOBIG;
    /* windowBits 15 + 16: a gzip wrapper (no name, mtime 0: the same bytes
     * for the same answer, whichever process made them) */
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return IM_ENOMEM;
    uLong cap = deflateBound(&zs, (uLong)len);
    buf = malloc(cap + 1);
    if (!buf)
        goto out;
    zs.next_in = (const Bytef *)body;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        goto out;
    buf[zs.total_out] = '\0';
    *out = buf;
    *out_len = zs.total_out;
    buf = NULL;
    rc = 0;
out:
    deflateEnd(&zs);
    free(buf);
    return rc;
}

int api__answers_put_gzip(struct api__answers *t, const char *gzkey, size_t gzklen,
                          const char *body, size_t len, const char *ctype,
                          struct api_response *resp)
{
    char *gz = NULL;
    size_t gzlen = 0;
    if (len <= API_GZIP_MIN || gzip_bytes(body, len, &gz, &gzlen) != 0)
        return 1;
    if (gzklen)
        keep_above_store(t, gzkey, gzklen, gz, gzlen, ctype);
    api__answer_200(resp, ctype, gz, gzlen, NULL); /* body may be resp's: used above */
    resp->content_encoding = "gzip";
    return 0;
}

int api__answers_get_gzip(struct api__answers *t, const char *key, size_t klen,
                          const char *gzkey, size_t gzklen, const char *ctype,
                          bool file_ok, struct api_response *resp)
{
    if (!klen || !gzklen)
        return IM_ENOTFOUND;
    if (from_tiers(t, gzkey, gzklen, file_ok, resp) == 0) {
        resp->content_encoding = "gzip";
        return 0;
    }
    /* the plain answer as bytes (not a descriptor), to compress */
    if (api__answers_get(t, key, klen, ctype, false, resp) != 0)
        return IM_ENOTFOUND;
    api__answers_put_gzip(t, gzkey, gzklen, resp->body, resp->len, ctype, resp);
    return 0; /* compressed, or plain: small (or no memory to compress) */
}

void api__answers_put(struct api__answers *t, const struct im_ref *ref, const char *key,
                      size_t klen, const char *body, size_t len, const char *ctype,
                      struct api_response *resp)
{
    struct im_error serr;
    const struct im_ref *keep = ref->tag[0] ? ref : NULL;
    if (!klen)
        return;
    keep_above_store(t, key, klen, body, len, ctype);
    if (store_readonly(t->store))
        return;
    /* a failure only costs a later render */
    if (store_put_rendered(t->store, ref, key, klen, body, len, &serr) == 0 &&
        (t->cache_max_bytes <= 0 ||
         store_enforce_budget(t->store, t->cache_max_bytes, keep, im_now(), NULL,
                              &serr) == 0))
        return;
    im_metric_inc(IM_STORE_WRITE_FAILURES);
    if (!resp->store_error[0])
        im_strlcpy(resp->store_error, serr.msg, sizeof resp->store_error);
}
