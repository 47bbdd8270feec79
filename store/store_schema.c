/* store_schema.c - what a store's first connection makes sure of before any
 * other use: the file is an imgmeta cache (not another program's database,
 * not damaged), it is in WAL mode, and its schema is this release's (migrated
 * under the write lock, once, whoever opens it first). Also the two SQL
 * functions every connection registers (im_dkey, im_dtext: digest keys). */
#include "store_int.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define STORE_APPLICATION_ID 0x494d474d /* "IMGM" in the file header */

/* Migrations: migrations[i] takes the schema from version i to i + 1. Append
 * only; never edit a released entry. All pending ones run in one transaction.
 *
 * documents holds large bodies, so it keeps its rowid (WITHOUT ROWID suits
 * small rows); the other tables are small rows looked up by their key. */
static const char *const migrations[] = {
    /* 0 -> 1: the initial schema */
    "CREATE TABLE documents("
    "  digest TEXT NOT NULL PRIMARY KEY,"
    "  media_type TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  fetched_at INTEGER NOT NULL);"
    "CREATE TABLE blobs("
    "  digest TEXT NOT NULL PRIMARY KEY,"
    "  media_type TEXT," /* NULL: unknown */
    "  size INTEGER CHECK (size IS NULL OR size >= 0),"
    "  last_modified INTEGER," /* Unix seconds, NULL: unknown */
    "  checked_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE members("
    "  root TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"
    "  PRIMARY KEY (root, digest, kind)) WITHOUT ROWID;"
    "CREATE TABLE tags("
    "  registry TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  tag TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  resolved_at INTEGER NOT NULL,"
    "  checked_at INTEGER NOT NULL,"
    "  accessed_at INTEGER NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag)) WITHOUT ROWID;"
    "CREATE TABLE misses("
    "  registry TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  tag TEXT NOT NULL," /* the tag, or the digest of a digest reference */
    "  until INTEGER NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag)) WITHOUT ROWID;",
    /* 1 -> 2: which repository each root was resolved from. Documents are
     * shared by digest, but repoB@sha256:X must not be answered from repoA's
     * copy: the registry never said repoB has it (and repoA may be private). */
    "CREATE TABLE repo_roots("
    "  registry TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  root TEXT NOT NULL,"
    "  PRIMARY KEY (registry, repository, root)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO repo_roots(registry, repository, root)"
    "  SELECT registry, repository, digest FROM tags;",
    /* 2 -> 3: housekeeping. Garbage collection looks members up by digest
     * and repository roots by root; eviction takes tags by last access and
     * finds a repository's tags pointing to a root; counters persist the
     * hit ratio across restarts. */
    "CREATE INDEX members_by_digest ON members(digest, kind);"
    "CREATE INDEX repo_roots_by_root ON repo_roots(root);"
    "CREATE INDEX tags_by_access ON tags(accessed_at, checked_at);"
    "CREATE INDEX tags_by_digest ON tags(registry, repository, digest);"
    "CREATE TABLE counters("
    "  name TEXT NOT NULL PRIMARY KEY,"
    "  value INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3 -> 4: rendered answers (store_rendered.c), keyed like the in-memory
     * LRU (root digest, NUL, reference, representation, platform filter);
     * renderer names the code that rendered the body. The rowid is a 63-bit
     * hash of the key, so a read is one descent of the table's b-tree (no
     * index to go through first); the stored key is compared, and a key whose
     * hash collides replaces the other's row. The small columns come first,
     * so gc's scan never reads a body; a root's rows are found by its index. */
    "CREATE TABLE rendered("
    "  id INTEGER PRIMARY KEY,"
    "  registry TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  root TEXT NOT NULL,"
    "  renderer TEXT NOT NULL,"
    "  key BLOB NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE INDEX rendered_by_root ON rendered(root);",
    /* 4 -> 5: how each body is kept (store_codec.c): 0 as it is, 1 deflated.
     * Rows already stored stay as they are (0); nothing is rewritten. */
    "ALTER TABLE documents"
    "  ADD COLUMN encoding INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rendered"
    "  ADD COLUMN encoding INTEGER NOT NULL DEFAULT 0;",
    /* 5 -> 6: members hold each digest as its key (im_dkey, below): a sha256
     * one as its 32 bytes instead of 71 characters, in the table and again in
     * its index, which halves both. Declared BLOB: that affinity converts
     * nothing, so a key stays the BLOB or TEXT it was written as. The rows
     * are copied over, in this transaction. */
    "CREATE TABLE members6("
    "  root BLOB NOT NULL,"
    "  digest BLOB NOT NULL,"
    "  kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"
    "  PRIMARY KEY (root, digest, kind)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO members6(root, digest, kind)"
    "  SELECT im_dkey(root), im_dkey(digest), kind FROM members;"
    "DROP TABLE members;"
    "ALTER TABLE members6 RENAME TO members;"
    "CREATE INDEX members_by_digest ON members(digest, kind);",
    /* 6 -> 7: each tag's history (store_history.c): one row per time the tag
     * was seen pointing somewhere new, numbered per tag (seq), with the
     * digest before (NULL: the first sighting) and each platform's total
     * size as a JSON array of [platform, size] pairs. */
    "CREATE TABLE tag_history("
    "  registry TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  tag TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  seen INTEGER NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  previous TEXT,"
    "  platforms TEXT NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag, seq)) WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- digest keys --------------------------------------------------------
 * members.root and members.digest hold a digest as its key: a well-formed
 * sha256 digest ("sha256:" and 64 lowercase hex digits) as its 32 raw bytes,
 * a BLOB; any other digest as its TEXT. SQLite never compares a BLOB equal to
 * a TEXT, so two digests share a key only when they are the same digest. Two
 * SQL functions convert, registered on every connection before it migrates:
 * im_dkey(digest) gives the key, im_dtext(key) the digest back. They are
 * deterministic, so the key of a parameter or of the outer row of a join is
 * a constant to the planner, and members' indexes are used. The schema
 * itself never names them: a connection without them (the sqlite3 shell)
 * can still open, read and check the file. */
#define DKEY_PREFIX "sha256:"
#define DKEY_PREFIX_LEN (sizeof DKEY_PREFIX - 1)
#define DKEY_BYTES 32
#define DKEY_TEXT_LEN (DKEY_PREFIX_LEN + 2 * DKEY_BYTES)

static int hex_digit(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* The 32 bytes of a digest's text (n bytes) into key: true, or false when it
 * is not "sha256:" and 64 lowercase hex digits. */
static bool sha256_key(const unsigned char *t, size_t n, unsigned char key[DKEY_BYTES])
{
    if (n != DKEY_TEXT_LEN || memcmp(t, DKEY_PREFIX, DKEY_PREFIX_LEN) != 0)
        return false;
    for (size_t i = 0; i < DKEY_BYTES; i++) {
        int hi = hex_digit(t[DKEY_PREFIX_LEN + 2 * i]);
        int lo = hex_digit(t[DKEY_PREFIX_LEN + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* im_dkey(digest): its key; a value that is not TEXT comes back as it is. */
static void sql_dkey(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    unsigned char key[DKEY_BYTES];
    sqlite3_value *v = argv[0];
    (void)argc;
    if (sqlite3_value_type(v) != SQLITE_TEXT) {
        sqlite3_result_value(ctx, v);
        return;
    }
    const unsigned char *t = sqlite3_value_text(v);
    int n = sqlite3_value_bytes(v);
    if (!t)
        sqlite3_result_error_nomem(ctx);
    else if (sha256_key(t, (size_t)n, key))
        sqlite3_result_blob(ctx, key, DKEY_BYTES, SQLITE_TRANSIENT);
    else
        sqlite3_result_value(ctx, v);
}

/* im_dtext(key): the digest; a TEXT key is the digest itself. A BLOB that is
 * not 32 bytes long is no key: an error (IM_ESTORE to the caller), never a
 * digest made up. */
static void sql_dtext(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char text[DKEY_TEXT_LEN + 1];
    sqlite3_value *v = argv[0];
    (void)argc;
    if (sqlite3_value_type(v) != SQLITE_BLOB) {
        sqlite3_result_value(ctx, v);
        return;
    }
    const unsigned char *key = sqlite3_value_blob(v);
    if (sqlite3_value_bytes(v) != DKEY_BYTES || !key) {
        sqlite3_result_error(ctx, "malformed digest key in members", -1);
        return;
    }
    im_sha256_text(key, text);
    sqlite3_result_text(ctx, text, (int)DKEY_TEXT_LEN, SQLITE_TRANSIENT);
}

int store__register_functions(sqlite3 *db)
{
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int src = sqlite3_create_function_v2(db, "im_dkey", 1, flags, NULL, sql_dkey, NULL,
                                         NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_create_function_v2(db, "im_dtext", 1, flags, NULL, sql_dtext, NULL,
                                         NULL, NULL);
    return src;
}

bool store__is_private_db(const char *path)
{
    return path[0] == '\0' || strcmp(path, ":memory:") == 0;
}

/* An open-time failure, with the clear wording for a file that is not ours. */
int store__open_failure(sqlite3 *db, const char *path, const char *what,
                        struct im_error *err)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_NOTADB)
        return im_seterr(err, IM_ESTORE, "%s is not an imgmeta cache database (%s)", path,
                         sqlite3_errmsg(db));
    if (code == SQLITE_CORRUPT)
        return im_seterr(err, IM_ESTORE, "%s is a corrupt imgmeta cache database (%s)",
                         path, sqlite3_errmsg(db));
    return im_seterr(err, IM_ESTORE, "%s: %s: %s", path, what, sqlite3_errmsg(db));
}

/* The file itself is damaged (as opposed to refused for another reason). */
static bool damaged_code(sqlite3 *db)
{
    int code = sqlite3_errcode(db) & 0xff;
    return code == SQLITE_NOTADB || code == SQLITE_CORRUPT;
}

int store__exec(sqlite3 *db, const char *path, const char *sql, struct im_error *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store__open_failure(db, path, sql, err);
    return 0;
}

/* Runs a statement returning one row of one column; the text of that column
 * is copied into text (when not NULL), its integer value into *val. */
static int query_one(sqlite3 *db, const char *path, const char *sql, int64_t *val,
                     char *text, size_t textsz, struct im_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = store__open_failure(db, path, sql, err);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = store__open_failure(db, path, sql, err);
        goto out;
    }
    *val = sqlite3_column_int64(st, 0);
    if (text) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        im_strlcpy(text, t ? (const char *)t : "", textsz);
    }
out:
    /* finalize repeats the step's error, already reported */
    (void)sqlite3_finalize(st);
    return rc;
}

/* Refuses files that are not ours before anything writes to them; *version
 * gets the schema version found. */
static int check_identity(sqlite3 *db, const char *path, int64_t *version_out,
                          struct im_error *err)
{
    int64_t version = 0, appid = 0, ntables = 0;
    int rc = query_one(db, path, "PRAGMA user_version", &version, NULL, 0, err);
    if (rc)
        goto out;
    if (version > SCHEMA_VERSION) {
        rc = im_seterr(err, IM_ESTORE,
                       "database schema version %lld is newer than this imgmeta (%d); "
                       "refusing to touch it",
                       (long long)version, SCHEMA_VERSION);
        goto out;
    }
    rc = query_one(db, path, "PRAGMA application_id", &appid, NULL, 0, err);
    if (!rc)
        rc = query_one(db, path, "SELECT count(*) FROM sqlite_master", &ntables, NULL, 0,
                       err);
    if (rc)
        goto out;
    if (appid != STORE_APPLICATION_ID && (appid != 0 || version != 0 || ntables != 0))
        rc = im_seterr(err, IM_ESTORE,
                       "%s is not an imgmeta cache database (it is an SQLite database "
                       "of something else: application_id %lld, user_version %lld, "
                       "%lld schema objects)",
                       path, (long long)appid, (long long)version, (long long)ntables);
out:
    *version_out = version;
    return rc;
}

static int set_wal(sqlite3 *db, const char *path, struct im_error *err)
{
    char mode[16];
    int64_t ignored = 0;
    int rc =
        query_one(db, path, "PRAGMA journal_mode=WAL", &ignored, mode, sizeof mode, err);
    if (rc)
        return rc;
    if (strcmp(mode, "wal") != 0 &&
        !(store__is_private_db(path) && strcmp(mode, "memory") == 0))
        return im_seterr(err, IM_ESTORE,
                         "%s: cannot switch to WAL mode (journal_mode stays %s)", path,
                         mode);
    return 0;
}

/* Migrates to SCHEMA_VERSION under the write lock; *found is the version the
 * file had then (another process may have migrated it meanwhile). */
static int migrate(sqlite3 *db, const char *path, int64_t *found, struct im_error *err)
{
    int64_t version = 0;
    char sql[96];
    int rc = store__exec(db, path, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    rc = query_one(db, path, "PRAGMA user_version", &version, NULL, 0, err);
    *found = version;
    if (!rc && version > SCHEMA_VERSION)
        rc = im_seterr(err, IM_ESTORE,
                       "database schema version %lld is newer than this imgmeta (%d); "
                       "refusing to touch it",
                       (long long)version, SCHEMA_VERSION);
    for (int64_t v = version; !rc && v < SCHEMA_VERSION; v++) {
        if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK)
            rc = im_seterr(err, IM_ESTORE, "%s: migrating schema %lld to %lld: %s", path,
                           (long long)v, (long long)v + 1, sqlite3_errmsg(db));
    }
    if (!rc && version < SCHEMA_VERSION) {
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d; PRAGMA application_id=%d",
                 SCHEMA_VERSION, STORE_APPLICATION_ID);
        rc = store__exec(db, path, sql, err);
    }
    if (!rc)
        rc = store__exec(db, path, "COMMIT", err);
    /* If even ROLLBACK fails, the caller closes the connection, which ends
     * the transaction without committing it. */
    if (rc && !sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_file_schema(const char *path)
{
    sqlite3 *db = NULL;
    int64_t version = 0;
    struct im_error ignored; /* a failure only means "unknown" */
    if (store__is_private_db(path) || store__is_pg_uri(path))
        return 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        query_one(db, path, "PRAGMA user_version", &version, NULL, 0, &ignored) != 0)
        version = 0;
    (void)sqlite3_close_v2(db); /* NULL is a no-op */
    return version > 0 && version <= INT_MAX ? (int)version : 0;
}

/* PRAGMA quick_check at start: a damaged page deep in the file is found now,
 * with a clear message, not at the first request that reads it. */
static int quick_check(sqlite3 *db, const char *path, bool *damaged, struct im_error *err)
{
    char result[200];
    int64_t ignored = 0;
    int rc = query_one(db, path, "PRAGMA quick_check(3)", &ignored, result, sizeof result,
                       err);
    if (rc) {
        *damaged = damaged_code(db);
        return rc;
    }
    if (strcmp(result, "ok") != 0) {
        *damaged = true;
        return im_seterr(err, IM_ESTORE,
                         "%s is a corrupt imgmeta cache database (quick_check: %s)", path,
                         result);
    }
    return 0;
}

/* The setup a store's first connection does: the file is ours, not damaged,
 * in WAL mode (a new file also gets incremental auto-vacuum, so that
 * eviction gives space back), and migrated. */
int store__schema_setup(struct store *s, sqlite3 *db, bool *damaged, struct im_error *err)
{
    const char *path = s->path;
    bool readonly = s->readonly;
    int64_t version = 0, found = 0, t0 = im_monotonic_ms();
    int rc = check_identity(db, path, &version, err);
    if (rc) {
        *damaged = damaged_code(db);
        return rc;
    }
    rc = quick_check(db, path, damaged, err);
    if (!rc && readonly && version < SCHEMA_VERSION)
        rc = im_seterr(err, IM_ESTORE,
                       "%s is read-only and has schema version %lld: this imgmeta needs "
                       "%d and cannot migrate it",
                       path, (long long)version, SCHEMA_VERSION);
    if (rc || readonly)
        return rc;
    /* only takes effect while the file has no table yet */
    if (!rc && version == 0)
        rc = store__exec(db, path, "PRAGMA auto_vacuum=INCREMENTAL", err);
    if (!rc)
        rc = set_wal(db, path, err);
    /* a current schema needs no write lock (a read-only file still opens) */
    if (!rc && version < SCHEMA_VERSION)
        rc = migrate(db, path, &found, err);
    /* a rebuilt table's old pages go back to the file system (no-op without
     * incremental auto-vacuum); failure only means the file stays larger */
    if (!rc && version < SCHEMA_VERSION)
        (void)sqlite3_exec(db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    if (!rc && found > 0 && found < SCHEMA_VERSION) { /* not a new file */
        s->migrated_from = (int)found;
        s->migrate_ms = im_monotonic_ms() - t0;
    }
    return rc;
}

int store_schema_version(void)
{
    return SCHEMA_VERSION;
}
