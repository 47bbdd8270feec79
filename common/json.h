/* json.h - the one way this project writes JSON: straight into a bounded
 * buffer (struct im_buf), compact, keys in the order written, strings escaped
 * as jansson's json_dumps escapes them ('"', '\\' and control characters; the
 * rest as it is, a byte that is not UTF-8 written '?'). The bytes are the ones
 * json_dumps(JSON_COMPACT) gives for the same values, without building a tree
 * of allocated values first: that tree was most of a cold answer's render
 * time (tests/unit/test_render.c and the render fuzzer check that jansson
 * reads the output and dumps it back unchanged). jansson is for parsing.
 *
 * Usage: struct im_jw w = {.b = {.max = LIMIT}}; im_jw_open(&w, '{');
 * im_jw_key(&w, "k"); im_jw_str(&w, "v"); im_jw_close(&w, '}');
 * im_buf_finish(&w.b, &text, &len). A failure (the buffer's max, memory,
 * nesting past IM_JW_DEPTH) is kept in w.b.err and ends every later write.
 * Thread-safety: a writer belongs to one thread; no shared state. */
#ifndef IM_JSON_H
#define IM_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "im.h"

#define IM_JW_DEPTH 8

struct im_jw {
    struct im_buf b;
    int depth;
    bool more[IM_JW_DEPTH]; /* the container at this depth has a member already */
    bool keyed;             /* a key was written: its value follows */
};

/* '{' or '[' ... '}' or ']' */
void im_jw_open(struct im_jw *w, char c);
void im_jw_close(struct im_jw *w, char c);
/* A key of the open object; its value is the next thing written. */
void im_jw_key(struct im_jw *w, const char *k);
/* A string; NULL is written null. */
void im_jw_str(struct im_jw *w, const char *s);
void im_jw_int(struct im_jw *w, int64_t v);
/* A value written as it is ("null", "true", a number already formatted). */
void im_jw_raw(struct im_jw *w, const char *s);
/* "k":"s" (or "k":null when s is NULL). */
void im_jw_kstr(struct im_jw *w, const char *k, const char *s);
/* "k":v */
void im_jw_kint(struct im_jw *w, const char *k, int64_t v);
/* An array of n strings (NULL elements as ""). */
void im_jw_strs(struct im_jw *w, char *const *v, size_t n);

#endif
