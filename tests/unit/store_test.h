/* store_test.h - what the store's unit tests (tests/unit/test_store_*.c) share:
 * images to store, temporary database files, and assertions that store, read
 * and compare (store_test.c). Each test runs in a process of its own
 * (Criterion), so none of this is shared between threads unless a test says so.
 * The headers the tests use come with it.
 *
 * One suite, two backends: SQLite, or PostgreSQL when the environment
 * variable IMGMETA_TEST_PG holds a base URI (postgresql:///imgmeta?host=DIR&
 * port=N; tests/unit/store-pg.sh starts a private server and sets it). There
 * every database a test names is a schema of its own in that database (see
 * db_name), and what is said behind the store's back (raw_exec, raw_int, ...)
 * goes to that schema. A test about SQLite alone says so with SQLITE_ONLY, a
 * test about PostgreSQL alone with PG_ONLY: each is skipped, saying why, on
 * the other backend. */
#ifndef IMGMETA_STORE_TEST_H
#define IMGMETA_STORE_TEST_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifndef STORE_TSAN_MAIN
#include <criterion/criterion.h>
#endif

#include "sha256.h"
#include "store.h"

#define SHARED_CONFIG 900000u

#define SHARED_LAYER 900001u

/* A private directory for file databases, removed with what SQLite left. */
struct tmpdb {
    char dir[64];
    char path[96];
};

/* The members table as schemas 1 to 5 kept it: every digest as its text (a
 * sha256 key spelled out again), in TEXT columns; and no tag history (schema
 * 7's). */
#define MEMBERS_AS_SCHEMA_5                                                              \
    "DROP TABLE tag_history;"                                                            \
    "CREATE TABLE members5(root TEXT NOT NULL, digest TEXT NOT NULL,"                    \
    " kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"                                     \
    " PRIMARY KEY (root, digest, kind)) WITHOUT ROWID;"                                  \
    " INSERT INTO members5 SELECT"                                                       \
    " CASE typeof(root) WHEN 'blob' THEN 'sha256:' || lower(hex(root)) ELSE root END,"   \
    " CASE typeof(digest) WHEN 'blob' THEN 'sha256:' || lower(hex(digest))"              \
    " ELSE digest END, kind FROM members;"                                               \
    " DROP TABLE members; ALTER TABLE members5 RENAME TO members;"                       \
    " CREATE INDEX members_by_digest ON members(digest, kind);"

/* ---- fixtures (no Criterion: also for the ThreadSanitizer build) ---- */

void fake_digest(char *out, unsigned n);
struct im_ref tag_ref(const char *repo, const char *tag);
int blob_into(struct im_bundle *b, const char *digest, const char *media, int64_t size,
              int64_t last_modified);
/* Gives every document of b the digest of its bytes, as a resolution keeps
 * them (the store checks a document it reads against its digest). */
/* Every document of b under the digest of its bytes in algo (sha256 for
 * real_digests), as a resolution keeps them. */
void digests_as(struct im_bundle *b, const char *algo);
void real_digests(struct im_bundle *b);
int build_image(struct im_bundle *b, unsigned n);
/* A new private directory (SQLite), and in PostgreSQL mode a new, empty
 * schema for its path. 0 or -1. */
int tmpdb_init(struct tmpdb *t);
void tmpdb_remove(struct tmpdb *t);

/* ---- the backend under test ---- */

/* The base URI of IMGMETA_TEST_PG, NULL when the suite runs on SQLite. */
const char *pg_base(void);
/* True when the suite runs against PostgreSQL. */
bool pg_mode(void);
/* What store_open gets for path (":memory:", "" or a file path): path itself
 * on SQLite; in PostgreSQL mode the base URI with a search_path of a schema
 * of its own, which exists on return: a new one for each private database
 * (unique by process and count), one per file path (so that opening the path
 * again reaches the same data). Valid until the next call in the thread;
 * NULL when the schema could not be made. */
const char *db_name(const char *path);
/* Rendered answers are kept by the backend under test: SQLite keeps them,
 * PostgreSQL never does (store.h), so a test's rendered rows exist only
 * there. */
bool keeps_rendered(void);
/* What reading a rendered answer gives on the backend under test: rc where
 * they are kept, IM_ENOTFOUND on PostgreSQL. */
int rendered_or_none(int rc);
/* A libpq connection to path's schema (db_name), NULL on failure. */
PGconn *pg_connect_to(const char *path);

#ifndef STORE_TSAN_MAIN

/* ---- assertions (Criterion) ---- */

/* Skips the test in PostgreSQL mode, saying why it is about SQLite alone. */
#define SQLITE_ONLY(why)                                                                 \
    do {                                                                                 \
        if (pg_mode())                                                                   \
            cr_skip_test("SQLite only: %s", why);                                        \
    } while (0)
/* Skips the test unless it runs against PostgreSQL. */
#define PG_ONLY()                                                                        \
    do {                                                                                 \
        if (!pg_mode())                                                                  \
            cr_skip_test("needs IMGMETA_TEST_PG (a PostgreSQL base URI)");               \
    } while (0)

/* n bytes no compressor shrinks (xorshift from seed), so that the database
 * grows by what is stored. */
void noise(void *buf, size_t n, uint32_t seed);
void add_doc(struct im_bundle *b, const char *digest, const char *media, const void *body,
             size_t len);
void add_blob(struct im_bundle *b, const char *digest, const char *media, int64_t size,
              int64_t last_modified);
/* build_image's image n, its documents under their real digests (as a
 * resolution keeps them: the store checks a document it reads against its
 * digest). */
void make_image(struct im_bundle *b, unsigned n);
/* Every document and blob of want is in got, identical. */
void assert_same_bundle(const struct im_bundle *want, const struct im_bundle *got);
struct store *open_ok(const char *path);
void put_ok(struct store *s, const struct im_ref *ref, const struct im_bundle *b,
            int64_t now);
struct store_tag get_tag_ok(struct store *s, const struct im_ref *ref);
struct store_stats stats_ok(struct store *s);
/* Runs sql (any number of statements, no rows wanted) on path's database
 * behind the store's back: SQL both backends take. */
void raw_exec(const char *path, const char *sql);
/* raw_exec of what each backend takes: lite on SQLite, pg on PostgreSQL. */
void raw_exec_dialects(const char *path, const char *lite, const char *pg);
/* Runs sql (one statement) with $1 bound to the blob p (n bytes). */
void raw_exec_blob(const char *path, const char *sql, const void *p, size_t n);
/* Column 0, a blob, of the row sql selects, malloc'd (*n bytes, room for one
 * more). */
unsigned char *raw_body(const char *path, const char *sql, size_t *n);
/* Whole file contents, to show a refused file was not touched. */
char *slurp(const char *path, long *len);
/* The key describe.c builds: root digest, NUL, then what else it names. */
size_t rendered_key(char *key, size_t n, const char *root, const char *rest);
void put_rendered_ok(struct store *s, const struct im_ref *ref, const char *key,
                     size_t klen, const char *body, size_t len);
/* 0 and the body compared with want, or the error code. */
int get_rendered_is(struct store *s, const char *key, size_t klen, const char *want,
                    size_t wlen);
void set_renderer_ok(struct store *s, const char *id, int64_t *dropped);
/* The file database db, holding b under ref, changed by sql behind the
 * store's back while it was closed; opened again. */
struct store *reopened_after(const struct tmpdb *db, const struct im_ref *ref,
                             const struct im_bundle *b, const char *sql);
/* Column col, an integer, of the first row sql selects. */
int64_t raw_int(const char *path, const char *sql, int col);

#endif

#endif
