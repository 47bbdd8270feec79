/* fuzz_encoding.c - libFuzzer target for the Accept-Encoding parser
 * (api/negotiate.c, api__accepts_gzip), which reads every image request's
 * header. Besides "no crash, no UB": a header that names neither gzip nor the
 * wildcard never gets gzip, and the header's case changes nothing (codings
 * and the q parameter are case-insensitive). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool names_gzip_or_star(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p == '*' || strncasecmp(p, "gzip", 4) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    bool gz = api__accepts_gzip(s);
    if (gz && !names_gzip_or_star(s))
        abort();
    for (char *p = s; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (api__accepts_gzip(s) != gz)
        abort();
    free(s);
    return 0;
}
