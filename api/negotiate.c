/* negotiate.c - Accept header parsing with q-values (RFC 9110 12.5.1). */
#include "api_int.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

/* How well a media range matches one of our types; higher is more specific. */
enum match { MATCH_NONE = 0, MATCH_ANY, MATCH_TYPE, MATCH_EXACT };

struct choice {
    const char *type, *subtype;
    enum match best; /* most specific range seen so far */
    int q;           /* its q, in thousandths */
    size_t position; /* index of that range in the header */
};

static bool token_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != lit[i])
            return false;
    return true;
}

static const char *skip_ows(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* "0", "0.5", "1", "1.000": thousandths, or -1 when malformed. */
static int parse_q(const char *s, const char *end)
{
    if (s >= end || (*s != '0' && *s != '1'))
        return -1;
    int q = (*s - '0') * 1000, scale = 100;
    s++;
    if (s < end && *s == '.') {
        for (s++; s < end && isdigit((unsigned char)*s) && scale > 0; s++, scale /= 10)
            q += (*s - '0') * scale;
    }
    s = skip_ows(s, end);
    return (s == end && q <= 1000) ? q : -1;
}

/* The q parameter among ";a=b;q=0.5" (1000 when absent or malformed). */
static int range_q(const char *params, const char *end)
{
    const char *p = params;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *name = skip_ows(p, stop);
        const char *eq = memchr(name, '=', (size_t)(stop - name));
        if (eq) {
            const char *ne = eq;
            while (ne > name && (ne[-1] == ' ' || ne[-1] == '\t'))
                ne--;
            if (token_eq(name, (size_t)(ne - name), "q")) {
                int q = parse_q(skip_ows(eq + 1, stop), stop);
                return q < 0 ? 1000 : q;
            }
        }
        p = semi ? semi + 1 : end;
    }
    return 1000;
}

static enum match match_range(const char *type, size_t tlen, const char *sub, size_t slen,
                              const struct choice *c)
{
    bool any_type = tlen == 1 && type[0] == '*', any_sub = slen == 1 && sub[0] == '*';
    if (any_type)
        return any_sub ? MATCH_ANY : MATCH_NONE;
    if (!token_eq(type, tlen, c->type))
        return MATCH_NONE;
    if (any_sub)
        return MATCH_TYPE;
    return token_eq(sub, slen, c->subtype) ? MATCH_EXACT : MATCH_NONE;
}

/* One list element "head;params" ending at end: where its head starts (past
 * blanks; end for an empty element), *head_end after the head's last
 * non-blank, *semi at the ';' before its parameters or NULL. */
static const char *split_element(const char *s, const char *end, const char **head_end,
                                 const char **semi)
{
    s = skip_ows(s, end);
    *semi = s < end ? memchr(s, ';', (size_t)(end - s)) : NULL;
    const char *e = *semi ? *semi : end;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *head_end = e;
    return s;
}

/* Applies one element "type/sub;params" to every choice. */
static void apply_range(const char *s, const char *end, size_t position,
                        struct choice *choices, size_t n)
{
    const char *mt_end, *semi;
    s = split_element(s, end, &mt_end, &semi);
    if (s >= end)
        return; /* an empty element */
    const char *slash = memchr(s, '/', (size_t)(mt_end - s));
    if (!slash || slash == s || slash + 1 >= mt_end)
        return; /* not a media range: ignored */
    int q = semi ? range_q(semi + 1, end) : 1000;
    for (size_t i = 0; i < n; i++) {
        enum match m = match_range(s, (size_t)(slash - s), slash + 1,
                                   (size_t)(mt_end - slash - 1), &choices[i]);
        if (m > choices[i].best) {
            choices[i].best = m;
            choices[i].q = q;
            choices[i].position = position;
        }
    }
}

/* True when a is preferred over b. */
static bool preferred(const struct choice *a, const struct choice *b)
{
    if (a->q != b->q)
        return a->q > b->q;
    if ((a->best == MATCH_EXACT) != (b->best == MATCH_EXACT))
        return a->best == MATCH_EXACT;
    if (a->best == MATCH_EXACT)
        return a->position < b->position;
    return false;
}

enum api_format api__negotiate(const char *accept, bool *acceptable)
{
    /* in the order of enum api_format; ties go to the earlier one */
    struct choice c[3] = {{"application", "json", MATCH_NONE, 0, 0},
                          {"text", "markdown", MATCH_NONE, 0, 0},
                          {"text", "html", MATCH_NONE, 0, 0}};
    const size_t n = sizeof c / sizeof c[0];
    if (acceptable)
        *acceptable = true;
    if (!accept || !*skip_ows(accept, accept + strlen(accept)))
        return API_FORMAT_JSON;
    const char *p = accept, *end = accept + strlen(accept);
    for (size_t position = 0; p < end; position++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        apply_range(p, stop, position, c, n);
        p = comma ? comma + 1 : end;
    }
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (preferred(&c[i], &c[best]))
            best = i;
    if (c[best].q <= 0) {
        if (acceptable)
            *acceptable = false;
        return API_FORMAT_JSON;
    }
    return (enum api_format)best;
}

enum api_format api__request_format(const struct api_request *req, bool *valid)
{
    if (valid)
        *valid = true;
    if (req->format) {
        if (strcmp(req->format, "json") == 0)
            return API_FORMAT_JSON;
        if (strcmp(req->format, "markdown") == 0 || strcmp(req->format, "md") == 0)
            return API_FORMAT_MARKDOWN;
        if (strcmp(req->format, "html") == 0)
            return API_FORMAT_HTML;
        if (valid)
            *valid = false;
        return API_FORMAT_JSON;
    }
    return api__negotiate(req->accept, NULL);
}

/* One Accept-Encoding element "coding;q=...": its q (thousandths) for gzip
 * when it names gzip (or its alias x-gzip) or is the wildcard. */
static void apply_coding(const char *s, const char *end, int *named, int *any)
{
    const char *c_end, *semi;
    s = split_element(s, end, &c_end, &semi);
    size_t n = (size_t)(c_end - s);
    bool gzip = token_eq(s, n, "gzip") || token_eq(s, n, "x-gzip");
    bool star = n == 1 && s[0] == '*';
    if (!gzip && !star)
        return;
    int q = semi ? range_q(semi + 1, end) : 1000;
    int *slot = gzip ? named : any;
    if (*slot < 0) /* the first element naming it counts */
        *slot = q;
}

bool api__accepts_gzip(const char *accept_encoding)
{
    int named = -1, any = -1;
    if (!accept_encoding)
        return false;
    const char *p = accept_encoding, *end = p + strlen(p);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        apply_coding(p, stop, &named, &any);
        p = comma ? comma + 1 : end;
    }
    return named >= 0 ? named > 0 : any > 0;
}
