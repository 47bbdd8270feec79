/* test_store_history.c - each tag's history: a change whenever store_put sees
 * the tag point somewhere new (the first sighting with no previous digest),
 * newest first, paged, bounded per tag (the oldest go), each platform's size
 * as the sizes function said it, and gone with its tag. Both backends. */
#include "store_test.h"

/* What the daemon's sizes function would say, made up from the bundle: one
 * platform per blob, named after the root's first hex digits, its size the
 * blob's; a second platform of unknown size. */
static int fake_sizes(const struct im_ref *ref, const struct im_bundle *b,
                      struct store_platform_size *out, size_t max, size_t *n)
{
    (void)ref;
    *n = 0;
    if (max < 2 || b->nblobs == 0)
        return -1;
    snprintf(out[0].platform, sizeof out[0].platform, "linux/%.12s", b->root_digest + 7);
    out[0].total_size = b->blobs[0].size;
    snprintf(out[1].platform, sizeof out[1].platform, "linux/arm/v7");
    out[1].total_size = -1;
    *n = 2;
    return 0;
}

/* The tag's changes from before (0: the newest), at most max. */
static struct store_change *history_ok(struct store *s, const struct im_ref *ref,
                                       int64_t before, size_t max, size_t *n, bool *more)
{
    struct im_error err = {{0}};
    struct store_change *c = NULL;
    int rc = store_get_history(s, ref, before, max, &c, n, more, &err);
    cr_assert_eq(rc, 0, "store_get_history: %d %s", rc, err.msg);
    return c;
}

Test(store, a_tag_seen_at_a_new_digest_records_a_change_newest_first)
{
    struct store *s = open_ok(":memory:");
    store_set_sizes_fn(s, fake_sizes);
    struct im_bundle a, b;
    make_image(&a, 1);
    make_image(&b, 2);
    struct im_ref ref = tag_ref("library/a", "1"), other = tag_ref("library/a", "2");
    size_t n = 0;
    bool more = true;
    struct store_change *c = history_ok(s, &ref, 0, 10, &n, &more);
    cr_assert_eq(n, 0, "a tag never seen has no history");
    cr_assert(!more);
    store_changes_free(c, n);

    put_ok(s, &ref, &a, 100);
    put_ok(s, &ref, &a, 200); /* the same digest again: no change */
    put_ok(s, &other, &b, 250);
    put_ok(s, &ref, &b, 300);
    c = history_ok(s, &ref, 0, 10, &n, &more);
    cr_assert_eq(n, 2, "the first sighting and the move: %zu", n);
    cr_assert(!more);
    cr_assert_eq(c[0].seen, 300, "newest first");
    cr_assert_str_eq(c[0].digest, b.root_digest);
    cr_assert_str_eq(c[0].previous, a.root_digest);
    cr_assert_eq(c[1].seen, 100);
    cr_assert_str_eq(c[1].digest, a.root_digest);
    cr_assert_str_eq(c[1].previous, "", "the first sighting has no previous digest");
    cr_assert_eq(c[0].n_platforms, 2);
    char want[STORE_PLATFORM_MAX];
    snprintf(want, sizeof want, "linux/%.12s", b.root_digest + 7);
    cr_assert_str_eq(c[0].platforms[0].platform, want);
    cr_assert_eq(c[0].platforms[0].total_size, b.blobs[0].size);
    cr_assert_str_eq(c[0].platforms[1].platform, "linux/arm/v7");
    cr_assert_eq(c[0].platforms[1].total_size, -1, "an unknown size stays unknown");
    store_changes_free(c, n);

    c = history_ok(s, &other, 0, 10, &n, &more);
    cr_assert_eq(n, 1, "each tag has its own history");
    store_changes_free(c, n);
    im_bundle_free(&a);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, a_tag_history_keeps_its_newest_changes_and_pages_through_them)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle img[2];
    make_image(&img[0], 1);
    make_image(&img[1], 2);
    struct im_ref ref = tag_ref("library/a", "1");
    const int moves = STORE_HISTORY_MAX + 5;
    for (int i = 0; i < moves; i++)
        put_ok(s, &ref, &img[i % 2], 1000 + i);
    size_t n = 0, total = 0;
    bool more = false;
    int64_t before = 0, last_seen = INT64_MAX;
    do {
        struct store_change *c = history_ok(s, &ref, before, 30, &n, &more);
        cr_assert(n == 30 || !more, "a page is full unless it is the last");
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(c[i].seen, last_seen, "newest first, no change twice");
            last_seen = c[i].seen;
            cr_assert_eq(c[i].n_platforms, 0, "no sizes function: no platforms");
            cr_assert_str_eq(c[i].previous, img[(c[i].seen - 1000 + 1) % 2].root_digest,
                             "every kept change knows the digest before it");
        }
        before = n ? c[n - 1].seq : 0;
        total += n;
        store_changes_free(c, n);
    } while (more);
    cr_assert_eq(total, STORE_HISTORY_MAX, "bounded: %zu changes kept", total);
    cr_assert_eq(last_seen, 1000 + moves - STORE_HISTORY_MAX, "the oldest went first");
    for (int i = 0; i < 2; i++)
        im_bundle_free(&img[i]);
    store_close(s);
}

Test(store, a_purged_tag_takes_its_history_and_is_first_seen_again)
{
    struct store *s = open_ok(":memory:");
    struct im_bundle a, b;
    make_image(&a, 1);
    make_image(&b, 2);
    struct im_ref ref = tag_ref("library/a", "1"), kept = tag_ref("library/a", "2");
    struct im_error err = {{0}};
    put_ok(s, &ref, &a, 100);
    put_ok(s, &ref, &b, 200);
    put_ok(s, &kept, &a, 200);
    cr_assert_eq(store_purge(s, &ref, NULL, &err), 0, "%s", err.msg);
    size_t n = 0;
    bool more = false;
    struct store_change *c = history_ok(s, &ref, 0, 10, &n, &more);
    cr_assert_eq(n, 0, "the purged tag's history went with it");
    store_changes_free(c, n);
    c = history_ok(s, &kept, 0, 10, &n, &more);
    cr_assert_eq(n, 1, "another tag's stays");
    store_changes_free(c, n);
    put_ok(s, &ref, &b, 300);
    c = history_ok(s, &ref, 0, 10, &n, &more);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].previous, "", "seen again: a first sighting");
    store_changes_free(c, n);
    im_bundle_free(&a);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, a_history_row_that_does_not_read_back_is_an_error_not_made_up_data)
{
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    struct im_bundle a;
    make_image(&a, 1);
    struct im_ref ref = tag_ref("library/a", "1");
    put_ok(s, &ref, &a, 100);
    raw_exec(db.path, "UPDATE tag_history SET platforms = '[[\"linux/amd64\", \"x\"]]'");
    struct store_change *c = NULL;
    size_t n = 0;
    bool more = false;
    struct im_error err = {{0}};
    cr_assert_eq(store_get_history(s, &ref, 0, 10, &c, &n, &more, &err), IM_ESTORE);
    cr_assert_null(c);
    cr_assert_eq(store_get_history(s, &ref, 0, 0, &c, &n, &more, &err), IM_EINVAL,
                 "a page of nothing");
    cr_assert_eq(
        store_get_history(s, &ref, 0, STORE_HISTORY_MAX + 1, &c, &n, &more, &err),
        IM_EINVAL, "a page past the bound");
    im_bundle_free(&a);
    store_close(s);
    tmpdb_remove(&db);
}

Test(store, a_database_of_the_previous_schema_gains_the_history)
{
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle a, b;
    make_image(&a, 1);
    make_image(&b, 2);
    struct im_ref ref = tag_ref("library/a", "1");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &a, 100);
    store_close(s);
    /* what the release before left: no history table, the schema before */
    raw_exec_dialects(db.path, "DROP TABLE tag_history; PRAGMA user_version = 6",
                      "DROP TABLE tag_history; DELETE FROM imgmeta_schema;"
                      " INSERT INTO imgmeta_schema VALUES (1)");
    s = open_ok(db.path);
    cr_assert_eq(store_migrated_from(s, NULL), pg_mode() ? 1 : 6, "migrated at the open");
    cr_assert_str_eq(get_tag_ok(s, &ref).digest, a.root_digest, "the tag is kept");
    put_ok(s, &ref, &b, 200);
    size_t n = 0;
    bool more = false;
    struct store_change *c = history_ok(s, &ref, 0, 10, &n, &more);
    cr_assert_eq(n, 1, "the history starts at the upgrade");
    cr_assert_str_eq(c[0].digest, b.root_digest);
    store_changes_free(c, n);
    store_close(s);
    im_bundle_free(&a);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}
