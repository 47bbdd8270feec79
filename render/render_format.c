/* render_format.c - the small formatting rules of the repo-info format
 * (FORMAT.md): sizes, dates, platform strings, reference display forms and
 * the Dockerfile line reconstruction. Pure functions, no globals. */
#include "render.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* ---- Dockerfile lines ---- */

static bool skip_prefix(const char **s, const char *prefix)
{
    size_t l = strlen(prefix);
    if (strncmp(*s, prefix, l) != 0)
        return false;
    *s += l;
    return true;
}

/* Drops "SHELL-JOINED " (the image's own SHELL) from the front of *s. */
static bool skip_shell(const char **s, const struct render_strv *shell)
{
    const char *p = *s;
    if (!shell || !shell->present || shell->n == 0)
        return false;
    for (size_t i = 0; i < shell->n; i++) {
        if (!skip_prefix(&p, shell->v[i] ? shell->v[i] : "") || *p != ' ')
            return false;
        p++;
    }
    *s = p;
    return true;
}

static bool starts_with_caps_word(const char *s)
{
    size_t i = 0;
    while (s[i] >= 'A' && s[i] <= 'Z')
        i++;
    return i > 0 && s[i] == ' ';
}

/* "|N w1 .. wN rest": on success *args and *args_len are "w1 .. wN" and *rest the
 * remainder. Returns false when the string is not of that form. */
static bool split_build_args(const char *s, const char **args, size_t *args_len,
                             const char **rest)
{
    const char *p = s + 1;
    long nargs = 0;

    if (s[0] != '|' || !isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p) && nargs < 100000)
        nargs = nargs * 10 + (*p++ - '0');
    if (nargs < 1 || *p != ' ')
        return false;
    p++;
    *args = p;
    for (long i = 0; i < nargs; i++) {
        const char *sp = strchr(p, ' ');
        if (!sp || sp == p)
            return false;
        p = sp + 1;
    }
    *args_len = (size_t)(p - 1 - *args);
    *rest = p;
    return true;
}

static char *join3(const char *a, size_t alen, const char *b, const char *c)
{
    size_t blen = strlen(b), clen = strlen(c);
    char *out = malloc(alen + blen + clen + 1);
    if (!out)
        return NULL;
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    memcpy(out + alen + blen, c, clen + 1);
    return out;
}

char *render_dockerfile_line(const char *created_by, const struct render_strv *shell)
{
    const char *s = created_by ? created_by : "";
    const char *args = NULL, *rest = NULL, *nop;
    size_t args_len = 0;
    char *body, *out;

    if (*s == '\0')
        return strdup("");
    skip_prefix(&s, "RUN ");
    if (s[0] == '|') {
        if (!split_build_args(s, &args, &args_len, &rest))
            return join3("", 0, "# unable to parse image command string further:\n", s);
        s = rest;
    }
    if (!skip_prefix(&s, "/bin/sh -c ") && !skip_shell(&s, shell))
        skip_prefix(&s, "cmd /S /C "); /* the Windows default shell */
    nop = s;
    if (skip_prefix(&nop, "#(nop)") && *nop == ' ') {
        while (*nop == ' ')
            nop++;
        body = strdup(nop);
    } else if (starts_with_caps_word(s)) {
        body = strdup(s);
    } else {
        body = join3("RUN ", 4, s, "");
    }
    if (!body || !args)
        return body;
    out = malloc(strlen("# ARGS: ") + args_len + 1 + strlen(body) + 1);
    if (out) {
        memcpy(out, "# ARGS: ", 8);
        memcpy(out + 8, args, args_len);
        out[8 + args_len] = '\n';
        memcpy(out + 9 + args_len, body, strlen(body) + 1);
    }
    free(body);
    return out;
}

/* Length of the run of tabs and 4-space groups at s (0 when none). */
static size_t indent_run(const char *s)
{
    size_t i = 0;
    for (;;) {
        if (s[i] == '\t')
            i++;
        else if (strncmp(s + i, "    ", 4) == 0)
            i += 4;
        else
            return i;
    }
}

/* "RUN X" where each run of tabs / 4-space groups gets "\\\n" before it. */
static char *run_with_continuations(const char *x)
{
    size_t len = strlen(x), runs = 0, o = 0;
    bool wrap = strchr(x, '\n') == NULL;
    char *out;

    for (size_t i = 0; wrap && x[i];) {
        size_t r = indent_run(x + i);
        runs += r > 0;
        i += r > 0 ? r : 1;
    }
    out = malloc(4 + len + 2 * runs + 1);
    if (!out)
        return NULL;
    memcpy(out, "RUN ", 4);
    o = 4;
    for (size_t i = 0; x[i];) {
        size_t r = wrap ? indent_run(x + i) : 0;
        if (r > 0) {
            out[o++] = '\\';
            out[o++] = '\n';
            memcpy(out + o, x + i, r);
            o += r;
            i += r;
        } else {
            out[o++] = x[i++];
        }
    }
    out[o] = '\0';
    return out;
}

static char *argv_json(char *const *argv, size_t n)
{
    json_t *arr = json_array();
    char *dump = NULL, *out = NULL;
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, json_string(argv[i] ? argv[i] : "")) < 0)
            goto out;
    dump = json_dumps(arr, JSON_COMPACT | JSON_ESCAPE_SLASH);
    if (dump)
        out = join3("RUN ", 4, dump, "");
out:
    free(dump);
    json_decref(arr);
    return out;
}

/* `# ARG: "k" => "v"` for one "k=v" build argument. */
static char *arg_line(const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
    const char *v = eq ? eq + 1 : "";
    size_t n = 9 + klen + 6 + strlen(v) + 3;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "# ARG: \"%.*s\" => \"%s\"\n", (int)klen, kv, v);
    return out;
}

char *render_dockerfile_argv(char *const *argv, size_t n)
{
    char *prefix = strdup(""), *body = NULL, *out = NULL;
    size_t first = 0;

    if (!prefix)
        return NULL;
    if (n > 0 && argv[0] && argv[0][0] == '|') {
        char *end = NULL;
        long nargs = strtol(argv[0] + 1, &end, 10);
        if (end && *end == '\0' && nargs > 0 && (size_t)nargs < n) {
            for (size_t i = 1; i <= (size_t)nargs; i++) {
                char *line = arg_line(argv[i] ? argv[i] : "");
                char *joined = line ? join3(prefix, strlen(prefix), line, "") : NULL;
                free(line);
                free(prefix);
                prefix = joined;
                if (!prefix)
                    return NULL;
            }
            first = (size_t)nargs + 1;
        }
    }
    if (first > 0) { /* argv may be NULL when n == 0 */
        argv += first;
        n -= first;
    }
    if (n == 0) {
        body = strdup("");
    } else if (n == 3 && argv[0] && argv[1] && argv[2] &&
               strcmp(argv[0], "/bin/sh") == 0 && strcmp(argv[1], "-c") == 0) {
        const char *x = argv[2];
        if (skip_prefix(&x, "#(nop)") && *x == ' ') {
            while (*x == ' ')
                x++;
            body = strdup(x);
        } else {
            body = run_with_continuations(argv[2]);
        }
    } else {
        body = argv_json(argv, n);
    }
    if (body)
        out = join3(prefix, strlen(prefix), body, "");
    free(prefix);
    free(body);
    return out;
}
