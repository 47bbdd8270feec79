/* retry.c - which failed requests are sent again, and when: a connection
 * that failed or broke, 5xx (not 501/505) and 429, after an exponential
 * backoff with jitter that honours Retry-After, at most cfg.max_retries times.
 *
 * A transfer of a run is detached and scheduled (x->retry_at,
 * reg__retry_schedule) instead of failing the stage; the runner (fetch.c)
 * restarts it when due while the other transfers go on. Only the token GET
 * (handshake), which the stage waits for anyway, sleeps between attempts. */
#include "registry_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Failures worth another attempt: the connection failed or broke, or the
 * registry was overloaded or briefly unavailable. Not timeouts (a slow
 * upstream stays slow), not 501/505 (permanent). */
bool reg__retryable(CURLcode cres, long status)
{
    if (cres != CURLE_OK)
        return cres == CURLE_COULDNT_CONNECT || cres == CURLE_GOT_NOTHING ||
               cres == CURLE_SEND_ERROR || cres == CURLE_RECV_ERROR ||
               cres == CURLE_PARTIAL_FILE || cres == CURLE_HTTP2 ||
               cres == CURLE_HTTP2_STREAM;
    return status == 429 ||
           (status >= 500 && status <= 599 && status != 501 && status != 505);
}

/* Seconds a Retry-After value asks for (delta-seconds or an HTTP date),
 * capped at a day; -1 when absent or unreadable. */
long reg__retry_after(const char *v)
{
    char *end = NULL;
    if (!v[0])
        return -1;
    if (isdigit((unsigned char)v[0])) {
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 0)
            return -1;
        return n > 86400 ? 86400 : n;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = (int64_t)t - im_now();
    return d < 0 ? 0 : d > 86400 ? 86400 : (long)d;
}

/* Backoff before retry number attempt (0-based): base * 2^attempt capped at
 * max, half of it fixed and half random ("equal jitter"). */
static int64_t backoff_ms(const struct reg_config *cfg, const void *salt, int attempt)
{
    int64_t d = cfg->retry_base_ms;
    for (int i = 0; i < attempt && d < cfg->retry_max_ms; i++)
        d *= 2;
    if (d > cfg->retry_max_ms)
        d = cfg->retry_max_ms;
    uint64_t r = (uint64_t)im_monotonic_ms() ^ (uint64_t)(uintptr_t)salt ^
                 ((uint64_t)attempt << 32); /* xorshift64*: cheap, thread-safe */
    r ^= r >> 12;
    r ^= r << 25;
    r ^= r >> 27;
    r *= 2685821657736338717ULL;
    int64_t half = d / 2;
    return d - half + (half > 0 ? (int64_t)(r % (uint64_t)(half + 1)) : 0);
}

/* Delay before the next attempt, or -1 when there must not be one (retries
 * used up, or a Retry-After longer than we are willing to wait). */
int64_t reg__retry_delay(const struct reg_config *cfg, const void *salt, int attempts,
                         long ra_s)
{
    if (attempts >= cfg->max_retries)
        return -1;
    if (ra_s >= 0 && (int64_t)ra_s * 1000 > cfg->retry_max_ms)
        return -1;
    int64_t d = backoff_ms(cfg, salt, attempts);
    if (ra_s >= 0 && (int64_t)ra_s * 1000 > d)
        d = (int64_t)ra_s * 1000;
    return d;
}

/* Schedules x to be sent again; false when it must not be. */
bool reg__retry_schedule(struct reg__session *s, struct reg__xfer *x, long ra_s)
{
    int64_t d = reg__retry_delay(&s->c->cfg, x, x->attempts, ra_s);
    if (d < 0)
        return false;
    x->attempts++;
    x->waiting = true;
    x->retry_at = im_monotonic_ms() + d;
    s->st.retries++;
    return true;
}
