/* render.h - the image model and its two renderers (Markdown, JSON).
 *
 * Everything here is pure: no I/O, no clock, no globals. The model is built
 * from a bundle of verified upstream documents (render_image_build) and both
 * renderers read only the model. Thread-safety: functions are reentrant; a
 * model may be read by several threads at once.
 *
 * Ownership: every pointer inside a struct render_image is owned by it and
 * released by render_image_free. */
#ifndef RENDER_H
#define RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "im.h"

struct render_platform {
    char *os;           /* "linux"; never NULL in a built model ("" if unknown) */
    char *architecture; /* "amd64"; never NULL */
    char *variant;      /* NULL when absent */
    char *os_version;   /* NULL when absent */
    char **os_features; /* n_os_features strings */
    size_t n_os_features;
    char **features;
    size_t n_features;
};

/* A string list that distinguishes "absent" (present == false) from "[]". */
struct render_strv {
    bool present;
    char **v;
    size_t n;
};

struct render_history {
    int64_t created;   /* Unix seconds (fraction dropped), INT64_MIN when absent */
    char *created_raw; /* the string as the config has it; NULL when absent */
    char *created_by;  /* NULL when absent */
    char *comment;     /* NULL when absent */
    bool empty_layer;
    /* schema1 only: container_config.Cmd as an argument list */
    struct render_strv cmd_argv;
};

struct render_layer {
    char *digest;
    int64_t size;          /* bytes; -1 unknown */
    char *media_type;      /* NULL unknown */
    int64_t last_modified; /* Unix seconds; -1 unknown */
    char **urls;
    size_t n_urls;
};

/* One of an image config's labels (config.Labels). */
struct render_label {
    char *key;
    char *value;
};

enum render_kind {
    RENDER_KIND_IMAGE = 0,
    RENDER_KIND_ATTESTATION = 1,
    RENDER_KIND_UNKNOWN = 2,
};

struct render_entry {
    enum render_kind kind;
    struct render_platform platform;
    char *digest;         /* this manifest's digest; NULL for a single manifest */
    char *media_type;     /* this manifest's media type */
    char *docker_version; /* NULL when unknown */
    char *image_id;       /* config digest (schema1: the v1 id); NULL unknown */
    struct render_strv entrypoint;
    struct render_strv cmd;
    struct render_strv shell;
    struct render_label *labels; /* in the config's order; string values only */
    size_t n_labels;
    struct render_history *history;
    size_t n_history;
    struct render_layer *layers;
    size_t n_layers;
    char *attests; /* attestation entries: digest of the image they attest */
    bool schema1;  /* a legacy schema1 manifest (history from v1Compatibility) */
};

struct render_image {
    struct im_ref ref; /* as resolved: tag and/or digest */
    char *digest;      /* what the reference points to */
    char *media_type;  /* its media type */
    bool is_list;      /* a manifest list / OCI index */
    struct render_entry *entries;
    size_t n_entries;
};

/* Builds the model for bundle->root_digest. *out is set on success and must be
 * released with render_image_free (it is NULL on failure). Fails with
 * IM_EPROTO (a document that cannot be understood: bad JSON, unknown media
 * type, missing child manifest or config, a body whose mediaType disagrees
 * with the stored one), with err saying which document and why; IM_ENOMEM.
 * Understands Docker lists and OCI indexes, Docker schema2 and OCI manifests,
 * and legacy schema1 (docs/FORMAT.md). A list entry that is itself an index is
 * listed with kind RENDER_KIND_UNKNOWN and not descended into. Optional fields
 * of the wrong JSON type count as absent. */
int render_image_build(const struct im_ref *ref, const struct im_bundle *bundle,
                       struct render_image **out, struct im_error *err) IM_WUR;
void render_image_free(struct render_image *img);

/* Platform filter: keeps only entries whose platform matches one of the n
 * "os/arch[/variant]" strings (os "" counts as linux, arch "" as amd64; a
 * filter without variant matches every variant), plus the attestation
 * entries of kept images. n == 0 keeps everything. is_list, digest and media
 * type stay. Returns the number of entries kept. */
size_t render_image_filter(struct render_image *img, const char *const *platforms,
                           size_t n);

/* The two forms of the repo-info page (docs/FORMAT.md): the seed's, as the
 * generator wrote it in 2018 ("-\tPlatforms:"), and today's, which prints the
 * number of entries there ("-\tPlatforms: 20"). Nothing else differs. */
enum render_style { RENDER_STYLE_SEED = 0, RENDER_STYLE_CURRENT = 1 };

/* "seed" or "current" into *out: 0, or -1 for any other name (NULL too). */
int render_style_parse(const char *name, enum render_style *out);
/* "seed" or "current". */
const char *render_style_name(enum render_style style);

/* The repo-info Markdown page in the given form, malloc'd, NUL terminated;
 * *len excludes the NUL. Caller frees. IM_ENOMEM. Upstream strings that sit
 * on one line of the page (platform parts, versions, media types, digests)
 * have their control characters written as \xNN, so none can end a line,
 * a list item or a code block early. */
int render_markdown(const struct render_image *img, enum render_style style, char **out,
                    size_t *len) IM_WUR;
/* The page for a tag that does not exist: heading, blank line,
 * "**does not exist** (yet?)" and a final newline (like every page). */
int render_markdown_not_found(const struct im_ref *ref, char **out, size_t *len) IM_WUR;
/* The JSON description (openapi.yaml's Image schema), compact, malloc'd;
 * attestation entries go under "attestations", all others under "platforms".
 * IM_ENOMEM. */
int render_json(const struct render_image *img, char **out, size_t *len) IM_WUR;
/* The compact dashboard view: per platform only platform, digest, total size. */
int render_json_summary(const struct render_image *img, char **out, size_t *len) IM_WUR;

/* ---- a tag's history (render_history.c) ---- */

/* One platform of a change: "linux/amd64" and its total size (-1 unknown). */
struct render_psize {
    const char *platform;
    int64_t total_size;
};
/* One change of a tag: when it was seen (Unix seconds), the digest, the one
 * before (NULL: the first sighting), the platforms. Borrowed strings. */
struct render_change {
    int64_t seen;
    const char *digest;
    const char *previous;
    const struct render_psize *platforms;
    size_t n_platforms;
};
/* The history of ref's tag (changes newest first) as JSON (openapi.yaml's
 * History: {"reference","changes":[{"seen","digest","previousDigest",
 * "platforms":[{"platform","totalSize"}]}]}) or as a Markdown table whose
 * upstream strings are escaped so that no cell, row or the table can be
 * broken. malloc'd; 0, IM_ENOMEM, IM_ETOOBIG. */
int render_history_json(const struct im_ref *ref, const struct render_change *c, size_t n,
                        char **out, size_t *len) IM_WUR;
int render_history_markdown(const struct im_ref *ref, const struct render_change *c,
                            size_t n, char **out, size_t *len) IM_WUR;

/* ---- the difference between two images (render_diff.c) ---- */

/* What changed from `from` to `to`, per platform the two have in common
 * (paired by render_platform_short; attestations and nested indexes left
 * out): total sizes, the layers shared (by digest), added and removed, the
 * Dockerfile lines added and removed (as multisets, in their image's order);
 * and the platforms only one has. JSON (openapi.yaml's Diff) or Markdown for
 * a review comment (upstream strings escaped; Dockerfile lines in a diff
 * block, each physical line prefixed, so none can close it). malloc'd; 0,
 * IM_ENOMEM, IM_ETOOBIG. */
int render_diff_json(const struct render_image *from, const struct render_image *to,
                     char **out, size_t *len) IM_WUR;
int render_diff_markdown(const struct render_image *from, const struct render_image *to,
                         char **out, size_t *len) IM_WUR;

/* "linux/arm/v7": os/architecture[/variant], os "" as linux and architecture
 * "" as amd64 (what ?platform= names). 0, or -1 when buf was too small (it
 * then holds a truncated string). */
int render_platform_short(const struct render_platform *p, char *buf, size_t n);
/* The sum of e's layer sizes; -1 when one is unknown, the sum would
 * overflow or e is a nested index (no total is better than a wrong one). */
int64_t render_entry_total(const struct render_entry *e);

/* The image's HTML page: one self-contained document (inline style and SVG,
 * no script, nothing fetched): a summary table per platform, a chart of the
 * platforms' total sizes, per platform a stacked bar of its layers (a
 * segment per layer, width proportional to bytes, a layer shared between
 * platforms in the same colour in every bar, each with a <title>), the
 * labels and Dockerfile history in <details>, attestation entries in a table of their
 * own, and links to the other representations and the repository's tags.
 * Every upstream string is escaped for where it goes (text, attribute value,
 * SVG <title>). malloc'd, caller frees; IM_ENOMEM, IM_ETOOBIG. */
int render_html(const struct render_image *img, char **out, size_t *len) IM_WUR;
/* render_html with the tag's history (n changes, newest first, as
 * render_history_json reads them; NULL and 0 for none): a chart of each
 * platform's total size over time (time seen across, size up), one series
 * per platform (at most 64, in the page's palette), a circle per change per
 * platform with a known size, each with a <title> (RFC 3339 date, digest,
 * platform, size, all escaped); one change is one point per platform and
 * says so; no changes, no chart. */
int render_html_with_history(const struct render_image *img,
                             const struct render_change *changes, size_t n_changes,
                             char **out, size_t *len) IM_WUR;
/* The home page: a form that asks for a reference (GET /images?ref=). */
int render_html_home(char **out, size_t *len) IM_WUR;
/* One watched image for the home page: its name as the watch list wrote it,
 * its reference (the link to its page), its digest ("" before it was first
 * checked) and each platform's total size (-1 unknown). Borrowed. */
struct render_watched {
    const char *image;
    const struct im_ref *ref;
    const char *digest;
    const struct render_psize *platforms;
    size_t n_platforms;
};
/* The home page with the n watched images listed under the form (a table:
 * image linking to its page, platform, total size, the digest's first 12
 * hex digits; every string escaped); n == 0 is render_html_home. */
int render_html_home_watched(const struct render_watched *w, size_t n, char **out,
                             size_t *len) IM_WUR;
/* The page for a tag that does not exist: its name, "does not exist (yet?)"
 * as the Markdown page says it, and the form to ask for another. */
int render_html_not_found(const struct im_ref *ref, char **out, size_t *len) IM_WUR;

/* ---- formatting rules, public so the unit tests pin them down ---- */

/* "50.9 MB (50868652 bytes)", "239.0 B" (docs/FORMAT.md SIZE); "unknown" for a
 * negative count. Returns snprintf's count. */
int render_size(int64_t bytes, char *buf, size_t n);
/* "Tue, 17 Jul 2018 00:28:04 GMT". Returns 0, or -1 if t cannot be formatted. */
int render_http_date(int64_t t, char *buf, size_t n);
/* "2018-07-17T00:28:04Z" (RFC 3339 UTC, seconds). 0 or -1. */
int render_rfc3339(int64_t t, char *buf, size_t n);
/* Parses RFC 3339 with optional fraction and Z / +hh:mm offset into Unix
 * seconds (fraction dropped). 0 ok, -1 invalid. */
int render_parse_rfc3339(const char *s, int64_t *out);
/* Parses an HTTP date (RFC 7231 IMF-fixdate) into Unix seconds. 0 or -1. */
int render_parse_http_date(const char *s, int64_t *out);
/* "linux; arm variant v7" (docs/FORMAT.md PLATFORM) into buf. 0, or -1 when buf
 * was too small (it then holds a truncated string). */
int render_platform_string(const struct render_platform *p, char *buf, size_t n);
/* Reconstructs the Dockerfile line(s) for a schema2/OCI history created_by
 * (docs/FORMAT.md, "Reconstructing a Dockerfile line"; shell is the image's
 * Shell or NULL: its elements joined by spaces are the one shell known
 * besides "/bin/sh -c"). NULL counts as "" (which gives "RUN ", as the
 * generator writes it). malloc'd, caller frees; NULL on out of memory. */
char *render_dockerfile_line(const char *created_by, const struct render_strv *shell);
/* The same for a schema1 container_config.Cmd argument list: absent (as a
 * missing or null Cmd) or of one element, the string rules above; else
 * "|N" build arguments as "# ARG: "K" => "V"" lines, then the command. */
char *render_dockerfile_argv(const struct render_strv *argv);
/* The page's date of a history entry's created value: RFC 3339 read as
 * leniently as the generator reads it (any digit counts, any separator
 * between date and time, no zone = UTC, fraction dropped); absent, invalid
 * or before 1970 gives the Unix epoch, as on the generator's pages. Writes
 * the RFC 7231 form; 0, or -1 when buf is too small. */
int render_history_date(const char *created, char *buf, size_t n);
/* Display forms of a reference: "python:3.7-slim" (docker.io and library/
 * dropped; other registries keep their host; "name@sha256:..." without a
 * tag) and the pull name "python". 0, or -1 when buf was too small. */
int render_ref_display(const struct im_ref *ref, char *buf, size_t n);
int render_ref_pull_name(const struct im_ref *ref, char *buf, size_t n);
/* The reference as the /images/ route names it, the part after "/images/":
 * "python/3.7-slim", "ghcr.io/org/app/v1", "python@sha256:...",
 * "python:3.7-slim@sha256:..." (a Docker Hub repository whose first segment
 * reads as a host keeps "docker.io/"). 0, or -1 when buf was too small. */
int render_ref_route(const struct im_ref *ref, char *buf, size_t n);

#endif
