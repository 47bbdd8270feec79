/* render_buf.h - internal to render/: the renderers' growing output buffer,
 * and the generator's JSON arrays.
 * After the first allocation failure every append is a no-op and oom stays
 * set, so a renderer checks once, in render_buf_finish. */
#ifndef RENDER_BUF_H
#define RENDER_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct render_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

void render_buf_putn(struct render_buf *b, const char *s, size_t n);
void render_buf_put(struct render_buf *b, const char *s);
/* Hands the NUL-terminated text to *out (the caller frees it): 0, or
 * IM_ENOMEM (the buffer is released, *out NULL). */
int render_buf_finish(struct render_buf *b, char **out, size_t *len);

/* Appends the n strings as a compact JSON array the way the repo-info
 * generator's encoder writes one ('/' as \/, U+2028/U+2029 escaped: see
 * render_dockerfile.c); NULL elements as "". */
void render__json_strv(struct render_buf *b, char *const *v, size_t n);

#endif
