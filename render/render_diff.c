/* render_diff.c - what changed between two images, per platform they have in
 * common: sizes, layers (by digest) and Dockerfile lines, each compared as a
 * multiset (an item is shared as many times as both sides hold it), so that
 * the work is a sort and a merge, never a product of the two sides' sizes.
 * JSON, or Markdown ready to paste into a review comment. Pure. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "render_int.h"

#define NONE ((size_t)-1)

struct item {
    const char *s;
    size_t i;
};

static int cmp_item(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    int c = strcmp(a->s, b->s);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* The non-NULL strings of v (n) as sorted items into *out (*nout). */
static int sorted(char *const *v, size_t n, struct item **out, size_t *nout)
{
    struct item *x = malloc((n + 1) * sizeof *x);
    size_t k = 0;
    if (!x)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (v[i])
            x[k++] = (struct item){v[i], i};
    qsort(x, k, sizeof *x, cmp_item);
    *out = x;
    *nout = k;
    return 0;
}

/* peer_a[i] = j when a[i] is paired with b[j] (equal strings, the first with
 * the first), NONE when it has no peer; the same for peer_b. A NULL string
 * is never paired. 0 or IM_ENOMEM. */
static int pair_up(char *const *a, size_t na, char *const *b, size_t nb, size_t *peer_a,
                   size_t *peer_b)
{
    struct item *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0, i = 0, j = 0;
    int rc = sorted(a, na, &x, &nx);
    if (!rc)
        rc = sorted(b, nb, &y, &ny);
    for (size_t k = 0; k < na; k++)
        peer_a[k] = NONE;
    for (size_t k = 0; k < nb; k++)
        peer_b[k] = NONE;
    while (!rc && i < nx && j < ny) {
        int c = strcmp(x[i].s, y[j].s);
        if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            peer_a[x[i].i] = y[j].i;
            peer_b[y[j].i] = x[i].i;
            i++;
            j++;
        }
    }
    free(x);
    free(y);
    return rc;
}

/* ---- one platform ------------------------------------------------------- */

/* Both sides of one platform: [0] from, [1] to. */
struct pdiff {
    const struct render_entry *e[2];
    char **digest[2]; /* borrowed from the layers */
    char **line[2];   /* owned: the Dockerfile lines */
    size_t *lpeer[2], *hpeer[2];
};

static void pdiff_free(struct pdiff *d)
{
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; d->line[k] && i < d->e[k]->n_history; i++)
            free(d->line[k][i]);
        free(d->line[k]);
        free(d->digest[k]);
        free(d->lpeer[k]);
        free(d->hpeer[k]);
    }
}

static int side_make(struct pdiff *d, int k)
{
    const struct render_entry *e = d->e[k];
    d->digest[k] = calloc(e->n_layers + 1, sizeof *d->digest[k]);
    d->line[k] = calloc(e->n_history + 1, sizeof *d->line[k]);
    d->lpeer[k] = calloc(e->n_layers + 1, sizeof *d->lpeer[k]);
    d->hpeer[k] = calloc(e->n_history + 1, sizeof *d->hpeer[k]);
    if (!d->digest[k] || !d->line[k] || !d->lpeer[k] || !d->hpeer[k])
        return IM_ENOMEM;
    for (size_t i = 0; i < e->n_layers; i++)
        d->digest[k][i] = e->layers[i].digest ? e->layers[i].digest : "";
    for (size_t i = 0; i < e->n_history; i++)
        if (!(d->line[k][i] = render__history_line(e, i)))
            return IM_ENOMEM;
    return 0;
}

static int pdiff_make(struct pdiff *d, const struct render_entry *from,
                      const struct render_entry *to)
{
    memset(d, 0, sizeof *d);
    d->e[0] = from;
    d->e[1] = to;
    int rc = side_make(d, 0);
    if (!rc)
        rc = side_make(d, 1);
    if (!rc)
        rc = pair_up(d->digest[0], from->n_layers, d->digest[1], to->n_layers,
                     d->lpeer[0], d->lpeer[1]);
    if (!rc)
        rc = pair_up(d->line[0], from->n_history, d->line[1], to->n_history, d->hpeer[0],
                     d->hpeer[1]);
    return rc;
}

/* Layers of from both hold, and their bytes (-1 when a size is unknown). */
static void shared(const struct pdiff *d, int64_t *layers, int64_t *bytes)
{
    *layers = 0;
    *bytes = 0;
    for (size_t i = 0; i < d->e[0]->n_layers; i++) {
        int64_t sz = d->e[0]->layers[i].size;
        if (d->lpeer[0][i] == NONE)
            continue;
        (*layers)++;
        if (*bytes >= 0)
            *bytes = sz >= 0 && sz <= INT64_MAX - *bytes ? *bytes + sz : -1;
    }
}

/* ---- the pairing of platforms ------------------------------------------- */

struct diff {
    const struct render_image *img[2];
    char **name[2]; /* owned; NULL for an entry left out (not an image) */
    size_t *peer[2];
};

static void diff_free(struct diff *d)
{
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; d->name[k] && i < d->img[k]->n_entries; i++)
            free(d->name[k][i]);
        free(d->name[k]);
        free(d->peer[k]);
    }
}

static int names_make(struct diff *d, int k)
{
    const struct render_image *img = d->img[k];
    char buf[4096];
    d->name[k] = calloc(img->n_entries + 1, sizeof *d->name[k]);
    d->peer[k] = calloc(img->n_entries + 1, sizeof *d->peer[k]);
    if (!d->name[k] || !d->peer[k])
        return IM_ENOMEM;
    for (size_t i = 0; i < img->n_entries; i++) {
        if (img->entries[i].kind != RENDER_KIND_IMAGE)
            continue;
        (void)render_platform_short(&img->entries[i].platform, buf, sizeof buf);
        if (!(d->name[k][i] = strdup(buf)))
            return IM_ENOMEM;
    }
    return 0;
}

static int diff_make(struct diff *d, const struct render_image *from,
                     const struct render_image *to)
{
    memset(d, 0, sizeof *d);
    d->img[0] = from;
    d->img[1] = to;
    int rc = names_make(d, 0);
    if (!rc)
        rc = names_make(d, 1);
    if (!rc)
        rc = pair_up(d->name[0], from->n_entries, d->name[1], to->n_entries, d->peer[0],
                     d->peer[1]);
    return rc;
}

/* ---- JSON ----------------------------------------------------------------- */

static void jw_size(struct im_jw *w, const char *key, int64_t v)
{
    im_jw_key(w, key);
    if (v >= 0)
        im_jw_int(w, v);
    else
        im_jw_raw(w, "null");
}

static void jw_side(struct im_jw *w, const char *key, const struct render_image *img)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    (void)render_ref_display(&img->ref, disp, sizeof disp);
    im_jw_key(w, key);
    im_jw_open(w, '{');
    im_jw_kstr(w, "reference", disp);
    im_jw_kstr(w, "digest", img->digest);
    im_jw_close(w, '}');
}

/* The layers of side k that the other does not hold. */
static void jw_layers(struct im_jw *w, const char *key, const struct pdiff *d, int k)
{
    im_jw_key(w, key);
    im_jw_open(w, '[');
    for (size_t i = 0; i < d->e[k]->n_layers; i++) {
        if (d->lpeer[k][i] != NONE)
            continue;
        im_jw_open(w, '{');
        im_jw_kstr(w, "digest", d->digest[k][i]);
        jw_size(w, "size", d->e[k]->layers[i].size);
        im_jw_close(w, '}');
    }
    im_jw_close(w, ']');
}

static void jw_lines(struct im_jw *w, const char *key, const struct pdiff *d, int k)
{
    im_jw_key(w, key);
    im_jw_open(w, '[');
    for (size_t i = 0; i < d->e[k]->n_history; i++)
        if (d->hpeer[k][i] == NONE)
            im_jw_str(w, d->line[k][i]);
    im_jw_close(w, ']');
}

/* Sizes of a platform pair: from, to, and to - from (-1 / *known false when
 * either is unknown). */
static void sizes(const struct pdiff *d, int64_t *from, int64_t *to, bool *known)
{
    *from = render_entry_total(d->e[0]);
    *to = render_entry_total(d->e[1]);
    *known = *from >= 0 && *to >= 0;
}

static void jw_platform(struct im_jw *w, const char *name, const struct pdiff *d)
{
    int64_t from, to, layers, bytes;
    bool known;
    sizes(d, &from, &to, &known);
    shared(d, &layers, &bytes);
    im_jw_open(w, '{');
    im_jw_kstr(w, "platform", name);
    jw_size(w, "fromSize", from);
    jw_size(w, "toSize", to);
    im_jw_key(w, "sizeDelta");
    if (known)
        im_jw_int(w, to - from);
    else
        im_jw_raw(w, "null");
    im_jw_key(w, "shared");
    im_jw_open(w, '{');
    im_jw_kint(w, "layers", layers);
    jw_size(w, "bytes", bytes);
    im_jw_close(w, '}');
    jw_layers(w, "added", d, 1);
    jw_layers(w, "removed", d, 0);
    jw_lines(w, "dockerfileAdded", d, 1);
    jw_lines(w, "dockerfileRemoved", d, 0);
    im_jw_close(w, '}');
}

static void jw_only(struct im_jw *w, const char *key, const struct diff *d, int k)
{
    im_jw_key(w, key);
    im_jw_open(w, '[');
    for (size_t i = 0; i < d->img[k]->n_entries; i++)
        if (d->name[k][i] && d->peer[k][i] == NONE)
            im_jw_str(w, d->name[k][i]);
    im_jw_close(w, ']');
}

/* Calls each(cls, name, pdiff) for every platform pair, in from's order. */
static int each_pair(const struct diff *d,
                     void (*each)(void *, const char *, const struct pdiff *), void *cls)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < d->img[0]->n_entries; i++) {
        struct pdiff p;
        size_t j = d->peer[0][i];
        if (!d->name[0][i] || j == NONE)
            continue;
        rc = pdiff_make(&p, &d->img[0]->entries[i], &d->img[1]->entries[j]);
        if (!rc)
            each(cls, d->name[0][i], &p);
        pdiff_free(&p);
    }
    return rc;
}

static void json_each(void *cls, const char *name, const struct pdiff *p)
{
    jw_platform(cls, name, p);
}

int render_diff_json(const struct render_image *from, const struct render_image *to,
                     char **out, size_t *len)
{
    struct diff d;
    struct im_jw w = {.b = {.max = RENDER_OUTPUT_MAX}};
    int rc = diff_make(&d, from, to);
    im_jw_open(&w, '{');
    jw_side(&w, "from", from);
    jw_side(&w, "to", to);
    im_jw_key(&w, "platforms");
    im_jw_open(&w, '[');
    if (!rc)
        rc = each_pair(&d, json_each, &w);
    im_jw_close(&w, ']');
    if (!rc) {
        jw_only(&w, "onlyInFrom", &d, 0);
        jw_only(&w, "onlyInTo", &d, 1);
    }
    im_jw_close(&w, '}');
    diff_free(&d);
    if (rc) {
        free(w.b.p);
        return rc;
    }
    return im_buf_finish(&w.b, out, len);
}

/* ---- Markdown --------------------------------------------------------------- */

static void md_side(struct im_buf *b, const char *label, const struct render_image *img)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    (void)render_ref_display(&img->ref, disp, sizeof disp);
    im_buf_put(b, label);
    render__md_code(b, disp);
    im_buf_put(b, " (");
    render__md_code(b, img->digest);
    im_buf_put(b, ")\n");
}

static void md_size(struct im_buf *b, int64_t v)
{
    char size[96];
    render_size(v, size, sizeof size);
    im_buf_put(b, size);
}

static void md_sizes(struct im_buf *b, const struct pdiff *d)
{
    int64_t from, to, layers, bytes;
    bool known;
    sizes(d, &from, &to, &known);
    shared(d, &layers, &bytes);
    im_buf_put(b, "- Total size: ");
    md_size(b, from);
    im_buf_put(b, " -> ");
    md_size(b, to);
    if (known) {
        im_buf_put(b, to >= from ? ", change +" : ", change -");
        md_size(b, to >= from ? to - from : from - to);
    }
    char count[32];
    snprintf(count, sizeof count, "%lld", (long long)layers);
    im_buf_put(b, "\n- Shared: ");
    im_buf_put(b, count);
    im_buf_put(b, layers == 1 ? " layer, " : " layers, ");
    md_size(b, bytes);
    im_buf_put(b, "\n");
}

static void md_layers(struct im_buf *b, const char *title, const struct pdiff *d, int k)
{
    bool any = false;
    for (size_t i = 0; i < d->e[k]->n_layers; i++) {
        if (d->lpeer[k][i] != NONE)
            continue;
        if (!any)
            im_buf_put(b, title);
        any = true;
        im_buf_put(b, "  - ");
        render__md_code(b, d->digest[k][i]);
        im_buf_put(b, ": ");
        md_size(b, d->e[k]->layers[i].size);
        im_buf_put(b, "\n");
    }
}

static void md_lines(struct im_buf *b, const struct pdiff *d)
{
    bool any = false;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < d->e[k]->n_history; i++)
            any = any || d->hpeer[k][i] == NONE;
    if (!any)
        return;
    /* every line inside starts with "- " or "+ ": none can close the fence */
    im_buf_put(b, "\n```diff\n");
    for (size_t i = 0; i < d->e[0]->n_history; i++)
        if (d->hpeer[0][i] == NONE)
            render__md_prefixed(b, "- ", d->line[0][i]);
    for (size_t i = 0; i < d->e[1]->n_history; i++)
        if (d->hpeer[1][i] == NONE)
            render__md_prefixed(b, "+ ", d->line[1][i]);
    im_buf_put(b, "```\n");
}

static void md_each(void *cls, const char *name, const struct pdiff *p)
{
    struct im_buf *b = cls;
    im_buf_put(b, "\n#### ");
    render__md_text(b, name);
    im_buf_put(b, "\n\n");
    md_sizes(b, p);
    md_layers(b, "- Layers added:\n", p, 1);
    md_layers(b, "- Layers removed:\n", p, 0);
    md_lines(b, p);
}

static void md_only(struct im_buf *b, const char *title, const struct diff *d, int k)
{
    bool any = false;
    for (size_t i = 0; i < d->img[k]->n_entries; i++) {
        if (!d->name[k][i] || d->peer[k][i] != NONE)
            continue;
        im_buf_put(b, any ? ", " : title);
        any = true;
        render__md_text(b, d->name[k][i]);
    }
    if (any)
        im_buf_put(b, "\n\n");
}

int render_diff_markdown(const struct render_image *from, const struct render_image *to,
                         char **out, size_t *len)
{
    struct diff d;
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    int rc = diff_make(&d, from, to);
    im_buf_put(&b, "### Image diff\n\n");
    md_side(&b, "- From: ", from);
    md_side(&b, "- To: ", to);
    if (!rc)
        rc = each_pair(&d, md_each, &b);
    if (!rc) {
        im_buf_put(&b, "\n");
        md_only(&b, "Only in from: ", &d, 0);
        md_only(&b, "Only in to: ", &d, 1);
    }
    diff_free(&d);
    if (rc) {
        free(b.p);
        return rc;
    }
    return im_buf_finish(&b, out, len);
}
