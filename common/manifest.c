/* manifest.c - media types, kinds and children of manifests (manifest.h). */
#include "manifest.h"

#include <stdbool.h>
#include <string.h>

static const struct {
    const char *type;
    enum im_manifest_kind kind;
} kinds[] = {
    {IM_MT_DOCKER_LIST, IM_MANIFEST_LIST},  {IM_MT_OCI_INDEX, IM_MANIFEST_LIST},
    {IM_MT_DOCKER_V2, IM_MANIFEST_IMAGE},   {IM_MT_OCI_MANIFEST, IM_MANIFEST_IMAGE},
    {IM_MT_DOCKER_V1, IM_MANIFEST_SCHEMA1}, {IM_MT_DOCKER_V1_SIGNED, IM_MANIFEST_SCHEMA1},
};

enum im_manifest_kind im_manifest_kind(const char *media_type)
{
    for (size_t i = 0; media_type && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(media_type, kinds[i].type) == 0)
            return kinds[i].kind;
    return IM_MANIFEST_UNKNOWN;
}

const char *im_manifest_body_type(const json_t *root)
{
    const char *named = json_string_value(json_object_get(root, "mediaType"));
    if (named)
        return named;
    if (json_integer_value(json_object_get(root, "schemaVersion")) == 1)
        return IM_MT_DOCKER_V1;
    if (json_object_get(root, "manifests"))
        return IM_MT_OCI_INDEX;
    if (json_object_get(root, "config"))
        return IM_MT_OCI_MANIFEST;
    return NULL;
}

/* Calls each for the "digest" of every object of arr, as role. */
static int each_descriptor(const json_t *arr, enum im_manifest_child role,
                           im_manifest_child_fn each, void *ud)
{
    size_t i;
    const json_t *d;
    json_array_foreach(arr, i, d)
    {
        const char *digest = json_string_value(json_object_get(d, "digest"));
        int rc = digest ? each(ud, role, d, digest) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* A schema1 manifest's blobSums, each once (they repeat for empty layers). */
static int schema1_children(const json_t *root, im_manifest_child_fn each, void *ud)
{
    const json_t *fs = json_object_get(root, "fsLayers");
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const json_t *l = json_array_get(fs, i);
        const char *d = json_string_value(json_object_get(l, "blobSum"));
        bool seen = false;
        for (size_t j = 0; d && j < i && !seen; j++) {
            const char *e =
                json_string_value(json_object_get(json_array_get(fs, j), "blobSum"));
            seen = e && strcmp(e, d) == 0;
        }
        int rc = d && !seen ? each(ud, IM_CHILD_LAYER, l, d) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int im_manifest_children(const json_t *root, enum im_manifest_kind kind,
                         im_manifest_child_fn each, void *ud)
{
    switch (kind) {
    case IM_MANIFEST_LIST:
        return each_descriptor(json_object_get(root, "manifests"), IM_CHILD_MANIFEST,
                               each, ud);
    case IM_MANIFEST_IMAGE: {
        const json_t *cfg = json_object_get(root, "config");
        const char *cd = json_string_value(json_object_get(cfg, "digest"));
        int rc = cd ? each(ud, IM_CHILD_CONFIG, cfg, cd) : 0;
        return rc ? rc
                  : each_descriptor(json_object_get(root, "layers"), IM_CHILD_LAYER, each,
                                    ud);
    }
    case IM_MANIFEST_SCHEMA1:
        return schema1_children(root, each, ud);
    case IM_MANIFEST_UNKNOWN:
        break;
    }
    return 0;
}
