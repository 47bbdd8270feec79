/* test_render.c - the render module's user-visible behaviour: the repo-info
 * page byte for byte, the formatting rules of FORMAT.md, the JSON shape and
 * the errors for documents we cannot accept. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render.h"

#define MT_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_CFG "application/vnd.docker.container.image.v1+json"
#define GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* ---- helpers ---- */

static char *slurp(const char *rel, size_t *len)
{
    const char *src = getenv("IMGMETA_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", src ? src : IMGMETA_SOURCE_DIR, rel);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void add_doc(struct im_bundle *b, const char *digest, const char *mt,
                    const char *body)
{
    cr_assert_eq(im_bundle_add_doc(b, digest, mt, body, strlen(body)), 0);
}

static void add_blob(struct im_bundle *b, const char *digest, int64_t size, int64_t lm)
{
    struct im_blob blob = {.size = size, .last_modified = lm};
    im_strlcpy(blob.digest, digest, sizeof blob.digest);
    cr_assert_eq(im_bundle_add_blob(b, &blob), 0);
}

static struct im_ref make_ref(const char *registry, const char *repo, const char *tag,
                              const char *digest)
{
    struct im_ref r;
    memset(&r, 0, sizeof r);
    im_strlcpy(r.registry, registry, sizeof r.registry);
    im_strlcpy(r.repository, repo, sizeof r.repository);
    im_strlcpy(r.tag, tag, sizeof r.tag);
    im_strlcpy(r.digest, digest, sizeof r.digest);
    return r;
}

static int build(const struct im_bundle *b, struct render_image **img,
                 struct im_error *err)
{
    struct im_ref ref = make_ref("docker.io", "library/demo", "1", "");
    memset(err, 0, sizeof *err);
    return render_image_build(&ref, b, img, err);
}

static char *dfl(const char *created_by)
{
    char *s = render_dockerfile_line(created_by, NULL);
    cr_assert_not_null(s);
    return s;
}

#define ASSERT_DFL(in, want)                                                             \
    do {                                                                                 \
        char *got_ = dfl(in);                                                            \
        cr_expect_str_eq(got_, want, "created_by [%s]", in);                             \
        free(got_);                                                                      \
    } while (0)

/* ---- sizes ---- */

static void expect_size(int64_t bytes, const char *want)
{
    char buf[96];
    render_size(bytes, buf, sizeof buf);
    cr_expect_str_eq(buf, want, "size %lld", (long long)bytes);
}

Test(size, format_md_examples)
{
    expect_size(0, "0.0 B");
    expect_size(239, "239.0 B");
    expect_size(1000, "1000.0 B");
    expect_size(1001, "1.0 KB (1001 bytes)");
    expect_size(50868652, "50.9 MB (50868652 bytes)");
    expect_size(2516907, "2.5 MB (2516907 bytes)");
    expect_size(1000000, "1000.0 KB (1000000 bytes)");
    expect_size(1001000, "1.0 MB (1001000 bytes)");
    expect_size(2978639203LL, "3.0 GB (2978639203 bytes)");
    expect_size(1500000000000LL, "1.5 TB (1500000000000 bytes)");
    expect_size(2000000000000000LL, "2000.0 TB (2000000000000000 bytes)");
}

/* Every "Size:" on the reference page, recomputed from its byte count. */
Test(size, every_size_on_the_page)
{
    char *page = slurp("tests/cases/python-3.7-slim/expected.md", NULL);
    int checked = 0;
    for (char *p = strstr(page, "Size: "); p; p = strstr(p + 1, "Size: ")) {
        char *start = p + 6, *end, *want;
        char buf[96];
        long long bytes;
        if (*start == '*')
            start += 2;
        end = strstr(start, *(p + 6) == '*' ? "**" : "  \n");
        cr_assert_not_null(end);
        want = strndup(start, (size_t)(end - start));
        if (strstr(want, "bytes)"))
            bytes = strtoll(strrchr(want, '(') + 1, NULL, 10);
        else
            bytes = strtoll(want, NULL, 10);
        render_size(bytes, buf, sizeof buf);
        cr_expect_str_eq(buf, want);
        free(want);
        checked++;
    }
    cr_expect_eq(checked, 42, "expected every Size line, found %d", checked);
    free(page);
}

/* ---- dates ---- */

Test(date, http_date_and_rfc3339)
{
    char buf[64];
    cr_assert_eq(render_http_date(1531787284, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "Tue, 17 Jul 2018 00:28:04 GMT");
    cr_assert_eq(render_http_date(0, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_assert_eq(render_http_date(951782400, buf, sizeof buf), 0); /* leap day 2000 */
    cr_expect_str_eq(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    cr_assert_eq(render_rfc3339(1531787284, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "2018-07-17T00:28:04Z");
    cr_expect_eq(render_http_date(INT64_MAX, buf, sizeof buf), -1);
    cr_expect_eq(render_http_date(1531787284, buf, 10), -1);
}

Test(date, parse_rfc3339_fraction_and_offsets)
{
    int64_t t = 0;
    cr_assert_eq(render_parse_rfc3339("2018-07-17T00:28:04.012347035Z", &t), 0);
    cr_expect_eq(t, 1531787284);
    cr_assert_eq(render_parse_rfc3339("2018-07-17T02:28:04+02:00", &t), 0);
    cr_expect_eq(t, 1531787284);
    cr_assert_eq(render_parse_rfc3339("2018-07-16T21:58:04.5-02:30", &t), 0);
    cr_expect_eq(t, 1531787284);
    cr_assert_eq(render_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
    cr_expect_eq(t, 0);
    const char *bad[] = {"",
                         "2018-07-17",
                         "2018-07-17T00:28:04",
                         "2018-13-01T00:00:00Z",
                         "2018-02-30T00:00:00Z",
                         "2018-07-17T24:00:00Z",
                         "2018-07-17T00:28:04.Z",
                         "2018-07-17T00:28:04Zjunk",
                         "2018-07-17T00:28:04+0200",
                         "x018-07-17T00:28:04Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(render_parse_rfc3339(bad[i], &t), -1, "accepted [%s]", bad[i]);
}

Test(date, parse_http_date)
{
    int64_t t = 0;
    cr_assert_eq(render_parse_http_date("Tue, 17 Jul 2018 00:44:17 GMT", &t), 0);
    cr_expect_eq(t, 1531788257);
    cr_expect_eq(render_parse_http_date("Tue, 17 Jul 2018 00:44:17 UTC", &t), -1);
    cr_expect_eq(render_parse_http_date("Tue, 17 Foo 2018 00:44:17 GMT", &t), -1);
    cr_expect_eq(render_parse_http_date("Tuesday, 17-Jul-18 00:44:17 GMT", &t), -1);
}

/* ---- platform strings ---- */

Test(platform, strings)
{
    char buf[256];
    char *osf[] = {"win32k"}, *f[] = {"sse4", "aes"};
    struct render_platform p = {.os = "linux", .architecture = "arm", .variant = "v7"};
    cr_assert_eq(render_platform_string(&p, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "linux; arm variant v7");

    struct render_platform w = {
        .os = "windows", .architecture = "amd64", .os_version = "10.0.14393.1066"};
    cr_assert_eq(render_platform_string(&w, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "windows version 10.0.14393.1066; amd64");

    struct render_platform ft = {.os = "windows",
                                 .architecture = "amd64",
                                 .os_version = "10.0.17763.1",
                                 .os_features = osf,
                                 .n_os_features = 1,
                                 .features = f,
                                 .n_features = 2};
    cr_assert_eq(render_platform_string(&ft, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "windows version 10.0.17763.1 ft. win32k; amd64 ft. sse4, aes");

    struct render_platform def = {.os = "", .architecture = ""};
    cr_assert_eq(render_platform_string(&def, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "linux; amd64");

    struct render_platform unk = {.os = "unknown", .architecture = "unknown"};
    cr_assert_eq(render_platform_string(&unk, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "unknown; unknown");
    cr_expect_eq(render_platform_string(&w, buf, 8), -1);
}

/* ---- references ---- */

Test(ref, display_and_pull_name)
{
    char buf[600];
    struct im_ref r = make_ref("docker.io", "library/python", "3.7-slim", "");
    cr_assert_eq(render_ref_display(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "python:3.7-slim");
    cr_assert_eq(render_ref_pull_name(&r, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "python");

    r = make_ref("docker.io", "grafana/grafana", "latest", "");
    render_ref_display(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "grafana/grafana:latest");

    r = make_ref("ghcr.io", "org/app", "v1", "");
    render_ref_display(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "ghcr.io/org/app:v1");
    render_ref_pull_name(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "ghcr.io/org/app");

    r = make_ref("docker.io", "library/python", "", "sha256:abc");
    render_ref_display(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "python@sha256:abc");

    r = make_ref("localhost:5000", "library/python", "3", "");
    render_ref_display(&r, buf, sizeof buf);
    cr_expect_str_eq(buf, "localhost:5000/library/python:3");
}

/* ---- Dockerfile lines ---- */

Test(dockerfile, page_lines)
{
    ASSERT_DFL("/bin/sh -c #(nop)  CMD [\"bash\"]", "CMD [\"bash\"]");
    ASSERT_DFL("/bin/sh -c #(nop) ADD file:919939fa in / ", "ADD file:919939fa in / ");
    ASSERT_DFL("/bin/sh -c #(nop)  ENV LANG=C.UTF-8", "ENV LANG=C.UTF-8");
    ASSERT_DFL("/bin/sh -c apt-get update && apt-get install -y \t\tca-certificates",
               "RUN apt-get update && apt-get install -y \t\tca-certificates");
}

Test(dockerfile, build_args)
{
    ASSERT_DFL("|2 a=b c=d /bin/sh -c x", "# ARGS: a=b c=d\nRUN x");
    ASSERT_DFL("RUN |1 version=8.4 /bin/sh -c wget x # buildkit",
               "# ARGS: version=8.4\nRUN wget x # buildkit");
    ASSERT_DFL("|x a=b /bin/sh -c x",
               "# unable to parse image command string further:\n|x a=b /bin/sh -c x");
    ASSERT_DFL("|3 a=b", "# unable to parse image command string further:\n|3 a=b");
}

Test(dockerfile, buildkit_and_other_forms)
{
    ASSERT_DFL("RUN /bin/sh -c x # buildkit", "RUN x # buildkit");
    ASSERT_DFL("COPY foo /bar # buildkit", "COPY foo /bar # buildkit");
    ASSERT_DFL("RUN echo hi # buildkit", "RUN echo hi # buildkit");
    ASSERT_DFL("WORKDIR /tmp", "WORKDIR /tmp");
    ASSERT_DFL("ENTRYPOINT [\"/e.sh\"]", "ENTRYPOINT [\"/e.sh\"]");
    ASSERT_DFL("# debian.sh --arch 'amd64' out/", "RUN # debian.sh --arch 'amd64' out/");
    ASSERT_DFL("Apply image 10.0.16299.15", "RUN Apply image 10.0.16299.15");
    ASSERT_DFL("/bin/sh -c #(nop)CMD x", "RUN #(nop)CMD x");
    ASSERT_DFL("", "");
    char *none = dfl(NULL);
    cr_expect_str_eq(none, "", "absent created_by");
    free(none);
}

Test(dockerfile, image_shell_prefix)
{
    char *sh[] = {"powershell", "-Command", "$ErrorActionPreference = 'Stop';"};
    struct render_strv shell = {.present = true, .v = sh, .n = 3};
    char *s = render_dockerfile_line(
        "powershell -Command $ErrorActionPreference = 'Stop'; Write-Host hi", &shell);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "RUN Write-Host hi");
    free(s);
    s = render_dockerfile_line("cmd /S /C #(nop)  SHELL [powershell -Command]", &shell);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "SHELL [powershell -Command]");
    free(s);
}

Test(dockerfile, schema1_argv)
{
    char *a1[] = {"/bin/sh", "-c", "#(nop) CMD [\"bash\"]"};
    char *a2[] = {"/bin/sh", "-c", "apt-get update \t&& apt-get install x"};
    char *a3[] = {"/bin/sh", "-c", "set -e;\n\tfoo"};
    char *a4[] = {"/bin/echo", "a/b"};
    char *a5[] = {"|1", "V=1", "/bin/sh", "-c", "make"};
    char *s;

    s = render_dockerfile_argv(a1, 3);
    cr_expect_str_eq(s, "CMD [\"bash\"]");
    free(s);
    s = render_dockerfile_argv(a2, 3);
    cr_expect_str_eq(s, "RUN apt-get update \\\n\t&& apt-get install x");
    free(s);
    s = render_dockerfile_argv(a3, 3);
    cr_expect_str_eq(s, "RUN set -e;\n\tfoo");
    free(s);
    s = render_dockerfile_argv(a4, 2);
    cr_expect_str_eq(s, "RUN [\"\\/bin\\/echo\",\"a\\/b\"]");
    free(s);
    s = render_dockerfile_argv(a5, 5);
    cr_expect_str_eq(s, "# ARG: \"V\" => \"1\"\nRUN make");
    free(s);
}

/* ---- the reference page, byte for byte ---- */

static void load_case(const char *rel, struct im_bundle *b, struct im_ref *ref)
{
    json_error_t jerr;
    char *text = slurp(rel, NULL);
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_t *v;
    size_t i;

    cr_assert_not_null(root, "%s: %s", rel, jerr.text);
    *ref = make_ref(json_string_value(json_object_get(root, "registry")),
                    json_string_value(json_object_get(root, "repository")),
                    json_string_value(json_object_get(root, "tag")), "");
    im_bundle_init(b);
    im_strlcpy(b->root_digest, json_string_value(json_object_get(root, "root")),
               sizeof b->root_digest);
    json_array_foreach(json_object_get(root, "docs"), i, v)
    {
        add_doc(b, json_string_value(json_object_get(v, "digest")),
                json_string_value(json_object_get(v, "mediaType")),
                json_string_value(json_object_get(v, "body")));
    }
    json_array_foreach(json_object_get(root, "blobs"), i, v)
    {
        add_blob(b, json_string_value(json_object_get(v, "digest")),
                 json_integer_value(json_object_get(v, "size")),
                 json_integer_value(json_object_get(v, "lastModified")));
    }
    json_decref(root);
    free(text);
}

Test(page, python_3_7_slim_byte_for_byte)
{
    struct im_bundle b;
    struct im_ref ref;
    struct render_image *img = NULL;
    struct im_error err = {{0}};
    size_t want_len = 0, len = 0;
    char *want = slurp("tests/cases/python-3.7-slim/expected.md", &want_len), *md = NULL;

    load_case("tests/cases/render-python-3.7-slim/bundle.json", &b, &ref);
    cr_assert_eq(render_image_build(&ref, &b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    if (len != want_len || memcmp(md, want, len) != 0) {
        size_t i = 0;
        while (i < len && i < want_len && md[i] == want[i])
            i++;
        cr_assert_fail("page differs at byte %zu:\n got: [%.80s]\nwant: [%.80s]", i,
                       md + i, want + i);
    }
    free(md);
    free(want);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(page, not_found)
{
    struct im_ref ref = make_ref("docker.io", "library/python", "9.9-nope", "");
    char *md = NULL;
    size_t len = 0;
    cr_assert_eq(render_markdown_not_found(&ref, &md, &len), 0);
    cr_expect_str_eq(md, "## `python:9.9-nope`\n\n**does not exist** (yet?)\n");
    cr_expect_eq(len, strlen(md));
    free(md);
}

/* ---- a handmade list: two manifests, their configs, Markdown by hand ---- */

#define D_LIST "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_M1 "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
#define D_M2 "sha256:aaaa000000000000000000000000000000000000000000000000000000000002"
#define D_C1 "sha256:cccc000000000000000000000000000000000000000000000000000000000001"
#define D_C2 "sha256:cccc000000000000000000000000000000000000000000000000000000000002"
#define D_L1 "sha256:1a1a000000000000000000000000000000000000000000000000000000000001"
#define D_L2 "sha256:1a1a000000000000000000000000000000000000000000000000000000000002"
#define D_L3 "sha256:1a1a000000000000000000000000000000000000000000000000000000000003"

static void handmade(struct im_bundle *b)
{
    im_bundle_init(b);
    im_strlcpy(b->root_digest, D_LIST, sizeof b->root_digest);
    add_doc(
        b, D_LIST, MT_LIST,
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" MT_V2 "\",\"size\":1,\"digest\":\"" D_M1 "\","
        "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
        "{\"mediaType\":\"" MT_V2 "\",\"size\":1,\"digest\":\"" D_M2 "\","
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\","
        "\"os.version\":\"10.0.14393.1066\"}}]}");
    add_doc(
        b, D_M1, MT_V2,
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_V2 "\","
        "\"config\":{\"mediaType\":\"" MT_CFG "\",\"size\":1,\"digest\":\"" D_C1 "\"},"
        "\"layers\":[{\"mediaType\":\"" GZ "\",\"size\":1500,\"digest\":\"" D_L1 "\"},"
        "{\"mediaType\":\"" GZ "\",\"size\":32,\"digest\":\"" D_L2 "\"}]}");
    add_doc(b, D_C1, MT_CFG,
            "{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\",\"docker_"
            "version\":\"18.09.1\","
            "\"config\":{\"Entrypoint\":[\"/"
            "docker-entrypoint.sh\"],\"Cmd\":[\"nginx\",\"-g\"]},"
            "\"history\":[{\"created\":\"2019-01-02T03:04:05.999Z\","
            "\"created_by\":\"/bin/sh -c #(nop) ADD file:abc in / \"},"
            "{\"created\":\"2019-01-02T05:04:06+02:00\","
            "\"created_by\":\"/bin/sh -c #(nop)  CMD "
            "[\\\"nginx\\\"]\",\"empty_layer\":true}]}");
    add_doc(b, D_M2, MT_V2,
            "{\"schemaVersion\":2,\"mediaType\":\"" MT_V2 "\","
            "\"config\":{\"mediaType\":\"" MT_CFG "\",\"size\":1,\"digest\":\"" D_C2
            "\"},"
            "\"layers\":[{\"mediaType\":\"application/"
            "vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
            "\"size\":2000000,\"digest\":\"" D_L3
            "\",\"urls\":[\"https://go.microsoft.com/x\"]}]}");
    add_doc(b, D_C2, MT_CFG,
            "{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.version\":\"10.0.14393."
            "1066\","
            "\"config\":{\"Entrypoint\":[],\"Cmd\":null,\"Shell\":[\"powershell\",\"-"
            "Command\"]},"
            "\"history\":[{\"created\":\"2016-11-19T20:41:25Z\","
            "\"created_by\":\"Apply image 10.0.14393.0\"}]}");
    add_blob(b, D_L1, 1500, 1546398245); /* Wed, 02 Jan 2019 03:04:05 GMT */
}

static const char handmade_md[] =
    "## `demo:1`\n"
    "\n"
    "```console\n"
    "$ docker pull demo@" D_LIST "\n"
    "```\n"
    "\n"
    "-\tManifest MIME: `" MT_LIST "`\n"
    "-\tPlatforms:\n"
    "\t-\tlinux; arm variant v7\n"
    "\t-\twindows version 10.0.14393.1066; amd64\n"
    "\n"
    "### `demo:1` - linux; arm variant v7\n"
    "\n"
    "```console\n"
    "$ docker pull demo@" D_M1 "\n"
    "```\n"
    "\n"
    "-\tDocker Version: 18.09.1\n"
    "-\tManifest MIME: `" MT_V2 "`\n"
    "-\tTotal Size: **1.5 KB (1532 bytes)**  \n"
    "\t(compressed transfer size, not on-disk size)\n"
    "-\tImage ID: `" D_C1 "`\n"
    "-\tEntrypoint: `[\"\\/docker-entrypoint.sh\"]`\n"
    "-\tDefault Command: `[\"nginx\",\"-g\"]`\n"
    "\n"
    "```dockerfile\n"
    "# Wed, 02 Jan 2019 03:04:05 GMT\n"
    "ADD file:abc in / \n"
    "# Wed, 02 Jan 2019 03:04:06 GMT\n"
    "CMD [\"nginx\"]\n"
    "```\n"
    "\n"
    "-\tLayers:\n"
    "\t-\t`" D_L1 "`  \n"
    "\t\tLast Modified: Wed, 02 Jan 2019 03:04:05 GMT  \n"
    "\t\tSize: 1.5 KB (1500 bytes)  \n"
    "\t\tMIME: " GZ "\n"
    "\t-\t`" D_L2 "`  \n"
    "\t\tSize: 32.0 B  \n"
    "\t\tMIME: " GZ "\n"
    "\n"
    "### `demo:1` - windows version 10.0.14393.1066; amd64\n"
    "\n"
    "```console\n"
    "$ docker pull demo@" D_M2 "\n"
    "```\n"
    "\n"
    "-\tManifest MIME: `" MT_V2 "`\n"
    "-\tTotal Size: **2.0 MB (2000000 bytes)**  \n"
    "\t(compressed transfer size, not on-disk size)\n"
    "-\tImage ID: `" D_C2 "`\n"
    "-\t`SHELL`: `[\"powershell\",\"-Command\"]`\n"
    "\n"
    "```dockerfile\n"
    "# Sat, 19 Nov 2016 20:41:25 GMT\n"
    "RUN Apply image 10.0.14393.0\n"
    "```\n"
    "\n"
    "-\tLayers:\n"
    "\t-\t`" D_L3 "`  \n"
    "\t\tSize: 2.0 MB (2000000 bytes)  \n"
    "\t\tMIME: application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\n";

Test(page, handmade_list_markdown)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;

    handmade(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert(img->is_list);
    cr_assert_eq(img->n_entries, 2);
    cr_expect_eq(img->entries[0].history[0].created, 1546398245);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_str_eq(md, handmade_md);
    cr_expect_eq(len, strlen(handmade_md));
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

/* A single manifest: no list MIME, platform from the config, no per-entry pull. */
Test(page, single_manifest)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;

    handmade(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_expect_not(img->is_list);
    cr_assert_eq(img->n_entries, 1);
    cr_expect_null(img->entries[0].digest);
    cr_expect_str_eq(img->digest, D_M1);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect(
        strncmp(md,
                "## `demo:1`\n\n```console\n$ docker pull demo@" D_M1 "\n```\n\n"
                "-\tPlatforms:\n\t-\tlinux; arm variant v7\n\n"
                "### `demo:1` - linux; arm variant v7\n\n-\tDocker Version: 18.09.1\n",
                strlen("## `demo:1`\n\n```console\n$ docker pull demo@" D_M1
                       "\n```\n\n-\tPlatforms:\n\t-\tlinux; arm variant v7\n\n"
                       "### `demo:1` - linux; arm variant v7\n\n-\tDocker Version: "
                       "18.09.1\n")) == 0,
        "got:\n%s", md);
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

/* ---- OCI index with a BuildKit attestation ---- */

#define D_ATT "sha256:a77e000000000000000000000000000000000000000000000000000000000001"
#define D_ATC "sha256:a77c000000000000000000000000000000000000000000000000000000000001"
#define D_TOTO "sha256:7070000000000000000000000000000000000000000000000000000000000001"

static void oci_with_attestation(struct im_bundle *b)
{
    handmade(b);
    im_strlcpy(b->root_digest, "sha256:0c10", sizeof b->root_digest);
    add_doc(
        b, "sha256:0c10", MT_INDEX,
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" MT_V2 "\",\"size\":1,\"digest\":\"" D_M1 "\","
        "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
        "{\"mediaType\":\"" MT_OCI "\",\"size\":1,\"digest\":\"" D_ATT "\","
        "\"annotations\":{\"vnd.docker.reference.digest\":\"" D_M1 "\","
        "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
        "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}");
    add_doc(b, D_ATT, MT_OCI,
            "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI "\","
            "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
            "\"size\":1,\"digest\":\"" D_ATC "\"},"
            "\"layers\":[{\"mediaType\":\"application/vnd.in-toto+json\",\"size\":18778,"
            "\"digest\":\"" D_TOTO "\"}]}");
    add_doc(b, D_ATC, "application/vnd.oci.image.config.v1+json",
            "{\"architecture\":\"unknown\",\"os\":\"unknown\",\"config\":{},"
            "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
}

Test(page, attestation_section)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;

    oci_with_attestation(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(img->n_entries, 2);
    cr_expect_eq(img->entries[1].kind, RENDER_KIND_ATTESTATION);
    cr_expect_str_eq(img->entries[1].attests, D_M1);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_not_null(strstr(md, "-\tManifest MIME: `" MT_INDEX "`\n-\tPlatforms:\n"
                                  "\t-\tlinux; arm variant v7\n\t-\tunknown; unknown\n"));
    cr_expect_not_null(strstr(md,
                              "### `demo:1` - unknown; unknown\n\n```console\n"
                              "$ docker pull demo@" D_ATT "\n```\n\n"
                              "-\tManifest MIME: `" MT_OCI "`\n"
                              "-\tTotal Size: **18.8 KB (18778 bytes)**  \n"
                              "\t(compressed transfer size, not on-disk size)\n"
                              "-\tImage ID: `" D_ATC "`\n\n```dockerfile\n```\n\n"
                              "-\tLayers:\n\t-\t`" D_TOTO "`  \n\t\tSize: 18.8 KB (18778 "
                              "bytes)  \n\t\tMIME: application/vnd.in-toto+json\n"),
                       "got:\n%s", md);
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

/* ---- JSON ---- */

static json_t *parse_json(const char *s)
{
    json_error_t jerr;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(j, "invalid JSON (%s): %s", jerr.text, s);
    return j;
}

#define JGET(o, k) json_object_get((o), (k))

Test(json, full_shape)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *s = NULL;
    size_t len = 0;

    oci_with_attestation(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_json(img, &s, &len), 0);
    cr_expect_eq(len, strlen(s));
    cr_expect_null(strchr(s, '\n'), "not compact");
    json_t *j = parse_json(s);
    cr_expect_str_eq(json_string_value(JGET(j, "reference")), "demo:1");
    cr_expect_str_eq(json_string_value(JGET(j, "registry")), "docker.io");
    cr_expect_str_eq(json_string_value(JGET(j, "repository")), "library/demo");
    cr_expect_str_eq(json_string_value(JGET(j, "tag")), "1");
    cr_expect_str_eq(json_string_value(JGET(j, "digest")), "sha256:0c10");
    cr_expect_str_eq(json_string_value(JGET(j, "mediaType")), MT_INDEX);

    json_t *plats = JGET(j, "platforms");
    cr_assert_eq(json_array_size(plats), 1);
    json_t *p = json_array_get(plats, 0);
    cr_expect_str_eq(json_string_value(JGET(JGET(p, "platform"), "os")), "linux");
    cr_expect_str_eq(json_string_value(JGET(JGET(p, "platform"), "variant")), "v7");
    cr_expect_null(JGET(JGET(p, "platform"), "osVersion"));
    cr_expect_str_eq(json_string_value(JGET(p, "platformString")),
                     "linux; arm variant v7");
    cr_expect_str_eq(json_string_value(JGET(p, "digest")), D_M1);
    cr_expect_str_eq(json_string_value(JGET(p, "dockerVersion")), "18.09.1");
    cr_expect_str_eq(json_string_value(JGET(p, "imageId")), D_C1);
    cr_expect(json_is_integer(JGET(p, "totalSize")));
    cr_expect_eq(json_integer_value(JGET(p, "totalSize")), 1532);
    cr_expect_str_eq(json_string_value(json_array_get(JGET(p, "entrypoint"), 0)),
                     "/docker-entrypoint.sh");
    cr_expect_eq(json_array_size(JGET(p, "defaultCommand")), 2);
    cr_expect(json_is_null(JGET(p, "shell")));

    json_t *h = JGET(p, "history");
    cr_assert_eq(json_array_size(h), 2);
    cr_expect_str_eq(json_string_value(JGET(json_array_get(h, 1), "created")),
                     "2019-01-02T03:04:06Z");
    cr_expect(json_is_true(JGET(json_array_get(h, 1), "emptyLayer")));
    cr_expect(json_is_false(JGET(json_array_get(h, 0), "emptyLayer")));
    cr_expect_str_eq(json_string_value(JGET(json_array_get(h, 1), "instruction")),
                     "CMD [\"nginx\"]");
    cr_expect_str_eq(json_string_value(JGET(json_array_get(h, 1), "createdBy")),
                     "/bin/sh -c #(nop)  CMD [\"nginx\"]");

    json_t *l = JGET(p, "layers");
    cr_assert_eq(json_array_size(l), 2);
    cr_expect_str_eq(json_string_value(JGET(json_array_get(l, 0), "lastModified")),
                     "2019-01-02T03:04:05Z");
    cr_expect(json_is_null(JGET(json_array_get(l, 1), "lastModified")));
    cr_expect_eq(json_integer_value(JGET(json_array_get(l, 1), "size")), 32);
    cr_expect_str_eq(json_string_value(JGET(json_array_get(l, 1), "mediaType")), GZ);
    cr_expect_null(JGET(json_array_get(l, 1), "urls"));

    json_t *atts = JGET(j, "attestations");
    cr_assert_eq(json_array_size(atts), 1);
    json_t *a = json_array_get(atts, 0);
    cr_expect_str_eq(json_string_value(JGET(a, "digest")), D_ATT);
    cr_expect_str_eq(json_string_value(JGET(a, "attests")), D_M1);
    cr_expect_str_eq(json_string_value(JGET(a, "mediaType")), MT_OCI);
    cr_expect_eq(json_array_size(JGET(a, "layers")), 1);
    json_decref(j);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(json, windows_urls_and_nulls)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *s = NULL;
    size_t len = 0;

    handmade(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_json(img, &s, &len), 0);
    json_t *j = parse_json(s);
    json_t *p = json_array_get(JGET(j, "platforms"), 1);
    cr_expect_str_eq(json_string_value(JGET(JGET(p, "platform"), "osVersion")),
                     "10.0.14393.1066");
    cr_expect_null(JGET(JGET(p, "platform"), "variant"));
    cr_expect(json_is_null(JGET(p, "dockerVersion")));
    cr_expect(json_is_array(JGET(p, "entrypoint")));
    cr_expect_eq(json_array_size(JGET(p, "entrypoint")), 0);
    cr_expect(json_is_null(JGET(p, "defaultCommand")));
    cr_expect_eq(json_array_size(JGET(p, "shell")), 2);
    json_t *l = json_array_get(JGET(p, "layers"), 0);
    cr_expect_str_eq(json_string_value(json_array_get(JGET(l, "urls"), 0)),
                     "https://go.microsoft.com/x");
    cr_expect_eq(json_array_size(JGET(j, "attestations")), 0);
    json_decref(j);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(json, summary_shape)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *s = NULL;
    size_t len = 0;

    oci_with_attestation(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_json_summary(img, &s, &len), 0);
    json_t *j = parse_json(s);
    cr_expect_eq(json_object_size(j), 4);
    cr_expect_str_eq(json_string_value(JGET(j, "reference")), "demo:1");
    cr_expect_str_eq(json_string_value(JGET(j, "digest")), "sha256:0c10");
    cr_expect_str_eq(json_string_value(JGET(j, "mediaType")), MT_INDEX);
    cr_assert_eq(json_array_size(JGET(j, "platforms")), 1);
    json_t *p = json_array_get(JGET(j, "platforms"), 0);
    cr_expect_eq(json_object_size(p), 4);
    cr_expect_str_eq(json_string_value(JGET(p, "platformString")),
                     "linux; arm variant v7");
    cr_expect_str_eq(json_string_value(JGET(JGET(p, "platform"), "architecture")), "arm");
    cr_expect_str_eq(json_string_value(JGET(p, "digest")), D_M1);
    cr_expect_eq(json_integer_value(JGET(p, "totalSize")), 1532);
    json_decref(j);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}

/* ---- platform filter ---- */

Test(filter, keeps_matching_entries_and_their_attestations)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;

    oci_with_attestation(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    const char *f1[] = {"linux/arm/v7"};
    cr_expect_eq(render_image_filter(img, f1, 1), 2);
    cr_expect(img->is_list);
    const char *f2[] = {"linux/arm/v6", "windows/amd64"};
    cr_expect_eq(render_image_filter(img, f2, 2), 0);
    render_image_free(img);
    im_bundle_free(&b);

    handmade(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    const char *f3[] = {"windows/amd64"};
    cr_assert_eq(render_image_filter(img, f3, 1), 1);
    cr_expect_str_eq(img->entries[0].platform.os, "windows");
    render_image_free(img);
    im_bundle_free(&b);
}

/* ---- errors ---- */

static void expect_build_error(struct im_bundle *b, const char *needle)
{
    struct render_image *img = (struct render_image *)&img; /* must be reset to NULL */
    struct im_error err;
    cr_expect_eq(build(b, &img, &err), IM_EPROTO, "built anyway");
    cr_expect_null(img);
    cr_expect_not_null(strstr(err.msg, needle), "message [%s] lacks [%s]", err.msg,
                       needle);
}

Test(errors, bad_json)
{
    struct im_bundle b;
    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_LIST, "{\"manifests\": [");
    expect_build_error(&b, "bad JSON");
    im_bundle_free(&b);

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_LIST, "{\"manifests\":[],\"manifests\":[]}");
    expect_build_error(&b, "duplicate");
    im_bundle_free(&b);
}

Test(errors, unknown_media_type)
{
    struct im_bundle b;
    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, "application/x-nonsense", "{}");
    expect_build_error(&b, "application/x-nonsense");
    im_bundle_free(&b);
}

Test(errors, missing_child_and_config)
{
    struct im_bundle b;
    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_LIST,
            "{\"mediaType\":\"" MT_LIST "\",\"manifests\":[{\"digest\":\"" D_M1 "\"}]}");
    expect_build_error(&b, "missing manifest " D_M1);
    add_doc(&b, D_M1, MT_V2, "{\"config\":{\"digest\":\"" D_C1 "\"},\"layers\":[]}");
    expect_build_error(&b, D_C1);
    im_bundle_free(&b);

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    expect_build_error(&b, D_LIST);
    im_bundle_free(&b);
}

Test(errors, media_type_mismatch_names_both)
{
    struct im_bundle b;
    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_LIST, "{\"mediaType\":\"" MT_INDEX "\",\"manifests\":[]}");
    expect_build_error(&b, MT_LIST);
    expect_build_error(&b, MT_INDEX);
    im_bundle_free(&b);
}

/* ---- legacy schema1 ---- */

#define MT_S1 "application/vnd.docker.distribution.manifest.v1+json"

static void schema1_bundle(struct im_bundle *b)
{
    struct im_blob blob = {.size = 32, .last_modified = -1};
    im_bundle_init(b);
    im_strlcpy(b->root_digest, D_M1, sizeof b->root_digest);
    add_doc(b, D_M1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "{\"schemaVersion\":1,\"name\":\"library/demo\",\"tag\":\"1\","
            "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D_L2 "\"},"
            "{\"blobSum\":\"" D_L1 "\"},{\"blobSum\":\"" D_L1 "\"}],\"history\":["
            "{\"v1Compatibility\":\"{\\\"id\\\":\\\"abc123\\\",\\\"docker_version\\\":"
            "\\\"1.12.0\\\",\\\"os\\\":\\\"linux\\\",\\\"architecture\\\":\\\"amd64\\\","
            "\\\"config\\\":{\\\"Cmd\\\":[\\\"bash\\\"],\\\"Entrypoint\\\":null},"
            "\\\"created\\\":\\\"2016-01-02T00:00:00.5Z\\\",\\\"throwaway\\\":true,"
            "\\\"container_config\\\":{\\\"Cmd\\\":[\\\"/bin/sh\\\",\\\"-c\\\","
            "\\\"#(nop) CMD [\\\\\\\"bash\\\\\\\"]\\\"]}}\"},"
            "{\"v1Compatibility\":\"{\\\"id\\\":\\\"def456\\\",\\\"created\\\":"
            "\\\"2016-01-01T00:00:00Z\\\",\\\"container_config\\\":{\\\"Cmd\\\":"
            "[\\\"/bin/sh\\\",\\\"-c\\\",\\\"apt-get update \\\\t&& x\\\"]}}\"}],"
            "\"signatures\":[]}");
    im_strlcpy(blob.digest, D_L2, sizeof blob.digest);
    im_strlcpy(blob.media_type, "application/octet-stream", sizeof blob.media_type);
    cr_assert_eq(im_bundle_add_blob(b, &blob), 0);
    blob.size = 1500;
    blob.last_modified = 1451606400;
    im_strlcpy(blob.digest, D_L1, sizeof blob.digest);
    im_strlcpy(blob.media_type, GZ, sizeof blob.media_type);
    cr_assert_eq(im_bundle_add_blob(b, &blob), 0);
}

static const char schema1_md[] = "## `demo:1`\n"
                                 "\n"
                                 "```console\n"
                                 "$ docker pull demo@" D_M1 "\n"
                                 "```\n"
                                 "\n"
                                 "-\tPlatforms:\n"
                                 "\t-\tlinux; amd64\n"
                                 "\n"
                                 "### `demo:1` - linux; amd64\n"
                                 "\n"
                                 "-\tDocker Version: 1.12.0\n"
                                 "-\tManifest MIME: `" MT_S1 "`\n"
                                 "-\tTotal Size: **1.5 KB (1532 bytes)**  \n"
                                 "\t(compressed transfer size, not on-disk size)\n"
                                 "-\tImage ID: `abc123`\n"
                                 "-\tDefault Command: `[\"bash\"]`\n"
                                 "\n"
                                 "```dockerfile\n"
                                 "# Fri, 01 Jan 2016 00:00:00 GMT\n"
                                 "RUN apt-get update \\\n"
                                 "\t&& x\n"
                                 "# Sat, 02 Jan 2016 00:00:00 GMT\n"
                                 "CMD [\"bash\"]\n"
                                 "```\n"
                                 "\n"
                                 "-\tLayers:\n"
                                 "\t-\t`" D_L2 "`  \n"
                                 "\t\tSize: 32.0 B  \n"
                                 "\t\tMIME: application/octet-stream\n"
                                 "\t-\t`" D_L1 "`  \n"
                                 "\t\tLast Modified: Fri, 01 Jan 2016 00:00:00 GMT  \n"
                                 "\t\tSize: 1.5 KB (1500 bytes)  \n"
                                 "\t\tMIME: " GZ "\n";

Test(schema1, markdown_page)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;

    schema1_bundle(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_expect_not(img->is_list);
    cr_assert_eq(img->n_entries, 1);
    cr_expect_eq(img->entries[0].n_layers, 2, "each digest once");
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_str_eq(md, schema1_md);
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(schema1, bad_v1_compatibility)
{
    struct im_bundle b;
    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    add_doc(&b, D_M1, MT_S1,
            "{\"schemaVersion\":1,\"fsLayers\":[],\"history\":[{\"v1Compatibility\":\"{"
            "\"}]}");
    expect_build_error(&b, "v1Compatibility");
    im_bundle_free(&b);
}

Test(errors, wrong_types_do_not_crash)
{
    static const char *bodies[] = {
        "[]",
        "{\"manifests\":{}}",
        "{\"manifests\":[1,\"x\",null]}",
        "{\"manifests\":[{\"digest\":7}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct im_bundle b;
        im_bundle_init(&b);
        im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
        add_doc(&b, D_LIST, MT_LIST, bodies[i]);
        expect_build_error(&b, "");
        im_bundle_free(&b);
    }
}

/* A manifest whose config and layers have odd types still renders. */
Test(errors, lenient_optional_fields)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL, *js = NULL;
    size_t len;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    add_doc(&b, D_M1, MT_V2,
            "{\"config\":{\"digest\":\"" D_C1 "\"},\"layers\":[{\"digest\":\"" D_L1 "\","
            "\"size\":\"big\",\"urls\":[1]}]}");
    add_doc(&b, D_C1, MT_CFG,
            "{\"os\":5,\"config\":{\"Cmd\":\"sh\",\"Entrypoint\":[1]},\"history\":[7,"
            "{\"created\":\"yesterday\",\"created_by\":\"true\"}]}");
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_expect_eq(img->entries[0].layers[0].size, -1);
    cr_expect_not(img->entries[0].cmd.present);
    cr_expect_not(img->entries[0].entrypoint.present);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_null(strstr(md, "Total Size"), "total of unknown sizes shown:\n%s", md);
    cr_expect_not_null(strstr(md, "# yesterday\nRUN true\n"), "got:\n%s", md);
    cr_expect_not_null(strstr(md, "\t-\t`" D_L1 "`\n"), "got:\n%s", md);
    cr_assert_eq(render_json(img, &js, &len), 0);
    json_t *j = parse_json(js);
    cr_expect(json_is_null(JGET(json_array_get(JGET(j, "platforms"), 0), "totalSize")));
    json_decref(j);
    free(md);
    free(js);
    render_image_free(img);
    im_bundle_free(&b);
}

/* ---- more model and JSON edges ---- */

Test(json, python_page_model)
{
    struct im_bundle b;
    struct im_ref ref;
    struct render_image *img = NULL;
    struct im_error err = {{0}};
    char *s = NULL;
    size_t len = 0;

    load_case("tests/cases/render-python-3.7-slim/bundle.json", &b, &ref);
    cr_assert_eq(render_image_build(&ref, &b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_json(img, &s, &len), 0);
    json_t *j = parse_json(s);
    cr_expect_str_eq(json_string_value(JGET(j, "reference")), "python:3.7-slim");
    cr_assert_eq(json_array_size(JGET(j, "platforms")), 7);
    json_t *p = json_array_get(JGET(j, "platforms"), 0);
    cr_expect_eq(json_integer_value(JGET(p, "totalSize")), 50868652);
    cr_expect_str_eq(json_string_value(JGET(p, "platformString")), "linux; amd64");
    cr_expect(json_is_null(JGET(p, "entrypoint")));
    json_t *h0 = json_array_get(JGET(p, "history"), 0);
    cr_expect_str_eq(json_string_value(JGET(h0, "created")), "2018-07-17T00:28:04Z");
    cr_expect_str_eq(
        json_string_value(JGET(h0, "instruction")),
        "ADD file:919939fa022472751b717443eea9f1d7ab5c0723f1f3a6b776d3b83d22bde818"
        " in / ");
    json_t *l0 = json_array_get(JGET(p, "layers"), 0);
    cr_expect_str_eq(json_string_value(JGET(l0, "lastModified")), "2018-07-17T00:44:17Z");
    cr_expect_str_eq(
        json_string_value(
            JGET(JGET(json_array_get(JGET(j, "platforms"), 2), "platform"), "variant")),
        "v7");
    json_decref(j);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(json, non_utf8_header_values_do_not_fail)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *s = NULL;
    size_t len = 0;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, "application/vnd.oci.image.index.v1+json",
            "{\"manifests\":[{\"digest\":\"" D_M1 "\",\"mediaType\":\"" MT_V2 "\"}]}");
    add_doc(&b, D_M1, "", "{\"config\":{\"digest\":\"" D_C1 "\"},\"layers\":[]}");
    add_doc(&b, D_C1, "", "{}");
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    free(img->media_type);
    img->media_type = strdup("application/\xff\xfe");
    cr_assert_eq(render_json(img, &s, &len), 0);
    json_t *j = parse_json(s);
    cr_expect_str_eq(json_string_value(JGET(j, "mediaType")), "application/??");
    json_decref(j);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}

/* A list inside a list is listed (platform, digest, media type) but not
 * descended into; it shows no size rather than "0.0 B". */
Test(model, nested_index_is_unknown)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL, *js = NULL;
    size_t len;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_INDEX,
            "{\"manifests\":[{\"digest\":\"" D_M2 "\",\"mediaType\":\"" MT_INDEX "\","
            "\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}]}");
    add_doc(&b, D_M2, MT_INDEX, "{\"manifests\":[{\"digest\":\"sha256:nowhere\"}]}");
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(img->n_entries, 1);
    cr_expect_eq(img->entries[0].kind, RENDER_KIND_UNKNOWN);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_not_null(strstr(md, "### `demo:1` - linux; s390x\n"), "got:\n%s", md);
    cr_expect_null(strstr(md, "Total Size"), "got:\n%s", md);
    cr_assert_eq(render_json(img, &js, &len), 0);
    json_t *j = parse_json(js);
    cr_expect(json_is_null(JGET(json_array_get(JGET(j, "platforms"), 0), "totalSize")));
    json_decref(j);
    free(md);
    free(js);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(date, before_1970_history)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL, *js = NULL;
    size_t len;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    add_doc(&b, D_M1, MT_OCI, "{\"config\":{\"digest\":\"" D_C1 "\"},\"layers\":[]}");
    add_doc(&b, D_C1, "application/vnd.oci.image.config.v1+json",
            "{\"history\":[{\"created\":\"0001-01-01T00:00:00Z\",\"created_by\":"
            "\"WORKDIR /\"}]}");
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_expect_not_null(strstr(md, "# Mon, 01 Jan 0001 00:00:00 GMT\nWORKDIR /\n"), "%s",
                       md);
    cr_assert_eq(render_json(img, &js, &len), 0);
    cr_expect_not_null(strstr(js, "\"created\":\"0001-01-01T00:00:00Z\""), "%s", js);
    free(md);
    free(js);
    render_image_free(img);
    im_bundle_free(&b);
}

/* Upstream text is untrusted: a history line of backticks must not close the
 * dockerfile block early (which would let the next line become a heading). */
Test(markdown, backtick_lines_in_history_stay_inside_the_block)
{
    struct im_bundle b;
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    add_doc(&b, D_M1, MT_V2,
            "{\"mediaType\":\"" MT_V2 "\",\"config\":{\"digest\":\"" D_C1
            "\"},\"layers\":[]}");
    add_doc(&b, D_C1, MT_CFG,
            "{\"history\":[{\"created_by\":\"/bin/sh -c #(nop) ````\\n# Injected "
            "heading\"}]}");
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_markdown(img, &md, &len), 0);
    cr_assert_not_null(strstr(md, "\n`````dockerfile\n````\n# Injected heading\n`````\n"),
                       "the fence must outgrow the backtick run:\n%s", md);
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

/* The JSON is written directly, not through jansson: its bytes must be the
 * ones jansson's compact, order-preserving dump gives for the same values, so
 * parsing and dumping it again changes nothing. Checked on the python page's
 * bundle, the hand-made ones, and text with quotes, backslashes, control
 * characters, non-ASCII and bytes that are not UTF-8 (those become '?'). */
static void expect_as_jansson_dumps(const char *what, const char *s, size_t len)
{
    json_t *j = parse_json(s);
    char *again = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_not_null(again);
    if (strlen(again) != len || memcmp(again, s, len) != 0) {
        size_t i = 0;
        while (i < len && s[i] == again[i])
            i++;
        cr_assert_fail("%s: differs from jansson at byte %zu:\n ours: [%.60s]\n "
                       "jansson: [%.60s]",
                       what, i, s + i, again + i);
    }
    free(again);
    json_decref(j);
}

static void expect_both_views_as_jansson(const char *what, const struct render_image *img)
{
    char *s = NULL;
    size_t len = 0;
    cr_assert_eq(render_json(img, &s, &len), 0);
    cr_expect_eq(len, strlen(s));
    expect_as_jansson_dumps(what, s, len);
    free(s);
    cr_assert_eq(render_json_summary(img, &s, &len), 0);
    expect_as_jansson_dumps(what, s, len);
    free(s);
}

Test(json, bytes_are_what_jansson_dumps)
{
    struct im_bundle b;
    struct im_ref ref;
    struct render_image *img = NULL;
    struct im_error err = {{0}};

    load_case("tests/cases/render-python-3.7-slim/bundle.json", &b, &ref);
    cr_assert_eq(render_image_build(&ref, &b, &img, &err), 0, "%s", err.msg);
    expect_both_views_as_jansson("python:3.7-slim", img);
    render_image_free(img);
    im_bundle_free(&b);

    handmade(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    expect_both_views_as_jansson("handmade", img);
    render_image_free(img);
    im_bundle_free(&b);

    oci_with_attestation(&b);
    cr_assert_eq(build(&b, &img, &err), 0, "%s", err.msg);
    expect_both_views_as_jansson("attestation", img);

    /* hostile text in the strings the model carries */
    free(img->media_type);
    img->media_type =
        strdup("a\"b\\c/d\x01\x1f\b\f\n\r\t\x7f é ✓ 😀 \xff\xc0\xaf \xed\xa0\x80 end");
    cr_assert_not_null(img->media_type);
    struct render_history *h = &img->entries[0].history[0];
    free(h->created_by);
    h->created_by = strdup("/bin/sh -c echo \"$x\" \\\n\t&& printf '\\x1b' \xe2\x82");
    cr_assert_not_null(h->created_by);
    expect_both_views_as_jansson("hostile text", img);

    char *s = NULL;
    size_t len = 0;
    cr_assert_eq(render_json(img, &s, &len), 0);
    json_t *j = parse_json(s);
    cr_expect_str_eq(json_string_value(JGET(j, "mediaType")),
                     "a\"b\\c/d\x01\x1f\b\f\n\r\t\x7f é ✓ 😀 ??? ??? end");
    json_decref(j);
    cr_expect_not_null(strstr(s, "\\u0001\\u001F\\b\\f\\n\\r\\t"), "%s", s);
    free(s);
    render_image_free(img);
    im_bundle_free(&b);
}
