/* config.c - every option in one table: flag, environment variable, type,
 * bounds, default and help. --help is generated from the table. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

enum opt_type { OPT_STR, OPT_LONG, OPT_LIST, OPT_LEVEL };

struct opt {
    const char *name; /* flag without "--" */
    const char *env;
    enum opt_type type;
    size_t offset;    /* into struct srv_config */
    size_t size;      /* buffer size for strings */
    long min, max;
    const char *def;
    const char *help;
};

#define STR(field) offsetof(struct srv_config, field), sizeof(((struct srv_config *)0)->field)
#define NUM(field) offsetof(struct srv_config, field), 0

static const struct opt opts[] = {
    {"listen", "IMGMETA_LISTEN", OPT_STR, STR(listen), 0, 0, "127.0.0.1:8080",
     "address:port to listen on"},
    {"db", "IMGMETA_DB", OPT_STR, STR(db), 0, 0, "data/imgmeta.db",
     "SQLite cache file (its directory is created when missing)"},
    {"mirror", "IMGMETA_MIRROR", OPT_LIST, offsetof(struct srv_config, mirrors), 0, 0, 0,
     NULL,
     "REGISTRY=URL: send REGISTRY's traffic to URL instead, e.g. "
     "docker.io=http://127.0.0.1:5000 (repeatable; env: comma-separated)"},
    {"threads", "IMGMETA_THREADS", OPT_LONG, NUM(threads), 0, 1024, "0",
     "HTTP worker threads (0 = 4 x cores, at least 8)"},
    {"connection-limit", "IMGMETA_CONNECTION_LIMIT", OPT_LONG, NUM(connection_limit), 1,
     100000, "1024", "maximum concurrent client connections"},
    {"tag-ttl", "IMGMETA_TAG_TTL", OPT_LONG, NUM(tag_ttl), 0, 604800, "300",
     "seconds a tag's resolution is fresh before the registry is asked again"},
    {"connect-timeout-ms", "IMGMETA_CONNECT_TIMEOUT_MS", OPT_LONG, NUM(connect_timeout_ms),
     100, 120000, "5000", "upstream connect timeout"},
    {"request-timeout-ms", "IMGMETA_REQUEST_TIMEOUT_MS", OPT_LONG, NUM(request_timeout_ms),
     100, 600000, "30000", "upstream per-request timeout"},
    {"max-manifest-bytes", "IMGMETA_MAX_MANIFEST_BYTES", OPT_LONG, NUM(max_manifest_bytes),
     1024, 64L << 20, "4194304", "largest manifest accepted from a registry"},
    {"max-config-bytes", "IMGMETA_MAX_CONFIG_BYTES", OPT_LONG, NUM(max_config_bytes), 1024,
     256L << 20, "8388608", "largest config blob accepted from a registry"},
    {"log-level", "IMGMETA_LOG_LEVEL", OPT_LEVEL, STR(log_level), 0, 0, "info",
     "debug, info, warn or error"},
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
    case OPT_LEVEL:
        if (o->type == OPT_LEVEL && srv_level_parse(value) < 0)
            return im_seterr(err, IM_EINVAL, "--%s: '%s' is not one of %s", o->name, value,
                             o->help);
        if (im_strlcpy(base + o->offset, value, o->size) != 0)
            return im_seterr(err, IM_EINVAL, "--%s: value longer than %zu bytes", o->name,
                             o->size - 1);
        return 0;
    case OPT_LONG: {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end)
            return im_seterr(err, IM_EINVAL, "--%s: '%s' is not a number", o->name, value);
        if (v < o->min || v > o->max)
            return im_seterr(err, IM_EINVAL, "--%s: %ld is outside [%ld, %ld]", o->name, v,
                             o->min, o->max);
        *(long *)(void *)(base + o->offset) = v;
        return 0;
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
    fprintf(out, "usage: imgmeta serve [options]\n\noptions (flag, environment, default):\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        fprintf(out, "  --%-20s %-28s %s\n      %s\n", o->name, o->env, o->def ? o->def : "-",
                o->help);
    }
    fprintf(out, "  --%-20s %-28s %s\n      %s\n", "help", "-", "-", "print this help");
}

static int load_defaults_and_env(struct srv_config *cfg, struct im_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        int rc = o->def ? set_opt(cfg, o, o->def, err) : 0;
        const char *env = getenv(o->env);
        if (rc == 0 && env && *env)
            rc = o->type == OPT_LIST ? set_env_list(cfg, o, env, err) : set_opt(cfg, o, env, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int srv_config_load(struct srv_config *cfg, int argc, char **argv, FILE *out,
                    struct im_error *err)
{
    int rc = load_defaults_and_env(cfg, err);
    bool env_mirrors = cfg->n_mirrors > 0, flag_mirror_seen = false;
    for (int i = 0; rc == 0 && i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            srv_config_help(out);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0)
            return im_seterr(err, IM_EINVAL, "unexpected argument '%s' (see --help)", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        const struct opt *o = find_opt(name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o)
            return im_seterr(err, IM_EINVAL, "unknown option '%s' (see --help)", arg);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return im_seterr(err, IM_EINVAL, "option --%s needs a value", o->name);
        if (o->type == OPT_LIST && env_mirrors && !flag_mirror_seen)
            cfg->n_mirrors = 0; /* flags replace the environment's list */
        if (o->type == OPT_LIST)
            flag_mirror_seen = true;
        rc = set_opt(cfg, o, value, err);
    }
    return rc;
}
