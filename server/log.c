/* log.c - leveled, line-oriented logging to stderr (logfmt). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

static atomic_int current_level = SRV_INFO;

/* The info lines' buffer (--access-log-buffer): filled under mu, written to
 * stderr when full, when a warning or error is logged (which follows them),
 * by the flusher thread every SRV_LOG_FLUSH_MS, and at srv_log_buffer_stop.
 * cap 0: every line is written at once. */
#define SRV_LOG_FLUSH_MS 200
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;
    size_t cap, len;
    bool stopping, started;
    pthread_t flusher;
} lb = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Writes n bytes to stderr whole (retrying short writes and EINTR). */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr gone: nothing better to do with a log line */
        p += w;
        n -= (size_t)w;
    }
}

/* lb.mu held. */
static void flush_locked(void)
{
    write_all(lb.buf, lb.len);
    lb.len = 0;
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lb.mu);
    while (!lb.stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SRV_LOG_FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&lb.cv, &lb.mu, &until);
        if (lb.len > 0)
            flush_locked();
    }
    pthread_mutex_unlock(&lb.mu);
    return NULL;
}

int srv_log_buffer_start(size_t bytes)
{
    if (bytes == 0 || lb.buf)
        return 0;
    char *buf = malloc(bytes);
    if (!buf)
        return -1;
    pthread_mutex_lock(&lb.mu);
    lb.buf = buf;
    lb.cap = bytes;
    lb.len = 0;
    lb.stopping = false;
    pthread_mutex_unlock(&lb.mu);
    if (pthread_create(&lb.flusher, NULL, flusher_main, NULL) != 0) {
        srv_log_buffer_stop();
        return -1;
    }
    lb.started = true;
    return 0;
}

void srv_log_buffer_stop(void)
{
    pthread_mutex_lock(&lb.mu);
    lb.stopping = true;
    pthread_cond_signal(&lb.cv);
    pthread_mutex_unlock(&lb.mu);
    if (lb.started)
        pthread_join(lb.flusher, NULL);
    lb.started = false;
    pthread_mutex_lock(&lb.mu);
    if (lb.buf)
        flush_locked();
    free(lb.buf);
    lb.buf = NULL;
    lb.cap = 0;
    pthread_mutex_unlock(&lb.mu);
}

/* One whole line out: through the buffer when there is one (info and debug
 * lines), else at once; a warning or error first writes what is buffered. */
static void emit(enum srv_level level, const char *line, size_t n)
{
    pthread_mutex_lock(&lb.mu);
    if (!lb.buf) {
        pthread_mutex_unlock(&lb.mu);
        write_all(line, n);
        return;
    }
    if (level >= SRV_WARN || lb.len + n > lb.cap)
        flush_locked();
    if (level >= SRV_WARN || n > lb.cap) {
        write_all(line, n);
    } else {
        memcpy(lb.buf + lb.len, line, n);
        lb.len += n;
    }
    pthread_mutex_unlock(&lb.mu);
}

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
    /* "ts=SECOND.MMMZ level=LEVEL[ req=ID] ", put together by hand (every
     * access line has it; the second's text is kept per thread), then the
     * message: one formatting pass per line */
    const char *sec = second_text(ts.tv_sec), *lv = level_names[level];
    size_t sl = strlen(sec), ll = strlen(lv), rl = reqid ? strnlen(reqid, 64) : 0;
    int ms = (int)(ts.tv_nsec / 1000000);
    size_t off = 0;
    memcpy(line, "ts=", 3);
    off = 3;
    memcpy(line + off, sec, sl); /* sl < 64: second_text's buffer */
    off += sl;
    line[off++] = '.';
    line[off++] = (char)('0' + ms / 100);
    line[off++] = (char)('0' + ms / 10 % 10);
    line[off++] = (char)('0' + ms % 10);
    memcpy(line + off, "Z level=", 8);
    off += 8;
    memcpy(line + off, lv, ll);
    off += ll;
    if (reqid) {
        memcpy(line + off, " req=", 5);
        off += 5;
        memcpy(line + off, reqid, rl);
        off += rl;
    }
    { /* off < 200 here: the line has room for the message */
        line[off++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + off, sizeof line - off, fmt, ap);
        va_end(ap);
    }
    /* One write per line (or per buffer of whole lines) keeps lines whole
     * when threads log at once. */
    size_t len = strnlen(line, sizeof line - 1);
    line[len] = '\n';
    emit(level, line, len + 1);
}
