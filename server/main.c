/* main.c - reads the configuration, wires the modules, runs until a signal. */
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "registry.h"
#include "server.h"
#include "store.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: imgmeta serve [options]   run the HTTP service (see serve --help)\n"
        "       imgmeta describe REF [--format json|markdown] [--platform P]\n"
        "                                 describe one image and exit (describe --help)\n"
        "       imgmeta cache stats|purge REF|gc|check\n"
        "                                 inspect or tidy the cache file (cache --help)\n"
        "       imgmeta version           print the version\n");
}

/* Creates the directory that will hold the database file, one level deep. */
static int ensure_db_dir(const char *db, struct im_error *err)
{
    char dir[1024];
    if (strlen(db) >= sizeof dir)
        return im_seterr(err, IM_EINVAL, "--db path too long");
    if (strcmp(db, ":memory:") == 0 || store_is_uri(db) || !strchr(db, '/') ||
        im_path_dir(db, dir, sizeof dir) || strcmp(dir, "/") == 0)
        return 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return im_seterr(err, IM_ESTORE, "cannot create directory %s for the cache", dir);
    return 0;
}

static int mirrors_to_registry(const struct srv_config *cfg, struct reg_config *rc,
                               struct im_error *err)
{
    for (size_t i = 0; i < cfg->n_mirrors && i < REG_MAX_MIRRORS; i++) {
        const char *m = cfg->mirrors[i], *eq = strchr(m, '=');
        struct reg_mirror *dst = &rc->mirrors[rc->n_mirrors];
        size_t nl = (size_t)(eq - m);
        if (nl == 0 || nl >= sizeof dst->registry)
            return im_seterr(err, IM_EINVAL, "--mirror: bad registry name in '%s'", m);
        memcpy(dst->registry, m, nl);
        dst->registry[nl] = '\0';
        if (strncmp(eq + 1, "http://", 7) != 0 && strncmp(eq + 1, "https://", 8) != 0)
            return im_seterr(err, IM_EINVAL,
                             "--mirror: URL must start with http(s)://: '%s'", m);
        if (im_strlcpy(dst->base_url, eq + 1, sizeof dst->base_url) != 0)
            return im_seterr(err, IM_EINVAL, "--mirror: URL too long in '%s'", m);
        rc->n_mirrors++;
    }
    return 0;
}

static void wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    srv_log(SRV_INFO, NULL, "event=shutdown signal=%d", sig);
}

/* The modules one command runs on: the cache, the registry client, the API. */
struct modules {
    struct store *store;
    struct reg_client *reg;
    struct api *api;
};

static int open_modules(const struct srv_config *cfg, struct modules *m,
                        struct im_error *err)
{
    struct reg_config rcfg;
    struct api_config acfg;
    reg_config_defaults(&rcfg);
    rcfg.connect_timeout_ms = cfg->connect_timeout_ms;
    rcfg.request_timeout_ms = cfg->request_timeout_ms;
    rcfg.max_manifest_bytes = (size_t)cfg->max_manifest_bytes;
    rcfg.max_config_bytes = (size_t)cfg->max_config_bytes;
    rcfg.max_retries = (int)cfg->max_retries;
    rcfg.docker_config_path = cfg->docker_config[0] ? cfg->docker_config : NULL;
    rcfg.helper_timeout_ms = cfg->cred_helper_timeout_ms;
    rcfg.helper_ttl_s = cfg->cred_helper_ttl;
    api_config_defaults(&acfg);
    acfg.tag_ttl_seconds = cfg->tag_ttl;
    acfg.layer_ttl_seconds = cfg->layer_ttl;
    acfg.max_resolutions = cfg->max_resolutions;
    memset(m, 0, sizeof *m);
    if (srv_cache_api_config(cfg, &acfg, err) != 0 ||
        mirrors_to_registry(cfg, &rcfg, err) != 0 ||
        /* outbound security policy (registry/policy.c) */
        reg_config_policy(&rcfg, cfg->allow_registries, cfg->insecure_registries,
                          cfg->allow_private, err) != 0 ||
        ensure_db_dir(cfg->db, err) != 0)
        return 1;
    if (!(m->store = srv_cache_open(cfg, err)) ||
        !(m->reg = reg_client_new(&rcfg, err)) ||
        !(m->api = api_new(&acfg, m->store, m->reg, err)))
        return 1;
    if (api_answers_file_error(m->api))
        srv_log(SRV_WARN, NULL, "event=answers_file_off msg=\"%s\"",
                api_answers_file_error(m->api));
    return 0;
}

/* Frees in reverse order; closing the store checkpoints and closes SQLite. */
static void close_modules(struct modules *m)
{
    api_free(m->api);
    reg_client_free(m->reg);
    store_close(m->store);
    memset(m, 0, sizeof *m);
}

/* One line per start-up probe of a registry (reg_prewarm). */
static void log_probe(void *cls, const struct reg_probe *p)
{
    bool failed = strcmp(p->outcome, "failed") == 0;
    const char *key = failed ? "msg" : p->detail[0] ? "realm" : NULL;
    (void)cls;
    if (key)
        srv_log(failed ? SRV_WARN : SRV_INFO, NULL,
                "event=prewarm registry=%s outcome=%s ms=%ld url=\"%s\" %s=\"%s\"",
                p->registry, p->outcome, p->ms, p->url, key, p->detail);
    else
        srv_log(SRV_INFO, NULL, "event=prewarm registry=%s outcome=%s ms=%ld url=\"%s\"",
                p->registry, p->outcome, p->ms, p->url);
}

/* Starts the registries' probes in the background; never fails start-up. */
static void prewarm(const struct srv_config *cfg, struct reg_client *reg)
{
    struct im_error err = {{0}};
    if (cfg->prewarm && reg_prewarm(reg, log_probe, NULL, &err) != 0)
        srv_log(SRV_WARN, NULL, "event=prewarm_off msg=\"%s\"", err.msg);
}

/* The start line, written whatever --log-level says: it carries the address
 * actually bound (the port the kernel chose for --listen HOST:0), which is how
 * a supervisor or a test learns where to connect. */
static void log_listening(const struct srv_config *cfg, const struct srv_http *http)
{
    const char *colon = strrchr(cfg->listen, ':');
    int hl = colon ? (int)(colon - cfg->listen) : 0;
    char db[512];
    store_safe_name(cfg->db, db, sizeof db);
    srv_log_raw(SRV_INFO, NULL,
                "event=listening addr=%.*s:%u threads=%ld db=\"%s\" mirrors=%zu "
                "tag_ttl=%ld config=\"%s\"",
                hl, cfg->listen, srv_http_port(http), srv_http_threads(http), db,
                cfg->n_mirrors, cfg->tag_ttl, cfg->config);
}

/* The watched references of --watch and --watch-file, checked before any
 * thread starts: an invalid one refuses the start. */
static int watch_list(const struct srv_config *cfg, struct srv_watch_list *l,
                      struct im_error *err)
{
    int rc = srv_watch_list_add_csv(l, cfg->watch, err);
    if (rc == 0 && cfg->watch_file[0])
        rc = srv_watch_list_add_file(l, cfg->watch_file, err);
    return rc;
}

/* Stops the watcher and the HTTP server within --shutdown-timeout (plus the
 * grace the upstream threads get): false when a thread still runs upstream
 * work, so the modules must stay as they are. */
static bool stop_threads(const struct srv_config *cfg, struct srv_watch *watch,
                         struct srv_http *http)
{
    int64_t deadline =
        im_monotonic_ms() + cfg->shutdown_timeout * 1000L + SRV_STOP_GRACE_MS;
    srv_watch_signal_stop(watch); /* it ends its check while requests drain */
    bool http_stopped = srv_http_stop(http);
    bool watch_stopped = srv_watch_stop(watch, deadline);
    return http_stopped && watch_stopped;
}

static int serve(int argc, char **argv)
{
    struct srv_config cfg;
    struct im_error err = {{0}};
    struct modules m = {0};
    struct srv_http *http = NULL;
    struct srv_watch *watch = NULL;
    struct srv_watch_list watched = {0};
    int rc = srv_config_load(&cfg, argc, argv, stdout, &err);
    if (rc == 0)
        rc = watch_list(&cfg, &watched, &err) == 0 ? 0 : 2;
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "imgmeta: %s\n", err.msg);
        srv_watch_list_free(&watched);
        return 2;
    }
    srv_log_set_level((enum srv_level)srv_level_parse(cfg.log_level));

    /* Signals are taken by sigwait below: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Before any thread starts: glibc would give each HTTP thread an arena of
     * its own, each keeping the memory freed in it (README, Architecture). */
    if (cfg.malloc_arenas > 0 && mallopt(M_ARENA_MAX, (int)cfg.malloc_arenas) != 1)
        srv_log(SRV_WARN, NULL, "event=mallopt_failed arenas=%ld", cfg.malloc_arenas);

    rc = 1;
    if (srv_log_buffer_start((size_t)cfg.access_log_buffer) != 0) {
        snprintf(err.msg, sizeof err.msg, "cannot start the log buffer");
        goto out;
    }
    if (open_modules(&cfg, &m, &err) != 0)
        goto out;
    prewarm(&cfg, m.reg); /* before listening: a first request finds it on its way */
    if (watched.n > 0 && !(watch = srv_watch_start(m.api, &watched, &err)))
        goto out;
    if (watch) /* before the HTTP threads start: GET / lists the watched images */
        api_set_home_source(m.api, srv_watch_home, watch);
    if (!(http = srv_http_start(&cfg, m.api, watch, &err)))
        goto out;
    log_listening(&cfg, http);
    wait_for_signal();
    rc = 0;
out:
    if (rc != 0)
        srv_log(SRV_ERROR, NULL, "event=startup_failed msg=\"%s\"", err.msg);
    srv_watch_list_free(&watched);
    if (!stop_threads(&cfg, watch, http)) { /* drains the requests in flight first */
        /* an upstream or the watcher thread still uses the modules: leave them.
         * The cache is SQLite in WAL mode, so a write cut short now is rolled
         * back at the next open; the answers file is never linked. */
        srv_log(SRV_INFO, NULL, "event=stopped forced=1");
        srv_log_buffer_stop();
        fflush(NULL);
        _exit(rc);
    }
    close_modules(&m);
    if (rc == 0)
        srv_log(SRV_INFO, NULL, "event=stopped");
    srv_log_buffer_stop();
    return rc;
}

/* imgmeta describe: exit codes. */
enum { EXIT_FOUND = 0, EXIT_NOT_FOUND = 1, EXIT_USAGE = 2, EXIT_UPSTREAM = 3 };

static void describe_usage(FILE *out)
{
    fprintf(
        out,
        "usage: imgmeta describe REF [--format json|markdown] [--style seed|current]\n"
        "                        [--platform OS/ARCH[/VARIANT]]...\n"
        "                        [serve options: --db, --mirror, --config, ...]\n"
        "Describes REF (e.g. python:3.7-slim, ghcr.io/org/app@sha256:...) once, through "
        "the\n"
        "same cache file and code path as GET /images/REF. --style picks the Markdown\n"
        "page's form (and means --format markdown when no --format is given): seed, the\n"
        "2018 page's, or current, today's (the platform count shown); the default is\n"
        "--markdown-style. Exit status: 0 described, 1 not found, 2 usage or invalid\n"
        "reference, 3 upstream or cache failure.\n\n");
    srv_config_help(out);
}

/* describe's own arguments; the others are serve options, left in rest. */
struct describe_args {
    const char *ref;
    struct api_request req;
    char **rest;
    int nrest;
};

static int describe_parse(int argc, char **argv, struct describe_args *d)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--format") == 0 || strcmp(a, "--platform") == 0 ||
            strcmp(a, "--style") == 0) {
            if (!v)
                return fprintf(stderr, "imgmeta describe: %s needs a value\n", a), -1;
            if (a[2] == 'f')
                d->req.format = v;
            else if (a[2] == 's')
                d->req.style = v;
            else if (d->req.n_platforms < API_MAX_PLATFORMS)
                d->req.platforms[d->req.n_platforms++] = v;
            else
                d->req.too_many_platforms = true;
            i++;
        } else if (strncmp(a, "--format=", 9) == 0) {
            d->req.format = a + 9;
        } else if (strncmp(a, "--style=", 8) == 0) {
            d->req.style = a + 8;
        } else if (strncmp(a, "--platform=", 11) == 0) {
            if (d->req.n_platforms < API_MAX_PLATFORMS)
                d->req.platforms[d->req.n_platforms++] = a + 11;
            else
                d->req.too_many_platforms = true;
        } else if (strncmp(a, "--", 2) != 0) {
            if (d->ref)
                return fprintf(stderr, "imgmeta describe: one REF only ('%s')\n", a), -1;
            d->ref = a;
        } else {
            d->rest[d->nrest++] = argv[i];
            if (!strchr(a, '=') && strcmp(a, "--help") != 0 && v)
                d->rest[d->nrest++] = argv[++i]; /* every serve option takes a value */
        }
    }
    return 0;
}

static int describe_exit_code(int status)
{
    if (status == 200)
        return EXIT_FOUND;
    if (status == 404)
        return EXIT_NOT_FOUND;
    if (status == 400)
        return EXIT_USAGE;
    return EXIT_UPSTREAM;
}

/* Runs one request through api_handle and prints the answer: the body on
 * stdout when it is the description (or the Markdown not-found page), the
 * error's text on stderr otherwise. */
static int describe_run(struct api *api, struct describe_args *d)
{
    struct api_response resp;
    char path[1100];
    memset(&resp, 0, sizeof resp);
    snprintf(path, sizeof path, "/images/%s", d->ref);
    d->req.method = "GET";
    d->req.path = path;
    d->req.request_id = "cli";
    if (!d->req.format && d->req.style)
        d->req.format = "markdown"; /* a page's form asked for: the page */
    if (!d->req.format)
        d->req.accept = "application/json";
    if (api_handle(api, &d->req, &resp) != 0) {
        fprintf(stderr, "imgmeta: out of memory\n");
        return EXIT_UPSTREAM;
    }
    int code = describe_exit_code(resp.status);
    bool page =
        resp.status == 200 || (resp.status == 404 && resp.content_type &&
                               strncmp(resp.content_type, "text/markdown", 13) == 0);
    if (resp.body)
        fwrite(resp.body, 1, resp.len, page ? stdout : stderr);
    api_response_free(&resp);
    return code;
}

static int describe(int argc, char **argv)
{
    struct srv_config cfg;
    struct im_error err = {{0}};
    struct modules m = {0};
    struct describe_args d;
    memset(&d, 0, sizeof d);
    int rc = EXIT_USAGE;
    d.rest = calloc((size_t)argc + 1, sizeof *d.rest);
    if (!d.rest || describe_parse(argc, argv, &d) != 0)
        goto out;
    for (int i = 0; i < d.nrest; i++)
        if (strcmp(d.rest[i], "--help") == 0 || strcmp(d.rest[i], "-h") == 0) {
            describe_usage(stdout);
            rc = EXIT_FOUND;
            goto out;
        }
    if (!d.ref) {
        describe_usage(stderr);
        goto out;
    }
    if (srv_config_load(&cfg, d.nrest, d.rest, stdout, &err) != 0) {
        fprintf(stderr, "imgmeta describe: %s\n", err.msg);
        goto out;
    }
    srv_log_set_level((enum srv_level)srv_level_parse(cfg.log_level));
    if (open_modules(&cfg, &m, &err) != 0) {
        fprintf(stderr, "imgmeta describe: %s\n", err.msg);
        rc = EXIT_UPSTREAM;
        goto out;
    }
    rc = describe_run(m.api, &d);
out:
    close_modules(&m);
    free(d.rest);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("imgmeta %s\n", IMGMETA_VERSION);
        return 0;
    }
    int (*command)(int, char **) = NULL;
    if (strcmp(argv[1], "serve") == 0)
        command = serve;
    else if (strcmp(argv[1], "describe") == 0)
        command = describe;
    else if (strcmp(argv[1], "cache") == 0)
        command = srv_cache_command;
    if (!command) {
        fprintf(stderr, "imgmeta: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "imgmeta: curl_global_init failed\n");
        return 1;
    }
    int rc = command(argc - 2, argv + 2);
    curl_global_cleanup();
    return rc;
}
