/* test_store.c - the SQLite cache as its users see it: answers come back
 * byte-exact (kept deflated when that saves space; a damaged row is refused,
 * never served), tags move and age as the freshness rules say, a failed write
 * leaves nothing behind, files that are not ours are refused untouched, and
 * eight threads can share one store.
 *
 * Criterion starts under ThreadSanitizer only with tests/unit/tsan-units.sh's
 * help (its arenas find no room: Snaipe/Criterion#274), so the eight-thread
 * scenario is also written without Criterion, and this file builds as a plain
 * program that runs only it:
 *   cmake -B build-tsan -DIMGMETA_TSAN=ON && cmake --build build-tsan --target im_store
 *   cc -std=c17 -D_POSIX_C_SOURCE=200809L -fsanitize=thread -DSTORE_TSAN_MAIN \
 *      -Istore -Icommon tests/unit/test_store.c build-tsan/libim_store.a \
 *      build-tsan/libim_common.a -lsqlite3 -lz -lcrypto -lpthread -o store_tsan
 *   ./store_tsan */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"
#include "store.h"

/* ---- fixtures ----------------------------------------------------------- */

static void fake_digest(char *out, unsigned n)
{
    snprintf(out, IM_DIGEST_MAX, "sha256:%064x", n);
}

static struct im_ref tag_ref(const char *repo, const char *tag)
{
    struct im_ref r;
    memset(&r, 0, sizeof r);
    snprintf(r.registry, sizeof r.registry, "docker.io");
    snprintf(r.repository, sizeof r.repository, "%s", repo);
    snprintf(r.tag, sizeof r.tag, "%s", tag);
    return r;
}

#define SHARED_CONFIG 900000u
#define SHARED_LAYER 900001u

static int blob_into(struct im_bundle *b, const char *digest, const char *media,
                     int64_t size, int64_t last_modified)
{
    struct im_blob bl;
    memset(&bl, 0, sizeof bl);
    snprintf(bl.digest, sizeof bl.digest, "%s", digest);
    snprintf(bl.media_type, sizeof bl.media_type, "%s", media);
    bl.size = size;
    bl.last_modified = last_modified;
    return im_bundle_add_blob(b, &bl);
}

/* Image number n: a manifest (the root) naming a config shared by every image
 * and two layers, one of them shared too. Bodies are distinct per n. */
/* Gives every document of b the digest of its bytes in algo ("sha256",
 * "sha384", "sha512"), as a resolution keeps them (the store checks a
 * document it reads against its digest). */
static void digests_as(struct im_bundle *b, const char *algo)
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

static void real_digests(struct im_bundle *b)
{
    digests_as(b, "sha256");
}

static int build_image(struct im_bundle *b, unsigned n)
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

/* A private directory for file databases, removed with what SQLite left. */
struct tmpdb {
    char dir[64];
    char path[96];
};

static int tmpdb_init(struct tmpdb *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/imgmeta-store-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/cache.db", t->dir);
    return 0;
}

static void tmpdb_remove(struct tmpdb *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[128];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffixes[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

/* ---- threads ------------------------------------------------------------ */

#define NTHREADS 8
#define NROUNDS 40
#define NTAGS 4

struct worker {
    pthread_t thread;
    struct store *s;
    unsigned id;
    int failures;
    char first[IM_ERRMSG_MAX + 64];
};

static void worker_fail(struct worker *w, const char *what, const char *msg)
{
    if (w->failures++ == 0)
        snprintf(w->first, sizeof w->first, "%s: %s", what, msg);
}

static bool same_docs(const struct im_bundle *want, const struct im_bundle *got)
{
    if (got->ndocs != want->ndocs || strcmp(got->root_digest, want->root_digest) != 0)
        return false;
    for (size_t i = 0; i < want->ndocs; i++) {
        const struct im_doc *g = im_bundle_find_doc(got, want->docs[i].digest);
        if (!g || g->len != want->docs[i].len ||
            memcmp(g->body, want->docs[i].body, g->len) != 0)
            return false;
    }
    return true;
}

/* One round: store image n under a private tag and under a tag every thread
 * moves, then read both back; whatever the shared tag points to must load. */
static void worker_round(struct worker *w, unsigned round)
{
    struct im_error err = {{0}};
    struct im_bundle b, got;
    struct store_tag t;
    char tag[32];
    im_bundle_init(&got);
    if (build_image(&b, w->id * 100 + round % NTAGS) != 0) {
        worker_fail(w, "build", "out of memory");
        goto out;
    }
    real_digests(&b);
    snprintf(tag, sizeof tag, "t%u-%u", w->id, round % NTAGS);
    struct im_ref mine = tag_ref("library/python", tag);
    struct im_ref shared = tag_ref("library/python", "shared");
    if (store_put(w->s, &mine, &b, round, &err) != 0)
        worker_fail(w, "put", err.msg);
    else if (store_put(w->s, &shared, &b, round, &err) != 0)
        worker_fail(w, "put shared", err.msg);
    else if (store_get_tag(w->s, &mine, &t, &err) != 0 || strcmp(t.digest, b.root_digest))
        worker_fail(w, "get_tag", err.msg);
    else if (store_load(w->s, t.digest, &got, &err) != 0 || !same_docs(&b, &got))
        worker_fail(w, "load", err.msg);
    im_bundle_free(&got);
    if (store_get_tag(w->s, &shared, &t, &err) != 0 ||
        store_load(w->s, t.digest, &got, &err) != 0)
        worker_fail(w, "load shared", err.msg);
out:
    im_bundle_free(&got);
    im_bundle_free(&b);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned r = 0; r < NROUNDS; r++)
        worker_round(w, r);
    return NULL;
}

/* Runs NTHREADS workers on s; 0 when every thread could be started and joined. */
static int run_workers(struct store *s, struct worker *w)
{
    unsigned started = 0;
    int rc = 0;
    memset(w, 0, NTHREADS * sizeof *w);
    for (; started < NTHREADS; started++) {
        w[started].s = s;
        w[started].id = started + 1;
        if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]) != 0) {
            rc = -1;
            break;
        }
    }
    for (unsigned i = 0; i < started; i++)
        if (pthread_join(w[i].thread, NULL) != 0)
            rc = -1;
    return rc;
}

#ifndef STORE_TSAN_MAIN
#include <criterion/criterion.h>
#define ZLIB_CONST /* next_in is a pointer to const */
#include <zlib.h>

#include "store_int.h" /* the codec's encodings and its dictionary */

/* n bytes no compressor shrinks (xorshift from seed), so that the database
 * grows by what is stored. */
static void noise(void *buf, size_t n, uint32_t seed)
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

static void add_doc(struct im_bundle *b, const char *digest, const char *media,
                    const void *body, size_t len)
{
    cr_assert_eq(im_bundle_add_doc(b, digest, media, body, len), 0);
}

static void add_blob(struct im_bundle *b, const char *digest, const char *media,
                     int64_t size, int64_t last_modified)
{
    cr_assert_eq(blob_into(b, digest, media, size, last_modified), 0);
}

/* build_image's image n, its documents under their real digests (as a
 * resolution keeps them: the store checks a document it reads against its
 * digest). */
static void make_image(struct im_bundle *b, unsigned n)
{
    cr_assert_eq(build_image(b, n), 0);
    real_digests(b);
}

/* Every document and blob of want is in got, identical. */
static void assert_same_bundle(const struct im_bundle *want, const struct im_bundle *got)
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

static struct store *open_ok(const char *path)
{
    struct im_error err = {{0}};
    struct store *s = store_open(path, &err);
    cr_assert_not_null(s, "store_open(%s): %s", path, err.msg);
    return s;
}

static void put_ok(struct store *s, const struct im_ref *ref, const struct im_bundle *b,
                   int64_t now)
{
    struct im_error err = {{0}};
    int rc = store_put(s, ref, b, now, &err);
    cr_assert_eq(rc, 0, "store_put: %d %s", rc, err.msg);
}

static struct store_tag get_tag_ok(struct store *s, const struct im_ref *ref)
{
    struct im_error err = {{0}};
    struct store_tag t;
    int rc = store_get_tag(s, ref, &t, &err);
    cr_assert_eq(rc, 0, "store_get_tag: %d %s", rc, err.msg);
    return t;
}

static struct store_stats stats_ok(struct store *s)
{
    struct im_error err = {{0}};
    struct store_stats st;
    cr_assert_eq(store_stats(s, &st, &err), 0, "store_stats: %s", err.msg);
    return st;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

/* Whole file contents, to show a refused file was not touched. */
static char *slurp(const char *path, long *len)
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
    /* The tag is the last row a put writes: make SQLite refuse it, as a full
     * disk or a constraint would, after documents, blobs and members went in. */
    raw_exec(db.path, "CREATE TRIGGER fail_tags BEFORE INSERT ON tags BEGIN"
                      " SELECT RAISE(ABORT, 'injected failure'); END");
    struct im_ref ref = tag_ref("library/python", "3.7");
    struct im_error err = {{0}};
    cr_assert_eq(store_put(s, &ref, &b, 100, &err), IM_ESTORE);
    cr_assert(strstr(err.msg, "injected failure"), "message says why: %s", err.msg);

    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.documents, 0);
    cr_assert_eq(st.blobs, 0);
    cr_assert_eq(st.tags, 0);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), IM_ENOTFOUND);

    raw_exec(db.path, "DROP TRIGGER fail_tags"); /* the lock was released */
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

    /* and it is in WAL mode, so readers never wait for the writer */
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(db.path, &raw), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(raw);
    im_bundle_free(&got);
    im_bundle_free(&b);
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
    struct im_error err = {{0}};
    cr_assert_null(store_open("/nonexistent-dir/imgmeta/cache.db", &err));
    cr_assert(strstr(err.msg, "/nonexistent-dir/imgmeta/cache.db"), "%s", err.msg);
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

/* ---- threads ------------------------------------------------------------ */

Test(store, eight_threads_share_a_file_store, .timeout = 120)
{
    struct tmpdb db;
    struct worker w[NTHREADS];
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    struct im_error err = {{0}};
    /* tag rows in memory too, fewer than the tags: rows are replaced while
     * other threads write them */
    cr_assert_eq(store_set_tag_memory(s, 16, &err), 0, "%s", err.msg);
    cr_assert_eq(run_workers(s, w), 0);
    for (unsigned i = 0; i < NTHREADS; i++)
        cr_assert_eq(w[i].failures, 0, "thread %u: %d failures, first: %s", w[i].id,
                     w[i].failures, w[i].first);
    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.documents, NTHREADS * NTAGS + 1,
                 "every manifest + the shared config");
    cr_assert_eq(st.tags, NTHREADS * NTAGS + 1);
    cr_assert_eq(st.blobs, NTHREADS * NTAGS + 1);
    store_close(s);
    tmpdb_remove(&db);
}

/* ---- rendered answers --------------------------------------------------- */

/* The key describe.c builds: root digest, NUL, then what else it names. */
static size_t rendered_key(char *key, size_t n, const char *root, const char *rest)
{
    int w = snprintf(key, n, "%s%c%s", root, 0, rest);
    cr_assert(w > 0 && (size_t)w < n);
    return (size_t)w;
}

static void put_rendered_ok(struct store *s, const struct im_ref *ref, const char *key,
                            size_t klen, const char *body, size_t len)
{
    struct im_error err = {{0}};
    int rc = store_put_rendered(s, ref, key, klen, body, len, &err);
    cr_assert_eq(rc, 0, "store_put_rendered: %d %s", rc, err.msg);
}

/* 0 and the body compared with want, or the error code. */
static int get_rendered_is(struct store *s, const char *key, size_t klen,
                           const char *want, size_t wlen)
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

static void set_renderer_ok(struct store *s, const char *id, int64_t *dropped)
{
    struct im_error err = {{0}};
    int rc = store_set_renderer(s, id, dropped, &err);
    cr_assert_eq(rc, 0, "store_set_renderer: %d %s", rc, err.msg);
}

Test(store, a_rendered_answer_comes_back_byte_exact_for_its_renderer_only)
{
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

/* The file database db, holding b under ref, changed by sql behind the
 * store's back while it was closed; opened again. */
static struct store *reopened_after(const struct tmpdb *db, const struct im_ref *ref,
                                    const struct im_bundle *b, const char *sql)
{
    struct store *s = open_ok(db->path);
    put_ok(s, ref, b, 100);
    store_close(s);
    raw_exec(db->path, sql);
    return open_ok(db->path);
}

Test(store, a_schema_3_database_gains_the_rendered_table)
{
    struct tmpdb db;
    cr_assert_eq(tmpdb_init(&db), 0);
    struct im_bundle a;
    make_image(&a, 6);
    struct im_ref ref = tag_ref("library/a", "1");
    /* what that release left: no rendered table, no encoding, user_version 3 */
    struct store *s = reopened_after(&db, &ref, &a,
                                     "DROP TABLE rendered; ALTER TABLE documents DROP"
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

/* ---- how bodies are kept ------------------------------------------------- */

/* A config blob as registries serve them: JSON whose history repeats long
 * shell lines (n entries, about 300 bytes each). */
static char *config_like(unsigned n, size_t *len)
{
    size_t cap = 64 + (size_t)n * 400, off = 0;
    char *p = malloc(cap);
    cr_assert_not_null(p);
    off += (size_t)snprintf(p, cap, "{\"architecture\":\"amd64\",\"history\":[");
    for (unsigned i = 0; i < n; i++)
        off += (size_t)snprintf(
            p + off, cap - off,
            "%s{\"created\":\"2019-06-%02uT01:2%u:07.%09uZ\",\"created_by\":\"/bin/sh -c "
            "set -ex && apt-get update && apt-get install -y --no-install-recommends "
            "ca-certificates netbase wget-%u && rm -rf /var/lib/apt/lists/*\"%s}",
            i ? "," : "", 1 + i % 28, i % 10, i * 7919u, i,
            i % 3 ? "" : ",\"empty_layer\":true");
    off += (size_t)snprintf(p + off, cap - off, "],\"os\":\"linux\"}");
    cr_assert_lt(off, cap);
    *len = off;
    return p;
}

/* Column col, an integer, of the first row sql selects. */
static int64_t raw_int(const char *path, const char *sql, int col)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, col);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* The encoding and the length of the row a statement selects (one row). */
static void row_of(const char *path, const char *sql, int *encoding, int64_t *len)
{
    *encoding = (int)raw_int(path, sql, 0);
    *len = raw_int(path, sql, 1);
}

/* Runs sql (one statement) with ?1 bound to the blob p (n bytes). */
static void raw_exec_blob(const char *path, const char *sql, const void *p, size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_bind_blob(st, 1, p, (int)n, SQLITE_TRANSIENT), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The body column of the row a statement selects, malloc'd. */
static unsigned char *raw_body(const char *path, const char *sql, size_t *n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    *n = (size_t)sqlite3_column_bytes(st, 0);
    unsigned char *p = malloc(*n + 1);
    cr_assert_not_null(p);
    memcpy(p, sqlite3_column_blob(st, 0), *n);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return p;
}

/* An image of three documents with real digests: a compressible config
 * (docs[1]), a tiny manifest (the root) and an incompressible one (docs[2]). */
static void kept_image(struct im_bundle *b)
{
    size_t clen = 0;
    char *cfg = config_like(40, &clen);
    static unsigned char opaque[4096];
    noise(opaque, sizeof opaque, 7);
    im_bundle_init(b);
    snprintf(b->root_digest, sizeof b->root_digest, "root");
    add_doc(b, "root", "application/vnd.oci.image.manifest.v1+json",
            "{\"schemaVersion\":2}", 19);
    add_doc(b, "cfg", "application/vnd.oci.image.config.v1+json", cfg, clen);
    add_doc(b, "opaque", "application/octet-stream", opaque, sizeof opaque);
    real_digests(b);
    free(cfg);
}

#define DOC_ROW "SELECT encoding, length(body) FROM documents WHERE digest = '%s'"

/* The members table as schemas 1 to 5 kept it: every digest as its text (a
 * sha256 key spelled out again), in TEXT columns. */
#define MEMBERS_AS_SCHEMA_5                                                              \
    "CREATE TABLE members5(root TEXT NOT NULL, digest TEXT NOT NULL,"                    \
    " kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"                                     \
    " PRIMARY KEY (root, digest, kind)) WITHOUT ROWID;"                                  \
    " INSERT INTO members5 SELECT"                                                       \
    " CASE typeof(root) WHEN 'blob' THEN 'sha256:' || lower(hex(root)) ELSE root END,"   \
    " CASE typeof(digest) WHEN 'blob' THEN 'sha256:' || lower(hex(digest))"              \
    " ELSE digest END, kind FROM members;"                                               \
    " DROP TABLE members; ALTER TABLE members5 RENAME TO members;"                       \
    " CREATE INDEX members_by_digest ON members(digest, kind);"

Test(store, compressible_bodies_are_kept_deflated_and_come_back_byte_exact)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle b, got;
    char sql[512], key[256];
    int enc = -1;
    int64_t n = -1;
    cr_assert_eq(tmpdb_init(&db), 0);
    kept_image(&b);
    im_bundle_init(&got);
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    struct store *s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    put_ok(s, &ref, &b, 100);
    size_t alen = 0;
    char *answer = config_like(200, &alen); /* ~60 KB, as a 7-platform answer */
    size_t klen = rendered_key(key, sizeof key, b.root_digest, "j");
    put_rendered_ok(s, &ref, key, klen, answer, alen);
    struct store_stats st = stats_ok(s);
    store_close(s);

    /* what the rows hold: the config and the answer deflated, well under */
    snprintf(sql, sizeof sql, DOC_ROW, b.docs[1].digest);
    row_of(db.path, sql, &enc, &n);
    cr_expect_eq(enc, STORE__DEFLATE_DICT1, "the config is deflated with the dictionary");
    cr_expect_lt(n, (int64_t)b.docs[1].len / 4, "%lld of %zu bytes", (long long)n,
                 b.docs[1].len);
    snprintf(sql, sizeof sql, DOC_ROW, b.docs[0].digest);
    row_of(db.path, sql, &enc, &n);
    cr_expect(enc == 0 && n == (int64_t)b.docs[0].len, "a tiny body is kept as it is");
    snprintf(sql, sizeof sql, DOC_ROW, b.docs[2].digest);
    row_of(db.path, sql, &enc, &n);
    cr_expect(enc == 0 && n == (int64_t)b.docs[2].len, "noise is kept as it is");
    row_of(db.path, "SELECT encoding, length(body) FROM rendered", &enc, &n);
    cr_expect_eq(enc, STORE__DEFLATE_DICT1, "the answer is deflated with the dictionary");
    cr_expect_lt(n, (int64_t)alen / 4, "%lld of %zu bytes", (long long)n, alen);
    cr_expect_eq(st.rendered_bytes, n, "stats count stored bytes");
    cr_expect_lt(st.doc_bytes, (int64_t)(b.docs[1].len + b.docs[2].len));

    /* and every reader gets the bytes back, across a reopen */
    s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    struct im_doc d;
    cr_assert_eq(store_find_doc(s, b.docs[1].digest, &d, &err), 0, "%s", err.msg);
    cr_assert(d.len == b.docs[1].len && memcmp(d.body, b.docs[1].body, d.len) == 0);
    free(d.body);
    cr_assert_eq(get_rendered_is(s, key, klen, answer, alen), 0);
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    free(answer);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* What each reader of the stored image says now: every one refuses (never
 * other bytes, never a crash), and so does the check. */
static void every_reader_refuses(const char *path, const struct im_bundle *b,
                                 const char *key, size_t klen, const char *what)
{
    struct im_error err = {{0}};
    struct im_bundle got;
    struct im_doc d;
    char *body = NULL;
    size_t len = 0;
    im_bundle_init(&got);
    struct store *s = open_ok(path);
    set_renderer_ok(s, "r", NULL);
    cr_expect_eq(store_load(s, b->root_digest, &got, &err), IM_ESTORE, "%s", what);
    cr_expect_eq(got.ndocs, 0, "%s: nothing half-loaded", what);
    cr_expect_eq(store_find_doc(s, b->docs[1].digest, &d, &err), IM_ESTORE, "%s", what);
    cr_expect(strstr(err.msg, "corrupt"), "%s: %s", what, err.msg);
    cr_expect_eq(store_get_rendered(s, key, klen, &body, &len, &err), IM_ESTORE, "%s",
                 what);
    cr_expect_null(body);
    cr_expect_eq(store_check(s, &err), IM_ESTORE, "%s", what);
    cr_expect(strstr(err.msg, "2 of 4 stored bodies are corrupt"), "%s: %s", what,
              err.msg);
    store_close(s);
    im_bundle_free(&got);
}

/* The kept image in a file database, with its config's bytes as an answer
 * under key (klen: what it returns): two deflated rows alike. */
static size_t store_kept_image(const char *path, struct im_bundle *b, char *key, size_t n)
{
    kept_image(b);
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    struct store *s = open_ok(path);
    set_renderer_ok(s, "r", NULL);
    put_ok(s, &ref, b, 100);
    size_t klen = rendered_key(key, n, b->root_digest, "j");
    put_rendered_ok(s, &ref, key, klen, (const char *)b->docs[1].body, b->docs[1].len);
    store_close(s);
    return klen;
}

/* Both deflated rows of the kept image hold row (n bytes) now. */
static void set_rows(const char *path, const struct im_bundle *b, const void *row,
                     size_t n)
{
    char upd[512];
    snprintf(upd, sizeof upd, "UPDATE documents SET body = ?1 WHERE digest = '%s'",
             b->docs[1].digest);
    raw_exec_blob(path, upd, row, n);
    raw_exec_blob(path, "UPDATE rendered SET body = ?1", row, n);
}

Test(store, a_damaged_deflated_row_is_refused_as_corrupt)
{
    struct tmpdb db;
    struct im_bundle b;
    char key[256], sel[512];
    cr_assert_eq(tmpdb_init(&db), 0);
    size_t klen = store_kept_image(db.path, &b, key, sizeof key);
    snprintf(sel, sizeof sel, "SELECT body FROM documents WHERE digest = '%s'",
             b.docs[1].digest);
    size_t n = 0;
    unsigned char *good = raw_body(db.path, sel, &n);
    cr_assert_gt(n, 40);
    unsigned char *bad = malloc(n + 1);
    cr_assert_not_null(bad);
    /* one byte changed: in the length, the zlib header (5: its "a dictionary
     * follows" flag; 6 and 9: the dictionary's id), the stream, its checksum
     * (not the stream's last byte, which may end in padding) */
    size_t at[] = {3, 4, 5, 6, 9, n / 3, n / 2, n - 3, n - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "byte %zu of %zu changed", at[i], n);
        memcpy(bad, good, n);
        bad[at[i]] ^= 0x20;
        set_rows(db.path, &b, bad, n);
        every_reader_refuses(db.path, &b, key, klen, what);
    }
    /* cut short, or followed by more */
    set_rows(db.path, &b, good, n - 7);
    every_reader_refuses(db.path, &b, key, klen, "truncated");
    memcpy(bad, good, n);
    bad[n] = 'x';
    set_rows(db.path, &b, bad, n + 1);
    every_reader_refuses(db.path, &b, key, klen, "a byte after its end");
    /* an encoding this build does not know */
    set_rows(db.path, &b, good, n);
    raw_exec(db.path, "UPDATE documents SET encoding = 3 WHERE encoding = 2;"
                      " UPDATE rendered SET encoding = 7");
    every_reader_refuses(db.path, &b, key, klen, "unknown encoding");
    free(bad);
    free(good);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* A deflated row: 4 bytes of claimed length, then the zlib stream of body
 * (len bytes) made with the preset dictionary dict (dlen bytes; NULL: none). */
static unsigned char *zrow(const void *body, size_t len, uint32_t claimed,
                           const void *dict, size_t dlen, size_t *rowlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit(&z, 9), Z_OK);
    if (dict)
        cr_assert_eq(deflateSetDictionary(&z, dict, (uInt)dlen), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *row = malloc(4 + cap);
    cr_assert_not_null(row);
    z.next_in = body;
    z.avail_in = (uInt)len;
    z.next_out = row + 4;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    row[0] = (unsigned char)(claimed >> 24);
    row[1] = (unsigned char)(claimed >> 16);
    row[2] = (unsigned char)(claimed >> 8);
    row[3] = (unsigned char)claimed;
    *rowlen = 4 + z.total_out;
    deflateEnd(&z);
    return row;
}

/* A row of n zero bytes that claims another length, for encoding enc. */
static unsigned char *bomb_row(size_t n, uint32_t claimed, int enc, size_t *rowlen)
{
    unsigned char *zeros = calloc(1, n);
    cr_assert_not_null(zeros);
    unsigned char *row =
        zrow(zeros, n, claimed, enc == 2 ? store__dict1 : NULL, store__dict1_len, rowlen);
    free(zeros);
    return row;
}

/* Both rows set_rows writes say encoding enc now. */
static void set_encoding(const char *path, const struct im_bundle *b, int enc)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE documents SET encoding = %d WHERE digest = '%s';"
             " UPDATE rendered SET encoding = %d",
             enc, b->docs[1].digest, enc);
    raw_exec(path, sql);
}

Test(store, an_inflate_bomb_is_refused)
{
    struct tmpdb db;
    struct im_bundle b;
    char key[256];
    cr_assert_eq(tmpdb_init(&db), 0);
    size_t klen = store_kept_image(db.path, &b, key, sizeof key);
    for (int enc = 1; enc <= 2; enc++) { /* without the dictionary, and with it */
        /* 16 MiB of zeros in some 16 KB, in a row that claims its body's length */
        size_t n = 0;
        unsigned char *row = bomb_row((size_t)16 << 20, (uint32_t)b.docs[1].len, enc, &n);
        cr_assert_lt(n, 32768);
        set_rows(db.path, &b, row, n);
        set_encoding(db.path, &b, enc);
        every_reader_refuses(db.path, &b, key, klen, "inflates past its length");
        free(row);
        /* a small row that claims more than STORE_BODY_MAX, or more than
         * deflate can make of its bytes (refused before a buffer is made) */
        uint32_t claims[] = {(uint32_t)STORE_BODY_MAX + 1, (uint32_t)(200u << 20)};
        for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
            row = bomb_row(4096, claims[i], enc, &n);
            set_rows(db.path, &b, row, n);
            every_reader_refuses(db.path, &b, key, klen, "claims too much");
            free(row);
        }
    }
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* ---- the preset dictionary (encoding 2) ---- */

Test(store, the_dictionary_of_encoding_2_never_changes)
{
    char digest[72];
    cr_assert_eq(im_sha256_digest(store__dict1, store__dict1_len, digest), 0);
    cr_assert_str_eq(
        digest, "sha256:572383c9247cf6796bd991e607cdebcc0653d93c293b9d809cc7d952c203777b",
        "store/store_dict.c changed. Its bytes are part of the on-disk format: every row "
        "of encoding 2 was deflated against them and reads back only with them. Put it "
        "back as it was; a new dictionary is a new encoding number.");
    /* the id each encoding-2 stream names it by */
    cr_assert_eq(adler32(1, store__dict1, (uInt)store__dict1_len), 0x606f3c23u);
}

/* The character a JSON escape \\c stands for (not \\u), 0 if none. */
static char json_escape(char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/':
        return c;
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    default:
        return 0;
    }
}

/* Unescapes the JSON string at *s (just past its opening quote) into a
 * malloc'd buffer, NUL-terminated; *s ends past the closing quote. ASCII
 * escapes only. */
static char *json_string(const char **s, size_t *len)
{
    const char *p = *s;
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    cr_assert_not_null(out);
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            out[n++] = *p;
        } else if (p[1] == 'u') {
            char hex[5] = {0};
            memcpy(hex, p + 2, 4);
            unsigned long c = strtoul(hex, NULL, 16);
            cr_assert_lt(c, 0x80ul, "non-ASCII \\u%s", hex);
            out[n++] = (char)c;
            p += 5;
        } else {
            out[n++] = json_escape(p[1]);
            cr_assert_neq(out[n - 1], 0, "bad escape");
            p++;
        }
    }
    cr_assert_eq(*p, '"', "unterminated string");
    out[n] = '\0';
    *s = p + 1;
    *len = n;
    return out;
}

/* The python fixture's documents (tests/cases/render-python-3.7-slim/
 * bundle.json: its list, 7 manifests and 7 configs) with real digests, the
 * list as the root. */
static void python_documents(struct im_bundle *b)
{
    char path[1024], name[32];
    long flen = 0;
    snprintf(path, sizeof path, "%s/tests/cases/render-python-3.7-slim/bundle.json",
             IMGMETA_SOURCE_DIR);
    char *text = slurp(path, &flen);
    text[flen] = '\0';
    im_bundle_init(b);
    snprintf(b->root_digest, sizeof b->root_digest, "d0");
    const char *p = strstr(text, "\"docs\"");
    const char *end = strstr(text, "\"blobs\"");
    cr_assert(p && end);
    while ((p = strstr(p, "\"mediaType\": \"")) && p < end) {
        size_t mlen = 0, blen = 0;
        p += strlen("\"mediaType\": \"");
        char *media = json_string(&p, &mlen);
        const char *body_at = strstr(p, "\"body\": \"");
        cr_assert_not_null(body_at);
        p = body_at + strlen("\"body\": \"");
        char *body = json_string(&p, &blen);
        snprintf(name, sizeof name, "d%zu", b->ndocs);
        add_doc(b, name, media, body, blen);
        free(body);
        free(media);
    }
    cr_assert_eq(b->ndocs, 15, "a list, 7 manifests and 7 configs");
    real_digests(b);
    free(text);
}

Test(store, real_documents_are_kept_with_the_dictionary_and_come_back_byte_exact)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle b, got;
    char sql[512];
    cr_assert_eq(tmpdb_init(&db), 0);
    python_documents(&b);
    im_bundle_init(&got);
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &b, 100);
    store_close(s);

    /* every row is deflated with the dictionary, and together they are well
     * under what deflating each document alone makes of them */
    int64_t rows = 0, alone = 0;
    for (size_t i = 0; i < b.ndocs; i++) {
        int enc = -1;
        int64_t n = -1;
        size_t zn = 0;
        snprintf(sql, sizeof sql, DOC_ROW, b.docs[i].digest);
        row_of(db.path, sql, &enc, &n);
        cr_expect_eq(enc, STORE__DEFLATE_DICT1, "%s (%zu bytes): encoding %d",
                     b.docs[i].media_type, b.docs[i].len, enc);
        unsigned char *z = zrow(b.docs[i].body, b.docs[i].len, 0, NULL, 0, &zn);
        rows += n;
        alone += (int64_t)zn;
        free(z);
    }
    cr_expect_lt(rows * 100, alone * 85, "%lld bytes with the dictionary, %lld alone",
                 (long long)rows, (long long)alone);

    s = open_ok(db.path);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

Test(store, a_row_of_encoding_1_still_reads)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle b, got;
    struct im_doc d;
    char key[256];
    size_t n = 0;
    cr_assert_eq(tmpdb_init(&db), 0);
    size_t klen = store_kept_image(db.path, &b, key, sizeof key);
    /* the config and the answer as a release before the dictionary wrote them */
    unsigned char *row =
        zrow(b.docs[1].body, b.docs[1].len, (uint32_t)b.docs[1].len, NULL, 0, &n);
    set_rows(db.path, &b, row, n);
    set_encoding(db.path, &b, STORE__DEFLATE);

    im_bundle_init(&got);
    struct store *s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    cr_assert_eq(store_find_doc(s, b.docs[1].digest, &d, &err), 0, "%s", err.msg);
    cr_assert(d.len == b.docs[1].len && memcmp(d.body, b.docs[1].body, d.len) == 0);
    free(d.body);
    cr_assert_eq(
        get_rendered_is(s, key, klen, (const char *)b.docs[1].body, b.docs[1].len), 0);
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    free(row);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

Test(store, a_row_naming_another_dictionary_is_refused_as_corrupt)
{
    struct tmpdb db;
    struct im_bundle b;
    char key[256];
    size_t n = 0;
    static const char other[] = "{\"schemaVersion\":2,\"mediaType\":\"application/";
    cr_assert_eq(tmpdb_init(&db), 0);
    size_t klen = store_kept_image(db.path, &b, key, sizeof key);
    const void *body = b.docs[1].body;
    uint32_t len = (uint32_t)b.docs[1].len;
    /* encoding 2, its stream made with another dictionary */
    unsigned char *row = zrow(body, len, len, other, sizeof other - 1, &n);
    set_rows(db.path, &b, row, n);
    every_reader_refuses(db.path, &b, key, klen, "another dictionary");
    free(row);
    /* encoding 2, its stream made with none */
    row = zrow(body, len, len, NULL, 0, &n);
    set_rows(db.path, &b, row, n);
    every_reader_refuses(db.path, &b, key, klen, "no dictionary");
    free(row);
    /* encoding 1, its stream made with encoding 2's dictionary */
    row = zrow(body, len, len, store__dict1, store__dict1_len, &n);
    set_rows(db.path, &b, row, n);
    set_encoding(db.path, &b, STORE__DEFLATE);
    every_reader_refuses(db.path, &b, key, klen, "encoding 1 with a dictionary");
    free(row);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

Test(store, a_database_of_the_previous_schema_still_loads)
{
    struct tmpdb db;
    struct im_error err = {{0}};
    struct im_bundle b, got;
    char sql[512], key[256];
    cr_assert_eq(tmpdb_init(&db), 0);
    kept_image(&b);
    im_bundle_init(&got);
    /* schema 4, as the previous release wrote it: bodies as they are. The
     * tag, its root (tiny: kept as it is) and an answer through the store,
     * the large documents by hand once the encoding columns are gone. */
    struct im_bundle root;
    im_bundle_init(&root);
    snprintf(root.root_digest, sizeof root.root_digest, "%s", b.root_digest);
    add_doc(&root, b.docs[0].digest, b.docs[0].media_type, b.docs[0].body, b.docs[0].len);
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    struct store *s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    put_ok(s, &ref, &root, 100);
    size_t klen = rendered_key(key, sizeof key, b.root_digest, "j");
    put_rendered_ok(s, &ref, key, klen, "old answer", 10);
    store_close(s);
    im_bundle_free(&root);
    raw_exec(db.path, MEMBERS_AS_SCHEMA_5 "ALTER TABLE documents DROP COLUMN encoding;"
                                          " ALTER TABLE rendered DROP COLUMN encoding;"
                                          " PRAGMA user_version = 4");
    for (size_t i = 1; i < b.ndocs; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO documents(digest, media_type, body, fetched_at)"
                 " VALUES ('%s', '%s', ?1, 100)",
                 b.docs[i].digest, b.docs[i].media_type);
        raw_exec_blob(db.path, sql, b.docs[i].body, b.docs[i].len);
        snprintf(sql, sizeof sql, "INSERT INTO members VALUES ('%s', '%s', 0)",
                 b.root_digest, b.docs[i].digest);
        raw_exec(db.path, sql);
    }

    s = open_ok(db.path);
    set_renderer_ok(s, "r", NULL);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    cr_assert_str_eq(get_tag_ok(s, &ref).digest, b.root_digest);
    cr_assert_eq(get_rendered_is(s, key, klen, "old answer", 10), 0);
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    /* the old rows were not rewritten: they say encoding 0 and hold the body */
    int enc = -1;
    int64_t n = -1;
    snprintf(sql, sizeof sql, DOC_ROW, b.docs[1].digest);
    row_of(db.path, sql, &enc, &n);
    cr_assert(enc == 0 && n == (int64_t)b.docs[1].len, "encoding %d, %lld bytes", enc,
              (long long)n);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* A document row damaged on disk is refused when read; the next resolution
 * that brings the same document writes it again, so the image loads byte
 * exact once more instead of sending every later render upstream. */
Test(store, a_damaged_document_is_written_again_by_the_next_put)
{
    struct tmpdb db;
    struct im_bundle b, got;
    struct im_error err = {{0}};
    char key[256], sel[512];
    cr_assert_eq(tmpdb_init(&db), 0);
    (void)store_kept_image(db.path, &b, key, sizeof key);
    snprintf(sel, sizeof sel, "SELECT body FROM documents WHERE digest = '%s'",
             b.docs[1].digest);
    size_t n = 0;
    unsigned char *row = raw_body(db.path, sel, &n);
    cr_assert_gt(n, 40);
    row[n / 2] ^= 0x20;
    set_rows(db.path, &b, row, n);

    struct store *s = open_ok(db.path);
    im_bundle_init(&got);
    cr_expect_eq(store_load(s, b.root_digest, &got, &err), IM_ESTORE, "%s", err.msg);
    im_bundle_free(&got);
    struct im_ref ref = tag_ref("library/python", "3.7-slim");
    put_ok(s, &ref, &b, 200);
    im_bundle_init(&got);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got.ndocs, b.ndocs);
    const struct im_doc *d = im_bundle_find_doc(&got, b.docs[1].digest);
    cr_assert_not_null(d);
    cr_expect_eq(d->len, b.docs[1].len);
    cr_expect_eq(memcmp(d->body, b.docs[1].body, d->len), 0,
                 "the document is intact again");
    store_close(s);
    free(row);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* Flips a bit in the middle of document d's row in the database at path, a
 * row kept as it is (encoding 0). */
static void flip_kept_byte(const char *path, const struct im_doc *d)
{
    char sel[512], upd[512];
    snprintf(sel, sizeof sel, "SELECT encoding FROM documents WHERE digest = '%s'",
             d->digest);
    cr_assert_eq(raw_int(path, sel, 0), 0, "the document is kept as it is");
    snprintf(sel, sizeof sel, "SELECT body FROM documents WHERE digest = '%s'",
             d->digest);
    size_t n = 0;
    unsigned char *row = raw_body(path, sel, &n);
    cr_assert_eq(n, d->len);
    row[n / 2] ^= 0x01;
    snprintf(upd, sizeof upd, "UPDATE documents SET body = ?1 WHERE digest = '%s'",
             d->digest);
    raw_exec_blob(path, upd, row, n);
    free(row);
}

/* A document kept as it is (encoding 0: small, or not worth deflating) has no
 * checksum of its own: a damaged byte is caught by hashing it against its
 * digest when it is read, then refused like a damaged deflated row, not
 * served; the next put writes it again. */
Test(store, a_damaged_document_kept_as_it_is_is_refused_and_written_again)
{
    struct tmpdb db;
    struct im_bundle b, got;
    struct im_doc known;
    struct im_error err = {{0}};
    cr_assert_eq(tmpdb_init(&db), 0);
    make_image(&b, 1);
    real_digests(&b);
    struct im_ref ref = tag_ref("library/python", "1");
    struct store *s = open_ok(db.path);
    put_ok(s, &ref, &b, 100);
    store_close(s);
    const char *dg = b.docs[1].digest;
    flip_kept_byte(db.path, &b.docs[1]);

    s = open_ok(db.path);
    im_bundle_init(&got);
    cr_expect_eq(store_load(s, b.root_digest, &got, &err), IM_ESTORE,
                 "a damaged row is not served");
    cr_expect(strstr(err.msg, "do not hash") != NULL, "%s", err.msg);
    im_bundle_free(&got);
    cr_expect_eq(store_find_doc(s, dg, &known, &err), IM_ESTORE, "%s", err.msg);
    put_ok(s, &ref, &b, 200);
    im_bundle_init(&got);
    cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
    assert_same_bundle(&b, &got);
    store_close(s);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* Documents named by sha384 and sha512 digests (a registry may name them so)
 * are kept under those and checked against them when read: intact they load,
 * and a damaged byte is refused, by `cache check` too. */
Test(store, documents_under_sha384_and_sha512_digests_are_checked_too)
{
    static const char *const algos[] = {"sha384", "sha512"};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        struct tmpdb db;
        struct im_bundle b, got;
        struct im_error err = {{0}};
        cr_assert_eq(tmpdb_init(&db), 0);
        cr_assert_eq(build_image(&b, 3), 0);
        digests_as(&b, algos[a]);
        struct im_ref ref = tag_ref("library/python", "3");
        struct store *s = open_ok(db.path);
        put_ok(s, &ref, &b, 100);
        im_bundle_init(&got);
        cr_assert_eq(store_load(s, b.root_digest, &got, &err), 0, "%s", err.msg);
        assert_same_bundle(&b, &got);
        im_bundle_free(&got);
        cr_expect_eq(store_check(s, &err), 0, "%s: %s", algos[a], err.msg);
        store_close(s);

        flip_kept_byte(db.path, &b.docs[1]);
        s = open_ok(db.path);
        im_bundle_init(&got);
        cr_expect_eq(store_load(s, b.root_digest, &got, &err), IM_ESTORE, "%s", algos[a]);
        cr_expect(strstr(err.msg, "do not hash") != NULL, "%s: %s", algos[a], err.msg);
        cr_expect_eq(store_check(s, &err), IM_ESTORE, "%s", algos[a]);
        store_close(s);
        im_bundle_free(&got);
        im_bundle_free(&b);
        tmpdb_remove(&db);
    }
}

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

/* The member rows of two mixed images in the closed database at path: a
 * sha256 digest as its 32 bytes, any other as its text. Then purging a's tag
 * collects what only a held, nothing b holds too. */
static void keys_then_purge(const char *path, const struct im_ref *ra,
                            const struct im_bundle *b)
{
    struct im_error err = {{0}};
    struct store_removed r;
    struct im_blob bl;
    cr_expect_eq(raw_int(path, SHA256_ROOTS, 0), 12, "every row of both images");
    cr_expect_eq(raw_int(path, SHA256_MEMBERS, 0), 8, "root, config and 2 layers, x2");
    cr_expect_eq(raw_int(path, TEXT_MEMBERS, 0), 4, "the sha512 and capitalised ones");
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

/* A cached image's member rows take a sha256 digest's 32 bytes, not its 71
 * characters; any other digest is kept as its text and comes back exactly. */
Test(store, member_rows_keep_sha256_digests_as_32_bytes_and_others_as_text)
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
    keys_then_purge(db.path, &ra, &b);
    im_bundle_free(&a);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* A database of schema 5 (members as text) opens after the upgrade and
 * answers every cached image, tag, layer fact and rendered answer from what
 * it holds; its member rows are keys from then on, and gc still tells what is
 * held from what is not. */
Test(store, a_schema_5_database_opens_and_serves_the_same_answers)
{
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
    cr_expect_eq(store_file_schema(db.path), 6, "a current file, read as it is");
    raw_exec(db.path, MEMBERS_AS_SCHEMA_5 "PRAGMA user_version = 5");
    cr_assert_eq(raw_int(db.path, TEXT_MEMBERS, 0), 12, "schema 5 keeps text");
    cr_expect_eq(store_file_schema(db.path), 5, "known before the open migrates it");
    cr_expect_eq(raw_int(db.path, TEXT_MEMBERS, 0), 12,
                 "... and reading it changed nothing");

    s = open_ok(db.path);
    cr_expect_eq(store_migrated_from(s, &ms), 5, "the open says it migrated schema 5");
    cr_expect_eq(store_schema_version(), 6);
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

#else /* STORE_TSAN_MAIN: the threaded scenario alone, for ThreadSanitizer */

int main(void)
{
    struct tmpdb db;
    struct worker w[NTHREADS];
    struct im_error err = {{0}};
    struct store *s = NULL;
    int failures = 0;
    if (tmpdb_init(&db) != 0)
        return 2;
    s = store_open(db.path, &err);
    if (!s) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        failures = 1;
        goto out;
    }
    if (store_set_tag_memory(s, 16, &err) != 0 || run_workers(s, w) != 0)
        failures++;
    for (unsigned i = 0; i < NTHREADS; i++) {
        failures += w[i].failures;
        if (w[i].failures)
            fprintf(stderr, "thread %u: %d failures, first: %s\n", w[i].id, w[i].failures,
                    w[i].first);
    }
    printf("%s: %d threads x %d rounds, %d failures\n", failures ? "FAIL" : "ok",
           NTHREADS, NROUNDS, failures);
out:
    store_close(s);
    tmpdb_remove(&db);
    return failures ? 1 : 0;
}

#endif
