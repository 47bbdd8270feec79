/* store_test.c - the store's unit tests' shared fixtures and assertions
 * (store_test.h). */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"
#include "store.h"
#include "store_int.h"
#include "store_test.h"

void fake_digest(char *out, unsigned n)
{
    snprintf(out, IM_DIGEST_MAX, "sha256:%064x", n);
}

struct im_ref tag_ref(const char *repo, const char *tag)
{
    struct im_ref r;
    memset(&r, 0, sizeof r);
    snprintf(r.registry, sizeof r.registry, "docker.io");
    snprintf(r.repository, sizeof r.repository, "%s", repo);
    snprintf(r.tag, sizeof r.tag, "%s", tag);
    return r;
}

int blob_into(struct im_bundle *b, const char *digest, const char *media, int64_t size,
              int64_t last_modified)
{
    struct im_blob bl;
    memset(&bl, 0, sizeof bl);
    snprintf(bl.digest, sizeof bl.digest, "%s", digest);
    snprintf(bl.media_type, sizeof bl.media_type, "%s", media);
    bl.size = size;
    bl.last_modified = last_modified;
    return im_bundle_add_blob(b, &bl);
}

/* Gives every document of b the digest of its bytes in algo ("sha256",
 * "sha384", "sha512"), as a resolution keeps them (the store checks a
 * document it reads against its digest). */
void digests_as(struct im_bundle *b, const char *algo)
{
    for (size_t i = 0; i < b->ndocs; i++) {
        struct im_doc *d = &b->docs[i];
        int root = strcmp(d->digest, b->root_digest) == 0;
        if (im_digest_compute(algo, d->body, d->len, d->digest, sizeof d->digest) != 0)
            abort(); /* out of memory: no test can go on */
        if (root)
            snprintf(b->root_digest, sizeof b->root_digest, "%s", d->digest);
    }
}

void real_digests(struct im_bundle *b)
{
    digests_as(b, "sha256");
}

int build_image(struct im_bundle *b, unsigned n)
{
    char root[IM_DIGEST_MAX], cfg[IM_DIGEST_MAX], layer[IM_DIGEST_MAX],
        shared[IM_DIGEST_MAX], body[256];
    im_bundle_init(b);
    fake_digest(root, n);
    fake_digest(cfg, SHARED_CONFIG);
    fake_digest(layer, n + 500000u);
    fake_digest(shared, SHARED_LAYER);
    int len =
        snprintf(body, sizeof body,
                 "{\"schemaVersion\": 2, \"image\": %u,\r\n \"x\": \"\\u00e9\"}\n", n);
    snprintf(b->root_digest, sizeof b->root_digest, "%s", root);
    int rc = im_bundle_add_doc(b, root, "application/vnd.oci.image.manifest.v1+json",
                               body, (size_t)len);
    if (!rc)
        rc = im_bundle_add_doc(b, cfg, "application/vnd.oci.image.config.v1+json",
                               "{\"os\":\"linux\"}", 15);
    if (!rc)
        rc = blob_into(b, layer, "application/vnd.oci.image.layer.v1.tar+gzip", 1000 + n,
                       1600000000);
    if (!rc)
        rc = blob_into(b, shared, "", -1, -1);
    return rc;
}

/* ---- the backend under test ---------------------------------------------- */

const char *pg_base(void)
{
    const char *base = getenv("IMGMETA_TEST_PG");
    return base && *base ? base : NULL;
}

bool pg_mode(void)
{
    return pg_base() != NULL;
}

bool keeps_rendered(void)
{
    return !pg_mode();
}

int rendered_or_none(int rc)
{
    return keeps_rendered() ? rc : IM_ENOTFOUND;
}

/* The schema that stands for path: imt_m_<pid>_<count> for a private
 * database (a new one each time), imt_f_<hash of the path> for a file. */
static void schema_of(const char *path, char *out, size_t n)
{
    static _Atomic unsigned count;
    if (store__is_private_db(path))
        snprintf(out, n, "imt_m_%ld_%u", (long)getpid(), count++);
    else
        snprintf(out, n, "imt_f_%016" PRIx64,
                 im_fnv1a(IM_FNV1A_START, path, strlen(path)));
}

/* The base URI with its search_path set to schema (libpq's options
 * parameter, "-csearch_path=schema" percent-encoded). */
static void uri_of(const char *schema, char *out, size_t n)
{
    const char *base = pg_base();
    snprintf(out, n, "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? '&' : '?', schema);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "schema ... does not exist, skipping" */
}

/* A connection to uri that says no notices; NULL, with libpq's words on
 * stderr, when it failed. */
static PGconn *pg_open(const char *uri)
{
    PGconn *pg = PQconnectdb(uri);
    if (PQstatus(pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(pg, quiet, NULL);
        return pg;
    }
    fprintf(stderr, "connecting to %s: %s", uri, PQerrorMessage(pg));
    PQfinish(pg);
    return NULL;
}

/* Runs sql (any number of statements) on a connection to the base URI: 0, or
 * -1 with PostgreSQL's words on stderr. */
static int pg_base_exec(const char *sql)
{
    PGconn *pg = pg_open(pg_base());
    PGresult *res = pg ? PQexec(pg, sql) : NULL;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc && pg)
        fprintf(stderr, "%s: %s", sql,
                res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
    return rc;
}

/* Makes schema (dropping what a schema of that name held before, when
 * fresh): 0 or -1. */
static int make_schema(const char *schema, bool fresh)
{
    char sql[256];
    if (fresh)
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
                 schema, schema);
    else
        snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", schema);
    return pg_base_exec(sql);
}

const char *db_name(const char *path)
{
    static _Thread_local char uri[1024];
    char schema[64];
    if (!pg_mode())
        return path;
    bool private_db = store__is_private_db(path);
    schema_of(path, schema, sizeof schema);
    if (make_schema(schema, private_db) != 0)
        return NULL;
    uri_of(schema, uri, sizeof uri);
    return uri;
}

PGconn *pg_connect_to(const char *path)
{
    const char *uri = db_name(path);
    return uri ? pg_open(uri) : NULL;
}

int tmpdb_init(struct tmpdb *t)
{
    char schema[64];
    snprintf(t->dir, sizeof t->dir, "/tmp/imgmeta-store-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/cache.db", t->dir);
    if (!pg_mode())
        return 0;
    /* a directory of the same name may have been made by an earlier run */
    schema_of(t->path, schema, sizeof schema);
    return make_schema(schema, true);
}

void tmpdb_remove(struct tmpdb *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[128], schema[64], sql[128];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffixes[i]);
        unlink(p);
    }
    rmdir(t->dir);
    if (pg_mode()) {
        schema_of(t->path, schema, sizeof schema);
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        (void)pg_base_exec(sql);
    }
}

#ifndef STORE_TSAN_MAIN
#include <criterion/criterion.h>
#define ZLIB_CONST /* next_in is a pointer to const */
#include <zlib.h>

/* n bytes no compressor shrinks (xorshift from seed), so that the database
 * grows by what is stored. */
void noise(void *buf, size_t n, uint32_t seed)
{
    unsigned char *p = buf;
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)(x >> 24);
    }
}

void add_doc(struct im_bundle *b, const char *digest, const char *media, const void *body,
             size_t len)
{
    cr_assert_eq(im_bundle_add_doc(b, digest, media, body, len), 0);
}

void add_blob(struct im_bundle *b, const char *digest, const char *media, int64_t size,
              int64_t last_modified)
{
    cr_assert_eq(blob_into(b, digest, media, size, last_modified), 0);
}

/* build_image's image n, its documents under their real digests (as a
 * resolution keeps them: the store checks a document it reads against its
 * digest). */
void make_image(struct im_bundle *b, unsigned n)
{
    cr_assert_eq(build_image(b, n), 0);
    real_digests(b);
}

/* Every document and blob of want is in got, identical. */
void assert_same_bundle(const struct im_bundle *want, const struct im_bundle *got)
{
    cr_assert_str_eq(got->root_digest, want->root_digest);
    cr_assert_eq(got->ndocs, want->ndocs);
    cr_assert_eq(got->nblobs, want->nblobs);
    for (size_t i = 0; i < want->ndocs; i++) {
        const struct im_doc *w = &want->docs[i];
        const struct im_doc *g = im_bundle_find_doc(got, w->digest);
        cr_assert_not_null(g, "document %s missing", w->digest);
        cr_assert_str_eq(g->media_type, w->media_type);
        cr_assert_eq(g->len, w->len, "document %s: %zu bytes, want %zu", w->digest,
                     g->len, w->len);
        cr_assert(w->len == 0 || memcmp(g->body, w->body, w->len) == 0,
                  "document %s differs", w->digest);
    }
    for (size_t i = 0; i < want->nblobs; i++) {
        const struct im_blob *w = &want->blobs[i];
        const struct im_blob *g = im_bundle_find_blob(got, w->digest);
        cr_assert_not_null(g, "blob %s missing", w->digest);
        cr_assert_str_eq(g->media_type, w->media_type);
        cr_assert_eq(g->size, w->size);
        cr_assert_eq(g->last_modified, w->last_modified);
    }
}

struct store *open_ok(const char *path)
{
    struct im_error err = {{0}};
    const char *name = db_name(path);
    cr_assert_not_null(name, "no PostgreSQL schema for %s", path);
    struct store *s = store_open(name, &err);
    cr_assert_not_null(s, "store_open(%s): %s", name, err.msg);
    return s;
}

void put_ok(struct store *s, const struct im_ref *ref, const struct im_bundle *b,
            int64_t now)
{
    struct im_error err = {{0}};
    int rc = store_put(s, ref, b, now, &err);
    cr_assert_eq(rc, 0, "store_put: %d %s", rc, err.msg);
}

struct store_tag get_tag_ok(struct store *s, const struct im_ref *ref)
{
    struct im_error err = {{0}};
    struct store_tag t;
    int rc = store_get_tag(s, ref, &t, &err);
    cr_assert_eq(rc, 0, "store_get_tag: %d %s", rc, err.msg);
    return t;
}

struct store_stats stats_ok(struct store *s)
{
    struct im_error err = {{0}};
    struct store_stats st;
    cr_assert_eq(store_stats(s, &st, &err), 0, "store_stats: %s", err.msg);
    return st;
}

/* PostgreSQL mode: sql (params: nparams blobs, binary results when binary)
 * on path's schema, which must answer with status want; the result, for the
 * caller to clear. */
static PGresult *pg_run(const char *path, const char *sql, int nparams, const void *p,
                        size_t n, bool binary, ExecStatusType want)
{
    PGconn *pg = pg_connect_to(path);
    cr_assert_not_null(pg, "no connection to PostgreSQL for %s", path);
    const char *val[1] = {p};
    int len[1] = {(int)n}, fmt[1] = {1};
    PGresult *res = nparams || binary
                        ? PQexecParams(pg, sql, nparams, NULL, val, len, fmt, binary)
                        : PQexec(pg, sql);
    cr_assert(res && PQresultStatus(res) == want, "%s: %s", sql,
              res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
    PQfinish(pg);
    return res;
}

void raw_exec_dialects(const char *path, const char *lite, const char *pg)
{
    if (pg_mode()) {
        PQclear(pg_run(path, pg, 0, NULL, 0, false, PGRES_COMMAND_OK));
        return;
    }
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, lite, NULL, NULL, NULL);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", lite, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

void raw_exec(const char *path, const char *sql)
{
    raw_exec_dialects(path, sql, sql);
}

/* SQLite: sql (one statement) prepared on a connection of its own to path
 * (the caller finalizes it and closes *db). */
static sqlite3_stmt *lite_prepare(const char *path, const char *sql, sqlite3 **db)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(*db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(*db));
    return st;
}

void raw_exec_blob(const char *path, const char *sql, const void *p, size_t n)
{
    if (pg_mode()) {
        PQclear(pg_run(path, sql, 1, n ? p : "", n, false, PGRES_COMMAND_OK));
        return;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = lite_prepare(path, sql, &db);
    cr_assert_eq(sqlite3_bind_blob(st, 1, p, (int)n, SQLITE_TRANSIENT), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

unsigned char *raw_body(const char *path, const char *sql, size_t *n)
{
    unsigned char *p = NULL;
    if (pg_mode()) {
        PGresult *res = pg_run(path, sql, 0, NULL, 0, true, PGRES_TUPLES_OK);
        cr_assert_geq(PQntuples(res), 1, "%s: no row", sql);
        *n = (size_t)PQgetlength(res, 0, 0);
        p = malloc(*n + 1);
        cr_assert_not_null(p);
        memcpy(p, PQgetvalue(res, 0, 0), *n);
        PQclear(res);
        return p;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = lite_prepare(path, sql, &db);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    *n = (size_t)sqlite3_column_bytes(st, 0);
    p = malloc(*n + 1);
    cr_assert_not_null(p);
    memcpy(p, sqlite3_column_blob(st, 0), *n);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return p;
}

/* Whole file contents, to show a refused file was not touched. */
char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    *len = ftell(f);
    cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
    char *buf = malloc((size_t)*len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

/* The key describe.c builds: root digest, NUL, then what else it names. */
size_t rendered_key(char *key, size_t n, const char *root, const char *rest)
{
    int w = snprintf(key, n, "%s%c%s", root, 0, rest);
    cr_assert(w > 0 && (size_t)w < n);
    return (size_t)w;
}

void put_rendered_ok(struct store *s, const struct im_ref *ref, const char *key,
                     size_t klen, const char *body, size_t len)
{
    struct im_error err = {{0}};
    int rc = store_put_rendered(s, ref, key, klen, body, len, &err);
    cr_assert_eq(rc, 0, "store_put_rendered: %d %s", rc, err.msg);
}

/* 0 and the body compared with want, or the error code. */
int get_rendered_is(struct store *s, const char *key, size_t klen, const char *want,
                    size_t wlen)
{
    char *body = NULL;
    size_t len = 0;
    int rc = store_get_rendered(s, key, klen, &body, &len, NULL);
    if (rc == 0) {
        cr_assert_eq(len, wlen, "%zu bytes, want %zu", len, wlen);
        cr_assert(memcmp(body, want, wlen) == 0, "the kept answer differs");
        cr_assert_eq(body[len], '\0', "bodies come back NUL-terminated");
    }
    free(body);
    return rc;
}

void set_renderer_ok(struct store *s, const char *id, int64_t *dropped)
{
    struct im_error err = {{0}};
    int rc = store_set_renderer(s, id, dropped, &err);
    cr_assert_eq(rc, 0, "store_set_renderer: %d %s", rc, err.msg);
}

/* The file database db, holding b under ref, changed by sql behind the
 * store's back while it was closed; opened again. */
struct store *reopened_after(const struct tmpdb *db, const struct im_ref *ref,
                             const struct im_bundle *b, const char *sql)
{
    struct store *s = open_ok(db->path);
    put_ok(s, ref, b, 100);
    store_close(s);
    raw_exec(db->path, sql);
    return open_ok(db->path);
}

/* Column col, an integer, of the first row sql selects. */
int64_t raw_int(const char *path, const char *sql, int col)
{
    if (pg_mode()) {
        PGresult *res = pg_run(path, sql, 0, NULL, 0, false, PGRES_TUPLES_OK);
        cr_assert(PQntuples(res) >= 1 && col < PQnfields(res), "%s: no such row", sql);
        int64_t v = strtoll(PQgetvalue(res, 0, col), NULL, 10);
        PQclear(res);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = lite_prepare(path, sql, &db);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, col);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
