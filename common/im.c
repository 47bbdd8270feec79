/* im.c - errors, bundles and small helpers shared by every module. */
#include "im.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} err_table[] = {
    {IM_OK, "ok", "success"},
    {IM_EINVAL, "invalid_request", "invalid reference or parameter"},
    {IM_ENOTFOUND, "not_found", "not found"},
    {IM_EUNAUTH, "upstream_unauthorized", "upstream refused authorization"},
    {IM_EPROTO, "upstream_protocol", "upstream answered wrongly"},
    {IM_EDIGEST, "digest_mismatch", "upstream content does not match its digest"},
    {IM_ETOOBIG, "too_large", "too large"},
    {IM_ETIMEOUT, "upstream_timeout", "upstream timed out"},
    {IM_ERATELIMIT, "upstream_rate_limited", "upstream rate limit reached"},
    {IM_EPOLICY, "refused_by_policy", "refused by policy"},
    {IM_ESTORE, "store_failure", "cache database failure"},
    {IM_ENOMEM, "out_of_memory", "out of memory"},
    {IM_EUPSTREAM, "upstream_unavailable", "upstream unavailable"},
    {IM_EBUSY, "busy", "too many upstream resolutions in progress"},
    {IM_EDBDOWN, "database_unavailable", "the shared cache database is unreachable"},
    {IM_EINTERNAL, "internal_error", "internal error"}, /* last: the fallback */
};

static size_t err_index(int code)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == code)
            return i;
    return sizeof err_table / sizeof err_table[0] - 1; /* internal */
}

const char *im_strerror(int code)
{
    return err_table[err_index(code)].text;
}
const char *im_errname(int code)
{
    return err_table[err_index(code)].name;
}

int im_seterr(struct im_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

bool im_csv_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    if (!s || !*s)
        return false;
    size_t l = strcspn(s, ",");
    const char *e = s + l;
    *p = *e ? e + 1 : e;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *item = s;
    *len = (size_t)(e - s);
    return true;
}

int im_path_dir(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n == 0)
        return -1;
    if (len >= n) {
        dir[0] = '\0';
        return -1;
    }
    memcpy(dir, !slash ? "." : path, len);
    dir[len] = '\0';
    return 0;
}

int im_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n == 0)
        return -1;
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

void im_bundle_init(struct im_bundle *b)
{
    memset(b, 0, sizeof *b);
}

void im_bundle_free(struct im_bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ndocs; i++)
        free(b->docs[i].body);
    free(b->docs);
    free(b->blobs);
    im_bundle_init(b);
}

const struct im_doc *im_bundle_find_doc(const struct im_bundle *b, const char *digest)
{
    for (size_t i = 0; i < b->ndocs; i++)
        if (strcmp(b->docs[i].digest, digest) == 0)
            return &b->docs[i];
    return NULL;
}

const struct im_blob *im_bundle_find_blob(const struct im_bundle *b, const char *digest)
{
    for (size_t i = 0; i < b->nblobs; i++)
        if (strcmp(b->blobs[i].digest, digest) == 0)
            return &b->blobs[i];
    return NULL;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return IM_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

int im_bundle_add_doc(struct im_bundle *b, const char *digest, const char *media_type,
                      const void *body, size_t len)
{
    if (strlen(digest) >= IM_DIGEST_MAX || strlen(media_type) >= IM_MEDIATYPE_MAX)
        return IM_EINVAL;
    if (im_bundle_find_doc(b, digest))
        return 0;
    void *arr = b->docs;
    if (grow(&arr, &b->capdocs, b->ndocs + 1, sizeof *b->docs))
        return IM_ENOMEM;
    b->docs = arr;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return IM_ENOMEM;
    if (len)
        memcpy(copy, body, len);
    struct im_doc *d = &b->docs[b->ndocs++];
    memset(d, 0, sizeof *d);
    im_strlcpy(d->digest, digest, sizeof d->digest);
    im_strlcpy(d->media_type, media_type, sizeof d->media_type);
    d->body = copy;
    d->len = len;
    return 0;
}

int im_bundle_add_blob(struct im_bundle *b, const struct im_blob *blob)
{
    if (!memchr(blob->digest, '\0', sizeof blob->digest) ||
        !memchr(blob->media_type, '\0', sizeof blob->media_type))
        return IM_EINVAL;
    for (size_t i = 0; i < b->nblobs; i++) {
        if (strcmp(b->blobs[i].digest, blob->digest) == 0) {
            b->blobs[i] = *blob;
            return 0;
        }
    }
    void *arr = b->blobs;
    if (grow(&arr, &b->capblobs, b->nblobs + 1, sizeof *b->blobs))
        return IM_ENOMEM;
    b->blobs = arr;
    b->blobs[b->nblobs++] = *blob;
    return 0;
}

int im_buf_append(struct im_buf *b, const void *data, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return IM_ETOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1) /* never more room than max allows */
            cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return IM_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int im_buf_reserve(struct im_buf *b, size_t n)
{
    if (n > b->max)
        n = b->max;
    if (b->cap >= n + 1)
        return 0;
    char *p = realloc(b->p, n + 1);
    if (!p)
        return IM_ENOMEM;
    if (!b->p)
        p[0] = '\0';
    b->p = p;
    b->cap = n + 1;
    return 0;
}

void im_buf_putn(struct im_buf *b, const char *s, size_t n)
{
    if (!b->err)
        b->err = im_buf_append(b, s, n);
}

void im_buf_put(struct im_buf *b, const char *s)
{
    im_buf_putn(b, s, strlen(s));
}

int im_buf_finish(struct im_buf *b, char **out, size_t *len)
{
    if (!b->err && !b->p)
        im_buf_putn(b, "", 0);
    if (b->err) {
        int rc = b->err;
        free(b->p);
        b->p = NULL;
        b->len = b->cap = 0;
        *out = NULL;
        *len = 0;
        return rc;
    }
    *out = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}

size_t im_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void im_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = im_utf8_len(p);
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
}

uint64_t im_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int64_t im_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

struct timespec im_deadline_after_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t im_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
