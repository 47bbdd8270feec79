/* sha256.h - content digests (sha256, sha384, sha512) for digest checks, and
 * their "algo:hex" text. The hashing is OpenSSL's libcrypto (EVP), which the
 * process links for TLS anyway: reviewed, and with the CPU's SHA instructions
 * where it has them.
 *
 * Thread-safety: thread-safe; each call hashes with a libcrypto context of its
 * own, made and freed inside it, and the algorithms are fetched once per
 * process and then only read. */
#ifndef IM_SHA256_H
#define IM_SHA256_H

#include <stddef.h>

#include "im.h"

/* The digest text "sha256:<64 lowercase hex>" (71 characters and a NUL) of len
 * bytes at data into out. 0, or as im_digest_compute fails. */
int im_sha256_digest(const void *data, size_t len, char out[72]) IM_WUR;
/* A sha256 hash already computed (md, 32 raw bytes) as that same text. */
void im_sha256_text(const unsigned char md[32], char out[72]);

/* Writes the digest "algo:<lowercase hex>" of data into out (n bytes; 136 is
 * enough for sha512) for algo "sha256", "sha384" or "sha512". 0; IM_EINVAL
 * for another algorithm or a too small buffer; IM_ENOMEM when libcrypto could
 * not allocate; IM_EINTERNAL when it runs without SHA-2 (with neither its
 * default nor its FIPS provider). On failure out is "" (when n > 0), never
 * another digest. */
int im_digest_compute(const char *algo, const void *data, size_t len, char *out,
                      size_t n) IM_WUR;

/* The algorithm name of the digest "algo:hex" into algo (n bytes): 0, or -1
 * when there is no ':', the name before it is empty, or it does not fit. */
int im_digest_algo(const char *digest, char *algo, size_t n);

#endif
