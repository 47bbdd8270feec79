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

static void free_entry(struct render_entry *e)
{
    free_platform(&e->platform);
    free(e->digest);
    free(e->media_type);
    free(e->docker_version);
    free(e->image_id);
    free_strv(&e->entrypoint);
    free_strv(&e->cmd);
    free_strv(&e->shell);
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
        free_entry(&img->entries[i]);
    free(img->entries);
    free(img->digest);
    free(img->media_type);
    free(img);
}

/* ---- small JSON readers ---- */

/* A copy of o[key] when it is a string, else NULL. *oom is set when the copy
 * could not be made. */
static char *get_str(const json_t *o, const char *key, bool *oom)
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
static int get_strv(const json_t *arr, struct render_strv *out)
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
static int get_strs(const json_t *arr, char ***v, size_t *n)
{
    struct render_strv s;
    int rc = get_strv(arr, &s);
    *v = s.v;
    *n = s.n;
    return rc;
}

static int parse_doc(const struct im_doc *doc, json_t **out, struct im_error *err)
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
    p->os = get_str(o, "os", &oom);
    p->architecture = get_str(o, "architecture", &oom);
    p->variant = get_str(o, "variant", &oom);
    p->os_version = get_str(o, "os.version", &oom);
    if (!p->os && !oom)
        p->os = strdup("");
    if (!p->architecture && !oom)
        p->architecture = strdup("");
    if (oom || !p->os || !p->architecture)
        return IM_ENOMEM;
    rc = get_strs(json_object_get(o, "os.features"), &p->os_features, &p->n_os_features);
    if (rc == 0)
        rc = get_strs(json_object_get(o, "features"), &p->features, &p->n_features);
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
    l->digest = get_str(d, "digest", &oom);
    l->media_type = get_str(d, "mediaType", &oom);
    if (oom)
        return IM_ENOMEM;
    if (json_is_integer(size) && json_integer_value(size) >= 0)
        l->size = json_integer_value(size);
    blob = im_bundle_find_blob(bundle, l->digest);
    if (blob)
        l->last_modified = blob->last_modified;
    return get_strs(json_object_get(d, "urls"), &l->urls, &l->n_urls);
}

static int read_layers(const json_t *manifest, const struct im_bundle *bundle,
                       struct render_entry *e, const char *digest, struct im_error *err)
{
    const json_t *layers = json_object_get(manifest, "layers");
    size_t n = json_array_size(layers);
    if (n == 0)
        return 0;
    e->layers = calloc(n, sizeof *e->layers);
    if (!e->layers)
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
    if (n == 0)
        return 0;
    e->history = calloc(n, sizeof *e->history);
    if (!e->history)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *h = json_array_get(hist, i);
        struct render_history *rh = &e->history[e->n_history++];
        bool oom = false;
        rh->created = INT64_MIN;
        rh->created_raw = get_str(h, "created", &oom);
        rh->created_by = get_str(h, "created_by", &oom);
        rh->comment = get_str(h, "comment", &oom);
        rh->empty_layer = json_is_true(json_object_get(h, "empty_layer"));
        if (oom)
            return IM_ENOMEM;
        if (rh->created_raw && render_parse_rfc3339(rh->created_raw, &rh->created) < 0)
            rh->created = INT64_MIN;
    }
    return 0;
}

static int read_config(const json_t *cfg, struct render_entry *e,
                       bool platform_from_config)
{
    const json_t *c = json_object_get(cfg, "config");
    bool oom = false;
    int rc;

    e->docker_version = get_str(cfg, "docker_version", &oom);
    if (oom)
        return IM_ENOMEM;
    if (e->docker_version && e->docker_version[0] == '\0') {
        free(e->docker_version);
        e->docker_version = NULL;
    }
    rc = get_strv(json_object_get(c, "Entrypoint"), &e->entrypoint);
    if (rc == 0)
        rc = get_strv(json_object_get(c, "Cmd"), &e->cmd);
    if (rc == 0)
        rc = get_strv(json_object_get(c, "Shell"), &e->shell);
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
        rc = parse_doc(cfg_doc, &cfg, err);
    if (rc == 0)
        rc = read_config(cfg, e, platform_from_config);
    json_decref(cfg);
    return rc;
}

/* ---- legacy schema1 ---- */

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
        rc = get_strv(schema1_first(compat, "config", "Entrypoint"), &e->entrypoint);
    if (rc == 0)
        rc = get_strv(schema1_first(compat, "config", "Cmd"), &e->cmd);
    if (rc == 0)
        rc = get_strv(schema1_first(compat, "config", "Shell"), &e->shell);
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
    if (n == 0)
        return 0;
    e->history = calloc(n, sizeof *e->history);
    if (!e->history)
        return IM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(compat, n - 1 - i);
        struct render_history *h = &e->history[e->n_history++];
        bool oom = false;
        int rc;
        h->created = INT64_MIN;
        h->created_raw = get_str(c, "created", &oom);
        h->empty_layer = json_is_true(json_object_get(c, "throwaway"));
        if (oom)
            return IM_ENOMEM;
        if (h->created_raw && render_parse_rfc3339(h->created_raw, &h->created) < 0)
            h->created = INT64_MIN;
        rc = get_strv(json_object_get(json_object_get(c, "container_config"), "Cmd"),
                      &h->cmd_argv);
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
    if (n == 0)
        return 0;
    e->layers = calloc(n, sizeof *e->layers);
    if (!e->layers)
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

static int read_schema1(const struct im_bundle *bundle, const struct im_doc *doc,
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
    e->media_type = get_str(d, "mediaType", &oom);
    if (!e->media_type && !oom)
        e->media_type = strdup(child->media_type);
    if (!e->digest || !e->media_type || oom)
        return IM_ENOMEM;
    if (json_is_string(json_object_get(ann, "vnd.docker.reference.type")) &&
        strcmp(json_string_value(json_object_get(ann, "vnd.docker.reference.type")),
               "attestation-manifest") == 0) {
        e->kind = RENDER_KIND_ATTESTATION;
        e->attests = get_str(ann, "vnd.docker.reference.digest", &oom);
        if (oom)
            return IM_ENOMEM;
    }
    rc = read_platform(json_is_object(plat) ? plat : NULL, &e->platform);
    if (rc == 0)
        rc = parse_doc(child, &root, err);
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
            rc = read_schema1(bundle, child, root, e, false, err);
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
    if (n == 0)
        return 0;
    img->entries = calloc(n, sizeof *img->entries);
    if (!img->entries)
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
        return read_schema1(bundle, doc, root, &img->entries[0], true, err);
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
    rc = parse_doc(doc, &root, err);
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

/* ---- platform filter ---- */

static bool platform_matches(const struct render_platform *p, const char *filter)
{
    const char *os = p->os && p->os[0] ? p->os : "linux";
    const char *arch = p->architecture && p->architecture[0] ? p->architecture : "amd64";
    const char *s1 = strchr(filter, '/'), *s2;
    size_t oslen, archlen;

    if (!s1)
        return false;
    s2 = strchr(s1 + 1, '/');
    oslen = (size_t)(s1 - filter);
    archlen = s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
    if (strlen(os) != oslen || strncmp(os, filter, oslen) != 0 ||
        strlen(arch) != archlen || strncmp(arch, s1 + 1, archlen) != 0)
        return false;
    return !s2 || (p->variant && strcmp(p->variant, s2 + 1) == 0);
}

static bool entry_matches(const struct render_entry *e, const char *const *platforms,
                          size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (platforms[i] && platform_matches(&e->platform, platforms[i]))
            return true;
    return false;
}

/* Is some kept image entry the one this attestation attests? */
static bool attests_kept(const struct render_image *img, const bool *keep, const char *d)
{
    for (size_t i = 0; d && i < img->n_entries; i++)
        if (keep[i] && img->entries[i].kind != RENDER_KIND_ATTESTATION &&
            img->entries[i].digest && strcmp(img->entries[i].digest, d) == 0)
            return true;
    return false;
}

size_t render_image_filter(struct render_image *img, const char *const *platforms,
                           size_t n)
{
    bool *keep;
    size_t kept = 0;

    if (n == 0 || img->n_entries == 0)
        return img->n_entries;
    keep = calloc(img->n_entries, sizeof *keep);
    if (!keep)
        return img->n_entries; /* out of memory: leave the model whole */
    for (size_t i = 0; i < img->n_entries; i++)
        keep[i] = img->entries[i].kind != RENDER_KIND_ATTESTATION &&
                  entry_matches(&img->entries[i], platforms, n);
    for (size_t i = 0; i < img->n_entries; i++)
        if (img->entries[i].kind == RENDER_KIND_ATTESTATION)
            keep[i] = attests_kept(img, keep, img->entries[i].attests);
    for (size_t i = 0; i < img->n_entries; i++) {
        if (keep[i])
            img->entries[kept++] = img->entries[i];
        else
            free_entry(&img->entries[i]);
    }
    img->n_entries = kept;
    free(keep);
    return kept;
}
