#!/usr/bin/env bash
# policy.sh IMGMETA FIXTURE REGFRONT FAULTREG - the outbound security policy
# (SSRF) end to end (ctest "integration.policy"; SECURITY.md).
#
# Proves, against real processes on loopback:
#   - the docker.io mirror (regfront before docker-registry: token realm and
#     CDN redirects on the mirror's own host) keeps working;
#   - references to non-allowlisted registries (127.0.0.1:PORT, localhost,
#     169.254.169.254, 10.0.0.1, ...) are 403 refused_by_policy with a message
#     saying how to allow them, even when a real registry listens there;
#   - a mirror (faultreg) that redirects, or names a token realm, on another
#     host (localhost, 127.0.0.2, 169.254.169.254) is refused (403), before
#     any connection (fast); another port of the mirror's own host is allowed
#     (the documented rule);
#   - an allowlisted name that resolves to loopback is refused on the address
#     actually connected to; an --insecure-registries entry is reachable.
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT FAULTREG" >&2
    exit 2
fi
FAULTREG=$4
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"

# faultreg: redirects to the real registry under the name "localhost" (a
# different host than the mirror's 127.0.0.1), realm on 127.0.0.2.
start_faultreg --redirect-target "http://localhost:$REGISTRY_PORT" \
    --realm "http://127.0.0.2:$FRONT_PORT/token" || die "cannot start faultreg"
FAULT_PORT=$FR_PORT
FAULT_URL=$FR_URL

start_daemon --mirror "fault.test=$FAULT_URL" --request-timeout-ms 5000 \
    --mirror "other.test=http://127.0.0.1:$FAULT_PORT" ||
    die "cannot start imgmeta serve"

# expect NAME STATUS CODE PATH [MAX_SECONDS]: one GET; the status must be
# STATUS and, when CODE is not -, the error code CODE.
expect() {
    local name=$1 want=$2 code=$3 path=$4 max=${5:-30} out got gotcode t0 t1
    out=$IT_DIR/answer.json
    t0=$(date +%s%N)
    got=$(curl -s -o "$out" -w '%{http_code}' --max-time 60 "$DAEMON_URL$path")
    t1=$(date +%s%N)
    gotcode=$(jq -r '.error.code // "-"' "$out" 2>/dev/null)
    if [ "$got" = "$want" ] && { [ "$code" = - ] || [ "$gotcode" = "$code" ]; } &&
        [ $(((t1 - t0) / 1000000000)) -le "$max" ]; then
        it_pass "$name"
    else
        it_fail "$name"
        printf '     want %s %s within %ss; got %s %s after %sms: %s\n' "$want" "$code" "$max" \
            "$got" "$gotcode" "$(((t1 - t0) / 1000000))" "$(head -c 300 "$out")"
    fi
}

# --- the mirror works ---------------------------------------------------------
expect "docker.io mirror: token realm and CDN redirects on its own host" 200 - \
    "/images/python/3.7-slim"

# --- registries that are not allowlisted ------------------------------------
for ref in "127.0.0.1:5000/x/y" "localhost:5000/x/y" "localhost/x/y" \
    "127.0.0.1:$REGISTRY_PORT/library/python/3.7-slim" \
    "localhost:$REGISTRY_PORT/library/python/3.7-slim" \
    "127.0.0.1:$FRONT_PORT/library/python/3.7-slim" \
    "169.254.169.254/latest/meta-data" "metadata.google.internal/computemetadata/v1" \
    "10.0.0.1/x/y" "192.168.1.1:443/x/y" "0.0.0.0:80/x/y" "100.64.0.1/x/y" \
    "registry.example.com/x/y"; do
    expect "not allowlisted: $ref" 403 refused_by_policy "/images/$ref" 5
done
curl -s "$DAEMON_URL/images/localhost:5000/x/y" >"$IT_DIR/msg.json"
check "the refusal says how to allow it" grep -q -- "--allow-registries" "$IT_DIR/msg.json"

# --- a mirror's redirects and realms to other hosts -------------------------
expect "mirror redirect to http://localhost:<registry> refused" 403 refused_by_policy \
    "/images/fault.test/library/redirect/v1" 5
expect "mirror token realm on 127.0.0.2 refused" 403 refused_by_policy \
    "/images/fault.test/library/realm/v1" 5
expect "mirror itself still works" 200 - "/images/fault.test/library/ok/v1"

# A second faultreg whose targets are link-local (metadata) over https and the
# mirror's own host on another port (allowed: documented rule).
start_faultreg --redirect-target "https://169.254.169.254" \
    --realm "http://127.0.0.1:$REGISTRY_PORT/token" || die "cannot start faultreg 2"
FAULT2_PORT=$FR_PORT
DAEMON1_PID=$DAEMON_PID
DAEMON1_URL=$DAEMON_URL
start_daemon --db "$IT_DIR/cache2.db" --mirror "fault.test=http://127.0.0.1:$FAULT2_PORT" \
    --allow-registries "default,localhost:$REGISTRY_PORT,*.nip.test" \
    --insecure-registries "127.0.0.1:$REGISTRY_PORT" || die "cannot start imgmeta serve (2)"
DAEMON_PID2=$DAEMON_PID
expect "mirror redirect to https://169.254.169.254 refused before connecting" 403 \
    refused_by_policy "/images/fault.test/library/redirect/v1" 3
expect "mirror realm on its own host, another port: allowed (reaches that port)" 502 - \
    "/images/fault.test/library/realm/v1" 10

# --- the address actually connected to --------------------------------------
expect "allowlisted name resolving to loopback refused on the address" 403 \
    refused_by_policy "/images/localhost:$REGISTRY_PORT/library/python/3.7-slim" 5
expect "insecure registry on loopback reachable over http" 200 - \
    "/images/127.0.0.1:$REGISTRY_PORT/library/python/3.7-slim"
DAEMON_URL=$DAEMON1_URL
expect "first daemon still serves the mirror afterwards" 200 - "/images/python/3.7-slim"
check "first daemon still running" kill -0 "$DAEMON1_PID"

# Clean shutdowns, and no sanitizer or leak report (under ASan) from either.
check_clean_stop "$DAEMON1_PID"
check_clean_stop "$DAEMON_PID2"
check_no_sanitizer_report "$IT_DIR/daemon.log"

finish
