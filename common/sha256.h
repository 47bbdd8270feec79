/* sha256.h - small self-contained SHA-256 and SHA-384/512 (FIPS 180-4) for
 * digest checks.
 *
 * Thread-safety: pure functions and a caller-owned context; reentrant. */
#ifndef IM_SHA256_H
#define IM_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct im_sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;       /* total bytes fed so far */
    unsigned char buf[64]; /* pending partial block */
    size_t nbuf;
};

/* Incremental interface: init, update any number of times, final. */
void im_sha256_init(struct im_sha256_ctx *ctx);
void im_sha256_update(struct im_sha256_ctx *ctx, const void *data, size_t len);
void im_sha256_final(struct im_sha256_ctx *ctx, unsigned char out[32]);

/* One-shot hash of len bytes at data into out (32 raw bytes). */
void im_sha256(const void *data, size_t len, unsigned char out[32]);
/* One-shot hash written as the NUL-terminated text "sha256:<64 lowercase hex>"
 * (71 characters + NUL) into out. */
void im_sha256_digest(const void *data, size_t len, char out[72]);
/* A sha256 hash already computed (md, 32 raw bytes) as that same text. */
void im_sha256_text(const unsigned char md[32], char out[72]);

/* One-shot SHA-512 (64 raw bytes) and SHA-384 (48 raw bytes). */
void im_sha512(const void *data, size_t len, unsigned char out[64]);
void im_sha384(const void *data, size_t len, unsigned char out[48]);

/* Writes the digest "algo:<lowercase hex>" of data into out (n bytes; 136 is
 * enough for sha512) for algo "sha256", "sha384" or "sha512". 0, or -1 for an
 * unknown algorithm or a too small buffer. */
int im_digest_compute(const char *algo, const void *data, size_t len, char *out,
                      size_t n);

/* The algorithm name of the digest "algo:hex" into algo (n bytes): 0, or -1
 * when there is no ':', the name before it is empty, or it does not fit. */
int im_digest_algo(const char *digest, char *algo, size_t n);

#endif
