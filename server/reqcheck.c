/* reqcheck.c - which bytes a request may carry, judged on what the client sent:
 * the request target before any percent-decoding, and header fields. Pure
 * functions of their input; server/http.c (the target) and server/head.c (the
 * header fields) apply them before routing, so that nothing decodes to a
 * control character or to a string cut short at a NUL, and an encoded '/'
 * never becomes a path separator. */
#include <stdbool.h>
#include <string.h>

#include "server.h"

/* The value of a hex digit, either case; -1 for any other byte. */
static int hex_digit(unsigned char c)
{
    static const char digits[] = "0123456789abcdefABCDEF";
    const char *p = c ? strchr(digits, c) : NULL;
    int v = p ? (int)(p - digits) : -1;
    return v < 16 ? v : v - 6;
}

/* The byte at s[*i] as it decodes ("%XY" is one byte), *i moved past it, and
 * in *escaped whether it was written as an escape; -1 for a '%' that is not
 * followed by two hex digits. */
static int next_byte(const char *s, size_t n, size_t *i, bool *escaped)
{
    unsigned char c = (unsigned char)s[*i];
    *escaped = c == '%';
    if (c != '%') {
        (*i)++;
        return c;
    }
    if (n - *i < 3)
        return -1;
    int hi = hex_digit((unsigned char)s[*i + 1]);
    int lo = hex_digit((unsigned char)s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    return hi * 16 + lo;
}

static bool is_control(int c)
{
    return c < 0x20 || c == 0x7f;
}

/* The multi-byte sequence that starts with lead, its other bytes decoded from
 * s[*i]: valid UTF-8 (im_utf8_len's rules) moves *i past them. */
static bool utf8_sequence(const char *s, size_t n, size_t *i, int lead)
{
    unsigned char seq[5] = {(unsigned char)lead, 0, 0, 0, 0};
    size_t after[4] = {*i, *i, *i, *i}; /* where the k-th byte ends */
    size_t j = *i;
    for (size_t k = 1; k < 4 && j < n; k++) {
        bool escaped;
        int c = next_byte(s, n, &j, &escaped);
        if (c < 0)
            break; /* a NUL in seq: the sequence is cut, im_utf8_len says 0 */
        seq[k] = (unsigned char)c;
        after[k] = j;
    }
    size_t len = im_utf8_len(seq);
    if (len == 0)
        return false;
    *i = after[len - 1];
    return true;
}

enum srv_fault srv_check_component(const char *s, size_t n, enum srv_part part)
{
    size_t i = 0;
    while (i < n) {
        bool escaped;
        int c = next_byte(s, n, &i, &escaped);
        if (c < 0)
            return SRV_FAULT_ESCAPE;
        if (is_control(c))
            return SRV_FAULT_CONTROL;
        if (c == '/' && escaped && part == SRV_PART_PATH)
            return SRV_FAULT_SLASH;
        if (c >= 0x80 && !utf8_sequence(s, n, &i, c))
            return SRV_FAULT_UTF8;
    }
    return SRV_FAULT_NONE;
}

/* The query is judged as one component: its separators ('&', '=') are ASCII,
 * neither control characters nor part of a multi-byte sequence, so a key or
 * value has a fault exactly when the whole query has one there ('+', a space
 * in a value, is plain ASCII too). */
enum srv_fault srv_check_target(const char *target, size_t n, enum srv_part *where)
{
    const char *q = memchr(target, '?', n);
    size_t path_len = q ? (size_t)(q - target) : n;
    enum srv_fault f = srv_check_component(target, path_len, SRV_PART_PATH);
    *where = SRV_PART_PATH;
    if (f != SRV_FAULT_NONE || !q)
        return f;
    *where = SRV_PART_QUERY;
    return srv_check_component(q + 1, n - path_len - 1, SRV_PART_QUERY);
}

enum srv_fault srv_check_field(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_control((unsigned char)s[i]) && s[i] != '\t')
            return SRV_FAULT_CONTROL;
    return SRV_FAULT_NONE;
}

#define ESCAPE_TEXT " has a bad percent-escape: '%' must be followed by two hex digits"
#define CONTROL_TEXT " decodes to a control character (a byte below 0x20, or 0x7f)"
#define UTF8_TEXT                                                                        \
    " decodes to invalid UTF-8 (a truncated, overlong or surrogate sequence)"

const char *srv_fault_text(enum srv_fault f, enum srv_part part)
{
    static const char *const texts[][SRV_FAULT_SLASH + 1] = {
        [SRV_PART_PATH] = {NULL, "the path" ESCAPE_TEXT, "the path" CONTROL_TEXT,
                           "the path" UTF8_TEXT,
                           "the path has an encoded '/' (%2F): write the slashes of a "
                           "reference as '/'"},
        [SRV_PART_QUERY] = {NULL, "a query parameter" ESCAPE_TEXT,
                            "a query parameter" CONTROL_TEXT,
                            "a query parameter" UTF8_TEXT},
        [SRV_PART_HEADER] = {[SRV_FAULT_CONTROL] = "a header field has a control "
                                                   "character (a byte below 0x20 other "
                                                   "than tab, or 0x7f)"}};
    const char *text = NULL;
    if (part <= SRV_PART_HEADER && f > SRV_FAULT_NONE && f <= SRV_FAULT_SLASH)
        text = texts[part][f];
    return text ? text : "the request has bytes imgmeta does not accept";
}
