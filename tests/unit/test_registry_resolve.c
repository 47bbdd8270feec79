/* test_registry_resolve.c - reg_resolve against the mock registry: every image
 * kind, the token handshake and remembered realms, what the cache already knows,
 * concurrency, and each failure with its error code. */
#include "registry_test.h"

Test(resolve_mock, index_with_attestation_auth_and_cdn_redirects, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "resolve failed: %d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, 4, "index, image, attestation, one shared config: %zu",
                 b.ndocs);
    const struct im_doc *d = im_bundle_find_doc(&b, M.dindex);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.oci.image.index.v1+json");
    cr_expect_eq(d->len, strlen(M.index));
    d = im_bundle_find_doc(&b, M.dmanifest);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type,
                     "application/vnd.docker.distribution.manifest.v2+json");
    cr_assert_not_null(im_bundle_find_doc(&b, M.dattest), "attestation manifest fetched");
    d = im_bundle_find_doc(&b, M.dconfig);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.docker.container.image.v1+json");
    cr_expect_eq(b.nblobs, 2);
    const struct im_blob *l = im_bundle_find_blob(&b, M.dlayer1);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 1234);
    cr_expect_eq(l->last_modified, 1445412480, "Last-Modified from the CDN answer");
    cr_expect_str_eq(l->media_type, "application/octet-stream");
    cr_expect_eq(im_bundle_find_blob(&b, M.dlayer2)->size, 5678);
    /* one manifest GET each (no duplicates), one config GET, one HEAD per layer */
    cr_expect_eq(st.manifest_gets, 3 + 1, "3 manifests + the retry after the 401");
    cr_expect_eq(st.blob_gets, 1);
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(st.token_gets, 1);
    cr_expect_eq(M.bad_accept, 0, "every manifest GET sends the four Accept lines");
    cr_expect_eq(mini_count(&M.reg, "GET /token"), 1);
    cr_expect(strstr(M.token_query, "service=mock%2Cregistry") != NULL, "%s",
              M.token_query);
    cr_expect(strstr(M.token_query, "scope=repository%3Ateam%2Fapp%3Apull") != NULL, "%s",
              M.token_query);
    /* the CDN on another port must never see the registry's token */
    cr_expect_eq(mini_count(&M.cdn, "GET"), 1);
    cr_expect_eq(mini_count(&M.cdn, "HEAD"), 2);
    cr_expect_eq(mini_count(&M.cdn, "GET /cdn/sha256"), 1);
    pthread_mutex_lock(&M.cdn.mu);
    for (int i = 0; i < M.cdn.nreq; i++)
        cr_expect(strstr(M.cdn.log[i], "auth=no") != NULL, "leaked: %s", M.cdn.log[i]);
    pthread_mutex_unlock(&M.cdn.mu);
    /* every registry request after the first carried the token */
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    /* a second resolution reuses the cached token: no 401, no token GET */
    struct reg_stats st2 = {0};
    im_bundle_free(&b);
    rc = mock_resolve(c, "v1", &b, &st2, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st2.token_gets, 0);
    cr_expect_eq(st2.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

/* Resolves v1 with the token cache emptied first: what a running daemon
 * does for a repository of this registry it has no token for yet. */
static void resolve_without_token(struct reg_client *c, struct reg_stats *st)
{
    char registry[64];
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_registry(registry, sizeof registry);
    reg__tokens_drop(c->tokens, registry, "repository:team/app:pull");
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
}

Test(resolve_mock, remembered_realm_saves_the_401, .init = init_curl)
{
    struct reg_stats st1 = {0}, st2 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    resolve_without_token(c, &st1);
    cr_expect_eq(st1.manifest_gets, 3 + 1, "the first resolution meets one 401");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1);
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.token_gets, 1, "a token for the new scope, from the known realm");
    cr_expect_eq(st2.manifest_gets, 3, "no 401 and no resend");
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/v1 auth=no"), 1,
                 "the second resolution sent nothing without its token");
    cr_expect_eq(mini_count(&M.reg, "GET /token"), 2);
    cr_expect(strstr(M.token_query, "service=mock%2Cregistry") != NULL, "%s",
              M.token_query);
    cr_expect(strstr(M.token_query, "scope=repository%3Ateam%2Fapp%3Apull") != NULL, "%s",
              M.token_query);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, moved_realm_falls_back_to_the_challenge, .init = init_curl)
{
    struct reg_stats st1 = {0}, st2 = {0}, st3 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    resolve_without_token(c, &st1);
    M.mode = M_REALM2; /* the old realm still answers, its token is refused */
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.token_gets, 2, "the old realm's token, then the new realm's");
    cr_expect_eq(st2.manifest_gets, 3 + 1, "one 401 names the new realm");
    cr_expect_eq(mini_count(&M.reg, "GET /token2"), 1);
    resolve_without_token(c, &st3);
    cr_expect_eq(st3.token_gets, 1, "the new realm is the one remembered");
    cr_expect_eq(st3.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.reg, "GET /token2"), 2);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, failing_realm_is_forgotten, .init = init_curl)
{
    char registry[64], realm[128];
    struct reg__challenge ch;
    struct reg_stats st1 = {0}, st2 = {0};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    mock_registry(registry, sizeof registry);
    snprintf(realm, sizeof realm, "http://127.0.0.1:%d/gone", M.cdn.port);
    reg__realms_put(c->realms, registry, realm, "mock");
    resolve_without_token(c, &st1);
    cr_expect_eq(mini_count(&M.cdn, "GET /gone"), 1, "the remembered realm was asked");
    cr_expect_eq(st1.token_gets, 2, "it answered 404: the challenge's realm was asked");
    cr_expect_eq(st1.manifest_gets, 3 + 1);
    cr_assert_eq(reg__realms_get(c->realms, registry, &ch), 0);
    cr_expect(strstr(ch.realm, "/token") != NULL, "relearnt: %s", ch.realm);
    resolve_without_token(c, &st2);
    cr_expect_eq(st2.manifest_gets, 3);
    cr_expect_eq(mini_count(&M.cdn, "GET /gone"), 1);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, known_documents_are_not_fetched_again, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_assert_eq(im_bundle_add_doc(&b, M.dmanifest,
                                   "application/vnd.docker.distribution.manifest.v2+json",
                                   M.manifest, strlen(M.manifest)),
                 0);
    int rc = mock_resolve(c, M.dindex, &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, 4);
    cr_expect_eq(mini_count(&M.reg, "GET /v2/team/app/manifests/"), 2 + 1,
                 "index (twice: 401 then token) and attestation, not the known image");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

/* A reg_known over a bundle (a cache's stand-in), recording what it was asked. */
struct known_from {
    const struct im_bundle *b;
    char asked[16][IM_DIGEST_MAX];
    int nasked;
    char registry[64]; /* the registry a blob was asked for */
    bool lie;          /* answer every document with another one */
};

static void note_asked(struct known_from *k, const char *digest)
{
    if (k->nasked < 16)
        im_strlcpy(k->asked[k->nasked++], digest, IM_DIGEST_MAX);
}

static int known_doc_from(void *cls, const char *digest, struct im_doc *out)
{
    struct known_from *k = cls;
    note_asked(k, digest);
    const struct im_doc *d = im_bundle_find_doc(k->b, digest);
    if (!d || (k->lie && k->b->ndocs < 2))
        return IM_ENOTFOUND;
    if (k->lie) /* a document under another digest: must not be taken */
        d = d == &k->b->docs[0] ? &k->b->docs[1] : &k->b->docs[0];
    *out = *d;
    out->body = malloc(d->len);
    cr_assert_not_null(out->body);
    memcpy(out->body, d->body, d->len);
    return 0;
}

static int known_blob_from(void *cls, const char *registry, const char *digest,
                           struct im_blob *out)
{
    struct known_from *k = cls;
    note_asked(k, digest);
    im_strlcpy(k->registry, registry, sizeof k->registry);
    const struct im_blob *b = im_bundle_find_blob(k->b, digest);
    if (!b || k->lie)
        return IM_ENOTFOUND;
    *out = *b;
    return 0;
}

Test(resolve_mock, what_the_cache_knows_below_the_root_is_not_fetched, .init = init_curl)
{
    struct im_bundle full, b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&full);
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &full, NULL, &e), 0, "%s", e.msg);
    int before_cdn = mini_count(&M.cdn, "");
    /* another tag naming the same children: only its own manifest is fetched */
    struct known_from k = {.b = &full};
    struct reg_known known = {.doc = known_doc_from, .blob = known_blob_from, .cls = &k};
    struct im_ref ref;
    char s[512];
    snprintf(s, sizeof s, "127.0.0.1:%d/team/app:v1", M.reg.port);
    cr_assert_eq(reg_ref_parse(s, &ref, &e), 0, "%s", e.msg);
    int rc = reg_resolve_known(c, &ref, &b, &known, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.manifest_gets, 1, "the tag's manifest only, got %u",
                 st.manifest_gets);
    cr_expect_eq(st.blob_gets + st.blob_heads, 0);
    cr_expect_eq(mini_count(&M.cdn, ""), before_cdn, "no CDN request");
    cr_expect_eq(st.known, 5, "image, attestation, config, 2 layers: %u", st.known);
    char registry[64];
    mock_registry(registry, sizeof registry);
    cr_expect_str_eq(k.registry, registry, "layer facts are asked per registry");
    for (int i = 0; i < k.nasked; i++)
        cr_expect_str_neq(k.asked[i], M.dindex, "the root is the registry's to say");
    /* the answer is the full one: every document and layer fact */
    cr_expect_str_eq(b.root_digest, full.root_digest);
    cr_expect_eq(b.ndocs, full.ndocs);
    cr_expect_eq(b.nblobs, full.nblobs);
    for (size_t i = 0; i < full.ndocs; i++) {
        const struct im_doc *d = im_bundle_find_doc(&b, full.docs[i].digest);
        cr_assert_not_null(d, "%s", full.docs[i].digest);
        cr_expect_eq(d->len, full.docs[i].len);
        cr_expect_str_eq(d->media_type, full.docs[i].media_type);
    }
    const struct im_blob *l = im_bundle_find_blob(&b, M.dlayer1);
    cr_assert_not_null(l);
    cr_expect_eq(l->last_modified, 1445412480);
    cr_expect_eq(l->size, 1234);
    /* a cache that answers with the wrong document is not believed */
    im_bundle_free(&b);
    memset(&st, 0, sizeof st);
    k.lie = true;
    k.nasked = 0;
    rc = reg_resolve_known(c, &ref, &b, &known, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.known, 0);
    cr_expect_eq(st.manifest_gets, 3, "everything fetched: %u", st.manifest_gets);
    cr_expect_eq(b.ndocs, full.ndocs);
    im_bundle_free(&b);
    im_bundle_free(&full);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, a_cached_image_costs_only_its_tag, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_assert_eq(mock_resolve(c, "v1", &b, NULL, &e), 0, "%s", e.msg);
    size_t ndocs = b.ndocs, nblobs = b.nblobs;
    /* by tag, everything cached by digest: the tag's manifest and nothing else */
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.requests, 1, "one GET of the tag, got %u requests", st.requests);
    cr_expect_eq(st.manifest_gets, 1);
    cr_expect_eq(st.blob_gets + st.blob_heads, 0);
    cr_expect_str_eq(b.root_digest, M.dindex);
    cr_expect_eq(b.ndocs, ndocs);
    cr_expect_eq(b.nblobs, nblobs);
    /* by digest, everything cached: no request at all */
    memset(&st, 0, sizeof st);
    rc = mock_resolve(c, M.dindex, &b, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.requests, 0, "got %u requests", st.requests);
    cr_expect_str_eq(b.root_digest, M.dindex);
    /* only the layer facts missing: only their HEADs */
    struct im_bundle docs;
    im_bundle_init(&docs);
    for (size_t i = 0; i < b.ndocs; i++)
        cr_assert_eq(im_bundle_add_doc(&docs, b.docs[i].digest, b.docs[i].media_type,
                                       b.docs[i].body, b.docs[i].len),
                     0);
    memset(&st, 0, sizeof st);
    rc = mock_resolve(c, M.dindex, &docs, &st, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(st.manifest_gets + st.blob_gets, 0);
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(docs.nblobs, 2);
    im_bundle_free(&docs);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, foreign_layers, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_FOREIGN);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_eq(b.nblobs, 5);
    const struct im_blob *l = im_bundle_find_blob(&b, M.dforeign[0]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 777, "size from the manifest");
    cr_expect_eq(l->last_modified, 1445412480, "Last-Modified of its first url");
    cr_expect_str_eq(l->media_type, MT_FOREIGN);
    l = im_bundle_find_blob(&b, M.dforeign[1]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 888);
    cr_expect_eq(l->last_modified, -1, "a url the policy refuses gives no date");
    l = im_bundle_find_blob(&b, M.dforeign[2]);
    cr_assert_not_null(l);
    cr_expect_eq(l->size, 999);
    cr_expect_eq(l->last_modified, -1, "a non-http url is not asked");
    char head[200];
    snprintf(head, sizeof head, "HEAD /foreign/%s auth=no", M.dforeign[0]);
    cr_expect_eq(mini_count(&M.cdn, head), 1, "one HEAD, without the registry's token");
    cr_expect_eq(mini_count(&M.reg, "HEAD /v2/team/app/blobs/sha256"), 2,
                 "foreign layers are not asked of the registry");
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, signed_schema1_is_identified_by_its_payload, .init = init_curl)
{
    struct im_bundle b;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    mock_start(M_SCHEMA1);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, M.dschema1, "the digest is over the payload");
    char whole[72];
    digest_of(M.schema1, whole);
    cr_expect_str_neq(b.root_digest, whole);
    cr_assert_eq(b.ndocs, 1);
    cr_expect_str_eq(b.docs[0].media_type, IM_MT_DOCKER_V1_SIGNED);
    cr_expect_eq(b.docs[0].len, strlen(M.schema1), "kept verbatim, signatures and all");
    cr_expect_eq(b.nblobs, 2, "the repeated fsLayer is asked about once");
    cr_expect_eq(st.blob_heads, 2);
    cr_expect_eq(st.blob_gets, 0, "schema1 has no config blob");
    cr_expect_eq(im_bundle_find_blob(&b, M.dlayer2)->size, 5678);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(schema1, payload_of_signed_and_unsigned)
{
    struct im_error e = {{0}};
    unsigned char *p = NULL;
    size_t pl = 0;
    mock_start(M_SCHEMA1); /* for make_schema1's output only */
    mock_stop();
    cr_assert_eq(
        reg__schema1_payload((unsigned char *)M.schema1, strlen(M.schema1), &p, &pl, &e),
        0, "%s", e.msg);
    cr_assert_not_null(p);
    char d[72];
    cr_assert_eq(im_sha256_digest(p, pl, d), 0);
    cr_expect_str_eq(d, M.dschema1);
    cr_expect_eq(p[pl - 1], '}');
    free(p);
    static const char unsigned_s1[] =
        "{\"schemaVersion\":1,\"fsLayers\":[],\"history\":[]}";
    cr_assert_eq(reg__schema1_payload((const unsigned char *)unsigned_s1,
                                      strlen(unsigned_s1), &p, &pl, &e),
                 0);
    cr_expect_null(p, "unsigned: hashed as it is");
    static const char bad[] =
        "{\"schemaVersion\":1,\"signatures\":[{\"protected\":"
        "\"eyJmb3JtYXRMZW5ndGgiOjk5OTksImZvcm1hdFRhaWwiOiJDbjAifQ\"}]}";
    cr_expect_eq(
        reg__schema1_payload((const unsigned char *)bad, strlen(bad), &p, &pl, &e),
        IM_EPROTO, "formatLength beyond the body");
    cr_expect(strstr(e.msg, "formatLength 9999") != NULL, "%s", e.msg);
}

struct worker {
    struct reg_client *c;
    int rc;
    size_t ndocs;
    struct reg_stats st;
    char msg[IM_ERRMSG_MAX];
};

static void *resolve_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 3 && w->rc == 0; i++) {
        struct im_bundle b;
        struct im_ref ref;
        struct im_error e = {{0}};
        char s[200];
        snprintf(s, sizeof s, "127.0.0.1:%d/team/app:v1", M.reg.port);
        w->rc = reg_ref_parse(s, &ref, &e);
        im_bundle_init(&b);
        if (w->rc == 0)
            w->rc = reg_resolve(w->c, &ref, &b, &w->st, &e);
        w->ndocs = b.ndocs;
        snprintf(w->msg, sizeof w->msg, "%s", e.msg);
        im_bundle_free(&b);
    }
    return NULL;
}

Test(resolve_mock, concurrent_resolutions_share_one_client, .init = init_curl)
{
    struct worker w[8];
    pthread_t th[8];
    mock_start(M_OK);
    struct reg_client *c = mock_client(10000, 0);
    memset(w, 0, sizeof w);
    for (int i = 0; i < 8; i++) {
        w[i].c = c;
        cr_assert_eq(pthread_create(&th[i], NULL, resolve_worker, &w[i]), 0);
    }
    unsigned tokens = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(w[i].rc, 0, "worker %d: %s", i, w[i].msg);
        cr_expect_eq(w[i].ndocs, 4);
        tokens += w[i].st.token_gets;
    }
    cr_expect_geq(tokens, 1);
    cr_expect_leq(tokens, 8, "the token cache is shared: %u token GETs", tokens);
    reg_client_free(c);
    mock_stop();
}

/* The index asked by its digest in another algorithm than sha256 (the
 * digest is M's, made once the mock has started). */
static void expect_pinned_index_verified(const char *digest)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    int rc = mock_resolve(c, digest, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, digest);
    cr_expect_not_null(im_bundle_find_doc(&b, digest));
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, sha512_pinned_index_is_verified, .init = init_curl)
{
    mock_start(M_OK);
    expect_pinned_index_verified(M.dindex512);
}

Test(resolve_mock, sha384_pinned_index_is_verified, .init = init_curl)
{
    mock_start(M_OK);
    expect_pinned_index_verified(M.dindex384);
}

struct fail_case {
    enum mode mode;
    int code;
    const char *msg;
};

/* Resolving ref (read once mock_start has filled M) fails as fc says. */
static void expect_failure_of(const struct fail_case *fc, const char *ref,
                              long timeout_ms, size_t max_config, size_t max_manifest)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(fc->mode);
    struct reg_client *c = mock_client_caps(timeout_ms, max_config, max_manifest);
    im_bundle_init(&b);
    int rc = mock_resolve(c, ref, &b, NULL, &e);
    cr_expect_eq(rc, fc->code, "mode %d: got %d (%s), wanted %d", fc->mode, rc, e.msg,
                 fc->code);
    cr_expect(strstr(e.msg, fc->msg) != NULL, "mode %d: message '%s' lacks '%s'",
              fc->mode, e.msg, fc->msg);
    cr_expect_eq(b.ndocs, 0, "nothing is kept on failure (rc %d: %s)", rc, e.msg);
    cr_expect_eq(b.nblobs, 0);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

static void expect_failure_caps(const struct fail_case *fc, long timeout_ms,
                                size_t max_config, size_t max_manifest)
{
    expect_failure_of(fc, "v1", timeout_ms, max_config, max_manifest);
}

static void expect_failure(const struct fail_case *fc, long timeout_ms, size_t max_config)
{
    expect_failure_caps(fc, timeout_ms, max_config, 0);
}

Test(resolve_mock, manifest_over_cap_by_content_length, .init = init_curl)
{
    struct fail_case fc = {M_OK, IM_ETOOBIG, "is larger than the 300-byte cap"};
    expect_failure_caps(&fc, 5000, 0, 300);
}

Test(resolve_mock, manifest_over_cap_while_reading, .init = init_curl)
{
    struct fail_case fc = {M_NOLEN, IM_ETOOBIG, "is larger than the 300-byte cap"};
    expect_failure_caps(&fc, 5000, 0, 300);
}

/* realloc as the registry's code in this executable sees it (tests/CMakeLists.txt
 * links it with -Wl,--wrap=realloc; libcurl and Criterion are shared libraries,
 * left alone): while fail_realloc_from is not 0, every request for that many
 * bytes or more fails, as when the allocator is out of memory. */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static atomic_size_t fail_realloc_from;
void *__wrap_realloc(void *p, size_t n)
{
    size_t from = atomic_load(&fail_realloc_from);
    if (from != 0 && n >= from)
        return NULL;
    return __real_realloc(p, n);
}

/* The body callback's buffer (16 KiB at first) cannot be had: that is out of
 * memory (IM_ENOMEM: the API answers 500 out_of_memory), not the registry's
 * failure (IM_EUPSTREAM: 502, and a stale answer where one is kept), and it is
 * not retried. */
Test(resolve_mock, body_allocation_failure_is_out_of_memory, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    struct reg_stats st;
    memset(&st, 0, sizeof st);
    mock_start(M_OK);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    atomic_store(&fail_realloc_from, 16384);
    int rc = mock_resolve(c, "v1", &b, &st, &e);
    atomic_store(&fail_realloc_from, 0);
    cr_expect_eq(rc, IM_ENOMEM, "got %d (%s), wanted IM_ENOMEM", rc, e.msg);
    cr_expect_not_null(strstr(e.msg, "out of memory"), "message: %s", e.msg);
    cr_expect_eq(st.retries, 0, "retried %u times", st.retries);
    cr_expect_eq(b.ndocs, 0, "nothing is kept on failure (rc %d: %s)", rc, e.msg);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, body_without_content_length_is_fine_under_cap, .init = init_curl)
{
    struct im_bundle b;
    struct im_error e = {{0}};
    mock_start(M_NOLEN);
    struct reg_client *c = mock_client(5000, 0);
    im_bundle_init(&b);
    cr_expect_eq(mock_resolve(c, "v1", &b, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(b.ndocs, 4);
    im_bundle_free(&b);
    reg_client_free(c);
    mock_stop();
}

Test(resolve_mock, child_digest_mismatch, .init = init_curl)
{
    struct fail_case fc = {M_BAD_CHILD, IM_EDIGEST, "content hashes to"};
    expect_failure(&fc, 5000, 0);
}

/* Asked by a sha512 digest, the registry answers bytes of another digest. */
Test(resolve_mock, sha512_pinned_digest_of_other_bytes_is_refused, .init = init_curl)
{
    struct fail_case fc = {M_OK, IM_EDIGEST, "content hashes to sha512:"};
    expect_failure_of(&fc, M.dother512, 5000, 0, 0);
}

/* The config blob answered is not the one its digest names: refused. */
Test(resolve_mock, config_blob_digest_mismatch, .init = init_curl)
{
    struct fail_case fc = {M_BAD_CONFIG, IM_EDIGEST, "config blob"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, root_digest_mismatch_with_docker_content_digest, .init = init_curl)
{
    struct fail_case fc = {M_BAD_ROOT, IM_EDIGEST, "not " D256};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, content_type_disagrees_with_media_type, .init = init_curl)
{
    struct fail_case fc = {
        M_BAD_TYPE, IM_EPROTO,
        "Content-Type application/vnd.oci.image.manifest.v1+json disagrees "
        "with its mediaType application/vnd.docker.distribution.manifest."
        "v2+json"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, missing_tag_is_not_found, .init = init_curl)
{
    struct fail_case fc = {M_MISSING, IM_ENOTFOUND, "team/app:v1 not found"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, rate_limited, .init = init_curl)
{
    struct fail_case fc = {M_429, IM_ERATELIMIT, "429"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, server_error_is_upstream, .init = init_curl)
{
    struct fail_case fc = {M_500, IM_EUPSTREAM, "HTTP 503"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, refused_after_token_is_unauthorized, .init = init_curl)
{
    struct fail_case fc = {M_DENY, IM_EUNAUTH, "may not exist or be private"};
    expect_failure(&fc, 5000, 0);
}

Test(resolve_mock, slow_upstream_times_out, .init = init_curl)
{
    struct fail_case fc = {M_SLOW, IM_ETIMEOUT, "manifest"};
    expect_failure(&fc, 700, 0);
}

Test(resolve_mock, config_over_cap_is_too_big, .init = init_curl)
{
    struct fail_case fc = {M_OK, IM_ETOOBIG, "the cap is 16"};
    expect_failure(&fc, 5000, 16);
}

Test(resolve_mock, redirect_to_file_url_is_refused, .init = init_curl)
{
    struct fail_case fc = {M_FILE_REDIRECT, IM_EPOLICY, "refused a non-http(s) URL"};
    expect_failure(&fc, 5000, 0);
}
