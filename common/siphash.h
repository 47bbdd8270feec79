/* siphash.h - SipHash-2-4 with a 128-bit output (Aumasson and Bernstein), a
 * keyed hash: without the key, nobody can choose inputs whose hashes collide.
 * Used where a hash alone stands for a key that clients choose (the answers
 * file's index, api/afile.c). The hashing is OpenSSL's libcrypto (its SIPHASH
 * MAC with a 16-byte output).
 *
 * Thread-safety: thread-safe; a key is a plain value, and each thread hashes
 * with a libcrypto context of its own (made at its first hash, freed when the
 * thread ends). */
#ifndef IMGMETA_SIPHASH_H
#define IMGMETA_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#include "im.h"

/* The 16-byte key, as the reference takes it (two little-endian words). */
struct im_siphash_key {
    uint8_t bytes[16];
};

/* The key from its 16 bytes. */
struct im_siphash_key im_siphash_key_from_bytes(const uint8_t bytes[16]);

/* SipHash-2-4-128 of n bytes at data: out[0] holds the output's first 8 bytes
 * as a little-endian word, out[1] the next 8. 0; IM_ENOMEM when libcrypto
 * could not allocate this thread's context (only ever at a thread's first
 * hash); IM_EINTERNAL when this libcrypto has no SipHash (a configuration
 * with its FIPS provider alone). On failure out is zero, never a hash. */
int im_siphash128(const struct im_siphash_key *key, const void *data, size_t n,
                  uint64_t out[2]) IM_WUR;

#endif
