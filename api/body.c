/* body.c - reference-counted answer bodies, and a bounded pool of the blocks
 * that answers read from the answers file are sent from.
 *
 * A body the in-memory LRU keeps is allocated to its exact size and lives as
 * long as the LRU and the responses sending it hold it (rcache.c). A body read
 * from the answers file is sent once and released as soon as the socket took
 * it: with a random mix over thousands of answers that is one 2-64 KiB
 * allocation and free per request, which glibc serves from its large bins
 * (consolidating the small frees before each one). Those blocks are rounded
 * up to a power of two and kept, at most POOL_KEEP per size, for the next
 * read. Thread-safe: one mutex per size, held for a push or a pop. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "api_int.h"

#define POOL_MIN_SHIFT 12 /* 4 KiB */
#define POOL_SIZES 5      /* 4, 8, 16, 32, 64 KiB; larger blocks are not pooled */
#define POOL_KEEP API__SHARED_POOL_KEEP /* per size: at most ~2 MiB idle in all */

struct api_shared {
    _Atomic size_t refs;
    struct api_shared *next; /* in the pool's free list */
    int size_class;          /* -1: not pooled */
    char bytes[];            /* the body and a NUL */
};

static struct pool {
    pthread_mutex_t lock;
    struct api_shared *free;
    unsigned n;
} pool[POOL_SIZES] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
};

/* The pool size whose blocks hold n bytes, or -1. */
static int size_class(size_t n)
{
    for (int c = 0; c < POOL_SIZES; c++)
        if (n <= ((size_t)1 << (POOL_MIN_SHIFT + c)) - sizeof(struct api_shared))
            return c;
    return -1;
}

struct api_shared *api__shared_new(size_t len, bool pooled)
{
    struct api_shared *s = NULL;
    int c = pooled ? size_class(len + 1) : -1;
    if (c >= 0) {
        pthread_mutex_lock(&pool[c].lock);
        if ((s = pool[c].free) != NULL) {
            pool[c].free = s->next;
            pool[c].n--;
        }
        pthread_mutex_unlock(&pool[c].lock);
        if (!s)
            s = malloc((size_t)1 << (POOL_MIN_SHIFT + c));
    } else {
        s = malloc(sizeof *s + len + 1);
    }
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->next = NULL;
    s->size_class = c;
    s->bytes[len] = '\0'; /* bodies are text: keep them C strings too */
    return s;
}

char *api__shared_bytes(struct api_shared *s)
{
    return s->bytes;
}

void api__shared_ref(struct api_shared *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void api_shared_release(struct api_shared *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    int c = s->size_class;
    if (c >= 0) {
        pthread_mutex_lock(&pool[c].lock);
        if (pool[c].n < POOL_KEEP) {
            s->next = pool[c].free;
            pool[c].free = s;
            pool[c].n++;
            s = NULL;
        }
        pthread_mutex_unlock(&pool[c].lock);
    }
    free(s);
}

void api__shared_pool_drain(void)
{
    for (int c = 0; c < POOL_SIZES; c++) {
        pthread_mutex_lock(&pool[c].lock);
        struct api_shared *s = pool[c].free;
        pool[c].free = NULL;
        pool[c].n = 0;
        pthread_mutex_unlock(&pool[c].lock);
        while (s) {
            struct api_shared *next = s->next;
            free(s);
            s = next;
        }
    }
}

size_t api__shared_pool_held(void)
{
    size_t n = 0;
    for (int c = 0; c < POOL_SIZES; c++) {
        pthread_mutex_lock(&pool[c].lock);
        n += pool[c].n;
        pthread_mutex_unlock(&pool[c].lock);
    }
    return n;
}
