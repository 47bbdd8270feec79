/* store_rendered.c - rendered answers kept next to the data they were
 * rendered from, each naming the renderer that produced it (store.h). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* Rendered answers (keys, bodies and the renderer that made them). */
const struct store__sql store__sql_rendered[] = {
    {ST_GET_RENDERED, "SELECT key, body, encoding FROM rendered WHERE id = ?1"
                      " AND renderer = ?2"},
    {ST_PUT_RENDERED, "INSERT OR REPLACE INTO rendered(id, registry, repository, root,"
                      " renderer, key, body, encoding)"
                      " SELECT ?7, ?1, ?2, ?3, ?4, ?5, ?6, ?8"
                      " WHERE EXISTS (SELECT 1 FROM repo_roots WHERE registry = ?1"
                      " AND repository = ?2 AND root = ?3)"},
    {ST_DEL_RENDERED_ROOT, "DELETE FROM rendered WHERE root = ?1"},
    {ST_GC_RENDERED, "DELETE FROM rendered WHERE NOT EXISTS (SELECT 1 FROM repo_roots r"
                     " WHERE r.registry = rendered.registry"
                     " AND r.repository = rendered.repository"
                     " AND r.root = rendered.root)"},
    {ST_DROP_RENDERED, "DELETE FROM rendered"},
    {ST_DROP_OTHER_RENDERS, "DELETE FROM rendered WHERE renderer <> ?1"},
    {ST__COUNT, NULL},
};

/* The row id of key: 64-bit FNV-1a, kept to 63 bits (a positive rowid). */
static int64_t key_id(const void *key, size_t klen)
{
    uint64_t h = im_fnv1a(IM_FNV1A_START, key, klen);
    return (int64_t)(h & (uint64_t)INT64_MAX);
}

/* The root digest key starts with: the bytes before its first NUL. 0 when
 * key is not "<digest> NUL ...". */
static size_t key_root_len(const void *key, size_t klen)
{
    const char *nul =
        key ? memchr(key, '\0', klen < IM_DIGEST_MAX ? klen : IM_DIGEST_MAX) : NULL;
    size_t n = nul ? (size_t)(nul - (const char *)key) : 0;
    return n > 0 && memchr(key, ':', n) ? n : 0;
}

/* The row st is on holds key (column 0). */
static bool same_key(struct store__q *st, const void *key, size_t klen)
{
    const void *k = store__col_blob(st, 0);
    return k && (size_t)store__col_bytes(st, 0) == klen && memcmp(k, key, klen) == 0;
}

int store_set_renderer(struct store *s, const char *identity, int64_t *dropped,
                       struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    int rc = 0;
    if (dropped)
        *dropped = 0;
    if (!s || !identity || !identity[0] ||
        im_strlcpy(s->renderer, identity, sizeof s->renderer) != 0) {
        if (s)
            s->renderer[0] = '\0';
        rc = im_seterr(err, IM_EINVAL, "a renderer identity of 1 to %d bytes is needed",
                       STORE_RENDERER_MAX - 1);
        goto out;
    }
    if (s->readonly)
        goto out; /* rows of another renderer are never read anyway */
    rc = store__cursor_open(s, ST_DROP_OTHER_RENDERS, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    if (store__bind_text(st, 1, s->renderer) != SQLITE_OK ||
        store__step(st) != SQLITE_DONE) {
        rc = store__fail(err, cur.c, "dropping answers of another renderer");
        goto out;
    }
    if (dropped)
        *dropped = store__changes(cur.c);
out:
    store__cursor_close(&cur);
    return rc;
}

int store_get_rendered(struct store *s, const void *key, size_t klen, char **body,
                       size_t *len, struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    struct store__body b = {0};
    const char *why = "";
    int rc = 0, src;
    if (!s || !body || !len || key_root_len(key, klen) == 0 || klen > INT32_MAX) {
        rc = im_seterr(err, IM_EINVAL,
                       "store_get_rendered needs a key and out-parameters");
        goto out;
    }
    if (!s->renderer[0]) {
        rc = im_seterr(err, IM_ENOTFOUND, "no renderer named: nothing rendered is kept");
        goto out;
    }
    rc = store__cursor_open(s, ST_GET_RENDERED, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    src = store__bind_int(st, 1, key_id(key, klen));
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, s->renderer);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src == SQLITE_ROW && !same_key(st, key, klen))
        src = SQLITE_DONE; /* another key with the same hash */
    if (src == SQLITE_DONE) {
        rc = im_seterr(err, IM_ENOTFOUND, "no rendered answer kept");
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store__fail(err, cur.c, "reading a rendered answer");
        goto out;
    }
    rc = store__unpack_column(st, 1, 2, &b, &why);
    if (rc == IM_ESTORE) {
        rc = im_seterr(err, rc, "a stored rendered answer is corrupt (%s)", why);
        goto out;
    }
    size_t blen = b.len;
    unsigned char *copy = NULL;
    if (!rc)
        rc = store__body_take(&b, &copy);
    if (rc) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory reading a rendered answer");
        goto out;
    }
    *body = (char *)copy;
    *len = blen;
out:
    store__cursor_close(&cur);
    store__body_free(&b);
    return rc;
}

int store_put_rendered(struct store *s, const struct im_ref *ref, const void *key,
                       size_t klen, const char *body, size_t len, struct im_error *err)
{
    struct store__cursor cur = {0};
    struct store__q *st = NULL;
    struct store__body row = {0};
    size_t rlen = key_root_len(key, klen);
    int rc = 0, src;
    if (!s || !ref || !ref->registry[0] || !ref->repository[0] || rlen == 0 ||
        (!body && len) || klen > INT32_MAX || len > INT32_MAX) {
        rc = im_seterr(err, IM_EINVAL,
                       "store_put_rendered needs a reference, a key "
                       "starting with a root digest, and a body");
        goto out;
    }
    if (!s->renderer[0])
        goto out; /* no renderer named: nothing is kept */
    /* deflated before a connection is taken: others use it meanwhile */
    rc = store__pack(body ? body : "", len, &row);
    if (rc) {
        rc = im_seterr(err, rc, "out of memory keeping a rendered answer");
        goto out;
    }
    rc = store__cursor_open(s, ST_PUT_RENDERED, &cur, err);
    if (rc)
        goto out;
    st = cur.st;
    src = store__bind_text(st, 1, ref->registry);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 2, ref->repository);
    if (src == SQLITE_OK)
        src = store__bind_textn(st, 3, key, rlen);
    if (src == SQLITE_OK)
        src = store__bind_text(st, 4, s->renderer);
    if (src == SQLITE_OK)
        src = store__bind_blob(st, 5, key, klen);
    if (src == SQLITE_OK)
        src = store__bind_blob(st, 6, row.p, row.len);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 7, key_id(key, klen));
    if (src == SQLITE_OK)
        src = store__bind_int(st, 8, row.encoding);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src != SQLITE_DONE)
        rc = store__fail(err, cur.c, "keeping a rendered answer");
out:
    store__cursor_close(&cur);
    store__body_free(&row);
    return rc;
}

int store__forget_rendered(struct store__conn *c, const char *root, struct im_error *err)
{
    struct store__q *st = &c->st[ST_DEL_RENDERED_ROOT];
    int rc = 0;
    if (store__bind_text(st, 1, root) != SQLITE_OK || store__step(st) != SQLITE_DONE)
        rc = store__fail(err, c, "forgetting the rendered answers of %s", root);
    store__done(st);
    return rc;
}
