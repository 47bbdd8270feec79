/* test_render.c - the render module's user-visible behaviour: the repo-info
 * page byte for byte, the formatting rules of docs/FORMAT.md, the JSON shape and
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

/* The page of the bundle in the given form (the caller frees it). */
static char *page_of(struct im_bundle *b, enum render_style style)
{
    struct render_image *img = NULL;
    struct im_error err;
    char *md = NULL;
    size_t len = 0;
    cr_assert_eq(build(b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_markdown(img, style, &md, &len), 0);
    cr_assert_eq(strlen(md), len);
    render_image_free(img);
    return md;
}

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

/* ---- Dockerfile lines (docs/FORMAT.md, step by step) ---- */

/* One created_by and the line(s) the generator makes of it, for an image
 * whose config has the Shell `shell` (NULL: none; {NULL} terminated). */
struct dfl_case {
    const char *why;
    const char *created_by;
    const char *const *shell;
    const char *want;
};

static const char *const SH_ASH[] = {"/bin/ash", "-eo", "pipefail", "-c", NULL};
static const char *const SH_DOTS[] = {"/bin/b.sh", "-c", NULL};
static const char *const SH_PWSH[] = {"pwsh", "-Command",
                                      "$ErrorActionPreference = 'Stop'; (x)+[y]*", NULL};
static const char *const SH_CMD[] = {"cmd", "/S", "/C", NULL};
static const char *const SH_DEFAULT[] = {"/bin/sh", "-c", NULL};
static const char *const SH_EMPTY[] = {NULL};

static const struct dfl_case dfl_cases[] = {
    /* the seed page's forms */
    {"no-op CMD (two spaces)", "/bin/sh -c #(nop)  CMD [\"bash\"]", NULL,
     "CMD [\"bash\"]"},
    {"ADD keeps its trailing space", "/bin/sh -c #(nop) ADD file:919939fa in / ", NULL,
     "ADD file:919939fa in / "},
    {"ENV", "/bin/sh -c #(nop)  ENV LANG=C.UTF-8", NULL, "ENV LANG=C.UTF-8"},
    {"RUN keeps tabs",
     "/bin/sh -c apt-get update && apt-get install -y \t\tca-certificates", NULL,
     "RUN apt-get update && apt-get install -y \t\tca-certificates"},
    /* step 1: BuildKit's RUN prefix */
    {"BuildKit RUN", "RUN /bin/sh -c set -eux; apt-get x # buildkit", NULL,
     "RUN set -eux; apt-get x # buildkit"},
    {"BuildKit RUN without a shell", "RUN echo hi # buildkit", NULL,
     "RUN echo hi # buildkit"},
    {"BuildKit COPY", "COPY hello / # buildkit", NULL, "COPY hello / # buildkit"},
    {"RUN before a caps word is not put back", "RUN COPY x", NULL, "COPY x"},
    {"RUNNER is a caps word, not RUN", "RUNNER x", NULL, "RUNNER x"},
    {"RUN without a space is a command", "RUN", NULL, "RUN RUN"},
    /* step 2: build arguments */
    {"build args", "|2 a=b c=d /bin/sh -c x", NULL, "# ARGS: a=b c=d\nRUN x"},
    {"build args, BuildKit", "RUN |1 version=8.4 /bin/sh -c wget x # buildkit", NULL,
     "# ARGS: version=8.4\nRUN wget x # buildkit"},
    {"values with spaces", "|2 A=x y B=z /bin/sh -c make", NULL,
     "# ARGS: A=x y B=z\nRUN make"},
    {"the count is not used (fewer)", "|1 A=1 B=2 /bin/sh -c x", NULL,
     "# ARGS: A=1 B=2\nRUN x"},
    {"the count is not used (more)", "|5 A=1 /bin/sh -c x", NULL, "# ARGS: A=1\nRUN x"},
    {"under the image's SHELL", "|2 A=x y B=z /bin/ash -eo pipefail -c make", SH_ASH,
     "# ARGS: A=x y B=z\nRUN make"},
    {"nine args under SHELL",
     "|9 A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 /bin/ash -eo pipefail -c make", SH_ASH,
     "# ARGS: A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9\nRUN make"},
    {"the other shell is not the image's", "|1 A=1 /bin/ash -eo pipefail -c make", NULL,
     "# unable to parse image command string further:\n"
     "|1 A=1 /bin/ash -eo pipefail -c make"},
    {"exec form with build args", "|2 A=1 B=2 /usr/bin/x y", NULL,
     "# unable to parse image command string further:\n|2 A=1 B=2 /usr/bin/x y"},
    {"exec form, BuildKit",
     "RUN |9 A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 /usr/local/bin/x y", SH_ASH,
     "# unable to parse image command string further:\n"
     "|9 A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 /usr/local/bin/x y"},
    {"the first shell string wins", "|1 A=a /bin/sh -c b /bin/sh -c x", NULL,
     "# ARGS: A=a\nRUN b /bin/sh -c x"},
    {"a shell string inside a value", "|1 A=/bin/sh -c /bin/sh -c x", NULL,
     "# ARGS: A=/bin/sh -c\nRUN x"},
    {"the image's shell string twice",
     "|1 A=1 /bin/ash -eo pipefail -c /bin/ash -eo "
     "pipefail -c x",
     SH_ASH, "# ARGS: A=1\nRUN /bin/ash -eo pipefail -c x"},
    {"|N with no space after it", "|2A=1 /bin/sh -c x", NULL,
     "# unable to parse image command string further:\n|2A=1 /bin/sh -c x"},
    {"| without digits", "|x a=b /bin/sh -c x", NULL,
     "# unable to parse image command string further:\n|x a=b /bin/sh -c x"},
    {"| alone", "|", NULL, "# unable to parse image command string further:\n|"},
    {"args but no shell", "|3 a=b", NULL,
     "# unable to parse image command string further:\n|3 a=b"},
    {"empty args (two spaces)", "|0  /bin/sh -c x", NULL, "# ARGS: \nRUN x"},
    {"the digits' own space is not the one before the shell", "|0 /bin/sh -c x", NULL,
     "# unable to parse image command string further:\n|0 /bin/sh -c x"},
    {"args do not cross a newline", "|1 A=1\nB /bin/sh -c x", NULL,
     "# unable to parse image command string further:\n|1 A=1\nB /bin/sh -c x"},
    {"a newline after the shell is fine", "|1 A=1 /bin/sh -c x\ny", NULL,
     "# ARGS: A=1\nRUN x\ny"},
    {"tabs inside args", "|1 A=\tx /bin/sh -c y", NULL, "# ARGS: A=\tx\nRUN y"},
    {"a tab is not the space before the shell", "|1 A=x\t/bin/sh -c y", NULL,
     "# unable to parse image command string further:\n|1 A=x\t/bin/sh -c y"},
    {"trailing spaces kept", "|1 A=1 /bin/sh -c make  ", NULL, "# ARGS: A=1\nRUN make  "},
    {"a Shell with regex characters is taken literally (.)", "|1 A=1 /bin/bXsh -c x",
     SH_DOTS, "# unable to parse image command string further:\n|1 A=1 /bin/bXsh -c x"},
    {"a Shell with regex characters is taken literally", "|1 A=1 /bin/b.sh -c x", SH_DOTS,
     "# ARGS: A=1\nRUN x"},
    {"a PowerShell SHELL",
     "|1 V=1 pwsh -Command $ErrorActionPreference = 'Stop'; (x)+[y]* "
     "Write-Host hi",
     SH_PWSH, "# ARGS: V=1\nRUN Write-Host hi"},
    /* step 3: one shell prefix */
    {"one shell dropped, not two", "/bin/sh -c /bin/sh -c x", NULL, "RUN /bin/sh -c x"},
    {"the image's shell", "/bin/ash -eo pipefail -c make", SH_ASH, "RUN make"},
    {"a Shell equal to the default", "/bin/sh -c x", SH_DEFAULT, "RUN x"},
    {"an empty Shell list is a single space", " x", SH_EMPTY, "RUN x"},
    {"an empty Shell list after build args", "|1 A=1  x", SH_EMPTY, "# ARGS: A=1\nRUN x"},
    {"an unknown shell stays", "/bin/bash -c x", NULL, "RUN /bin/bash -c x"},
    /* Windows: cmd /S /C is only dropped when it is the image's SHELL */
    {"Windows COPY", "cmd /S /C #(nop) COPY file:22c7ae19 in C: ", NULL,
     "RUN cmd /S /C #(nop) COPY file:22c7ae19 in C: "},
    {"Windows CMD", "cmd /S /C #(nop)  CMD [\"cmd\" \"/C\" \"type C:\\\\hello.txt\"]",
     NULL, "RUN cmd /S /C #(nop)  CMD [\"cmd\" \"/C\" \"type C:\\\\hello.txt\"]"},
    {"Windows base layer", "Apply image 10.0.26100.33438", NULL,
     "RUN Apply image 10.0.26100.33438"},
    {"Windows with cmd as its SHELL",
     "cmd /S /C #(nop) COPY file:22c7ae19 in C: ", SH_CMD, "COPY file:22c7ae19 in C: "},
    /* step 4: no-op steps and instructions */
    {"#(nop) needs a space", "/bin/sh -c #(nop)CMD x", NULL, "RUN #(nop)CMD x"},
    {"#(nop) and a tab", "/bin/sh -c #(nop)\tCMD x", NULL, "RUN #(nop)\tCMD x"},
    {"#(nop) before lower case", "/bin/sh -c #(nop) lower case", NULL, "lower case"},
    {"a caps word stays", "WORKDIR /tmp", NULL, "WORKDIR /tmp"},
    {"an exec-form instruction", "ENTRYPOINT [\"/e.sh\"]", NULL,
     "ENTRYPOINT [\"/e.sh\"]"},
    {"a comment gets RUN", "# debian.sh --arch 'amd64' out/", NULL,
     "RUN # debian.sh --arch 'amd64' out/"},
    {"a caps word needs a space after it", "COPY\tx", NULL, "RUN COPY\tx"},
    {"caps are A-Z only", "A1 x", NULL, "RUN A1 x"},
    {"not ASCII caps", "\xc3\x84PFEL x", NULL, "RUN \xc3\x84PFEL x"},
    /* absent and empty */
    {"empty", "", NULL, "RUN "},
    {"absent", NULL, NULL, "RUN "},
};

/* The case's Shell as the model holds it. */
static struct render_strv case_shell(const char *const *sh, char **buf, size_t n)
{
    struct render_strv s = {.present = sh != NULL};
    for (size_t i = 0; sh && sh[i] && i < n; i++)
        buf[s.n++] = (char *)sh[i];
    s.v = buf;
    return s;
}

Test(dockerfile, format_md_rules)
{
    for (size_t i = 0; i < sizeof dfl_cases / sizeof dfl_cases[0]; i++) {
        const struct dfl_case *c = &dfl_cases[i];
        char *buf[8];
        struct render_strv shell = case_shell(c->shell, buf, 8);
        char *got = render_dockerfile_line(c->created_by, c->shell ? &shell : NULL);
        cr_assert_not_null(got);
        cr_expect_str_eq(got, c->want, "%s: created_by [%s]", c->why,
                         c->created_by ? c->created_by : "(absent)");
        free(got);
    }
}

/* A schema1 container_config.Cmd list and its line(s). */
struct argv_case {
    const char *why;
    const char *const *argv; /* NULL: Cmd absent; else {NULL} terminated */
    const char *want;
};

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct argv_case argv_cases[] = {
    {"no-op, one space dropped", ARGV("/bin/sh", "-c", "#(nop) CMD [\"bash\"]"),
     "CMD [\"bash\"]"},
    {"no-op: exactly \"#(nop) \" goes", ARGV("/bin/sh", "-c", "#(nop)  CMD x"), " CMD x"},
    {"a tab run gets a continuation",
     ARGV("/bin/sh", "-c", "apt-get update \t&& apt-get install x"),
     "RUN apt-get update \\\n\t&& apt-get install x"},
    {"4-space groups, one run", ARGV("/bin/sh", "-c", "a &&        b"),
     "RUN a &&\\\n        b"},
    {"6 spaces: one group, two spaces left", ARGV("/bin/sh", "-c", "a      b"),
     "RUN a\\\n      b"},
    {"a newline: no continuations", ARGV("/bin/sh", "-c", "set -e;\n\tfoo"),
     "RUN set -e;\n\tfoo"},
    {"another list as JSON", ARGV("/bin/echo", "a/b"),
     "RUN [\"\\/bin\\/echo\",\"a\\/b\"]"},
    {"JSON escapes as the generator's",
     ARGV("/bin/echo", "a\x1b\x01\n\t\"\\ \xe2\x80\xa8\xe2\x80\xa9\x7f\xc3\xa9"),
     "RUN [\"\\/bin\\/echo\",\"a\\u001B\\u0001\\n\\t\\\"\\\\ "
     "\\u2028\\u2029\x7f\xc3\xa9\"]"},
    {"a build argument", ARGV("|1", "V=1", "/bin/sh", "-c", "make"),
     "# ARG: \"V\" => \"1\"\nRUN make"},
    {"quotes in a value", ARGV("|1", "GEM_OPTS=--source \"x\"", "/bin/sh", "-c", "m"),
     "# ARG: \"GEM_OPTS\" => \"--source \\\"x\\\"\"\nRUN m"},
    {"a backslash in a value", ARGV("|1", "P=C:\\x", "/bin/sh", "-c", "m"),
     "# ARG: \"P\" => \"C:\\\\x\"\nRUN m"},
    {"a quote in a name", ARGV("|1", "A\"B=1", "/bin/sh", "-c", "m"),
     "# ARG: \"A\\\"B\" => \"1\"\nRUN m"},
    {"no '='", ARGV("|1", "FLAG", "/bin/sh", "-c", "m"),
     "# ARG: \"FLAG\" => \"\"\nRUN m"},
    {"split at the first '='", ARGV("|1", "A=b=c", "/bin/sh", "-c", "m"),
     "# ARG: \"A\" => \"b=c\"\nRUN m"},
    {"an empty value", ARGV("|1", "A=", "/bin/sh", "-c", "m"),
     "# ARG: \"A\" => \"\"\nRUN m"},
    {"two arguments, then JSON", ARGV("|2", "A=1", "B=2", "/bin/x", "y"),
     "# ARG: \"A\" => \"1\"\n# ARG: \"B\" => \"2\"\nRUN [\"\\/bin\\/x\",\"y\"]"},
    {"fewer arguments than announced", ARGV("|3", "A=1"),
     "# ARG: \"A\" => \"1\"\nRUN []"},
    {"|x announces none", ARGV("|x", "a"), "RUN [\"a\"]"},
    {"a count as Perl reads it", ARGV("|1e0", "A=1", "/bin/sh", "-c", "m"),
     "# ARG: \"A\" => \"1\"\nRUN m"},
    {"hex is not a count", ARGV("|0x1", "A=1", "/bin/sh", "-c", "m"),
     "RUN [\"A=1\",\"\\/bin\\/sh\",\"-c\",\"m\"]"},
    {"one string follows the string rules", ARGV("/bin/sh -c #(nop)  CMD [\"x\"]"),
     "CMD [\"x\"]"},
    {"one string with build args", ARGV("|1 A=1 /bin/sh -c m"), "# ARGS: A=1\nRUN m"},
    {"an empty list", (const char *const[]){NULL}, "RUN []"},
    {"absent (or null)", NULL, "RUN "},
};

Test(dockerfile, schema1_argv)
{
    for (size_t i = 0; i < sizeof argv_cases / sizeof argv_cases[0]; i++) {
        const struct argv_case *c = &argv_cases[i];
        char *buf[8];
        struct render_strv argv = case_shell(c->argv, buf, 8);
        char *got = render_dockerfile_argv(&argv);
        cr_assert_not_null(got);
        cr_expect_str_eq(got, c->want, "%s", c->why);
        free(got);
    }
}

/* The dockerfile block's dates, as the generator reads created values. */
Test(date, history_dates)
{
    static const struct {
        const char *created, *want;
    } cases[] = {
        {"2018-07-17T00:28:04.123456789Z", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"2018-07-17T02:28:04+02:00", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"2018-07-16T22:28:04.5-02:00", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"2018-07-17 00:28:04", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"2018-07-17t00:28:04z", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"2018-7-17T0:28:4Z", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"Tue, 17 Jul 2018 00:28:04 GMT", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"1531787284", "Tue, 17 Jul 2018 00:28:04 GMT"},
        {"1970-01-01T00:00:00Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
        /* Go's zero time: a two-digit year in the generator's date library */
        {"0001-01-01T00:00:00Z", "Mon, 01 Jan 2001 00:00:00 GMT"},
        /* before the epoch, invalid or absent: the epoch */
        {"1969-12-31T23:59:59Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"2018-02-30T00:00:00Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"2018-07-17T24:00:00Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"yesterday", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {NULL, "Thu, 01 Jan 1970 00:00:00 GMT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        cr_assert_eq(render_history_date(cases[i].created, buf, sizeof buf), 0);
        cr_expect_str_eq(buf, cases[i].want, "created [%s]",
                         cases[i].created ? cases[i].created : "(absent)");
    }
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
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

/* Today's form differs from the seed's in one line only: the number of
 * entries after "Platforms:". */
Test(page, current_form_counts_the_entries)
{
    struct im_bundle b;
    struct im_ref ref;
    struct render_image *img = NULL;
    struct im_error err = {{0}};
    char *seed = NULL, *cur = NULL;
    size_t seed_len = 0, cur_len = 0;

    load_case("tests/cases/render-python-3.7-slim/bundle.json", &b, &ref);
    cr_assert_eq(render_image_build(&ref, &b, &img, &err), 0, "%s", err.msg);
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &seed, &seed_len), 0);
    cr_assert_eq(render_markdown(img, RENDER_STYLE_CURRENT, &cur, &cur_len), 0);
    const char *at = strstr(seed, "\n-\tPlatforms:\n");
    cr_assert_not_null(at);
    size_t head = (size_t)(at - seed) + strlen("\n-\tPlatforms:");
    cr_assert_eq(cur_len, seed_len + 2);
    cr_expect_eq(memcmp(cur, seed, head), 0);
    cr_expect_eq(memcmp(cur + head, " 7", 2), 0, "got: [%.20s]", cur + head);
    cr_expect_eq(memcmp(cur + head + 2, seed + head, seed_len - head), 0);
    free(seed);
    free(cur);
    render_image_free(img);
    im_bundle_free(&b);
}

Test(page, style_names)
{
    enum render_style st = RENDER_STYLE_CURRENT;
    cr_expect_eq(render_style_parse("seed", &st), 0);
    cr_expect_eq(st, RENDER_STYLE_SEED);
    cr_expect_eq(render_style_parse("current", &st), 0);
    cr_expect_eq(st, RENDER_STYLE_CURRENT);
    cr_expect_eq(render_style_parse("Current", &st), -1);
    cr_expect_eq(render_style_parse("", &st), -1);
    cr_expect_eq(render_style_parse(NULL, &st), -1);
    cr_expect_str_eq(render_style_name(RENDER_STYLE_SEED), "seed");
    cr_expect_str_eq(render_style_name(RENDER_STYLE_CURRENT), "current");
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    cr_expect_str_eq(md, handmade_md);
    cr_expect_eq(len, strlen(handmade_md));
    free(md);
    render_image_free(img);
    im_bundle_free(&b);
}

/* A single manifest: no list MIME, platform from the config (os and
 * architecture only: the config's variant is not shown), no per-entry pull;
 * today's form counts its one entry. */
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    static const char head[] =
        "## `demo:1`\n\n```console\n$ docker pull demo@" D_M1 "\n```\n\n"
        "-\tPlatforms:\n\t-\tlinux; arm\n\n"
        "### `demo:1` - linux; arm\n\n-\tDocker Version: 18.09.1\n"
        "-\tManifest MIME: `" MT_V2 "`\n";
    cr_expect(strncmp(md, head, strlen(head)) == 0, "got:\n%s", md);
    free(md);
    cr_assert_eq(render_markdown(img, RENDER_STYLE_CURRENT, &md, &len), 0);
    cr_expect_not_null(strstr(md, "\n-\tPlatforms: 1\n\t-\tlinux; arm\n\n"), "got:\n%s",
                       md);
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
    cr_assert_eq(render_json(img, &md, &len), 0);
    json_t *j = json_loads(md, 0, NULL);
    cr_assert_not_null(j);
    /* the JSON keeps each entry's own media type; the page prints the constant */
    cr_expect_str_eq(
        json_string_value(json_object_get(
            json_array_get(json_object_get(j, "attestations"), 0), "mediaType")),
        MT_OCI);
    json_decref(j);
    free(md);
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    cr_expect_not_null(strstr(md, "-\tManifest MIME: `" MT_INDEX "`\n-\tPlatforms:\n"
                                  "\t-\tlinux; arm variant v7\n\t-\tunknown; unknown\n"));
    cr_expect_not_null(strstr(md,
                              "### `demo:1` - unknown; unknown\n\n```console\n"
                              "$ docker pull demo@" D_ATT "\n```\n\n"
                              "-\tManifest MIME: `" MT_V2 "`\n"
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
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

/* A list whose JSON has the wrong types is refused (IM_EPROTO, no model) with
 * the message that names what is wrong, never read as some other image. */
Test(errors, wrong_types_do_not_crash)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"[]", D_LIST ": not a JSON object"},
        {"{\"manifests\":{}}", D_LIST ": list without a manifests array"},
        {"{\"manifests\":[1,\"x\",null]}", "list entry without a digest"},
        {"{\"manifests\":[{\"digest\":7}]}", "list entry without a digest"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct im_bundle b;
        im_bundle_init(&b);
        im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
        add_doc(&b, D_LIST, MT_LIST, cases[i].body);
        expect_build_error(&b, cases[i].needle);
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    cr_expect_null(strstr(md, "Total Size"), "total of unknown sizes shown:\n%s", md);
    /* a date the generator cannot read is the epoch on its pages */
    cr_expect_not_null(strstr(md, "# Thu, 01 Jan 1970 00:00:00 GMT\nRUN true\n"),
                       "got:\n%s", md);
    /* no size, no media type: the MIME line is still there, empty */
    cr_expect_not_null(strstr(md, "\t-\t`" D_L1 "`  \n\t\tMIME: \n"), "got:\n%s", md);
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    /* Go's zero time: the generator's date library reads the year 1 as 2001 */
    cr_expect_not_null(strstr(md, "# Mon, 01 Jan 2001 00:00:00 GMT\nWORKDIR /\n"), "%s",
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
    cr_assert_eq(render_markdown(img, RENDER_STYLE_SEED, &md, &len), 0);
    cr_assert_not_null(strstr(md, "\n`````dockerfile\n# Thu, 01 Jan 1970 00:00:00 GMT\n"
                                  "````\n# Injected heading\n`````\n"),
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

/* Upstream strings that sit on one line of the page (platform parts, Docker
 * version, media types) cannot end that line: no heading, list item or fence
 * can be injected through them. */
Test(markdown, control_characters_stay_on_their_line)
{
    struct im_bundle b;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_LIST, sizeof b.root_digest);
    add_doc(&b, D_LIST, MT_LIST,
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_V2 "\","
            "\"digest\":\"" D_M1 "\",\"platform\":{\"os\":\"linux\\n### `evil`\","
            "\"architecture\":\"arm\",\"variant\":\"v7\\r\\n```\","
            "\"features\":[\"a\\n-\\tb\"]}}]}");
    add_doc(&b, D_M1, MT_V2,
            "{\"config\":{\"digest\":\"" D_C1 "\"},\"layers\":[{\"digest\":\"" D_L1
            "\",\"size\":1,\"mediaType\":\"x\\n\\t-\\t`y`\"}]}");
    add_doc(&b, D_C1, MT_CFG,
            "{\"docker_version\":\"18\\n-\\tInjected: 1\\u007f\","
            "\"history\":[{\"created\":\"2019-01-02T03:04:05Z\","
            "\"created_by\":\"/bin/sh -c #(nop)  CMD x\"}]}");
    for (int style = RENDER_STYLE_SEED; style <= RENDER_STYLE_CURRENT; style++) {
        char *md = page_of(&b, (enum render_style)style);
        cr_expect_null(strstr(md, "\n### `evil`"), "%s", md);
        cr_expect_null(strstr(md, "\n-\tInjected"), "%s", md);
        cr_expect_null(strstr(md, "\n\t-\t`y`"), "%s", md);
        cr_expect_null(strstr(md, "\n```\n\n### "), "%s", md);
        cr_expect_not_null(strstr(md, "\t-\tlinux\\x0a### `evil`; arm variant "
                                      "v7\\x0d\\x0a``` ft. a\\x0a-\tb\n"),
                           "%s", md);
        cr_expect_not_null(strstr(md, "-\tDocker Version: 18\\x0a-\tInjected: 1\\x7f\n"),
                           "%s", md);
        cr_expect_not_null(strstr(md, "\t\tMIME: x\\x0a\t-\t`y`\n"), "%s", md);
        /* one heading per entry, one page heading */
        size_t headings = 0;
        for (const char *p = md; (p = strstr(p, "\n### ")) != NULL; p++)
            headings++;
        cr_expect_eq(headings, 1);
        free(md);
    }
    im_bundle_free(&b);
}

/* The generator reads no Shell from a schema1 manifest; a missing Cmd is
 * "RUN "; build arguments are quoted. */
Test(schema1, shell_absent_cmd_and_quoted_args)
{
    struct im_bundle b;

    im_bundle_init(&b);
    im_strlcpy(b.root_digest, D_M1, sizeof b.root_digest);
    add_doc(&b, D_M1, MT_S1,
            "{\"schemaVersion\":1,\"fsLayers\":[],\"history\":["
            "{\"v1Compatibility\":\"{\\\"id\\\":\\\"b\\\",\\\"config\\\":{"
            "\\\"Shell\\\":[\\\"/bin/bash\\\",\\\"-c\\\"]},\\\"created\\\":"
            "\\\"2016-01-02T00:00:00Z\\\",\\\"container_config\\\":{\\\"Cmd\\\":"
            "[\\\"|1\\\",\\\"GEM_OPTS=--source \\\\\\\"x\\\\\\\"\\\",\\\"/bin/sh\\\","
            "\\\"-c\\\",\\\"make\\\"]}}\"},"
            "{\"v1Compatibility\":\"{\\\"id\\\":\\\"a\\\",\\\"created\\\":"
            "\\\"2016-01-01T00:00:00Z\\\"}\"}]}");
    char *md = page_of(&b, RENDER_STYLE_SEED);
    cr_expect_null(strstr(md, "SHELL"), "%s", md);
    cr_expect_not_null(strstr(md, "```dockerfile\n# Fri, 01 Jan 2016 00:00:00 GMT\nRUN \n"
                                  "# Sat, 02 Jan 2016 00:00:00 GMT\n"
                                  "# ARG: \"GEM_OPTS\" => \"--source \\\"x\\\"\"\n"
                                  "RUN make\n```\n"),
                       "%s", md);
    free(md);
    im_bundle_free(&b);
}
