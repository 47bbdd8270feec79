/* test_render_html.c - the HTML page: hostile upstream text stays text in
 * every position it reaches (element content, attribute values, SVG
 * <title>), one bar segment per layer, a shared layer in the same colour in
 * every bar, the links, the home page. The model is built by hand here, as
 * render_image_build would leave it. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define SCRIPT "<script>alert(1)</script>"
#define IMG "\"><img src=x onerror=alert(1)>"
#define SVG_END "</svg>"
#define HOSTILE SCRIPT IMG SVG_END "'&"

#define D_SHARED "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define D_ROOT "sha256:0000000000000000000000000000000000000000000000000000000000000000"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Two platforms sharing their first layer, one attestation; upstream text
 * (os, variant, media types, history, a layer digest) carries the payloads. */
struct fixture {
    struct render_layer la[3], lb[2], lt[1];
    struct render_history ha[2];
    struct render_label labels[1];
    struct render_entry e[3];
    struct render_image img;
};

static void fixture_init(struct fixture *f, const char *hostile)
{
    memset(f, 0, sizeof *f);
    f->la[0] = (struct render_layer){(char *)D_SHARED, 30000000, (char *)hostile,
                                     1531788257,       NULL,     0};
    f->la[1] =
        (struct render_layer){(char *)D_A, 10000000, (char *)"tar+gzip", -1, NULL, 0};
    f->la[2] =
        (struct render_layer){(char *)hostile, 239, (char *)"tar+gzip", -1, NULL, 0};
    f->lb[0] = f->la[0];
    f->lb[1] =
        (struct render_layer){(char *)D_B, 5000000, (char *)"tar+gzip", -1, NULL, 0};
    f->lt[0] = (struct render_layer){(char *)D_B, 18778, (char *)"application/json",
                                     -1,          NULL,  0};
    f->ha[0] = (struct render_history){1531788484,
                                       (char *)"2018-07-17T00:28:04Z",
                                       (char *)"/bin/sh -c #(nop) ADD file:x in / ",
                                       NULL,
                                       false,
                                       {false, NULL, 0}};
    f->ha[1] = (struct render_history){1531788484,      (char *)"2018-07-17T00:28:04Z",
                                       (char *)hostile, NULL,
                                       false,           {false, NULL, 0}};
    struct render_entry *a = &f->e[0], *b = &f->e[1], *t = &f->e[2];
    a->platform =
        (struct render_platform){.os = (char *)hostile, .architecture = (char *)"amd64"};
    a->digest = (char *)D_A;
    a->media_type = (char *)hostile;
    f->labels[0] = (struct render_label){(char *)hostile, (char *)hostile};
    a->labels = f->labels;
    a->n_labels = 1;
    a->history = f->ha;
    a->n_history = 2;
    a->layers = f->la;
    a->n_layers = 3;
    b->platform = (struct render_platform){.os = (char *)"linux",
                                           .architecture = (char *)"arm64",
                                           .variant = (char *)hostile};
    b->digest = (char *)D_B;
    b->media_type = (char *)"application/vnd.oci.image.manifest.v1+json";
    b->layers = f->lb;
    b->n_layers = 2;
    t->kind = RENDER_KIND_ATTESTATION;
    t->platform = (struct render_platform){.os = (char *)"unknown",
                                           .architecture = (char *)"unknown"};
    t->digest = (char *)D_ROOT;
    t->media_type = (char *)"application/vnd.oci.image.manifest.v1+json";
    t->attests = (char *)D_A;
    t->layers = f->lt;
    t->n_layers = 1;
    im_strlcpy(f->img.ref.registry, "docker.io", sizeof f->img.ref.registry);
    im_strlcpy(f->img.ref.repository, "library/demo", sizeof f->img.ref.repository);
    im_strlcpy(f->img.ref.tag, "1.0", sizeof f->img.ref.tag);
    f->img.digest = (char *)D_ROOT;
    f->img.media_type = (char *)hostile;
    f->img.is_list = true;
    f->img.entries = f->e;
    f->img.n_entries = 3;
}

static char *page(const struct render_image *img)
{
    char *html = NULL;
    size_t len = 0;
    cr_assert_eq(render_html(img, &html, &len), 0);
    cr_assert_eq(strlen(html), len);
    return html;
}

Test(html, hostile_text_stays_text)
{
    struct fixture f;
    fixture_init(&f, HOSTILE);
    char *html = page(&f.img);
    /* nothing upstream opened an element or closed the SVG early */
    cr_expect_eq(count(html, "<script"), 0, "%s", html);
    cr_expect_eq(count(html, "<img"), 0);
    cr_expect_eq(count(html, "<svg"), count(html, SVG_END));
    cr_expect_eq(count(html, "<svg"), 3); /* the size chart and two bars */
    /* the payloads are there, as text */
    const char *esc = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x "
                      "onerror=alert(1)&gt;&lt;/svg&gt;&#39;&amp;";
    cr_expect_geq(count(html, esc), 10, "%s", html);
    /* in an attribute value: the bar's aria-label names the platform */
    cr_expect_not_null(strstr(html, "aria-label=\"3 layers of &lt;script&gt;"), "%s",
                       html);
    /* in SVG <title>: the layer whose digest is the payload */
    cr_expect_not_null(strstr(html, "<title>&lt;script&gt;"));
    /* a label's key and value */
    cr_expect_not_null(strstr(html, "<dt><code>&lt;script&gt;"));
    cr_expect_not_null(strstr(html, "<dd>&lt;script&gt;"));
    /* in the history */
    cr_expect_not_null(strstr(html, "</span>\nRUN &lt;script&gt;alert(1)"));
    free(html);
}

Test(html, control_characters_are_shown_not_sent)
{
    struct fixture f;
    fixture_init(&f, "a\x01"
                     "b\x1b[31mc\x7f");
    char *html = page(&f.img);
    cr_expect_not_null(strstr(html, "a\\x01b\\x1b[31mc\\x7f"));
    for (const char *p = html; *p; p++)
        cr_assert(*p == '\n' || (unsigned char)*p >= 0x20, "a control byte at %zu",
                  (size_t)(p - html));
    free(html);
}

/* The fill of each segment of the bar that starts at bar, in order. */
static size_t fills(const char *bar, char out[][16], size_t max)
{
    const char *end = strstr(bar, SVG_END);
    size_t n = 0;
    for (const char *p = strstr(bar, "<rect class=\"seg\" fill=\"");
         p && p < end && n < max; p = strstr(p + 1, "<rect class=\"seg\" fill=\"")) {
        p += strlen("<rect class=\"seg\" fill=\"");
        size_t len = strcspn(p, "\"");
        cr_assert_lt(len, 16);
        memcpy(out[n], p, len);
        out[n++][len] = '\0';
    }
    return n;
}

Test(html, one_segment_per_layer_shared_layers_alike)
{
    struct fixture f;
    fixture_init(&f, "x");
    char *html = page(&f.img);
    char a[8][16], b[8][16];
    const char *bar_a = strstr(html, "<svg class=\"layers\"");
    cr_assert_not_null(bar_a);
    const char *bar_b = strstr(bar_a + 1, "<svg class=\"layers\"");
    cr_assert_not_null(bar_b);
    cr_expect_null(
        strstr(bar_b + 1, "<svg class=\"layers\"")); /* none for attestations */
    cr_assert_eq(fills(bar_a, a, 8), 3);
    cr_assert_eq(fills(bar_b, b, 8), 2);
    cr_expect_str_eq(a[0], b[0], "the shared layer is drawn alike");
    cr_expect_str_neq(a[1], a[0]);
    cr_expect_str_neq(b[1], b[0]);
    cr_expect_str_neq(a[1], a[2], "neighbours stay apart");
    /* widths in proportion: 30 MB of 40,000,239 bytes */
    cr_expect_not_null(strstr(bar_a, "x=\"0.000\" y=\"0\" width=\"749.996\""), "%s",
                       bar_a);
    /* each segment's title: digest, size, Last-Modified */
    cr_expect_not_null(strstr(bar_a, "<title>" D_SHARED "\nSize: 30.0 MB (30000000 "
                                     "bytes)\nLast-Modified: Tue, 17 Jul 2018 00:44:17 "
                                     "GMT\nShared with another platform</title>"));
    free(html);
}

Test(html, summary_attestations_history_and_links)
{
    struct fixture f;
    fixture_init(&f, "x");
    char *html = page(&f.img);
    cr_expect_not_null(strstr(html, "<title>demo:1.0 - imgmeta</title>"));
    cr_expect_not_null(strstr(html, "<h2 id=\"platforms\">2 platforms</h2>"));
    cr_expect_eq(count(html, "<tr><th scope=\"row\">"), 2);
    cr_expect_not_null(strstr(html, "<td data-label=\"Total size\">40.0 MB (40000239 "
                                    "bytes)</td><td data-label=\"Layers\">3</td>"
                                    "<td data-label=\"Newest layer\">Tue, 17 Jul 2018 "
                                    "00:44:17 GMT</td>"),
                       "%s", html);
    cr_expect_not_null(strstr(html, "<h2 id=\"attestations\">Attestations</h2>"));
    cr_expect_not_null(strstr(html, "<tr><td><code>" D_A "</code></td><td><code>" D_ROOT
                                    "</code></td><td>18.8 KB (18778 bytes)</td>"));
    cr_expect_not_null(strstr(html, "<summary>Dockerfile history (2 steps)</summary>"));
    cr_expect_not_null(strstr(html, "ADD file:x in / \n"));
    cr_expect_not_null(strstr(html, "href=\"/images/demo/1.0?format=json\""));
    cr_expect_not_null(strstr(html, "href=\"/images/demo/1.0?format=markdown\""));
    cr_expect_not_null(strstr(html, "href=\"/images/demo/1.0?view=history\""));
    cr_expect_not_null(strstr(html, "href=\"/repositories/demo/tags\""));
    cr_expect_not_null(strstr(html, "prefers-color-scheme:dark"));
    cr_expect_null(strstr(html, "<script"));
    cr_expect_null(strstr(html, "http"), "nothing fetched or linked off the page");
    free(html);
}

Test(html, routes_of_references)
{
    struct im_ref r;
    char buf[1024];
    memset(&r, 0, sizeof r);
    im_strlcpy(r.registry, "docker.io", sizeof r.registry);
    im_strlcpy(r.repository, "library/python", sizeof r.repository);
    im_strlcpy(r.tag, "3.7-slim", sizeof r.tag);
    cr_assert_eq(render_ref_route(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "python/3.7-slim");
    im_strlcpy(r.digest, D_A, sizeof r.digest);
    cr_assert_eq(render_ref_route(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "python:3.7-slim@" D_A);
    r.tag[0] = '\0';
    cr_assert_eq(render_ref_route(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "python@" D_A);
    r.digest[0] = '\0';
    im_strlcpy(r.tag, "1", sizeof r.tag);
    im_strlcpy(r.repository, "my.org/app", sizeof r.repository);
    cr_assert_eq(render_ref_route(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "docker.io/my.org/app/1"); /* not read as registry my.org */
    im_strlcpy(r.registry, "localhost:5000", sizeof r.registry);
    im_strlcpy(r.repository, "team/app", sizeof r.repository);
    cr_assert_eq(render_ref_route(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "localhost:5000/team/app/1");
    cr_expect_eq(render_ref_route(&r, buf, 8), -1);
}

Test(html, not_found_page_names_the_reference)
{
    struct im_ref r;
    char *html = NULL;
    size_t len = 0;
    memset(&r, 0, sizeof r);
    im_strlcpy(r.registry, "docker.io", sizeof r.registry);
    im_strlcpy(r.repository, "library/python", sizeof r.repository);
    im_strlcpy(r.tag, "3.7-nope", sizeof r.tag);
    cr_assert_eq(render_html_not_found(&r, &html, &len), 0);
    cr_expect_not_null(strstr(html, "<title>python:3.7-nope - imgmeta</title>"));
    cr_expect_not_null(strstr(html, "<strong>does not exist</strong> (yet?)"));
    cr_expect_not_null(strstr(html, "action=\"/images\""), "the form to ask again");
    free(html);
}

Test(html, home_page_has_the_form)
{
    char *html = NULL;
    size_t len = 0;
    cr_assert_eq(render_html_home(&html, &len), 0);
    cr_expect_not_null(strstr(html, "<form method=\"get\" action=\"/images\""));
    cr_expect_not_null(strstr(html, "<input id=\"ref\" name=\"ref\""));
    cr_expect_null(strstr(html, "<script"));
    free(html);
}

/* ---- the tag's history as a chart of total size over time ---- */

static char *page_with_history(const struct render_image *img,
                               const struct render_change *c, size_t n)
{
    char *html = NULL;
    size_t len = 0;
    cr_assert_eq(render_html_with_history(img, c, n, &html, &len), 0);
    cr_assert_eq(strlen(html), len);
    return html;
}

/* The size-over-time section of html, its own copy (static storage). */
static const char *history_section(const char *html)
{
    static char part[64 * 1024];
    const char *s = strstr(html, "<section aria-labelledby=\"size-history\">");
    cr_assert_not_null(s, "%s", html);
    const char *e = strstr(s, "</section>");
    cr_assert_not_null(e);
    cr_assert_lt((size_t)(e - s), sizeof part);
    memcpy(part, s, (size_t)(e - s));
    part[e - s] = '\0';
    return part;
}

Test(html_history, one_point_per_change_per_platform)
{
    struct fixture f;
    fixture_init(&f, "linux");
    /* newest first, as the store gives them; the oldest lists one platform */
    const struct render_psize p3[] = {{"linux/amd64", 3000}, {"linux/arm64", 2500}};
    const struct render_psize p2[] = {{"linux/amd64", 2000}, {"linux/arm64", 1500}};
    const struct render_psize p1[] = {{"linux/amd64", 1000}, {"linux/s390x", -1}};
    const struct render_change c[] = {{1700000200, D_B, D_A, p3, 2},
                                      {1700000100, D_A, D_SHARED, p2, 2},
                                      {1700000000, D_SHARED, NULL, p1, 2}};
    char *html = page_with_history(&f.img, c, 3);
    const char *h = history_section(html);
    cr_expect_eq(count(h, "<circle"), 5, "%s", h); /* an unknown size is no point */
    cr_expect_eq(count(h, "<polyline"), 2);        /* one line per platform */
    cr_expect_eq(count(h, "<title>"), 5);
    cr_expect_not_null(
        strstr(h, "<title>2023-11-14T22:13:20Z\n" D_SHARED "\nlinux/amd64\n"));
    /* series keep their colour: the legend's swatch and the line's stroke */
    cr_expect_not_null(strstr(h, "stroke=\"#1f77b4\""));
    cr_expect_not_null(strstr(h, "stroke=\"#ff7f0e\""));
    cr_expect_eq(count(html, "<script"), 0);
    free(html);
}

Test(html_history, hostile_platform_and_digest_escaped_in_title)
{
    struct fixture f;
    fixture_init(&f, "linux");
    const struct render_psize p2[] = {{HOSTILE, 2000}};
    const struct render_psize p1[] = {{HOSTILE, 1000}};
    const struct render_change c[] = {{1700000100, HOSTILE, HOSTILE, p2, 1},
                                      {1700000000, HOSTILE, NULL, p1, 1}};
    char *html = page_with_history(&f.img, c, 2);
    const char *h = history_section(html);
    const char *esc = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x "
                      "onerror=alert(1)&gt;&lt;/svg&gt;&#39;&amp;";
    cr_expect_eq(count(html, "<script"), 0, "%s", h);
    cr_expect_eq(count(html, "<img"), 0);
    cr_expect_eq(count(html, "<svg"), count(html, SVG_END));
    cr_expect_eq(count(h, "<circle"), 2);
    cr_expect_eq(count(h, esc), 5); /* digest and platform in 2 titles, the legend */
    cr_expect_not_null(strstr(h, "<title>2023-11-14T22:13:20Z\n&lt;script&gt;"), "%s", h);
    free(html);
}

Test(html_history, no_history_no_chart_one_change_says_so)
{
    struct fixture f;
    fixture_init(&f, "linux");
    char *plain = page(&f.img);
    char *none = page_with_history(&f.img, NULL, 0);
    cr_expect_str_eq(plain, none);
    cr_expect_null(strstr(none, "size-history"));
    const struct render_psize p1[] = {{"linux/amd64", 1000}, {"linux/arm64", 900}};
    const struct render_change c[] = {{1700000000, D_A, NULL, p1, 2}};
    char *one = page_with_history(&f.img, c, 1);
    const char *h = history_section(one);
    cr_expect_eq(count(h, "<circle"), 2);
    cr_expect_not_null(strstr(h, "One change of this tag seen so far"));
    free(plain);
    free(none);
    free(one);
}

/* ---- the home page's watched images ---- */

Test(html_home, watched_images_listed_with_sizes_and_escaped)
{
    struct im_ref py = {0}, odd = {0};
    snprintf(py.registry, sizeof py.registry, "docker.io");
    snprintf(py.repository, sizeof py.repository, "library/python");
    snprintf(py.tag, sizeof py.tag, "3.7-slim");
    odd = py;
    snprintf(odd.tag, sizeof odd.tag, "odd");
    const struct render_psize sizes[] = {{"linux/amd64", 50868652}, {HOSTILE, 239}};
    const struct render_watched w[] = {
        {"python:3.7-slim", &py, D_A, sizes, 2},
        {HOSTILE, &odd, HOSTILE, NULL, 0},
        {"python:odd", &odd, "", NULL, 0},
    };
    char *html = NULL, *plain = NULL;
    size_t len = 0, plen = 0;
    cr_assert_eq(render_html_home_watched(w, 3, &html, &len), 0);
    cr_assert_eq(strlen(html), len);
    cr_expect_not_null(strstr(html, "<h2 id=\"watched\">Watched images</h2>"));
    cr_expect_eq(count(html, "<tr><th scope=\"row\">"), 4, "%s", html);
    cr_expect_not_null(
        strstr(html, "<a href=\"/images/python/3.7-slim\">python:3.7-slim</a>"));
    cr_expect_not_null(strstr(html, "50.9 MB (50868652 bytes)"), "%s", html);
    cr_expect_not_null(strstr(html, "<code>sha256:aaaaaaaaaaaa</code>"));
    cr_expect_not_null(strstr(html, "no answer from its registry yet"));
    cr_expect_eq(count(html, "<script"), 0, "%s", html);
    cr_expect_eq(count(html, "<img"), 0);
    cr_expect_eq(count(html, "&lt;script&gt;alert(1)"), 2); /* platform, image */
    cr_expect_not_null(strstr(html, "<code>&lt;script&gt;aler</code>")); /* digest, cut */
    cr_assert_eq(render_html_home_watched(NULL, 0, &plain, &plen), 0);
    cr_expect_null(strstr(plain, "Watched images"));
    free(html);
    free(plain);
}
