/* render_html.c - the image's HTML page and the home page: one self-contained
 * document each (inline styles and SVG, no script, nothing fetched), light
 * and dark colour schemes, readable 360 px wide. Pure: builds the page in
 * memory. Every upstream string goes through html_esc, which makes it text
 * in element content, quoted attribute values and SVG <title> alike. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

/* An upstream string as text: the five characters HTML gives a meaning
 * (& < > " ') as references, control characters but tab and newline as
 * \xNN (HTML forbids most of them). Safe in element content, in quoted
 * attribute values and in SVG <title>. */
static const char *html_rep(unsigned char c, char esc[8])
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        break;
    }
    if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
        snprintf(esc, 8, "\\x%02x", c);
        return esc;
    }
    return NULL;
}

static void html_esc(struct im_buf *b, const char *s)
{
    render__escape(b, s, html_rep);
}

/* A URL path: what is not unreserved or one of "/:@" goes out %XX (then it
 * needs no HTML escaping either). */
static void url_esc(struct im_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char c = (char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~/:@", c)) {
            im_buf_putn(b, &c, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            im_buf_putn(b, enc, 3);
        }
    }
}

/* A coordinate with three decimals (SVG user units). */
static void h_num(struct im_buf *b, double v)
{
    char num[64];
    snprintf(num, sizeof num, "%.3f", v);
    im_buf_put(b, num);
}

/* ---- the layers shared between image entries ------------------------------- */

/* Every layer of every image entry, sorted by digest then entry: a digest
 * found in two entries is shared, and its rank among the shared digests
 * picks its colour, the same in every bar. */
struct layer_ref {
    const char *digest;
    size_t entry;
    size_t shared_rank; /* SIZE_MAX: in one entry only */
};

struct layer_index {
    struct layer_ref *v;
    size_t n;
};

static int layer_ref_cmp(const void *a, const void *b)
{
    const struct layer_ref *x = a, *y = b;
    int c = strcmp(x->digest, y->digest);
    if (c != 0)
        return c;
    return (x->entry > y->entry) - (x->entry < y->entry);
}

static bool is_image(const struct render_entry *e)
{
    return e->kind != RENDER_KIND_ATTESTATION;
}

/* Ranks each run of equal digests that spans two entries or more. */
static void rank_shared(struct layer_index *ix)
{
    size_t rank = 0;
    for (size_t i = 0; i < ix->n;) {
        size_t j = i + 1;
        bool shared = false;
        while (j < ix->n && strcmp(ix->v[j].digest, ix->v[i].digest) == 0) {
            shared = shared || ix->v[j].entry != ix->v[i].entry;
            j++;
        }
        for (size_t k = i; k < j; k++)
            ix->v[k].shared_rank = shared ? rank : SIZE_MAX;
        rank += shared;
        i = j;
    }
}

static int layer_index_build(const struct render_image *img, struct layer_index *ix)
{
    size_t n = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        if (is_image(&img->entries[i]))
            n += img->entries[i].n_layers;
    ix->n = 0;
    ix->v = n ? calloc(n, sizeof *ix->v) : NULL;
    if (n && !ix->v)
        return IM_ENOMEM;
    for (size_t i = 0; i < img->n_entries; i++) {
        const struct render_entry *e = &img->entries[i];
        for (size_t l = 0; is_image(e) && l < e->n_layers; l++)
            if (e->layers[l].digest)
                ix->v[ix->n++] = (struct layer_ref){e->layers[l].digest, i, SIZE_MAX};
    }
    if (ix->n)
        qsort(ix->v, ix->n, sizeof *ix->v, layer_ref_cmp);
    rank_shared(ix);
    return 0;
}

/* SIZE_MAX when the digest is in one entry only. */
static size_t shared_rank(const struct layer_index *ix, const char *digest)
{
    size_t lo = 0, hi = ix->n;
    if (!digest)
        return SIZE_MAX;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->v[mid].digest, digest) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n && strcmp(ix->v[lo].digest, digest) == 0 ? ix->v[lo].shared_rank
                                                               : SIZE_MAX;
}

/* Shared layers: one colour per digest from this palette; layers of one entry
 * only: two greys in turn, so that neighbours stay apart. */
static const char *const shared_colours[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39",
};
#define N_SHARED_COLOURS (sizeof shared_colours / sizeof shared_colours[0])

static const char *layer_colour(size_t rank, size_t position)
{
    if (rank != SIZE_MAX)
        return shared_colours[rank % N_SHARED_COLOURS];
    return position % 2 ? "#8b949e" : "#6e7781";
}

/* ---- facts of an entry ------------------------------------------------------ */

static void put_size(struct im_buf *b, const struct render_entry *e)
{
    char size[96];
    int64_t total;
    if (render__total_size(e, &total)) {
        render_size(total, size, sizeof size);
        im_buf_put(b, size);
    } else {
        im_buf_put(b, "unknown");
    }
}

/* "50.9 MB": the size without its byte count. */
static void put_short_size(struct im_buf *b, const struct render_entry *e)
{
    char size[96];
    int64_t total;
    if (!render__total_size(e, &total)) {
        im_buf_put(b, "unknown");
        return;
    }
    render_size(total, size, sizeof size);
    char *bytes = strstr(size, " (");
    if (bytes)
        *bytes = '\0';
    im_buf_put(b, size);
}

static void put_newest(struct im_buf *b, const struct render_entry *e)
{
    int64_t newest = -1;
    char date[64];
    for (size_t i = 0; i < e->n_layers; i++)
        if (e->layers[i].last_modified > newest)
            newest = e->layers[i].last_modified;
    if (newest >= 0 && render_http_date(newest, date, sizeof date) == 0)
        im_buf_put(b, date);
    else
        im_buf_put(b, "unknown");
}

static void put_platform(struct im_buf *b, const struct render_image *img,
                         const struct render_entry *e)
{
    char plat[4096];
    render__entry_platform(img, e, plat, sizeof plat);
    html_esc(b, plat);
}

static void put_count(struct im_buf *b, size_t n)
{
    char num[32];
    snprintf(num, sizeof num, "%zu", n);
    im_buf_put(b, num);
}

/* ---- the page's parts ------------------------------------------------------- */

static const char page_style[] =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;"
    "--link:#0550ae;--line:#d1d9e0;--code:#f6f8fa}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;"
    "--muted:#9198a1;--link:#58a6ff;--line:#3d444d;--code:#151b23}}"
    "*{box-sizing:border-box}"
    "body{margin:0 auto;max-width:72rem;padding:1rem;background:var(--bg);"
    "color:var(--fg);font:16px/1.5 system-ui,sans-serif}"
    "a{color:var(--link)}h1{font-size:1.5rem;overflow-wrap:anywhere}h1 "
    "code{font-size:inherit}"
    "figure{margin:1rem 0}svg.sizes{max-width:32rem}"
    "h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.1rem}"
    "code,pre{font-family:ui-monospace,monospace;font-size:.875rem;"
    "overflow-wrap:anywhere}"
    "pre{background:var(--code);padding:.75rem;white-space:pre-wrap;"
    "word-break:break-all}"
    "nav a{margin-right:1rem;display:inline-block}dd{margin:0 0 .5rem 1rem;"
    "overflow-wrap:anywhere}"
    ".muted{color:var(--muted)}.scroll{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid var(--line);"
    "vertical-align:top}td code{word-break:break-all}"
    "svg{display:block;width:100%;height:auto}svg text{fill:var(--fg);font-size:14px}"
    "svg.layers{height:2.5rem}ul.legend{display:flex;flex-wrap:wrap;gap:1rem;"
    "list-style:none;padding:0}.swatch{display:inline-block;width:.8em;height:.8em;"
    "margin-right:.3em}svg .bar{fill:var(--link)}"
    "svg .seg{stroke:var(--bg);stroke-width:1px}"
    "form{display:flex;flex-wrap:wrap;gap:.5rem}input{flex:1 1 16rem;font:inherit;"
    "padding:.25rem}button{font:inherit}"
    "@media (max-width:40rem){body{padding:.5rem}th,td{padding:.25rem}"
    "table.summary thead{display:none}table.summary tr,table.summary th,"
    "table.summary td{display:block;border:0}table.summary tr{border-bottom:1px solid "
    "var(--line);padding:.25rem 0}table.summary td::before{content:attr(data-label) "
    "': ';color:var(--muted)}}";

static void page_head(struct im_buf *b, const char *title)
{
    render__cat(
        b,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n<title>",
        (char *)NULL);
    html_esc(b, title);
    render__cat(b, " - imgmeta</title>\n<style>", page_style,
                "</style>\n</head>\n<body>\n", (char *)NULL);
}

/* "/images/ROUTE" as an href (route: render_ref_route's). */
static void links(struct im_buf *b, const struct render_image *img)
{
    char route[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 16];
    char repo[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + 16];
    struct im_ref bare = img->ref;
    bare.tag[0] = bare.digest[0] = '\0';
    render_ref_route(&img->ref, route, sizeof route);
    render_ref_route(&bare, repo, sizeof repo);
    static const char *const forms[][2] = {{"?format=json", "JSON"},
                                           {"?format=markdown", "Markdown"},
                                           {"?view=history", "History"}};
    im_buf_put(b, "<nav aria-label=\"Other forms\">");
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        if (i == 2 && !img->ref.tag[0])
            continue; /* a digest has no history */
        im_buf_put(b, "<a href=\"/images/");
        url_esc(b, route);
        render__cat(b, forms[i][0], "\">", forms[i][1], "</a>", (char *)NULL);
    }
    im_buf_put(b, "<a href=\"/repositories/");
    url_esc(b, repo);
    im_buf_put(b, "/tags\">Tags</a></nav>\n");
}

static void page_header(struct im_buf *b, const struct render_image *img,
                        const char *disp)
{
    im_buf_put(b, "<header>\n<h1><code>");
    html_esc(b, disp);
    im_buf_put(b, "</code></h1>\n");
    links(b, img);
    im_buf_put(b, "<p class=\"muted\">Digest <code>");
    html_esc(b, img->digest);
    im_buf_put(b, "</code><br>Media type <code>");
    html_esc(b, img->media_type);
    im_buf_put(b, "</code></p>\n</header>\n");
}

static size_t count_kind(const struct render_image *img, bool images)
{
    size_t n = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        n += is_image(&img->entries[i]) == images;
    return n;
}

static void summary_row(struct im_buf *b, const struct render_image *img, size_t i)
{
    const struct render_entry *e = &img->entries[i];
    char id[32];
    snprintf(id, sizeof id, "%zu", i);
    render__cat(b, "<tr><th scope=\"row\"><a href=\"#entry-", id, "\">", (char *)NULL);
    put_platform(b, img, e);
    im_buf_put(b, "</a></th><td data-label=\"Digest\"><code>");
    html_esc(b, e->digest ? e->digest : img->digest);
    im_buf_put(b, "</code></td><td data-label=\"Total size\">");
    put_size(b, e);
    im_buf_put(b, "</td><td data-label=\"Layers\">");
    put_count(b, e->n_layers);
    im_buf_put(b, "</td><td data-label=\"Newest layer\">");
    put_newest(b, e);
    im_buf_put(b, "</td></tr>\n");
}

static void summary_table(struct im_buf *b, const struct render_image *img)
{
    im_buf_put(b, "<section aria-labelledby=\"platforms\">\n<h2 id=\"platforms\">");
    put_count(b, count_kind(img, true));
    render__cat(b, count_kind(img, true) == 1 ? " platform" : " platforms",
                "</h2>\n<div class=\"scroll\" tabindex=\"0\"><table class=\"summary\">\n"
                "<thead><tr><th scope=\"col\">Platform</th><th scope=\"col\">Digest</th>"
                "<th scope=\"col\">Total size</th><th scope=\"col\">Layers</th>"
                "<th scope=\"col\">Newest layer</th></tr></thead>\n<tbody>\n",
                (char *)NULL);
    for (size_t i = 0; i < img->n_entries; i++)
        if (is_image(&img->entries[i]))
            summary_row(b, img, i);
    im_buf_put(b, "</tbody></table></div>\n");
}

/* The platforms' total sizes as horizontal bars, a label above each. */
#define CHART_W 400.0
#define CHART_ROW 44.0

static void size_chart(struct im_buf *b, const struct render_image *img)
{
    int64_t max = 0, total;
    size_t rows = count_kind(img, true), row = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        if (is_image(&img->entries[i]) && render__total_size(&img->entries[i], &total) &&
            total > max)
            max = total;
    if (rows == 0)
        return;
    im_buf_put(b, "<figure>\n<svg class=\"sizes\" viewBox=\"0 0 ");
    h_num(b, CHART_W);
    im_buf_put(b, " ");
    h_num(b, CHART_ROW * (double)rows);
    im_buf_put(b, "\" role=\"img\" aria-label=\"Total size per platform\">\n");
    for (size_t i = 0; i < img->n_entries; i++) {
        const struct render_entry *e = &img->entries[i];
        if (!is_image(e))
            continue;
        double y = CHART_ROW * (double)row++, w = 0;
        if (max > 0 && render__total_size(e, &total))
            w = CHART_W * (double)total / (double)max;
        im_buf_put(b, "<g class=\"platform\"><title>");
        put_platform(b, img, e);
        im_buf_put(b, ": ");
        put_size(b, e);
        im_buf_put(b, "</title><text x=\"0\" y=\"");
        h_num(b, y + 16);
        im_buf_put(b, "\">");
        put_platform(b, img, e);
        im_buf_put(b, ": ");
        put_short_size(b, e);
        im_buf_put(b, "</text><rect class=\"bar\" x=\"0\" y=\"");
        h_num(b, y + 22);
        im_buf_put(b, "\" width=\"");
        h_num(b, w);
        im_buf_put(b, "\" height=\"16\"></rect></g>\n");
    }
    im_buf_put(b, "</svg>\n<figcaption class=\"muted\">Compressed transfer size per "
                  "platform, not on-disk size.</figcaption>\n</figure>\n</section>\n");
}

/* A layer's digest, size and date, each after its separator. */
static void layer_facts(struct im_buf *b, const struct render_layer *l,
                        const char *before_size, const char *before_date)
{
    char date[64], size[96];
    html_esc(b, l->digest);
    render_size(l->size, size, sizeof size);
    render__cat(b, before_size, size, (char *)NULL);
    if (l->last_modified >= 0 &&
        render_http_date(l->last_modified, date, sizeof date) == 0)
        render__cat(b, before_date, date, (char *)NULL);
}

static void layer_title(struct im_buf *b, const struct render_layer *l, bool shared)
{
    im_buf_put(b, "<title>");
    layer_facts(b, l, "\nSize: ", "\nLast-Modified: ");
    if (shared)
        im_buf_put(b, "\nShared with another platform");
    im_buf_put(b, "</title>");
}

/* One stacked bar: a segment per layer, as wide as its share of the bytes. */
#define BAR_W 1000.0

static void layer_bar(struct im_buf *b, const struct render_image *img,
                      const struct render_entry *e, const struct layer_index *ix)
{
    int64_t total = 0;
    double x = 0;
    for (size_t i = 0; i < e->n_layers; i++)
        if (e->layers[i].size > 0 && e->layers[i].size <= INT64_MAX - total)
            total += e->layers[i].size;
    im_buf_put(b, "<svg class=\"layers\" viewBox=\"0 0 1000 40\" "
                  "preserveAspectRatio=\"none\" role=\"img\" aria-label=\"");
    put_count(b, e->n_layers);
    im_buf_put(b, " layers of ");
    put_platform(b, img, e);
    im_buf_put(b, ", widths proportional to their sizes\">\n");
    for (size_t i = 0; i < e->n_layers; i++) {
        const struct render_layer *l = &e->layers[i];
        double w = total > 0 && l->size > 0 ? BAR_W * (double)l->size / (double)total : 0;
        size_t rank = is_image(e) ? shared_rank(ix, l->digest) : SIZE_MAX;
        render__cat(b, "<rect class=\"seg\" fill=\"", layer_colour(rank, i), "\" x=\"",
                    (char *)NULL);
        h_num(b, x);
        im_buf_put(b, "\" y=\"0\" width=\"");
        h_num(b, w);
        im_buf_put(b, "\" height=\"40\">");
        layer_title(b, l, rank != SIZE_MAX);
        im_buf_put(b, "</rect>\n");
        x += w;
    }
    im_buf_put(b, "</svg>\n");
}

static void history(struct im_buf *b, const struct render_entry *e)
{
    char date[64];
    im_buf_put(b, "<details>\n<summary>Dockerfile history (");
    put_count(b, e->n_history);
    render__cat(b, e->n_history == 1 ? " step" : " steps", ")</summary>\n<pre><code>",
                (char *)NULL);
    for (size_t i = 0; i < e->n_history; i++) {
        char *line = render__history_line_dated(e, i, date, sizeof date);
        if (!line) {
            b->err = b->err ? b->err : IM_ENOMEM;
            return;
        }
        render__cat(b, "<span class=\"muted\"># ", date, "</span>\n", (char *)NULL);
        html_esc(b, line);
        im_buf_put(b, "\n");
        free(line);
    }
    im_buf_put(b, "</code></pre>\n</details>\n");
}

static void labels(struct im_buf *b, const struct render_entry *e)
{
    if (e->n_labels == 0)
        return;
    im_buf_put(b, "<details>\n<summary>Labels (");
    put_count(b, e->n_labels);
    im_buf_put(b, ")</summary>\n<dl>\n");
    for (size_t i = 0; i < e->n_labels; i++) {
        im_buf_put(b, "<dt><code>");
        html_esc(b, e->labels[i].key);
        im_buf_put(b, "</code></dt><dd>");
        html_esc(b, e->labels[i].value);
        im_buf_put(b, "</dd>\n");
    }
    im_buf_put(b, "</dl>\n</details>\n");
}

static void layer_list(struct im_buf *b, const struct render_entry *e)
{
    im_buf_put(b, "<details>\n<summary>Layers</summary>\n<ol>\n");
    for (size_t i = 0; i < e->n_layers; i++) {
        const struct render_layer *l = &e->layers[i];
        im_buf_put(b, "<li><code>");
        layer_facts(b, l, "</code><br>", ", ");
        im_buf_put(b, "<br><span class=\"muted\">");
        html_esc(b, l->media_type ? l->media_type : "unknown media type");
        im_buf_put(b, "</span></li>\n");
    }
    im_buf_put(b, "</ol>\n</details>\n");
}

static void entry_section(struct im_buf *b, const struct render_image *img, size_t i,
                          const struct layer_index *ix)
{
    const struct render_entry *e = &img->entries[i];
    char id[32];
    snprintf(id, sizeof id, "%zu", i);
    render__cat(b, "<section class=\"entry\" aria-labelledby=\"entry-", id,
                "\">\n<h2 id=\"entry-", id, "\">", (char *)NULL);
    put_platform(b, img, e);
    im_buf_put(b, "</h2>\n<p>");
    put_size(b, e);
    im_buf_put(b, ", ");
    put_count(b, e->n_layers);
    im_buf_put(b, e->n_layers == 1 ? " layer" : " layers");
    im_buf_put(b, "<br><span class=\"muted\">Media type <code>");
    html_esc(b, e->media_type);
    im_buf_put(b, "</code></span></p>\n");
    layer_bar(b, img, e, ix);
    labels(b, e);
    history(b, e);
    layer_list(b, e);
    im_buf_put(b, "</section>\n");
}

static void attestation_row(struct im_buf *b, const struct render_entry *e)
{
    im_buf_put(b, "<tr><td><code>");
    html_esc(b, e->attests);
    im_buf_put(b, "</code></td><td><code>");
    html_esc(b, e->digest);
    im_buf_put(b, "</code></td><td>");
    put_size(b, e);
    im_buf_put(b, "</td><td>");
    put_count(b, e->n_layers);
    im_buf_put(b, "</td></tr>\n");
}

static void attestations(struct im_buf *b, const struct render_image *img)
{
    if (count_kind(img, false) == 0)
        return;
    im_buf_put(b,
               "<section aria-labelledby=\"attestations\">\n"
               "<h2 id=\"attestations\">Attestations</h2>\n"
               "<div class=\"scroll\" tabindex=\"0\"><table class=\"attestations\">\n"
               "<thead><tr><th scope=\"col\">Attests</th><th scope=\"col\">Digest</th>"
               "<th scope=\"col\">Size</th><th scope=\"col\">Layers</th></tr></thead>\n"
               "<tbody>\n");
    for (size_t i = 0; i < img->n_entries; i++)
        if (!is_image(&img->entries[i]))
            attestation_row(b, &img->entries[i]);
    im_buf_put(b, "</tbody></table></div>\n</section>\n");
}

/* ---- the tag's history: total size over time -------------------------------- */

/* The distinct platforms of the changes, in the order first met (newest
 * change first), at most HCHART_SERIES_MAX: each is one series, coloured
 * from the page's palette by its position. */
#define HCHART_SERIES_MAX 64
#define HCHART_W 600.0
#define HCHART_H 240.0
#define HCHART_PAD 12.0

struct hchart {
    const struct render_change *c;
    size_t n;
    const char *series[HCHART_SERIES_MAX];
    size_t n_series;
    int64_t t0, t1, max; /* time range, largest known size */
    size_t points;       /* changes' platforms with a known size */
};

static void hchart_scan(struct hchart *h)
{
    h->t0 = INT64_MAX;
    h->t1 = INT64_MIN;
    for (size_t i = 0; i < h->n; i++) {
        const struct render_change *c = &h->c[i];
        h->t0 = c->seen < h->t0 ? c->seen : h->t0;
        h->t1 = c->seen > h->t1 ? c->seen : h->t1;
        for (size_t j = 0; j < c->n_platforms; j++) {
            const struct render_psize *p = &c->platforms[j];
            size_t k = 0;
            if (!p->platform || p->total_size < 0)
                continue;
            while (k < h->n_series && strcmp(h->series[k], p->platform) != 0)
                k++;
            if (k == h->n_series && h->n_series < HCHART_SERIES_MAX)
                h->series[h->n_series++] = p->platform;
            if (k < h->n_series) {
                h->points++;
                h->max = p->total_size > h->max ? p->total_size : h->max;
            }
        }
    }
}

/* The size of series k in change c, or -1 when c does not list it. */
static int64_t hchart_size(const struct hchart *h, const struct render_change *c,
                           size_t k)
{
    for (size_t j = 0; j < c->n_platforms; j++)
        if (c->platforms[j].platform && c->platforms[j].total_size >= 0 &&
            strcmp(c->platforms[j].platform, h->series[k]) == 0)
            return c->platforms[j].total_size;
    return -1;
}

static void hchart_pos(const struct hchart *h, int64_t t, int64_t size, double *x,
                       double *y)
{
    double span = (double)(h->t1 - h->t0);
    *x = HCHART_W / 2;
    if (span > 0)
        *x = HCHART_PAD + (HCHART_W - 2 * HCHART_PAD) * (double)(t - h->t0) / span;
    *y = HCHART_H - HCHART_PAD;
    if (h->max > 0)
        *y -= (HCHART_H - 2 * HCHART_PAD) * (double)size / (double)h->max;
}

static void hchart_xy(struct im_buf *b, const struct hchart *h, int64_t t, int64_t size)
{
    double x, y;
    hchart_pos(h, t, size, &x, &y);
    h_num(b, x);
    im_buf_put(b, ",");
    h_num(b, y);
}

/* One point: a circle with its facts in a <title> (date, digest, platform,
 * size, a line each). */
static void hchart_point(struct im_buf *b, const struct hchart *h,
                         const struct render_change *c, size_t k, int64_t size)
{
    char when[64], sz[96];
    double x, y;
    hchart_pos(h, c->seen, size, &x, &y);
    if (render_rfc3339(c->seen, when, sizeof when) < 0)
        snprintf(when, sizeof when, "unknown date");
    render_size(size, sz, sizeof sz);
    render__cat(b, "<circle class=\"point\" r=\"4\" fill=\"",
                shared_colours[k % N_SHARED_COLOURS], "\" cx=\"", (char *)NULL);
    h_num(b, x);
    im_buf_put(b, "\" cy=\"");
    h_num(b, y);
    render__cat(b, "\"><title>", when, "\n", (char *)NULL);
    html_esc(b, c->digest ? c->digest : "");
    im_buf_put(b, "\n");
    html_esc(b, h->series[k]);
    render__cat(b, "\n", sz, "</title></circle>\n", (char *)NULL);
}

/* Series k: a line through its points, oldest first (the changes come
 * newest first), then the points. */
static void hchart_series(struct im_buf *b, const struct hchart *h, size_t k)
{
    size_t have = 0;
    render__cat(
        b, "<g class=\"series\"><polyline fill=\"none\" stroke-width=\"2\" stroke=\"",
        shared_colours[k % N_SHARED_COLOURS], "\" points=\"", (char *)NULL);
    for (size_t i = h->n; i-- > 0;) {
        int64_t size = hchart_size(h, &h->c[i], k);
        if (size < 0)
            continue;
        im_buf_put(b, have++ ? " " : "");
        hchart_xy(b, h, h->c[i].seen, size);
    }
    im_buf_put(b, "\"></polyline>\n");
    for (size_t i = h->n; i-- > 0;) {
        int64_t size = hchart_size(h, &h->c[i], k);
        if (size >= 0)
            hchart_point(b, h, &h->c[i], k, size);
    }
    im_buf_put(b, "</g>\n");
}

static void hchart_legend(struct im_buf *b, const struct hchart *h)
{
    im_buf_put(b, "<ul class=\"legend\">");
    for (size_t k = 0; k < h->n_series; k++) {
        render__cat(b, "<li><span class=\"swatch\" style=\"background:",
                    shared_colours[k % N_SHARED_COLOURS], "\"></span>", (char *)NULL);
        html_esc(b, h->series[k]);
        im_buf_put(b, "</li>");
    }
    im_buf_put(b, "</ul>\n");
}

/* The tag's changes (newest first, as the store gives them) as a chart of
 * total size over time, one series per platform; nothing without changes.
 * One change is one point per platform, and the caption says so. */
static void history_chart(struct im_buf *b, const struct render_change *c, size_t n)
{
    struct hchart h = {.c = c, .n = n};
    char count[32];
    if (!c || n == 0)
        return;
    hchart_scan(&h);
    snprintf(count, sizeof count, "%zu", n);
    render__cat(b,
                "<section aria-labelledby=\"size-history\">\n<h2 id=\"size-history\">"
                "Size over time</h2>\n",
                (char *)NULL);
    if (h.points == 0) {
        render__cat(b, "<p class=\"muted\">", count, n == 1 ? " change" : " changes",
                    " of this tag seen, none with a known size.</p>\n</section>\n",
                    (char *)NULL);
        return;
    }
    im_buf_put(b, "<figure>\n<svg class=\"history\" viewBox=\"0 0 ");
    h_num(b, HCHART_W);
    im_buf_put(b, " ");
    h_num(b, HCHART_H);
    im_buf_put(b, "\" role=\"img\" aria-label=\"Total size per platform at each change "
                  "of this tag\">\n");
    for (size_t k = 0; k < h.n_series; k++)
        hchart_series(b, &h, k);
    im_buf_put(b, "</svg>\n");
    hchart_legend(b, &h);
    render__cat(b, "<figcaption class=\"muted\">",
                n == 1 ? "One change of this tag seen so far: one point per platform."
                       : "Compressed total size per platform at each change of this "
                         "tag, oldest left.",
                "</figcaption>\n</figure>\n</section>\n", (char *)NULL);
}

int render_html(const struct render_image *img, char **out, size_t *len)
{
    return render_html_with_history(img, NULL, 0, out, len);
}

int render_html_with_history(const struct render_image *img,
                             const struct render_change *changes, size_t n_changes,
                             char **out, size_t *len)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    struct layer_index ix = {NULL, 0};
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];

    if (layer_index_build(img, &ix) != 0)
        b.err = IM_ENOMEM;
    render_ref_display(&img->ref, disp, sizeof disp);
    page_head(&b, disp);
    page_header(&b, img, disp);
    im_buf_put(&b, "<main>\n");
    summary_table(&b, img);
    size_chart(&b, img);
    history_chart(&b, changes, n_changes);
    for (size_t i = 0; i < img->n_entries; i++)
        if (is_image(&img->entries[i]))
            entry_section(&b, img, i, &ix);
    attestations(&b, img);
    im_buf_put(&b, "</main>\n<footer class=\"muted\"><p>Rendered by imgmeta from the "
                   "registry's manifests and configs.</p></footer>\n</body>\n</html>\n");
    free(ix.v);
    return im_buf_finish(&b, out, len);
}

/* The form that asks for a reference (GET /images?ref=). */
static const char ref_form[] =
    "<form method=\"get\" action=\"/images\" role=\"search\">\n"
    "<label for=\"ref\">Image reference</label>\n"
    "<input id=\"ref\" name=\"ref\" required maxlength=\"600\" "
    "placeholder=\"python:3.7-slim\" autocomplete=\"off\" spellcheck=\"false\">\n"
    "<button type=\"submit\">Show</button>\n</form>\n";

/* "sha256:0123456789ab": the algorithm and the first 12 hex digits. */
static void short_digest(struct im_buf *b, const char *digest)
{
    char cut[IM_DIGEST_MAX];
    const char *colon = strchr(digest, ':');
    size_t keep = colon ? (size_t)(colon - digest) + 13 : 12;
    im_strlcpy(cut, digest, keep + 1 < sizeof cut ? keep + 1 : sizeof cut);
    html_esc(b, cut);
}

/* One row per platform of w (one saying so when it has none yet). */
static void watched_rows(struct im_buf *b, const struct render_watched *w)
{
    char route[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 16];
    char size[96];
    size_t rows = w->n_platforms ? w->n_platforms : 1;
    render_ref_route(w->ref, route, sizeof route);
    for (size_t i = 0; i < rows; i++) {
        im_buf_put(b, "<tr><th scope=\"row\"><a href=\"/images/");
        url_esc(b, route);
        im_buf_put(b, "\">");
        html_esc(b, w->image);
        im_buf_put(b, "</a></th><td data-label=\"Platform\">");
        if (w->n_platforms == 0) {
            render__cat(b, "</td><td data-label=\"Total size\">",
                        w->digest[0] ? "no platforms" : "no answer from its registry yet",
                        "</td><td data-label=\"Digest\"><code>", (char *)NULL);
        } else {
            html_esc(b, w->platforms[i].platform);
            render_size(w->platforms[i].total_size, size, sizeof size);
            render__cat(b, "</td><td data-label=\"Total size\">", size,
                        "</td><td data-label=\"Digest\"><code>", (char *)NULL);
        }
        short_digest(b, w->digest);
        im_buf_put(b, "</code></td></tr>\n");
    }
}

static void watched_table(struct im_buf *b, const struct render_watched *w, size_t n)
{
    im_buf_put(b, "<section aria-labelledby=\"watched\">\n<h2 id=\"watched\">Watched "
                  "images</h2>\n<div class=\"scroll\" tabindex=\"0\"><table "
                  "class=\"summary\">\n<thead><tr><th scope=\"col\">Image</th>"
                  "<th scope=\"col\">Platform</th><th scope=\"col\">Total size</th>"
                  "<th scope=\"col\">Digest</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < n; i++)
        watched_rows(b, &w[i]);
    im_buf_put(b, "</tbody></table></div>\n</section>\n");
}

int render_html_home(char **out, size_t *len)
{
    return render_html_home_watched(NULL, 0, out, len);
}

int render_html_home_watched(const struct render_watched *w, size_t n, char **out,
                             size_t *len)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    page_head(&b, "Container images");
    render__cat(&b,
                "<header>\n<h1>imgmeta</h1>\n<p>What exactly is in this container "
                "image, per platform?</p>\n</header>\n<main>\n",
                ref_form,
                "<p class=\"muted\">For example <a "
                "href=\"/images/python/3.7-slim\">python:3.7-slim</a>; the same "
                "pages as JSON or Markdown with <code>?format=json</code> or "
                "<code>?format=markdown</code>.</p>\n",
                (char *)NULL);
    if (w && n > 0)
        watched_table(&b, w, n);
    im_buf_put(&b, "</main>\n</body>\n</html>\n");
    return im_buf_finish(&b, out, len);
}

int render_html_not_found(const struct im_ref *ref, char **out, size_t *len)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    render_ref_display(ref, disp, sizeof disp);
    page_head(&b, disp);
    im_buf_put(&b, "<header>\n<h1><code>");
    html_esc(&b, disp);
    render__cat(&b,
                "</code></h1>\n</header>\n<main>\n<p><strong>does not exist</strong> "
                "(yet?)</p>\n",
                ref_form, "</main>\n</body>\n</html>\n", (char *)NULL);
    return im_buf_finish(&b, out, len);
}
