/* test_server.c - server/: the rules on the bytes a request may carry
 * (reqcheck.c), on tables of raw request targets and header fields. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

struct component_case {
    const char *raw;
    enum srv_fault want;
};

static void check_components(const struct component_case *cases, size_t n,
                             enum srv_part part)
{
    for (size_t i = 0; i < n; i++) {
        enum srv_fault got =
            srv_check_component(cases[i].raw, strlen(cases[i].raw), part);
        cr_expect_eq(got, cases[i].want, "'%s': fault %d, want %d", cases[i].raw, got,
                     cases[i].want);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(reqcheck, path_components)
{
    static const struct component_case cases[] = {
        {"/images/python/3.7-slim", SRV_FAULT_NONE},
        {"/images/%70ython/3.7-slim", SRV_FAULT_NONE},
        {"/images/python:3.7-slim", SRV_FAULT_NONE},
        {"/images/a+b/1", SRV_FAULT_NONE}, /* '+' is a '+' in a path */
        {"/images/%2e%2e/%2E%2E/x", SRV_FAULT_NONE},
        {"/images/python/3.7%20slim", SRV_FAULT_NONE},
        {"", SRV_FAULT_NONE},
        /* decoded once: "%2500" is "%00", not a NUL */
        {"/images/python/3.7-slim%2500", SRV_FAULT_NONE},
        {"/images/python%252F3.7-slim", SRV_FAULT_NONE},
        /* NUL and other control characters, encoded or as they are */
        {"/images/python/3.7-slim%00", SRV_FAULT_CONTROL},
        {"/images/python/3.7%00slim", SRV_FAULT_CONTROL},
        {"/images/python/3.7%0d%0aX-Injected:%201", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim%0A", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim%09", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim%7f", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim%7F", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim%1f", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim\x01", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim\t", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim\r", SRV_FAULT_CONTROL},
        {"/images/python/3.7-slim\x7f", SRV_FAULT_CONTROL},
        /* an encoded slash never becomes a separator */
        {"/images/python%2F3.7-slim", SRV_FAULT_SLASH},
        {"/images/python%2f3.7-slim", SRV_FAULT_SLASH},
        {"/images/library%2Fpython/3.7-slim", SRV_FAULT_SLASH},
        {"/images/..%2f..%2fetc%2fpasswd/x", SRV_FAULT_SLASH},
        /* bad escapes */
        {"/images/python/3.7-slim%", SRV_FAULT_ESCAPE},
        {"/images/python/3.7-slim%0", SRV_FAULT_ESCAPE},
        {"/images/python/3.7-slim%G1", SRV_FAULT_ESCAPE},
        {"/images/python/3.7-slim%1G", SRV_FAULT_ESCAPE},
        {"/images/python/%%41", SRV_FAULT_ESCAPE},
        {"%", SRV_FAULT_ESCAPE},
        /* UTF-8: valid sequences pass, encoded or as they are */
        {"/images/pyth%C3%B6n/1", SRV_FAULT_NONE},
        {"/images/pyth\xc3\xb6n/1", SRV_FAULT_NONE},
        {"/images/pyth\xc3%B6n/1", SRV_FAULT_NONE},
        {"/x/%E2%82%AC", SRV_FAULT_NONE},    /* U+20AC */
        {"/x/%F0%9F%90%B3", SRV_FAULT_NONE}, /* U+1F433 */
        {"/x/%F4%8F%BF%BF", SRV_FAULT_NONE}, /* U+10FFFF */
        {"/x/%EF%BF%BD%C2%80", SRV_FAULT_NONE},
        /* ... and invalid ones do not: overlong, surrogate, too large, cut */
        {"/images/python/%C0%AE%C0%AE/x", SRV_FAULT_UTF8},
        {"/images/python/3.7-slim%C0%80", SRV_FAULT_UTF8},
        {"/images/python/%E0%80%AF", SRV_FAULT_UTF8},
        {"/x/%F0%80%80%AF", SRV_FAULT_UTF8},
        {"/x/%C1%BF", SRV_FAULT_UTF8},
        {"/x/%ED%A0%80", SRV_FAULT_UTF8},    /* U+D800 */
        {"/x/%F4%90%80%80", SRV_FAULT_UTF8}, /* U+110000 */
        {"/x/%F5%80%80%80", SRV_FAULT_UTF8},
        {"/images/python/3.7-slim%ff", SRV_FAULT_UTF8},
        {"/x/%80", SRV_FAULT_UTF8},
        {"/x/%C3", SRV_FAULT_UTF8},
        {"/x/%E2%82", SRV_FAULT_UTF8},
        {"/x/%C3%41", SRV_FAULT_UTF8},
        {"/x/%C3%B6%C3", SRV_FAULT_UTF8},
        {"/x/%C3%G1", SRV_FAULT_UTF8}, /* the escape cuts the sequence first */
        {"/x/\xc0\xae", SRV_FAULT_UTF8},
        {"/x/\xff", SRV_FAULT_UTF8},
    };
    check_components(cases, N(cases), SRV_PART_PATH);
}

Test(reqcheck, every_escape_in_a_path)
{
    for (int b = 0; b < 256; b++) {
        char raw[16];
        snprintf(raw, sizeof raw, "/a%%%02Xb", b);
        enum srv_fault want = b < 0x20 || b == 0x7f ? SRV_FAULT_CONTROL
                              : b == '/'            ? SRV_FAULT_SLASH
                              : b >= 0x80           ? SRV_FAULT_UTF8
                                                    : SRV_FAULT_NONE;
        cr_expect_eq(srv_check_component(raw, strlen(raw), SRV_PART_PATH), want, "%s",
                     raw);
        snprintf(raw, sizeof raw, "/a%%%02xb", b);
        cr_expect_eq(srv_check_component(raw, strlen(raw), SRV_PART_PATH), want, "%s",
                     raw);
    }
}

Test(reqcheck, a_nul_byte_counts_by_length)
{
    cr_expect_eq(srv_check_component("/a\0b", 4, SRV_PART_PATH), SRV_FAULT_CONTROL);
    cr_expect_eq(srv_check_component("x=1\0", 4, SRV_PART_QUERY), SRV_FAULT_CONTROL);
    /* n bounds the escape: "%4" of "%41" is cut */
    cr_expect_eq(srv_check_component("%41", 2, SRV_PART_PATH), SRV_FAULT_ESCAPE);
    cr_expect_eq(srv_check_component("%C3%B6", 3, SRV_PART_PATH), SRV_FAULT_UTF8);
}

Test(reqcheck, query_components)
{
    static const struct component_case cases[] = {
        {"format=json", SRV_FAULT_NONE},
        {"platform=linux%2Famd64&platform=linux/arm/v7", SRV_FAULT_NONE},
        {"x=a+b&y=%2B", SRV_FAULT_NONE},
        {"justakey&&=&", SRV_FAULT_NONE},
        {"last=%C3%B6", SRV_FAULT_NONE},
        {"x=%2500", SRV_FAULT_NONE},
        {"platform=linux%00/amd64", SRV_FAULT_CONTROL},
        {"unknown=1&x=%00%ff", SRV_FAULT_CONTROL},
        {"x%00=1", SRV_FAULT_CONTROL},
        {"x=1%0d%0aSet-Cookie:%20a", SRV_FAULT_CONTROL},
        {"x=%09", SRV_FAULT_CONTROL},
        {"x=%7f", SRV_FAULT_CONTROL},
        {"x=\x01", SRV_FAULT_CONTROL},
        {"x=%", SRV_FAULT_ESCAPE},
        {"%G1=1", SRV_FAULT_ESCAPE},
        {"x=%C0%AE", SRV_FAULT_UTF8},
        {"x=%C0%80", SRV_FAULT_UTF8},
        {"x=%E0%80%AF", SRV_FAULT_UTF8},
        {"x=%ff", SRV_FAULT_UTF8},
        {"x=%C3&y=%B6", SRV_FAULT_UTF8}, /* a sequence does not span parameters */
    };
    check_components(cases, N(cases), SRV_PART_QUERY);
}

Test(reqcheck, targets_name_the_part)
{
    static const struct {
        const char *raw;
        enum srv_fault want;
        enum srv_part where;
    } cases[] = {
        {"/images/python/3.7-slim", SRV_FAULT_NONE, SRV_PART_PATH},
        {"/images/python/3.7-slim?format=json&view=summary", SRV_FAULT_NONE,
         SRV_PART_QUERY},
        {"/images/python/3.7-slim?platform=linux%2Famd64", SRV_FAULT_NONE,
         SRV_PART_QUERY},
        {"/images/python/3.7-slim?", SRV_FAULT_NONE, SRV_PART_QUERY},
        {"/images/python/3.7-slim?a?b=%2F", SRV_FAULT_NONE, SRV_PART_QUERY},
        {"/images/python/3.7-slim%00?format=json", SRV_FAULT_CONTROL, SRV_PART_PATH},
        {"/images/python%2F3.7-slim?format=json", SRV_FAULT_SLASH, SRV_PART_PATH},
        {"/images/python/3.7-slim?x=%00", SRV_FAULT_CONTROL, SRV_PART_QUERY},
        {"/images/python/3.7-slim?x=%C0%80", SRV_FAULT_UTF8, SRV_PART_QUERY},
        {"/images/python/3.7-slim?%", SRV_FAULT_ESCAPE, SRV_PART_QUERY},
        {"/images/python/%?x=1", SRV_FAULT_ESCAPE, SRV_PART_PATH},
    };
    for (size_t i = 0; i < N(cases); i++) {
        enum srv_part where = SRV_PART_HEADER;
        enum srv_fault got = srv_check_target(cases[i].raw, strlen(cases[i].raw), &where);
        cr_expect_eq(got, cases[i].want, "'%s': fault %d", cases[i].raw, got);
        if (cases[i].want != SRV_FAULT_NONE)
            cr_expect_eq(where, cases[i].where, "'%s': part %d", cases[i].raw, where);
    }
}

Test(reqcheck, header_fields)
{
    static const struct component_case cases[] = {
        {"text/markdown;q=0.9, application/json", SRV_FAULT_NONE},
        {"a\tb", SRV_FAULT_NONE}, /* HTAB is allowed */
        {"", SRV_FAULT_NONE},
        {"caf\xc3\xa9 \x80\xff", SRV_FAULT_NONE}, /* obs-text: not judged as UTF-8 */
        {"%00", SRV_FAULT_NONE},                  /* no decoding in a header */
        {"a\x01"
         "b",
         SRV_FAULT_CONTROL},
        {"a\rb", SRV_FAULT_CONTROL},
        {"a\nb", SRV_FAULT_CONTROL},
        {"a\x1f", SRV_FAULT_CONTROL},
        {"a\x7f", SRV_FAULT_CONTROL},
    };
    for (size_t i = 0; i < N(cases); i++)
        cr_expect_eq(srv_check_field(cases[i].raw, strlen(cases[i].raw)), cases[i].want,
                     "'%s'", cases[i].raw);
    cr_expect_eq(srv_check_field("a\0b", 3), SRV_FAULT_CONTROL);
}

Test(reqcheck, fault_texts_say_what_was_wrong)
{
    cr_expect_not_null(strstr(srv_fault_text(SRV_FAULT_CONTROL, SRV_PART_PATH),
                              "path decodes to a control"));
    cr_expect_not_null(strstr(srv_fault_text(SRV_FAULT_SLASH, SRV_PART_PATH), "%2F"));
    cr_expect_not_null(strstr(srv_fault_text(SRV_FAULT_ESCAPE, SRV_PART_PATH), "escape"));
    cr_expect_not_null(strstr(srv_fault_text(SRV_FAULT_UTF8, SRV_PART_PATH), "UTF-8"));
    cr_expect_not_null(
        strstr(srv_fault_text(SRV_FAULT_CONTROL, SRV_PART_QUERY), "query parameter"));
    cr_expect_not_null(
        strstr(srv_fault_text(SRV_FAULT_CONTROL, SRV_PART_HEADER), "header field"));
    /* combinations that cannot happen still give a sentence */
    cr_expect_not_null(srv_fault_text(SRV_FAULT_SLASH, SRV_PART_QUERY));
    cr_expect_not_null(srv_fault_text(SRV_FAULT_NONE, SRV_PART_PATH));
    cr_expect_not_null(srv_fault_text((enum srv_fault)42, SRV_PART_HEADER));
}
