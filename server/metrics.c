/* metrics.c - GET /metrics: the process metrics (common/metrics) written as
 * Prometheus text into memory, with the watched images' series. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "metrics.h"
#include "server.h"

int srv_metrics_text(struct api *a, struct srv_watch *w, char **body, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    *body = NULL;
    *len = 0;
    if (a)
        (void)api_update_store_gauges(a); /* stale gauges beat no metrics */
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return IM_ENOMEM;
    im_metrics_write(f);
    srv_watch_metrics(w, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return IM_ENOMEM;
    }
    *body = buf;
    *len = size;
    return 0;
}
