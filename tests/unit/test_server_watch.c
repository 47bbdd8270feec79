/* test_server_watch.c - server/watchlist.c: the watched references of
 * --watch and --watch-file, their image labels and the errors that refuse the
 * start (with the line or item they are on). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

#define DIGEST "sha256:5034026ade9da66094ba22fe2ad3d2eac5d7cb1bd1139b088a31f68921c7b625"

static int add_text(struct srv_watch_list *l, const char *text, struct im_error *err)
{
    return srv_watch_list_add_text(l, "w.txt", text, strlen(text), err);
}

Test(watchlist, labels_are_references_as_users_write_them)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    int rc = srv_watch_list_add_csv(
        &l,
        "python:3.7-slim,docker.io/grafana/grafana:10,ghcr.io/org/app:v1,"
        "localhost:5000/team/app,python@" DIGEST ",docker.io/foo.bar/app:1",
        &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(l.n, 6);
    cr_expect_str_eq(l.items[0].image, "python:3.7-slim");
    cr_expect_str_eq(l.items[0].ref.registry, "docker.io");
    cr_expect_str_eq(l.items[0].ref.repository, "library/python");
    cr_expect_str_eq(l.items[1].image, "grafana/grafana:10");
    cr_expect_str_eq(l.items[2].image, "ghcr.io/org/app:v1");
    cr_expect_str_eq(l.items[3].image, "localhost:5000/team/app:latest");
    cr_expect_str_eq(l.items[4].image, "python@" DIGEST);
    /* "foo.bar/app:1" would name the registry foo.bar */
    cr_expect_str_eq(l.items[5].image, "docker.io/foo.bar/app:1");
    srv_watch_list_free(&l);
}

Test(watchlist, file_text_comments_blanks_and_crlf)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    int rc = add_text(&l,
                      "# dashboards\r\n"
                      "\n"
                      "   python:3.7-slim   # the base\r\n"
                      "\t\n"
                      "ghcr.io/org/app:v1\n"
                      "hello-world", /* no newline at the end */
                      &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(l.n, 3);
    cr_expect_str_eq(l.items[0].image, "python:3.7-slim");
    cr_expect_str_eq(l.items[1].image, "ghcr.io/org/app:v1");
    cr_expect_str_eq(l.items[2].image, "hello-world:latest");
    srv_watch_list_free(&l);
}

struct bad_case {
    const char *text;
    const char *want; /* in the message */
};

Test(watchlist, a_bad_line_is_refused_with_its_number)
{
    static const struct bad_case cases[] = {
        {"python:3.7-slim\n\nNot/Valid\n", "w.txt:3: "},
        {"# x\npython:3.7-slim\nUPPER:x\n", "w.txt:3: "},
        {"python:3.7-slim\ndocker.io/library/python:3.7-slim\n", "w.txt:2: "},
        {"python:3.7-slim\ndocker.io/library/python:3.7-slim\n", "watched already"},
        {"python:3.7-slim extra\n", "w.txt:1: one reference a line"},
        {"\n\npython:3.7@" DIGEST "\n", "w.txt:3: "},
        {"\n\npython:3.7@" DIGEST "\n", "a tag and a digest"},
        {"python:\n", "w.txt:1: "},
        {"ghcr.io/\n", "w.txt:1: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct srv_watch_list l = {0};
        struct im_error err = {{0}};
        cr_expect_eq(add_text(&l, cases[i].text, &err), IM_EINVAL, "case %zu", i);
        cr_expect(strstr(err.msg, cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i,
                  err.msg, cases[i].want);
        srv_watch_list_free(&l);
    }
}

Test(watchlist, nul_bytes_and_long_lines_are_refused)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    static const char nul[] = "python:3.7-slim\nhello\0world\n";
    cr_expect_eq(srv_watch_list_add_text(&l, "w.txt", nul, sizeof nul - 1, &err),
                 IM_EINVAL);
    cr_expect(strstr(err.msg, "w.txt:2: a NUL byte") != NULL, "%s", err.msg);
    srv_watch_list_free(&l);

    char *big = malloc(SRV_WATCH_LINE_MAX + 64);
    cr_assert_not_null(big);
    memcpy(big, "# ok\n", 5);
    memset(big + 5, 'a', SRV_WATCH_LINE_MAX + 1);
    big[5 + SRV_WATCH_LINE_MAX + 1] = '\0';
    cr_expect_eq(add_text(&l, big, &err), IM_EINVAL);
    cr_expect(strstr(err.msg, "w.txt:2: longer than") != NULL, "%s", err.msg);
    free(big);
    srv_watch_list_free(&l);
}

Test(watchlist, csv_items_are_named_by_position)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    cr_expect_eq(srv_watch_list_add_csv(&l, "python:3.7-slim,,UPPER:x", &err), IM_EINVAL);
    cr_expect(strstr(err.msg, "--watch: item 3 'UPPER:x'") != NULL, "%s", err.msg);
    srv_watch_list_free(&l);
}

Test(watchlist, at_most_SRV_WATCH_MAX_references)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    size_t cap = (size_t)(SRV_WATCH_MAX + 1) * 24;
    char *text = malloc(cap);
    size_t at = 0;
    cr_assert_not_null(text);
    for (int i = 0; i <= SRV_WATCH_MAX; i++)
        at += (size_t)snprintf(text + at, cap - at, "app:t%d\n", i);
    cr_expect_eq(srv_watch_list_add_text(&l, "w.txt", text, at, &err), IM_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "w.txt:%d: more than %d", SRV_WATCH_MAX + 1,
             SRV_WATCH_MAX);
    cr_expect(strstr(err.msg, want) != NULL, "%s", err.msg);
    cr_expect_eq(l.n, SRV_WATCH_MAX);
    free(text);
    srv_watch_list_free(&l);
}

Test(watchlist, files_missing_or_too_big_are_refused)
{
    struct srv_watch_list l = {0};
    struct im_error err = {{0}};
    cr_expect_eq(srv_watch_list_add_file(&l, "/nonexistent/watch.txt", &err), IM_EINVAL);
    cr_expect(strstr(err.msg, "cannot open") != NULL, "%s", err.msg);

    char path[] = "/tmp/imgmeta-watch-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    for (long i = 0; i <= SRV_WATCH_FILE_MAX / 32; i++)
        fputs("# a comment line of 32 bytes ..\n", f);
    fclose(f);
    cr_expect_eq(srv_watch_list_add_file(&l, path, &err), IM_EINVAL);
    cr_expect(strstr(err.msg, "is over") != NULL, "%s", err.msg);
    unlink(path);
    srv_watch_list_free(&l);
}

Test(watchlist, options_come_from_the_config_file_and_the_environment)
{
    struct srv_config cfg;
    struct im_error err = {{0}};
    char path[] = "/tmp/imgmeta-watch-conf-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs("watch = python:3.7-slim,hello-world\nwatch-file = /srv/watched.txt\n", f);
    fclose(f);
    char *argv[] = {"--config", path};
    cr_assert_eq(srv_config_load(&cfg, 2, argv, stdout, &err), 0, "%s", err.msg);
    cr_expect_str_eq(cfg.watch, "python:3.7-slim,hello-world");
    cr_expect_str_eq(cfg.watch_file, "/srv/watched.txt");
    setenv("IMGMETA_WATCH", "ghcr.io/org/app:v1", 1);
    cr_assert_eq(srv_config_load(&cfg, 2, argv, stdout, &err), 0, "%s", err.msg);
    cr_expect_str_eq(cfg.watch, "ghcr.io/org/app:v1"); /* the environment wins */
    unsetenv("IMGMETA_WATCH");
    unlink(path);
}
