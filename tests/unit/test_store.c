/* test_store.c - the cache as its users see it: answers come back
 * byte-exact, tags move and age as the freshness rules say, a miss is
 * remembered, and a failed write leaves nothing behind. The other topics are in
 * test_store_*.c (one executable, test_store; shared helpers in store_test.c). */
#include "store_test.h"

/* ---- answers ------------------------------------------------------------ */

Test(store, roundtrip_is_byte_exact)
{
    static const unsigned char binary[] = {'{',  0,    0xff, 0xfe, '\r',
                                           '\n', 0x80, '}',  ' '};
    char root[IM_DIGEST_MAX], child[IM_DIGEST_MAX], cfg[IM_DIGEST_MAX],
        empty[IM_DIGEST_MAX];
    char l1[IM_DIGEST_MAX], l2[IM_DIGEST_MAX], l3[IM_DIGEST_MAX];
    const char *index = "{\n  \"manifests\": [ ]  ,\n\t\"schemaVersion\":2 }\n\n";
    struct im_bundle b, got;
    im_bundle_init(&b);
    im_bundle_init(&got);
    cr_assert_eq(im_sha256_digest(index, strlen(index), root), 0);
    cr_assert_eq(im_sha256_digest(binary, sizeof binary, child), 0);
    cr_assert_eq(im_sha256_digest("{}", 2, cfg), 0);
    cr_assert_eq(im_sha256_digest("", 0, empty), 0);
    fake_digest(l1, 5);
    fake_digest(l2, 6);
    fake_digest(l3, 7);
    snprintf(b.root_digest, sizeof b.root_digest, "%s", root);
    add_doc(&b, root, "application/vnd.oci.image.index.v1+json", index, strlen(index));
    add_doc(&b, child, "application/vnd.docker.distribution.manifest.v2+json", binary,
            sizeof binary);
    add_doc(&b, cfg, "application/vnd.docker.container.image.v1+json", "{}", 2);
    add_doc(&b, empty, "", "", 0);
    add_blob(&b, l1, "application/vnd.docker.image.rootfs.diff.tar.gzip", 27092228,
             1561069740);
    add_blob(&b, l2, "", -1, -1); /* a HEAD that told us nothing */
    add_blob(&b, l3, "application/octet-stream", 0, -1);

    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    put_ok(s, &ref, &b, 1000);
    struct im_error err = {{0}};
    cr_assert_eq(store_load(s, root, &got, &err), 0, "store_load: %s", err.msg);
    assert_same_bundle(&b, &got);
    cr_assert_eq(get_tag_ok(s, &ref).checked_at, 1000);
    cr_assert_str_eq(get_tag_ok(s, &ref).digest, root);

    im_bundle_free(&got);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, two_tags_share_one_stored_document)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref a = tag_ref("library/python", "3.7");
    struct im_ref c = tag_ref("library/python", "3.7-slim");
    struct im_ref m = tag_ref("mirror/python", "3.7");
    put_ok(s, &a, &b, 100);
    put_ok(s, &c, &b, 101);
    put_ok(s, &m, &b, 102);

    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.documents, 2, "one manifest + one config, got %lld",
                 (long long)st.documents);
    cr_assert_eq(st.blobs, 2);
    cr_assert_eq(st.tags, 3);
    cr_assert_eq(st.doc_bytes, (int64_t)(b.docs[0].len + b.docs[1].len));
    cr_assert_gt(st.bytes, 0);
    cr_assert_str_eq(get_tag_ok(s, &m).digest, b.root_digest);

    im_bundle_free(&b);
    store_close(s);
}

Test(store, a_root_belongs_only_to_the_repository_it_came_from)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref mine = tag_ref("library/python", "3.7");
    struct im_ref other = tag_ref("someone/private", "x");
    struct im_error err = {{0}};
    bool has = true;
    cr_assert_eq(store_has_root(s, &mine, b.root_digest, &has, &err), 0, "%s", err.msg);
    cr_assert_not(has, "nothing stored yet");
    put_ok(s, &mine, &b, 100);
    cr_assert_eq(store_has_root(s, &mine, b.root_digest, &has, &err), 0, "%s", err.msg);
    cr_assert(has);
    cr_assert_eq(store_has_root(s, &other, b.root_digest, &has, &err), 0, "%s", err.msg);
    cr_assert_not(has, "another repository must not be answered from this one's copy");
    im_bundle_free(&b);
    store_close(s);
}

Test(store, known_documents_by_digest_and_layer_facts_by_registry)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7");
    struct im_error err = {{0}};
    char layer[IM_DIGEST_MAX], unknown[IM_DIGEST_MAX];
    fake_digest(layer, 1 + 500000u);
    fake_digest(unknown, 77);
    struct im_doc d;
    struct im_blob bl;
    cr_expect_eq(store_find_doc(s, b.root_digest, &d, &err), IM_ENOTFOUND);
    cr_expect_eq(store_find_blob(s, "docker.io", layer, 0, &bl, &err), IM_ENOTFOUND);
    put_ok(s, &ref, &b, 1000);
    /* a document, whoever asks: the same bytes by digest */
    cr_assert_eq(store_find_doc(s, b.docs[1].digest, &d, &err), 0, "%s", err.msg);
    cr_expect_str_eq(d.digest, b.docs[1].digest);
    cr_expect_str_eq(d.media_type, b.docs[1].media_type);
    cr_assert_eq(d.len, b.docs[1].len);
    cr_expect_eq(memcmp(d.body, b.docs[1].body, d.len), 0);
    free(d.body);
    cr_expect_eq(store_find_doc(s, unknown, &d, &err), IM_ENOTFOUND);
    /* a layer's facts: for the registry that gave them, while checked recently */
    cr_assert_eq(store_find_blob(s, "docker.io", layer, 1000, &bl, &err), 0, "%s",
                 err.msg);
    cr_expect_str_eq(bl.digest, layer);
    cr_expect_eq(bl.size, 1001);
    cr_expect_eq(bl.last_modified, 1600000000);
    cr_expect_str_eq(bl.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    cr_expect_eq(store_find_blob(s, "ghcr.io", layer, 0, &bl, &err), IM_ENOTFOUND,
                 "another registry's date for the same bytes may differ");
    cr_expect_eq(store_find_blob(s, "docker.io", layer, 1001, &bl, &err), IM_ENOTFOUND,
                 "checked before `since`");
    /* stored again for another image as the cache gave them, the facts keep
     * the time the registry gave them: reuse does not make them younger */
    struct im_bundle b2;
    make_image(&b2, 2);
    cr_assert_eq(store_find_blob(s, "docker.io", layer, 0, &bl, &err), 0, "%s", err.msg);
    struct im_blob again = bl;
    cr_assert_eq(im_bundle_add_blob(&b2, &again), 0);
    struct im_ref ref2 = tag_ref("library/python", "3.8");
    put_ok(s, &ref2, &b2, 5000);
    cr_assert_eq(store_find_blob(s, "docker.io", layer, 0, &bl, &err), 0, "%s", err.msg);
    cr_expect_eq(bl.checked_at, 1000, "restamped to %lld", (long long)bl.checked_at);
    cr_expect_eq(store_find_blob(s, "docker.io", layer, 2000, &bl, &err), IM_ENOTFOUND);
    /* asked again (checked_at 0: just now), they are young again */
    again.checked_at = 0;
    cr_assert_eq(im_bundle_add_blob(&b2, &again), 0);
    put_ok(s, &ref2, &b2, 6000);
    cr_expect_eq(store_find_blob(s, "docker.io", layer, 2000, &bl, &err), 0, "%s",
                 err.msg);
    cr_expect_eq(bl.checked_at, 6000);
    cr_assert_eq(store_purge(s, &ref2, NULL, &err), 0, "%s", err.msg);
    im_bundle_free(&b2);
    /* once no root holds it any more, nothing answers for it */
    struct store_removed rm;
    cr_assert_eq(store_purge(s, &ref, &rm, &err), 0, "%s", err.msg);
    cr_assert_eq(store_gc(s, 2000, &rm, &err), 0, "%s", err.msg);
    cr_expect_eq(store_find_blob(s, "docker.io", layer, 0, &bl, &err), IM_ENOTFOUND);
    cr_expect_eq(store_find_doc(s, b.docs[1].digest, &d, &err), IM_ENOTFOUND);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, unknown_root_is_not_found)
{
    struct im_bundle b, got;
    char unknown[IM_DIGEST_MAX];
    make_image(&b, 1);
    im_bundle_init(&got);
    fake_digest(unknown, 77);
    struct store *s = open_ok(":memory:");
    struct im_error err = {{0}};
    cr_assert_eq(store_load(s, unknown, &got, &err), IM_ENOTFOUND);
    put_ok(s, NULL, &b, 100); /* a digest reference: no tag */
    cr_assert_eq(store_load(s, unknown, &got, &err), IM_ENOTFOUND);
    /* the config is stored, but as part of another answer, not as one */
    cr_assert_eq(store_load(s, b.docs[1].digest, &got, &err), IM_ENOTFOUND);
    cr_assert_eq(got.ndocs + got.nblobs, 0, "a failed load leaves the bundle empty");
    struct im_ref ref = tag_ref("library/python", "never");
    struct store_tag t;
    cr_assert_eq(store_get_tag(s, &ref, &t, &err), IM_ENOTFOUND);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    im_bundle_free(&got);
    im_bundle_free(&b);
    store_close(s);
}

/* ---- tags and freshness ------------------------------------------------- */

Test(store, retag_moves_the_tag_and_resets_resolved_at)
{
    struct im_bundle old, new;
    make_image(&old, 1);
    make_image(&new, 2);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(s, &ref, &old, 100);
    put_ok(s, &ref, &new, 700);

    struct store_tag t = get_tag_ok(s, &ref);
    cr_assert_str_eq(t.digest, new.root_digest);
    cr_assert_eq(t.resolved_at, 700);
    cr_assert_eq(t.checked_at, 700);
    /* the old image is still there for digest references */
    struct im_bundle got;
    im_bundle_init(&got);
    struct im_error err = {{0}};
    cr_assert_eq(store_load(s, old.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&old, &got);
    im_bundle_free(&got);
    im_bundle_free(&old);
    im_bundle_free(&new);
    store_close(s);
}

Test(store, unchanged_digest_keeps_resolved_at_and_bumps_checked_at)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(s, &ref, &b, 100);
    put_ok(s, &ref, &b, 400);
    struct store_tag t = get_tag_ok(s, &ref);
    cr_assert_eq(t.resolved_at, 100);
    cr_assert_eq(t.checked_at, 400);

    /* a revalidation by HEAD that found the same digest */
    struct im_error err = {{0}};
    struct im_ref confirmed = ref;
    snprintf(confirmed.digest, sizeof confirmed.digest, "%s", b.root_digest);
    cr_assert_eq(store_touch_tag(s, &confirmed, 500, &err), 0, "%s", err.msg);
    t = get_tag_ok(s, &ref);
    cr_assert_eq(t.resolved_at, 100);
    cr_assert_eq(t.checked_at, 500);
    cr_assert_str_eq(t.digest, b.root_digest);

    /* touching for a digest the tag no longer has, or a tag never stored */
    struct im_ref moved = ref;
    fake_digest(moved.digest, 4242);
    cr_assert_eq(store_touch_tag(s, &moved, 900, &err), IM_ENOTFOUND);
    struct im_ref other = tag_ref("library/python", "nope");
    cr_assert_eq(store_touch_tag(s, &other, 900, &err), IM_ENOTFOUND);
    cr_assert_eq(get_tag_ok(s, &ref).checked_at, 500);
    /* checked_at never goes back */
    cr_assert_eq(store_touch_tag(s, &ref, 450, &err), 0);
    cr_assert_eq(get_tag_ok(s, &ref).checked_at, 500);

    im_bundle_free(&b);
    store_close(s);
}

Test(store, freshness_boundaries)
{
    struct store_tag t = {.checked_at = 1000, .resolved_at = 10};
    cr_assert(store_tag_fresh(&t, 1000, 300), "just checked");
    cr_assert(store_tag_fresh(&t, 1299, 300), "one second before the TTL");
    cr_assert_not(store_tag_fresh(&t, 1300, 300), "exactly at the TTL: stale");
    cr_assert_not(store_tag_fresh(&t, 5000, 300));
    cr_assert_not(store_tag_fresh(&t, 1000, 0), "TTL 0: always revalidate");
    cr_assert_not(store_tag_fresh(&t, 1000, -5));
    cr_assert(store_tag_fresh(&t, 900, 300), "clock stepped back: just checked");
    cr_assert_not(store_tag_fresh(NULL, 1000, 300));
    struct store_tag ancient = {.checked_at = INT64_MIN};
    cr_assert_not(store_tag_fresh(&ancient, INT64_MAX, INT64_MAX));
}

Test(store, tag_can_point_at_an_already_stored_root)
{
    struct im_bundle b, pointer;
    make_image(&b, 1);
    im_bundle_init(&pointer);
    snprintf(pointer.root_digest, sizeof pointer.root_digest, "%s", b.root_digest);
    struct store *s = open_ok(":memory:");
    put_ok(s, NULL, &b, 100);
    struct im_ref ref = tag_ref("library/python", "latest");
    put_ok(s, &ref, &pointer, 200);
    cr_assert_str_eq(get_tag_ok(s, &ref).digest, b.root_digest);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, note_access_only_moves_forward)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7");
    struct im_error err = {{0}};
    put_ok(s, &ref, &b, 100);
    cr_assert_eq(get_tag_ok(s, &ref).accessed_at, 100);
    cr_assert_eq(store_note_access(s, &ref, 250, &err), 0, "%s", err.msg);
    cr_assert_eq(get_tag_ok(s, &ref).accessed_at, 250);
    cr_assert_eq(store_note_access(s, &ref, 200, &err), 0);
    cr_assert_eq(get_tag_ok(s, &ref).accessed_at, 250);
    cr_assert_eq(get_tag_ok(s, &ref).checked_at, 100, "access is not a revalidation");
    struct im_ref other = tag_ref("library/python", "nope");
    cr_assert_eq(store_note_access(s, &other, 300, &err), 0);
    im_bundle_free(&b);
    store_close(s);
}

Test(store, unknown_blob_facts_do_not_erase_known_ones)
{
    struct im_bundle first, second, got;
    make_image(&first, 1);
    im_bundle_init(&second);
    im_bundle_init(&got);
    /* the same root again, but this time the layer's HEAD told us nothing */
    snprintf(second.root_digest, sizeof second.root_digest, "%s", first.root_digest);
    add_doc(&second, first.docs[0].digest, first.docs[0].media_type, first.docs[0].body,
            first.docs[0].len);
    add_blob(&second, first.blobs[0].digest, "", -1, -1);
    struct store *s = open_ok(":memory:");
    put_ok(s, NULL, &first, 100);
    put_ok(s, NULL, &second, 200);
    struct im_error err = {{0}};
    cr_assert_eq(store_load(s, first.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&first, &got);
    im_bundle_free(&got);
    im_bundle_free(&first);
    im_bundle_free(&second);
    store_close(s);
}

/* ---- negative cache ----------------------------------------------------- */

Test(store, misses_are_remembered_and_forgotten_when_the_tag_appears)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.99");
    struct im_error err = {{0}};
    int64_t until = 0;
    cr_assert_eq(store_get_miss(s, &ref, &until, &err), IM_ENOTFOUND);
    cr_assert_eq(store_put_miss(s, &ref, 130, &err), 0, "%s", err.msg);
    cr_assert_eq(store_get_miss(s, &ref, &until, &err), 0, "%s", err.msg);
    cr_assert_eq(until, 130);
    cr_assert_eq(store_put_miss(s, &ref, 160, &err), 0);
    cr_assert_eq(store_get_miss(s, &ref, &until, &err), 0);
    cr_assert_eq(until, 160, "a later miss replaces the earlier one");

    struct im_ref by_digest = tag_ref("library/python", "");
    fake_digest(by_digest.digest, 31337);
    cr_assert_eq(store_get_miss(s, &by_digest, &until, &err), IM_ENOTFOUND);
    cr_assert_eq(store_put_miss(s, &by_digest, 500, &err), 0);
    cr_assert_eq(store_get_miss(s, &by_digest, &until, &err), 0);
    cr_assert_eq(until, 500);
    cr_assert_eq(stats_ok(s).misses, 2);

    put_ok(s, &ref, &b, 170); /* the tag was pushed meanwhile */
    cr_assert_eq(store_get_miss(s, &ref, &until, &err), IM_ENOTFOUND);
    im_bundle_free(&b);
    store_close(s);
}

/* ---- all or nothing ----------------------------------------------------- */

Test(store, put_with_unknown_root_leaves_nothing)
{
    struct im_bundle good, bad;
    make_image(&good, 1);
    make_image(&bad, 2);
    /* bad names a root that is neither in it nor stored: refused after its
     * documents and blobs were already written inside the transaction */
    fake_digest(bad.root_digest, 123456);
    struct store *s = open_ok(":memory:");
    struct im_ref ref = tag_ref("library/python", "3.7");
    put_ok(s, &ref, &good, 100);
    struct store_stats before = stats_ok(s);

    struct im_error err = {{0}};
    cr_assert_eq(store_put(s, &ref, &bad, 200, &err), IM_EINVAL);
    cr_assert(strstr(err.msg, bad.root_digest), "message names the root: %s", err.msg);
    struct store_stats after = stats_ok(s);
    cr_assert_eq(after.documents, before.documents);
    cr_assert_eq(after.blobs, before.blobs);
    cr_assert_eq(after.doc_bytes, before.doc_bytes);
    struct store_tag t = get_tag_ok(s, &ref);
    cr_assert_str_eq(t.digest, good.root_digest);
    cr_assert_eq(t.checked_at, 100);
    put_ok(s, &ref, &good, 300); /* the store is still usable */
    im_bundle_free(&good);
    im_bundle_free(&bad);
    store_close(s);
}

Test(store, sql_failure_midway_rolls_back_everything)
{
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle b, got;
    make_image(&b, 1);
    im_bundle_init(&got);
    struct store *s = open_ok(db.path);
    /* The tag is the last row a put writes: make the database refuse it, as a
     * full disk or a constraint would, after documents, blobs and members
     * went in. */
    raw_exec_dialects(db.path,
                      "CREATE TRIGGER fail_tags BEFORE INSERT ON tags BEGIN"
                      " SELECT RAISE(ABORT, 'injected failure'); END",
                      "CREATE FUNCTION fail_tags() RETURNS trigger LANGUAGE plpgsql AS"
                      " $$BEGIN RAISE EXCEPTION 'injected failure'; END$$;"
                      " CREATE TRIGGER fail_tags BEFORE INSERT ON tags FOR EACH ROW"
                      " EXECUTE FUNCTION fail_tags()");
    struct im_ref ref = tag_ref("library/python", "3.7");
    struct im_error err = {{0}};
    cr_assert_eq(store_put(s, &ref, &b, 100, &err), IM_ESTORE);
    cr_assert(strstr(err.msg, "injected failure"), "message says why: %s", err.msg);

    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.documents, 0);
    cr_assert_eq(st.blobs, 0);
    cr_assert_eq(st.tags, 0);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), IM_ENOTFOUND);

    /* the write lock was released */
    raw_exec_dialects(db.path, "DROP TRIGGER fail_tags",
                      "DROP TRIGGER fail_tags ON tags");
    put_ok(s, &ref, &b, 200);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    im_bundle_free(&got);
    im_bundle_free(&b);
    store_close(s);
    tmpdb_remove(&db);
}

Test(store, malformed_bundle_is_refused)
{
    struct im_bundle b;
    make_image(&b, 1);
    struct store *s = open_ok(":memory:");
    struct im_error err = {{0}};
    b.blobs[0].size = -7;
    cr_assert_eq(store_put(s, NULL, &b, 100, &err), IM_EINVAL);
    b.blobs[0].size = 5;
    struct im_ref ref = tag_ref("library/python", "3.7");
    fake_digest(ref.digest, 99); /* says it resolved to something else */
    cr_assert_eq(store_put(s, &ref, &b, 100, &err), IM_EINVAL);
    cr_assert_eq(stats_ok(s).documents, 0);
    im_bundle_free(&b);
    store_close(s);
}

/* ---- freshness policy (pure) ------------------------------------------- */

Test(store, freshness_fresh_then_stale_then_too_stale)
{
    struct store_tag t = {.checked_at = 1000};
    /* ttl 300, max_stale 600: fresh [1000, 1300), stale [1300, 1900), then too stale */
    cr_assert_eq(store_freshness(&t, 1000, 300, 600), STORE_FRESH);
    cr_assert_eq(store_freshness(&t, 1299, 300, 600), STORE_FRESH);
    cr_assert_eq(store_freshness(&t, 1300, 300, 600), STORE_STALE_REVALIDATE);
    cr_assert_eq(store_freshness(&t, 1899, 300, 600), STORE_STALE_REVALIDATE);
    cr_assert_eq(store_freshness(&t, 1900, 300, 600), STORE_TOO_STALE);
    cr_assert_eq(store_freshness(&t, 1300, 300, 0), STORE_TOO_STALE, "no stale allowed");
    cr_assert_eq(store_freshness(&t, 1000, 0, 600), STORE_STALE_REVALIDATE,
                 "TTL 0: always revalidate, stale allowed");
    cr_assert_eq(store_freshness(&t, 900, 300, 600), STORE_FRESH, "clock stepped back");
    cr_assert_eq(store_freshness(NULL, 1000, 300, 600), STORE_TOO_STALE);
    struct store_tag ancient = {.checked_at = INT64_MIN};
    cr_assert_eq(store_freshness(&ancient, INT64_MAX, 300, INT64_MAX - 1),
                 STORE_TOO_STALE);
}

Test(store, fresh_for_is_the_remaining_ttl)
{
    struct store_tag t = {.checked_at = 1000};
    cr_assert_eq(store_fresh_for(&t, 1000, 300), 300);
    cr_assert_eq(store_fresh_for(&t, 1299, 300), 1);
    cr_assert_eq(store_fresh_for(&t, 1300, 300), 0);
    cr_assert_eq(store_fresh_for(&t, 900, 300), 300, "clock stepped back");
}
