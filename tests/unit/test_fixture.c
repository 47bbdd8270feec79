/* test_fixture.c - the replica builder's page -> seed rules (tests/fixtures/
 * seed.c, history.c): FORMAT.md's reconstruction of Dockerfile lines, its
 * inversion for every form of history line, and what a page's seed says
 * (single manifests, Windows platforms, attestations, layers, errors naming
 * the page line). A wrong rule here is a replica whose page differs. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "seed.h"

#define ASH "/bin/ash -eo pipefail -c"

/* ---- FORMAT.md's forward rules ---- */

static void renders(const char *created_by, const char *shell, const char *want)
{
    char *got = fx_render_created_by(created_by, shell);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "created_by \"%s\"", created_by);
    free(got);
}

Test(render, format_md_examples)
{
    renders("/bin/sh -c #(nop)  CMD [\"bash\"]", NULL, "CMD [\"bash\"]");
    renders("/bin/sh -c #(nop) ADD file:919 in / ", NULL, "ADD file:919 in / ");
    renders("/bin/sh -c apt-get update && x", NULL, "RUN apt-get update && x");
    renders("RUN /bin/sh -c set -eux; x # buildkit", NULL, "RUN set -eux; x # buildkit");
    renders("# debian.sh --arch 'amd64'", NULL, "RUN # debian.sh --arch 'amd64'");
    renders("|2 A=x y B=z " ASH " make", ASH, "# ARGS: A=x y B=z\nRUN make");
    renders("|2 A=1 B=2 /usr/bin/x y", NULL,
            "# unable to parse image command string further:\n|2 A=1 B=2 /usr/bin/x y");
}

Test(render, windows_cmd_is_kept_unless_it_is_the_shell)
{
    renders("cmd /S /C #(nop) COPY file:22c in C: ", NULL,
            "RUN cmd /S /C #(nop) COPY file:22c in C: ");
    renders("cmd /S /C #(nop) COPY file:22c in C: ", "cmd /S /C", "COPY file:22c in C: ");
    renders("Apply image 10.0.26100.33438", NULL, "RUN Apply image 10.0.26100.33438");
}

Test(render, build_args_split_at_the_first_shell_not_by_count)
{
    renders("|1 A=x y z /bin/sh -c make", NULL, "# ARGS: A=x y z\nRUN make");
    renders("RUN |3 A=1 /bin/sh -c make # buildkit", NULL,
            "# ARGS: A=1\nRUN make # buildkit");
}

/* ---- the inversion ---- */

/* A page text and the created_by its inversion must give. */
struct pair {
    const char *text, *created_by;
};

static void inverts(const struct fx_hctx *ctx, const struct pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *cb = NULL;
        cr_assert_eq(fx_invert_history(p[i].text, ctx, &cb), 0, "cannot invert \"%s\"",
                     p[i].text);
        cr_expect_str_eq(cb, p[i].created_by, "inverting \"%s\"", p[i].text);
        free(cb);
    }
}

#define NPAIRS(a) (sizeof(a) / sizeof((a)[0]))

Test(invert, classic_docker_forms)
{
    static const struct pair p[] = {
        {"RUN apt-get update", "/bin/sh -c apt-get update"},
        {"ADD file:919 in / ", "/bin/sh -c #(nop) ADD file:919 in / "},
        {"COPY a /b", "/bin/sh -c #(nop) COPY a /b"},
        {"ENV LANG=C.UTF-8", "/bin/sh -c #(nop)  ENV LANG=C.UTF-8"},
        {"RUN set -e\n\techo multi-line", "/bin/sh -c set -e\n\techo multi-line"},
        /* RUN lines whose command starts like a keyword or a no-op */
        {"RUN RUN x", "/bin/sh -c RUN RUN x"},
        {"RUN COPY x", "/bin/sh -c RUN COPY x"},
        {"RUN #(nop) x", "/bin/sh -c RUN #(nop) x"},
        {"RUN /bin/sh -c x", "/bin/sh -c /bin/sh -c x"},
        {"RUN |1 x", "/bin/sh -c |1 x"},
        {"# ARGS: A=x y\nRUN make", "|1 A=x y /bin/sh -c make"},
        {"# unable to parse image command string further:\n|2 A=1 B=2 /usr/bin/x y",
         "|2 A=1 B=2 /usr/bin/x y"},
    };
    inverts(&(struct fx_hctx){0}, p, NPAIRS(p));
}

Test(invert, buildkit_forms)
{
    static const struct pair p[] = {
        {"RUN apk add x # buildkit", "RUN /bin/sh -c apk add x # buildkit"},
        {"COPY hello / # buildkit", "COPY hello / # buildkit"},
        {"CMD [\"/hello\"]", "CMD [\"/hello\"]"},
        {"WORKDIR /spiped", "WORKDIR /spiped"},
        {"# ARGS: A=1\nRUN make # buildkit", "RUN |1 A=1 /bin/sh -c make # buildkit"},
    };
    inverts(&(struct fx_hctx){.buildkit = true}, p, NPAIRS(p));
}

Test(invert, the_images_own_shell)
{
    static const struct pair p[] = {
        {"# ARGS: A=x y B=z\nRUN make", "|2 A=x y B=z " ASH " make"},
        {"RUN make", ASH " make"},
    };
    inverts(&(struct fx_hctx){.shell = ASH}, p, NPAIRS(p));
}

Test(invert, windows_daemon_forms)
{
    static const struct pair p[] = {
        {"RUN Apply image 10.0.26100.33438", "Apply image 10.0.26100.33438"},
        {"RUN cmd /S /C #(nop) COPY file:22c in C: ",
         "cmd /S /C #(nop) COPY file:22c in C: "},
        {"RUN cmd /S /C #(nop)  CMD [\"cmd\" \"/C\"]",
         "cmd /S /C #(nop)  CMD [\"cmd\" \"/C\"]"},
    };
    inverts(&(struct fx_hctx){.windows = true}, p, NPAIRS(p));
}

Test(invert, what_nothing_renders_to_is_refused)
{
    struct fx_hctx ctx = {0};
    char *cb = NULL;
    /* step 4 eats every space after #(nop): no line starts with one */
    cr_expect_eq(fx_invert_history(" leading space", &ctx, &cb), IM_EINVAL);
    /* the arguments would be cut at their own " /bin/sh -c " */
    cr_expect_eq(fx_invert_history("# ARGS: A=/bin/sh B= /bin/sh -c x\nRUN y", &ctx, &cb),
                 IM_EINVAL);
    cr_expect_null(cb);
}

/* ---- pages ---- */

static json_t *seed_of(const char *page, enum fx_style *style, struct im_error *err)
{
    json_t *seed = NULL;
    enum fx_style s;
    int rc = fx_seed_from_page(page, strlen(page), "example/app", "1", &seed, &s, err);
    if (rc == 0 && style != NULL)
        *style = s;
    return rc == 0 ? seed : NULL;
}

static void expect_json(const json_t *v, const char *want)
{
    char *got = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    cr_expect_str_eq(got != NULL ? got : "(none)", want);
    free(got);
}

#define GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define INTOTO "application/vnd.in-toto+json"

/* A single manifest (no list line, no entry digest), with SHELL, build
 * arguments and a command of two lines. */
static const char single_page[] =
    "## `example/app:1`\n\n```console\n$ docker pull example/app@sha256:top\n```\n\n"
    "-\tPlatforms:\n\t-\tlinux; arm64\n\n"
    "### `example/app:1` - linux; arm64\n\n"
    "-\tDocker Version: 20.10.7\n"
    "-\tManifest MIME: `application/vnd.docker.distribution.manifest.v2+json`\n"
    "-\tTotal Size: **1.2 KB (1234 bytes)**  \n"
    "\t(compressed transfer size, not on-disk size)\n"
    "-\tImage ID: `sha256:cfg`\n"
    "-\tEntrypoint: `[\"\\/entry.sh\"]`\n"
    "-\tDefault Command: `[]`\n"
    "-\t`SHELL`: `[\"\\/bin\\/ash\",\"-eo\",\"pipefail\",\"-c\"]`\n\n"
    "```dockerfile\n"
    "# Tue, 17 Jul 2018 00:28:04 GMT\nADD file:abc in / \n"
    "# Tue, 17 Jul 2018 00:28:05 GMT\nSHELL [/bin/ash -eo pipefail -c]\n"
    "# Tue, 17 Jul 2018 00:28:06 GMT\n# ARGS: A=x y B=z\nRUN make\n"
    "# Wed, 18 Jul 2018 10:00:00 GMT\nRUN printf 'a\nb'\n"
    "```\n\n"
    "-\tLayers:\n"
    "\t-\t`sha256:l1`  \n\t\tSize: 1000.0 B  \n\t\tMIME: " GZ "\n"
    "\t-\t`sha256:l2`  \n\t\tSize: 200.0 B  \n\t\tMIME: " GZ "\n"
    "\t-\t`sha256:l3`  \n\t\tSize: 34.0 B  \n\t\tMIME: " GZ "\n";

Test(page, single_manifest)
{
    struct im_error err = {{0}};
    enum fx_style style = FX_STYLE_CURRENT;
    json_t *seed = seed_of(single_page, &style, &err), *p;
    cr_assert_not_null(seed, "%s", err.msg);
    cr_expect_eq(style, FX_STYLE_SEED);
    cr_expect_null(json_object_get(seed, "list"));
    cr_assert_eq(json_array_size(json_object_get(seed, "platforms")), 1);
    p = json_array_get(json_object_get(seed, "platforms"), 0);
    expect_json(json_object_get(p, "platform"),
                "{\"os\":\"linux\",\"architecture\":\"arm64\"}");
    expect_json(json_object_get(p, "manifest"),
                "{\"digest\":\"sha256:top\",\"mediaType\":\"application/"
                "vnd.docker.distribution.manifest.v2+json\"}");
    expect_json(json_object_get(p, "entrypoint"), "[\"/entry.sh\"]");
    expect_json(json_object_get(p, "cmd"), "[]");
    expect_json(
        json_object_get(p, "history"),
        "[{\"created\":\"2018-07-17T00:28:04.012347035Z\",\"created_by\":\"/bin/sh "
        "-c #(nop) ADD file:abc in / \"},"
        "{\"created\":\"2018-07-17T00:28:05.083581602Z\",\"created_by\":\"/bin/sh "
        "-c #(nop)  SHELL [/bin/ash -eo pipefail -c]\",\"empty_layer\":true},"
        "{\"created\":\"2018-07-17T00:28:06.154816169Z\",\"created_by\":\"|2 A=x y "
        "B=z /bin/ash -eo pipefail -c make\"},"
        "{\"created\":\"2018-07-18T10:00:00.226050736Z\",\"created_by\":\"/bin/ash "
        "-eo pipefail -c printf 'a\\nb'\"}]");
    json_decref(seed);
}

/* An OCI index: a Windows entry with features and a variant, and the
 * attestation BuildKit would have put after it. */
static const char index_page[] =
    "## `example/app:1`\n\n```console\n$ docker pull example/app@sha256:idx\n```\n\n"
    "-\tManifest MIME: `application/vnd.oci.image.index.v1+json`\n"
    "-\tPlatforms: 2\n"
    "\t-\twindows version 10.0.17763.1 ft. win32k; amd64 variant v3 ft. sse4, avx\n"
    "\t-\tunknown; unknown\n\n"
    "### `example/app:1` - windows version 10.0.17763.1 ft. win32k; amd64 variant v3 ft. "
    "sse4, avx\n\n"
    "```console\n$ docker pull example/app@sha256:win\n```\n\n"
    "-\tDocker Version: 23.0.6\n"
    "-\tManifest MIME: `application/vnd.docker.distribution.manifest.v2+json`\n"
    "-\tImage ID: `sha256:wincfg`\n\n"
    "```dockerfile\n"
    "# Sat, 05 Sep 2026 17:17:13 GMT\nRUN Apply image 10.0.17763.1\n"
    "# Wed, 09 Sep 2026 22:32:00 GMT\nRUN cmd /S /C #(nop) COPY file:22c in C: \n"
    "```\n\n"
    "-\tLayers:\n"
    "\t-\t`sha256:w1`  \n\t\tSize: 1000.0 B  \n\t\tMIME: " GZ "\n"
    "\t-\t`sha256:w2`  \n\t\tSize: 1.0 KB (1049 bytes)  \n\t\tMIME: " GZ "\n\n"
    "### `example/app:1` - unknown; unknown\n\n"
    "```console\n$ docker pull example/app@sha256:att\n```\n\n"
    "-\tManifest MIME: `application/vnd.docker.distribution.manifest.v2+json`\n"
    "-\tImage ID: `sha256:attcfg`\n\n"
    "```dockerfile\n```\n\n"
    "-\tLayers:\n"
    "\t-\t`sha256:a1`  \n\t\tSize: 20.0 B  \n\t\tMIME: " INTOTO "\n"
    "\t-\t`sha256:a2`  \n\t\tSize: 10.0 B  \n\t\tMIME: " INTOTO "\n";

Test(page, windows_platform_and_attestation)
{
    struct im_error err = {{0}};
    enum fx_style style = FX_STYLE_SEED;
    json_t *seed = seed_of(index_page, &style, &err), *win, *att;
    cr_assert_not_null(seed, "%s", err.msg);
    cr_expect_eq(style, FX_STYLE_CURRENT);
    expect_json(json_object_get(seed, "list"),
                "{\"digest\":\"sha256:idx\",\"mediaType\":\"application/"
                "vnd.oci.image.index.v1+json\"}");
    win = json_array_get(json_object_get(seed, "platforms"), 0);
    att = json_array_get(json_object_get(seed, "platforms"), 1);
    expect_json(json_object_get(win, "platform"),
                "{\"os\":\"windows\",\"architecture\":\"amd64\",\"variant\":\"v3\","
                "\"os.version\":\"10.0.17763.1\",\"os.features\":[\"win32k\"],"
                "\"features\":[\"sse4\",\"avx\"]}");
    expect_json(json_object_get(json_object_get(win, "manifest"), "mediaType"),
                "\"application/vnd.docker.distribution.manifest.v2+json\"");
    expect_json(json_object_get(win, "history"),
                "[{\"created\":\"2026-09-05T17:17:13.012347035Z\",\"created_by\":\"Apply "
                "image 10.0.17763.1\"},{\"created\":\"2026-09-09T22:32:00.083581602Z\","
                "\"created_by\":\"cmd /S /C #(nop) COPY file:22c in C: \"}]");
    expect_json(json_object_get(att, "attests"), "\"sha256:win\"");
    expect_json(json_object_get(att, "manifest"),
                "{\"digest\":\"sha256:att\",\"mediaType\":\"application/"
                "vnd.oci.image.manifest.v1+json\"}");
    expect_json(
        json_object_get(att, "layers"),
        "[{\"digest\":\"sha256:a1\",\"size\":20,\"mediaType\":\"" INTOTO
        "\",\"annotations\":{\"in-toto.io/predicate-type\":\"https://spdx.dev/"
        "Document\"}},{\"digest\":\"sha256:a2\",\"size\":10,\"mediaType\":\"" INTOTO
        "\",\"annotations\":{\"in-toto.io/predicate-type\":\"https://slsa.dev/"
        "provenance/v0.2\"}}]");
    json_decref(seed);
}

/* The page with its line i (0-based, of those split at '\n') replaced. */
static char *with_line(const char *page, int i, const char *line)
{
    const char *a = page, *b;
    for (int k = 0; k < i; k++)
        a = strchr(a, '\n') + 1;
    b = strchr(a, '\n');
    size_t n = strlen(page) + strlen(line) + 1;
    char *out = malloc(n);
    cr_assert_not_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(a - page), page, line, b);
    return out;
}

static void refused(const char *page, const char *says)
{
    struct im_error err = {{0}};
    json_t *seed = seed_of(page, NULL, &err);
    cr_expect_null(seed);
    cr_expect(strstr(err.msg, says) != NULL, "\"%s\" does not say \"%s\"", err.msg, says);
    json_decref(seed);
}

Test(page, refusals_name_the_line)
{
    char *p = with_line(single_page, 22, " leading space");
    refused(p, "page line 23: no created_by renders to this entry");
    free(p);
    p = with_line(single_page, 13, "-\tTotal Size: **1.2 KB (1235 bytes)**  ");
    refused(p, "Total Size is not the sum");
    free(p);
    p = with_line(single_page, 36,
                  "\t\tMIME: application/vnd.oci.image.layer.v1.tar+gzip");
    refused(p, "mixed or unknown media types");
    free(p);
    refused("## `x:1`\n\n**does not exist** (yet?)\n", "does not exist");
}

/* The whole file dir/name/file, malloc'd; NULL when it cannot be read. */
static char *slurp(const char *dir, const char *name, const char *file, size_t *len)
{
    char path[4096];
    char *buf = NULL;
    long n;
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/* The value of "key=" in a case file's text, malloc'd ("" when absent). */
static char *case_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *l = text; l != NULL && *l != '\0';
         l = strchr(l, '\n'), l = l ? l + 1 : l)
        if (strncmp(l, key, kl) == 0 && l[kl] == '=')
            return strndup(l + kl + 1, strcspn(l + kl + 1, "\n"));
    return strdup("");
}

/* dir/name's page gives dir/name/seed.json. */
static void case_is_its_pages_seed(const char *dir, const char *name, char *conf)
{
    size_t len = 0;
    char *page = slurp(dir, name, "expected.md", &len);
    char *repo = case_value(conf, "repository"), *tag = case_value(conf, "tag");
    char path[4096];
    json_t *seed = NULL, *want;
    enum fx_style style;
    struct im_error err = {{0}};

    cr_assert_not_null(page, "%s: no expected.md", name);
    cr_assert_eq(fx_seed_from_page(page, len, repo, tag, &seed, &style, &err), 0,
                 "%s: %s", name, err.msg);
    snprintf(path, sizeof path, "%s/%s/seed.json", dir, name);
    want = json_load_file(path, 0, NULL);
    cr_expect(json_equal(seed, want), "%s: the page's seed is not seed.json", name);
    json_decref(seed);
    json_decref(want);
    free(page);
    free(repo);
    free(tag);
}

/* Every committed case: its page gives its committed seed. */
Test(page, committed_cases_are_their_pages_seeds)
{
    const char *src = getenv("IMGMETA_SOURCE_DIR");
    char dir[1024];
    struct dirent *de;
    int n = 0;
    snprintf(dir, sizeof dir, "%s/tests/cases", src ? src : IMGMETA_SOURCE_DIR);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = 0;
        char *conf = de->d_name[0] == '.' ? NULL : slurp(dir, de->d_name, "case", &len);
        if (conf != NULL) {
            case_is_its_pages_seed(dir, de->d_name, conf);
            n++;
        }
        free(conf);
    }
    closedir(d);
    cr_expect_geq(n, 3);
}
