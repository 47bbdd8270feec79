/* watchlist.c - the watched references (--watch, --watch-file): parsed,
 * labelled and checked once at start. Pure but for srv_watch_list_add_file's
 * read; the text is semi-trusted (an operator's file): every line is
 * validated and a bad one refuses the start with its line number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "render.h"
#include "server.h"

void srv_watch_list_free(struct srv_watch_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* The item already labelled image, or NULL. */
static const struct srv_watch_item *find(const struct srv_watch_list *l,
                                         const char *image)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].image, image) == 0)
            return &l->items[i];
    return NULL;
}

static bool same_ref(const struct im_ref *a, const struct im_ref *b)
{
    return strcmp(a->registry, b->registry) == 0 &&
           strcmp(a->repository, b->repository) == 0 && strcmp(a->tag, b->tag) == 0 &&
           strcmp(a->digest, b->digest) == 0;
}

/* item->image: the display form ("python:3.7-slim"), unless that names
 * another image when read back (a Docker Hub repository whose first component
 * looks like a host, "docker.io/foo.bar/app"): then the whole reference. */
static int label(struct srv_watch_item *item, struct im_error *err)
{
    struct im_ref back;
    struct im_error perr;
    const struct im_ref *r = &item->ref;
    if (render_ref_display(r, item->image, sizeof item->image) == 0 &&
        reg_ref_parse(item->image, &back, &perr) == 0 && same_ref(&back, r))
        return 0;
    int n =
        snprintf(item->image, sizeof item->image, "%s/%s%s%s", r->registry, r->repository,
                 r->tag[0] ? ":" : "@", r->tag[0] ? r->tag : r->digest);
    if (n < 0 || (size_t)n >= sizeof item->image)
        return im_seterr(err, IM_EINVAL, "'%.200s/%.200s' is too long", r->registry,
                         r->repository);
    return 0;
}

/* Parses one reference (len bytes, no NUL inside) and appends it. 0,
 * IM_EINVAL with err saying why, IM_ENOMEM. */
static int add_one(struct srv_watch_list *l, const char *s, size_t len,
                   struct im_error *err)
{
    char buf[SRV_WATCH_LINE_MAX + 1];
    struct srv_watch_item item;
    if (len > SRV_WATCH_LINE_MAX)
        return im_seterr(err, IM_EINVAL, "longer than %d bytes", SRV_WATCH_LINE_MAX);
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&item, 0, sizeof item);
    int rc = reg_ref_parse(buf, &item.ref, err);
    if (rc != 0)
        return rc;
    if (item.ref.tag[0] && item.ref.digest[0])
        return im_seterr(err, IM_EINVAL,
                         "'%.200s' names a tag and a digest: watch one or the other",
                         buf);
    if (label(&item, err) != 0)
        return IM_EINVAL;
    const struct srv_watch_item *dup = find(l, item.image);
    if (dup)
        return im_seterr(err, IM_EINVAL, "'%.200s' is watched already (as %s)", buf,
                         dup->image);
    if (l->n == SRV_WATCH_MAX)
        return im_seterr(err, IM_EINVAL, "more than %d watched references",
                         SRV_WATCH_MAX);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct srv_watch_item *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return 0;
}

int srv_watch_list_add_csv(struct srv_watch_list *l, const char *csv,
                           struct im_error *err)
{
    struct im_error ierr = {{0}};
    const char *item;
    size_t len, n = 0;
    for (const char *p = csv; im_csv_next(&p, &item, &len);) {
        n++;
        if (len == 0)
            continue;
        int rc = add_one(l, item, len, &ierr);
        if (rc != 0)
            return im_seterr(err, rc, "--watch: item %zu '%.*s': %s", n,
                             (int)(len > 200 ? 200 : len), item, ierr.msg);
    }
    return 0;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line (len bytes, without its '\n'): comment and blanks cut off. */
static int add_line(struct srv_watch_list *l, const char *line, size_t len,
                    struct im_error *err)
{
    if (memchr(line, '\0', len))
        return im_seterr(err, IM_EINVAL, "a NUL byte");
    const char *hash = memchr(line, '#', len);
    if (hash)
        len = (size_t)(hash - line);
    while (len > 0 && blank(*line)) {
        line++;
        len--;
    }
    while (len > 0 && blank(line[len - 1]))
        len--;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (blank(line[i]))
            return im_seterr(err, IM_EINVAL,
                             "one reference a line (a blank inside '%.*s')",
                             (int)(len > 200 ? 200 : len), line);
    return add_one(l, line, len, err);
}

int srv_watch_list_add_text(struct srv_watch_list *l, const char *name, const char *text,
                            size_t len, struct im_error *err)
{
    struct im_error lerr = {{0}};
    size_t lineno = 0;
    for (size_t at = 0; at < len;) {
        const char *start = text + at, *nl = memchr(start, '\n', len - at);
        size_t llen = nl ? (size_t)(nl - start) : len - at;
        lineno++;
        int rc =
            llen > SRV_WATCH_LINE_MAX
                ? im_seterr(&lerr, IM_EINVAL, "longer than %d bytes", SRV_WATCH_LINE_MAX)
                : add_line(l, start, llen, &lerr);
        if (rc != 0)
            return im_seterr(err, rc, "%.200s:%zu: %s", name, lineno, lerr.msg);
        at += llen + (nl ? 1 : 0);
    }
    return 0;
}

int srv_watch_list_add_file(struct srv_watch_list *l, const char *path,
                            struct im_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return im_seterr(err, IM_EINVAL, "--watch-file: cannot open '%.200s'", path);
    text = malloc((size_t)SRV_WATCH_FILE_MAX + 1);
    if (!text) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
        goto out;
    }
    len = fread(text, 1, (size_t)SRV_WATCH_FILE_MAX + 1, f);
    if (ferror(f))
        rc = im_seterr(err, IM_EINVAL, "--watch-file: cannot read '%.200s'", path);
    else if (len > (size_t)SRV_WATCH_FILE_MAX)
        rc = im_seterr(err, IM_EINVAL, "--watch-file: '%.200s' is over %ld bytes", path,
                       SRV_WATCH_FILE_MAX);
    else
        rc = srv_watch_list_add_text(l, path, text, len, err);
out:
    free(text);
    fclose(f);
    return rc;
}
