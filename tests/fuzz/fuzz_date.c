/* fuzz_date.c - libFuzzer target for the date parsers a registry's answers
 * feed: HTTP dates (Last-Modified, IMF-fixdate) and RFC 3339 (config
 * "created", history). Besides "no crash, no UB", a date that parses formats
 * back and parses again to the same second (the Markdown and JSON show what
 * was parsed, not something else). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[64];
    int64_t t = 0, again = 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (render_parse_http_date(s, &t) == 0 && render_http_date(t, buf, sizeof buf) == 0) {
        if (render_parse_http_date(buf, &again) != 0 || again != t)
            abort();
    }
    if (render_parse_rfc3339(s, &t) == 0 && render_rfc3339(t, buf, sizeof buf) == 0) {
        if (render_parse_rfc3339(buf, &again) != 0 || again != t)
            abort();
    }
    free(s);
    return 0;
}
