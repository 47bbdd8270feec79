/* test_store_threads.c - eight threads share one store: each writes and reads
 * its own tags and a shared config while tag rows in memory are replaced, and
 * every answer comes back as stored.
 *
 * Criterion starts under ThreadSanitizer only with tests/unit/tsan-units.sh's
 * help (its arenas find no room: Snaipe/Criterion#274), so the eight-thread
 * scenario is also written without Criterion, and this file builds as a plain
 * program that runs only it:
 *   cmake -B build-tsan -DIMGMETA_TSAN=ON && cmake --build build-tsan --target im_store
 *   cc -std=c17 -D_POSIX_C_SOURCE=200809L -fsanitize=thread -DSTORE_TSAN_MAIN \
 *      -Istore -Icommon tests/unit/test_store_threads.c tests/unit/store_test.c \
 *      build-tsan/libim_store.a build-tsan/libim_common.a -lsqlite3 -lpq -lz -lcrypto \
 *      -lpthread -o store_tsan && ./store_tsan */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_test.h"

/* ---- threads ------------------------------------------------------------ */

#define NTHREADS 8
#define NROUNDS 40
#define NTAGS 4

struct worker {
    pthread_t thread;
    struct store *s;
    unsigned id;
    int failures;
    char first[IM_ERRMSG_MAX + 64];
};

static void worker_fail(struct worker *w, const char *what, const char *msg)
{
    if (w->failures++ == 0)
        snprintf(w->first, sizeof w->first, "%s: %s", what, msg);
}

static bool same_docs(const struct im_bundle *want, const struct im_bundle *got)
{
    if (got->ndocs != want->ndocs || strcmp(got->root_digest, want->root_digest) != 0)
        return false;
    for (size_t i = 0; i < want->ndocs; i++) {
        const struct im_doc *g = im_bundle_find_doc(got, want->docs[i].digest);
        if (!g || g->len != want->docs[i].len ||
            memcmp(g->body, want->docs[i].body, g->len) != 0)
            return false;
    }
    return true;
}

/* One round: store image n under a private tag and under a tag every thread
 * moves, then read both back; whatever the shared tag points to must load. */
static void worker_round(struct worker *w, unsigned round)
{
    struct im_error err = {{0}};
    struct im_bundle b, got;
    struct store_tag t;
    char tag[32];
    im_bundle_init(&got);
    if (build_image(&b, w->id * 100 + round % NTAGS) != 0) {
        worker_fail(w, "build", "out of memory");
        goto out;
    }
    real_digests(&b);
    snprintf(tag, sizeof tag, "t%u-%u", w->id, round % NTAGS);
    struct im_ref mine = tag_ref("library/python", tag);
    struct im_ref shared = tag_ref("library/python", "shared");
    if (store_put(w->s, &mine, &b, round, &err) != 0)
        worker_fail(w, "put", err.msg);
    else if (store_put(w->s, &shared, &b, round, &err) != 0)
        worker_fail(w, "put shared", err.msg);
    else if (store_get_tag(w->s, &mine, &t, &err) != 0 || strcmp(t.digest, b.root_digest))
        worker_fail(w, "get_tag", err.msg);
    else if (store_load(w->s, t.digest, &got, &err) != 0 || !same_docs(&b, &got))
        worker_fail(w, "load", err.msg);
    im_bundle_free(&got);
    if (store_get_tag(w->s, &shared, &t, &err) != 0 ||
        store_load(w->s, t.digest, &got, &err) != 0)
        worker_fail(w, "load shared", err.msg);
out:
    im_bundle_free(&got);
    im_bundle_free(&b);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned r = 0; r < NROUNDS; r++)
        worker_round(w, r);
    return NULL;
}

/* Runs NTHREADS workers on s; 0 when every thread could be started and joined. */
static int run_workers(struct store *s, struct worker *w)
{
    unsigned started = 0;
    int rc = 0;
    memset(w, 0, NTHREADS * sizeof *w);
    for (; started < NTHREADS; started++) {
        w[started].s = s;
        w[started].id = started + 1;
        if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]) != 0) {
            rc = -1;
            break;
        }
    }
    for (unsigned i = 0; i < started; i++)
        if (pthread_join(w[i].thread, NULL) != 0)
            rc = -1;
    return rc;
}

#ifndef STORE_TSAN_MAIN
#include <criterion/criterion.h>

/* ---- threads ------------------------------------------------------------ */

Test(store, eight_threads_share_a_file_store, .timeout = 120)
{
    struct tmpdb db;
    struct worker w[NTHREADS];
    cr_assert_eq(tmpdb_init(&db), 0);
    struct store *s = open_ok(db.path);
    struct im_error err = {{0}};
    /* tag rows in memory too, fewer than the tags: rows are replaced while
     * other threads write them */
    cr_assert_eq(store_set_tag_memory(s, 16, &err), 0, "%s", err.msg);
    cr_assert_eq(run_workers(s, w), 0);
    for (unsigned i = 0; i < NTHREADS; i++)
        cr_assert_eq(w[i].failures, 0, "thread %u: %d failures, first: %s", w[i].id,
                     w[i].failures, w[i].first);
    struct store_stats st = stats_ok(s);
    cr_assert_eq(st.documents, NTHREADS * NTAGS + 1,
                 "every manifest + the shared config");
    cr_assert_eq(st.tags, NTHREADS * NTAGS + 1);
    cr_assert_eq(st.blobs, NTHREADS * NTAGS + 1);
    store_close(s);
    tmpdb_remove(&db);
}

#else /* STORE_TSAN_MAIN: the threaded scenario alone, for ThreadSanitizer */

int main(void)
{
    struct tmpdb db;
    struct worker w[NTHREADS];
    struct im_error err = {{0}};
    struct store *s = NULL;
    int failures = 0;
    if (tmpdb_init(&db) != 0)
        return 2;
    s = store_open(db.path, &err);
    if (!s) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        failures = 1;
        goto out;
    }
    if (store_set_tag_memory(s, 16, &err) != 0 || run_workers(s, w) != 0)
        failures++;
    for (unsigned i = 0; i < NTHREADS; i++) {
        failures += w[i].failures;
        if (w[i].failures)
            fprintf(stderr, "thread %u: %d failures, first: %s\n", w[i].id, w[i].failures,
                    w[i].first);
    }
    printf("%s: %d threads x %d rounds, %d failures\n", failures ? "FAIL" : "ok",
           NTHREADS, NROUNDS, failures);
out:
    store_close(s);
    tmpdb_remove(&db);
    return failures ? 1 : 0;
}

#endif
