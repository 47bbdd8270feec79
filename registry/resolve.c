/* resolve.c - reg_resolve: a cold resolution as one pipelined run (fetch.c):
 * the manifest; every child of a list/index; every config blob and one HEAD
 * per distinct layer. Each answer is taken as soon as it arrives and what it
 * names is requested at once, so a platform's config and layers do not wait
 * for its sibling manifests (the "stages" only exist per path down the
 * tree). Every document is hashed and checked against the digest it was
 * asked by before it is kept, and the caller's bundle is only touched on
 * success. */
#include "registry_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define MAX_WANTS 2048 /* transfers per resolution */
#define MAX_DEPTH 4    /* nested index levels below the root */

struct resolution {
    struct reg__session s;
    const struct im_bundle *known; /* caller's bundle: what it holds is not fetched */
    const struct reg_known *cache; /* asked next (may be NULL) */
    unsigned ncached;              /* answers it gave */
    struct im_bundle got;          /* verified during this resolution */
    char (*seen)[IM_DIGEST_MAX];   /* digests already wanted */
    size_t nseen, capseen;
    size_t nwants;
    int depth;           /* index levels above the manifests wanted now */
    struct reg__run run; /* every transfer (calloc'ed each), in the order wanted */
    size_t cap;          /* of run.x */
};

static void run_free(struct reg__run *run)
{
    for (size_t i = 0; i < run->n; i++) {
        reg__xfer_release(run->x[i]);
        free(run->x[i]);
    }
    free(run->x);
}

/* 1 when digest is new (and now remembered), 0 when seen before. */
static int seen_add(struct resolution *r, const char *digest)
{
    for (size_t i = 0; i < r->nseen; i++)
        if (strcmp(r->seen[i], digest) == 0)
            return 0;
    if (r->nseen == r->capseen) {
        size_t nc = r->capseen ? r->capseen * 2 : 32;
        void *p = realloc(r->seen, nc * sizeof *r->seen);
        if (!p)
            return IM_ENOMEM;
        r->seen = p;
        r->capseen = nc;
    }
    im_strlcpy(r->seen[r->nseen++], digest, IM_DIGEST_MAX);
    return 1;
}

/* Queues a transfer (started at once when a run is going on). */
static int want(struct resolution *r, enum reg__kind kind, const char *ref,
                bool by_digest, const char *mt, int64_t size, struct im_error *err)
{
    struct reg__run *l = &r->run;
    if (++r->nwants > MAX_WANTS)
        return im_seterr(err, IM_ETOOBIG, "image needs more than %d upstream requests",
                         MAX_WANTS);
    if (kind == REG__MANIFEST && r->depth > MAX_DEPTH)
        return im_seterr(err, IM_EPROTO, "indexes nested more than %d levels deep",
                         MAX_DEPTH);
    if (l->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        void *p = realloc(l->x, nc * sizeof *l->x);
        if (!p)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        l->x = p;
        r->cap = nc;
    }
    struct reg__xfer *x = calloc(1, sizeof *x);
    if (!x)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    l->x[l->n++] = x;
    x->depth = r->depth;
    x->kind = kind;
    x->by_digest = by_digest;
    x->desc_size = size;
    im_strlcpy(x->ref, ref, sizeof x->ref);
    im_strlcpy(x->desc_mt, mt ? mt : "", sizeof x->desc_mt);
    return 0;
}

static int process_manifest(struct resolution *r, const char *digest, const char *ct,
                            const unsigned char *body, size_t len, bool fetched,
                            struct im_error *err);

/* Descriptor fields, validated. */
static int descriptor(json_t *d, const char *what, const char *parent,
                      const char **digest, const char **mt, int64_t *size,
                      struct im_error *err)
{
    *digest = json_string_value(json_object_get(d, "digest"));
    *mt = json_string_value(json_object_get(d, "mediaType"));
    json_t *sz = json_object_get(d, "size");
    *size = json_is_integer(sz) ? (int64_t)json_integer_value(sz) : -1;
    if (!json_is_object(d) || !*digest)
        return im_seterr(err, IM_EPROTO, "%s lists a %s without a digest", parent, what);
    if (!reg_digest_valid(*digest))
        return im_seterr(err, IM_EPROTO, "%s lists a %s with an invalid digest '%.80s'",
                         parent, what, *digest);
    return 0;
}

/* The caller's cache, for a document below the root: 1 with *doc filled
 * (body to free), 0 when it does not know the digest. */
static int cached_doc(struct resolution *r, const char *digest, struct im_doc *doc)
{
    memset(doc, 0, sizeof *doc);
    if (!r->cache || !r->cache->doc || r->cache->doc(r->cache->cls, digest, doc) != 0) {
        free(doc->body);
        return 0;
    }
    if (strcmp(doc->digest, digest) != 0 || !doc->body) { /* not what was asked */
        free(doc->body);
        return 0;
    }
    r->ncached++;
    return 1;
}

/* The caller's cache, for a layer: 1 when it knew it (now in r->got), 0 when
 * not, IM_ENOMEM. */
static int cached_blob(struct resolution *r, const char *digest)
{
    struct im_blob b;
    memset(&b, 0, sizeof b);
    if (!r->cache || !r->cache->blob ||
        r->cache->blob(r->cache->cls, r->s.registry, digest, &b) != 0 ||
        strcmp(b.digest, digest) != 0)
        return 0;
    if (im_bundle_add_blob(&r->got, &b) != 0)
        return IM_ENOMEM;
    r->ncached++;
    return 1;
}

static int want_manifest(struct resolution *r, const char *digest, const char *mt,
                         int64_t size, struct im_error *err)
{
    int rc = seen_add(r, digest);
    if (rc <= 0)
        return rc == 0 ? 0 : im_seterr(err, IM_ENOMEM, "out of memory");
    const struct im_doc *k = im_bundle_find_doc(r->known, digest);
    if (k) /* already verified by the caller's cache: only walk it */
        return process_manifest(r, k->digest, k->media_type, k->body, k->len, false, err);
    struct im_doc d;
    if (cached_doc(r, digest, &d)) { /* walked, and kept in got as if fetched */
        rc = process_manifest(r, d.digest, d.media_type, d.body, d.len, true, err);
        free(d.body);
        return rc;
    }
    return want(r, REG__MANIFEST, digest, true, mt, size, err);
}

static int walk_index(struct resolution *r, json_t *root, const char *digest,
                      struct im_error *err)
{
    json_t *list = json_object_get(root, "manifests");
    size_t i;
    json_t *d;
    if (!json_is_array(list))
        return im_seterr(err, IM_EPROTO, "index %s has no \"manifests\" array", digest);
    json_array_foreach(list, i, d)
    {
        const char *cd, *mt;
        int64_t size;
        int rc = descriptor(d, "manifest", digest, &cd, &mt, &size, err);
        if (!rc && size > (int64_t)r->s.c->cfg.max_manifest_bytes)
            rc = im_seterr(err, IM_ETOOBIG, "manifest %s is %lld bytes, the cap is %zu",
                           cd, (long long)size, r->s.c->cfg.max_manifest_bytes);
        if (!rc)
            rc = want_manifest(r, cd, mt, size, err);
        if (rc)
            return rc;
    }
    return 0;
}

static bool is_foreign(const char *mt)
{
    return mt && (strstr(mt, "foreign") || strstr(mt, "nondistributable"));
}

/* Foreign layers live outside the registry: size from the manifest, and
 * Last-Modified from a HEAD on the first of its urls (through the URL policy;
 * when that HEAD fails or is refused the layer is still described, without a
 * date). */
static int want_foreign(struct resolution *r, json_t *d, const char *ld, const char *mt,
                        int64_t size, struct im_error *err)
{
    const char *url = json_string_value(json_array_get(json_object_get(d, "urls"), 0));
    struct im_error ignored;
    if (url && strlen(url) < sizeof((struct reg__xfer *)0)->url &&
        reg__check_url(url, &ignored) == 0) {
        int rc = want(r, REG__FOREIGN, ld, true, mt, size, err);
        if (rc)
            return rc;
        struct reg__xfer *x = r->run.x[r->run.n - 1];
        im_strlcpy(x->url, url, sizeof x->url);
        return 0;
    }
    struct im_blob b = {.size = size, .last_modified = -1};
    im_strlcpy(b.digest, ld, sizeof b.digest);
    im_strlcpy(b.media_type, mt, sizeof b.media_type);
    return im_bundle_add_blob(&r->got, &b) ? im_seterr(err, IM_ENOMEM, "out of memory")
                                           : 0;
}

static int want_layer(struct resolution *r, json_t *d, const char *parent,
                      struct im_error *err)
{
    const char *ld, *mt;
    int64_t size;
    int rc = descriptor(d, "layer", parent, &ld, &mt, &size, err);
    if (rc)
        return rc;
    rc = seen_add(r, ld);
    if (rc <= 0)
        return rc == 0 ? 0 : im_seterr(err, IM_ENOMEM, "out of memory");
    if (im_bundle_find_blob(r->known, ld))
        return 0;
    rc = cached_blob(r, ld);
    if (rc != 0)
        return rc == 1 ? 0 : im_seterr(err, IM_ENOMEM, "out of memory");
    if (is_foreign(mt))
        return want_foreign(r, d, ld, mt, size, err);
    return want(r, REG__LAYER, ld, true, mt, size, err);
}

static int walk_image(struct resolution *r, json_t *root, const char *digest,
                      struct im_error *err)
{
    json_t *cfg = json_object_get(root, "config");
    json_t *layers = json_object_get(root, "layers");
    const char *cd, *mt;
    int64_t size;
    size_t i;
    json_t *d;
    if (!json_is_object(cfg) || !json_is_array(layers))
        return im_seterr(err, IM_EPROTO, "manifest %s lacks \"config\" or \"layers\"",
                         digest);
    int rc = descriptor(cfg, "config", digest, &cd, &mt, &size, err);
    if (rc)
        return rc;
    if (size > (int64_t)r->s.c->cfg.max_config_bytes)
        return im_seterr(err, IM_ETOOBIG, "config %s is %lld bytes, the cap is %zu", cd,
                         (long long)size, r->s.c->cfg.max_config_bytes);
    rc = seen_add(r, cd);
    if (rc < 0)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    if (rc == 1 && !im_bundle_find_doc(r->known, cd)) {
        struct im_doc c;
        if (cached_doc(r, cd, &c)) {
            rc = im_bundle_add_doc(&r->got, c.digest, c.media_type, c.body, c.len);
            free(c.body);
            if (rc)
                return im_seterr(err, IM_ENOMEM, "out of memory");
        } else if ((rc = want(r, REG__CONFIG, cd, true, mt, size, err)) != 0) {
            return rc;
        }
    }
    json_array_foreach(layers, i, d)
    {
        rc = want_layer(r, d, digest, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Schema1: no config blob; fsLayers[].blobSum (newest first, repeats for
 * empty layers) are the layers, each asked about once. */
static int walk_schema1(struct resolution *r, json_t *root, const char *digest,
                        struct im_error *err)
{
    json_t *layers = json_object_get(root, "fsLayers"), *l;
    size_t i;
    if (!json_is_array(layers) || !json_is_array(json_object_get(root, "history")))
        return im_seterr(err, IM_EPROTO, "schema1 manifest %s lacks fsLayers or history",
                         digest);
    json_array_foreach(layers, i, l)
    {
        const char *d = json_string_value(json_object_get(l, "blobSum"));
        if (!d || !reg_digest_valid(d))
            return im_seterr(err, IM_EPROTO,
                             "schema1 manifest %s: fsLayers[%zu] has no valid blobSum",
                             digest, i);
        int rc = seen_add(r, d);
        if (rc < 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        if (rc == 0 || im_bundle_find_blob(r->known, d))
            continue;
        rc = cached_blob(r, d);
        if (rc == 1)
            continue;
        if (rc != 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        rc = want(r, REG__LAYER, d, true, NULL, -1, err);
        if (rc)
            return rc;
    }
    return 0;
}

static bool generic_type(const char *ct)
{
    return !ct[0] || strcmp(ct, "application/json") == 0 ||
           strcmp(ct, "application/octet-stream") == 0 || strcmp(ct, "text/plain") == 0;
}

/* The media type of a manifest: its Content-Type, which must agree with the
 * body's mediaType when both are given; the body's when the answer's type is
 * generic; else inferred from the shape (OCI allows omitting mediaType). */
static int manifest_type(json_t *root, const char *digest, const char *ct,
                         const char **mt, struct im_error *err)
{
    const char *bmt = json_string_value(json_object_get(root, "mediaType"));
    if (!generic_type(ct)) {
        if (bmt && strcmp(bmt, ct) != 0)
            return im_seterr(
                err, IM_EPROTO,
                "manifest %s: Content-Type %s disagrees with its mediaType %s", digest,
                ct, bmt);
        *mt = ct;
        return 0;
    }
    *mt = im_manifest_body_type(root);
    if (!*mt)
        return im_seterr(err, IM_EPROTO, "manifest %s has no media type", digest);
    return 0;
}

static int process_manifest(struct resolution *r, const char *digest, const char *ct,
                            const unsigned char *body, size_t len, bool fetched,
                            struct im_error *err)
{
    json_error_t jerr;
    const char *mt = NULL;
    int rc = 0;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        rc = im_seterr(err, IM_EPROTO, "manifest %s is not a JSON object: %s", digest,
                       root ? "wrong type" : jerr.text);
        goto out;
    }
    rc = manifest_type(root, digest, ct, &mt, err);
    if (rc)
        goto out;
    switch (im_manifest_kind(mt)) {
    case IM_MANIFEST_LIST:
        rc = walk_index(r, root, digest, err);
        break;
    case IM_MANIFEST_IMAGE:
        rc = walk_image(r, root, digest, err);
        break;
    case IM_MANIFEST_SCHEMA1:
        rc = walk_schema1(r, root, digest, err);
        break;
    case IM_MANIFEST_UNKNOWN:
        rc = im_seterr(err, IM_EPROTO, "manifest %s has unknown media type %s", digest,
                       mt);
    }
    if (!rc && fetched && im_bundle_add_doc(&r->got, digest, mt, body, len) != 0)
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
out:
    json_decref(root);
    return rc;
}

/* Hash check: the body must hash to `expected` (sha256, sha384 or sha512);
 * computed receives the body's digest in expected's algorithm (sha256 when
 * expected is NULL). A body that cannot be hashed (no memory) is refused with
 * that failure, never taken unchecked. */
static int verify(const char *what, const char *expected, const unsigned char *body,
                  size_t len, char computed[IM_DIGEST_MAX], struct im_error *err)
{
    char algo[8] = "sha256";
    if (expected && im_digest_algo(expected, algo, sizeof algo) != 0)
        return im_seterr(err, IM_EPROTO, "%s: malformed digest '%.80s'", what, expected);
    int rc = im_digest_compute(algo, body, len, computed, IM_DIGEST_MAX);
    if (rc == IM_EINVAL)
        return im_seterr(err, IM_EPROTO, "%s: cannot verify %s digests", what, algo);
    if (rc)
        return im_seterr(err, rc, "%s: cannot hash it: %s", what, im_strerror(rc));
    if (expected && strcmp(expected, computed) != 0)
        return im_seterr(err, IM_EDIGEST, "%s: content hashes to %s, not %s", what,
                         computed, expected);
    return 0;
}

/* A transfer's answer as the bytes documents are made of. */
static const unsigned char *xbody(const struct reg__xfer *x)
{
    return (const unsigned char *)x->body.p;
}

static int take_manifest(struct resolution *r, struct reg__xfer *x, struct im_error *err)
{
    char computed[IM_DIGEST_MAX], what[IM_ERRMSG_MAX];
    snprintf(what, sizeof what, "manifest %s/%s%s%s", r->s.registry, r->s.repository,
             x->by_digest ? "@" : ":", x->ref);
    const char *expected = x->by_digest ? x->ref : (x->dcd[0] ? x->dcd : NULL);
    unsigned char *payload = NULL; /* a signed schema1 is hashed without signatures */
    size_t plen = 0;
    int rc = 0;
    if (generic_type(x->content_type) ||
        im_manifest_kind(x->content_type) == IM_MANIFEST_SCHEMA1)
        rc = reg__schema1_payload(xbody(x), x->body.len, &payload, &plen, err);
    if (!rc)
        rc = verify(what, expected, payload ? payload : xbody(x),
                    payload ? plen : x->body.len, computed, err);
    free(payload);
    if (rc)
        return rc;
    if (!expected)
        expected = computed;
    if (x->is_root)
        im_strlcpy(r->got.root_digest, expected, sizeof r->got.root_digest);
    if (!x->by_digest && seen_add(r, expected) < 0)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    return process_manifest(r, expected, x->content_type, xbody(x), x->body.len, true,
                            err);
}

static int take_blob(struct resolution *r, struct reg__xfer *x, struct im_error *err)
{
    if (x->kind == REG__CONFIG) {
        char computed[IM_DIGEST_MAX], what[IM_ERRMSG_MAX];
        snprintf(what, sizeof what, "config blob %s", x->ref);
        int rc = verify(what, x->ref, xbody(x), x->body.len, computed, err);
        if (rc)
            return rc;
        const char *mt = x->desc_mt[0] ? x->desc_mt : x->content_type;
        if (im_bundle_add_doc(&r->got, x->ref, mt, xbody(x), x->body.len) != 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
        return 0;
    }
    struct im_blob b = {.size = x->clen, .last_modified = x->filetime};
    im_strlcpy(b.digest, x->ref, sizeof b.digest);
    im_strlcpy(b.media_type, x->content_type, sizeof b.media_type);
    if (x->kind == REG__FOREIGN) { /* the manifest's facts, the HEAD's date */
        b.size = x->desc_size;
        b.last_modified = x->failed ? -1 : x->filetime;
        im_strlcpy(b.media_type, x->desc_mt, sizeof b.media_type);
    }
    if (im_bundle_add_blob(&r->got, &b) != 0)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    return 0;
}

/* reg__run's done: takes one answer; a manifest's children, config and
 * layers are queued (and started) right away. */
static int take_answer(void *cls, struct reg__xfer *x, struct im_error *err)
{
    struct resolution *r = cls;
    if (x->kind != REG__MANIFEST)
        return take_blob(r, x, err);
    r->depth = x->depth + 1;
    return take_manifest(r, x, err);
}

/* Queues the reference's manifest, or walks it when the caller has it. */
static int want_root(struct resolution *r, const struct im_ref *ref, struct im_error *err)
{
    int rc = 0;
    const struct im_doc *k =
        ref->digest[0] ? im_bundle_find_doc(r->known, ref->digest) : NULL;
    if (k) {
        im_strlcpy(r->got.root_digest, k->digest, sizeof r->got.root_digest);
        rc = seen_add(r, k->digest) < 0 ? IM_ENOMEM : 0;
        return rc ? rc
                  : process_manifest(r, k->digest, k->media_type, k->body, k->len, false,
                                     err);
    }
    bool by_digest = ref->digest[0] != '\0';
    rc = want(r, REG__MANIFEST, by_digest ? ref->digest : ref->tag, by_digest, NULL, -1,
              err);
    if (rc)
        return rc;
    r->run.x[0]->is_root = true;
    if (by_digest && seen_add(r, ref->digest) < 0)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    return 0;
}

/* Moves what this resolution verified into the caller's bundle. */
static int merge(struct im_bundle *out, struct im_bundle *got, struct im_error *err)
{
    if (out->ndocs == 0 && out->nblobs == 0) {
        im_bundle_free(out);
        *out = *got;
        im_bundle_init(got);
        return 0;
    }
    for (size_t i = 0; i < got->ndocs; i++) {
        const struct im_doc *d = &got->docs[i];
        if (im_bundle_add_doc(out, d->digest, d->media_type, d->body, d->len) != 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < got->nblobs; i++)
        if (im_bundle_add_blob(out, &got->blobs[i]) != 0)
            return im_seterr(err, IM_ENOMEM, "out of memory");
    im_strlcpy(out->root_digest, got->root_digest, sizeof out->root_digest);
    return 0;
}

int reg_resolve(struct reg_client *c, const struct im_ref *ref, struct im_bundle *out,
                struct reg_stats *stats, struct im_error *err)
{
    return reg_resolve_known(c, ref, out, NULL, stats, err);
}

int reg_resolve_known(struct reg_client *c, const struct im_ref *ref,
                      struct im_bundle *out, const struct reg_known *known,
                      struct reg_stats *stats, struct im_error *err)
{
    struct resolution r;
    int rc = 0;
    memset(&r, 0, sizeof r);
    im_bundle_init(&r.got);
    r.known = out;
    r.cache = known;
    if (!ref->registry[0] || !ref->repository[0] || (!ref->tag[0] && !ref->digest[0])) {
        rc = im_seterr(err, IM_EINVAL, "incomplete reference");
        goto out;
    }
    if (ref->digest[0] && !reg_digest_valid(ref->digest)) {
        rc = im_seterr(err, IM_EINVAL, "invalid digest '%.80s'", ref->digest);
        goto out;
    }
    rc = reg__session_open(&r.s, c, ref, err);
    if (rc)
        goto out;
    rc = want_root(&r, ref, err);
    if (rc)
        goto out;
    r.run.done = take_answer;
    r.run.cls = &r;
    rc = reg__run(&r.s, &r.run, err);
    if (rc)
        goto out;
    rc = merge(out, &r.got, err);
out:
    if (stats)
        stats->known += r.ncached;
    reg__session_close(&r.s, stats);
    run_free(&r.run);
    free(r.seen);
    im_bundle_free(&r.got);
    return rc;
}
