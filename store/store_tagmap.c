/* store_tagmap.c - tag rows remembered in memory, so that a warm request for
 * a tag costs no SQLite read transaction (with 10,000 tags asked at random,
 * that read went to the file for most requests: the tags b-tree does not fit
 * each connection's page cache).
 *
 * What is remembered is exactly what store_lookup_tag read: the row (or its
 * absence) and the tag's remembered miss. Freshness is still decided by the
 * caller from the row and the clock, so a remembered row expires exactly as a
 * read one does. A row is forgotten when this process writes it (store.c,
 * after the commit), all rows when tags are removed (purge, eviction: a
 * generation is bumped), and rows read before a concurrent write are never
 * kept (the ticket taken before the read). Other processes are store.c's
 * business (it flushes the map when their removals counter moves).
 *
 * A set-associative table: a fixed number of sets of STORE__TAGMAP_WAYS slots
 * each, the least recently used slot of a full set replaced; its size never
 * grows. Sets are locked in stripes; the generation and the write sequence
 * are atomics. */
#include "store_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STORE__TAGMAP_WAYS 4
#define STORE__TAGMAP_STRIPES 64

/* One remembered row: key is "registry\0repository\0tag\0", then the digest
 * and its NUL. */
struct tagrec {
    uint64_t gen; /* the map's generation when the row was read */
    int64_t resolved_at, checked_at, accessed_at;
    int64_t miss_until; /* INT64_MIN: no miss */
    bool found;         /* the tag is stored (else only miss_until says something) */
    uint16_t klen, dlen;
    char bytes[];
};

/* One set: one cache line, so that a lookup misses once for the tags and
 * the row pointers together. */
struct tagset {
    _Alignas(64) uint32_t tag[STORE__TAGMAP_WAYS]; /* hash bits; 0: empty slot */
    uint16_t used[STORE__TAGMAP_WAYS]; /* when last read or written (set's clock) */
    uint16_t clock;
    struct tagrec *rec[STORE__TAGMAP_WAYS];
};
_Static_assert(sizeof(struct tagset) == 64, "a set is one cache line");

struct store__tagmap {
    size_t nsets; /* a power of two */
    struct tagset *sets;
    pthread_mutex_t locks[STORE__TAGMAP_STRIPES];
    _Atomic uint64_t gen; /* bumped by flush: older rows are never answered */
    _Atomic uint64_t seq; /* bumped by every forget: a read older than it is not kept */
    _Atomic size_t used;  /* slots holding a row */
};

/* The key of ref's tag (key: the tag, or what a miss is remembered under):
 * its length, 0 when it does not fit in n bytes. */
static size_t make_key(const struct im_ref *ref, const char *key, char *out, size_t n)
{
    size_t a = strlen(ref->registry) + 1, b = strlen(ref->repository) + 1,
           c = strlen(key) + 1;
    if (a + b + c > n || a + b + c > UINT16_MAX)
        return 0;
    memcpy(out, ref->registry, a);
    memcpy(out + a, ref->repository, b);
    memcpy(out + a + b, key, c);
    return a + b + c;
}

/* 64-bit FNV-1a: bits 17 and up choose the set, the high 32 bits are the
 * slot's tag, never 0 (0 marks an empty slot). */
static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = im_fnv1a(IM_FNV1A_START, k, n);
    return h >> 32 ? h : h | (uint64_t)1 << 32;
}

static uint32_t tag_of(uint64_t h)
{
    return (uint32_t)(h >> 32);
}

/* A row's allocation: whole cache lines, aligned, so that a hit reads as
 * few lines as its bytes need. NULL when out of memory. */
static struct tagrec *rec_alloc(size_t n)
{
    return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

struct store__tagmap *store__tagmap_new(size_t entries)
{
    struct store__tagmap *m = calloc(1, sizeof *m);
    size_t nsets = 1;
    int inited = 0;
    if (!m || entries == 0)
        goto fail;
    while (nsets * STORE__TAGMAP_WAYS < entries && nsets < ((size_t)1 << 24))
        nsets *= 2;
    m->nsets = nsets;
    m->sets = aligned_alloc(_Alignof(struct tagset), nsets * sizeof *m->sets);
    if (!m->sets)
        goto fail;
    memset(m->sets, 0, nsets * sizeof *m->sets);
    for (; inited < STORE__TAGMAP_STRIPES; inited++)
        if (pthread_mutex_init(&m->locks[inited], NULL) != 0)
            goto fail;
    atomic_init(&m->gen, 1);
    atomic_init(&m->seq, 0);
    atomic_init(&m->used, 0);
    return m;
fail:
    while (m && inited > 0)
        pthread_mutex_destroy(&m->locks[--inited]);
    if (m)
        free(m->sets);
    free(m);
    return NULL;
}

void store__tagmap_free(struct store__tagmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsets; i++)
        for (int w = 0; w < STORE__TAGMAP_WAYS; w++)
            free(m->sets[i].rec[w]);
    for (int i = 0; i < STORE__TAGMAP_STRIPES; i++)
        pthread_mutex_destroy(&m->locks[i]);
    free(m->sets);
    free(m);
}

size_t store__tagmap_capacity(const struct store__tagmap *m)
{
    return m ? m->nsets * STORE__TAGMAP_WAYS : 0;
}

size_t store__tagmap_used(struct store__tagmap *m)
{
    return m ? atomic_load(&m->used) : 0;
}

void store__tagmap_flush(struct store__tagmap *m)
{
    if (m)
        atomic_fetch_add(&m->gen, 1);
}

static struct tagset *set_of(struct store__tagmap *m, uint64_t h, pthread_mutex_t **lock)
{
    size_t i = (size_t)(h >> 17) & (m->nsets - 1);
    *lock = &m->locks[i % STORE__TAGMAP_STRIPES];
    return &m->sets[i];
}

/* The way holding key in set, or -1. Under the set's lock. */
static int find_way(const struct tagset *set, uint64_t h, const char *key, size_t klen)
{
    for (int w = 0; w < STORE__TAGMAP_WAYS; w++) {
        if (set->tag[w] != tag_of(h))
            continue;
        const struct tagrec *r = set->rec[w];
        /* a hit reads the whole row (key, digest, times): ask for its
         * other lines while the first is compared */
        __builtin_prefetch((const char *)r + 64);
        __builtin_prefetch((const char *)r + 128);
        if (r->klen == klen && memcmp(r->bytes, key, klen) == 0)
            return w;
    }
    return -1;
}

int store__tagmap_get(struct store__tagmap *m, const struct im_ref *ref,
                      struct store_tag *out, int64_t *miss_until, bool *found,
                      struct store__tagmap_ticket *ticket)
{
    char key[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX];
    pthread_mutex_t *lock = NULL;
    int hit = 0;
    /* taken before looking: a row read after this is kept only if nothing
     * was forgotten or flushed meanwhile */
    ticket->gen = atomic_load(&m->gen);
    ticket->seq = atomic_load(&m->seq);
    size_t klen = make_key(ref, ref->tag, key, sizeof key);
    if (!klen)
        return 0;
    uint64_t h = key_hash(key, klen);
    struct tagset *set = set_of(m, h, &lock);
    pthread_mutex_lock(lock);
    int w = find_way(set, h, key, klen);
    const struct tagrec *r = w >= 0 ? set->rec[w] : NULL;
    if (r && r->gen == ticket->gen && (!r->found || r->dlen < sizeof out->digest)) {
        *found = r->found;
        if (r->found) {
            memcpy(out->digest, r->bytes + r->klen, r->dlen + 1u);
            out->resolved_at = r->resolved_at;
            out->checked_at = r->checked_at;
            out->accessed_at = r->accessed_at;
        }
        *miss_until = r->miss_until;
        set->used[w] = ++set->clock;
        hit = 1;
    }
    pthread_mutex_unlock(lock);
    return hit;
}

/* The slot of set to fill with a new row: an empty one, else one of an older
 * generation, else the least recently used. Under the set's lock. */
static int victim(const struct tagset *set, uint64_t gen)
{
    int best = 0;
    for (int w = 0; w < STORE__TAGMAP_WAYS; w++) {
        if (!set->rec[w] || set->rec[w]->gen != gen)
            return w;
        if ((uint16_t)(set->clock - set->used[w]) >
            (uint16_t)(set->clock - set->used[best]))
            best = w;
    }
    return best;
}

void store__tagmap_put(struct store__tagmap *m, const struct im_ref *ref,
                       const struct store__tagmap_ticket *ticket,
                       const struct store_tag *t, int64_t miss_until)
{
    char key[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX];
    pthread_mutex_t *lock = NULL;
    size_t klen = make_key(ref, ref->tag, key, sizeof key);
    size_t dlen = t ? strlen(t->digest) : 0;
    if (!klen || dlen > UINT16_MAX)
        return;
    struct tagrec *r = rec_alloc(sizeof *r + klen + dlen + 1);
    if (!r)
        return; /* only costs a later read */
    r->gen = ticket->gen;
    r->found = t != NULL;
    r->resolved_at = t ? t->resolved_at : 0;
    r->checked_at = t ? t->checked_at : 0;
    r->accessed_at = t ? t->accessed_at : 0;
    r->miss_until = miss_until;
    r->klen = (uint16_t)klen;
    r->dlen = (uint16_t)dlen;
    memcpy(r->bytes, key, klen);
    memcpy(r->bytes + klen, t ? t->digest : "", dlen + 1);
    uint64_t h = key_hash(key, klen);
    struct tagset *set = set_of(m, h, &lock);
    pthread_mutex_lock(lock);
    /* a forget since the ticket may have been of this very row: the read
     * may predate that write, so it is not kept */
    if (atomic_load(&m->seq) == ticket->seq) {
        int w = find_way(set, h, key, klen);
        if (w < 0)
            w = victim(set, ticket->gen);
        if (!set->rec[w])
            atomic_fetch_add(&m->used, 1);
        free(set->rec[w]);
        set->rec[w] = r;
        set->tag[w] = tag_of(h);
        set->used[w] = ++set->clock;
        r = NULL;
    }
    pthread_mutex_unlock(lock);
    free(r);
}

void store__tagmap_forget(struct store__tagmap *m, const struct im_ref *ref,
                          const char *key_part)
{
    char key[IM_REGISTRY_MAX + IM_REPOSITORY_MAX + IM_TAG_MAX + IM_DIGEST_MAX];
    pthread_mutex_t *lock = NULL;
    if (!m)
        return;
    size_t klen = make_key(ref, key_part, key, sizeof key);
    if (!klen) { /* cannot be in the map; a read racing with it is not kept */
        atomic_fetch_add(&m->seq, 1);
        return;
    }
    uint64_t h = key_hash(key, klen);
    struct tagset *set = set_of(m, h, &lock);
    pthread_mutex_lock(lock);
    atomic_fetch_add(&m->seq, 1);
    int w = find_way(set, h, key, klen);
    if (w >= 0) {
        free(set->rec[w]);
        set->rec[w] = NULL;
        set->tag[w] = 0;
        atomic_fetch_sub(&m->used, 1);
    }
    pthread_mutex_unlock(lock);
}
