/* render_history.c - a tag's history, newest change first: JSON, or a
 * Markdown table (one row per change) whose upstream strings are escaped so
 * that none can end a cell, a row or the table. Pure. */
#include "render.h"

#include <stdio.h>

#include "json.h"
#include "render_int.h"

/* "python:3.7-slim" */
static void display(const struct im_ref *ref, char *buf, size_t n)
{
    (void)render_ref_display(ref, buf, n); /* truncated if too long */
}

static void jw_change(struct im_jw *w, const struct render_change *c)
{
    im_jw_open(w, '{');
    im_jw_key(w, "seen");
    render__jw_time(w, c->seen);
    im_jw_kstr(w, "digest", c->digest);
    im_jw_kstr(w, "previousDigest", c->previous);
    im_jw_key(w, "platforms");
    im_jw_open(w, '[');
    for (size_t i = 0; i < c->n_platforms; i++) {
        im_jw_open(w, '{');
        im_jw_kstr(w, "platform", c->platforms[i].platform);
        im_jw_key(w, "totalSize");
        if (c->platforms[i].total_size >= 0)
            im_jw_int(w, c->platforms[i].total_size);
        else
            im_jw_raw(w, "null");
        im_jw_close(w, '}');
    }
    im_jw_close(w, ']');
    im_jw_close(w, '}');
}

int render_history_json(const struct im_ref *ref, const struct render_change *c, size_t n,
                        char **out, size_t *len)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    struct im_jw w = {.b = {.max = RENDER_OUTPUT_MAX}};
    display(ref, disp, sizeof disp);
    im_jw_open(&w, '{');
    im_jw_kstr(&w, "reference", disp);
    im_jw_key(&w, "changes");
    im_jw_open(&w, '[');
    for (size_t i = 0; i < n; i++)
        jw_change(&w, &c[i]);
    im_jw_close(&w, ']');
    im_jw_close(&w, '}');
    return im_buf_finish(&w.b, out, len);
}

static void md_row(struct im_buf *b, const struct render_change *c)
{
    char seen[32], size[96];
    if (render_rfc3339(c->seen, seen, sizeof seen) < 0)
        snprintf(seen, sizeof seen, "unknown");
    im_buf_put(b, "| ");
    im_buf_put(b, seen);
    im_buf_put(b, " | ");
    render__md_code(b, c->digest);
    im_buf_put(b, " | ");
    if (c->previous)
        render__md_code(b, c->previous);
    else
        im_buf_put(b, "(first seen)");
    im_buf_put(b, " | ");
    for (size_t i = 0; i < c->n_platforms; i++) {
        render_size(c->platforms[i].total_size, size, sizeof size);
        im_buf_put(b, i ? "; " : "");
        render__md_text(b, c->platforms[i].platform);
        im_buf_put(b, ": ");
        im_buf_put(b, size);
    }
    im_buf_put(b, " |\n");
}

int render_history_markdown(const struct im_ref *ref, const struct render_change *c,
                            size_t n, char **out, size_t *len)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    display(ref, disp, sizeof disp);
    im_buf_put(&b, "## ");
    render__md_code(&b, disp);
    im_buf_put(&b, " - history\n\n");
    if (n == 0)
        im_buf_put(&b, "No change seen.\n");
    else
        im_buf_put(&b, "| seen | digest | previous digest | platforms (total size) |\n"
                       "|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        md_row(&b, &c[i]);
    return im_buf_finish(&b, out, len);
}
