/* render_markdown.c - the repo-info Markdown page (docs/FORMAT.md; the
 * python-3.7-slim page and today's pages byte for byte), in the seed's form
 * or today's. Pure: builds the page in memory. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

/* The generator prints one Manifest MIME per kind of manifest, not the
 * entry's own type: this for every image manifest it reads through its
 * config (Docker schema2 and OCI alike, attestations included)... */
#define MIME_IMAGE "application/vnd.docker.distribution.manifest.v2+json"
/* ...and this for a legacy schema1 manifest. */
#define MIME_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"

/* An upstream string that sits on one line of the page: its control bytes
 * (but tab) go out as \xNN, so that none ends the line, and with it a list
 * item or a code block, early. The pages of real images have none. */
static const char *md_oneline_rep(unsigned char c, char esc[8])
{
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
        snprintf(esc, 8, "\\x%02x", c);
        return esc;
    }
    return NULL;
}

static void md_oneline(struct im_buf *b, const char *s)
{
    render__escape(b, s, md_oneline_rep);
}

/* "-\tNAME: `VALUE`\n" with an upstream VALUE. */
static void md_fact_code(struct im_buf *b, const char *name, const char *value)
{
    render__cat(b, "-\t", name, ": `", (char *)NULL);
    md_oneline(b, value);
    im_buf_put(b, "`\n");
}

static void md_pull(struct im_buf *b, const struct im_ref *ref, const char *digest)
{
    char name[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + 2];
    render_ref_pull_name(ref, name, sizeof name);
    im_buf_put(b, "\n```console\n$ docker pull ");
    md_oneline(b, name);
    im_buf_put(b, "@");
    md_oneline(b, digest);
    im_buf_put(b, "\n```\n");
}

/* A string the generator's Perl takes as true: not "" and not "0". */
static bool perl_true(const char *s)
{
    return s && s[0] && strcmp(s, "0") != 0;
}

static void md_json_fact(struct im_buf *b, const char *name, const struct render_strv *s)
{
    render__cat(b, "-\t", name, "`", (char *)NULL);
    render__json_strv(b, s->v, s->n);
    im_buf_put(b, "`\n");
}

static void md_facts(struct im_buf *b, const struct render_entry *e)
{
    char size[96];
    int64_t total;

    im_buf_put(b, "\n");
    if (perl_true(e->docker_version)) {
        im_buf_put(b, "-\tDocker Version: ");
        md_oneline(b, e->docker_version);
        im_buf_put(b, "\n");
    }
    if (e->kind == RENDER_KIND_UNKNOWN) /* a nested index: the generator has no kind */
        md_fact_code(b, "Manifest MIME", e->media_type);
    else
        md_fact_code(b, "Manifest MIME", e->schema1 ? MIME_SCHEMA1 : MIME_IMAGE);
    total = render_entry_total(e);
    if (total >= 0) {
        render_size(total, size, sizeof size);
        render__cat(b, "-\tTotal Size: **", size,
                    "**  \n\t(compressed transfer size, not on-disk size)\n",
                    (char *)NULL);
    }
    if (perl_true(e->image_id))
        md_fact_code(b, "Image ID", e->image_id);
    if (e->entrypoint.present && e->entrypoint.n > 0)
        md_json_fact(b, "Entrypoint: ", &e->entrypoint);
    if (e->cmd.present)
        md_json_fact(b, "Default Command: ", &e->cmd);
    if (e->shell.present && !e->schema1) /* the generator reads no Shell from schema1 */
        md_json_fact(b, "`SHELL`: ", &e->shell);
}

/* Longest run of backticks that opens a line (after up to 3 spaces): such a
 * line would close a fence of that length or shorter (CommonMark, where a
 * line ends at \n, \r or both). */
static size_t fence_run(const char *s, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i, spaces = 0, run = 0;
        while (j < len && s[j] == ' ' && spaces < 3) {
            j++;
            spaces++;
        }
        while (j < len && s[j] == '`') {
            j++;
            run++;
        }
        if (run > best)
            best = run;
        while (i < len && s[i] != '\n' && s[i] != '\r')
            i++;
        i++;
    }
    return best;
}

static void md_fence(struct im_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        im_buf_putn(b, "`", 1);
}

static void md_dockerfile(struct im_buf *b, const struct render_entry *e)
{
    char date[64];
    struct im_buf body = {.max = RENDER_OUTPUT_MAX};
    for (size_t i = 0; i < e->n_history; i++) {
        char *line = render__history_line_dated(e, i, date, sizeof date);
        if (!line)
            body.err = body.err ? body.err : IM_ENOMEM;
        else
            render__cat(&body, "# ", date, "\n", line, "\n", (char *)NULL);
        free(line);
    }
    /* Upstream text is untrusted: a line of backticks inside must not close
     * the block early, so the fence grows past the longest such run (the
     * pages of real images keep their three). */
    size_t run = body.p ? fence_run(body.p, body.len) : 0;
    size_t n = run >= 3 ? run + 1 : 3;
    im_buf_put(b, "\n");
    md_fence(b, n);
    im_buf_put(b, "dockerfile\n");
    if (body.err)
        b->err = b->err ? b->err : body.err;
    else if (body.p)
        im_buf_putn(b, body.p, body.len);
    md_fence(b, n);
    im_buf_put(b, "\n");
    free(body.p);
}

/* One layer item, its lines ending in two spaces (Markdown hard breaks) but
 * the MIME line, which the generator always writes, known or not. */
static void md_layer(struct im_buf *b, const struct render_layer *l)
{
    char date[64], size[96];
    im_buf_put(b, "\t-\t`");
    md_oneline(b, l->digest);
    im_buf_put(b, "`  \n");
    if (l->last_modified >= 0 &&
        render_http_date(l->last_modified, date, sizeof date) == 0)
        render__cat(b, "\t\tLast Modified: ", date, "  \n", (char *)NULL);
    if (l->size >= 0) {
        render_size(l->size, size, sizeof size);
        render__cat(b, "\t\tSize: ", size, "  \n", (char *)NULL);
    }
    im_buf_put(b, "\t\tMIME: ");
    md_oneline(b, l->media_type);
    im_buf_put(b, "\n");
}

static void md_platform(struct im_buf *b, const struct render_image *img,
                        const struct render_entry *e)
{
    char plat[4096];
    render__entry_platform(img, e, plat, sizeof plat); /* truncated if too long */
    md_oneline(b, plat);
}

static void md_entry(struct im_buf *b, const struct render_image *img,
                     const struct render_entry *e, const char *disp)
{
    render__cat(b, "\n### `", disp, "` - ", (char *)NULL);
    md_platform(b, img, e);
    im_buf_put(b, "\n");
    if (e->digest)
        md_pull(b, &img->ref, e->digest);
    md_facts(b, e);
    md_dockerfile(b, e);
    im_buf_put(b, "\n-\tLayers:\n");
    for (size_t i = 0; i < e->n_layers; i++)
        md_layer(b, &e->layers[i]);
}

/* "## `REF`\n" */
static void md_heading(struct im_buf *b, const char *disp)
{
    render__cat(b, "## `", disp, "`\n", (char *)NULL);
}

int render_markdown(const struct render_image *img, enum render_style style, char **out,
                    size_t *len)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    char count[32];

    render_ref_display(&img->ref, disp, sizeof disp);
    md_heading(&b, disp);
    md_pull(&b, &img->ref, img->digest);
    im_buf_put(&b, "\n");
    if (img->is_list && img->media_type)
        md_fact_code(&b, "Manifest MIME", img->media_type);
    snprintf(count, sizeof count, " %zu", img->n_entries);
    render__cat(&b, "-\tPlatforms:", style == RENDER_STYLE_CURRENT ? count : "", "\n",
                (char *)NULL);
    for (size_t i = 0; i < img->n_entries; i++) {
        im_buf_put(&b, "\t-\t");
        md_platform(&b, img, &img->entries[i]);
        im_buf_put(&b, "\n");
    }
    for (size_t i = 0; i < img->n_entries; i++)
        md_entry(&b, img, &img->entries[i], disp);
    return im_buf_finish(&b, out, len);
}

int render_markdown_not_found(const struct im_ref *ref, char **out, size_t *len)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    render_ref_display(ref, disp, sizeof disp);
    md_heading(&b, disp);
    im_buf_put(&b, "\n**does not exist** (yet?)\n");
    return im_buf_finish(&b, out, len);
}
