/* render_filter.c - keeps the entries of an image model whose platform is
 * asked for (?platform=), with the attestations of the images kept. */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include "render_int.h"

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
            render__free_entry(&img->entries[i]);
    }
    img->n_entries = kept;
    free(keep);
    return kept;
}
