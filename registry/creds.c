/* creds.c - registry credentials: from reg_config and from a Docker
 * config.json (`auths`), kept per normalised registry name, and which
 * credential helper holds a registry's (`credHelpers`, `credsStore`; run by
 * helper.c). Secrets never appear in an error message, and are wiped when
 * freed. */
#include "registry_int.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX (1u << 20) /* bytes of config.json read */

/* ---- pure helpers ---- */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

long reg__base64_decode(const char *in, char *out, size_t n)
{
    size_t len = strlen(in), o = 0;
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1 || strlen(in) - len > 2)
        return -1;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= n)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (n == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int reg__cred_key(const char *key, char *out, size_t n)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    size_t l = strcspn(p, "/");
    if (l == 0 || l >= n)
        return -1;
    for (size_t i = 0; i < l; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[l] = '\0';
    if (strcmp(out, "index.docker.io") == 0 || strcmp(out, "registry-1.docker.io") == 0 ||
        strcmp(out, "registry.hub.docker.com") == 0)
        return im_strlcpy(out, "docker.io", n);
    return 0;
}

/* ---- the table ---- */

void reg__wipe(char *s, size_t n)
{
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = '\0';
}

static void wipe(char *s)
{
    if (s)
        reg__wipe(s, strlen(s));
}

void reg__cred_wipe(struct reg__cred *k)
{
    wipe(k->password);
    free(k->password);
    free(k->username);
    k->password = k->username = NULL;
    k->identity = false;
}

int reg__cred_set(struct reg__cred *k, const char *user, const char *pass)
{
    k->username = strdup(user);
    k->password = strdup(pass);
    if (!k->username || !k->password) {
        reg__cred_wipe(k);
        return IM_ENOMEM;
    }
    k->identity = strcmp(user, REG__IDENTITY_USER) == 0;
    return 0;
}

void reg__creds_free(struct reg__creds *c)
{
    for (size_t i = 0; i < c->n; i++)
        reg__cred_wipe(&c->v[i]);
    free(c->v);
    free(c->helpers);
    memset(c, 0, sizeof *c);
}

const char *reg__creds_helper(const struct reg__creds *c, const char *registry)
{
    for (size_t i = 0; i < c->nh; i++)
        if (strcasecmp(c->helpers[i].registry, registry) == 0)
            return c->helpers[i].name;
    return c->store[0] ? c->store : NULL;
}

const struct reg__cred *reg__creds_find(const struct reg__creds *c, const char *registry)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->v[i].registry, registry) == 0)
            return &c->v[i];
    return NULL;
}

int reg__creds_add(struct reg__creds *c, const char *registry, const char *user,
                   const char *pass)
{
    if (reg__creds_find(c, registry))
        return 0;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        struct reg__cred *p = realloc(c->v, nc * sizeof *p);
        if (!p)
            return IM_ENOMEM;
        c->v = p;
        c->cap = nc;
    }
    struct reg__cred *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    if (im_strlcpy(e->registry, registry, sizeof e->registry) != 0)
        return IM_EINVAL;
    if (reg__cred_set(e, user, pass) != 0)
        return IM_ENOMEM;
    c->n++;
    return 0;
}

/* ---- config.json ---- */

/* One `auths` entry: {"auth": base64(user:pass)} or {"username","password"}.
 * Entries with neither (e.g. only "identitytoken", or "{}" when a credential
 * helper holds the secret) are skipped. */
static int parse_entry(struct reg__creds *c, const char *key, json_t *v,
                       struct im_error *err)
{
    char reg[IM_REGISTRY_MAX], buf[2048] = "";
    if (!json_is_object(v))
        return im_seterr(err, IM_EINVAL, "config.json: auths.\"%.100s\" is not an object",
                         key);
    if (reg__cred_key(key, reg, sizeof reg) != 0)
        return im_seterr(err, IM_EINVAL,
                         "config.json: auths key \"%.100s\" is not a registry", key);
    const char *auth = json_string_value(json_object_get(v, "auth"));
    const char *user = json_string_value(json_object_get(v, "username"));
    const char *pass = json_string_value(json_object_get(v, "password"));
    int rc = 0;
    if (auth && *auth) {
        long l = reg__base64_decode(auth, buf, sizeof buf);
        char *colon = l > 0 ? memchr(buf, ':', (size_t)l) : NULL;
        if (!colon || colon == buf || strlen(buf) != (size_t)l)
            rc = im_seterr(err, IM_EINVAL,
                           "config.json: auths.\"%.100s\".auth is not base64 of "
                           "user:password",
                           key);
        else {
            *colon = '\0';
            rc = reg__creds_add(c, reg, buf, colon + 1);
        }
    } else if (user && *user && pass) {
        rc = reg__creds_add(c, reg, user, pass);
    }
    reg__wipe(buf, sizeof buf);
    if (rc == IM_ENOMEM)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    return rc;
}

/* credHelpers: {"<registry>": "<helper name>"}; the first entry for a
 * registry wins. */
static int parse_helpers(struct reg__creds *c, json_t *map, struct im_error *err)
{
    const char *key;
    json_t *v;
    if (!json_is_object(map))
        return im_seterr(err, IM_EINVAL, "config.json: \"credHelpers\" is not an object");
    json_object_foreach(map, key, v)
    {
        char reg[IM_REGISTRY_MAX];
        const char *name = json_string_value(v);
        if (reg__cred_key(key, reg, sizeof reg) != 0)
            return im_seterr(err, IM_EINVAL,
                             "config.json: credHelpers key \"%.100s\" is not a registry",
                             key);
        if (!name || !reg__helper_name_valid(name))
            return im_seterr(err, IM_EINVAL,
                             "config.json: credHelpers.\"%.100s\" is not a helper name "
                             "(1 to 63 letters, digits, '.', '_' or '-')",
                             key);
        bool known = false;
        for (size_t i = 0; i < c->nh && !known; i++)
            known = strcasecmp(c->helpers[i].registry, reg) == 0;
        if (known)
            continue;
        if (c->nh == c->caph) {
            size_t nc = c->caph ? c->caph * 2 : 8;
            struct reg__helper_map *p = realloc(c->helpers, nc * sizeof *p);
            if (!p)
                return im_seterr(err, IM_ENOMEM, "out of memory");
            c->helpers = p;
            c->caph = nc;
        }
        im_strlcpy(c->helpers[c->nh].registry, reg, sizeof c->helpers[c->nh].registry);
        im_strlcpy(c->helpers[c->nh].name, name, sizeof c->helpers[c->nh].name);
        c->nh++;
    }
    return 0;
}

/* credsStore: the helper of every registry credHelpers does not name. */
static int parse_store(struct reg__creds *c, json_t *v, struct im_error *err)
{
    const char *name = json_string_value(v);
    if (!name || !reg__helper_name_valid(name))
        return im_seterr(err, IM_EINVAL,
                         "config.json: \"credsStore\" is not a helper name "
                         "(1 to 63 letters, digits, '.', '_' or '-')");
    if (!c->store[0])
        im_strlcpy(c->store, name, sizeof c->store);
    return 0;
}

int reg__parse_docker_config(const char *json, size_t len, struct reg__creds *c,
                             struct im_error *err)
{
    json_error_t jerr;
    int rc = 0;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *auths = json_object_get(root, "auths");
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        /* not jerr.text: it may quote the file, secrets included */
        rc = root ? im_seterr(err, IM_EINVAL, "config.json is not a JSON object")
                  : im_seterr(err, IM_EINVAL,
                              "config.json is not valid JSON (line %d, column %d)",
                              jerr.line, jerr.column);
        goto out;
    }
    if (auths && !json_is_object(auths)) {
        rc = im_seterr(err, IM_EINVAL, "config.json: \"auths\" is not an object");
        goto out;
    }
    json_object_foreach(auths, key, v)
    {
        rc = parse_entry(c, key, v, err);
        if (rc)
            goto out;
    }
    if (json_object_get(root, "credHelpers"))
        rc = parse_helpers(c, json_object_get(root, "credHelpers"), err);
    if (!rc && json_object_get(root, "credsStore"))
        rc = parse_store(c, json_object_get(root, "credsStore"), err);
out:
    json_decref(root);
    return rc;
}

static int read_file(const char *path, char **buf, size_t *len, struct im_error *err)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;
    *buf = NULL;
    *len = 0;
    if (!f)
        return im_seterr(err, IM_EINVAL, "cannot open Docker config %.200s", path);
    *buf = malloc(CONFIG_MAX + 1);
    if (!*buf) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
        goto out;
    }
    *len = fread(*buf, 1, CONFIG_MAX + 1, f);
    if (ferror(f))
        rc = im_seterr(err, IM_EINVAL, "cannot read Docker config %.200s", path);
    else if (*len > CONFIG_MAX)
        rc = im_seterr(err, IM_EINVAL, "Docker config %.200s is over %u bytes", path,
                       CONFIG_MAX);
out:
    fclose(f);
    return rc;
}

int reg__creds_load(struct reg__creds *c, const struct reg_config *cfg,
                    struct im_error *err)
{
    char reg[IM_REGISTRY_MAX];
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->n_credentials && i < REG_MAX_CREDENTIALS && !rc; i++) {
        const struct reg_credential *k = &cfg->credentials[i];
        if (reg__cred_key(k->registry, reg, sizeof reg) != 0 || !k->username[0])
            rc = im_seterr(err, IM_EINVAL, "credentials #%zu: registry or user missing",
                           i + 1);
        else if (reg__creds_add(c, reg, k->username, k->password) != 0)
            rc = im_seterr(err, IM_ENOMEM, "out of memory");
    }
    c->n_explicit = c->n;
    if (rc || !cfg->docker_config_path || !cfg->docker_config_path[0])
        return rc;
    rc = read_file(cfg->docker_config_path, &buf, &len, err);
    if (!rc) {
        struct im_error e2 = {{0}};
        rc = reg__parse_docker_config(buf, len, c, &e2);
        if (rc)
            im_seterr(err, rc, "%.200s: %s", cfg->docker_config_path, e2.msg);
    }
    if (buf) {
        reg__wipe(buf, len < CONFIG_MAX ? len : CONFIG_MAX);
        free(buf);
    }
    return rc;
}
