/* fuzz_ref.c - libFuzzer target for the registry module's pure parsers:
 * reg_ref_parse, reg_digest_valid and the
 * WWW-Authenticate challenge parser. Besides "no crash, no UB", it checks
 * that a parsed reference is canonical: printing it and parsing it again
 * gives the same reference. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const struct im_ref *r)
{
    char s[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX + 4];
    struct im_ref again;
    struct im_error err;
    snprintf(s, sizeof s, "%s/%s%s%s%s%s", r->registry, r->repository,
             r->tag[0] ? ":" : "", r->tag, r->digest[0] ? "@" : "", r->digest);
    if (strlen(r->registry) + 1 + strlen(r->repository) > 255)
        return; /* the normalised form may exceed the written name's limit */
    if (reg_ref_parse(s, &again, &err) != 0 || memcmp(r, &again, sizeof *r) != 0) {
        if (strcmp(r->registry, again.registry) ||
            strcmp(r->repository, again.repository) || strcmp(r->tag, again.tag) ||
            strcmp(r->digest, again.digest))
            abort();
    }
    if (r->digest[0] && !reg_digest_valid(r->digest))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct im_ref ref;
    struct im_error err;
    struct reg__challenge ch;
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (reg_ref_parse(s, &ref, &err) == 0)
        check_roundtrip(&ref);
    (void)reg_digest_valid(s);
    if (reg__parse_challenge(s, &ch, &err) == 0) {
        if (!memchr(ch.realm, '\0', sizeof ch.realm) ||
            !memchr(ch.scope, '\0', sizeof ch.scope))
            abort();
    }
    free(s);
    return 0;
}
