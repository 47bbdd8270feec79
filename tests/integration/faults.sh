#!/usr/bin/env bash
# faults.sh IMGMETA FIXTURE REGFRONT FAULTREG - upstream fault injection
# (ctest "integration.faults"; SECURITY.md).
#
# The daemon runs with --mirror docker.io=<faultreg> and short upstream
# timeouts. For every fault faultreg can play (connection reset mid-body,
# truncated body, stalled body, no answer, invalid JSON, digest mismatch in a
# config and in Docker-Content-Digest, giant bodies with and without
# Content-Length, redirect loop, 429 and 503 with and without Retry-After,
# connection refused):
#   - the answer is the documented status and error code, within the
#     configured timeout (plus retries and slack);
#   - nothing wrong is cached: once faultreg heals the mode, the same request
#     answers 200 with faultreg's own digest and the mode's own history;
#   - upstream requests per client request are bounded (no retry storm).
# Then a storm of 30 concurrent requests on a failing mode, a stale-if-error
# check (a fresh answer that turns stale while the upstream fails is either
# served stale with the old, right digest, or an error: never wrong data),
# and the daemon must be alive and healthy.
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT FAULTREG" >&2
    exit 2
fi
FAULTREG=$4
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"

start_faultreg || die "cannot start faultreg"
FAULT_URL=$FR_URL
# a port nobody listens on: probed, as nothing may be started there
CLOSED_PORT=$(free_port) || die "no port"

REQUEST_TIMEOUT_MS=3000
FRONT_URL=$FAULT_URL # start_daemon mirrors docker.io to FRONT_URL
start_daemon --connect-timeout-ms 1000 --request-timeout-ms "$REQUEST_TIMEOUT_MS" \
    --tag-ttl 1 --mirror "refused.test=http://127.0.0.1:$CLOSED_PORT" ||
    die "cannot start imgmeta serve"

ctl() { curl -s --max-time 5 "$FAULT_URL/_ctl/$1"; }
count() { ctl count | tr -d '\n'; }

# fault MODE STATUS CODE MAX_S [MAX_UPSTREAM]: GET /images/MODE/v1.
fault() {
    local mode=$1 want=$2 code=$3 max=$4 maxup=${5:-8} t0 t1 got gotcode n0 n1 ms
    n0=$(count)
    t0=$(date +%s%N)
    got=$(curl -s -D "$IT_DIR/h" -o "$IT_DIR/out" -w '%{http_code}' --max-time 60 \
        "$DAEMON_URL/images/$mode/v1")
    t1=$(date +%s%N)
    n1=$(count)
    ms=$(((t1 - t0) / 1000000))
    gotcode=$(jq -r '.error.code // "-"' "$IT_DIR/out" 2>/dev/null)
    if [ "$got" = "$want" ] && [ "$gotcode" = "$code" ] && [ "$ms" -le $((max * 1000)) ] &&
        [ $((n1 - n0)) -le "$maxup" ]; then
        it_pass "$mode: $got $code in ${ms} ms, $((n1 - n0)) upstream requests"
    else
        it_fail "$mode"
        printf '     want %s %s within %ss and <= %s upstream requests; got %s %s in %s ms, %s: %s\n' \
            "$want" "$code" "$max" "$maxup" "$got" "$gotcode" "$ms" "$((n1 - n0))" \
            "$(head -c 300 "$IT_DIR/out")"
    fi
}

# healed MODE: after healing, the answer is 200 with faultreg's digest and the
# mode's own history line.
healed() {
    local mode=$1 want got digest
    ctl "heal?mode=$mode" >/dev/null
    want=$(ctl "digest?mode=$mode" | tr -d '\n')
    got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/$mode/v1")
    digest=$(jq -r '.digest' "$IT_DIR/out" 2>/dev/null)
    if [ "$got" = 200 ] && [ "$digest" = "$want" ] &&
        jq -e --arg m "file:$mode in" \
            '[.platforms[].history[]?.createdBy | strings | contains($m)] | any' \
            "$IT_DIR/out" >/dev/null 2>&1; then
        it_pass "$mode healed: 200 with the right digest and content"
    else
        it_fail "$mode healed"
        printf '     want 200 %s; got %s %s: %s\n' "$want" "$got" "$digest" "$(head -c 300 "$IT_DIR/out")"
    fi
}

T=$((REQUEST_TIMEOUT_MS / 1000))
fault_and_heal() { fault "$@" && :; healed "$1"; }

# --- a baseline ----------------------------------------------------------------
healed ok

# --- each fault, then healed ---------------------------------------------------------
fault_and_heal reset 502 upstream_unavailable $((T + 5))
fault_and_heal truncated 502 upstream_unavailable $((T + 5))
fault_and_heal stall 504 upstream_timeout $((T + 3))
fault_and_heal slowhead 504 upstream_timeout $((T + 3))
fault_and_heal badjson 502 upstream_protocol 5
fault_and_heal digest 502 digest_mismatch 5
fault_and_heal dcd 502 digest_mismatch 5
fault_and_heal giant 502 too_large 5
fault_and_heal giantchunk 502 too_large $((T + 3))
fault_and_heal loop 502 upstream_unavailable 5 12
fault_and_heal 429 503 upstream_rate_limited 8
grep -qi '^retry-after:' "$IT_DIR/h"
check "429: our 503 carries Retry-After" [ $? -eq 0 ]
fault_and_heal 429ra 503 upstream_rate_limited 8
# The registry's Retry-After (faultreg sends 1) reaches the client, for the
# request that resolved and for every request that waited for it (coalesced):
# not a made-up 60.
ctl "break?mode=rawait&as=429ra" >/dev/null
ra_pids=()
for i in 1 2 3 4 5 6; do
    curl -s -D "$IT_DIR/ra$i.h" -o /dev/null -w '%{http_code}\n' --max-time 30 \
        "$DAEMON_URL/images/rawait/v1" >"$IT_DIR/ra$i.s" &
    ra_pids+=($!)
done
wait "${ra_pids[@]}"
ra_all() {
    local i
    for i in 1 2 3 4 5 6; do
        printf '%s %s\n' "$(cat "$IT_DIR/ra$i.s")" \
            "$(tr -d '\r' <"$IT_DIR/ra$i.h" | sed -n 's/^retry-after: //Ip')"
    done | sort | uniq -c | awk '{print $1, $2, $3}'
}
check_eq "429 with Retry-After: 1 -> six concurrent requests all 503 with Retry-After: 1" \
    "6 503 1" "$(ra_all)"
healed rawait
fault_and_heal 503 502 upstream_unavailable 8
fault_and_heal 503ra 502 upstream_unavailable 8

t0=$(date +%s%N)
got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/refused.test/library/x/v1")
ms=$((($(date +%s%N) - t0) / 1000000))
code=$(jq -r '.error.code' "$IT_DIR/out" 2>/dev/null)
if [ "$got" = 502 ] && [ "$code" = upstream_unavailable ] && [ "$ms" -le 8000 ]; then
    it_pass "connection refused: 502 upstream_unavailable in $ms ms"
else
    it_fail "connection refused: got $got $code in $ms ms"
fi

# --- hostile content: the output stays well-formed --------------------------------------
# A history line with a Markdown fence, a heading, newlines, backticks, HTML and
# an impossible date: the JSON parses and keeps the text; in the Markdown every
# fence is closed and the heading stays inside a code block.
got=$(curl -s -o "$IT_DIR/nasty.json" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/nasty/v1")
check_eq "nasty history: 200" 200 "$got"
nasty_json() {
    jq -e '[.platforms[].history[]?.createdBy | strings | contains("## Injected heading")] | any' \
        "$IT_DIR/nasty.json" >/dev/null
}
check "nasty history: the JSON is valid and keeps the text" nasty_json
curl -s -o "$IT_DIR/nasty.md" --max-time 30 "$DAEMON_URL/images/nasty/v1?format=markdown"
md_contained() { # no fence left open, no injected heading outside a code block
    # CommonMark fences: a run of n >= 3 backticks opens a block, which only a
    # line of at least n backticks (and nothing else) closes.
    awk 'function run(s,   i, n) { i = 1; while (i <= 3 && substr(s, i, 1) == " ") i++
                                     n = 0; while (substr(s, i + n, 1) == "`") n++; return n }
         function only_ticks(s) { gsub(/[` ]/, "", s); return s == "" }
         BEGIN { open = 0; bad = 0 }
         { n = run($0) }
         open == 0 && n >= 3 { open = n; next }
         open > 0 && n >= open && only_ticks($0) { open = 0; next }
         open == 0 && /^#+ Injected heading/ { bad = 1 }
         END { exit (open > 0 || bad) }' "$1"
}
# A history line of backticks must not close the dockerfile fence early (the
# renderer grows the fence past any backtick run), so no heading is injected.
if md_contained "$IT_DIR/nasty.md"; then
    it_pass "nasty history: Markdown fences closed, no injected heading"
else
    it_fail "nasty history: a backtick line in created_by escaped the dockerfile block"
fi
got=$(curl -s -o "$IT_DIR/neg.json" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/negsize/v1")
neg_ok() { # refused as a protocol error, or answered without a negative size
    case $got in
    502) [ "$(jq -r .error.code "$IT_DIR/neg.json")" = upstream_protocol ] ;;
    200) jq -e '[.. | numbers | select(. < 0)] | length == 0' "$IT_DIR/neg.json" >/dev/null ;;
    *) false ;;
    esac
}
check "negative layer size: 502 upstream_protocol or no negative number ($got)" neg_ok

# --- a storm: 30 concurrent requests while the upstream answers 503 ----------------------
ctl "break?mode=storm&as=503" >/dev/null
n0=$(count)
seq 1 30 | xargs -P 30 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
    "$DAEMON_URL/images/storm/v1" >"$IT_DIR/storm"
n1=$(count)
check_eq "storm: 30 answers, all 502" "30 502" "$(sort "$IT_DIR/storm" | uniq -c | awk '{print $1, $2}' | tr '\n' ' ' | sed 's/ $//')"
check "storm: upstream requests bounded (coalesced or retried at most 3x: $((n1 - n0)))" \
    [ $((n1 - n0)) -le 90 ]
healed storm

# --- stale-if-error: never wrong data --------------------------------------------------
curl -s -o "$IT_DIR/stale1" --max-time 30 "$DAEMON_URL/images/stale/v1"
good=$(jq -r .digest "$IT_DIR/stale1")
sleep 2 # --tag-ttl 1: the answer is stale now
for as in 503 stall digest badjson; do
    ctl "break?mode=stale&as=$as" >/dev/null
    got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/stale/v1")
    d=$(jq -r '.digest // "-"' "$IT_DIR/out" 2>/dev/null)
    if { [ "$got" = 200 ] && [ "$d" = "$good" ]; } || [[ "$got" =~ ^50[234]$ ]]; then
        it_pass "stale entry while upstream fails ($as): $got${d:+ ($d)}"
    else
        it_fail "stale entry while upstream fails ($as): $got $d (good: $good)"
    fi
done
healed stale

# --- the service afterwards ------------------------------------------------------------
check "daemon still running" kill -0 "$DAEMON_PID"
check_eq "healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$DAEMON_URL/healthz")"
check_eq "readyz" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$DAEMON_URL/readyz")"
healed ok
# A clean shutdown: exit status 0 and no sanitizer report (leaks are reported
# at exit under ASan).
check_clean_stop "$DAEMON_PID"
check_no_sanitizer_report "$IT_DIR/daemon.log"

finish
