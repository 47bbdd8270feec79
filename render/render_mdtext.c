/* render_mdtext.c - upstream text in Markdown that must not change the
 * structure around it: a table cell, a list item, a heading, a diff block.
 * Also what both renderers and the diff share of a model: the platform's
 * short name, an entry's total size and its Dockerfile lines. Pure. */
#include "render.h"

#include <stdio.h>
#include <string.h>

#include "render_int.h"

static bool md_special(unsigned char c)
{
    return c != '\0' && strchr("\\`*_[]<>|!~&#(){}+", c) != NULL;
}

static bool is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void put_hex(struct im_buf *b, unsigned char c)
{
    char esc[8];
    snprintf(esc, sizeof esc, "\\x%02x", c);
    im_buf_put(b, esc);
}

void render__md_text(struct im_buf *b, const char *s)
{
    const char *run = s ? s : "", *p = run;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_control(c) && !md_special(c))
            continue;
        im_buf_putn(b, run, (size_t)(p - run));
        if (is_control(c)) {
            put_hex(b, c);
        } else {
            char esc[3] = {'\\', (char)c, '\0'};
            im_buf_put(b, esc);
        }
        run = p + 1;
    }
    im_buf_putn(b, run, (size_t)(p - run));
}

void render__md_code(struct im_buf *b, const char *s)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789:+._/@-";
    if (s && *s && strspn(s, plain) == strlen(s)) {
        im_buf_put(b, "`");
        im_buf_put(b, s);
        im_buf_put(b, "`");
    } else {
        render__md_text(b, s);
    }
}

void render__md_prefixed(struct im_buf *b, const char *mark, const char *line)
{
    const char *p = line ? line : "";
    im_buf_put(b, mark);
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r' || c == '\n') {
            if (c == '\r' && p[1] == '\n')
                p++;
            im_buf_put(b, "\n");
            im_buf_put(b, mark);
        } else if (is_control(c)) {
            put_hex(b, c);
        } else {
            im_buf_putn(b, p, 1);
        }
    }
    im_buf_put(b, "\n");
}

char *render__history_line(const struct render_entry *e, size_t i)
{
    const struct render_history *h = &e->history[i];
    return e->schema1 ? render_dockerfile_argv(&h->cmd_argv)
                      : render_dockerfile_line(h->created_by, &e->shell);
}

int render_platform_short(const struct render_platform *p, char *buf, size_t n)
{
    const char *os = p->os && p->os[0] ? p->os : "linux";
    const char *arch = p->architecture && p->architecture[0] ? p->architecture : "amd64";
    bool variant = p->variant && p->variant[0];
    int w = snprintf(buf, n, "%s/%s%s%s", os, arch, variant ? "/" : "",
                     variant ? p->variant : "");
    return w >= 0 && (size_t)w < n ? 0 : -1;
}

int64_t render_entry_total(const struct render_entry *e)
{
    int64_t t = 0;
    if (e->kind == RENDER_KIND_UNKNOWN) /* a nested index: not descended into */
        return -1;
    for (size_t i = 0; i < e->n_layers; i++) {
        if (e->layers[i].size < 0 || e->layers[i].size > INT64_MAX - t)
            return -1;
        t += e->layers[i].size;
    }
    return t;
}
