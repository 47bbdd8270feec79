/* test_store_rendered.c - rendered answers kept in the store: byte-exact for
 * their renderer only, dropped with their root, their claim or the budget;
 * on PostgreSQL, never kept. */
#include "store_test.h"

/* Why a test of kept answers is SQLite's alone. */
#define RENDERED_KEPT_BY_SQLITE                                                          \
    "rendered answers are kept by SQLite alone (PostgreSQL: "                            \
    "rendered_answers_are_never_kept_on_postgresql)"

/* ---- rendered answers --------------------------------------------------- */

Test(store, a_rendered_answer_comes_back_byte_exact_for_its_renderer_only)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct store *s = open_ok(":memory:");
    struct im_bundle a;
    make_image(&a, 1);
    struct im_ref ref = tag_ref("library/a", "1");
    put_ok(s, &ref, &a, 100);
    static const char body[] = "{\"a\":1}\n\0after a NUL";
    char key[256], other[256];
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "docker.io j");
    size_t olen = rendered_key(other, sizeof other, a.root_digest, "docker.io m");
    put_rendered_ok(s, &ref, key, klen, body, sizeof body);
    cr_assert_eq(get_rendered_is(s, key, klen, body, sizeof body), IM_ENOTFOUND,
                 "nothing is kept before a renderer is named");
    cr_assert_eq(stats_ok(s).rendered, 0);
    set_renderer_ok(s, "render-1", NULL);
    put_rendered_ok(s, &ref, key, klen, body, sizeof body);
    cr_assert_eq(get_rendered_is(s, key, klen, body, sizeof body), 0);
    cr_assert_eq(get_rendered_is(s, other, olen, "", 0), IM_ENOTFOUND, "another key");
    put_rendered_ok(s, &ref, key, klen, "v2", 2);
    cr_assert_eq(get_rendered_is(s, key, klen, "v2", 2), 0, "a put replaces");
    cr_assert_eq(stats_ok(s).rendered, 1);
    cr_assert_eq(store_put_rendered(s, &ref, "no-digest", 9, "x", 1, NULL), IM_EINVAL);
    cr_assert_eq(store_set_renderer(s, "", NULL, NULL), IM_EINVAL);
    im_bundle_free(&a);
    store_close(s);
}

Test(store, another_renderers_answers_are_never_served_and_dropped_at_start)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle a;
    make_image(&a, 2);
    struct im_ref ref = tag_ref("library/a", "1");
    char key[256];
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    struct store *old = open_ok(db.path);
    put_ok(old, &ref, &a, 100);
    set_renderer_ok(old, "render-old", NULL);
    put_rendered_ok(old, &ref, key, klen, "old bytes", 9);
    /* a new build starts on the same file while the old one still runs */
    struct store *cur = open_ok(db.path);
    int64_t dropped = -1;
    set_renderer_ok(cur, "render-new", &dropped);
    cr_assert_eq(dropped, 1, "the old renderer's answer is dropped at start");
    cr_assert_eq(get_rendered_is(old, key, klen, "", 0), IM_ENOTFOUND);
    put_rendered_ok(old, &ref, key, klen, "old bytes", 9); /* the old one writes again */
    cr_assert_eq(get_rendered_is(cur, key, klen, "", 0), IM_ENOTFOUND,
                 "never served by another renderer");
    put_rendered_ok(cur, &ref, key, klen, "new bytes", 9);
    cr_assert_eq(get_rendered_is(cur, key, klen, "new bytes", 9), 0);
    store_close(old);
    store_close(cur);
    /* and across a restart with the same renderer, it is kept */
    cur = open_ok(db.path);
    set_renderer_ok(cur, "render-new", &dropped);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(get_rendered_is(cur, key, klen, "new bytes", 9), 0);
    store_close(cur);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}

Test(store, storing_a_root_again_forgets_its_rendered_answers)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct store *s = open_ok(":memory:");
    set_renderer_ok(s, "r", NULL);
    struct im_bundle a, b;
    make_image(&a, 3);
    make_image(&b, 4);
    struct im_ref ra = tag_ref("library/a", "1"), rb = tag_ref("library/b", "1");
    put_ok(s, &ra, &a, 100);
    put_ok(s, &rb, &b, 100);
    char ka[256], kb[256];
    size_t la = rendered_key(ka, sizeof ka, a.root_digest, "j");
    size_t lb = rendered_key(kb, sizeof kb, b.root_digest, "j");
    put_rendered_ok(s, &ra, ka, la, "A", 1);
    put_rendered_ok(s, &rb, kb, lb, "B", 1);
    put_ok(s, &ra, &a, 200); /* e.g. blob facts learned since */
    cr_assert_eq(get_rendered_is(s, ka, la, "", 0), IM_ENOTFOUND);
    cr_assert_eq(get_rendered_is(s, kb, lb, "B", 1), 0, "another root's stays");
    im_bundle_free(&a);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, rendered_answers_go_with_their_repositorys_claim)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct store *s = open_ok(":memory:");
    set_renderer_ok(s, "r", NULL);
    struct im_bundle a;
    struct store_removed r;
    struct im_error err = {{0}};
    make_image(&a, 5);
    struct im_ref ra = tag_ref("library/a", "1"), rb = tag_ref("library/b", "1");
    put_ok(s, &ra, &a, 100);
    char key[256];
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    put_rendered_ok(s, &rb, key, klen, "B", 1);
    cr_assert_eq(stats_ok(s).rendered, 0, "library/b never claimed the root");
    put_rendered_ok(s, &ra, key, klen, "A", 1);
    cr_assert_eq(store_gc(s, 100, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.rendered, 0, "claimed: gc keeps it");
    cr_assert_eq(store_purge(s, &ra, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.rendered, 1, "purged with the tag");
    cr_assert_eq(get_rendered_is(s, key, klen, "", 0), IM_ENOTFOUND);
    im_bundle_free(&a);
    store_close(s);
}

Test(store, budget_drops_rendered_answers_before_any_upstream_data)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct tmpdb db;
    struct im_error err = {{0}};
    struct store_removed r;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    static char big[16384];
    char tag[16], key[256];
    for (unsigned n = 0; n < 20; n++) {
        noise(big, sizeof big, n);
        struct im_bundle b;
        make_image(&b, 200 + n);
        snprintf(tag, sizeof tag, "t%u", n);
        struct im_ref ref = tag_ref("library/many", tag);
        put_ok(s, &ref, &b, 1000 + n);
        size_t klen = rendered_key(key, sizeof key, b.root_digest, tag);
        put_rendered_ok(s, &ref, key, klen, big, sizeof big);
        im_bundle_free(&b);
    }
    int64_t before = stats_ok(s).used_bytes;
    cr_assert_eq(store_enforce_budget(s, before / 2, NULL, 5000, &r, &err), 0, "%s",
                 err.msg);
    struct store_stats st = stats_ok(s);
    cr_assert_leq(st.used_bytes, before / 2);
    cr_assert_eq(r.rendered, 20);
    cr_assert_eq(r.tags, 0, "rendering again is cheaper than asking upstream");
    cr_assert_eq(st.tags, 20);
    store_close(s);
    tmpdb_remove(&db);
}

Test(store, a_schema_3_database_gains_the_rendered_table)
{
    SQLITE_ONLY("an SQLite file of schema 3 migrated (it gains the rendered table)");
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle a;
    make_image(&a, 6);
    struct im_ref ref = tag_ref("library/a", "1");
    /* what that release left: no rendered table, no encoding, no history,
     * user_version 3 */
    struct store *s = reopened_after(
        &db, &ref, &a,
        "DROP TABLE rendered; DROP TABLE tag_history; ALTER TABLE documents DROP"
        " COLUMN encoding; PRAGMA user_version = 3");
    set_renderer_ok(s, "r", NULL);
    char key[256];
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    put_rendered_ok(s, &ref, key, klen, "A", 1);
    cr_assert_eq(get_rendered_is(s, key, klen, "A", 1), 0);
    cr_assert_str_eq(get_tag_ok(s, &ref).digest, a.root_digest, "old data kept");
    store_close(s);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}

Test(store, one_lookup_reads_a_tag_and_its_remembered_miss)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle a;
    struct im_error err = {{0}};
    struct store_tag t;
    int64_t until = 0;
    make_image(&a, 7);
    struct im_ref held = tag_ref("library/a", "1"), gone = tag_ref("library/a", "gone");
    cr_assert_eq(store_lookup_tag(s, &gone, &t, &until, &err), IM_ENOTFOUND);
    cr_assert_eq(until, INT64_MIN, "no miss remembered");
    cr_assert_eq(store_put_miss(s, &gone, 500, &err), 0, "%s", err.msg);
    cr_assert_eq(store_lookup_tag(s, &gone, &t, &until, &err), IM_ENOTFOUND);
    cr_assert_eq(until, 500, "the miss is read with the absent tag");
    put_ok(s, &held, &a, 100);
    cr_assert_eq(store_lookup_tag(s, &held, &t, &until, &err), 0, "%s", err.msg);
    cr_assert_str_eq(t.digest, a.root_digest);
    cr_assert_eq(t.checked_at, 100);
    cr_assert_eq(until, INT64_MIN);
    /* the registry later said the held tag is gone: both are seen */
    cr_assert_eq(store_put_miss(s, &held, 900, &err), 0, "%s", err.msg);
    cr_assert_eq(store_lookup_tag(s, &held, &t, &until, &err), 0, "%s", err.msg);
    cr_assert_eq(until, 900);
    im_bundle_free(&a);
    store_close(s);
}

Test(store, a_row_found_by_the_hash_of_another_key_is_not_served)
{
    SQLITE_ONLY(RENDERED_KEPT_BY_SQLITE);
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle a;
    make_image(&a, 8);
    struct im_ref ref = tag_ref("library/a", "1");
    char key[256];
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &a, 100);
    set_renderer_ok(s, "r", NULL);
    put_rendered_ok(s, &ref, key, klen, "A", 1);
    store_close(s);
    /* as if another key hashed to this row's id: its stored key differs */
    raw_exec(db.path, "UPDATE rendered SET key = CAST('sha256:other' AS BLOB)");
    s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    cr_assert_eq(get_rendered_is(s, key, klen, "", 0), IM_ENOTFOUND);
    put_rendered_ok(s, &ref, key, klen, "B", 1); /* the colliding row is replaced */
    cr_assert_eq(get_rendered_is(s, key, klen, "B", 1), 0);
    cr_assert_eq(stats_ok(s).rendered, 1);
    store_close(s);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}

/* PostgreSQL keeps no rendered answer (store.h): they stay in each replica's
 * own tiers. Naming a renderer, keeping and reading answers all work, and
 * nothing is kept, counted or served. */
Test(store, rendered_answers_are_never_kept_on_postgresql)
{
    PG_ONLY();
    struct tmpdb db;
    struct im_bundle a;
    struct im_error err = {{0}};
    struct store_removed r;
    int64_t dropped = -1;
    char key[256];
    cr_assert_eq(tmpdb_init(&db), 0);
    make_image(&a, 9);
    struct im_ref ref = tag_ref("library/a", "1");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &a, 100);
    set_renderer_ok(s, "render-1", &dropped);
    cr_assert_eq(dropped, 0);
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    put_rendered_ok(s, &ref, key, klen, "A", 1);
    cr_assert_eq(get_rendered_is(s, key, klen, "A", 1), IM_ENOTFOUND, "none is served");
    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.rendered, 0);
    cr_assert_eq(st.rendered_bytes, 0);
    cr_assert_eq(store_put_rendered(s, &ref, "no-digest", 9, "x", 1, NULL), IM_EINVAL,
                 "a malformed key is refused all the same");
    /* another replica's renderer finds nothing to drop, nor to serve */
    struct store *other = open_ok(db.path);
    set_renderer_ok(other, "render-2", &dropped);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(get_rendered_is(other, key, klen, "A", 1), IM_ENOTFOUND);
    store_close(other);
    /* storing the root again, housekeeping and the check have none to mind */
    put_ok(s, &ref, &a, 200);
    cr_assert_eq(store_enforce_budget(s, 1, NULL, 300, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.rendered, 0);
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}
