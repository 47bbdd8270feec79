/* test_store_codec.c - how bodies are kept: deflated when that saves space
 * (with the preset dictionary of encoding 2), byte-exact back, and a damaged
 * or hostile row (inflate bomb, another dictionary) refused as corrupt, never
 * served; rows of earlier encodings and schemas still read. */
#define ZLIB_CONST /* next_in is a pointer to const */
#include <zlib.h>

#include "store_int.h" /* the codec's encodings and its dictionary */
#include "store_test.h"

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

/* The encoding and the length of the row a statement selects (one row). */
static void row_of(const char *path, const char *sql, int *encoding, int64_t *len)
{
    *encoding = (int)raw_int(path, sql, 0);
    *len = raw_int(path, sql, 1);
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
    if (keeps_rendered()) {
        row_of(db.path, "SELECT encoding, length(body) FROM rendered", &enc, &n);
        cr_expect_eq(enc, STORE__DEFLATE_DICT1,
                     "the answer is deflated with the dictionary");
        cr_expect_lt(n, (int64_t)alen / 4, "%lld of %zu bytes", (long long)n, alen);
        cr_expect_eq(st.rendered_bytes, n, "stats count stored bytes");
    }
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
    cr_assert_eq(get_rendered_is(s, key, klen, answer, alen), rendered_or_none(0));
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
    store_close(s);
    free(answer);
    im_bundle_free(&got);
    im_bundle_free(&b);
    tmpdb_remove(&db);
}

/* What each reader of the stored image says now: every one refuses (never
 * other bytes, never a crash), and so does the check (of the config and the
 * answer, where rendered answers are kept; of the config alone on
 * PostgreSQL). */
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
    cr_expect_eq(store_get_rendered(s, key, klen, &body, &len, &err),
                 rendered_or_none(IM_ESTORE), "%s", what);
    cr_expect_null(body);
    cr_expect_eq(store_check(s, &err), IM_ESTORE, "%s", what);
    const char *counted = keeps_rendered() ? "2 of 4 stored bodies are corrupt"
                                           : "1 of 3 stored bodies are corrupt";
    cr_expect(strstr(err.msg, counted), "%s: %s", what, err.msg);
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
    snprintf(upd, sizeof upd, "UPDATE documents SET body = $1 WHERE digest = '%s'",
             b->docs[1].digest);
    raw_exec_blob(path, upd, row, n);
    if (keeps_rendered())
        raw_exec_blob(path, "UPDATE rendered SET body = $1", row, n);
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
    raw_exec(db.path, "UPDATE documents SET encoding = 3 WHERE encoding = 2");
    if (keeps_rendered())
        raw_exec(db.path, "UPDATE rendered SET encoding = 7");
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
    snprintf(sql, sizeof sql, "UPDATE documents SET encoding = %d WHERE digest = '%s'",
             enc, b->docs[1].digest);
    raw_exec(path, sql);
    if (keeps_rendered()) {
        snprintf(sql, sizeof sql, "UPDATE rendered SET encoding = %d", enc);
        raw_exec(path, sql);
    }
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
        get_rendered_is(s, key, klen, (const char *)b.docs[1].body, b.docs[1].len),
        rendered_or_none(0));
    cr_assert_eq(store_check(s, &err), 0, "%s", err.msg);
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
    snprintf(upd, sizeof upd, "UPDATE documents SET body = $1 WHERE digest = '%s'",
             d->digest);
    raw_exec_blob(path, upd, row, n);
    free(row);
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
    SQLITE_ONLY("an SQLite file of schema 4 migrated (PostgreSQL's schema migrates on "
                "its own)");
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
                 " VALUES ('%s', '%s', $1, 100)",
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
