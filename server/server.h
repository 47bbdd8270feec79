/* server.h - the daemon: configuration table, logging, and the HTTP front on
 * libmicrohttpd that turns connections into api_handle calls.
 *
 * Thread-safety: srv_log may be called from any thread; the configuration is
 * read once at start into a const struct and never changed afterwards. */
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
    char listen[128];          /* "127.0.0.1:8080" */
    char db[1024];             /* SQLite cache file */
    char mirrors[SRV_MAX_MIRRORS][640]; /* "docker.io=http://127.0.0.1:5000" */
    size_t n_mirrors;
    long threads;              /* HTTP worker threads; 0 = 4 x cores (min 8) */
    long connection_limit;
    long tag_ttl;              /* seconds a tag resolution stays fresh */
    long connect_timeout_ms;
    long request_timeout_ms;
    long max_manifest_bytes;
    long max_config_bytes;
    char log_level[16];        /* debug|info|warn|error */
};

/* Parses environment (IMGMETA_*) then argv (flags win) into cfg. Returns 0,
 * 1 when --help was printed to out, or IM_EINVAL with err naming the option. */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, FILE *out,
                    struct im_error *err);
/* Writes the generated option list (from the same table) to out. */
void srv_config_help(FILE *out);

/* ---- logging: one line per event, level checked before formatting ---- */

enum srv_level { SRV_DEBUG = 0, SRV_INFO, SRV_WARN, SRV_ERROR };

/* -1 when name is not a level. */
int srv_level_parse(const char *name);
void srv_log_set_level(enum srv_level level);
bool srv_log_enabled(enum srv_level level);
void srv_log_raw(enum srv_level level, const char *reqid, const char *fmt, ...)
    IM_PRINTF(3, 4);

#define srv_log(level, reqid, ...)                                                      \
    do {                                                                                \
        if (srv_log_enabled(level))                                                     \
            srv_log_raw(level, reqid, __VA_ARGS__);                                     \
    } while (0)

/* ---- the HTTP server ---- */

struct api;
struct srv_http;

/* Starts listening on cfg->listen with a thread pool. NULL with err on
 * failure (address in use, bad address). */
struct srv_http *srv_http_start(const struct srv_config *cfg, struct api *api,
                                struct im_error *err) IM_WUR;
/* Stops accepting, waits for the workers, frees. NULL accepted. */
void srv_http_stop(struct srv_http *h);

#endif
