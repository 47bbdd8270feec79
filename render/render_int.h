/* render_int.h - internal to render/: the generator's JSON arrays and the
 * model builder's readers shared by its files (render_model.c,
 * render_schema1.c, render_filter.c). The renderers write into the
 * project's buffer (struct im_buf, common/im.h), bounded by
 * RENDER_OUTPUT_MAX, and check it once, at im_buf_finish. */
#ifndef RENDER_INT_H
#define RENDER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "render.h"

/* The largest page or description rendered (a 7-platform page is 34 KB, its
 * JSON 61 KB): past it, IM_ETOOBIG. */
#define RENDER_OUTPUT_MAX ((size_t)64 << 20)

/* Appends the n strings as a compact JSON array the way the repo-info
 * generator's encoder writes one ('/' as \/, U+2028/U+2029 escaped: see
 * render_dockerfile.c); NULL elements as "". */
void render__json_strv(struct im_buf *b, char *const *v, size_t n);

/* RFC 3339 UTC, or null when t is INT64_MIN or cannot be written
 * (render_json.c). */
struct im_jw;
void render__jw_time(struct im_jw *w, int64_t t);

/* ---- Markdown of upstream text (render_mdtext.c) ---- */

/* s as Markdown text that stays on its line and inside its cell or item:
 * control bytes but tab as \xNN, and every character that could start
 * Markdown's structure or emphasis (\ ` * _ [ ] < > | ! ~ & # ( ) { } +)
 * escaped with a backslash. NULL as "". */
void render__md_text(struct im_buf *b, const char *s);
/* s as a code span when it is made only of letters, digits and : + . _ / @ -
 * (a digest, a reference), else as render__md_text. */
void render__md_code(struct im_buf *b, const char *s);
/* The Dockerfile line (it may hold several physical lines) prefixed with
 * mark ("+ " or "- ") on each physical line (\n, \r or both end one), its
 * control bytes but tab as \xNN: no line of it can start with a fence. */
void render__md_prefixed(struct im_buf *b, const char *mark, const char *line);
/* The Dockerfile line of history entry i of e (render_dockerfile_line or,
 * for schema1, render_dockerfile_argv): malloc'd, NULL on out of memory. */
char *render__history_line(const struct render_entry *e, size_t i);

/* Appends several strings in a row, the list ended by NULL. */
void render__cat(struct im_buf *b, ...);
/* Appends s (NULL as ""), each byte c for which rep(c, esc) gives a
 * replacement (a static string, or esc filled) written as that instead. */
void render__escape(struct im_buf *b, const char *s,
                    const char *(*rep)(unsigned char c, char esc[8]));

/* render__history_line, and the entry's page date in date ("" when it does
 * not fit). */
char *render__history_line_dated(const struct render_entry *e, size_t i, char *date,
                                 size_t n);

/* render_entry_total into *total; false when there is none. */
bool render__total_size(const struct render_entry *e, int64_t *total);
/* e's platform as the pages name it: from the list entry, or for a single
 * manifest from its config, and then os and architecture only; truncated to
 * fit buf. */
void render__entry_platform(const struct render_image *img, const struct render_entry *e,
                            char *buf, size_t n);

/* ---- the model builder (untrusted documents; see render_model.c) ---- */

/* A copy of o[key] when it is a string, else NULL; *oom set when the copy
 * could not be made. */
char *render__get_str(const json_t *o, const char *key, bool *oom);
/* A JSON array of strings; anything else leaves *out absent. 0 or IM_ENOMEM. */
int render__get_strv(const json_t *arr, struct render_strv *out);
/* The same into a (char **, size_t) pair; absent is n == 0. */
int render__get_strs(const json_t *arr, char ***v, size_t *n);
/* A document's body as a JSON object: 0, or IM_EPROTO with err naming it. */
int render__parse_doc(const struct im_doc *doc, json_t **out, struct im_error *err);
/* A history entry's "created" of o: the string as it is and, when it reads
 * as RFC 3339, its time (else INT64_MIN). 0 or IM_ENOMEM. */
int render__read_created(const json_t *o, struct render_history *h);
/* Frees what an entry holds and zeroes it. */
void render__free_entry(struct render_entry *e);
/* Fills e from a schema1 manifest (platform from it when platform_from_config). */
int render__read_schema1(const struct im_bundle *bundle, const struct im_doc *doc,
                         const json_t *manifest, struct render_entry *e,
                         bool platform_from_config, struct im_error *err);

#endif
