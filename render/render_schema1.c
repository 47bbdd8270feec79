/* render_schema1.c - the image model of a legacy Docker schema1 manifest
 * (docs/FORMAT.md, "Legacy schema1"): facts from the newest v1Compatibility
 * entry that has them, the history oldest first, the fsLayers' blobs with
 * size and type from their HEAD. Untrusted input, checked as render_model.c
 * checks it. */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"
#include "render_int.h"

/* Parses every history[].v1Compatibility string (newest first). *out is an
 * array of n objects the caller releases with json_decref. */
static int schema1_compat(const struct im_doc *doc, const json_t *manifest, json_t **out,
                          struct im_error *err)
{
    const json_t *hist = json_object_get(manifest, "history");
    json_t *arr = json_array();
    size_t i;
    const json_t *h;

    if (!arr)
        return IM_ENOMEM;
    json_array_foreach(hist, i, h)
    {
        const char *s = json_string_value(json_object_get(h, "v1Compatibility"));
        json_error_t jerr;
        json_t *c = s ? json_loads(s, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        if (!json_is_object(c)) {
            json_decref(c);
            json_decref(arr);
            return im_seterr(err, IM_EPROTO,
                             "%s: history[%zu] has no valid v1Compatibility", doc->digest,
                             i);
        }
        if (json_array_append_new(arr, c) < 0) {
            json_decref(arr);
            return IM_ENOMEM;
        }
    }
    *out = arr;
    return 0;
}

/* The first (newest) compat entry whose k1 (or k1.k2) is set, i.e. not absent
 * and not null (the generator takes "" there too, and then prints nothing). */
static const json_t *schema1_first(const json_t *compat, const char *k1, const char *k2)
{
    size_t i;
    const json_t *c;
    json_array_foreach(compat, i, c)
    {
        const json_t *v = json_object_get(c, k1);
        if (k2)
            v = json_object_get(v, k2);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

/* A copy of v when it is a non-empty string (else *out stays NULL). */
static int schema1_strdup(const json_t *v, char **out)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return 0;
    *out = strdup(json_string_value(v));
    return *out ? 0 : IM_ENOMEM;
}

static int schema1_facts(const json_t *manifest, const json_t *compat,
                         struct render_entry *e, bool platform_from_config)
{
    const json_t *arch = schema1_first(compat, "architecture", NULL);
    int rc =
        schema1_strdup(schema1_first(compat, "docker_version", NULL), &e->docker_version);
    if (rc == 0)
        rc = schema1_strdup(schema1_first(compat, "id", NULL), &e->image_id);
    if (rc == 0)
        rc = render__get_strv(schema1_first(compat, "config", "Entrypoint"),
                              &e->entrypoint);
    if (rc == 0)
        rc = render__get_strv(schema1_first(compat, "config", "Cmd"), &e->cmd);
    if (rc == 0)
        rc = render__get_strv(schema1_first(compat, "config", "Shell"), &e->shell);
    if (rc < 0 || !platform_from_config)
        return rc;
    rc = schema1_strdup(schema1_first(compat, "os", NULL), &e->platform.os);
    if (rc == 0)
        rc = schema1_strdup(arch ? arch : json_object_get(manifest, "architecture"),
                            &e->platform.architecture);
    if (rc == 0 && !e->platform.os)
        e->platform.os = strdup("");
    if (rc == 0 && !e->platform.architecture)
        e->platform.architecture = strdup("");
    return rc == 0 && (!e->platform.os || !e->platform.architecture) ? IM_ENOMEM : rc;
}

/* The dockerfile block lists the compat entries oldest first. */
static int schema1_history(const json_t *compat, struct render_entry *e)
{
    size_t n = json_array_size(compat);
    e->history = n ? calloc(n, sizeof *e->history) : NULL;
    if (n > 0 && !e->history)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(compat, n - 1 - i);
        struct render_history *h = &e->history[e->n_history++];
        int rc = render__read_created(c, h);
        h->empty_layer = json_is_true(json_object_get(c, "throwaway"));
        if (rc < 0)
            return rc;
        rc = render__get_strv(
            json_object_get(json_object_get(c, "container_config"), "Cmd"), &h->cmd_argv);
        if (rc < 0)
            return rc; /* a Cmd absent, null or not a list stays absent */
    }
    return 0;
}

/* fsLayers in manifest order (newest first), each digest once; size and
 * media type from the blob HEAD, since schema1 does not record them. */
static int schema1_layers(const struct im_bundle *bundle, const struct im_doc *doc,
                          const json_t *manifest, struct render_entry *e,
                          struct im_error *err)
{
    const json_t *fs = json_object_get(manifest, "fsLayers");
    size_t n = json_array_size(fs);
    e->layers = n ? calloc(n, sizeof *e->layers) : NULL;
    if (n > 0 && !e->layers)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *d =
            json_string_value(json_object_get(json_array_get(fs, i), "blobSum"));
        const struct im_blob *blob;
        struct render_layer *l;
        bool seen = false;
        if (!d)
            return im_seterr(err, IM_EPROTO, "%s: fsLayers[%zu] without a blobSum",
                             doc->digest, i);
        for (size_t j = 0; j < e->n_layers && !seen; j++)
            seen = strcmp(e->layers[j].digest, d) == 0;
        if (seen)
            continue;
        l = &e->layers[e->n_layers++];
        l->size = -1;
        l->last_modified = -1;
        l->digest = strdup(d);
        if (!l->digest)
            return IM_ENOMEM;
        blob = im_bundle_find_blob(bundle, d);
        if (!blob)
            continue;
        l->size = blob->size;
        l->last_modified = blob->last_modified;
        if (blob->media_type[0] == '\0')
            continue;
        l->media_type = strdup(blob->media_type);
        if (!l->media_type)
            return IM_ENOMEM;
    }
    return 0;
}

int render__read_schema1(const struct im_bundle *bundle, const struct im_doc *doc,
                         const json_t *manifest, struct render_entry *e,
                         bool platform_from_config, struct im_error *err)
{
    json_t *compat = NULL;
    int rc = schema1_compat(doc, manifest, &compat, err);

    e->schema1 = true;
    free(e->media_type);
    e->media_type = strdup(IM_MT_DOCKER_V1);
    if (rc == 0 && !e->media_type)
        rc = IM_ENOMEM;
    if (rc == 0)
        rc = schema1_facts(manifest, compat, e, platform_from_config);
    if (rc == 0)
        rc = schema1_history(compat, e);
    if (rc == 0)
        rc = schema1_layers(bundle, doc, manifest, e, err);
    json_decref(compat);
    return rc;
}
