/* fuzz_schema1.c - libFuzzer target for reg__schema1_payload, the parser of
 * signed schema1 manifests (JWS protected headers, base64url, formatLength
 * and formatTail from the network). Besides "no crash, no UB, no leak", it
 * checks the contract: only EPROTO or ENOMEM as errors, no payload with an
 * error, and a payload no longer than the body plus a tail decoded from it. */
#include <stdint.h>
#include <stdlib.h>

#include "registry.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct im_error err;
    unsigned char *p = NULL;
    size_t pl = 0;
    int rc = reg__schema1_payload(data, size, &p, &pl, &err);
    if (rc != 0 && rc != IM_EPROTO && rc != IM_ENOMEM)
        abort();
    if (rc != 0 && p != NULL)
        abort();
    /* formatLength (<= size) bytes of the body, then a tail decoded from
     * base64 inside the body (shorter than the body) */
    if (p != NULL && pl > 2 * size)
        abort();
    free(p);
    return 0;
}
