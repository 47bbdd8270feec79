/* store_pool.c - opening the cache database and the small pool of
 * connections that lets many threads use one struct store (the file's schema,
 * its checks and migrations are store_schema.c's), and the cursor through
 * which one statement of a pooled connection is used.
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

#define STORE_POOL_MAX 8
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_CACHE_KIB_TEXT "-512" /* negative: KiB of page cache per connection */

/* Write transactions take the write lock up front. */
const struct store__sql store__sql_tx[] = {
    {ST_BEGIN, "BEGIN IMMEDIATE"},
    {ST_COMMIT, "COMMIT"},
    {ST_ROLLBACK, "ROLLBACK"},
    {ST_WRITE_LOCK, "SELECT 1"}, /* BEGIN IMMEDIATE took it */
    {ST__COUNT, NULL},
};

/* PostgreSQL: the write lock is an advisory lock held to the transaction's
 * end (its key: STORE__PG_WRITE_LOCK, store_pg.c). */
const struct store__sql store__pg_sql_tx[] = {
    {ST_BEGIN, "BEGIN"},
    {ST_COMMIT, "COMMIT"},
    {ST_ROLLBACK, "ROLLBACK"},
    {ST_WRITE_LOCK, "SELECT pg_advisory_xact_lock(" STORE__PG_WRITE_LOCK ")"},
    {ST__COUNT, NULL},
};

int store__fail(struct im_error *err, struct store__conn *c, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* a lost PostgreSQL connection is the database being away, not a fault */
    return im_seterr(err, c && c->broken ? IM_EDBDOWN : IM_ESTORE, "%s: %s", what,
                     store__errmsg(c));
}

void store__conn_free(struct store__conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST__COUNT; i++) {
        if (c->pg)
            store__done(&c->st[i]);
        else
            (void)sqlite3_finalize(c->st[i].lite); /* NULL is a no-op */
    }
    if (c->pg)
        PQfinish(c->pg);
    /* close_v2 cannot fail once every statement is finalized */
    (void)sqlite3_close_v2(c->db);
    free(c);
}

/* The SQL of a statement, from the table of the file that runs it. */
const char *store__sql_of(enum store__backend b, enum store__stmt which)
{
    static const struct store__sql *const lite[] = {
        store__sql_tx, store__sql_put,      store__sql_tags,    store__sql_known,
        store__sql_gc, store__sql_rendered, store__sql_history,
    };
    static const struct store__sql *const pg[] = {
        store__pg_sql_tx,    store__pg_sql_put, store__pg_sql_tags,
        store__pg_sql_known, store__pg_sql_gc,  store__pg_sql_history,
    };
    const struct store__sql *const *tables = b == STORE__PG ? pg : lite;
    size_t ntables =
        b == STORE__PG ? sizeof pg / sizeof pg[0] : sizeof lite / sizeof lite[0];
    for (size_t t = 0; t < ntables; t++)
        for (const struct store__sql *q = tables[t]; q->text; q++)
            if (q->id == which)
                return q->text;
    return NULL;
}

/* Opens one connection; the first one of a store (setup) also checks the
 * file is ours, switches it to WAL and migrates. */
static int conn_open(struct store *s, bool setup, bool *damaged, struct store__conn **out,
                     struct im_error *err)
{
    const char *path = s->path;
    if (s->backend == STORE__PG)
        return store__pg_conn_open(s, setup, out, err);
    struct store__conn *c = calloc(1, sizeof *c);
    int rc = 0;
    if (!c) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory opening %s", path);
        goto out;
    }
    c->s = s;
    if (sqlite3_open_v2(s->name, &c->db, s->open_flags, NULL) != SQLITE_OK) {
        rc = c->db ? store__open_failure(c->db, path, "cannot open", err)
                   : im_seterr(err, IM_ENOMEM, "out of memory opening %s", path);
        goto out;
    }
    if (sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_extended_result_codes(c->db, 1) != SQLITE_OK ||
        store__register_functions(c->db) != SQLITE_OK) {
        rc = store__open_failure(c->db, path, "configuring the connection", err);
        goto out;
    }
    if (setup)
        rc = store__schema_setup(s, c->db, damaged, err);
    if (!rc)
        rc = store__exec(c->db, path, "PRAGMA synchronous=NORMAL", err);
    /* Bounded page cache per connection (SQLite's default is 2 MiB, x 8): the
     * operating system's page cache holds the file anyway, and this keeps the
     * hot interior pages of the indexes. */
    if (!rc)
        rc = store__exec(c->db, path, "PRAGMA cache_size=" STORE_CACHE_KIB_TEXT, err);
    for (int i = 0; !rc && i < ST__COUNT; i++) {
        const char *sql = store__sql_of(STORE__SQLITE, (enum store__stmt)i);
        c->st[i].c = c;
        c->st[i].id = i;
        if (!sql)
            rc = im_seterr(err, IM_EINTERNAL, "statement %d has no SQL", i);
        else if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->st[i].lite, NULL) != SQLITE_OK)
            rc = store__open_failure(c->db, path, sql, err);
    }
out:
    if (rc) {
        store__conn_free(c);
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
    if (s->backend == STORE__PG)
        return conn_open(s, true, damaged, c, err);
    s->open_flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    s->name = strdup(s->path);
    if (!s->name)
        return im_seterr(err, IM_ENOMEM, "out of memory opening %s", s->path);
    int rc = conn_open(s, true, damaged, c, err);
    if (!rc || *damaged || store__is_private_db(s->path) || !cannot_write(s->path))
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
    if (!store__is_pg_uri(path) && !sqlite3_threadsafe()) {
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
    s->backend = store__is_pg_uri(path) ? STORE__PG : STORE__SQLITE;
    s->max_conns =
        s->backend == STORE__SQLITE && store__is_private_db(path) ? 1 : STORE_POOL_MAX;
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
        store__conn_free(c);
        c = next;
    }
    store__tagmap_free(s->tags);
    store__pg_leases_close(s);
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
    if (!c->broken && store__in_tx(c))
        (void)store__exec_sql(c, "ROLLBACK");
    if (c->pg && (c->broken || PQstatus(c->pg) != CONNECTION_OK)) {
        /* PostgreSQL went away under it: this connection is closed, and the
         * next caller opens a new one (which fails until the server is back) */
        pthread_mutex_lock(&s->mu);
        struct store__conn **pp = &s->all;
        while (*pp && *pp != c)
            pp = &(*pp)->next_all;
        if (*pp)
            *pp = c->next_all;
        s->nconns--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        store__conn_free(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    c->next_free = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int store__cursor_open(struct store *s, enum store__stmt which, struct store__cursor *cur,
                       struct im_error *err)
{
    memset(cur, 0, sizeof *cur);
    int rc = store__conn_get(s, &cur->c, err);
    if (rc)
        return rc;
    cur->s = s;
    cur->st = &cur->c->st[which];
    return 0;
}

void store__cursor_close(struct store__cursor *cur)
{
    if (cur->st)
        store__done(cur->st);
    if (cur->c)
        store__conn_put(cur->s, cur->c);
    memset(cur, 0, sizeof *cur);
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
    if (!path || store__is_private_db(path) || store__is_pg_uri(path) || !moved_to ||
        n == 0)
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

int store__tx_begin(struct store__conn *c, struct im_error *err)
{
    int rc = store__step_done(c, ST_BEGIN, "starting a transaction", err);
    /* PostgreSQL: writers take one lock, as SQLite's BEGIN IMMEDIATE does,
     * so that no two write transactions of the fleet deadlock on each other's
     * rows; it ends with the transaction */
    if (!rc && c->pg) {
        struct store__q *st = &c->st[ST_WRITE_LOCK]; /* one row, the void result */
        if (store__step(st) != SQLITE_ROW)
            rc = store__fail(err, c, "taking the write lock");
        store__done(st);
    }
    if (rc && c->pg && !c->broken && store__in_tx(c))
        (void)store__exec_sql(c, "ROLLBACK");
    return rc;
}

int store__tx_end(struct store__conn *c, int rc, struct im_error *err)
{
    if (!rc)
        rc = store__step_done(c, ST_COMMIT, "committing", err);
    if (!rc)
        return 0;
    /* SQLite may already have rolled back (e.g. on SQLITE_FULL), or the COMMIT
     * failed and the transaction is still open (SQLITE_BUSY). The original
     * error is the one reported; should ROLLBACK fail, store__conn_put retries. */
    if (!c->broken && store__in_tx(c)) {
        (void)store__step(&c->st[ST_ROLLBACK]);
        store__done(&c->st[ST_ROLLBACK]);
    }
    return rc;
}

/* ---- statement helpers every file of the store uses ----------------------- */

bool store__str_ok(const char *s, size_t cap, bool nonempty)
{
    const char *nul = memchr(s, '\0', cap);
    return nul && (!nonempty || nul != s);
}

/* ref names a repository and, when need_tag, a tag. */
int store__ref_check(const struct im_ref *ref, bool need_tag, struct im_error *err)
{
    if (!ref || !store__str_ok(ref->registry, sizeof ref->registry, true) ||
        !store__str_ok(ref->repository, sizeof ref->repository, true) ||
        !store__str_ok(ref->tag, sizeof ref->tag, need_tag) ||
        !store__str_ok(ref->digest, sizeof ref->digest, false))
        return im_seterr(err, IM_EINVAL,
                         "the store needs a reference with registry, "
                         "repository%s",
                         need_tag ? " and tag" : "");
    return 0;
}

/* Binds ?1 registry, ?2 repository, ?3 key (the tag, or the digest). */
int store__bind_key(struct store__q *st, const struct im_ref *ref, const char *key)
{
    int src = store__bind_text(st, 1, ref->registry);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, ref->repository);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 3, key);
    return src;
}

/* Steps a statement that returns no row, then resets it. */
int store__step_done(struct store__conn *c, enum store__stmt which, const char *what,
                     struct im_error *err)
{
    struct store__q *st = &c->st[which];
    int rc = 0;
    if (store__step(st) != SQLITE_DONE)
        rc = store__fail(err, c, "%s", what);
    store__done(st);
    return rc;
}

int64_t store__column_int_or_unknown(struct store__q *st, int i)
{
    return store__col_null(st, i) ? -1 : store__col_int(st, i);
}
