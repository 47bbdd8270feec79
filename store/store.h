/* store.h - the SQLite cache: documents by digest, layer facts by digest,
 * tag resolutions. Content-addressed: a document is stored once however many
 * tags point to it.
 *
 * Thread-safety: a struct store may be used from any number of threads at
 * once; it keeps a small pool of connections and locks inside. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "im.h"

struct store;

/* Opens (creating when missing) the database at path (":memory:" works for
 * tests), runs migrations. NULL on failure with err saying why (including a
 * database from a newer imgmeta). */
struct store *store_open(const char *path, struct im_error *err) IM_WUR;
void store_close(struct store *s);

/* A tag's cached resolution. */
struct store_tag {
    char digest[IM_DIGEST_MAX];
    int64_t resolved_at; /* when the digest was first seen for this tag */
    int64_t checked_at;  /* when upstream last confirmed it */
};

/* Looks up ref's tag (registry, repository, tag). 0 and *out filled, or
 * IM_ENOTFOUND when never resolved, IM_ESTORE. */
int store_get_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                  struct im_error *err) IM_WUR;

/* Freshness is a pure function of (row, now, ttl): true while
 * now - checked_at < ttl_seconds. */
bool store_tag_fresh(const struct store_tag *t, int64_t now, int64_t ttl_seconds);

/* Stores a verified resolution in one transaction: every document and blob of
 * bundle, the membership of each under bundle->root_digest, and (when ref has
 * a tag) tag -> root_digest with resolved_at/checked_at = now. */
int store_put(struct store *s, const struct im_ref *ref, const struct im_bundle *bundle,
              int64_t now, struct im_error *err) IM_WUR;

/* Loads everything stored under root_digest into out (which must be
 * initialised and empty). IM_ENOTFOUND when root_digest was never stored. */
int store_load(struct store *s, const char *root_digest, struct im_bundle *out,
               struct im_error *err) IM_WUR;

/* Counts for logs and tests. */
struct store_stats {
    int64_t documents, blobs, tags;
    int64_t bytes; /* database file size (page_count * page_size) */
};
int store_stats(struct store *s, struct store_stats *out, struct im_error *err) IM_WUR;

#endif
