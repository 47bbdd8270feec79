/* store_pg.c - the cache on PostgreSQL, shared by every replica pointed at
 * the same database: connections (each with the store's statements prepared),
 * the schema (created or migrated once for the fleet, under an advisory lock
 * the others wait on), and leases (one resolution of a reference at a time
 * across the fleet: an advisory lock held by a connection of its own, so
 * that it ends with the process that holds it).
 *
 * Every round trip is bounded (STORE__PG_TIMEOUT_MS, or the lease's wait):
 * libpq is driven asynchronously and a server that stops answering costs a
 * bounded wait and the connection, never a hung thread. A connection that is
 * lost is closed when it goes back to the pool, and the next caller opens a
 * new one: the store reconnects by itself once the server is back. */
#include "store_int.h"

#include <errno.h>

#include "metrics.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The schema, by version: pg_migrations[i] takes it from i to i + 1, all
 * pending ones in one transaction. Append only. Digests are text; documents
 * and blobs are shared by every replica, rendered answers are not kept here
 * (they stay in each replica's own tiers, made by its own renderer). */
static const char *const pg_migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE documents("
    "  digest text COLLATE \"C\" NOT NULL PRIMARY KEY,"
    "  media_type text NOT NULL,"
    "  body bytea NOT NULL,"
    "  fetched_at bigint NOT NULL,"
    "  encoding integer NOT NULL DEFAULT 0);"
    "CREATE TABLE blobs("
    "  digest text COLLATE \"C\" NOT NULL PRIMARY KEY,"
    "  media_type text,"
    "  size bigint CHECK (size IS NULL OR size >= 0),"
    "  last_modified bigint,"
    "  checked_at bigint NOT NULL);"
    "CREATE TABLE members("
    "  root text COLLATE \"C\" NOT NULL,"
    "  digest text COLLATE \"C\" NOT NULL,"
    "  kind integer NOT NULL CHECK (kind IN (0, 1)),"
    "  PRIMARY KEY (root, digest, kind));"
    "CREATE INDEX members_by_digest ON members(digest, kind);"
    "CREATE TABLE tags("
    "  registry text NOT NULL,"
    "  repository text NOT NULL,"
    "  tag text NOT NULL,"
    "  digest text COLLATE \"C\" NOT NULL,"
    "  resolved_at bigint NOT NULL,"
    "  checked_at bigint NOT NULL,"
    "  accessed_at bigint NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag));"
    "CREATE INDEX tags_by_access ON tags(accessed_at, checked_at);"
    "CREATE INDEX tags_by_digest ON tags(registry, repository, digest);"
    "CREATE TABLE misses("
    "  registry text NOT NULL,"
    "  repository text NOT NULL,"
    "  tag text NOT NULL,"
    "  until bigint NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag));"
    "CREATE TABLE repo_roots("
    "  registry text NOT NULL,"
    "  repository text NOT NULL,"
    "  root text COLLATE \"C\" NOT NULL,"
    "  PRIMARY KEY (registry, repository, root));"
    "CREATE INDEX repo_roots_by_root ON repo_roots(root);"
    "CREATE TABLE counters("
    "  name text NOT NULL PRIMARY KEY,"
    "  value bigint NOT NULL);",
    /* 1 -> 2: each tag's history (store_history.c), as SQLite's schema 7 */
    "CREATE TABLE tag_history("
    "  registry text NOT NULL,"
    "  repository text NOT NULL,"
    "  tag text NOT NULL,"
    "  seq bigint NOT NULL,"
    "  seen bigint NOT NULL,"
    "  digest text COLLATE \"C\" NOT NULL,"
    "  previous text COLLATE \"C\","
    "  platforms text NOT NULL,"
    "  PRIMARY KEY (registry, repository, tag, seq));",
};
#define PG_SCHEMA_VERSION ((int)(sizeof pg_migrations / sizeof pg_migrations[0]))

/* Advisory lock keys: (class, object) pairs of the two-integer key space.
 * The schema's lock and the write lock are fixed; a lease's object is a hash
 * of what it names (two names sharing a hash only wait for each other). */
#define PG_LOCK_CLASS 0x494d47 /* "IMG" */
#define PG_LOCK_SCHEMA 1
#define PG_LEASE_CLASS 0x494d48

struct store__lease_conn {
    PGconn *pg;
    struct store__lease_conn *next;
};

struct store_lease {
    struct store__lease_conn *lc;
    int32_t object;
};

bool store__is_pg_uri(const char *path)
{
    return path && (strncmp(path, "postgresql://", 13) == 0 ||
                    strncmp(path, "postgres://", 11) == 0);
}

int store_schema_of(const struct store *s)
{
    return s && s->backend == STORE__PG ? PG_SCHEMA_VERSION : store_schema_version();
}

bool store_is_uri(const char *path)
{
    return store__is_pg_uri(path);
}

/* Appends len bytes of p to out (n bytes, *o used), cut to fit. */
static void put_cut(char *out, size_t n, size_t *o, const char *p, size_t len)
{
    size_t room = n - 1 - *o;
    len = len < room ? len : room;
    memcpy(out + *o, p, len);
    *o += len;
    out[*o] = '\0';
}

void store_safe_name(const char *path, char *out, size_t n)
{
    /* "scheme://user:password@host/db?...&password=...": both are left out.
     * As libpq reads it, the user part ends at the first @ before any /. */
    const char *p = path ? path : "";
    size_t o = 0;
    if (n == 0)
        return;
    out[0] = '\0';
    if (store__is_pg_uri(p)) {
        const char *s = strstr(p, "://") + 3;
        const char *at = memchr(s, '@', strcspn(s, "/"));
        const char *colon = at ? memchr(s, ':', (size_t)(at - s)) : NULL;
        if (colon) {
            put_cut(out, n, &o, p, (size_t)(colon + 1 - p));
            put_cut(out, n, &o, "***", 3);
            p = at;
        }
        for (const char *q = strchr(p, '?'); q; q = strchr(q + 1, '&')) {
            if (strncmp(q + 1, "password=", 9) != 0)
                continue;
            put_cut(out, n, &o, p, (size_t)(q + 10 - p));
            put_cut(out, n, &o, "***", 3);
            p = q + 10 + strcspn(q + 10, "&");
        }
    }
    put_cut(out, n, &o, p, strlen(p));
}

/* ---- bounded round trips ------------------------------------------------- */

/* Waits until pg has a whole result or deadline (monotonic ms) passes. true
 * when it has one; false on timeout or a broken connection. */
static bool pg_wait(PGconn *pg, int64_t deadline)
{
    while (PQisBusy(pg)) {
        int64_t left = deadline - im_monotonic_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && !PQconsumeInput(pg))
            return false;
    }
    return true;
}

/* The last result of what was sent on pg (NULL: timed out or lost; then the
 * connection is of no more use, and *timed_out says which). */
static PGresult *pg_collect(PGconn *pg, int64_t timeout_ms, bool *timed_out)
{
    int64_t deadline = im_monotonic_ms() + timeout_ms;
    PGresult *last = NULL, *r;
    *timed_out = false;
    for (;;) {
        if (!pg_wait(pg, deadline)) {
            *timed_out = PQstatus(pg) == CONNECTION_OK;
            PQclear(last);
            return NULL;
        }
        r = PQgetResult(pg);
        if (!r)
            return last;
        PQclear(last);
        last = r;
    }
}

PGresult *store__pg_exec(struct store__conn *c, const char *name, const char *sql,
                         int nparams, const char *const *val, const int *len,
                         const int *fmt)
{
    bool timed_out = false;
    /* sql without parameters may be several statements: the simple protocol,
     * text results */
    int sent = name      ? PQsendQueryPrepared(c->pg, name, nparams, val, len, fmt, 1)
               : nparams ? PQsendQueryParams(c->pg, sql, nparams, NULL, val, len, fmt, 1)
                         : PQsendQuery(c->pg, sql);
    PGresult *res = sent ? pg_collect(c->pg, STORE__PG_TIMEOUT_MS, &timed_out) : NULL;
    if (!res) {
        snprintf(c->pg_err, sizeof c->pg_err, "%s",
                 timed_out ? "PostgreSQL did not answer in time"
                           : "the connection to PostgreSQL was lost");
        c->broken = true; /* whatever it would still answer is of no use */
        c->timed_out = timed_out;
        im_metric_inc(IM_DB_CONNECTIONS_LOST);
    } else if (PQstatus(c->pg) != CONNECTION_OK && !c->broken) {
        c->broken = true;
        im_metric_inc(IM_DB_CONNECTIONS_LOST);
    }
    return res;
}

/* ---- connections --------------------------------------------------------- */

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A connection to path, bounded in time; NULL with err set. */
static PGconn *pg_connect(const char *path, struct im_error *err)
{
    /* the URI comes last, so that what it says overrides these defaults */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "imgmeta", path, NULL};
    char safe[512];
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg && PQstatus(pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(pg, quiet, NULL); /* "already exists, skipping" */
        return pg;
    }
    im_metric_inc(IM_DB_CONNECT_FAILURES);
    store_safe_name(path, safe, sizeof safe);
    const char *why = pg ? PQerrorMessage(pg) : "out of memory";
    size_t n = strcspn(why, "\n");
    im_seterr(err, IM_EDBDOWN, "cannot connect to %s: %.*s", safe, (int)n, why);
    PQfinish(pg);
    return NULL;
}

/* Runs sql (no parameters) on c for the schema's setup: 0 or IM_ESTORE. */
static int setup_exec(struct store__conn *c, const char *sql, PGresult **rows,
                      struct im_error *err)
{
    PGresult *res = store__pg_exec(c, NULL, sql, 0, NULL, NULL, NULL);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        const char *why = res ? PQresultErrorMessage(res) : c->pg_err;
        size_t n = strcspn(why, "\n");
        int rc = im_seterr(err, c->broken ? IM_EDBDOWN : IM_ESTORE,
                           "setting up the cache database: %.*s", (int)n, why);
        PQclear(res);
        return rc;
    }
    if (rows)
        *rows = res;
    else
        PQclear(res);
    return 0;
}

/* The schema's version as the database says it (0: none yet). */
static int read_version(struct store__conn *c, int *version, struct im_error *err)
{
    PGresult *res = NULL;
    int rc = setup_exec(c, "SELECT coalesce(max(version), 0)::text FROM imgmeta_schema",
                        &res, err);
    if (rc)
        return rc;
    /* binary results: a text column is its bytes */
    *version = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return 0;
}

/* Creates or migrates the schema, once for the fleet: under the schema's
 * advisory lock, which another replica starting at the same time waits on
 * (replicas already running keep serving: migrations only add). */
static int schema_setup(struct store *s, struct store__conn *c, struct im_error *err)
{
    char sql[160];
    int version = 0;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d, %d)", PG_LOCK_CLASS,
             PG_LOCK_SCHEMA);
    int rc = setup_exec(c, sql, NULL, err);
    if (rc)
        return rc;
    rc = setup_exec(c,
                    "CREATE TABLE IF NOT EXISTS imgmeta_schema(version integer NOT NULL)",
                    NULL, err);
    if (!rc)
        rc = read_version(c, &version, err);
    if (!rc && version > PG_SCHEMA_VERSION)
        rc = im_seterr(err, IM_ESTORE,
                       "the cache database has schema %d, from a newer imgmeta (this "
                       "one writes %d): refusing to use it",
                       version, PG_SCHEMA_VERSION);
    if (!rc && version < PG_SCHEMA_VERSION) {
        int64_t t0 = im_monotonic_ms();
        rc = setup_exec(c, "BEGIN", NULL, err);
        for (int v = version; !rc && v < PG_SCHEMA_VERSION; v++)
            rc = setup_exec(c, pg_migrations[v], NULL, err);
        snprintf(sql, sizeof sql,
                 "DELETE FROM imgmeta_schema; INSERT INTO imgmeta_schema VALUES (%d)",
                 PG_SCHEMA_VERSION);
        if (!rc)
            rc = setup_exec(c, sql, NULL, err);
        if (!rc)
            rc = setup_exec(c, "COMMIT", NULL, err);
        else if (!c->broken)
            (void)setup_exec(c, "ROLLBACK", NULL, NULL);
        if (!rc && version > 0) {
            s->migrated_from = version;
            s->migrate_ms = im_monotonic_ms() - t0;
        }
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %d)", PG_LOCK_CLASS,
             PG_LOCK_SCHEMA);
    if (!c->broken)
        (void)setup_exec(c, sql, NULL, NULL);
    return rc;
}

/* The highest $N in sql. */
static int count_params(const char *sql)
{
    int n = 0;
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        int v = atoi(p + 1);
        if (v > n)
            n = v;
    }
    return n;
}

static int prepare_all(struct store__conn *c, struct im_error *err)
{
    for (int i = 0; i < ST__COUNT; i++) {
        struct store__q *q = &c->st[i];
        const char *sql = store__sql_of(STORE__PG, (enum store__stmt)i);
        char name[16];
        q->c = c;
        q->id = i;
        q->row = -1;
        if (!sql) {
            q->absent = true; /* a statement this backend never runs */
            continue;
        }
        q->nparams = count_params(sql);
        if (q->nparams > STORE__PG_PARAMS)
            return im_seterr(err, IM_EINTERNAL, "statement %d takes too many parameters",
                             i);
        snprintf(name, sizeof name, "s%d", i);
        if (!PQsendPrepare(c->pg, name, sql, 0, NULL)) {
            c->broken = true;
            return im_seterr(err, IM_EDBDOWN, "the connection to PostgreSQL was lost");
        }
        bool timed_out = false;
        PGresult *res = pg_collect(c->pg, STORE__PG_TIMEOUT_MS, &timed_out);
        int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *why = res ? PQresultErrorMessage(res) : "no answer";
            size_t n = strcspn(why, "\n");
            int rc = im_seterr(err, res ? IM_ESTORE : IM_EDBDOWN,
                               "preparing statement %d: %.*s", i, (int)n, why);
            PQclear(res);
            return rc;
        }
        PQclear(res);
    }
    return 0;
}

int store__pg_conn_open(struct store *s, bool setup, struct store__conn **out,
                        struct im_error *err)
{
    struct store__conn *c = calloc(1, sizeof *c);
    int rc = 0;
    *out = NULL;
    if (!c)
        return im_seterr(err, IM_ENOMEM, "out of memory connecting to PostgreSQL");
    c->s = s;
    for (int i = 0; i < ST__COUNT; i++)
        c->st[i].row = -1;
    c->pg = pg_connect(s->path, err);
    if (!c->pg) {
        free(c);
        return IM_EDBDOWN;
    }
    if (setup)
        rc = schema_setup(s, c, err);
    if (!rc)
        rc = prepare_all(c, err);
    if (rc) {
        store__conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int store__pg_revive(struct store__conn *c)
{
    struct im_error ignored;
    PQreset(c->pg); /* bounded by connect_timeout, as the first connect */
    if (PQstatus(c->pg) != CONNECTION_OK) {
        im_metric_inc(IM_DB_CONNECT_FAILURES);
        return IM_EDBDOWN;
    }
    c->broken = c->timed_out = false;
    int rc = prepare_all(c, &ignored);
    if (rc)
        c->broken = true;
    return rc;
}

/* ---- leases -------------------------------------------------------------- */

bool store_shared(const struct store *s)
{
    return s && s->backend == STORE__PG;
}

/* A lease connection: an idle one, or a new one while fewer than
 * STORE__LEASE_CONNS exist. NULL with err set. */
static struct store__lease_conn *lease_conn_get(struct store *s, int *rc,
                                                struct im_error *err)
{
    struct store__lease_conn *lc = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->lease_idle) {
        lc = s->lease_idle;
        s->lease_idle = lc->next;
    } else if (s->lease_conns < STORE__LEASE_CONNS) {
        s->lease_conns++;
    } else {
        pthread_mutex_unlock(&s->mu);
        *rc = im_seterr(err, IM_EBUSY, "every lease connection is in use");
        return NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (lc)
        return lc;
    lc = calloc(1, sizeof *lc);
    *rc = IM_EDBDOWN;
    if (lc)
        lc->pg = pg_connect(s->path, err);
    else
        *rc = im_seterr(err, IM_ENOMEM, "out of memory for a lease");
    if (!lc || !lc->pg) {
        free(lc);
        pthread_mutex_lock(&s->mu);
        s->lease_conns--;
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    return lc;
}

/* Back to the idle list, or closed when it is no longer usable (which also
 * ends any lock it held). */
static void lease_conn_put(struct store *s, struct store__lease_conn *lc, bool usable)
{
    if (!usable || PQstatus(lc->pg) != CONNECTION_OK) {
        PQfinish(lc->pg);
        free(lc);
        pthread_mutex_lock(&s->mu);
        s->lease_conns--;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_lock(&s->mu);
    lc->next = s->lease_idle;
    s->lease_idle = lc;
    pthread_mutex_unlock(&s->mu);
}

void store__pg_leases_close(struct store *s)
{
    struct store__lease_conn *lc = s->lease_idle;
    while (lc) {
        struct store__lease_conn *next = lc->next;
        PQfinish(lc->pg);
        free(lc);
        lc = next;
    }
    s->lease_idle = NULL;
}

/* Runs sql (one statement or several; text results) on a lease connection
 * within timeout_ms: the last result (the caller clears it), NULL when it
 * timed out or the connection broke. */
static PGresult *lease_exec(PGconn *pg, const char *sql, int64_t timeout_ms)
{
    bool timed_out = false;
    if (!PQsendQuery(pg, sql))
        return NULL;
    return pg_collect(pg, timeout_ms, &timed_out);
}

/* true when res is one row whose first column is "t" (a text result). */
static bool says_true(const PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
           strcmp(PQgetvalue(res, 0, 0), "t") == 0;
}

int store_lease_take(struct store *s, const char *key, int64_t wait_ms,
                     struct store_lease **out, bool *waited, struct im_error *err)
{
    char sql[160];
    *out = NULL;
    if (waited)
        *waited = false;
    if (!store_shared(s))
        return 0; /* one process per SQLite file: nothing to share */
    if (!key)
        return im_seterr(err, IM_EINVAL, "store_lease_take needs a key");
    struct store_lease *l = calloc(1, sizeof *l);
    if (!l)
        return im_seterr(err, IM_ENOMEM, "out of memory for a lease");
    l->object = (int32_t)(uint32_t)im_fnv1a(IM_FNV1A_START, key, strlen(key));
    int rc = 0;
    bool held = false, ok = false;
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LEASE_CLASS,
             (int)l->object);
    /* an idle connection may have been lost since its last use (the server
     * restarted): then once more on a new one */
    for (int attempt = 0; attempt < 2 && !ok; attempt++) {
        if (attempt > 0)
            lease_conn_put(s, l->lc, false);
        l->lc = lease_conn_get(s, &rc, err);
        if (!l->lc) {
            free(l);
            return rc;
        }
        PGresult *res = lease_exec(l->lc->pg, sql, STORE__PG_TIMEOUT_MS);
        held = says_true(res);
        ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    PGresult *res = NULL;
    if (ok && !held && wait_ms > 0) {
        /* another replica resolves it: wait for its lock to go (its commit,
         * or its death), at most wait_ms */
        if (waited)
            *waited = true;
        snprintf(sql, sizeof sql,
                 "SET lock_timeout = %lld; SELECT pg_advisory_lock(%d, %d) IS NOT NULL",
                 (long long)wait_ms, PG_LEASE_CLASS, (int)l->object);
        res = lease_exec(l->lc->pg, sql, wait_ms + STORE__PG_TIMEOUT_MS);
        held = says_true(res);
        ok = res != NULL;
        PQclear(res);
        res = ok ? lease_exec(l->lc->pg, "SET lock_timeout = 0", STORE__PG_TIMEOUT_MS)
                 : NULL;
        ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    if (held) {
        *out = l;
        return 0;
    }
    lease_conn_put(s, l->lc, ok);
    free(l);
    if (!ok)
        return im_seterr(err, IM_EDBDOWN, "the connection to PostgreSQL was lost");
    return im_seterr(err, IM_ETIMEOUT, "another replica holds the lease on %s", key);
}

void store_lease_give(struct store *s, struct store_lease *l)
{
    char sql[96];
    if (!l)
        return;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %d)", PG_LEASE_CLASS,
             (int)l->object);
    PGresult *res = lease_exec(l->lc->pg, sql, STORE__PG_TIMEOUT_MS);
    /* a lock that could not be given back goes with its connection */
    lease_conn_put(s, l->lc, says_true(res));
    PQclear(res);
    free(l);
}
