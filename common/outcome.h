/* outcome.h - where an image answer came from: one enumeration and one table
 * of its words, shared by the API (the X-Imgmeta-Cache header), the access
 * log, /metrics (imgmeta_cache_lookups_total) and the store's persistent
 * counters. Counters are arrays indexed by it. Constant data: thread-safe. */
#ifndef IM_OUTCOME_H
#define IM_OUTCOME_H

enum im_outcome {
    IM_OUTCOME_NONE = 0,    /* not an image answer, or it failed before the cache */
    IM_OUTCOME_HIT,         /* fresh in the cache, no upstream request */
    IM_OUTCOME_MISS,        /* resolved upstream */
    IM_OUTCOME_COALESCED,   /* waited for another request's resolution */
    IM_OUTCOME_REVALIDATED, /* past its freshness, a HEAD confirmed the digest */
    IM_OUTCOME_STALE,       /* past its freshness, served because upstream failed */
    IM_OUTCOME_NEGATIVE,    /* "not found", from the memory of a recent miss */
    IM_OUTCOME__COUNT
};

struct im_outcome_words {
    const char *word;   /* the X-Imgmeta-Cache header and the access log's cache= */
    const char *metric; /* the outcome label of imgmeta_cache_lookups_total; NULL:
                           not counted there */
    const char *stored; /* the store's persistent counter; NULL: not kept */
};

/* The words of o (of IM_OUTCOME_NONE for a value out of range). Never NULL. */
const struct im_outcome_words *im_outcome_words(enum im_outcome o);

#endif
