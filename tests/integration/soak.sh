#!/usr/bin/env bash
# soak.sh IMGMETA FIXTURE REGFRONT FAULTREG - the soak/load test (ctest
# "integration.soak"; SECURITY.md, issue #6).
#
# wrk drives the daemon on loopback for SOAK_S seconds (default 45) over
# SOAK_CONNS keep-alive connections (default 8; one per wrk thread, so the
# Lua script knows which kind of request each answer belongs to), mixing:
#   warm       JSON, Markdown, a digest reference, a platform filter with the
#              summary view, and /healthz (the fixture tag goes stale every
#              2 s, so it is revalidated upstream under load too);
#   conditional  If-None-Match with the JSON's ETag: 304;
#   invalid    bad references, unknown routes, wrong methods: 4xx;
#   cold       a purge (admin DELETE) of one of 32 small faultreg images,
#              then a GET of it: a full upstream resolution each time;
#   faults     faultreg references that reset, answer 503/429 or invalid
#              JSON or the wrong digest: 5xx by design.
# The daemon runs with --max-resolutions 4, so cold and faulty work saturates
# it now and then: those may get 503 busy; warm requests must not notice.
#
# Every second it samples the daemon's VmRSS and open file descriptors
# (/proc/PID/status, /proc/PID/fd) and prints a table of figures. It fails
# (behaviour, never speed) when:
#   - the daemon dies, or does not exit 0 on SIGTERM, or its log has a
#     sanitizer report;
#   - any warm request got anything but 200 (conditional: 200 or 304), or any
#     invalid request got a 5xx, or a warm kind was never answered;
#   - file descriptors grow: the last sample, taken after the load stopped,
#     must be at most the warm-up's highest count + 8 (connections come and
#     go under load, so one sample is noisy; a leak of one fd per request
#     would add thousands);
#   - memory grows after warm-up: the RSS at the end (median of the last 3
#     samples) may exceed the RSS at half time (median of 3) by at most
#     max(10 %, 8 MiB). The caches (16 MiB rendered-answer LRU, SQLite page
#     caches, malloc arenas) fill during the warm-up third and stay bounded;
#     a leak of even 100 bytes per request (~1 MiB per 10k requests) shows
#     over the second half. Under ASan (libasan linked) RSS is reported but
#     not judged: the allocator quarantine grows RSS by design there.
#
#   SOAK_S=600 SOAK_CONNS=16 tests/integration/soak.sh build/imgmeta \
#       build/tests/imgmeta-fixture build/tests/regfront build/tests/faultreg
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT FAULTREG" >&2
    exit 2
fi
for tool in docker-registry wrk curl jq; do
    command -v "$tool" >/dev/null || {
        echo "soak: needs $tool (cmake/install-deps.sh test installs it)" >&2
        exit 1
    }
done
FAULTREG=$4
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"

SOAK_S=${SOAK_S:-45}
SOAK_CONNS=${SOAK_CONNS:-8}
WARMUP_S=$((SOAK_S / 3 > 5 ? SOAK_S / 3 : 5))

# --- the world -------------------------------------------------------------------
start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"
start_faultreg || die "cannot start faultreg"
TOKEN=soak-$RANDOM$RANDOM
start_daemon --tag-ttl 2 --max-stale 3600 --max-resolutions 4 \
    --request-timeout-ms 2000 --log-level warn --admin-token "$TOKEN" \
    --mirror "fault.test=$FR_URL" || die "cannot start imgmeta serve"
IMAGE=/images/python/3.7-slim

for path in "$IMAGE" "$IMAGE?format=markdown" "/images/python@$LIST_DIGEST" \
    "$IMAGE?platform=linux/arm64/v8&view=summary"; do
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$DAEMON_URL$path")
    [ "$got" = 200 ] || die "warm-up request $path answered $got"
done
ETAG=$(curl -s -D - -o /dev/null --max-time 10 "$DAEMON_URL$IMAGE" | tr -d '\r' |
    sed -n 's/^etag: //Ip')
[ -n "$ETAG" ] || die "no ETag on the fixture's JSON"

# --- the load ----------------------------------------------------------------------
cat >"$IT_DIR/soak.lua" <<'EOF'
-- One connection per thread: the answer to the request made last by this
-- thread is the one response() sees, so `current` names its kind.
local etag = os.getenv("SOAK_ETAG")
local digest = os.getenv("SOAK_DIGEST")
local token = os.getenv("SOAK_TOKEN")
local image = "/images/python/3.7-slim"
local invalid = { "/images/Python/3.7-slim", "/images/python", "/nothing/here",
                  "/images/python/3.7-slim?format=xml", "/images/python@sha256:zz" }
local faults = { "reset", "503", "429", "badjson", "digest", "truncated" }
local threads = {}
local current = "none"
local pending = nil
counts = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("id", #threads)
end

function init(args)
    math.randomseed(os.time() * 100 + (id or 0))
    counts = {}
end

local function get(kind, path, headers)
    current = kind
    return wrk.format("GET", path, headers)
end

function request()
    if pending then
        local p = pending
        pending = nil
        return get("cold", p)
    end
    local r = math.random(100)
    if r <= 28 then return get("warm_json", image) end
    if r <= 42 then return get("warm_markdown", image .. "?format=markdown") end
    if r <= 52 then return get("warm_digest", "/images/python@" .. digest) end
    if r <= 58 then
        return get("warm_platform", image .. "?platform=linux/arm64/v8&view=summary")
    end
    if r <= 60 then return get("warm_healthz", "/healthz") end
    if r <= 72 then return get("conditional", image, { ["If-None-Match"] = etag }) end
    if r <= 80 then
        if math.random(5) == 1 then
            current = "invalid"
            return wrk.format("POST", image)
        end
        return get("invalid", invalid[math.random(#invalid)])
    end
    if r <= 92 then
        local ref = "fault.test/library/cold" .. math.random(0, 31) .. "/v1"
        pending = "/images/" .. ref
        current = "purge"
        return wrk.format("DELETE", "/admin/cache/" .. ref,
                          { ["Authorization"] = "Bearer " .. token })
    end
    return get("fault", "/images/fault.test/library/" .. faults[math.random(#faults)] .. "/v1")
end

function response(status, headers, body)
    local k = current .. " " .. status
    counts[k] = (counts[k] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
    end
    for k, v in pairs(total) do io.write(string.format("status %s %d\n", k, v)) end
    local e = summary.errors
    io.write(string.format("summary %d %d %d %d %d %d %d\n", summary.requests,
             summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
    io.write(string.format("latency %d %d %d\n", latency:percentile(50),
             latency:percentile(99), latency.max))
end
EOF

SAMPLES=$IT_DIR/samples
: >"$SAMPLES"
sample() { # t rss_kib fds, every second while the daemon lives
    local t=0 rss fds
    while kill -0 "$DAEMON_PID" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null)
        fds=$(ls "/proc/$DAEMON_PID/fd" 2>/dev/null | wc -l)
        printf '%d %s %s\n' "$t" "${rss:-0}" "$fds" >>"$SAMPLES"
        t=$((t + 1))
        sleep 1
    done
}
sample &
SAMPLER=$!
it_record "$SAMPLER"

SOAK_ETAG=$ETAG SOAK_DIGEST=$LIST_DIGEST SOAK_TOKEN=$TOKEN \
    wrk -t "$SOAK_CONNS" -c "$SOAK_CONNS" -d "${SOAK_S}s" --timeout 10s \
    -s "$IT_DIR/soak.lua" "$DAEMON_URL" >"$IT_DIR/wrk.out" 2>&1
WRK_RC=$?
sleep 2 # the last sample is taken after the load, connections closed
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null

# --- figures -----------------------------------------------------------------------
check_eq "wrk ran to the end" 0 "$WRK_RC"
check "daemon still running after the load" kill -0 "$DAEMON_PID"
metric() { curl -s --max-time 5 "$DAEMON_URL/metrics" | sed -n "s/^$1 //p"; }
REFUSED=$(metric imgmeta_resolutions_refused_total)
STALE=$(metric 'imgmeta_cache_lookups_total{outcome="stale"}')
MISSES=$(metric 'imgmeta_cache_lookups_total{outcome="miss"}')

read -r REQS DUR_US ECONN EREAD EWRITE ESTATUS ETIMEOUT < <(sed -n 's/^summary //p' "$IT_DIR/wrk.out")
read -r P50 P99 PMAX < <(sed -n 's/^latency //p' "$IT_DIR/wrk.out")
echo "soak: ${SOAK_S}s, $SOAK_CONNS connections, warm-up ${WARMUP_S}s ($(nproc) cores)"
printf '  %-14s %s\n' requests "${REQS:-?} ($((${REQS:-0} * 1000000 / (${DUR_US:-1} + 1))) /s)" \
    "latency" "p50 ${P50:-?} us, p99 ${P99:-?} us, max ${PMAX:-?} us" \
    "socket errors" "connect ${ECONN:-?}, read ${EREAD:-?}, write ${EWRITE:-?}, timeout ${ETIMEOUT:-?}" \
    "upstream" "misses ${MISSES:-?}, stale served ${STALE:-?}, refused busy ${REFUSED:-?}"
echo "  answers (kind status count):"
sed -n 's/^status /    /p' "$IT_DIR/wrk.out" | sort
echo "  samples (s, VmRSS KiB, fds), every 5 s:"
awk 'NR % 5 == 1 { printf "    %4d %8d %5d\n", $1, $2, $3 }' "$SAMPLES"
tail -n 1 "$SAMPLES" | awk '{ printf "    %4d %8d %5d  (after the load)\n", $1, $2, $3 }'

# --- judgement ---------------------------------------------------------------------
bad_answers() { # kinds whose statuses are outside their contract
    awk '/^status / {
        kind = $2; st = $3; n = $4
        if (kind ~ /^warm_/ && st != 200) print kind, st, n
        if (kind == "conditional" && st != 200 && st != 304) print kind, st, n
        if (kind == "invalid" && st >= 500) print kind, st, n
    }' "$IT_DIR/wrk.out"
}
check_eq "no warm request got anything but 200 (304 for conditional), no invalid one a 5xx" \
    "" "$(bad_answers)"
for kind in warm_json warm_markdown warm_digest warm_platform conditional invalid cold; do
    check "some $kind requests were answered" grep -q "^status $kind " "$IT_DIR/wrk.out"
done
check "304s were answered" grep -q "^status conditional 304 " "$IT_DIR/wrk.out"

median3() { sort -n | sed -n 2p; } # the middle of three numbers
nsamples=$(wc -l <"$SAMPLES")
half=$((nsamples / 2))
RSS_HALF=$(awk -v h="$half" '$1 >= h - 1 && $1 <= h + 1 { print $2 }' "$SAMPLES" | median3)
RSS_END=$(tail -n 3 "$SAMPLES" | awk '{ print $2 }' | median3)
FD_WARM=$(awk -v w="$WARMUP_S" '$1 <= w { if ($3 > m) m = $3 } END { print m + 0 }' "$SAMPLES")
FD_MAX=$(awk '{ if ($3 > m) m = $3 } END { print m + 0 }' "$SAMPLES")
FD_END=$(tail -n 1 "$SAMPLES" | awk '{ print $3 }')
echo "  RSS at half time ${RSS_HALF:-?} KiB, at the end ${RSS_END:-?} KiB; fds: warm-up max ${FD_WARM}, max ${FD_MAX}, end ${FD_END:-?}"
fds_flat() { [ -n "${FD_END:-}" ] && [ "$FD_END" -le $((FD_WARM + 8)) ]; }
check "file descriptors flat: end ${FD_END:-?} <= warm-up max $FD_WARM + 8" fds_flat
if ldd "$IMGMETA" 2>/dev/null | grep -q libasan; then
    it_pass "RSS not judged under ASan (quarantine): $RSS_HALF -> $RSS_END KiB"
else
    allowed=$((RSS_HALF / 10 > 8192 ? RSS_HALF / 10 : 8192))
    check "memory flat after warm-up: RSS grew $((RSS_END - RSS_HALF)) KiB in the second half (allowed $allowed)" \
        [ "$((RSS_END - RSS_HALF))" -le "$allowed" ]
fi

# --- the service afterwards --------------------------------------------------------------
got=$(curl -s -o "$IT_DIR/after.json" -w '%{http_code}' --max-time 30 "$DAEMON_URL/images/python@$LIST_DIGEST")
check_eq "the fixture still answers 200 with its digest" "200 $LIST_DIGEST" \
    "$got $(jq -r .digest "$IT_DIR/after.json" 2>/dev/null)"
check_clean_stop "$DAEMON_PID"
check_no_sanitizer_report "$IT_DIR/daemon.log"

finish
