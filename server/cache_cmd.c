/* cache_cmd.c - the cache seen from the daemon's side: opening the database
 * (with the move-aside recovery of a damaged file), passing the cache options
 * to api/, and `imgmeta cache stats|purge REF|gc|check`. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "registry.h"
#include "server.h"
#include "store.h"

/* The directory of the database file, for the answers file: "" for an
 * in-memory database (no answers file then). */
static void db_dir(const char *db, char *dir, size_t n)
{
    dir[0] = '\0';
    if (db[0] != '\0' && strcmp(db, ":memory:") != 0 && !store_is_uri(db))
        im_path_dir(db, dir, n); /* too long: "" too */
}

int srv_cache_api_config(const struct srv_config *cfg, struct api_config *acfg,
                         struct im_error *err)
{
    struct im_error terr;
    if (api_config_registry_ttls(acfg, cfg->registry_ttl, &terr) != 0)
        return im_seterr(err, IM_EINVAL, "--registry-ttl: %s", terr.msg);
    acfg->max_stale_seconds = cfg->max_stale;
    acfg->negative_ttl_seconds = cfg->negative_ttl;
    acfg->cache_max_bytes = cfg->cache_max_bytes;
    acfg->answer_cache_bytes = (size_t)cfg->answer_cache_bytes;
    acfg->answer_file_bytes = (uint64_t)cfg->answer_file_bytes;
    if (cfg->answer_file_dir[0])
        im_strlcpy(acfg->answer_file_dir, cfg->answer_file_dir,
                   sizeof acfg->answer_file_dir);
    else
        db_dir(cfg->db, acfg->answer_file_dir, sizeof acfg->answer_file_dir);
    im_strlcpy(acfg->admin_token, cfg->admin_token, sizeof acfg->admin_token);
    if (render_style_parse(cfg->markdown_style, &acfg->markdown_style) != 0)
        return im_seterr(err, IM_EINVAL, "--markdown-style: '%s' is not seed or current",
                         cfg->markdown_style);
    return 0;
}

/* The daemon's store: store_open_ex with --tag-memory rows kept in memory. */
static struct store *open_store(const struct srv_config *cfg, bool *damaged,
                                struct im_error *err)
{
    struct store *s = store_open_ex(cfg->db, damaged, err);
    if (s && store_set_tag_memory(s, (size_t)cfg->tag_memory, err) != 0) {
        store_close(s);
        s = NULL;
    }
    return s;
}

struct store *srv_cache_open(const struct srv_config *cfg, struct im_error *err)
{
    char moved[1200];
    bool damaged = false;
    int before = store_file_schema(cfg->db);
    if (before > 0 && before < store_schema_version()) /* it may take seconds: say so */
        srv_log(SRV_INFO, NULL,
                "event=db_migrating db=\"%s\" from=%d to=%d msg=\"the cache file is "
                "upgraded before the service listens\"",
                cfg->db, before, store_schema_version());
    struct store *s = open_store(cfg, &damaged, err);
    int64_t ms = 0;
    int from = store_migrated_from(s, &ms);
    char safe[512];
    store_safe_name(cfg->db, safe, sizeof safe);
    if (from > 0)
        srv_log(SRV_INFO, NULL, "event=db_migrated db=\"%s\" from=%d to=%d ms=%lld", safe,
                from, store_schema_of(s), (long long)ms);
    if (s && store_readonly(s))
        srv_log(SRV_WARN, NULL,
                "event=db_readonly db=\"%s\" msg=\"the cache file cannot be written: "
                "answers are read from it, nothing new is kept\"",
                cfg->db);
    if (s || !damaged)
        return s;
    if (!cfg->db_recover) {
        /* err names the damage; say what can be done about it */
        char why[IM_ERRMSG_MAX];
        im_strlcpy(why, err->msg, sizeof why);
        im_seterr(err, IM_ESTORE,
                  "%s; it is only a cache: start with --db-recover 1 to move it aside "
                  "and start empty",
                  why);
        return NULL;
    }
    srv_log(SRV_WARN, NULL, "event=db_damaged msg=\"%s\"", err->msg);
    if (store_move_aside(cfg->db, im_now(), moved, sizeof moved, err) != 0)
        return NULL;
    srv_log(SRV_WARN, NULL, "event=db_moved_aside db=\"%s\" moved_to=\"%s\"", cfg->db,
            moved);
    return open_store(cfg, NULL, err);
}

/* ---- imgmeta cache ------------------------------------------------------ */

static void cache_usage(FILE *out)
{
    fprintf(
        out,
        "usage: imgmeta cache stats|gc|check [--db FILE]\n"
        "       imgmeta cache purge REF [--db FILE]\n"
        "  stats  entries, bytes and the hit ratio recorded by the daemon\n"
        "  purge  forgets REF (python:3.7-slim, ghcr.io/org/app@sha256:...) and what\n"
        "         only it held\n"
        "  gc     removes expired misses and documents nothing refers to\n"
        "  check  PRAGMA integrity_check and quick_check, then every stored body read\n"
        "         back (each document against its digest); exit 1 when not ok\n"
        "The database is found as by `imgmeta serve` (--db, IMGMETA_DB, --config).\n");
}

static double ratio(int64_t part, int64_t whole)
{
    return whole > 0 ? (double)part / (double)whole : 0.0;
}

static int cmd_stats(struct store *s, const struct srv_config *cfg, struct im_error *err)
{
    struct store_stats st;
    struct store_counters k;
    if (store_stats(s, &st, err) != 0 || store_get_counters(s, &k, err) != 0)
        return 1;
    int64_t served = 0;
    for (size_t i = 0; i < IM_OUTCOME__COUNT; i++)
        served += k.n[i];
    char safe[512];
    store_safe_name(cfg->db, safe, sizeof safe);
    printf("db: %s\n", safe);
    printf("tags: %lld\nroots: %lld\ndocuments: %lld\nblobs: %lld\nmisses: %lld\n",
           (long long)st.tags, (long long)st.roots, (long long)st.documents,
           (long long)st.blobs, (long long)st.misses);
    /* bodies as stored: a deflated one counts what it takes on disk */
    printf("bytes: %lld\nused_bytes: %lld\ndocument_stored_bytes: %lld\n"
           "rendered_stored_bytes: %lld\nbudget_bytes: %ld\n",
           (long long)st.bytes, (long long)st.used_bytes, (long long)st.doc_bytes,
           (long long)st.rendered_bytes, cfg->cache_max_bytes);
    printf("requests: %lld\nhits: %lld\nrevalidated: %lld\nstale: %lld\n"
           "coalesced: %lld\nnegative_hits: %lld\nmisses_upstream: %lld\n",
           (long long)served, (long long)k.n[IM_OUTCOME_HIT],
           (long long)k.n[IM_OUTCOME_REVALIDATED], (long long)k.n[IM_OUTCOME_STALE],
           (long long)k.n[IM_OUTCOME_COALESCED], (long long)k.n[IM_OUTCOME_NEGATIVE],
           (long long)k.n[IM_OUTCOME_MISS]);
    /* answered without resolving upstream (revalidations cost one HEAD) */
    printf("hit_ratio: %.3f\n", ratio(served - k.n[IM_OUTCOME_MISS], served));
    return 0;
}

static int cmd_purge(struct store *s, const char *text, struct im_error *err)
{
    struct im_ref ref;
    struct store_removed r;
    if (reg_ref_parse(text, &ref, err) != 0 || store_purge(s, &ref, &r, err) != 0)
        return 1;
    printf("purged %s/%s%s%s%s%s: %lld tags, %lld roots, %lld documents, %lld blobs, "
           "%lld misses\n",
           ref.registry, ref.repository, ref.tag[0] ? ":" : "", ref.tag,
           ref.digest[0] ? "@" : "", ref.digest, (long long)r.tags, (long long)r.roots,
           (long long)r.documents, (long long)r.blobs, (long long)r.misses);
    return 0;
}

static int cmd_gc(struct store *s, struct im_error *err)
{
    struct store_removed r;
    struct store_stats st;
    if (store_gc(s, im_now(), &r, err) != 0 || store_stats(s, &st, err) != 0)
        return 1;
    printf("removed %lld documents, %lld blobs, %lld expired misses; %lld bytes used\n",
           (long long)r.documents, (long long)r.blobs, (long long)r.misses,
           (long long)st.used_bytes);
    return 0;
}

static int run_subcommand(const char *sub, const char *ref, const struct srv_config *cfg,
                          struct im_error *err)
{
    struct stat sb;
    if (strcmp(cfg->db, ":memory:") != 0 && !store_is_uri(cfg->db) &&
        stat(cfg->db, &sb) != 0)
        return im_seterr(err, IM_ESTORE, "no cache database at %s", cfg->db), 1;
    struct store *s = store_open(cfg->db, err);
    int rc = 1;
    if (!s)
        return 1;
    if (strcmp(sub, "stats") == 0)
        rc = cmd_stats(s, cfg, err);
    else if (strcmp(sub, "purge") == 0)
        rc = cmd_purge(s, ref, err);
    else if (strcmp(sub, "gc") == 0)
        rc = cmd_gc(s, err);
    else if (store_check(s, err) == 0) {
        printf("ok\n");
        rc = 0;
    }
    store_close(s);
    return rc;
}

int srv_cache_command(int argc, char **argv)
{
    struct srv_config cfg;
    struct im_error err = {{0}};
    const char *sub = argc > 0 ? argv[0] : "";
    const char *ref = NULL;
    if (strcmp(sub, "stats") != 0 && strcmp(sub, "purge") != 0 &&
        strcmp(sub, "gc") != 0 && strcmp(sub, "check") != 0) {
        cache_usage(strcmp(sub, "--help") == 0 ? stdout : stderr);
        return strcmp(sub, "--help") == 0 ? 0 : 2;
    }
    argc--, argv++;
    if (strcmp(sub, "purge") == 0) {
        if (argc < 1 || strncmp(argv[0], "--", 2) == 0) {
            cache_usage(stderr);
            return 2;
        }
        ref = argv[0];
        argc--, argv++;
    }
    int rc = srv_config_load(&cfg, argc, argv, stdout, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "imgmeta cache: %s\n", err.msg);
        return 2;
    }
    rc = run_subcommand(sub, ref, &cfg, &err);
    if (rc != 0)
        fprintf(stderr, "imgmeta cache %s: %s\n", sub, err.msg);
    return rc;
}
