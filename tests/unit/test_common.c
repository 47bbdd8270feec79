/* test_common.c - common/: SHA-256 against the FIPS 180-2 / NIST vectors,
 * SipHash-2-4-128 against the reference implementation's vectors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "im.h"
#include "sha256.h"
#include "manifest.h"
#include "metrics.h"
#include "outcome.h"
#include "siphash.h"

static void check(const void *data, size_t len, const char *hex)
{
    char d[72];
    im_sha256_digest(data, len, d);
    cr_assert_eq(strncmp(d, "sha256:", 7), 0);
    cr_assert_str_eq(d + 7, hex);
}

Test(sha256, empty)
{
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(sha256, abc)
{
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(sha256, two_blocks)
{
    const char *s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(s, strlen(s),
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(sha256, million_a)
{
    size_t n = 1000000;
    char *buf = malloc(n);
    cr_assert_not_null(buf);
    memset(buf, 'a', n);
    check(buf, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(buf);
}

/* Block-boundary lengths (55, 56, 63, 64, 65 bytes) exercise the padding. */
Test(sha256, padding_boundaries)
{
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
    };
    char buf[65];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check(buf, v[i].n, v[i].hex);
}

Test(sha256, incremental_equals_oneshot)
{
    const char *s = "The quick brown fox jumps over the lazy dog, repeatedly, to cross "
                    "several 64-byte block boundaries in odd-sized pieces.";
    unsigned char a[32], b[32];
    im_sha256(s, strlen(s), a);
    struct im_sha256_ctx ctx;
    im_sha256_init(&ctx);
    for (size_t i = 0, step = 1; i < strlen(s); i += step, step = step % 13 + 1) {
        size_t n = strlen(s) - i < step ? strlen(s) - i : step;
        im_sha256_update(&ctx, s + i, n);
    }
    im_sha256_final(&ctx, b);
    cr_assert_eq(memcmp(a, b, 32), 0);
}

static void check_algo(const char *algo, const char *data, size_t len, const char *hex)
{
    char d[IM_DIGEST_MAX];
    cr_assert_eq(im_digest_compute(algo, data, len, d, sizeof d), 0);
    cr_assert_eq(strncmp(d, algo, 6), 0);
    cr_assert_eq(d[6], ':');
    cr_assert_str_eq(d + 7, hex, "%s of %zu bytes", algo, len);
}

Test(sha512, vectors)
{
    const char *two =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
        "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    char buf[240];
    memset(buf, 'a', sizeof buf);
    check_algo(
        "sha512", "", 0,
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0"
        "ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
    check_algo(
        "sha512", "abc", 3,
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8"
        "36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    check_algo(
        "sha512", two, strlen(two),
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4"
        "331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
    check_algo(
        "sha512", buf, 111,
        "fa9121c7b32b9e01733d034cfc78cbf67f926c7ed83e82200ef86818196921760b4beff48404df81"
        "1b953828274461673c68d04e297b0eb7b2b4d60fc6b566a2");
    check_algo(
        "sha512", buf, 112,
        "c01d080efd492776a1c43bd23dd99d0a2e626d481e16782e75d54c2503b5dc32bd05f0f1ba33e568"
        "b88fd2d970929b719ecbb152f58f130a407c8830604b70ca");
}

Test(sha384, vectors)
{
    const char *two =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
        "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    char buf[240];
    memset(buf, 'a', sizeof buf);
    check_algo(
        "sha384", "", 0,
        "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fb"
        "d51ad2f14898b95b");
    check_algo(
        "sha384", "abc", 3,
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc23"
        "58baeca134c825a7");
    check_algo(
        "sha384", two, strlen(two),
        "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db9"
        "66c3e9fa91746039");
    check_algo(
        "sha384", buf, 239,
        "e247c35f4bc1aa38026f8880c8c97305545d00d3f859e00c57d1c1f0a176b3c6b749c4eb081f08bd"
        "0fba500969cd056a");
}

Test(digest, compute_refuses_unknown_algorithms_and_small_buffers)
{
    char d[IM_DIGEST_MAX];
    cr_expect_eq(im_digest_compute("md5", "", 0, d, sizeof d), -1);
    cr_expect_eq(im_digest_compute("sha512", "", 0, d, 100), -1);
    cr_expect_eq(im_digest_compute("sha256", "", 0, d, 72), 0);
    cr_expect_str_eq(
        d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Error messages quote user input cut at byte limits; JSON needs valid UTF-8. */
Test(utf8, invalid_sequences_become_question_marks)
{
    char s1[] = "caf\xc3\xa9 ok";           /* valid: untouched */
    char s2[] = "cut \xe2\x82";             /* a 3-byte sequence cut short */
    char s3[] = "\xc0\xaf overlong";        /* overlong '/' */
    char s4[] = "\xed\xa0\x80 surrogate";   /* U+D800 */
    char s5[] = "\xf4\x90\x80\x80 too big"; /* past U+10FFFF */
    char s6[] = "\xf0\x9f\x90\xb3 whale";   /* valid 4-byte */
    im_utf8_sanitize(s1);
    im_utf8_sanitize(s2);
    im_utf8_sanitize(s3);
    im_utf8_sanitize(s4);
    im_utf8_sanitize(s5);
    im_utf8_sanitize(s6);
    cr_expect_str_eq(s1, "caf\xc3\xa9 ok");
    cr_expect_str_eq(s2, "cut ??");
    cr_expect_str_eq(s3, "?? overlong");
    cr_expect_str_eq(s4, "??? surrogate");
    cr_expect_str_eq(s5, "???? too big");
    cr_expect_str_eq(s6, "\xf0\x9f\x90\xb3 whale");
}

/* Buffers fed from the network stop at their cap and keep what they had. */
Test(buf, append_is_bounded_and_terminated)
{
    struct im_buf b = {.max = 8};
    cr_assert_eq(im_buf_append(&b, "abcde", 5), 0);
    cr_assert_str_eq(b.p, "abcde");
    cr_assert_eq(im_buf_append(&b, "fghi", 4), IM_ETOOBIG);
    cr_assert_eq(b.len, 5, "nothing appended past the cap");
    cr_assert_str_eq(b.p, "abcde");
    cr_assert_eq(im_buf_append(&b, "fgh", 3), 0);
    cr_assert_str_eq(b.p, "abcdefgh");
    struct im_buf z = {0};
    cr_assert_eq(im_buf_append(&z, "x", 1), IM_ETOOBIG, "max 0 accepts nothing");
    free(b.p);
}

Test(csv, entries_are_trimmed_and_empty_ones_kept)
{
    static const char *const want[] = {"a", "b c", "", "d"};
    const char *p = " a ,\tb c\t,, d ,", *item;
    size_t len, n = 0;
    while (im_csv_next(&p, &item, &len)) {
        cr_assert_lt(n, 4, "too many entries");
        cr_expect_eq(len, strlen(want[n]), "entry %zu", n);
        cr_expect_eq(strncmp(item, want[n], len), 0, "entry %zu", n);
        n++;
    }
    cr_expect_eq(n, 4, "a trailing comma ends the list: %zu entries", n);
    p = NULL;
    cr_expect(!im_csv_next(&p, &item, &len), "NULL is an empty list");
    p = "";
    cr_expect(!im_csv_next(&p, &item, &len), "\"\" is an empty list");
}

Test(common, path_dir_is_the_directory_part)
{
    char d[16], small[8];
    cr_assert_eq(im_path_dir("/var/lib/x.db", d, sizeof d), 0);
    cr_assert_str_eq(d, "/var/lib");
    cr_assert_eq(im_path_dir("x.db", d, sizeof d), 0);
    cr_assert_str_eq(d, ".");
    cr_assert_eq(im_path_dir("/x.db", d, sizeof d), 0);
    cr_assert_str_eq(d, "/");
    cr_assert_eq(im_path_dir("a/b", d, sizeof d), 0);
    cr_assert_str_eq(d, "a");
    cr_assert_eq(im_path_dir("/var/lib/x.db", small, sizeof small), -1, "does not fit");
    cr_assert_str_eq(small, "");
}

Test(common, deadline_is_that_far_on_the_monotonic_clock)
{
    long waits[] = {0, 1, 999, 1000, 1500, 60000};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        struct timespec now, d = im_deadline_after_ms(waits[i]);
        clock_gettime(CLOCK_MONOTONIC, &now);
        cr_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L, "tv_nsec %ld", d.tv_nsec);
        long long ahead = (long long)(d.tv_sec - now.tv_sec) * 1000 +
                          (d.tv_nsec - now.tv_nsec) / 1000000;
        cr_expect(ahead <= waits[i] && ahead >= waits[i] - 50, "%ld ms: %lld ms ahead",
                  waits[i], ahead);
    }
}

/* Rendered rows are stored under this hash: its values must not change from
 * one version to the next (these are the ones databases already hold), and
 * hashing in pieces must give what hashing at once does. */
Test(common, fnv1a_values_do_not_change)
{
    cr_expect_eq(im_fnv1a(IM_FNV1A_START, "", 0), 0x14650fb0739d0383ULL);
    cr_expect_eq(im_fnv1a(IM_FNV1A_START, "a", 1), 0x44bd8ad473cd9906ULL);
    cr_expect_eq(im_fnv1a(IM_FNV1A_START, "foobar", 6), 0x88fad7c0a8ff07f2ULL);
    cr_expect_eq(im_fnv1a(im_fnv1a(IM_FNV1A_START, "foo", 3), "bar", 3),
                 im_fnv1a(IM_FNV1A_START, "foobar", 6));
}

/* The algorithm part of a digest, as the registry client and `cache check`
 * read it before hashing. */
Test(common, digest_algo_is_the_name_before_the_colon)
{
    char algo[8];
    cr_expect_eq(im_digest_algo("sha256:abc", algo, sizeof algo), 0);
    cr_expect_str_eq(algo, "sha256");
    cr_expect_eq(im_digest_algo("sha512:", algo, sizeof algo), 0);
    cr_expect_str_eq(algo, "sha512");
    cr_expect_eq(im_digest_algo("sha256", algo, sizeof algo), -1, "no colon");
    cr_expect_eq(im_digest_algo(":abc", algo, sizeof algo), -1, "no name");
    cr_expect_eq(im_digest_algo("sha256abc:x", algo, sizeof algo), -1, "does not fit");
}

/* SipHash-2-4-128 under the key 00 01 .. 0f of the messages 00 01 .. (n - 1):
 * the reference implementation's published vectors (vectors.h,
 * vectors_sip128), the output's 16 bytes in hex. Lengths around the 8-byte
 * words, and the longest. */
static const struct {
    size_t n;
    const char *hex;
} sip128_vectors[] = {
    {0, "a3817f04ba25a8e66df67214c7550293"},  {1, "da87c1d86b99af44347659119b22fc45"},
    {7, "a1f1ebbed8dbc153c0b84aa61ff08239"},  {8, "3b62a9ba6258f5610f83e264f31497b4"},
    {9, "264499060ad9baabc47f8b02bb6d71ed"},  {15, "5493e99933b0a8117e08ec0f97cfc3d9"},
    {16, "6ee2a4ca67b054bbfd3315bf85230577"}, {17, "473d06e8738db89854c066c47ae47740"},
    {63, "5150d1772f50834a503e069a973fbd7c"},
};

Test(siphash, reference_vectors)
{
    uint8_t kb[16], msg[64];
    for (int i = 0; i < 16; i++)
        kb[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    struct im_siphash_key key = im_siphash_key_from_bytes(kb);
    for (size_t v = 0; v < sizeof sip128_vectors / sizeof sip128_vectors[0]; v++) {
        uint64_t out[2];
        char hex[33];
        im_siphash128(&key, msg, sip128_vectors[v].n, out);
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x",
                     (unsigned)(out[i / 8] >> (8 * (i % 8))) & 0xff);
        cr_assert_str_eq(hex, sip128_vectors[v].hex, "%zu bytes", sip128_vectors[v].n);
    }
}

Test(siphash, another_key_another_hash)
{
    uint8_t kb[16] = {0};
    struct im_siphash_key a = im_siphash_key_from_bytes(kb);
    kb[15] = 1;
    struct im_siphash_key b = im_siphash_key_from_bytes(kb);
    uint64_t ha[2], hb[2];
    im_siphash128(&a, "python:3.7-slim", 15, ha);
    im_siphash128(&b, "python:3.7-slim", 15, hb);
    cr_assert(ha[0] != hb[0] && ha[1] != hb[1]);
}

/* One table names every outcome: the header and log word, the metric label
 * dashboards already use, and the stored counter's name. */
Test(outcome, every_outcome_has_its_words)
{
    static const char *const want[][3] = {
        [IM_OUTCOME_HIT] = {"hit", "hit", "hits"},
        [IM_OUTCOME_MISS] = {"miss", "miss", "misses"},
        [IM_OUTCOME_COALESCED] = {"coalesced", "coalesced", "coalesced"},
        [IM_OUTCOME_REVALIDATED] = {"revalidated", "revalidated", "revalidated"},
        [IM_OUTCOME_STALE] = {"stale", "stale", "stale"},
        [IM_OUTCOME_NEGATIVE] = {"negative", "negative_hit", "negative_hits"},
    };
    for (int o = IM_OUTCOME_HIT; o < IM_OUTCOME__COUNT; o++) {
        const struct im_outcome_words *w = im_outcome_words((enum im_outcome)o);
        cr_expect_str_eq(w->word, want[o][0]);
        cr_expect_str_eq(w->metric, want[o][1]);
        cr_expect_str_eq(w->stored, want[o][2]);
    }
    cr_expect_null(im_outcome_words(IM_OUTCOME_NONE)->metric, "NONE is not counted");
    cr_expect_str_eq(im_outcome_words((enum im_outcome)99)->word, "-");
}

/* /metrics counts image answers by outcome, under the table's labels. */
Test(outcome, metrics_count_by_outcome)
{
    char *text = NULL;
    size_t len = 0;
    im_metrics_reset();
    im_metric_outcome(IM_OUTCOME_STALE);
    im_metric_outcome(IM_OUTCOME_STALE);
    im_metric_outcome(IM_OUTCOME_NEGATIVE);
    im_metric_outcome(IM_OUTCOME_NONE);
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    im_metrics_write(f);
    fclose(f);
    cr_expect_not_null(
        strstr(text, "imgmeta_cache_lookups_total{outcome=\"stale\"} 2\n"));
    cr_expect_not_null(
        strstr(text, "imgmeta_cache_lookups_total{outcome=\"negative_hit\"} 1\n"));
    cr_expect_not_null(strstr(text, "imgmeta_cache_lookups_total{outcome=\"hit\"} 0\n"));
    cr_expect_null(strstr(text, "outcome=\"-\""));
    free(text);
    im_metrics_reset();
}

/* ---- manifests (manifest.h) ---- */

Test(manifest, kinds_of_media_types)
{
    cr_expect_eq(im_manifest_kind(IM_MT_DOCKER_LIST), IM_MANIFEST_LIST);
    cr_expect_eq(im_manifest_kind(IM_MT_OCI_INDEX), IM_MANIFEST_LIST);
    cr_expect_eq(im_manifest_kind(IM_MT_DOCKER_V2), IM_MANIFEST_IMAGE);
    cr_expect_eq(im_manifest_kind(IM_MT_OCI_MANIFEST), IM_MANIFEST_IMAGE);
    cr_expect_eq(im_manifest_kind(IM_MT_DOCKER_V1), IM_MANIFEST_SCHEMA1);
    cr_expect_eq(im_manifest_kind(IM_MT_DOCKER_V1_SIGNED), IM_MANIFEST_SCHEMA1);
    cr_expect_eq(im_manifest_kind("application/vnd.oci.image.config.v1+json"),
                 IM_MANIFEST_UNKNOWN);
    cr_expect_eq(im_manifest_kind(""), IM_MANIFEST_UNKNOWN);
    cr_expect_eq(im_manifest_kind(NULL), IM_MANIFEST_UNKNOWN);
}

static const char *body_type(const char *text)
{
    static char out[128];
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "%s", text);
    const char *t = im_manifest_body_type(j);
    snprintf(out, sizeof out, "%s", t ? t : "(none)");
    json_decref(j);
    return out;
}

Test(manifest, a_body_names_its_type_or_its_shape_shows_it)
{
    cr_expect_str_eq(body_type("{\"mediaType\":\"" IM_MT_DOCKER_V2 "\",\"config\":{}}"),
                     IM_MT_DOCKER_V2);
    cr_expect_str_eq(body_type("{\"schemaVersion\":1,\"fsLayers\":[]}"), IM_MT_DOCKER_V1);
    cr_expect_str_eq(body_type("{\"schemaVersion\":2,\"manifests\":[]}"),
                     IM_MT_OCI_INDEX);
    cr_expect_str_eq(body_type("{\"schemaVersion\":2,\"config\":{},\"layers\":[]}"),
                     IM_MT_OCI_MANIFEST);
    cr_expect_str_eq(body_type("{\"schemaVersion\":2}"), "(none)");
}

static int collect_child(void *ud, enum im_manifest_child role, const json_t *desc,
                         const char *digest)
{
    char *out = ud;
    (void)desc;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%c:%s ", "MCL"[role], digest);
    return strcmp(digest, "stop") == 0 ? 7 : 0;
}

static const char *children(const char *text, enum im_manifest_kind kind, int *rc)
{
    static char out[512];
    out[0] = '\0';
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "%s", text);
    *rc = im_manifest_children(j, kind, collect_child, out);
    json_decref(j);
    return out;
}

Test(manifest, the_digests_a_manifest_names)
{
    int rc = -1;
    cr_expect_str_eq(children("{\"manifests\":[{\"digest\":\"a\"},{\"size\":1},"
                              "{\"digest\":\"b\"}]}",
                              IM_MANIFEST_LIST, &rc),
                     "M:a M:b ");
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(children("{\"config\":{\"digest\":\"c\"},\"layers\":[{\"digest\":"
                              "\"l1\"},{\"digest\":\"l2\"}]}",
                              IM_MANIFEST_IMAGE, &rc),
                     "C:c L:l1 L:l2 ");
    /* schema1 names its layers by blobSum, repeated for empty layers */
    cr_expect_str_eq(children("{\"fsLayers\":[{\"blobSum\":\"x\"},{\"blobSum\":\"y\"},"
                              "{\"blobSum\":\"x\"}]}",
                              IM_MANIFEST_SCHEMA1, &rc),
                     "L:x L:y ");
    cr_expect_str_eq(
        children("{\"config\":{\"digest\":\"c\"}}", IM_MANIFEST_UNKNOWN, &rc), "");
    cr_expect_str_eq(
        children("{\"manifests\":[{\"digest\":\"stop\"},{\"digest\":\"b\"}]}",
                 IM_MANIFEST_LIST, &rc),
        "M:stop ");
    cr_expect_eq(rc, 7, "a non-zero return stops the walk and is returned");
    cr_expect_str_eq(
        children("{\"manifests\":{\"digest\":\"a\"}}", IM_MANIFEST_LIST, &rc), "",
        "not an array: nothing");
}
