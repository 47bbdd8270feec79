# watch.sh - sourced by bench.sh for BENCH_ONLY=watch: what WATCH_N watched
# references (--watch-file) cost: upstream requests per hour at the default
# TTL, CPU time and RSS.
#
#   BENCH_ONLY=watch make bench      # WATCH_N (1000), WATCH_TTL (20), WATCH_S (60)
#
# WATCH_N tags (w1, w2, ...) are put into the registry, each the fixture's
# 7-platform list; a daemon watches them all with --tag-ttl WATCH_TTL through
# the no-delay front (bearer tokens). After the first round (every tag
# resolved: the time and the requests it took), for WATCH_S seconds: the
# front's requests and the daemon's CPU time (/proc/PID/task/*/schedstat) per
# check (the watcher's lookups, imgmeta_cache_lookups_total). A check past the
# TTL is one manifest HEAD, whatever the TTL, so the figures per check are
# scaled to the default --tag-ttl (300 s, plus the mean jitter: 15 s) per
# hour. RSS (VmRSS) is compared with a daemon that watches nothing, both
# after the same requests (none). Prints; writes no BENCHMARKS.md.
WATCH_N=${WATCH_N:-1000}
WATCH_TTL=${WATCH_TTL:-20}
WATCH_S=${WATCH_S:-60}

# watch_lookups URL: the image lookups the daemon counted so far (any outcome).
watch_lookups() {
    curl -sf "$1/metrics" | awk '/^imgmeta_cache_lookups_total\{/ { s += $2 } END { print s + 0 }'
}
watch_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
watch_info_count() {
    curl -sf "$1/metrics" | grep -c '^imgmeta_image_info{'
}

log "watch: $WATCH_N tags into the registry"
list=$(curl -sf -H "Accept: application/vnd.docker.distribution.manifest.list.v2+json" \
    "$REGISTRY_URL/v2/library/python/manifests/3.7-slim") || die "watch: cannot read the list"
printf '%s' "$list" >"$IT_DIR/watch-list.json"
seq 1 "$WATCH_N" | xargs -P 8 -I{} curl -sf -o /dev/null -X PUT \
    -H "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json" \
    --data-binary "@$IT_DIR/watch-list.json" \
    "$REGISTRY_URL/v2/library/python/manifests/w{}" || die "watch: cannot put the tags"
seq 1 "$WATCH_N" | sed 's/^/python:w/' >"$IT_DIR/watch.txt"

daemon watch-none "$NF_URL" --tag-ttl "$WATCH_TTL" || die "cannot start imgmeta"
sleep 2
RSS_NONE=$(watch_rss_kb "$D_PID")
stop "$D_PID"

: >"$NF_LOG"
t0=$(now_ms)
daemon watch "$NF_URL" --tag-ttl "$WATCH_TTL" --watch-file "$IT_DIR/watch.txt" ||
    die "cannot start imgmeta"
for _ in $(seq 1 600); do
    [ "$(watch_info_count "$D_URL")" -ge "$WATCH_N" ] && break
    sleep 0.5
done
[ "$(watch_info_count "$D_URL")" -ge "$WATCH_N" ] || die "watch: the first round did not end"
FIRST_S=$(calc "($(now_ms) - $t0) / 1000" 1)
FIRST_REQS=$(wc -l <"$NF_LOG")
log "watch: first round in $FIRST_S s; measuring for $WATCH_S s"

r0=$(wc -l <"$NF_LOG") c0=$(cpu_ns "$D_PID") l0=$(watch_lookups "$D_URL")
sleep "$WATCH_S"
r1=$(wc -l <"$NF_LOG") c1=$(cpu_ns "$D_PID") l1=$(watch_lookups "$D_URL")
sed -n "$((r0 + 1)),${r1}p" "$NF_LOG" >"$IT_DIR/watch-requests.log"
RSS_WATCH=$(watch_rss_kb "$D_PID")
FAILS=$(curl -sf "$D_URL/metrics" |
    awk '/^imgmeta_watch_failures_total\{/ { s += $2 } END { print s + 0 }')
stop "$D_PID"

CHECKS=$((l1 - l0)) # nothing but the watcher asks for images here
[ "$CHECKS" -gt 0 ] || die "watch: no check in $WATCH_S s"
REQS=$((r1 - r0))
PER_CHECK=$(calc "$REQS / $CHECKS" 2)
CPU_US=$(calc "($c1 - $c0) / 1000 / $CHECKS" 0)
PER_HOUR=$(calc "$WATCH_N * 3600 / 315" 0)
cat <<EOF

## Watched images: $WATCH_N references

Measured with --tag-ttl $WATCH_TTL for $WATCH_S s (after the first round), through
regfront with bearer tokens; scaled to the default --tag-ttl (300 s + 15 s mean jitter).

| figure | value |
|---|---|
| first round (every reference resolved once, from an empty cache) | $FIRST_S s, $FIRST_REQS upstream requests |
| checks in $WATCH_S s | $CHECKS ($(kinds "$IT_DIR/watch-requests.log")) |
| upstream requests per check | $PER_CHECK |
| daemon CPU per check | $CPU_US µs |
| checks per hour at the default TTL | $PER_HOUR |
| upstream requests per hour at the default TTL | $(calc "$PER_HOUR * $REQS / $CHECKS" 0) |
| daemon CPU per hour at the default TTL | $(calc "$PER_HOUR * ($c1 - $c0) / $CHECKS / 1000000000" 2) s |
| RSS watching $WATCH_N vs none | $((RSS_WATCH / 1024)) MiB vs $((RSS_NONE / 1024)) MiB |
| failed checks | $FAILS |
EOF
