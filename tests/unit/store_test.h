/* store_test.h - what the store's unit tests (tests/unit/test_store_*.c) share:
 * images to store, temporary database files, and assertions that store, read
 * and compare (store_test.c). Each test runs in a process of its own
 * (Criterion), so none of this is shared between threads unless a test says so.
 * The headers the tests use come with it. */
#ifndef IMGMETA_STORE_TEST_H
#define IMGMETA_STORE_TEST_H

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
 * sha256 key spelled out again), in TEXT columns. */
#define MEMBERS_AS_SCHEMA_5                                                              \
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
int tmpdb_init(struct tmpdb *t);
void tmpdb_remove(struct tmpdb *t);

#ifndef STORE_TSAN_MAIN

/* ---- assertions (Criterion) ---- */

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
void raw_exec(const char *path, const char *sql);
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
