/* store_known.c - what a resolution need not fetch again: documents by
 * digest, and layer facts a registry gave for another of its images
 * (store.h). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* What a resolution need not fetch. */
const struct store__sql store__sql_known[] = {
    /* A layer's row answers for a registry when some root of that registry
     * holds it. */
    {ST_KNOWN_DOC, "SELECT media_type, body, encoding FROM documents WHERE digest = ?1"},
    {ST_KNOWN_BLOB,
     "SELECT b.media_type, b.size, b.last_modified, b.checked_at FROM blobs b"
     " WHERE b.digest = ?1 AND b.checked_at >= ?3 AND EXISTS ("
     "SELECT 1 FROM members m JOIN repo_roots r ON r.root = im_dtext(m.root)"
     " WHERE m.digest = im_dkey(?1) AND m.kind = 1 AND r.registry = ?2)"},
    {ST__COUNT, NULL},
};

const struct store__sql store__pg_sql_known[] = {
    {ST_KNOWN_DOC, "SELECT media_type, body, encoding FROM documents WHERE digest = $1"},
    {ST_KNOWN_BLOB,
     "SELECT b.media_type, b.size, b.last_modified, b.checked_at FROM blobs b"
     " WHERE b.digest = $1 AND b.checked_at >= $3 AND EXISTS ("
     "SELECT 1 FROM members m JOIN repo_roots r ON r.root = m.root"
     " WHERE m.digest = $1 AND m.kind = 1 AND r.registry = $2)"},
    {ST__COUNT, NULL},
};

static bool digest_ok(const char *digest)
{
    return digest && store__str_ok(digest, IM_DIGEST_MAX, true);
}

int store_find_doc(struct store *s, const char *digest, struct im_doc *out,
                   struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    struct store__body body = {0};
    const char *why = "";
    int rc = 0;
    if (!digest_ok(digest) || !out) {
        rc = im_seterr(err, IM_EINVAL,
                       "store_find_doc needs a digest and an out-parameter");
        goto out;
    }
    memset(out, 0, sizeof *out);
    rc = store__cursor_open(s, ST_KNOWN_DOC, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    int src = store__bind_text(st, 1, digest);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src == SQLITE_DONE) {
        rc = im_seterr(err, IM_ENOTFOUND, "%s is not stored", digest);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store__fail(err, cur.c, "reading %s", digest);
        goto out;
    }
    const char *media = store__col_text(st, 0);
    if (!media || im_strlcpy(out->media_type, media, sizeof out->media_type) != 0 ||
        store__col_bytes(st, 1) <= 0) {
        rc = im_seterr(err, IM_ESTORE, "stored document %s is malformed", digest);
        goto out;
    }
    rc = store__unpack_doc(st, 1, 2, digest, media, &body, &why);
    if (rc == IM_ESTORE) {
        rc = im_seterr(err, rc, "stored document %s is corrupt (%s)", digest, why);
        goto out;
    }
    if (!rc)
        out->len = body.len;
    if (!rc)
        rc = store__body_take(&body, &out->body);
    if (rc) {
        out->len = 0;
        rc = im_seterr(err, IM_ENOMEM, "out of memory reading %s", digest);
        goto out;
    }
    im_strlcpy(out->digest, digest, sizeof out->digest);
out:
    store__cursor_close(&cur);
    store__body_free(&body);
    return rc;
}

int store_find_blob(struct store *s, const char *registry, const char *digest,
                    int64_t since, struct im_blob *out, struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    int rc = 0;
    if (!digest_ok(digest) || !registry || !registry[0] || !out) {
        rc = im_seterr(err, IM_EINVAL,
                       "store_find_blob needs a registry, a digest and an out-parameter");
        goto out;
    }
    memset(out, 0, sizeof *out);
    rc = store__cursor_open(s, ST_KNOWN_BLOB, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    int src = store__bind_text(st, 1, digest);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, registry);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 3, since);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src == SQLITE_DONE) {
        rc = im_seterr(err, IM_ENOTFOUND, "no fact about %s from %s", digest, registry);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store__fail(err, cur.c, "reading %s", digest);
        goto out;
    }
    const char *media = store__col_text(st, 0);
    if (im_strlcpy(out->media_type, media ? media : "", sizeof out->media_type) != 0) {
        rc = im_seterr(err, IM_ESTORE, "stored row for %s is malformed", digest);
        goto out;
    }
    out->size = store__column_int_or_unknown(st, 1);
    out->last_modified = store__column_int_or_unknown(st, 2);
    out->checked_at = store__col_int(st, 3);
    im_strlcpy(out->digest, digest, sizeof out->digest);
out:
    store__cursor_close(&cur);
    return rc;
}
