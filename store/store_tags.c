/* store_tags.c - tags and misses: a tag's row (digest, when it was resolved,
 * checked and last asked), its freshness under a TTL, the misses a registry
 * said, and the tag rows kept in memory (store_tagmap.c) with the watch on
 * the removals other processes make. */
#include "store_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Tag and miss rows are keyed by (registry, repository, tag); a miss of a
 * digest reference is keyed by the digest. */
const struct store__sql store__sql_tags[] = {
    /* one row always: the tag's columns NULL when it is not stored, and the
     * tag's remembered miss (NULL: none), so that a warm request reads both in
     * one statement */
    {ST_GET_TAG, "SELECT t.digest, t.resolved_at, t.checked_at, t.accessed_at, m.until"
                 " FROM (SELECT 1) LEFT JOIN tags t ON t.registry = ?1"
                 " AND t.repository = ?2 AND t.tag = ?3"
                 " LEFT JOIN misses m ON m.registry = ?1 AND m.repository = ?2"
                 " AND m.tag = ?3"},
    {ST_TOUCH_TAG, "UPDATE tags SET checked_at = max(checked_at, ?4)"
                   " WHERE registry = ?1 AND repository = ?2 AND tag = ?3"
                   " AND (?5 = '' OR digest = ?5)"},
    {ST_NOTE_ACCESS, "UPDATE tags SET accessed_at = ?4 WHERE registry = ?1"
                     " AND repository = ?2 AND tag = ?3 AND accessed_at < ?4"},
    {ST_PUT_MISS, "INSERT OR REPLACE INTO misses(registry, repository, tag, until)"
                  " VALUES (?1, ?2, ?3, ?4)"},
    {ST_GET_MISS, "SELECT until FROM misses WHERE registry = ?1 AND repository = ?2"
                  " AND tag = ?3"},
    {ST_GET_COUNTER, "SELECT value FROM counters WHERE name = ?1"},
    {ST__COUNT, NULL},
};

const struct store__sql store__pg_sql_tags[] = {
    {ST_GET_TAG, "SELECT t.digest, t.resolved_at, t.checked_at, t.accessed_at, m.until"
                 " FROM (SELECT 1) AS one LEFT JOIN tags t ON t.registry = $1"
                 " AND t.repository = $2 AND t.tag = $3"
                 " LEFT JOIN misses m ON m.registry = $1 AND m.repository = $2"
                 " AND m.tag = $3"},
    {ST_TOUCH_TAG, "UPDATE tags SET checked_at = greatest(checked_at, $4::bigint)"
                   " WHERE registry = $1 AND repository = $2 AND tag = $3"
                   " AND ($5::text = '' OR digest = $5::text)"},
    {ST_NOTE_ACCESS, "UPDATE tags SET accessed_at = $4 WHERE registry = $1"
                     " AND repository = $2 AND tag = $3 AND accessed_at < $4"},
    {ST_PUT_MISS, "INSERT INTO misses(registry, repository, tag, until)"
                  " VALUES ($1, $2, $3, $4) ON CONFLICT (registry, repository, tag)"
                  " DO UPDATE SET until = excluded.until"},
    {ST_GET_MISS, "SELECT until FROM misses WHERE registry = $1 AND repository = $2"
                  " AND tag = $3"},
    {ST_GET_COUNTER, "SELECT value FROM counters WHERE name = $1"},
    {ST__COUNT, NULL},
};

/* *value = the counter name's value (0 when it was never counted). 0 or
 * IM_ESTORE. */
static int read_counter(struct store *s, const char *name, int64_t *value)
{
    struct store__cursor cur;
    struct im_error err;
    *value = 0;
    int rc = store__cursor_open(s, ST_GET_COUNTER, &cur, &err);
    if (rc)
        return rc;
    int src = store__bind_text(cur.st, 1, name);
    if (src == SQLITE_OK)
        src = store__step(cur.st);
    if (src == SQLITE_ROW)
        *value = store__col_int(cur.st, 0);
    else if (src != SQLITE_DONE)
        rc = cur.c->broken ? IM_EDBDOWN : IM_ESTORE;
    store__cursor_close(&cur);
    return rc;
}

/* ---- tags --------------------------------------------------------------- */

/* now - checked_at, 0 when checked_at is in the future, INT64_MAX when the
 * subtraction would overflow (an absurd row). */
static int64_t tag_age(const struct store_tag *t, int64_t now)
{
    if (t->checked_at >= now)
        return 0;
    if (t->checked_at < 0 && now > INT64_MAX + t->checked_at)
        return INT64_MAX;
    return now - t->checked_at;
}

enum store_freshness store_freshness(const struct store_tag *t, int64_t now,
                                     int64_t ttl_seconds, int64_t max_stale_seconds)
{
    if (store_tag_fresh(t, now, ttl_seconds))
        return STORE_FRESH;
    if (!t || max_stale_seconds <= 0)
        return STORE_TOO_STALE;
    int64_t age = tag_age(t, now);
    int64_t ttl = ttl_seconds > 0 ? ttl_seconds : 0;
    if (age == INT64_MAX)
        return STORE_TOO_STALE; /* older than anything representable */
    /* age >= ttl here; compare age - ttl, which cannot overflow */
    return age - ttl < max_stale_seconds ? STORE_STALE_REVALIDATE : STORE_TOO_STALE;
}

int64_t store_fresh_for(const struct store_tag *t, int64_t now, int64_t ttl_seconds)
{
    if (!store_tag_fresh(t, now, ttl_seconds))
        return 0;
    return ttl_seconds - tag_age(t, now);
}

bool store_tag_fresh(const struct store_tag *t, int64_t now, int64_t ttl_seconds)
{
    if (!t || ttl_seconds <= 0)
        return false;
    if (t->checked_at >= now)
        return true; /* just checked, or the clock stepped back */
    /* now > checked_at here; the subtraction can only overflow for absurd rows */
    if (t->checked_at < 0 && now > INT64_MAX + t->checked_at)
        return false;
    return now - t->checked_at < ttl_seconds;
}

int store_get_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                  struct im_error *err)
{
    return store_lookup_tag(s, ref, out, NULL, err);
}

/* ---- tag rows in memory ------------------------------------------------- */

int store_set_tag_memory(struct store *s, size_t entries, struct im_error *err)
{
    int64_t seen = 0;
    store__tagmap_free(s->tags);
    s->tags = NULL;
    if (entries == 0)
        return 0;
    /* the removals made so far are already reflected in what will be read */
    (void)read_counter(s, STORE__TAG_REMOVALS, &seen);
    atomic_store(&s->removals_seen, seen);
    atomic_store(&s->removals_checked_ms, im_monotonic_ms());
    s->tags = store__tagmap_new(entries);
    if (!s->tags)
        return im_seterr(err, IM_ENOMEM, "out of memory for %zu tag rows", entries);
    return 0;
}

void store_tag_memory_stats(struct store *s, size_t *used, size_t *capacity)
{
    *used = store__tagmap_used(s->tags);
    *capacity = store__tagmap_capacity(s->tags);
}

int store__note_tag_removal(struct store__conn *c, struct im_error *err)
{
    struct store__q *st = &c->st[ST_ADD_COUNTER];
    if (store__bind_text(st, 1, STORE__TAG_REMOVALS) != SQLITE_OK ||
        store__bind_int(st, 2, 1) != SQLITE_OK) {
        int rc = store__fail(err, c, "binding the tag removals counter");
        store__done(st);
        return rc;
    }
    return store__step_done(c, ST_ADD_COUNTER, "counting a tag removal", err);
}

/* Another process's removals (imgmeta cache purge, its eviction) are counted
 * in the database: looked at, at most every STORE_TAG_MEMORY_WATCH_MS, by
 * the one lookup that claims the look; when the count moved (or cannot be
 * read), every remembered row goes. A shared database that is away is the
 * exception: nobody can remove anything from it meanwhile, and the rows kept
 * are what lets cached answers still be served; the count is looked at again
 * when it is back. */
static void watch_removals(struct store *s)
{
    int64_t now = im_monotonic_ms(), last = atomic_load(&s->removals_checked_ms),
            seen = 0;
    if (now - last < STORE_TAG_MEMORY_WATCH_MS ||
        !atomic_compare_exchange_strong(&s->removals_checked_ms, &last, now))
        return;
    int rc = read_counter(s, STORE__TAG_REMOVALS, &seen);
    if (rc == IM_EDBDOWN)
        return;
    if (rc != 0 || atomic_exchange(&s->removals_seen, seen) != seen)
        store__tagmap_flush(s->tags);
}

/* The row from the database. */
static int read_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                    int64_t *miss_until, struct im_error *err)
{
    struct store__cursor cur;
    const char *digest = NULL;
    int rc = store__cursor_open(s, ST_GET_TAG, &cur, err);
    if (rc)
        return rc;
    struct store__q *st = cur.st;
    int src = store__bind_key(st, ref, ref->tag);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src != SQLITE_ROW) {
        rc = store__fail(err, cur.c, "reading tag %s", ref->tag);
        goto out;
    }
    if (!store__col_null(st, 4))
        *miss_until = store__col_int(st, 4);
    if (store__col_null(st, 0)) {
        rc = IM_ENOTFOUND;
        goto out;
    }
    digest = store__col_text(st, 0);
    if (!digest || im_strlcpy(out->digest, digest, sizeof out->digest) != 0) {
        rc = im_seterr(err, IM_ESTORE, "stored tag %s is malformed", ref->tag);
        goto out;
    }
    out->resolved_at = store__col_int(st, 1);
    out->checked_at = store__col_int(st, 2);
    out->accessed_at = store__col_int(st, 3);
out:
    store__cursor_close(&cur);
    return rc;
}

int store_lookup_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                     int64_t *miss_until, struct im_error *err)
{
    struct store__tagmap_ticket ticket = {0, 0};
    int64_t until = INT64_MIN;
    bool found = false;
    int rc = store__ref_check(ref, true, err);
    if (miss_until)
        *miss_until = INT64_MIN;
    if (rc || !out) {
        rc = rc ? rc : im_seterr(err, IM_EINVAL, "store_get_tag needs an out-parameter");
        goto out;
    }
    if (s->tags) {
        watch_removals(s);
        if (store__tagmap_get(s->tags, ref, out, &until, &found, &ticket)) {
            rc = found ? 0 : IM_ENOTFOUND;
            goto out;
        }
    }
    rc = read_tag(s, ref, out, &until, err);
    if (s->tags && (rc == 0 || rc == IM_ENOTFOUND))
        store__tagmap_put(s->tags, ref, &ticket, rc == 0 ? out : NULL, until);
out:
    if (miss_until)
        *miss_until = until;
    if (rc == IM_ENOTFOUND)
        rc = im_seterr(err, IM_ENOTFOUND, "%s/%s:%s is not stored", ref->registry,
                       ref->repository, ref->tag);
    return rc;
}

int store_reread_tag(struct store *s, const struct im_ref *ref, struct store_tag *out,
                     struct im_error *err)
{
    if (ref && s->tags)
        store__tagmap_forget(s->tags, ref, ref->tag);
    return store_lookup_tag(s, ref, out, NULL, err);
}

/* Runs a one-row UPDATE/INSERT of a tag or a miss keyed by ref: ?1..?3 the
 * key, ?4 an integer, ?5 (when the statement has it) ref->digest. *changes
 * gets the row count. */
static int write_keyed(struct store *s, enum store__stmt which, const struct im_ref *ref,
                       const char *key, int64_t value, int *changes, struct im_error *err)
{
    struct store__cursor cur;
    int rc = store__cursor_open(s, which, &cur, err);
    if (rc)
        goto out;
    struct store__q *st = cur.st;
    int src = store__bind_key(st, ref, key);
    if (src == SQLITE_OK)
        src = store__bind_int(st, 4, value);
    if (src == SQLITE_OK && store__param_count(st) >= 5)
        src = store__bind_text(st, 5, ref->digest);
    if (src == SQLITE_OK)
        src = store__step(st);
    if (src != SQLITE_DONE)
        rc = store__fail(err, cur.c, "updating %s", key);
    else if (changes)
        *changes = store__changes(cur.c);
    store__cursor_close(&cur);
out:
    /* every keyed write is of a tag or a miss: a remembered row is stale now
     * (forgotten after the write, so that no read before it is kept) */
    store__tagmap_forget(s->tags, ref, key);
    return rc;
}

int store_touch_tag(struct store *s, const struct im_ref *ref, int64_t now,
                    struct im_error *err)
{
    int changes = 0;
    int rc = store__ref_check(ref, true, err);
    if (!rc)
        rc = write_keyed(s, ST_TOUCH_TAG, ref, ref->tag, now, &changes, err);
    if (!rc && changes == 0)
        rc = im_seterr(err, IM_ENOTFOUND, "%s/%s:%s is not stored%s%s", ref->registry,
                       ref->repository, ref->tag, ref->digest[0] ? " with digest " : "",
                       ref->digest);
    return rc;
}

int store_note_access(struct store *s, const struct im_ref *ref, int64_t now,
                      struct im_error *err)
{
    int rc = store__ref_check(ref, true, err);
    if (!rc)
        rc = write_keyed(s, ST_NOTE_ACCESS, ref, ref->tag, now, NULL, err);
    return rc;
}

/* ---- misses ------------------------------------------------------------- */

/* The key a miss is remembered under: the tag, else the digest (a digest has a
 * ':' that no tag can have, so the two never collide). */
static const char *miss_key(const struct im_ref *ref)
{
    return ref->tag[0] ? ref->tag : ref->digest;
}

int store_put_miss(struct store *s, const struct im_ref *ref, int64_t until,
                   struct im_error *err)
{
    int rc = store__ref_check(ref, false, err);
    if (!rc && miss_key(ref)[0] == '\0')
        rc = im_seterr(err, IM_EINVAL, "a miss needs a tag or a digest");
    if (!rc)
        rc = write_keyed(s, ST_PUT_MISS, ref, miss_key(ref), until, NULL, err);
    return rc;
}

int store_get_miss(struct store *s, const struct im_ref *ref, int64_t *until,
                   struct im_error *err)
{
    struct store__cursor cur;
    int rc = store__ref_check(ref, false, err);
    if (!rc && (!until || miss_key(ref)[0] == '\0'))
        rc = im_seterr(err, IM_EINVAL, "store_get_miss needs a tag or a digest");
    if (!rc)
        rc = store__cursor_open(s, ST_GET_MISS, &cur, err);
    if (rc)
        return rc;
    int src = store__bind_key(cur.st, ref, miss_key(ref));
    if (src == SQLITE_OK)
        src = store__step(cur.st);
    if (src == SQLITE_ROW)
        *until = store__col_int(cur.st, 0);
    else if (src == SQLITE_DONE)
        rc = im_seterr(err, IM_ENOTFOUND, "no miss remembered for %s", miss_key(ref));
    else
        rc = store__fail(err, cur.c, "reading miss %s", miss_key(ref));
    store__cursor_close(&cur);
    return rc;
}
