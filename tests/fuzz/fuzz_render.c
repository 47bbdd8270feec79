/* fuzz_render.c - libFuzzer target: documents -> image model -> both renderers.
 *
 * The input is split at NUL bytes into up to 8 documents. Document i gets the
 * digest "d<i>" (so bodies can reference each other as "d1", "d2", ...), the
 * media type picked by its first byte from the table below (one more value:
 * the raw bytes up to the first newline), and the rest as its body; "d0" is
 * the root. Layer blobs "d1".."d3" get HEAD facts. Each
 * chunk is also fed to the string rules (Dockerfile lines, date parsers).
 * Every page, in both forms, is walked line by line (check_page): whatever
 * the upstream strings, it has exactly its heading, platform list, one
 * section per entry with its facts, one dockerfile block closed by its own
 * fence, and its layer items. The diff of the model with itself (every
 * platform paired, nothing added or removed) and with an empty one, and a
 * history naming its platforms, keep their Markdown structure too: each diff
 * block closed by the renderer's own fence, each table row its five cell
 * borders. The HTML page is walked tag by tag
 * (check_html): every '<' opens or closes an element the renderer writes
 * (no upstream string makes one), and it has one SVG bar per image entry with
 * one segment per layer. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const media_types[] = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "",
    "application/x-unknown",
};
#define N_MEDIA_TYPES (sizeof media_types / sizeof media_types[0])
#define MAX_DOCS 8

static void fuzz_strings(const char *s)
{
    int64_t t;
    char date[64];
    char *argv[5] = {(char *)s, (char *)s, (char *)"/bin/sh", (char *)"-c", (char *)s};
    struct render_strv shell = {.present = true, .v = argv, .n = 1};
    struct render_strv list = {.present = true, .v = argv, .n = 2};
    char *line = render_dockerfile_line(s, NULL);
    free(line);
    line = render_dockerfile_line(s, &shell); /* the string as its own SHELL too */
    free(line);
    line = render_dockerfile_argv(&list);
    free(line);
    list.n = 5; /* "|N" build arguments when s starts with '|' */
    line = render_dockerfile_argv(&list);
    free(line);
    if (render_history_date(s, date, sizeof date) != 0 || strlen(date) != 29)
        abort(); /* every created value gives a date line */
    (void)render_parse_rfc3339(s, &t);
    (void)render_parse_http_date(s, &t);
}

/* ---- the page's structure, whatever the upstream strings ---- */

struct lines {
    const char *p, *end;
    const char *line; /* the current line, without its '\n' */
    size_t len;
};

static bool next_line(struct lines *l)
{
    if (l->p >= l->end)
        return false;
    const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
    l->line = l->p;
    l->len = nl ? (size_t)(nl - l->p) : (size_t)(l->end - l->p);
    l->p = nl ? nl + 1 : l->end;
    return true;
}

static bool is(const struct lines *l, const char *s)
{
    return l->len == strlen(s) && memcmp(l->line, s, l->len) == 0;
}

static bool starts(const struct lines *l, const char *s)
{
    return l->len >= strlen(s) && memcmp(l->line, s, strlen(s)) == 0;
}

static void expect_line(struct lines *l, const char *s)
{
    if (!next_line(l) || !is(l, s))
        abort();
}

static void expect_start(struct lines *l, const char *s)
{
    if (!next_line(l) || !starts(l, s))
        abort();
}

/* A line outside the dockerfile block holds no \r (a line end in Markdown). */
static void no_cr(const struct lines *l)
{
    if (memchr(l->line, '\r', l->len))
        abort();
}

/* Would this piece of a line close a fence of n backticks (CommonMark: up to
 * 3 spaces, n or more backticks, then only blanks)? */
static bool closes(const char *s, size_t len, size_t n)
{
    size_t i = 0, run = 0;
    while (i < len && i < 3 && s[i] == ' ')
        i++;
    while (i < len && s[i] == '`') {
        i++;
        run++;
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return run >= n && i == len;
}

/* The dockerfile block: its fence, then lines until the first that closes
 * it, which must be the renderer's own closing fence (one per entry). */
static void expect_dockerfile(struct lines *l)
{
    size_t n = 0;
    if (!next_line(l))
        abort();
    while (n < l->len && l->line[n] == '`')
        n++;
    if (n < 3 || l->len != n + strlen("dockerfile") ||
        memcmp(l->line + n, "dockerfile", strlen("dockerfile")) != 0)
        abort();
    for (;;) {
        if (!next_line(l))
            abort();
        bool closing = false;
        for (const char *seg = l->line, *e = l->line + l->len; seg <= e && !closing;) {
            const char *cr = memchr(seg, '\r', (size_t)(e - seg));
            const char *segend = cr ? cr : e;
            closing = closes(seg, (size_t)(segend - seg), n);
            seg = segend + 1;
        }
        if (!closing)
            continue;
        if (l->len != n || memchr(l->line, '\r', l->len))
            abort(); /* closed by upstream text, not by the renderer */
        return;
    }
}

static void expect_pull(struct lines *l)
{
    expect_line(l, "```console");
    expect_start(l, "$ docker pull ");
    no_cr(l);
    expect_line(l, "```");
}

/* One entry's section, from its blank line to its last layer line. */
static void expect_entry(struct lines *l, bool has_digest)
{
    expect_line(l, "");
    expect_start(l, "### `");
    no_cr(l);
    expect_line(l, "");
    if (has_digest) {
        expect_pull(l);
        expect_line(l, "");
    }
    expect_start(l, "-\t");
    for (;;) { /* the facts */
        no_cr(l);
        if (!next_line(l))
            abort();
        if (is(l, ""))
            break;
        if (!starts(l, "-\t") && !is(l, "\t(compressed transfer size, not on-disk size)"))
            abort();
    }
    expect_dockerfile(l);
    expect_line(l, "");
    expect_line(l, "-\tLayers:");
    while (l->p < l->end && (l->p[0] == '\t')) {
        next_line(l);
        no_cr(l);
        if (!starts(l, "\t-\t`") && !starts(l, "\t\t"))
            abort();
    }
}

static void check_page(const struct render_image *img, const char *md, size_t len,
                       enum render_style style)
{
    struct lines l = {.p = md, .end = md + len};
    char count[64];
    if (len == 0 || md[len - 1] != '\n')
        abort();
    expect_start(&l, "## `");
    no_cr(&l);
    expect_line(&l, "");
    expect_pull(&l);
    expect_line(&l, "");
    if (img->is_list && img->media_type) {
        expect_start(&l, "-\tManifest MIME: `");
        no_cr(&l);
    }
    snprintf(count, sizeof count, "-\tPlatforms: %zu", img->n_entries);
    expect_line(&l, style == RENDER_STYLE_CURRENT ? count : "-\tPlatforms:");
    for (size_t i = 0; i < img->n_entries; i++) {
        expect_start(&l, "\t-\t");
        no_cr(&l);
    }
    for (size_t i = 0; i < img->n_entries; i++)
        expect_entry(&l, img->entries[i].digest != NULL);
    if (l.p != l.end)
        abort(); /* nothing after the last entry */
}

/* The JSON is written without jansson; jansson must read it and dump the
 * very same bytes back. */
static void check_json(const char *out, size_t len)
{
    json_t *j = json_loadb(out, len, 0, NULL);
    char *again = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!again || strcmp(again, out) != 0)
        abort();
    free(again);
    json_decref(j);
}

/* ---- the diff and the history: their Markdown keeps its structure ---- */

/* A table row: exactly 5 unescaped '|' (the row's cell borders). */
static void expect_row(const struct lines *l)
{
    int borders = 0;
    for (size_t i = 0; i < l->len; i++) {
        if (l->line[i] == '\\')
            i++;
        else
            borders += l->line[i] == '|';
    }
    if (borders != 5 || l->line[0] != '|')
        abort();
}

static void check_history_md(const char *md, size_t len, size_t n)
{
    struct lines l = {.p = md, .end = md + len};
    size_t rows = 0;
    expect_start(&l, "## ");
    no_cr(&l);
    expect_line(&l, "");
    if (n == 0)
        expect_line(&l, "No change seen.");
    while (next_line(&l)) {
        no_cr(&l);
        expect_row(&l);
        rows++;
    }
    if (rows != (n ? n + 2 : 0))
        abort();
}

/* Every line outside the diff blocks is one the renderer writes; every line
 * inside starts with "- " or "+ ", so none closes the block; *sections gets
 * the platform sections. */
static void check_diff_md(const char *md, size_t len, size_t *sections)
{
    static const char *const known[] = {
        "- From: ",          "- To: ", "- Total size: ", "- Shared: ",  "- Layers added:",
        "- Layers removed:", "  - ",   "Only in from: ", "Only in to: "};
    struct lines l = {.p = md, .end = md + len};
    bool block = false;
    *sections = 0;
    expect_line(&l, "### Image diff");
    while (next_line(&l)) {
        no_cr(&l);
        if (block) {
            block = !is(&l, "```");
            if (block && !starts(&l, "- ") && !starts(&l, "+ "))
                abort();
            continue;
        }
        bool ok = is(&l, "") || starts(&l, "#### ") || (block = is(&l, "```diff"));
        *sections += starts(&l, "#### ");
        for (size_t i = 0; !ok && i < sizeof known / sizeof known[0]; i++)
            ok = starts(&l, known[i]);
        if (!ok)
            abort();
    }
    if (block)
        abort();
}

/* The image against itself: every platform paired, nothing added or removed. */
static void check_self_diff(const struct render_image *img)
{
    char *out = NULL;
    size_t len = 0, sections = 0, images = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        images += img->entries[i].kind == RENDER_KIND_IMAGE;
    if (render_diff_json(img, img, &out, &len) != 0)
        abort();
    check_json(out, len);
    json_t *j = json_loadb(out, len, 0, NULL);
    json_t *p = json_object_get(j, "platforms");
    if (json_array_size(p) != images || json_array_size(json_object_get(j, "onlyInTo")))
        abort();
    for (size_t i = 0; i < json_array_size(p); i++) {
        json_t *e = json_array_get(p, i);
        if (json_array_size(json_object_get(e, "added")) ||
            json_array_size(json_object_get(e, "dockerfileRemoved")))
            abort();
    }
    json_decref(j);
    free(out);
    if (render_diff_markdown(img, img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_diff_md(out, len, &sections);
    if (sections != images)
        abort();
    free(out);
}

/* The diff with an image of no entries, both ways, and a history of one
 * change naming each entry's platform. */
static void fuzz_diff_history(const struct render_image *img)
{
    struct render_image none = {.ref = img->ref, .digest = img->digest};
    struct render_psize sizes[64];
    struct render_change change = {
        .seen = 1531787284, .digest = img->digest, .platforms = sizes};
    char names[64][128], *out = NULL;
    size_t len = 0, sections = 0;
    check_self_diff(img);
    for (int way = 0; way < 2; way++) {
        if (render_diff_markdown(way ? img : &none, way ? &none : img, &out, &len) != 0)
            abort();
        check_diff_md(out, len, &sections);
        if (sections != 0)
            abort();
        free(out);
    }
    for (size_t i = 0; i < img->n_entries && change.n_platforms < 64; i++) {
        size_t k = change.n_platforms++;
        (void)render_platform_short(&img->entries[i].platform, names[k], sizeof names[k]);
        sizes[k] = (struct render_psize){names[k], render_entry_total(&img->entries[i])};
    }
    change.previous = img->n_entries % 2 ? img->digest : NULL;
    if (render_history_markdown(&img->ref, &change, 1, &out, &len) != 0)
        abort();
    check_history_md(out, len, 1);
    free(out);
    if (render_history_json(&img->ref, &change, 1, &out, &len) != 0)
        abort();
    check_json(out, len);
    free(out);
}

/* The elements render_html writes; anything else after a '<' came from
 * upstream text that was not escaped. */
static const char *const html_tags[] = {
    "!DOCTYPE", "html", "head",  "meta",  "title",  "style",      "body",    "header",
    "h1",       "h2",   "code",  "nav",   "a",      "p",          "br",      "main",
    "section",  "div",  "table", "thead", "tr",     "th",         "tbody",   "td",
    "figure",   "svg",  "g",     "text",  "rect",   "figcaption", "details", "summary",
    "pre",      "span", "ol",    "li",    "footer", "dl",         "dt",      "dd",
};

static bool known_tag(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof html_tags / sizeof html_tags[0]; i++)
        if (strlen(html_tags[i]) == len && memcmp(html_tags[i], s, len) == 0)
            return true;
    return false;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void check_html(const struct render_image *img, const char *html)
{
    size_t images = 0, segments = 0;
    for (size_t i = 0; i < img->n_entries; i++)
        if (img->entries[i].kind != RENDER_KIND_ATTESTATION) {
            images++;
            segments += img->entries[i].n_layers;
        }
    for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
        const char *name = p + 1 + (p[1] == '/');
        size_t len = strcspn(name, " >\n");
        if (!known_tag(name, len))
            abort();
    }
    if (occurrences(html, "<svg") != occurrences(html, "</svg>") ||
        occurrences(html, "<svg class=\"layers\"") != images ||
        occurrences(html, "<rect class=\"seg\"") != segments)
        abort();
}

static void fuzz_render(const struct render_image *img)
{
    char *out = NULL;
    size_t len = 0;
    /* A built model always renders: failing here is a bug, not bad input. In
     * both forms, no upstream string may break the page's structure. */
    for (int st = RENDER_STYLE_SEED; st <= RENDER_STYLE_CURRENT; st++) {
        if (render_markdown(img, (enum render_style)st, &out, &len) != 0 ||
            strlen(out) != len)
            abort();
        check_page(img, out, len, (enum render_style)st);
        free(out);
    }
    if (render_json(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_json(out, len);
    free(out);
    if (render_html(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_html(img, out);
    free(out);
    if (render_json_summary(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_json(out, len);
    free(out);
    fuzz_diff_history(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const filters[] = {"linux/amd64", "linux/arm/v7", "windows/amd64"};
    struct im_bundle b;
    struct im_ref ref;
    struct im_error err;
    struct render_image *img = NULL;
    size_t start = 0, ndocs = 0;

    im_bundle_init(&b);
    memset(&ref, 0, sizeof ref);
    memcpy(ref.registry, "docker.io", sizeof "docker.io");
    memcpy(ref.repository, "library/fuzz", sizeof "library/fuzz");
    memcpy(ref.tag, "latest", sizeof "latest");
    memcpy(b.root_digest, "d0", 3);

    while (start < size && ndocs < MAX_DOCS) {
        const uint8_t *end = memchr(data + start, 0, size - start);
        size_t chunk = end ? (size_t)(end - (data + start)) : size - start;
        char digest[8] = {'d', (char)('0' + ndocs), '\0'};
        unsigned sel = chunk ? data[start] % (N_MEDIA_TYPES + 1) : 0;
        const char *mt = chunk && sel < N_MEDIA_TYPES ? media_types[sel] : "";
        const uint8_t *body = chunk ? data + start + 1 : data + start;
        size_t blen = chunk ? chunk - 1 : 0;
        char raw_mt[IM_MEDIATYPE_MAX];
        if (chunk && sel == N_MEDIA_TYPES) { /* raw bytes up to '\n' as the type */
            const uint8_t *nl = memchr(body, '\n', blen);
            size_t mlen = nl ? (size_t)(nl - body) : 0;
            if (mlen >= sizeof raw_mt)
                mlen = sizeof raw_mt - 1;
            memcpy(raw_mt, body, mlen);
            raw_mt[mlen] = '\0';
            mt = raw_mt;
            if (nl) {
                blen -= (size_t)(nl + 1 - body);
                body = nl + 1;
            }
        }
        char *s = malloc(blen + 1);
        if (s) {
            memcpy(s, body, blen);
            s[blen] = '\0';
            fuzz_strings(s);
            free(s);
        }
        if (im_bundle_add_doc(&b, digest, mt, body, blen) != 0)
            break;
        ndocs++;
        start += chunk + 1;
    }
    for (int i = 1; i <= 3; i++) {
        struct im_blob blob = {.size = 1000 * i,
                               .last_modified = i == 2 ? -1 : 1531787284};
        blob.digest[0] = 'd';
        blob.digest[1] = (char)('0' + i);
        if (im_bundle_add_blob(&b, &blob) != 0)
            break;
    }
    memset(&err, 0, sizeof err);
    if (render_image_build(&ref, &b, &img, &err) == 0) {
        fuzz_render(img);
        (void)render_image_filter(img, filters, size % 4 < 3 ? size % 4 : 3);
        fuzz_render(img);
        render_image_free(img);
    }
    im_bundle_free(&b);
    return 0;
}
