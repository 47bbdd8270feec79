/* store_int.h - what the store's own files share: the connection pool and the
 * prepared-statement table. Not part of the module's contract (store.h is).
 *
 * Thread-safety: a struct store__conn belongs to one thread between
 * store__conn_get and store__conn_put; the pool itself locks inside. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store.h"

/* Every statement a connection prepares once when it is opened. The SQL of
 * each is in a table of the file that runs it (struct store__sql, below). */
enum store__stmt {
    ST_BEGIN, /* BEGIN IMMEDIATE: writers take the write lock up front */
    ST_COMMIT,
    ST_ROLLBACK,
    ST_WRITE_LOCK, /* PostgreSQL: the fleet's one writer at a time (tx_begin) */
    ST_HAS_DOC,    /* is a digest's document stored? (then it is not packed again) */
    ST_PUT_DOC,    /* documents: insert, keep an existing digest */
    ST_PUT_BLOB,   /* blobs: upsert, unknowns never erase knowns */
    ST_PUT_MEMBER, /* members: (root, digest, kind) */
    ST_ROOT_OK,    /* is the root stored as a root? */
    ST_PUT_TAG,    /* tags: upsert, resolved_at only moves with the digest */
    ST_DEL_MISS,
    ST_GET_TAG,
    ST_TOUCH_TAG,
    ST_NOTE_ACCESS,
    ST_PUT_MISS,
    ST_GET_MISS,
    ST_LOAD,       /* members of a root joined with their rows */
    ST_KNOWN_DOC,  /* a document by digest (store_known.c; store_put: does it read back?)
                    */
    ST_KNOWN_BLOB, /* a layer's facts, as one registry said them (store_known.c) */
    ST_STATS,
    ST_PUT_REPO_ROOT, /* repo_roots: the repository a root was resolved from */
    ST_HAS_REPO_ROOT,
    /* housekeeping (store_gc.c) */
    ST_GC_MISSES,    /* expired misses */
    ST_GC_MEMBERS,   /* members of roots no repository claims */
    ST_GC_DOCS,      /* documents no root holds */
    ST_GC_BLOBS,     /* blobs no root holds */
    ST_ORPHAN_ROOTS, /* repository roots no tag of the repository points to */
    ST_LRU_TAGS,     /* the least recently accessed tags, except one */
    ST_DEL_TAG,
    ST_DEL_MISS_KEY,  /* a miss by (registry, repository, key) */
    ST_DEL_REPO_ROOT, /* one repository's claim on a root */
    ST_DEL_TAGS_TO,   /* a repository's tags pointing to a root */
    ST_USED_BYTES,
    ST_ADD_COUNTER,
    ST_GET_COUNTERS,
    ST_GET_COUNTER, /* one counter by name (the tag removals other processes make) */
    /* rendered answers (store_rendered.c) */
    ST_GET_RENDERED,
    ST_PUT_RENDERED,       /* only while the repository claims the root */
    ST_DEL_RENDERED_ROOT,  /* a root's rows */
    ST_GC_RENDERED,        /* rows whose (repository, root) claim is gone */
    ST_DROP_RENDERED,      /* every row: the budget's first resort */
    ST_DROP_OTHER_RENDERS, /* rows of another renderer */
    ST_CHECK_BODIES,       /* every stored body (store_check) */
    ST_PING,               /* a round trip (store_ping) */
    /* tag history (store_history.c) */
    ST_HIST_LAST, /* a tag's newest change: its number and digest */
    ST_HIST_ADD,
    ST_HIST_TRIM,  /* a tag's changes past STORE_HISTORY_MAX, oldest first */
    ST_HIST_GET,   /* a page of a tag's changes, newest first */
    ST_GC_HISTORY, /* the history of tags no longer stored (store_gc.c) */
    ST__COUNT
};

/* One statement's SQL. Each file lists the statements it runs, next to its
 * code, in a table ended by {ST__COUNT, NULL}; a connection prepares every
 * statement of every table (store_pool.c), and one no table lists is a bug
 * it reports. */
struct store__sql {
    enum store__stmt id;
    const char *text;
};
extern const struct store__sql store__sql_tx[], store__sql_put[], store__sql_tags[],
    store__sql_known[], store__sql_gc[], store__sql_rendered[], store__sql_history[];
/* The same statements in PostgreSQL's dialect ($N parameters, explicit casts
 * where a parameter's type cannot be inferred). A statement a PostgreSQL
 * store never runs (rendered answers, which stay in each replica's own
 * tiers) is absent. */
extern const struct store__sql store__pg_sql_tx[], store__pg_sql_put[],
    store__pg_sql_tags[], store__pg_sql_known[], store__pg_sql_gc[],
    store__pg_sql_history[];

/* The two backends. */
enum store__backend { STORE__SQLITE = 0, STORE__PG = 1 };
/* True when path is a PostgreSQL connection URI (postgresql:// or
 * postgres://). */
bool store__is_pg_uri(const char *path);

struct store__conn;

/* ---- one statement of a connection, either backend (store_sql.c) ----
 * The store's files bind, step and read columns through these, whichever
 * database is underneath; the results are SQLite's codes (SQLITE_OK from a
 * bind, SQLITE_ROW or SQLITE_DONE from a step, anything else a failure,
 * described by store__errmsg). A bound pointer must stay valid until the
 * statement is stepped (SQLite's SQLITE_STATIC; PostgreSQL sends the
 * parameters at the first step). PostgreSQL runs the whole statement at the
 * first step and keeps its rows (binary results); each step moves to the
 * next one. */
#define STORE__PG_PARAMS 8
struct store__q {
    struct store__conn *c;
    sqlite3_stmt *lite; /* SQLite: the prepared statement */
    /* PostgreSQL: the prepared statement's name is "s<id>" */
    int id;
    int nparams; /* what the statement takes (its highest $N) */
    const char *val[STORE__PG_PARAMS];
    int len[STORE__PG_PARAMS], fmt[STORE__PG_PARAMS];
    char num[STORE__PG_PARAMS][24];
    bool absent;   /* PostgreSQL: a statement it never runs: no rows, no changes */
    PGresult *res; /* NULL until the first step */
    int row, nrows;
};
int store__bind_text(struct store__q *q, int i, const char *v);
int store__bind_textn(struct store__q *q, int i, const char *v, size_t n);
/* The parameters the statement takes. */
int store__param_count(struct store__q *q);
int store__bind_int(struct store__q *q, int i, int64_t v);
int store__bind_null(struct store__q *q, int i);
int store__bind_blob(struct store__q *q, int i, const void *p, size_t n);
int store__step(struct store__q *q);
bool store__col_null(struct store__q *q, int i);
int64_t store__col_int(struct store__q *q, int i);
const char *store__col_text(struct store__q *q, int i);
const void *store__col_blob(struct store__q *q, int i);
size_t store__col_bytes(struct store__q *q, int i);
/* Rows the connection's last statement changed. */
int64_t store__changes(struct store__conn *c);
/* The connection's last error, in words. */
const char *store__errmsg(struct store__conn *c);
/* The connection is inside a transaction. */
bool store__in_tx(struct store__conn *c);
/* Runs sql (no parameters, no rows wanted) on c: SQLITE_OK or a failure. */
int store__exec_sql(struct store__conn *c, const char *sql);

/* s is NUL-terminated within cap bytes (and not empty, when nonempty). */
bool store__str_ok(const char *s, size_t cap, bool nonempty);
/* ref names a repository and, when need_tag, a tag: 0 or IM_EINVAL. */
int store__ref_check(const struct im_ref *ref, bool need_tag, struct im_error *err);
/* Binds ?1 registry, ?2 repository, ?3 key (the tag, or a digest): SQLITE_OK
 * or SQLite's error. */
int store__bind_key(struct store__q *st, const struct im_ref *ref, const char *key);
/* Steps c's statement which, which returns no row, then resets it: 0, or
 * IM_ESTORE with err saying what failed. */
int store__step_done(struct store__conn *c, enum store__stmt which, const char *what,
                     struct im_error *err);

/* An integer column, -1 when it is NULL (unknown). */
int64_t store__column_int_or_unknown(struct store__q *st, int i);

/* Member kinds in members.kind. members.root and members.digest are digest
 * keys: a sha256 digest's 32 bytes, any other digest's text (the SQL
 * functions im_dkey and im_dtext, store_pool.c). */
enum { STORE__KIND_DOC = 0, STORE__KIND_BLOB = 1 };

struct store__conn {
    struct store *s;
    sqlite3 *db;      /* SQLite */
    PGconn *pg;       /* PostgreSQL */
    bool broken;      /* PostgreSQL: the connection was lost; closed, not reused */
    bool timed_out;   /* PostgreSQL: ... because the server stopped answering */
    int64_t changes;  /* PostgreSQL: rows the last statement changed */
    char pg_err[256]; /* PostgreSQL: the last failure, in words */
    struct store__q st[ST__COUNT];
    struct store__conn *next_all;  /* every connection, for store_close */
    struct store__conn *next_free; /* idle connections */
};

struct store {
    enum store__backend backend;
    char *path;
    char *name; /* what sqlite3_open_v2 gets: path, or a read-only URI */
    int open_flags;
    bool readonly;     /* the file cannot be written: reads only, writes fail */
    int migrated_from; /* store_migrated_from: the file's schema, 0: no migration */
    int64_t migrate_ms;
    int max_conns;           /* 8 for a file, 1 for a private (":memory:") database */
    int nconns;              /* open plus being opened, <= max_conns */
    struct store__conn *all; /* guarded by mu */
    struct store__conn *idle;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a connection is returned or a slot frees */
    /* store_set_renderer: set once before threads use the rendered rows; ""
     * means none (nothing rendered is read or written) */
    char renderer[STORE_RENDERER_MAX];
    /* store_set_tag_memory: tag rows kept in memory (NULL: none), and how far
     * this process has followed the tag removals of every process */
    struct store__tagmap *tags;
    /* PostgreSQL: connections kept for leases (store_lease_take), idle */
    struct store__lease_conn *lease_idle;
    int lease_conns; /* open, idle or held, <= STORE__LEASE_CONNS */
    /* store_set_sizes_fn: what a tag's history records of each platform
     * (NULL: no platforms); set once before threads use s */
    store_sizes_fn sizes;
    _Atomic int64_t removals_checked_ms; /* monotonic ms of the last look */
    _Atomic int64_t removals_seen;       /* the counter's value then */
};

/* Takes an idle connection, opening a new one while fewer than max_conns
 * exist, else waits for one. 0 or IM_ESTORE / IM_ENOMEM (opening failed). */
int store__conn_get(struct store *s, struct store__conn **out, struct im_error *err);
/* Returns c to the pool (rolling back a transaction left open, as a net). */
void store__conn_put(struct store *s, struct store__conn *c);

/* One statement of a pooled connection, for one read or one-statement write:
 * open takes a connection (waiting as store__conn_get does) and its prepared
 * statement which; bind and step cur->st between the two (cur->c->db for the
 * error text); close resets the statement, clears its bindings and gives the
 * connection back, whatever happened (a zeroed cursor closes as a no-op).
 * open: 0 or store__conn_get's error. */
struct store__cursor {
    struct store *s;
    struct store__conn *c;
    struct store__q *st;
};
int store__cursor_open(struct store *s, enum store__stmt which, struct store__cursor *cur,
                       struct im_error *err);
void store__cursor_close(struct store__cursor *cur);

/* A write transaction on c: begin takes the write lock (BEGIN IMMEDIATE); end
 * commits when rc is 0, and rolls back (unless SQLite already did) when rc is
 * not or the commit failed; it returns rc, or the commit's failure. */
int store__tx_begin(struct store__conn *c, struct im_error *err);
int store__tx_end(struct store__conn *c, int rc, struct im_error *err);

/* ---- PostgreSQL (store_pg.c) ----
 * conn_open: one connection to s->path, every statement of the PostgreSQL
 * tables prepared; the first one of a store (setup) also creates or migrates
 * the schema, once for the fleet, under a lock the others wait on.
 * leases_close: the connections kept for leases. sql_of: a statement's SQL in
 * a backend's dialect (NULL: that backend does not run it). safe_name: the
 * URI without its password, for messages. */
int store__pg_conn_open(struct store *s, bool setup, struct store__conn **out,
                        struct im_error *err);
void store__pg_leases_close(struct store *s);
/* c, found lost, connected again with its statements prepared again: 0, or
 * IM_EDBDOWN (c stays broken). */
int store__pg_revive(struct store__conn *c);
/* One bounded round trip on c: a prepared statement (name) or sql, binary
 * results (sql without parameters: any number of statements, text results).
 * NULL when it timed out or the connection was lost (c->broken and c->pg_err
 * say so); else the result, whatever its status. */
PGresult *store__pg_exec(struct store__conn *c, const char *name, const char *sql,
                         int nparams, const char *const *val, const int *len,
                         const int *fmt);
/* How long one round trip to PostgreSQL may take, and how many connections a
 * store keeps for leases (each held while its lease is). */
#define STORE__PG_TIMEOUT_MS 15000
#define STORE__LEASE_CONNS 32
/* The write lock's advisory key (class, object), as SQL. */
#define STORE__PG_WRITE_LOCK "4803143, 2"
const char *store__sql_of(enum store__backend b, enum store__stmt which);
void store__conn_free(struct store__conn *c);

/* ---- the file (store_schema.c) ----
 * schema_setup: what a store's first connection checks and does before any
 * other use (ours, not damaged, WAL, migrated; *damaged when the file itself
 * is damaged); register_functions: im_dkey and im_dtext, on every connection
 * before it migrates. exec and open_failure: a statement run at open, and the
 * error of one, worded for a file that is not ours. */
int store__schema_setup(struct store *s, sqlite3 *db, bool *damaged,
                        struct im_error *err);
int store__register_functions(sqlite3 *db);
bool store__is_private_db(const char *path);
int store__exec(sqlite3 *db, const char *path, const char *sql, struct im_error *err);
int store__open_failure(sqlite3 *db, const char *path, const char *what,
                        struct im_error *err);

/* Formats "<what>: <sqlite3_errmsg(db)>" into err; returns IM_ESTORE. Call it
 * before resetting the statement that failed. */
int store__fail(struct im_error *err, struct store__conn *c, const char *fmt, ...)
    IM_PRINTF(3, 4);
/* Forgets the rendered answers of root (its data is being stored again, and
 * may say more than when they were rendered). Inside the caller's
 * transaction. 0 or IM_ESTORE. */
int store__forget_rendered(struct store__conn *c, const char *root, struct im_error *err);
/* ---- tag rows in memory (store_tagmap.c) ----
 * Thread-safe. get: 1 when ref's tag is remembered (*found says whether it is
 * stored; *out and *miss_until as store_lookup_tag's), 0 when it must be
 * read, with *ticket taken: put keeps what was read (t NULL: not stored) only
 * if no forget or flush came after the ticket. forget: a row of ref's
 * registry and repository under key_part (a tag, or the digest of a miss)
 * was written; call it after the commit. flush: every row is forgotten
 * (tags were removed). */
struct store__tagmap;
struct store__tagmap_ticket {
    uint64_t gen, seq;
};
struct store__tagmap *store__tagmap_new(size_t entries);
void store__tagmap_free(struct store__tagmap *m);
size_t store__tagmap_capacity(const struct store__tagmap *m);
size_t store__tagmap_used(struct store__tagmap *m);
int store__tagmap_get(struct store__tagmap *m, const struct im_ref *ref,
                      struct store_tag *out, int64_t *miss_until, bool *found,
                      struct store__tagmap_ticket *ticket);
void store__tagmap_put(struct store__tagmap *m, const struct im_ref *ref,
                       const struct store__tagmap_ticket *ticket,
                       const struct store_tag *t, int64_t miss_until);
void store__tagmap_forget(struct store__tagmap *m, const struct im_ref *ref,
                          const char *key_part);
void store__tagmap_flush(struct store__tagmap *m);

/* Tags were removed in c's open transaction (purge, eviction): counts it in
 * the counters table, so that every process's tag memory sees it. 0 or
 * IM_ESTORE. After the commit, flush this process's map. */
#define STORE__TAG_REMOVALS "tag_removals" /* its name in the counters table */
int store__note_tag_removal(struct store__conn *c, struct im_error *err);

/* ---- how a body is kept in its row (store_codec.c) ----
 * documents.body and rendered.body hold a body as it is (STORE__RAW: every
 * row of a database from before schema 5) or deflated when that saves at
 * least an eighth of a body of STORE__PACK_MIN bytes or more: its length,
 * then a zlib stream, made with no dictionary (STORE__DEFLATE: what releases
 * before encoding 2 wrote) or with store__dict1 (STORE__DEFLATE_DICT1: what
 * is written now, documents and rendered answers alike). The row's encoding
 * column says which; every one of them stays readable.
 * Thread-safe: no state. */
enum { STORE__RAW = 0, STORE__DEFLATE = 1, STORE__DEFLATE_DICT1 = 2 };
#define STORE__PACK_MIN 256
/* Levels 1 to 3 are zlib's fast ones (this runs on the cold request's path);
 * on a 7-platform image 3 costs what 1 does and its answers come out 8%
 * smaller. */
#define STORE__DEFLATE_LEVEL 3

/* The preset dictionary of STORE__DEFLATE_DICT1 (store_dict.c): part of the
 * on-disk format, never edited. */
extern const unsigned char store__dict1[];
extern const size_t store__dict1_len;

/* A body and the bytes of its row. */
struct store__body {
    const void *p; /* len bytes: the caller's, the row's, or buf's */
    size_t len;
    int encoding;       /* of the row */
    unsigned char *buf; /* owned: what was deflated, or inflated into */
    size_t cap;
};

/* What to store for body (len bytes): out->p and out->len are the row's
 * bytes, out->encoding its encoding; out->p is body itself when it is kept as
 * it is (too small, too large for STORE_BODY_MAX, or not worth deflating).
 * 0 or IM_ENOMEM. Release out with store__body_free. */
int store__pack(const void *body, size_t len, struct store__body *out) IM_WUR;
/* The body a row (n bytes, stored with encoding) holds: b->p and b->len are
 * the row's own bytes for STORE__RAW (valid while the row is), else b->buf,
 * grown as needed and NUL-terminated after the body (b may be reused for the
 * next row; zero it before the first use). 0; IM_ESTORE when the row is
 * corrupt, with *why saying how (static text): an unknown encoding, a length
 * over STORE_BODY_MAX or over what its bytes can inflate to, a damaged
 * stream, one that does not ask for its encoding's dictionary (or asks for
 * another), or a body that is not exactly the length it records; IM_ENOMEM. */
int store__unpack(int encoding, const void *row, size_t n, struct store__body *b,
                  const char **why) IM_WUR;
/* store__unpack of the row st is on: the body in column body_col, its
 * encoding in enc_col. */
int store__unpack_column(struct store__q *st, int body_col, int enc_col,
                         struct store__body *b, const char **why) IM_WUR;
/* The body of an unpacked b as a malloc'd buffer with a NUL after it, for the
 * caller to free: b's own buffer (taken from b) when the body was inflated,
 * else a copy. 0 or IM_ENOMEM. */
int store__body_take(struct store__body *b, unsigned char **out) IM_WUR;
/* Frees b's buffer and zeroes b. */
void store__body_free(struct store__body *b);
/* A document's body b (unpacked) against its digest: 0, IM_ESTORE with *why,
 * or the hash's own failure (IM_ENOMEM: no verdict on the row). A deflated
 * row's checksum already covered it (always_hash: check anyway, for `cache
 * check`); a row kept as it is has none, so it is hashed. A Docker schema 1 manifest
 * (media type application/vnd.docker.distribution. manifest.v1+...) is not: its digest
 * may cover only its payload. */
int store__doc_verify(const char *digest, const char *media_type,
                      const struct store__body *b, bool always_hash,
                      const char **why) IM_WUR;
/* A document's row as every reader takes it: store__unpack_column, then
 * store__doc_verify (no hash for a deflated row). */
int store__unpack_doc(struct store__q *st, int body_col, int enc_col, const char *digest,
                      const char *media_type, struct store__body *b,
                      const char **why) IM_WUR;

/* ---- tag history (store_history.c) ----
 * note: inside store_put's transaction, before the tag's row is written:
 * when ref's tag was last seen at another digest than root (or never), a
 * change is recorded (now, root, the digest before, each platform's total
 * size from b through s->sizes) and the tag's oldest changes past
 * STORE_HISTORY_MAX dropped. 0, IM_ESTORE, IM_ENOMEM. */
int store__history_note(struct store__conn *c, const struct im_ref *ref,
                        const struct im_bundle *b, int64_t now, struct im_error *err);

/* Resets st and clears its bindings (no bound pointer outlives the call that
 * bound it); a PostgreSQL statement's rows are freed. */
void store__done(struct store__q *st);

#endif
