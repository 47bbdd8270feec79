/* render_json.c - the JSON description (full and summary) of the image model.
 * Compact, camelCase keys in a fixed order, written straight into a buffer:
 * the bytes are the ones jansson's json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) gives for the same values (test_render checks that
 * they survive jansson's parse and dump unchanged), without building a tree
 * of allocated values first. */
#include "render.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

#define JW_DEPTH 8 /* the deepest nesting written is 5 */

/* The writer: a comma goes before every value but the first of its object or
 * array, and never between a key and its value. */
struct jw {
    struct render_buf b;
    int depth;
    bool more[JW_DEPTH]; /* the container at this depth has a member already */
    bool keyed;          /* a key was written: its value follows */
};

static void jw_sep(struct jw *w)
{
    if (w->keyed) {
        w->keyed = false;
        return;
    }
    if (w->more[w->depth])
        render_buf_putn(&w->b, ",", 1);
    w->more[w->depth] = true;
}

static void jw_open(struct jw *w, char c)
{
    jw_sep(w);
    render_buf_putn(&w->b, &c, 1);
    if (w->depth + 1 >= JW_DEPTH) { /* cannot happen with this file's shapes */
        w->b.oom = true;
        return;
    }
    w->more[++w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
    render_buf_putn(&w->b, &c, 1);
    if (w->depth > 0)
        w->depth--;
}

/* A string as jansson writes it: '"', '\\' and control characters escaped,
 * the rest as is; a byte that is not part of valid UTF-8 becomes '?' (what
 * im_utf8_sanitize makes of it), so a description never fails on it. */
static void jw_text(struct jw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF", from[] = "\"\\\b\f\n\r\t",
                      to[] = "\"\\bfnrt";
    const unsigned char *p = (const unsigned char *)s, *run = p;
    render_buf_putn(&w->b, "\"", 1);
    while (*p) {
        size_t n = im_utf8_len(p);
        if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\')) {
            p += n;
            continue;
        }
        render_buf_putn(&w->b, (const char *)run, (size_t)(p - run));
        const char *short_form = n ? memchr(from, *p, sizeof from - 1) : NULL;
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        if (n == 0) /* not UTF-8 */
            render_buf_putn(&w->b, "?", 1);
        else if (short_form)
            render_buf_putn(&w->b, (char[2]){'\\', to[short_form - from]}, 2);
        else
            render_buf_putn(&w->b, esc, sizeof esc);
        run = ++p;
    }
    render_buf_putn(&w->b, (const char *)run, (size_t)(p - run));
    render_buf_putn(&w->b, "\"", 1);
}

static void jw_key(struct jw *w, const char *k)
{
    jw_sep(w);
    jw_text(w, k);
    render_buf_putn(&w->b, ":", 1);
    w->keyed = true;
}

static void jw_raw(struct jw *w, const char *s)
{
    jw_sep(w);
    render_buf_put(&w->b, s);
}

static void jw_str(struct jw *w, const char *s)
{
    jw_sep(w);
    jw_text(w, s);
}

static void jw_str_or_null(struct jw *w, const char *s)
{
    if (s)
        jw_str(w, s);
    else
        jw_raw(w, "null");
}

/* "k":"s", or "k":null when s is NULL */
static void jw_kstr(struct jw *w, const char *k, const char *s)
{
    jw_key(w, k);
    jw_str_or_null(w, s);
}

static void jw_int(struct jw *w, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    jw_raw(w, buf);
}

static void jw_strs(struct jw *w, char *const *v, size_t n)
{
    jw_open(w, '[');
    for (size_t i = 0; i < n; i++)
        jw_str(w, v[i] ? v[i] : "");
    jw_close(w, ']');
}

static void jw_strv(struct jw *w, const struct render_strv *s)
{
    if (s->present)
        jw_strs(w, s->v, s->n);
    else
        jw_raw(w, "null");
}

/* RFC 3339 UTC, or null when t is INT64_MIN or cannot be written. */
static void jw_time(struct jw *w, int64_t t)
{
    char buf[32];
    if (t == INT64_MIN || render_rfc3339(t, buf, sizeof buf) < 0)
        jw_raw(w, "null");
    else
        jw_str(w, buf);
}

static void jw_platform(struct jw *w, const struct render_platform *p)
{
    jw_open(w, '{');
    jw_key(w, "os");
    jw_str(w, p->os ? p->os : "");
    jw_key(w, "architecture");
    jw_str(w, p->architecture ? p->architecture : "");
    if (p->variant) {
        jw_key(w, "variant");
        jw_str(w, p->variant);
    }
    if (p->os_version) {
        jw_key(w, "osVersion");
        jw_str(w, p->os_version);
    }
    if (p->n_os_features) {
        jw_key(w, "osFeatures");
        jw_strs(w, p->os_features, p->n_os_features);
    }
    if (p->n_features) {
        jw_key(w, "features");
        jw_strs(w, p->features, p->n_features);
    }
    jw_close(w, '}');
}

static void jw_platform_string(struct jw *w, const struct render_platform *p)
{
    char buf[4096];
    (void)render_platform_string(p, buf, sizeof buf);
    jw_str(w, buf);
}

static void jw_total(struct jw *w, const struct render_entry *e)
{
    int64_t t = 0;
    if (e->kind == RENDER_KIND_UNKNOWN) { /* a nested index: not descended into */
        jw_raw(w, "null");
        return;
    }
    for (size_t i = 0; i < e->n_layers; i++) {
        if (e->layers[i].size < 0 || e->layers[i].size > INT64_MAX - t) {
            jw_raw(w, "null");
            return;
        }
        t += e->layers[i].size;
    }
    jw_int(w, t);
}

static void jw_layers(struct jw *w, const struct render_entry *e)
{
    jw_open(w, '[');
    for (size_t i = 0; i < e->n_layers; i++) {
        const struct render_layer *l = &e->layers[i];
        jw_open(w, '{');
        jw_kstr(w, "digest", l->digest);
        jw_key(w, "size");
        if (l->size >= 0)
            jw_int(w, l->size);
        else
            jw_raw(w, "null");
        jw_kstr(w, "mediaType", l->media_type);
        jw_key(w, "lastModified");
        if (l->last_modified >= 0)
            jw_time(w, l->last_modified);
        else
            jw_raw(w, "null");
        if (l->n_urls) {
            jw_key(w, "urls");
            jw_strs(w, l->urls, l->n_urls);
        }
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void jw_history(struct jw *w, const struct render_entry *e)
{
    jw_open(w, '[');
    for (size_t i = 0; i < e->n_history; i++) {
        const struct render_history *h = &e->history[i];
        char *line = e->schema1 ? render_dockerfile_argv(&h->cmd_argv)
                                : render_dockerfile_line(h->created_by, &e->shell);
        if (!line) {
            w->b.oom = true;
            return;
        }
        jw_open(w, '{');
        jw_key(w, "created");
        jw_time(w, h->created);
        jw_kstr(w, "createdBy", h->created_by);
        if (h->comment) {
            jw_key(w, "comment");
            jw_str(w, h->comment);
        }
        jw_key(w, "emptyLayer");
        jw_raw(w, h->empty_layer ? "true" : "false");
        jw_key(w, "instruction");
        jw_str(w, line);
        free(line);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void jw_entry(struct jw *w, const struct render_entry *e)
{
    jw_open(w, '{');
    jw_key(w, "platform");
    jw_platform(w, &e->platform);
    jw_key(w, "platformString");
    jw_platform_string(w, &e->platform);
    jw_kstr(w, "digest", e->digest);
    jw_kstr(w, "mediaType", e->media_type);
    jw_kstr(w, "dockerVersion", e->docker_version);
    jw_kstr(w, "imageId", e->image_id);
    jw_key(w, "totalSize");
    jw_total(w, e);
    jw_key(w, "entrypoint");
    jw_strv(w, &e->entrypoint);
    jw_key(w, "defaultCommand");
    jw_strv(w, &e->cmd);
    jw_key(w, "shell");
    jw_strv(w, &e->shell);
    jw_key(w, "history");
    jw_history(w, e);
    jw_key(w, "layers");
    jw_layers(w, e);
    jw_close(w, '}');
}

static void jw_attestation(struct jw *w, const struct render_entry *e)
{
    jw_open(w, '{');
    jw_kstr(w, "digest", e->digest);
    jw_kstr(w, "mediaType", e->media_type);
    jw_kstr(w, "attests", e->attests);
    jw_key(w, "layers");
    jw_layers(w, e);
    jw_close(w, '}');
}

static void jw_summary_entry(struct jw *w, const struct render_entry *e)
{
    jw_open(w, '{');
    jw_key(w, "platformString");
    jw_platform_string(w, &e->platform);
    jw_key(w, "platform");
    jw_platform(w, &e->platform);
    jw_kstr(w, "digest", e->digest);
    jw_key(w, "totalSize");
    jw_total(w, e);
    jw_close(w, '}');
}

/* Opens the top object with the fields both views start with. */
static void jw_top(struct jw *w, const struct render_image *img, bool full)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    (void)render_ref_display(&img->ref, disp, sizeof disp);
    jw_open(w, '{');
    jw_key(w, "reference");
    jw_str(w, disp);
    if (full) {
        jw_key(w, "registry");
        jw_str(w, img->ref.registry);
        jw_key(w, "repository");
        jw_str(w, img->ref.repository);
        jw_kstr(w, "tag", img->ref.tag[0] ? img->ref.tag : NULL);
    }
    jw_kstr(w, "digest", img->digest);
    jw_kstr(w, "mediaType", img->media_type);
}

/* "key":[...] with one(w, e) for each entry that is (or is not) an attestation. */
static void jw_entries(struct jw *w, const char *key, const struct render_image *img,
                       bool attestations,
                       void (*one)(struct jw *, const struct render_entry *))
{
    jw_key(w, key);
    jw_open(w, '[');
    for (size_t i = 0; i < img->n_entries; i++)
        if ((img->entries[i].kind == RENDER_KIND_ATTESTATION) == attestations)
            one(w, &img->entries[i]);
    jw_close(w, ']');
}

int render_json(const struct render_image *img, char **out, size_t *len)
{
    struct jw w = {0};
    jw_top(&w, img, true);
    jw_entries(&w, "platforms", img, false, jw_entry);
    jw_entries(&w, "attestations", img, true, jw_attestation);
    jw_close(&w, '}');
    return render_buf_finish(&w.b, out, len);
}

int render_json_summary(const struct render_image *img, char **out, size_t *len)
{
    struct jw w = {0};
    jw_top(&w, img, false);
    jw_entries(&w, "platforms", img, false, jw_summary_entry);
    jw_close(&w, '}');
    return render_buf_finish(&w.b, out, len);
}
