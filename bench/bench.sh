#!/usr/bin/env bash
# bench.sh BUILD_DIR - imgmeta performance, measured side by side (issue 7).
#
# Everything on loopback, every process started here is recorded by PID and
# stopped by PID (tests/integration/lib.sh), every load is bounded in time.
#   1. cold: one request with an empty cache through regfront --delay-ms D
#      (a fixed delay before every answer = a fixed round trip per request),
#      vs the lower bound 4 x D and the target 4 x D + 20 ms; skopeo inspect
#      over the 7 platforms through the same front as the sequential client.
#   2. warm: wrk (2 threads, 64 connections) on JSON, Markdown and 304
#      revalidation, side by side with nginx serving the same bytes, all
#      sharing the cores; then (2+ CPUs) JSON and Markdown again with the
#      server under test on one CPU and wrk -t1 on another (taskset).
#   3. scale: SCALE_N distinct images written into the registry by bench-fill,
#      resolved once, then wrk over a random mix; RSS; database bytes/image.
#   4. upstream economy: requests per cold resolution, per revalidation after
#      the TTL, and N concurrent cold requests for one reference.
#   5. replicas: a daemon on PostgreSQL (tests/integration/pg.sh) beside one
#      on SQLite, warm (wrk) and cold; then 3 replicas on one PostgreSQL
#      database behind nginx (tests/integration/nginx.sh), 3 x CONCURRENT
#      cold requests for one reference at once, upstream requests counted.
#   6. gzip: warm answers plain and gzip-encoded, JSON and Markdown, against
#      nginx at its best serving the same bytes (gzip_static).
# Writes $OUT (default: BENCHMARKS.md in the source tree); raw outputs stay
# in $BENCH_RAW when BENCH_KEEP=1.
#
# Environment: DELAY_MS (25), COLD_RUNS (9), WRK_RUNS (3), GZ_RUNS (5: rounds of
# section 6), WRK_S (8),
# WRK_C (64), SCALE_N (10000), SCALE_RUNS (5: rounds of section 3, whose
# figures are ratios of runs), SCALE_LISTS (200 distinct 7-platform images for
# the marginal database bytes per multi-platform image; 0 skips), CONCURRENT
# (50), BENCH_PERF (1: perf profiles of the scale daemon, see section 3),
# BENCH_ONLY (all; or a comma list of cold, warm, scale, economy, replicas,
# gzip: only those sections run and are written, except that replicas or gzip
# alone rewrites only its own section of an existing OUT; or ab: two builds AB_A and AB_B
# compared on the pinned mix, see bench/ab.sh; or cost: CPU time per
# answer on the pinned mix and on one image, see bench/cost.sh; or watch: what
# 1,000 watched references cost, see bench/watch.sh), OUT.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DELAY_MS=${DELAY_MS:-25}
COLD_RUNS=${COLD_RUNS:-9}
WRK_RUNS=${WRK_RUNS:-3}
GZ_RUNS=${GZ_RUNS:-5}
WRK_S=${WRK_S:-8}
WRK_C=${WRK_C:-64}
SCALE_N=${SCALE_N:-10000}
SCALE_RUNS=${SCALE_RUNS:-5}
SCALE_LISTS=${SCALE_LISTS:-200}
CONCURRENT=${CONCURRENT:-50}
OUT=${OUT:-$SRC/BENCHMARKS.md}
LUA=$SRC/bench/lua
T_START=$(date +%s)
# want SECTION: whether BENCH_ONLY asks for it.
want() { case ,${BENCH_ONLY:-all}, in *,all,* | *,"$1",*) return 0 ;; esac; return 1; }

for tool in docker-registry curl jq wrk nginx skopeo bc; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done

export IMGMETA_SOURCE_DIR=$SRC
. "$SRC/tests/integration/lib.sh"
lib_init "$BUILD/imgmeta" "$BUILD/tests/imgmeta-fixture" "$BUILD/tests/regfront"
BENCH_RAW=$IT_DIR
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf 'bench: %s\n' "$*" >&2; }
# keep_raw: with BENCH_KEEP=1, stops every process and leaves IT_DIR (the raw
# outputs) in place instead of removing it on exit.
keep_raw() {
    [ "${BENCH_KEEP:-0}" = 1 ] || return 0
    stop_all
    trap - EXIT
    log "raw outputs kept in $IT_DIR"
}
die() {
    log "$*"
    keep_raw
    exit 1
}

# median: of the numbers on stdin, one a line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# calc EXPR [SCALE]: bc with SCALE decimals.
calc() { printf '%.*f\n' "${2:-1}" "$(echo "scale=6; $1" | bc -l)"; }
now_ms() { date +%s%3N; }
# kinds LOG: "3× GET manifest by digest 200, ..." from a regfront request log.
kinds() {
    awk '{ p = $2; k = p
           if (p ~ /^\/token/) k = "/token"
           else if (p ~ /^\/cdn\//) k = "CDN blob"
           else if (p ~ /\/blobs\//) k = "blob"
           else if (p ~ /\/manifests\/sha256:/) k = "manifest by digest"
           else if (p ~ /\/manifests\//) k = "manifest by tag"
           c[$1 " " k " " $3]++ }
         END { for (k in c) print c[k] "× " k }' "$1" | sort -k2 | paste -sd, - | sed 's/,/, /g'
}

# --- processes ----------------------------------------------------------------

# front NAME ARGS...: a regfront before the registry with its own request log,
# on a port of the kernel's choosing (lib.sh's listen_port reads it back);
# sets F_URL, F_LOG, F_PID.
front() {
    local name=$1 port
    shift
    F_LOG=$IT_DIR/front-$name.log
    : >"$F_LOG"
    : >"$IT_DIR/front-$name.stderr" # emptied first (lib.sh, listen_port)
    "$REGFRONT" --listen 127.0.0.1:0 --upstream "$REGISTRY_URL" \
        --lastmod "$IT_OUT/lastmod.tsv" --log "$F_LOG" "$@" 2>"$IT_DIR/front-$name.stderr" &
    F_PID=$!
    it_record "$F_PID"
    port=$(listen_port "$IT_DIR/front-$name.stderr" "$F_PID") || return 1
    F_URL=http://127.0.0.1:$port
    wait_http "$F_URL/token?service=regfront" 200 "$F_PID" || return 1
    : >"$F_LOG" # drop the readiness probes
}

# daemon NAME UPSTREAM ARGS...: imgmeta serve with a fresh database
# IT_DIR/NAME.db, on a port of the kernel's choosing; sets D_URL, D_PID, D_DB.
# D_CPU=N (e.g. as a prefix of the call) runs it under taskset -c N;
# D_DB_FROM=PATH starts it on a copy of the (stopped) database PATH and its WAL
# instead of an empty one; D_DB_URI=URI on that PostgreSQL database instead
# of the file (section 5; D_DB is then unused).
daemon() {
    local name=$1 up=$2 port
    shift 2
    D_DB=$IT_DIR/$name.db
    rm -f "$D_DB" "$D_DB-wal" "$D_DB-shm"
    if [ -n "${D_DB_FROM:-}" ]; then
        cp "$D_DB_FROM" "$D_DB" || return 1
        [ ! -f "$D_DB_FROM-wal" ] || cp "$D_DB_FROM-wal" "$D_DB-wal" || return 1
    fi
    : >"$IT_DIR/$name.log" # emptied first (lib.sh, listen_port)
    ${D_CPU:+taskset -c "$D_CPU"} "$IMGMETA" serve --listen 127.0.0.1:0 --db "${D_DB_URI:-$D_DB}" \
        --mirror "docker.io=$up" "$@" >"$IT_DIR/$name.log" 2>&1 &
    D_PID=$!
    it_record "$D_PID"
    port=$(listen_port "$IT_DIR/$name.log" "$D_PID") || return 1
    D_URL=http://127.0.0.1:$port
    wait_http "$D_URL/healthz" 200 "$D_PID" || { tail -n 20 "$IT_DIR/$name.log" >&2; return 1; }
}

# started_threads NAME: the HTTP threads daemon NAME says it runs (its start line).
started_threads() { sed -n 's/.* event=listening .*threads=\([0-9]*\).*/\1/p' "$IT_DIR/$1.log"; }

# stop PID: SIGTERM, wait at most 5 s, then SIGKILL.
stop() {
    local i
    kill -TERM "$1" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    IT_PIDS=$(printf '%s\n' $IT_PIDS | grep -vx "$1" | tr '\n' ' ')
}

# nginx_static DIR [WORKERS [CPU]]: nginx, non-daemon, its own prefix;
# serves DIR/html with WORKERS worker processes (default auto: one per CPU it
# may run on), under taskset -c CPU when CPU is given. NGINX_BEST=1 tunes it
# for static files as far as it goes (section 6): open_file_cache, an access
# log written through a 64 KiB buffer, keep-alive without a request limit,
# and gzip_static (FILE.gz sent to a client that accepts gzip).
# nginx needs its port in its configuration, so it is probed (free_port) and
# a start that lost it to another process is tried again on a fresh one.
nginx_static() { nginx_static_ "$@" || nginx_static_ "$@" || nginx_static_ "$@"; }
nginx_static_() {
    local dir=$1 workers=${2:-auto} cpu=${3:-} port
    port=$(free_port) || return 1
    N_URL=http://127.0.0.1:$port
    mkdir -p "$dir/html" "$dir/tmp"
    # Workers read the files: as root they would be nobody, and IT_DIR is 0700.
    local user="" kar=1000000
    [ "$(id -u)" -eq 0 ] && user="user root root;"
    [ -z "${NGINX_BEST:-}" ] || kar=4000000000 # no limit in practice
    cat >"$dir/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    types { application/json json; text/markdown md; }
    default_type application/octet-stream;
    access_log $dir/access.log${NGINX_BEST:+ combined buffer=64k flush=1s};
    sendfile on;
    tcp_nopush on;
    keepalive_requests $kar;
    ${NGINX_BEST:+open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;}
    ${NGINX_BEST:+gzip_static on;}
    keepalive_timeout 30s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        add_header Cache-Control "max-age=300";
        add_header Vary "Accept, Accept-Encoding";
    }
}
EOF
    ${cpu:+taskset -c "$cpu"} nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    N_PID=$!
    it_record "$N_PID"
    wait_http "$N_URL/" 403 "$N_PID" || wait_http "$N_URL/" 404 "$N_PID" || { cat "$dir/error.log" >&2; return 1; }
}

# --- measurements -------------------------------------------------------------

# wrk_run NAME URL [SCRIPT]: one bounded wrk run; prints "rps p99_ms non2xx errors".
# WRK_T (default 2) is wrk's thread count; WRK_CPU=N runs wrk under taskset -c N;
# WRK_GZIP=1 sends Accept-Encoding: gzip.
wrk_run() {
    local name=$1 url=$2 script=${3:-} f
    f=$IT_DIR/wrk-$name-$(now_ms).txt
    timeout $((WRK_S + 30)) ${WRK_CPU:+taskset -c "$WRK_CPU"} wrk -t"${WRK_T:-2}" -c"$WRK_C" \
        -d"${WRK_S}s" --latency ${WRK_GZIP:+-H "Accept-Encoding: gzip"} \
        ${script:+-s "$script"} "$url" >"$f" 2>&1
    awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                       if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
      /Requests\/sec:/ { rps = $2 }
      $1 == "99%" { p99 = ms($2) }
      /Non-2xx or 3xx responses:/ { bad = $5 }
      /Socket errors:/ { err = $4 + $6 + $8 + $10 }
      END { printf "%s %s %d %d\n", rps, p99, bad, err }' "$f"
}

# perf_run NAME URL [SCRIPT]: `perf record -g` of process PERF_PID during one
# wrk_run (its environment as for wrk_run); the report is IT_DIR/perf-NAME.txt.
perf_run() {
    local name=$1 pp
    shift
    perf record -g -o "$IT_DIR/perf-$name.data" -p "$PERF_PID" -- sleep "$WRK_S" \
        >/dev/null 2>&1 &
    pp=$!
    wrk_run "perf-$name" "$@" >/dev/null
    wait "$pp"
    perf report -i "$IT_DIR/perf-$name.data" --no-children --stdio --percent-limit 0.3 \
        >"$IT_DIR/perf-$name.txt" 2>/dev/null
}

# wrk_series NAME URL [SCRIPT] -> appends WRK_RUNS lines to IT_DIR/series-NAME.
wrk_once() { wrk_run "$@" >>"$IT_DIR/series-$1"; }
# cpu_ns PID...: the CPU time of all the processes' threads so far, in ns.
cpu_ns() {
    local p
    for p in "$@"; do cat "/proc/$p/task/"*/schedstat 2>/dev/null; done |
        awk '{s += $1} END {printf "%.0f\n", s}'
}
# wrk_cpu NAME URL PID...: wrk_once, and the CPU time PIDs spent per answer
# during it (us; their threads' time over the requests wrk saw answered)
# appended to IT_DIR/cpu-NAME.
wrk_cpu() {
    local name=$1 url=$2 c0 rps
    shift 2
    c0=$(cpu_ns "$@")
    wrk_once "$name" "$url"
    rps=$(tail -n 1 "$IT_DIR/series-$name" | cut -d' ' -f1)
    [ -n "$rps" ] && [ "$rps" != 0 ] || return 0
    calc "($(cpu_ns "$@") - $c0) / 1000 / ($rps * $WRK_S)" 2 >>"$IT_DIR/cpu-$name"
}
# cpu_med NAME: the median CPU us per answer of wrk_cpu's runs NAME.
cpu_med() { [ -s "$IT_DIR/cpu-$1" ] && median <"$IT_DIR/cpu-$1" || echo n/a; }
# col NAME K: median of column K of a series.
col() { awk -v k="$2" '{print $k}' "$IT_DIR/series-$1" | median; }
bad() { awk '{s += $3 + $4} END {print s + 0}' "$IT_DIR/series-$1"; }

ratio() { calc "$1 / $2" 2; }
yes_no() { [ "$(echo "$1" | bc -l)" = 1 ] && echo "met" || echo "**not met**"; }

cold_once() { # URL -> time_total in ms, and checks 200
    local out
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 60 "$1")
    [ "${out%% *}" = 200 ] || { log "cold request answered ${out%% *}"; return 1; }
    calc "${out#* } * 1000" 1
}

db_bytes() { # DB: bytes of the database and its WAL (after the daemon stopped)
    local s=0 f
    for f in "$1" "$1-wal"; do [ -f "$f" ] && s=$((s + $(stat -c %s "$f"))); done
    echo "$s"
}

# cpus_allowed: the CPUs this script may run on, one a line (its affinity
# list as taskset prints it, e.g. 0-3,6, expanded).
cpus_allowed() {
    taskset -pc $$ | sed 's/.*: *//' | tr ',' '\n' |
        awk -F- '{ for (c = $1; c <= (NF > 1 ? $2 : $1); c++) print c }'
}

# Pinned runs (sections 2 and 3): the server under test on CPU PIN_SRV, wrk on
# CPU PIN_WRK, when this process may run on two CPUs; PIN_SKIP says why not.
PIN_SKIP=""
if [ "$(nproc)" -lt 2 ]; then
    PIN_SKIP="this process may run on $(nproc) CPU only, so the server and wrk cannot each have one"
elif ! command -v taskset >/dev/null; then
    PIN_SKIP="taskset (util-linux) is missing"
else
    PIN_SRV=$(cpus_allowed | sed -n 1p) PIN_WRK=$(cpus_allowed | sed -n 2p)
fi

# --- set-up ---------------------------------------------------------------------

log "registry + fixture ($(date -u +%H:%M:%S))"
# blob descriptors cached, no access log: see start_registry in lib.sh
IT_REGISTRY_SERVING=1 start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
REF=library/python:3.7-slim
front delay --bearer --delay-ms "$DELAY_MS" || die "cannot start regfront"
DF_URL=$F_URL DF_LOG=$F_LOG
front nodelay --bearer || die "cannot start regfront"
NF_URL=$F_URL NF_LOG=$F_LOG
daemon empty "$NF_URL" && stop "$D_PID"
DB_EMPTY=$(db_bytes "$D_DB")

# === 1. cold ==================================================================
if want cold; then
log "1. cold resolution through a ${DELAY_MS} ms front"
: >"$IT_DIR/cold.ms"
: >"$IT_DIR/cold0.ms"
: >"$IT_DIR/cold.reqs"
for i in $(seq 1 "$COLD_RUNS"); do
    daemon "cold$i" "$DF_URL" || die "cannot start imgmeta"
    n0=$(wc -l <"$DF_LOG")
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/cold.ms" || die "cold request failed"
    n1=$(wc -l <"$DF_LOG")
    echo $((n1 - n0)) >>"$IT_DIR/cold.reqs"
    [ "$i" = 1 ] && sed -n "$((n0 + 1)),${n1}p" "$DF_LOG" >"$IT_DIR/cold-requests.log"
    stop "$D_PID"
    [ "$i" = 1 ] && DB_ONE=$(db_bytes "$D_DB")
    daemon "cold0-$i" "$NF_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/cold0.ms" || die "cold request failed"
    stop "$D_PID"
done
# A running daemon that has resolved python:3.7-slim through the front: a new
# tag of that repository (its token is cached: list, children, configs' 307s,
# CDN) and the first image of another repository (the realm is remembered:
# token, list, ...; no 401). Both are rebuilt variants (new configs and
# manifests, the same layers): their manifests and configs are not cached;
# their layers are, as base layers are (--layer-ttl), so no layer is asked.
( IT_OUT=$IT_DIR/fx-tag fill_fixture push-variant --variant 1 --tag 3.7-slim-v1 &&
    IT_OUT=$IT_DIR/fx-repo fill_fixture push-variant --variant 2 --repo library/pyrealm ) \
    >/dev/null || die "imgmeta-fixture push-variant failed"
: >"$IT_DIR/cold-tag.ms"
: >"$IT_DIR/cold-repo.ms"
for i in $(seq 1 "$COLD_RUNS"); do
    daemon "running$i" "$DF_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >/dev/null || die "cold request failed"
    n0=$(wc -l <"$DF_LOG")
    cold_once "$D_URL/images/python/3.7-slim-v1" >>"$IT_DIR/cold-tag.ms" || die "cold request failed"
    n1=$(wc -l <"$DF_LOG")
    cold_once "$D_URL/images/pyrealm/3.7-slim" >>"$IT_DIR/cold-repo.ms" || die "cold request failed"
    n2=$(wc -l <"$DF_LOG")
    [ "$i" = 1 ] && sed -n "$((n0 + 1)),${n1}p" "$DF_LOG" >"$IT_DIR/cold-tag-requests.log"
    [ "$i" = 1 ] && sed -n "$((n1 + 1)),${n2}p" "$DF_LOG" >"$IT_DIR/cold-repo-requests.log"
    stop "$D_PID"
done
# The same against fronts whose /cdn/ path keeps what it served (--cdn-cache),
# as Docker Hub's CDN edge does for the blobs of any popular image: warmed by
# one daemon, then each run is a fresh daemon (empty cache) or a running one
# asked for the new tag. docker-registry then is out of the blob path, whose
# per-request CPU (~2 ms on these shared cores) otherwise lands in the figure.
front cdn --bearer --cdn-cache --delay-ms "$DELAY_MS" || die "cannot start regfront"
CF_URL=$F_URL
front cdn0 --bearer --cdn-cache || die "cannot start regfront"
CF0_URL=$F_URL
for url in "$CF_URL" "$CF0_URL"; do
    daemon cdnwarm "$url" || die "cannot start imgmeta"
    for img in python/3.7-slim python/3.7-slim-v1 pyrealm/3.7-slim; do
        cold_once "$D_URL/images/$img" >/dev/null || die "cold request failed"
    done
    stop "$D_PID"
done
: >"$IT_DIR/cdn.ms"
: >"$IT_DIR/cdn0.ms"
: >"$IT_DIR/cdn-tag.ms"
for i in $(seq 1 "$COLD_RUNS"); do
    daemon "cdn$i" "$CF_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/cdn.ms" || die "cold request failed"
    cold_once "$D_URL/images/python/3.7-slim-v1" >>"$IT_DIR/cdn-tag.ms" || die "cold request failed"
    stop "$D_PID"
    daemon "cdn0-$i" "$CF0_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/cdn0.ms" || die "cold request failed"
    stop "$D_PID"
done
# Registries that serve their blobs themselves (no 307, no CDN hop: the
# brief's model of 3 stages + the token round), with a token (--bearer) and
# anonymous: the fresh daemon pays the token (its start-up probe met the 401
# before the request), a running daemon the token for another repository and
# nothing for a new tag.
# Their blob answers are kept by the front after a first pass (--cdn-cache),
# so docker-registry's CPU stays out of the blob path as in the CDN rows.
front direct --bearer --direct-blobs --cdn-cache --delay-ms "$DELAY_MS" ||
    die "cannot start regfront"
XF_URL=$F_URL XF_LOG=$F_LOG
front anon --direct-blobs --cdn-cache --delay-ms "$DELAY_MS" || die "cannot start regfront"
AF_URL=$F_URL AF_LOG=$F_LOG
# The same two fronts also keeping manifests by digest after a first pass
# (--keep-digests): docker-registry's CPU for the 7 manifests asked at once
# (it shares these cores with the daemon) is then out of the path too; only
# the list by tag still reaches it.
front keep --bearer --direct-blobs --cdn-cache --keep-digests --delay-ms "$DELAY_MS" ||
    die "cannot start regfront"
KF_URL=$F_URL KF_LOG=$F_LOG
front keepanon --direct-blobs --cdn-cache --keep-digests --delay-ms "$DELAY_MS" ||
    die "cannot start regfront"
KAF_URL=$F_URL
for url in "$XF_URL" "$AF_URL" "$KF_URL" "$KAF_URL"; do
    daemon directwarm "$url" || die "cannot start imgmeta"
    for img in python/3.7-slim python/3.7-slim-v1 pyrealm/3.7-slim; do
        cold_once "$D_URL/images/$img" >/dev/null || die "cold request failed"
    done
    stop "$D_PID"
done
# cpu_ms PID: user + system CPU of the process so far, in ms (clock ticks).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
for f in direct direct-tag direct-repo anon direct-cpu keep keepanon; do : >"$IT_DIR/$f.ms"; done
for i in $(seq 1 "$COLD_RUNS"); do
    daemon "direct$i" "$XF_URL" || die "cannot start imgmeta"
    n0=$(wc -l <"$XF_LOG")
    c0=$(cpu_ms "$D_PID")
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/direct.ms" || die "cold request failed"
    echo "$(cpu_ms "$D_PID") - $c0" | bc >>"$IT_DIR/direct-cpu.ms"
    n1=$(wc -l <"$XF_LOG")
    cold_once "$D_URL/images/python/3.7-slim-v1" >>"$IT_DIR/direct-tag.ms" || die "cold request failed"
    n2=$(wc -l <"$XF_LOG")
    cold_once "$D_URL/images/pyrealm/3.7-slim" >>"$IT_DIR/direct-repo.ms" || die "cold request failed"
    n3=$(wc -l <"$XF_LOG")
    if [ "$i" = 1 ]; then
        sed -n "$((n0 + 1)),${n1}p" "$XF_LOG" >"$IT_DIR/direct-requests.log"
        sed -n "$((n1 + 1)),${n2}p" "$XF_LOG" >"$IT_DIR/direct-tag-requests.log"
        sed -n "$((n2 + 1)),${n3}p" "$XF_LOG" >"$IT_DIR/direct-repo-requests.log"
    fi
    stop "$D_PID"
    daemon "anon$i" "$AF_URL" || die "cannot start imgmeta"
    n0=$(wc -l <"$AF_LOG")
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/anon.ms" || die "cold request failed"
    [ "$i" = 1 ] && sed -n "$((n0 + 1)),\$p" "$AF_LOG" >"$IT_DIR/anon-requests.log"
    stop "$D_PID"
    daemon "keep$i" "$KF_URL" || die "cannot start imgmeta"
    n0=$(wc -l <"$KF_LOG")
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/keep.ms" || die "cold request failed"
    [ "$i" = 1 ] && sed -n "$((n0 + 1)),\$p" "$KF_LOG" >"$IT_DIR/keep-requests.log"
    stop "$D_PID"
    daemon "keepanon$i" "$KAF_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >>"$IT_DIR/keepanon.ms" || die "cold request failed"
    stop "$D_PID"
done
DIRECT_MS=$(median <"$IT_DIR/direct.ms")
DIRECT_TAG_MS=$(median <"$IT_DIR/direct-tag.ms")
DIRECT_REPO_MS=$(median <"$IT_DIR/direct-repo.ms")
ANON_MS=$(median <"$IT_DIR/anon.ms")
KEEP_MS=$(median <"$IT_DIR/keep.ms")
KEEPANON_MS=$(median <"$IT_DIR/keepanon.ms")
DIRECT_CPU_MS=$(median <"$IT_DIR/direct-cpu.ms")
CDN_MS=$(median <"$IT_DIR/cdn.ms")
CDN0_MS=$(median <"$IT_DIR/cdn0.ms")
CDN_TAG_MS=$(median <"$IT_DIR/cdn-tag.ms")
COLD_TAG_MS=$(median <"$IT_DIR/cold-tag.ms")
COLD_REPO_MS=$(median <"$IT_DIR/cold-repo.ms")
COLD_MS=$(median <"$IT_DIR/cold.ms")
COLD0_MS=$(median <"$IT_DIR/cold0.ms")
COLD_REQS=$(median <"$IT_DIR/cold.reqs")
LOWER=$((4 * DELAY_MS))
TARGET=$((4 * DELAY_MS + 20))
# rounds LOG: sequential rounds the front forces: challenge, token, list,
# children, configs + layer HEADs (307) and the CDN hop they are redirected to.
rounds() {
    awk '
  / 401$/ { c = 1 } /\/token/ { t = 1 }
  /\/manifests\// && !/sha256:/ { l = 1 } /\/manifests\/sha256:/ { m = 1 }
  /\/v2\/.*\/blobs\// { b = 1 } /^[A-Z]+ \/cdn\// { d = 1 }
  END { print c + t + l + m + b + d }' "$1"
}
ROUNDS=$(rounds "$IT_DIR/cold-requests.log")
ROUNDS_TAG=$(rounds "$IT_DIR/cold-tag-requests.log")
ROUNDS_REPO=$(rounds "$IT_DIR/cold-repo-requests.log")
R_DIRECT=$(rounds "$IT_DIR/direct-requests.log")
R_DIRECT_TAG=$(rounds "$IT_DIR/direct-tag-requests.log")
R_DIRECT_REPO=$(rounds "$IT_DIR/direct-repo-requests.log")
R_ANON=$(rounds "$IT_DIR/anon-requests.log")
R_KEEP=$(rounds "$IT_DIR/keep-requests.log")
# direct_row LABEL MS ROUNDS: a row of the direct-blob table, against the
# floor of its own rounds and the brief's target.
direct_row() {
    echo "| $1 | **$2 ms** | $3 × D = $(($3 * DELAY_MS)) ms | $TARGET ms | $(ratio "$2" "$TARGET") × ($(yes_no "$2 <= $TARGET")) |"
}

# cold_report: section 1 of the report (Markdown).
cold_report() {
    cat <<EOF
## 1. Cold resolution (empty cache), ${DELAY_MS} ms per upstream request

The registry is Debian's docker-registry with the python:3.7-slim replica (7 platforms)
behind \`regfront --bearer --delay-ms $DELAY_MS\` (Docker Hub-like: 401 + bearer token,
blob HEAD/GET answered 307 to a "CDN" path that carries Last-Modified), which waits
$DELAY_MS ms before answering **every** request: a fixed round trip per request, to which the
registry's own time to serve it adds (7 manifests asked at once take docker-registry
about 6–10 ms on this machine's 2 cores). The registry runs with its blob descriptors
cached in memory, as its Debian package's config.yml has it, and without an access log
(the front logs each request). Connection set-up costs nothing extra (loopback). Each run starts the daemon on a fresh database and
times one \`curl -w %{time_total}\` once it answers /healthz; its start-up probe
(\`--prewarm\`: one GET /v2/, whose 401 names the token realm) set off before it listened,
and a request that finds it still on its way waits for it. The running-daemon rows: a
fresh daemon resolves python:3.7-slim first, then is asked for a rebuilt variant (new
configs and manifests, the same layers) under a new tag of that repository, then for one
in another repository of the same registry. Their manifests and configs are fetched; their
layers' sizes and dates are the cached ones of this registry (\`--layer-ttl\`), so those
rows ask no layer: 22 requests where a resolution from nothing makes $COLD_REQS (section 4).

| measurement | median | lower bound 4 × D | target 4 × D + 20 ms | vs target |
|---|---|---|---|---|
| imgmeta, first request of a fresh daemon, D = $DELAY_MS ms | **$COLD_MS ms** | $LOWER ms | $TARGET ms | $(ratio "$COLD_MS" "$TARGET") × ($(yes_no "$COLD_MS <= $TARGET")) |
| imgmeta, running daemon, new tag of a repository it holds a token for | **$COLD_TAG_MS ms** | $LOWER ms | $TARGET ms | $(ratio "$COLD_TAG_MS" "$TARGET") × ($(yes_no "$COLD_TAG_MS <= $TARGET")) |
| imgmeta, running daemon, first image of another repository of that registry | **$COLD_REPO_MS ms** | $LOWER ms | $TARGET ms | $(ratio "$COLD_REPO_MS" "$TARGET") × ($(yes_no "$COLD_REPO_MS <= $TARGET")) |
| imgmeta, first request of a fresh daemon, D = 0 (local cost only) | $COLD0_MS ms | 0 | 20 ms | |
| CDN edge warm (\`--cdn-cache\`): fresh daemon, D = $DELAY_MS ms | **$CDN_MS ms** | $LOWER ms | $TARGET ms | $(ratio "$CDN_MS" "$TARGET") × ($(yes_no "$CDN_MS <= $TARGET")) |
| CDN edge warm: running daemon, new tag of a repository it holds a token for | **$CDN_TAG_MS ms** | $LOWER ms | $TARGET ms | $(ratio "$CDN_TAG_MS" "$TARGET") × ($(yes_no "$CDN_TAG_MS <= $TARGET")) |
| CDN edge warm: fresh daemon, D = 0 (local cost only) | $CDN0_MS ms | 0 | 20 ms | |
| \`skopeo inspect\` (sequential client): \`--raw\` + 7 × \`--override-os/arch/variant\` | $SK_CELL | | | $SK_RATIO |

| upstream requests per cold resolution | count |
|---|---|
| imgmeta (front log lines) | $COLD_REQS: $COLD_KINDS |
| skopeo, same information minus layer dates | $SK_REQS |
| sequential rounds the front makes imgmeta wait for, fresh daemon | $ROUNDS (the realm was probed at start: token, list, manifests, configs + layer HEADs → 307, CDN hop; no 401) = $((ROUNDS * DELAY_MS)) ms at D = $DELAY_MS |
| the same, running daemon, new tag | $ROUNDS_TAG (the token is cached: list, manifests, configs → 307, CDN hop) = $((ROUNDS_TAG * DELAY_MS)) ms |
| the same, running daemon, another repository | $ROUNDS_REPO (the realm is remembered: token, list, manifests, configs → 307, CDN hop; no 401) = $((ROUNDS_REPO * DELAY_MS)) ms |

The brief's lower bound (3 stages + token = 4 × D) assumes that blob HEADs are not
redirected; against a Hub-like front every blob costs a 307 and the CDN hop (the redirect
target is only known from the 307), so the protocol floor is 5 × D with a token round
and 4 × D without. The client remembers each registry's token realm and asks it before
the first request of a new repository; a fresh daemon learns it at start (\`--prewarm\`:
one GET /v2/ to docker.io, here its mirror, and to every mirror, in the background), so
its first request skips the 401 too (Docker Hub's own realm is moreover known in
advance, and the probe's connection is reused). The front's CDN hop of a resolution
from nothing sends ~42 requests at once to docker-registry, which spends ~2 ms of CPU on
each: on these 2 cores that burst, not imgmeta (~10 ms of CPU per cold resolution), is
most of what stands above the rounds; a new tag on known layers sends 7.

### 1b. Registries that serve blobs themselves: the brief's model

The same replica behind \`regfront --direct-blobs --cdn-cache --delay-ms $DELAY_MS\`: blob
HEAD/GET are answered in place (as docker-registry, Harbor or a registry with local storage
do), so a resolution is the brief's 3 stages (list → manifests → configs + layer HEADs) plus
the token round when one is needed. The front keeps its blob answers after a first pass,
as in the CDN rows, so docker-registry's CPU is out of the blob path. With \`--bearer\` the
front wants a token (a 401 challenge names its realm, which the daemon's start-up probe
learnt before the first request); without it the registry is anonymous. Medians
of $COLD_RUNS runs, one round = D = $DELAY_MS ms. imgmeta's own CPU (user + system, from
/proc, clock ticks) for the fresh daemon's resolution: **$DIRECT_CPU_MS ms**.

| measurement | median | floor: rounds the front forces | target 4 × D + 20 ms | vs target |
|---|---|---|---|---|
$(direct_row "token registry, first request of a fresh daemon (realm probed at start: token + 3 stages)" "$DIRECT_MS" "$R_DIRECT")
$(direct_row "token registry, running daemon, another repository (realm remembered: token + 3 stages)" "$DIRECT_REPO_MS" "$R_DIRECT_REPO")
$(direct_row "token registry, running daemon, new tag (token cached: 3 stages)" "$DIRECT_TAG_MS" "$R_DIRECT_TAG")
$(direct_row "anonymous registry, first request of a fresh daemon (3 stages)" "$ANON_MS" "$R_ANON")
$(direct_row "token registry keeping manifests by digest (\`--keep-digests\`), first request of a fresh daemon" "$KEEP_MS" "$R_KEEP")
$(direct_row "anonymous registry keeping manifests by digest, first request of a fresh daemon" "$KEEPANON_MS" "$((R_KEEP - 1))")

In the last two rows the front also keeps manifests by digest after a first pass
(\`--keep-digests\`: immutable answers, kept as the blob answers are), so the 7 manifests of
stage 2 no longer wait for docker-registry, which serves them from its storage on the same
2 cores as the daemon and the front; only the list by tag still reaches it. The rows above
them include that registry's CPU, as a real registry's own serving time would be; these
two show what stands above the rounds when the registry answers from memory.
EOF
}
COLD_KINDS=$(kinds "$IT_DIR/cold-requests.log")

log "1b. skopeo inspect, 7 platforms, sequential"
SK_HOST=${DF_URL#http://}
PLATFORMS=$(jq -r '.platforms[].platform | [.os, .architecture, .variant // ""] | @tsv' "$SEED")
: >"$IT_DIR/skopeo.ms"
: >"$IT_DIR/skopeo.reqs"
for i in $(seq 1 "$COLD_RUNS"); do
    n0=$(wc -l <"$DF_LOG")
    t0=$(now_ms)
    timeout 120 skopeo inspect --tls-verify=false --raw "docker://$SK_HOST/$REF" >/dev/null ||
        die "skopeo inspect --raw failed"
    while IFS=$'\t' read -r os arch variant; do
        timeout 120 skopeo inspect --tls-verify=false --override-os "$os" \
            --override-arch "$arch" ${variant:+--override-variant "$variant"} \
            "docker://$SK_HOST/$REF" >"$IT_DIR/skopeo-$arch$variant.json" ||
            die "skopeo inspect $os/$arch/$variant failed"
    done <<<"$PLATFORMS"
    echo $(($(now_ms) - t0)) >>"$IT_DIR/skopeo.ms"
    echo $(($(wc -l <"$DF_LOG") - n0)) >>"$IT_DIR/skopeo.reqs"
done
SK_MS=$(median <"$IT_DIR/skopeo.ms")
SK_REQS=$(median <"$IT_DIR/skopeo.reqs")
SK_CELL="$SK_MS ms" SK_RATIO="$(calc "$SK_MS / $COLD_MS" 2) × imgmeta's time"
fi

# === 2. warm ==================================================================
if want warm; then
log "2. warm answers: imgmeta vs nginx, shared cores, wrk -t2 -c$WRK_C -d${WRK_S}s x $WRK_RUNS"
daemon warm "$NF_URL" || die "cannot start imgmeta"
WARM_PID=$D_PID WARM_URL=$D_URL
J_PATH=/images/python/3.7-slim
M_PATH="/images/python/3.7-slim?format=markdown"
mkdir -p "$IT_DIR/nginx/html/images/python"
curl -s -D "$IT_DIR/json.h" -o "$IT_DIR/nginx/html/images/python/3.7-slim.json" "$WARM_URL$J_PATH"
curl -s -D "$IT_DIR/md.h" -o "$IT_DIR/nginx/html/images/python/3.7-slim.md" "$WARM_URL$M_PATH"
ETAG=$(tr -d '\r' <"$IT_DIR/json.h" | sed -n 's/^[Ee][Tt]ag: //p')
J_BYTES=$(stat -c %s "$IT_DIR/nginx/html/images/python/3.7-slim.json")
M_BYTES=$(stat -c %s "$IT_DIR/nginx/html/images/python/3.7-slim.md")
[ -n "$ETAG" ] && [ "$J_BYTES" -gt 0 ] && [ "$M_BYTES" -gt 0 ] || die "warm answers missing"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$WARM_URL$J_PATH")" = 304 ] ||
    die "imgmeta does not answer 304 to its own ETag"
nginx_static "$IT_DIR/nginx" || die "cannot start nginx"
NJ=$N_URL/images/python/3.7-slim.json
NM=$N_URL/images/python/3.7-slim.md
NETAG=$(curl -sI "$NJ" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
cmp -s <(curl -s "$NJ") <(curl -s "$WARM_URL$J_PATH") || die "nginx JSON bytes differ"
cmp -s <(curl -s "$NM") <(curl -s "$WARM_URL$M_PATH") || die "nginx Markdown bytes differ"
for r in $(seq 1 "$WRK_RUNS"); do # interleaved, so drift hits both alike
    wrk_once im-json "$WARM_URL$J_PATH"
    wrk_once ng-json "$NJ"
    wrk_once im-md "$WARM_URL$M_PATH"
    wrk_once ng-md "$NM"
    BENCH_ETAG=$ETAG wrk_once im-304 "$WARM_URL$J_PATH" "$LUA/inm.lua"
    BENCH_ETAG=$NETAG wrk_once ng-304 "$NJ" "$LUA/inm.lua"
done
WARM_THREADS=$(started_threads warm)
WARM_RSS=$(awk '/VmHWM|VmRSS/ {sub(":", "", $1); printf "%s%s %.1f MiB", (n++ ? ", " : ""), $1, $2 / 1024}' "/proc/$WARM_PID/status")
stop "$N_PID"
stop "$WARM_PID"

# Pinned: the server under test alone on one CPU (imgmeta with its defaults,
# hence one HTTP thread; nginx with one worker), wrk -t1 on another, so that
# the load generator does not compete with the server for its core.
if [ -z "$PIN_SKIP" ]; then
    log "2b. pinned: server on CPU $PIN_SRV, wrk -t1 -c$WRK_C on CPU $PIN_WRK x $WRK_RUNS"
    D_CPU=$PIN_SRV daemon warm-pin "$NF_URL" || die "cannot start imgmeta on CPU $PIN_SRV"
    PIN_PID=$D_PID PIN_URL=$D_URL
    PIN_THREADS=$(started_threads warm-pin)
    PIN_MASK=$(taskset -pc "$PIN_PID" | sed 's/.*: *//')
    PIN_HTML=$IT_DIR/nginx-pin/html/images/python
    mkdir -p "$PIN_HTML"
    curl -s -o "$PIN_HTML/3.7-slim.json" "$PIN_URL$J_PATH"
    curl -s -o "$PIN_HTML/3.7-slim.md" "$PIN_URL$M_PATH"
    nginx_static "$IT_DIR/nginx-pin" 1 "$PIN_SRV" || die "cannot start nginx on CPU $PIN_SRV"
    PNJ=$N_URL/images/python/3.7-slim.json
    PNM=$N_URL/images/python/3.7-slim.md
    cmp -s <(curl -s "$PNJ") <(curl -s "$PIN_URL$J_PATH") || die "pinned nginx JSON bytes differ"
    cmp -s <(curl -s "$PNM") <(curl -s "$PIN_URL$M_PATH") || die "pinned nginx Markdown bytes differ"
    for r in $(seq 1 "$WRK_RUNS"); do # interleaved, as above
        WRK_T=1 WRK_CPU=$PIN_WRK wrk_once pin-im-json "$PIN_URL$J_PATH"
        WRK_T=1 WRK_CPU=$PIN_WRK wrk_once pin-ng-json "$PNJ"
        WRK_T=1 WRK_CPU=$PIN_WRK wrk_once pin-im-md "$PIN_URL$M_PATH"
        WRK_T=1 WRK_CPU=$PIN_WRK wrk_once pin-ng-md "$PNM"
    done
    stop "$N_PID"
    stop "$PIN_PID"
else
    log "2b. pinned configuration skipped: $PIN_SKIP"
fi
fi

# === 6. compressed answers (BENCH_ONLY=gzip) ====================================
# Warm answers, plain and gzip, JSON and Markdown, against nginx at its best
# (NGINX_BEST: sendfile, open_file_cache, a buffered access log, keep-alive
# without limit, gzip_static serving FILE.gz made of imgmeta's own gzip bytes),
# both logging every request; interleaved round by round, shared cores.
if want gzip; then
log "6. gzip answers: imgmeta vs nginx gzip_static, wrk -t${WRK_T:-2} -c$WRK_C -d${WRK_S}s x $GZ_RUNS"
# its access log through a 64 KiB buffer too, as nginx's (buffer=64k)
daemon gzip "$NF_URL" --access-log-buffer 65536 || die "cannot start imgmeta"
GZ_PID=$D_PID GZ_URL=$D_URL
GZ_HTML=$IT_DIR/nginx-gz/html/images/python
mkdir -p "$GZ_HTML"
# gz_files EXT PATH: imgmeta's plain and gzip answers as nginx's FILE and FILE.gz.
gz_files() {
    local f=$GZ_HTML/3.7-slim.$1
    curl -s -o "$f" "$GZ_URL$2" && curl -s -H 'Accept-Encoding: gzip' -o "$f.gz" "$GZ_URL$2" &&
        gzip -dc <"$f.gz" | cmp -s - "$f"
}
gz_files json /images/python/3.7-slim || die "imgmeta's gzip JSON does not inflate to its plain JSON"
gz_files md "/images/python/3.7-slim?format=markdown" || die "imgmeta's gzip Markdown does not inflate to its page"
NGINX_BEST=1 nginx_static "$IT_DIR/nginx-gz" || die "cannot start nginx"
GZ_N_PID=$N_PID
# same_bytes IMGMETA-URL NGINX-URL [gzip]: both answer 200 with the same bytes
# (and the same Content-Encoding: gzip when asked for it).
same_bytes() {
    local h=() a b
    [ -z "${3:-}" ] || h=(-H 'Accept-Encoding: gzip')
    a=$(curl -s "${h[@]}" -o "$IT_DIR/gz-a" -w '%{http_code} %header{content-encoding}' "$1")
    b=$(curl -s "${h[@]}" -o "$IT_DIR/gz-b" -w '%{http_code} %header{content-encoding}' "$2")
    [ "$a" = "$b" ] && [ "${a%% *}" = 200 ] && cmp -s "$IT_DIR/gz-a" "$IT_DIR/gz-b"
}
GZ_J=/images/python/3.7-slim GZ_M="/images/python/3.7-slim?format=markdown"
GZ_NJ=$N_URL/images/python/3.7-slim.json GZ_NM=$N_URL/images/python/3.7-slim.md
for e in "" gzip; do
    same_bytes "$GZ_URL$GZ_J" "$GZ_NJ" $e || die "nginx's JSON ($e) differs from imgmeta's"
    same_bytes "$GZ_URL$GZ_M" "$GZ_NM" $e || die "nginx's Markdown ($e) differs from imgmeta's"
done
# nginx's CPU time is its master's and its workers'
GZ_N_PIDS="$GZ_N_PID $(pgrep -P "$GZ_N_PID" | tr '\n' ' ')"
for r in $(seq 1 "$GZ_RUNS"); do # interleaved, so drift hits both alike
    wrk_cpu gz-im-json "$GZ_URL$GZ_J" "$GZ_PID"
    wrk_cpu gz-ng-json "$GZ_NJ" $GZ_N_PIDS
    wrk_cpu gz-im-md "$GZ_URL$GZ_M" "$GZ_PID"
    wrk_cpu gz-ng-md "$GZ_NM" $GZ_N_PIDS
    WRK_GZIP=1 wrk_cpu gz-im-jsongz "$GZ_URL$GZ_J" "$GZ_PID"
    WRK_GZIP=1 wrk_cpu gz-ng-jsongz "$GZ_NJ" $GZ_N_PIDS
    WRK_GZIP=1 wrk_cpu gz-im-mdgz "$GZ_URL$GZ_M" "$GZ_PID"
    WRK_GZIP=1 wrk_cpu gz-ng-mdgz "$GZ_NM" $GZ_N_PIDS
done
GZ_LOGGED=$(grep -c 'event=access' "$IT_DIR/gzip.log")
GZ_N_LOGGED=$(wc -l <"$IT_DIR/nginx-gz/access.log")
stop "$GZ_N_PID"
stop "$GZ_PID"
fi

# === 3. scale =================================================================
# resolve_all URL PREFIX N: asks URL/images/python/PREFIX1..N once each (8 curl
# processes, keep-alive); sets RESOLVE_MS and RESOLVE_OK (answers 200).
resolve_all() {
    local t0
    t0=$(now_ms)
    rm -f "$IT_DIR/resolve-urls."*
    seq 1 "$3" | awk -v u="$1/images/python/$2" '{print "url = \"" u $1 "\"\noutput = \"/dev/null\""}' |
        split -l 500 - "$IT_DIR/resolve-urls."
    ls "$IT_DIR"/resolve-urls.* | timeout 900 xargs -P 8 -I{} curl -s --max-time 600 -K {} \
        -w '%{http_code}\n' >"$IT_DIR/resolve-$2.codes"
    RESOLVE_MS=$(($(now_ms) - t0))
    RESOLVE_OK=$(grep -c '^200$' "$IT_DIR/resolve-$2.codes")
    [ "$RESOLVE_OK" -eq "$3" ] || log "resolving $2*: only $RESOLVE_OK of $3 answered 200"
}

if want scale; then
log "3. scale: $SCALE_N distinct images"
STORAGE=$IT_DIR/registry/storage
t0=$(now_ms)
"$BUILD/bench-fill" --storage "$STORAGE" --repo library/python --list "$LIST_DIGEST" \
    --mode single --count "$SCALE_N" --prefix s >/dev/null || die "bench-fill failed"
FILL_REG_MS=$(($(now_ms) - t0))
# --tag-ttl: every answer stays fresh for the whole section (the default 300 s
# would let the first ones go stale during the runs and revalidate upstream)
daemon scale "$REGISTRY_URL" --tag-ttl 3600 || die "cannot start imgmeta"
SCALE_PID=$D_PID SCALE_URL=$D_URL SCALE_DB=$D_DB
resolve_all "$SCALE_URL" s "$SCALE_N"
FILL_MS=$RESOLVE_MS FILL_OK=$RESOLVE_OK
RSS_FILLED=$(awk '/VmRSS/ {print $2}' "/proc/$SCALE_PID/status")
# nginx serving the same answers as $SCALE_N static files (the bytes the daemon
# answers, copied once each): the same random mix and the same one-file run,
# for what a random mix costs a static server on this machine.
NGS=$IT_DIR/nginx-scale
mkdir -p "$NGS/html/images/python"
rm -f "$IT_DIR/copy-urls."*
seq 1 "$SCALE_N" | awk -v u="$SCALE_URL/images/python/s" -v d="$NGS/html/images/python/s" \
    '{print "url = \"" u $1 "\"\noutput = \"" d $1 "\""}' | split -l 500 - "$IT_DIR/copy-urls."
ls "$IT_DIR"/copy-urls.* | timeout 900 xargs -P 8 -I{} curl -s --max-time 600 -K {} ||
    die "copying the answers for nginx failed"
nginx_static "$NGS" || die "cannot start nginx"
NGS_URL=$N_URL NGS_PID=$N_PID
cmp -s <(curl -s "$NGS_URL/images/python/s$SCALE_N") <(curl -s "$SCALE_URL/images/python/s$SCALE_N") ||
    die "nginx's copy of an answer differs"
for r in $(seq 1 "$SCALE_RUNS"); do
    BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s wrk_once sc-mix "$SCALE_URL/" "$LUA/random.lua"
    wrk_once sc-one "$SCALE_URL/images/python/s1"
    # the same image through the mix's script: wrk's Lua request() shares the
    # 2 cores with the daemon, so this is the like-for-like one-image figure
    BENCH_N=1 BENCH_PREFIX=/images/python/s wrk_once sc-one-lua "$SCALE_URL/" "$LUA/random.lua"
    BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s wrk_once ng-mix "$NGS_URL/" "$LUA/random.lua"
    BENCH_N=1 BENCH_PREFIX=/images/python/s wrk_once ng-one-lua "$NGS_URL/" "$LUA/random.lua"
done
stop "$NGS_PID"
# BENCH_PERF=1: after the measured runs, `perf record -g` of the daemon during
# one more mix run and one more one-image run; perf-sc-mix.txt and
# perf-sc-one.txt (perf report) stay in the raw outputs (BENCH_KEEP=1). No
# figure comes from these runs.
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s PERF_PID=$SCALE_PID \
        perf_run sc-mix "$SCALE_URL/" "$LUA/random.lua"
    BENCH_N=1 BENCH_PREFIX=/images/python/s PERF_PID=$SCALE_PID \
        perf_run sc-one "$SCALE_URL/" "$LUA/random.lua"
fi
SCALE_HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SCALE_PID/status")
SCALE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$SCALE_PID/status")
# metric NAME: its value in the scale daemon's /metrics (the answers file's share)
curl -s "$SCALE_URL/metrics" >"$IT_DIR/scale.metrics"
metric() { awk -v n="$1" '$1 == n {print $2}' "$IT_DIR/scale.metrics"; }
AF_HITS=$(metric imgmeta_answer_file_hits_total) AF_ENTRIES=$(metric imgmeta_answer_file_entries)
AF_BYTES=$(metric imgmeta_answer_file_bytes)
stop "$SCALE_PID"
SCALE_DBB=$(db_bytes "$SCALE_DB")
# Pinned: the same database in a daemon on CPU PIN_SRV (its defaults: one HTTP
# thread), wrk -t1 on CPU PIN_WRK, so that wrk's Lua does not take the
# daemon's CPU time. One unmeasured mix run first brings the answers from the
# database's rendered rows into the new daemon's LRU and answers file.
if [ -z "$PIN_SKIP" ]; then
    log "3c. scale, pinned: server on CPU $PIN_SRV, wrk -t1 on CPU $PIN_WRK x $SCALE_RUNS"
    D_DB_FROM=$SCALE_DB D_CPU=$PIN_SRV daemon scale-pin "$REGISTRY_URL" --tag-ttl 3600 ||
        die "cannot start imgmeta on CPU $PIN_SRV"
    # nginx with one worker on the same CPU, serving section 3's copies of the
    # answers: what the same mix costs a static server pinned alike
    mkdir -p "$IT_DIR/nginx-scale-pin"
    ln -sfn "$NGS/html" "$IT_DIR/nginx-scale-pin/html"
    nginx_static "$IT_DIR/nginx-scale-pin" 1 "$PIN_SRV" || die "cannot start nginx on CPU $PIN_SRV"
    BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
        wrk_run pin-sc-warmup "$D_URL/" "$LUA/random.lua" >/dev/null
    for r in $(seq 1 "$SCALE_RUNS"); do
        BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
            wrk_once pin-sc-mix "$D_URL/" "$LUA/random.lua"
        WRK_T=1 WRK_CPU=$PIN_WRK wrk_once pin-sc-one "$D_URL/images/python/s1"
        BENCH_N=1 BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
            wrk_once pin-sc-one-lua "$D_URL/" "$LUA/random.lua"
        BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
            wrk_once pin-ng-mix "$N_URL/" "$LUA/random.lua"
        BENCH_N=1 BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
            wrk_once pin-ng-one-lua "$N_URL/" "$LUA/random.lua"
    done
    stop "$N_PID"
    PIN_SC_HWM=$(awk '/VmHWM/ {print $2}' "/proc/$D_PID/status")
    # answers that were not served from the cache (must be 0: all fresh)
    PIN_SC_UP=$(curl -s "$D_URL/metrics" | awk '/^imgmeta_cache_lookups_total\{outcome="(miss|stale|revalidated)"\}/ {s += $2} END {print s + 0}')
    stop "$D_PID"
fi
if [ -z "${DB_ONE:-}" ]; then # section 1 did not run: one 7-platform image alone
    daemon one "$NF_URL" || die "cannot start imgmeta"
    cold_once "$D_URL/images/python/3.7-slim" >/dev/null || die "cold request failed"
    stop "$D_PID"
    DB_ONE=$(db_bytes "$D_DB")
fi
# The marginal cost of a multi-platform image: SCALE_LISTS distinct 7-platform
# images (each platform's config made distinct, as in single mode) in a database
# of their own, each asked once as JSON.
LISTS_DBB=0 LISTS_OK=0
if [ "$SCALE_LISTS" -gt 0 ]; then
    log "3b. scale: $SCALE_LISTS distinct 7-platform images"
    "$BUILD/bench-fill" --storage "$STORAGE" --repo library/python --list "$LIST_DIGEST" \
        --mode list --count "$SCALE_LISTS" --prefix l >/dev/null || die "bench-fill failed"
    daemon lists "$REGISTRY_URL" || die "cannot start imgmeta"
    resolve_all "$D_URL" l "$SCALE_LISTS"
    LISTS_OK=$RESOLVE_OK
    stop "$D_PID"
    LISTS_DBB=$(db_bytes "$D_DB")
fi
fi

# === A/B of two builds, or CPU per answer (BENCH_ONLY=ab or cost only) ========
# filled_db NAME: SCALE_N single-platform images written into the registry
# (bench-fill) and resolved once by a daemon NAME, then stopped: its database,
# D_DB, holds them all for daemons started on copies of it (D_DB_FROM).
filled_db() {
    "$BUILD/bench-fill" --storage "$IT_DIR/registry/storage" --repo library/python \
        --list "$LIST_DIGEST" --mode single --count "$SCALE_N" --prefix s >/dev/null ||
        die "bench-fill failed"
    daemon "$1" "$REGISTRY_URL" --tag-ttl 3600 || die "cannot start imgmeta"
    resolve_all "$D_URL" s "$SCALE_N"
    stop "$D_PID"
}
case ,${BENCH_ONLY:-all}, in
*,ab,*)
    . "$SRC/bench/ab.sh"
    exit 0
    ;;
*,cost,*)
    . "$SRC/bench/cost.sh"
    exit 0
    ;;
*,watch,*)
    . "$SRC/bench/watch.sh"
    exit 0
    ;;
esac

# === 4. upstream economy ======================================================
if want economy; then
log "4. upstream economy"
# Revalidation after the TTL: --tag-ttl 1, one cold request, then again at 1.5 s.
: >"$IT_DIR/reval.reqs"
for i in 1 2 3; do
    daemon "reval$i" "$DF_URL" --tag-ttl 1 || die "cannot start imgmeta"
    n0=$(wc -l <"$DF_LOG")
    cold_once "$D_URL/images/python/3.7-slim" >/dev/null || die "cold request failed"
    # without section 1, the cold resolutions here give its request count
    [ -n "${COLD_REQS:-}" ] || [ "$i" != 1 ] || COLD_REQS=$(($(wc -l <"$DF_LOG") - n0))
    sleep 1.5
    n0=$(wc -l <"$DF_LOG")
    cold_once "$D_URL/images/python/3.7-slim" >"$IT_DIR/reval$i.ms" || die "revalidation failed"
    n1=$(wc -l <"$DF_LOG")
    echo $((n1 - n0)) >>"$IT_DIR/reval.reqs"
    [ "$i" = 1 ] && sed -n "$((n0 + 1)),${n1}p" "$DF_LOG" >"$IT_DIR/reval-requests.log"
    stop "$D_PID"
done
REVAL_REQS=$(median <"$IT_DIR/reval.reqs")
REVAL_MS=$(cat "$IT_DIR"/reval?.ms | median)
REVAL_KINDS=$(kinds "$IT_DIR/reval-requests.log")
COLD_KINDS=$(kinds "$IT_DIR/cold-requests.log")

# N concurrent cold requests for one reference.
daemon conc "$DF_URL" || die "cannot start imgmeta"
n0=$(wc -l <"$DF_LOG")
t0=$(now_ms)
CPIDS=""
for i in $(seq 1 "$CONCURRENT"); do
    curl -s -o "$IT_DIR/conc.body.$i" -w '%{http_code}\n' --max-time 60 \
        "$D_URL/images/python/3.7-slim" >"$IT_DIR/conc.code.$i" &
    CPIDS="$CPIDS $!"
done
for p in $CPIDS; do wait "$p"; done
cat "$IT_DIR"/conc.code.* >"$IT_DIR/conc.codes"
CONC_MS=$(($(now_ms) - t0))
CONC_REQS=$(($(wc -l <"$DF_LOG") - n0))
CONC_OK=$(grep -c '^200$' "$IT_DIR/conc.codes")
CONC_MISS=$(grep -c 'cache=miss' "$IT_DIR/conc.log")
CONC_COAL=$(grep -c 'cache=coalesced' "$IT_DIR/conc.log")
stop "$D_PID"
fi

# === 5. replicas on PostgreSQL ===================================================
if want replicas; then
log "5. replicas: PostgreSQL vs SQLite"
REP_T0=$(date +%s) REP_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
. "$SRC/tests/integration/pg.sh"
. "$SRC/tests/integration/nginx.sh"
pg_start "$IT_DIR/pg" || die "cannot start PostgreSQL"
# pg_db NAME: a fresh database NAME in the cluster; prints its URI for --db.
pg_db() {
    PGOPTIONS='-c client_min_messages=warning' pg_psql_db postgres \
        "DROP DATABASE IF EXISTS $1" "CREATE DATABASE $1 OWNER \"$PG_USER\"" || return 1
    echo "postgresql:///$1?host=$PG_DIR&port=$PG_PORT"
}
# Warm: one daemon on SQLite, one on PostgreSQL, both with their defaults,
# each asked once for the image (through the no-delay front), then wrk on the
# JSON answer of each in turn, as section 2's shared-core JSON row.
daemon rep-sq "$NF_URL" || die "cannot start imgmeta on SQLite"
RSQ_PID=$D_PID RSQ_URL=$D_URL
uri=$(pg_db rep_warm) || die "cannot make a PostgreSQL database"
D_DB_URI=$uri daemon rep-pg "$NF_URL" || die "cannot start imgmeta on PostgreSQL"
RPG_PID=$D_PID RPG_URL=$D_URL
J_PATH=/images/python/3.7-slim
cold_once "$RSQ_URL$J_PATH" >/dev/null || die "cold request failed (SQLite)"
cold_once "$RPG_URL$J_PATH" >/dev/null || die "cold request failed (PostgreSQL)"
cmp -s <(curl -s "$RSQ_URL$J_PATH") <(curl -s "$RPG_URL$J_PATH") ||
    die "the two daemons' JSON answers differ"
for r in $(seq 1 "$WRK_RUNS"); do # interleaved, so drift hits both alike
    wrk_once rep-sq-json "$RSQ_URL$J_PATH"
    wrk_once rep-pg-json "$RPG_URL$J_PATH"
done
RPG_HITS=$(grep -c 'cache=hit' "$IT_DIR/rep-pg.log")
stop "$RPG_PID"
stop "$RSQ_PID"

# Cold: a fresh daemon on a fresh database (a new SQLite file, a new
# PostgreSQL database) per run, one request, as section 1's first row and its
# D = 0 row, alternating the two stores within each round.
for f in rep-sq rep-pg rep-sq0 rep-pg0; do : >"$IT_DIR/$f.ms"; done
: >"$IT_DIR/rep-sq.reqs"
: >"$IT_DIR/rep-pg.reqs"
for i in $(seq 1 "$COLD_RUNS"); do
    for store in sq pg; do
        for d in "" 0; do
            if [ -n "$d" ]; then up=$NF_URL; else up=$DF_URL; fi
            uri=""
            [ "$store" = pg ] && { uri=$(pg_db "rep_cold$d") || die "cannot make a PostgreSQL database"; }
            D_DB_URI=$uri daemon "rep-cold-$store$d-$i" "$up" || die "cannot start imgmeta ($store)"
            n0=$(wc -l <"$DF_LOG")
            cold_once "$D_URL$J_PATH" >>"$IT_DIR/rep-$store$d.ms" || die "cold request failed ($store)"
            [ -n "$d" ] || echo $(($(wc -l <"$DF_LOG") - n0)) >>"$IT_DIR/rep-$store.reqs"
            stop "$D_PID"
        done
    done
done
REP_SQ_MS=$(median <"$IT_DIR/rep-sq.ms") REP_PG_MS=$(median <"$IT_DIR/rep-pg.ms")
REP_SQ0_MS=$(median <"$IT_DIR/rep-sq0.ms") REP_PG0_MS=$(median <"$IT_DIR/rep-pg0.ms")
REP_SQ_REQS=$(median <"$IT_DIR/rep-sq.reqs") REP_PG_REQS=$(median <"$IT_DIR/rep-pg.reqs")

# The fleet: 3 replicas on one fresh PostgreSQL database behind nginx (round
# robin, tests/integration/nginx.sh), 3 x CONCURRENT requests for one
# reference at once through the 25 ms front. One resolution's worth first:
# a replica alone on a fresh database, asked once. Each start's probe
# (--prewarm, GET /v2/) is over before counting begins.
uri=$(pg_db rep_solo) || die "cannot make a PostgreSQL database"
D_DB_URI=$uri daemon rep-solo "$DF_URL" || die "cannot start imgmeta on PostgreSQL"
sleep 0.5
n0=$(wc -l <"$DF_LOG")
SOLO_MS=$(cold_once "$D_URL$J_PATH") || die "cold request failed (solo)"
SOLO_REQS=$(($(wc -l <"$DF_LOG") - n0))
stop "$D_PID"
uri=$(pg_db rep_fleet) || die "cannot make a PostgreSQL database"
FLEET_PIDS="" FLEET_PORTS=""
for k in 1 2 3; do
    D_DB_URI=$uri daemon "rep-fleet$k" "$DF_URL" || die "cannot start replica $k"
    FLEET_PIDS="$FLEET_PIDS $D_PID" FLEET_PORTS="$FLEET_PORTS ${D_URL##*:}"
done
nginx_start "$IT_DIR/rep-nginx" $FLEET_PORTS || die "cannot start nginx before the replicas"
FLEET_N=$((3 * CONCURRENT))
seq 1 "$FLEET_N" | awk -v u="$NGINX_URL$J_PATH" -v d="$IT_DIR/fleet.body." \
    '{print "url = \"" u "\"\noutput = \"" d $1 "\""}' >"$IT_DIR/fleet.curl"
sleep 0.5
n0=$(wc -l <"$DF_LOG")
t0=$(now_ms)
# one curl, FLEET_N transfers at once (--parallel): no process start per request
nginx_curl -sS --no-progress-meter -Z --parallel-immediate --parallel-max "$FLEET_N" --max-time 60 \
    -K "$IT_DIR/fleet.curl" -w '%{http_code}\n' >"$IT_DIR/fleet.codes"
FLEET_MS=$(($(now_ms) - t0))
FLEET_REQS=$(($(wc -l <"$DF_LOG") - n0))
FLEET_OK=$(grep -c '^200$' "$IT_DIR/fleet.codes")
FLEET_SAME=$(sha256sum "$IT_DIR"/fleet.body.* | awk '{print $1}' | sort | uniq -c | sort -rn | awk 'NR == 1 {print $1}')
FLEET_SPREAD=$(awk '{print $1}' "$NGINX_LOG" | sort | uniq -c | awk '{print $1}' | paste -sd/ -)
FLEET_MISS=$(cat "$IT_DIR"/rep-fleet?.log | grep -c 'cache=miss')
FLEET_COAL=$(cat "$IT_DIR"/rep-fleet?.log | grep -c 'cache=coalesced')
FLEET_HIT=$(cat "$IT_DIR"/rep-fleet?.log | grep -c 'cache=hit')
nginx_stop
for p in $FLEET_PIDS; do stop "$p"; done
pg_stop
REP_S=$(($(date +%s) - REP_T0)) REP_LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
fi

# A new tag rebuilt on the layers of a cached image (section 1's running
# daemon): its manifests and configs are new, its layers known.
NEWTAG_ROW=""
if [ -s "$IT_DIR/cold-tag-requests.log" ]; then
    NEWTAG_REQS=$(wc -l <"$IT_DIR/cold-tag-requests.log" | tr -d ' ')
    NEWTAG_ROW="| a new tag rebuilt on the layers of a cached image (section 1, running daemon) | $NEWTAG_REQS: $(kinds "$IT_DIR/cold-tag-requests.log") | 22 (list, 7 manifests, 7 configs + their 7 CDN hops; no layer is asked again) | $(yes_no "$NEWTAG_REQS <= 22") |"
fi

# === report ===================================================================
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(($(date +%s) - T_START))
pct() { calc "100 * $1 / $2" 0; }
# pair_stats A B: the runs of series A against those of B round by round (the
# two runs of a round are minutes apart at most, so the machine's slower drift
# cancels out of their ratio): sets PAIR_MED, the median of the per-round
# ratios in percent, and PAIR_TXT, "M% (a–b%)" with their range.
pair_stats() {
    local r lo hi
    r=$(paste -d' ' "$IT_DIR/series-$1" "$IT_DIR/series-$2" | awk '{print 100 * $1 / $(1 + NF / 2)}')
    PAIR_MED=$(echo "$r" | median)
    lo=$(echo "$r" | sort -g | head -1) hi=$(echo "$r" | sort -g | tail -1)
    PAIR_TXT="$(calc "$PAIR_MED" 0)% ($(calc "$lo" 0)–$(calc "$hi" 0)%)"
}
# pair A B: PAIR_TXT of A against B.
pair() { pair_stats "$1" "$2"; echo "$PAIR_TXT"; }
# ratio_cell A B: the cell of a "within 20%" row: A's runs against B's, round
# by round (the verdict), and the ratio of their medians.
ratio_cell() {
    pair_stats "$1" "$2"
    echo "$PAIR_TXT per round ($(yes_no "$PAIR_MED >= 80")); medians: $(pct "$(col "$1" 1)" "$(col "$2" 1)")%"
}
want warm && { IJ=$(col im-json 1) I3=$(col im-304 1) N3=$(col ng-304 1); }
# warm_row LABEL BYTES IM NG: a row of a warm table from the series IM and NG
# (req/s and p99 against the targets).
warm_row() {
    local i n ip
    i=$(col "$3" 1) n=$(col "$4" 1) ip=$(col "$3" 2)
    echo "| $1 | $2 | **$i** | $n | $(pct "$i" "$n")% ($(yes_no "$i >= 0.5 * $n")) | $ip ms ($(yes_no "$ip < 5")) | $(col "$4" 2) ms |"
}
# pin_report: the pinned part of section 2 (Markdown).
pin_report() {
    if [ -n "${PIN_SKIP:-}" ]; then
        printf '### Server on one CPU, wrk on another\n\nSkipped: %s.\n' "$PIN_SKIP"
        return
    fi
    cat <<EOF
### Server on CPU $PIN_SRV, wrk on CPU $PIN_WRK: \`taskset -c $PIN_WRK wrk -t1 -c$WRK_C -d${WRK_S}s --latency\`

The same answers from a second imgmeta daemon started as \`taskset -c $PIN_SRV imgmeta serve\` with
its defaults (affinity $PIN_MASK: its start line says threads=$PIN_THREADS), and a second nginx under
\`taskset -c $PIN_SRV\` with \`worker_processes 1\`: both on CPU $PIN_SRV, only the one under load busy, interleaved as above.
Both configurations are shown because on shared cores the tail includes the load
generator's competition for the server's cores, while pinned it is the server's own latency
with one core each, the usual way to keep a load generator apart on one host.

| answer | bytes | imgmeta req/s | nginx req/s | imgmeta / nginx (target ≥ 50%) | imgmeta p99 (target < 5 ms) | nginx p99 |
|---|---|---|---|---|---|---|
$(warm_row "JSON, full" "$(stat -c %s "$PIN_HTML/3.7-slim.json")" pin-im-json pin-ng-json)
$(warm_row Markdown "$(stat -c %s "$PIN_HTML/3.7-slim.md")" pin-im-md pin-ng-md)

Responses other than 2xx/3xx or socket errors over the pinned runs: imgmeta $(($(bad pin-im-json) + $(bad pin-im-md))), nginx $(($(bad pin-ng-json) + $(bad pin-ng-md))).
EOF
}
want scale && { SM=$(col sc-mix 1) SO=$(col sc-one 1) SL=$(col sc-one-lua 1)
    NGM=$(col ng-mix 1) NGL=$(col ng-one-lua 1); }
pin_scale_note() {
    [ -z "${PIN_SKIP:-}" ] || { printf '\nPinned scale runs skipped: %s.\n' "$PIN_SKIP"; return 0; }
    cat <<EOF

The pinned rows: on CPU $PIN_SRV, a second daemon (its defaults: one HTTP thread) opened a copy of
the scale database after the first stopped, and one unmeasured mix run of ${WRK_S} s brought the
answers from its rendered rows into its LRU and answers file; wrk ran alone on CPU $PIN_WRK, so
its Lua \`request()\` no longer takes the daemon's CPU time, which the shared-core rows above
cannot separate. nginx ran pinned alike (one worker on CPU $PIN_SRV, the same files as above),
interleaved with the daemon's runs. Answers it did not serve from its cache (miss, stale, revalidated):
${PIN_SC_UP:-?}; its VmHWM $(calc "${PIN_SC_HWM:-0} / 1024" 1) MiB.
EOF
}
# pin_scale_rows: section 3's rows for the pinned daemon (none when skipped).
pin_scale_rows() {
    [ -z "${PIN_SKIP:-}" ] || return 0
    local m o l
    m=$(col pin-sc-mix 1) o=$(col pin-sc-one 1) l=$(col pin-sc-one-lua 1)
    cat <<EOF
| pinned (daemon on CPU $PIN_SRV, \`taskset -c $PIN_WRK wrk -t1\`): random mix of $SCALE_N images | **$m** (p99 $(col pin-sc-mix 2) ms) | ≥ 80% of one image | $(ratio_cell pin-sc-mix pin-sc-one) |
| pinned: one image | $o (p99 $(col pin-sc-one 2) ms) | | |
| pinned: one image through the mix's wrk script (N = 1) | $l (p99 $(col pin-sc-one-lua 2) ms) | mix ≥ 80% of it | mix at $(ratio_cell pin-sc-mix pin-sc-one-lua) |
| pinned nginx (1 worker on CPU $PIN_SRV): the same $SCALE_N answers as static files, random mix | $(col pin-ng-mix 1) (p99 $(col pin-ng-mix 2) ms) | | $(pair pin-ng-mix pin-ng-one-lua) of nginx's one file through the same script, per round |
| pinned nginx: one of those files through the mix's wrk script (N = 1) | $(col pin-ng-one-lua 1) (p99 $(col pin-ng-one-lua 2) ms) | | imgmeta's mix at $(pair pin-sc-mix pin-ng-mix) of nginx's mix |
EOF
}
# rep_report: section 5 (Markdown).
rep_report() {
    local q p
    q=$(col rep-sq-json 1) p=$(col rep-pg-json 1)
    pair_stats rep-pg-json rep-sq-json
    cat <<EOF
## 5. Replicas on one PostgreSQL database

Measured on $(date -u '+%Y-%m-%d %H:%M UTC'), tree \`$GIT\`, in ${REP_S} s (load average before
$REP_LOAD_BEFORE, after $REP_LOAD_AFTER); \`BENCH_ONLY=replicas make bench\` runs this section alone
and rewrites only it. PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') is a private cluster on
these cores (tests/integration/pg.sh: Unix socket, \`fsync = off\`), each daemon's \`--db\` a
\`postgresql:///NAME?host=DIR&port=N\` URI; beside it the same daemon on an SQLite file. Both run
with their defaults (the PostgreSQL one has no answers file, which one image does not reach: both
answer it from their in-memory LRU).

Warm: one daemon on each store, both running, each asked once for python:3.7-slim through
the front without delay, then \`wrk -t${WRK_T:-2} -c$WRK_C -d${WRK_S}s --latency\` on each one's JSON answer in
turn ($WRK_RUNS rounds; section 2's shared-core JSON row). Cold: a fresh daemon on a fresh database (a new
file, a new PostgreSQL database) per run, its first request timed as in section 1, both stores
in each of $COLD_RUNS rounds.

| measurement | SQLite | PostgreSQL | PostgreSQL / SQLite | target |
|---|---|---|---|---|
| warm JSON req/s, one daemon each | $q (p99 $(col rep-sq-json 2) ms) | **$p** (p99 $(col rep-pg-json 2) ms) | $PAIR_TXT per round; medians $(pct "$p" "$q")% | ≥ 90% ($(yes_no "$PAIR_MED >= 90")) |
| cold: first request of a fresh daemon, D = $DELAY_MS ms | $REP_SQ_MS ms | **$REP_PG_MS ms** | $(ratio "$REP_PG_MS" "$REP_SQ_MS") × | |
| cold: the same, D = 0 (local cost only) | $REP_SQ0_MS ms | **$REP_PG0_MS ms** | $(ratio "$REP_PG0_MS" "$REP_SQ0_MS") × | |
| upstream requests of one cold resolution | $REP_SQ_REQS | $REP_PG_REQS | | equal ($(yes_no "$REP_PG_REQS == $REP_SQ_REQS")) |

Responses other than 2xx/3xx or socket errors in the warm runs: SQLite $(bad rep-sq-json),
PostgreSQL $(bad rep-pg-json); the PostgreSQL daemon logged $RPG_HITS answers as cache=hit.

Three replicas on one fresh PostgreSQL database, through the $DELAY_MS ms front, behind nginx
(tests/integration/nginx.sh: round robin, one process), asked $FLEET_N times at once for one
reference (\`curl --parallel\`, one connection per request; each replica got $FLEET_SPREAD). One
resolution's worth is measured first: one replica alone on a fresh database, asked once
($SOLO_MS ms).

| measurement | upstream requests | target | |
|---|---|---|---|
| one replica alone, one cold request | $SOLO_REQS | | |
| 3 replicas, $FLEET_N concurrent cold requests for one reference | **$FLEET_REQS** ($(calc "$FLEET_REQS / $SOLO_REQS" 2) resolutions) | $SOLO_REQS (one resolution) | $(yes_no "$FLEET_REQS == $SOLO_REQS") |

$FLEET_OK of $FLEET_N answered 200 ($FLEET_SAME of them byte for byte the same answer), the
last **$FLEET_MS ms** after they were sent (one resolution alone: $SOLO_MS ms); the replicas
logged $FLEET_MISS as cache=miss, $FLEET_COAL as cache=coalesced and $FLEET_HIT as cache=hit.
EOF
}
# gz_row LABEL FILE IM NG: a row of section 6: bytes, req/s, and the ratio of
# the rounds against the target.
gz_row() {
    pair_stats "$3" "$4"
    echo "| $1 | $(stat -c %s "$GZ_HTML/$2") | **$(col "$3" 1)** (p99 $(col "$3" 2) ms) | $(col "$4" 1) (p99 $(col "$4" 2) ms) | $PAIR_TXT ($(yes_no "$PAIR_MED >= 90")) | $(cpu_med "$3") / $(cpu_med "$4") |"
}
# gz_report: section 6 (Markdown).
gz_report() {
    cat <<EOF
## 6. Compressed answers

Measured on $(date -u '+%Y-%m-%d %H:%M UTC'), tree \`$GIT\`; \`BENCH_ONLY=gzip make bench\` runs this
section alone and rewrites only it (load average before $LOAD_BEFORE, after $LOAD_AFTER: on
a shared machine the rounds' range shows the noise). One imgmeta daemon with its defaults but its access
log through a 64 KiB buffer (\`--access-log-buffer 65536\`), and nginx at its best
for static files (sendfile, \`open_file_cache\`, the access log through a 64 KiB buffer, keep-alive
without a request limit, \`gzip_static on\`), both on these shared cores and both logging every
request (imgmeta $GZ_LOGGED access lines, nginx $GZ_N_LOGGED). nginx serves imgmeta's own answers as
files: \`3.7-slim.json\` and \`3.7-slim.md\` as fetched plain, and beside them \`.gz\` files fetched with
\`Accept-Encoding: gzip\` (checked to inflate to the plain bytes; each server's answer checked to
be the other's byte for byte, with the same \`Content-Encoding\`, before the runs). \`wrk -t${WRK_T:-2}
-c$WRK_C -d${WRK_S}s --latency\` (with \`-H 'Accept-Encoding: gzip'\` for the gzip rows), $GZ_RUNS
rounds (\`GZ_RUNS\`), the eight runs of a round interleaved; the ratio is imgmeta's req/s over
nginx's, the median of the rounds (range in brackets). The last column is what each server's
processes spent per answer (CPU time of all their threads, imgmeta's daemon or nginx's master
and workers, over the answers wrk counted; median of the rounds): the cores are shared with
wrk, so the server that spends less per answer answers more of them, and this figure moves
less than req/s with what else the machine runs.

| answer | bytes | imgmeta req/s | nginx req/s | imgmeta / nginx (target ≥ 90%) | CPU µs per answer, imgmeta / nginx |
|---|---|---|---|---|---|
$(gz_row "JSON, plain" 3.7-slim.json gz-im-json gz-ng-json)
$(gz_row "JSON, gzip" 3.7-slim.json.gz gz-im-jsongz gz-ng-jsongz)
$(gz_row "Markdown, plain" 3.7-slim.md gz-im-md gz-ng-md)
$(gz_row "Markdown, gzip" 3.7-slim.md.gz gz-im-mdgz gz-ng-mdgz)

Responses other than 2xx/3xx or socket errors: imgmeta $(($(bad gz-im-json) + $(bad gz-im-jsongz) + $(bad gz-im-md) + $(bad gz-im-mdgz))), nginx $(($(bad gz-ng-json) + $(bad gz-ng-jsongz) + $(bad gz-ng-md) + $(bad gz-ng-mdgz))).
EOF
}
GIT=$(cd "$SRC" && git rev-parse --short HEAD 2>/dev/null)$(cd "$SRC" && git diff --quiet HEAD -- . ':!BENCHMARKS.md' 2>/dev/null || echo "+changes")

{
cat <<EOF
# Benchmarks

Written by \`make bench\` (bench/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); tree \`$GIT\`;
the whole run took ${T_TOTAL} s. Figures are medians (cold: $COLD_RUNS runs; wrk: $WRK_RUNS
runs of ${WRK_S} s, interleaved with nginx; section 3: $SCALE_RUNS rounds). Re-run with:

\`\`\`console
$ make bench          # = cmake/install-deps.sh bench; Release build in build-bench; bench/bench.sh build-bench
$ DELAY_MS=$DELAY_MS COLD_RUNS=$COLD_RUNS WRK_RUNS=$WRK_RUNS GZ_RUNS=$GZ_RUNS WRK_S=$WRK_S SCALE_N=$SCALE_N SCALE_RUNS=$SCALE_RUNS make bench   # the knobs, with these defaults
\`\`\`

Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1),
Linux $(uname -r); load average before $LOAD_BEFORE, after $LOAD_AFTER (the machine is shared:
other builds and test suites may run at the same time, so treat differences under ~15% as noise).
Everything runs on loopback on these cores: the load generator (wrk) competes with the server
for them, for imgmeta and nginx alike.
EOF
want cold && cat <<EOF

$(cold_report)
EOF
want warm && cat <<EOF

## 2. Warm answers (fresh in cache)

nginx (Debian nginx-light $(nginx -v 2>&1 | sed 's/.*\///'), sendfile, access log on,
keep-alive unlimited) serves the exact bytes imgmeta answers, as static files.
imgmeta runs with its defaults (one HTTP worker thread per CPU it may run on, access log on at info, to a file).

### Shared cores: servers and \`wrk -t2 -c$WRK_C -d${WRK_S}s --latency\` on all $(nproc) CPUs

nginx with \`worker_processes auto\` = $(nproc) workers; imgmeta with $WARM_THREADS HTTP threads (its start line).

| answer | bytes | imgmeta req/s | nginx req/s | imgmeta / nginx (target ≥ 50%) | imgmeta p99 (target < 5 ms) | nginx p99 |
|---|---|---|---|---|---|---|
$(warm_row "JSON, full" "$J_BYTES" im-json ng-json)
$(warm_row Markdown "$M_BYTES" im-md ng-md)
| 304 (If-None-Match, JSON) | 0 | **$I3** | $N3 | $(pct "$I3" "$N3")% | $(col im-304 2) ms | $(col ng-304 2) ms |

304 revalidation vs a warm JSON answer: $(ratio "$I3" "$IJ") × the requests/s (target ≥ 1: $(yes_no "$I3 >= $IJ")).
Responses other than 2xx/3xx or socket errors over all runs: imgmeta $(($(bad im-json) + $(bad im-md) + $(bad im-304))), nginx $(($(bad ng-json) + $(bad ng-md) + $(bad ng-304))).
Daemon memory after the warm runs: $WARM_RSS

$(pin_report)
EOF
want scale && cat <<EOF

## 3. Scale: $SCALE_N distinct cached images

\`bench-fill\` (bench/fill.c) writes $SCALE_N distinct single-platform images into the
registry's storage in ${FILL_REG_MS} ms: each is the fixture's linux/amd64 manifest with its own
config (the original config plus a member \`"imgmeta_bench": N\`, so its own config digest and
manifest digest); the layers are shared, as base layers are. The daemon (pointed straight at the
registry, no delay) then resolves each once: $FILL_OK of $SCALE_N answered 200 in
$(calc "$FILL_MS / 1000" 1) s (8 clients; $(calc "$SCALE_N * 1000 / $FILL_MS" 0) cold resolutions/s). wrk then asks for a random one of them per request
(bench/lua/random.lua), interleaved with runs on a single image of the same daemon, in
$SCALE_RUNS rounds. A round's runs follow each other within a minute, while the machine's
speed drifts by more than 15% over a whole run: the verdict on a "within 20%" target is the
median of the $SCALE_RUNS per-round ratios (their range in brackets), and the ratio of the
medians is given beside it.
The daemon's in-memory LRU (\`--answer-cache-bytes\`, 16 MiB) holds some 1,800 of these
answers; the others come from the answers file (\`--answer-file-bytes\`, an unlinked file
next to the database whose answers are sent with \`sendfile\` from the kernel's page cache,
which is not the daemon's RSS; one in 16 is read instead, to move up into the LRU): at the end it indexed ${AF_ENTRIES:-?} answers in ${AF_BYTES:-?} bytes and
had served ${AF_HITS:-?} answers. nginx (as in section 2) serves the same $SCALE_N answers, the
bytes the daemon gives, as static files, with the same script, interleaved with the
daemon's runs: what a random mix over $SCALE_N answers costs a static server on these
cores (page-cache reads of ~95 MB instead of one hot file).

| measurement | value | target | |
|---|---|---|---|
| warm JSON req/s, random mix of $SCALE_N images | **$SM** (p99 $(col sc-mix 2) ms) | ≥ 80% of one image | $(ratio_cell sc-mix sc-one) |
| warm JSON req/s, one image (same daemon) | $SO (p99 $(col sc-one 2) ms) | | |
| warm JSON req/s, one image through the mix's wrk script (random.lua, N = 1) | $SL (p99 $(col sc-one-lua 2) ms) | mix ≥ 80% of it | mix at $(ratio_cell sc-mix sc-one-lua) |
| nginx, the same $SCALE_N answers as static files, random mix (random.lua) | $NGM (p99 $(col ng-mix 2) ms) | | $(pair ng-mix ng-one-lua) of nginx's one file through the same script, per round |
| nginx, one of those files through the mix's wrk script (N = 1) | $NGL (p99 $(col ng-one-lua 2) ms) | | imgmeta's mix at $(pair sc-mix ng-mix) of nginx's mix |
$(pin_scale_rows)
| daemon RSS: VmHWM / VmRSS at the end | $(calc "$SCALE_HWM / 1024" 1) / $(calc "$SCALE_RSS / 1024" 1) MiB (after the fill: $(calc "$RSS_FILLED / 1024" 1) MiB) | < 64 MiB | $(yes_no "$SCALE_HWM < 65536") |
| database bytes per image, single-platform ($SCALE_N images) | $(calc "($SCALE_DBB - $DB_EMPTY) / $SCALE_N / 1024" 1) KiB ($SCALE_DBB bytes in all) | < 40 KiB | $(yes_no "($SCALE_DBB - $DB_EMPTY) / $SCALE_N < 40960") |
| database bytes, one 7-platform python:3.7-slim | $(calc "($DB_ONE - $DB_EMPTY) / 1024" 1) KiB | (< 40 KiB per image) | $(yes_no "($DB_ONE - $DB_EMPTY) < 40960") |
EOF
want scale && [ "$SCALE_LISTS" -gt 0 ] && cat <<EOF
| database bytes per image, $SCALE_LISTS distinct 7-platform images ($LISTS_OK answered 200) | $(calc "($LISTS_DBB - $DB_EMPTY) / $SCALE_LISTS / 1024" 1) KiB ($LISTS_DBB bytes in all) | < 40 KiB | $(yes_no "($LISTS_DBB - $DB_EMPTY) / $SCALE_LISTS < 40960") |
EOF
want scale && cat <<EOF

Database sizes are the file plus its WAL after the daemon stopped, minus an empty
database ($DB_EMPTY bytes).
$(pin_scale_note)
EOF
want economy && cat <<EOF

## 4. Upstream economy

| measurement | upstream requests | minimum | |
|---|---|---|---|
| one cold resolution (section 1) | $COLD_REQS | | |
| one revalidation after the TTL (\`--tag-ttl 1\`, asked again after 1.5 s; median of 3) | $REVAL_REQS: $REVAL_KINDS | 1 (HEAD of the tag's manifest; the token is still valid) | $(yes_no "$REVAL_REQS <= 1") |
| $CONCURRENT concurrent cold requests for one reference | $CONC_REQS ($(calc "$CONC_REQS / $COLD_REQS" 2) resolutions) | $COLD_REQS (one resolution) | $(yes_no "$CONC_REQS <= $COLD_REQS") |
$NEWTAG_ROW

The revalidation request took $REVAL_MS ms at D = $DELAY_MS. The $CONCURRENT concurrent requests: $CONC_OK answered 200, all within
$CONC_MS ms; the daemon logged $CONC_MISS as cache=miss and $CONC_COAL as cache=coalesced.
EOF
want replicas && cat <<EOF

$(rep_report)
EOF
want gzip && cat <<EOF

$(gz_report)
EOF
} >"$OUT.new"
# only_section N REPORT: for BENCH_ONLY naming that section alone: section N
# replaces its former self in OUT (or is appended to it); the other sections
# and the header stay as they were.
only_section() {
    [ -f "$OUT" ] || return 0
    { awk -v n="## $1. " '/^## / { skip = index($0, n) == 1 } !skip' "$OUT" |
        sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
      echo
      "$2"
    } >"$OUT.new"
}
case ${BENCH_ONLY:-all} in
replicas) only_section 5 rep_report ;;
gzip) only_section 6 gz_report ;;
esac
mv "$OUT.new" "$OUT"
log "wrote $OUT in ${T_TOTAL} s"
keep_raw
