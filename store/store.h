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
#include "outcome.h"

struct store;

/* The longest body (a document or a rendered answer) the store keeps
 * deflated: the largest cap the registry client can be given
 * (--max-config-bytes at most 256 MiB). A longer one is kept as it is; no
 * deflated row is ever inflated into more. */
#define STORE_BODY_MAX ((size_t)256 << 20)

/* The longest renderer identity store_set_renderer accepts, with its NUL. */
#define STORE_RENDERER_MAX 96

/* Opens (creating when missing) the database at path (":memory:" works for
 * tests), runs migrations. NULL on failure with err saying why (including a
 * database from a newer imgmeta, a file that is not an SQLite database, or an
 * SQLite database that belongs to something else); such a file is not
 * modified. A file that exists but cannot be written is opened read-only
 * (store_readonly). A file database gets a pool of up to 8 connections; ":memory:"
 * (and "", a private temporary database) gets exactly one, since every
 * connection would otherwise see its own empty database. The caller owns the
 * result and frees it with store_close. */
struct store *store_open(const char *path, struct im_error *err) IM_WUR;
/* store_open that also says, on failure, whether the file itself is damaged
 * (*damaged = true: not an SQLite database, corrupt, or failing PRAGMA
 * quick_check) as opposed to refused for another reason (a newer schema,
 * another program's database, permissions, memory). damaged may be NULL. */
struct store *store_open_ex(const char *path, bool *damaged, struct im_error *err) IM_WUR;
/* Moves a damaged database out of the way: path, path-wal and path-shm are
 * renamed to <path>.corrupt-<YYYYmmddTHHMMSSZ of now>[-wal|-shm]; moved_to
 * (n bytes) gets the new name of path. Never deletes anything. 0, IM_EINVAL,
 * IM_ESTORE (rename failed; err says why). */
int store_move_aside(const char *path, int64_t now, char *moved_to, size_t n,
                     struct im_error *err) IM_WUR;
/* True when the file could only be opened read-only (it, or its directory,
 * is not writable by this process): answers are read from it, every write
 * fails with IM_ESTORE. store_open does this instead of failing, so that a
 * read-only cache still serves. */
bool store_readonly(const struct store *s);
/* The schema version this build writes (an SQLite file's). */
int store_schema_version(void);
/* The schema version this build writes for s's backend. */
int store_schema_of(const struct store *s);
/* The schema version of the cache file at path as it is now, read without
 * changing it; 0 when there is none (no file, a new or private one, not
 * readable). A daemon asks before store_open, to say that a migration is
 * about to start. */
int store_file_schema(const char *path);
/* When store_open migrated the file from an older schema: that schema's
 * version, with *ms (may be NULL) the time the migration took; 0 when the
 * file was new or already current. */
int store_migrated_from(const struct store *s, int64_t *ms);
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
/* store_get_tag and store_get_miss in one read (a warm request needs both):
 * also sets *miss_until (may be NULL) to the tag's remembered miss, INT64_MIN
 * when none, whether or not the tag is stored (also on IM_ENOTFOUND). */
int store_lookup_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                     int64_t *miss_until, struct im_error *err) IM_WUR;

/* store_get_tag from the database itself, never from the rows kept in memory
 * (which it then refreshes): what another process sharing the store wrote
 * meanwhile is seen. */
int store_reread_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                     struct im_error *err) IM_WUR;
/* A round trip to the database: 0 when it answers, IM_EDBDOWN or IM_ESTORE
 * (for /readyz). */
int store_ping(struct store *s, struct im_error *err) IM_WUR;

/* How often (at most) store_lookup_tag looks whether another process removed
 * tags, when tag rows are kept in memory. */
#define STORE_TAG_MEMORY_WATCH_MS 10
/* Keeps up to `entries` tag rows in memory (rounded up to a power of two; 0,
 * the default, keeps none), so that looking up a remembered tag reads no
 * database: what store_lookup_tag read (the row, or its absence, and the
 * tag's miss) is answered again, and the caller decides freshness from it and
 * the clock as before. The least recently used row of a full set goes first.
 * Rows this process writes (store_put, store_touch_tag, store_note_access,
 * store_put_miss) are forgotten as they are written; tags removed by any
 * process (store_purge, store_enforce_budget: counted in the database) are
 * noticed by lookups within STORE_TAG_MEMORY_WATCH_MS of the removal's
 * commit. Another process's other writes (a tag pointed elsewhere, touched)
 * are seen once this process reads the row again (after a removal, or when
 * it writes the row itself, e.g. on revalidating at the end of the TTL).
 * Call once after store_open, before other threads use s. 0 or IM_ENOMEM
 * (then none are kept). */
int store_set_tag_memory(struct store *s, size_t entries, struct im_error *err) IM_WUR;
/* The tag rows held in memory now, and at most (both 0 when none are kept). */
void store_tag_memory_stats(struct store *s, size_t *used, size_t *capacity);

/* Freshness is a pure function of (row, now, ttl): true while
 * now - checked_at < ttl_seconds. ttl_seconds <= 0 means never fresh; a
 * checked_at in the future (the clock stepped back) counts as just checked. */
bool store_tag_fresh(const struct store_tag *t, int64_t now, int64_t ttl_seconds);

/* The freshness of a tag's row, a pure function of (row, now, policy):
 * STORE_FRESH while now - checked_at < ttl (answer from the cache);
 * STORE_STALE_REVALIDATE after that, while the entry may still be served if
 * the upstream fails (now - checked_at < ttl + max_stale);
 * STORE_TOO_STALE past that (revalidate, and on failure return the error).
 * ttl <= 0 is never fresh; max_stale <= 0 never serves stale; a checked_at in
 * the future (the clock stepped back) counts as just checked. */
enum store_freshness { STORE_FRESH = 0, STORE_STALE_REVALIDATE, STORE_TOO_STALE };
enum store_freshness store_freshness(const struct store_tag *t, int64_t now,
                                     int64_t ttl_seconds, int64_t max_stale_seconds);
/* Seconds of freshness left (0 when not fresh), for Cache-Control max-age. */
int64_t store_fresh_for(const struct store_tag *t, int64_t now, int64_t ttl_seconds);

/* Stores a verified resolution in one transaction: every document and blob of
 * bundle, the membership of each under bundle->root_digest, and (when ref is
 * not NULL and has a tag) tag -> root_digest with checked_at = accessed_at =
 * now, and resolved_at = now when the tag is new or pointed elsewhere (kept
 * when the digest is unchanged); a remembered miss for the tag is forgotten.
 * Documents are stored once (an already stored digest is kept), deflated
 * when that saves space; what store_load and store_find_doc give back is
 * byte for byte what was put.
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
 * empty. IM_ESTORE also when a stored document is corrupt (its deflated bytes
 * are damaged, or inflate past its recorded length; a row kept as it is does
 * not hash to its digest): such a row is never given back as other bytes. IM_EINVAL,
 * IM_ENOMEM. */
int store_load(struct store *s, const char *root_digest, struct im_bundle *out,
               struct im_error *err) IM_WUR;

/* What a resolution need not fetch again (store_known.c). store_find_doc:
 * the document stored under digest, body malloc'd into out (the caller frees
 * it). store_find_blob: a layer's facts as registry answered them, when a
 * root of that registry holds the layer and its row was checked at or after
 * since. 0, IM_ENOTFOUND, IM_EINVAL, IM_ENOMEM, IM_ESTORE (also a corrupt
 * document, as for store_load). */
int store_find_doc(struct store *s, const char *digest, struct im_doc *out,
                   struct im_error *err) IM_WUR;
int store_find_blob(struct store *s, const char *registry, const char *digest,
                    int64_t since, struct im_blob *out, struct im_error *err) IM_WUR;

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

/* ---- a store shared by several processes (PostgreSQL, store_pg.c) ----
 *
 * store_open takes a PostgreSQL connection URI (postgresql://... or
 * postgres://..., libpq's syntax) as its path: every replica pointed at the
 * same database shares documents, layer facts, tags and their freshness,
 * misses and counters. Rendered answers are not kept there (store_get_rendered
 * finds none, store_put_rendered keeps none): they stay in each replica's own
 * tiers. The database going away makes calls fail with IM_EDBDOWN; a
 * connection that was lost is replaced at the next call, so the store works
 * again as soon as the server is back. */

/* True when path names a PostgreSQL database (a postgresql:// or postgres://
 * URI) rather than an SQLite file. */
bool store_is_uri(const char *path);
/* True when s is shared by several processes (a PostgreSQL store). */
bool store_shared(const struct store *s);
/* path as it may be shown (a URI's password left out) into out (n bytes). */
void store_safe_name(const char *path, char *out, size_t n);

/* A lease: one resolution of key (e.g. a reference) at a time across every
 * process sharing the store. PostgreSQL: an advisory lock held by a
 * connection of the lease's own, which ends with that connection (a killed
 * replica's lease goes when its connections close). Waits up to wait_ms
 * while another process holds it (*waited, may be NULL, says whether it
 * waited; the caller then looks in the store before resolving). 0 with *out
 * (give it back with store_lease_give); IM_ETIMEOUT still held elsewhere
 * after wait_ms; IM_EBUSY every lease connection in use; IM_EDBDOWN,
 * IM_ENOMEM, IM_EINVAL. On a store that is not shared: 0 at once, *out
 * NULL. */
struct store_lease;
int store_lease_take(struct store *s, const char *key, int64_t wait_ms,
                     struct store_lease **out, bool *waited, struct im_error *err) IM_WUR;
/* Gives l back (NULL is accepted). */
void store_lease_give(struct store *s, struct store_lease *l);

/* ---- tag history (store_history.c) ----
 *
 * Every time store_put stores a tag pointing somewhere other than where it
 * was last seen (or for the first time), the tag's history gains a change:
 * when (now), the new digest, the one before ("" for the first sighting) and
 * each platform's total size. Whoever calls store_put records it: a
 * request's resolution, a revalidation that found a new digest, any later
 * caller. The history is shared by every process using the store, bounded
 * per tag (the oldest changes go first), and goes with its tag (purge,
 * eviction: then the next sighting is a first one again). */

/* Changes kept per tag; a new one past it drops the oldest. */
#define STORE_HISTORY_MAX 100
/* Platforms recorded per change (a list's entries past it are not). */
#define STORE_HISTORY_PLATFORMS 64
/* The longest platform string recorded, NUL included (a longer one is
 * left out of the change rather than cut). */
#define STORE_PLATFORM_MAX 128

struct store_platform_size {
    char platform[STORE_PLATFORM_MAX]; /* "linux/amd64", "linux/arm/v7" */
    int64_t total_size;                /* bytes, -1 when unknown */
};

/* What a change records of each platform of an image: fn fills out (at most
 * max entries, *n of them) from the bundle of a resolution of ref; 0, or a
 * failure (the change is then recorded without platforms). Pure; called
 * inside store_put's write transaction, only when the tag moved. */
typedef int (*store_sizes_fn)(const struct im_ref *ref, const struct im_bundle *bundle,
                              struct store_platform_size *out, size_t max, size_t *n);
/* Sets it (NULL: changes record no platforms). Call once after store_open,
 * before other threads use s. */
void store_set_sizes_fn(struct store *s, store_sizes_fn fn);

struct store_change {
    int64_t seq;  /* the change's number for its tag: 1, 2, ... (the page cursor) */
    int64_t seen; /* Unix seconds */
    char digest[IM_DIGEST_MAX];
    char previous[IM_DIGEST_MAX]; /* "" for the first sighting */
    struct store_platform_size *platforms;
    size_t n_platforms;
};

/* Up to max of ref's tag's changes older than change number before (0 or
 * less: from the newest), newest first, into *out (malloc'd; free with
 * store_changes_free) and *n; *more says whether older ones remain. A tag
 * never seen has none (0, *n 0). 0, IM_EINVAL, IM_ENOMEM, IM_ESTORE (a row
 * that does not read back), IM_EDBDOWN. */
int store_get_history(struct store *s, const struct im_ref *ref, int64_t before,
                      size_t max, struct store_change **out, size_t *n, bool *more,
                      struct im_error *err) IM_WUR;
void store_changes_free(struct store_change *c, size_t n);

/* Counts for logs and tests. */
struct store_stats {
    int64_t documents, blobs, tags;
    int64_t bytes;          /* database file size (page_count * page_size) */
    int64_t doc_bytes;      /* documents' bodies as stored (deflated or not) */
    int64_t misses;         /* remembered misses, expired or not */
    int64_t used_bytes;     /* pages in use ((page_count - freelist_count) * page_size) */
    int64_t roots;          /* (repository, root digest) answers held */
    int64_t rendered;       /* rendered answers kept (store_put_rendered) */
    int64_t rendered_bytes; /* their bodies, as stored (as doc_bytes) */
};
/* Fills *out. 0, IM_EINVAL (out NULL), IM_ESTORE. */
int store_stats(struct store *s, struct store_stats *out, struct im_error *err) IM_WUR;

/* ---- rendered answers (store_rendered.c) ---- */

/* Rendered answers are kept so that a warm answer no in-memory cache holds
 * costs one indexed read instead of parsing and rendering. Each row names the
 * renderer that produced it; a renderer fix must apply to what is already
 * cached, so rows of any other renderer are never served.
 *
 * store_set_renderer names the renderer of this process (a string that
 * changes whenever the renderer's code does) and deletes every row of another
 * renderer (nothing is deleted from a read-only store: such rows are only
 * never read). Call it once after store_open, before other threads use s.
 * Until it is called, get finds nothing and put keeps nothing. *dropped (may
 * be NULL) gets how many rows went. 0, IM_EINVAL (identity empty or longer
 * than STORE_RENDERER_MAX - 1), IM_ESTORE. */
int store_set_renderer(struct store *s, const char *identity, int64_t *dropped,
                       struct im_error *err) IM_WUR;

/* The answer rendered under key (klen bytes; it starts with the root digest
 * and a NUL byte) by this process's renderer: 0 with *body (malloc'd, NUL
 * after its *len bytes; the caller frees it), IM_ENOTFOUND (none, or only
 * another renderer's), IM_EINVAL, IM_ENOMEM, IM_ESTORE. */
int store_get_rendered(struct store *s, const void *key, size_t klen, char **body,
                       size_t *len, struct im_error *err) IM_WUR;

/* Keeps body (len bytes) as the answer under key for ref's registry and
 * repository, replacing an earlier one. Kept only while that repository claims
 * the root (a root it does not claim keeps nothing, and 0 is returned): purge,
 * gc and the budget collect the row with the claim; the budget drops rendered
 * rows before any upstream data. A store_put of the root forgets its rows
 * (the stored data may have changed what the answer says). 0, IM_EINVAL (key
 * does not start with a root digest and NUL), IM_ESTORE. */
int store_put_rendered(struct store *s, const struct im_ref *ref, const void *key,
                       size_t klen, const char *body, size_t len,
                       struct im_error *err) IM_WUR;

/* ---- housekeeping (store_gc.c) ---- */

/* What a housekeeping call removed. */
struct store_removed {
    int64_t tags, roots, documents, blobs, misses, rendered;
};

/* Forgets ref: for a tag, the tag and its remembered miss; for a digest
 * reference, the repository's claim on that root and every tag of the
 * repository pointing to it. Then collects what nothing references any more
 * (as store_gc). *out (may be NULL) is filled. 0 (also when nothing was
 * stored), IM_EINVAL, IM_ESTORE. */
int store_purge(struct store *s, const struct im_ref *ref, struct store_removed *out,
                struct im_error *err) IM_WUR;

/* Garbage collection in one transaction: expired misses (until <= now),
 * members of roots no repository claims, documents and blobs no root holds
 * (a root a repository claims stays: digest references are cached for good,
 * until purged or evicted by the budget);
 * then gives free pages back to the file system when the database allows it
 * (auto_vacuum=INCREMENTAL, the default for databases created by this
 * version). *out (may be NULL) is filled. 0 or IM_ESTORE. */
int store_gc(struct store *s, int64_t now, struct store_removed *out,
             struct im_error *err) IM_WUR;

/* Keeps the database under max_bytes of used pages: when it holds more, evicts
 * roots no tag points to, then the least recently accessed tags (never keep's
 * tag, when keep is not NULL), collecting what they held, until it is under
 * 80% of max_bytes or nothing evictable is left. Cheap when under budget (two
 * pragma reads). max_bytes <= 0 disables it. *out (may be NULL) is filled.
 * 0 or IM_ESTORE. */
int store_enforce_budget(struct store *s, int64_t max_bytes, const struct im_ref *keep,
                         int64_t now, struct store_removed *out,
                         struct im_error *err) IM_WUR;

/* PRAGMA integrity_check and quick_check, then every body read back: each
 * document (inflated where it is kept deflated) must hash to its digest
 * (Docker schema 1 manifests, whose digest may cover only their payload, must
 * only read back), each rendered answer must read back. 0 when all is well;
 * IM_ESTORE with the first problems in err otherwise. */
int store_check(struct store *s, struct im_error *err) IM_WUR;

/* Persistent request counters, so that `imgmeta cache stats` can report a
 * hit ratio across restarts: one per answer outcome that has a stored name
 * (outcome.h), indexed by it. store_add_counters adds delta in one small
 * transaction; store_get_counters reads the totals. 0 or IM_ESTORE. */
struct store_counters {
    int64_t n[IM_OUTCOME__COUNT];
};
int store_add_counters(struct store *s, const struct store_counters *delta,
                       struct im_error *err) IM_WUR;
int store_get_counters(struct store *s, struct store_counters *out,
                       struct im_error *err) IM_WUR;

#endif
