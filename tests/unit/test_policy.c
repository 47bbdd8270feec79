/* test_policy.c - the outbound security policy (registry/policy.c): the
 * address classifier (table-driven), the registry allowlist, the URL hook
 * and the configuration parser. No network. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

struct addr_case {
    const char *ip;
    enum reg__addr_class want;
};

static const struct addr_case addr_cases[] = {
    /* public */
    {"8.8.8.8", REG__ADDR_PUBLIC},
    {"1.1.1.1", REG__ADDR_PUBLIC},
    {"100.63.255.255", REG__ADDR_PUBLIC},
    {"100.128.0.0", REG__ADDR_PUBLIC},
    {"172.15.255.255", REG__ADDR_PUBLIC},
    {"172.32.0.0", REG__ADDR_PUBLIC},
    {"169.253.255.255", REG__ADDR_PUBLIC},
    {"192.167.1.1", REG__ADDR_PUBLIC},
    {"11.0.0.1", REG__ADDR_PUBLIC},
    {"223.255.255.255", REG__ADDR_PUBLIC},
    {"2606:4700:4700::1111", REG__ADDR_PUBLIC},
    {"2a00:1450:4001:82b::200e", REG__ADDR_PUBLIC},
    {"::ffff:8.8.8.8", REG__ADDR_PUBLIC},
    {"64:ff9b::8.8.8.8", REG__ADDR_PUBLIC},
    {"2002:0808:0808::1", REG__ADDR_PUBLIC},
    /* loopback */
    {"127.0.0.1", REG__ADDR_LOOPBACK},
    {"127.255.255.254", REG__ADDR_LOOPBACK},
    {"127.0.0.2", REG__ADDR_LOOPBACK},
    {"::1", REG__ADDR_LOOPBACK},
    {"::ffff:127.0.0.1", REG__ADDR_LOOPBACK},
    {"64:ff9b::127.0.0.1", REG__ADDR_LOOPBACK},
    {"2002:7f00:0001::", REG__ADDR_LOOPBACK},
    /* RFC 1918 and IPv6 unique local */
    {"10.0.0.1", REG__ADDR_PRIVATE},
    {"10.255.255.255", REG__ADDR_PRIVATE},
    {"172.16.0.1", REG__ADDR_PRIVATE},
    {"172.31.255.255", REG__ADDR_PRIVATE},
    {"192.168.0.1", REG__ADDR_PRIVATE},
    {"::ffff:10.1.2.3", REG__ADDR_PRIVATE},
    {"::ffff:192.168.1.1", REG__ADDR_PRIVATE},
    {"64:ff9b::10.0.0.1", REG__ADDR_PRIVATE},
    {"2002:c0a8:0101::1", REG__ADDR_PRIVATE},
    {"fc00::1", REG__ADDR_PRIVATE},
    {"fd12:3456:789a::1", REG__ADDR_PRIVATE},
    {"fec0::1", REG__ADDR_PRIVATE},
    /* link-local, cloud metadata */
    {"169.254.169.254", REG__ADDR_LINKLOCAL},
    {"169.254.0.1", REG__ADDR_LINKLOCAL},
    {"::ffff:169.254.169.254", REG__ADDR_LINKLOCAL},
    {"64:ff9b::169.254.169.254", REG__ADDR_LINKLOCAL},
    {"fe80::1", REG__ADDR_LINKLOCAL},
    {"febf:ffff::1", REG__ADDR_LINKLOCAL},
    {"fd00:ec2::254", REG__ADDR_PRIVATE}, /* AWS IMDS over IPv6 */
    /* CGNAT */
    {"100.64.0.1", REG__ADDR_CGNAT},
    {"100.127.255.255", REG__ADDR_CGNAT},
    /* multicast */
    {"224.0.0.1", REG__ADDR_MULTICAST},
    {"239.255.255.250", REG__ADDR_MULTICAST},
    {"ff02::1", REG__ADDR_MULTICAST},
    {"ff05::2", REG__ADDR_MULTICAST},
    {"::ffff:224.0.0.1", REG__ADDR_MULTICAST},
    /* unspecified, broadcast */
    {"0.0.0.0", REG__ADDR_UNSPECIFIED},
    {"::", REG__ADDR_UNSPECIFIED},
    {"::ffff:0.0.0.0", REG__ADDR_UNSPECIFIED},
    {"255.255.255.255", REG__ADDR_BROADCAST},
    /* reserved */
    {"0.1.2.3", REG__ADDR_RESERVED},
    {"240.0.0.1", REG__ADDR_RESERVED},
    {"192.0.2.1", REG__ADDR_RESERVED},
    {"198.18.0.1", REG__ADDR_RESERVED},
    {"198.51.100.7", REG__ADDR_RESERVED},
    {"203.0.113.9", REG__ADDR_RESERVED},
    {"192.0.0.8", REG__ADDR_RESERVED},
    {"::127.0.0.1", REG__ADDR_RESERVED},
    {"::10.0.0.1", REG__ADDR_RESERVED},
    {"64:ff9b:1::a00:1", REG__ADDR_RESERVED},
    {"2001:db8::1", REG__ADDR_RESERVED},
    {"100::1", REG__ADDR_RESERVED},
};

Test(policy, address_classifier_table)
{
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        int got = reg__addr_classify_text(addr_cases[i].ip);
        cr_expect_eq(
            got, (int)addr_cases[i].want, "%s: got %s, want %s", addr_cases[i].ip,
            got < 0 ? "invalid" : reg__addr_class_name((enum reg__addr_class)got),
            reg__addr_class_name(addr_cases[i].want));
    }
    cr_expect_eq(reg__addr_classify_text("localhost"), -1);
    cr_expect_eq(reg__addr_classify_text("127.1"), -1);
    cr_expect_eq(reg__addr_classify_text(""), -1);
}

Test(policy, classifier_on_sockaddr)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr un = {.sa_family = AF_UNIX};
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "169.254.169.254", &a4.sin_addr);
    cr_expect_eq(reg__addr_classify((struct sockaddr *)&a4), REG__ADDR_LINKLOCAL);
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
    cr_expect_eq(reg__addr_classify((struct sockaddr *)&a6), REG__ADDR_LOOPBACK);
    cr_expect_eq(reg__addr_classify(&un), REG__ADDR_UNKNOWN);
}

struct allow_case {
    const char *registry;
    bool want;
};

Test(policy, default_allowlist)
{
    static const struct allow_case cases[] = {
        {"docker.io", true},
        {"ghcr.io", true},
        {"quay.io", true},
        {"gcr.io", true},
        {"us.gcr.io", true},
        {"us-docker.pkg.dev", true},
        {"europe-west1-docker.pkg.dev", true},
        {"registry.k8s.io", true},
        {"public.ecr.aws", true},
        {"mcr.microsoft.com", true},
        {"registry.gitlab.com", true},
        {"GHCR.IO", true},
        {"pkg.dev", false},
        {"evil.pkg.dev:444", false},
        {"docker.io.evil.com", false},
        {"xghcr.io", false},
        {"localhost:5000", false},
        {"localhost", false},
        {"127.0.0.1:5000", false},
        {"169.254.169.254", false},
        {"[::1]:5000", false},
        {"10.0.0.1", false},
        {"registry.example.com", false},
    };
    struct reg_config cfg;
    reg_config_defaults(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(reg__policy_allowed(&cfg, cases[i].registry), cases[i].want, "%s",
                     cases[i].registry);
}

Test(policy, configured_lists)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    char url[600];
    reg_config_defaults(&cfg);
    cr_assert_eq(reg_config_policy(&cfg, "default, registry.example.com,*.corp.example",
                                   "localhost:5000", false, &e),
                 0, "%s", e.msg);
    cr_expect(reg__policy_allowed(&cfg, "docker.io"));
    cr_expect(reg__policy_allowed(&cfg, "registry.example.com"));
    cr_expect(reg__policy_allowed(&cfg, "a.b.corp.example"));
    cr_expect(reg__policy_allowed(&cfg, "localhost:5000")); /* insecure */
    cr_expect(!reg__policy_allowed(&cfg, "localhost:5001"));
    cr_expect(!reg__policy_allowed(&cfg, "quay.io.corp.example.evil"));
    /* an insecure registry is spoken to over plain http */
    cr_assert_eq(reg__base_url(&cfg, "localhost:5000", url, sizeof url, &e), 0, "%s",
                 e.msg);
    cr_expect_str_eq(url, "http://localhost:5000");
    /* a refused registry says how to allow it */
    cr_expect_eq(reg__base_url(&cfg, "127.0.0.1:5000", url, sizeof url, &e), IM_EPOLICY);
    cr_expect(strstr(e.msg, "--allow-registries") != NULL, "%s", e.msg);
    cr_expect(strstr(e.msg, "127.0.0.1:5000") != NULL, "%s", e.msg);
    /* only the named list: docker.io is no longer allowed */
    cr_assert_eq(reg_config_policy(&cfg, "ghcr.io", NULL, false, &e), 0);
    cr_expect(!reg__policy_allowed(&cfg, "docker.io"));
    cr_expect_eq(reg__base_url(&cfg, "docker.io", url, sizeof url, &e), IM_EPOLICY);
    /* "*" allows every name (connections are still checked) */
    cr_assert_eq(reg_config_policy(&cfg, "*", NULL, false, &e), 0);
    cr_expect(reg__policy_allowed(&cfg, "anything.example:8443"));
    /* a mirrored registry is always allowed */
    cr_assert_eq(reg_config_policy(&cfg, "ghcr.io", NULL, false, &e), 0);
    im_strlcpy(cfg.mirrors[0].registry, "localhost:5000", sizeof cfg.mirrors[0].registry);
    im_strlcpy(cfg.mirrors[0].base_url, "http://127.0.0.1:5000",
               sizeof cfg.mirrors[0].base_url);
    cfg.n_mirrors = 1;
    cr_expect(reg__policy_allowed(&cfg, "localhost:5000"));
    /* malformed entries */
    cr_expect_eq(reg_config_policy(&cfg, "a/b", NULL, false, &e), IM_EINVAL);
    cr_expect_eq(reg_config_policy(&cfg, "ok.io", "x y", false, &e), IM_EINVAL);
    cr_expect_eq(reg_config_policy(&cfg, "", "", false, &e), 0);
    cr_expect_eq(cfg.n_allowlist, 0); /* empty: the built-in list */
    cr_expect(reg__policy_allowed(&cfg, "quay.io"));
}

Test(policy, too_many_entries)
{
    struct reg_config cfg;
    struct im_error e = {{0}};
    char list[4096] = "";
    reg_config_defaults(&cfg);
    for (int i = 0; i < REG_MAX_POLICY + 1; i++) {
        char one[32];
        snprintf(one, sizeof one, "%sr%d.io", i ? "," : "", i);
        strncat(list, one, sizeof list - strlen(list) - 1);
    }
    cr_expect_eq(reg_config_policy(&cfg, list, NULL, false, &e), IM_EINVAL);
}

Test(policy, url_hook)
{
    struct im_error e = {{0}};
    static const char *const ok[] = {
        "https://ghcr.io/v2/",
        "HTTPS://x/",
        "http://127.0.0.1:5000/v2/library/python/manifests/3.7-slim",
        "https://[2001:db8::1]:8443/token?service=x&scope=a%20b",
    };
    static const char *const bad[] = {
        "ftp://x/",
        "file:///etc/passwd",
        "gopher://x:70/_stuff",
        "dict://x:11211/",
        "https://user:pw@ghcr.io/",
        "https://ghcr.io/a b",
        "https://ghcr.io/\r\nX-Injected: 1",
        "javascript:alert(1)",
        "",
        "https://",
        "//ghcr.io/v2/",
        "https://ghcr.io:99999/",
        "https:/3/t?x=1",
        "http:ghcr.io/v2/",
        "https:\\\\ghcr.io/v2/",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_expect_eq(reg__check_url(ok[i], &e), 0, "%s: %s", ok[i], e.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(reg__check_url(bad[i], &e), IM_EPOLICY, "%s", bad[i]);
}
