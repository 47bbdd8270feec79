/* head.c - the checks of a request's head on its first call: the service's
 * limits on its parts (414, 431), the bytes it may carry (reqcheck.c's rules
 * on the header fields, and the NUL bytes at which libmicrohttpd cuts the
 * target or a header value without a word) and its Host header. The target
 * itself is judged earlier, by http.c:on_target, while its escapes can still
 * be seen. */
#include <microhttpd.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "server_int.h"

/* Whether a NUL byte in the request line cut the target short. libmicrohttpd
 * 0.9.75 parses the line in place: the target runs from url to the space
 * before the version (a NUL now, just before version). It hands the target
 * over as a C string, cut at such a NUL, yet parses what follows (a query
 * after it): "GET /images/python/3.7-slim\0x HTTP/1.1" would be the image.
 * The cut shows as a target shorter than the distance to the version.
 * Pointers laid out otherwise are not judged. */
static bool target_cut(const struct srv__request *rq, const char *url,
                       const char *version)
{
    uintptr_t t = (uintptr_t)rq->target, v = (uintptr_t)version;
    if ((uintptr_t)url != t || !version[0] || v <= t || v - t > MHD_MEMORY_LIMIT)
        return false;
    return rq->target_len + 1 < v - t;
}

/* The header fields, seen once (scan_head): their size as the service counts
 * it, the first fault in a name or value, and whether libmicrohttpd cut a
 * value at a NUL byte. libmicrohttpd 0.9.75 keeps the request head in its
 * buffer as it came, header_size bytes from the method on, with each line's
 * CR and LF turned into NULs and the fields pointing into it; but it hands a
 * value over as a C string, so a NUL in it cuts it short without a word
 * ("X: a\0b" is "a"). Between the end of a value and the next field's name
 * there is then more than the one or two NULs of a line end (after the last
 * value, more than the four of two line ends). Fields that are not in that
 * buffer in order (a folded line is copied elsewhere) are not judged. */
struct head_scan {
    size_t bytes;
    enum srv_fault fault;
    uintptr_t lo, hi;    /* the request head in libmicrohttpd's buffer */
    uintptr_t value_end; /* where the field before ended; 0: not judged */
};

static bool in_head(const struct head_scan *s, const char *p)
{
    return p && (uintptr_t)p >= s->lo && (uintptr_t)p < s->hi;
}

/* Whether the bytes from value_end to next (not before it) are more than a
 * line end of at most max NULs: the rest of a value cut at a NUL. Reads at
 * most max bytes, the line end's own. */
static bool value_cut(uintptr_t value_end, uintptr_t next, size_t max)
{
    if (next <= value_end)
        return false;
    if (next - value_end > max)
        return true;
    for (const char *p = (const char *)value_end; (uintptr_t)p < next; p++)
        if (*p)
            return true;
    return false;
}

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *s = cls;
    (void)kind;
    s->bytes += key_size + value_size + 4; /* ": " and CRLF */
    if (s->fault == SRV_FAULT_NONE)
        s->fault = srv_check_field(key, key_size);
    if (s->fault == SRV_FAULT_NONE && value)
        s->fault = srv_check_field(value, value_size);
    if (s->fault == SRV_FAULT_NONE && s->value_end && in_head(s, key) &&
        value_cut(s->value_end, (uintptr_t)key, 2))
        s->fault = SRV_FAULT_CONTROL;
    bool in_order =
        in_head(s, key) && in_head(s, value) && (uintptr_t)value > (uintptr_t)key;
    s->value_end = in_order ? (uintptr_t)value + value_size : 0;
    return MHD_YES;
}

/* The header fields of conn's request: the first fault (SRV_FAULT_CONTROL
 * for a cut value too), and their size in *bytes. */
static enum srv_fault scan_head(struct MHD_Connection *conn, const char *method,
                                size_t *bytes)
{
    struct head_scan s = {0, SRV_FAULT_NONE, 0, 0, 0};
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci) {
        s.lo = (uintptr_t)method;
        s.hi = s.lo + ci->header_size;
    }
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_field, &s);
    if (s.fault == SRV_FAULT_NONE && s.value_end && s.value_end < s.hi &&
        value_cut(s.value_end, s.hi, 4))
        s.fault = SRV_FAULT_CONTROL;
    *bytes = s.bytes;
    return s.fault;
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    size_t *n = cls;
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        (*n)++;
    return MHD_YES;
}

/* RFC 9112, section 3.2: a server answers 400 to an HTTP/1.1 request without
 * a Host header, and to any request with more than one. libmicrohttpd
 * enforces the first only in its strict mode, with its own HTML answer; here
 * the client gets the service's JSON error like for every other refusal. */
static bool host_ok(struct MHD_Connection *conn, const char *version)
{
    size_t hosts = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_host, &hosts);
    if (hosts > 1)
        return false;
    return hosts == 1 || strcmp(version, MHD_HTTP_VERSION_1_1) != 0;
}

/* The service's limits and the rules on a request's bytes, checked on the
 * request's first call; a fault is left in rq for the message. */
enum api_reject srv__check_limits(struct MHD_Connection *conn, struct srv__request *rq,
                                  const char *url, const char *method,
                                  const char *version)
{
    size_t headers = 0;
    if (strlen(url) > MAX_PATH_BYTES)
        return API_REJECT_URI_TOO_LONG;
    enum srv_fault header_fault = scan_head(conn, method, &headers);
    if (headers > MAX_HEADER_BYTES)
        return API_REJECT_HEADERS_TOO_LARGE;
    if (rq->fault == SRV_FAULT_NONE && target_cut(rq, url, version)) {
        rq->fault = SRV_FAULT_CONTROL;
        rq->fault_part = rq->target_end;
    }
    if (rq->fault == SRV_FAULT_NONE && header_fault != SRV_FAULT_NONE) {
        rq->fault = header_fault;
        rq->fault_part = SRV_PART_HEADER;
    }
    if (rq->fault != SRV_FAULT_NONE)
        return API_REJECT_BAD_ENCODING;
    if (!host_ok(conn, version))
        return API_REJECT_BAD_HOST;
    return API_REJECT_NONE;
}
