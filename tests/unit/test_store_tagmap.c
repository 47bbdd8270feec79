/* test_store_tagmap.c - tag rows kept in memory follow every write of this
 * process and, within the watch interval, another process's removals; never
 * more rows than their bound. */
#include "store_test.h"

/* ---- tag rows in memory ------------------------------------------------- */

/* The row as store_lookup_tag gives it, and its miss. */
static int lookup(struct store *s, const struct im_ref *ref, struct store_tag *t,
                  int64_t *until)
{
    struct im_error err = {{0}};
    memset(t, 0, sizeof *t);
    return store_lookup_tag(s, ref, t, until, &err);
}

/* Sleeps twice STORE_TAG_MEMORY_WATCH_MS. */
static void past_the_watch_interval(void)
{
    struct timespec ts = {0, 2L * STORE_TAG_MEMORY_WATCH_MS * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

Test(store, remembered_tags_follow_every_write_of_this_process)
{
    struct store *s = open_ok(":memory:");
    struct im_error err = {{0}};
    struct im_bundle a, b;
    struct store_tag t;
    struct store_removed r;
    int64_t until = 0;
    size_t used = 0, cap = 0;
    make_image(&a, 1);
    make_image(&b, 2);
    cr_assert_eq(store_set_tag_memory(s, 100, &err), 0, "%s", err.msg);
    struct im_ref ref = tag_ref("library/python", "3.7");
    cr_assert_eq(lookup(s, &ref, &t, &until), IM_ENOTFOUND);
    put_ok(s, &ref, &a, 100);
    cr_assert_eq(lookup(s, &ref, &t, &until), 0, "stored: no longer 'not stored'");
    cr_assert_str_eq(t.digest, a.root_digest);
    cr_assert_eq(lookup(s, &ref, &t, &until), 0);
    cr_assert_eq(t.checked_at, 100);
    store_tag_memory_stats(s, &used, &cap);
    cr_assert_eq(used, 1, "the row is remembered");
    cr_assert_eq(store_touch_tag(s, &ref, 200, &err), 0, "%s", err.msg);
    cr_assert_eq(lookup(s, &ref, &t, &until), 0);
    cr_assert_eq(t.checked_at, 200, "a revalidation is seen at once");
    cr_assert_eq(store_freshness(&t, 499, 300, 0), STORE_FRESH);
    cr_assert_eq(store_freshness(&t, 500, 300, 0), STORE_TOO_STALE,
                 "a remembered row ages like a read one");
    cr_assert_eq(store_note_access(s, &ref, 300, &err), 0, "%s", err.msg);
    cr_assert_eq(lookup(s, &ref, &t, &until), 0);
    cr_assert_eq(t.accessed_at, 300);
    put_ok(s, &ref, &b, 400);
    cr_assert_eq(lookup(s, &ref, &t, &until), 0);
    cr_assert_str_eq(t.digest, b.root_digest, "a retag is seen at once");
    cr_assert_eq(t.resolved_at, 400);
    struct im_ref gone = tag_ref("library/python", "gone");
    cr_assert_eq(lookup(s, &gone, &t, &until), IM_ENOTFOUND);
    cr_assert_eq(until, INT64_MIN);
    cr_assert_eq(store_put_miss(s, &gone, 130, &err), 0, "%s", err.msg);
    cr_assert_eq(lookup(s, &gone, &t, &until), IM_ENOTFOUND);
    cr_assert_eq(until, 130, "a new miss is seen at once");
    cr_assert_eq(store_purge(s, &ref, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(lookup(s, &ref, &t, &until), IM_ENOTFOUND, "a purge is seen at once");
    im_bundle_free(&a);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, tags_removed_by_another_process_are_seen_within_the_watch_interval)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle a;
    struct store_tag t;
    struct store_removed r;
    int64_t until = 0;
    cr_assert_eq(tmpdb_init(&db), 0);
    make_image(&a, 1);
    struct store *daemon = open_ok(db.path);
    struct store *cli = open_ok(db.path); /* imgmeta cache purge */
    cr_assert_eq(store_set_tag_memory(daemon, 100, &err), 0, "%s", err.msg);
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(daemon, &ref, &a, 100);
    cr_assert_eq(lookup(daemon, &ref, &t, &until), 0);
    /* another writer that does not count its removals (a tool changing the
     * file): the remembered row is what is answered */
    raw_exec(db.path, "UPDATE tags SET checked_at = 150");
    cr_assert_eq(lookup(daemon, &ref, &t, &until), 0);
    cr_assert_eq(t.checked_at, 100, "answered from memory, not from the file");
    cr_assert_eq(store_purge(cli, &ref, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.tags, 1);
    past_the_watch_interval();
    cr_assert_eq(lookup(daemon, &ref, &t, &until), IM_ENOTFOUND,
                 "the other process's purge is honoured");
    /* an eviction under another process's budget, likewise */
    put_ok(daemon, &ref, &a, 200);
    cr_assert_eq(lookup(daemon, &ref, &t, &until), 0);
    cr_assert_eq(store_enforce_budget(cli, 1, NULL, 300, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.tags, 1);
    past_the_watch_interval();
    cr_assert_eq(lookup(daemon, &ref, &t, &until), IM_ENOTFOUND,
                 "the other process's eviction is honoured");
    store_close(cli);
    store_close(daemon);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}

Test(store, remembered_tags_never_exceed_their_bound)
{
    struct store *s = open_ok(":memory:");
    struct im_error err = {{0}};
    struct store_tag t;
    int64_t until = 0;
    size_t used = 0, cap = 0;
    char tag[16];
    cr_assert_eq(store_set_tag_memory(s, 60, &err), 0, "%s", err.msg);
    store_tag_memory_stats(s, &used, &cap);
    cr_assert_eq(cap, 64, "60 rounded up to a power of two");
    /* 200 stored tags, each its own image, asked for in a scrambled order
     * many times over: every answer is its own digest, the map stays bounded */
    static char roots[200][IM_DIGEST_MAX];
    for (unsigned n = 0; n < 200; n++) {
        struct im_bundle b;
        make_image(&b, 1000 + n);
        snprintf(roots[n], sizeof roots[n], "%s", b.root_digest);
        snprintf(tag, sizeof tag, "t%u", n);
        struct im_ref ref = tag_ref("library/many", tag);
        put_ok(s, &ref, &b, 100);
        im_bundle_free(&b);
    }
    for (unsigned i = 0; i < 5000; i++) {
        unsigned n = (i * 7919u) % 200u;
        const char *want = roots[n];
        snprintf(tag, sizeof tag, "t%u", n);
        struct im_ref ref = tag_ref("library/many", tag);
        cr_assert_eq(lookup(s, &ref, &t, &until), 0, "%s", tag);
        cr_assert_str_eq(t.digest, want, "%s", tag);
        store_tag_memory_stats(s, &used, &cap);
        cr_assert_leq(used, 64, "%zu rows remembered", used);
    }
    cr_assert_gt(used, 32, "the map is used, not only bounded");
    cr_assert_eq(store_set_tag_memory(s, 0, &err), 0);
    store_tag_memory_stats(s, &used, &cap);
    cr_assert_eq(cap, 0, "0 keeps none");
    store_close(s);
}
