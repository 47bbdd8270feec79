/* pool.c - the upstream pool: requests that must wait on a registry run here,
 * on threads of their own, while libmicrohttpd holds their connections
 * suspended; and the park/resume protocol between those threads and the HTTP
 * workers (docs/CONCURRENCY.md, "The upstream job: park and resume").
 *
 * A worker hands a request over with srv__pool_suspend (a copy of it is
 * queued, its connection suspended); an upstream thread answers it in full
 * and resumes the connection; the worker takes the answer back with
 * srv__pool_resumed and sends it. At a stop, srv__pool_abandon gives up the
 * jobs that did not end and resumes their connections. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_int.h"

/* A request handed to the upstream pool. Its strings are its own copies: the
 * job outlives its connection when the client goes or the daemon stops. */
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

struct srv__job {
    struct srv__job *next; /* in the queue */
    enum job_state state;
    struct MHD_Connection *conn;
    struct srv__request *rq; /* the connection's request (until abandoned) */
    struct api_request req;  /* strings point into text */
    struct api_response resp;
    int rc; /* api_handle's */
    char text[];
};

/* The upstream pool: threads, a bounded FIFO, one lock. Lock order: never
 * call libmicrohttpd with lock held. */
struct srv__pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* work queued, a job entered, or stopping */
    struct srv__job *head, *tail; /* queued */
    long queued, cap;
    long entering; /* jobs between their slot and their place in the queue */
    bool stopping;
    size_t n_threads, started;
    atomic_long alive; /* started threads that have not returned yet */
    struct api *api;   /* what the jobs are answered with */
    struct worker {
        struct srv__pool *pool;
        pthread_t tid;
        struct srv__job *job; /* running, under lock */
    } * threads;
};

/* Points the string fields of r (path, headers, parameters) at copies in
 * text, or with text NULL only counts; returns the bytes they take. */
static size_t copy_strings(struct api_request *r, char *text)
{
    const char **f[16 + API_MAX_PLATFORMS] = {&r->method,
                                              &r->path,
                                              &r->format,
                                              &r->view,
                                              &r->accept,
                                              &r->n,
                                              &r->if_none_match,
                                              &r->authorization,
                                              &r->last,
                                              &r->request_id,
                                              &r->style,
                                              &r->from,
                                              &r->to,
                                              &r->accept_encoding,
                                              &r->content_type,
                                              &r->ref};
    size_t nf = 16, off = 0;
    for (size_t i = 0; i < r->n_platforms && i < API_MAX_PLATFORMS; i++)
        f[nf++] = &r->platforms[i];
    for (size_t i = 0; i < nf; i++) {
        if (!*f[i])
            continue;
        size_t n = strlen(*f[i]) + 1;
        if (text) {
            memcpy(text + off, *f[i], n);
            *f[i] = text + off;
        }
        off += n;
    }
    return off;
}

/* A job for req (its strings and body copied: at most the service's limits
 * on path, query, headers and body, checked before), to be answered in full.
 * NULL on OOM. */
static struct srv__job *job_new(const struct api_request *req,
                                struct MHD_Connection *conn, struct srv__request *rq)
{
    struct api_request counted = *req;
    size_t strings = copy_strings(&counted, NULL);
    struct srv__job *j = calloc(1, sizeof *j + strings + req->body_len + 1);
    if (!j)
        return NULL;
    j->req = *req;
    copy_strings(&j->req, j->text);
    if (req->body) { /* bytes, not a string: copied by its length */
        memcpy(j->text + strings, req->body, req->body_len);
        j->req.body = j->text + strings;
    }
    j->req.cache_only = false;
    j->conn = conn;
    j->rq = rq;
    return j;
}

static void job_free(struct srv__job *j)
{
    if (!j)
        return;
    api_response_free(&j->resp);
    free(j);
}

/* Runs one job with p->lock held on entry and exit; the connection is
 * resumed unless the job was abandoned meanwhile (then it is freed). */
static void run_job(struct srv__pool *p, struct worker *w, struct srv__job *j)
{
    if (j->state != JOB_ABANDONED) {
        j->state = JOB_RUNNING;
        w->job = j;
        pthread_mutex_unlock(&p->lock);
        j->rc = api_handle(p->api, &j->req, &j->resp);
        pthread_mutex_lock(&p->lock);
        w->job = NULL;
    }
    if (j->state == JOB_ABANDONED) {
        pthread_mutex_unlock(&p->lock);
        job_free(j);
        pthread_mutex_lock(&p->lock);
        return;
    }
    j->state = JOB_DONE; /* the worker frees it once the connection is back */
    struct MHD_Connection *conn = j->conn;
    pthread_mutex_unlock(&p->lock);
    MHD_resume_connection(conn);
    pthread_mutex_lock(&p->lock);
}

/* An upstream thread: jobs in order until stopping and the queue is empty. */
static void *pool_main(void *arg)
{
    struct worker *w = arg;
    struct srv__pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        struct srv__job *j = p->head;
        if (!j)
            break;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        run_job(p, w, j);
    }
    atomic_fetch_sub(&p->alive, 1);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Hands the request to the upstream pool and suspends its connection; a
 * full queue (or a daemon stopping) is left to the caller to answer 503 at
 * once instead. */
enum srv__handover srv__pool_suspend(struct srv__pool *p, struct MHD_Connection *conn,
                                     struct srv__request *rq,
                                     const struct api_request *req)
{
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping, room = !stopping && p->queued + p->entering < p->cap;
    if (room)
        p->entering++;
    pthread_mutex_unlock(&p->lock);
    if (!room)
        return stopping ? SRV__STOPPING : SRV__FULL;
    struct srv__job *j = job_new(req, conn, rq);
    rq->job = j;
    rq->conn = conn;
    rq->suspended = j != NULL;
    if (j) {
        srv_log(SRV_DEBUG, rq->id, "event=upstream_queued");
        MHD_suspend_connection(conn);
    }
    pthread_mutex_lock(&p->lock);
    p->entering--;
    if (j) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
    }
    if (p->stopping)
        pthread_cond_broadcast(&p->cond); /* srv__pool_abandon waits for entering */
    else
        pthread_cond_signal(&p->cond); /* only threads wait: wake one */
    pthread_mutex_unlock(&p->lock);
    return j ? SRV__QUEUED : SRV__NOMEM;
}

/* The connection is back from the pool: the job's answer, or (the daemon
 * stopped before the job ended) none. */
bool srv__pool_resumed(struct srv__pool *p, struct srv__request *rq, int *rc,
                       struct api_response *resp)
{
    pthread_mutex_lock(&p->lock);
    struct srv__job *j = rq->job;
    rq->job = NULL;
    rq->suspended = false;
    pthread_mutex_unlock(&p->lock);
    if (!j)
        return false;
    *rc = j->rc;
    *resp = j->resp; /* the answer's body goes with it: free the job alone */
    free(j);
    return true;
}

/* A request ends with its job still queued or running (libmicrohttpd closed
 * the connection): the job is left to its thread, which frees it. */
void srv__pool_drop(struct srv__pool *p, struct srv__request *rq)
{
    struct srv__job *done = NULL;
    pthread_mutex_lock(&p->lock);
    struct srv__job *j = rq->job;
    rq->job = NULL;
    if (j && j->state == JOB_DONE)
        done = j;
    else if (j)
        j->state = JOB_ABANDONED;
    pthread_mutex_unlock(&p->lock);
    job_free(done);
}

/* The upstream pool's size: --upstream-threads, else 2 x --max-resolutions
 * (at least 8, at most POOL_MAX_DERIVED; 64 when resolutions are unbounded),
 * so that requests refused busy, joining a resolution or served stale find a
 * thread at once while the resolutions run. */
#define POOL_MAX_DERIVED 1024
static size_t pool_threads(const struct srv_config *cfg)
{
    if (cfg->upstream_threads > 0)
        return (size_t)cfg->upstream_threads;
    if (cfg->max_resolutions <= 0)
        return 64;
    if (cfg->max_resolutions < 4)
        return 8;
    if (cfg->max_resolutions > POOL_MAX_DERIVED / 2)
        return POOL_MAX_DERIVED;
    return (size_t)(2 * cfg->max_resolutions);
}

/* Waits, looking every 20 ms, until *n is 0 or ms milliseconds have passed:
 * what is left (0 when all ended). The stop waits so for requests in flight
 * and for the upstream threads. */
long srv__wait_for_zero(atomic_long *n, long ms)
{
    int64_t deadline = im_monotonic_ms() + ms;
    long left;
    while ((left = atomic_load(n)) > 0 && im_monotonic_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return left;
}

long srv__pool_wait(struct srv__pool *p, long ms)
{
    return srv__wait_for_zero(&p->alive, ms);
}

/* Joins the started threads (after stopping) and frees what the pool holds. */
static void pool_destroy(struct srv__pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->started; i++)
        pthread_join(p->threads[i].tid, NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

static int pool_start(struct srv__pool *p, struct api *api, const struct srv_config *cfg,
                      struct im_error *err)
{
    p->api = api;
    p->n_threads = pool_threads(cfg);
    p->cap = cfg->upstream_queue;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return im_seterr(err, IM_ENOMEM, "cannot create the upstream pool's lock");
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        return im_seterr(err, IM_ENOMEM, "cannot create the upstream pool's condition");
    }
    p->threads = calloc(p->n_threads, sizeof *p->threads);
    for (size_t i = 0; p->threads && i < p->n_threads; i++) {
        p->threads[i].pool = p;
        atomic_fetch_add(&p->alive, 1); /* before the thread can return */
        if (pthread_create(&p->threads[i].tid, NULL, pool_main, &p->threads[i]) != 0) {
            atomic_fetch_sub(&p->alive, 1);
            break;
        }
        p->started++;
    }
    if (p->started == p->n_threads)
        return 0;
    pool_destroy(p);
    return im_seterr(err, IM_ENOMEM, "cannot start %zu upstream threads", p->n_threads);
}

struct srv__pool *srv__pool_new(struct api *api, const struct srv_config *cfg,
                                struct im_error *err)
{
    struct srv__pool *p = calloc(1, sizeof *p);
    if (p && pool_start(p, api, cfg, err) == 0)
        return p;
    if (!p)
        im_seterr(err, IM_ENOMEM, "out of memory");
    free(p);
    return NULL;
}

void srv__pool_free(struct srv__pool *p)
{
    if (!p)
        return;
    pool_destroy(p);
    free(p);
}

/* Gives up j (lock held): its request goes on *parked, to be resumed. A job
 * abandoned before has no connection any more. */
static void park(struct srv__job *j, struct srv__request **parked)
{
    if (!j || j->state == JOB_ABANDONED)
        return;
    j->state = JOB_ABANDONED;
    j->rq->job = NULL;
    j->rq->parked = *parked;
    *parked = j->rq;
}

/* Gives up the pool's jobs that did not end (queued or running): their
 * connections are resumed and answered 503 shutting_down; the threads free
 * the jobs. libmicrohttpd stops only with no connection suspended. */
void srv__pool_abandon(struct srv__pool *p)
{
    struct srv__request *parked = NULL;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    while (p->entering > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    for (struct srv__job *j = p->head; j; j = j->next)
        park(j, &parked);
    for (size_t i = 0; i < p->started; i++)
        park(p->threads[i].job, &parked);
    pthread_mutex_unlock(&p->lock);
    while (parked) {
        struct srv__request *rq = parked;
        parked = rq->parked;
        MHD_resume_connection(rq->conn); /* rq may be freed from here on */
    }
}
