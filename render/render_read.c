/* render_read.c - the model builder's small readers of untrusted JSON (a
 * field of the wrong type counts as absent) and the freeing of a model; used
 * by render_model.c, render_schema1.c and render_filter.c (render_int.h). */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render_int.h"

/* ---- freeing ---- */

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_strv(struct render_strv *s)
{
    free_strs(s->v, s->n);
    memset(s, 0, sizeof *s);
}

static void free_platform(struct render_platform *p)
{
    free(p->os);
    free(p->architecture);
    free(p->variant);
    free(p->os_version);
    free_strs(p->os_features, p->n_os_features);
    free_strs(p->features, p->n_features);
    memset(p, 0, sizeof *p);
}

void render__free_entry(struct render_entry *e)
{
    free_platform(&e->platform);
    free(e->digest);
    free(e->media_type);
    free(e->docker_version);
    free(e->image_id);
    free_strv(&e->entrypoint);
    free_strv(&e->cmd);
    free_strv(&e->shell);
    for (size_t i = 0; i < e->n_labels; i++) {
        free(e->labels[i].key);
        free(e->labels[i].value);
    }
    free(e->labels);
    for (size_t i = 0; i < e->n_history; i++) {
        free(e->history[i].created_raw);
        free(e->history[i].created_by);
        free(e->history[i].comment);
        free_strv(&e->history[i].cmd_argv);
    }
    free(e->history);
    for (size_t i = 0; i < e->n_layers; i++) {
        free(e->layers[i].digest);
        free(e->layers[i].media_type);
        free_strs(e->layers[i].urls, e->layers[i].n_urls);
    }
    free(e->layers);
    free(e->attests);
    memset(e, 0, sizeof *e);
}

void render_image_free(struct render_image *img)
{
    if (!img)
        return;
    for (size_t i = 0; i < img->n_entries; i++)
        render__free_entry(&img->entries[i]);
    free(img->entries);
    free(img->digest);
    free(img->media_type);
    free(img);
}

/* ---- small JSON readers ---- */

/* A copy of o[key] when it is a string, else NULL. *oom is set when the copy
 * could not be made. */
char *render__get_str(const json_t *o, const char *key, bool *oom)
{
    const char *s = json_string_value(json_object_get(o, key));
    char *c;
    if (!s)
        return NULL;
    c = strdup(s);
    if (!c)
        *oom = true;
    return c;
}

/* Copies a JSON array of strings. Not an array, or any element not a string:
 * *out stays absent (present == false). */
int render__get_strv(const json_t *arr, struct render_strv *out)
{
    size_t n = json_array_size(arr);
    memset(out, 0, sizeof *out);
    if (!json_is_array(arr))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(arr, i)))
            return 0;
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        out->v[i] = strdup(json_string_value(json_array_get(arr, i)));
        if (!out->v[i]) {
            out->n = i;
            free_strv(out);
            return IM_ENOMEM;
        }
    }
    out->n = n;
    out->present = true;
    return 0;
}

/* Same as get_strv, but into a (char **, size_t) pair; absent is n == 0. */
int render__get_strs(const json_t *arr, char ***v, size_t *n)
{
    struct render_strv s;
    int rc = render__get_strv(arr, &s);
    *v = s.v;
    *n = s.n;
    return rc;
}

int render__parse_doc(const struct im_doc *doc, json_t **out, struct im_error *err)
{
    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)doc->body, doc->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return im_seterr(err, IM_EPROTO, "%s: bad JSON: %s (line %d)", doc->digest,
                         jerr.text, jerr.line);
    if (!json_is_object(root)) {
        json_decref(root);
        return im_seterr(err, IM_EPROTO, "%s: not a JSON object", doc->digest);
    }
    *out = root;
    return 0;
}

/* The document's media type: the stored one, cross-checked with the body's
 * mediaType when both are present. */
int render__read_created(const json_t *o, struct render_history *h)
{
    bool oom = false;
    h->created = INT64_MIN;
    h->created_raw = render__get_str(o, "created", &oom);
    if (h->created_raw && render_parse_rfc3339(h->created_raw, &h->created) < 0)
        h->created = INT64_MIN;
    return oom ? IM_ENOMEM : 0;
}
