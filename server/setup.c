/* setup.c - what the HTTP front takes from the configuration and the system
 * before it starts: the address to listen on, how many workers to run (the
 * CPUs the process may use) and the descriptors it needs. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_ALLOC: the CPUs the daemon may use */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_int.h"

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 addresses). */
int srv__parse_listen(const char *s, struct sockaddr_storage *ss, struct im_error *err)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s + strlen(s) - 1)
        return im_seterr(err, IM_EINVAL, "--listen wants ADDRESS:PORT, got '%s'", s);
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return im_seterr(err, IM_EINVAL, "--listen: bad port in '%s'", s);
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host)
        return im_seterr(err, IM_EINVAL, "--listen: address too long");
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return im_seterr(err, IM_EINVAL, "--listen: bad IPv6 address '%s'", host + 1);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (hl == 0)
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return im_seterr(err, IM_EINVAL, "--listen: bad IPv4 address '%s'", host);
    return 0;
}

/* The CPUs this process may run on (its affinity mask: taskset, a cpuset, a
 * container's CPU list), or -1 when the kernel does not say. The set is sized
 * at run time and grown while the kernel's mask is larger (EINVAL), so hosts
 * with more than CPU_SETSIZE (1024) CPUs are counted too. */
#define HTTP_CPUS_MAX (1 << 20)
static long http_cpus_allowed(void)
{
    long n = -1;
    bool grow = true;
    for (int ncpu = CPU_SETSIZE; grow && ncpu <= HTTP_CPUS_MAX; ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        size_t size = CPU_ALLOC_SIZE(ncpu);
        grow = false;
        if (set) {
            CPU_ZERO_S(size, set);
            if (sched_getaffinity(0, size, set) == 0)
                n = CPU_COUNT_S(size, set);
            else
                grow = errno == EINVAL; /* the kernel's mask is larger */
            CPU_FREE(set);
        }
    }
    return n;
}

/* The HTTP workers: --threads, else one per CPU the process may run on (so a
 * daemon under taskset or in a cpuset starts no more than it can run), else
 * one per online CPU; at most SRV_THREADS_MAX, --threads' own bound. A
 * worker never waits on a registry (the upstream pool does), and more workers
 * than cores only take turns on them (on 2 cores, 2 workers gave a lower p99
 * of warm answers than 4 or 8). */
long srv__http_threads(const struct srv_config *cfg)
{
    long n = cfg->threads;
    if (n <= 0)
        n = http_cpus_allowed();
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 2;
    return n < SRV_THREADS_MAX ? n : SRV_THREADS_MAX;
}

/* Descriptors: each connection holds its socket and, while an answer is sent
 * from the answers file, a descriptor of that file; plus the database, the
 * registries' connections and the answers files. The soft limit is raised
 * towards that (as far as the hard limit allows); below it, answers from the
 * file are read instead of sent from it once descriptors run out, and
 * connections beyond what is left are refused. */
void srv__raise_fd_limit(const struct srv_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->connection_limit * 2 + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    if (rl.rlim_cur < want)
        srv_log(SRV_WARN, NULL,
                "event=fd_limit soft=%llu wanted=%llu msg=\"fewer descriptors than "
                "--connection-limit needs: raise the hard limit (ulimit -Hn)\"",
                (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}
