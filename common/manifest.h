/* manifest.h - what every module knows of manifests: their media types, the
 * kind of manifest a type (or, when it names none, a body's shape) is, and
 * the digests a manifest names. Used by registry/ (what to fetch), render/
 * (what to describe) and api/ (what a root reaches). Pure functions over
 * jansson values; thread-safe. */
#ifndef IM_MANIFEST_H
#define IM_MANIFEST_H

#include <jansson.h>

#define IM_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IM_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IM_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IM_MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define IM_MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define IM_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

enum im_manifest_kind {
    IM_MANIFEST_UNKNOWN = 0, /* not a manifest type this project reads */
    IM_MANIFEST_LIST,        /* a Docker manifest list or an OCI index */
    IM_MANIFEST_IMAGE,       /* a Docker schema2 or OCI image manifest */
    IM_MANIFEST_SCHEMA1,     /* a legacy Docker schema1 manifest, signed or not */
};

/* The kind of a manifest media type (NULL is IM_MANIFEST_UNKNOWN). */
enum im_manifest_kind im_manifest_kind(const char *media_type);

/* The media type a manifest body names, or, when it names none, the one its
 * shape shows (OCI allows leaving mediaType out): schemaVersion 1 is schema1,
 * a "manifests" member an OCI index, a "config" member an OCI image manifest.
 * NULL when neither; a static string or borrowed from root. */
const char *im_manifest_body_type(const json_t *root);

/* What a digest a manifest names is to it. */
enum im_manifest_child {
    IM_CHILD_MANIFEST, /* an entry of a list */
    IM_CHILD_CONFIG,   /* an image's config blob */
    IM_CHILD_LAYER,    /* an image's layer, or a schema1 fsLayers blobSum */
};

/* Calls each(ud, role, desc, digest) for every digest a manifest of that kind
 * names, in document order: a list's manifests; an image's config, then its
 * layers; a schema1 manifest's blobSums (each digest once). desc is the
 * descriptor object (for schema1, the fsLayers entry). Members that are not of
 * the expected JSON type are skipped; digests are not validated here. A
 * non-zero return of each stops the walk and is returned; else 0. */
typedef int (*im_manifest_child_fn)(void *ud, enum im_manifest_child role,
                                    const json_t *desc, const char *digest);
int im_manifest_children(const json_t *root, enum im_manifest_kind kind,
                         im_manifest_child_fn each, void *ud);

#endif
