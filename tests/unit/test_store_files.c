/* test_store_files.c - the cache database: reopened, shared by two stores,
 * refused untouched when it is not ours (newer schema, not a database, another
 * program's), damaged files moved aside; housekeeping: purge, gc, the size
 * budget and the counters. */
#include "store_test.h"

/* ---- files -------------------------------------------------------------- */

Test(store, reopened_file_keeps_its_data)
{
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle b, got;
    make_image(&b, 1);
    im_bundle_init(&got);
    struct im_ref ref = tag_ref("library/python", "3.7");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &b, 100);
    store_close(s);

    s = open_ok(db.path);
    struct im_error err = {{0}};
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    struct store_tag t = get_tag_ok(s, &ref);
    cr_assert_str_eq(t.digest, b.root_digest);
    cr_assert_eq(t.resolved_at, 100);
    store_close(s);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

Test(store, a_file_is_in_wal_mode)
{
    SQLITE_ONLY("SQLite's journal mode");
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    store_close(open_ok(db.path));
    /* WAL, so readers never wait for the writer */
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(db.path, &raw), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(raw);
    tmpdb_remove(&db);
}

Test(store, two_stores_on_one_file_see_each_other)
{
    /* e.g. `imgmeta cache stats` while the daemon runs */
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle b, got;
    make_image(&b, 1);
    im_bundle_init(&got);
    struct store *daemon = open_ok(db.path);
    struct store *cli = open_ok(db.path);
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(daemon, &ref, &b, 100);
    struct im_error err = {{0}};
    cr_assert_eq(store_load(cli, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    cr_assert_eq(stats_ok(cli).tags, 1);
    store_close(cli);
    store_close(daemon);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

Test(store, newer_schema_is_refused_untouched)
{
    SQLITE_ONLY("an SQLite file's user_version (PostgreSQL: "
                "a_newer_postgresql_schema_is_refused_untouched)");
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    raw_exec(db.path, "CREATE TABLE future(x); PRAGMA user_version = 999");
    long len0 = 0, len1 = 0;
    char *before = slurp(db.path, &len0);
    struct im_error err = {{0}};
    struct store *s = store_open(db.path, &err);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "database schema version 999 is newer than this imgmeta ("),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "refusing to touch it"), "%s", err.msg);
    char *after = slurp(db.path, &len1);
    cr_assert(len0 == len1 && memcmp(before, after, (size_t)len0) == 0, "file changed");
    free(before);
    free(after);
    tmpdb_remove(&db);
}

Test(store, non_database_file_is_refused_clearly)
{
    SQLITE_ONLY("a file that is not an SQLite database");
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    FILE *f = fopen(db.path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 64; i++)
        fputs("this is a text file, not a database\n", f);
    fclose(f);
    long len0 = 0, len1 = 0;
    char *before = slurp(db.path, &len0);
    struct im_error err = {{0}};
    cr_assert_null(store_open(db.path, &err));
    char want[256];
    snprintf(want, sizeof want,
             "%s is not an imgmeta cache database (file is not a database)", db.path);
    cr_assert_str_eq(err.msg, want);
    char *after = slurp(db.path, &len1);
    cr_assert(len0 == len1 && memcmp(before, after, (size_t)len0) == 0, "file changed");
    free(before);
    free(after);
    tmpdb_remove(&db);
}

Test(store, another_programs_database_is_refused)
{
    SQLITE_ONLY("another program's SQLite file (on PostgreSQL the URI names the "
                "database and the search_path the schema)");
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    raw_exec(db.path, "CREATE TABLE users(name TEXT); INSERT INTO users VALUES ('ann')");
    struct im_error err = {{0}};
    cr_assert_null(store_open(db.path, &err));
    cr_assert(strstr(err.msg, "is not an imgmeta cache database"), "%s", err.msg);
    tmpdb_remove(&db);
}

Test(store, unopenable_path_says_why)
{
    SQLITE_ONLY("a file path (PostgreSQL: an_unreachable_server_is_a_database_down)");
    struct im_error err = {{0}};
    cr_assert_null(store_open("/nonexistent-dir/imgmeta/cache.db", &err));
    cr_assert(strstr(err.msg, "/nonexistent-dir/imgmeta/cache.db"), "%s", err.msg);
}

/* ---- housekeeping ------------------------------------------------------- */

Test(store, purge_of_a_tag_collects_what_only_it_held)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle a, b;
    struct im_error err = {{0}};
    struct store_removed r;
    make_image(&a, 1);
    make_image(&b, 2);
    struct im_ref ra = tag_ref("library/a", "1"), rb = tag_ref("library/b", "1");
    put_ok(s, &ra, &a, 100);
    put_ok(s, &rb, &b, 100);
    cr_assert_eq(store_purge(s, &ra, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.tags, 1);
    cr_assert_eq(r.roots, 1);
    cr_assert_eq(r.documents, 1, "the root only: the config is shared");
    cr_assert_eq(r.blobs, 1, "its own layer only: the other is shared");
    struct store_tag t;
    cr_assert_eq(store_get_tag(s, &ra, &t, &err), IM_ENOTFOUND);
    struct im_bundle got;
    im_bundle_init(&got);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    im_bundle_free(&got);
    cr_assert_eq(store_purge(s, &ra, &r, &err), 0, "purging twice is fine");
    cr_assert_eq(r.tags, 0);
    im_bundle_free(&a);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, purge_of_a_digest_drops_the_tags_pointing_to_it)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle a;
    struct im_error err = {{0}};
    struct store_removed r;
    make_image(&a, 3);
    struct im_ref t1 = tag_ref("library/a", "1"), t2 = tag_ref("library/a", "2");
    put_ok(s, &t1, &a, 100);
    put_ok(s, &t2, &a, 100);
    struct im_ref byDigest = tag_ref("library/a", "");
    snprintf(byDigest.digest, sizeof byDigest.digest, "%s", a.root_digest);
    cr_assert_eq(store_purge(s, &byDigest, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.tags, 2);
    cr_assert_eq(stats_ok(s).documents, 0);
    cr_assert_eq(stats_ok(s).blobs, 0);
    im_bundle_free(&a);
    store_close(s);
}

Test(store, gc_forgets_expired_misses_and_keeps_claimed_roots)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle a;
    struct im_error err = {{0}};
    struct store_removed r;
    make_image(&a, 4);
    struct im_ref t = tag_ref("library/a", "1"), gone = tag_ref("library/a", "gone");
    put_ok(s, &t, &a, 100);
    cr_assert_eq(store_put_miss(s, &gone, 130, &err), 0);
    cr_assert_eq(store_gc(s, 120, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.misses, 0, "not expired yet");
    cr_assert_eq(store_gc(s, 130, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.misses, 1);
    cr_assert_eq(r.documents + r.blobs, 0, "everything is still claimed");
    cr_assert_eq(stats_ok(s).documents, 2);
    im_bundle_free(&a);
    store_close(s);
}

Test(store, budget_evicts_the_least_recently_accessed_tags)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct store_removed r;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    char tag[16];
    /* bodies big enough that the database grows with every image */
    for (unsigned n = 0; n < 40; n++) {
        struct im_bundle b;
        make_image(&b, 100 + n);
        static char big[8192];
        noise(big, sizeof big, n);
        char dig[IM_DIGEST_MAX];
        fake_digest(dig, 700000u + n);
        add_doc(&b, dig, "application/octet-stream", big, sizeof big);
        real_digests(&b);
        snprintf(tag, sizeof tag, "t%u", n);
        struct im_ref ref = tag_ref("library/many", tag);
        put_ok(s, &ref, &b, 1000 + n);
        im_bundle_free(&b);
    }
    /* t0 was read recently: it must survive */
    struct im_ref t0 = tag_ref("library/many", "t0");
    cr_assert_eq(store_note_access(s, &t0, 5000, &err), 0);
    int64_t before = stats_ok(s).used_bytes;
    int64_t budget = before / 2;
    struct im_ref t39 = tag_ref("library/many", "t39");
    cr_assert_eq(store_enforce_budget(s, budget, &t39, 5000, &r, &err), 0, "%s", err.msg);
    struct store_stats st = stats_ok(s);
    cr_assert_leq(st.used_bytes, budget, "%lld > %lld", (long long)st.used_bytes,
                  (long long)budget);
    /* an SQLite file shrinks (incremental vacuum); PostgreSQL's files only
     * shrink at a VACUUM FULL, so what it measures is the rows */
    if (!pg_mode())
        cr_assert_leq(st.bytes, budget, "the file shrank too (incremental vacuum)");
    cr_assert_gt(r.tags, 0);
    struct store_tag t;
    cr_assert_eq(store_get_tag(s, &t0, &t, &err), 0, "recently accessed t0 survives");
    cr_assert_eq(store_get_tag(s, &t39, &t, &err), 0, "the kept tag survives");
    struct im_ref t1 = tag_ref("library/many", "t1");
    cr_assert_eq(store_get_tag(s, &t1, &t, &err), IM_ENOTFOUND, "the oldest goes first");
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    cr_assert_eq(store_enforce_budget(s, 0, NULL, 5000, &r, &err), 0, "0 = no budget");
    store_close(s);
    tmpdb_remove(&db);
}

Test(store, counters_add_up_across_reopen)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    struct store_counters d = {.n = {[IM_OUTCOME_HIT] = 3,
                                     [IM_OUTCOME_MISS] = 1,
                                     [IM_OUTCOME_STALE] = 2,
                                     [IM_OUTCOME_NONE] = 9}},
                          got;
    cr_assert_eq(store_add_counters(s, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(store_add_counters(s, &d, &err), 0, "%s", err.msg);
    store_close(s);
    s = open_ok(db.path);
    cr_assert_eq(store_get_counters(s, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got.n[IM_OUTCOME_HIT], 6);
    cr_assert_eq(got.n[IM_OUTCOME_MISS], 2);
    cr_assert_eq(got.n[IM_OUTCOME_STALE], 4);
    cr_assert_eq(got.n[IM_OUTCOME_REVALIDATED], 0);
    cr_assert_eq(got.n[IM_OUTCOME_NONE], 0, "an outcome with no stored name is not kept");
    store_close(s);
    tmpdb_remove(&db);
}

Test(store, damaged_file_is_reported_and_moved_aside)
{
    SQLITE_ONLY("a damaged SQLite file moved aside");
    struct tmpdb db;
    struct im_error err = {{0}};
    char moved[256], wal[300];
    cr_assert_eq(tmpdb_init(&db), 0);
    FILE *f = fopen(db.path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 64; i++)
        fputs("garbage garbage garbage garbage garbage garbage garbage\n", f);
    fclose(f);
    bool damaged = false;
    cr_assert_null(store_open_ex(db.path, &damaged, &err));
    cr_assert(damaged, "%s", err.msg);
    cr_assert_eq(store_move_aside(db.path, 1700000000, moved, sizeof moved, &err), 0,
                 "%s", err.msg);
    char want[256];
    snprintf(want, sizeof want, "%s.corrupt-20231114T221320Z", db.path);
    cr_assert_str_eq(moved, want);
    cr_assert_eq(access(db.path, F_OK), -1, "the damaged file is gone from its place");
    cr_assert_eq(access(moved, F_OK), 0, "and kept aside");
    struct store *s = open_ok(db.path);
    cr_assert_eq(stats_ok(s).tags, 0);
    store_close(s);
    unlink(moved);
    snprintf(wal, sizeof wal, "%s-wal", moved);
    unlink(wal);
    tmpdb_remove(&db);
}

Test(store, refused_for_other_reasons_is_not_damaged)
{
    SQLITE_ONLY("store_open_ex's damaged flag, about an SQLite file");
    struct tmpdb db;
    struct im_error err = {{0}};
    cr_assert_eq(tmpdb_init(&db), 0);
    raw_exec(db.path, "CREATE TABLE users(name TEXT)");
    bool damaged = true;
    cr_assert_null(store_open_ex(db.path, &damaged, &err));
    cr_assert_not(damaged, "another program's database must never be moved aside");
    tmpdb_remove(&db);
}

Test(store, integrity_check_of_a_healthy_store_is_ok)
{
    struct im_error err = {{0}};
    struct store *s = open_ok(":memory:");
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
}
