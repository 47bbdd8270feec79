/* siphash.c - SipHash-2-4-128: 2 compression rounds per 8-byte word, 4
 * finalization rounds for each of the two output words. Bit for bit the
 * reference's (tests/unit/test_common.c checks its published vectors). */
#include "siphash.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

/* The little-endian word at p (n <= 8 bytes, the rest zero). */
static uint64_t le_word(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

struct im_siphash_key im_siphash_key_from_bytes(const uint8_t bytes[16])
{
    struct im_siphash_key k = {le_word(bytes, 8), le_word(bytes + 8, 8)};
    return k;
}

void im_siphash128(const struct im_siphash_key *key, const void *data, size_t n,
                   uint64_t out[2])
{
    const uint8_t *p = data;
    uint64_t v[4] = {key->k0 ^ 0x736f6d6570736575ULL, key->k1 ^ 0x646f72616e646f6dULL,
                     key->k0 ^ 0x6c7967656e657261ULL, key->k1 ^ 0x7465646279746573ULL};
    v[1] ^= 0xee; /* the 128-bit variant */
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* x86-64 and the like: little-endian */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        m = le_word(p + i, 8);
#endif
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }
    uint64_t last = le_word(p + whole, n % 8) | (uint64_t)(n & 0xff) << 56;
    v[3] ^= last;
    sipround(v);
    sipround(v);
    v[0] ^= last;
    v[2] ^= 0xee;
    for (int i = 0; i < 4; i++)
        sipround(v);
    out[0] = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for (int i = 0; i < 4; i++)
        sipround(v);
    out[1] = v[0] ^ v[1] ^ v[2] ^ v[3];
}
