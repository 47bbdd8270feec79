/* watch.c - the watcher thread: keeps the watched references fresh through
 * the same path GET /images/REF takes (api_watch_check: the cache rules, the
 * in-flight coalescing, the store) and holds their facts for /metrics.
 *
 * Thread-safety: one thread of its own checks the references one at a time;
 * the facts are read by /metrics on an HTTP thread under w->mu, a leaf lock
 * never held across a check (docs/CONCURRENCY.md). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "metrics.h"
#include "server.h"

#define MAX_INTERVAL_S 86400 /* a digest reference is fresh for good: look daily */
#define MIN_INTERVAL_MS 1000 /* --tag-ttl 0 would otherwise ask without a pause */
#define RETRY_AFTER_MAX_S 3600

struct entry {
    struct srv_watch_item item;
    char *label;            /* item.image escaped for a label value */
    int64_t due_ms;         /* im_monotonic_ms of the next check */
    unsigned failed_in_row; /* checks failed since the last success */
    /* the facts: written by the thread under mu, read by /metrics under mu */
    bool have;
    char digest[IM_DIGEST_MAX];
    struct api_watch_platform *platforms;
    size_t n_platforms;
    int64_t last_change, last_success; /* Unix seconds; 0 = never */
    uint64_t failures;
};

struct srv_watch {
    struct api *api;
    struct entry *e;
    size_t n;
    uint64_t rng; /* the thread's own */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: stop asked, thread done */
    bool stop, done, joinable;
    pthread_t thread;
};

static uint64_t next_random(struct srv_watch *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* Up to a tenth of interval_ms (at most SRV_WATCH_JITTER_MAX_S), at random. */
static int64_t jitter(struct srv_watch *w, int64_t interval_ms)
{
    int64_t span = interval_ms / 10;
    if (span > SRV_WATCH_JITTER_MAX_S * 1000L)
        span = SRV_WATCH_JITTER_MAX_S * 1000L;
    return span > 0 ? (int64_t)(next_random(w) % (uint64_t)(span + 1)) : 0;
}

static struct timespec mono_ts(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    return ts;
}

/* Takes f's facts into e (under mu): a new digest is a change, dated when the
 * cache first saw it (else now). */
static void take_facts(struct srv_watch *w, struct entry *e, struct api_watch_facts *f,
                       int64_t now)
{
    if (!f->changed)
        return;
    pthread_mutex_lock(&w->mu);
    free(e->platforms);
    e->platforms = f->platforms;
    e->n_platforms = f->n_platforms;
    f->platforms = NULL;
    f->n_platforms = 0;
    im_strlcpy(e->digest, f->digest, sizeof e->digest);
    e->have = true;
    e->last_change = f->since > 0 && f->since <= now ? f->since : now;
    pthread_mutex_unlock(&w->mu);
    srv_log(SRV_INFO, NULL, "event=watch_changed image=\"%s\" digest=%s platforms=%zu",
            e->label, e->digest, e->n_platforms);
}

static void failed(struct srv_watch *w, struct entry *e, const char *msg,
                   long retry_after)
{
    int64_t delay_s = SRV_WATCH_BACKOFF_MIN_S;
    for (unsigned i = 0; i < e->failed_in_row && delay_s < SRV_WATCH_BACKOFF_MAX_S; i++)
        delay_s *= 2;
    if (delay_s > SRV_WATCH_BACKOFF_MAX_S)
        delay_s = SRV_WATCH_BACKOFF_MAX_S;
    if (retry_after > delay_s)
        delay_s = retry_after < RETRY_AFTER_MAX_S ? retry_after : RETRY_AFTER_MAX_S;
    e->failed_in_row++;
    e->due_ms = im_monotonic_ms() + delay_s * 1000 + jitter(w, delay_s * 1000);
    pthread_mutex_lock(&w->mu);
    e->failures++;
    pthread_mutex_unlock(&w->mu);
    srv_log(SRV_WARN, NULL,
            "event=watch_failed image=\"%s\" in_row=%u retry_in_s=%lld msg=\"%s\"",
            e->label, e->failed_in_row, (long long)delay_s, msg);
}

/* One check of e: its facts when they changed, its next check. */
static void check(struct srv_watch *w, struct entry *e)
{
    struct api_watch_facts f;
    struct im_error err = {{0}};
    int rc = api_watch_check(w->api, &e->item.ref, e->have ? e->digest : NULL, &f, &err);
    if (rc != 0) {
        failed(w, e, err.msg, f.retry_after);
        return;
    }
    int64_t now = im_now();
    take_facts(w, e, &f, now);
    if (f.stale) { /* the registry failed: the cached facts stand */
        failed(w, e, "the registry failed; the cached answer is kept", f.retry_after);
    } else {
        int64_t every = (f.fresh_for < MAX_INTERVAL_S ? f.fresh_for : MAX_INTERVAL_S);
        every *= 1000;
        if (every < MIN_INTERVAL_MS)
            every = MIN_INTERVAL_MS;
        e->failed_in_row = 0;
        e->due_ms = im_monotonic_ms() + every + jitter(w, every);
        pthread_mutex_lock(&w->mu);
        e->last_success = now;
        pthread_mutex_unlock(&w->mu);
    }
    api_watch_facts_free(&f);
}

/* The entry due first (only the thread changes due_ms). */
static struct entry *earliest(struct srv_watch *w)
{
    struct entry *first = &w->e[0];
    for (size_t i = 1; i < w->n; i++)
        if (w->e[i].due_ms < first->due_ms)
            first = &w->e[i];
    return first;
}

static void *watch_main(void *arg)
{
    struct srv_watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct entry *e = earliest(w);
        if (e->due_ms > im_monotonic_ms()) {
            struct timespec ts = mono_ts(e->due_ms);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        check(w, e);
        pthread_mutex_lock(&w->mu);
    }
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watch_free(struct srv_watch *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].platforms);
        free(w->e[i].label);
    }
    free(w->e);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Fills w from list (emptied on success); on failure watch_free frees what
 * was made. */
static int watch_init(struct srv_watch *w, struct srv_watch_list *list)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->e = calloc(list->n ? list->n : 1, sizeof *w->e);
    if (!w->e)
        return IM_ENOMEM;
    w->n = list->n;
    int64_t now = im_monotonic_ms();
    for (size_t i = 0; i < w->n; i++) {
        char label[SRV_WATCH_IMAGE_MAX * 5];
        w->e[i].item = list->items[i];
        (void)im_prom_label_escape(list->items[i].image, label, sizeof label);
        w->e[i].label = strdup(label);
        if (!w->e[i].label)
            return IM_ENOMEM;
        w->e[i].due_ms = now; /* each checked at once, in the order given */
    }
    srv_watch_list_free(list);
    w->rng = (uint64_t)now * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() ^ 1;
    return 0;
}

struct srv_watch *srv_watch_start(struct api *api, struct srv_watch_list *list,
                                  struct im_error *err)
{
    size_t n = list->n;
    struct srv_watch *w = calloc(1, sizeof *w);
    if (!w) {
        im_seterr(err, IM_ENOMEM, "out of memory for %zu watched references", n);
        return NULL;
    }
    if (watch_init(w, list) != 0) {
        watch_free(w);
        im_seterr(err, IM_ENOMEM, "out of memory for %zu watched references", n);
        return NULL;
    }
    w->api = api;
    w->done = w->n == 0;
    if (w->n > 0) {
        int rc = pthread_create(&w->thread, NULL, watch_main, w);
        if (rc != 0) {
            watch_free(w);
            im_seterr(err, IM_ENOMEM, "cannot start the watcher thread (%d)", rc);
            return NULL;
        }
        w->joinable = true;
    }
    return w;
}

void srv_watch_signal_stop(struct srv_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool srv_watch_stop(struct srv_watch *w, int64_t deadline_ms)
{
    if (!w)
        return true;
    srv_watch_signal_stop(w);
    struct timespec ts = mono_ts(deadline_ms);
    pthread_mutex_lock(&w->mu);
    while (!w->done && im_monotonic_ms() < deadline_ms)
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    bool done = w->done;
    pthread_mutex_unlock(&w->mu);
    if (!done)
        return false;
    if (w->joinable)
        pthread_join(w->thread, NULL);
    watch_free(w);
    return true;
}

/* ---- the home page (api_set_home_source) ---- */

/* e's facts into h (under mu): 0, or IM_ENOMEM. */
static int copy_home(const struct entry *e, struct api_home_image *h)
{
    im_strlcpy(h->image, e->item.image, sizeof h->image);
    h->ref = e->item.ref;
    if (!e->have)
        return 0;
    im_strlcpy(h->digest, e->digest, sizeof h->digest);
    if (e->n_platforms == 0)
        return 0;
    h->platforms = malloc(e->n_platforms * sizeof *h->platforms);
    if (!h->platforms)
        return IM_ENOMEM;
    memcpy(h->platforms, e->platforms, e->n_platforms * sizeof *h->platforms);
    h->n_platforms = e->n_platforms;
    return 0;
}

int srv_watch_home(void *ctx, struct api_home_list *out)
{
    struct srv_watch *w = ctx;
    int rc = 0;
    out->v = NULL;
    out->n = 0;
    if (!w || w->n == 0)
        return 0;
    out->v = calloc(w->n, sizeof *out->v); /* w->n is at most SRV_WATCH_MAX */
    if (!out->v)
        return IM_ENOMEM;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n && rc == 0; i++, out->n++)
        rc = copy_home(&w->e[i], &out->v[i]);
    pthread_mutex_unlock(&w->mu);
    if (rc != 0)
        api_home_list_free(out);
    return rc;
}

/* ---- /metrics ---- */

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_platforms(FILE *out, const struct srv_watch *w, bool sizes)
{
    char plat[API_WATCH_PLATFORM_MAX * 5];
    for (size_t i = 0; i < w->n; i++) {
        const struct entry *e = &w->e[i];
        for (size_t p = 0; p < e->n_platforms; p++) {
            const struct api_watch_platform *ap = &e->platforms[p];
            if (sizes && ap->size < 0)
                continue; /* a layer's size unknown: no series rather than a wrong one */
            (void)im_prom_label_escape(ap->platform, plat, sizeof plat);
            fprintf(out, "%s{image=\"%s\",platform=\"%s\"} %lld\n",
                    sizes ? "imgmeta_image_size_bytes" : "imgmeta_image_layers", e->label,
                    plat, sizes ? (long long)ap->size : (long long)ap->layers);
        }
    }
}

/* A timestamp family: each entry's last change (change) or last success;
 * no series for a time that has not come yet (0). */
static void write_times(FILE *out, const struct srv_watch *w, const char *name,
                        const char *help, bool change)
{
    family(out, name, "gauge", help);
    for (size_t i = 0; i < w->n; i++) {
        int64_t t = change ? w->e[i].last_change : w->e[i].last_success;
        if (t > 0)
            fprintf(out, "%s{image=\"%s\"} %lld\n", name, w->e[i].label, (long long)t);
    }
}

static void write_per_image(FILE *out, const struct srv_watch *w)
{
    char digest[IM_DIGEST_MAX * 5];
    family(out, "imgmeta_image_info", "gauge",
           "A watched image's current digest (value 1).");
    for (size_t i = 0; i < w->n; i++)
        if (w->e[i].have) {
            (void)im_prom_label_escape(w->e[i].digest, digest, sizeof digest);
            fprintf(out, "imgmeta_image_info{image=\"%s\",digest=\"%s\"} 1\n",
                    w->e[i].label, digest);
        }
    write_times(out, w, "imgmeta_image_last_change_timestamp_seconds",
                "When this daemon first saw a watched image at its current digest.",
                true);
    write_times(out, w, "imgmeta_watch_last_success_timestamp_seconds",
                "When a watched image was last checked against its registry "
                "successfully.",
                false);
    family(out, "imgmeta_watch_failures_total", "counter",
           "Checks of a watched image that failed (registry down, not found, ...).");
    for (size_t i = 0; i < w->n; i++)
        fprintf(out, "imgmeta_watch_failures_total{image=\"%s\"} %llu\n", w->e[i].label,
                (unsigned long long)w->e[i].failures);
}

void srv_watch_metrics(struct srv_watch *w, FILE *out)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    family(out, "imgmeta_watch_references", "gauge", "References watched (--watch).");
    fprintf(out, "imgmeta_watch_references %zu\n", w->n);
    family(out, "imgmeta_image_size_bytes", "gauge",
           "Compressed size of a watched image's platform (the page's Total Size).");
    write_platforms(out, w, true);
    family(out, "imgmeta_image_layers", "gauge", "Layers of a watched image's platform.");
    write_platforms(out, w, false);
    write_per_image(out, w);
    pthread_mutex_unlock(&w->mu);
}
