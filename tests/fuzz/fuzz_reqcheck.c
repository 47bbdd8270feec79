/* fuzz_reqcheck.c - libFuzzer target for the rules on the bytes of a request
 * (server/reqcheck.c), which judge every request target and header field a
 * client sends. The input is a raw request target (NUL bytes included).
 * Besides "no crash, no UB": the target passes exactly when a plain decoder
 * (every escape decoded once, into a buffer of its own) finds nothing wrong in
 * the path and the query: no bad escape, no control character, valid UTF-8,
 * and no %2F in the path; and as a header field it passes exactly when it has
 * no control byte other than HTAB.
 *
 * Seeds (tests/fuzz/corpus/fuzz_reqcheck/): the issue's %00, an encoded slash,
 * overlong UTF-8 in the path and a query, bad escapes, literal NUL and
 * control bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Whether n bytes of s decode (into d, n + 1 bytes) to text the rules allow. */
static bool plain_ok(const uint8_t *s, size_t n, bool path, unsigned char *d)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '%') {
            d[m++] = s[i++];
            continue;
        }
        if (n - i < 3 || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
            return false;
        d[m] = (unsigned char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
        if (path && d[m] == '/')
            return false;
        m++;
        i += 3;
    }
    d[m] = '\0';
    for (size_t k = 0; k < m; k++)
        if (d[k] < 0x20 || d[k] == 0x7f)
            return false;
    for (size_t k = 0; k < m;) {
        size_t len = im_utf8_len(d + k);
        if (len == 0)
            return false;
        k += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *d = malloc(size + 1);
    if (!d)
        return 0;
    const uint8_t *q = memchr(data, '?', size);
    size_t path_len = q ? (size_t)(q - data) : size;
    bool ok = plain_ok(data, path_len, true, d) &&
              (!q || plain_ok(q + 1, size - path_len - 1, false, d));
    enum srv_part where;
    enum srv_fault f = srv_check_target((const char *)data, size, &where);
    if ((f == SRV_FAULT_NONE) != ok || !srv_fault_text(f, where))
        abort();
    bool field_ok = true;
    for (size_t i = 0; i < size; i++)
        if ((data[i] < 0x20 && data[i] != '\t') || data[i] == 0x7f)
            field_ok = false;
    if ((srv_check_field((const char *)data, size) == SRV_FAULT_NONE) != field_ok)
        abort();
    free(d);
    return 0;
}
