/* ref.c - the image reference grammar (Docker's distribution/reference) and
 * Pure functions, no allocation. (The /images/ route grammar is api/'s.) */
#include "registry_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define NAME_TOTAL_MAX 255 /* Docker's NameTotalLengthMax */

static bool is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool is_word(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

bool reg_digest_valid(const char *digest)
{
    static const struct {
        const char *algo;
        size_t hexlen;
    } algos[] = {{"sha256:", 64}, {"sha384:", 96}, {"sha512:", 128}};
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        size_t n = strlen(algos[i].algo);
        if (strncmp(digest, algos[i].algo, n) != 0)
            continue;
        const char *hex = digest + n;
        if (strlen(hex) != algos[i].hexlen)
            return false;
        for (const char *p = hex; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return false;
        return true;
    }
    return false;
}

static int check_digest(const char *d, struct im_error *err)
{
    const char *colon = strchr(d, ':');
    if (!colon)
        return im_seterr(err, IM_EINVAL, "digest must be 'algorithm:hex': '%.80s'", d);
    size_t alen = (size_t)(colon - d);
    size_t hlen = strlen(colon + 1);
    size_t want = 0;
    if (alen == 6 && strncmp(d, "sha256", 6) == 0)
        want = 64;
    else if (alen == 6 && strncmp(d, "sha384", 6) == 0)
        want = 96;
    else if (alen == 6 && strncmp(d, "sha512", 6) == 0)
        want = 128;
    else
        return im_seterr(
            err, IM_EINVAL,
            "unsupported digest algorithm '%.*s' (use sha256, sha384 or sha512)",
            (int)(alen > 32 ? 32 : alen), d);
    if (hlen != want)
        return im_seterr(err, IM_EINVAL,
                         "%.6s digest must have %zu hex characters, not %zu", d, want,
                         hlen);
    for (const char *p = colon + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return im_seterr(err, IM_EINVAL,
                             "digest must be lowercase hexadecimal: bad character '%c'",
                             *p);
    return 0;
}

static int check_tag(const char *t, size_t len, struct im_error *err)
{
    if (len == 0)
        return im_seterr(err, IM_EINVAL, "tag must not be empty");
    if (len > 128)
        return im_seterr(err, IM_EINVAL, "tag is %zu characters long, the limit is 128",
                         len);
    if (t[0] == '.' || t[0] == '-')
        return im_seterr(err, IM_EINVAL, "tag must not start with '.' or '-': '%.*s'",
                         (int)len, t);
    for (size_t i = 0; i < len; i++)
        if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
            return im_seterr(
                err, IM_EINVAL,
                "tag may contain only letters, digits, '_', '.' and '-': '%.*s'",
                (int)len, t);
    return 0;
}

/* One repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int check_component(const char *c, size_t len, struct im_error *err)
{
    if (len == 0)
        return im_seterr(err, IM_EINVAL, "repository has an empty path component");
    for (size_t i = 0; i < len; i++)
        if (isupper((unsigned char)c[i]))
            return im_seterr(err, IM_EINVAL, "repository must be lowercase: '%.*s'",
                             (int)len, c);
    if (!is_lower_alnum(c[0]) || !is_lower_alnum(c[len - 1]))
        return im_seterr(
            err, IM_EINVAL,
            "repository component must start and end with a letter or digit: "
            "'%.*s'",
            (int)len, c);
    for (size_t i = 0; i < len;) {
        if (is_lower_alnum(c[i])) {
            i++;
            continue;
        }
        size_t j = i;
        if (c[i] == '.')
            j = i + 1;
        else if (c[i] == '_')
            j = (i + 1 < len && c[i + 1] == '_') ? i + 2 : i + 1;
        else if (c[i] == '-')
            for (j = i; j < len && c[j] == '-'; j++)
                ;
        if (j == i)
            return im_seterr(err, IM_EINVAL, "repository may not contain '%c': '%.*s'",
                             c[i], (int)len, c);
        if (!is_lower_alnum(c[j]))
            return im_seterr(err, IM_EINVAL,
                             "repository component has consecutive separators: '%.*s'",
                             (int)len, c);
        i = j;
    }
    return 0;
}

/* domain-component ('.' domain-component)* (':' port)? */
static int check_host(const char *h, size_t len, struct im_error *err)
{
    const char *colon = memchr(h, ':', len);
    size_t hlen = colon ? (size_t)(colon - h) : len;
    if (hlen == 0)
        return im_seterr(err, IM_EINVAL, "registry host must not be empty");
    for (size_t i = 0; i < hlen; i++) {
        bool edge = i == 0 || i == hlen - 1 || h[i - 1] == '.' || h[i + 1] == '.';
        if (isalnum((unsigned char)h[i]) || (h[i] == '.' && !edge) ||
            (h[i] == '-' && !edge))
            continue;
        return im_seterr(err, IM_EINVAL, "invalid registry host '%.*s'", (int)len, h);
    }
    if (colon) {
        size_t plen = len - hlen - 1;
        if (plen == 0 || plen > 5)
            return im_seterr(err, IM_EINVAL, "invalid port in registry host '%.*s'",
                             (int)len, h);
        for (size_t i = 0; i < plen; i++)
            if (!isdigit((unsigned char)colon[1 + i]))
                return im_seterr(err, IM_EINVAL, "invalid port in registry host '%.*s'",
                                 (int)len, h);
    }
    return 0;
}

bool reg_looks_like_host(const char *s, size_t len)
{
    return memchr(s, '.', len) || memchr(s, ':', len) ||
           (len == 9 && memcmp(s, "localhost", 9) == 0);
}

int reg_registry_name(const char *host, size_t len, char *out, size_t n,
                      struct im_error *err)
{
    if (!reg_looks_like_host(host, len))
        return im_seterr(err, IM_EINVAL,
                         "'%.*s' is not a registry host (it needs a '.' or a ':port', "
                         "or is localhost)",
                         (int)len, host);
    int rc = check_host(host, len, err);
    if (rc)
        return rc;
    if (len >= n)
        return im_seterr(err, IM_EINVAL, "registry host '%.*s' is too long", (int)len,
                         host);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[len] = '\0';
    if (strcmp(out, "index.docker.io") == 0 || strcmp(out, "registry-1.docker.io") == 0)
        im_strlcpy(out, "docker.io", n);
    return 0;
}

/* name = [host '/'] component ('/' component)*, written into out->registry and
 * out->repository with Docker Hub normalisation. */
static int parse_name(const char *name, size_t len, struct im_ref *out,
                      struct im_error *err)
{
    if (len == 0)
        return im_seterr(err, IM_EINVAL, "repository name must not be empty");
    if (len > NAME_TOTAL_MAX)
        return im_seterr(err, IM_EINVAL, "name is %zu characters long, the limit is %d",
                         len, NAME_TOTAL_MAX);
    const char *slash = memchr(name, '/', len);
    const char *path = name;
    size_t plen = len;
    im_strlcpy(out->registry, "docker.io", sizeof out->registry);
    if (slash && reg_looks_like_host(name, (size_t)(slash - name))) {
        size_t hlen = (size_t)(slash - name);
        int rc = reg_registry_name(name, hlen, out->registry, sizeof out->registry, err);
        if (rc)
            return rc;
        path = slash + 1;
        plen = len - hlen - 1;
        if (plen == 0)
            return im_seterr(err, IM_EINVAL,
                             "repository missing after registry host '%s'",
                             out->registry);
    }
    for (size_t i = 0; i < plen;) {
        const char *e = memchr(path + i, '/', plen - i);
        size_t clen = e ? (size_t)(e - (path + i)) : plen - i;
        int rc = check_component(path + i, clen, err);
        if (rc)
            return rc;
        i += clen + 1;
        if (e && i == plen)
            return im_seterr(err, IM_EINVAL, "repository must not end with '/'");
    }
    bool hub = strcmp(out->registry, "docker.io") == 0;
    bool library = hub && !memchr(path, '/', plen);
    int n = snprintf(out->repository, sizeof out->repository, "%s%.*s",
                     library ? "library/" : "", (int)plen, path);
    if (n < 0 || (size_t)n >= sizeof out->repository)
        return im_seterr(err, IM_EINVAL, "repository name is too long");
    return 0;
}

int reg_ref_parse(const char *s, struct im_ref *out, struct im_error *err)
{
    struct im_ref r;
    memset(&r, 0, sizeof r);
    int rc = 0;
    size_t len = strlen(s);
    if (len == 0) {
        rc = im_seterr(err, IM_EINVAL, "reference must not be empty");
        goto out;
    }
    const char *at = strchr(s, '@');
    size_t namelen = at ? (size_t)(at - s) : len;
    if (at) {
        rc = check_digest(at + 1, err);
        if (rc)
            goto out;
        im_strlcpy(r.digest, at + 1, sizeof r.digest);
    }
    /* a tag is a ':' after the last '/' of the name */
    const char *tag = NULL;
    for (size_t i = namelen; i-- > 0;) {
        if (s[i] == '/')
            break;
        if (s[i] == ':') {
            tag = s + i + 1;
            break;
        }
    }
    if (tag) {
        size_t tlen = namelen - (size_t)(tag - s);
        rc = check_tag(tag, tlen, err);
        if (rc)
            goto out;
        snprintf(r.tag, sizeof r.tag, "%.*s", (int)tlen, tag);
        namelen = (size_t)(tag - 1 - s);
    }
    rc = parse_name(s, namelen, &r, err);
    if (rc)
        goto out;
    if (!r.tag[0] && !r.digest[0])
        im_strlcpy(r.tag, "latest", sizeof r.tag);
    *out = r;
out:
    return rc;
}

bool reg__tag_valid(const char *tag)
{
    return check_tag(tag, strlen(tag), NULL) == 0;
}
