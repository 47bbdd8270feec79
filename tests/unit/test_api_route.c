/* test_api_route.c - the /images/ route grammar (api/route.c): how a
 * request's path names a reference, and what a path that names none is told. */
#include <criterion/criterion.h>
#include <string.h>

#include "api_int.h"
#include "ref_cases.h"

#define D256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

Test(route, forms)
{
    static const struct ref_case cases[] = {
        {"python/3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"python:3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"python@" D256, "docker.io", "library/python", "", D256},
        {"library/python/3.7-slim", "docker.io", "library/python", "3.7-slim", ""},
        {"bitnami/redis/7.2", "docker.io", "bitnami/redis", "7.2", ""},
        {"ghcr.io/org/app/v1", "ghcr.io", "org/app", "v1", ""},
        {"ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", ""},
        {"ghcr.io/org/app@" D256, "ghcr.io", "org/app", "", D256},
        {"localhost:5000/team/app/1.0", "localhost:5000", "team/app", "1.0", ""},
        {"docker.io/library/python/latest", "docker.io", "library/python", "latest", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_ref(api__ref_from_route, &cases[i]);
}

Test(route, invalid)
{
    expect_bad(api__ref_from_route, "python", "missing tag: use /images/python/TAG");
    expect_bad(api__ref_from_route, "", "missing image");
    expect_bad(api__ref_from_route, "python/", "missing tag after '/'");
    expect_bad(api__ref_from_route, "Python/3", "repository must be lowercase: 'Python'");
    expect_bad(api__ref_from_route, "python/.x", "tag must not start with '.' or '-'");
    expect_bad(api__ref_from_route, "localhost:5000/app",
               "looks like a registry host: use /images/localhost:5000/REPOSITORY/TAG");
    expect_bad(api__ref_from_route, "python@sha256:12", "must have 64 hex characters");
}
