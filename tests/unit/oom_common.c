/* oom_common.c - common/'s hashing when libcrypto cannot allocate. With its
 * n-th allocation and every later one failing, for n = 0, 1, ... until the
 * call succeeds, a digest (im_digest_compute: its context made) is the right
 * hash, or IM_ENOMEM with no hash written: never another hash.
 *
 * The checks start where the daemon is when it hashes: libcrypto started and
 * its default provider loaded (curl_global_init, at the start). libcrypto 3.0
 * does not survive failed allocations before that: its start-up leaves a lock
 * NULL. That is libcrypto's, and would only ever show as IM_ENOMEM.
 *
 * A plain program (ctest unit.oom_common), not a Criterion test: libcrypto
 * takes other allocation functions only before its first allocation, and
 * Criterion's own libraries (libgit2) make one before any test starts. Prints
 * a line per check; exit 0 when every check holds, 1 when one does not. */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im.h"
#include "sha256.h"

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
    int failed = check("a sha512 digest", digest_attempt) != 0;
    printf("%d passed, %d failed\n", 1 - failed, failed);
    return failed ? 1 : 0;
}
