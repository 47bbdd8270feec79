# lib.sh - integration harness for imgmeta (bash; source it, do not run it).
#
# Starts Debian's docker-registry on loopback with throwaway storage, fills it
# with imgmeta-fixture, puts regfront (Docker Hub-like redirects, Last-Modified,
# bearer tokens, a request log) in front of it, and runs the imgmeta daemon
# against the front through --mirror. Every process is recorded by PID and
# stopped by PID (stop_all, also run by the EXIT trap that lib_init installs).
# What a SIGTERM does not stop well (a PostgreSQL cluster, tests/integration/
# pg.sh) registers a function with it_cleanup instead; stop_all runs it too.
#
#   . tests/integration/lib.sh
#   lib_init "$IMGMETA" "$FIXTURE" "$REGFRONT"   # sets IT_DIR, the EXIT trap
#   start_registry "$IT_DIR/registry"            # sets REGISTRY_PORT
#   fill_fixture                                 # sets IT_OUT, LIST_DIGEST
#   start_front --bearer                         # sets FRONT_PORT, FRONT_LOG
#   start_daemon                                 # sets DAEMON_PORT
#   check "name" test-command...; check_eq "name" EXPECTED ACTUAL ...
#   finish                                       # prints "N passed, N failed"
#
# Environment: IMGMETA_SOURCE_DIR (repo root; default: two levels up),
# IT_KEEP=1 (leave the processes and the work directory, print where they are),
# IT_WAIT_S (bounded waits for readiness, default 20 s).

IT_PIDS=""
IT_CLEANUPS=""
IT_STARTS=0
IT_PASSED=0
IT_FAILED=0
IT_WAIT_S=${IT_WAIT_S:-20}

it_log() { printf '%s\n' "integration: $*" >&2; }

# die MESSAGE: the suite cannot go on; counts one failure and prints the
# summary line before exiting 1.
die() { it_log "$*"; printf '%d passed, %d failed\n' "$IT_PASSED" "$((IT_FAILED + 1))"; exit 1; }

# start_faultreg ARGS...: faultreg on a loopback port of the kernel's choosing
# (it says which on stderr); sets FR_PORT, FR_URL and FR_PID. Its stderr goes
# to IT_DIR/faultreg-N.log, one file per start. (Needs FAULTREG: the path of the
# faultreg binary.)
start_faultreg() {
    local log
    IT_STARTS=$((IT_STARTS + 1))
    log=$IT_DIR/faultreg-$IT_STARTS.log
    "$FAULTREG" --listen 127.0.0.1:0 "$@" 2>"$log" &
    FR_PID=$!
    it_record "$FR_PID"
    FR_PORT=$(listen_port "$log" "$FR_PID") || return 1
    FR_URL=http://127.0.0.1:$FR_PORT
    wait_http "$FR_URL/v2/" 200 "$FR_PID"
}

# lib_init IMGMETA FIXTURE REGFRONT: remembers the binaries, makes IT_DIR.
lib_init() {
    IMGMETA=$1
    FIXTURE=$2
    REGFRONT=$3
    IMGMETA_SOURCE_DIR=${IMGMETA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
    SEED=${SEED:-$IMGMETA_SOURCE_DIR/tests/fixtures/python-3.7-slim.json}
    IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/imgmeta-it.XXXXXX") || exit 1
    trap 'it_on_exit' EXIT
    trap 'exit 130' INT TERM
}

it_on_exit() {
    local rc=$?
    if [ "${IT_KEEP:-0}" = 1 ]; then
        it_log "IT_KEEP=1: left running (PIDs:$IT_PIDS), files in $IT_DIR"
        return "$rc"
    fi
    stop_all
    rm -rf "$IT_DIR"
    return "$rc"
}

# Every server the tests start listens on port 0 and says which port the
# kernel gave it: the daemon's start line (event=listening addr=HOST:PORT),
# regfront's and faultreg's "listening on HOST:PORT" on stderr and
# docker-registry's msg="listening on HOST:PORT" (its info level). No port is
# picked in advance, so parallel test runs never race for one.

# listen_port FILE PID: prints the port that process PID says in FILE it
# listens on (the last such line), waiting at most IT_WAIT_S seconds; fails
# early when PID has died. A FILE used before must be emptied before PID
# starts (: >FILE): the redirection of a command started with & is done by
# the child, which may come after this first looks, and an earlier process's
# line would be read.
listen_port() {
    local file=$1 pid=$2 i port
    for i in $(seq 1 $((IT_WAIT_S * 20))); do
        port=$(sed -n 's/.*listening\( on \| addr=\)[^ "]*:\([0-9][0-9]*\).*/\2/p' "$file" \
            2>/dev/null | tail -n 1)
        if [ -n "$port" ] && [ "$port" != 0 ]; then
            printf '%s\n' "$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            it_log "process $pid died before it listened; its output ($file):"
            tail -n 20 "$file" >&2
            return 1
        fi
        sleep 0.05
    done
    it_log "timed out after ${IT_WAIT_S}s waiting for process $pid to say its port in $file"
    return 1
}

# free_port: prints a TCP port nobody listens on at 127.0.0.1 (bash /dev/tcp),
# below the ephemeral range. Only for what cannot listen on port 0 and say so
# (an address that must be known before its server starts, or none at all:
# a closed port); another run may take it meanwhile.
free_port() {
    local p i
    for i in $(seq 1 100); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000)) # below the ephemeral range (32768+)
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    it_log "no free port found"
    return 1
}

# wait_http URL [STATUS] [PID]: polls until URL answers STATUS (default 200),
# at most IT_WAIT_S seconds; fails early when PID has died.
wait_http() {
    local url=$1 want=${2:-200} pid=${3:-} i code
    for i in $(seq 1 $((IT_WAIT_S * 10))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null)
        [ "$code" = "$want" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            it_log "process $pid died while waiting for $url"
            return 1
        fi
        sleep 0.1
    done
    it_log "timed out after ${IT_WAIT_S}s waiting for $url to answer $want (last: $code)"
    return 1
}

it_record() { IT_PIDS="$IT_PIDS $1"; }

# it_cleanup FUNCTION: stop_all calls FUNCTION (with no argument) after the
# recorded PIDs are gone, newest registration first, at every stop_all and so
# at exit; registering it again changes nothing. FUNCTION must do nothing when
# there is nothing left to stop: a test may have stopped it already.
it_cleanup() {
    case " $IT_CLEANUPS " in
    *" $1 "*) ;;
    *) IT_CLEANUPS="$1 $IT_CLEANUPS" ;;
    esac
}

# start_registry DIR: docker-registry with storage in DIR/storage, log in
# DIR/registry.log; sets REGISTRY_PORT, REGISTRY_PID, REGISTRY_URL.
# IT_REGISTRY_SERVING=1 runs it as the benchmarks want a registry that serves:
# blob descriptors cached in memory (the Debian package's own config.yml does
# so), no access log and warnings only (the front logs every request anyway).
# Tests keep the registry's log for diagnosis, and no cache, as some change the
# storage under it.
# The registry listens on port 0 and its log says the port, but only at level
# info: at warn (IT_REGISTRY_SERVING) the port is probed beforehand instead,
# and a start that lost that port to another process is retried.
start_registry() {
    local dir=$1 level=info quiet=false cache="" addr=127.0.0.1:0 try
    if [ "${IT_REGISTRY_SERVING:-0}" = 1 ]; then
        level=warn quiet=true
        cache="  cache:
    blobdescriptor: inmemory"
    fi
    mkdir -p "$dir/storage" || return 1
    for try in 1 2 3; do
        if [ "$level" != info ]; then
            REGISTRY_PORT=$(free_port) || return 1
            addr=127.0.0.1:$REGISTRY_PORT
        fi
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: $level
  accesslog:
    disabled: $quiet
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $dir/storage
$cache
  delete:
    enabled: true
http:
  addr: $addr
  secret: imgmeta-integration-test
EOF
        # The registry logs to stderr only; the file is its log.
        : >"$dir/registry.log"
        docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
        REGISTRY_PID=$!
        it_record "$REGISTRY_PID"
        if [ "$level" = info ]; then
            REGISTRY_PORT=$(listen_port "$dir/registry.log" "$REGISTRY_PID") || return 1
        fi
        REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT
        wait_http "$REGISTRY_URL/v2/" 200 "$REGISTRY_PID" && return 0
        [ "$level" != info ] && grep -q 'address already in use' "$dir/registry.log" || break
    done
    tail -n 20 "$dir/registry.log" >&2
    return 1
}

# fill_fixture [push|push-variant ARGS...]: pushes the seed as
# library/python:3.7-slim into the registry; mapping files in IT_OUT;
# LIST_DIGEST is the fixture list's digest.
fill_fixture() {
    IT_OUT=${IT_OUT:-$IT_DIR/fixture}
    local cmd=${1:-push}
    [ $# -gt 0 ] && shift
    LIST_DIGEST=$("$FIXTURE" "$cmd" --registry "$REGISTRY_URL" --seed "$SEED" \
        --repo library/python --tag 3.7-slim --out "$IT_OUT" "$@") || return 1
}

# start_front [--bearer] [--delay-ms N]: regfront before the registry, with the
# fixture's Last-Modified dates; sets FRONT_PORT, FRONT_PID, FRONT_URL, FRONT_LOG.
# Its stderr goes to IT_DIR/front-N.stderr, one file per start.
# IT_FRONT_READY=0 does not wait for it to answer (a front slower than the
# wait): it listens once it has said its port.
start_front() {
    local err
    IT_STARTS=$((IT_STARTS + 1))
    err=$IT_DIR/front-$IT_STARTS.stderr
    FRONT_LOG=$IT_DIR/front-requests.log
    "$REGFRONT" --listen 127.0.0.1:0 --upstream "$REGISTRY_URL" \
        --lastmod "$IT_OUT/lastmod.tsv" --log "$FRONT_LOG" "$@" 2>"$err" &
    FRONT_PID=$!
    it_record "$FRONT_PID"
    FRONT_PORT=$(listen_port "$err" "$FRONT_PID") || return 1
    FRONT_URL=http://127.0.0.1:$FRONT_PORT
    [ "${IT_FRONT_READY:-1}" = 0 ] && return 0
    # /token answers 200 with or without --bearer.
    wait_http "$FRONT_URL/token?service=regfront" 200 "$FRONT_PID" || {
        cat "$err" >&2
        return 1
    }
}

# start_daemon [EXTRA ARGS]: imgmeta serve against the front; sets DAEMON_PORT,
# DAEMON_PID, DAEMON_URL; the daemon's output goes to IT_DIR/daemon.log.
start_daemon() {
    : >"$IT_DIR/daemon.log" # emptied first (listen_port)
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/cache.db" \
        --mirror "docker.io=$FRONT_URL" "$@" >"$IT_DIR/daemon.log" 2>&1 &
    DAEMON_PID=$!
    it_record "$DAEMON_PID"
    daemon_ready "$IT_DIR/daemon.log" "$DAEMON_PID"
}

# daemon_ready LOG PID: waits for the daemon PID (its output in LOG) to say its
# port and answer /healthz; sets DAEMON_PORT and DAEMON_URL.
daemon_ready() {
    DAEMON_PORT=$(listen_port "$1" "$2") || return 1
    DAEMON_URL=http://127.0.0.1:$DAEMON_PORT
    wait_http "$DAEMON_URL/healthz" 200 "$2" || {
        tail -n 30 "$1" >&2
        return 1
    }
}

# stop_all: SIGTERM to every recorded PID (newest first), wait, then SIGKILL
# what is still there after 5 s; then the it_cleanup functions (the servers
# stopped first are the clients of what those stop: a daemon of its database).
stop_all() {
    local pid rev="" i f
    for pid in $IT_PIDS; do rev="$pid $rev"; done
    for pid in $rev; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $rev; do
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    IT_PIDS=""
    for f in $IT_CLEANUPS; do "$f"; done
}

# front_requests: number of requests the front has seen so far.
front_requests() {
    if [ -f "$FRONT_LOG" ]; then wc -l <"$FRONT_LOG" | tr -d ' '; else echo 0; fi
}

# to_page_digests FILE...: replaces fixture digests with the page's (digests.tsv).
to_page_digests() {
    sed -f <(awk -F '\t' '{ printf "s/%s/%s/g\n", $1, $2 }' "$IT_OUT/digests.tsv") "$@"
}

# --- assertions -------------------------------------------------------------

it_pass() { IT_PASSED=$((IT_PASSED + 1)); printf 'ok   %s\n' "$1"; }
it_fail() { IT_FAILED=$((IT_FAILED + 1)); printf 'FAIL %s\n' "$1"; }

# check NAME CMD...: passes when CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then it_pass "$name"; else it_fail "$name"; fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then
        it_pass "$1"
    else
        it_fail "$1"
        printf '     expected: %s\n     actual:   %s\n' "$2" "$3"
    fi
}

# check_file_eq NAME EXPECTED_FILE ACTUAL_FILE: byte for byte; shows a cat -A
# diff on failure.
check_file_eq() {
    if cmp -s "$2" "$3"; then
        it_pass "$1"
    else
        it_fail "$1"
        diff <(cat -A "$2") <(cat -A "$3") | head -n 40
    fi
}

# check_clean_stop PID: SIGTERM, and the daemon exits 0.
check_clean_stop() {
    kill -TERM "$1"
    wait "$1"
    check_eq "daemon $1 exits 0 on SIGTERM" 0 "$?"
}

# check_no_sanitizer_report LOG...: no ASan, LSan, TSan or UBSan report in the
# daemon logs (leaks are reported at exit, so after check_clean_stop).
check_no_sanitizer_report() {
    if grep -aEq 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' "$@"; then
        it_fail "daemon log has sanitizer reports"
        grep -aE 'Sanitizer|runtime error' "$@" | head -5
    else
        it_pass "daemon log has no sanitizer reports"
    fi
}

# finish: prints the plain summary line; exit status 1 when anything failed.
finish() {
    printf '%d passed, %d failed\n' "$IT_PASSED" "$IT_FAILED"
    [ "$IT_FAILED" -eq 0 ] && [ "$IT_PASSED" -gt 0 ]
}
