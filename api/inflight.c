/* inflight.c - coalescing: one upstream resolution per reference at a time,
 * however many requests ask for it concurrently. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_internal.h"
#include "registry.h"
#include "store.h"

int api__inflight_init(struct api__inflight *t)
{
    t->head = NULL;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        return -1;
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0)
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&t->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&t->lock);
        return -1;
    }
    return 0;
}

void api__inflight_destroy(struct api__inflight *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}

static void flight_key(const struct im_ref *ref, char *key, size_t n)
{
    snprintf(key, n, "%s/%s:%s@%s", ref->registry, ref->repository, ref->tag, ref->digest);
}

static struct api__flight *find(struct api__inflight *t, const char *key)
{
    for (struct api__flight *f = t->head; f; f = f->next)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

static void unlink_flight(struct api__inflight *t, struct api__flight *f)
{
    for (struct api__flight **p = &t->head; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            return;
        }
    }
}

static struct timespec deadline_after(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits (lock held) for f to finish; returns its outcome. */
static int wait_for(struct api *a, struct api__flight *f, struct im_error *err)
{
    struct api__inflight *t = &a->inflight;
    struct timespec until = deadline_after(a->cfg.resolve_wait_ms);
    int rc = 0;
    f->waiters++;
    while (!f->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&t->cond, &t->lock, &until);
    f->waiters--;
    if (!f->done) {
        return im_seterr(err, IM_ETIMEOUT,
                         "gave up after %ld ms waiting for a concurrent resolution",
                         a->cfg.resolve_wait_ms);
    }
    int out = f->rc;
    if (out != 0 && err)
        *err = f->err;
    if (f->waiters == 0)
        free(f);
    return out;
}

int api__resolve_shared(struct api *a, const struct im_ref *ref, struct im_bundle *out,
                        bool *coalesced, struct im_error *err)
{
    struct api__inflight *t = &a->inflight;
    struct api__flight *f;
    int rc;

    *coalesced = false;
    pthread_mutex_lock(&t->lock);
    char key[sizeof f->key];
    flight_key(ref, key, sizeof key);
    f = find(t, key);
    if (f) {
        *coalesced = true;
        rc = wait_for(a, f, err);
        pthread_mutex_unlock(&t->lock);
        return rc;
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        pthread_mutex_unlock(&t->lock);
        return im_seterr(err, IM_ENOMEM, "out of memory");
    }
    im_strlcpy(f->key, key, sizeof f->key);
    f->next = t->head;
    t->head = f;
    pthread_mutex_unlock(&t->lock);

    struct reg_stats stats = {0};
    rc = reg_resolve(a->reg, ref, out, &stats, &f->err);
    if (rc == 0) {
        /* A cache that cannot be written still lets us answer; waiters then
         * find nothing in the store and resolve for themselves. */
        struct im_error serr;
        if (store_put(a->store, ref, out, im_now(), &serr) != 0)
            im_strlcpy(f->err.msg, serr.msg, sizeof f->err.msg);
    }
    if (rc != 0 && err)
        *err = f->err;

    pthread_mutex_lock(&t->lock);
    f->rc = rc;
    f->done = true;
    unlink_flight(t, f);
    pthread_cond_broadcast(&t->cond);
    if (f->waiters == 0)
        free(f);
    pthread_mutex_unlock(&t->lock);
    return rc;
}
