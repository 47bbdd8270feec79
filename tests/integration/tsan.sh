#!/usr/bin/env bash
# tsan.sh SOURCE_DIR BUILD_DIR - the daemon under ThreadSanitizer, hammered
# with concurrent requests (ctest "tsan"; SECURITY.md).
#
# The unit tests run under TSan through tests/unit/tsan-units.sh (Criterion
# needs help to start there); this is the real daemon: it builds imgmeta
# and the test tools with -DIMGMETA_TSAN=ON in BUILD_DIR, starts the fixture
# registry, regfront and faultreg, and sends in parallel (curl -P): cold
# resolutions of one reference (coalescing), cold resolutions of 24 distinct
# images, failing upstreams (503, reset, digest mismatch), warm hits in JSON,
# Markdown, summary and filtered forms, 304s, invalid requests, gzip answers
# and batches of references (threads of their own), /metrics, with the watcher
# checking three references (--watch, --tag-ttl 2); then, on
# the same database with the LRU off and a 256 KiB answers file, warm hits
# sent from the file while it starts over. Passes when every answer is the
# expected status, the daemon exits 0 on SIGTERM and its log has no
# ThreadSanitizer report.
set -u
src=${1:?usage: tsan.sh SOURCE_DIR BUILD_DIR}
bld=${2:?usage: tsan.sh SOURCE_DIR BUILD_DIR}

cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGMETA_TSAN=ON \
    -DIMGMETA_TESTS=ON -DIMGMETA_WERROR=ON >/dev/null || exit 1
cmake --build "$bld" -j "$(nproc 2>/dev/null || echo 2)" \
    --target imgmeta imgmeta-fixture regfront faultreg >"$bld/build.log" 2>&1 || {
    tail -n 40 "$bld/build.log" >&2
    exit 1
}
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

. "$src/tests/integration/lib.sh"
lib_init "$bld/imgmeta" "$bld/tests/imgmeta-fixture" "$bld/tests/regfront"
FAULTREG=$bld/tests/faultreg
start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"
start_faultreg || die "cannot start faultreg"
FAULT_PORT=$FR_PORT
# The watcher runs beside it all: a TTL of 2 s keeps it revalidating one of
# the references the requests ask for, and checking a failing one.
IT_WAIT_S=60 start_daemon --threads 8 --request-timeout-ms 5000 \
    --mirror "fault.test=http://127.0.0.1:$FAULT_PORT" --tag-ttl 2 \
    --watch python:3.7-slim,fault.test/library/img1:v1,fault.test/library/503:v1 ||
    die "cannot start imgmeta serve"

# hammer NAME PARALLEL WANT URL...: every URL (repeated as given) with curl -P
# (with the header HAMMER_H when set); passes when every answer's status is WANT.
hammer() {
    local name=$1 par=$2 want=$3 bad
    shift 3
    printf '%s\n' "$@" | xargs -P "$par" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
        ${HAMMER_H:+-H "$HAMMER_H"} --max-time 60 "{}" >"$IT_DIR/codes"
    bad=$(grep -vc "^$want\$" "$IT_DIR/codes")
    check_eq "$name: $(wc -l <"$IT_DIR/codes") answers, all $want" 0 "$bad"
}
rep() { local n=$1 u=$2 i; for ((i = 0; i < n; i++)); do printf '%s\n' "$u"; done; }

U=$DAEMON_URL/images
mapfile -t same < <(rep 32 "$U/python/3.7-slim")
hammer "cold, one reference (coalesced)" 32 200 "${same[@]}"
mapfile -t distinct < <(for i in $(seq 1 24); do printf '%s\n' "$U/fault.test/library/img$i/v1"; done)
hammer "cold, 24 distinct images" 24 200 "${distinct[@]}"
mapfile -t failing < <(rep 8 "$U/fault.test/library/503/v1"; rep 8 "$U/fault.test/library/reset/v1";
    rep 8 "$U/fault.test/library/digest/v1")
hammer "failing upstreams" 24 502 "${failing[@]}"
mapfile -t warm < <(rep 60 "$U/python/3.7-slim"; rep 60 "$U/python/3.7-slim?format=markdown"
    rep 60 "$U/python/3.7-slim?view=summary"; rep 60 "$U/python/3.7-slim?platform=linux/arm/v7"
    rep 60 "$U/python:3.7-slim")
hammer "warm hits" 16 200 "${warm[@]}"
etag=$(curl -s -D - -o /dev/null "$U/python/3.7-slim" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
seq 1 100 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "If-None-Match: $etag" \
    "$U/python/3.7-slim" >"$IT_DIR/codes"
check_eq "100 conditional requests, all 304" 0 "$(grep -vc '^304$' "$IT_DIR/codes")"
mapfile -t invalid < <(rep 50 "$U/Python/x"; rep 50 "$U/python?format=xml")
hammer "invalid requests" 16 400 "${invalid[@]}"
mapfile -t metrics < <(rep 40 "$DAEMON_URL/metrics")
hammer "/metrics (the watched images' series) while the watcher works" 8 200 "${metrics[@]}"
# gzip: each answer's first compression raced by 16 clients, then its hits
mapfile -t gz < <(rep 40 "$U/python/3.7-slim"; rep 40 "$U/python/3.7-slim?format=markdown"
    for i in $(seq 1 24); do printf '%s\n' "$U/fault.test/library/img$i/v1"; done)
HAMMER_H='Accept-Encoding: gzip' hammer "gzip answers" 16 200 "${gz[@]}"
# batches: each needs the upstream (failing references), so each runs on an
# upstream thread with threads of its own, coalescing with the others
batch='{"references":["python:3.7-slim","fault.test/library/503/v1","fault.test/library/img1/v1",'
batch+='"fault.test/library/reset/v1","python:3.7-slim","fault.test/library/img2/v1"],"view":"summary"}'
seq 1 24 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -X POST \
    -H 'Content-Type: application/json' --data-binary "$batch" "$U" >"$IT_DIR/codes"
check_eq "24 batches at once, all 200" 0 "$(grep -vc '^200$' "$IT_DIR/codes")"

# stop_and_check NAME: SIGTERM, exit 0, no ThreadSanitizer report in the log.
stop_and_check() {
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"
    check_eq "$1: daemon exits 0 on SIGTERM" 0 "$?"
    if grep -q 'WARNING: ThreadSanitizer' "$IT_DIR/daemon.log"; then
        it_fail "$1: ThreadSanitizer reports in the daemon log"
        grep -A 12 'WARNING: ThreadSanitizer' "$IT_DIR/daemon.log" | head -n 60
    else
        it_pass "$1: no ThreadSanitizer report"
    fi
}
stop_and_check "defaults"

# The same database, the LRU off and an answers file of 256 KiB: every warm hit
# is sent from the file (a descriptor of its own, sendfile) while other threads'
# answers fill it up and it starts over again and again.
cp "$IT_DIR/daemon.log" "$IT_DIR/daemon-defaults.log"
IT_WAIT_S=60 start_daemon --threads 8 --request-timeout-ms 5000 \
    --mirror "fault.test=http://127.0.0.1:$FAULT_PORT" --answer-cache-bytes 0 \
    --answer-file-bytes 262144 || die "cannot start imgmeta serve (answers file)"
U=$DAEMON_URL/images
mapfile -t from_file < <(for r in $(seq 1 10); do
    printf '%s\n' "$U/python/3.7-slim" "$U/python/3.7-slim?format=markdown" \
        "$U/python/3.7-slim?view=summary" "$U/python/3.7-slim?platform=linux/arm/v7"
    for i in $(seq 1 24); do printf '%s\n' "$U/fault.test/library/img$i/v1"; done
done)
hammer "warm hits from the answers file" 16 200 "${from_file[@]}"
HAMMER_H='Accept-Encoding: gzip' hammer "gzip hits from the answers file" 16 200 "${from_file[@]}"
hits=$(curl -s "$DAEMON_URL/metrics" | awk '$1 == "imgmeta_answer_file_hits_total" {print $2}')
check "... and the answers file served them (hits: ${hits:-none})" [ "${hits:-0}" -gt 0 ]
stop_and_check "answers file"
finish
