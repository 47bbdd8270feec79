/* route.c - the /images/ route grammar (api_int.h, api__ref_from_route):
 * how the path of a request names a reference. The reference grammar itself
 * is the registry client's (reg_ref_parse). Pure, no allocation. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "registry.h"

int api__ref_from_route(const char *path, struct im_ref *out, struct im_error *err)
{
    char buf[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX];
    int rc = 0;
    size_t len = strlen(path);
    if (len == 0) {
        rc = im_seterr(err, IM_EINVAL, "missing image: use /images/REPOSITORY/TAG");
        goto out;
    }
    if (len >= sizeof buf) {
        rc = im_seterr(err, IM_EINVAL, "image path is too long");
        goto out;
    }
    const char *last = strrchr(path, '/');
    const char *lastseg = last ? last + 1 : path;
    /* docker forms: anything with a digest, or a ':' in the last segment */
    if (strchr(path, '@') || strchr(lastseg, ':')) {
        rc = reg_ref_parse(path, out, err);
        goto out;
    }
    if (!last) {
        rc = im_seterr(err, IM_EINVAL, "missing tag: use /images/%.100s/TAG", path);
        goto out;
    }
    size_t namelen = (size_t)(last - path);
    if (!memchr(path, '/', namelen) && reg_looks_like_host(path, namelen)) {
        rc = im_seterr(
            err, IM_EINVAL,
            "'%.*s' looks like a registry host: use /images/%.*s/REPOSITORY/TAG",
            (int)(namelen > 100 ? 100 : namelen), path,
            (int)(namelen > 100 ? 100 : namelen), path);
        goto out;
    }
    if (*lastseg == '\0') {
        rc = im_seterr(err, IM_EINVAL, "missing tag after '/': use /images/%.*s/TAG",
                       (int)(namelen > 100 ? 100 : namelen), path);
        goto out;
    }
    snprintf(buf, sizeof buf, "%.*s:%s", (int)namelen, path, lastseg);
    rc = reg_ref_parse(buf, out, err);
out:
    return rc;
}
