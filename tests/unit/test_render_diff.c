/* test_render_diff.c - the diff of two image models and a tag's history:
 * the numbers a reviewer reads (sizes, shared and changed layers, Dockerfile
 * lines, platforms only one side has), and Markdown whose structure hostile
 * upstream text (pipes, backticks, newlines) cannot break. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define DIG(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

/* A hostile Dockerfile line: a fence, a pipe, a newline and a CR. */
#define EVIL "/bin/sh -c echo `x` | y\n```\n| a | b |\r## not a heading"

static struct render_layer from_layers[] = {
    {.digest = DIG("aa"), .size = 10, .last_modified = -1},
    {.digest = DIG("bb"), .size = 20, .last_modified = -1},
    {.digest = DIG("cc"), .size = 5, .last_modified = -1},
};
static struct render_layer to_layers[] = {
    {.digest = DIG("aa"), .size = 10, .last_modified = -1},
    {.digest = DIG("bb"), .size = 20, .last_modified = -1},
    {.digest = DIG("dd"), .size = 7, .last_modified = -1},
};
static struct render_history from_history[] = {
    {.created = INT64_MIN, .created_by = "/bin/sh -c echo same"},
    {.created = INT64_MIN, .created_by = EVIL},
};
static struct render_history to_history[] = {
    {.created = INT64_MIN, .created_by = "/bin/sh -c echo same"},
    {.created = INT64_MIN, .created_by = "/bin/sh -c echo new"},
};

static struct render_entry entry(const char *arch, const char *variant,
                                 struct render_layer *l, size_t nl,
                                 struct render_history *h, size_t nh)
{
    struct render_entry e = {.kind = RENDER_KIND_IMAGE};
    e.platform.os = "linux";
    e.platform.architecture = (char *)arch;
    e.platform.variant = (char *)variant;
    e.layers = l;
    e.n_layers = nl;
    e.history = h;
    e.n_history = nh;
    return e;
}

static void models(struct render_image *from, struct render_entry *fe,
                   struct render_image *to, struct render_entry *te)
{
    fe[0] = entry("amd64", NULL, from_layers, 3, from_history, 2);
    fe[1] = entry("arm64", "v8", from_layers, 1, from_history, 1);
    fe[2] = entry("unknown", NULL, NULL, 0, NULL, 0);
    fe[2].kind = RENDER_KIND_ATTESTATION;
    te[0] = entry("386", NULL, to_layers, 1, to_history, 1);
    te[1] = entry("amd64", NULL, to_layers, 3, to_history, 2);
    memset(from, 0, sizeof *from);
    memset(to, 0, sizeof *to);
    strcpy(from->ref.registry, "docker.io");
    strcpy(from->ref.repository, "library/app");
    strcpy(from->ref.tag, "1");
    to->ref = from->ref;
    strcpy(to->ref.tag, "2");
    from->digest = DIG("01");
    to->digest = DIG("02");
    from->is_list = to->is_list = true;
    from->entries = fe;
    from->n_entries = 3;
    to->entries = te;
    to->n_entries = 2;
}

/* The diff of the two models above, JSON or Markdown (the caller frees it). */
static char *diff_of(bool markdown)
{
    struct render_image from, to;
    struct render_entry fe[3], te[2];
    char *out = NULL;
    size_t len = 0;
    models(&from, fe, &to, te);
    int rc = markdown ? render_diff_markdown(&from, &to, &out, &len)
                      : render_diff_json(&from, &to, &out, &len);
    cr_assert_eq(rc, 0);
    cr_assert_eq(strlen(out), len);
    return out;
}

Test(diff, sizes_layers_lines_and_platforms_only_one_side_has)
{
    char *out = diff_of(false);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    cr_assert_not_null(j, "%s: %s", jerr.text, out);
    json_t *p = json_array_get(json_object_get(j, "platforms"), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "platforms")), 1, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(p, "platform")), "linux/amd64");
    cr_assert_eq(json_integer_value(json_object_get(p, "fromSize")), 35);
    cr_assert_eq(json_integer_value(json_object_get(p, "toSize")), 37);
    cr_assert_eq(json_integer_value(json_object_get(p, "sizeDelta")), 2);
    json_t *sh = json_object_get(p, "shared");
    cr_assert_eq(json_integer_value(json_object_get(sh, "layers")), 2);
    cr_assert_eq(json_integer_value(json_object_get(sh, "bytes")), 30);
    json_t *added = json_object_get(p, "added"), *removed = json_object_get(p, "removed");
    cr_assert_eq(json_array_size(added), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(added, 0), "digest")),
        DIG("dd"));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(added, 0), "size")),
                 7);
    cr_assert_eq(json_array_size(removed), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(removed, 0), "digest")),
        DIG("cc"));
    json_t *da = json_object_get(p, "dockerfileAdded");
    json_t *dr = json_object_get(p, "dockerfileRemoved");
    cr_assert_eq(json_array_size(da), 1);
    cr_assert_str_eq(json_string_value(json_array_get(da, 0)), "RUN echo new");
    cr_assert_eq(json_array_size(dr), 1, "the shared line is in neither: %s", out);
    cr_assert(strstr(json_string_value(json_array_get(dr, 0)), "| a | b |"));
    cr_assert_str_eq(
        json_string_value(json_array_get(json_object_get(j, "onlyInFrom"), 0)),
        "linux/arm64/v8");
    cr_assert_eq(json_array_size(json_object_get(j, "onlyInFrom")), 1,
                 "attestations are left out");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "onlyInTo"), 0)),
                     "linux/386");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "to"), "digest")),
        DIG("02"));
    json_decref(j);
    free(out);
}

Test(diff, markdown_keeps_hostile_dockerfile_lines_inside_the_diff_block)
{
    char *out = diff_of(true);
    char *block = strstr(out, "```diff\n");
    cr_assert_not_null(block, "%s", out);
    /* every line up to the closing fence is a '- ' or '+ ' line */
    int lines = 0;
    char *line = block + strlen("```diff\n");
    while (strncmp(line, "```\n", 4) != 0) {
        cr_assert(line[0] == '-' || line[0] == '+', "a line escaped the block: %s", out);
        cr_assert_eq(line[1], ' ');
        line = strchr(line, '\n');
        cr_assert_not_null(line, "the block never closes: %s", out);
        line++;
        lines++;
    }
    cr_assert_eq(lines, 5, "four physical lines of the removed one, one added: %s", out);
    cr_assert(strstr(out, "- Total size: 35.0 B -> 37.0 B, change +2.0 B\n"), "%s", out);
    cr_assert(strstr(out, "- Shared: 2 layers, 30.0 B"), "%s", out);
    cr_assert(strstr(out, "  - `" DIG("dd") "`: 7.0 B\n"), "%s", out);
    cr_assert(strstr(out, "Only in from: linux/arm64/v8\n"), "%s", out);
    cr_assert(strstr(out, "Only in to: linux/386\n"), "%s", out);
    free(out);
}

/* Unescaped '|' in a table row: its cell borders. */
static int borders(const char *row, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (row[i] == '\\') {
            i++;
            continue;
        }
        k += row[i] == '|';
    }
    return k;
}

Test(history, markdown_rows_keep_their_cells_whatever_the_platform_says)
{
    struct render_psize p[] = {{"linux/amd64", 1234}, {"linux|x\n| evil `|` |", -1}};
    struct render_change c[] = {
        {.seen = 1700000100, .digest = DIG("02"), .previous = DIG("01"), p, 2},
        {.seen = 1700000000, .digest = DIG("01"), .previous = NULL, p, 1},
    };
    struct im_ref ref = {
        .registry = "docker.io", .repository = "library/app", .tag = "1"};
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(render_history_markdown(&ref, c, 2, &out, &len), 0);
    const char *table = strstr(out, "| seen |");
    cr_assert_not_null(table, "%s", out);
    int rows = 0;
    for (const char *r = table; *r; rows++) {
        const char *end = strchr(r, '\n');
        cr_assert_not_null(end);
        cr_assert_eq(borders(r, (size_t)(end - r)), 5, "row %d: %.*s", rows,
                     (int)(end - r), r);
        r = end + 1;
    }
    cr_assert_eq(rows, 4, "header, rule and one row per change: %s", out);
    cr_assert(strstr(out, "| (first seen) |"), "%s", out);
    free(out);
    cr_assert_eq(render_history_json(&ref, c, 2, &out, &len), 0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    cr_assert_not_null(j, "%s", out);
    json_t *ch = json_object_get(j, "changes");
    cr_assert_str_eq(json_string_value(json_object_get(j, "reference")), "app:1");
    cr_assert_eq(json_array_size(ch), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ch, 0), "seen")),
                     "2023-11-14T22:15:00Z");
    cr_assert(json_is_null(json_object_get(json_array_get(ch, 1), "previousDigest")));
    json_t *plat = json_object_get(json_array_get(ch, 0), "platforms");
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(plat, 0), "totalSize")), 1234);
    cr_assert(json_is_null(json_object_get(json_array_get(plat, 1), "totalSize")));
    json_decref(j);
    free(out);
}
