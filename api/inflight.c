/* inflight.c - coalescing: one upstream resolution (or revalidation) per
 * reference at a time, however many requests ask for it concurrently; the one
 * request that does the work stores the answer and hands every waiter a copy,
 * so waiters never depend on the cache being writable.
 *
 * The table also bounds how many references are resolved upstream at once
 * (cfg.max_resolutions): a request that would start one more is refused with
 * IM_EBUSY at once instead of queueing, so a burst of distinct cold
 * references cannot pile up threads, sockets and memory behind a slow
 * registry. Joining a running resolution is always allowed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "manifest.h"
#include "metrics.h"
#include "registry.h"
#include "store.h"

/* What a refused request is told to wait: resolutions take from a few ms to
 * the upstream timeout, so a short, fixed hint keeps clients polite without
 * making them wait out the worst case. */
#define API__BUSY_RETRY_AFTER_S 1

int api__inflight_init(struct api__inflight *t)
{
    t->head = NULL;
    t->running = 0;
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
    snprintf(key, n, "%s/%s:%s@%s", ref->registry, ref->repository, ref->tag,
             ref->digest);
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

/* ---- bundles ------------------------------------------------------------- */

int api__bundle_copy(struct im_bundle *dst, const struct im_bundle *src)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < src->ndocs; i++) {
        const struct im_doc *d = &src->docs[i];
        rc = im_bundle_add_doc(dst, d->digest, d->media_type, d->body, d->len);
    }
    for (size_t i = 0; !rc && i < src->nblobs; i++)
        rc = im_bundle_add_blob(dst, &src->blobs[i]);
    if (rc) {
        im_bundle_free(dst);
        return IM_ENOMEM;
    }
    im_strlcpy(dst->root_digest, src->root_digest, sizeof dst->root_digest);
    return 0;
}

/* Adds to `into` what the document named digest holds in `from`, and (for a
 * manifest) everything it names (manifest.h), recursively. */
static int keep_reachable(struct im_bundle *into, const struct im_bundle *from,
                          const char *digest, int depth);

struct reach {
    struct im_bundle *into;
    const struct im_bundle *from;
    int depth;
};

static int keep_child(void *ud, enum im_manifest_child role, const json_t *desc,
                      const char *digest)
{
    const struct reach *r = ud;
    (void)role;
    (void)desc;
    return keep_reachable(r->into, r->from, digest, r->depth + 1);
}

static int keep_reachable(struct im_bundle *into, const struct im_bundle *from,
                          const char *digest, int depth)
{
    if (depth > 4 || im_bundle_find_doc(into, digest) ||
        im_bundle_find_blob(into, digest))
        return 0; /* a list -> manifest -> config/layer tree is 3 deep */
    const struct im_blob *bl = im_bundle_find_blob(from, digest);
    if (bl)
        return im_bundle_add_blob(into, bl) ? IM_ENOMEM : 0;
    const struct im_doc *d = im_bundle_find_doc(from, digest);
    if (!d)
        return 0;
    if (im_bundle_add_doc(into, d->digest, d->media_type, d->body, d->len) != 0)
        return IM_ENOMEM;
    enum im_manifest_kind kind = im_manifest_kind(d->media_type);
    if (kind == IM_MANIFEST_UNKNOWN) /* a config: it names nothing */
        return 0;
    json_t *doc = json_loadb((const char *)d->body, d->len, JSON_REJECT_DUPLICATES, NULL);
    struct reach r = {into, from, depth};
    int rc = doc ? im_manifest_children(doc, kind, keep_child, &r) : 0;
    json_decref(doc);
    return rc;
}

/* After a resolution that started from the cached documents of the tag's
 * previous digest: keeps only what the new root reaches, so the old digest's
 * documents are not recorded as members of the new one. */
static int prune(struct im_bundle *b)
{
    struct im_bundle kept;
    im_bundle_init(&kept);
    int rc = keep_reachable(&kept, b, b->root_digest, 0);
    if (!rc && !im_bundle_find_doc(&kept, b->root_digest))
        rc = IM_EINTERNAL;
    if (rc) {
        im_bundle_free(&kept);
        return rc;
    }
    im_strlcpy(kept.root_digest, b->root_digest, sizeof kept.root_digest);
    im_bundle_free(b);
    *b = kept;
    return 0;
}

/* ---- the work one request does for all -------------------------------------- */

static void store_failed(struct api__shared *how, const struct im_error *serr)
{
    im_metric_inc(IM_STORE_WRITE_FAILURES);
    if (!how->store_failed)
        how->store_err = *serr;
    how->store_failed = true;
}

/* One HEAD: the cached digest unchanged -> *same, out loaded from the store;
 * changed -> out pre-filled with the previous digest's documents. */
static int revalidate(struct api *a, const struct im_ref *ref,
                      const struct store_tag *prior, struct im_bundle *out, bool *same,
                      struct api__shared *how, struct im_error *err)
{
    struct reg_head head;
    struct reg_stats stats = {0};
    struct im_error serr;
    struct im_ref byTag = *ref;
    byTag.digest[0] = '\0';
    *same = false;
    int rc = reg_head_manifest(a->reg, &byTag, &head, &stats, err);
    how->retry_after = stats.retry_after;
    if (rc == IM_EPROTO)
        return 0; /* no Docker-Content-Digest: resolve in full */
    if (rc)
        return rc;
    if (strcmp(head.digest, prior->digest) == 0) {
        struct im_ref at = byTag;
        im_strlcpy(at.digest, prior->digest, sizeof at.digest);
        rc = store_touch_tag(a->store, &at, im_now(), &serr);
        if (rc && rc != IM_ENOTFOUND)
            store_failed(how, &serr);
        if (store_load(a->store, prior->digest, out, &serr) == 0) {
            *same = true;
            return 0;
        }
    }
    im_bundle_free(out);
    if (store_load(a->store, prior->digest, out, &serr) != 0)
        im_bundle_free(out); /* start cold: nothing lost but time */
    return 0;
}

static void remember_miss(struct api *a, const struct im_ref *ref,
                          struct api__shared *how)
{
    struct im_error serr;
    if (!ref->tag[0] || a->cfg.negative_ttl_seconds <= 0)
        return;
    if (store_put_miss(a->store, ref, im_now() + a->cfg.negative_ttl_seconds, &serr) != 0)
        store_failed(how, &serr);
}

static void store_answer(struct api *a, const struct im_ref *ref,
                         const struct im_bundle *out, struct api__shared *how)
{
    struct im_error serr;
    int64_t now = im_now();
    if (store_put(a->store, ref, out, now, &serr) != 0) {
        store_failed(how, &serr);
        return;
    }
    if (a->cfg.cache_max_bytes > 0 &&
        store_enforce_budget(a->store, a->cfg.cache_max_bytes, ref->tag[0] ? ref : NULL,
                             now, NULL, &serr) != 0)
        store_failed(how, &serr);
}

struct store_job {
    struct api *a;
    const struct im_ref *ref;
    const struct im_bundle *out;
    struct api__shared *how;
};

static void *store_job_main(void *arg)
{
    struct store_job *j = arg;
    store_answer(j->a, j->ref, j->out, j->how);
    return NULL;
}

/* Stores a new answer on a thread of its own while this one builds the image
 * model it will be rendered from (both only read out): the request waits for
 * the longer of the two instead of both. Without a thread, one after the
 * other; a model that cannot be built is left to the renderer, which says why. */
static void store_and_build(struct api *a, const struct im_ref *ref,
                            const struct im_bundle *out, struct api__shared *how)
{
    struct store_job job = {a, ref, out, how};
    struct im_error berr;
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, store_job_main, &job) == 0;
    if (render_image_build(ref, out, &how->model, &berr) != 0)
        how->model = NULL;
    if (threaded)
        pthread_join(t, NULL);
    else
        store_answer(a, ref, out, how);
}

/* A request that saw the cache stale or empty may become the leader just
 * after another flight for the same reference finished and stored its
 * answer: the store is read again first, so that it does not repeat the
 * work. true with out filled when the cache now has a fresh answer. */
static bool answered_meanwhile(struct api *a, const struct im_ref *ref,
                               struct im_bundle *out)
{
    struct store_tag t;
    bool mine = false;
    const char *root = ref->digest;
    if (ref->tag[0]) {
        /* another replica sharing the store may have stored it: the database
         * says, not the rows this process keeps in memory */
        int rc = store_shared(a->store) ? store_reread_tag(a->store, ref, &t, NULL)
                                        : store_get_tag(a->store, ref, &t, NULL);
        if (rc != 0 ||
            !store_tag_fresh(&t, im_now(), api_config_tag_ttl(&a->cfg, ref->registry)) ||
            (ref->digest[0] && strcmp(ref->digest, t.digest) != 0))
            return false;
        root = t.digest;
    } else if (store_has_root(a->store, ref, root, &mine, NULL) != 0 || !mine) {
        return false;
    }
    if (store_load(a->store, root, out, NULL) == 0)
        return true;
    im_bundle_free(out);
    return false;
}

/* reg_known over the store: documents by digest, and layer facts from the
 * same registry checked within cfg.layer_ttl_seconds. */
static int known_doc(void *cls, const char *digest, struct im_doc *out)
{
    const struct api *a = cls;
    return store_find_doc(a->store, digest, out, NULL);
}

static int known_blob(void *cls, const char *registry, const char *digest,
                      struct im_blob *out)
{
    const struct api *a = cls;
    if (a->cfg.layer_ttl_seconds <= 0)
        return IM_ENOTFOUND;
    return store_find_blob(a->store, registry, digest,
                           im_now() - a->cfg.layer_ttl_seconds, out, NULL);
}

static int work_leased(struct api *a, const struct im_ref *ref,
                       const struct store_tag *prior, struct im_bundle *out,
                       struct api__shared *how, struct im_error *err)
{
    struct reg_stats stats = {0};
    bool same = false;
    int rc = 0;
    if (answered_meanwhile(a, ref, out)) {
        how->coalesced = true;
        return 0;
    }
    if (prior) {
        rc = revalidate(a, ref, prior, out, &same, how, err);
        if (rc || same) {
            if (rc == IM_ENOTFOUND)
                remember_miss(a, ref, how);
            how->revalidated = same;
            return rc;
        }
    }
    bool prefilled = out->ndocs > 0;
    struct reg_known known = {.doc = known_doc, .blob = known_blob, .cls = a};
    rc = reg_resolve_known(a->reg, ref, out, &known, &stats, err);
    how->retry_after = stats.retry_after;
    if (rc == IM_ENOTFOUND)
        remember_miss(a, ref, how);
    if (!rc && prefilled)
        rc = prune(out);
    if (rc) {
        im_bundle_free(out);
        return rc;
    }
    store_and_build(a, ref, out, how);
    return 0;
}

/* The work, done by one process at a time across every replica sharing the
 * store: the others wait for the lease (at most --resolve-wait) and then
 * find the answer stored (answered_meanwhile). A lease that cannot be had
 * in time, or at all, does not stop the work: the reference is resolved
 * again rather than not answered; a database that is away does. */
static int work(struct api *a, const struct im_ref *ref, const struct store_tag *prior,
                struct im_bundle *out, struct api__shared *how, struct im_error *err)
{
    struct store_lease *lease = NULL;
    struct im_error lerr;
    char key[sizeof((struct api__flight *)0)->key];
    flight_key(ref, key, sizeof key);
    int rc = store_lease_take(a->store, key, a->cfg.resolve_wait_ms, &lease, NULL, &lerr);
    if (rc == IM_EDBDOWN) {
        if (err)
            *err = lerr;
        return rc;
    }
    rc = work_leased(a, ref, prior, out, how, err);
    store_lease_give(a->store, lease);
    return rc;
}

/* ---- the bound on upstream work -------------------------------------------- */

/* Takes a slot (lock held): false when cfg.max_resolutions are running. */
static bool take_slot(struct api *a)
{
    struct api__inflight *t = &a->inflight;
    if (a->cfg.max_resolutions > 0 && t->running >= a->cfg.max_resolutions)
        return false;
    t->running++;
    return true;
}

static int refuse(struct api *a, long *retry_after, struct im_error *err)
{
    im_metric_inc(IM_RESOLUTIONS_REFUSED);
    *retry_after = API__BUSY_RETRY_AFTER_S;
    return im_seterr(err, IM_EBUSY,
                     "imgmeta is already resolving %ld references upstream (the "
                     "--max-resolutions limit): retry in %d s",
                     a->cfg.max_resolutions, API__BUSY_RETRY_AFTER_S);
}

int api__upstream_enter(struct api *a, long *retry_after, struct im_error *err)
{
    pthread_mutex_lock(&a->inflight.lock);
    bool taken = take_slot(a);
    pthread_mutex_unlock(&a->inflight.lock);
    return taken ? 0 : refuse(a, retry_after, err);
}

void api__upstream_leave(struct api *a)
{
    pthread_mutex_lock(&a->inflight.lock);
    a->inflight.running--;
    pthread_mutex_unlock(&a->inflight.lock);
}

/* ---- coalescing ---------------------------------------------------------- */

/* Waits (lock held) for f to finish; returns its outcome, with out holding a
 * copy of its answer. */
static int wait_for(struct api *a, struct api__flight *f, struct im_bundle *out,
                    struct api__shared *how, struct im_error *err)
{
    struct api__inflight *t = &a->inflight;
    struct timespec until = im_deadline_after_ms(a->cfg.resolve_wait_ms);
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
    int out_rc = f->rc;
    if (out_rc != 0 && err)
        *err = f->err;
    if (out_rc == 0 && api__bundle_copy(out, &f->bundle) != 0)
        out_rc = im_seterr(err, IM_ENOMEM, "out of memory copying a shared answer");
    how->revalidated = f->revalidated;
    how->retry_after = f->retry_after;
    if (f->waiters == 0) {
        im_bundle_free(&f->bundle);
        free(f);
    }
    return out_rc;
}

int api__resolve_shared(struct api *a, const struct im_ref *ref,
                        const struct store_tag *prior, struct im_bundle *out,
                        struct api__shared *how, struct im_error *err)
{
    struct api__inflight *t = &a->inflight;
    struct api__flight *f;
    int rc;

    memset(how, 0, sizeof *how);
    pthread_mutex_lock(&t->lock);
    char key[sizeof f->key];
    flight_key(ref, key, sizeof key);
    f = find(t, key);
    if (f) {
        how->coalesced = true;
        rc = wait_for(a, f, out, how, err);
        pthread_mutex_unlock(&t->lock);
        return rc;
    }
    if (!take_slot(a)) {
        pthread_mutex_unlock(&t->lock);
        return refuse(a, &how->retry_after, err);
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        t->running--;
        pthread_mutex_unlock(&t->lock);
        return im_seterr(err, IM_ENOMEM, "out of memory");
    }
    im_strlcpy(f->key, key, sizeof f->key);
    im_bundle_init(&f->bundle);
    f->next = t->head;
    t->head = f;
    pthread_mutex_unlock(&t->lock);

    im_metric_gauge_add(IM_RESOLUTIONS_INFLIGHT, 1);
    rc = work(a, ref, prior, out, how, &f->err);
    im_metric_gauge_add(IM_RESOLUTIONS_INFLIGHT, -1);
    if (rc != 0 && err)
        *err = f->err;

    pthread_mutex_lock(&t->lock);
    f->rc = rc;
    f->revalidated = how->revalidated;
    f->retry_after = how->retry_after;
    t->running--;
    if (rc == 0 && f->waiters > 0 && api__bundle_copy(&f->bundle, out) != 0) {
        f->rc = IM_ENOMEM;
        im_seterr(&f->err, IM_ENOMEM, "out of memory sharing an answer");
    }
    f->done = true;
    unlink_flight(t, f);
    pthread_cond_broadcast(&t->cond);
    if (f->waiters == 0) {
        im_bundle_free(&f->bundle);
        free(f);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}
