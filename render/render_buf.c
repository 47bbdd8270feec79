/* render_buf.c - the renderers' growing output buffer (render_int.h). */
#include "render_int.h"

#include <stdlib.h>
#include <string.h>

#include "im.h"

void render_buf_putn(struct render_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void render_buf_put(struct render_buf *b, const char *s)
{
    render_buf_putn(b, s, strlen(s));
}

int render_buf_finish(struct render_buf *b, char **out, size_t *len)
{
    if (!b->oom && !b->p)
        render_buf_putn(b, "", 0);
    if (b->oom) {
        free(b->p);
        *out = NULL;
        *len = 0;
        return IM_ENOMEM;
    }
    *out = b->p;
    *len = b->len;
    return 0;
}
