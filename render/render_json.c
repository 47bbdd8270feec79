/* render_json.c - the JSON description (full and summary) of the image model.
 * Compact, camelCase keys in a fixed order, written with the project's JSON
 * writer (common/json.h): the bytes jansson's json_dumps(JSON_COMPACT) gives
 * for the same values (test_render checks that they survive jansson's parse
 * and dump unchanged), without building a tree of allocated values first. */
#include "render.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "render_int.h"

static void jw_strv(struct im_jw *w, const struct render_strv *s)
{
    if (s->present)
        im_jw_strs(w, s->v, s->n);
    else
        im_jw_raw(w, "null");
}

void render__jw_time(struct im_jw *w, int64_t t)
{
    char buf[32];
    if (t == INT64_MIN || render_rfc3339(t, buf, sizeof buf) < 0)
        im_jw_raw(w, "null");
    else
        im_jw_str(w, buf);
}

static void jw_platform(struct im_jw *w, const struct render_platform *p)
{
    im_jw_open(w, '{');
    im_jw_key(w, "os");
    im_jw_str(w, p->os ? p->os : "");
    im_jw_key(w, "architecture");
    im_jw_str(w, p->architecture ? p->architecture : "");
    if (p->variant) {
        im_jw_key(w, "variant");
        im_jw_str(w, p->variant);
    }
    if (p->os_version) {
        im_jw_key(w, "osVersion");
        im_jw_str(w, p->os_version);
    }
    if (p->n_os_features) {
        im_jw_key(w, "osFeatures");
        im_jw_strs(w, p->os_features, p->n_os_features);
    }
    if (p->n_features) {
        im_jw_key(w, "features");
        im_jw_strs(w, p->features, p->n_features);
    }
    im_jw_close(w, '}');
}

static void jw_platform_string(struct im_jw *w, const struct render_platform *p)
{
    char buf[4096];
    (void)render_platform_string(p, buf, sizeof buf);
    im_jw_str(w, buf);
}

static void jw_total(struct im_jw *w, const struct render_entry *e)
{
    int64_t t = render_entry_total(e);
    if (t < 0)
        im_jw_raw(w, "null");
    else
        im_jw_int(w, t);
}

static void jw_layers(struct im_jw *w, const struct render_entry *e)
{
    im_jw_open(w, '[');
    for (size_t i = 0; i < e->n_layers; i++) {
        const struct render_layer *l = &e->layers[i];
        im_jw_open(w, '{');
        im_jw_kstr(w, "digest", l->digest);
        im_jw_key(w, "size");
        if (l->size >= 0)
            im_jw_int(w, l->size);
        else
            im_jw_raw(w, "null");
        im_jw_kstr(w, "mediaType", l->media_type);
        im_jw_key(w, "lastModified");
        if (l->last_modified >= 0)
            render__jw_time(w, l->last_modified);
        else
            im_jw_raw(w, "null");
        if (l->n_urls) {
            im_jw_key(w, "urls");
            im_jw_strs(w, l->urls, l->n_urls);
        }
        im_jw_close(w, '}');
    }
    im_jw_close(w, ']');
}

static void jw_history(struct im_jw *w, const struct render_entry *e)
{
    im_jw_open(w, '[');
    for (size_t i = 0; i < e->n_history; i++) {
        const struct render_history *h = &e->history[i];
        char *line = render__history_line(e, i);
        if (!line) {
            w->b.err = w->b.err ? w->b.err : IM_ENOMEM;
            return;
        }
        im_jw_open(w, '{');
        im_jw_key(w, "created");
        render__jw_time(w, h->created);
        im_jw_kstr(w, "createdBy", h->created_by);
        if (h->comment) {
            im_jw_key(w, "comment");
            im_jw_str(w, h->comment);
        }
        im_jw_key(w, "emptyLayer");
        im_jw_raw(w, h->empty_layer ? "true" : "false");
        im_jw_key(w, "instruction");
        im_jw_str(w, line);
        free(line);
        im_jw_close(w, '}');
    }
    im_jw_close(w, ']');
}

static void jw_entry(struct im_jw *w, const struct render_entry *e)
{
    im_jw_open(w, '{');
    im_jw_key(w, "platform");
    jw_platform(w, &e->platform);
    im_jw_key(w, "platformString");
    jw_platform_string(w, &e->platform);
    im_jw_kstr(w, "digest", e->digest);
    im_jw_kstr(w, "mediaType", e->media_type);
    im_jw_kstr(w, "dockerVersion", e->docker_version);
    im_jw_kstr(w, "imageId", e->image_id);
    im_jw_key(w, "totalSize");
    jw_total(w, e);
    im_jw_key(w, "entrypoint");
    jw_strv(w, &e->entrypoint);
    im_jw_key(w, "defaultCommand");
    jw_strv(w, &e->cmd);
    im_jw_key(w, "shell");
    jw_strv(w, &e->shell);
    im_jw_key(w, "history");
    jw_history(w, e);
    im_jw_key(w, "layers");
    jw_layers(w, e);
    im_jw_close(w, '}');
}

static void jw_attestation(struct im_jw *w, const struct render_entry *e)
{
    im_jw_open(w, '{');
    im_jw_kstr(w, "digest", e->digest);
    im_jw_kstr(w, "mediaType", e->media_type);
    im_jw_kstr(w, "attests", e->attests);
    im_jw_key(w, "layers");
    jw_layers(w, e);
    im_jw_close(w, '}');
}

static void jw_summary_entry(struct im_jw *w, const struct render_entry *e)
{
    im_jw_open(w, '{');
    im_jw_key(w, "platformString");
    jw_platform_string(w, &e->platform);
    im_jw_key(w, "platform");
    jw_platform(w, &e->platform);
    im_jw_kstr(w, "digest", e->digest);
    im_jw_key(w, "totalSize");
    jw_total(w, e);
    im_jw_close(w, '}');
}

/* Opens the top object with the fields both views start with. */
static void jw_top(struct im_jw *w, const struct render_image *img, bool full)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    (void)render_ref_display(&img->ref, disp, sizeof disp);
    im_jw_open(w, '{');
    im_jw_key(w, "reference");
    im_jw_str(w, disp);
    if (full) {
        im_jw_key(w, "registry");
        im_jw_str(w, img->ref.registry);
        im_jw_key(w, "repository");
        im_jw_str(w, img->ref.repository);
        im_jw_kstr(w, "tag", img->ref.tag[0] ? img->ref.tag : NULL);
    }
    im_jw_kstr(w, "digest", img->digest);
    im_jw_kstr(w, "mediaType", img->media_type);
}

/* "key":[...] with one(w, e) for each entry that is (or is not) an attestation. */
static void jw_entries(struct im_jw *w, const char *key, const struct render_image *img,
                       bool attestations,
                       void (*one)(struct im_jw *, const struct render_entry *))
{
    im_jw_key(w, key);
    im_jw_open(w, '[');
    for (size_t i = 0; i < img->n_entries; i++)
        if ((img->entries[i].kind == RENDER_KIND_ATTESTATION) == attestations)
            one(w, &img->entries[i]);
    im_jw_close(w, ']');
}

int render_json(const struct render_image *img, char **out, size_t *len)
{
    struct im_jw w = {.b = {.max = RENDER_OUTPUT_MAX}};
    jw_top(&w, img, true);
    jw_entries(&w, "platforms", img, false, jw_entry);
    jw_entries(&w, "attestations", img, true, jw_attestation);
    im_jw_close(&w, '}');
    return im_buf_finish(&w.b, out, len);
}

int render_json_summary(const struct render_image *img, char **out, size_t *len)
{
    struct im_jw w = {.b = {.max = RENDER_OUTPUT_MAX}};
    jw_top(&w, img, false);
    jw_entries(&w, "platforms", img, false, jw_summary_entry);
    im_jw_close(&w, '}');
    return im_buf_finish(&w.b, out, len);
}
