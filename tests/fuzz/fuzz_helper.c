/* fuzz_helper.c - libFuzzer target for what a Docker credential helper prints
 * (reg__helper_parse: {"ServerURL","Username","Secret"}), an untrusted program's
 * output, and for the helper name check. Besides "no crash, no UB, no leak",
 * it checks that an accepted answer has a username and a non-empty secret,
 * that an error message never quotes the input (it may hold the secret: a
 * refusal is one of the fixed texts), and that an accepted helper name has
 * nothing a path or shell would read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal is one of these fixed texts: nothing of the input is in it. */
static void check_not_quoted(const char *msg)
{
    static const char *const fixed[] = {
        "credential helper docker-credential-fuzz answered no JSON object",
        "credential helper docker-credential-fuzz answered no Username and Secret "
        "strings",
        "credential helper docker-credential-fuzz answered a Username or Secret with a "
        "NUL or too long",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(msg, fixed[i]) == 0)
            return;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reg__cred k;
    struct im_error err = {{0}};
    memset(&k, 0, sizeof k);
    int rc = reg__helper_parse("fuzz", (const char *)data, size, &k, &err);
    if (rc == 0) {
        if (!k.username || !k.password || !k.password[0])
            abort();
        if (k.identity != (strcmp(k.username, REG__IDENTITY_USER) == 0))
            abort();
    } else if (rc == IM_EUPSTREAM) {
        if (k.username || k.password)
            abort();
        check_not_quoted(err.msg);
    } else if (rc != IM_ENOMEM) {
        abort();
    }
    reg__cred_wipe(&k);
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (reg__helper_name_valid(s) && (strpbrk(s, "/ ;$`'\"\\|&<>*?\n") || s[0] == '-' ||
                                      s[0] == '.' || strlen(s) >= REG__HELPER_NAME_MAX))
        abort();
    free(s);
    return 0;
}
