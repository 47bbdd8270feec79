/* policy.c - the outbound security policy of the registry client (SSRF).
 *
 * Two gates, both here:
 *  1. Which registries a reference may name (reg__policy_registry, before any
 *     request): a configured mirror, a configured insecure registry, or a
 *     registry on the allowlist (default: the well-known public registries).
 *     Anything else is IM_EPOLICY (HTTP 403 refused_by_policy).
 *  2. Where a connection may go (the guard, on every curl easy handle): curl
 *     calls guard_open (CURLOPT_OPENSOCKETFUNCTION) with the address it is
 *     about to connect to, after DNS, for every new connection - the registry,
 *     its token realm, every redirect hop (blob CDNs). The address must be
 *     public (not loopback, private, link-local, CGNAT, multicast, reserved,
 *     or an IPv6 form of those) and the URL https - unless the URL's host
 *     is the host (name or IP literal exactly as configured, any port) of the
 *     mirror or insecure registry this session talks to: a self-hosted
 *     registry may redirect blobs to a store on another port of its host
 *     (registry :5000, object store :9000), never to another host. guard_prereq
 * (CURLOPT_PREREQFUNCTION) repeats the check before every request, so a kept-alive
 * connection cannot be borrowed by a session that could not have opened it. Because the
 * check sees the address actually connected to, a DNS answer that changes between a check
 * and the connect (rebinding) cannot get past it.
 *
 * Thread-safety: everything here is reentrant; a guard belongs to one easy
 * handle, which one thread drives at a time. */
#include "registry_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The allowlist used when the configuration names none (REGISTRY_POLICY in
 * SECURITY.md): public registries only. */
static const char *const default_allowlist[] = {
    "docker.io",         "ghcr.io",
    "quay.io",           "gcr.io",
    "*.gcr.io",          "*.pkg.dev",
    "registry.k8s.io",   "public.ecr.aws",
    "mcr.microsoft.com", "registry.gitlab.com",
};
#define N_DEFAULT_ALLOW (sizeof default_allowlist / sizeof default_allowlist[0])

/* ---- URLs ---- */

/* The parts of a URL the policy looks at. */
struct url_parts {
    char scheme[8];
    char host[IM_REGISTRY_MAX];
    long port;
};

/* Parses url with curl's URL parser. 0, or IM_EPOLICY with err set. */
static int url_split(const char *url, struct url_parts *out, struct im_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
    int rc = 0;
    if (!u) {
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = im_seterr(err, IM_EPOLICY, "refusing a malformed URL: '%.100s'", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        rc = im_seterr(err, IM_EPOLICY, "refusing a URL with credentials in it: '%.100s'",
                       url);
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc =
            im_seterr(err, IM_EPOLICY, "refusing URL that is not http(s): '%.100s'", url);
        goto out;
    }
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (*end || p <= 0 || p > 65535 ||
        im_strlcpy(out->host, host, sizeof out->host) != 0) {
        rc = im_seterr(err, IM_EPOLICY, "refusing a malformed URL: '%.100s'", url);
        goto out;
    }
    im_strlcpy(out->scheme, strcasecmp(scheme, "https") == 0 ? "https" : "http",
               sizeof out->scheme);
    out->port = p;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

int reg__check_url(const char *url, struct im_error *err)
{
    struct url_parts p;
    /* curl's parser forgives "https:/host" and "https:host"; the policy does
     * not (found by fuzz_auth; tests/fuzz/corpus/fuzz_auth/crash-*) */
    if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0)
        return im_seterr(err, IM_EPOLICY, "refusing URL that is not http(s): '%.100s'",
                         url);
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return im_seterr(err, IM_EPOLICY,
                             "refusing a URL with spaces or control characters");
    return url_split(url, &p, err);
}

/* ---- the allowlist ---- */

/* "docker.io" equals; "*.pkg.dev" matches "us-docker.pkg.dev" (one or more
 * labels, no port); "*" matches every registry. */
static bool pattern_matches(const char *pat, const char *registry)
{
    if (strcmp(pat, "*") == 0)
        return true;
    if (strncmp(pat, "*.", 2) == 0) {
        size_t pl = strlen(pat + 1), rl = strlen(registry);
        return rl > pl && !strchr(registry, ':') &&
               strcasecmp(registry + rl - pl, pat + 1) == 0;
    }
    return strcasecmp(pat, registry) == 0;
}

bool reg__policy_mirrored(const struct reg_config *cfg, const char *registry)
{
    for (size_t i = 0; i < cfg->n_mirrors; i++)
        if (strcasecmp(cfg->mirrors[i].registry, registry) == 0)
            return true;
    return false;
}

static bool is_insecure(const struct reg_config *cfg, const char *registry)
{
    for (size_t i = 0; i < cfg->n_insecure && i < REG_MAX_POLICY; i++)
        if (strcasecmp(cfg->insecure[i], registry) == 0)
            return true;
    return false;
}

bool reg__policy_allowed(const struct reg_config *cfg, const char *registry)
{
    if (reg__policy_mirrored(cfg, registry) || is_insecure(cfg, registry))
        return true;
    if (cfg->n_allowlist == 0) {
        for (size_t i = 0; i < N_DEFAULT_ALLOW; i++)
            if (pattern_matches(default_allowlist[i], registry))
                return true;
        return false;
    }
    for (size_t i = 0; i < cfg->n_allowlist && i < REG_MAX_POLICY; i++)
        if (pattern_matches(cfg->allowlist[i], registry))
            return true;
    return false;
}

int reg__policy_registry(const struct reg_config *cfg, const char *registry, char *url,
                         size_t n, struct im_error *err)
{
    if (!reg__policy_allowed(cfg, registry))
        return im_seterr(err, IM_EPOLICY,
                         "registry '%.100s' is not allowed by this server's policy; an "
                         "operator can allow it with --allow-registries default,%.100s "
                         "(environment IMGMETA_ALLOW_REGISTRIES)",
                         registry, registry);
    /* An insecure registry (not mirrored) is spoken to over plain http. */
    if (!reg__policy_mirrored(cfg, registry) && is_insecure(cfg, registry) &&
        strncmp(url, "https://", 8) == 0) {
        size_t l = strlen(url);
        if (l >= n)
            return im_seterr(err, IM_EINVAL, "registry URL is too long");
        memmove(url + 4, url + 5, l - 4); /* "https://x" -> "http://x", with NUL */
    }
    return reg__check_url(url, err);
}

/* ---- configuration ---- */

/* Appends the comma-separated entries of csv to list (capacity REG_MAX_POLICY);
 * "default" stands for the default allowlist when defaults is true. */
static int add_csv(char (*list)[IM_REGISTRY_MAX], size_t *n, const char *csv,
                   bool defaults, const char *what, struct im_error *err)
{
    const char *p, *e;
    size_t el;
    for (p = csv; im_csv_next(&p, &e, &el);) {
        if (defaults && el == 7 && strncasecmp(e, "default", 7) == 0) {
            for (size_t i = 0; i < N_DEFAULT_ALLOW; i++) {
                if (*n >= REG_MAX_POLICY)
                    return im_seterr(err, IM_EINVAL, "%s: more than %d entries", what,
                                     REG_MAX_POLICY);
                im_strlcpy(list[(*n)++], default_allowlist[i], IM_REGISTRY_MAX);
            }
        } else if (el > 0) {
            if (*n >= REG_MAX_POLICY || el >= IM_REGISTRY_MAX)
                return im_seterr(err, IM_EINVAL, "%s: too many or too long entries",
                                 what);
            for (size_t i = 0; i < el; i++)
                if ((unsigned char)e[i] <= ' ' || e[i] == '/' || e[i] == '@')
                    return im_seterr(err, IM_EINVAL, "%s: '%.*s' is not a host[:port]",
                                     what, (int)el, e);
            memcpy(list[*n], e, el);
            list[(*n)++][el] = '\0';
        }
    }
    return 0;
}

int reg_config_policy(struct reg_config *c, const char *allow, const char *insecure,
                      bool allow_private, struct im_error *err)
{
    c->n_allowlist = c->n_insecure = 0;
    c->allow_private = allow_private;
    int rc =
        add_csv(c->allowlist, &c->n_allowlist, allow, true, "--allow-registries", err);
    if (rc == 0)
        rc = add_csv(c->insecure, &c->n_insecure, insecure, false,
                     "--insecure-registries", err);
    return rc;
}

/* ---- addresses ---- */

static const char *const class_names[] = {
    [REG__ADDR_PUBLIC] = "public",           [REG__ADDR_LOOPBACK] = "loopback",
    [REG__ADDR_PRIVATE] = "private",         [REG__ADDR_LINKLOCAL] = "link-local",
    [REG__ADDR_CGNAT] = "shared (CGNAT)",    [REG__ADDR_MULTICAST] = "multicast",
    [REG__ADDR_UNSPECIFIED] = "unspecified", [REG__ADDR_BROADCAST] = "broadcast",
    [REG__ADDR_RESERVED] = "reserved",       [REG__ADDR_UNKNOWN] = "non-IP",
};

const char *reg__addr_class_name(enum reg__addr_class c)
{
    return (unsigned)c <= (unsigned)REG__ADDR_UNKNOWN ? class_names[c] : "?";
}

/* a (host order) is in p/len. */
static bool in4(uint32_t a, uint32_t p, int len)
{
    uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
    return (a & mask) == (p & mask);
}

static enum reg__addr_class classify4(uint32_t a)
{
    static const struct {
        uint32_t net;
        int len;
        enum reg__addr_class c;
    } t[] = {
        {0xffffffffu, 32, REG__ADDR_BROADCAST},   /* 255.255.255.255 */
        {0x00000000u, 32, REG__ADDR_UNSPECIFIED}, /* 0.0.0.0 */
        {0x00000000u, 8, REG__ADDR_RESERVED},     /* 0/8 "this network" */
        {0x7f000000u, 8, REG__ADDR_LOOPBACK},     /* 127/8 */
        {0x0a000000u, 8, REG__ADDR_PRIVATE},      /* 10/8 */
        {0xac100000u, 12, REG__ADDR_PRIVATE},     /* 172.16/12 */
        {0xc0a80000u, 16, REG__ADDR_PRIVATE},     /* 192.168/16 */
        {0xa9fe0000u, 16, REG__ADDR_LINKLOCAL},   /* 169.254/16, cloud metadata */
        {0x64400000u, 10, REG__ADDR_CGNAT},       /* 100.64/10 */
        {0xc0000000u, 24, REG__ADDR_RESERVED},    /* 192.0.0/24 IETF */
        {0xc0000200u, 24, REG__ADDR_RESERVED},    /* 192.0.2/24 TEST-NET-1 */
        {0xc0586300u, 24, REG__ADDR_RESERVED},    /* 192.88.99/24 6to4 relay */
        {0xc6120000u, 15, REG__ADDR_RESERVED},    /* 198.18/15 benchmarking */
        {0xc6336400u, 24, REG__ADDR_RESERVED},    /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100u, 24, REG__ADDR_RESERVED},    /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000u, 4, REG__ADDR_MULTICAST},    /* 224/4 */
        {0xf0000000u, 4, REG__ADDR_RESERVED},     /* 240/4 */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (in4(a, t[i].net, t[i].len))
            return t[i].c;
    return REG__ADDR_PUBLIC;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool prefix6(const unsigned char *b, const unsigned char *p, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(b, p, (size_t)whole) != 0)
        return false;
    return rest == 0 || ((b[whole] ^ p[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static enum reg__addr_class classify6(const unsigned char *b)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const unsigned char sixto4[2] = {0x20, 0x02};
    static const unsigned char doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    static const unsigned char discard[8] = {0x01, 0x00};
    if (memcmp(b, zero, 15) == 0 && b[15] == 0)
        return REG__ADDR_UNSPECIFIED; /* :: */
    if (memcmp(b, zero, 15) == 0 && b[15] == 1)
        return REG__ADDR_LOOPBACK; /* ::1 */
    if (prefix6(b, mapped, 96) || prefix6(b, nat64, 96))
        return classify4(v4_at(b + 12)); /* ::ffff:a.b.c.d, 64:ff9b::a.b.c.d */
    if (prefix6(b, zero, 96))
        return REG__ADDR_RESERVED; /* ::a.b.c.d (deprecated IPv4-compatible) */
    if (prefix6(b, nat64_local, 48) || prefix6(b, discard, 64) || prefix6(b, doc, 32))
        return REG__ADDR_RESERVED; /* 64:ff9b:1::/48, 100::/64, 2001:db8::/32 */
    if (prefix6(b, sixto4, 16) && classify4(v4_at(b + 2)) != REG__ADDR_PUBLIC)
        return classify4(v4_at(b + 2)); /* 2002:AABB:CCDD::/48 embeds a v4 */
    if (b[0] == 0xff)
        return REG__ADDR_MULTICAST; /* ff00::/8 */
    if ((b[0] & 0xfe) == 0xfc)
        return REG__ADDR_PRIVATE; /* fc00::/7 unique local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return REG__ADDR_LINKLOCAL; /* fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return REG__ADDR_PRIVATE; /* fec0::/10, deprecated site-local */
    return REG__ADDR_PUBLIC;
}

enum reg__addr_class reg__addr_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return classify4(ntohl(a->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        return classify6(a->sin6_addr.s6_addr);
    }
    return REG__ADDR_UNKNOWN;
}

int reg__addr_classify_text(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (int)classify4(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return (int)classify6(a6.s6_addr);
    return -1;
}

/* ---- the connection guard ---- */

/* The session's own host when it is a mirror or an insecure registry: the
 * only host where plain http and non-public addresses are allowed. */
static void trusted_endpoint(struct reg__guard *g, const struct reg_config *cfg,
                             const char *registry, const char *base)
{
    struct url_parts p;
    struct im_error e;
    g->trusted = false;
    if (!registry || !base ||
        (!reg__policy_mirrored(cfg, registry) && !is_insecure(cfg, registry)))
        return;
    if (url_split(base, &p, &e) != 0)
        return;
    im_strlcpy(g->host, p.host, sizeof g->host);
    g->port = p.port;
    g->trusted = true;
}

/* The decision for one connection to addr (class c, printable text) while
 * curl works on the handle's current URL. true when allowed; otherwise g->why
 * says why and g->refused is set. */
static bool guard_check(struct reg__guard *g, enum reg__addr_class c, const char *addr)
{
    char *cur = NULL;
    struct url_parts p;
    struct im_error e;
    if (curl_easy_getinfo(g->easy, CURLINFO_EFFECTIVE_URL, &cur) != CURLE_OK || !cur ||
        url_split(cur, &p, &e) != 0) {
        snprintf(g->why, sizeof g->why, "cannot tell which URL a connection is for");
        g->refused = true;
        return false;
    }
    if (g->trusted && strcasecmp(p.host, g->host) == 0)
        return true; /* the mirror / insecure registry's own host, any port */
    if (g->allow_private)
        return true; /* --allow-private: closed networks, no address or scheme check */
    if (strcmp(p.scheme, "https") != 0) {
        snprintf(g->why, sizeof g->why,
                 "refused plain http to %.80s:%ld: only mirrors and "
                 "--insecure-registries may use http",
                 p.host, p.port);
        g->refused = true;
        return false;
    }
    if (c == REG__ADDR_PUBLIC)
        return true;
    snprintf(g->why, sizeof g->why,
             "refused to connect to %.80s (%.46s, a %s address): only mirrors and "
             "--insecure-registries may be on non-public addresses (or --allow-private)",
             p.host, addr, reg__addr_class_name(c));
    g->refused = true;
    return false;
}

static curl_socket_t guard_open(void *cls, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct reg__guard *g = cls;
    char text[INET6_ADDRSTRLEN] = "?";
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (a->family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&a->addr)->sin_addr, text,
                  sizeof text);
    else if (a->family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr, text,
                  sizeof text);
    if (!guard_check(g, reg__addr_classify(&a->addr), text))
        return CURL_SOCKET_BAD;
    int fd = socket(a->family, a->socktype, a->protocol);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

static int guard_prereq(void *cls, char *primary_ip, char *local_ip, int primary_port,
                        int local_port)
{
    struct reg__guard *g = cls;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    int c = reg__addr_classify_text(primary_ip);
    if (!guard_check(g, c < 0 ? REG__ADDR_UNKNOWN : (enum reg__addr_class)c, primary_ip))
        return CURL_PREREQFUNC_ABORT;
    /* Connected to an allowed address: a refusal seen while connecting was of
     * another candidate address (happy eyeballs), not the cause of anything
     * that fails later. */
    g->refused = false;
    return CURL_PREREQFUNC_OK;
}

int reg__guard_install(struct reg__guard *g, const struct reg_config *cfg,
                       const char *registry, const char *base, CURL *easy)
{
    memset(g, 0, sizeof *g);
    g->easy = easy;
    g->allow_private = cfg->allow_private;
    trusted_endpoint(g, cfg, registry, base);
    CURLcode e = curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, guard_open);
    e |= curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, g);
    e |= curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, guard_prereq);
    e |= curl_easy_setopt(easy, CURLOPT_PREREQDATA, g);
    return e == CURLE_OK ? 0 : IM_EINTERNAL;
}
