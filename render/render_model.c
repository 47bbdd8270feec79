/* render_model.c - builds the image model (struct render_image) from a
 * bundle of verified documents, frees it, filters it by platform.
 *
 * Everything read here is untrusted upstream data: every field is type
 * checked, optional fields of the wrong type count as absent, structural
 * problems (bad JSON, missing documents, unknown media types) are IM_EPROTO. */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"
#include "render_int.h"

static int effective_mt(const struct im_doc *doc, const json_t *root, const char **mt,
                        struct im_error *err)
{
    const char *body_mt = json_string_value(json_object_get(root, "mediaType"));
    if (doc->media_type[0] && body_mt && strcmp(doc->media_type, body_mt) != 0)
        return im_seterr(err, IM_EPROTO, "%s: served as %s but its mediaType says %s",
                         doc->digest, doc->media_type, body_mt);
    /* the stored type, else the one the body names or its shape shows */
    *mt = doc->media_type[0] ? doc->media_type : im_manifest_body_type(root);
    if (!*mt)
        *mt = "";
    return 0;
}

/* ---- platforms ---- */

/* From a list descriptor's "platform" or a config: the two use the same keys. */
static int read_platform(const json_t *o, struct render_platform *p)
{
    bool oom = false;
    int rc;
    p->os = render__get_str(o, "os", &oom);
    p->architecture = render__get_str(o, "architecture", &oom);
    p->variant = render__get_str(o, "variant", &oom);
    p->os_version = render__get_str(o, "os.version", &oom);
    if (!p->os && !oom)
        p->os = strdup("");
    if (!p->architecture && !oom)
        p->architecture = strdup("");
    if (oom || !p->os || !p->architecture)
        return IM_ENOMEM;
    rc = render__get_strs(json_object_get(o, "os.features"), &p->os_features,
                          &p->n_os_features);
    if (rc == 0)
        rc = render__get_strs(json_object_get(o, "features"), &p->features,
                              &p->n_features);
    return rc;
}

/* ---- layers, config, history ---- */

static int read_layer(const json_t *d, const struct im_bundle *bundle,
                      struct render_layer *l, const char *manifest, struct im_error *err)
{
    bool oom = false;
    const json_t *size = json_object_get(d, "size");
    const struct im_blob *blob;

    l->size = -1;
    l->last_modified = -1;
    if (!json_is_object(d) || !json_is_string(json_object_get(d, "digest")))
        return im_seterr(err, IM_EPROTO, "%s: layer without a digest", manifest);
    l->digest = render__get_str(d, "digest", &oom);
    l->media_type = render__get_str(d, "mediaType", &oom);
    if (oom)
        return IM_ENOMEM;
    if (json_is_integer(size) && json_integer_value(size) >= 0)
        l->size = json_integer_value(size);
    blob = im_bundle_find_blob(bundle, l->digest);
    if (blob)
        l->last_modified = blob->last_modified;
    return render__get_strs(json_object_get(d, "urls"), &l->urls, &l->n_urls);
}

static int read_layers(const json_t *manifest, const struct im_bundle *bundle,
                       struct render_entry *e, const char *digest, struct im_error *err)
{
    const json_t *layers = json_object_get(manifest, "layers");
    size_t n = json_array_size(layers);
    e->layers = n ? calloc(n, sizeof *e->layers) : NULL;
    if (n > 0 && !e->layers)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc =
            read_layer(json_array_get(layers, i), bundle, &e->layers[i], digest, err);
        e->n_layers = i + 1;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int read_history(const json_t *config, struct render_entry *e)
{
    const json_t *hist = json_object_get(config, "history");
    size_t n = json_array_size(hist);
    e->history = n ? calloc(n, sizeof *e->history) : NULL;
    if (n > 0 && !e->history)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *h = json_array_get(hist, i);
        struct render_history *rh = &e->history[e->n_history++];
        bool oom = render__read_created(h, rh) != 0;
        rh->created_by = render__get_str(h, "created_by", &oom);
        rh->comment = render__get_str(h, "comment", &oom);
        rh->empty_layer = json_is_true(json_object_get(h, "empty_layer"));
        if (oom)
            return IM_ENOMEM;
    }
    return 0;
}

/* The config's Labels: each key with a string value (others are skipped). */
static int read_labels(const json_t *labels, struct render_entry *e)
{
    const char *key;
    const json_t *value;
    size_t n = json_is_object(labels) ? json_object_size(labels) : 0;
    if (n == 0)
        return 0;
    e->labels = calloc(n, sizeof *e->labels);
    if (!e->labels)
        return IM_ENOMEM;
    json_object_foreach((json_t *)labels, key, value)
    {
        if (!json_is_string(value) || e->n_labels >= n)
            continue;
        struct render_label *l = &e->labels[e->n_labels++];
        l->key = strdup(key);
        l->value = strdup(json_string_value(value));
        if (!l->key || !l->value)
            return IM_ENOMEM;
    }
    return 0;
}

static int read_config(const json_t *cfg, struct render_entry *e,
                       bool platform_from_config)
{
    const json_t *c = json_object_get(cfg, "config");
    bool oom = false;
    int rc;

    e->docker_version = render__get_str(cfg, "docker_version", &oom);
    if (oom)
        return IM_ENOMEM;
    if (e->docker_version && e->docker_version[0] == '\0') {
        free(e->docker_version);
        e->docker_version = NULL;
    }
    rc = render__get_strv(json_object_get(c, "Entrypoint"), &e->entrypoint);
    if (rc == 0)
        rc = render__get_strv(json_object_get(c, "Cmd"), &e->cmd);
    if (rc == 0)
        rc = render__get_strv(json_object_get(c, "Shell"), &e->shell);
    if (rc == 0)
        rc = read_labels(json_object_get(c, "Labels"), e);
    if (rc == 0)
        rc = read_history(cfg, e);
    if (rc == 0 && platform_from_config)
        rc = read_platform(cfg, &e->platform);
    return rc;
}

/* Fills e from an image manifest (schema2 / OCI) and its config. */
static int read_image_manifest(const struct im_bundle *bundle, const struct im_doc *doc,
                               const json_t *manifest, struct render_entry *e,
                               bool platform_from_config, struct im_error *err)
{
    const char *cfg_digest =
        json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
    const struct im_doc *cfg_doc;
    json_t *cfg = NULL;
    int rc;

    if (!cfg_digest)
        return im_seterr(err, IM_EPROTO, "%s: manifest without a config digest",
                         doc->digest);
    cfg_doc = im_bundle_find_doc(bundle, cfg_digest);
    if (!cfg_doc)
        return im_seterr(err, IM_EPROTO, "%s: missing config %s", doc->digest,
                         cfg_digest);
    e->image_id = strdup(cfg_digest);
    if (!e->image_id)
        return IM_ENOMEM;
    rc = read_layers(manifest, bundle, e, doc->digest, err);
    if (rc == 0)
        rc = render__parse_doc(cfg_doc, &cfg, err);
    if (rc == 0)
        rc = read_config(cfg, e, platform_from_config);
    json_decref(cfg);
    return rc;
}

/* ---- lists ---- */

static int read_list_entry(const struct im_bundle *bundle, const json_t *d,
                           struct render_entry *e, struct im_error *err)
{
    const char *digest = json_string_value(json_object_get(d, "digest"));
    const json_t *ann = json_object_get(d, "annotations");
    const json_t *plat = json_object_get(d, "platform");
    const struct im_doc *child;
    json_t *root = NULL;
    const char *mt = NULL;
    bool oom = false;
    int rc;

    if (!json_is_object(d) || !digest)
        return im_seterr(err, IM_EPROTO, "list entry without a digest");
    child = im_bundle_find_doc(bundle, digest);
    if (!child)
        return im_seterr(err, IM_EPROTO, "missing manifest %s", digest);
    e->digest = strdup(digest);
    e->media_type = render__get_str(d, "mediaType", &oom);
    if (!e->media_type && !oom)
        e->media_type = strdup(child->media_type);
    if (!e->digest || !e->media_type || oom)
        return IM_ENOMEM;
    if (json_is_string(json_object_get(ann, "vnd.docker.reference.type")) &&
        strcmp(json_string_value(json_object_get(ann, "vnd.docker.reference.type")),
               "attestation-manifest") == 0) {
        e->kind = RENDER_KIND_ATTESTATION;
        e->attests = render__get_str(ann, "vnd.docker.reference.digest", &oom);
        if (oom)
            return IM_ENOMEM;
    }
    rc = read_platform(json_is_object(plat) ? plat : NULL, &e->platform);
    if (rc == 0)
        rc = render__parse_doc(child, &root, err);
    if (rc == 0)
        rc = effective_mt(child, root, &mt, err);
    if (rc == 0 && mt[0] == '\0')
        mt = e->media_type; /* stored and body types unknown: trust the descriptor */
    if (rc == 0) {
        switch (im_manifest_kind(mt)) {
        case IM_MANIFEST_IMAGE:
            rc = read_image_manifest(bundle, child, root, e, false, err);
            break;
        case IM_MANIFEST_LIST: /* nested index: listed, not descended into */
            e->kind = RENDER_KIND_UNKNOWN;
            break;
        case IM_MANIFEST_SCHEMA1:
            rc = render__read_schema1(bundle, child, root, e, false, err);
            break;
        case IM_MANIFEST_UNKNOWN:
            rc = im_seterr(err, IM_EPROTO, "%s: unknown media type '%s'", digest, mt);
        }
    }
    json_decref(root);
    return rc;
}

static int read_list(const struct im_bundle *bundle, const struct im_doc *doc,
                     const json_t *root, struct render_image *img, struct im_error *err)
{
    const json_t *manifests = json_object_get(root, "manifests");
    size_t n = json_array_size(manifests);

    if (!json_is_array(manifests))
        return im_seterr(err, IM_EPROTO, "%s: list without a manifests array",
                         doc->digest);
    img->is_list = true;
    img->entries = n ? calloc(n, sizeof *img->entries) : NULL;
    if (n > 0 && !img->entries)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc =
            read_list_entry(bundle, json_array_get(manifests, i), &img->entries[i], err);
        img->n_entries = i + 1;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int read_single(const struct im_bundle *bundle, const struct im_doc *doc,
                       const json_t *root, const char *mt, struct render_image *img,
                       struct im_error *err)
{
    img->entries = calloc(1, sizeof *img->entries);
    if (!img->entries)
        return IM_ENOMEM;
    img->n_entries = 1;
    img->entries[0].media_type = strdup(mt);
    if (!img->entries[0].media_type)
        return IM_ENOMEM;
    if (im_manifest_kind(mt) == IM_MANIFEST_SCHEMA1)
        return render__read_schema1(bundle, doc, root, &img->entries[0], true, err);
    return read_image_manifest(bundle, doc, root, &img->entries[0], true, err);
}

int render_image_build(const struct im_ref *ref, const struct im_bundle *bundle,
                       struct render_image **out, struct im_error *err)
{
    const struct im_doc *doc = im_bundle_find_doc(bundle, bundle->root_digest);
    struct render_image *img = NULL;
    json_t *root = NULL;
    const char *mt = NULL;
    int rc;

    *out = NULL;
    if (!doc) {
        rc = im_seterr(err, IM_EPROTO, "missing manifest %s", bundle->root_digest);
        goto out;
    }
    img = calloc(1, sizeof *img);
    if (!img) {
        rc = IM_ENOMEM;
        goto out;
    }
    img->ref = *ref;
    rc = render__parse_doc(doc, &root, err);
    if (rc == 0)
        rc = effective_mt(doc, root, &mt, err);
    if (rc < 0)
        goto out;
    img->digest = strdup(doc->digest);
    img->media_type = strdup(mt);
    if (!img->digest || !img->media_type) {
        rc = IM_ENOMEM;
        goto out;
    }
    switch (im_manifest_kind(mt)) {
    case IM_MANIFEST_LIST:
        rc = read_list(bundle, doc, root, img, err);
        break;
    case IM_MANIFEST_IMAGE:
    case IM_MANIFEST_SCHEMA1:
        rc = read_single(bundle, doc, root, mt, img, err);
        break;
    case IM_MANIFEST_UNKNOWN:
        rc = im_seterr(err, IM_EPROTO, "%s: unknown media type '%s'", doc->digest, mt);
    }
out:
    if (rc == IM_ENOMEM)
        im_seterr(err, IM_ENOMEM, "out of memory building the image model");
    json_decref(root);
    if (rc < 0)
        render_image_free(img);
    else
        *out = img;
    return rc;
}
