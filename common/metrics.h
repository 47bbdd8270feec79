/* metrics.h - process-wide counters for GET /metrics (Prometheus text).
 *
 * Any module may count; only server/ formats. Every function is thread-safe
 * and lock-free or briefly locked; none allocates on the hot path once a
 * label set has been seen. Label values are bounded (registry names are
 * capped, statuses are numbers), so the series count stays bounded. */
#ifndef IM_METRICS_H
#define IM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outcome.h"

/* Plain counters (monotonic). Image answers are counted by outcome instead
 * (im_metric_outcome). */
enum im_counter {
    IM_STORE_WRITE_FAILURES = 0, /* cache writes that failed (answer still served) */
    IM_RESOLUTIONS_REFUSED,      /* 503 busy: --max-resolutions were already running */
    IM_ANSWER_FILE_HITS,         /* answers read from the answers file (api/afile.c) */
    IM_DB_CONNECT_FAILURES,      /* connections to the shared database that failed */
    IM_DB_CONNECTIONS_LOST,      /* connections to it lost or timed out in use */
    IM_COUNTER__COUNT
};

/* Gauges (current values). */
enum im_gauge {
    IM_RESOLUTIONS_INFLIGHT = 0,
    IM_DB_BYTES,
    IM_DB_DOCUMENTS,
    IM_DB_BLOBS,
    IM_DB_TAGS,
    IM_ANSWER_FILE_ENTRIES,
    IM_ANSWER_FILE_BYTES,
    IM_GAUGE__COUNT
};

void im_metric_inc(enum im_counter c);
/* One image answer of outcome o (imgmeta_cache_lookups_total{outcome=...});
 * IM_OUTCOME_NONE is not counted. */
void im_metric_outcome(enum im_outcome o);
void im_metric_gauge_add(enum im_gauge g, int64_t delta);
void im_metric_gauge_set(enum im_gauge g, int64_t value);

/* One finished HTTP request served by us: route is a fixed label such as
 * "images", "healthz", "other"; seconds is its duration. */
void im_metric_request(const char *route, int status, double seconds);

/* One finished upstream request: registry host, HTTP status (0 for a
 * transport failure), duration. */
void im_metric_upstream(const char *registry, long status, double seconds);

/* Docker Hub's ratelimit-limit / ratelimit-remaining as last seen for a
 * registry (-1 when the header was absent or empty). */
void im_metric_ratelimit(const char *registry, long limit, long remaining);

/* Writes s as a Prometheus label value (the text between the double quotes)
 * into out (n bytes, NUL-terminated): backslash, double quote and newline
 * escaped as the exposition format wants (\\, \", \n); any other control
 * byte, DEL, and every byte of an invalid UTF-8 sequence written as the five
 * characters \\xNN (an escaped backslash, so a reader sees the text \xNN, as
 * the Markdown page shows such bytes). 0, or -1 when out was too small (out
 * then holds a shorter prefix, never a cut escape). Pure. */
int im_prom_label_escape(const char *s, char *out, size_t n);

/* Writes every metric in Prometheus text exposition format 0.0.4. */
void im_metrics_write(FILE *out);

/* Back to zero (tests). */
void im_metrics_reset(void);

#endif
