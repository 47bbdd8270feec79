/* metrics.c - process-wide counters, gauges and latency histograms. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "im.h"

#define MAX_SERIES 256 /* labelled series; more are folded into "other" */
#define LABEL_MAX 64

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* One labelled histogram series: requests (route, status) or upstream
 * (registry, status). */
struct series {
    char label[LABEL_MAX];
    long status;
    uint64_t count;
    double sum;
    uint64_t bucket[NBUCKETS];
};

struct family {
    struct series s[MAX_SERIES];
    size_t n;
};

struct ratelimit {
    char registry[LABEL_MAX];
    long limit, remaining;
};

static atomic_uint_fast64_t counters[IM_COUNTER__COUNT];
static atomic_int_fast64_t gauges[IM_GAUGE__COUNT];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct family requests, upstream;
static struct ratelimit limits[16];
static size_t nlimits;

static atomic_uint_fast64_t outcomes[IM_OUTCOME__COUNT];
static const char *const counter_names[IM_COUNTER__COUNT] = {
    "imgmeta_store_write_failures_total", "imgmeta_resolutions_refused_total",
    "imgmeta_answer_file_hits_total", "imgmeta_db_connect_failures_total",
    "imgmeta_db_connections_lost_total"};
static const char *const counter_help[IM_COUNTER__COUNT] = {
    "Cache writes that failed.",
    "Requests answered 503 busy: --max-resolutions resolutions were running.",
    "Answers read from the answers file.",
    "Connections to the shared (PostgreSQL) cache database that could not be opened.",
    "Connections to the shared cache database lost or timed out while in use."};
static const char *const gauge_names[IM_GAUGE__COUNT] = {"imgmeta_resolutions_in_flight",
                                                         "imgmeta_db_bytes",
                                                         "imgmeta_db_documents",
                                                         "imgmeta_db_blobs",
                                                         "imgmeta_db_tags",
                                                         "imgmeta_answer_file_entries",
                                                         "imgmeta_answer_file_bytes"};
static const char *const gauge_help[IM_GAUGE__COUNT] = {
    "Upstream resolutions running now.",
    "Size of the cache database in bytes.",
    "Manifests and configs in the cache.",
    "Layer blobs known to the cache.",
    "Tag resolutions in the cache.",
    "Answers indexed in the answers file.",
    "Bytes written to the answers file since it last started over."};

void im_metric_inc(enum im_counter c)
{
    atomic_fetch_add(&counters[c], 1);
}
void im_metric_outcome(enum im_outcome o)
{
    if (o > IM_OUTCOME_NONE && o < IM_OUTCOME__COUNT)
        atomic_fetch_add(&outcomes[o], 1);
}
void im_metric_gauge_add(enum im_gauge g, int64_t d)
{
    atomic_fetch_add(&gauges[g], d);
}
void im_metric_gauge_set(enum im_gauge g, int64_t v)
{
    atomic_store(&gauges[g], v);
}

static void observe(struct family *f, const char *label, long status, double seconds)
{
    struct series *s = NULL;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < f->n && !s; i++)
        if (f->s[i].status == status && strcmp(f->s[i].label, label) == 0)
            s = &f->s[i];
    if (!s && f->n < MAX_SERIES) {
        s = &f->s[f->n++];
        im_strlcpy(s->label, label, sizeof s->label);
        s->status = status;
    }
    if (!s)
        s = &f->s[MAX_SERIES - 1]; /* bounded: the last series absorbs overflow */
    s->count++;
    s->sum += seconds;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (seconds <= buckets[i])
            s->bucket[i]++;
    pthread_mutex_unlock(&mu);
}

void im_metric_request(const char *route, int status, double seconds)
{
    observe(&requests, route, status, seconds);
}

void im_metric_upstream(const char *registry, long status, double seconds)
{
    observe(&upstream, registry, status, seconds);
}

void im_metric_ratelimit(const char *registry, long limit, long remaining)
{
    pthread_mutex_lock(&mu);
    size_t i = 0;
    while (i < nlimits && strcmp(limits[i].registry, registry) != 0)
        i++;
    if (i == nlimits && nlimits < sizeof limits / sizeof limits[0])
        im_strlcpy(limits[nlimits++].registry, registry, LABEL_MAX);
    if (i < nlimits) {
        limits[i].limit = limit;
        limits[i].remaining = remaining;
    }
    pthread_mutex_unlock(&mu);
}

static void write_histograms(FILE *out, const struct family *f, const char *name,
                             const char *label_name, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < f->n; i++) {
        const struct series *s = &f->s[i];
        for (size_t b = 0; b < NBUCKETS; b++)
            fprintf(out, "%s_bucket{%s=\"%s\",status=\"%ld\",le=\"%g\"} %llu\n", name,
                    label_name, s->label, s->status, buckets[b],
                    (unsigned long long)s->bucket[b]);
        fprintf(out, "%s_bucket{%s=\"%s\",status=\"%ld\",le=\"+Inf\"} %llu\n", name,
                label_name, s->label, s->status, (unsigned long long)s->count);
        fprintf(out, "%s_sum{%s=\"%s\",status=\"%ld\"} %.6f\n", name, label_name,
                s->label, s->status, s->sum);
        fprintf(out, "%s_count{%s=\"%s\",status=\"%ld\"} %llu\n", name, label_name,
                s->label, s->status, (unsigned long long)s->count);
    }
}

void im_metrics_write(FILE *out)
{
    fprintf(out, "# HELP imgmeta_cache_lookups_total Image answers by cache outcome.\n"
                 "# TYPE imgmeta_cache_lookups_total counter\n");
    for (int o = 0; o < IM_OUTCOME__COUNT; o++)
        if (im_outcome_words((enum im_outcome)o)->metric)
            fprintf(out, "imgmeta_cache_lookups_total{outcome=\"%s\"} %llu\n",
                    im_outcome_words((enum im_outcome)o)->metric,
                    (unsigned long long)atomic_load(&outcomes[o]));
    for (int c = 0; c < IM_COUNTER__COUNT; c++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c],
                counter_help[c], counter_names[c], counter_names[c],
                (unsigned long long)atomic_load(&counters[c]));
    for (int g = 0; g < IM_GAUGE__COUNT; g++)
        fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", gauge_names[g],
                gauge_help[g], gauge_names[g], gauge_names[g],
                (long long)atomic_load(&gauges[g]));
    pthread_mutex_lock(&mu);
    write_histograms(out, &requests, "imgmeta_http_request_duration_seconds", "route",
                     "Requests served, by route and status.");
    write_histograms(out, &upstream, "imgmeta_upstream_request_duration_seconds",
                     "registry", "Requests sent to registries, by registry and status.");
    fprintf(out,
            "# HELP imgmeta_upstream_ratelimit_remaining Last ratelimit-remaining "
            "seen (-1 unknown).\n# TYPE imgmeta_upstream_ratelimit_remaining gauge\n");
    for (size_t i = 0; i < nlimits; i++)
        fprintf(out, "imgmeta_upstream_ratelimit_remaining{registry=\"%s\"} %ld\n",
                limits[i].registry, limits[i].remaining);
    fprintf(out, "# HELP imgmeta_upstream_ratelimit_limit Last ratelimit-limit seen "
                 "(-1 unknown).\n# TYPE imgmeta_upstream_ratelimit_limit gauge\n");
    for (size_t i = 0; i < nlimits; i++)
        fprintf(out, "imgmeta_upstream_ratelimit_limit{registry=\"%s\"} %ld\n",
                limits[i].registry, limits[i].limit);
    pthread_mutex_unlock(&mu);
}

void im_metrics_reset(void)
{
    for (int c = 0; c < IM_COUNTER__COUNT; c++)
        atomic_store(&counters[c], 0);
    for (int o = 0; o < IM_OUTCOME__COUNT; o++)
        atomic_store(&outcomes[o], 0);
    for (int g = 0; g < IM_GAUGE__COUNT; g++)
        atomic_store(&gauges[g], 0);
    pthread_mutex_lock(&mu);
    memset(&requests, 0, sizeof requests);
    memset(&upstream, 0, sizeof upstream);
    nlimits = 0;
    pthread_mutex_unlock(&mu);
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one
 * (cut, overlong, a surrogate, past U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xe0 && s[1] < 0xa0) || (n == 3 && c == 0xed && s[1] >= 0xa0) ||
        (n == 4 && c == 0xf0 && s[1] < 0x90) || (n == 4 && c == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

int im_prom_label_escape(const char *s, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    if (n == 0)
        return -1;
    while (*p) {
        char piece[6];
        size_t len = 0, take = 1, u = utf8_len(p);
        if (*p == '\\' || *p == '"') {
            piece[len++] = '\\';
            piece[len++] = (char)*p;
        } else if (*p == '\n') {
            piece[len++] = '\\';
            piece[len++] = 'n';
        } else if (u == 0 || *p < 0x20 || *p == 0x7f) {
            memcpy(piece, "\\\\x", 3);
            piece[3] = hex[*p >> 4];
            piece[4] = hex[*p & 15];
            len = 5;
        } else {
            memcpy(piece, p, u);
            len = take = u;
        }
        if (o + len >= n) {
            out[o] = '\0';
            return -1;
        }
        memcpy(out + o, piece, len);
        o += len;
        p += take;
    }
    out[o] = '\0';
    return 0;
}
