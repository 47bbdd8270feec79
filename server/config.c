/* config.c - every option in one table: flag, environment variable, type,
 * bounds, default and help. --help is generated from the table. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render.h"
#include "server.h"

enum opt_type { OPT_STR, OPT_LONG, OPT_BOOL, OPT_LIST, OPT_LEVEL, OPT_STYLE, OPT_FILE };

/* Where a value came from, in increasing precedence: a list option (--mirror)
 * takes its values from the highest source that has any. */
enum source { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_FLAG };

struct opt {
    const char *name; /* flag without "--" */
    const char *env;
    enum opt_type type;
    size_t offset; /* into struct srv_config */
    size_t size;   /* buffer size for strings */
    long min, max;
    const char *def;
    const char *help;
};

#define STR(field)                                                                       \
    offsetof(struct srv_config, field), sizeof(((struct srv_config *)0)->field)
#define NUM(field) offsetof(struct srv_config, field), 0
#define BOOL(field) offsetof(struct srv_config, field), sizeof(bool)

static const struct opt opts[] = {
    {"listen", "IMGMETA_LISTEN", OPT_STR, STR(listen), 0, 0, "127.0.0.1:8080",
     "address:port to listen on"},
    {"db", "IMGMETA_DB", OPT_STR, STR(db), 0, 0, "data/imgmeta.db",
     "the cache: an SQLite file (its directory is created when missing), or a "
     "PostgreSQL URI (postgresql://... or postgres://..., libpq's syntax) that several "
     "replicas share"},
    {"answer-file-dir", "IMGMETA_ANSWER_FILE_DIR", OPT_STR, STR(answer_file_dir), 0, 0,
     "",
     "directory of the answers file (rendered answers this replica keeps on disk); "
     "default: the SQLite file's directory; none with a PostgreSQL --db unless given"},
    {"mirror", "IMGMETA_MIRROR", OPT_LIST, offsetof(struct srv_config, mirrors), 0, 0, 0,
     NULL,
     "REGISTRY=URL: send REGISTRY's traffic to URL instead, e.g. "
     "docker.io=http://127.0.0.1:5000 (repeatable; env: comma-separated)"},
    {"threads", "IMGMETA_THREADS", OPT_LONG, NUM(threads), 0, SRV_THREADS_MAX, "0",
     "HTTP worker threads, each serving many connections from the cache (0 = one per "
     "CPU the process may run on: its affinity mask, as set by taskset or a cpuset)"},
    {"connection-limit", "IMGMETA_CONNECTION_LIMIT", OPT_LONG, NUM(connection_limit), 1,
     100000, "1024", "maximum concurrent client connections"},
    {"tag-ttl", "IMGMETA_TAG_TTL", OPT_LONG, NUM(tag_ttl), 0, 604800, "300",
     "seconds a tag's resolution is fresh before the registry is asked again"},
    {"layer-ttl", "IMGMETA_LAYER_TTL", OPT_LONG, NUM(layer_ttl), 0, 31536000, "86400",
     "seconds a layer's size and date, once a registry gave them, answer for its other "
     "images without asking again (0 = ask every time)"},
    {"connect-timeout-ms", "IMGMETA_CONNECT_TIMEOUT_MS", OPT_LONG,
     NUM(connect_timeout_ms), 100, 120000, "5000", "upstream connect timeout"},
    {"request-timeout-ms", "IMGMETA_REQUEST_TIMEOUT_MS", OPT_LONG,
     NUM(request_timeout_ms), 100, 600000, "30000", "upstream per-request timeout"},
    {"max-manifest-bytes", "IMGMETA_MAX_MANIFEST_BYTES", OPT_LONG,
     NUM(max_manifest_bytes), 1024, 64L << 20, "4194304",
     "largest manifest accepted from a registry"},
    {"max-config-bytes", "IMGMETA_MAX_CONFIG_BYTES", OPT_LONG, NUM(max_config_bytes),
     1024, 256L << 20, "8388608", "largest config blob accepted from a registry"},
    {"log-level", "IMGMETA_LOG_LEVEL", OPT_LEVEL, STR(log_level), 0, 0, "info",
     "debug, info, warn or error"},
    {"access-log-buffer", "IMGMETA_ACCESS_LOG_BUFFER", OPT_LONG, NUM(access_log_buffer),
     0, 16L << 20, "0",
     "bytes of access (info) lines kept before one write to stderr, as nginx's "
     "buffer=: written when full, before a warning or error, every 200 ms and at "
     "stop; what a crash cuts short is lost (0 = every line written at once)"},
    {"markdown-style", "IMGMETA_MARKDOWN_STYLE", OPT_STYLE, STR(markdown_style), 0, 0,
     "seed",
     "the Markdown page's form when a request names none (?style=): seed (the 2018 "
     "page's, '-<TAB>Platforms:') or current (today's, '-<TAB>Platforms: N')"},
    /* the HTTP API (server/http.c, config file) */
    {"shutdown-timeout", "IMGMETA_SHUTDOWN_TIMEOUT", OPT_LONG, NUM(shutdown_timeout), 0,
     600, "10",
     "seconds SIGTERM/SIGINT waits for requests in flight before answering them 503; "
     "upstream work still running a second later is not waited for"},
    {"config", "IMGMETA_CONFIG", OPT_FILE, STR(config), 0, 0, NULL,
     "file of 'name = value' lines (names as the flags, '#' comments); "
     "precedence: defaults < file < environment < flags"},
    /* outbound security policy (registry/policy.c, SECURITY.md) */
    {"allow-registries", "IMGMETA_ALLOW_REGISTRIES", OPT_STR, STR(allow_registries), 0, 0,
     "default",
     "comma-separated registries a reference may name (host[:port], *.suffix, *); "
     "'default' = docker.io, ghcr.io, quay.io, gcr.io, *.gcr.io, *.pkg.dev, "
     "registry.k8s.io, "
     "public.ecr.aws, mcr.microsoft.com, registry.gitlab.com; mirrored registries are "
     "always allowed"},
    {"insecure-registries", "IMGMETA_INSECURE_REGISTRIES", OPT_STR,
     STR(insecure_registries), 0, 0, NULL,
     "comma-separated registries (host[:port]) spoken to over plain http that may be on "
     "loopback or private addresses"},
    {"allow-private", "IMGMETA_ALLOW_PRIVATE", OPT_BOOL, BOOL(allow_private), 0, 1, "0",
     "1 turns the address and https checks off: every registry, token realm and redirect "
     "may connect to loopback, private and link-local addresses, over http too (unsafe: "
     "closed networks only)"},
    /* the cache (server/cache_cmd.c passes these on) */
    {"registry-ttl", "IMGMETA_REGISTRY_TTL", OPT_STR, STR(registry_ttl), 0, 0, NULL,
     "comma-separated REGISTRY=SECONDS overriding --tag-ttl for a registry, e.g. "
     "ghcr.io=60,docker.io=900 (docker.io also names index.docker.io)"},
    {"max-stale", "IMGMETA_MAX_STALE", OPT_LONG, NUM(max_stale), 0, 31536000, "86400",
     "seconds past --tag-ttl a cached tag may still be served (marked stale) while the "
     "registry fails; 0 = never serve stale"},
    {"negative-ttl", "IMGMETA_NEGATIVE_TTL", OPT_LONG, NUM(negative_ttl), 0, 86400, "30",
     "seconds a tag the registry says does not exist is remembered; 0 = not at all"},
    {"cache-max-bytes", "IMGMETA_CACHE_MAX_BYTES", OPT_LONG, NUM(cache_max_bytes), 0,
     1L << 50, "1073741824",
     "size budget of the cache database; least recently used tags are evicted to stay "
     "under it; 0 = no budget"},
    {"db-recover", "IMGMETA_DB_RECOVER", OPT_BOOL, BOOL(db_recover), 0, 1, "0",
     "1: a corrupt cache database is moved aside (<db>.corrupt-<time>) and an empty one "
     "started; 0: refuse to start"},
    {"admin-token", "IMGMETA_ADMIN_TOKEN", OPT_STR, STR(admin_token), 0, 0, NULL,
     "bearer token for DELETE /admin/cache/{ref}; unset = the admin endpoint is off"},
    {"docker-config", "IMGMETA_DOCKER_CONFIG", OPT_STR, STR(docker_config), 0, 0, NULL,
     "a Docker config.json whose credentials are used for basic auth and token logins "
     "(never logged): credHelpers.<registry> or credsStore (docker-credential-<name> "
     "get, run as Docker does), else auths.<registry>"},
    {"helper-timeout-ms", "IMGMETA_HELPER_TIMEOUT_MS", OPT_LONG,
     NUM(cred_helper_timeout_ms), 100, 60000, "5000",
     "time a credential helper has to answer before it is killed (the request gets 504 "
     "naming it)"},
    {"helper-ttl", "IMGMETA_HELPER_TTL", OPT_LONG, NUM(cred_helper_ttl), 0, 86400, "300",
     "seconds a credential helper's answer for a registry is kept before it is run "
     "again (a failure is not kept); 0 = run for every resolution"},
    {"prewarm", "IMGMETA_PREWARM", OPT_BOOL, BOOL(prewarm), 0, 1, "1",
     "1: at start, ask docker.io (or its --mirror) and every --mirror once, in the "
     "background, how they authenticate (GET /v2/), so that the first request asks for "
     "its token directly instead of meeting a 401 first; 0: off"},
    {"max-retries", "IMGMETA_MAX_RETRIES", OPT_LONG, NUM(max_retries), 0, 10, "2",
     "retries of an upstream request after a connection error, 5xx or 429 (exponential "
     "backoff with jitter, Retry-After honoured)"},
    {"max-resolutions", "IMGMETA_MAX_RESOLUTIONS", OPT_LONG, NUM(max_resolutions), 0,
     100000, "32",
     "distinct references resolved upstream at once; a request needing one more gets "
     "503 busy with Retry-After (or a stale answer where --max-stale allows); requests "
     "for a reference already being resolved wait for it; 0 = no bound"},
    {"upstream-threads", "IMGMETA_UPSTREAM_THREADS", OPT_LONG, NUM(upstream_threads), 0,
     4096, "0",
     "threads that run requests waiting on a registry (resolving, revalidating, joining "
     "a resolution in flight, listing tags) while their connection is set aside, so the "
     "HTTP threads keep serving cached answers; 0 = 2 x --max-resolutions, at least 8 "
     "and at most 1024 (64 when --max-resolutions is 0)"},
    {"upstream-queue", "IMGMETA_UPSTREAM_QUEUE", OPT_LONG, NUM(upstream_queue), 1, 100000,
     "1024",
     "requests waiting for one of the --upstream-threads; one more is answered 503 busy "
     "with Retry-After"},
    {"answer-cache-bytes", "IMGMETA_ANSWER_CACHE_BYTES", OPT_LONG,
     NUM(answer_cache_bytes), 0, 1L << 40, "16777216",
     "memory for recently served answers (rendered bytes, least recently used go "
     "first); others are read from the answers file, then the database's rendered "
     "rows; 0 = none"},
    {"answer-file-bytes", "IMGMETA_ANSWER_FILE_BYTES", OPT_LONG, NUM(answer_file_bytes),
     0, 1L << 40, "268435456",
     "size of the answers file: rendered answers kept on disk next to the database, in "
     "an unlinked file read through the kernel's page cache (not the daemon's memory); "
     "when full it starts over; 0 = none"},
    {"tag-memory", "IMGMETA_TAG_MEMORY", OPT_LONG, NUM(tag_memory), 0, 1L << 24, "32768",
     "tag resolutions kept in memory (rounded up to a power of two, about 200 bytes "
     "each), so that a fresh tag is answered without reading the database; a purge or "
     "eviction by another process (imgmeta cache purge) is seen within 10 ms; 0 = none "
     "(every request reads its tag from the database)"},
    /* watched images (server/watch.c) */
    {"watch", "IMGMETA_WATCH", OPT_STR, STR(watch), 0, 0, NULL,
     "comma-separated references kept fresh in the background (revalidated at their "
     "TTL with jitter, resolved again when they move) and exported on /metrics "
     "(imgmeta_image_*); at most 4096 with --watch-file, more refuse the start"},
    {"watch-file", "IMGMETA_WATCH_FILE", OPT_STR, STR(watch_file), 0, 0, NULL,
     "a file of references to watch as --watch does, one a line, '#' comments; an "
     "invalid line refuses the start, naming its number"},
    {"malloc-arenas", "IMGMETA_MALLOC_ARENAS", OPT_LONG, NUM(malloc_arenas), 0, 64, "2",
     "glibc malloc arenas (M_ARENA_MAX): each HTTP thread would otherwise get its own, "
     "each holding freed memory; 0 = glibc's default (8 x cores)"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

static int add_mirror(struct srv_config *cfg, const char *value, struct im_error *err)
{
    if (!strchr(value, '='))
        return im_seterr(err, IM_EINVAL, "--mirror wants REGISTRY=URL, got '%s'", value);
    if (cfg->n_mirrors >= SRV_MAX_MIRRORS)
        return im_seterr(err, IM_EINVAL, "at most %d --mirror options", SRV_MAX_MIRRORS);
    if (im_strlcpy(cfg->mirrors[cfg->n_mirrors], value, sizeof cfg->mirrors[0]) != 0)
        return im_seterr(err, IM_EINVAL, "--mirror value too long");
    cfg->n_mirrors++;
    return 0;
}

static int set_opt(struct srv_config *cfg, const struct opt *o, const char *value,
                   struct im_error *err)
{
    char *base = (char *)cfg;
    switch (o->type) {
    case OPT_STR:
    case OPT_FILE:
    case OPT_LEVEL:
    case OPT_STYLE: {
        enum render_style style;
        if (o->type == OPT_LEVEL && srv_level_parse(value) < 0)
            return im_seterr(err, IM_EINVAL, "--%s: '%s' is not one of %s", o->name,
                             value, o->help);
        if (o->type == OPT_STYLE && render_style_parse(value, &style) != 0)
            return im_seterr(err, IM_EINVAL, "--%s: '%s' is not seed or current", o->name,
                             value);
        if (im_strlcpy(base + o->offset, value, o->size) != 0)
            return im_seterr(err, IM_EINVAL, "--%s: value longer than %zu bytes", o->name,
                             o->size - 1);
        return 0;
    }
    case OPT_LONG: {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end)
            return im_seterr(err, IM_EINVAL, "--%s: '%s' is not a number", o->name,
                             value);
        if (v < o->min || v > o->max)
            return im_seterr(err, IM_EINVAL, "--%s: %ld is outside [%ld, %ld]", o->name,
                             v, o->min, o->max);
        *(long *)(void *)(base + o->offset) = v;
        return 0;
    }
    case OPT_BOOL: {
        static const char *const yes[] = {"1", "true", "yes", "on"};
        static const char *const no[] = {"0", "false", "no", "off"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
            if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
                *(bool *)(void *)(base + o->offset) = strcasecmp(value, yes[i]) == 0;
                return 0;
            }
        return im_seterr(
            err, IM_EINVAL,
            "--%s: '%s' is not a boolean (1, true, yes, on; 0, false, no, off)", o->name,
            value);
    }
    case OPT_LIST:
        return add_mirror(cfg, value, err);
    }
    return IM_EINVAL;
}

/* Environment lists are comma-separated. */
static int set_env_list(struct srv_config *cfg, const struct opt *o, const char *value,
                        struct im_error *err)
{
    char buf[4096];
    if (im_strlcpy(buf, value, sizeof buf) != 0)
        return im_seterr(err, IM_EINVAL, "%s too long", o->env);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int rc = set_opt(cfg, o, tok, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

void srv_config_help(FILE *out)
{
    fprintf(out,
            "usage: imgmeta serve [options]\n\n"
            "options (flag, environment, default); a value comes from the first of:\n"
            "flag, environment, --config file, default\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        fprintf(out, "  --%-20s %-28s %s\n      %s\n", o->name, o->env,
                o->def ? o->def : "-", o->help);
    }
    fprintf(out, "  --%-20s %-28s %s\n      %s\n", "help", "-", "-", "print this help");
}

/* Sets o from a source; a list option drops the values of a lower source. */
static int set_from(struct srv_config *cfg, const struct opt *o, const char *value,
                    enum source src, enum source *list_src, struct im_error *err)
{
    if (o->type == OPT_LIST) {
        if (*list_src < src)
            cfg->n_mirrors = 0;
        *list_src = src;
        if (src == SRC_ENV)
            return set_env_list(cfg, o, value, err);
    }
    return set_opt(cfg, o, value, err);
}

/* Trims blanks on both sides, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 &&
           (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One "name = value" line (value may be in double quotes). */
static int file_line(struct srv_config *cfg, char *line, enum source *list_src,
                     struct im_error *err)
{
    char *t = trim(line);
    if (!*t || *t == '#')
        return 0;
    char *eq = strchr(t, '=');
    if (!eq)
        return im_seterr(err, IM_EINVAL, "expected 'name = value', got '%.60s'", t);
    *eq = '\0';
    char *name = trim(t), *value = trim(eq + 1);
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
        value[vl - 1] = '\0';
        value++;
    }
    const struct opt *o = find_opt(name, strlen(name));
    if (!o || o->type == OPT_FILE)
        return im_seterr(err, IM_EINVAL, "unknown option '%.60s' (see --help)", name);
    return set_from(cfg, o, value, SRC_FILE, list_src, err);
}

static int load_file(struct srv_config *cfg, const char *path, enum source *list_src,
                     struct im_error *err)
{
    char line[4096];
    struct im_error lerr = {{0}};
    int rc = 0, lineno = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return im_seterr(err, IM_EINVAL, "--config: cannot open '%.200s'", path);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f))
            rc = im_seterr(&lerr, IM_EINVAL, "line longer than %zu bytes",
                           sizeof line - 2);
        else
            rc = file_line(cfg, line, list_src, &lerr);
    }
    if (rc == 0 && ferror(f))
        rc = im_seterr(&lerr, IM_EINVAL, "read error");
    fclose(f);
    if (rc != 0)
        im_seterr(err, rc, "%.200s:%d: %s", path, lineno, lerr.msg);
    return rc;
}

/* The config file named by --config (last one wins), else IMGMETA_CONFIG. */
static const char *config_path(int argc, char **argv)
{
    const char *path = getenv("IMGMETA_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path && *path ? path : NULL;
}

static int load_defaults(struct srv_config *cfg, struct im_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTS; i++) {
        int rc = opts[i].def ? set_opt(cfg, &opts[i], opts[i].def, err) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int load_env(struct srv_config *cfg, enum source *list_src, struct im_error *err)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *env = getenv(opts[i].env);
        if (!env || !*env || opts[i].type == OPT_FILE)
            continue;
        int rc = set_from(cfg, &opts[i], env, SRC_ENV, list_src, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static int load_flags(struct srv_config *cfg, int argc, char **argv,
                      enum source *list_src, struct im_error *err)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return im_seterr(err, IM_EINVAL, "unexpected argument '%s' (see --help)",
                             arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        const struct opt *o = find_opt(name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o)
            return im_seterr(err, IM_EINVAL, "unknown option '%s' (see --help)", arg);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return im_seterr(err, IM_EINVAL, "option --%s needs a value", o->name);
        rc = set_from(cfg, o, value, SRC_FLAG, list_src, err);
    }
    return rc;
}

int srv_config_load(struct srv_config *cfg, int argc, char **argv, FILE *out,
                    struct im_error *err)
{
    enum source list_src = SRC_DEFAULT;
    if (wants_help(argc, argv)) {
        srv_config_help(out);
        return 1;
    }
    int rc = load_defaults(cfg, err);
    const char *path = config_path(argc, argv);
    if (rc == 0 && path) {
        rc = load_file(cfg, path, &list_src, err);
        if (rc == 0 && im_strlcpy(cfg->config, path, sizeof cfg->config) != 0)
            rc = im_seterr(err, IM_EINVAL, "--config: path too long");
    }
    if (rc == 0)
        rc = load_env(cfg, &list_src, err);
    if (rc == 0)
        rc = load_flags(cfg, argc, argv, &list_src, err);
    return rc;
}
