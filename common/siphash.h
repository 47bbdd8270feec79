/* siphash.h - SipHash-2-4 with a 128-bit output (Aumasson and Bernstein), a
 * keyed hash: without the key, nobody can choose inputs whose hashes collide.
 * Used where a hash alone stands for a key that clients choose (the answers
 * file's index, api/afile.c). */
#ifndef IMGMETA_SIPHASH_H
#define IMGMETA_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 16-byte key, read as two little-endian 64-bit words. */
struct im_siphash_key {
    uint64_t k0, k1;
};

/* The key from its 16 bytes (little-endian words, as the reference does). */
struct im_siphash_key im_siphash_key_from_bytes(const uint8_t bytes[16]);

/* SipHash-2-4-128 of n bytes at data: out[0] holds the output's first 8
 * bytes as a little-endian word, out[1] the next 8. */
void im_siphash128(const struct im_siphash_key *key, const void *data, size_t n,
                   uint64_t out[2]);

#endif
