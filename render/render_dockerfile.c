/* render_dockerfile.c - the Dockerfile line(s) of a history entry, as the
 * repo-info generator reconstructs them (docs/FORMAT.md, "Reconstructing a
 * Dockerfile line from created_by"), and the generator's compact JSON. Pure
 * functions, no globals. */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

#define DEFAULT_SHELL "/bin/sh -c "
#define NOP "#(nop)"
#define UNPARSABLE "# unable to parse image command string further:\n"

/* ---- the generator's JSON ---- */

/* One JSON string as the generator's encoder writes it: '"', '\\' and '/'
 * escaped, \b \f \n \r \t by name, every other byte below 0x20 as \u00XX
 * (upper-case hex), U+2028 and U+2029 as \u2028 and \u2029; everything else
 * as it is (UTF-8). */
static void json_string_out(struct im_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    im_buf_put(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *named = NULL;
        char u[7] = {'\\', 'u', '0', '0', 0, 0, 0};
        switch (*p) {
        case '"':
            named = "\\\"";
            break;
        case '\\':
            named = "\\\\";
            break;
        case '/':
            named = "\\/";
            break;
        case '\b':
            named = "\\b";
            break;
        case '\f':
            named = "\\f";
            break;
        case '\n':
            named = "\\n";
            break;
        case '\r':
            named = "\\r";
            break;
        case '\t':
            named = "\\t";
            break;
        default:
            break;
        }
        if (named) {
            im_buf_put(b, named);
        } else if (*p < 0x20) {
            u[4] = hex[*p >> 4];
            u[5] = hex[*p & 15];
            im_buf_put(b, u);
        } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            im_buf_put(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
            p += 2;
        } else {
            im_buf_putn(b, (const char *)p, 1);
        }
    }
    im_buf_put(b, "\"");
}

void render__json_strv(struct im_buf *b, char *const *v, size_t n)
{
    im_buf_put(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            im_buf_put(b, ",");
        json_string_out(b, v[i] ? v[i] : "");
    }
    im_buf_put(b, "]");
}

/* ---- one created_by string ---- */

/* The shells the generator knows for an image: "/bin/sh -c " and, when the
 * config has a Shell, its elements joined by spaces plus a space (an empty
 * Shell list makes that a single space). */
struct shells {
    char *own; /* NULL when the image has no Shell */
    size_t own_len;
};

static int shells_init(struct shells *sh, const struct render_strv *shell)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    sh->own = NULL;
    sh->own_len = 0;
    if (!shell || !shell->present)
        return 0;
    for (size_t i = 0; i < shell->n; i++) {
        if (i > 0)
            im_buf_put(&b, " ");
        im_buf_put(&b, shell->v[i] ? shell->v[i] : "");
    }
    im_buf_put(&b, " ");
    return im_buf_finish(&b, &sh->own, &sh->own_len);
}

/* Length of the shell prefix at s (the default shell first), 0 when none. */
static size_t shell_at(const char *s, const struct shells *sh)
{
    size_t l = strlen(DEFAULT_SHELL);
    if (strncmp(s, DEFAULT_SHELL, l) == 0)
        return l;
    if (sh->own && strncmp(s, sh->own, sh->own_len) == 0)
        return sh->own_len;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Build arguments: s is "|DIGITS ARGS SHELL...", where ARGS is everything up to
 * the first space followed by a shell (on the same line: ARGS holds no
 * newline). On success, *args and *args_len are ARGS and *rest the shell. */
static bool split_build_args(const char *s, const struct shells *sh, const char **args,
                             size_t *args_len, const char **rest)
{
    const char *p = s + 1;
    if (!is_digit(*p))
        return false;
    while (is_digit(*p))
        p++;
    if (*p != ' ')
        return false;
    *args = ++p;
    for (; *p && *p != '\n'; p++)
        if (*p == ' ' && shell_at(p + 1, sh) > 0) {
            *args_len = (size_t)(p - *args);
            *rest = p + 1;
            return true;
        }
    return false;
}

/* A word of capital letters A-Z followed by a space ("COPY ", "WORKDIR "). */
static bool starts_with_caps_word(const char *s)
{
    size_t i = 0;
    while (s[i] >= 'A' && s[i] <= 'Z')
        i++;
    return i > 0 && s[i] == ' ';
}

/* The steps of docs/FORMAT.md, in order, appended to b. */
static void dockerfile_line(struct im_buf *b, const char *s, const struct shells *sh)
{
    const char *args = NULL, *rest = NULL;
    size_t args_len = 0;

    if (strncmp(s, "RUN ", 4) == 0) /* 1. BuildKit's prefix, put back below */
        s += 4;
    if (s[0] == '|') { /* 2. build arguments */
        if (!split_build_args(s, sh, &args, &args_len, &rest)) {
            im_buf_put(b, UNPARSABLE);
            im_buf_put(b, s);
            return;
        }
        im_buf_put(b, "# ARGS: ");
        im_buf_putn(b, args, args_len);
        im_buf_put(b, "\n");
        s = rest;
    }
    s += shell_at(s, sh);                            /* 3. one shell */
    if (strncmp(s, NOP " ", strlen(NOP) + 1) == 0) { /* 4. a no-op step */
        s += strlen(NOP);
        while (*s == ' ')
            s++;
    } else if (!starts_with_caps_word(s)) {
        im_buf_put(b, "RUN ");
    }
    im_buf_put(b, s); /* 5. the rest as it is */
}

static char *finish(struct im_buf *b)
{
    char *out = NULL;
    size_t len = 0;
    return im_buf_finish(b, &out, &len) == 0 ? out : NULL;
}

char *render_dockerfile_line(const char *created_by, const struct render_strv *shell)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    struct shells sh;
    if (shells_init(&sh, shell) != 0)
        return NULL;
    dockerfile_line(&b, created_by ? created_by : "", &sh);
    free(sh.own);
    return finish(&b);
}

/* ---- a schema1 argument list ---- */

/* How many build arguments "|N" announces, read as the generator's Perl
 * reads a number (leading blanks, a sign, decimals and an exponent; no hex;
 * the integer part), at most have (what the list holds after it: Docker
 * always writes N of them; a larger N cannot make the page longer than its
 * input). */
static size_t announced_args(const char *s, size_t have)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
        p++;
    if (*p == '+' || *p == '-')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        return 0;
    double v = strtod(s, NULL);
    if (isnan(v) || v < 1)
        return 0;
    return v >= (double)have ? have : (size_t)v;
}

/* `# ARG: "K" => "V"` for one "K=V" argument, '"' and '\\' escaped first. */
static void arg_line(struct im_buf *b, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
    im_buf_put(b, "# ARG: \"");
    for (size_t i = 0; kv[i]; i++) {
        if (i == klen) {
            im_buf_put(b, "\" => \"");
            continue;
        }
        if (kv[i] == '"' || kv[i] == '\\')
            im_buf_put(b, "\\");
        im_buf_putn(b, &kv[i], 1);
    }
    im_buf_put(b, eq ? "\"\n" : "\" => \"\"\n");
}

/* "RUN X" where, when X has no newline, each run of tabs and 4-space groups
 * gets a backslash and a newline before it. */
static void run_with_continuations(struct im_buf *b, const char *x)
{
    bool wrap = strchr(x, '\n') == NULL;
    im_buf_put(b, "RUN ");
    for (size_t i = 0; x[i];) {
        size_t r = 0;
        while (wrap && (x[i + r] == '\t' || strncmp(x + i + r, "    ", 4) == 0))
            r += x[i + r] == '\t' ? 1 : 4;
        if (r > 0)
            im_buf_put(b, "\\\n");
        im_buf_putn(b, x + i, r > 0 ? r : 1);
        i += r > 0 ? r : 1;
    }
}

char *render_dockerfile_argv(const struct render_strv *argv)
{
    struct im_buf b = {.max = RENDER_OUTPUT_MAX};
    char *const *v = argv->v;
    size_t n = argv->n;

    if (!argv->present || n == 1)
        return render_dockerfile_line(argv->present ? v[0] : NULL, NULL);
    if (n > 0 && v[0] && v[0][0] == '|') {
        size_t nargs = announced_args(v[0] + 1, n - 1);
        for (size_t i = 1; i <= nargs; i++)
            arg_line(&b, v[i] ? v[i] : "");
        v += nargs + 1;
        n -= nargs + 1;
    }
    if (n == 3 && v[0] && v[1] && v[2] && strcmp(v[0], "/bin/sh") == 0 &&
        strcmp(v[1], "-c") == 0) {
        if (strncmp(v[2], NOP " ", strlen(NOP) + 1) == 0)
            im_buf_put(&b, v[2] + strlen(NOP) + 1);
        else
            run_with_continuations(&b, v[2]);
    } else {
        im_buf_put(&b, "RUN ");
        render__json_strv(&b, v, n);
    }
    return finish(&b);
}
