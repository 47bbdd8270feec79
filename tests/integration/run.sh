#!/usr/bin/env bash
# run.sh IMGMETA FIXTURE REGFRONT - end-to-end test of imgmeta (ctest "integration").
#
# Starts docker-registry on loopback, pushes the python:3.7-slim replica with
# imgmeta-fixture, puts regfront before it (Docker Hub-like bearer tokens, 307
# to a "CDN" with Last-Modified, request log), runs `imgmeta serve --mirror
# docker.io=<front>` and checks what a user sees:
#   (a) the Markdown page equals tests/cases/python-3.7-slim/expected.md byte for
#       byte once fixture digests are mapped back to the page's (?format=markdown
#       and Accept: text/markdown);
#   (b) the JSON carries, per platform, the page's values (expectations come
#       from tests/fixtures/python-3.7-slim.json and the page, not typed here);
#   (c) a repeat request is answered from the cache: the front sees no request;
#   (d) the HTTP thread default follows the CPUs the daemon may run on: its
#       start line says threads=$(nproc), and threads=1 under taskset to one CPU.
# Prints "N passed, N failed"; exits 1 when anything failed or could not start.
# IT_KEEP=1 leaves everything running (see lib.sh).
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq cmp; do
    command -v "$tool" >/dev/null || { echo "integration: needs $tool (Debian: apt-get install ${tool/cmp/diffutils})" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"
EXPECTED_MD=$IMGMETA_SOURCE_DIR/tests/cases/python-3.7-slim/expected.md


start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"

# Preconditions on the harness itself (not counted): the front hands out the
# tagged list through the token flow, and blob HEADs end at a Last-Modified.
precheck() {
    local tok lm layer
    tok=$(curl -s "$FRONT_URL/token?service=regfront&scope=repository:library/python:pull" | jq -r .token)
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "$FRONT_URL/v2/library/python/manifests/3.7-slim")" = 200 ] || return 1
    layer=$(head -n 1 "$IT_OUT/lastmod.tsv" | cut -f 1)
    lm=$(curl -sIL -H "Authorization: Bearer $tok" "$FRONT_URL/v2/library/python/blobs/$layer" |
        tr -d '\r' | sed -n 's/^Last-Modified: //p')
    [ "$lm" = "$(head -n 1 "$IT_OUT/lastmod.tsv" | cut -f 2)" ]
}
precheck || die "fixture registry behind the front does not answer as expected"

start_daemon || die "cannot start imgmeta serve"

IMAGE_URL=$DAEMON_URL/images/python/3.7-slim

# get NAME OUTFILE CURL-ARGS...: GET with curl; fails unless the answer is 200.
get() {
    local name=$1 out=$2 code
    shift 2
    code=$(curl -s -o "$out" -w '%{http_code}' --max-time 60 "$@")
    if [ "$code" != 200 ]; then
        it_log "$name: HTTP $code: $(head -c 300 "$out" 2>/dev/null)"
        return 1
    fi
}

# --- (a) Markdown, byte for byte ------------------------------------------------
n0=$(front_requests)
if get "markdown (?format=markdown)" "$IT_DIR/a1.md" "$IMAGE_URL?format=markdown"; then
    to_page_digests "$IT_DIR/a1.md" >"$IT_DIR/a1.page.md"
    check_file_eq "markdown via ?format=markdown equals the page" "$EXPECTED_MD" "$IT_DIR/a1.page.md"
else
    it_fail "markdown via ?format=markdown equals the page"
fi
n1=$(front_requests)
check "first request reached the registry through the mirror" [ "$n1" -gt "$n0" ]

if get "markdown (Accept)" "$IT_DIR/a2.md" -H 'Accept: text/markdown' "$IMAGE_URL"; then
    to_page_digests "$IT_DIR/a2.md" >"$IT_DIR/a2.page.md"
    check_file_eq "markdown via Accept: text/markdown equals the page" "$EXPECTED_MD" "$IT_DIR/a2.page.md"
else
    it_fail "markdown via Accept: text/markdown equals the page"
fi

# --- (b) JSON, per platform ---------------------------------------------------------
# The page's reconstructed dockerfile lines, per platform: [[line, ...], ...].
page_instructions() {
    awk '/^### /{p++} /^```dockerfile/{b=1; next} /^```/{b=0} b && !/^# [A-Z][a-z][a-z], /{print p "\t" $0}' \
        "$EXPECTED_MD" |
        jq -R -s 'split("\n") | map(select(length > 0) | capture("^(?<p>[0-9]+)\t(?<l>.*)$"))
                  | group_by(.p | tonumber) | map(map(.l))'
}

# Expected platforms from the seed: dates as RFC 3339 without fraction.
expected_platforms() {
    jq --argjson instr "$(page_instructions)" '
      def rfc3339: sub("\\.[0-9]+Z$"; "Z");
      def httpdate: strptime("%a, %d %b %Y %H:%M:%S GMT") | mktime | todate;
      [.platforms | to_entries[] | .key as $i | .value | {
        platform, digest: .manifest.digest, mediaType: .manifest.mediaType,
        dockerVersion: .docker_version, imageId: .config_digest,
        totalSize: ([.layers[].size] | add), defaultCommand: .cmd,
        history: [.history | to_entries[] | {created: (.value.created | rfc3339),
                  createdBy: .value.created_by, emptyLayer: (.value.empty_layer // false),
                  instruction: $instr[$i][.key]}],
        layers: [.layers[] | {digest, size, mediaType, lastModified: (.last_modified | httpdate)}]
      }]' "$SEED"
}

actual_platforms() {
    jq '[.platforms[] | {platform, digest, mediaType, dockerVersion, imageId, totalSize,
          defaultCommand,
          history: [.history[]? | {created, createdBy, emptyLayer, instruction}],
          layers: [.layers[]? | {digest, size, mediaType, lastModified}]}]' "$1"
}

check_json() {
    local exp act i np name
    if ! get "json" "$IT_DIR/b.json" "$IMAGE_URL" || ! jq -e . "$IT_DIR/b.json" >/dev/null 2>&1; then
        it_fail "JSON answer"
        return
    fi
    to_page_digests "$IT_DIR/b.json" >"$IT_DIR/b.page.json"
    check_eq "JSON top level: tag, list digest, list media type, 7 platforms" \
        "$(jq -c '[.tag, .list.digest, .list.mediaType, (.platforms | length)]' "$SEED")" \
        "$(jq -c '[.tag, .digest, .mediaType, (.platforms | length)]' "$IT_DIR/b.page.json")"
    exp=$(expected_platforms) || { it_fail "JSON expectations from the seed"; return; }
    act=$(actual_platforms "$IT_DIR/b.page.json") || { it_fail "JSON platforms"; return; }
    np=$(jq length <<<"$exp")
    for ((i = 0; i < np; i++)); do
        name="JSON platform $i ($(jq -r ".[$i].platform | [.os, .architecture, .variant // empty] | join(\"/\")" <<<"$exp"))"
        if jq -e --argjson a "$act" --argjson i "$i" '.[$i] == $a[$i]' <<<"$exp" >/dev/null; then
            it_pass "$name equals the page"
        else
            it_fail "$name equals the page"
            diff <(jq -S ".[$i]" <<<"$exp") <(jq -S ".[$i]" <<<"$act") | head -n 30
        fi
    done
}
check_json

# --- (c) the cache ---------------------------------------------------------------
n0=$(front_requests)
get "repeat markdown" "$IT_DIR/c.md" "$IMAGE_URL?format=markdown" &&
    get "repeat json" "$IT_DIR/c.json" "$IMAGE_URL"
rc=$?
n1=$(front_requests)
check_eq "repeat requests make no upstream request (front log lines)" "$n0" "$n1"
same_repeat() { [ "$rc" -eq 0 ] && cmp -s "$IT_DIR/a1.md" "$IT_DIR/c.md"; }
check "repeat answers are 200 and the same Markdown" same_repeat

# --- (d) HTTP threads: one per CPU of the affinity mask -------------------------
# started_threads LOG: the threads= field of the daemon's start line.
started_threads() { sed -n 's/.* event=listening .*threads=\([0-9]*\).*/\1/p' "$1"; }
# nproc counts the affinity mask too (OMP_* would override it).
ALLOWED=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
check_eq "default HTTP threads = the CPUs it may run on (nproc)" "$ALLOWED" \
    "$(started_threads "$IT_DIR/daemon.log")"
if ! command -v taskset >/dev/null; then
    it_log "skipped: the pinned daemon needs taskset (util-linux)"
elif [ "$ALLOWED" -lt 2 ]; then
    it_log "skipped: the pinned daemon: this process may run on one CPU only, so pinning it to one changes nothing"
else
    # The first CPU this shell may use (a cpuset need not hold CPU 0).
    CPU=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')
    taskset -c "$CPU" "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/pin.db" \
        --mirror "docker.io=$FRONT_URL" >"$IT_DIR/pin.log" 2>&1 &
    PIN_PID=$!
    it_record "$PIN_PID"
    if PIN_PORT=$(listen_port "$IT_DIR/pin.log" "$PIN_PID") &&
        wait_http "http://127.0.0.1:$PIN_PORT/healthz" 200 "$PIN_PID"; then
        check_eq "under taskset -c $CPU the daemon starts 1 HTTP thread" 1 \
            "$(started_threads "$IT_DIR/pin.log")"
        check "the pinned daemon answers the image" get "pinned json" "$IT_DIR/d.json" \
            "http://127.0.0.1:$PIN_PORT/images/python/3.7-slim"
    else
        it_fail "the daemon starts under taskset -c $CPU"
    fi
fi

finish
