/* test_store_members.c - member rows: digests of every kind kept apart; on
 * SQLite sha256 digests kept as 32 bytes, others as text, the same answers
 * from a schema 5 database. */
#include "store_test.h"

/* ---- member rows -------------------------------------------------------- */

/* build_image's image n (its documents with their real digests) and two
 * layers whose digests are not sha256 ones: a
 * sha512 layer every such image shares, and the text of its own layer's
 * digest in capitals (another digest as far as the store is concerned). */
static void mixed_image(struct im_bundle *b, unsigned n)
{
    char d[IM_DIGEST_MAX];
    make_image(b, n);
    real_digests(b);
    snprintf(d, sizeof d, "sha512:%0128x", SHARED_LAYER);
    add_blob(b, d, "application/vnd.oci.image.layer.v1.tar+gzip", 512, 1600000512);
    snprintf(d, sizeof d, "sha256:%064X", n + 500000u);
    add_blob(b, d, "", 7000 + n, -1);
}

#define SHA256_ROOTS                                                                     \
    "SELECT count(*) FROM members WHERE typeof(root) = 'blob' AND length(root) = 32"
#define SHA256_MEMBERS                                                                   \
    "SELECT count(*) FROM members WHERE typeof(digest) = 'blob' AND length(digest) = 32"
#define TEXT_MEMBERS "SELECT count(*) FROM members WHERE typeof(digest) = 'text'"

static void load_same(struct store *s, const struct im_bundle *want)
{
    struct im_error err = {{0}};
    struct im_bundle got;
    im_bundle_init(&got);
    int rc = store_load(s, want->root_digest, &got, &err);
    cr_assert_eq(rc, 0, "store_load: %d %s", rc, err.msg);
    assert_same_bundle(want, &got);
    im_bundle_free(&got);
}

/* Purging a's tag from the closed database at path collects what only a
 * held, nothing b holds too. */
static void purge_a(const char *path, const struct im_ref *ra, const struct im_bundle *b)
{
    struct im_error err = {{0}};
    struct store_removed r;
    struct im_blob bl;
    struct store *s = open_ok(path);
    cr_assert_eq(store_purge(s, ra, &r, &err), 0, "%s", err.msg);
    cr_expect_eq(r.documents, 1, "a's root only: the config is shared");
    cr_expect_eq(r.blobs, 2, "a's layer and its capitalised twin");
    load_same(s, b);
    cr_expect_eq(store_find_blob(s, "docker.io", b->blobs[2].digest, 0, &bl, &err), 0,
                 "the shared sha512 layer: %s", err.msg);
    cr_expect_eq(bl.size, 512);
    store_close(s);
}

/* The member rows of two mixed images in the closed SQLite file at path: a
 * sha256 digest as its 32 bytes, any other as its text. Then purge_a. */
static void keys_then_purge(const char *path, const struct im_ref *ra,
                            const struct im_bundle *b)
{
    cr_expect_eq(raw_int(path, SHA256_ROOTS, 0), 12, "every row of both images");
    cr_expect_eq(raw_int(path, SHA256_MEMBERS, 0), 8, "root, config and 2 layers, x2");
    cr_expect_eq(raw_int(path, TEXT_MEMBERS, 0), 4, "the sha512 and capitalised ones");
    purge_a(path, ra, b);
}

/* Two mixed images, a and b, stored under their tags in a new database: a
 * loads, and its capitalised layer is a layer of its own; then check runs on
 * the closed database. */
static void with_mixed_images(void (*check)(const char *path, const struct im_ref *ra,
                                            const struct im_bundle *b))
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle a, b;
    struct im_blob bl;
    cr_assert_eq(tmpdb_init(&db), 0);
    mixed_image(&a, 1);
    mixed_image(&b, 2);
    struct im_ref ra = tag_ref("library/a", "1"), rb = tag_ref("library/b", "1");
    struct store *s = open_ok(db.path);
    put_ok(s, &ra, &a, 100);
    put_ok(s, &rb, &b, 100);
    load_same(s, &a);
    cr_assert_eq(store_find_blob(s, "docker.io", a.blobs[3].digest, 0, &bl, &err), 0,
                 "%s", err.msg);
    cr_expect_eq(bl.size, 7001, "the capitalised digest is its own layer");
    store_close(s);
    check(db.path, &ra, &b);
    im_bundle_free(&a);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* Digests of every kind (sha256, sha512, a sha256 one in capitals) come back
 * exactly, each its own, and a purge collects only what its image alone
 * held. */
Test(store, digests_of_every_kind_are_kept_apart_and_purged_apart)
{
    with_mixed_images(purge_a);
}

/* A cached image's member rows take a sha256 digest's 32 bytes, not its 71
 * characters; any other digest is kept as its text and comes back exactly. */
Test(store, member_rows_keep_sha256_digests_as_32_bytes_and_others_as_text)
{
    SQLITE_ONLY("the digest keys of SQLite's member rows (PostgreSQL keeps digests as "
                "text)");
    with_mixed_images(keys_then_purge);
}

/* A database of schema 5 (members as text) opens after the upgrade and
 * answers every cached image, tag, layer fact and rendered answer from what
 * it holds; its member rows are keys from then on, and gc still tells what is
 * held from what is not. */
Test(store, a_schema_5_database_opens_and_serves_the_same_answers)
{
    SQLITE_ONLY("an SQLite file of schema 5 migrated (its member rows become digest "
                "keys)");
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle a, b;
    struct im_blob bl;
    char key[256];
    cr_assert_eq(tmpdb_init(&db), 0);
    mixed_image(&a, 1);
    mixed_image(&b, 2);
    struct im_ref ra = tag_ref("library/a", "1"), rb = tag_ref("library/b", "1");
    cr_expect_eq(store_file_schema(db.path), 0, "no file yet: no schema");
    struct store *s = open_ok(db.path);
    int64_t ms = -1;
    cr_expect_eq(store_migrated_from(s, NULL), 0, "a new file is not a migration");
    set_renderer_ok(s, "r", NULL);
    put_ok(s, &ra, &a, 100);
    put_ok(s, &rb, &b, 100);
    size_t klen = rendered_key(key, sizeof key, a.root_digest, "j");
    put_rendered_ok(s, &ra, key, klen, "old answer", 10);
    store_close(s);
    cr_expect_eq(store_file_schema(db.path), 7, "a current file, read as it is");
    raw_exec(db.path, MEMBERS_AS_SCHEMA_5 "PRAGMA user_version = 5");
    cr_assert_eq(raw_int(db.path, TEXT_MEMBERS, 0), 12, "schema 5 keeps text");
    cr_expect_eq(store_file_schema(db.path), 5, "known before the open migrates it");
    cr_expect_eq(raw_int(db.path, TEXT_MEMBERS, 0), 12,
                 "... and reading it changed nothing");

    s = open_ok(db.path);
    cr_expect_eq(store_migrated_from(s, &ms), 5, "the open says it migrated schema 5");
    cr_expect_eq(store_schema_version(), 7);
    cr_expect_geq(ms, 0);
    set_renderer_ok(s, "r", NULL);
    load_same(s, &a);
    load_same(s, &b);
    cr_expect_str_eq(get_tag_ok(s, &ra).digest, a.root_digest);
    cr_expect_eq(get_rendered_is(s, key, klen, "old answer", 10), 0);
    cr_expect_eq(store_find_blob(s, "docker.io", a.blobs[0].digest, 0, &bl, &err), 0,
                 "a layer's facts still answer for its registry: %s", err.msg);
    cr_expect_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    s = open_ok(db.path);
    cr_expect_eq(store_migrated_from(s, NULL), 0, "opened again: nothing to migrate");
    store_close(s);
    keys_then_purge(db.path, &ra, &b);
    im_bundle_free(&a);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* A member row whose key is no digest (a damaged file, a foreign writer) is
 * refused as a store error, never turned into a digest. */
Test(store, a_member_key_that_is_no_digest_is_a_store_error)
{
    SQLITE_ONLY("a damaged digest key of SQLite's member rows (PostgreSQL keeps digests "
                "as text)");
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle a, got;
    cr_assert_eq(tmpdb_init(&db), 0);
    make_image(&a, 1);
    im_bundle_init(&got);
    struct im_ref ra = tag_ref("library/a", "1");
    struct store *s = reopened_after(&db, &ra, &a,
                                     "UPDATE members SET digest = zeroblob(5) WHERE kind"
                                     " = 1 AND digest = (SELECT max(digest) FROM members"
                                     " WHERE kind = 1)");
    cr_expect_eq(store_load(s, a.root_digest, &got, &err), IM_ESTORE);
    cr_expect(strstr(err.msg, "malformed digest key"), "%s", err.msg);
    store_close(s);
    im_bundle_free(&a);
    tmpdb_remove(&db);
}
