/* oom_common.c - common/'s hashing when libcrypto cannot allocate. With its
 * n-th allocation and every later one failing, for n = 0, 1, ... until the
 * call succeeds, a digest (im_digest_compute: its context made) and a
 * thread's first SipHash (im_siphash128: the thread's context made) are each
 * the right hash, or IM_ENOMEM with no hash written: never another hash, and
 * never IM_EINTERNAL (which says SipHash is missing).
 *
 * The checks start where the daemon is when it hashes: libcrypto started and
 * its default provider loaded (curl_global_init, at the start), SipHash
 * fetched once (the answers file is made at the start). libcrypto 3.0 does
 * not survive failed allocations before that: its start-up leaves a lock
 * NULL, and an algorithm's first fetch can leave it unfetchable for the
 * process (its name registered, not its implementation). That is libcrypto's,
 * and would only ever show as IM_ENOMEM.
 *
 * A plain program (ctest unit.oom_common), not a Criterion test: libcrypto
 * takes other allocation functions only before its first allocation, and
 * Criterion's own libraries (libgit2) make one before any test starts. Prints
 * a line per check; exit 0 when every check holds, 1 when one does not. */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im.h"
#include "sha256.h"
#include "siphash.h"

#define MAX_ALLOCS 10000

static _Atomic long allocs_left = LONG_MAX; /* then every allocation fails */

static void *failing_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return atomic_fetch_sub(&allocs_left, 1) > 0 ? malloc(n) : NULL;
}

static void *failing_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return atomic_fetch_sub(&allocs_left, 1) > 0 ? realloc(p, n) : NULL;
}

static void plain_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* One call of a check with at most n allocations: 0 when it gave the right
 * hash, 1 when IM_ENOMEM and nothing written, -1 (with why) otherwise. */
typedef int attempt_fn(long n, char *why, size_t whylen);

static int digest_attempt(long n, char *why, size_t whylen)
{
    static const char want[] =
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    char d[IM_DIGEST_MAX] = "untouched";
    atomic_store(&allocs_left, n);
    int rc = im_digest_compute("sha512", "abc", 3, d, sizeof d);
    atomic_store(&allocs_left, LONG_MAX);
    if (rc == 0 && strcmp(d, want) == 0)
        return 0;
    if (rc == IM_ENOMEM && d[0] == '\0')
        return 1;
    snprintf(why, whylen, "rc %d, digest \"%.80s\"", rc, d);
    return -1;
}

struct sip_try {
    int rc;
    uint64_t out[2];
};

static void *sip_first_hash(void *arg)
{
    struct sip_try *t = arg;
    uint8_t kb[16], msg[15];
    for (int i = 0; i < 16; i++)
        kb[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    struct im_siphash_key key = im_siphash_key_from_bytes(kb);
    t->rc = im_siphash128(&key, msg, sizeof msg, t->out);
    return NULL;
}

/* The reference's vector for 15 bytes (vectors_sip128), on a new thread. */
static int siphash_attempt(long n, char *why, size_t whylen)
{
    /* 5493e99933b0a8117e08ec0f97cfc3d9 as two little-endian words */
    static const uint64_t want[2] = {0x11a8b03399e99354ULL, 0xd9c3cf970fec087eULL};
    struct sip_try t = {-1, {1, 1}};
    pthread_t th;
    atomic_store(&allocs_left, n);
    int prc = pthread_create(&th, NULL, sip_first_hash, &t);
    if (prc == 0)
        pthread_join(th, NULL);
    atomic_store(&allocs_left, LONG_MAX);
    if (prc != 0) {
        snprintf(why, whylen, "cannot start a thread");
        return -1;
    }
    if (t.rc == 0 && t.out[0] == want[0] && t.out[1] == want[1])
        return 0;
    if (t.rc == IM_ENOMEM && t.out[0] == 0 && t.out[1] == 0)
        return 1;
    snprintf(why, whylen, "rc %d, hash %016llx %016llx", t.rc,
             (unsigned long long)t.out[0], (unsigned long long)t.out[1]);
    return -1;
}

/* Tries with n = 0, 1, ... allocations until one succeeds: 0 when every
 * try before it was IM_ENOMEM with nothing written (and there was one). */
static int check(const char *what, attempt_fn *attempt)
{
    char why[200] = "";
    long n = 0;
    int r = 1;
    for (; n < MAX_ALLOCS && r == 1; n++)
        r = attempt(n, why, sizeof why);
    n--;
    if (r == 0 && n > 0) {
        printf("ok   %s: IM_ENOMEM with 0 to %ld allocations, right with %ld\n", what,
               n - 1, n);
        return 0;
    }
    if (r == 0)
        printf("FAIL %s: made without any allocation, so nothing failed\n", what);
    else if (r == 1)
        printf("FAIL %s: still IM_ENOMEM with %d allocations\n", what, MAX_ALLOCS);
    else
        printf("FAIL %s: with %ld allocations: %s\n", what, n, why);
    return -1;
}

int main(void)
{
    if (!CRYPTO_set_mem_functions(failing_malloc, failing_realloc, plain_free)) {
        printf("FAIL libcrypto allocated before main: cannot make it fail\n");
        return 1;
    }
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (!md) {
        printf("FAIL libcrypto does not start\n");
        return 1;
    }
    EVP_MD_free(md);
    char why[200] = "";
    if (siphash_attempt(LONG_MAX, why, sizeof why) != 0) {
        printf("FAIL SipHash: %s\n", why);
        return 1;
    }
    int failed = 0;
    failed += check("a sha512 digest", digest_attempt) != 0;
    failed += check("a thread's first SipHash", siphash_attempt) != 0;
    printf("%d passed, %d failed\n", 2 - failed, failed);
    return failed ? 1 : 0;
}
