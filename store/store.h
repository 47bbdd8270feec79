/* store.h - the SQLite cache: documents by digest, layer facts by digest,
 * tag resolutions, and remembered misses. Content-addressed: a document is
 * stored once however many tags point to it.
 *
 * Thread-safety: a struct store may be used from any number of threads at
 * once; it keeps a small pool of connections and locks inside. Only
 * store_open and store_close must not race with other calls on the same
 * store. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "im.h"

struct store;

/* Opens (creating when missing) the database at path (":memory:" works for
 * tests), runs migrations. NULL on failure with err saying why (including a
 * database from a newer imgmeta, a file that is not an SQLite database, or an
 * SQLite database that belongs to something else); such a file is not
 * modified. A file database gets a pool of up to 8 connections; ":memory:"
 * (and "", a private temporary database) gets exactly one, since every
 * connection would otherwise see its own empty database. The caller owns the
 * result and frees it with store_close. */
struct store *store_open(const char *path, struct im_error *err) IM_WUR;
/* Closes every connection and frees s; NULL is accepted. No other call on s
 * may be running or follow. */
void store_close(struct store *s);

/* A tag's cached resolution. */
struct store_tag {
    char digest[IM_DIGEST_MAX];
    int64_t resolved_at; /* when the digest was first seen for this tag */
    int64_t checked_at;  /* when upstream last confirmed it */
    int64_t accessed_at; /* when it was last stored or served (store_note_access) */
};

/* Looks up ref's tag (registry, repository, tag). 0 and *out filled, or
 * IM_ENOTFOUND when never resolved, IM_ESTORE. */
int store_get_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                  struct im_error *err) IM_WUR;

/* Freshness is a pure function of (row, now, ttl): true while
 * now - checked_at < ttl_seconds. ttl_seconds <= 0 means never fresh; a
 * checked_at in the future (the clock stepped back) counts as just checked. */
bool store_tag_fresh(const struct store_tag *t, int64_t now, int64_t ttl_seconds);

/* Stores a verified resolution in one transaction: every document and blob of
 * bundle, the membership of each under bundle->root_digest, and (when ref is
 * not NULL and has a tag) tag -> root_digest with checked_at = accessed_at =
 * now, and resolved_at = now when the tag is new or pointed elsewhere (kept
 * when the digest is unchanged); a remembered miss for the tag is forgotten.
 * Documents are stored verbatim and once (an already stored digest is kept).
 * Blob facts are upserted; an unknown (-1 / "") never erases a known value.
 * The root document must be in bundle or already stored as a root (so a tag
 * can be pointed at a known digest with a bundle holding only root_digest).
 * All or nothing: on any failure nothing of this call is kept.
 * 0, IM_EINVAL (bundle or ref malformed, root unknown), IM_ESTORE. */
int store_put(struct store *s, const struct im_ref *ref, const struct im_bundle *bundle,
              int64_t now, struct im_error *err) IM_WUR;

/* Loads everything stored under root_digest into out (which must be
 * initialised and empty; the caller owns what is added and frees it with
 * im_bundle_free), with out->root_digest set. IM_ENOTFOUND when root_digest
 * was never stored as a root (a document stored only as a child of another
 * root is not an answer) or part of its answer is missing; out is then left
 * empty. IM_EINVAL, IM_ENOMEM, IM_ESTORE. */
int store_load(struct store *s, const char *root_digest, struct im_bundle *out,
               struct im_error *err) IM_WUR;

/* Records that upstream confirmed ref's tag is unchanged (a revalidation that
 * found the same digest): checked_at = max(checked_at, now); digest and
 * resolved_at are kept. When ref->digest is set, the tag is touched only if it
 * still points to that digest. 0, IM_ENOTFOUND (tag not stored, or it moved to
 * another digest meanwhile), IM_EINVAL, IM_ESTORE. */
int store_touch_tag(struct store *s, const struct im_ref *ref, int64_t now,
                    struct im_error *err) IM_WUR;

/* Records that ref's tag was just served (for least-recently-used eviction):
 * accessed_at = max(accessed_at, now). A tag that is not stored is not an
 * error. 0, IM_EINVAL, IM_ESTORE. */
int store_note_access(struct store *s, const struct im_ref *ref, int64_t now,
                      struct im_error *err) IM_WUR;

/* Negative cache. Remembers that ref (its tag, or its digest when it has no
 * tag) does not exist upstream, until the Unix time `until`; replaces an
 * earlier miss. A later store_put of the tag forgets it. 0, IM_EINVAL,
 * IM_ESTORE. */
int store_put_miss(struct store *s, const struct im_ref *ref, int64_t until,
                   struct im_error *err) IM_WUR;
/* 0 and *until when a miss is remembered for ref, expired or not (the miss is
 * in force while now < *until: the caller decides); IM_ENOTFOUND when none,
 * IM_EINVAL, IM_ESTORE. */
int store_get_miss(struct store *s, const struct im_ref *ref, int64_t *until,
                   struct im_error *err) IM_WUR;

/* *out = whether root was stored from ref's registry and repository (a
 * digest is only served from cache for the repository it came from). */
int store_has_root(struct store *s, const struct im_ref *ref, const char *root, bool *out,
                   struct im_error *err) IM_WUR;

/* Counts for logs and tests. */
struct store_stats {
    int64_t documents, blobs, tags;
    int64_t bytes;     /* database file size (page_count * page_size) */
    int64_t doc_bytes; /* sum of the stored documents' lengths */
    int64_t misses;    /* remembered misses, expired or not */
};
/* Fills *out. 0, IM_EINVAL (out NULL), IM_ESTORE. */
int store_stats(struct store *s, struct store_stats *out, struct im_error *err) IM_WUR;

#endif
