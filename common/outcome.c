/* outcome.c - the words of each answer outcome (outcome.h). */
#include "outcome.h"

#include <stddef.h>

static const struct im_outcome_words words[IM_OUTCOME__COUNT] = {
    [IM_OUTCOME_NONE] = {"-", NULL, NULL},
    [IM_OUTCOME_HIT] = {"hit", "hit", "hits"},
    [IM_OUTCOME_MISS] = {"miss", "miss", "misses"},
    [IM_OUTCOME_COALESCED] = {"coalesced", "coalesced", "coalesced"},
    [IM_OUTCOME_REVALIDATED] = {"revalidated", "revalidated", "revalidated"},
    [IM_OUTCOME_STALE] = {"stale", "stale", "stale"},
    [IM_OUTCOME_NEGATIVE] = {"negative", "negative_hit", "negative_hits"},
};

const struct im_outcome_words *im_outcome_words(enum im_outcome o)
{
    return (unsigned)o < IM_OUTCOME__COUNT ? &words[o] : &words[IM_OUTCOME_NONE];
}
