/* store_pool.c - opening the cache database: connections, pragmas, the
 * schema and its migrations, and the small pool of connections that lets
 * many threads use one struct store.
 *
 * A file database gets up to STORE_POOL_MAX connections, opened lazily, each
 * with every statement prepared once. A private database (":memory:" or "")
 * gets exactly one connection: each SQLite connection to ":memory:" is its own
 * empty database, and a shared-cache URI would bring table-level locks that
 * the busy timeout does not cover; one connection serialises callers, which is
 * what unit tests need. */
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

#define STORE_POOL_MAX 8
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_CACHE_KIB_TEXT "-512"     /* negative: KiB of page cache per connection */
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

static int register_functions(sqlite3 *db)
{
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int src = sqlite3_create_function_v2(db, "im_dkey", 1, flags, NULL, sql_dkey, NULL,
                                         NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_create_function_v2(db, "im_dtext", 1, flags, NULL, sql_dtext, NULL,
                                         NULL, NULL);
    return src;
}

int store__fail(struct im_error *err, sqlite3 *db, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return im_seterr(err, IM_ESTORE, "%s: %s", what,
                     db ? sqlite3_errmsg(db) : "out of memory");
}

void store__done(sqlite3_stmt *st)
{
    /* reset returns the error of the last step, already reported by the caller;
     * clear_bindings cannot fail on a valid statement. */
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

static bool is_private_db(const char *path)
{
    return path[0] == '\0' || strcmp(path, ":memory:") == 0;
}

/* An open-time failure, with the clear wording for a file that is not ours. */
static int open_failure(sqlite3 *db, const char *path, const char *what,
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

static int exec_sql(sqlite3 *db, const char *path, const char *sql, struct im_error *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return open_failure(db, path, sql, err);
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
        rc = open_failure(db, path, sql, err);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = open_failure(db, path, sql, err);
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
    if (strcmp(mode, "wal") != 0 && !(is_private_db(path) && strcmp(mode, "memory") == 0))
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
    int rc = exec_sql(db, path, "BEGIN IMMEDIATE", err);
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
        rc = exec_sql(db, path, sql, err);
    }
    if (!rc)
        rc = exec_sql(db, path, "COMMIT", err);
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
    if (is_private_db(path))
        return 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        query_one(db, path, "PRAGMA user_version", &version, NULL, 0, &ignored) != 0)
        version = 0;
    (void)sqlite3_close_v2(db); /* NULL is a no-op */
    return version > 0 && version <= INT_MAX ? (int)version : 0;
}

static void conn_free(struct store__conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        (void)sqlite3_finalize(c->st[i]); /* NULL is a no-op; errors were reported */
    /* close_v2 cannot fail once every statement is finalized */
    (void)sqlite3_close_v2(c->db);
    free(c);
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
static int conn_setup(struct store *s, sqlite3 *db, bool *damaged, struct im_error *err)
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
        rc = exec_sql(db, path, "PRAGMA auto_vacuum=INCREMENTAL", err);
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

/* Opens one connection; the first one of a store (setup) also checks the
 * file is ours, switches it to WAL and migrates. */
static int conn_open(struct store *s, bool setup, bool *damaged, struct store__conn **out,
                     struct im_error *err)
{
    const char *path = s->path;
    struct store__conn *c = calloc(1, sizeof *c);
    int rc = 0;
    if (!c) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory opening %s", path);
        goto out;
    }
    if (sqlite3_open_v2(s->name, &c->db, s->open_flags, NULL) != SQLITE_OK) {
        rc = c->db ? open_failure(c->db, path, "cannot open", err)
                   : im_seterr(err, IM_ENOMEM, "out of memory opening %s", path);
        goto out;
    }
    if (sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_extended_result_codes(c->db, 1) != SQLITE_OK ||
        register_functions(c->db) != SQLITE_OK) {
        rc = open_failure(c->db, path, "configuring the connection", err);
        goto out;
    }
    if (setup)
        rc = conn_setup(s, c->db, damaged, err);
    if (!rc)
        rc = exec_sql(c->db, path, "PRAGMA synchronous=NORMAL", err);
    /* Bounded page cache per connection (SQLite's default is 2 MiB, x 8): the
     * operating system's page cache holds the file anyway, and this keeps the
     * hot interior pages of the indexes. */
    if (!rc)
        rc = exec_sql(c->db, path, "PRAGMA cache_size=" STORE_CACHE_KIB_TEXT, err);
    for (int i = 0; !rc && i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(c->db, store__sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &c->st[i], NULL) != SQLITE_OK)
            rc = open_failure(c->db, path, store__sql[i], err);
    }
out:
    if (rc) {
        conn_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* The file exists and this process cannot write it or its directory (where
 * SQLite creates the -wal and -shm files). */
static bool cannot_write(const char *path)
{
    char dir[1100];
    if (access(path, F_OK) != 0 || strlen(path) >= sizeof dir ||
        im_path_dir(path, dir, sizeof dir) != 0)
        return false;
    return access(path, W_OK) != 0 || access(dir, W_OK) != 0;
}

/* "file:PATH?immutable=1" with PATH percent-encoded where a URI needs it.
 * immutable: SQLite cannot create the -shm it needs to read a WAL database
 * in a directory it cannot write; the price is that changes another process
 * makes meanwhile are not seen (nobody can write this file anyway). */
static char *readonly_uri(const char *path)
{
    size_t n = strlen(path);
    char *uri = malloc(n * 3 + 32);
    if (!uri)
        return NULL;
    size_t o = (size_t)snprintf(uri, 8, "file:");
    for (const char *p = path; *p; p++) {
        if (*p == '?' || *p == '#' || *p == '%')
            o += (size_t)snprintf(uri + o, 4, "%%%02X", (unsigned char)*p);
        else
            uri[o++] = *p;
    }
    snprintf(uri + o, 16, "?immutable=1");
    return uri;
}

/* Opens the first connection; a file that cannot be written is opened again
 * read-only. */
static int open_first(struct store *s, bool *damaged, struct store__conn **c,
                      struct im_error *err)
{
    s->open_flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    s->name = strdup(s->path);
    if (!s->name)
        return im_seterr(err, IM_ENOMEM, "out of memory opening %s", s->path);
    int rc = conn_open(s, true, damaged, c, err);
    if (!rc || *damaged || is_private_db(s->path) || !cannot_write(s->path))
        return rc;
    free(s->name);
    s->name = readonly_uri(s->path);
    if (!s->name)
        return im_seterr(err, IM_ENOMEM, "out of memory opening %s", s->path);
    s->open_flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    s->readonly = true;
    return conn_open(s, true, damaged, c, err);
}

bool store_readonly(const struct store *s)
{
    return s && s->readonly;
}

int store_schema_version(void)
{
    return SCHEMA_VERSION;
}

int store_migrated_from(const struct store *s, int64_t *ms)
{
    if (ms)
        *ms = s ? s->migrate_ms : 0;
    return s ? s->migrated_from : 0;
}

struct store *store_open(const char *path, struct im_error *err)
{
    return store_open_ex(path, NULL, err);
}

struct store *store_open_ex(const char *path, bool *damaged, struct im_error *err)
{
    struct store *s = NULL;
    struct store__conn *c = NULL;
    bool broken = false;
    if (damaged)
        *damaged = false;
    if (!path) {
        im_seterr(err, IM_EINVAL, "no cache database path");
        goto fail;
    }
    if (!sqlite3_threadsafe()) {
        im_seterr(err, IM_ESTORE, "this SQLite library is built without thread support");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (s)
        s->path = strdup(path);
    if (!s || !s->path) {
        im_seterr(err, IM_ENOMEM, "out of memory opening %s", path);
        goto fail_alloc;
    }
    s->max_conns = is_private_db(path) ? 1 : STORE_POOL_MAX;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        im_seterr(err, IM_ENOMEM, "cannot create the store's mutex");
        goto fail_alloc;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        im_seterr(err, IM_ENOMEM, "cannot create the store's condition variable");
        goto fail_mutex;
    }
    if (open_first(s, &broken, &c, err) != 0) {
        if (damaged)
            *damaged = broken;
        goto fail_cond;
    }
    s->all = c;
    s->idle = c;
    s->nconns = 1;
    return s;

fail_cond:
    pthread_cond_destroy(&s->cv);
fail_mutex:
    pthread_mutex_destroy(&s->mu);
fail_alloc:
    if (s) {
        free(s->name);
        free(s->path);
    }
    free(s);
fail:
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    struct store__conn *c = s->all;
    while (c) {
        struct store__conn *next = c->next_all;
        conn_free(c);
        c = next;
    }
    store__tagmap_free(s->tags);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s->path);
    free(s);
}

int store__conn_get(struct store *s, struct store__conn **out, struct im_error *err)
{
    struct store__conn *c = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->idle && s->nconns >= s->max_conns)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->idle) {
        c = s->idle;
        s->idle = c->next_free;
        c->next_free = NULL;
    } else {
        s->nconns++; /* reserve the slot; open outside the lock */
    }
    pthread_mutex_unlock(&s->mu);
    if (!c) {
        bool ignored = false;
        rc = conn_open(s, false, &ignored, &c, err);
        pthread_mutex_lock(&s->mu);
        if (rc) {
            s->nconns--;
            pthread_cond_signal(&s->cv);
        } else {
            c->next_all = s->all;
            s->all = c;
        }
        pthread_mutex_unlock(&s->mu);
    }
    *out = c;
    return rc;
}

void store__conn_put(struct store *s, struct store__conn *c)
{
    /* Callers end their transactions; this is a net so that a bug cannot hand
     * the next caller a connection holding the write lock. Should ROLLBACK
     * fail, the next BEGIN on this connection reports it. */
    if (!sqlite3_get_autocommit(c->db))
        (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->mu);
    c->next_free = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Renames from to to when from exists; 0, or IM_ESTORE naming errno's cause. */
static int rename_if_present(const char *from, const char *to, struct im_error *err)
{
    char why[128];
    if (rename(from, to) == 0 || errno == ENOENT)
        return 0;
    if (strerror_r(errno, why, sizeof why) != 0)
        snprintf(why, sizeof why, "errno %d", errno);
    return im_seterr(err, IM_ESTORE, "cannot move %s to %s: %s", from, to, why);
}

int store_move_aside(const char *path, int64_t now, char *moved_to, size_t n,
                     struct im_error *err)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char stamp[32], from[1100], to[1200];
    struct tm tm;
    time_t t = (time_t)now;
    if (!path || is_private_db(path) || !moved_to || n == 0)
        return im_seterr(err, IM_EINVAL, "store_move_aside needs a file path");
    if (!gmtime_r(&t, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        return im_seterr(err, IM_EINVAL, "store_move_aside: bad time %lld",
                         (long long)now);
    /* The main file first: once it is gone, its -wal cannot be replayed into
     * a new database by mistake. */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        int a = snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        int b = snprintf(to, sizeof to, "%s.corrupt-%s%s", path, stamp, suffixes[i]);
        if (a < 0 || (size_t)a >= sizeof from || b < 0 || (size_t)b >= sizeof to)
            return im_seterr(err, IM_EINVAL, "database path too long");
        if (i == 0 && im_strlcpy(moved_to, to, n) != 0)
            return im_seterr(err, IM_EINVAL, "database path too long");
        int rc = rename_if_present(from, to, err);
        if (rc)
            return rc;
    }
    return 0;
}
