/* fuzz_route.c - libFuzzer target for the /images/ route grammar
 * (api/route.c, api__ref_from_route), which reads every image request's path.
 * Besides "no crash, no UB": a path it accepts names a reference that prints
 * and parses back to itself (reg_ref_parse), with a tag or a valid digest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char text[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    struct im_ref ref, again;
    struct im_error err;
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (api__ref_from_route(s, &ref, &err) == 0) {
        if (!ref.tag[0] && !reg_digest_valid(ref.digest))
            abort(); /* a reference names a tag or a digest */
        snprintf(text, sizeof text, "%s/%s%s%s%s%s", ref.registry, ref.repository,
                 ref.tag[0] ? ":" : "", ref.tag, ref.digest[0] ? "@" : "", ref.digest);
        if (strlen(ref.registry) + 1 + strlen(ref.repository) <= 255 &&
            (reg_ref_parse(text, &again, &err) != 0 ||
             strcmp(ref.registry, again.registry) != 0 ||
             strcmp(ref.repository, again.repository) != 0 ||
             strcmp(ref.tag, again.tag) != 0 || strcmp(ref.digest, again.digest) != 0))
            abort();
    }
    free(s);
    return 0;
}
