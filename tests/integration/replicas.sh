#!/usr/bin/env bash
# replicas.sh IMGMETA FIXTURE REGFRONT - three imgmeta replicas sharing one
# PostgreSQL cache behind nginx (ctest "integration.replicas"), against
# docker-registry + imgmeta-fixture + two regfronts (their request logs are
# the upstream's view): docker.io through a fast front, and a registry named
# slow.test through a front that waits SLOW_MS before every answer, so that a
# resolution there takes about a second and requests meet it in flight.
#   (a) 60 concurrent cold requests for one reference through nginx: all 200,
#       byte-identical bodies, every replica answered some, and the fronts saw
#       exactly one resolution's worth of upstream requests (what the same
#       request costs a lone daemon on an empty SQLite cache, measured first)
#   (b) a purge through one replica's admin endpoint: the next request on
#       another replica, well within a second, resolves again (miss, upstream
#       requests)
#   (c) kill -9 of the replica leading a slow resolution, the two others
#       waiting for it: both answer 200 within one resolution plus the
#       upstream timeout after the kill, and resolve it once between them
#   (d) PostgreSQL stopped under load: cached references still 200 on every
#       replica, an uncached one 503 database_unavailable, /readyz 503, no
#       replica dies, /metrics counts the failures (imgmeta_db_*); once it is
#       back (same socket), every replica answers the uncached reference and
#       /readyz 200 within a bounded wait, without a restart
#   (e) imgmeta cache stats|check|gc|purge --db on the shared database while
#       the replicas run: a purge there is seen by every replica (the next
#       request resolves again, once for the fleet)
#   (f) a tag revalidated past its TTL by one replica is fresh for another
#       (nothing upstream)
# Prints "N passed, N failed"; exits 1 when anything failed. About 50 s.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq nginx bc; do
    command -v "$tool" >/dev/null || { echo "replicas: needs $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"
lib_init "$1" "$2" "$3"
T0=$(date +%s)

SLOW_MS=300
REQUEST_TIMEOUT_MS=3000
TOKEN=s3cret
MAN=/v2/library/python/manifests
# what a resolution asks a front: manifests, blobs and their CDN hops (not
# the /v2/ version checks each daemon makes at start)
RESOLVING=' /\(v2\|cdn\)/library/python/'

now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$1" | bc)"; }

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
# A tag of its own for each check that needs a reference nobody asked for.
declare -A WANT
for tv in c:41 d:42 u:43 v:44; do
    t=${tv%:*}
    WANT[$t]=$(IT_OUT=$IT_DIR/fx-$t fill_fixture push-variant --variant "${tv#*:}" --tag "$t" &&
        echo "$LIST_DIGEST") || die "push-variant $t failed"
done

# Two fronts, each with a log of its own: start_front names it
# IT_DIR/front-requests.log, which regfront opens once (append) and keeps
# open, so each is renamed before the next start.
start_front || die "cannot start regfront"
mv "$FRONT_LOG" "$IT_DIR/fast-requests.log"
FAST_URL=$FRONT_URL FAST_LOG=$IT_DIR/fast-requests.log FAST_PID=$FRONT_PID
start_front --delay-ms "$SLOW_MS" || die "cannot start the slow regfront"
mv "$FRONT_LOG" "$IT_DIR/slow-requests.log"
SLOW_URL=$FRONT_URL SLOW_LOG=$IT_DIR/slow-requests.log
FRONT_URL=$FAST_URL FRONT_LOG=$FAST_LOG FRONT_PID=$FAST_PID

# count LOG PATTERN [FROM]: lines of a front's log matching PATTERN (grep
# BRE), after its first FROM lines.
count() { tail -n "+$((${3:-0} + 1))" "$1" 2>/dev/null | grep -c -- "$2"; }
lines() { wc -l <"$1" | tr -d ' '; }

pg_start "$IT_DIR/pg" || die "cannot start PostgreSQL"

DAEMON_OPTS=(--mirror "docker.io=$FRONT_URL" --mirror "slow.test=$SLOW_URL"
    --connect-timeout-ms 500 --request-timeout-ms "$REQUEST_TIMEOUT_MS" --threads 4
    --admin-token "$TOKEN")

# replica N: replica N on the shared database, with its own answers file
# (IT_DIR/rN), its output in IT_DIR/rN-K.log (one file per start); sets
# R_PID[N], R_PORT[N], R_URL[N], R_LOG[N].
declare -a R_PID R_PORT R_URL R_LOG
replica() {
    local n=$1 log
    IT_STARTS=$((IT_STARTS + 1))
    log=$IT_DIR/r$n-$IT_STARTS.log
    mkdir -p "$IT_DIR/r$n"
    : >"$log"
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$PG_URI" --answer-file-dir "$IT_DIR/r$n" \
        "${DAEMON_OPTS[@]}" >"$log" 2>&1 &
    R_PID[n]=$!
    R_LOG[n]=$log
    it_record "$!"
    daemon_ready "$log" "$!" || return 1
    R_PORT[n]=$DAEMON_PORT
    R_URL[n]=$DAEMON_URL
}
for n in 1 2 3; do replica "$n" || die "cannot start replica $n"; done
nginx_start "$IT_DIR/nginx" "${R_PORT[1]}" "${R_PORT[2]}" "${R_PORT[3]}" || die "cannot start nginx"

# get URL NAME: GET into IT_DIR/NAME.body and .headers; prints the status.
get() {
    curl -s -D "$IT_DIR/$2.headers" -o "$IT_DIR/$2.body" -w '%{http_code}' --max-time 30 "$1"
}
header() { tr -d '\r' <"$IT_DIR/$1.headers" | sed -n "s/^$2: //Ip" | head -n 1; }
alive() { kill -0 "$1" 2>/dev/null && echo alive || echo dead; }

# --- (a) 60 concurrent cold requests spread over the replicas -----------------
A_REF=slow.test/library/python/3.7-slim
# One resolution's worth, measured: the same cold request to a lone daemon on
# an empty SQLite cache (the shared database has never seen this registry).
: >"$IT_DIR/solo.log"
"$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/solo.db" "${DAEMON_OPTS[@]}" \
    >"$IT_DIR/solo.log" 2>&1 &
SOLO_PID=$!
it_record "$SOLO_PID"
daemon_ready "$IT_DIR/solo.log" "$SOLO_PID" || die "cannot start the solo daemon"
m=$(lines "$SLOW_LOG")
t=$(now)
code=$(get "$DAEMON_URL/images/$A_REF" solo)
T_SOLO=$(secs "$(now) - $t")
ONE=$(count "$SLOW_LOG" "$RESOLVING" "$m")
ONE_GET=$(count "$SLOW_LOG" "^GET $MAN/3.7-slim " "$m")
kill -TERM "$SOLO_PID"
wait "$SOLO_PID"
it_log "(a) one resolution of $A_REF (lone daemon, empty cache): $code, $ONE upstream requests ($ONE_GET tag GET), ${T_SOLO} s"
[ "$code" = 200 ] && [ "$ONE" -gt 0 ] || die "the solo resolution failed ($code, $ONE requests)"

mkdir -p "$IT_DIR/a"
m=$(lines "$SLOW_LOG")
mf=$(lines "$FRONT_LOG")
t=$(now)
seq 1 60 | xargs -P 60 -I{} curl -s --unix-socket "$NGINX_SOCK" -o "$IT_DIR/a/{}.body" \
    -D "$IT_DIR/a/{}.headers" -w '%{http_code}\n' --max-time 60 "$NGINX_URL/images/$A_REF" \
    >"$IT_DIR/a.codes"
T_A=$(secs "$(now) - $t")
GOT=$(count "$SLOW_LOG" "$RESOLVING" "$m")
GOT_GET=$(count "$SLOW_LOG" "^GET $MAN/3.7-slim " "$m")
it_log "(a) 60 requests in ${T_A} s; upstream: $GOT requests ($GOT_GET tag GETs), one resolution is $ONE"
check_eq "(a) 60 concurrent cold requests through nginx: all 200" \
    "60 x 200" "$(sort "$IT_DIR/a.codes" | uniq -c | awk '{ printf "%s%s x %s", s, $1, $2; s = ", " }')"
check_eq "(a) ... byte-identical bodies (count and md5 of each distinct body)" \
    "60 $(md5sum <"$IT_DIR/a/1.body" | cut -d' ' -f1)" \
    "$(md5sum "$IT_DIR"/a/*.body | cut -d' ' -f1 | sort | uniq -c | awk '{ printf "%s%s %s", s, $1, $2; s = ", " }')"
per="" idle=0
for n in 1 2 3; do
    k=$(grep -c "^127.0.0.1:${R_PORT[n]} .*/images/$A_REF " "$NGINX_LOG")
    per="$per r$n=$k"
    [ "$k" -gt 0 ] || idle=$((idle + 1))
done
check_eq "(a) ... every replica answered some (nginx log:$per)" 0 "$idle"
it_log "(a) X-Imgmeta-Cache: $(cat "$IT_DIR"/a/*.headers | tr -d '\r' | sed -n 's/^X-Imgmeta-Cache: //Ip' |
    sort | uniq -c | awk '{ printf "%s %s; ", $1, $2 }')"
check_eq "(a) ... exactly one resolution upstream (requests to the front; ${GOT_GET} tag GETs)" \
    "$ONE" "$GOT"
check_eq "(a) ... nothing asked of docker.io's front" 0 "$(count "$FRONT_LOG" "$RESOLVING" "$mf")"

# --- (b) a purge through one replica, seen by another -------------------------
# Every replica holds the reference (a hit from its own tiers) before the purge.
hits=""
for n in 2 3; do
    code=$(get "${R_URL[n]}/images/$A_REF" b$n)
    hits="$hits r$n=$code/$(header b$n X-Imgmeta-Cache)"
done
it_log "(b) before the purge:$hits"
code=$(curl -s -o "$IT_DIR/b.purge" -w '%{http_code}' --max-time 10 -X DELETE \
    -H "Authorization: Bearer $TOKEN" "${R_URL[1]}/admin/cache/$A_REF")
t=$(now)
check_eq "(b) DELETE /admin/cache/$A_REF on replica 1: 200, one tag ($(cat "$IT_DIR/b.purge"))" \
    "200 1" "$code $(jq -r .removed.tags "$IT_DIR/b.purge" 2>/dev/null)"
sleep 0.5
m=$(lines "$SLOW_LOG")
dt=$(secs "$(now) - $t")
code=$(get "${R_URL[2]}/images/$A_REF" b)
check_eq "(b) ... replica 2, asked ${dt} s after: 200, resolved again (X-Imgmeta-Cache)" \
    "200 miss" "$code $(header b X-Imgmeta-Cache)"
n_b=$(count "$SLOW_LOG" "$RESOLVING" "$m")
check "(b) ... upstream requests for it ($n_b; $(count "$SLOW_LOG" "^GET $MAN/3.7-slim " "$m") tag GET)" \
    test "$n_b" -gt 0

# --- (c) kill -9 of the replica leading a slow resolution ----------------------
C_REF=slow.test/library/python/c
m=$(lines "$SLOW_LOG")
t=$(now)
curl -s -o /dev/null -w '%{http_code}' --max-time 30 "${R_URL[1]}/images/$C_REF" >"$IT_DIR/c1.code" &
C1=$!
# Replica 1 leads: the others ask once its tag GET is answered (SLOW_MS, so
# about 0.3 s), while the rest of its resolution is still under way.
for _ in $(seq 1 60); do
    [ "$(count "$SLOW_LOG" "^GET $MAN/c " "$m")" -gt 0 ] && break
    sleep 0.05
done
K1=$(count "$SLOW_LOG" "^GET $MAN/c " "$m") # replica 1's own
it_log "(c) replica 1's tag GET answered $(secs "$(now) - $t") s after its request"
t23=$(now)
for n in 2 3; do
    curl -s -o "$IT_DIR/c$n.body" -w '%{http_code} %{time_total}' --max-time 30 \
        "${R_URL[n]}/images/$C_REF" >"$IT_DIR/c$n.code" &
    eval "C$n=\$!"
done
sleep 0.3
check_eq "(c) replica 1 is still resolving when killed, $(secs "$(now) - $t") s after its request (its client waits)" \
    alive "$(alive "$C1")"
kill -KILL "${R_PID[1]}"
tk=$(now)
wait "${R_PID[1]}" 2>/dev/null
wait "$C1" "$C2" "$C3"
BOUND=$(secs "$T_SOLO + $REQUEST_TIMEOUT_MS / 1000")
res=""
worst=0
for n in 2 3; do
    read -r code tt <"$IT_DIR/c$n.code"
    after=$(secs "$t23 + $tt - $tk")
    res="$res r$n=$code/${after}s"
    [ "$(echo "$after > $worst" | bc)" = 1 ] && worst=$after
done
it_log "(c) after the kill -9:$res (bound ${BOUND}s: one resolution ${T_SOLO}s + upstream timeout)"
check_eq "(c) ... replicas 2 and 3 answer 200 ($res after the kill)" "200 200" \
    "$(cut -d' ' -f1 "$IT_DIR/c2.code") $(cut -d' ' -f1 "$IT_DIR/c3.code")"
check "(c) ... within ${BOUND} s of the kill (the slower: ${worst} s)" \
    test "$(echo "$worst <= $BOUND" | bc)" = 1
check_eq "(c) ... the right digest" "${WANT[c]} ${WANT[c]}" \
    "$(jq -r .digest "$IT_DIR/c2.body" 2>/dev/null) $(jq -r .digest "$IT_DIR/c3.body" 2>/dev/null)"
KT=$(count "$SLOW_LOG" "^GET $MAN/c " "$m")
check_eq "(c) ... one more resolution between them (tag GETs: replica 1's $K1 + theirs; upstream requests in all: $(count "$SLOW_LOG" "$RESOLVING" "$m"))" \
    "$((K1 + 1))" "$KT"
replica 1 || die "cannot start a replacement for replica 1"
nginx_stop
nginx_start "$IT_DIR/nginx" "${R_PORT[1]}" "${R_PORT[2]}" "${R_PORT[3]}" || die "cannot restart nginx"

# --- (d) PostgreSQL stopped under load -----------------------------------------
D_REF=python/d U_REF=python/u
primed=""
for n in 1 2 3; do
    for ref in "$D_REF" "$A_REF"; do
        code=$(get "${R_URL[n]}/images/$ref" d)
        primed="$primed $code"
    done
done
check_eq "(d) the cached references asked of every replica first: 200 each" \
    " 200 200 200 200 200 200" "$primed"
# Load through nginx for the cached references, bounded (25 s at most, or
# until told to stop), every status kept.
rm -f "$IT_DIR/d.stop"
(
    end=$((SECONDS + 25))
    while [ ! -e "$IT_DIR/d.stop" ] && [ $SECONDS -lt $end ]; do
        for ref in "$D_REF" "$A_REF"; do
            curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --unix-socket "$NGINX_SOCK" \
                "$NGINX_URL/images/$ref"
        done
    done
) >"$IT_DIR/d.load" &
LOAD_PID=$!
it_record "$LOAD_PID"
sleep 0.5
pg_stop
it_log "(d) PostgreSQL stopped"
sleep 0.5
cached="" uncached="" ready="" pids=""
for n in 1 2 3; do
    c1=$(get "${R_URL[n]}/images/$D_REF" d)
    c2=$(get "${R_URL[n]}/images/$A_REF" d)
    cached="$cached r$n=$c1/$c2"
    t=$(now)
    code=$(get "${R_URL[n]}/images/$U_REF" u$n)
    uncached="$uncached r$n=$code/$(jq -r .error.code "$IT_DIR/u$n.body" 2>/dev/null)"
    it_log "(d) replica $n, $U_REF with the database down: $code in $(secs "$(now) - $t") s: $(head -c 300 "$IT_DIR/u$n.body")"
    code=$(get "${R_URL[n]}/readyz" ready$n)
    ready="$ready r$n=$code"
    pids="$pids r$n=$(alive "${R_PID[n]}")"
done
check_eq "(d) database down: cached references 200 on every replica" \
    " r1=200/200 r2=200/200 r3=200/200" "$cached"
check_eq "(d) ... an uncached one 503 database_unavailable" \
    " r1=503/database_unavailable r2=503/database_unavailable r3=503/database_unavailable" "$uncached"
check_eq "(d) ... /readyz 503" " r1=503 r2=503 r3=503" "$ready"
curl -s --max-time 10 "${R_URL[2]}/metrics" >"$IT_DIR/d.metrics"
it_log "(d) replica 2's /metrics, imgmeta_db_* and store failures:"
grep -E '^imgmeta_(db_|store_write_failures)' "$IT_DIR/d.metrics" >&2
check "(d) ... /metrics counts database failures (an imgmeta_db_* failure counter)" \
    grep -Eq '^imgmeta_db_[a-z_]*(fail|error|unavailable|down)[a-z_]*(\{[^}]*\})? ' "$IT_DIR/d.metrics"
touch "$IT_DIR/d.stop"
wait "$LOAD_PID"
check_eq "(d) ... the load through nginx meanwhile: every answer 200" \
    "$(lines "$IT_DIR/d.load") x 200" \
    "$(sort "$IT_DIR/d.load" | uniq -c | awk '{ printf "%s%s x %s", s, $1, $2; s = ", " }')"

pg_restart || die "cannot restart PostgreSQL"
t=$(now)
back=""
for _ in $(seq 1 150); do # 15 s at most
    back=""
    for n in 1 2 3; do
        back="$back r$n=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${R_URL[n]}/images/$U_REF")/$(
            curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${R_URL[n]}/readyz")"
    done
    [ "$back" = " r1=200/200 r2=200/200 r3=200/200" ] && break
    sleep 0.1
done
check_eq "(d) PostgreSQL back: the uncached reference and /readyz 200 on every replica (after $(secs "$(now) - $t") s)" \
    " r1=200/200 r2=200/200 r3=200/200" "$back"
pids=""
for n in 1 2 3; do pids="$pids r$n=$(alive "${R_PID[n]}")"; done
check_eq "(d) ... no replica died or was restarted" " r1=alive r2=alive r3=alive" "$pids"
code=$(get "${R_URL[3]}/images/$U_REF" u)
check_eq "(d) ... the right digest" "200 ${WANT[u]}" "$code $(jq -r .digest "$IT_DIR/u.body" 2>/dev/null)"
# (an answer given while the database was away may come from a replica's own
# tiers: a reference never asked before needs the database)
mf=$(lines "$FRONT_LOG")
res=""
for n in 1 2 3; do
    code=$(get "${R_URL[n]}/images/python/v" v$n)
    res="$res r$n=$code/$(header v$n X-Imgmeta-Cache)"
done
check_eq "(d) ... a reference never asked before: resolved once through the database (front: $(count "$FRONT_LOG" "$RESOLVING" "$mf") requests)" \
    " r1=200/miss r2=200/hit r3=200/hit ${WANT[v]}" "$res $(jq -r .digest "$IT_DIR/v3.body" 2>/dev/null)"

# --- (e) imgmeta cache stats|check|gc|purge against the shared database ----------
"$IMGMETA" cache stats --db "$PG_URI" >"$IT_DIR/e.stats" 2>&1
it_log "(e) imgmeta cache stats --db (PostgreSQL): $(tr '\n' ' ' <"$IT_DIR/e.stats")"
check "(e) imgmeta cache stats on PostgreSQL: the tags the replicas stored" \
    grep -Eq '^tags: [1-9]' "$IT_DIR/e.stats"
check_eq "(e) ... imgmeta cache check says ok" ok "$("$IMGMETA" cache check --db "$PG_URI" 2>&1)"
out=$("$IMGMETA" cache gc --db "$PG_URI" 2>&1)
check "(e) ... imgmeta cache gc runs (exit 0: $out)" "$IMGMETA" cache gc --db "$PG_URI"
code=$(get "${R_URL[2]}/images/python/v" e0)
check_eq "(e) python/v asked of replica 2 again: a hit" "200 hit" "$code $(header e0 X-Imgmeta-Cache)"
out=$("$IMGMETA" cache purge python:v --db "$PG_URI" 2>&1)
t=$(now)
sleep 0.5
mf=$(lines "$FRONT_LOG")
res=""
for n in 2 3; do
    code=$(get "${R_URL[n]}/images/python/v" e$n)
    res="$res r$n=$code/$(header e$n X-Imgmeta-Cache)"
done
check_eq "(e) imgmeta cache purge python:v while the replicas run ($out): asked of replicas 2 then 3 $(secs "$(now) - $t") s later, one resolves again, the other finds it stored (front: $(count "$FRONT_LOG" "$RESOLVING" "$mf") requests)" \
    " r2=200/miss r3=200/hit" "$res"
# The replicas' request counters reach the shared database (every 10 s, and
# at a clean stop: the counts of the time the database was away included).
stopped=""
for n in 1 2 3; do
    kill -TERM "${R_PID[n]}"
    wait "${R_PID[n]}"
    stopped="$stopped r$n=$?"
done
check_eq "(e) the replicas stop cleanly (SIGTERM)" " r1=0 r2=0 r3=0" "$stopped"
"$IMGMETA" cache stats --db "$PG_URI" >"$IT_DIR/e.stats2" 2>&1
it_log "(e) imgmeta cache stats after the stop: $(grep -E '^(requests|hits|misses_upstream|hit_ratio):' "$IT_DIR/e.stats2" | tr '\n' ' ')"
check "(e) ... their requests are counted in the shared database (requests and hits)" \
    sh -c "grep -Eq '^requests: [1-9]' '$IT_DIR/e.stats2' && grep -Eq '^hits: [1-9]' '$IT_DIR/e.stats2'"

# --- (f) a tag revalidated by one replica is fresh for all ----------------------
# Two replicas with a 2 s tag TTL on the same database.
DAEMON_OPTS+=(--tag-ttl 2)
for n in 4 5; do replica "$n" || die "cannot start replica $n"; done
F_REF=python/3.7-slim
res=""
for n in 4 5; do
    code=$(get "${R_URL[n]}/images/$F_REF" f$n)
    res="$res r$n=$code"
done
check_eq "(f) $F_REF on two replicas with --tag-ttl 2: 200" " r4=200 r5=200" "$res"
sleep 2.5
mf=$(lines "$FRONT_LOG")
code=$(get "${R_URL[4]}/images/$F_REF" f4b)
n4=$(count "$FRONT_LOG" "$RESOLVING" "$mf")
it_log "(f) replica 4 past the TTL: $code $(header f4b X-Imgmeta-Cache), upstream: $(tail -n "+$((mf + 1))" "$FRONT_LOG" | grep -- "$RESOLVING" | cut -c1-80 | tr '\n' ';')"
check_eq "(f) ... past the TTL, replica 4 revalidates it upstream (a request or more)" \
    "200 yes" "$code $([ "$n4" -gt 0 ] && echo yes)"
mf=$(lines "$FRONT_LOG")
code=$(get "${R_URL[5]}/images/$F_REF" f5b)
check_eq "(f) ... then replica 5, whose own copy is as old: 200, fresh from the shared database, nothing upstream ($(header f5b X-Imgmeta-Cache))" \
    "200 0" "$code $(count "$FRONT_LOG" "$RESOLVING" "$mf")"
check_eq "(f) ... the same answer" "$(md5sum <"$IT_DIR/f4b.body")" "$(md5sum <"$IT_DIR/f5b.body")"

if [ "$IT_FAILED" -gt 0 ]; then
    for n in 1 2 3; do
        it_log "replica $n's last lines (${R_LOG[n]}):"
        tail -n 8 "${R_LOG[n]}" >&2
    done
fi
it_log "took $(($(date +%s) - T0)) s"
finish
