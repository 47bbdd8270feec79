/* server.h - the daemon: configuration table, logging, the rules on the bytes
 * of a request, and the HTTP front on libmicrohttpd that turns connections
 * into api_handle calls.
 *
 * Thread-safety: srv_log may be called from any thread; the configuration is
 * read once at start into a const struct and never changed afterwards; the
 * request checks are pure functions. */
#ifndef SERVER_H
#define SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "im.h"

/* ---- configuration (one table: flag, environment variable, bounds, default) ---- */

#define SRV_MAX_MIRRORS 16

struct srv_config {
    char listen[128]; /* "127.0.0.1:8080" */
    char db[1024];    /* SQLite cache file, or a PostgreSQL URI (shared by replicas) */
    char answer_file_dir[1024];         /* "": the database file's directory */
    char mirrors[SRV_MAX_MIRRORS][640]; /* "docker.io=http://127.0.0.1:5000" */
    size_t n_mirrors;
    long threads; /* HTTP worker threads; 0 = one per core */
    long connection_limit;
    long tag_ttl;   /* seconds a tag resolution stays fresh */
    long layer_ttl; /* seconds a layer's facts answer for other images */
    long connect_timeout_ms;
    long request_timeout_ms;
    long max_manifest_bytes;
    long max_config_bytes;
    char log_level[16];      /* debug|info|warn|error */
    long access_log_buffer;  /* bytes of info lines buffered, 0 = none */
    char markdown_style[16]; /* seed|current: the Markdown page's default form */
    /* outbound security policy (registry/policy.c, SECURITY.md) */
    char allow_registries[2048];    /* comma-separated; "default" = built-in list */
    char insecure_registries[2048]; /* comma-separated; plain http, private addresses */
    bool allow_private;             /* any host may be on a non-public address */
    long shutdown_timeout;          /* seconds SIGTERM waits for in-flight requests */
    char config[1024];              /* the config file read, "" for none */
    /* the cache (store/, api/describe.c, server/cache_cmd.c) */
    long max_stale;              /* seconds past the TTL a stale entry may be served */
    long negative_ttl;           /* seconds a missing tag is remembered */
    long cache_max_bytes;        /* database size budget, 0 = none */
    bool db_recover;             /* move a damaged database aside and start empty */
    char admin_token[128];       /* bearer token for /admin/, "" = disabled */
    char docker_config[1024];    /* Docker config.json with credentials, "" = none */
    long cred_helper_timeout_ms; /* a credential helper's time to answer */
    long cred_helper_ttl;        /* seconds its answer is kept, 0 = not kept */
    long max_retries;            /* upstream retries */
    char registry_ttl[2048];     /* "ghcr.io=60,quay.io=900": per-registry --tag-ttl */
    long max_resolutions;    /* distinct references resolved upstream at once, 0 = any */
    long upstream_threads;   /* threads for requests that wait on upstream work;
                                0 = 2 x max_resolutions (8..1024, 64 for any) */
    long upstream_queue;     /* such requests waiting for one of them; more: 503 */
    long answer_cache_bytes; /* in-memory LRU of rendered answers, 0 = none */
    long answer_file_bytes;  /* the answers file next to the database, 0 = none */
    long tag_memory;         /* tag rows kept in memory (store_set_tag_memory) */
    long malloc_arenas;      /* M_ARENA_MAX, 0 = glibc's default */
    bool prewarm;            /* probe the default registries at start */
    char watch[16384];       /* comma-separated references kept fresh (--watch) */
    char watch_file[1024];   /* a file of them, one a line, "" = none */
};

/* Fills cfg from, in increasing precedence: the table's defaults, the config
 * file (--config FILE or IMGMETA_CONFIG: "name = value" lines with the flags'
 * names, '#' comments), the environment (IMGMETA_*), then argv. Returns 0,
 * 1 when --help was printed to out, or IM_EINVAL with err naming the option
 * (and the file and line for the config file). */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, FILE *out,
                    struct im_error *err);
/* Writes the generated option list (from the same table) to out. */
void srv_config_help(FILE *out);

/* ---- the cache (cache_cmd.c) ---- */

struct api_config;
struct store;
/* Copies the cache options of cfg into acfg; IM_EINVAL with err when
 * --registry-ttl does not parse. */
int srv_cache_api_config(const struct srv_config *cfg, struct api_config *acfg,
                         struct im_error *err);
/* store_open(cfg->db); a damaged file is moved aside and replaced by an empty
 * database when cfg->db_recover, else refused with a message saying so. */
struct store *srv_cache_open(const struct srv_config *cfg, struct im_error *err) IM_WUR;
/* imgmeta cache stats|purge REF|gc|check [options]: argv after "cache";
 * returns the exit status. */
int srv_cache_command(int argc, char **argv);

/* ---- watched images (watchlist.c: the list; watch.c: the thread) ---- */

#define SRV_WATCH_MAX 4096            /* watched references; a longer list is refused */
#define SRV_WATCH_LINE_MAX 512        /* bytes of one --watch-file line */
#define SRV_WATCH_FILE_MAX (1L << 20) /* bytes of a --watch-file */
#define SRV_WATCH_IMAGE_MAX 560       /* the image label: "python:3.7-slim" */

/* One watched reference: as parsed, and as the image label shows it (Docker
 * Hub's without docker.io/ and library/, other registries with their host). */
struct srv_watch_item {
    struct im_ref ref;
    char image[SRV_WATCH_IMAGE_MAX];
};

/* The watched references, in the order given, each once. */
struct srv_watch_list {
    struct srv_watch_item *items;
    size_t n, cap;
};

/* Adds the comma-separated references of csv (--watch, IMGMETA_WATCH). 0, or
 * IM_EINVAL with err naming the item ("--watch: item 2 'x:': ...") and the
 * list unchanged past the items before it; IM_ENOMEM. */
int srv_watch_list_add_csv(struct srv_watch_list *l, const char *csv,
                           struct im_error *err) IM_WUR;
/* Adds the references of len bytes of text, one a line: blanks around it, an
 * empty line and anything from a '#' on are ignored; a NUL byte, a line over
 * SRV_WATCH_LINE_MAX bytes, an invalid reference, one naming both a tag and a
 * digest, one already in the list and the SRV_WATCH_MAX + 1st are refused,
 * with err saying "NAME:LINE: why". 0, IM_EINVAL or IM_ENOMEM. */
int srv_watch_list_add_text(struct srv_watch_list *l, const char *name, const char *text,
                            size_t len, struct im_error *err) IM_WUR;
/* srv_watch_list_add_text of the file at path (at most SRV_WATCH_FILE_MAX
 * bytes, else refused). */
int srv_watch_list_add_file(struct srv_watch_list *l, const char *path,
                            struct im_error *err) IM_WUR;
void srv_watch_list_free(struct srv_watch_list *l);

struct api;
struct srv_watch;
struct api_home_list;

/* Starts the watcher thread over list (taken: it is emptied). Each reference
 * is checked at once, then again when its freshness ends (api_watch_check:
 * one manifest HEAD, a resolution when it moved), plus a jitter of up to a
 * tenth of that (at most SRV_WATCH_JITTER_MAX_S); a failure is retried after
 * SRV_WATCH_BACKOFF_MIN_S doubling up to SRV_WATCH_BACKOFF_MAX_S (or the
 * registry's Retry-After, up to an hour), keeping the last facts. One
 * reference is checked at a time. NULL with err when the thread cannot be
 * made; an empty list gives a watcher that runs no thread. */
#define SRV_WATCH_JITTER_MAX_S 30
#define SRV_WATCH_BACKOFF_MIN_S 2
#define SRV_WATCH_BACKOFF_MAX_S 300
struct srv_watch *srv_watch_start(struct api *api, struct srv_watch_list *list,
                                  struct im_error *err) IM_WUR;
/* Asks the thread to stop (it finishes the check it is in). NULL accepted. */
void srv_watch_signal_stop(struct srv_watch *w);
/* Waits until deadline_ms (im_monotonic_ms) for the thread to end and frees
 * w: true; false when it was still in a check then (w is left as it is, the
 * caller ends the process). NULL accepted (true). */
bool srv_watch_stop(struct srv_watch *w, int64_t deadline_ms);
/* Writes the watched images' series (imgmeta_image_*, imgmeta_watch_*). */
void srv_watch_metrics(struct srv_watch *w, FILE *out);
/* api_home_source_fn over a struct srv_watch (ctx): a copy of every watched
 * reference's name, digest and platforms, taken under its lock. Thread-safe. */
int srv_watch_home(void *ctx, struct api_home_list *out);

/* ---- logging: one line per event, level checked before formatting ---- */

enum srv_level { SRV_DEBUG = 0, SRV_INFO, SRV_WARN, SRV_ERROR };

/* -1 when name is not a level. */
int srv_level_parse(const char *name);
void srv_log_set_level(enum srv_level level);
/* Buffers info and debug lines, up to bytes of them (0: none, every line
 * written at once): written when the buffer is full, before any warning or
 * error, every 200 ms (a thread of its own) and at srv_log_buffer_stop. What
 * a crash cuts short is lost. 0, or -1 when out of memory or threads. */
int srv_log_buffer_start(size_t bytes);
/* Stops the flusher and writes what is buffered. Idempotent. */
void srv_log_buffer_stop(void);
bool srv_log_enabled(enum srv_level level);
void srv_log_raw(enum srv_level level, const char *reqid, const char *fmt, ...)
    IM_PRINTF(3, 4);

#define srv_log(level, reqid, ...)                                                       \
    do {                                                                                 \
        if (srv_log_enabled(level))                                                      \
            srv_log_raw(level, reqid, __VA_ARGS__);                                      \
    } while (0)

/* ---- metrics (GET /metrics) ---- */

#define SRV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct api;

/* The process metrics in Prometheus text format 0.0.4, after refreshing the
 * cache gauges through a (may be NULL), and the watched images' series of w
 * (may be NULL). *body is malloc'd, the caller frees it. 0 or IM_ENOMEM. */
int srv_metrics_text(struct api *a, struct srv_watch *w, char **body, size_t *len) IM_WUR;

/* ---- the bytes a request may carry (reqcheck.c) ---- */

/* What is wrong with a part of a request, in the order they are looked for at
 * each byte. */
enum srv_fault {
    SRV_FAULT_NONE = 0,
    SRV_FAULT_ESCAPE,  /* a '%' not followed by two hex digits ("%", "%G1") */
    SRV_FAULT_CONTROL, /* a byte below 0x20 or 0x7f, as it is or as an escape */
    SRV_FAULT_UTF8,    /* decoded, not UTF-8: cut, overlong (%C0%AE), surrogate, ... */
    SRV_FAULT_SLASH    /* %2F in the path: it would become a separator */
};

enum srv_part { SRV_PART_PATH, SRV_PART_QUERY, SRV_PART_HEADER };

/* Judges n bytes of one component of a request target as the client wrote
 * it, before any percent-decoding: the path (all four faults) or a query
 * (the first three; %2F is a plain '/' in a value). Decodes once: "%2500" is
 * the three bytes "%00", no fault. SRV_FAULT_NONE or the first fault. */
enum srv_fault srv_check_component(const char *s, size_t n, enum srv_part part);
/* A whole request target, "PATH[?QUERY]" (n bytes, not decoded): the path up
 * to the first '?', then the query. The first fault, and in *where the part
 * it is in. */
enum srv_fault srv_check_target(const char *target, size_t n, enum srv_part *where);
/* A header field's name or value (n bytes): SRV_FAULT_CONTROL for a byte
 * below 0x20 other than HTAB, or 0x7f (RFC 9110, section 5.5). */
enum srv_fault srv_check_field(const char *s, size_t n);
/* One static sentence saying what was wrong, for the 400's message ("the path
 * decodes to a control character ..."); never NULL. */
const char *srv_fault_text(enum srv_fault f, enum srv_part part);

/* ---- the HTTP server ---- */

struct api;
struct srv_http;

/* Starts listening on cfg->listen with a thread pool; /metrics shows watch's
 * series (NULL: none). NULL with err on failure (address in use, bad
 * address). */
struct srv_http *srv_http_start(const struct srv_config *cfg, struct api *api,
                                struct srv_watch *watch, struct im_error *err) IM_WUR;
/* The most HTTP worker threads: --threads' bound, and the default's. */
#define SRV_THREADS_MAX 1024
/* The number of libmicrohttpd worker threads h runs (--threads, or the
 * default it chose); 0 for NULL. */
long srv_http_threads(const struct srv_http *h);
/* The TCP port h listens on: the one the kernel chose when cfg->listen asked
 * for port 0; 0 for NULL or when libmicrohttpd cannot tell. */
unsigned srv_http_port(const struct srv_http *h);
/* Stops accepting new connections, waits up to cfg->shutdown_timeout seconds
 * for the requests in flight to complete (the others are answered 503
 * shutting_down), then stops the workers and frees. true when everything
 * stopped; false when upstream threads were still in a job's upstream work
 * SRV_STOP_GRACE_MS later: then nothing is freed, the modules they use must
 * not be either, and the caller ends the process (_exit). NULL accepted. */
#define SRV_STOP_GRACE_MS 1000
bool srv_http_stop(struct srv_http *h);

#endif
