/* fuzz_auth.c - libFuzzer target for what a registry's auth handshake sends
 * back and the outbound policy's parsers: the WWW-Authenticate challenge
 * parser, the token endpoint's JSON answer, the URL hook (a realm or a
 * redirect is attacker-chosen) and the address classifier. Besides "no
 * crash, no UB": a parsed challenge's fields are NUL-terminated within their
 * buffers, a token is a NUL-terminated string with a positive lifetime, and
 * a URL the hook accepts is http(s). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_challenge(const char *s)
{
    struct reg__challenge ch;
    struct im_error err;
    if (reg__parse_challenge(s, &ch, &err) != 0)
        return;
    if (!memchr(ch.scheme, '\0', sizeof ch.scheme) ||
        !memchr(ch.realm, '\0', sizeof ch.realm) ||
        !memchr(ch.service, '\0', sizeof ch.service) ||
        !memchr(ch.scope, '\0', sizeof ch.scope) ||
        !memchr(ch.error, '\0', sizeof ch.error) || ch.scheme[0] == '\0')
        abort();
    /* the realm goes through the URL hook before any request */
    if (reg__check_url(ch.realm, &err) == 0 && strncasecmp(ch.realm, "http", 4) != 0)
        abort();
}

static void check_token(const uint8_t *data, size_t size)
{
    char *tok = NULL;
    long expires_in = 0;
    struct im_error err;
    if (reg__parse_token_response((const char *)data, size, &tok, &expires_in, &err) ==
        0) {
        if (!tok || expires_in <= 0)
            abort();
        (void)strlen(tok);
    } else if (tok) {
        abort(); /* no token is handed out on failure */
    }
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct im_error err;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_challenge(s);
    check_token(data, size);
    if (reg__check_url(s, &err) == 0 && strncasecmp(s, "http://", 7) != 0 &&
        strncasecmp(s, "https://", 8) != 0)
        abort();
    int c = reg__addr_classify_text(s);
    if (c < -1 || c > (int)REG__ADDR_UNKNOWN)
        abort();
    free(s);
    return 0;
}
