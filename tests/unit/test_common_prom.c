/* test_common_prom.c - common/metrics.c: Prometheus label values escaped so
 * that no upstream string (a platform, a digest, a reference) can break the
 * exposition or forge a series. */
#include <criterion/criterion.h>
#include <string.h>

#include "metrics.h"

struct esc_case {
    const char *in, *want;
};

Test(prom_label, escapes_what_the_format_wants_and_writes_the_rest_as_text)
{
    static const struct esc_case cases[] = {
        {"python:3.7-slim", "python:3.7-slim"},
        {"linux/arm/v7", "linux/arm/v7"},
        {"", ""},
        {"a\\b", "a\\\\b"},
        {"say \"hi\"", "say \\\"hi\\\""},
        {"two\nlines", "two\\nlines"},
        /* a forged series: the quote and newline cannot close the label */
        {"x\"} 1\nimgmeta_fake{a=\"", "x\\\"} 1\\nimgmeta_fake{a=\\\""},
        {"tab\there", "tab\\\\x09here"},
        {"del\x7f", "del\\\\x7f"},
        {"\x01", "\\\\x01"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},                       /* valid UTF-8 kept */
        {"\xe2\x82\xac 5", "\xe2\x82\xac 5"},                 /* a 3-byte sequence */
        {"\xf0\x9f\x90\xb3", "\xf0\x9f\x90\xb3"},             /* a 4-byte sequence */
        {"bad\xff", "bad\\\\xff"},                            /* never UTF-8 */
        {"cut\xc3", "cut\\\\xc3"},                            /* cut sequence */
        {"\xc0\xae", "\\\\xc0\\\\xae"},                       /* overlong */
        {"\xed\xa0\x80", "\\\\xed\\\\xa0\\\\x80"},            /* a surrogate */
        {"\xf4\x90\x80\x80", "\\\\xf4\\\\x90\\\\x80\\\\x80"}, /* past U+10FFFF */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        cr_expect_eq(im_prom_label_escape(cases[i].in, out, sizeof out), 0, "case %zu",
                     i);
        cr_expect_str_eq(out, cases[i].want, "case %zu", i);
    }
}

Test(prom_label, a_small_buffer_never_holds_a_cut_escape)
{
    char out[4];
    cr_expect_eq(im_prom_label_escape("ab\"c", out, sizeof out), -1);
    cr_expect_str_eq(out, "ab"); /* not "ab\\" */
    cr_expect_eq(im_prom_label_escape("abc", out, sizeof out), 0);
    cr_expect_str_eq(out, "abc");
    cr_expect_eq(im_prom_label_escape("abcd", out, sizeof out), -1);
    cr_expect_str_eq(out, "abc");
    cr_expect_eq(im_prom_label_escape("x", out, 0), -1);
}
