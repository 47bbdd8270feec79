/* fuzz_codec.c - libFuzzer target for how the store keeps bodies
 * (store/store_codec.c): the decoder of stored rows, which reads whatever a
 * damaged or hostile database file holds. The first byte is the row's
 * encoding (0 as it is, 1 deflated, 2 deflated with the preset dictionary,
 * others unknown), the rest its bytes.
 * Besides "no crash, no UB, no leak": a row that reads back never yields more
 * than STORE_BODY_MAX bytes, and the input itself, kept by the store and read
 * back, is the same bytes (so is a body read back and kept again).
 *
 * Seeds (tests/fuzz/corpus/fuzz_codec/): rows as the store writes them, one
 * of each encoding, and a few broken ones (seed-dict-*: encoding 2 rows that
 * name another dictionary or none, and a bomb). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* body (len bytes), kept and read back, is the same bytes. */
static void roundtrip(const void *body, size_t len)
{
    struct store__body row = {0}, back = {0};
    const char *why = "";
    if (store__pack(body, len, &row) != 0)
        return; /* out of memory */
    if (row.encoding != STORE__RAW && row.len >= len)
        abort(); /* deflated only when that saves space */
    int rc = store__unpack(row.encoding, row.p, row.len, &back, &why);
    if (rc == IM_ESTORE || (rc == 0 && (back.len != len || memcmp(back.p, body, len))))
        abort();
    store__body_free(&back);
    store__body_free(&row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store__body b = {0};
    const char *why = "";
    if (size == 0)
        return 0;
    int rc = store__unpack(data[0], data + 1, size - 1, &b, &why);
    if (rc == 0) {
        if (b.len > STORE_BODY_MAX || (data[0] == STORE__RAW && b.len != size - 1))
            abort();
        roundtrip(b.p, b.len);
    } else if (rc != IM_ESTORE && rc != IM_ENOMEM) {
        abort();
    } else if (!why || !why[0]) {
        abort(); /* a refusal says why */
    }
    store__body_free(&b);
    roundtrip(data, size);
    return 0;
}
