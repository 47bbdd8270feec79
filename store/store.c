/* store.c - the cache's operations: storing a verified resolution in one
 * transaction and loading an answer by root digest (tags, misses and tag
 * memory are store_tags.c's). Each statement is prepared once per connection
 * (store_pool.c), its SQL next to the code that runs it; every use is bind ->
 * step -> copy out -> reset. */
#include "store_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Blob facts: NULL in the database is "unknown" (-1 or "" in struct im_blob),
 * and an unknown never erases a known value. A tag's resolved_at moves only
 * when its digest does (all right-hand sides see the old row). members holds
 * digests as keys: members are looked up by im_dkey(digest), the rows they
 * name by im_dtext(key) (store_pool.c), so every lookup goes through an
 * index. */
const struct store__sql store__sql_put[] = {
    {ST_HAS_DOC, "SELECT EXISTS (SELECT 1 FROM documents WHERE digest = ?1)"},
    {ST_PUT_DOC, "INSERT OR REPLACE INTO documents(digest, media_type, body, fetched_at,"
                 " encoding) VALUES (?1, ?2, ?3, ?4, ?5)"},
    {ST_PUT_BLOB, "INSERT INTO blobs(digest, media_type, size, last_modified, checked_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (digest) DO UPDATE SET"
                  " media_type = coalesce(excluded.media_type, media_type),"
                  " size = coalesce(excluded.size, size),"
                  " last_modified = coalesce(excluded.last_modified, last_modified),"
                  " checked_at = max(checked_at, excluded.checked_at)"},
    {ST_PUT_MEMBER, "INSERT OR IGNORE INTO members(root, digest, kind)"
                    " VALUES (im_dkey(?1), im_dkey(?2), ?3)"},
    {ST_ROOT_OK, "SELECT EXISTS (SELECT 1 FROM members m JOIN documents d"
                 " ON d.digest = ?1 WHERE m.root = im_dkey(?1)"
                 " AND m.digest = im_dkey(?1) AND m.kind = 0)"},
    {ST_PUT_TAG, "INSERT INTO tags(registry, repository, tag, digest, resolved_at,"
                 " checked_at, accessed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)"
                 " ON CONFLICT (registry, repository, tag) DO UPDATE SET"
                 " resolved_at = CASE WHEN digest = excluded.digest THEN resolved_at"
                 " ELSE excluded.resolved_at END,"
                 " digest = excluded.digest, checked_at = excluded.checked_at,"
                 " accessed_at = max(accessed_at, excluded.accessed_at)"},
    {ST_DEL_MISS, "DELETE FROM misses WHERE registry = ?1 AND repository = ?2"
                  " AND tag = ?3"},
    /* in the order of members' primary key, so no sort (a digest kept as
     * text comes before the sha256 ones) */
    {ST_LOAD, "SELECT m.kind, im_dtext(m.digest), d.media_type, d.body, b.media_type,"
              " b.size, b.last_modified, coalesce(d.digest, b.digest) IS NOT NULL,"
              " b.checked_at, d.encoding"
              " FROM members m"
              " LEFT JOIN documents d ON m.kind = 0 AND d.digest = im_dtext(m.digest)"
              " LEFT JOIN blobs b ON m.kind = 1 AND b.digest = im_dtext(m.digest)"
              " WHERE m.root = im_dkey(?1) ORDER BY m.digest, m.kind"},
    {ST_PUT_REPO_ROOT, "INSERT OR IGNORE INTO repo_roots(registry, repository, root)"
                       " VALUES (?1, ?2, ?3)"},
    {ST__COUNT, NULL},
};

/* The same in PostgreSQL's dialect: members hold digests as text. */
const struct store__sql store__pg_sql_put[] = {
    {ST_HAS_DOC, "SELECT EXISTS (SELECT 1 FROM documents WHERE digest = $1)"},
    {ST_PUT_DOC, "INSERT INTO documents(digest, media_type, body, fetched_at, encoding)"
                 " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO UPDATE SET"
                 " media_type = excluded.media_type, body = excluded.body,"
                 " fetched_at = excluded.fetched_at, encoding = excluded.encoding"},
    {ST_PUT_BLOB,
     "INSERT INTO blobs(digest, media_type, size, last_modified, checked_at)"
     " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO UPDATE SET"
     " media_type = coalesce(excluded.media_type, blobs.media_type),"
     " size = coalesce(excluded.size, blobs.size),"
     " last_modified = coalesce(excluded.last_modified, blobs.last_modified),"
     " checked_at = greatest(blobs.checked_at, excluded.checked_at)"},
    {ST_PUT_MEMBER, "INSERT INTO members(root, digest, kind) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING"},
    {ST_ROOT_OK, "SELECT EXISTS (SELECT 1 FROM members m JOIN documents d"
                 " ON d.digest = $1 WHERE m.root = $1 AND m.digest = $1 AND m.kind = 0)"},
    {ST_PUT_TAG, "INSERT INTO tags(registry, repository, tag, digest, resolved_at,"
                 " checked_at, accessed_at) VALUES ($1, $2, $3, $4, $5, $5, $5)"
                 " ON CONFLICT (registry, repository, tag) DO UPDATE SET"
                 " resolved_at = CASE WHEN tags.digest = excluded.digest"
                 " THEN tags.resolved_at ELSE excluded.resolved_at END,"
                 " digest = excluded.digest, checked_at = excluded.checked_at,"
                 " accessed_at = greatest(tags.accessed_at, excluded.accessed_at)"},
    {ST_DEL_MISS, "DELETE FROM misses WHERE registry = $1 AND repository = $2"
                  " AND tag = $3"},
    {ST_LOAD, "SELECT m.kind, m.digest, d.media_type, d.body, b.media_type,"
              " b.size, b.last_modified, coalesce(d.digest, b.digest) IS NOT NULL,"
              " b.checked_at, d.encoding"
              " FROM members m"
              " LEFT JOIN documents d ON m.kind = 0 AND d.digest = m.digest"
              " LEFT JOIN blobs b ON m.kind = 1 AND b.digest = m.digest"
              " WHERE m.root = $1 ORDER BY m.digest, m.kind"},
    {ST_PUT_REPO_ROOT, "INSERT INTO repo_roots(registry, repository, root)"
                       " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"},
    {ST__COUNT, NULL},
};

static int bind_int_or_null(struct store__q *st, int i, int64_t v)
{
    return v == -1 ? store__bind_null(st, i) : store__bind_int(st, i, v);
}

/* ---- store_put ---------------------------------------------------------- */

static int put_check(const struct im_ref *ref, const struct im_bundle *b,
                     struct im_error *err)
{
    if (!b || !store__str_ok(b->root_digest, sizeof b->root_digest, true))
        return im_seterr(err, IM_EINVAL, "store_put: the bundle has no root digest");
    if (ref && ref->tag[0] != '\0') {
        int rc = store__ref_check(ref, true, err);
        if (rc)
            return rc;
        if (ref->digest[0] != '\0' && strcmp(ref->digest, b->root_digest) != 0)
            return im_seterr(err, IM_EINVAL,
                             "store_put: reference digest %s is not the "
                             "bundle's root %s",
                             ref->digest, b->root_digest);
    }
    for (size_t i = 0; i < b->ndocs; i++) {
        const struct im_doc *d = &b->docs[i];
        if (!store__str_ok(d->digest, sizeof d->digest, true) ||
            !store__str_ok(d->media_type, sizeof d->media_type, false) ||
            (!d->body && d->len))
            return im_seterr(err, IM_EINVAL, "store_put: document %zu is malformed", i);
    }
    for (size_t i = 0; i < b->nblobs; i++) {
        const struct im_blob *bl = &b->blobs[i];
        if (!store__str_ok(bl->digest, sizeof bl->digest, true) ||
            !store__str_ok(bl->media_type, sizeof bl->media_type, false) || bl->size < -1)
            return im_seterr(err, IM_EINVAL, "store_put: blob %zu is malformed", i);
    }
    return 0;
}

static int put_member(struct store__conn *c, const char *root, const char *digest,
                      int kind, struct im_error *err)
{
    struct store__q *st = &c->st[ST_PUT_MEMBER];
    int src = store__bind_text(st, 1, root);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, digest);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 3, kind);
    if (src != SQLITE_OK) {
        int rc = store__fail(err, c, "binding member %s", digest);
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_PUT_MEMBER, "storing a member", err);
}

/* *stored: digest's document is stored already (it is kept as it is). */
static int has_doc(struct store__conn *c, const char *digest, bool *stored,
                   struct im_error *err)
{
    struct store__q *st = &c->st[ST_HAS_DOC];
    int rc = 0;
    if (store__bind_text(st, 1, digest) != SQLITE_OK || store__step(st) != SQLITE_ROW)
        rc = store__fail(err, c, "looking up document %s", digest);
    else
        *stored = store__col_int(st, 0) != 0;
    store__done(st);
    return rc;
}

/* *intact: digest's document is stored and reads back (a deflated row whose
 * stream, length or checksum is damaged does not): only then is it kept as
 * it is; a damaged one is written again from the bundle, so the cache heals
 * at the next resolution instead of sending every render upstream. */
static int doc_intact(struct store__conn *c, const char *digest, bool *intact,
                      struct im_error *err)
{
    struct store__q *st = &c->st[ST_KNOWN_DOC]; /* media_type, body, encoding */
    struct store__body body = {0};
    const char *why = "";
    int rc = 0;
    *intact = false;
    int src = store__bind_text(st, 1, digest);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src == SQLITE_ROW) {
        rc = store__unpack_doc(st, 1, 2, digest, store__col_text(st, 0), &body, &why);
        *intact = rc == 0;
        if (rc == IM_ESTORE)
            rc = 0;
        else if (rc)
            rc = im_seterr(err, rc, "out of memory reading document %s", digest);
    } else if (src != SQLITE_DONE) {
        rc = store__fail(err, c, "looking up document %s", digest);
    }
    store__done(st);
    store__body_free(&body);
    return rc;
}

/* row: d's body as it is kept (store__pack), or nothing yet (p NULL). */
static int pack_doc(const struct im_doc *d, struct store__body *row, struct im_error *err)
{
    if (row->p || store__pack(d->body, d->len, row) == 0)
        return 0;
    return im_seterr(err, IM_ENOMEM, "out of memory storing document %s", d->digest);
}

/* The rows of b's documents that are not stored yet, deflated before the
 * write lock is taken (other writers wait while it is held): rows[i] for
 * docs[i], p NULL for one found stored. put_doc looks again. */
static int pack_new_docs(struct store__conn *c, const struct im_bundle *b,
                         struct store__body *rows, struct im_error *err)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < b->ndocs; i++) {
        bool stored = false;
        rc = has_doc(c, b->docs[i].digest, &stored, err);
        if (!rc && !stored)
            rc = pack_doc(&b->docs[i], &rows[i], err);
    }
    return rc;
}

/* Inserts d's row (packed now if it was not before). */
static int insert_doc(struct store__conn *c, const struct im_doc *d,
                      struct store__body *row, int64_t now, struct im_error *err)
{
    struct store__q *st = &c->st[ST_PUT_DOC];
    int rc = pack_doc(d, row, err);
    if (rc)
        return rc;
    int src = store__bind_text(st, 1, d->digest);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, d->media_type);
    /* a zero-length body is an empty BLOB, never NULL */
    if (src == SQLITE_OK)
        src = row->len ? store__bind_blob(st, 3, row->p, row->len)
                       : store__bind_blob(st, 3, "", 0);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 4, now);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 5, row->encoding);
    if (src != SQLITE_OK) {
        rc = store__fail(err, c, "binding document %s", d->digest);
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_PUT_DOC, "storing a document", err);
}

static int put_doc(struct store__conn *c, const char *root, const struct im_doc *d,
                   struct store__body *row, int64_t now, struct im_error *err)
{
    bool intact = false;
    int rc = doc_intact(c, d->digest, &intact, err);
    if (!rc && !intact)
        rc = insert_doc(c, d, row, now, err);
    if (!rc)
        rc = put_member(c, root, d->digest, STORE__KIND_DOC, err);
    return rc;
}

static int put_blob(struct store__conn *c, const char *root, const struct im_blob *bl,
                    int64_t now, struct im_error *err)
{
    struct store__q *st = &c->st[ST_PUT_BLOB];
    int rc = 0;
    int src = store__bind_text(st, 1, bl->digest);
    if (src == SQLITE_OK)
        src = bl->media_type[0] ? store__bind_text(st, 2, bl->media_type)
                                : store__bind_null(st, 2);
    if (src == SQLITE_OK)
        src = bind_int_or_null(st, 3, bl->size);
    if (src == SQLITE_OK)
        src = bind_int_or_null(st, 4, bl->last_modified);
    /* facts taken from the cache keep the time the registry gave them: storing
     * them again for another image does not make them younger (--layer-ttl) */
    if (src == SQLITE_OK)
        src = store__bind_int(
            st, 5, bl->checked_at > 0 && bl->checked_at < now ? bl->checked_at : now);
    if (src != SQLITE_OK) {
        rc = store__fail(err, c, "binding blob %s", bl->digest);
        store__done(st);
        goto out;
    }
    rc = store__step_done(c, ST_PUT_BLOB, "storing a blob", err);
    if (!rc)
        rc = put_member(c, root, bl->digest, STORE__KIND_BLOB, err);
out:
    return rc;
}

/* After the bundle's rows are in: the root must be stored as a root, else a
 * tag would point at an answer store_load cannot give. */
static int check_root(struct store__conn *c, const char *root, struct im_error *err)
{
    struct store__q *st = &c->st[ST_ROOT_OK];
    int rc = 0;
    if (store__bind_text(st, 1, root) != SQLITE_OK || store__step(st) != SQLITE_ROW) {
        rc = store__fail(err, c, "checking root %s", root);
        goto out;
    }
    if (store__col_int(st, 0) == 0)
        rc = im_seterr(err, IM_EINVAL,
                       "store_put: root document %s is neither in the "
                       "bundle nor stored",
                       root);
out:
    store__done(st);
    return rc;
}

static int put_tag(struct store__conn *c, const struct im_ref *ref, const char *root,
                   int64_t now, struct im_error *err)
{
    struct store__q *st = &c->st[ST_PUT_TAG];
    int rc = 0;
    int src = store__bind_key(st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 4, root);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 5, now);
    if (src != SQLITE_OK) {
        rc = store__fail(err, c, "binding tag %s", ref->tag);
        store__done(st);
        goto out;
    }
    rc = store__step_done(c, ST_PUT_TAG, "storing a tag", err);
    if (rc)
        goto out;
    st = &c->st[ST_DEL_MISS];
    if (store__bind_key(st, ref, ref->tag) != SQLITE_OK) {
        rc = store__fail(err, c, "binding miss %s", ref->tag);
        store__done(st);
        goto out;
    }
    rc = store__step_done(c, ST_DEL_MISS, "forgetting a miss", err);
out:
    return rc;
}

static int put_repo_root(struct store__conn *c, const struct im_ref *ref,
                         const char *root, struct im_error *err)
{
    struct store__q *st = &c->st[ST_PUT_REPO_ROOT];
    if (store__bind_key(st, ref, root) != SQLITE_OK) {
        int rc = store__fail(err, c, "binding repository root %s", root);
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_PUT_REPO_ROOT, "recording the repository of a root",
                            err);
}

static int put_rows(struct store__conn *c, const struct im_ref *ref,
                    const struct im_bundle *b, struct store__body *rows, int64_t now,
                    struct im_error *err)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < b->ndocs; i++)
        rc = put_doc(c, b->root_digest, &b->docs[i], &rows[i], now, err);
    for (size_t i = 0; !rc && i < b->nblobs; i++)
        rc = put_blob(c, b->root_digest, &b->blobs[i], now, err);
    if (!rc)
        rc = check_root(c, b->root_digest, err);
    if (!rc)
        rc = store__forget_rendered(c, b->root_digest, err);
    if (!rc && ref)
        rc = put_repo_root(c, ref, b->root_digest, err);
    if (!rc && ref && ref->tag[0] != '\0')
        rc = store__history_note(c, ref, b, now, err);
    if (!rc && ref && ref->tag[0] != '\0')
        rc = put_tag(c, ref, b->root_digest, now, err);
    return rc;
}

int store_put(struct store *s, const struct im_ref *ref, const struct im_bundle *bundle,
              int64_t now, struct im_error *err)
{
    struct store__conn *c = NULL;
    struct store__body *rows = NULL;
    int rc = put_check(ref, bundle, err);
    if (rc)
        goto out;
    rows = calloc(bundle->ndocs + 1, sizeof *rows);
    if (!rows) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory storing %s", bundle->root_digest);
        goto out;
    }
    rc = store__conn_get(s, &c, err);
    if (!rc)
        rc = pack_new_docs(c, bundle, rows, err);
    if (rc)
        goto out;
    rc = store__tx_begin(c, err);
    if (rc)
        goto out;
    rc = store__tx_end(c, put_rows(c, ref, bundle, rows, now, err), err);
out:
    if (c)
        store__conn_put(s, c);
    /* the tag's row and its miss changed (after the commit: see write_keyed) */
    if (c && ref && ref->tag[0] != '\0')
        store__tagmap_forget(s->tags, ref, ref->tag);
    for (size_t i = 0; rows && i < bundle->ndocs; i++)
        store__body_free(&rows[i]);
    free(rows);
    return rc;
}

/* ---- store_load --------------------------------------------------------- */

/* Copies one row of ST_LOAD into out (body: where a deflated one is
 * inflated, reused from row to row). */
static int load_row(struct store__q *st, const char *root, struct im_bundle *out,
                    bool *have_root, struct store__body *body, struct im_error *err)
{
    int kind = store__col_int(st, 0);
    const char *digest = store__col_text(st, 1);
    int rc = 0;
    if (!digest)
        return im_seterr(err, IM_ENOMEM, "out of memory loading %s", root);
    if (store__col_int(st, 7) == 0)
        return im_seterr(err, IM_ENOTFOUND,
                         "the stored answer for %s is incomplete "
                         "(%s is missing)",
                         root, digest);
    if (kind == STORE__KIND_DOC) {
        const char *media = store__col_text(st, 2);
        const char *why = "";
        if (!media)
            return im_seterr(err, IM_ENOMEM, "out of memory loading %s", digest);
        rc = store__unpack_doc(st, 3, 9, digest, media, body, &why);
        if (rc == IM_ESTORE)
            return im_seterr(err, IM_ESTORE, "stored document %s is corrupt (%s)", digest,
                             why);
        if (!rc)
            rc = im_bundle_add_doc(out, digest, media, body->p, body->len);
        if (!rc && strcmp(digest, root) == 0)
            *have_root = true;
    } else {
        const char *media = store__col_text(st, 4);
        struct im_blob bl;
        memset(&bl, 0, sizeof bl);
        if (im_strlcpy(bl.digest, digest, sizeof bl.digest) != 0 ||
            im_strlcpy(bl.media_type, media ? media : "", sizeof bl.media_type) != 0)
            rc = IM_EINVAL;
        bl.size = store__column_int_or_unknown(st, 5);
        bl.last_modified = store__column_int_or_unknown(st, 6);
        bl.checked_at = store__col_int(st, 8);
        if (!rc)
            rc = im_bundle_add_blob(out, &bl);
    }
    if (rc == IM_EINVAL)
        rc = im_seterr(err, IM_ESTORE, "stored row for %s is malformed", digest);
    else if (rc)
        rc = im_seterr(err, IM_ENOMEM, "out of memory loading %s", digest);
    return rc;
}

int store_load(struct store *s, const char *root_digest, struct im_bundle *out,
               struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    struct store__body body = {0};
    bool have_root = false, filling = false;
    int rc = 0;
    if (!root_digest || !store__str_ok(root_digest, IM_DIGEST_MAX, true) || !out ||
        out->ndocs || out->nblobs) {
        rc = im_seterr(err, IM_EINVAL, "store_load needs a digest and an empty bundle");
        goto out;
    }
    rc = store__cursor_open(s, ST_LOAD, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    if (store__bind_text(st, 1, root_digest) != SQLITE_OK) {
        rc = store__fail(err, cur.c, "binding %s", root_digest);
        goto out;
    }
    filling = true;
    for (;;) {
        int src = store__step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = store__fail(err, cur.c, "loading %s", root_digest);
            goto out;
        }
        rc = load_row(st, root_digest, out, &have_root, &body, err);
        if (rc)
            goto out;
    }
    if (!have_root) {
        rc = im_seterr(err, IM_ENOTFOUND, "%s is not stored", root_digest);
        goto out;
    }
    im_strlcpy(out->root_digest, root_digest, sizeof out->root_digest);
out:
    store__cursor_close(&cur);
    store__body_free(&body);
    if (rc && filling)
        im_bundle_free(out);
    return rc;
}
