/* afile.c - the answers file: rendered answers appended to an unlinked file
 * next to the database, indexed in memory by the same key as rcache.c: each
 * answer is its key then its body, and the index keeps only the key's hash,
 * so a read checks the key it finds before the body.
 *
 * The second tier between the in-memory LRU (rcache.c, a few thousand
 * answers) and the database's rendered rows: an answer is one pread of bytes
 * the kernel's page cache holds (not the process's memory, and given back
 * under pressure) instead of an SQLite read transaction over its overflow
 * pages. The file is private to this process (O_TMPFILE, or created and
 * unlinked at once), so it only ever holds this renderer's answers; keys name
 * the root digest, so an entry never goes stale, as in rcache.c.
 *
 * Bounded by max_bytes of file and max_bytes / AF_BYTES_PER_ENTRY entries (at
 * most AF_MAX_ENTRIES):
 * when either is reached, the index is emptied and writing starts over at
 * offset 0 (the epoch changes), but only once no write is in progress: a
 * writer still filling a region of the old epoch would otherwise land on a
 * region the new epoch handed out and indexed. A reader copies (offset, length, epoch)
 * under the lock, preads without it, and keeps the bytes only if the epoch is still the
 * same: a region is rewritten only after the epoch moved, so equal epochs mean the bytes
 * read are the entry's. A write that fails (disk full, I/O error) indexes nothing: it
 * costs a later database read, never a wrong answer. Thread-safe: one mutex, held for
 * index updates only, never during I/O. */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "metrics.h"

/* One entry per this many bytes of file at most (answers are ~1-10 KB). */
#define AF_BYTES_PER_ENTRY 2048
#define AF_MIN_ENTRIES 64
/* ... and never more than this many (the index's memory: ~60 bytes each). */
#define AF_MAX_ENTRIES (1u << 20)

/* An indexed answer: its key and then its body are at off in the file. The key
 * is not kept in memory: a read checks it against the bytes it read. */
struct af_entry {
    struct af_entry *hnext;
    uint64_t hash;
    uint64_t off;
    uint32_t len;  /* of the body */
    uint16_t klen; /* of the key before it */
    const char *ctype;
};

struct api__afile {
    pthread_mutex_t lock;
    int fd;
    _Atomic uint64_t epoch; /* bumped (under lock) before offsets are reused */
    uint64_t end;           /* the next free offset */
    unsigned writing;       /* reserved regions still being written */
    uint64_t max_bytes;
    size_t n, max_entries, nbuckets; /* nbuckets: a power of two */
    struct af_entry **bucket;
    _Atomic uint64_t hits, write_failures;
};

/* A private file in dir that no other process can open: O_TMPFILE where the
 * file system has it, else a named file unlinked at once. -1 on failure. */
static int open_private(const char *dir)
{
    char path[4096];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    int n = snprintf(path, sizeof path, "%s/.imgmeta-answers-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

struct api__afile *api__afile_new(const char *dir, uint64_t max_bytes,
                                  struct im_error *err)
{
    struct api__afile *f = calloc(1, sizeof *f);
    if (!f) {
        im_seterr(err, IM_ENOMEM, "out of memory for the answers file");
        return NULL;
    }
    f->fd = -1;
    f->max_bytes = max_bytes;
    f->max_entries = (size_t)(max_bytes / AF_BYTES_PER_ENTRY);
    if (f->max_entries < AF_MIN_ENTRIES)
        f->max_entries = AF_MIN_ENTRIES;
    if (f->max_entries > AF_MAX_ENTRIES)
        f->max_entries = AF_MAX_ENTRIES;
    /* chains of two on average when full: half a pointer an entry */
    for (f->nbuckets = AF_MIN_ENTRIES; f->nbuckets < f->max_entries / 2;)
        f->nbuckets *= 2;
    f->bucket = calloc(f->nbuckets, sizeof *f->bucket);
    if (!f->bucket || pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f->bucket);
        free(f);
        im_seterr(err, IM_ENOMEM, "out of memory for the answers file's index");
        return NULL;
    }
    f->fd = open_private(dir);
    if (f->fd < 0) {
        char buf[128];
        const char *why = strerror_r(errno, buf, sizeof buf); /* GNU: the text */
        im_seterr(err, IM_ESTORE, "cannot create the answers file in %s: %s", dir, why);
        api__afile_free(f);
        return NULL;
    }
    return f;
}

static void clear_index(struct api__afile *f)
{
    for (size_t i = 0; i < f->nbuckets; i++) {
        for (struct af_entry *e = f->bucket[i], *n; e; e = n) {
            n = e->hnext;
            free(e);
        }
        f->bucket[i] = NULL;
    }
    f->n = 0;
}

void api__afile_free(struct api__afile *f)
{
    if (!f)
        return;
    if (f->bucket) {
        clear_index(f);
        free(f->bucket);
        pthread_mutex_destroy(&f->lock);
    }
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

/* The entry of key (klen bytes, hash h), told apart by its 64-bit hash and
 * length: two keys alike in both would find one entry, whose bytes' key then
 * differs from the one asked for (a miss, never another answer). */
static struct af_entry **slot(struct api__afile *f, size_t klen, uint64_t h)
{
    struct af_entry **p = &f->bucket[h & (f->nbuckets - 1)];
    while (*p && !((*p)->hash == h && (*p)->klen == klen))
        p = &(*p)->hnext;
    return p;
}

/* pread into rbuf, or pwrite from wbuf, exactly n bytes at off: 0, or -1
 * (error, disk full, end of file). */
static int io_all(int fd, char *rbuf, const char *wbuf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k =
            rbuf ? pread(fd, rbuf, n, (off_t)off) : pwrite(fd, wbuf, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        if (rbuf)
            rbuf += k;
        else
            wbuf += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int api__afile_get(struct api__afile *f, const char *key, size_t klen,
                   struct api_shared **block, const char **body, size_t *len,
                   const char **ctype)
{
    if (!f)
        return IM_ENOTFOUND;
    uint64_t h = api__key_hash(key, klen), off = 0, epoch = 0;
    size_t n = 0;
    const char *ct = NULL;
    struct api_shared *buf = NULL;
    int rc = IM_ENOTFOUND;
    pthread_mutex_lock(&f->lock);
    const struct af_entry *e = *slot(f, klen, h);
    if (e) {
        off = e->off;
        n = e->len;
        ct = e->ctype;
        epoch = atomic_load(&f->epoch);
    }
    pthread_mutex_unlock(&f->lock);
    if (!ct)
        goto out;
    buf = api__shared_new(klen + n, true); /* sent once, then back to the pool */
    if (!buf) {
        rc = IM_ENOMEM;
        goto out;
    }
    /* the epoch is read after the bytes: unchanged, nothing rewrote them */
    char *bytes = api__shared_bytes(buf);
    if (io_all(f->fd, bytes, NULL, klen + n, off) != 0 ||
        atomic_load(&f->epoch) != epoch || memcmp(bytes, key, klen) != 0)
        goto out;
    *block = buf;
    *body = bytes + klen;
    *len = n;
    *ctype = ct;
    buf = NULL;
    atomic_fetch_add(&f->hits, 1);
    im_metric_inc(IM_ANSWER_FILE_HITS);
    rc = 0;
out:
    api_shared_release(buf);
    return rc;
}

/* Reserves len bytes of file for key under the lock: false when key is
 * indexed already (another thread wrote it) or the answer cannot fit at all.
 * Starts over (new epoch, empty index) when the file or the index is full
 * and no region is being written; while one is, the answer is not kept. */
static bool reserve(struct api__afile *f, size_t klen, uint64_t h, size_t len,
                    uint64_t *off, uint64_t *epoch)
{
    if (len > f->max_bytes / 4) /* one answer never takes over the file */
        return false;
    if (*slot(f, klen, h))
        return false;
    if (f->end + len > f->max_bytes || f->n >= f->max_entries) {
        if (f->writing > 0)
            return false;
        clear_index(f);
        f->end = 0;
        atomic_fetch_add(&f->epoch, 1);
    }
    *off = f->end;
    *epoch = atomic_load(&f->epoch);
    f->end += len;
    f->writing++;
    return true;
}

void api__afile_put(struct api__afile *f, const char *key, size_t klen, const char *body,
                    size_t len, const char *ctype)
{
    if (!f || !len || klen > UINT16_MAX || len > UINT32_MAX)
        return;
    uint64_t h = api__key_hash(key, klen), off = 0, epoch = 0;
    struct af_entry *e = malloc(sizeof *e);
    if (!e)
        return; /* a cache: failing to remember is fine */
    pthread_mutex_lock(&f->lock);
    bool ok = reserve(f, klen, h, klen + len, &off, &epoch);
    pthread_mutex_unlock(&f->lock);
    if (!ok)
        goto out;
    bool written = io_all(f->fd, NULL, key, klen, off) == 0 &&
                   io_all(f->fd, NULL, body, len, off + klen) == 0;
    if (!written) {
        atomic_fetch_add(&f->write_failures, 1);
        im_metric_inc(IM_STORE_WRITE_FAILURES);
    }
    e->hash = h;
    e->off = off;
    e->len = (uint32_t)len;
    e->klen = (uint16_t)klen;
    e->ctype = ctype;
    pthread_mutex_lock(&f->lock);
    f->writing--;
    struct af_entry **p = slot(f, klen, h);
    if (written && atomic_load(&f->epoch) == epoch && !*p) { /* else its region is gone */
        e->hnext = NULL;
        *p = e;
        f->n++;
        e = NULL;
    }
    pthread_mutex_unlock(&f->lock);
out:
    free(e);
}

void api__afile_stats(struct api__afile *f, struct api__afile_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    out->entries = f->n;
    out->bytes = f->end;
    pthread_mutex_unlock(&f->lock);
    out->epoch = atomic_load(&f->epoch);
    out->hits = atomic_load(&f->hits);
    out->write_failures = atomic_load(&f->write_failures);
}
