/* afile.c - the answers file: rendered answers appended to an unlinked file
 * next to the database, indexed in memory by the same key as rcache.c: each
 * answer is its key then its body, and the index keeps only the key's keyed
 * hash (SipHash-2-4-128 under a random key of this process, so no client can
 * choose references whose hashes collide).
 *
 * The second tier between the in-memory LRU (rcache.c, a few thousand
 * answers) and the database's rendered rows: an answer is bytes the kernel's
 * page cache holds (not the process's memory, and given back under pressure)
 * instead of an SQLite read transaction over its overflow pages. It is either
 * read (api__afile_get: one pread, the key it finds checked too) or handed
 * out as a descriptor of its own and an offset (api__afile_open: the server
 * sends it with sendfile, so this process never copies the bytes). The file
 * is private to this process (O_TMPFILE, or created and unlinked at once), so
 * it only ever holds this renderer's answers; keys name the root digest, so
 * an entry never goes stale, as in rcache.c.
 *
 * A file is only ever appended to: a region is written once, then indexed,
 * and never written again. Bounded by max_bytes of file and max_bytes /
 * AF_BYTES_PER_ENTRY entries (at most AF_MAX_ENTRIES): when either is
 * reached, the index is emptied and a new empty file replaces the old one (the
 * epoch changes), but only once no write is in progress. Each file is
 * reference-counted (struct af_file): the answers file holds one reference to
 * its current file, and every reader takes one under the lock, with the
 * entry it found, and drops it when done; the last one out closes the file.
 * So a descriptor number a reader uses is never closed (and reused for
 * something else) under it, whatever start-overs happen meanwhile. A
 * descriptor handed out by api__afile_open is a duplicate that keeps the old
 * file, and the bytes it was handed out for, until it is closed: an answer
 * being sent while the file starts over is sent intact. A reader of
 * api__afile_get also keeps its bytes only if the epoch is still the same
 * after its read and the key read back is its own. A write that fails (disk
 * full, I/O error) indexes nothing: it costs a later database read, never a
 * wrong answer. Thread-safe: one mutex, held for index updates (and the rare
 * start-over, whose old file is closed after the mutex is let go), never
 * during a read or a write. */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "api_int.h"
#include "metrics.h"
#include "siphash.h"

/* One entry per this many bytes of file at most (answers are ~1-10 KB). */
#define AF_BYTES_PER_ENTRY 2048
#define AF_MIN_ENTRIES 64
/* ... and never more than this many (the index's memory: ~60 bytes each). */
#define AF_MAX_ENTRIES (1u << 20)

/* An indexed answer: its key and then its body are at off in the file. The key
 * is not kept in memory, only its keyed hash: api__afile_get checks the key
 * against the bytes it read too. */
struct af_entry {
    struct af_entry *hnext;
    uint64_t hash[2];
    uint64_t off;
    uint32_t len;  /* of the body */
    uint16_t klen; /* of the key before it */
    const char *ctype;
};

/* One file of answers and the references to it: the answers file's own while
 * it is the current file, and one per reader using its descriptor. */
struct af_file {
    int fd;
    _Atomic unsigned refs;
};

struct api__afile {
    pthread_mutex_t lock;
    struct af_file *file; /* the file answers are appended to */
    char *dir;            /* where new files are made */
    struct im_siphash_key key;
    _Atomic uint64_t epoch; /* bumped (under lock) when a new file replaces fd */
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

/* A new private file in dir with one reference (its owner's), NULL on failure. */
static struct af_file *file_new(const char *dir)
{
    struct af_file *file = malloc(sizeof *file);
    if (!file)
        return NULL;
    file->fd = open_private(dir);
    if (file->fd < 0) {
        free(file);
        return NULL;
    }
    atomic_init(&file->refs, 1);
    return file;
}

/* Drops one reference; the last closes the file (NULL: nothing). */
static void file_release(struct af_file *file)
{
    if (file && atomic_fetch_sub(&file->refs, 1) == 1) {
        close(file->fd);
        free(file);
    }
}

struct api__afile *api__afile_new(const char *dir, uint64_t max_bytes,
                                  struct im_error *err)
{
    struct api__afile *f = calloc(1, sizeof *f);
    if (!f) {
        im_seterr(err, IM_ENOMEM, "out of memory for the answers file");
        return NULL;
    }
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
    uint8_t seed[16];
    f->dir = strdup(dir);
    if (!f->dir || getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        im_seterr(err, IM_ENOMEM, "cannot seed the answers file's index");
        api__afile_free(f);
        return NULL;
    }
    f->key = im_siphash_key_from_bytes(seed);
    uint64_t probe[2];
    int hrc = im_siphash128(&f->key, "", 0, probe); /* no SipHash here shows now */
    if (hrc) {
        im_seterr(err, hrc, "cannot hash the answers file's keys: %s", im_strerror(hrc));
        api__afile_free(f);
        return NULL;
    }
    f->file = file_new(dir);
    if (!f->file) {
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
    file_release(f->file);
    free(f->dir);
    free(f);
}

/* The entry of key (klen bytes, keyed hash h), told apart by its 128-bit
 * hash and length: two keys alike in both is a chance of about one in 2^128
 * per pair, and nobody can aim for it without the process's random key. */
static struct af_entry **slot(struct api__afile *f, size_t klen, const uint64_t h[2])
{
    struct af_entry **p = &f->bucket[h[0] & (f->nbuckets - 1)];
    while (*p && !((*p)->hash[0] == h[0] && (*p)->hash[1] == h[1] && (*p)->klen == klen))
        p = &(*p)->hnext;
    return p;
}

/* The keyed hash of key into h: 0, or im_siphash128's failure (the answer is
 * then neither looked up nor kept: the file misses, never answers wrongly). */
static int key_hash(const struct api__afile *f, const char *key, size_t klen,
                    uint64_t h[2])
{
    return im_siphash128(&f->key, key, klen, h);
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

/* What the index says of key, copied under the lock: the file it is in (a
 * reference the caller drops with file_release) and that file's epoch, where
 * its key starts, its body's length and type. 0, IM_ENOTFOUND, or key_hash's
 * failure. */
struct af_found {
    struct af_file *file;
    uint64_t epoch, off;
    size_t len;
    const char *ctype;
};

static int find(struct api__afile *f, const char *key, size_t klen, struct af_found *out)
{
    uint64_t h[2];
    int rc = key_hash(f, key, klen, h);
    if (rc)
        return rc;
    pthread_mutex_lock(&f->lock);
    const struct af_entry *e = *slot(f, klen, h);
    if (e) {
        *out =
            (struct af_found){f->file, atomic_load(&f->epoch), e->off, e->len, e->ctype};
        atomic_fetch_add(&f->file->refs, 1);
    }
    pthread_mutex_unlock(&f->lock);
    return e ? 0 : IM_ENOTFOUND;
}

int api__afile_get(struct api__afile *f, const char *key, size_t klen,
                   struct api_shared **block, const char **body, size_t *len,
                   const char **ctype)
{
    if (!f)
        return IM_ENOTFOUND;
    struct af_found e = {0};
    struct api_shared *buf = NULL;
    int rc = find(f, key, klen, &e);
    if (rc)
        goto out;
    rc = IM_ENOTFOUND; /* until the bytes are read and are key's */
    size_t n = e.len;
    buf = api__shared_new(klen + n, true); /* sent once, then back to the pool */
    if (!buf) {
        rc = IM_ENOMEM;
        goto out;
    }
    /* the epoch is read after the bytes: unchanged, they are the indexed file's */
    char *bytes = api__shared_bytes(buf);
    if (io_all(e.file->fd, bytes, NULL, klen + n, e.off) != 0 ||
        atomic_load(&f->epoch) != e.epoch || memcmp(bytes, key, klen) != 0)
        goto out;
    *block = buf;
    *body = bytes + klen;
    *len = n;
    *ctype = e.ctype;
    buf = NULL;
    atomic_fetch_add(&f->hits, 1);
    im_metric_inc(IM_ANSWER_FILE_HITS);
    rc = 0;
out:
    file_release(e.file);
    api_shared_release(buf);
    return rc;
}

int api__afile_open(struct api__afile *f, const char *key, size_t klen, int *fd,
                    uint64_t *off, size_t *len, const char **ctype)
{
    if (!f)
        return IM_ENOTFOUND;
    struct af_found e;
    int rc = find(f, key, klen, &e);
    if (rc)
        return rc;
    /* duplicated without the lock, on the reference find took: the entry's
     * file even if it started over meanwhile (then its index entry is gone,
     * and the epoch check below makes it a miss) */
    int own = fcntl(e.file->fd, F_DUPFD_CLOEXEC, 0);
    file_release(e.file);
    if (own < 0)
        return IM_EBUSY; /* out of descriptors: the caller reads instead */
    if (atomic_load(&f->epoch) != e.epoch) {
        close(own);
        return IM_ENOTFOUND;
    }
    *fd = own;
    *off = e.off + klen;
    *len = e.len;
    *ctype = e.ctype;
    atomic_fetch_add(&f->hits, 1);
    im_metric_inc(IM_ANSWER_FILE_HITS);
    return 0;
}

/* Reserves len bytes of file for key under the lock, in the file *fd: false
 * when key is indexed already (another thread wrote it) or the answer cannot
 * fit at all. Starts over (a new empty file, new epoch, empty index) when the
 * file or the index is full and no region is being written; while one is, or
 * when no new file can be made, the answer is not kept. The old file goes to
 * *retired, for the caller to let go of once it has let go of the lock. */
static bool reserve(struct api__afile *f, size_t klen, const uint64_t h[2], size_t len,
                    int *fd, uint64_t *off, uint64_t *epoch, struct af_file **retired)
{
    if (len > f->max_bytes / 4) /* one answer never takes over the file */
        return false;
    if (*slot(f, klen, h))
        return false;
    if (f->end + len > f->max_bytes || f->n >= f->max_entries) {
        if (f->writing > 0)
            return false;
        struct af_file *next = file_new(f->dir); /* rare: once per max_bytes written */
        if (!next)
            return false;
        *retired = f->file;
        f->file = next;
        clear_index(f);
        f->end = 0;
        atomic_fetch_add(&f->epoch, 1);
    }
    *fd = f->file->fd;
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
    uint64_t h[2], off = 0, epoch = 0;
    int fd = -1;
    struct af_file *retired = NULL;
    struct af_entry *e = malloc(sizeof *e);
    if (!e || key_hash(f, key, klen, h) != 0)
        goto out; /* a cache: failing to remember is fine */
    pthread_mutex_lock(&f->lock);
    bool ok = reserve(f, klen, h, klen + len, &fd, &off, &epoch, &retired);
    pthread_mutex_unlock(&f->lock);
    file_release(retired); /* closing it may free much disk: not under the lock */
    if (!ok)
        goto out;
    /* no start-over while this write is counted in f->writing: fd stays f->file's */
    bool written = io_all(fd, NULL, key, klen, off) == 0 &&
                   io_all(fd, NULL, body, len, off + klen) == 0;
    if (!written) {
        atomic_fetch_add(&f->write_failures, 1);
        im_metric_inc(IM_STORE_WRITE_FAILURES);
    }
    e->hash[0] = h[0];
    e->hash[1] = h[1];
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
