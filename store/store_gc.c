/* store_gc.c - housekeeping: purging a reference, garbage collection, the
 * size budget (least recently accessed tags go first), integrity checks and
 * the persistent counters. Every change runs in one transaction, so a crash
 * at any moment leaves either the old or the new state. */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

#define EVICT_BATCH 8
#define BUDGET_LOW_WATER_PCT 80

/* Housekeeping: statistics, repository roots, garbage collection, eviction
 * and the persistent counters. */
const struct store__sql store__sql_gc[] = {
    {ST_STATS, "SELECT (SELECT count(*) FROM documents),"
               " (SELECT coalesce(sum(length(body)), 0) FROM documents),"
               " (SELECT count(*) FROM blobs), (SELECT count(*) FROM tags),"
               " (SELECT count(*) FROM misses),"
               " (SELECT page_count FROM pragma_page_count())"
               " * (SELECT page_size FROM pragma_page_size()),"
               " ((SELECT page_count FROM pragma_page_count())"
               " - (SELECT freelist_count FROM pragma_freelist_count()))"
               " * (SELECT page_size FROM pragma_page_size()),"
               " (SELECT count(*) FROM repo_roots),"
               " (SELECT count(*) FROM rendered),"
               " (SELECT coalesce(sum(length(body)), 0) FROM rendered)"},
    {ST_HAS_REPO_ROOT, "SELECT EXISTS (SELECT 1 FROM repo_roots WHERE registry = ?1"
                       " AND repository = ?2 AND root = ?3)"},
    {ST_GC_MISSES, "DELETE FROM misses WHERE until <= ?1"},
    {ST_GC_MEMBERS, "DELETE FROM members"
                    " WHERE root NOT IN (SELECT im_dkey(root) FROM repo_roots)"},
    {ST_GC_DOCS, "DELETE FROM documents WHERE NOT EXISTS (SELECT 1 FROM members m"
                 " WHERE m.digest = im_dkey(documents.digest) AND m.kind = 0)"},
    {ST_GC_BLOBS, "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM members m"
                  " WHERE m.digest = im_dkey(blobs.digest) AND m.kind = 1)"},
    {ST_ORPHAN_ROOTS, "DELETE FROM repo_roots WHERE NOT EXISTS (SELECT 1 FROM tags t"
                      " WHERE t.registry = repo_roots.registry"
                      " AND t.repository = repo_roots.repository"
                      " AND t.digest = repo_roots.root)"},
    {ST_LRU_TAGS, "SELECT registry, repository, tag FROM tags"
                  " WHERE NOT (registry = ?1 AND repository = ?2 AND tag = ?3)"
                  " ORDER BY accessed_at, checked_at LIMIT ?4"},
    {ST_DEL_TAG, "DELETE FROM tags WHERE registry = ?1 AND repository = ?2 AND tag = ?3"},
    {ST_DEL_MISS_KEY, "DELETE FROM misses WHERE registry = ?1 AND repository = ?2"
                      " AND tag = ?3"},
    {ST_DEL_REPO_ROOT, "DELETE FROM repo_roots WHERE registry = ?1 AND repository = ?2"
                       " AND root = ?3"},
    {ST_DEL_TAGS_TO, "DELETE FROM tags WHERE registry = ?1 AND repository = ?2"
                     " AND digest = ?3"},
    {ST_USED_BYTES, "SELECT ((SELECT page_count FROM pragma_page_count())"
                    " - (SELECT freelist_count FROM pragma_freelist_count()))"
                    " * (SELECT page_size FROM pragma_page_size())"},
    {ST_ADD_COUNTER, "INSERT INTO counters(name, value) VALUES (?1, ?2)"
                     " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value"},
    {ST_GET_COUNTERS, "SELECT name, value FROM counters"},
    /* every stored body, as read back: (kind, name, media type, body, encoding) */
    {ST_CHECK_BODIES, "SELECT 0, digest, media_type, body, encoding FROM documents"
                      " UNION ALL SELECT 1, root, '', body, encoding FROM rendered"},
    {ST_PING, "SELECT 1"},
    {ST_GC_HISTORY, "DELETE FROM tag_history WHERE NOT EXISTS (SELECT 1 FROM tags t"
                    " WHERE t.registry = tag_history.registry"
                    " AND t.repository = tag_history.repository"
                    " AND t.tag = tag_history.tag)"},
    {ST__COUNT, NULL},
};

/* PostgreSQL: the database's size is pg_database_size; what the budget
 * measures is the rows' logical size (bodies, and a fixed cost per small
 * row), which shrinks as soon as rows go (a table's files only shrink at a
 * VACUUM FULL). */
#define PG_USED                                                                          \
    "((SELECT coalesce(sum(octet_length(body)), 0) + 64 * count(*) FROM documents)"      \
    " + 96 * ((SELECT count(*) FROM blobs) + (SELECT count(*) FROM members)"             \
    " + (SELECT count(*) FROM tags) + (SELECT count(*) FROM misses)"                     \
    " + (SELECT count(*) FROM repo_roots))"                                              \
    " + (SELECT coalesce(sum(octet_length(platforms)), 0) + 160 * count(*)"              \
    " FROM tag_history))::bigint"
const struct store__sql store__pg_sql_gc[] = {
    {ST_STATS, "SELECT (SELECT count(*) FROM documents),"
               " (SELECT coalesce(sum(octet_length(body)), 0)::bigint FROM documents),"
               " (SELECT count(*) FROM blobs), (SELECT count(*) FROM tags),"
               " (SELECT count(*) FROM misses), pg_database_size(current_database()),"
               " " PG_USED ", (SELECT count(*) FROM repo_roots), 0::bigint, 0::bigint"},
    {ST_HAS_REPO_ROOT, "SELECT EXISTS (SELECT 1 FROM repo_roots WHERE registry = $1"
                       " AND repository = $2 AND root = $3)"},
    {ST_GC_MISSES, "DELETE FROM misses WHERE until <= $1"},
    {ST_GC_MEMBERS, "DELETE FROM members m WHERE NOT EXISTS (SELECT 1 FROM repo_roots r"
                    " WHERE r.root = m.root)"},
    {ST_GC_DOCS, "DELETE FROM documents d WHERE NOT EXISTS (SELECT 1 FROM members m"
                 " WHERE m.digest = d.digest AND m.kind = 0)"},
    {ST_GC_BLOBS, "DELETE FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM members m"
                  " WHERE m.digest = b.digest AND m.kind = 1)"},
    {ST_ORPHAN_ROOTS, "DELETE FROM repo_roots r WHERE NOT EXISTS (SELECT 1 FROM tags t"
                      " WHERE t.registry = r.registry AND t.repository = r.repository"
                      " AND t.digest = r.root)"},
    {ST_LRU_TAGS, "SELECT registry, repository, tag FROM tags"
                  " WHERE NOT (registry = $1 AND repository = $2 AND tag = $3)"
                  " ORDER BY accessed_at, checked_at LIMIT $4"},
    {ST_DEL_TAG, "DELETE FROM tags WHERE registry = $1 AND repository = $2 AND tag = $3"},
    {ST_DEL_MISS_KEY, "DELETE FROM misses WHERE registry = $1 AND repository = $2"
                      " AND tag = $3"},
    {ST_DEL_REPO_ROOT, "DELETE FROM repo_roots WHERE registry = $1 AND repository = $2"
                       " AND root = $3"},
    {ST_DEL_TAGS_TO, "DELETE FROM tags WHERE registry = $1 AND repository = $2"
                     " AND digest = $3"},
    {ST_USED_BYTES, "SELECT " PG_USED},
    {ST_ADD_COUNTER, "INSERT INTO counters(name, value) VALUES ($1, $2)"
                     " ON CONFLICT (name) DO UPDATE SET value = counters.value"
                     " + excluded.value"},
    {ST_GET_COUNTERS, "SELECT name, value FROM counters"},
    {ST_CHECK_BODIES, "SELECT 0, digest, media_type, body, encoding FROM documents"},
    {ST_PING, "SELECT 1"},
    {ST_GC_HISTORY, "DELETE FROM tag_history h WHERE NOT EXISTS (SELECT 1 FROM tags t"
                    " WHERE t.registry = h.registry AND t.repository = h.repository"
                    " AND t.tag = h.tag)"},
    {ST__COUNT, NULL},
};

/* Steps a statement that returns no row, resets it, adds its changes. */
static int run(struct store__conn *c, enum store__stmt which, int64_t *changes,
               struct im_error *err)
{
    struct store__q *st = &c->st[which];
    int rc = 0;
    if (store__step(st) != SQLITE_DONE)
        rc = store__fail(err, c, "housekeeping statement %d", (int)which);
    else if (changes)
        *changes += store__changes(c);
    store__done(st);
    return rc;
}

/* Binds ?1 ?2 ?3 (registry, repository, key) then runs. */
static int run_keyed(struct store__conn *c, enum store__stmt which, const char *registry,
                     const char *repository, const char *key, int64_t *changes,
                     struct im_error *err)
{
    struct store__q *st = &c->st[which];
    if (store__bind_text(st, 1, registry) != SQLITE_OK ||
        store__bind_text(st, 2, repository) != SQLITE_OK ||
        store__bind_text(st, 3, key) != SQLITE_OK) {
        int rc = store__fail(err, c, "binding %s", key);
        store__done(st);
        return rc;
    }
    return run(c, which, changes, err);
}

/* The history of tags no longer stored, members of unclaimed roots, then
 * documents and blobs nothing holds. */
static int collect(struct store__conn *c, struct store_removed *r, struct im_error *err)
{
    int64_t members = 0;
    int rc = run(c, ST_GC_HISTORY, NULL, err);
    if (!rc)
        rc = run(c, ST_GC_MEMBERS, &members, err);
    if (!rc)
        rc = run(c, ST_GC_RENDERED, &r->rendered, err);
    if (!rc)
        rc = run(c, ST_GC_DOCS, &r->documents, err);
    if (!rc)
        rc = run(c, ST_GC_BLOBS, &r->blobs, err);
    return rc;
}

/* Gives free pages back to the file system (a no-op unless the database was
 * created with auto_vacuum=INCREMENTAL). Outside any transaction. */
static void shrink(struct store__conn *c)
{
    /* failure only means the file stays larger; the pages are reused.
     * PostgreSQL's autovacuum does this for its tables. */
    if (!c->pg)
        (void)sqlite3_exec(c->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
}

/* The end of a removal that went as far as rc says: what nothing holds any
 * more goes too (and, when tags went, every process is told), then the
 * transaction ends, and after a commit the file gives its free pages back. */
static int finish_removal(struct store__conn *c, struct store_removed *r, bool tags,
                          int rc, struct im_error *err)
{
    if (!rc)
        rc = collect(c, r, err);
    if (!rc && tags)
        rc = store__note_tag_removal(c, err);
    rc = store__tx_end(c, rc, err);
    if (!rc)
        shrink(c);
    return rc;
}

int store_gc(struct store *s, int64_t now, struct store_removed *out,
             struct im_error *err)
{
    struct store__conn *c = NULL;
    struct store_removed r;
    memset(&r, 0, sizeof r);
    int rc = store__conn_get(s, &c, err);
    if (rc)
        goto out;
    rc = store__tx_begin(c, err);
    if (rc)
        goto out;
    struct store__q *st = &c->st[ST_GC_MISSES];
    if (store__bind_int(st, 1, now) != SQLITE_OK)
        rc = store__fail(err, c, "binding gc time");
    else
        rc = run(c, ST_GC_MISSES, &r.misses, err);
    rc = finish_removal(c, &r, false, rc, err);
out:
    if (c)
        store__conn_put(s, c);
    if (out)
        *out = r;
    return rc;
}

int store_purge(struct store *s, const struct im_ref *ref, struct store_removed *out,
                struct im_error *err)
{
    struct store__conn *c = NULL;
    struct store_removed r;
    memset(&r, 0, sizeof r);
    int rc = 0;
    if (!ref || !ref->registry[0] || !ref->repository[0] ||
        (!ref->tag[0] && !ref->digest[0])) {
        rc = im_seterr(err, IM_EINVAL, "purge needs a tag or digest reference");
        goto out;
    }
    rc = store__conn_get(s, &c, err);
    if (!rc)
        rc = store__tx_begin(c, err);
    if (rc)
        goto out;
    const char *reg = ref->registry, *repo = ref->repository;
    if (ref->tag[0]) {
        rc = run_keyed(c, ST_DEL_TAG, reg, repo, ref->tag, &r.tags, err);
        if (!rc)
            rc = run_keyed(c, ST_DEL_MISS_KEY, reg, repo, ref->tag, &r.misses, err);
    } else {
        rc = run_keyed(c, ST_DEL_TAGS_TO, reg, repo, ref->digest, &r.tags, err);
        if (!rc)
            rc = run_keyed(c, ST_DEL_REPO_ROOT, reg, repo, ref->digest, &r.roots, err);
        if (!rc)
            rc = run_keyed(c, ST_DEL_MISS_KEY, reg, repo, ref->digest, &r.misses, err);
    }
    /* a purged tag's root goes too unless another tag still points to it */
    if (!rc)
        rc = run(c, ST_ORPHAN_ROOTS, &r.roots, err);
    rc = finish_removal(c, &r, true, rc, err);
out:
    if (c)
        store__conn_put(s, c);
    store__tagmap_flush(s->tags);
    if (out)
        *out = r;
    return rc;
}

static int used_bytes(struct store__conn *c, int64_t *used, struct im_error *err)
{
    struct store__q *st = &c->st[ST_USED_BYTES];
    int rc = 0;
    if (store__step(st) == SQLITE_ROW)
        *used = store__col_int(st, 0);
    else
        rc = store__fail(err, c, "measuring the database");
    store__done(st);
    return rc;
}

/* Deletes up to EVICT_BATCH least recently accessed tags other than keep's;
 * *n gets how many. */
static int evict_lru(struct store__conn *c, const struct im_ref *keep, int64_t *n,
                     struct im_error *err)
{
    char keys[EVICT_BATCH][3][IM_REPOSITORY_MAX];
    int count = 0, rc = 0, src;
    struct store__q *st = &c->st[ST_LRU_TAGS];
    src = store__bind_text(st, 1, keep ? keep->registry : "");
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, keep ? keep->repository : "");
    if (src == SQLITE_OK)
        src = store__bind_text(st, 3, keep ? keep->tag : "");
    if (src == SQLITE_OK)
        src = store__bind_int(st, 4, EVICT_BATCH);
    while (src == SQLITE_OK && count < EVICT_BATCH &&
           (src = store__step(st)) == SQLITE_ROW) {
        for (int i = 0; i < 3; i++) {
            const char *t = store__col_text(st, i);
            im_strlcpy(keys[count][i], t ? t : "", sizeof keys[count][i]);
        }
        count++;
        src = SQLITE_OK;
    }
    if (src != SQLITE_DONE && src != SQLITE_OK)
        rc = store__fail(err, c, "choosing tags to evict");
    store__done(st);
    for (int i = 0; !rc && i < count; i++)
        rc = run_keyed(c, ST_DEL_TAG, keys[i][0], keys[i][1], keys[i][2], n, err);
    return rc;
}

/* One eviction round in one transaction: unclaimed roots, or else every
 * rendered answer (rebuilt from stored data without the network), or else a
 * batch of LRU tags; then what they held. *progress says whether anything
 * went. */
static int evict_round(struct store__conn *c, const struct im_ref *keep,
                       struct store_removed *r, bool *progress, struct im_error *err)
{
    int64_t roots = 0, tags = 0, rendered = 0;
    int rc = store__tx_begin(c, err);
    if (!rc)
        rc = run(c, ST_ORPHAN_ROOTS, &roots, err);
    if (!rc && roots == 0)
        rc = run(c, ST_DROP_RENDERED, &rendered, err);
    if (!rc && roots == 0 && rendered == 0) {
        rc = evict_lru(c, keep, &tags, err);
        if (!rc)
            rc = run(c, ST_ORPHAN_ROOTS, &roots, err);
    }
    rc = finish_removal(c, r, tags > 0, rc, err);
    if (!rc) {
        r->roots += roots;
        r->tags += tags;
        r->rendered += rendered;
    }
    *progress = roots > 0 || tags > 0 || rendered > 0;
    return rc;
}

int store_enforce_budget(struct store *s, int64_t max_bytes, const struct im_ref *keep,
                         int64_t now, struct store_removed *out, struct im_error *err)
{
    struct store__conn *c = NULL;
    struct store_removed r;
    int64_t used = 0;
    bool progress = true;
    memset(&r, 0, sizeof r);
    (void)now;
    int rc = 0;
    if (max_bytes <= 0)
        goto out;
    rc = store__conn_get(s, &c, err);
    if (!rc)
        rc = used_bytes(c, &used, err);
    if (rc || used <= max_bytes)
        goto out;
    int64_t low = max_bytes / 100 * BUDGET_LOW_WATER_PCT;
    while (!rc && progress && used > low) {
        rc = evict_round(c, keep, &r, &progress, err);
        if (!rc)
            rc = used_bytes(c, &used, err);
    }
out:
    if (c)
        store__conn_put(s, c);
    if (r.tags > 0)
        store__tagmap_flush(s->tags);
    if (out)
        *out = r;
    return rc;
}

/* Runs a check pragma; 0 when its first row is "ok", else IM_ESTORE with up
 * to a few of its rows in err. */
static int check_pragma(struct store__conn *c, const char *sql, struct im_error *err)
{
    sqlite3_stmt *st = NULL;
    char found[IM_ERRMSG_MAX - 40] = "";
    size_t off = 0;
    int rc = 0, src;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = store__fail(err, c, "%s", sql);
        goto out;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        int w = snprintf(found + off, sizeof found - off, "%s%s", off ? "; " : "",
                         t ? (const char *)t : "?");
        if (w < 0 || (size_t)w >= sizeof found - off)
            break;
        off += (size_t)w;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = store__fail(err, c, "%s", sql);
    else if (strcmp(found, "ok") != 0)
        rc = im_seterr(err, IM_ESTORE, "%s: %s", sql, found);
out:
    (void)sqlite3_finalize(st);
    return rc;
}

/* One row of ST_CHECK_BODIES: its body inflates, and a document's hashes to
 * its digest. 0, IM_ESTORE with *why, IM_ENOMEM. */
static int check_body(struct store__q *st, struct store__body *b, const char **why)
{
    const char *name = store__col_text(st, 1);
    const char *media = store__col_text(st, 2);
    int rc = store__unpack_column(st, 3, 4, b, why);
    if (rc || store__col_int(st, 0) != 0)
        return rc;
    return store__doc_verify(name, media, b, true, why);
}

/* Reads back every document and rendered answer: IM_ESTORE naming the first
 * corrupt one and how many there are. */
static int check_bodies(struct store__conn *c, struct im_error *err)
{
    struct store__q *st = &c->st[ST_CHECK_BODIES];
    struct store__body b = {0};
    char first[IM_DIGEST_MAX + 100] = "";
    int64_t bad = 0, rows = 0;
    int rc = 0, src = SQLITE_DONE;
    while (!rc && (src = store__step(st)) == SQLITE_ROW) {
        const char *why = "";
        rows++;
        rc = check_body(st, &b, &why);
        if (rc == IM_ESTORE && bad++ == 0) {
            const char *name = store__col_text(st, 1);
            snprintf(first, sizeof first, "%s %s: %s",
                     store__col_int(st, 0) ? "a rendered answer of" : "document",
                     name ? name : "?", why);
        }
        if (rc == IM_ESTORE)
            rc = 0;
    }
    if (rc)
        rc = im_seterr(err, rc, "out of memory reading every body");
    else if (src != SQLITE_DONE)
        rc = store__fail(err, c, "reading every body");
    else if (bad)
        rc =
            im_seterr(err, IM_ESTORE, "%lld of %lld stored bodies are corrupt; first: %s",
                      (long long)bad, (long long)rows, first);
    store__done(st);
    store__body_free(&b);
    return rc;
}

int store_check(struct store *s, struct im_error *err)
{
    struct store__conn *c = NULL;
    int rc = store__conn_get(s, &c, err);
    /* SQLite's own checks of the file; PostgreSQL checks its pages itself */
    if (!rc && !c->pg)
        rc = check_pragma(c, "PRAGMA integrity_check(10)", err);
    if (!rc && !c->pg)
        rc = check_pragma(c, "PRAGMA quick_check(10)", err);
    if (!rc)
        rc = check_bodies(c, err);
    if (c)
        store__conn_put(s, c);
    return rc;
}

/* ---- counters ----------------------------------------------------------- */

int store_add_counters(struct store *s, const struct store_counters *delta,
                       struct im_error *err)
{
    struct store__conn *c = NULL;
    struct store_counters d = *delta;
    int rc = store__conn_get(s, &c, err);
    if (!rc)
        rc = store__tx_begin(c, err);
    for (size_t i = 0; !rc && i < IM_OUTCOME__COUNT; i++) {
        const char *name = im_outcome_words((enum im_outcome)i)->stored;
        int64_t v = d.n[i];
        if (v == 0 || !name)
            continue;
        struct store__q *st = &c->st[ST_ADD_COUNTER];
        if (store__bind_text(st, 1, name) != SQLITE_OK ||
            store__bind_int(st, 2, v) != SQLITE_OK) {
            rc = store__fail(err, c, "binding counter");
            store__done(st);
        } else {
            rc = run(c, ST_ADD_COUNTER, NULL, err);
        }
    }
    if (c)
        rc = store__tx_end(c, rc, err);
    if (c)
        store__conn_put(s, c);
    return rc;
}

int store_get_counters(struct store *s, struct store_counters *out, struct im_error *err)
{
    struct store__conn *c = NULL;
    int src;
    memset(out, 0, sizeof *out);
    int rc = store__conn_get(s, &c, err);
    if (rc)
        return rc;
    struct store__q *st = &c->st[ST_GET_COUNTERS];
    while ((src = store__step(st)) == SQLITE_ROW) {
        const char *name = store__col_text(st, 0);
        for (size_t i = 0; name && i < IM_OUTCOME__COUNT; i++) {
            const char *stored = im_outcome_words((enum im_outcome)i)->stored;
            if (stored && strcmp(name, stored) == 0)
                out->n[i] = store__col_int(st, 1);
        }
    }
    if (src != SQLITE_DONE)
        rc = store__fail(err, c, "reading counters");
    store__done(st);
    store__conn_put(s, c);
    return rc;
}

/* ---- stats and repository roots ---------------------------------------- */

int store_ping(struct store *s, struct im_error *err)
{
    struct store__cursor cur;
    int rc = store__cursor_open(s, ST_PING, &cur, err);
    if (rc)
        return rc;
    if (store__step(cur.st) != SQLITE_ROW)
        rc = store__fail(err, cur.c, "asking the database");
    store__cursor_close(&cur);
    return rc;
}

int store_stats(struct store *s, struct store_stats *out, struct im_error *err)
{
    struct store__cursor cur;
    if (!out)
        return im_seterr(err, IM_EINVAL, "store_stats needs an out-parameter");
    int rc = store__cursor_open(s, ST_STATS, &cur, err);
    if (rc)
        return rc;
    struct store__q *st = cur.st;
    if (store__step(st) != SQLITE_ROW) {
        rc = store__fail(err, cur.c, "counting");
        goto out;
    }
    memset(out, 0, sizeof *out);
    /* in ST_STATS's column order */
    int64_t *const columns[] = {&out->documents,     &out->doc_bytes, &out->blobs,
                                &out->tags,          &out->misses,    &out->bytes,
                                &out->used_bytes,    &out->roots,     &out->rendered,
                                &out->rendered_bytes};
    for (int i = 0; i < (int)(sizeof columns / sizeof columns[0]); i++)
        *columns[i] = store__col_int(st, i);
out:
    store__cursor_close(&cur);
    return rc;
}

int store_has_root(struct store *s, const struct im_ref *ref, const char *root, bool *out,
                   struct im_error *err)
{
    struct store__cursor cur;
    *out = false;
    int rc = store__ref_check(ref, false, err);
    if (!rc)
        rc = store__cursor_open(s, ST_HAS_REPO_ROOT, &cur, err);
    if (rc)
        return rc;
    if (store__bind_key(cur.st, ref, root) != SQLITE_OK)
        rc = store__fail(err, cur.c, "binding repository root %s", root);
    else if (store__step(cur.st) != SQLITE_ROW)
        rc = store__fail(err, cur.c, "looking up repository root %s", root);
    else
        *out = store__col_int(cur.st, 0) != 0;
    store__cursor_close(&cur);
    return rc;
}
