/* json.c - the JSON writer (json.h). */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A comma goes before every value but the first of its object or array, and
 * never between a key and its value. */
static void sep(struct im_jw *w)
{
    if (w->keyed) {
        w->keyed = false;
        return;
    }
    if (w->more[w->depth])
        im_buf_putn(&w->b, ",", 1);
    w->more[w->depth] = true;
}

void im_jw_open(struct im_jw *w, char c)
{
    sep(w);
    im_buf_putn(&w->b, &c, 1);
    if (w->depth + 1 >= IM_JW_DEPTH) {
        if (!w->b.err)
            w->b.err = IM_EINTERNAL; /* a shape deeper than any this project writes */
        return;
    }
    w->more[++w->depth] = false;
}

void im_jw_close(struct im_jw *w, char c)
{
    im_buf_putn(&w->b, &c, 1);
    if (w->depth > 0)
        w->depth--;
}

/* A string as jansson writes it: '"', '\\' and control characters escaped,
 * the rest as is; a byte that is not part of valid UTF-8 becomes '?' (what
 * im_utf8_sanitize makes of it), so writing never fails on it. */
static void text(struct im_jw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF", from[] = "\"\\\b\f\n\r\t",
                      to[] = "\"\\bfnrt";
    const unsigned char *p = (const unsigned char *)s, *run = p;
    im_buf_putn(&w->b, "\"", 1);
    while (*p) {
        size_t n = im_utf8_len(p);
        if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\')) {
            p += n;
            continue;
        }
        im_buf_putn(&w->b, (const char *)run, (size_t)(p - run));
        const char *short_form = n ? memchr(from, *p, sizeof from - 1) : NULL;
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        if (n == 0) /* not UTF-8 */
            im_buf_putn(&w->b, "?", 1);
        else if (short_form)
            im_buf_putn(&w->b, (char[2]){'\\', to[short_form - from]}, 2);
        else
            im_buf_putn(&w->b, esc, sizeof esc);
        run = ++p;
    }
    im_buf_putn(&w->b, (const char *)run, (size_t)(p - run));
    im_buf_putn(&w->b, "\"", 1);
}

void im_jw_key(struct im_jw *w, const char *k)
{
    sep(w);
    text(w, k);
    im_buf_putn(&w->b, ":", 1);
    w->keyed = true;
}

void im_jw_raw(struct im_jw *w, const char *s)
{
    sep(w);
    im_buf_put(&w->b, s);
}

void im_jw_str(struct im_jw *w, const char *s)
{
    if (!s) {
        im_jw_raw(w, "null");
        return;
    }
    sep(w);
    text(w, s);
}

void im_jw_int(struct im_jw *w, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    im_jw_raw(w, buf);
}

void im_jw_kstr(struct im_jw *w, const char *k, const char *s)
{
    im_jw_key(w, k);
    im_jw_str(w, s);
}

void im_jw_kint(struct im_jw *w, const char *k, int64_t v)
{
    im_jw_key(w, k);
    im_jw_int(w, v);
}

void im_jw_strs(struct im_jw *w, char *const *v, size_t n)
{
    im_jw_open(w, '[');
    for (size_t i = 0; i < n; i++)
        im_jw_str(w, v[i] ? v[i] : "");
    im_jw_close(w, ']');
}
