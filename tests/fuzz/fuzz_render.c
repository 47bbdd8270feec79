/* fuzz_render.c - libFuzzer target: documents -> image model -> both renderers.
 *
 * The input is split at NUL bytes into up to 8 documents. Document i gets the
 * digest "d<i>" (so bodies can reference each other as "d1", "d2", ...), the
 * media type picked by its first byte from the table below (one more value:
 * the raw bytes up to the first newline), and the rest as its body; "d0" is
 * the root. Layer blobs "d1".."d3" get HEAD facts. Each
 * chunk is also fed to the string rules (Dockerfile lines, date parsers). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const media_types[] = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "",
    "application/x-unknown",
};
#define N_MEDIA_TYPES (sizeof media_types / sizeof media_types[0])
#define MAX_DOCS 8

static void fuzz_strings(const char *s)
{
    int64_t t;
    char *argv[2] = {(char *)s, (char *)s};
    char *line = render_dockerfile_line(s, NULL);
    free(line);
    line = render_dockerfile_argv(argv, 2);
    free(line);
    (void)render_parse_rfc3339(s, &t);
    (void)render_parse_http_date(s, &t);
}

/* The JSON is written without jansson; jansson must read it and dump the
 * very same bytes back. */
static void check_json(const char *out, size_t len)
{
    json_t *j = json_loadb(out, len, 0, NULL);
    char *again = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!again || strcmp(again, out) != 0)
        abort();
    free(again);
    json_decref(j);
}

static void fuzz_render(const struct render_image *img)
{
    char *out = NULL;
    size_t len = 0;
    /* A built model always renders: failing here is a bug, not bad input. */
    if (render_markdown(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    free(out);
    if (render_json(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_json(out, len);
    free(out);
    if (render_json_summary(img, &out, &len) != 0 || strlen(out) != len)
        abort();
    check_json(out, len);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const filters[] = {"linux/amd64", "linux/arm/v7", "windows/amd64"};
    struct im_bundle b;
    struct im_ref ref;
    struct im_error err;
    struct render_image *img = NULL;
    size_t start = 0, ndocs = 0;

    im_bundle_init(&b);
    memset(&ref, 0, sizeof ref);
    memcpy(ref.registry, "docker.io", sizeof "docker.io");
    memcpy(ref.repository, "library/fuzz", sizeof "library/fuzz");
    memcpy(ref.tag, "latest", sizeof "latest");
    memcpy(b.root_digest, "d0", 3);

    while (start < size && ndocs < MAX_DOCS) {
        const uint8_t *end = memchr(data + start, 0, size - start);
        size_t chunk = end ? (size_t)(end - (data + start)) : size - start;
        char digest[8] = {'d', (char)('0' + ndocs), '\0'};
        unsigned sel = chunk ? data[start] % (N_MEDIA_TYPES + 1) : 0;
        const char *mt = chunk && sel < N_MEDIA_TYPES ? media_types[sel] : "";
        const uint8_t *body = chunk ? data + start + 1 : data + start;
        size_t blen = chunk ? chunk - 1 : 0;
        char raw_mt[IM_MEDIATYPE_MAX];
        if (chunk && sel == N_MEDIA_TYPES) { /* raw bytes up to '\n' as the type */
            const uint8_t *nl = memchr(body, '\n', blen);
            size_t mlen = nl ? (size_t)(nl - body) : 0;
            if (mlen >= sizeof raw_mt)
                mlen = sizeof raw_mt - 1;
            memcpy(raw_mt, body, mlen);
            raw_mt[mlen] = '\0';
            mt = raw_mt;
            if (nl) {
                blen -= (size_t)(nl + 1 - body);
                body = nl + 1;
            }
        }
        char *s = malloc(blen + 1);
        if (s) {
            memcpy(s, body, blen);
            s[blen] = '\0';
            fuzz_strings(s);
            free(s);
        }
        if (im_bundle_add_doc(&b, digest, mt, body, blen) != 0)
            break;
        ndocs++;
        start += chunk + 1;
    }
    for (int i = 1; i <= 3; i++) {
        struct im_blob blob = {.size = 1000 * i,
                               .last_modified = i == 2 ? -1 : 1531787284};
        blob.digest[0] = 'd';
        blob.digest[1] = (char)('0' + i);
        if (im_bundle_add_blob(&b, &blob) != 0)
            break;
    }
    memset(&err, 0, sizeof err);
    if (render_image_build(&ref, &b, &img, &err) == 0) {
        fuzz_render(img);
        (void)render_image_filter(img, filters, size % 4 < 3 ? size % 4 : 3);
        fuzz_render(img);
        render_image_free(img);
    }
    im_bundle_free(&b);
    return 0;
}
