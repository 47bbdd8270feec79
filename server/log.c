/* log.c - leveled, line-oriented logging to stderr (logfmt). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"

static atomic_int current_level = SRV_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int srv_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void srv_log_set_level(enum srv_level level)
{
    atomic_store(&current_level, (int)level);
}

bool srv_log_enabled(enum srv_level level)
{
    return (int)level >= atomic_load(&current_level);
}

/* "2026-11-29T01:02:03" for the second t, kept per thread: every access-log
 * line needs it, and gmtime_r takes glibc's time-zone lock. */
static const char *second_text(time_t t)
{
    static _Thread_local time_t cached = (time_t)-1;
    static _Thread_local char text[64]; /* room for any int year */
    if (t != cached) {
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached = t;
    }
    return text;
}

void srv_log_raw(enum srv_level level, const char *reqid, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int off = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s", second_text(ts.tv_sec),
                       ts.tv_nsec / 1000000, level_names[level]);
    if (reqid && off > 0 && (size_t)off < sizeof line)
        off += snprintf(line + off, sizeof line - (size_t)off, " req=%s", reqid);
    if (off > 0 && (size_t)off < sizeof line - 1) {
        line[off++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
        va_end(ap);
    }
    /* One fputs per line keeps lines whole when threads log at once. */
    size_t len = strnlen(line, sizeof line - 1);
    line[len] = '\n';
    fwrite(line, 1, len + 1, stderr);
}
