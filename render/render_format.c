/* render_format.c - the small formatting rules of the repo-info format
 * (docs/FORMAT.md): sizes, dates, platform strings, reference display forms
 * and the page's two styles. Pure functions, no globals. (The Dockerfile
 * lines are render_dockerfile.c's.) */
#include "render.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render_int.h"

/* ---- sizes ---- */

int render_size(int64_t bytes, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    const size_t nunits = sizeof units / sizeof units[0];
    size_t u = 0;
    double v = (double)bytes;

    if (bytes < 0)
        return snprintf(buf, n, "unknown");
    /* Move up while the integer part is greater than 1000 (so 1000 B stays). */
    while (u + 1 < nunits && (int64_t)v > 1000) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        return snprintf(buf, n, "%.1f %s", v, units[u]);
    return snprintf(buf, n, "%.1f %s (%lld bytes)", v, units[u], (long long)bytes);
}

/* ---- dates (proleptic Gregorian, no libc time zone involvement) ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Years 0..9999 only: four-digit years are all both formats can carry. */
#define MIN_TIME (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define MAX_TIME 253402300799LL   /* 9999-12-31T23:59:59Z */

struct civil {
    int64_t year;
    int month, day, hour, min, sec, wday;
};

static int split_time(int64_t t, struct civil *c)
{
    if (t < MIN_TIME || t > MAX_TIME)
        return -1;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (int)(secs / 3600);
    c->min = (int)(secs / 60 % 60);
    c->sec = (int)(secs % 60);
    c->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    return 0;
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int render_http_date(int64_t t, char *buf, size_t n)
{
    struct civil c;
    if (split_time(t, &c) < 0)
        return -1;
    int w = snprintf(buf, n, "%s, %02d %s %04lld %02d:%02d:%02d GMT", wdays[c.wday],
                     c.day, months[c.month - 1], (long long)c.year, c.hour, c.min, c.sec);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int render_rfc3339(int64_t t, char *buf, size_t n)
{
    struct civil c;
    if (split_time(t, &c) < 0)
        return -1;
    int w = snprintf(buf, n, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)c.year,
                     c.month, c.day, c.hour, c.min, c.sec);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Reads exactly ndigits decimal digits. */
static int read_digits(const char **s, int ndigits, int *out)
{
    int v = 0;
    for (int i = 0; i < ndigits; i++) {
        char ch = (*s)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *s += ndigits;
    *out = v;
    return 0;
}

static int expect(const char **s, char ch)
{
    if (**s != ch)
        return -1;
    (*s)++;
    return 0;
}

static int civil_to_time(const struct civil *c, int64_t *out)
{
    if (c->month < 1 || c->month > 12 || c->day < 1 ||
        c->day > days_in_month(c->year, c->month) || c->hour > 23 || c->min > 59 ||
        c->sec > 60)
        return -1;
    *out = days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 +
           c->min * 60 + c->sec;
    return 0;
}

int render_parse_rfc3339(const char *s, int64_t *out)
{
    struct civil c = {0};
    int y, oh = 0, om = 0, sign = 0;
    int64_t t;

    if (!s || read_digits(&s, 4, &y) || expect(&s, '-') || read_digits(&s, 2, &c.month) ||
        expect(&s, '-') || read_digits(&s, 2, &c.day))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (read_digits(&s, 2, &c.hour) || expect(&s, ':') || read_digits(&s, 2, &c.min) ||
        expect(&s, ':') || read_digits(&s, 2, &c.sec))
        return -1;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
        if (read_digits(&s, 2, &oh) || expect(&s, ':') || read_digits(&s, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;
    c.year = y;
    if (civil_to_time(&c, &t) < 0)
        return -1;
    *out = t - sign * (oh * 3600 + om * 60);
    return 0;
}

static int find_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strncmp(s, names[i], 3) == 0)
            return i;
    return -1;
}

int render_parse_http_date(const char *s, int64_t *out)
{
    struct civil c = {0};
    int y, wd;

    if (!s || strlen(s) != 29)
        return -1;
    wd = find_name(s, wdays, 7);
    s += 3;
    if (wd < 0 || expect(&s, ',') || expect(&s, ' ') || read_digits(&s, 2, &c.day) ||
        expect(&s, ' '))
        return -1;
    c.month = find_name(s, months, 12) + 1;
    s += 3;
    if (c.month < 1 || expect(&s, ' ') || read_digits(&s, 4, &y) || expect(&s, ' ') ||
        read_digits(&s, 2, &c.hour) || expect(&s, ':') || read_digits(&s, 2, &c.min) ||
        expect(&s, ':') || read_digits(&s, 2, &c.sec) || strcmp(s, " GMT") != 0)
        return -1;
    c.year = y;
    return civil_to_time(&c, out);
}

/* ---- bounded appends into a caller's buffer ---- */

struct sbuf {
    char *p;
    size_t n, len;
    bool trunc;
};

static void sb_put(struct sbuf *b, const char *s)
{
    size_t l = strlen(s);
    if (b->len + l >= b->n) {
        b->trunc = true;
        l = b->n > b->len + 1 ? b->n - b->len - 1 : 0;
    }
    memcpy(b->p + b->len, s, l);
    b->len += l;
    if (b->n > 0)
        b->p[b->len] = '\0';
}

static void sb_features(struct sbuf *b, char *const *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sb_put(b, i == 0 ? " ft. " : ", ");
        sb_put(b, f[i] ? f[i] : "");
    }
}

int render_platform_string(const struct render_platform *p, char *buf, size_t n)
{
    struct sbuf b = {buf, n, 0, false};
    if (n == 0)
        return -1;
    buf[0] = '\0';
    sb_put(&b, p->os && p->os[0] ? p->os : "linux");
    if (p->os_version && p->os_version[0]) {
        sb_put(&b, " version ");
        sb_put(&b, p->os_version);
    }
    sb_features(&b, p->os_features, p->n_os_features);
    sb_put(&b, "; ");
    sb_put(&b, p->architecture && p->architecture[0] ? p->architecture : "amd64");
    if (p->variant && p->variant[0]) {
        sb_put(&b, " variant ");
        sb_put(&b, p->variant);
    }
    sb_features(&b, p->features, p->n_features);
    return b.trunc ? -1 : 0;
}

/* ---- references ---- */

static bool is_docker_hub(const char *registry)
{
    return registry[0] == '\0' || strcmp(registry, "docker.io") == 0 ||
           strcmp(registry, "index.docker.io") == 0 ||
           strcmp(registry, "registry-1.docker.io") == 0;
}

int render_ref_pull_name(const struct im_ref *ref, char *buf, size_t n)
{
    struct sbuf b = {buf, n, 0, false};
    if (n == 0)
        return -1;
    buf[0] = '\0';
    if (is_docker_hub(ref->registry)) {
        const char *repo = ref->repository;
        if (strncmp(repo, "library/", 8) == 0 && strchr(repo + 8, '/') == NULL)
            repo += 8;
        sb_put(&b, repo);
    } else {
        sb_put(&b, ref->registry);
        sb_put(&b, "/");
        sb_put(&b, ref->repository);
    }
    return b.trunc ? -1 : 0;
}

int render_ref_display(const struct im_ref *ref, char *buf, size_t n)
{
    if (render_ref_pull_name(ref, buf, n) < 0)
        return -1;
    struct sbuf b = {buf, n, strlen(buf), false};
    if (ref->tag[0]) {
        sb_put(&b, ":");
        sb_put(&b, ref->tag);
    } else if (ref->digest[0]) {
        sb_put(&b, "@");
        sb_put(&b, ref->digest);
    }
    return b.trunc ? -1 : 0;
}

/* ---- the page's history dates ---- */

/* One or more decimal digits at *s; the value saturates (a number past any
 * date is as invalid as a bigger one). */
static bool read_number(const char **s, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        if (v < 100000000000LL)
            v = v * 10 + (*p - '0');
    *s = p;
    *out = v;
    return true;
}

/* The year as the generator's date library reads it (Perl's Time::Local):
 * four digits and more as they are, 100..999 as years after 1900, and 0..99
 * in the century window of the 2020s (77..99 -> 1977..1999, else 20xx). */
static int64_t window_year(int64_t y)
{
    if (y >= 1000)
        return y;
    if (y >= 100)
        return 1900 + y;
    return y > 76 ? 1900 + y : 2000 + y;
}

/* "Y-M-D<non-digits>h:m:s[.f][Z|+hh:mm|-hh:mm]" (case-insensitive Z, no zone
 * = UTC, any number of digits per field, one final newline allowed) into Unix
 * seconds; false when it is not of that form or a field is out of range. */
static bool lenient_rfc3339(const char *s, int64_t *out)
{
    int64_t f[6], oh = 0, om = 0, sign = 0;
    for (int i = 0; i < 6; i++) {
        if (!read_number(&s, &f[i]))
            return false;
        if (i == 0 || i == 1) {
            if (*s++ != '-')
                return false;
        } else if (i == 2) {
            const char *p = s;
            while (*s && (*s < '0' || *s > '9'))
                s++;
            if (s == p)
                return false;
        } else if (i < 5 && *s++ != ':') {
            return false;
        }
    }
    if (*s == '.') {
        s++;
        int64_t frac;
        if (!read_number(&s, &frac))
            return false;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '+' ? -1 : 1;
        if (!read_number(&s, &oh) || *s++ != ':' || !read_number(&s, &om))
            return false;
    }
    if (!(*s == '\0' || (*s == '\n' && s[1] == '\0')))
        return false;
    struct civil c = {.year = window_year(f[0])};
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[3] > 23 || f[4] > 59 || f[5] > 59 ||
        c.year > 9999 || f[2] > days_in_month(c.year, (int)f[1]))
        return false;
    c.month = (int)f[1];
    c.day = (int)f[2];
    c.hour = (int)f[3];
    c.min = (int)f[4];
    c.sec = (int)f[5];
    if (civil_to_time(&c, out) < 0)
        return false;
    *out += sign * (oh * 3600 + om * 60);
    return true;
}

/* "S" or "S.F": seconds since the epoch, which the generator also takes. */
static bool epoch_seconds(const char *s, int64_t *out)
{
    int64_t frac;
    if (!read_number(&s, out))
        return false;
    if (*s == '.') {
        s++;
        if (!read_number(&s, &frac))
            return false;
    }
    return *s == '\0';
}

int render_history_date(const char *created, char *buf, size_t n)
{
    int64_t t = 0;
    if (!created || (!epoch_seconds(created, &t) && !lenient_rfc3339(created, &t) &&
                     render_parse_http_date(created, &t) < 0))
        t = 0;
    if (t < 0 || t > MAX_TIME)
        t = 0; /* the generator's dates start at the epoch */
    return render_http_date(t, buf, n);
}

/* ---- the page's two styles ---- */

static const char *const style_names[] = {"seed", "current"};

int render_style_parse(const char *name, enum render_style *out)
{
    for (size_t i = 0; name && i < sizeof style_names / sizeof style_names[0]; i++)
        if (strcmp(name, style_names[i]) == 0) {
            *out = (enum render_style)i;
            return 0;
        }
    return -1;
}

const char *render_style_name(enum render_style style)
{
    return style == RENDER_STYLE_CURRENT ? "current" : "seed";
}

/* ---- shared by the renderers ---- */

void render__cat(struct im_buf *b, ...)
{
    va_list ap;
    const char *s;
    va_start(ap, b);
    for (s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
        im_buf_put(b, s);
    va_end(ap);
}

void render__escape(struct im_buf *b, const char *s,
                    const char *(*rep)(unsigned char c, char esc[8]))
{
    const char *run = s ? s : "";
    const char *p = run;
    for (; *p; p++) {
        char esc[8];
        const char *r = rep((unsigned char)*p, esc);
        if (r) {
            im_buf_putn(b, run, (size_t)(p - run));
            im_buf_put(b, r);
            run = p + 1;
        }
    }
    im_buf_putn(b, run, (size_t)(p - run));
}

char *render__history_line_dated(const struct render_entry *e, size_t i, char *date,
                                 size_t n)
{
    if (render_history_date(e->history[i].created_raw, date, n) != 0 && n > 0)
        date[0] = '\0';
    return render__history_line(e, i);
}

bool render__total_size(const struct render_entry *e, int64_t *total)
{
    int64_t t = render_entry_total(e);
    if (t < 0)
        return false;
    *total = t;
    return true;
}

void render__entry_platform(const struct render_image *img, const struct render_entry *e,
                            char *buf, size_t n)
{
    struct render_platform p = e->platform;
    if (!img->is_list) {
        struct render_platform only = {.os = p.os, .architecture = p.architecture};
        p = only;
    }
    (void)render_platform_string(&p, buf, n); /* truncated if too long */
}

/* A first path segment the route grammar reads as a registry host. */
static bool looks_like_host(const char *repo)
{
    size_t seg = strcspn(repo, "/");
    return repo[seg] == '/' && (memchr(repo, '.', seg) || memchr(repo, ':', seg) ||
                                (seg == 9 && strncmp(repo, "localhost", 9) == 0));
}

int render_ref_route(const struct im_ref *ref, char *buf, size_t n)
{
    struct sbuf b = {buf, n, 0, false};
    if (n == 0)
        return -1;
    buf[0] = '\0';
    if (render_ref_pull_name(ref, buf, n) < 0)
        return -1;
    b.len = strlen(buf);
    if (is_docker_hub(ref->registry) && looks_like_host(buf)) {
        b.len = 0;
        sb_put(&b, "docker.io/");
        sb_put(&b, ref->repository);
    }
    if (ref->tag[0] && ref->digest[0]) {
        sb_put(&b, ":");
        sb_put(&b, ref->tag);
    } else if (ref->tag[0]) {
        sb_put(&b, "/");
        sb_put(&b, ref->tag);
    }
    if (ref->digest[0]) {
        sb_put(&b, "@");
        sb_put(&b, ref->digest);
    }
    return b.trunc ? -1 : 0;
}
