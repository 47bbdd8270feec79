/* helper.c - Docker credential helpers: `docker-credential-<name> get` run as
 * Docker runs it (the server URL on stdin, {"ServerURL","Username","Secret"}
 * on stdout), and the client's cache of what they answered.
 *
 * A helper is a program named by the Docker config (credHelpers, credsStore),
 * so it is run with care: the name is restricted to [A-Za-z0-9._-] (no path,
 * nothing a shell would read), it is found on PATH by posix_spawnp with a
 * fixed argv and a minimal environment (PATH, HOME; nothing else of the
 * daemon's, none of its secrets), no descriptor of the daemon but the three
 * pipes, its stdout capped (REG__HELPER_OUT_MAX), its stderr kept to
 * REG__HELPER_ERR_MAX for the error message, killed after the timeout, and
 * always reaped. What it prints is never logged; only stderr's (or a failing
 * helper's stdout's) first line, with control characters replaced, goes into
 * an error message. */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "registry_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define HELPER_PREFIX "docker-credential-"
#define HELPER_CACHE_MAX 256 /* registries whose helper answer is remembered */

/* ---- pure helpers ---- */

bool reg__helper_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= REG__HELPER_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

int reg__helper_server_url(const char *registry, char *out, size_t n)
{
    if (strcmp(registry, "docker.io") == 0)
        return im_strlcpy(out, "https://index.docker.io/v1/", n);
    return im_strlcpy(out, registry, n);
}

int reg__helper_parse(const char *name, const char *json, size_t len,
                      struct reg__cred *out, struct im_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *user = json_string_value(json_object_get(root, "Username"));
    const char *secret = json_string_value(json_object_get(root, "Secret"));
    int rc = 0;
    /* never jerr.text: it may quote the secret */
    if (!json_is_object(root))
        rc = im_seterr(err, IM_EUPSTREAM,
                       "credential helper " HELPER_PREFIX "%s answered no JSON object",
                       name);
    else if (!user || !secret || !*secret)
        rc = im_seterr(err, IM_EUPSTREAM,
                       "credential helper " HELPER_PREFIX
                       "%s answered no Username and Secret strings",
                       name);
    else if (strlen(user) != json_string_length(json_object_get(root, "Username")) ||
             strlen(secret) != json_string_length(json_object_get(root, "Secret")) ||
             strlen(secret) >= REG__HELPER_SECRET_MAX || strlen(user) >= 1024)
        rc = im_seterr(err, IM_EUPSTREAM,
                       "credential helper " HELPER_PREFIX
                       "%s answered a Username or Secret with a NUL or too long",
                       name);
    else if (reg__cred_set(out, user, secret) != 0)
        rc = im_seterr(err, IM_ENOMEM, "out of memory");
    json_decref(root);
    return rc;
}

/* The first line of s (len bytes) into out (size n), control bytes as '?'. */
static void first_line(const char *s, size_t len, char *out, size_t n)
{
    size_t o = 0;
    while (len > 0 && (*s == '\n' || *s == '\r' || *s == ' ')) {
        s++;
        len--;
    }
    for (size_t i = 0; i < len && s[i] != '\n' && o + 1 < n; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    while (o > 0 && (out[o - 1] == '\r' || out[o - 1] == ' ' || out[o - 1] == '?'))
        o--;
    out[o] = '\0';
}

/* ---- running one ---- */

struct run {
    pid_t pid;
    int in, out, errfd; /* our ends, -1 when closed */
    char *obuf;
    size_t olen, omax;
    char ebuf[REG__HELPER_ERR_MAX];
    size_t elen;
    bool overflow;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Starts the helper with its three pipes. 0, or -1 with errno. */
static int spawn(struct run *r, const char *name)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    char prog[sizeof HELPER_PREFIX + REG__HELPER_NAME_MAX];
    char path_env[4096], home_env[1100];
    const char *path = getenv("PATH"), *home = getenv("HOME");
    snprintf(prog, sizeof prog, HELPER_PREFIX "%s", name);
    snprintf(path_env, sizeof path_env, "PATH=%s",
             path ? path : "/usr/local/bin:/usr/bin:/bin");
    snprintf(home_env, sizeof home_env, "HOME=%s", home ? home : "/");
    char *const argv[] = {prog, "get", NULL};
    char *const envp[] = {path_env, home_env, "LC_ALL=C", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    int rc = -1, e = 0;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE); /* ignored here; the helper gets the defaults */
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 ||
        pipe2(perr, O_CLOEXEC) != 0) {
        e = errno;
        goto out;
    }
    e = posix_spawn_file_actions_init(&fa);
    if (e != 0)
        goto out;
    e = posix_spawnattr_init(&at);
    if (e != 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto out;
    }
    /* its own process group (killed whole), no signal blocked, none ignored */
    e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
    e = e ? e : posix_spawnattr_setpgroup(&at, 0);
    e = e ? e : posix_spawnattr_setsigmask(&at, &none);
    e = e ? e : posix_spawnattr_setsigdefault(&at, &def);
    e = e ? e : posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    e = e ? e : posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    e = e ? e : posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    e = e ? e : posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* PATH is searched in this process's environment: the same PATH as envp */
    e = e ? e : posix_spawnp(&r->pid, prog, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e == 0) {
        rc = 0;
        r->in = pin[1], r->out = pout[0], r->errfd = perr[0];
        pin[1] = pout[0] = perr[0] = -1;
    }
out:
    for (int i = 0; i < 2; i++) {
        close_fd(&pin[i]);
        close_fd(&pout[i]);
        close_fd(&perr[i]);
    }
    errno = e;
    return rc;
}

/* Reads what fd has into the run's buffers; closes fd at EOF. */
static void drain(struct run *r, int *fd)
{
    char tmp[4096];
    ssize_t k = read(*fd, tmp, sizeof tmp);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (k <= 0) {
        close_fd(fd);
        return;
    }
    size_t n = (size_t)k;
    if (fd == &r->out) {
        if (r->olen + n > r->omax) {
            r->overflow = true;
            n = r->omax - r->olen;
        }
        memcpy(r->obuf + r->olen, tmp, n);
        r->olen += n;
    } else {
        n = n < sizeof r->ebuf - 1 - r->elen ? n : sizeof r->ebuf - 1 - r->elen;
        memcpy(r->ebuf + r->elen, tmp, n);
        r->elen += n;
    }
}

/* write(2) without SIGPIPE, whatever this process does with the signal: it
 * is blocked in this thread meanwhile and a pending one taken back. */
static ssize_t write_quiet(int fd, const char *p, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t k = write(fd, p, n);
    int e = errno;
    if (k < 0 && e == EPIPE) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return k;
}

/* Feeds stdin and reads stdout and stderr until both close, the cap is
 * passed or the deadline comes. true when it ended in time. */
static bool pump(struct run *r, const char *input, int64_t deadline)
{
    size_t ilen = strlen(input), ioff = 0;
    while ((r->out >= 0 || r->errfd >= 0) && !r->overflow) {
        struct pollfd p[3] = {
            {r->out, POLLIN, 0}, {r->errfd, POLLIN, 0}, {r->in, POLLOUT, 0}};
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        if (poll(p, 3, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (p[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t k = write_quiet(r->in, input + ioff, ilen - ioff);
            if (k > 0)
                ioff += (size_t)k;
            if (k < 0 || ioff == ilen)
                close_fd(&r->in); /* EOF ends the helper's stdin */
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
            drain(r, &r->out);
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
            drain(r, &r->errfd);
    }
    return true;
}

/* Waits for the child until the deadline; -1 when it is still running. */
static int reap(pid_t pid, int64_t deadline)
{
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (w < 0 && errno != EINTR)
            return 255;
        if (now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* The message of a helper that failed: stderr's first line, else stdout's. */
static int failed(const char *name, struct run *r, int status, struct im_error *err)
{
    char why[160];
    first_line(r->ebuf, r->elen, why, sizeof why);
    if (!why[0])
        first_line(r->obuf, r->olen, why, sizeof why);
    return im_seterr(err, IM_EUPSTREAM,
                     "credential helper " HELPER_PREFIX "%s failed (exit status %d)%s%s",
                     name, status, why[0] ? ": " : "", why);
}

int reg__helper_run(const char *name, const char *server_url, long timeout_ms,
                    struct reg__cred *out, struct im_error *err)
{
    struct run r = {.pid = -1, .in = -1, .out = -1, .errfd = -1};
    int64_t deadline = now_ms() + timeout_ms;
    int rc = 0, status = -1;
    memset(out, 0, sizeof *out);
    if (!reg__helper_name_valid(name))
        return im_seterr(err, IM_EINVAL, "invalid credential helper name");
    r.omax = REG__HELPER_OUT_MAX;
    r.obuf = malloc(r.omax + 1);
    if (!r.obuf)
        return im_seterr(err, IM_ENOMEM, "out of memory");
    if (spawn(&r, name) != 0) {
        int e = errno;
        rc = im_seterr(
            err, IM_EUPSTREAM,
            "credential helper " HELPER_PREFIX "%s cannot be run: %s (errno %d)", name,
            e == ENOENT   ? "not found on PATH"
            : e == EACCES ? "permission denied"
                          : "spawn failed",
            e);
        goto out;
    }
    bool in_time = pump(&r, server_url, deadline);
    status = in_time && !r.overflow ? reap(r.pid, deadline) : -1;
    if (status < 0) {
        kill(-r.pid, SIGKILL);  /* the helper and whatever it started */
        reap(r.pid, INT64_MAX); /* SIGKILL cannot be ignored: this returns */
        rc = r.overflow ? im_seterr(err, IM_EUPSTREAM,
                                    "credential helper " HELPER_PREFIX
                                    "%s printed more than %d bytes",
                                    name, REG__HELPER_OUT_MAX)
                        : im_seterr(err, IM_ETIMEOUT,
                                    "credential helper " HELPER_PREFIX
                                    "%s did not answer within %ld ms",
                                    name, timeout_ms);
    } else if (status != 0) {
        /* docker-credential-helpers' ErrCredentialsNotFound, on stdout */
        r.obuf[r.olen] = '\0';
        rc = strstr(r.obuf, "credentials not found") ? IM_ENOTFOUND
                                                     : failed(name, &r, status, err);
    } else {
        rc = reg__helper_parse(name, r.obuf, r.olen, out, err);
    }
out:
    close_fd(&r.in);
    close_fd(&r.out);
    close_fd(&r.errfd);
    if (r.obuf) {
        reg__wipe(r.obuf, r.olen);
        free(r.obuf);
    }
    return rc;
}

/* ---- the cache ---- */

struct hentry {
    char registry[IM_REGISTRY_MAX];
    struct reg__cred cred; /* username NULL: the helper has none for it */
    int64_t expires_ms;
};

struct reg__helpers {
    pthread_mutex_t mu;
    long ttl_s, timeout_ms;
    struct hentry v[HELPER_CACHE_MAX];
    size_t n;
};

struct reg__helpers *reg__helpers_new(long ttl_s, long timeout_ms)
{
    struct reg__helpers *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    h->ttl_s = ttl_s;
    h->timeout_ms = timeout_ms;
    return h;
}

void reg__helpers_free(struct reg__helpers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        reg__cred_wipe(&h->v[i].cred);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static int copy_cred(struct reg__cred *to, const struct reg__cred *from)
{
    memset(to, 0, sizeof *to);
    if (!from->username)
        return 0;
    int rc = reg__cred_set(to, from->username, from->password);
    return rc;
}

/* Looks registry up; 1 found (copied into out), 0 not, IM_ENOMEM. */
static int cache_get(struct reg__helpers *h, const char *registry, struct reg__cred *out)
{
    int rc = 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].registry, registry) == 0 && h->v[i].expires_ms > now) {
            rc = copy_cred(out, &h->v[i].cred) == 0 ? 1 : IM_ENOMEM;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* Remembers cred for registry (over its old entry, an expired one, or the
 * one expiring first). */
static void cache_put(struct reg__helpers *h, const char *registry,
                      const struct reg__cred *cred)
{
    if (h->ttl_s <= 0)
        return;
    int64_t now = now_ms();
    pthread_mutex_lock(&h->mu);
    size_t slot = h->n;
    for (size_t i = 0; i < h->n && slot == h->n; i++)
        if (strcmp(h->v[i].registry, registry) == 0 || h->v[i].expires_ms <= now)
            slot = i;
    if (slot == HELPER_CACHE_MAX) {
        slot = 0;
        for (size_t i = 1; i < h->n; i++)
            if (h->v[i].expires_ms < h->v[slot].expires_ms)
                slot = i;
    }
    struct hentry *e = &h->v[slot];
    if (slot == h->n)
        h->n++;
    else
        reg__cred_wipe(&e->cred);
    im_strlcpy(e->registry, registry, sizeof e->registry);
    if (copy_cred(&e->cred, cred) == 0)
        e->expires_ms = now + h->ttl_s * 1000;
    else
        e->expires_ms = 0; /* out of memory: not remembered */
    pthread_mutex_unlock(&h->mu);
}

int reg__helpers_get(struct reg__helpers *h, const char *name, const char *registry,
                     struct reg__cred *out, struct im_error *err)
{
    char url[IM_REGISTRY_MAX + 32];
    memset(out, 0, sizeof *out);
    int rc = cache_get(h, registry, out);
    if (rc != 0)
        return rc == 1 ? 0 : im_seterr(err, IM_ENOMEM, "out of memory");
    if (reg__helper_server_url(registry, url, sizeof url) != 0)
        return im_seterr(err, IM_EINVAL, "registry name too long");
    rc = reg__helper_run(name, url, h->timeout_ms, out, err);
    if (rc == IM_ENOTFOUND) {
        memset(out, 0, sizeof *out);
        rc = 0;
    }
    if (rc == 0)
        cache_put(h, registry, out); /* failures are not remembered */
    return rc;
}
