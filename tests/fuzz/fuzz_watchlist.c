/* fuzz_watchlist.c - libFuzzer target for the watched references of
 * --watch-file (server/watchlist.c) and the escaping of Prometheus label
 * values (common/metrics.c: im_prom_label_escape) their labels go through.
 * The input is a watch file (NUL bytes included). Besides "no crash, no UB":
 * a list that is taken has at most SRV_WATCH_MAX references, each label once,
 * each label parses back to the reference it names; and an escaped value has
 * no newline or other control byte, no double quote without its backslash
 * and no escape the format does not know, so nothing upstream can end a label
 * or forge a series.
 *
 * Seeds (tests/fuzz/corpus/fuzz_watchlist/): a file with comments, CRLF and
 * blanks; an invalid line; a duplicate; a tag and a digest together. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "registry.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_escaped(const char *in)
{
    char out[4096];
    if (im_prom_label_escape(in, out, sizeof out) != 0)
        return;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '\n' || (unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            abort();
        if (out[i] == '\\') {
            if (out[i + 1] != '\\' && out[i + 1] != '"' && out[i + 1] != 'n')
                abort(); /* only the escapes the format knows */
            i++;
        } else if (out[i] == '"') {
            abort();
        }
    }
}

static void check_list(const struct srv_watch_list *l)
{
    if (l->n > SRV_WATCH_MAX)
        abort();
    for (size_t i = 0; i < l->n; i++) {
        struct im_ref back;
        struct im_error err;
        const struct im_ref *r = &l->items[i].ref;
        if (reg_ref_parse(l->items[i].image, &back, &err) != 0 ||
            strcmp(back.registry, r->registry) != 0 ||
            strcmp(back.repository, r->repository) != 0 ||
            strcmp(back.tag, r->tag) != 0 || strcmp(back.digest, r->digest) != 0)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->items[i].image, l->items[j].image) == 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    if (srv_watch_list_add_text(&l, "fuzz", (const char *)data, size, &err) == 0)
        check_list(&l);
    srv_watch_list_free(&l);
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_escaped(s);
    free(s);
    return 0;
}
