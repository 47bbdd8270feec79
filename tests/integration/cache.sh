#!/usr/bin/env bash
# cache.sh IMGMETA FIXTURE REGFRONT - the cache's rules as a user sees them
# (ctest "integration.cache"), against docker-registry + imgmeta-fixture +
# regfront (its request log is the upstream's view), each daemon by PID:
#   (a) freshness: after the tag is re-pushed (push-variant), the old digest is
#       served until --tag-ttl, the new one after; an unchanged tag past its
#       TTL costs exactly one manifest HEAD; a changed one refetches nothing
#       known by digest (no layer HEADs); --registry-ttl overrides the TTL
#       for one registry, both ways, and a bad value is refused at start
#   (b) stale-if-error: registry gone -> the stale answer, marked (Warning,
#       X-Imgmeta-Stale, "stale": true); past --max-stale -> 502/504
#   (c) negative cache: a missing tag asked twice -> one upstream request
#   (d) coalescing: 50 concurrent cold requests -> one manifest GET upstream;
#       50 concurrent requests past the TTL -> one HEAD
#   (e) kill -9 during bursts of cold resolutions, repeated: `imgmeta cache
#       check` ok and every answer after restart right
#   (f) a corrupt database: refused with a clear message; --db-recover 1 moves
#       it aside and starts empty
#   (g) eviction: a small --cache-max-bytes, many images: the database stays
#       under it and the most recent entry survives
#   (h) a read-only database: answers still served, the failed write counted
#   (h2) a full disk (a tmpfs filled up): answers still served and right, the
#       failed write logged and counted, the database intact, writes resume
#       once there is room
#   (i) imgmeta cache stats|purge|gc and DELETE /admin/cache/{ref}; a purge
#       by `imgmeta cache purge` while the daemon runs is honoured
#   (j) the answers file: with the in-memory LRU off, answers asked again are
#       byte-identical with fresh renders; purge + re-push serves the new one
#   (k) an upgrade: a database made schema 5 again (members as text) is
#       migrated at start, says so in the log, and answers from the cache
# Prints "N passed, N failed"; exits 1 when anything failed.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq sqlite3; do
    command -v "$tool" >/dev/null || { echo "cache: needs $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"


# stop PID: SIGTERM and wait (at most 10 s, then SIGKILL).
stop() {
    local i
    kill -TERM "$1" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# front [ARGS]: start_front, retried on another port when the first does not
# come up (loopback ports are shared with concurrently running suites).
front() {
    local try
    for try in 1 2 3; do
        start_front "$@" && return 0
        stop "$FRONT_PID"
    done
    return 1
}

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
front || die "cannot start regfront"

UPSTREAM_OPTS=(--connect-timeout-ms 500 --request-timeout-ms 3000)

# daemon DB [OPTIONS]: a daemon on its own database (replaces DAEMON_*); its
# output in DAEMON_LOG, one file per start.
daemon() {
    local db=$1
    shift
    IT_STARTS=$((IT_STARTS + 1))
    DAEMON_LOG=$IT_DIR/daemon-$IT_STARTS.log
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$db" \
        --mirror "docker.io=$FRONT_URL" "${UPSTREAM_OPTS[@]}" "$@" >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    it_record "$DAEMON_PID"
    daemon_ready "$DAEMON_LOG" "$DAEMON_PID"
}

# fetch PATH: GET into $IT_DIR/body, headers into $IT_DIR/headers; prints the status.
fetch() {
    curl -s -D "$IT_DIR/headers" -o "$IT_DIR/body" -w '%{http_code}' --max-time 60 \
        "$DAEMON_URL$1"
}
header() { tr -d '\r' <"$IT_DIR/headers" | sed -n "s/^$1: //Ip" | head -n 1; }
body_digest() { jq -r .digest "$IT_DIR/body" 2>/dev/null; }
# upstream LINE-PATTERN: front log lines matching since the mark.
mark() { MARK=$(front_requests); }
since_mark() { tail -n "+$((MARK + 1))" "$FRONT_LOG" 2>/dev/null | grep -c -- "$1"; }

MAN=/v2/library/python/manifests

# --- (a) freshness after a re-push --------------------------------------------------
daemon "$IT_DIR/a.db" --tag-ttl 4 || die "cannot start imgmeta"
fetch /images/python/3.7-slim >/dev/null
check_eq "(a) cold answer is the pushed digest" "$LIST_DIGEST" "$(body_digest)"
V1=$(IT_OUT=$IT_DIR/fx1 fill_fixture push-variant --variant 1 && echo "$LIST_DIGEST")
LIST_DIGEST0=$(jq -r .digest "$IT_DIR/body")
[ -n "$V1" ] && [ "$V1" != "$LIST_DIGEST0" ] || die "push-variant gave no new digest"
mark
fetch /images/python/3.7-slim >/dev/null
check_eq "(a) within the TTL the old digest is served" "$LIST_DIGEST0" "$(body_digest)"
check_eq "(a) ... without asking upstream" 0 "$(since_mark /v2/)"
sleep 4.2
mark
fetch /images/python/3.7-slim >/dev/null
check_eq "(a) after the TTL the new digest is served" "$V1" "$(body_digest)"
check_eq "(a) ... with X-Imgmeta-Cache: miss" miss "$(header X-Imgmeta-Cache)"
check_eq "(a) ... refetching no layer known by digest (no blob HEAD)" 0 "$(since_mark '^HEAD .*/blobs/')"
sleep 4.2
mark
code=$(fetch /images/python/3.7-slim)
check_eq "(a) unchanged tag past the TTL: 200, revalidated" "200 revalidated" "$code $(header X-Imgmeta-Cache)"
check_eq "(a) ... and logged as revalidated" 1 \
    "$(grep 'event=access' "$DAEMON_LOG" | grep -c 'cache=revalidated$')"
check_eq "(a) ... with exactly one manifest HEAD upstream" "1" "$(since_mark "^HEAD $MAN/3.7-slim ")"
check_eq "(a) ... and no GET at all" "0" "$(since_mark '^GET ')"
ma=$(header Cache-Control)
check_eq "(a) revalidated answer is fresh again (Cache-Control)" "max-age=4" "$ma"
etag=$(header ETag)
mark
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$DAEMON_URL/images/python/3.7-slim")
check_eq "(a) If-None-Match while fresh: 304 without upstream" "304 0" "$code $(since_mark /v2/)"
stop "$DAEMON_PID"

# --- (a2) per-registry TTL: --registry-ttl overrides --tag-ttl for one registry ----
R1=$(IT_OUT=$IT_DIR/fxr1 fill_fixture push-variant --variant 3 --tag r1 && echo "$LIST_DIGEST") ||
    die "push-variant r1 failed"
daemon "$IT_DIR/a2.db" --tag-ttl 600 --registry-ttl docker.io=2 || die "cannot start imgmeta"
fetch /images/python/r1 >/dev/null
check_eq "(a2) docker.io=2 over --tag-ttl 600: Cache-Control" "max-age=2 $R1" "$(header Cache-Control) $(body_digest)"
R2=$(IT_OUT=$IT_DIR/fxr2 fill_fixture push-variant --variant 4 --tag r1 && echo "$LIST_DIGEST") ||
    die "push-variant r1 (2) failed"
sleep 2.2
fetch /images/python/r1 >/dev/null
check_eq "(a2) ... the re-pushed tag is seen after 2 s, not 600" "$R2" "$(body_digest)"
stop "$DAEMON_PID"
daemon "$IT_DIR/a3.db" --tag-ttl 2 --registry-ttl " ghcr.io=60, index.docker.io=600 " ||
    die "cannot start imgmeta"
fetch /images/python/r1 >/dev/null
check_eq "(a2) index.docker.io=600 names docker.io: Cache-Control" "max-age=600" "$(header Cache-Control)"
sleep 2.2
mark
fetch /images/python/r1 >/dev/null
check_eq "(a2) ... still fresh past --tag-ttl 2: a hit, nothing upstream" "hit 0" "$(header X-Imgmeta-Cache) $(since_mark /v2/)"
stop "$DAEMON_PID"
for bad in docker.io=abc docker.io ghcr.io=-1 ghcr.io=604801 notahost=5 "ghcr.io=5,ghcr.io=6"; do
    out=$("$IMGMETA" serve --listen 127.0.0.1:1 --db "$IT_DIR/bad.db" --registry-ttl "$bad" 2>&1)
    rc=$?
    case $out in *--registry-ttl*) said=yes ;; *) said="no: $out" ;; esac
    check_eq "(a2) --registry-ttl '$bad' refused at start, naming the option" "1 yes" "$rc $said"
done

# --- (b) stale-if-error -----------------------------------------------------------
daemon "$IT_DIR/b.db" --tag-ttl 1 --max-stale 8 || die "cannot start imgmeta"
fetch /images/python/3.7-slim >/dev/null
B_DIGEST=$(body_digest)
stop "$FRONT_PID"
sleep 1.3
code=$(fetch /images/python/3.7-slim)
check_eq "(b) registry down past the TTL: the stale answer (200, same digest)" "200 $B_DIGEST" "$code $(body_digest)"
check_eq "(b) ... marked X-Imgmeta-Stale: true" true "$(header X-Imgmeta-Stale)"
check_eq "(b) ... with Warning 110" '110 - "Response is Stale"' "$(header Warning)"
check_eq "(b) ... and \"stale\": true in the JSON" true "$(jq -r .stale "$IT_DIR/body")"
check_eq "(b) ... Cache-Control max-age=0" max-age=0 "$(header Cache-Control)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$DAEMON_URL/images/python/3.7-slim?format=markdown")
check_eq "(b) stale Markdown is served too" 200 "$code"
# the access log says where each answer came from with the header's word
check_eq "(b) ... the access log records both stale answers as stale" 2 \
    "$(grep 'event=access' "$DAEMON_LOG" | grep -c 'status=200 .* cache=stale$')"
check_eq "(b) ... and /metrics counts them under outcome=\"stale\"" 2 \
    "$(curl -s "$DAEMON_URL/metrics" | sed -n 's/^imgmeta_cache_lookups_total{outcome="stale"} //p')"
sleep 8.2
code=$(fetch /images/python/3.7-slim)
case $code in 502 | 504) ok=yes ;; *) ok="no ($code)" ;; esac
check_eq "(b) past --max-stale: the upstream error (502/504)" yes "$ok"
stop "$DAEMON_PID"
front || die "cannot restart regfront"

# --- (c) negative cache ---------------------------------------------------------------
daemon "$IT_DIR/c.db" || die "cannot start imgmeta"
mark
c1=$(fetch /images/python/no-such-tag)
c2=$(fetch /images/python/no-such-tag)
check_eq "(c) a missing tag twice: 404 both times" "404 404" "$c1 $c2"
check_eq "(c) ... second from the negative cache" negative "$(header X-Imgmeta-Cache)"
check_eq "(c) ... one upstream manifest request" 1 "$(since_mark "$MAN/no-such-tag ")"
stop "$DAEMON_PID"

# --- (d) coalescing -----------------------------------------------------------------------
stop "$FRONT_PID"
front --delay-ms 300 || die "cannot restart regfront with a delay"
daemon "$IT_DIR/d.db" --threads 64 || die "cannot start imgmeta"
mark
seq 1 50 | xargs -P 50 -I{} curl -s -o "$IT_DIR/d.{}.json" -w '%{http_code}\n' --max-time 60 \
    "$DAEMON_URL/images/python/3.7-slim" >"$IT_DIR/d.codes"
check_eq "(d) 50 concurrent cold requests: all 200" 50 "$(grep -c '^200$' "$IT_DIR/d.codes")"
check_eq "(d) ... one manifest GET upstream (one resolution)" 1 "$(since_mark "^GET $MAN/3.7-slim ")"
check_eq "(d) ... the same answer for all" 1 "$(cat "$IT_DIR"/d.*.json | jq -r .digest | sort -u | wc -l)"
stop "$DAEMON_PID"
# TTL 3: the 50 requests may take a second or two to arrive; within the new
# freshness they must not revalidate again
daemon "$IT_DIR/d.db" --threads 64 --tag-ttl 3 || die "cannot restart imgmeta"
sleep 3.2
mark
seq 1 50 | xargs -P 50 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
    "$DAEMON_URL/images/python/3.7-slim" >"$IT_DIR/d.codes"
check_eq "(d) 50 concurrent requests past the TTL: all 200" 50 "$(grep -c '^200$' "$IT_DIR/d.codes")"
check_eq "(d) ... one revalidation upstream (1 HEAD, 0 GET)" "1 0" \
    "$(since_mark "^HEAD $MAN/3.7-slim ") $(since_mark '^GET ')"
stop "$DAEMON_PID"
stop "$FRONT_PID"
front || die "cannot restart regfront"

# --- (e) kill -9 during bursts of cold resolutions ----------------------------------------
declare -A WANT
for n in 1 2 3 4 5 6; do
    d=$(IT_OUT=$IT_DIR/fxe$n fill_fixture push-variant --variant $((10 + n)) --tag "e$n" &&
        echo "$LIST_DIGEST") || die "push-variant e$n failed"
    WANT[e$n]=$d
done
crash_ok=yes
for round in 1 2 3 4; do
    daemon "$IT_DIR/e.db" --tag-ttl 1 || die "cannot start imgmeta (round $round)"
    curls=""
    for n in 1 2 3 4 5 6; do
        curl -s -o /dev/null --max-time 20 "$DAEMON_URL/images/python/e$n" &
        curls="$curls $!"
        curl -s -o /dev/null --max-time 20 "$DAEMON_URL/images/python/3.7-slim" &
        curls="$curls $!"
    done
    sleep "0.$((RANDOM % 6 + 1))"
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
    for pid in $curls; do wait "$pid" 2>/dev/null; done
    if ! "$IMGMETA" cache check --db "$IT_DIR/e.db" >"$IT_DIR/e.check" 2>&1; then
        crash_ok="no (round $round: $(cat "$IT_DIR/e.check"))"
    fi
    sleep 1.1 # past the TTL: the next round revalidates and resolves again
done
check_eq "(e) after kill -9 during writes (4 rounds): imgmeta cache check ok" yes "$crash_ok"
daemon "$IT_DIR/e.db" || die "cannot start imgmeta after the crashes"
right=yes
for n in 1 2 3 4 5 6; do
    code=$(fetch "/images/python/e$n")
    got="$code $(body_digest) $(jq '.platforms | length' "$IT_DIR/body")"
    [ "$got" = "200 ${WANT[e$n]} 7" ] || right="no (e$n: $got)"
done
check_eq "(e) every answer after the restart is right" yes "$right"
stop "$DAEMON_PID"

# --- (f) a corrupt database -----------------------------------------------------------------
cp "$IT_DIR/a.db" "$IT_DIR/f.db"
size=$(stat -c %s "$IT_DIR/f.db")
dd if=/dev/urandom of="$IT_DIR/f.db" bs=1024 seek=1 count=$((size / 1024 - 1)) conv=notrunc 2>/dev/null
"$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/f.db" >"$IT_DIR/f.log" 2>&1 &
fpid=$!
it_record "$fpid"
for i in $(seq 1 100); do kill -0 "$fpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$fpid" 2>/dev/null; then
    it_fail "(f) a corrupt database stops the start"
    stop "$fpid"
else
    wait "$fpid"
    frc=$?
    check "(f) a corrupt database stops the start (exit $frc)" [ "$frc" -ne 0 ]
fi
check "(f) ... saying it is corrupt and how to recover" grep -q 'corrupt.*--db-recover 1' "$IT_DIR/f.log"
check "(f) ... leaving the file as it was" [ "$(stat -c %s "$IT_DIR/f.db")" = "$size" ]
daemon "$IT_DIR/f.db" --db-recover 1 || die "cannot start with --db-recover 1"
moved_aside() { compgen -G "$IT_DIR/f.db.corrupt-*" >/dev/null; }
check "(f) --db-recover 1 moves it aside" moved_aside
check "(f) ... and says so in the log" grep -q 'db_moved_aside' "$DAEMON_LOG"
code=$(fetch /images/python/3.7-slim)
check_eq "(f) ... and serves from an empty cache" "200 miss" "$code $(header X-Imgmeta-Cache)"
stop "$DAEMON_PID"

# --- (g) eviction under a size budget ----------------------------------------------------------
for n in $(seq 1 8); do
    IT_OUT=$IT_DIR/fxg$n fill_fixture push-variant --variant $((20 + n)) --tag "g$n" >/dev/null ||
        die "push-variant g$n failed"
done
BUDGET=262144
daemon "$IT_DIR/g.db" --cache-max-bytes $BUDGET || die "cannot start imgmeta"
for n in $(seq 1 8); do
    fetch "/images/python/g$n" >/dev/null
done
"$IMGMETA" cache stats --db "$IT_DIR/g.db" >"$IT_DIR/g.stats"
bytes=$(sed -n 's/^bytes: //p' "$IT_DIR/g.stats")
check "(g) the database stays under --cache-max-bytes ($bytes <= $BUDGET)" [ "${bytes:-999999999}" -le $BUDGET ]
tags=$(sed -n 's/^tags: //p' "$IT_DIR/g.stats")
check "(g) ... by evicting tags ($tags of 8 kept)" [ "${tags:-8}" -lt 8 ]
mark
code=$(fetch /images/python/g8)
check_eq "(g) the most recent survives (a hit, no upstream request)" "200 hit 0" \
    "$code $(header X-Imgmeta-Cache) $(since_mark /v2/)"
code=$(fetch /images/python/g1)
check_eq "(g) the least recent was evicted (resolved again)" "200 miss" "$code $(header X-Imgmeta-Cache)"
stop "$DAEMON_PID"

# check_write_failed LABEL LOG: the daemon logged a failed cache write and
# counts it in /metrics.
check_write_failed() {
    check "$1 ... the failed write is logged" grep -q 'store_write_failed' "$2"
    fails=$(curl -s "$DAEMON_URL/metrics" | sed -n 's/^imgmeta_store_write_failures_total //p')
    check "$1 ... and counted (imgmeta_store_write_failures_total ${fails:-?})" [ "${fails:-0}" -ge 1 ]
}

# --- (h) a read-only database -----------------------------------------------------------------
mkdir -p "$IT_DIR/ro" && cp "$IT_DIR/a.db" "$IT_DIR/ro/h.db"
chmod 755 "$IT_DIR" "$IT_DIR/ro"
chmod 444 "$IT_DIR/ro/h.db"
if [ "$(id -u)" = 0 ]; then
    RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
else
    RUN_AS=()
    chmod 555 "$IT_DIR/ro"
fi
"${RUN_AS[@]}" "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/ro/h.db" \
    --mirror "docker.io=$FRONT_URL" >"$IT_DIR/h.log" 2>&1 &
DAEMON_PID=$!
it_record "$DAEMON_PID"
if daemon_ready "$IT_DIR/h.log" "$DAEMON_PID"; then
    code=$(fetch /images/python/g2)
    check_eq "(h) read-only database: a new tag is still answered from upstream" \
        "200 miss" "$code $(header X-Imgmeta-Cache)"
    check_write_failed "(h)" "$IT_DIR/h.log"
    code=$(fetch /images/python/3.7-slim)
    check_eq "(h) ... a cached tag is answered from the cache" "200 hit" "$code $(header X-Imgmeta-Cache)"
    check "(h) ... and the start said the file is read-only" grep -q 'event=db_readonly' "$IT_DIR/h.log"
    check "(h) ... and that the answers file cannot be made there (answers served without it)" \
        grep -q 'event=answers_file_off' "$IT_DIR/h.log"
else
    it_fail "(h) the daemon starts on a read-only database"
    tail -n 5 "$IT_DIR/h.log"
fi
stop "$DAEMON_PID"
chmod 700 "$IT_DIR"

# --- (h2) a full disk -------------------------------------------------------------------------
# The database lives on a 1 MiB tmpfs mounted in a mount namespace of the
# daemon's own (unshare -m; the mount vanishes with the process), which the
# test fills up from inside the namespace (nsenter) once the daemon runs:
# SQLite then gets a real ENOSPC/SQLITE_FULL. Needs root for the mount; as
# another user this part cannot run and says so (CI runs as root).
# registry_digest TAG: the digest the registry itself has for python:TAG.
registry_digest() {
    curl -s -I -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "$REGISTRY_URL/v2/library/python/manifests/$1" |
        tr -d '\r' | sed -n 's/^docker-content-digest: //Ip'
}
if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
    echo "SKIP (h2) full disk: needs root and unshare -m for a tmpfs of its own (uid $(id -u))"
else
    mkdir -p "$IT_DIR/full"
    unshare -m sh -c 'mount -t tmpfs -o size=1m,mode=0755 imgmeta-full "$1" && shift &&
        exec "$@"' sh "$IT_DIR/full" "$IMGMETA" serve --listen 127.0.0.1:0 \
        --db "$IT_DIR/full/h2.db" --mirror "docker.io=$FRONT_URL" "${UPSTREAM_OPTS[@]}" \
        --answer-cache-bytes 0 >"$IT_DIR/h2.log" 2>&1 &
    DAEMON_PID=$!
    it_record "$DAEMON_PID"
    if daemon_ready "$IT_DIR/h2.log" "$DAEMON_PID"; then
        in_ns() { nsenter -t "$DAEMON_PID" -m "$@"; }
        code=$(fetch /images/python/3.7-slim)
        check_eq "(h2) with room on the disk: answered and stored" "200 miss" "$code $(header X-Imgmeta-Cache)"
        in_ns sh -c 'dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; true' sh "$IT_DIR/full"
        avail=$(in_ns df --output=avail -k "$IT_DIR/full" | tail -n 1 | tr -d ' ')
        check_eq "(h2) the tmpfs is full (KiB available)" 0 "$avail"
        want=$(registry_digest g3)
        code=$(fetch /images/python/g3)
        check_eq "(h2) full disk: a new tag is still answered, from upstream, right" \
            "200 miss $want" "$code $(header X-Imgmeta-Cache) $(body_digest)"
        check_write_failed "(h2)" "$IT_DIR/h2.log"
        code=$(fetch /images/python/g3)
        check_eq "(h2) ... asked again: answered again (nothing half-stored)" \
            "200 miss $want" "$code $(header X-Imgmeta-Cache) $(body_digest)"
        code=$(fetch /images/python/3.7-slim)
        check_eq "(h2) ... the tag stored before is a hit" "200 hit" "$code $(header X-Imgmeta-Cache)"
        # the answers file lives on the full disk too (and the LRU is off)
        fetch "/images/python/3.7-slim?format=markdown" >/dev/null
        cp "$IT_DIR/body" "$IT_DIR/h2-md1"
        code=$(fetch "/images/python/3.7-slim?format=markdown")
        same=no
        cmp -s "$IT_DIR/h2-md1" "$IT_DIR/body" && grep -q '^## `python:3.7-slim`' "$IT_DIR/body" &&
            same=yes
        check_eq "(h2) ... a new rendering the answers file cannot keep is answered alike twice" \
            "200 yes" "$code $same"
        in_ns rm -f "$IT_DIR/full/filler"
        want=$(registry_digest g4)
        fetch /images/python/g4 >/dev/null
        code=$(fetch /images/python/g4)
        check_eq "(h2) space freed: the next new tag is stored again (second ask a hit)" \
            "200 hit $want" "$code $(header X-Imgmeta-Cache) $(body_digest)"
        check_eq "(h2) the database is intact (imgmeta cache check, in the namespace)" ok \
            "$(in_ns "$IMGMETA" cache check --db "$IT_DIR/full/h2.db" 2>&1)"
        check "(h2) the daemon is still healthy" [ "$(curl -s -o /dev/null -w '%{http_code}' \
            "$DAEMON_URL/healthz")" = 200 ]
    else
        it_fail "(h2) the daemon starts on a tmpfs"
        tail -n 5 "$IT_DIR/h2.log"
    fi
    stop "$DAEMON_PID"
fi

# --- (i) cache commands and the admin endpoint -------------------------------------------------
"$IMGMETA" cache stats --db "$IT_DIR/a.db" >"$IT_DIR/i.stats" 2>&1
check "(i) imgmeta cache stats reports entries and a hit ratio" \
    grep -q '^hit_ratio: ' "$IT_DIR/i.stats"
out=$("$IMGMETA" cache purge python:3.7-slim --db "$IT_DIR/a.db" 2>&1)
check "(i) imgmeta cache purge python:3.7-slim forgets the tag ($out)" \
    grep -q '^tags: 0$' <("$IMGMETA" cache stats --db "$IT_DIR/a.db")
out=$("$IMGMETA" cache gc --db "$IT_DIR/a.db" 2>&1)
check "(i) imgmeta cache gc runs ($out)" [ -n "$out" ]
check "(i) imgmeta cache check says ok" [ "$("$IMGMETA" cache check --db "$IT_DIR/a.db")" = ok ]
daemon "$IT_DIR/i.db" --admin-token s3cret || die "cannot start imgmeta"
fetch /images/python/3.7-slim >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$DAEMON_URL/admin/cache/python/3.7-slim")
check_eq "(i) DELETE /admin/cache/... without the token: 401" 401 "$code"
code=$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -X DELETE -H 'Authorization: Bearer s3cret' \
    "$DAEMON_URL/admin/cache/python/3.7-slim")
check_eq "(i) ... with it: 200, one tag purged" "200 1" "$code $(jq .removed.tags "$IT_DIR/body")"
code=$(fetch /images/python/3.7-slim)
check_eq "(i) ... and the next request resolves again" "200 miss" "$code $(header X-Imgmeta-Cache)"
# The daemon keeps fresh tags in memory (--tag-memory): a purge by another
# process on the same database is still honoured, within 10 ms (README).
code=$(fetch /images/python/3.7-slim)
check_eq "(i) asked again: a hit (the tag is remembered)" "200 hit" "$code $(header X-Imgmeta-Cache)"
out=$("$IMGMETA" cache purge python:3.7-slim --db "$IT_DIR/i.db" 2>&1)
sleep 0.05
code=$(fetch /images/python/3.7-slim)
check_eq "(i) imgmeta cache purge while the daemon runs: the next request resolves again ($out)" \
    "200 miss" "$code $(header X-Imgmeta-Cache)"
stop "$DAEMON_PID"

# --- (j) the answers file -------------------------------------------------------------------------
# With the in-memory LRU off (--answer-cache-bytes 0), an answer asked for
# again comes from the answers file: byte-identical with a fresh render by a
# daemon without one (JSON, Markdown, summary, a platform filter; ETag and
# Content-Type too). A purge then a re-push never lets the old answer out.
# metric NAME: its value on the running daemon's /metrics.
metric() { curl -s "$DAEMON_URL/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
# answer PATH: status, Content-Type, ETag and body bytes of one answer, in $IT_DIR/$2.
answer() {
    local code
    code=$(fetch "$1")
    printf '%s\n%s\n%s\n' "$code" "$(header Content-Type)" "$(header ETag)" >"$IT_DIR/$2"
    cat "$IT_DIR/body" >>"$IT_DIR/$2"
}
J_PATHS=("/images/python/3.7-slim" "/images/python/3.7-slim?format=markdown"
    "/images/python/3.7-slim?view=summary" "/images/python/3.7-slim?platform=linux/arm64/v8"
    "/images/python/3.7-slim?format=markdown&platform=linux/amd64")
daemon "$IT_DIR/j-ref.db" --answer-cache-bytes 0 --answer-file-bytes 0 || die "cannot start imgmeta"
for i in "${!J_PATHS[@]}"; do answer "${J_PATHS[$i]}" "j-fresh-$i"; done
stop "$DAEMON_PID"
daemon "$IT_DIR/j.db" --answer-cache-bytes 0 --tag-ttl 3600 --admin-token s3cret ||
    die "cannot start imgmeta"
for i in "${!J_PATHS[@]}"; do answer "${J_PATHS[$i]}" "j-first-$i"; done
hits0=$(metric imgmeta_answer_file_hits_total)
for i in "${!J_PATHS[@]}"; do
    answer "${J_PATHS[$i]}" "j-again-$i"
    same=no
    cmp -s "$IT_DIR/j-fresh-$i" "$IT_DIR/j-again-$i" && same=yes
    check_eq "(j) ${J_PATHS[$i]} asked again: 200, byte-identical with a fresh render (type, ETag, body)" \
        "200 yes" "$(head -n 1 "$IT_DIR/j-again-$i") $same"
done
check "(j) ... and those came from the answers file (hits $hits0 -> $(metric imgmeta_answer_file_hits_total))" \
    [ "$(metric imgmeta_answer_file_hits_total)" -ge $((hits0 + ${#J_PATHS[@]})) ]
check_eq "(j) the answers file indexes them" ${#J_PATHS[@]} "$(metric imgmeta_answer_file_entries)"
# Such answers are sent from the file (sendfile, the socket corked until each
# is queued): one after another on one kept-alive connection, each is whole
# and its own; a HEAD of one says its length and sends no body.
KA_ARGS=()
for i in "${!J_PATHS[@]}"; do KA_ARGS+=(-o "$IT_DIR/j-ka-$i" "$DAEMON_URL${J_PATHS[$i]}"); done
connects=$(curl -s -w '%{num_connects}\n' "${KA_ARGS[@]}" | awk '{s += $1} END {print s}')
check_eq "(j) ${#J_PATHS[@]} answers on one connection (connections opened)" 1 "$connects"
for i in "${!J_PATHS[@]}"; do
    same=no
    cmp -s <(tail -n +4 "$IT_DIR/j-fresh-$i") "$IT_DIR/j-ka-$i" && same=yes
    check_eq "(j) ... ${J_PATHS[$i]}: the fresh render's body" yes "$same"
done
head_out=$(curl -s -I -D - -o /dev/null -w 'downloaded=%{size_download}\n' "$DAEMON_URL${J_PATHS[0]}" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" {l = $2} /^downloaded=/ {print l, $0}')
check_eq "(j) HEAD of an answer from the file: its Content-Length, no body" \
    "$(tail -n +4 "$IT_DIR/j-fresh-0" | wc -c) downloaded=0" "$head_out"
V2=$(IT_OUT=$IT_DIR/fx2 fill_fixture push-variant --variant 2 && echo "$LIST_DIGEST")
curl -s -o /dev/null -X DELETE -H 'Authorization: Bearer s3cret' "$DAEMON_URL/admin/cache/python/3.7-slim"
code=$(fetch /images/python/3.7-slim)
check_eq "(j) purged, then re-pushed: resolved again, the new digest (not the old answer)" \
    "200 miss $V2" "$code $(header X-Imgmeta-Cache) $(body_digest)"
answer /images/python/3.7-slim j-new
stop "$DAEMON_PID"
daemon "$IT_DIR/j-ref2.db" --answer-cache-bytes 0 --answer-file-bytes 0 || die "cannot start imgmeta"
answer /images/python/3.7-slim j-new-fresh
stop "$DAEMON_PID"
same=no
cmp -s "$IT_DIR/j-new-fresh" "$IT_DIR/j-new" && same=yes
check_eq "(j) ... and asked again, 200, byte-identical with a fresh render of the new digest" \
    "200 yes" "$(head -n 1 "$IT_DIR/j-new") $same"

# --- (k) an upgrade from schema 5 ----------------------------------------------------------------
# (j)'s database, its member rows put back as schema 5 kept them (digests as
# text), without schema 7's history table, and its version set to 5: the daemon migrates it at start, logs that,
# and answers python:3.7-slim from the cache (no upstream request), the same
# bytes as before.
cp "$IT_DIR/j.db" "$IT_DIR/k.db"
[ ! -f "$IT_DIR/j.db-wal" ] || cp "$IT_DIR/j.db-wal" "$IT_DIR/k.db-wal"
sqlite3 "$IT_DIR/k.db" "
CREATE TABLE m5(root TEXT NOT NULL, digest TEXT NOT NULL,
  kind INTEGER NOT NULL CHECK (kind IN (0, 1)), PRIMARY KEY (root, digest, kind)) WITHOUT ROWID;
INSERT INTO m5 SELECT
  CASE typeof(root) WHEN 'blob' THEN 'sha256:' || lower(hex(root)) ELSE root END,
  CASE typeof(digest) WHEN 'blob' THEN 'sha256:' || lower(hex(digest)) ELSE digest END,
  kind FROM members;
DROP TABLE members;
ALTER TABLE m5 RENAME TO members;
CREATE INDEX members_by_digest ON members(digest, kind);
DROP TABLE tag_history;
PRAGMA user_version = 5;" || check "(k) make the database schema 5 again" false
check_eq "(k) the database is schema 5, its member rows text" "5 text" \
    "$(sqlite3 "$IT_DIR/k.db" 'PRAGMA user_version') $(sqlite3 "$IT_DIR/k.db" \
        'SELECT DISTINCT typeof(root) FROM members')"
mark
daemon "$IT_DIR/k.db" --tag-ttl 3600 || die "cannot start imgmeta on a schema-5 database"
check "(k) the daemon logs the migration: from=5 to=6 and its time" \
    grep -qE "event=db_migrated db=\"$IT_DIR/k.db\" from=5 to=7 ms=[0-9]+" "$DAEMON_LOG"
# a migration of a large cache takes seconds before the daemon listens: a line
# says so before it starts
k_before=$(grep -n "event=db_migrating db=\"$IT_DIR/k.db\" from=5 to=7 " "$DAEMON_LOG" | cut -d: -f1)
k_after=$(grep -n "event=db_migrated db=\"$IT_DIR/k.db\"" "$DAEMON_LOG" | cut -d: -f1)
check "(k) ... and says so before it starts (db_migrating, then db_migrated)" \
    test -n "$k_before" -a -n "$k_after" -a "${k_before:-0}" -lt "${k_after:-0}"
answer /images/python/3.7-slim k-after
check_eq "(k) after the upgrade: 200 from the cache, the same bytes, nothing asked of the repository" \
    "200 hit yes 0" "$(head -n 1 "$IT_DIR/k-after") $(header X-Imgmeta-Cache) \
$(cmp -s <(tail -n +4 "$IT_DIR/k-after") <(tail -n +4 "$IT_DIR/j-new") && echo yes || echo no) \
$(since_mark '/v2/library/')"
check_eq "(k) ... and its member rows are keys now" "7 blob" \
    "$(sqlite3 "$IT_DIR/k.db" 'PRAGMA user_version') $(sqlite3 "$IT_DIR/k.db" \
        'SELECT DISTINCT typeof(root) FROM members')"
stop "$DAEMON_PID"

# Under ASan/UBSan a daemon's report goes to its log (it may not fail a request).
reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$IT_DIR"/daemon-*.log \
    "$IT_DIR"/h.log "$IT_DIR"/h2.log 2>/dev/null | wc -l)
check_eq "no sanitizer report in any daemon log" 0 "$reports"

finish
