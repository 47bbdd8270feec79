/* render_json.c - the JSON description (full and summary) of the image model.
 * Compact, camelCase keys in a fixed order. Built with jansson: every *_new
 * setter steals its value, so a failed constructor only sets the bad flag. */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Sets o[k] = v (stolen); any failure, including v == NULL, marks *bad. */
static void jset(json_t *o, const char *k, json_t *v, bool *bad)
{
    if (!o) {
        json_decref(v);
        *bad = true;
        return;
    }
    if (json_object_set_new(o, k, v) < 0) /* releases v, accepts NULL */
        *bad = true;
}

/* A JSON string; bytes that are not valid UTF-8 (header values, truncated
 * text) become '?' so a description never fails on them. */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s);
    char *copy;
    if (v || !s)
        return v;
    copy = strdup(s);
    if (!copy)
        return NULL;
    im_utf8_sanitize(copy);
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *jstr_or_null(const char *s)
{
    return s ? jstr(s) : json_null();
}

static json_t *jstrs(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, jstr(v[i] ? v[i] : "")) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *jstrv(const struct render_strv *s)
{
    return s->present ? jstrs(s->v, s->n) : json_null();
}

/* RFC 3339 UTC, or null when t is INT64_MIN or cannot be written. */
static json_t *jtime(int64_t t)
{
    char buf[32];
    if (t == INT64_MIN || render_rfc3339(t, buf, sizeof buf) < 0)
        return json_null();
    return jstr(buf);
}

static json_t *jplatform(const struct render_platform *p, bool *bad)
{
    json_t *o = json_object();
    jset(o, "os", jstr(p->os ? p->os : ""), bad);
    jset(o, "architecture", jstr(p->architecture ? p->architecture : ""), bad);
    if (p->variant)
        jset(o, "variant", jstr(p->variant), bad);
    if (p->os_version)
        jset(o, "osVersion", jstr(p->os_version), bad);
    if (p->n_os_features)
        jset(o, "osFeatures", jstrs(p->os_features, p->n_os_features), bad);
    if (p->n_features)
        jset(o, "features", jstrs(p->features, p->n_features), bad);
    return o;
}

static json_t *jplatform_string(const struct render_platform *p)
{
    char buf[4096];
    (void)render_platform_string(p, buf, sizeof buf);
    return jstr(buf);
}

static json_t *jtotal(const struct render_entry *e)
{
    int64_t t = 0;
    if (e->kind == RENDER_KIND_UNKNOWN) /* a nested index: not descended into */
        return json_null();
    for (size_t i = 0; i < e->n_layers; i++) {
        if (e->layers[i].size < 0 || e->layers[i].size > INT64_MAX - t)
            return json_null();
        t += e->layers[i].size;
    }
    return json_integer(t);
}

static void jappend(json_t *a, json_t *v, bool *bad)
{
    if (!a) {
        json_decref(v);
        *bad = true;
        return;
    }
    if (json_array_append_new(a, v) < 0) /* releases v, accepts NULL */
        *bad = true;
}

static json_t *jlayers(const struct render_entry *e, bool *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < e->n_layers; i++) {
        const struct render_layer *l = &e->layers[i];
        json_t *o = json_object();
        jset(o, "digest", jstr_or_null(l->digest), bad);
        jset(o, "size", l->size >= 0 ? json_integer(l->size) : json_null(), bad);
        jset(o, "mediaType", jstr_or_null(l->media_type), bad);
        jset(o, "lastModified",
             l->last_modified >= 0 ? jtime(l->last_modified) : json_null(), bad);
        if (l->n_urls)
            jset(o, "urls", jstrs(l->urls, l->n_urls), bad);
        jappend(a, o, bad);
    }
    if (!a)
        *bad = true;
    return a;
}

static json_t *jhistory(const struct render_entry *e, bool *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < e->n_history; i++) {
        const struct render_history *h = &e->history[i];
        json_t *o = json_object();
        char *line = h->cmd_argv.present
                         ? render_dockerfile_argv(h->cmd_argv.v, h->cmd_argv.n)
                         : render_dockerfile_line(h->created_by, &e->shell);
        jset(o, "created", jtime(h->created), bad);
        jset(o, "createdBy", jstr_or_null(h->created_by), bad);
        if (h->comment)
            jset(o, "comment", jstr(h->comment), bad);
        jset(o, "emptyLayer", json_boolean(h->empty_layer), bad);
        jset(o, "instruction", line ? jstr(line) : NULL, bad);
        free(line);
        jappend(a, o, bad);
    }
    if (!a)
        *bad = true;
    return a;
}

static json_t *jentry(const struct render_entry *e, bool *bad)
{
    json_t *o = json_object();
    jset(o, "platform", jplatform(&e->platform, bad), bad);
    jset(o, "platformString", jplatform_string(&e->platform), bad);
    jset(o, "digest", jstr_or_null(e->digest), bad);
    jset(o, "mediaType", jstr_or_null(e->media_type), bad);
    jset(o, "dockerVersion", jstr_or_null(e->docker_version), bad);
    jset(o, "imageId", jstr_or_null(e->image_id), bad);
    jset(o, "totalSize", jtotal(e), bad);
    jset(o, "entrypoint", jstrv(&e->entrypoint), bad);
    jset(o, "defaultCommand", jstrv(&e->cmd), bad);
    jset(o, "shell", jstrv(&e->shell), bad);
    jset(o, "history", jhistory(e, bad), bad);
    jset(o, "layers", jlayers(e, bad), bad);
    return o;
}

static json_t *jattestation(const struct render_entry *e, bool *bad)
{
    json_t *o = json_object();
    jset(o, "digest", jstr_or_null(e->digest), bad);
    jset(o, "mediaType", jstr_or_null(e->media_type), bad);
    jset(o, "attests", jstr_or_null(e->attests), bad);
    jset(o, "layers", jlayers(e, bad), bad);
    return o;
}

static json_t *jsummary_entry(const struct render_entry *e, bool *bad)
{
    json_t *o = json_object();
    jset(o, "platformString", jplatform_string(&e->platform), bad);
    jset(o, "platform", jplatform(&e->platform, bad), bad);
    jset(o, "digest", jstr_or_null(e->digest), bad);
    jset(o, "totalSize", jtotal(e), bad);
    return o;
}

static int dump(json_t *root, bool bad, char **out, size_t *len)
{
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    *out = s;
    *len = s ? strlen(s) : 0;
    return s ? 0 : IM_ENOMEM;
}

static json_t *jtop(const struct render_image *img, bool full, bool *bad)
{
    char disp[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    json_t *o = json_object();
    (void)render_ref_display(&img->ref, disp, sizeof disp);
    jset(o, "reference", jstr(disp), bad);
    if (full) {
        jset(o, "registry", jstr(img->ref.registry), bad);
        jset(o, "repository", jstr(img->ref.repository), bad);
        jset(o, "tag", img->ref.tag[0] ? jstr(img->ref.tag) : json_null(), bad);
    }
    jset(o, "digest", jstr_or_null(img->digest), bad);
    jset(o, "mediaType", jstr_or_null(img->media_type), bad);
    return o;
}

int render_json(const struct render_image *img, char **out, size_t *len)
{
    bool bad = false;
    json_t *root = jtop(img, true, &bad);
    json_t *plats = json_array(), *atts = json_array();

    for (size_t i = 0; i < img->n_entries; i++) {
        const struct render_entry *e = &img->entries[i];
        if (e->kind == RENDER_KIND_ATTESTATION)
            jappend(atts, jattestation(e, &bad), &bad);
        else
            jappend(plats, jentry(e, &bad), &bad);
    }
    jset(root, "platforms", plats, &bad);
    jset(root, "attestations", atts, &bad);
    return dump(root, bad, out, len);
}

int render_json_summary(const struct render_image *img, char **out, size_t *len)
{
    bool bad = false;
    json_t *root = jtop(img, false, &bad);
    json_t *plats = json_array();

    for (size_t i = 0; i < img->n_entries; i++)
        if (img->entries[i].kind != RENDER_KIND_ATTESTATION)
            jappend(plats, jsummary_entry(&img->entries[i], &bad), &bad);
    jset(root, "platforms", plats, &bad);
    return dump(root, bad, out, len);
}
