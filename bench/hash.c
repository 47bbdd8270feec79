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
 *   (threads hashing with one key, as the HTTP threads do).
 * Numbers are printed, never judged. Exit 0, or 1 when a hash disagrees with
 * itself. */
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
        im_siphash128(run->key, key, sizeof key, h);
        sum += h[0] ^ h[1];
    }
    run->seconds = now_s() - t0;
    run->rc = sum == 0 ? -1 : 0; /* also keeps the loop from being optimised away */
    return NULL;
}

/* Nanoseconds per call on each of nthreads threads at once: the best of
 * rounds rounds. */
static double time_siphash(const struct im_siphash_key *key, int nthreads, long calls,
                           int rounds)
{
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        pthread_t th[MAX_THREADS];
        struct sip_run run[MAX_THREADS];
        double worst = 0;
        for (int i = 0; i < nthreads; i++) {
            run[i] = (struct sip_run){key, calls, 0, 0};
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
    uint8_t seed[16];
    for (int i = 0; i < 16; i++)
        seed[i] = (uint8_t)(i * 37 + 11);
    struct im_siphash_key key = im_siphash_key_from_bytes(seed);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
    double one = time_siphash(&key, 1, 1000000, rounds);
    double all = time_siphash(&key, nthreads, 1000000, rounds);
    if (one < 0 || all < 0)
        return -1;
    printf("answers-file key hash, 150 bytes:        %9.1f ns per call (1 thread)\n",
           one);
    printf("answers-file key hash, 150 bytes:        %9.1f ns per call (%d threads at "
           "once)\n",
           all, nthreads);
    return 0;
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
