/* test_store_pg.c - what the store promises on PostgreSQL alone: a schema
 * from a newer imgmeta refused untouched, a new schema made once by stores
 * opening it at the same time, leases (one holder at a time across stores,
 * gone with a holder that dies), and a URI's password kept out of what is
 * shown, also when the server cannot be reached. Each test needs
 * IMGMETA_TEST_PG (store_test.h) and is skipped without it. */
#include <pthread.h>
#include <sys/wait.h>

#include "store_int.h" /* store__pg_conn_open: the code of a failed connection */
#include "store_test.h"

/* ---- the schema ---------------------------------------------------------- */

Test(store, a_newer_postgresql_schema_is_refused_untouched)
{
    PG_ONLY();
    struct tmpdb db;
    struct im_error err = {{0}};
    cr_assert_eq(tmpdb_init(&db), 0);
    raw_exec(db.path, "CREATE TABLE imgmeta_schema(version integer NOT NULL);"
                      " INSERT INTO imgmeta_schema VALUES (999);"
                      " CREATE TABLE future(x integer)");
    cr_assert_null(store_open(db_name(db.path), &err));
    cr_assert(strstr(err.msg, "the cache database has schema 999, from a newer imgmeta"),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "refusing to use it"), "%s", err.msg);
    cr_assert_eq(raw_int(db.path, "SELECT count(*) FROM imgmeta_schema", 0), 1);
    cr_assert_eq(raw_int(db.path, "SELECT max(version) FROM imgmeta_schema", 0), 999);
    cr_assert_eq(raw_int(db.path,
                         "SELECT count(*) FROM pg_tables WHERE schemaname ="
                         " current_schema()",
                         0),
                 2, "no table was made beside the newer schema's");
    /* the schema's lock went with the refused connection: another store starts */
    store_close(open_ok(":memory:"));
    tmpdb_remove(&db);
}

#define OPENERS 4

struct opener {
    pthread_t thread;
    pthread_barrier_t *start;
    const char *uri;
    struct store *s;
    struct im_error err;
};

static void *open_at_once(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->start);
    o->s = store_open(o->uri, &o->err);
    return NULL;
}

/* Stores of replicas starting together on a new database: each opens, the
 * schema is made once (one row of the current version), and they share it. */
Test(store, stores_opening_a_new_schema_at_once_make_it_once)
{
    PG_ONLY();
    struct tmpdb db;
    struct opener o[OPENERS];
    pthread_barrier_t start;
    struct im_bundle b, got;
    struct im_error err = {{0}};
    char uri[1024];
    cr_assert_eq(tmpdb_init(&db), 0);
    snprintf(uri, sizeof uri, "%s", db_name(db.path));
    cr_assert_eq(pthread_barrier_init(&start, NULL, OPENERS), 0);
    memset(o, 0, sizeof o);
    for (int i = 0; i < OPENERS; i++) {
        o[i].start = &start;
        o[i].uri = uri;
        cr_assert_eq(pthread_create(&o[i].thread, NULL, open_at_once, &o[i]), 0);
    }
    for (int i = 0; i < OPENERS; i++)
        cr_assert_eq(pthread_join(o[i].thread, NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < OPENERS; i++)
        cr_assert_not_null(o[i].s, "store %d: %s", i, o[i].err.msg);
    cr_assert_eq(raw_int(db.path, "SELECT count(*) FROM imgmeta_schema", 0), 1);
    cr_assert_eq(raw_int(db.path, "SELECT version FROM imgmeta_schema", 0),
                 store_schema_of(o[0].s));
    make_image(&b, 1);
    im_bundle_init(&got);
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(o[0].s, &ref, &b, 100);
    cr_assert_eq(store_load(o[OPENERS - 1].s, b.root_digest, &got, &err), 0, "%s",
                 err.msg);
    assert_same_bundle(&b, &got);
    for (int i = 0; i < OPENERS; i++)
        store_close(o[i].s);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* ---- leases -------------------------------------------------------------- */

/* A lease key no other test process takes at the same time. */
static void lease_key(char *key, size_t n, const char *what)
{
    snprintf(key, n, "test %ld %s", (long)getpid(), what);
}

/* store_lease_take: its result, with the lease in *l, whether it waited and
 * how long it took (ms). */
static int take(struct store *s, const char *key, int64_t wait_ms, struct store_lease **l,
                bool *waited, int64_t *took)
{
    struct im_error err = {{0}};
    int64_t t0 = im_monotonic_ms();
    int rc = store_lease_take(s, key, wait_ms, l, waited, &err);
    *took = im_monotonic_ms() - t0;
    return rc;
}

Test(store, a_lease_is_held_by_one_store_at_a_time)
{
    PG_ONLY();
    struct tmpdb db;
    struct store_lease *la = NULL, *lb = NULL, *other = NULL;
    bool waited = true;
    int64_t took = 0;
    char key[64], key2[64];
    cr_assert_eq(tmpdb_init(&db), 0);
    lease_key(key, sizeof key, "ref");
    lease_key(key2, sizeof key2, "another ref");
    struct store *a = open_ok(db.path), *b = open_ok(db.path);
    cr_assert(store_shared(a));
    cr_assert_eq(take(a, key, 0, &la, &waited, &took), 0);
    cr_assert_not_null(la);
    cr_assert_not(waited);
    /* held: the second taker waits its wait out */
    cr_assert_eq(take(b, key, 300, &lb, &waited, &took), IM_ETIMEOUT);
    cr_assert_null(lb);
    cr_assert(waited);
    cr_assert_geq(took, 280, "gave up after %lld ms, not the 300 it was given",
                  (long long)took);
    cr_assert_lt(took, 5000, "%lld ms", (long long)took);
    cr_assert_eq(take(b, key, 0, &lb, &waited, &took), IM_ETIMEOUT, "no wait: at once");
    cr_assert_not(waited);
    /* another key is another lease */
    cr_assert_eq(take(b, key2, 0, &other, &waited, &took), 0);
    store_lease_give(b, other);
    /* given back: the second taker has it at once */
    store_lease_give(a, la);
    cr_assert_eq(take(b, key, 5000, &lb, &waited, &took), 0);
    cr_assert_not_null(lb);
    cr_assert_not(waited, "free: taken without waiting");
    cr_assert_lt(took, 1000, "%lld ms", (long long)took);
    /* and back to the first */
    store_lease_give(b, lb);
    cr_assert_eq(take(a, key, 0, &la, &waited, &took), 0);
    store_lease_give(a, la);
    store_close(b);
    store_close(a);
    tmpdb_remove(&db);
}

/* The child's side of a_lease_goes_with_the_process_that_held_it: opens its
 * own store, takes the lease, says so ('h', or 'f' on failure) and dies
 * without giving it back once told to. */
static _Noreturn void hold_and_die(const char *uri, const char *key, int said, int told)
{
    struct im_error err;
    struct store_lease *l = NULL;
    char c = 'f';
    struct store *s = store_open(uri, &err);
    if (s && store_lease_take(s, key, 0, &l, NULL, &err) == 0 && l)
        c = 'h';
    if (write(said, &c, 1) != 1 || read(told, &c, 1) < 0)
        _exit(1);
    _exit(0); /* no give, no close: the process is gone, and its connections */
}

Test(store, a_lease_goes_with_the_process_that_held_it)
{
    PG_ONLY();
    struct tmpdb db;
    struct store_lease *l = NULL;
    bool waited = false;
    int64_t took = 0;
    int said[2], told[2], status = 0;
    char key[64], uri[1024], c = 0;
    cr_assert_eq(tmpdb_init(&db), 0);
    lease_key(key, sizeof key, "ref");
    snprintf(uri, sizeof uri, "%s", db_name(db.path));
    cr_assert_eq(pipe(said), 0);
    cr_assert_eq(pipe(told), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(said[0]);
        close(told[1]);
        hold_and_die(uri, key, said[1], told[0]);
    }
    close(said[1]);
    close(told[0]);
    cr_assert_eq(read(said[0], &c, 1), 1);
    cr_assert_eq(c, 'h', "the child could not take the lease");
    struct store *s = open_ok(db.path);
    cr_assert_eq(take(s, key, 0, &l, &waited, &took), IM_ETIMEOUT, "the child holds it");
    cr_assert_eq(write(told[1], "x", 1), 1);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(take(s, key, 5000, &l, &waited, &took), 0,
                 "the lease of a process that died is free again");
    cr_assert_lt(took, 3000, "%lld ms", (long long)took);
    store_lease_give(s, l);
    store_close(s);
    close(said[0]);
    close(told[1]);
    tmpdb_remove(&db);
}

/* ---- what is shown of a URI ---------------------------------------------- */

/* path as store_safe_name shows it. */
static const char *shown(const char *path)
{
    static char out[512];
    store_safe_name(path, out, sizeof out);
    return out;
}

Test(store, a_uri_is_shown_without_its_password)
{
    PG_ONLY();
    cr_assert_str_eq(shown("postgresql://u:secret@host/db"),
                     "postgresql://u:***@host/db");
    cr_assert_str_eq(shown("postgres://u:secret@host:5432/db?sslmode=require"),
                     "postgres://u:***@host:5432/db?sslmode=require");
    cr_assert_str_eq(shown("postgresql://u@host/db"), "postgresql://u@host/db",
                     "no password, nothing left out");
    cr_assert_str_eq(shown("postgresql:///imgmeta?host=/run/pg&password=secret&port=5"),
                     "postgresql:///imgmeta?host=/run/pg&password=***&port=5");
    cr_assert_str_eq(shown("postgresql://u:secret@h/db?password=secret"),
                     "postgresql://u:***@h/db?password=***");
    cr_assert_str_eq(shown("postgresql://host:5432/db?options=-cx%3Da@b"),
                     "postgresql://host:5432/db?options=-cx%3Da@b",
                     "an @ past the host names no user");
    cr_assert_str_eq(shown("/var/lib/imgmeta/cache.db"), "/var/lib/imgmeta/cache.db");
    char small[16];
    store_safe_name("postgresql://u:secret@host/db", small, sizeof small);
    cr_assert_null(strstr(small, "sec"), "cut short, still without it: %s", small);
}

Test(store, an_unreachable_server_is_a_database_down)
{
    PG_ONLY();
    /* a socket directory where no server listens */
    char dir[] = "/tmp/imgmeta-nopg-XXXXXX";
    /* the password in the user part, and as a parameter */
    const char *const forms[][2] = {
        {"postgresql://u:secret@/imgmeta?host=", "&port=5432"},
        {"postgresql:///imgmeta?host=", "&port=5432&password=secret"}};
    cr_assert_not_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char uri[256];
        struct im_error err = {{0}};
        struct store__conn *c = NULL;
        snprintf(uri, sizeof uri, "%s%s%s", forms[i][0], dir, forms[i][1]);
        cr_assert_null(store_open(uri, &err));
        cr_assert(strstr(err.msg, "cannot connect to"), "%s", err.msg);
        cr_assert_null(strstr(err.msg, "secret"), "the password shown: %s", err.msg);
        /* the code behind it (store_open says only NULL): the database is down */
        struct store fake = {.backend = STORE__PG, .path = uri};
        memset(&err, 0, sizeof err);
        cr_assert_eq(store__pg_conn_open(&fake, true, &c, &err), IM_EDBDOWN, "%s",
                     err.msg);
        cr_assert_null(c);
        cr_assert_null(strstr(err.msg, "secret"), "%s", err.msg);
    }
    rmdir(dir);
}
