/* ref_cases.h - checks of a reference parser (reg_ref_parse, the /images/
 * route grammar) shared by the registry's and the api's tests: a case that
 * must parse to given parts, and an input that must be refused with a
 * message saying why. */
#ifndef REF_CASES_H
#define REF_CASES_H

#include <criterion/criterion.h>
#include <string.h>

#include "im.h"

struct ref_case {
    const char *in;
    const char *registry, *repository, *tag, *digest;
};

static void expect_ref(int (*fn)(const char *, struct im_ref *, struct im_error *),
                       const struct ref_case *c)
{
    struct im_ref r;
    struct im_error e = {{0}};
    int rc = fn(c->in, &r, &e);
    cr_assert_eq(rc, 0, "'%s' should parse, got %d: %s", c->in, rc, e.msg);
    cr_expect_str_eq(r.registry, c->registry, "registry of '%s'", c->in);
    cr_expect_str_eq(r.repository, c->repository, "repository of '%s'", c->in);
    cr_expect_str_eq(r.tag, c->tag, "tag of '%s'", c->in);
    cr_expect_str_eq(r.digest, c->digest, "digest of '%s'", c->in);
}

static void expect_bad(int (*fn)(const char *, struct im_ref *, struct im_error *),
                       const char *in, const char *msg_part)
{
    struct im_ref r;
    struct im_error e = {{0}};
    int rc = fn(in, &r, &e);
    cr_assert_eq(rc, IM_EINVAL, "'%s' should be refused, got %d", in, rc);
    cr_expect(strstr(e.msg, msg_part) != NULL, "message for '%s' is '%s', wanted '%s'",
              in, e.msg, msg_part);
}

#endif
