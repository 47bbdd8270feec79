/* fill.c - bench-fill: writes many distinct images straight into the storage
 * directory of a (filesystem-backed) docker-registry, for the scale benchmark.
 *
 *   bench-fill --storage DIR --repo library/python --list DIGEST
 *              --mode single|list --count N [--prefix s]
 *
 * Reads the manifest list DIGEST that imgmeta-fixture pushed (and its manifests
 * and configs) from DIR, then writes N new images tagged PREFIX1..PREFIXN:
 * - single: a schema2 manifest of the list's first platform whose config is
 *   the original one with a leading "imgmeta_bench":N member (a distinct
 *   config, so a distinct image; layers are shared, as base layers are);
 * - list: the same for every platform, plus a manifest list over them.
 * Pushing over HTTP costs ~270 ms per 7-platform image here; writing the
 * registry's content-addressed layout costs well under a millisecond. The
 * layout (distribution's filesystem driver): blobs/sha256/XX/HEX/data,
 * repositories/REPO/_layers/sha256/HEX/link, .../_manifests/revisions/...,
 * .../_manifests/tags/TAG/{current,index/sha256/HEX}/link.
 * Exit status 0 on success, 1 on failure, 2 on usage. Single-threaded. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sha256.h"

#define PATH_MAX_ 4096

struct opts {
    const char *storage, *repo, *list, *mode, *prefix;
    long count;
};

static char v2[1024]; /* DIR/docker/registry/v2 */

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX_];
    snprintf(path, sizeof path, "%s", dir);
    if (mkdir_p(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

static char *read_blob(const char *digest, size_t *len)
{
    char path[PATH_MAX_];
    const char *hex = digest + 7; /* "sha256:" */
    snprintf(path, sizeof path, "%s/blobs/sha256/%.2s/%s/data", v2, hex, hex);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p != NULL) {
        p[n] = '\0';
        *len = (size_t)n;
    }
    return p;
}

/* Stores data as a blob; kind "layers" or "manifests" adds the repository link. */
static int put(const struct opts *o, const char *kind, const char *data, size_t len,
               char digest[72])
{
    char dir[PATH_MAX_];
    if (im_sha256_digest(data, len, digest) != 0)
        return -1;
    const char *hex = digest + 7;
    snprintf(dir, sizeof dir, "%s/blobs/sha256/%.2s/%s", v2, hex, hex);
    if (write_file(dir, "data", data, len) != 0)
        return -1;
    if (strcmp(kind, "layers") == 0)
        snprintf(dir, sizeof dir, "%s/repositories/%s/_layers/sha256/%s", v2, o->repo,
                 hex);
    else
        snprintf(dir, sizeof dir, "%s/repositories/%s/_manifests/revisions/sha256/%s", v2,
                 o->repo, hex);
    return write_file(dir, "link", digest, strlen(digest));
}

static int tag(const struct opts *o, const char *name, const char *digest)
{
    char dir[PATH_MAX_];
    snprintf(dir, sizeof dir, "%s/repositories/%s/_manifests/tags/%s/current", v2,
             o->repo, name);
    if (write_file(dir, "link", digest, strlen(digest)) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/repositories/%s/_manifests/tags/%s/index/sha256/%s", v2,
             o->repo, name, digest + 7);
    return write_file(dir, "link", digest, strlen(digest));
}

/* A distinct copy of manifest m (config text cfg): returns the new manifest's
 * digest and size through out/outsize. */
static int variant_manifest(const struct opts *o, json_t *m, const char *cfg, long n,
                            char out[72], size_t *outsize)
{
    char cdigest[72];
    size_t cl = strlen(cfg);
    char *c2 = malloc(cl + 64);
    if (c2 == NULL || cfg[0] != '{')
        return -1;
    int k = snprintf(c2, cl + 64, "{\"imgmeta_bench\":%ld,%s", n, cfg + 1);
    int rc = put(o, "layers", c2, (size_t)k, cdigest);
    free(c2);
    if (rc != 0)
        return -1;
    json_t *mc = json_deep_copy(m);
    json_t *c = json_object_get(mc, "config");
    json_object_set_new(c, "digest", json_string(cdigest));
    json_object_set_new(c, "size", json_integer(k));
    char *txt = json_dumps(mc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(mc);
    if (txt == NULL)
        return -1;
    *outsize = strlen(txt);
    rc = put(o, "manifests", txt, *outsize, out);
    free(txt);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {.prefix = "s"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--storage") == 0)
            o.storage = v;
        else if (strcmp(a, "--repo") == 0)
            o.repo = v;
        else if (strcmp(a, "--list") == 0)
            o.list = v;
        else if (strcmp(a, "--mode") == 0)
            o.mode = v;
        else if (strcmp(a, "--prefix") == 0)
            o.prefix = v;
        else if (strcmp(a, "--count") == 0)
            o.count = strtol(v, NULL, 10);
    }
    if (!o.storage || !o.repo || !o.list || !o.mode || o.count <= 0 ||
        strncmp(o.list, "sha256:", 7) != 0 ||
        (strcmp(o.mode, "single") != 0 && strcmp(o.mode, "list") != 0)) {
        fprintf(stderr, "usage: bench-fill --storage DIR --repo NAME --list DIGEST "
                        "--mode single|list --count N [--prefix P]\n");
        return 2;
    }
    snprintf(v2, sizeof v2, "%s/docker/registry/v2", o.storage);

    size_t len;
    char *ltxt = read_blob(o.list, &len);
    json_t *list = ltxt ? json_loads(ltxt, 0, NULL) : NULL;
    json_t *ms = json_object_get(list, "manifests");
    size_t np = json_array_size(ms);
    if (np == 0) {
        fprintf(stderr, "bench-fill: cannot read list %s under %s\n", o.list, v2);
        return 1;
    }
    json_t **man = calloc(np, sizeof *man);
    char **cfg = calloc(np, sizeof *cfg);
    for (size_t i = 0; i < np; i++) {
        const char *d =
            json_string_value(json_object_get(json_array_get(ms, i), "digest"));
        char *t = d ? read_blob(d, &len) : NULL;
        man[i] = t ? json_loads(t, 0, NULL) : NULL;
        free(t);
        const char *cd = json_string_value(
            json_object_get(json_object_get(man[i], "config"), "digest"));
        cfg[i] = cd ? read_blob(cd, &len) : NULL;
        if (cfg[i] == NULL) {
            fprintf(stderr, "bench-fill: cannot read manifest %zu of the list\n", i);
            return 1;
        }
    }
    bool single = strcmp(o.mode, "single") == 0;
    for (long n = 1; n <= o.count; n++) {
        char d[72], name[128];
        size_t size;
        snprintf(name, sizeof name, "%s%ld", o.prefix, n);
        if (single) {
            if (variant_manifest(&o, man[0], cfg[0], n, d, &size) != 0 ||
                tag(&o, name, d))
                goto fail;
            continue;
        }
        json_t *l2 = json_deep_copy(list);
        json_t *m2 = json_object_get(l2, "manifests");
        for (size_t i = 0; i < np; i++) {
            if (variant_manifest(&o, man[i], cfg[i], n, d, &size) != 0)
                goto fail;
            json_t *e = json_array_get(m2, i);
            json_object_set_new(e, "digest", json_string(d));
            json_object_set_new(e, "size", json_integer((json_int_t)size));
        }
        char *txt = json_dumps(l2, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(l2);
        if (txt == NULL || put(&o, "manifests", txt, strlen(txt), d) != 0 ||
            tag(&o, name, d))
            goto fail;
        free(txt);
    }
    printf("%ld\n", o.count);
    return 0;
fail:
    fprintf(stderr, "bench-fill: writing under %s failed: errno %d\n", v2, errno);
    return 1;
}
