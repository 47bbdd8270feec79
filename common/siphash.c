/* siphash.c - SipHash-2-4-128 through libcrypto's SIPHASH MAC.
 *
 * A MAC context is heavy to make (two allocations, and the MAC's reference
 * count, which every thread shares, taken and given back), while keying one
 * again is cheap (EVP_MAC_init with the key: no allocation). So each thread
 * keeps one context, made at its first hash and freed when the thread ends,
 * and every hash keys it with that call's key. Measured on a 150-byte key, as
 * the answers file hashes (make bench-hash; 2 cores shared with other work,
 * so ranges over runs), one thread, then two hashing at once: this thread's
 * context keyed again 146-157 ns, 163-185 ns a hash; a copy of a keyed
 * context per hash (EVP_MAC_CTX_dup) 164-180 ns, 221-278 ns; a context made
 * and keyed per hash 249-306 ns, 370-390 ns; the hand-written SipHash this
 * replaced 218-230 ns, 233-411 ns. */
#include "siphash.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <string.h>

#define SIP_OUT 16 /* SipHash-2-4-128: 16 bytes */

static pthread_key_t ctx_slot; /* each thread's context; freed at thread end */
static pthread_once_t ctx_slot_once = PTHREAD_ONCE_INIT;
static int ctx_slot_rc = -1; /* pthread_key_create's, 0 once ctx_slot exists */

static void ctx_free(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void make_slot(void)
{
    ctx_slot_rc = pthread_key_create(&ctx_slot, ctx_free);
}

/* A new SIPHASH context with a 16-byte output, not keyed yet: 0 with *out;
 * IM_EINTERNAL when libcrypto runs without its default provider, the only
 * one it ships SipHash in (with its FIPS provider alone, say); else
 * IM_ENOMEM. libcrypto's error queue cannot tell the two apart (a fetch whose
 * allocation fails says "unsupported" too); it is emptied: the failure is
 * this return value. */
static int new_ctx(EVP_MAC_CTX **out)
{
    size_t size = SIP_OUT;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    int rc = mac || OSSL_PROVIDER_available(NULL, "default") ? IM_ENOMEM : IM_EINTERNAL;
    *out = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds a reference of its own */
    if (*out && EVP_MAC_CTX_set_params(*out, params))
        return 0;
    EVP_MAC_CTX_free(*out);
    *out = NULL;
    ERR_clear_error();
    return rc;
}

/* This thread's context, made at its first call: 0 with *out, or new_ctx's
 * failure (IM_ENOMEM too when the thread-specific slot cannot be had). */
static int thread_ctx(EVP_MAC_CTX **out)
{
    if (pthread_once(&ctx_slot_once, make_slot) != 0 || ctx_slot_rc != 0)
        return IM_ENOMEM;
    *out = pthread_getspecific(ctx_slot);
    if (*out)
        return 0;
    int rc = new_ctx(out);
    if (rc == 0 && pthread_setspecific(ctx_slot, *out) != 0) {
        EVP_MAC_CTX_free(*out);
        *out = NULL;
        rc = IM_ENOMEM;
    }
    return rc;
}

/* The little-endian word at p. */
static uint64_t le_word(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = w << 8 | p[i];
    return w;
}

struct im_siphash_key im_siphash_key_from_bytes(const uint8_t bytes[16])
{
    struct im_siphash_key k;
    memcpy(k.bytes, bytes, sizeof k.bytes);
    return k;
}

int im_siphash128(const struct im_siphash_key *key, const void *data, size_t n,
                  uint64_t out[2])
{
    EVP_MAC_CTX *ctx = NULL;
    unsigned char mac[SIP_OUT];
    size_t len = 0;
    out[0] = out[1] = 0;
    int rc = thread_ctx(&ctx);
    if (rc)
        return rc;
    /* with a context made as above, none of these allocates or can fail */
    if (!EVP_MAC_init(ctx, key->bytes, sizeof key->bytes, NULL) ||
        !EVP_MAC_update(ctx, data, n) || !EVP_MAC_final(ctx, mac, &len, sizeof mac) ||
        len != SIP_OUT) {
        ERR_clear_error();
        return IM_EINTERNAL;
    }
    out[0] = le_word(mac);
    out[1] = le_word(mac + 8);
    return 0;
}
