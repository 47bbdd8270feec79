/* render_markdown.c - the repo-info Markdown page (FORMAT.md, and the
 * python-3.7-slim page byte for byte). Pure: builds the page in memory. */
#include "render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render_buf.h"

/* Several strings in a row, NULL-terminated. */
static void md_cat(struct render_buf *b, ...)
{
    va_list ap;
    const char *s;
    va_start(ap, b);
    for (s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
        render_buf_put(b, s);
    va_end(ap);
}

/* "## `REF`\n" */
static void md_heading(struct render_buf *b, const struct im_ref *ref)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    render_ref_display(ref, disp, sizeof disp);
    md_cat(b, "## `", disp, "`\n", (char *)NULL);
}

static void md_pull(struct render_buf *b, const struct im_ref *ref, const char *digest)
{
    char name[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + 2];
    render_ref_pull_name(ref, name, sizeof name);
    md_cat(b, "\n```console\n$ docker pull ", name, "@", digest ? digest : "", "\n```\n",
           (char *)NULL);
}

/* Compact JSON with "/" escaped, as the page shows arrays. */
static void md_json_strv(struct render_buf *b, const struct render_strv *s)
{
    json_t *arr = json_array();
    char *dump = NULL;
    for (size_t i = 0; arr && i < s->n; i++)
        if (json_array_append_new(arr, json_string(s->v[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (arr)
        dump = json_dumps(arr, JSON_COMPACT | JSON_ESCAPE_SLASH);
    if (!dump)
        b->oom = true;
    else
        render_buf_put(b, dump);
    free(dump);
    json_decref(arr);
}

static bool total_size(const struct render_entry *e, int64_t *total)
{
    int64_t t = 0;
    for (size_t i = 0; i < e->n_layers; i++) {
        if (e->layers[i].size < 0 || e->layers[i].size > INT64_MAX - t)
            return false;
        t += e->layers[i].size;
    }
    *total = t;
    return true;
}

static void md_facts(struct render_buf *b, const struct render_entry *e)
{
    char size[96];
    int64_t total;

    render_buf_put(b, "\n");
    if (e->docker_version)
        md_cat(b, "-\tDocker Version: ", e->docker_version, "\n", (char *)NULL);
    if (e->media_type)
        md_cat(b, "-\tManifest MIME: `", e->media_type, "`\n", (char *)NULL);
    if (e->kind != RENDER_KIND_UNKNOWN && total_size(e, &total)) {
        render_size(total, size, sizeof size);
        md_cat(b, "-\tTotal Size: **", size,
               "**  \n\t(compressed transfer size, not on-disk size)\n", (char *)NULL);
    }
    if (e->image_id)
        md_cat(b, "-\tImage ID: `", e->image_id, "`\n", (char *)NULL);
    if (e->entrypoint.present && e->entrypoint.n > 0) {
        render_buf_put(b, "-\tEntrypoint: `");
        md_json_strv(b, &e->entrypoint);
        render_buf_put(b, "`\n");
    }
    if (e->cmd.present) {
        render_buf_put(b, "-\tDefault Command: `");
        md_json_strv(b, &e->cmd);
        render_buf_put(b, "`\n");
    }
    if (e->shell.present) {
        render_buf_put(b, "-\t`SHELL`: `");
        md_json_strv(b, &e->shell);
        render_buf_put(b, "`\n");
    }
}

/* Longest run of backticks that opens a line (after up to 3 spaces): such a
 * line would close a fence of that length or shorter (CommonMark). */
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
        while (i < len && s[i] != '\n')
            i++;
        i++;
    }
    return best;
}

static void md_fence(struct render_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        render_buf_putn(b, "`", 1);
}

static void md_dockerfile(struct render_buf *b, const struct render_entry *e)
{
    char date[64];
    struct render_buf body = {0};
    for (size_t i = 0; i < e->n_history; i++) {
        const struct render_history *h = &e->history[i];
        char *line;
        if (h->created != INT64_MIN &&
            render_http_date(h->created, date, sizeof date) == 0)
            md_cat(&body, "# ", date, "\n", (char *)NULL);
        else if (h->created_raw)
            md_cat(&body, "# ", h->created_raw, "\n", (char *)NULL);
        line = h->cmd_argv.present ? render_dockerfile_argv(h->cmd_argv.v, h->cmd_argv.n)
                                   : render_dockerfile_line(h->created_by, &e->shell);
        if (!line)
            body.oom = true;
        else
            md_cat(&body, line, "\n", (char *)NULL);
        free(line);
    }
    /* Upstream text is untrusted: a line of backticks inside must not close
     * the block early, so the fence grows past the longest such run (the
     * usual page keeps its three). */
    size_t run = body.p ? fence_run(body.p, body.len) : 0;
    size_t n = run >= 3 ? run + 1 : 3;
    render_buf_put(b, "\n");
    md_fence(b, n);
    render_buf_put(b, "dockerfile\n");
    if (body.oom)
        b->oom = true;
    else if (body.p)
        render_buf_putn(b, body.p, body.len);
    md_fence(b, n);
    render_buf_put(b, "\n");
    free(body.p);
}

/* One layer item: its lines joined by "  \n" (Markdown hard breaks). */
static void md_layer(struct render_buf *b, const struct render_layer *l)
{
    char date[64], size[96];
    md_cat(b, "\t-\t`", l->digest ? l->digest : "", "`", (char *)NULL);
    if (l->last_modified >= 0 &&
        render_http_date(l->last_modified, date, sizeof date) == 0)
        md_cat(b, "  \n\t\tLast Modified: ", date, (char *)NULL);
    if (l->size >= 0) {
        render_size(l->size, size, sizeof size);
        md_cat(b, "  \n\t\tSize: ", size, (char *)NULL);
    }
    if (l->media_type)
        md_cat(b, "  \n\t\tMIME: ", l->media_type, (char *)NULL);
    render_buf_put(b, "\n");
}

static void md_entry(struct render_buf *b, const struct render_image *img,
                     const struct render_entry *e, const char *disp, const char *plat)
{
    md_cat(b, "\n### `", disp, "` - ", plat, "\n", (char *)NULL);
    if (e->digest)
        md_pull(b, &img->ref, e->digest);
    md_facts(b, e);
    md_dockerfile(b, e);
    render_buf_put(b, "\n-\tLayers:\n");
    for (size_t i = 0; i < e->n_layers; i++)
        md_layer(b, &e->layers[i]);
}

/* Attestations carry platform unknown/unknown in the list (BuildKit), so they
 * show as "unknown; unknown" like on Docker Hub's pages. */
static void entry_platform(const struct render_entry *e, char *buf, size_t n)
{
    (void)render_platform_string(&e->platform, buf, n); /* truncated if too long */
}

int render_markdown(const struct render_image *img, char **out, size_t *len)
{
    struct render_buf b = {0};
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    char plat[4096];

    render_ref_display(&img->ref, disp, sizeof disp);
    md_heading(&b, &img->ref);
    md_pull(&b, &img->ref, img->digest);
    render_buf_put(&b, "\n");
    if (img->is_list && img->media_type)
        md_cat(&b, "-\tManifest MIME: `", img->media_type, "`\n", (char *)NULL);
    render_buf_put(&b, "-\tPlatforms:\n");
    for (size_t i = 0; i < img->n_entries; i++) {
        entry_platform(&img->entries[i], plat, sizeof plat);
        md_cat(&b, "\t-\t", plat, "\n", (char *)NULL);
    }
    for (size_t i = 0; i < img->n_entries; i++) {
        entry_platform(&img->entries[i], plat, sizeof plat);
        md_entry(&b, img, &img->entries[i], disp, plat);
    }
    return render_buf_finish(&b, out, len);
}

int render_markdown_not_found(const struct im_ref *ref, char **out, size_t *len)
{
    struct render_buf b = {0};
    md_heading(&b, ref);
    render_buf_put(&b, "\n**does not exist** (yet?)\n");
    return render_buf_finish(&b, out, len);
}
