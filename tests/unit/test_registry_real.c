/* test_registry_real.c - reg_resolve against the real Debian docker-registry,
 * started by the test on a loopback port of its choosing and filled by the
 * test's own pushes. */
#include "registry_test.h"

/* ------------------------------- the real registry (docker-registry) --- */

static pid_t registry_pid = -1;
static char registry_dir[256];

static void registry_stop(void)
{
    if (registry_pid > 0) {
        kill(registry_pid, SIGTERM);
        waitpid(registry_pid, NULL, 0);
        registry_pid = -1;
    }
    if (registry_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", registry_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", registry_dir);
        registry_dir[0] = '\0';
    }
}

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];
    while (path && *path) {
        size_t l = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += l + (path[l] == ':');
    }
    return false;
}

static size_t sink(char *d, size_t s, size_t n, void *cls)
{
    (void)d;
    (void)cls;
    return s * n;
}

struct hdrcap {
    char location[2048];
    char dcd[160];
};

static size_t cap_header(char *line, size_t s, size_t n, void *cls)
{
    struct hdrcap *h = cls;
    size_t len = s * n;
    char tmp[2100];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 2099 ? len : 2099), line);
    tmp[strcspn(tmp, "\r\n")] = '\0';
    if (strncasecmp(tmp, "Location: ", 10) == 0)
        snprintf(h->location, sizeof h->location, "%.2000s", tmp + 10);
    if (strncasecmp(tmp, "Docker-Content-Digest: ", 23) == 0)
        snprintf(h->dcd, sizeof h->dcd, "%.150s", tmp + 23);
    return len;
}

static const char *http_userpwd; /* "user:password" for the test's own pushes */

/* One HTTP request to the test registry; returns the status. */
static long http(const char *method, const char *url, const char *ctype, const void *body,
                 size_t len, struct hdrcap *h)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char ct[300];
    long status = 0;
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, cap_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (http_userpwd)
        curl_easy_setopt(c, CURLOPT_USERPWD, http_userpwd);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 ctype ? ctype : "application/octet-stream");
        hl = curl_slist_append(hl, ct);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return status;
}

static void registry_start_with(int *port_out, const char *extra_yaml);

static void registry_start(int *port_out)
{
    registry_start_with(port_out, "");
}

/* The port docker-registry says in its log (logpath) that it listens on
 * ("listening on 127.0.0.1:PORT", level info); 0 while it has not said it. */
static int registry_log_port(const char *logpath)
{
    char line[4096];
    int port = 0;
    FILE *f = fopen(logpath, "r");
    if (!f)
        return 0;
    while (port == 0 && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "listening on 127.0.0.1:");
        if (p)
            port = (int)strtol(p + strlen("listening on 127.0.0.1:"), NULL, 10);
    }
    fclose(f);
    return port;
}

/* docker-registry on a loopback port of its choosing (addr :0: no port is
 * picked beforehand, which another test could take meanwhile). */
static void registry_start_with(int *port_out, const char *extra_yaml)
{
    char cfgpath[300], logpath[300];
    int port = 0;
    cr_assert(on_path("docker-registry"),
              "docker-registry is not on PATH: install Debian's docker-registry package "
              "(this end-to-end test does not skip)");
    snprintf(registry_dir, sizeof registry_dir, "/tmp/imgmeta-reg-XXXXXX");
    cr_assert_not_null(mkdtemp(registry_dir));
    snprintf(cfgpath, sizeof cfgpath, "%s/config.yml", registry_dir);
    snprintf(logpath, sizeof logpath, "%s/registry.log", registry_dir);
    FILE *f = fopen(cfgpath, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
            "storage:\n  filesystem:\n"
            "    rootdirectory: %s/data\n  delete:\n    enabled: true\n"
            "http:\n  addr: 127.0.0.1:0\n%s",
            registry_dir, extra_yaml);
    fclose(f);
    registry_pid = fork();
    cr_assert_geq(registry_pid, 0);
    if (registry_pid == 0) {
        int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        execlp("docker-registry", "docker-registry", "serve", cfgpath, (char *)NULL);
        _exit(127);
    }
    char url[128] = "";
    for (int i = 0; i < 100; i++) {
        struct hdrcap h;
        memset(&h, 0, sizeof h);
        if (port == 0) {
            port = registry_log_port(logpath);
            snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/", port);
        }
        long code = port ? http("GET", url, NULL, NULL, 0, &h) : 0;
        if (code == 200 || (code == 401 && extra_yaml[0])) {
            *port_out = port;
            return;
        }
        int st = 0;
        cr_assert_eq(waitpid(registry_pid, &st, WNOHANG), 0,
                     "docker-registry exited early; see %s", logpath);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("docker-registry did not answer on [%s] within 10 s; see %s", url,
                   logpath);
}

static void push_blob(int port, const char *repo, const char *data, char digest[72])
{
    char url[2200];
    struct hdrcap h;
    memset(&h, 0, sizeof h);
    digest_of(data, digest);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/%s/blobs/uploads/", port, repo);
    cr_assert_eq(http("POST", url, NULL, "", 0, &h), 202);
    cr_assert(h.location[0], "no Location for the upload");
    if (h.location[0] == '/')
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s%cdigest=%s", port, h.location,
                 strchr(h.location, '?') ? '&' : '?', digest);
    else
        snprintf(url, sizeof url, "%s%cdigest=%s", h.location,
                 strchr(h.location, '?') ? '&' : '?', digest);
    cr_assert_eq(http("PUT", url, NULL, data, strlen(data), &h), 201, "blob PUT %s", url);
}

static void push_manifest(int port, const char *repo, const char *ref, const char *mt,
                          const char *body, char digest[72])
{
    char url[512];
    struct hdrcap h;
    memset(&h, 0, sizeof h);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/%s/manifests/%s", port, repo, ref);
    cr_assert_eq(http("PUT", url, mt, body, strlen(body), &h), 201, "manifest PUT %s",
                 url);
    digest_of(body, digest);
    cr_assert_str_eq(h.dcd, digest, "registry and test agree on the manifest digest");
}

struct image_fixture {
    char la[72], lb[72], lc[72], ca[72], cb[72], ma[72], mb[72], list[72];
    char ca_body[512], cb_body[512], ma_body[2048], mb_body[2048];
};

static const char *const LAYER_A = "shared base layer bytes";
static const char *const LAYER_B = "amd64 layer";
static const char *const LAYER_C = "arm64 layer, a bit longer";

static void image_manifest(char *out, size_t n, const char *cfg, const char *cfgd,
                           const char *l1, const char *d1, const char *l2, const char *d2)
{
    snprintf(
        out, n,
        "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" IM_MT_DOCKER_V2 "\",\n"
        "   \"config\": {\"mediaType\": "
        "\"application/vnd.docker.container.image.v1+json\","
        " \"size\": %zu, \"digest\": \"%s\"},\n   \"layers\": [\n"
        "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        " \"size\": %zu, \"digest\": \"%s\"},\n"
        "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        " \"size\": %zu, \"digest\": \"%s\"}\n   ]\n}",
        strlen(cfg), cfgd, strlen(l1), d1, strlen(l2), d2);
}

static void push_fixture(int port, const char *repo, struct image_fixture *fx)
{
    char list[4096];
    push_blob(port, repo, LAYER_A, fx->la);
    push_blob(port, repo, LAYER_B, fx->lb);
    push_blob(port, repo, LAYER_C, fx->lc);
    snprintf(
        fx->ca_body, sizeof fx->ca_body,
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"python3\"]},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    snprintf(fx->cb_body, sizeof fx->cb_body,
             "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\","
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    push_blob(port, repo, fx->ca_body, fx->ca);
    push_blob(port, repo, fx->cb_body, fx->cb);
    image_manifest(fx->ma_body, sizeof fx->ma_body, fx->ca_body, fx->ca, LAYER_A, fx->la,
                   LAYER_B, fx->lb);
    image_manifest(fx->mb_body, sizeof fx->mb_body, fx->cb_body, fx->cb, LAYER_A, fx->la,
                   LAYER_C, fx->lc);
    char d[72];
    digest_of(fx->ma_body, d);
    push_manifest(port, repo, d, IM_MT_DOCKER_V2, fx->ma_body, fx->ma);
    digest_of(fx->mb_body, d);
    push_manifest(port, repo, d, IM_MT_DOCKER_V2, fx->mb_body, fx->mb);
    snprintf(list, sizeof list,
             "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" IM_MT_DOCKER_LIST "\",\n"
             "   \"manifests\": [\n      {\"mediaType\": \"" IM_MT_DOCKER_V2
             "\", \"size\": %zu,"
             " \"digest\": \"%s\", \"platform\": {\"architecture\": \"amd64\", \"os\": "
             "\"linux\"}},\n      {\"mediaType\": \"" IM_MT_DOCKER_V2 "\", \"size\": %zu,"
             " \"digest\": \"%s\", \"platform\": {\"architecture\": \"arm64\", \"os\": "
             "\"linux\", \"variant\": \"v8\"}}\n   ]\n}",
             strlen(fx->ma_body), fx->ma, strlen(fx->mb_body), fx->mb);
    push_manifest(port, repo, "3.7-slim", IM_MT_DOCKER_LIST, list, fx->list);
}

static struct reg_client *registry_client(int port)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    return c;
}

Test(resolve_registry, docker_list_of_schema2_via_docker_io_mirror, .init = init_curl,
     .fini = registry_stop, .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    int port = 0;
    registry_start(&port);
    push_fixture(port, "library/python", &fx);
    struct reg_client *c = registry_client(port);
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, &st, &e);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, fx.list);
    cr_expect_eq(b.ndocs, 5, "list + 2 manifests + 2 configs, got %zu", b.ndocs);
    const struct im_doc *d = im_bundle_find_doc(&b, fx.list);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, IM_MT_DOCKER_LIST);
    d = im_bundle_find_doc(&b, fx.ma);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, IM_MT_DOCKER_V2);
    cr_expect_eq(d->len, strlen(fx.ma_body));
    cr_expect_eq(memcmp(d->body, fx.ma_body, d->len), 0, "stored verbatim");
    cr_assert_not_null(im_bundle_find_doc(&b, fx.mb));
    d = im_bundle_find_doc(&b, fx.cb);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->media_type, "application/vnd.docker.container.image.v1+json");
    cr_expect_eq(d->len, strlen(fx.cb_body));
    cr_assert_not_null(im_bundle_find_doc(&b, fx.ca));
    cr_expect_eq(b.nblobs, 3, "three distinct layers");
    cr_expect_eq(im_bundle_find_blob(&b, fx.la)->size, (int64_t)strlen(LAYER_A));
    cr_expect_eq(im_bundle_find_blob(&b, fx.lb)->size, (int64_t)strlen(LAYER_B));
    cr_expect_eq(im_bundle_find_blob(&b, fx.lc)->size, (int64_t)strlen(LAYER_C));
    cr_expect_eq(st.manifest_gets, 3);
    cr_expect_eq(st.blob_gets, 2);
    cr_expect_eq(st.blob_heads, 3, "the shared layer is asked about once");
    cr_expect_eq(st.token_gets, 0);
    im_bundle_free(&b);

    /* by digest: the amd64 image alone */
    char s[200];
    snprintf(s, sizeof s, "python@%s", fx.ma);
    cr_assert_eq(reg_ref_parse(s, &ref, &e), 0);
    rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_eq(b.root_digest, fx.ma);
    cr_expect_eq(b.ndocs, 2);
    cr_expect_eq(b.nblobs, 2);
    im_bundle_free(&b);

    /* a tag that does not exist */
    cr_assert_eq(reg_ref_parse("python:nope", &ref, &e), 0);
    rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_expect_eq(rc, IM_ENOTFOUND, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "docker.io/library/python:nope not found") != NULL, "%s",
              e.msg);
    cr_expect_eq(b.ndocs, 0);

    /* revalidation: one HEAD gives the digest the GET gave */
    struct reg_head h;
    struct reg_stats hs = {0};
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    rc = reg_head_manifest(c, &ref, &h, &hs, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(h.digest, fx.list);
    cr_expect_str_eq(h.media_type, IM_MT_DOCKER_LIST);
    cr_expect_eq(hs.requests, 1);
    cr_expect_eq(hs.manifest_heads, 1);
    cr_assert_eq(reg_ref_parse("python:nope", &ref, &e), 0);
    cr_expect_eq(reg_head_manifest(c, &ref, &h, NULL, &e), IM_ENOTFOUND, "%s", e.msg);

    /* tags, in the registry's (lexical) order */
    char d37[72];
    push_manifest(port, "library/python", "3.7", IM_MT_DOCKER_V2, fx.ma_body, d37);
    struct reg_tags t = {0};
    rc = reg_list_tags(c, &ref, 0, &t, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_assert_eq(t.n, 2);
    cr_expect_str_eq(t.v[0], "3.7");
    cr_expect_str_eq(t.v[1], "3.7-slim");
    cr_expect_not(t.truncated);
    reg_tags_free(&t);
    cr_assert_eq(reg_ref_parse("nothere:1", &ref, &e), 0);
    rc = reg_list_tags(c, &ref, 0, &t, NULL, &e);
    cr_expect_eq(rc, IM_ENOTFOUND, "%d %s", rc, e.msg);
    reg_client_free(c);
}

Test(resolve_registry, oci_index_with_attestation, .init = init_curl,
     .fini = registry_stop, .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct im_error e = {{0}};
    char att[2048], attd[72], idx[4096], idxd[72], intoto[72], empty[72];
    int port = 0;
    registry_start(&port);
    push_fixture(port, "team/app", &fx);
    push_blob(port, "team/app", "{\"_type\":\"https://in-toto.io/Statement/v0.1\"}",
              intoto);
    push_blob(port, "team/app", "{}", empty);
    snprintf(
        att, sizeof att,
        "{\"schemaVersion\":2,\"mediaType\":\"" IM_MT_OCI_MANIFEST "\",\"config\":{"
        "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
        "\"digest\":\"%s\"},\"layers\":[{\"mediaType\":\"application/vnd.in-toto+json\","
        "\"size\":%zu,\"digest\":\"%s\",\"annotations\":{\"in-toto.io/predicate-type\":"
        "\"https://spdx.dev/Document\"}}]}",
        empty, strlen("{\"_type\":\"https://in-toto.io/Statement/v0.1\"}"), intoto);
    digest_of(att, attd);
    push_manifest(port, "team/app", attd, IM_MT_OCI_MANIFEST, att, attd);
    snprintf(idx, sizeof idx,
             "{\"schemaVersion\":2,\"mediaType\":\"" IM_MT_OCI_INDEX "\",\"manifests\":["
             "{\"mediaType\":\"" IM_MT_DOCKER_V2
             "\",\"size\":%zu,\"digest\":\"%s\",\"platform\":"
             "{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
             "{\"mediaType\":\"" IM_MT_OCI_MANIFEST "\",\"size\":%zu,\"digest\":\"%s\","
             "\"annotations\":{\"vnd.docker.reference.digest\":\"%s\","
             "\"vnd.docker.reference.type\":\"attestation-manifest\"},\"platform\":"
             "{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}",
             strlen(fx.ma_body), fx.ma, strlen(att), attd, fx.ma);
    digest_of(idx, idxd);
    push_manifest(port, "team/app", "v1", IM_MT_OCI_INDEX, idx, idxd);

    struct reg_config cfg;
    reg_config_defaults(&cfg);
    snprintf(cfg.mirrors[0].registry, sizeof cfg.mirrors[0].registry, "localhost:%d",
             port);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    cfg.max_parallel = 1; /* also exercise the queue */
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c);
    char route[200];
    snprintf(route, sizeof route, "localhost:%d/team/app:v1", port);
    cr_assert_eq(reg_ref_parse(route, &ref, &e), 0, "%s", e.msg);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, idxd);
    cr_expect_str_eq(im_bundle_find_doc(&b, idxd)->media_type, IM_MT_OCI_INDEX);
    cr_expect_str_eq(im_bundle_find_doc(&b, attd)->media_type, IM_MT_OCI_MANIFEST);
    cr_expect_str_eq(im_bundle_find_doc(&b, empty)->media_type,
                     "application/vnd.oci.image.config.v1+json");
    cr_expect_eq(b.ndocs, 5, "index, image, attestation, 2 configs: %zu", b.ndocs);
    cr_expect_eq(b.nblobs, 3, "two image layers and the in-toto statement: %zu",
                 b.nblobs);
    im_bundle_free(&b);
    reg_client_free(c);
}

/* htpasswd -nbB robot s3cret-pw */
#define HTPASSWD "robot:$2y$05$92NH6vOjopdAvM3sAmGMEeqA2WQErSoH4ICwiWoEELgncsUZDHT0q\n"

static char htpasswd_path[64];

static void htpasswd_stop(void)
{
    registry_stop();
    if (htpasswd_path[0])
        unlink(htpasswd_path);
}

Test(resolve_registry, htpasswd_basic_auth, .init = init_curl, .fini = htpasswd_stop,
     .timeout = 60)
{
    struct image_fixture fx;
    struct im_bundle b;
    struct im_ref ref;
    struct reg_stats st = {0};
    struct im_error e = {{0}};
    char yaml[256];
    int port = 0;
    snprintf(htpasswd_path, sizeof htpasswd_path, "/tmp/imgmeta-htpasswd-XXXXXX");
    int fd = mkstemp(htpasswd_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, HTPASSWD, strlen(HTPASSWD)), (ssize_t)strlen(HTPASSWD));
    close(fd);
    snprintf(yaml, sizeof yaml, "auth:\n  htpasswd:\n    realm: test\n    path: %s\n",
             htpasswd_path);
    registry_start_with(&port, yaml);
    http_userpwd = "robot:s3cret-pw";
    push_fixture(port, "library/python", &fx);
    http_userpwd = NULL;

    struct reg_config cfg;
    reg_config_defaults(&cfg);
    im_strlcpy(cfg.mirrors[0].registry, "docker.io", sizeof cfg.mirrors[0].registry);
    snprintf(cfg.mirrors[0].base_url, sizeof cfg.mirrors[0].base_url,
             "http://127.0.0.1:%d", port);
    cfg.n_mirrors = 1;
    cr_assert_eq(reg_ref_parse("python:3.7-slim", &ref, &e), 0);
    /* no credentials: refused, and told why */
    struct reg_client *c = reg_client_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.msg);
    im_bundle_init(&b);
    int rc = reg_resolve(c, &ref, &b, NULL, &e);
    cr_expect_eq(rc, IM_EUNAUTH, "%d %s", rc, e.msg);
    cr_expect(strstr(e.msg, "asks for Basic authentication") != NULL, "%s", e.msg);
    reg_client_free(c);
    /* Docker Hub's config.json key names docker.io, mirrored here */
    char path[] = "/tmp/imgmeta-dockercfg-XXXXXX";
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static const char json[] = "{\"auths\":{\"https://index.docker.io/v1/"
                               "\":{\"auth\":\"cm9ib3Q6czNjcmV0LXB3\"}}}";
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    cfg.docker_config_path = path;
    c = reg_client_new(&cfg, &e);
    unlink(path);
    cr_assert_not_null(c, "%s", e.msg);
    rc = reg_resolve(c, &ref, &b, &st, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_expect_str_eq(b.root_digest, fx.list);
    cr_expect_eq(b.ndocs, 5);
    cr_expect_eq(b.nblobs, 3);
    cr_expect_eq(st.manifest_gets, 4, "one 401, then list + 2 manifests");
    cr_expect_eq(st.token_gets, 0);
    im_bundle_free(&b);
    /* revalidation and tags with the same credentials, no 401 any more */
    struct reg_head h;
    memset(&st, 0, sizeof st);
    cr_assert_eq(reg_head_manifest(c, &ref, &h, &st, &e), 0, "%s", e.msg);
    cr_expect_str_eq(h.digest, fx.list);
    cr_expect_eq(st.requests, 1);
    struct reg_tags t = {0};
    cr_assert_eq(reg_list_tags(c, &ref, 0, &t, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(t.n, 1);
    reg_tags_free(&t);
    reg_client_free(c);
}
