/* main.c - reads the configuration, wires the modules, runs until a signal. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "registry.h"
#include "server.h"
#include "store.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: imgmeta serve [options]   run the HTTP service (see serve --help)\n"
                 "       imgmeta version           print the version\n");
}

/* Creates the directory that will hold the database file, one level deep. */
static int ensure_db_dir(const char *db, struct im_error *err)
{
    char dir[1024];
    if (im_strlcpy(dir, db, sizeof dir) != 0)
        return im_seterr(err, IM_EINVAL, "--db path too long");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir || strcmp(db, ":memory:") == 0)
        return 0;
    *slash = '\0';
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
            return im_seterr(err, IM_EINVAL, "--mirror: URL must start with http(s)://: '%s'", m);
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

static int serve(int argc, char **argv)
{
    struct srv_config cfg;
    struct reg_config rcfg;
    struct api_config acfg;
    struct im_error err = {{0}};
    struct store *store = NULL;
    struct reg_client *reg = NULL;
    struct api *api = NULL;
    struct srv_http *http = NULL;
    int rc = srv_config_load(&cfg, argc, argv, stdout, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "imgmeta: %s\n", err.msg);
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

    reg_config_defaults(&rcfg);
    rcfg.connect_timeout_ms = cfg.connect_timeout_ms;
    rcfg.request_timeout_ms = cfg.request_timeout_ms;
    rcfg.max_manifest_bytes = (size_t)cfg.max_manifest_bytes;
    rcfg.max_config_bytes = (size_t)cfg.max_config_bytes;
    api_config_defaults(&acfg);
    acfg.tag_ttl_seconds = cfg.tag_ttl;

    rc = 1;
    if (mirrors_to_registry(&cfg, &rcfg, &err) != 0 || ensure_db_dir(cfg.db, &err) != 0)
        goto out;
    if (!(store = store_open(cfg.db, &err)) || !(reg = reg_client_new(&rcfg, &err)) ||
        !(api = api_new(&acfg, store, reg, &err)) ||
        !(http = srv_http_start(&cfg, api, &err)))
        goto out;
    srv_log(SRV_INFO, NULL, "event=listening addr=%s db=\"%s\" mirrors=%zu tag_ttl=%ld",
            cfg.listen, cfg.db, cfg.n_mirrors, cfg.tag_ttl);
    wait_for_signal();
    rc = 0;
out:
    if (rc != 0)
        srv_log(SRV_ERROR, NULL, "event=startup_failed msg=\"%s\"", err.msg);
    srv_http_stop(http);
    api_free(api);
    reg_client_free(reg);
    store_close(store);
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
    if (strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "imgmeta: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "imgmeta: curl_global_init failed\n");
        return 1;
    }
    int rc = serve(argc - 2, argv + 2);
    curl_global_cleanup();
    return rc;
}
