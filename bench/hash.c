/* hash.c - bench-hash: what hashing costs where imgmeta hashes on a request's
 * path, with the project's own hashing functions (common/sha256.h,
 * common/siphash.h).
 *
 *   bench-hash [--rounds N]
 *
 * Prints, each the best of N rounds (default 5: on a shared machine the best
 * round is the least disturbed one):
 * - a config blob's digest check at the --max-config-bytes default (8 MiB),
 *   as the registry client checks it: hash, then compare with the digest it
 *   was asked by; sha256 and sha512, in MB/s and microseconds per check;
 * - the same for a 2 KiB manifest, in microseconds;
 * - the answers file's key hash (api/afile.c), SipHash-2-4-128 of a 150-byte
 *   key, in nanoseconds per call: on one thread, and on every CPU at once
 *   (threads hashing with one key, as the HTTP threads do); im_siphash128,
 *   then the two other ways libcrypto's SIPHASH MAC could be used, for
 *   comparison (common/siphash.c says why it keeps a context per thread).
 * Numbers are printed, never judged. Exit 0, or 1 when a hash fails or
 * disagrees with itself. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "im.h"
#include "sha256.h"
#include "siphash.h"

#define CONFIG_BYTES (8u << 20)
#define MANIFEST_BYTES 2048u
#define KEY_BYTES 150u
#define MAX_THREADS 64

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One digest check as the registry client makes it (registry/resolve.c):
 * the body's digest in expected's algorithm, compared with expected. */
static int check(const char *algo, const unsigned char *p, size_t n, const char *expected)
{
    char computed[IM_DIGEST_MAX];
    if (im_digest_compute(algo, p, n, computed, sizeof computed) != 0)
        return -1;
    return strcmp(computed, expected) == 0 ? 0 : -1;
}

/* A way to hash an answers-file key: im_siphash128, or one of the others. */
typedef int sip_fn(const struct im_siphash_key *key, const void *data, size_t n,
                   uint64_t out[2]);

static EVP_MAC *sip_mac;       /* the others': SIPHASH, fetched once */
static EVP_MAC_CTX *sip_keyed; /* ... and a context keyed with the bench's key */

static int sip_out(EVP_MAC_CTX *ctx, const void *data, size_t n, uint64_t out[2])
{
    unsigned char mac[16];
    size_t len = 0;
    if (!ctx || !EVP_MAC_update(ctx, data, n) || !EVP_MAC_final(ctx, mac, &len, 16) ||
        len != 16)
        return -1;
    memcpy(out, mac, 16); /* the bench only compares: byte order does not matter */
    return 0;
}

/* A copy of a keyed context per hash (EVP_MAC_CTX_dup). */
static int sip_by_dup(const struct im_siphash_key *key, const void *data, size_t n,
                      uint64_t out[2])
{
    (void)key;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(sip_keyed);
    int rc = sip_out(ctx, data, n, out);
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/* A context made and keyed per hash. */
static int sip_by_new(const struct im_siphash_key *key, const void *data, size_t n,
                      uint64_t out[2])
{
    size_t size = 16;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(sip_mac);
    int rc = ctx && EVP_MAC_init(ctx, key->bytes, sizeof key->bytes, params)
                 ? sip_out(ctx, data, n, out)
                 : -1;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/* Seconds per check of n bytes: the best of rounds rounds of reps checks. */
static double time_check(const char *algo, const unsigned char *p, size_t n, int reps,
                         int rounds)
{
    char expected[IM_DIGEST_MAX];
    double best = 1e30;
    if (im_digest_compute(algo, p, n, expected, sizeof expected) != 0)
        return -1;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++)
            if (check(algo, p, n, expected) != 0)
                return -1;
        double t = (now_s() - t0) / reps;
        best = t < best ? t : best;
    }
    return best;
}

struct sip_run {
    sip_fn *hash;
    const struct im_siphash_key *key;
    long calls;
    double seconds; /* out */
    int rc;         /* out */
};

/* Hashes calls distinct 150-byte keys (an answers-file key is a root digest,
 * a reference, a representation: about that long). */
static void *sip_thread(void *arg)
{
    struct sip_run *run = arg;
    char key[KEY_BYTES];
    uint64_t sum = 0, h[2];
    memset(key, 'k', sizeof key);
    memcpy(key, "sha256:5034026ade9da66094ba22fe2ad3d2eac5d7cb1b", 47);
    double t0 = now_s();
    for (long i = 0; i < run->calls; i++) {
        memcpy(key + 60, &i, sizeof i);
        if (run->hash(run->key, key, sizeof key, h) != 0)
            break;
        sum += h[0] ^ h[1];
    }
    run->seconds = now_s() - t0;
    run->rc = sum == 0 ? -1 : 0; /* also keeps the loop from being optimised away */
    return NULL;
}

/* Nanoseconds per call on each of nthreads threads at once: the best of
 * rounds rounds. */
static double time_siphash(sip_fn *hash, const struct im_siphash_key *key, int nthreads,
                           long calls, int rounds)
{
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        pthread_t th[MAX_THREADS];
        struct sip_run run[MAX_THREADS];
        double worst = 0;
        for (int i = 0; i < nthreads; i++) {
            run[i] = (struct sip_run){hash, key, calls, 0, 0};
            if (pthread_create(&th[i], NULL, sip_thread, &run[i]) != 0)
                return -1;
        }
        for (int i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < nthreads; i++) {
            if (run[i].rc != 0)
                return -1;
            worst = run[i].seconds > worst ? run[i].seconds : worst;
        }
        best = worst < best ? worst : best;
    }
    return best / (double)calls * 1e9;
}

static int digests(int rounds)
{
    unsigned char *p = malloc(CONFIG_BYTES);
    static const char *const algos[] = {"sha256", "sha512"};
    int rc = 0;
    if (!p)
        return -1;
    for (size_t i = 0; i < CONFIG_BYTES; i++) /* JSON-like bytes, not zeros */
        p[i] = (unsigned char)("{\"Cmd\":[\"sh\"]}, "[i % 16] ^ (i >> 12 & 1));
    for (size_t a = 0; a < 2 && !rc; a++) {
        double big = time_check(algos[a], p, CONFIG_BYTES, 4, rounds);
        double small = time_check(algos[a], p, MANIFEST_BYTES, 4000, rounds);
        if (big < 0 || small < 0) {
            rc = -1;
            break;
        }
        printf("%s check, 8 MiB config:   %8.1f MB/s  %9.1f us per check\n", algos[a],
               CONFIG_BYTES / big / 1e6, big * 1e6);
        printf("%s check, 2 KiB manifest:            %9.2f us per check\n", algos[a],
               small * 1e6);
    }
    free(p);
    return rc;
}

static int siphash(int rounds)
{
    static const struct {
        const char *what;
        sip_fn *hash;
    } ways[] = {
        {"im_siphash128 (its thread's context)", im_siphash128},
        {"other: EVP_MAC_CTX_dup per hash", sip_by_dup},
        {"other: a context made per hash", sip_by_new},
    };
    uint8_t seed[16];
    size_t size = 16;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    for (int i = 0; i < 16; i++)
        seed[i] = (uint8_t)(i * 37 + 11);
    struct im_siphash_key key = im_siphash_key_from_bytes(seed);
    sip_mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    sip_keyed = sip_mac ? EVP_MAC_CTX_new(sip_mac) : NULL;
    if (!sip_keyed || !EVP_MAC_init(sip_keyed, seed, sizeof seed, params))
        return -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
    int rc = 0;
    printf("answers-file key hash, 150 bytes, ns per call:   1 thread  %d at once\n",
           nthreads);
    for (size_t w = 0; w < sizeof ways / sizeof ways[0] && !rc; w++) {
        double one = time_siphash(ways[w].hash, &key, 1, 1000000, rounds);
        double all = time_siphash(ways[w].hash, &key, nthreads, 1000000, rounds);
        if (one < 0 || all < 0)
            rc = -1;
        else
            printf("  %-44s %8.1f  %8.1f\n", ways[w].what, one, all);
    }
    EVP_MAC_CTX_free(sip_keyed);
    EVP_MAC_free(sip_mac);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = 5;
    if (argc == 3 && strcmp(argv[1], "--rounds") == 0) {
        char *end = NULL;
        long n = strtol(argv[2], &end, 10);
        if (!end || *end || n < 1 || n > 1000) {
            fprintf(stderr, "bench-hash: --rounds wants 1 to 1000\n");
            return 2;
        }
        rounds = (int)n;
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench-hash [--rounds N]\n");
        return 2;
    }
    if (digests(rounds) != 0 || siphash(rounds) != 0) {
        fprintf(stderr, "bench-hash: a hash failed or disagreed with itself\n");
        return 1;
    }
    return 0;
}
