/* sha256.c - digests through libcrypto's EVP interface. Each algorithm is
 * fetched once (EVP_sha256() and the like would fetch it again at every
 * call, through libcrypto's locked method store); each digest is made with a
 * context of its own (EVP_Digest), so no state is shared but the algorithm. */
#include "sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <stdatomic.h>
#include <string.h>

static const char hex[] = "0123456789abcdef";

static const struct {
    const char *name;    /* as a digest names it */
    const char *libname; /* as libcrypto does */
    size_t len;          /* of the raw hash */
} algos[] = {
    {"sha256", "SHA2-256", 32},
    {"sha384", "SHA2-384", 48},
    {"sha512", "SHA2-512", 64},
};
#define NALGOS (sizeof algos / sizeof algos[0])

/* Each algorithm as fetched at its first use, NULL before. A fetch that fails
 * is tried again at the next call. Kept for the process's life: libcrypto
 * frees its own state at exit, after anything this file could run then. */
static _Atomic(EVP_MD *) fetched[NALGOS];

static EVP_MD *algo_md(size_t a)
{
    EVP_MD *md = atomic_load(&fetched[a]);
    if (md)
        return md;
    md = EVP_MD_fetch(NULL, algos[a].libname, NULL);
    if (!md)
        return NULL;
    EVP_MD *first = NULL;
    if (!atomic_compare_exchange_strong(&fetched[a], &first, md)) {
        EVP_MD_free(md); /* another thread fetched it meanwhile */
        md = first;
    }
    return md;
}

/* The hash of data with algos[a] into md (algos[a].len bytes): 0;
 * IM_EINTERNAL when libcrypto runs with neither of the providers it ships
 * SHA-2 in (default, FIPS); else IM_ENOMEM: what can fail is an allocation
 * (the algorithm's fetch, the context, the provider's state). libcrypto's
 * error queue cannot tell the two apart (a fetch whose allocation fails says
 * "unsupported" too); it is emptied: the failure is this return value. */
static int hash(size_t a, const void *data, size_t len, unsigned char *md)
{
    EVP_MD *m = algo_md(a);
    unsigned int n = 0;
    if (m && EVP_Digest(data, len, md, &n, m, NULL) && n == algos[a].len)
        return 0;
    ERR_clear_error();
    if (!m && !OSSL_PROVIDER_available(NULL, "default") &&
        !OSSL_PROVIDER_available(NULL, "fips"))
        return IM_EINTERNAL;
    return IM_ENOMEM;
}

/* "name:" then the hex of md (len bytes) into out, which has room. */
static void write_text(const char *name, const unsigned char *md, size_t len, char *out)
{
    size_t nl = strlen(name);
    memcpy(out, name, nl);
    out[nl] = ':';
    for (size_t i = 0; i < len; i++) {
        out[nl + 1 + 2 * i] = hex[md[i] >> 4];
        out[nl + 2 + 2 * i] = hex[md[i] & 15];
    }
    out[nl + 1 + 2 * len] = '\0';
}

void im_sha256_text(const unsigned char md[32], char out[72])
{
    write_text("sha256", md, 32, out);
}

int im_sha256_digest(const void *data, size_t len, char out[72])
{
    return im_digest_compute("sha256", data, len, out, 72);
}

int im_digest_compute(const char *algo, const void *data, size_t len, char *out, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t a = 0;
    int rc;
    if (n > 0)
        out[0] = '\0';
    while (a < NALGOS && strcmp(algo, algos[a].name) != 0)
        a++;
    if (a == NALGOS || n < strlen(algos[a].name) + 1 + 2 * algos[a].len + 1)
        return IM_EINVAL;
    rc = hash(a, data, len, md);
    if (rc == 0)
        write_text(algos[a].name, md, algos[a].len, out);
    return rc;
}

int im_digest_algo(const char *digest, char *algo, size_t n)
{
    size_t al = strcspn(digest, ":");
    if (digest[al] != ':' || al == 0 || al >= n)
        return -1;
    memcpy(algo, digest, al);
    algo[al] = '\0';
    return 0;
}
