/* store_sql.c - one statement of a connection, whichever database is under
 * it: binding parameters, stepping through rows and reading columns, for
 * SQLite (a thin layer over its prepared statements) and for PostgreSQL
 * (libpq's prepared statements, run at the first step with binary results,
 * whose rows the following steps walk). The results are SQLite's codes, the
 * store's own vocabulary (store_int.h). */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's type OIDs of the columns the store reads (pg_type.h, stable
 * across releases). */
enum { PG_BOOL = 16, PG_BYTEA = 17, PG_INT8 = 20, PG_INT2 = 21, PG_INT4 = 23 };

static bool is_pg(const struct store__q *q)
{
    return q->lite == NULL;
}

/* Parameter i (1-based) of a PostgreSQL statement: SQLITE_OK, or SQLITE_RANGE
 * when the statement takes no such parameter. */
static int pg_param(struct store__q *q, int i, const char *v, int len, int fmt)
{
    if (q->absent)
        return SQLITE_OK;
    if (i < 1 || i > q->nparams || i > STORE__PG_PARAMS)
        return SQLITE_RANGE;
    q->val[i - 1] = v;
    q->len[i - 1] = len;
    q->fmt[i - 1] = fmt;
    return SQLITE_OK;
}

int store__bind_text(struct store__q *q, int i, const char *v)
{
    if (!is_pg(q))
        return sqlite3_bind_text(q->lite, i, v, -1, SQLITE_STATIC);
    return pg_param(q, i, v, 0, 0);
}

int store__bind_textn(struct store__q *q, int i, const char *v, size_t n)
{
    if (!is_pg(q))
        return n > INT32_MAX ? SQLITE_TOOBIG
                             : sqlite3_bind_text(q->lite, i, v, (int)n, SQLITE_STATIC);
    /* binary format: text's binary form is its bytes, no NUL needed */
    return n > INT32_MAX ? SQLITE_TOOBIG : pg_param(q, i, v, (int)n, 1);
}

int store__bind_int(struct store__q *q, int i, int64_t v)
{
    if (!is_pg(q))
        return sqlite3_bind_int64(q->lite, i, v);
    if (q->absent)
        return SQLITE_OK;
    if (i < 1 || i > q->nparams || i > STORE__PG_PARAMS)
        return SQLITE_RANGE;
    snprintf(q->num[i - 1], sizeof q->num[i - 1], "%" PRId64, v);
    return pg_param(q, i, q->num[i - 1], 0, 0);
}

int store__bind_null(struct store__q *q, int i)
{
    if (!is_pg(q))
        return sqlite3_bind_null(q->lite, i);
    return pg_param(q, i, NULL, 0, 0);
}

int store__bind_blob(struct store__q *q, int i, const void *p, size_t n)
{
    if (!is_pg(q)) {
        /* a zero-length body is an empty BLOB, never NULL */
        if (n == 0)
            return sqlite3_bind_zeroblob(q->lite, i, 0);
        return sqlite3_bind_blob64(q->lite, i, p, n, SQLITE_STATIC);
    }
    if (n > INT32_MAX)
        return SQLITE_TOOBIG;
    return pg_param(q, i, n ? p : "", (int)n, 1);
}

int store__param_count(struct store__q *q)
{
    return is_pg(q) ? q->nparams : sqlite3_bind_parameter_count(q->lite);
}

/* Keeps PostgreSQL's words for a failure in c (the result's, else the
 * connection's), and whether the connection itself is gone. */
static void pg_failed(struct store__conn *c, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (!m || !*m)
        m = PQerrorMessage(c->pg);
    snprintf(c->pg_err, sizeof c->pg_err, "%s", m && *m ? m : "PostgreSQL failed");
    size_t n = strlen(c->pg_err);
    while (n > 0 && (c->pg_err[n - 1] == '\n' || c->pg_err[n - 1] == ' '))
        c->pg_err[--n] = '\0';
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->broken = true;
}

static int pg_run(struct store__q *q)
{
    struct store__conn *c = q->c;
    char name[16];
    if (q->absent) {
        c->changes = 0;
        q->nrows = 0;
        q->row = -1;
        return SQLITE_OK;
    }
    if (c->broken) {
        snprintf(c->pg_err, sizeof c->pg_err, "the connection to PostgreSQL was lost");
        return SQLITE_ERROR;
    }
    snprintf(name, sizeof name, "s%d", q->id);
    bool idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    q->res = store__pg_exec(c, name, NULL, q->nparams, q->val, q->len, q->fmt);
    /* a connection that was lost while idle (the server restarted since its
     * last use) is connected again and the statement sent once more: it was
     * not in a transaction, so nothing of it is half done. A server that
     * stops answering is not waited for twice. */
    if (c->broken && !c->timed_out && idle && store__pg_revive(c) == 0) {
        PQclear(q->res);
        q->res = store__pg_exec(c, name, NULL, q->nparams, q->val, q->len, q->fmt);
    }
    if (!q->res)
        return SQLITE_ERROR;
    ExecStatusType st = q->res ? PQresultStatus(q->res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        pg_failed(c, q->res);
        return SQLITE_ERROR;
    }
    const char *n = PQcmdTuples(q->res);
    c->changes = n && *n ? strtoll(n, NULL, 10) : 0;
    q->nrows = PQntuples(q->res);
    q->row = -1;
    return SQLITE_OK;
}

int store__step(struct store__q *q)
{
    if (!is_pg(q))
        return sqlite3_step(q->lite);
    if (!q->res && q->row < 0) {
        int rc = pg_run(q);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (q->row + 1 >= q->nrows) {
        q->row = q->nrows;
        return SQLITE_DONE;
    }
    q->row++;
    return SQLITE_ROW;
}

/* The row the statement is on has column i. */
static bool pg_has(const struct store__q *q, int i)
{
    return q->res && q->row >= 0 && q->row < q->nrows && i >= 0 && i < PQnfields(q->res);
}

bool store__col_null(struct store__q *q, int i)
{
    if (!is_pg(q))
        return sqlite3_column_type(q->lite, i) == SQLITE_NULL;
    return !pg_has(q, i) || PQgetisnull(q->res, q->row, i);
}

/* A big-endian integer of n bytes. */
static int64_t be_int(const unsigned char *p, int n)
{
    uint64_t v = (n > 0 && (p[0] & 0x80)) ? UINT64_MAX : 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    return (int64_t)v;
}

int64_t store__col_int(struct store__q *q, int i)
{
    if (!is_pg(q))
        return sqlite3_column_int64(q->lite, i);
    if (store__col_null(q, i))
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(q->res, q->row, i);
    int n = PQgetlength(q->res, q->row, i);
    switch (PQftype(q->res, i)) {
    case PG_BOOL:
        return n == 1 && p[0] != 0;
    case PG_INT2:
    case PG_INT4:
    case PG_INT8:
        return n == 2 || n == 4 || n == 8 ? be_int(p, n) : 0;
    default:
        return strtoll((const char *)p, NULL, 10); /* a text column */
    }
}

const char *store__col_text(struct store__q *q, int i)
{
    if (!is_pg(q))
        return (const char *)sqlite3_column_text(q->lite, i);
    /* libpq ends every value with a NUL, binary ones too */
    return store__col_null(q, i) ? NULL : PQgetvalue(q->res, q->row, i);
}

const void *store__col_blob(struct store__q *q, int i)
{
    if (!is_pg(q))
        return sqlite3_column_blob(q->lite, i);
    return store__col_null(q, i) ? NULL : PQgetvalue(q->res, q->row, i);
}

size_t store__col_bytes(struct store__q *q, int i)
{
    if (!is_pg(q)) {
        int n = sqlite3_column_bytes(q->lite, i);
        return n > 0 ? (size_t)n : 0;
    }
    return store__col_null(q, i) ? 0 : (size_t)PQgetlength(q->res, q->row, i);
}

void store__done(struct store__q *q)
{
    if (!is_pg(q)) {
        /* reset returns the error of the last step, already reported by the
         * caller; clear_bindings cannot fail on a valid statement. */
        (void)sqlite3_reset(q->lite);
        (void)sqlite3_clear_bindings(q->lite);
        return;
    }
    PQclear(q->res);
    q->res = NULL;
    q->row = -1;
    q->nrows = 0;
    for (int i = 0; i < STORE__PG_PARAMS; i++) {
        q->val[i] = NULL;
        q->len[i] = q->fmt[i] = 0;
    }
}

int64_t store__changes(struct store__conn *c)
{
    return c->pg ? c->changes : sqlite3_changes64(c->db);
}

const char *store__errmsg(struct store__conn *c)
{
    if (!c)
        return "out of memory";
    return c->pg ? c->pg_err : sqlite3_errmsg(c->db);
}

bool store__in_tx(struct store__conn *c)
{
    if (c->pg)
        return PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    return !sqlite3_get_autocommit(c->db);
}

int store__exec_sql(struct store__conn *c, const char *sql)
{
    if (!c->pg)
        return sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    PGresult *res = store__pg_exec(c, NULL, sql, 0, NULL, NULL, NULL);
    if (!res)
        return SQLITE_ERROR;
    ExecStatusType st = PQresultStatus(res);
    int rc = SQLITE_OK;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        pg_failed(c, res);
        rc = SQLITE_ERROR;
    }
    PQclear(res);
    return rc;
}
