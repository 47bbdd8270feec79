#!/usr/bin/env bash
# watch.sh IMGMETA FIXTURE REGFRONT FAULTREG - watched images (--watch, --watch-file)
# exported on /metrics (ctest "integration.watch"), against docker-registry +
# imgmeta-fixture + regfront, and a real Prometheus (Debian's prometheus)
# scraping the daemon.
#   (a) an invalid line of --watch-file, an invalid --watch item and a
#       reference given twice refuse the start, naming the line (or item)
#   (b) the fixture's per-platform sizes and layer counts, computed here from
#       the registry's own manifests (curl + jq), are the imgmeta_image_size_bytes
#       and imgmeta_image_layers series; imgmeta_image_info carries the list's
#       digest; promtool check metrics passes; a tag that does not exist has
#       no series but counts failures, and requests are answered meanwhile;
#       the home page (GET /) lists the same sizes per platform
#   (c) Prometheus scrapes the daemon and a PromQL query through its HTTP API
#       returns the same sizes
#   (d) the watched tag moved in the registry (another image pushed under it):
#       after the TTL (--tag-ttl 2) info carries the new digest, the sizes are
#       the new image's and last_change moved forward, with no request made;
#       a restart on the same cache keeps last_change
#   (e) the registry down: the failure counter rises, the last series stay,
#       cached answers are still served
#   (f) SIGTERM stops the daemon cleanly (exit 0, no forced stop)
#   (g) against faultreg: a layer of negative size gives the layer count but
#       no size series (and no negative number); a check the registry never answers (slowhead)
#       does not hold requests, and SIGTERM ends the daemon within
#       --shutdown-timeout and its grace, long before the upstream timeout
#       would have ended the check (a forced stop, logged)
# Prints "N passed, N failed"; exits 1 when anything failed. About 30 s.
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT FAULTREG" >&2
    exit 2
fi
FAULTREG=$4
for tool in docker-registry curl jq promtool prometheus; do
    command -v "$tool" >/dev/null || { echo "watch: needs $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"

start_registry "$IT_DIR/registry" || die "registry did not start"
fill_fixture || die "fixture push failed"
FIRST_DIGEST=$LIST_DIGEST
start_front --bearer || die "regfront did not start"

LIST_MT=application/vnd.docker.distribution.manifest.list.v2+json
OCI_MT=application/vnd.oci.image.index.v1+json
IMG_MT=application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json

# expected_sizes REPO REF: "platform size layers" per image entry of the
# registry's list (attestations left out), sorted; computed from the manifests.
# A platform met again (Windows images, one entry per OS version) is labelled
# "os/arch:OS_VERSION".
expected_sizes() {
    local repo=$1 ref=$2 list d plat osv
    local -A seen=()
    list=$(curl -sf -H "Accept: $LIST_MT,$OCI_MT" "$REGISTRY_URL/v2/$repo/manifests/$ref") || return 1
    jq -r '.manifests[]
        | select((.annotations["vnd.docker.reference.type"] // "") != "attestation-manifest")
        | [.digest, .platform.os + "/" + .platform.architecture
                    + (if .platform.variant then "/" + .platform.variant else "" end),
           .platform["os.version"] // "-"] | @tsv' \
        <<<"$list" | while IFS=$'\t' read -r d plat osv; do
        if [ -n "${seen[$plat]:-}" ] && [ "$osv" != - ]; then plat="$plat:$osv"; fi
        seen[$plat]=1
        curl -sf -H "Accept: $IMG_MT" "$REGISTRY_URL/v2/$repo/manifests/$d" |
            jq -r --arg p "$plat" '"\($p) \([.layers[].size] | add) \(.layers | length)"'
    done | sort
}

# metric_sizes FILE IMAGE: "platform size layers" from an exposition, sorted.
metric_sizes() {
    awk -v img="$2" '
        match($0, /^imgmeta_image_(size_bytes|layers)\{image="[^"]*",platform="[^"]*"\}/) {
            split($0, a, "\""); if (a[2] != img) next
            if ($0 ~ /^imgmeta_image_size_bytes/) size[a[4]] = $2; else layers[a[4]] = $2
        }
        END { for (p in size) print p, size[p], layers[p] }' "$1" | sort
}

metrics() { curl -sf "$DAEMON_URL/metrics" >"$1"; }
# value FILE SERIES: the sample of one series (exact name and labels).
value() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# until_metrics TRIES CMD...: the metrics into $M, again every 0.1 s until CMD
# succeeds, at most TRIES times.
until_metrics() {
    local tries=$1
    shift
    for _ in $(seq 1 "$tries"); do
        metrics "$M" && "$@" && return 0
        sleep 0.1
    done
    return 1
}
is_one() { [ "$(value "$M" "$1")" = 1 ]; }
above() { [ "$(value "$M" "$1")" -gt "$2" ] 2>/dev/null; }

M=$IT_DIR/metrics.txt
EXPECTED=$(expected_sizes library/python 3.7-slim)
[ "$(wc -l <<<"$EXPECTED")" -ge 2 ] || die "could not compute the fixture's sizes: $EXPECTED"

# --- (a) a bad watch list refuses the start -----------------------------------------------
printf '# watched\npython:3.7-slim\n\nNot/A:Valid:Ref\n' >"$IT_DIR/bad.watch"
out=$("$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/bad.db" \
    --watch-file "$IT_DIR/bad.watch" 2>&1)
rc=$?
check_eq "an invalid --watch-file line refuses the start (exit 2)" 2 "$rc"
check "the refusal names the file and line 4" grep -q "bad.watch:4: " <<<"$out"
out=$("$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/bad.db" \
    --watch 'python:3.7-slim,,UPPER:x' 2>&1)
check "an invalid --watch item names its position" grep -q -- "--watch: item 3 'UPPER:x'" <<<"$out"
out=$(IMGMETA_WATCH='python:3.7-slim,docker.io/library/python:3.7-slim' \
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/bad.db" 2>&1)
check "the same image twice (IMGMETA_WATCH) is refused" grep -q "watched already" <<<"$out"

# --- (b) series with the fixture's sizes ---------------------------------------------------
printf '# the images this dashboard shows\n  python:3.7-slim   # the fixture\n' >"$IT_DIR/good.watch"
start_daemon --tag-ttl 2 --watch-file "$IT_DIR/good.watch" \
    --watch 'python:does-not-exist' || die "daemon did not start"

info="imgmeta_image_info{image=\"python:3.7-slim\",digest=\"$FIRST_DIGEST\"}"
until_metrics 100 is_one "$info"
check_eq "imgmeta_image_info carries the list's digest" 1 "$(value "$M" "$info")"
check_eq "sizes and layer counts per platform are the registry's" "$EXPECTED" \
    "$(metric_sizes "$M" python:3.7-slim)"
check "the exposition passes promtool check metrics" promtool check metrics <"$M"
until_metrics 100 above 'imgmeta_watch_failures_total{image="python:does-not-exist"}' 0
check "a watched tag that does not exist counts failures" test \
    "$(value "$M" 'imgmeta_watch_failures_total{image="python:does-not-exist"}')" -ge 1
check "and has no info series" eval "! grep -q 'image_info{image=\"python:does-not-exist\"' '$M'"
check "imgmeta_watch_last_success_timestamp_seconds is set" test \
    "$(value "$M" 'imgmeta_watch_last_success_timestamp_seconds{image="python:3.7-slim"}')" -gt 0
code=$(curl -s -o /dev/null -w '%{http_code}' "$DAEMON_URL/images/python/3.7-slim")
check_eq "requests are answered meanwhile" 200 "$code"
CHANGE1=$(value "$M" 'imgmeta_image_last_change_timestamp_seconds{image="python:3.7-slim"}')
# the home page lists the watched images: per platform its size, the digest cut short
curl -s -D "$IT_DIR/home.h" -H 'Accept: text/html' -o "$IT_DIR/home.html" "$DAEMON_URL/"
home_sizes() {
    grep -o '<td data-label="Platform">[^<]*</td><td data-label="Total size">[^<]* bytes)' "$1" |
        sed -E 's/.*"Platform">([^<]*)<.*\(([0-9]+) bytes\)$/\1 \2/' | sort
}
check_eq "GET / lists the watched image's platforms with the registry's sizes" \
    "$(awk '{ print $1, $2 }' <<<"$EXPECTED")" "$(home_sizes "$IT_DIR/home.html")"
check_eq "... each row links to the image's page and shows the digest's start" \
    "$(wc -l <<<"$EXPECTED") $(wc -l <<<"$EXPECTED")" \
    "$(grep -c '<th scope="row"><a href="/images/python/3.7-slim">python:3.7-slim</a>' "$IT_DIR/home.html") $(grep -c "<code>${FIRST_DIGEST:0:19}</code>" "$IT_DIR/home.html")"
check "... the tag that does not exist is listed without sizes" \
    grep -q 'python:does-not-exist</a></th><td data-label="Platform"></td><td data-label="Total size">no answer from its registry yet' "$IT_DIR/home.html"
check "... and the page may be kept 10 s only" grep -qi '^Cache-Control:.*max-age=10\b' "$IT_DIR/home.h"

# --- (c) a real Prometheus scrapes it -------------------------------------------------------
PROM_PORT=$(free_port) || die "no port for prometheus"
mkdir -p "$IT_DIR/prom"
cat >"$IT_DIR/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: imgmeta
    static_configs:
      - targets: ['127.0.0.1:$DAEMON_PORT']
EOF
prometheus --config.file="$IT_DIR/prom/prometheus.yml" --storage.tsdb.path="$IT_DIR/prom/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$IT_DIR/prom/prometheus.log" 2>&1 &
PROM_PID=$!
it_record "$PROM_PID"
PROM_URL=http://127.0.0.1:$PROM_PORT
wait_http "$PROM_URL/-/ready" 200 "$PROM_PID" || die "prometheus did not start"
got=""
for _ in $(seq 1 150); do
    got=$(curl -sf -G "$PROM_URL/api/v1/query" \
        --data-urlencode 'query=imgmeta_image_size_bytes{image="python:3.7-slim"}' |
        jq -r '.data.result[] | "\(.metric.platform) \(.value[1])"' | sort)
    [ -n "$got" ] && break
    sleep 0.2
done
check_eq "PromQL through Prometheus's HTTP API returns the per-platform sizes" \
    "$(awk '{ print $1, $2 }' <<<"$EXPECTED")" "$got"

# --- (d) the watched tag moves --------------------------------------------------------------
SEED=$IMGMETA_SOURCE_DIR/tests/cases/hello-world-latest/seed.json \
    IT_OUT=$IT_DIR/fixture-moved fill_fixture || die "pushing another image failed"
MOVED_DIGEST=$LIST_DIGEST
[ "$MOVED_DIGEST" != "$FIRST_DIGEST" ] || die "the second push did not move the tag"
EXPECTED2=$(expected_sizes library/python 3.7-slim)
info2="imgmeta_image_info{image=\"python:3.7-slim\",digest=\"$MOVED_DIGEST\"}"
until_metrics 150 is_one "$info2"
check_eq "after the TTL, info carries the moved tag's digest" 1 "$(value "$M" "$info2")"
check "and the old digest's series is gone" eval "! grep -qF '$info' '$M'"
check_eq "the sizes are the new image's" "$EXPECTED2" "$(metric_sizes "$M" python:3.7-slim)"
CHANGE2=$(value "$M" 'imgmeta_image_last_change_timestamp_seconds{image="python:3.7-slim"}')
check "last_change moved forward" test "$CHANGE2" -gt "$CHANGE1"
check "the moved exposition passes promtool" promtool check metrics <"$M"
# a restart on the same cache keeps when the tag last changed
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
cp "$IT_DIR/daemon.log" "$IT_DIR/daemon-before-restart.log"
sleep 1 # a restart that dated the change anew would date it a second later
start_daemon --tag-ttl 2 --watch-file "$IT_DIR/good.watch" \
    --watch 'python:does-not-exist' || die "daemon did not restart"
until_metrics 100 is_one "$info2"
check_eq "a restart keeps last_change (the cache's first sight of the digest)" "$CHANGE2" \
    "$(value "$M" 'imgmeta_image_last_change_timestamp_seconds{image="python:3.7-slim"}')"

# --- (e) the registry down --------------------------------------------------------------
kill -TERM "$FRONT_PID"
wait "$FRONT_PID" 2>/dev/null
before=$(value "$M" 'imgmeta_watch_failures_total{image="python:3.7-slim"}')
until_metrics 150 above 'imgmeta_watch_failures_total{image="python:3.7-slim"}' "$before"
check "the registry down: failures counted" test \
    "$(value "$M" 'imgmeta_watch_failures_total{image="python:3.7-slim"}')" -gt "$before"
check_eq "the last series stay" 1 "$(value "$M" "$info2")"
check_eq "and their sizes" "$EXPECTED2" "$(metric_sizes "$M" python:3.7-slim)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$DAEMON_URL/images/python/3.7-slim")
check_eq "the cached answer is still served" 200 "$code"

# --- (f) a clean stop ------------------------------------------------------------------
kill -TERM "$PROM_PID"
wait "$PROM_PID" 2>/dev/null
check_clean_stop "$DAEMON_PID"
check "the daemon stopped without forcing" eval \
    "grep -q 'event=stopped' '$IT_DIR/daemon.log' && ! grep -q 'forced=1' '$IT_DIR/daemon.log'"
check_no_sanitizer_report "$IT_DIR/daemon.log"
cp "$IT_DIR/daemon.log" "$IT_DIR/daemon-first.log"

# --- (g) a misbehaving registry ---------------------------------------------------------
start_faultreg || die "cannot start faultreg"
FRONT_URL=$FR_URL # start_daemon mirrors docker.io to FRONT_URL
start_daemon --request-timeout-ms 60000 --max-retries 0 --shutdown-timeout 1 \
    --watch ok:v1,negsize:v1,slowhead:v1 || die "daemon did not start"
until_metrics 100 grep -q '^imgmeta_image_info{image="ok:v1"' "$M"
check "a behaving image has its series" grep -q '^imgmeta_image_size_bytes{image="ok:v1",platform="linux/amd64"} [0-9]' "$M"
until_metrics 100 grep -q 'image="negsize:v1"} [1-9]' "$M" # checked: info or a failure
check "a negative layer size: the layer count, but no size series" eval \
    "grep -q '^imgmeta_image_layers{image=\"negsize:v1\",platform=\"linux/amd64\"} 1' '$M' &&
     ! grep -q '^imgmeta_image_size_bytes{image=\"negsize:v1\"' '$M'"
check "and no negative number" eval "! grep -q 'negsize.* -[0-9]' '$M'"
sleep 1 # the watcher now waits on slowhead, which never answers
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$DAEMON_URL/images/ok/v1")
check_eq "requests are answered while a check hangs" 200 "$code"
kill -TERM "$DAEMON_PID"
gone=no
for _ in $(seq 1 100); do # --shutdown-timeout 1 + 1 s grace; the check would take 60 s
    kill -0 "$DAEMON_PID" 2>/dev/null || { gone=yes; break; }
    sleep 0.1
done
check_eq "SIGTERM ends the daemon while its watcher waits on the registry" yes "$gone"
wait "$DAEMON_PID"
check_eq "with exit status 0" 0 "$?"
check "and says the stop was forced" grep -q 'event=stopped forced=1' "$IT_DIR/daemon.log"

finish
