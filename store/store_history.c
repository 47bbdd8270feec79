/* store_history.c - each tag's history: a change recorded, inside store_put's
 * transaction, whenever the tag is stored pointing somewhere other than where
 * it was last seen, and the changes read back a page at a time, newest
 * first. A change's platforms are kept as a JSON array of [platform, size]
 * pairs (size null when unknown), written by the project's JSON writer and
 * read back with jansson. */
#include "store_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* The longest platforms column written: STORE_HISTORY_PLATFORMS pairs of a
 * platform (each byte escaped at most as \uXXXX) and a size. */
#define PLATFORMS_MAX ((size_t)STORE_HISTORY_PLATFORMS * (6 * STORE_PLATFORM_MAX + 32))

/* A tag's changes are keyed by (registry, repository, tag) and numbered. */
const struct store__sql store__sql_history[] = {
    {ST_HIST_LAST, "SELECT seq, digest FROM tag_history WHERE registry = ?1"
                   " AND repository = ?2 AND tag = ?3 ORDER BY seq DESC LIMIT 1"},
    {ST_HIST_ADD, "INSERT INTO tag_history(registry, repository, tag, seq, seen, digest,"
                  " previous, platforms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    {ST_HIST_TRIM, "DELETE FROM tag_history WHERE registry = ?1 AND repository = ?2"
                   " AND tag = ?3 AND seq <= ?4"},
    {ST_HIST_GET, "SELECT seq, seen, digest, previous, platforms FROM tag_history"
                  " WHERE registry = ?1 AND repository = ?2 AND tag = ?3 AND seq < ?4"
                  " ORDER BY seq DESC LIMIT ?5"},
    {ST__COUNT, NULL},
};

const struct store__sql store__pg_sql_history[] = {
    {ST_HIST_LAST, "SELECT seq, digest FROM tag_history WHERE registry = $1"
                   " AND repository = $2 AND tag = $3 ORDER BY seq DESC LIMIT 1"},
    {ST_HIST_ADD, "INSERT INTO tag_history(registry, repository, tag, seq, seen, digest,"
                  " previous, platforms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
    {ST_HIST_TRIM, "DELETE FROM tag_history WHERE registry = $1 AND repository = $2"
                   " AND tag = $3 AND seq <= $4"},
    {ST_HIST_GET, "SELECT seq, seen, digest, previous, platforms FROM tag_history"
                  " WHERE registry = $1 AND repository = $2 AND tag = $3 AND seq < $4"
                  " ORDER BY seq DESC LIMIT $5"},
    {ST__COUNT, NULL},
};

void store_set_sizes_fn(struct store *s, store_sizes_fn fn)
{
    s->sizes = fn;
}

/* *seq and last (IM_DIGEST_MAX bytes) of the tag's newest change; *seq 0
 * and last "" when it has none. */
static int last_change(struct store__conn *c, const struct im_ref *ref, int64_t *seq,
                       char *last, struct im_error *err)
{
    struct store__q *st = &c->st[ST_HIST_LAST];
    int rc = 0;
    *seq = 0;
    last[0] = '\0';
    int src = store__bind_key(st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src == SQLITE_ROW) {
        const char *d = store__col_text(st, 1);
        *seq = store__col_int(st, 0);
        if (!d || im_strlcpy(last, d, IM_DIGEST_MAX) != 0)
            rc = im_seterr(err, IM_ESTORE, "the history of %s is malformed", ref->tag);
    } else if (src != SQLITE_DONE) {
        rc = store__fail(err, c, "reading the history of %s", ref->tag);
    }
    store__done(st);
    return rc;
}

/* The platforms column for b: "[]" when no function is set or it fails. */
static int platforms_json(const struct store *s, const struct im_ref *ref,
                          const struct im_bundle *b, char **out, struct im_error *err)
{
    struct store_platform_size *p = calloc(STORE_HISTORY_PLATFORMS, sizeof *p);
    struct im_jw w = {.b = {.max = PLATFORMS_MAX}};
    size_t n = 0, len = 0;
    if (!p)
        return im_seterr(err, IM_ENOMEM, "out of memory recording a change");
    if (s->sizes && s->sizes(ref, b, p, STORE_HISTORY_PLATFORMS, &n) != 0)
        n = 0;
    im_jw_open(&w, '[');
    for (size_t i = 0; i < n && i < STORE_HISTORY_PLATFORMS; i++) {
        if (!store__str_ok(p[i].platform, sizeof p[i].platform, true))
            continue;
        im_jw_open(&w, '[');
        im_jw_str(&w, p[i].platform);
        if (p[i].total_size >= 0)
            im_jw_int(&w, p[i].total_size);
        else
            im_jw_raw(&w, "null");
        im_jw_close(&w, ']');
    }
    im_jw_close(&w, ']');
    free(p);
    if (im_buf_finish(&w.b, out, &len) != 0)
        return im_seterr(err, IM_ENOMEM, "out of memory recording a change");
    return 0;
}

static int add_change(struct store__conn *c, const struct im_ref *ref, int64_t seq,
                      int64_t now, const char *digest, const char *previous,
                      const char *platforms, struct im_error *err)
{
    struct store__q *st = &c->st[ST_HIST_ADD];
    int src = store__bind_key(st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 4, seq);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 5, now);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 6, digest);
    if (src == SQLITE_OK)
        src = previous[0] ? store__bind_text(st, 7, previous) : store__bind_null(st, 7);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 8, platforms);
    if (src != SQLITE_OK) {
        int rc = store__fail(err, c, "binding a change of %s", ref->tag);
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_HIST_ADD, "recording a change", err);
}

static int trim(struct store__conn *c, const struct im_ref *ref, int64_t seq,
                struct im_error *err)
{
    struct store__q *st = &c->st[ST_HIST_TRIM];
    int src = store__bind_key(st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 4, seq - STORE_HISTORY_MAX);
    if (src != SQLITE_OK) {
        int rc = store__fail(err, c, "binding the history of %s", ref->tag);
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_HIST_TRIM, "dropping old changes", err);
}

int store__history_note(struct store__conn *c, const struct im_ref *ref,
                        const struct im_bundle *b, int64_t now, struct im_error *err)
{
    char last[IM_DIGEST_MAX];
    char *platforms = NULL;
    int64_t seq = 0;
    int rc = last_change(c, ref, &seq, last, err);
    if (rc || strcmp(last, b->root_digest) == 0)
        return rc;
    rc = platforms_json(c->s, ref, b, &platforms, err);
    if (!rc)
        rc = add_change(c, ref, seq + 1, now, b->root_digest, last, platforms, err);
    if (!rc && seq + 1 > STORE_HISTORY_MAX)
        rc = trim(c, ref, seq + 1, err);
    free(platforms);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

void store_changes_free(struct store_change *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        free(c[i].platforms);
    free(c);
}

/* The platforms column (text) into ch: IM_ESTORE when it is not what
 * platforms_json writes. */
static int read_platforms(const char *text, struct store_change *ch)
{
    json_error_t jerr;
    json_t *arr = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    int rc = json_is_array(arr) && n <= STORE_HISTORY_PLATFORMS ? 0 : IM_ESTORE;
    if (!rc && n > 0 && !(ch->platforms = calloc(n, sizeof *ch->platforms)))
        rc = IM_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *pair = json_array_get(arr, i);
        json_t *name = json_array_get(pair, 0), *size = json_array_get(pair, 1);
        struct store_platform_size *p = &ch->platforms[i];
        if (json_array_size(pair) != 2 || !json_is_string(name) ||
            !(json_is_null(size) || json_is_integer(size)) ||
            im_strlcpy(p->platform, json_string_value(name), sizeof p->platform) != 0 ||
            strlen(p->platform) != json_string_length(name)) {
            rc = IM_ESTORE;
            break;
        }
        p->total_size = json_is_integer(size) ? json_integer_value(size) : -1;
        ch->n_platforms++;
    }
    json_decref(arr);
    return rc;
}

/* The row st is on, into ch. */
static int read_change(struct store__q *st, struct store_change *ch)
{
    const char *digest = store__col_text(st, 2), *prev = store__col_text(st, 3);
    ch->seq = store__col_int(st, 0);
    ch->seen = store__col_int(st, 1);
    if (!digest || im_strlcpy(ch->digest, digest, sizeof ch->digest) != 0 ||
        im_strlcpy(ch->previous, prev ? prev : "", sizeof ch->previous) != 0)
        return IM_ESTORE;
    return read_platforms(store__col_text(st, 4), ch);
}

static int history_check(const struct im_ref *ref, size_t max, struct store_change **out,
                         size_t *n, bool *more, struct im_error *err)
{
    int rc = store__ref_check(ref, true, err);
    if (!rc && (!out || !n || !more || max == 0 || max > STORE_HISTORY_MAX))
        rc = im_seterr(err, IM_EINVAL, "store_get_history: 1 to %d changes, out-params",
                       STORE_HISTORY_MAX);
    return rc;
}

int store_get_history(struct store *s, const struct im_ref *ref, int64_t before,
                      size_t max, struct store_change **out, size_t *n, bool *more,
                      struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store_change *v = NULL;
    size_t got = 0;
    int rc = history_check(ref, max, out, n, more, err);
    if (rc)
        return rc;
    *out = NULL;
    *n = 0;
    *more = false;
    v = calloc(max + 1, sizeof *v);
    rc = v ? store__cursor_open(s, ST_HIST_GET, &cur, err)
           : im_seterr(err, IM_ENOMEM, "out of memory reading a history");
    if (rc)
        goto out;
    int src = store__bind_key(cur.st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__bind_int(cur.st, 4, before > 0 ? before : INT64_MAX);
    if (src == SQLITE_OK)
        src = store__bind_int(cur.st, 5, (int64_t)max + 1); /* one more: are there? */
    while (src == SQLITE_OK && (src = store__step(cur.st)) == SQLITE_ROW) {
        if (got == max) {
            *more = true;
            break;
        }
        rc = read_change(cur.st, &v[got++]);
        if (rc) {
            rc = im_seterr(err, rc, "change %lld of %s does not read back",
                           (long long)v[got - 1].seq, ref->tag);
            goto out;
        }
        src = SQLITE_OK;
    }
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = store__fail(err, cur.c, "reading the history of %s", ref->tag);
out:
    store__cursor_close(&cur);
    if (rc) {
        store_changes_free(v, got);
        return rc;
    }
    *out = v;
    *n = got;
    return 0;
}
