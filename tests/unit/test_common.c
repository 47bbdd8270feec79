/* test_common.c - common/: the digest and SipHash wrappers over libcrypto
 * (each algorithm wired to the one it names; their failures under failing
 * allocations are oom_common.c's), and the shared helpers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "im.h"
#include "json.h"
#include "manifest.h"
#include "metrics.h"
#include "outcome.h"
#include "sha256.h"
#include "siphash.h"

static void check_algo(const char *algo, const char *data, size_t len, const char *hex)
{
    char d[IM_DIGEST_MAX];
    cr_assert_eq(im_digest_compute(algo, data, len, d, sizeof d), 0);
    cr_assert_eq(strncmp(d, algo, 6), 0);
    cr_assert_eq(d[6], ':');
    cr_assert_str_eq(d + 7, hex, "%s of %zu bytes", algo, len);
}

/* FIPS 180-4's "abc" example in each algorithm: each name is wired to its
 * own algorithm (libcrypto's own tests cover the algorithms). */
Test(digest, each_name_is_its_algorithm)
{
    check_algo("sha256", "abc", 3,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_algo(
        "sha384", "abc", 3,
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc23"
        "58baeca134c825a7");
    check_algo(
        "sha512", "abc", 3,
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8"
        "36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

/* What the store writes for a digest kept as 32 bytes reads back as the text
 * the registry client computed. */
Test(digest, sha256_text_is_the_digest_of_its_hash)
{
    static const unsigned char md[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}; /* of "" */
    char text[72], digest[72];
    im_sha256_text(md, text);
    cr_assert_eq(im_sha256_digest("", 0, digest), 0);
    cr_assert_str_eq(text, digest);
}

Test(digest, compute_refuses_unknown_algorithms_and_small_buffers)
{
    char d[IM_DIGEST_MAX];
    cr_expect_eq(im_digest_compute("md5", "", 0, d, sizeof d), IM_EINVAL);
    cr_expect_str_eq(d, "", "no digest is left behind");
    cr_expect_eq(im_digest_compute("sha512", "", 0, d, 100), IM_EINVAL);
    cr_expect_str_eq(d, "");
    cr_expect_eq(im_digest_compute("sha256", "", 0, d, 72), 0);
    cr_expect_str_eq(
        d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- SipHash ---- */

/* The key 00 01 .. 0f, as the reference's vectors have it. */
static struct im_siphash_key reference_key(void)
{
    uint8_t kb[16];
    for (int i = 0; i < 16; i++)
        kb[i] = (uint8_t)i;
    return im_siphash_key_from_bytes(kb);
}

/* SipHash-2-4-128 of the 15 bytes 00 01 .. 0e under reference_key, as hex:
 * the output's 16 bytes in order. */
static int reference_hash(char hex[33])
{
    uint8_t msg[15];
    uint64_t out[2];
    struct im_siphash_key key = reference_key();
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    int rc = im_siphash128(&key, msg, sizeof msg, out);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned)(out[i / 8] >> (8 * (i % 8))) & 0xff);
    return rc;
}

/* The reference implementation's published vector (vectors.h,
 * vectors_sip128, 15 bytes): the key, the 16-byte output and the words out[]
 * are wired as SipHash-2-4-128 has them (a 64-bit output, 1-3 rounds or the
 * words swapped would each differ). */
Test(siphash, reference_vector)
{
    char hex[33];
    cr_assert_eq(reference_hash(hex), 0);
    cr_assert_str_eq(hex, "5493e99933b0a8117e08ec0f97cfc3d9");
}

Test(siphash, another_key_another_hash)
{
    uint8_t kb[16] = {0};
    struct im_siphash_key a = im_siphash_key_from_bytes(kb);
    kb[15] = 1;
    struct im_siphash_key b = im_siphash_key_from_bytes(kb);
    uint64_t ha[2], hb[2];
    cr_assert_eq(im_siphash128(&a, "python:3.7-slim", 15, ha), 0);
    cr_assert_eq(im_siphash128(&b, "python:3.7-slim", 15, hb), 0);
    cr_assert(ha[0] != hb[0] && ha[1] != hb[1]);
    cr_assert_eq(im_siphash128(&a, "python:3.7-slim", 15, hb), 0);
    cr_assert(ha[0] == hb[0] && ha[1] == hb[1], "a thread's context is keyed anew");
}

#define SIP_THREADS 4

struct sip_thread {
    char hex[33];
    int rc;
};

static void *sip_thread(void *arg)
{
    struct sip_thread *t = arg;
    for (int i = 0; i < 1000 && t->rc == 0; i++)
        t->rc = reference_hash(t->hex);
    return NULL;
}

/* The HTTP threads hash with one key at once: each thread with a context of
 * its own, freed when it ends (the sanitizer builds would see a leak). */
Test(siphash, threads_hash_at_once_alike)
{
    pthread_t th[SIP_THREADS];
    struct sip_thread t[SIP_THREADS] = {{"", 0}};
    for (int i = 0; i < SIP_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, sip_thread, &t[i]), 0);
    for (int i = 0; i < SIP_THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(t[i].rc, 0, "thread %d", i);
        cr_expect_str_eq(t[i].hex, "5493e99933b0a8117e08ec0f97cfc3d9", "thread %d", i);
    }
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

/* ---- the JSON writer (json.h) and the buffer's sticky writes ---- */

/* What the writer writes is what jansson dumps for the same values. */
Test(json, writes_what_jansson_dumps)
{
    static const char *const strs[] = {"plain",
                                       "quote \" and \\ backslash",
                                       "ctl \x01\x1f\b\f\n\r\t",
                                       "caf\xc3\xa9 \xe2\x80\xa8",
                                       "a/b",
                                       ""};
    struct im_jw w = {.b = {.max = 4096}};
    json_t *want = json_object(), *arr = json_array();
    im_jw_open(&w, '{');
    im_jw_kstr(&w, "k", "v");
    im_jw_kint(&w, "n", -42);
    im_jw_kstr(&w, "none", NULL);
    json_object_set_new(want, "k", json_string("v"));
    json_object_set_new(want, "n", json_integer(-42));
    json_object_set_new(want, "none", json_null());
    im_jw_key(&w, "list");
    im_jw_strs(&w, (char *const *)strs, sizeof strs / sizeof strs[0]);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        json_array_append_new(arr, json_string(strs[i]));
    json_object_set_new(want, "list", arr);
    im_jw_key(&w, "empty");
    im_jw_open(&w, '[');
    im_jw_close(&w, ']');
    json_object_set_new(want, "empty", json_array());
    im_jw_close(&w, '}');
    char *got = NULL, *dumped = json_dumps(want, JSON_COMPACT);
    size_t len = 0;
    cr_assert_eq(im_buf_finish(&w.b, &got, &len), 0);
    cr_expect_str_eq(got, dumped);
    cr_expect_eq(len, strlen(dumped));
    free(got);
    free(dumped);
    json_decref(want);
}

Test(json, a_byte_that_is_not_utf8_is_written_as_a_question_mark)
{
    struct im_jw w = {.b = {.max = 64}};
    char *got = NULL;
    size_t len = 0;
    im_jw_str(&w, "a\xff"
                  "b\xc3");
    cr_assert_eq(im_buf_finish(&w.b, &got, &len), 0);
    cr_expect_str_eq(got, "\"a?b?\"");
    free(got);
}

/* put/putn keep the first failure and do nothing after it; finish says it. */
Test(json, failures_are_kept_and_said_at_the_end)
{
    struct im_jw w = {.b = {.max = 10}};
    char *got = (char *)"not touched";
    size_t len = 7;
    im_jw_str(&w, "a string longer than ten bytes");
    cr_expect_eq(w.b.err, IM_ETOOBIG);
    im_jw_str(&w, "x"); /* nothing happens after a failure */
    cr_expect_eq(im_buf_finish(&w.b, &got, &len), IM_ETOOBIG);
    cr_expect_null(got);
    cr_expect_eq(len, 0);
    cr_expect_null(w.b.p, "the buffer is released");

    struct im_jw deep = {.b = {.max = 4096}};
    for (int i = 0; i < IM_JW_DEPTH + 2; i++)
        im_jw_open(&deep, '[');
    cr_expect_eq(im_buf_finish(&deep.b, &got, &len), IM_EINTERNAL,
                 "nesting past IM_JW_DEPTH is refused, not written wrong");

    struct im_buf empty = {.max = 1};
    cr_assert_eq(im_buf_finish(&empty, &got, &len), 0);
    cr_expect_str_eq(got, "", "nothing appended gives \"\"");
    free(got);
}

/* reserve makes the room a body of that size needs in one allocation, never
 * more than max allows; appends then fit without growing. */
Test(buf, reserve_is_one_allocation_within_max)
{
    struct im_buf b = {.max = 100};
    cr_assert_eq(im_buf_reserve(&b, 1000), 0);
    cr_expect_eq(b.cap, 101, "max + 1, not what was asked");
    cr_expect_str_eq(b.p, "");
    char *p = b.p;
    cr_assert_eq(im_buf_append(&b, "0123456789", 10), 0);
    cr_expect_eq(b.p, p, "no growth");
    cr_expect_eq(im_buf_append(&b, p, 91), IM_ETOOBIG);
    free(b.p);
}
