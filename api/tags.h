/* tags.h - GET /repositories/{repository}/tags: the registry's tag list,
 * paginated the registry's way (n, last, Link). Internal to api/.
 *
 * Thread-safety: as api_handle. */
#ifndef API_TAGS_H
#define API_TAGS_H

#include <stdbool.h>

#include "api.h"

/* True when path is /repositories/{something}/tags. */
bool api__is_tags_path(const char *path);

/* Answers the tag list route into resp (0), IM_ENOMEM when not even an error
 * answer could be built. */
int api__tags(struct api *a, const struct api_request *req, struct api_response *resp);

#endif
