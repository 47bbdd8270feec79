/* rcache.c - rendered answers by (root digest, reference, representation,
 * platform filter), in a byte-bounded LRU in front of store + render.
 *
 * A root digest names immutable documents and the renderer is a pure function
 * of them and of the reference, so an entry never goes stale; it only ages
 * out. Thread-safe: the table is split by key hash into RC_SHARDS shards, each
 * an LRU of max_bytes / RC_SHARDS under its own mutex (held for a lookup, never
 * while rendering), so that threads taking answers out of different shards do
 * not wait for each other.
 *
 * A hit copies nothing: an entry's body is a reference-counted block (body.c),
 * and the answer is sent from it (the response takes a reference; an eviction drops
 * the cache's own, and the last one frees it). A body's bytes never change
 * once put. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

#define RC_SHARDS 8
#define RC_BUCKETS 512 /* per shard */

struct rc_entry {
    struct rc_entry *hnext;       /* hash chain */
    struct rc_entry *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    size_t klen, blen;
    const char *ctype;
    char *key;
    struct api_shared *body; /* the cache's reference */
};

struct rc_shard {
    pthread_mutex_t lock;
    struct rc_entry *bucket[RC_BUCKETS];
    struct rc_entry *head, *tail;
    size_t bytes, max_bytes;
};

struct api__rcache {
    struct rc_shard shard[RC_SHARDS];
};

uint64_t api__key_hash(const char *k, size_t n)
{
    return im_fnv1a(IM_FNV1A_START, k, n);
}

struct api__rcache *api__rcache_new(size_t max_bytes)
{
    struct api__rcache *r = calloc(1, sizeof *r);
    int i = 0;
    if (!r)
        return NULL;
    for (; i < RC_SHARDS; i++) {
        if (pthread_mutex_init(&r->shard[i].lock, NULL) != 0)
            goto fail;
        r->shard[i].max_bytes = max_bytes / RC_SHARDS;
    }
    return r;
fail:
    while (i-- > 0)
        pthread_mutex_destroy(&r->shard[i].lock);
    free(r);
    return NULL;
}

static void entry_free(struct rc_entry *e)
{
    free(e->key);
    api_shared_release(e->body);
    free(e);
}

void api__rcache_free(struct api__rcache *r)
{
    if (!r)
        return;
    for (int i = 0; i < RC_SHARDS; i++) {
        struct rc_shard *c = &r->shard[i];
        for (struct rc_entry *e = c->head, *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
        pthread_mutex_destroy(&c->lock);
    }
    free(r);
}

static void lru_unlink(struct rc_shard *c, struct rc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct rc_shard *c, struct rc_entry *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static struct rc_entry **slot(struct rc_shard *c, const char *k, size_t n, uint64_t h)
{
    struct rc_entry **p = &c->bucket[(h / RC_SHARDS) % RC_BUCKETS];
    while (*p && !((*p)->hash == h && (*p)->klen == n && memcmp((*p)->key, k, n) == 0))
        p = &(*p)->hnext;
    return p;
}

int api__rcache_get(struct api__rcache *r, const char *key, size_t klen,
                    const char **body, size_t *len, const char **ctype,
                    struct api_shared **shared)
{
    uint64_t h = api__key_hash(key, klen);
    struct rc_shard *c = &r->shard[h % RC_SHARDS];
    int rc = IM_ENOTFOUND;
    pthread_mutex_lock(&c->lock);
    struct rc_entry *e = *slot(c, key, klen, h);
    if (e) {
        api__shared_ref(e->body);
        *shared = e->body;
        *body = api__shared_bytes(e->body);
        *len = e->blen;
        *ctype = e->ctype;
        lru_unlink(c, e);
        lru_push(c, e);
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void evict(struct rc_shard *c, struct rc_entry *e)
{
    struct rc_entry **p = slot(c, e->key, e->klen, e->hash);
    *p = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->klen + e->blen + sizeof *e;
    entry_free(e);
}

void api__rcache_put(struct api__rcache *r, const char *key, size_t klen,
                     const char *body, size_t len, const char *ctype)
{
    size_t cost = klen + len + sizeof(struct rc_entry);
    uint64_t h = api__key_hash(key, klen);
    struct rc_shard *c = &r->shard[h % RC_SHARDS];
    if (cost > c->max_bytes / 2) /* one answer never takes over a shard */
        return;
    struct rc_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = malloc(klen)) || !(e->body = api__shared_new(len, false))) {
        if (e)
            entry_free(e);
        return; /* a cache: failing to remember is fine */
    }
    memcpy(e->key, key, klen);
    memcpy(api__shared_bytes(e->body), body, len);
    e->klen = klen;
    e->blen = len;
    e->ctype = ctype;
    e->hash = h;
    pthread_mutex_lock(&c->lock);
    struct rc_entry **p = slot(c, key, klen, e->hash);
    if (*p) { /* another thread rendered it first */
        pthread_mutex_unlock(&c->lock);
        entry_free(e);
        return;
    }
    *p = e;
    lru_push(c, e);
    c->bytes += cost;
    while (c->bytes > c->max_bytes && c->tail)
        evict(c, c->tail);
    pthread_mutex_unlock(&c->lock);
}
