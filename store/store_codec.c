/* store_codec.c - how a body is kept in its row (store_int.h): as it is, or
 * deflated when that saves space. A deflated row is the body's length (4
 * bytes, big-endian) followed by one zlib stream, whose Adler-32 covers the
 * body; encoding 2's stream is made with the preset dictionary store__dict1
 * (store_dict.c) and names it in its header, encoding 1's with none. Reading
 * it back writes at most that many bytes, and the length itself is believed
 * only up to STORE_BODY_MAX and up to what deflate can make of the row's
 * size: a damaged row, or a small one that would inflate to gigabytes, is
 * refused before it costs more than its own length. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST /* next_in is a pointer to const */
#include <zlib.h>

#include "sha256.h"

#define LEN_BYTES 4
/* Deflate's largest expansion: 258 bytes from one 2-bit code, 1032:1 (zlib's
 * FAQ); a row claiming more than that of its bytes is lying. */
#define DEFLATE_MAX_RATIO 1032u
/* FDICT, the zlib header's "a preset dictionary follows" flag (RFC 1950). */
#define ZLIB_FDICT 0x20u
/* deflate keeps this much of its window for looking ahead (zlib's
 * MIN_LOOKAHEAD): matches reach no farther back than the rest. */
#define DEFLATE_LOOKAHEAD 262u

/* The smallest window that covers len bytes (zlib takes 9 to 15): a small
 * document costs a small window to set up, and compresses just the same. The
 * window holds the dictionary too: deflate uses only its last bytes that fit. */
static int window_bits(size_t len)
{
    int bits = 9;
    while (bits < 15 && ((size_t)1 << bits) < len)
        bits++;
    return bits;
}

static void put_len(unsigned char *p, size_t len)
{
    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
}

static size_t get_len(const unsigned char *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3];
}

int store__pack(const void *body, size_t len, struct store__body *out)
{
    z_stream z;
    int rc = 0;
    unsigned char *buf = NULL;
    memset(out, 0, sizeof *out);
    memset(&z, 0, sizeof z); /* deflateEnd refuses a stream never set up */
    out->p = body;
    out->len = len;
    out->encoding = STORE__RAW;
    if (len < STORE__PACK_MIN || len > STORE_BODY_MAX)
        goto out;
    /* room for exactly what would still be worth it: a stream that does not
     * fit is not kept deflated */
    size_t room = len - len / 8;
    buf = malloc(room);
    if (!buf) {
        rc = IM_ENOMEM;
        goto out;
    }
    if (deflateInit2(&z, STORE__DEFLATE_LEVEL, Z_DEFLATED,
                     window_bits(store__dict1_len + len + DEFLATE_LOOKAHEAD), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK ||
        deflateSetDictionary(&z, store__dict1, (uInt)store__dict1_len) != Z_OK) {
        rc = IM_ENOMEM;
        goto out;
    }
    put_len(buf, len);
    z.next_in = body;
    z.avail_in = (uInt)len;
    z.next_out = buf + LEN_BYTES;
    z.avail_out = (uInt)(room - LEN_BYTES);
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
        out->p = buf;
        out->len = LEN_BYTES + (size_t)z.total_out;
        out->buf = buf;
        out->cap = room;
        out->encoding = STORE__DEFLATE_DICT1;
        buf = NULL;
    }
out:
    (void)deflateEnd(&z); /* Z_DATA_ERROR when it stopped short: expected */
    free(buf);
    return rc;
}

/* Makes room for n bytes and a NUL in b->buf. */
static int reserve(struct store__body *b, size_t n)
{
    if (b->cap > n)
        return 0;
    unsigned char *p = realloc(b->buf, n + 1);
    if (!p)
        return IM_ENOMEM;
    b->buf = p;
    b->cap = n + 1;
    return 0;
}

/* Runs inflate over z to the stream's end, giving it store__dict1 when the
 * stream asks for a dictionary and the row's encoding has that one (zlib
 * checks the stream's dictionary id against it). The last inflate code. */
static int inflate_stream(z_stream *z, int encoding)
{
    int zrc = inflate(z, Z_FINISH);
    if (zrc == Z_NEED_DICT && encoding == STORE__DEFLATE_DICT1 &&
        inflateSetDictionary(z, store__dict1, (uInt)store__dict1_len) == Z_OK)
        zrc = inflate(z, Z_FINISH);
    return zrc;
}

/* What stopped inflate_stream (zrc) says of the row: 0, IM_ESTORE or
 * IM_ENOMEM, with *why. */
static int inflate_verdict(const z_stream *z, int zrc, const char **why)
{
    if (zrc == Z_MEM_ERROR) {
        *why = "out of memory";
        return IM_ENOMEM;
    }
    if (zrc == Z_NEED_DICT)
        *why = "asks for another dictionary";
    else if (zrc == Z_DATA_ERROR)
        *why = z->msg ? z->msg : "not a zlib stream";
    else if (zrc != Z_STREAM_END)
        *why = z->avail_out == 0 ? "inflates past its length" : "truncated";
    else if (z->avail_out != 0 || z->avail_in != 0)
        *why = z->avail_out ? "inflates short of its length" : "bytes after its end";
    else
        return 0;
    return IM_ESTORE;
}

/* Inflates a STORE__DEFLATE or STORE__DEFLATE_DICT1 row into b->buf. */
static int inflate_row(int encoding, const unsigned char *row, size_t n,
                       struct store__body *b, const char **why)
{
    z_stream z;
    if (n < LEN_BYTES) {
        *why = "shorter than its length";
        return IM_ESTORE;
    }
    size_t len = get_len(row);
    if (len > STORE_BODY_MAX || len / DEFLATE_MAX_RATIO > n - LEN_BYTES) {
        *why = "claims more than it can hold";
        return IM_ESTORE;
    }
    /* encoding 2 means its dictionary: a stream without one is not ours */
    if (encoding == STORE__DEFLATE_DICT1 &&
        (n < LEN_BYTES + 2 || !(row[LEN_BYTES + 1] & ZLIB_FDICT))) {
        *why = "does not ask for its dictionary";
        return IM_ESTORE;
    }
    if (reserve(b, len) != 0) {
        *why = "out of memory";
        return IM_ENOMEM;
    }
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        *why = "out of memory";
        return IM_ENOMEM;
    }
    z.next_in = row + LEN_BYTES;
    z.avail_in = (uInt)(n - LEN_BYTES);
    z.next_out = b->buf;
    z.avail_out = (uInt)len;
    int rc = inflate_verdict(&z, inflate_stream(&z, encoding), why);
    (void)inflateEnd(&z);
    if (!rc) {
        b->buf[len] = '\0';
        b->p = b->buf;
        b->len = len;
        b->encoding = encoding;
    }
    return rc;
}

int store__unpack(int encoding, const void *row, size_t n, struct store__body *b,
                  const char **why)
{
    *why = "";
    b->p = NULL;
    b->len = 0;
    if (!row && n > 0) {
        *why = "out of memory";
        return IM_ENOMEM;
    }
    if (encoding == STORE__RAW) {
        b->p = row ? row : "";
        b->len = n;
        b->encoding = STORE__RAW;
        return 0;
    }
    if (encoding == STORE__DEFLATE || encoding == STORE__DEFLATE_DICT1)
        return inflate_row(encoding, row, n, b, why);
    *why = "unknown encoding";
    return IM_ESTORE;
}

/* Docker schema 1 manifests: their digest may cover only their payload (the
 * body without its signatures), which is the registry client's business. */
#define SCHEMA1_PREFIX "application/vnd.docker.distribution.manifest.v1+"

int store__doc_verify(const char *digest, const char *media_type,
                      const struct store__body *b, bool always_hash, const char **why)
{
    char computed[IM_DIGEST_MAX], algo[8];
    if ((!always_hash && b->encoding != STORE__RAW) ||
        (media_type && strncmp(media_type, SCHEMA1_PREFIX, strlen(SCHEMA1_PREFIX)) == 0))
        return 0;
    if (!digest || im_digest_algo(digest, algo, sizeof algo) != 0) {
        *why = "malformed digest";
        return IM_ESTORE;
    }
    int rc = im_digest_compute(algo, b->p, b->len, computed, sizeof computed);
    if (rc != 0 && rc != IM_EINVAL) {
        *why = "it cannot be hashed";
        return rc; /* no memory: not a verdict on the row */
    }
    if (rc != 0 || strcmp(computed, digest) != 0) {
        *why = "its bytes do not hash to its digest";
        return IM_ESTORE;
    }
    return 0;
}

int store__unpack_doc(struct store__q *st, int body_col, int enc_col, const char *digest,
                      const char *media_type, struct store__body *b, const char **why)
{
    int rc = store__unpack_column(st, body_col, enc_col, b, why);
    return rc ? rc : store__doc_verify(digest, media_type, b, false, why);
}

int store__unpack_column(struct store__q *st, int body_col, int enc_col,
                         struct store__body *b, const char **why)
{
    const void *row = store__col_blob(st, body_col);
    int n = store__col_bytes(st, body_col);
    return store__unpack(store__col_int(st, enc_col), row, (size_t)n, b, why);
}

int store__body_take(struct store__body *b, unsigned char **out)
{
    unsigned char *p = NULL;
    if (b->p && b->p == b->buf) { /* inflated: NUL-terminated already */
        p = b->buf;
        b->p = NULL;
        b->buf = NULL;
        b->cap = 0;
    } else {
        p = malloc(b->len + 1);
        if (!p)
            return IM_ENOMEM;
        if (b->len)
            memcpy(p, b->p, b->len);
        p[b->len] = '\0';
    }
    *out = p;
    return 0;
}

void store__body_free(struct store__body *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}
