#!/usr/bin/env bash
# registry.sh IMGMETA FIXTURE REGFRONT - the registry client end to end (ctest
# "integration.registry"): every image kind, every kind of registry, verified
# and thrifty, as a user of `imgmeta serve` sees it.
#
# One docker-registry (R1, foreign-layer URLs allowed) holds:
#   library/python:3.7-slim  the python:3.7-slim replica (Docker list, 7 platforms)
#   team/oci:v1              OCI index: 2 OCI manifests + a BuildKit-style
#                            attestation (unknown/unknown, attestation-manifest)
#   team/single:v1           one Docker schema2 manifest, no list
#   team/foreign:v1          schema2 with a foreign layer (urls -> the front's CDN)
#   team/big:v1              an OCI manifest of ~100 KB
# R2 serves the same storage with htpasswd Basic auth. regfront fronts provide
# bearer tokens, CDN redirects with Last-Modified, a request log, and faults
# (429 + Retry-After, slow answers, corrupted bodies). Checks:
#   - at start the daemon asks its registry GET /v2/ once (--prewarm) and
#     learns the token realm: the first resolution asks for its token first,
#     no 401 (with --prewarm 0 it meets the 401); a registry down at start
#     does not stop the daemon, and is used as usual once it is up;
#   - request counts of a cold python:3.7-slim resolution (1 + 7 + 7 GETs and
#     one HEAD per distinct layer; token GETs apart) and of a revalidation
#     after the tag TTL (exactly one HEAD); another repository of the same
#     registry then asks the remembered token realm first (no 401);
#   - a registry serving blobs in place (no 307): no CDN requests, same answer;
#   - JSON of every fixture agrees with `skopeo inspect` of the same registry
#     (digest, layers, sizes, os, architecture, created);
#   - attestations are kept apart and listed as "unknown; unknown";
#   - foreign layers: size from the manifest, Last-Modified from their URL;
#   - 429 with Retry-After is waited for; a long one is a 503 with Retry-After;
#     a slow upstream is a 504; a corrupted manifest is a 502 digest_mismatch;
#     an oversized manifest is a 502 too_large; Basic auth without
#     credentials is a clear 502.
# Prints "N passed, N failed"; exits 1 when anything failed or could not start.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq skopeo htpasswd sha256sum; do
    command -v "$tool" >/dev/null || {
        echo "integration.registry: needs $tool (cmake/install-deps.sh test)" >&2
        exit 1
    }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"


# --- registries ---------------------------------------------------------------

# start_reg NAME STORAGE EXTRA_YAML [STATUS]: docker-registry on a port of the
# kernel's choosing (its log says which) with storage STORAGE; sets NAME_URL
# (e.g. R1_URL) and NAME_ADDR (host:port).
start_reg() {
    local name=$1 storage=$2 extra=$3 dir=$IT_DIR/$1 port pid
    mkdir -p "$dir" "$storage" || return 1
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
http:
  addr: 127.0.0.1:0
  secret: imgmeta-integration-test
$extra
EOF
    : >"$dir/registry.log" # emptied first (lib.sh, listen_port)
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    pid=$!
    it_record "$pid"
    port=$(listen_port "$dir/registry.log" "$pid") || return 1
    printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
    printf -v "${name}_ADDR" '%s' "127.0.0.1:$port"
    wait_http "http://127.0.0.1:$port/v2/" "${4:-200}" "$pid" || {
        tail -n 20 "$dir/registry.log" >&2
        return 1
    }
}

# front NAME ARGS...: a regfront before R1 on a port of the kernel's choosing
# (FRONT_AT=PORT: on that port instead); sets NAME_URL and NAME_LOG.
front() {
    local name=$1 pid port
    shift
    : >"$IT_DIR/$name.stderr" # emptied first (lib.sh, listen_port)
    "$REGFRONT" --listen "127.0.0.1:${FRONT_AT:-0}" --upstream "$R1_URL" \
        --lastmod "$IT_OUT/lastmod.tsv" --log "$IT_DIR/$name.log" "$@" \
        2>"$IT_DIR/$name.stderr" &
    pid=$!
    it_record "$pid"
    port=$(listen_port "$IT_DIR/$name.stderr" "$pid") || return 1
    printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
    printf -v "${name}_LOG" '%s' "$IT_DIR/$name.log"
    # /token answers 200 with or without --bearer (a line in the log: counts
    # below only look at what follows)
    wait_http "http://127.0.0.1:$port/token?service=probe" 200 "$pid"
}

# daemon NAME UPSTREAM_URL ARGS...: imgmeta serve mirroring docker.io to
# UPSTREAM_URL; sets NAME_URL.
daemon() {
    local name=$1 up=$2 pid
    shift 2
    : >"$IT_DIR/$name.daemon.log" # emptied first (lib.sh, listen_port)
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/$name.db" \
        --mirror "docker.io=$up" "$@" >"$IT_DIR/$name.daemon.log" 2>&1 &
    pid=$!
    it_record "$pid"
    daemon_ready "$IT_DIR/$name.daemon.log" "$pid" || return 1
    printf -v "${name}_URL" '%s' "$DAEMON_URL"
}

# probed NAME: waits (at most IT_WAIT_S) until daemon NAME has logged its
# start-up probe of docker.io (its mirror); prints that log line.
probed() {
    local i line
    for i in $(seq 1 $((IT_WAIT_S * 20))); do
        line=$(grep -m 1 'event=prewarm registry=docker.io ' "$IT_DIR/$1.daemon.log") &&
            { printf '%s\n' "$line"; return 0; }
        sleep 0.05
    done
    it_log "daemon $1 logged no start-up probe"
    return 1
}

# fetch URL OUT: GET; prints the status; the body goes to OUT, headers to OUT.h.
fetch() {
    curl -s -D "$2.h" -o "$2" -w '%{http_code}' --max-time 60 "$1"
}

# --- fixtures -------------------------------------------------------------------

# blob REPO TEXT: pushes TEXT (exact bytes) as a blob of REPO; prints its digest.
blob() {
    local f=$IT_DIR/blob.$RANDOM
    printf '%s' "$2" >"$f"
    "$FIXTURE" blob --registry "$R1_URL" --repo "$1" --file "$f"
}

# manifest REPO TAG|@ MEDIATYPE JSON: pushes JSON (compacted by jq) as is.
manifest() {
    local f=$IT_DIR/manifest.$RANDOM
    jq -cj . <<<"$4" >"$f" || return 1
    "$FIXTURE" manifest --registry "$R1_URL" --repo "$1" --tag "$2" --type "$3" --file "$f"
}

size_of() { printf '%s' "$1" | wc -c | tr -d ' '; }

MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
MT_OCI_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
MT_V2=application/vnd.docker.distribution.manifest.v2+json
MT_V2_CONFIG=application/vnd.docker.container.image.v1+json
MT_V2_LAYER=application/vnd.docker.image.rootfs.diff.tar.gzip
MT_FOREIGN=application/vnd.docker.image.rootfs.foreign.diff.tar.gzip

# config ARCH OS VARIANT CREATED LAYER_DIGESTS...: an image config.
config() {
    local arch=$1 os=$2 variant=$3 created=$4
    shift 4
    jq -cnj --arg a "$arch" --arg o "$os" --arg v "$variant" --arg c "$created" \
        --args '{architecture: $a, os: $o} + (if $v == "" then {} else {variant: $v} end)
          + {created: $c, config: {Cmd: ["sh"]},
             history: [{created: $c, created_by: "/bin/sh -c #(nop) ADD file:fixture in / "}],
             rootfs: {type: "layers", diff_ids: $ARGS.positional}}' "$@"
}

# image REPO MANIFEST_MT CONFIG_MT LAYER_MT ARCH OS VARIANT CREATED LAYER_TEXTS...:
# pushes layers, config and manifest (by digest); prints "DIGEST SIZE".
image() {
    local repo=$1 mmt=$2 cmt=$3 lmt=$4 arch=$5 os=$6 variant=$7 created=$8 t d
    local layers="[]" digests=() cfg cd m md
    shift 8
    for t in "$@"; do
        d=$(blob "$repo" "$t") || return 1
        digests+=("$d")
        layers=$(jq -c --arg mt "$lmt" --arg d "$d" --argjson s "$(size_of "$t")" \
            '. + [{mediaType: $mt, size: $s, digest: $d}]' <<<"$layers")
    done
    cfg=$(config "$arch" "$os" "$variant" "$created" "${digests[@]}")
    cd=$(blob "$repo" "$cfg") || return 1
    m=$(jq -cn --arg mmt "$mmt" --arg cmt "$cmt" --arg cd "$cd" \
        --argjson cs "$(size_of "$cfg")" --argjson layers "$layers" \
        '{schemaVersion: 2, mediaType: $mmt,
          config: {mediaType: $cmt, size: $cs, digest: $cd}, layers: $layers}')
    md=$(manifest "$repo" @ "$mmt" "$m") || return 1
    printf '%s' "$m" >"$IT_DIR/last-image.json"
    printf '%s %s\n' "$md" "$(size_of "$m")"
}

push_oci() {
    local amd arm att idx intoto empty att_m
    read -r amd amd_size < <(image team/oci "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" \
        "$MT_OCI_LAYER" amd64 linux "" 2024-01-02T03:04:05Z "oci base" "oci amd64") || return 1
    read -r arm arm_size < <(image team/oci "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" \
        "$MT_OCI_LAYER" arm64 linux v8 2024-01-02T04:05:06Z "oci base" "oci arm64, longer") || return 1
    intoto=$(blob team/oci '{"_type":"https://in-toto.io/Statement/v0.1"}') || return 1
    empty=$(blob team/oci '{}') || return 1
    att_m=$(jq -cn --arg e "$empty" --arg i "$intoto" --arg cmt "$MT_OCI_CONFIG" \
        --arg mt "$MT_OCI_MANIFEST" \
        '{schemaVersion: 2, mediaType: $mt, config: {mediaType: $cmt, size: 2, digest: $e},
          layers: [{mediaType: "application/vnd.in-toto+json", size: 45, digest: $i,
                    annotations: {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]}')
    att=$(manifest team/oci @ "$MT_OCI_MANIFEST" "$att_m") || return 1
    idx=$(jq -cn --arg mi "$MT_OCI_INDEX" --arg mm "$MT_OCI_MANIFEST" \
        --arg amd "$amd" --argjson asz "$amd_size" --arg arm "$arm" --argjson rs "$arm_size" \
        --arg att "$att" --argjson ts "$(size_of "$att_m")" \
        '{schemaVersion: 2, mediaType: $mi, manifests: [
           {mediaType: $mm, size: $asz, digest: $amd,
            platform: {architecture: "amd64", os: "linux"}},
           {mediaType: $mm, size: $rs, digest: $arm,
            platform: {architecture: "arm64", os: "linux", variant: "v8"}},
           {mediaType: $mm, size: $ts, digest: $att,
            annotations: {"vnd.docker.reference.digest": $amd,
                          "vnd.docker.reference.type": "attestation-manifest"},
            platform: {architecture: "unknown", os: "unknown"}}]}')
    OCI_DIGEST=$(manifest team/oci v1 "$MT_OCI_INDEX" "$idx") || return 1
    OCI_AMD=$amd OCI_ARM=$arm OCI_ATT=$att
}

push_single() {
    local d s
    read -r d s < <(image team/single "$MT_V2" "$MT_V2_CONFIG" "$MT_V2_LAYER" amd64 linux "" \
        2023-05-06T07:08:09Z "single one" "single two" "single three") || return 1
    SINGLE_DIGEST=$("$FIXTURE" retag --registry "$R1_URL" --repo team/single --from "$d" \
        --tag v1) || return 1
}

# A foreign layer whose URL is a python layer on the front's CDN path (so its
# Last-Modified is the fixture's); declared 12345678 bytes.
push_foreign() {
    local layer lm lmt=$MT_V2_LAYER base cfg cd m fd
    layer=$(head -n 1 "$IT_OUT/lastmod.tsv" | cut -f 1)
    FOREIGN_LM=$(head -n 1 "$IT_OUT/lastmod.tsv" | cut -f 2)
    base=$(blob team/foreign "foreign base") || return 1
    fd=sha256:$(printf 'not here' | sha256sum | cut -d ' ' -f 1)
    cfg=$(config amd64 windows "" 2022-02-03T04:05:06Z "$base" "$fd")
    cd=$(blob team/foreign "$cfg") || return 1
    m=$(jq -cn --arg mt "$MT_V2" --arg cmt "$MT_V2_CONFIG" --arg cd "$cd" \
        --argjson cs "$(size_of "$cfg")" --arg lmt "$lmt" --arg b "$base" --arg fmt "$MT_FOREIGN" \
        --arg fd "$fd" --arg url "$F1_URL/cdn/library/python/blobs/$layer" \
        '{schemaVersion: 2, mediaType: $mt, config: {mediaType: $cmt, size: $cs, digest: $cd},
          layers: [{mediaType: $lmt, size: 12, digest: $b},
                   {mediaType: $fmt, size: 12345678, digest: $fd, urls: [$url]}]}')
    FOREIGN_DIGEST=$(manifest team/foreign v1 "$MT_V2" "$m") || return 1
    FOREIGN_LAYER=$fd
}

push_big() {
    local d s pad
    read -r d s < <(image team/big "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$MT_OCI_LAYER" \
        amd64 linux "" 2021-01-01T00:00:00Z "big") || return 1
    pad=$(head -c 75000 /dev/zero | tr '\0' 'x')
    local m
    m=$(jq -c --arg p "$pad" '.annotations = {"org.example.padding": $p}' \
        "$IT_DIR/last-image.json") || return 1
    BIG_DIGEST=$(manifest team/big v1 "$MT_OCI_MANIFEST" "$m") || return 1
}

# A signed schema1 manifest laid out as libtrust does (docker-registry refuses
# to store one without schema1 enabled and a real libtrust key, so regfront
# serves it): the pretty payload without its closing "\n}", the signatures,
# the tail. Its digest is over the payload. The signature itself is not
# verified by anyone (imgmeta pins content by digest), so a placeholder does.
make_schema1() {
    local l1 l2 payload flen prot
    l1=$(blob team/legacy "legacy layer one") || return 1
    l2=$(blob team/legacy "legacy layer two, the base") || return 1
    payload=$IT_DIR/schema1.payload
    jq -n --indent 3 --arg l1 "$l1" --arg l2 "$l2" '{schemaVersion: 1, name: "team/legacy",
        tag: "v1", architecture: "amd64",
        fsLayers: [{blobSum: $l1}, {blobSum: $l2}, {blobSum: $l2}],
        history: [
          {v1Compatibility: ({id: "c", parent: "b", architecture: "amd64", os: "linux",
             created: "2016-03-04T05:06:07Z", docker_version: "1.10.3",
             config: {Cmd: ["sh"]}, container_config: {Cmd: ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"]},
             throwaway: true} | tojson)},
          {v1Compatibility: ({id: "b", parent: "a", created: "2016-03-04T05:06:06Z",
             container_config: {Cmd: ["/bin/sh", "-c", "#(nop) ADD file:legacy in / "]}} | tojson)},
          {v1Compatibility: ({id: "a", created: "2016-03-04T05:06:05Z",
             container_config: {Cmd: ["/bin/sh", "-c", "#(nop) ADD file:base in / "]}} | tojson)}
        ]}' | head -c -1 >"$payload" || return 1 # jq's final newline is not part of it
    flen=$(($(wc -c <"$payload") - 2))
    prot=$(printf '{"formatLength":%d,"formatTail":"Cn0","time":"2016-03-04T05:06:08Z"}' "$flen" |
        base64 -w0 | tr '+/' '-_' | tr -d '=')
    {
        head -c "$flen" "$payload"
        printf ',\n   "signatures": [\n      {\n         "header": {"alg": "ES256"},\n'
        printf '         "signature": "cGxhY2Vob2xkZXI",\n         "protected": "%s"\n      }\n   ]\n}' "$prot"
    } >"$IT_DIR/schema1.signed"
    SCHEMA1_DIGEST=sha256:$(sha256sum <"$payload" | cut -d ' ' -f 1)
    SCHEMA1_LAYERS="$l1 $l2"
}

# --- start -------------------------------------------------------------------------

STORAGE=$IT_DIR/storage
start_reg R1 "$STORAGE" "validation:
  manifests:
    urls:
      allow:
        - '^http://127\.0\.0\.1:'" || die "cannot start docker-registry"
REGISTRY_URL=$R1_URL
fill_fixture || die "imgmeta-fixture push failed"
front F1 --bearer || die "cannot start regfront"
push_oci || die "cannot push the OCI index fixture"
push_single || die "cannot push the schema2 fixture"
push_foreign || die "cannot push the foreign-layer fixture"
push_big || die "cannot push the big manifest fixture"
daemon D1 "$F1_URL" --tag-ttl 1 || die "cannot start imgmeta serve"

# --- request counts ----------------------------------------------------------------

# count LOG REGEX: lines of a front log matching REGEX (extended).
count() { grep -cE "$2" "$1"; }

# The probe at start: one GET /v2/, its 401 names the realm; the daemon logs it.
start_probe() {
    local line
    line=$(probed D1)
    check "start-up probe logged: docker.io (the mirror), bearer, its realm, ms" \
        grep -qE "outcome=bearer ms=[0-9]+ url=\"$F1_URL/v2/\" realm=\"$F1_URL/token\"" \
        <<<"$line"
    check_eq "start-up probe: one GET /v2/ (answered 401), nothing else" \
        "GET /v2/ 401" "$(grep -vE '^GET /token\?service=probe ' "$F1_LOG")"
}

cold_counts() {
    local code layers n0
    layers=$(jq '[.platforms[].layers[].digest] | unique | length' "$SEED")
    n0=$(wc -l <"$F1_LOG")
    code=$(fetch "$D1_URL/images/python/3.7-slim" "$IT_DIR/python.json")
    check_eq "cold python:3.7-slim answers 200" 200 "$code"
    tail -n +"$((n0 + 1))" "$F1_LOG" >"$IT_DIR/cold.log"
    local L=$IT_DIR/cold.log
    check_eq "cold: 1 + 7 manifest GETs (list, then each platform)" 8 \
        "$(count "$L" '^GET /v2/library/python/manifests/[^ ]+ 200$')"
    check_eq "cold: 7 config GETs" 7 "$(count "$L" '^GET /v2/library/python/blobs/')"
    check_eq "cold: one HEAD per distinct layer ($layers)" "$layers" \
        "$(count "$L" '^HEAD /v2/library/python/blobs/')"
    check_eq "cold, realm probed at start: one token GET and no 401" "1 0" \
        "$(count "$L" '^GET /token\?.*scope=') $(count "$L" ' 401$')"
    check_eq "cold, realm probed at start: the token came before any registry request" \
        "/token" "$(head -n 1 "$L" | cut -d ' ' -f 2 | cut -d '?' -f 1)"
    check_eq "cold: the CDN is asked exactly what the registry redirected" "7 $layers" \
        "$(count "$L" '^GET /cdn/') $(count "$L" '^HEAD /cdn/')"
    check_eq "cold: nothing else (no manifest HEAD, no retry, no tag list)" \
        "$((8 + 7 + layers + 1 + 7 + layers))" "$(wc -l <"$L" | tr -d ' ')"
}

warm_counts() {
    local code n0
    sleep 2 # past --tag-ttl 1
    n0=$(wc -l <"$F1_LOG")
    code=$(fetch "$D1_URL/images/python/3.7-slim" "$IT_DIR/python2.json")
    tail -n +"$((n0 + 1))" "$F1_LOG" >"$IT_DIR/warm.log"
    check_eq "warm revalidation after the TTL answers 200" 200 "$code"
    check_eq "warm revalidation costs exactly one manifest HEAD" \
        "HEAD /v2/library/python/manifests/3.7-slim 200" "$(cat "$IT_DIR/warm.log")"
    check "warm answer equals the cold one" cmp -s "$IT_DIR/python.json" "$IT_DIR/python2.json"
}

# A repository the daemon has no token for, on a registry it has talked to:
# the remembered realm (learnt by the start-up probe) is asked first (no 401
# round trip).
realm_counts() {
    local code n0 L=$IT_DIR/realm.log
    n0=$(wc -l <"$F1_LOG")
    code=$(fetch "$D1_URL/images/team/single/v1" "$IT_DIR/single-first.json")
    tail -n +"$((n0 + 1))" "$F1_LOG" >"$L"
    check_eq "another repository of a known registry answers 200" 200 "$code"
    check_eq "another repository: token first (its scope), no 401" "1 0" \
        "$(count "$L" '^GET /token\?.*scope=repository%3Ateam%2Fsingle%3Apull ') $(count "$L" ' 401$')"
    check_eq "another repository: the token came before any registry request" \
        "/token" "$(head -n 1 "$L" | cut -d ' ' -f 2 | cut -d '?' -f 1)"
}

# --prewarm 0: nothing is asked at start, and the first resolution meets the
# 401 (the challenge names the realm) before it asks for its token.
prewarm_off() {
    local code n0 n1 L=$IT_DIR/noprobe.log
    n0=$(wc -l <"$F1_LOG")
    daemon D0 "$F1_URL" --prewarm 0 || { check "start a --prewarm 0 daemon" false; return; }
    n1=$(wc -l <"$F1_LOG")
    code=$(fetch "$D0_URL/images/team/single/v1" "$IT_DIR/noprobe.json")
    tail -n +"$((n1 + 1))" "$F1_LOG" >"$L"
    check_eq "--prewarm 0: nothing asked at start, no probe logged" "0 0" \
        "$((n1 - n0)) $(grep -c 'event=prewarm' "$IT_DIR/D0.daemon.log")"
    check_eq "--prewarm 0: the first resolution answers 200" 200 "$code"
    check_eq "--prewarm 0: it meets the 401 first, then asks for the token" \
        "GET /v2/team/single/manifests/v1 401|/token" \
        "$(head -n 1 "$L")|$(sed -n 2p "$L" | cut -d ' ' -f 2 | cut -d '?' -f 1)"
}

# A registry that is down when the daemon starts: the probe fails (logged),
# the daemon serves anyway, and once the registry is up a resolution works
# as without the probe (meeting the 401).
registry_down_at_start() {
    local port line code
    # the front's port must be known before it starts (the daemon is started
    # first, against it): a probed one, which another process could take
    # before the front binds it
    port=$(free_port) || { check "a free port for a late front" false; return; }
    daemon DL "http://127.0.0.1:$port" || { check "start a daemon before its registry" false; return; }
    line=$(probed DL)
    check "registry down at start: the probe failure is logged, the daemon runs" \
        grep -qE "level=warn event=prewarm registry=docker.io outcome=failed .*msg=\"" <<<"$line"
    check_eq "registry down at start: /healthz answers 200" 200 \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$DL_URL/healthz")"
    FRONT_AT=$port front FL --bearer || { check "start the late front on port $port" false; return; }
    code=$(fetch "$DL_URL/images/team/single/v1" "$IT_DIR/late.json")
    check_eq "registry up later: the resolution answers 200, the image's digest" \
        "200 $SINGLE_DIGEST" "$code $(jq -r .digest "$IT_DIR/late.json")"
    check_eq "registry up later: it met the 401 as without a probe" \
        "GET /v2/team/single/manifests/v1 401" \
        "$(grep -vE '^GET /token\?service=probe ' "$FL_LOG" | head -n 1)"
}

# A registry that serves its blobs itself (no 307, no CDN hop): the same
# requests minus the CDN's, and the same answer, layer dates included (here
# from the blob answers' own Last-Modified).
direct_blobs() {
    local code layers L=$IT_DIR/FD.log
    layers=$(jq '[.platforms[].layers[].digest] | unique | length' "$SEED")
    front FD --bearer --direct-blobs || { check "start a --direct-blobs front" false; return; }
    daemon DD "$FD_URL" || { check "start a daemon on the --direct-blobs front" false; return; }
    code=$(fetch "$DD_URL/images/python/3.7-slim" "$IT_DIR/python-direct.json")
    check_eq "blobs served in place: cold python:3.7-slim answers 200" 200 "$code"
    check_eq "blobs served in place: 7 config GETs and one HEAD per layer, no redirect" \
        "7 $layers 0 0" "$(count "$L" '^GET /v2/library/python/blobs/[^ ]+ 200$') $(count "$L" \
        '^HEAD /v2/library/python/blobs/[^ ]+ 200$') $(count "$L" ' 307$') $(count "$L" '^[A-Z]+ /cdn/')"
    check "blobs served in place: the same answer as through the CDN, dates included" \
        cmp -s "$IT_DIR/python.json" "$IT_DIR/python-direct.json"
}

# A front that also keeps manifests by digest (--keep-digests, which the
# benchmark uses to take the registry's CPU out of stage 2): once a daemon has
# resolved the image by digest through it, a second daemon's resolution by
# digest is answered entirely from what the front kept, with the registry
# stopped (SIGSTOP), and gives the same answer.
kept_digests() {
    local code rpid
    rpid=$(pgrep -f "serve $IT_DIR/R1/config.yml") || { check "find R1's pid" false; return; }
    front FK --bearer --direct-blobs --cdn-cache --keep-digests ||
        { check "start a --keep-digests front" false; return; }
    daemon DK1 "$FK_URL" && daemon DK2 "$FK_URL" ||
        { check "start two daemons on the --keep-digests front" false; return; }
    code=$(fetch "$DK1_URL/images/library/python@$LIST_DIGEST" "$IT_DIR/kept1.json")
    check_eq "--keep-digests: the first resolution by digest answers 200" 200 "$code"
    kill -STOP "$rpid"
    code=$(fetch "$DK2_URL/images/library/python@$LIST_DIGEST" "$IT_DIR/kept2.json")
    kill -CONT "$rpid"
    check_eq "--keep-digests: with the registry stopped, a fresh daemon's answers 200" \
        200 "$code"
    check "--keep-digests: the same answer as the first" \
        cmp -s "$IT_DIR/kept1.json" "$IT_DIR/kept2.json"
    check_eq "--keep-digests: the front kept every manifest (7 by digest + the list, twice)" \
        16 "$(count "$IT_DIR/FK.log" '^GET /v2/library/python/manifests/sha256:[^ ]+ 200$')"
}

# A new tag whose image shares its layers with one already described (a
# rebuild on the same base): what the cache knows below the root is not asked
# again. Its manifests and configs are new and fetched; its layers' sizes and
# dates come from the cache (--layer-ttl, default a day), so no HEAD and no
# CDN hop for them. The answer is byte for byte what a daemon with an empty
# cache gives. With --layer-ttl 0 every layer is asked again.
known_layers() {
    local code n0 layers L=$IT_DIR/known.log
    ( IT_OUT=$IT_DIR/fx-variant fill_fixture push-variant --variant 1 --tag 3.7-slim-v1 ) \
        >/dev/null || { check "push a rebuilt variant of python:3.7-slim" false; return; }
    layers=$(jq '[.platforms[].layers[].digest] | unique | length' "$SEED")
    n0=$(wc -l <"$F1_LOG")
    code=$(fetch "$D1_URL/images/python/3.7-slim-v1" "$IT_DIR/variant.json")
    tail -n +"$((n0 + 1))" "$F1_LOG" >"$L"
    check_eq "a rebuilt variant on the same layers answers 200" 200 "$code"
    check_eq "known layers: list + 7 manifests, 7 configs, no layer HEAD, no CDN HEAD" \
        "8 7 0 0" "$(count "$L" '^GET /v2/library/python/manifests/[^ ]+ 200$') $(count "$L" \
        '^GET /v2/library/python/blobs/') $(count "$L" '^HEAD /v2/') $(count "$L" '^HEAD /cdn/')"
    daemon DV "$F1_URL" --layer-ttl 0 || { check "start a daemon with --layer-ttl 0" false; return; }
    code=$(fetch "$DV_URL/images/python/3.7-slim-v1" "$IT_DIR/variant-empty.json")
    check_eq "the variant from an empty cache answers 200" 200 "$code"
    check "known layers: the same answer as from an empty cache, dates included" \
        cmp -s "$IT_DIR/variant.json" "$IT_DIR/variant-empty.json"
    fetch "$DV_URL/images/python/3.7-slim" "$IT_DIR/python-dv.json" >/dev/null
    n0=$(wc -l <"$F1_LOG")
    ( IT_OUT=$IT_DIR/fx-variant2 fill_fixture push-variant --variant 2 --tag 3.7-slim-v2 ) \
        >/dev/null || { check "push a second variant" false; return; }
    code=$(fetch "$DV_URL/images/python/3.7-slim-v2" "$IT_DIR/variant2.json")
    tail -n +"$((n0 + 1))" "$F1_LOG" >"$L"
    check_eq "--layer-ttl 0: every layer is asked again ($layers HEADs)" "200 $layers" \
        "$code $(count "$L" '^HEAD /v2/library/python/blobs/')"
}

it_log "setup done in ${SECONDS}s"; start_probe
cold_counts
warm_counts
realm_counts
prewarm_off
registry_down_at_start
direct_blobs
kept_digests
known_layers

# --- JSON against skopeo --------------------------------------------------------------

SKOPEO=(skopeo --command-timeout 60s)

# skopeo_view REPO REF: what skopeo says of REPO:REF (tag) on R1, shaped like
# ours: {digest, mediaType, platforms: [{os, architecture, variant, digest,
# created, layers: [{digest, size}]}]} - attestations left out.
skopeo_view() {
    local repo=$1 ref=$2 raw top d plats="[]" entries e cfg m
    raw=$IT_DIR/skopeo.raw
    "${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R1_ADDR/$repo:$ref" >"$raw" || return 1
    top=sha256:$(sha256sum <"$raw" | cut -d ' ' -f 1)
    if jq -e '.manifests' "$raw" >/dev/null; then
        entries=$(jq -c '[.manifests[] | select(.annotations["vnd.docker.reference.type"]
                  != "attestation-manifest") | {digest, platform}]' "$raw")
    else
        entries=$(jq -cn --arg d "$top" '[{digest: $d}]')
    fi
    for e in $(jq -c '.[]' <<<"$entries"); do
        d=$(jq -r .digest <<<"$e")
        m=$("${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R1_ADDR/$repo@$d") || return 1
        cfg=$("${SKOPEO[@]}" inspect --tls-verify=false --config "docker://$R1_ADDR/$repo@$d") || return 1
        plats=$(jq -c --arg d "$d" --argjson m "$m" --argjson c "$cfg" \
            '. + [{os: $c.os, architecture: $c.architecture, variant: $c.variant, digest: $d,
                   created: ($c.created | sub("\\.[0-9]+"; "")),
                   layers: [$m.layers[] | {digest, size}]}]' <<<"$plats")
    done
    jq -cn --arg d "$top" --arg mt "$(jq -r '.mediaType // empty' "$raw")" --argjson p "$plats" \
        '{digest: $d, mediaType: $mt, platforms: $p}'
}

# ours_view JSON_FILE: the same shape from imgmeta's JSON ("created" is the
# config's, which the history's last step carries).
ours_view() {
    jq -c '.digest as $top | {digest, mediaType, platforms: [.platforms[] | {os: .platform.os,
            architecture: .platform.architecture, variant: .platform.variant,
            digest: (.digest // $top), created: ([.history[]?.created] | last),
            layers: [.layers[] | {digest, size}]}]}' "$1"
}

agree_with_skopeo() {
    local name=$1 repo=$2 tag=$3 route=$4 code exp act
    code=$(fetch "$D1_URL/images/$route" "$IT_DIR/$name.json")
    if [ "$code" != 200 ]; then
        it_fail "$name: JSON agrees with skopeo inspect (HTTP $code: $(head -c 300 "$IT_DIR/$name.json"))"
        return
    fi
    exp=$(skopeo_view "$repo" "$tag") || { it_fail "$name: skopeo inspect failed"; return; }
    act=$(ours_view "$IT_DIR/$name.json")
    if [ "$(jq -S . <<<"$exp")" = "$(jq -S . <<<"$act")" ]; then
        it_pass "$name: JSON agrees with skopeo inspect (digest, layers, sizes, os, arch, created)"
    else
        it_fail "$name: JSON agrees with skopeo inspect"
        diff <(jq -S . <<<"$exp") <(jq -S . <<<"$act") | head -n 30
    fi
}

it_log "counts done at ${SECONDS}s"; agree_with_skopeo python library/python 3.7-slim python/3.7-slim
agree_with_skopeo oci team/oci v1 team/oci/v1
agree_with_skopeo single team/single v1 team/single/v1
agree_with_skopeo foreign team/foreign v1 team/foreign/v1

# --- what each kind looks like ----------------------------------------------------

check_eq "OCI index: media type and the two image platforms" \
    "$MT_OCI_INDEX linux/amd64 linux/arm64/v8" \
    "$(jq -r '[.mediaType] + [.platforms[].platform | [.os, .architecture, .variant // empty] | join("/")] | join(" ")' "$IT_DIR/oci.json")"
check_eq "OCI index: the attestation is kept apart and linked to the image it attests" \
    "$OCI_ATT $OCI_AMD" \
    "$(jq -r '.attestations[0] | [.digest, .attests] | join(" ")' "$IT_DIR/oci.json")"
code=$(fetch "$D1_URL/images/team/oci/v1?format=markdown" "$IT_DIR/oci.md")
check "OCI index: Markdown lists the attestation as 'unknown; unknown'" \
    grep -q -- '-	unknown; unknown' "$IT_DIR/oci.md"
check_eq "schema2 without a list: one platform, its own digest" \
    "$SINGLE_DIGEST $MT_V2 1" \
    "$(jq -r '[.digest, .mediaType, (.platforms | length)] | join(" ")' "$IT_DIR/single.json")"
check_eq "foreign layer: size from the manifest, Last-Modified from its URL" \
    "12345678 $(date -u -d "$FOREIGN_LM" +%Y-%m-%dT%H:%M:%SZ)" \
    "$(jq -r --arg d "$FOREIGN_LAYER" '.platforms[0].layers[] | select(.digest == $d) | "\(.size) \(.lastModified)"' "$IT_DIR/foreign.json")"

# --- faults -----------------------------------------------------------------------

# error_is NAME URL STATUS CODE MESSAGE_PART: the daemon answers STATUS with
# {"error": {"code": CODE, "message": ...MESSAGE_PART...}}.
error_is() {
    local name=$1 url=$2 status=$3 ecode=$4 part=$5 code out=$IT_DIR/err.$RANDOM
    code=$(fetch "$url" "$out")
    local got
    got="$code $(jq -r '.error.code' "$out" 2>/dev/null)"
    if [ "$got" = "$status $ecode" ] && jq -r '.error.message' "$out" | grep -qF -- "$part"; then
        it_pass "$name"
    else
        it_fail "$name"
        printf '     expected: %s %s (message with "%s")\n     actual:   %s\n' \
            "$status" "$ecode" "$part" "$(head -c 400 "$out")"
    fi
    ERR_OUT=$out
}

it_log "kinds done at ${SECONDS}s"
# 429 twice, Retry-After: 1 -> waited for, then 200.
front F2 --fault-429 2 --retry-after 1 || die "cannot start regfront (429)"
daemon D2 "$F2_URL" || die "cannot start imgmeta serve (429)"
t0=$(date +%s%N)
code=$(fetch "$D2_URL/images/team/single/v1" "$IT_DIR/429.json")
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "429 with Retry-After: 1, twice: retried, then 200" \
    "200 2 1" "$code $(count "$F2_LOG" ' 429$') $(count "$F2_LOG" '^GET /v2/team/single/manifests/v1 200$')"
check "429 with Retry-After: 1, twice: the client waited (${ms} ms >= 2000)" [ "$ms" -ge 2000 ]

# A 429 that asks for 30 s: not waited for; 503 with Retry-After for the caller.
front F3 --fault-429 1000 --retry-after 30 || die "cannot start regfront (429 long)"
daemon D3 "$F3_URL" || die "cannot start imgmeta serve (429 long)"
error_is "429 with Retry-After: 30: 503 upstream_rate_limited" \
    "$D3_URL/images/team/single/v1" 503 upstream_rate_limited "429"
ra=$(tr -d '\r' <"$ERR_OUT.h" | sed -n 's/^Retry-After: //Ip')
check_eq "429 with Retry-After: 30: one request, not retried" 1 "$(count "$F3_LOG" ' 429$')"
check "429 with Retry-After: 30: the 503 carries a Retry-After ($ra)" [ "${ra:-0}" -ge 1 ]

it_log "429s done at ${SECONDS}s"
# A slow upstream: 504.
front F4 --delay-ms 1500 || die "cannot start regfront (slow)"
daemon D4 "$F4_URL" --request-timeout-ms 500 || die "cannot start imgmeta serve (slow)"
error_is "slow upstream: 504 upstream_timeout" "$D4_URL/images/team/single/v1" 504 \
    upstream_timeout "manifest docker.io/team/single:v1"

# A manifest that does not hash to its digest: 502, nothing cached.
front F5 --fault-corrupt --fault-only team/single || die "cannot start regfront (corrupt)"
daemon D5 "$F5_URL" || die "cannot start imgmeta serve (corrupt)"
error_is "corrupted manifest: 502 digest_mismatch" "$D5_URL/images/team/single/v1" 502 \
    digest_mismatch "content hashes to"
error_is "corrupted manifest: still refused (nothing was cached)" \
    "$D5_URL/images/team/single/v1" 502 digest_mismatch "not $SINGLE_DIGEST"

# An oversized manifest: 502 too_large.
daemon D6 "$F1_URL" --max-manifest-bytes 65536 || die "cannot start imgmeta serve (cap)"
error_is "manifest over --max-manifest-bytes: 502 too_large" "$D6_URL/images/team/big/v1" \
    502 too_large "65536-byte cap"
code=$(fetch "$D1_URL/images/team/big/v1" "$IT_DIR/big.json")
check_eq "the same manifest under the default cap: 200, its digest" "200 $BIG_DIGEST" \
    "$code $(jq -r .digest "$IT_DIR/big.json")"

it_log "faults done at ${SECONDS}s"
# --- schema1 ---------------------------------------------------------------------

make_schema1 || die "cannot make the schema1 fixture"
front F6 --bearer --schema1 /v2/team/legacy/manifests/v1 "$IT_DIR/schema1.signed" \
    "$SCHEMA1_DIGEST" || die "cannot start regfront (schema1)"
daemon D9 "$F6_URL" || die "cannot start imgmeta serve (schema1)"
n0=$(wc -l <"$F6_LOG")
code=$(fetch "$D9_URL/images/team/legacy/v1" "$IT_DIR/schema1.json")
check_eq "signed schema1: 200, identified by the digest of its payload, its media type" \
    "200 $SCHEMA1_DIGEST application/vnd.docker.distribution.manifest.v1+prettyjws" \
    "$code $(jq -r '[.digest, .mediaType] | join(" ")' "$IT_DIR/schema1.json")"
check_eq "signed schema1: the distinct fsLayers, with their sizes, newest first" \
    "$(for l in $SCHEMA1_LAYERS; do printf '%s ' "$l"; done)16 26" \
    "$(jq -r '[.platforms[0].layers[].digest] + [.platforms[0].layers[].size | tostring] | join(" ")' "$IT_DIR/schema1.json" |
        sed -E 's/ ([0-9]+) ([0-9]+)$/ \1 \2/; s/(sha256:[0-9a-f]+) (sha256:[0-9a-f]+) /\1 \2 /')"
check_eq "signed schema1: platform and history from v1Compatibility" \
    "linux/amd64 1.10.3 3 2016-03-04T05:06:07Z" \
    "$(jq -r '.platforms[0] | "\(.platform.os)/\(.platform.architecture) \(.dockerVersion) \(.history | length) \(.history[-1].created)"' "$IT_DIR/schema1.json")"
tail -n +"$((n0 + 1))" "$F6_LOG" >"$IT_DIR/schema1.log"
check_eq "signed schema1: one manifest GET, one HEAD per distinct layer" "1 2" \
    "$(count "$IT_DIR/schema1.log" '^GET /v2/team/legacy/manifests/v1 200$') $(count "$IT_DIR/schema1.log" '^HEAD /v2/team/legacy/blobs/')"
code=$(fetch "$D9_URL/images/team/legacy/v1?format=markdown" "$IT_DIR/schema1.md")
check "signed schema1: the Markdown page renders (200, a schema1 MIME, its layers)" \
    bash -c "[ $code = 200 ] && grep -qF 'Manifest MIME: \`application/vnd.docker.distribution.manifest.v1+' '$IT_DIR/schema1.md' &&
             grep -qF '${SCHEMA1_LAYERS%% *}' '$IT_DIR/schema1.md'"

# --- Basic auth (htpasswd) --------------------------------------------------------

htpasswd -Bbc "$IT_DIR/htpasswd" robot s3cret-pw 2>/dev/null || die "htpasswd failed"
start_reg R2 "$STORAGE" "auth:
  htpasswd:
    realm: imgmeta-test
    path: $IT_DIR/htpasswd" 401 || die "cannot start docker-registry with htpasswd"
check_eq "htpasswd registry asks for Basic" "401 basic" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$R2_URL/v2/") $(curl -s -D - -o /dev/null "$R2_URL/v2/" |
        tr -d '\r' | sed -n 's/^Www-Authenticate: \([A-Za-z]*\).*/\1/Ip' | tr 'A-Z' 'a-z')"
daemon D7 "$R2_URL" || die "cannot start imgmeta serve (basic)"
error_is "Basic auth without credentials: 502 upstream_unauthorized, says so" \
    "$D7_URL/images/team/single/v1" 502 upstream_unauthorized \
    "asks for Basic authentication and no credentials are configured for docker.io"
printf '{"auths":{"https://index.docker.io/v1/":{"auth":"%s"}}}' \
    "$(printf 'robot:s3cret-pw' | base64)" >"$IT_DIR/config.json"
daemon D8 "$R2_URL" --docker-config "$IT_DIR/config.json" || die "cannot start imgmeta serve (basic, credentials)"
code=$(fetch "$D8_URL/images/team/single/v1" "$IT_DIR/basic.json")
check_eq "Basic auth with config.json credentials: 200, the same image" \
    "200 $SINGLE_DIGEST" "$code $(jq -r .digest "$IT_DIR/basic.json")"
check "the password is in no log" bash -c "! grep -rq s3cret-pw '$IT_DIR'/*.log"

# --- credential helpers (credHelpers, credsStore) ---------------------------------

# Fake docker-credential-* programs on the daemons' PATH. The one that answers
# records the server URL it was given on stdin, and its environment.
H=$IT_DIR/helpers
mkdir -p "$H"
cat >"$H/docker-credential-fake" <<EOF
#!/bin/sh
url=\$(cat)
echo "\$url" >>$H/calls
env >$H/env
printf '{"ServerURL":"%s","Username":"robot","Secret":"s3cret-pw"}' "\$url"
EOF
printf '#!/bin/sh\necho "keychain is locked" >&2\nexit 1\n' >"$H/docker-credential-broken"
printf '#!/bin/sh\nexec sleep 37\n' >"$H/docker-credential-stuck"
chmod +x "$H"/docker-credential-*
printf '{"auths":{"https://index.docker.io/v1/":{}},"credHelpers":{"https://index.docker.io/v1/":"fake"}}' \
    >"$IT_DIR/helper-config.json"
PATH="$H:$PATH" IMGMETA_ADMIN_TOKEN=daemon-only-secret daemon D10 "$R2_URL" \
    --docker-config "$IT_DIR/helper-config.json" --helper-ttl 3 ||
    die "cannot start imgmeta serve (credential helper)"
code=$(fetch "$D10_URL/images/team/single/v1" "$IT_DIR/helper.json")
check_eq "credHelpers: the helper's user and secret log in (200, the same image)" \
    "200 $SINGLE_DIGEST" "$code $(jq -r .digest "$IT_DIR/helper.json")"
check_eq "credHelpers: the helper was asked for Docker Hub as Docker asks (stdin)" \
    "https://index.docker.io/v1/" "$(cat "$H/calls")"
check "credHelpers: the helper got none of the daemon's environment" \
    bash -c "! grep -q daemon-only-secret '$H/env' && grep -q '^PATH=' '$H/env'"
code=$(fetch "$D10_URL/images/team/oci/v1" "$IT_DIR/helper2.json")
check_eq "credHelpers: its answer is kept (--helper-ttl): a second image, no second run" \
    "200 1" "$code $(wc -l <"$H/calls" | tr -d ' ')"
sleep 3.2
code=$(fetch "$D10_URL/images/team/big/v1" "$IT_DIR/helper3.json")
check_eq "credHelpers: past --helper-ttl the helper is run again" \
    "200 2" "$code $(wc -l <"$H/calls" | tr -d ' ')"
check "credHelpers: the secret is in no log" \
    bash -c "! grep -q s3cret-pw '$IT_DIR'/D10.daemon.log"
printf '{"credsStore":"broken"}' >"$IT_DIR/broken-config.json"
PATH="$H:$PATH" daemon D11 "$R2_URL" --docker-config "$IT_DIR/broken-config.json" ||
    die "cannot start imgmeta serve (failing credential helper)"
error_is "credsStore: a failing helper is a 502 naming it, with what it said" \
    "$D11_URL/images/team/single/v1" 502 upstream_unavailable \
    "credential helper docker-credential-broken failed (exit status 1): keychain is locked"
printf '{"credsStore":"stuck"}' >"$IT_DIR/stuck-config.json"
PATH="$H:$PATH" daemon D12 "$R2_URL" --docker-config "$IT_DIR/stuck-config.json" \
    --helper-timeout-ms 500 || die "cannot start imgmeta serve (slow credential helper)"
error_is "credsStore: a helper that does not answer is a 504 naming it, not a hang" \
    "$D12_URL/images/team/single/v1" 504 upstream_timeout \
    "credential helper docker-credential-stuck did not answer within 500 ms"
check "credsStore: the helper that did not answer was killed" \
    bash -c "! ps -eo args | grep -qx 'sleep 37'"

# Every process stopped cleanly: no sanitizer report (ASan/UBSan builds).
stop_all
check "no sanitizer report from any daemon or front" \
    bash -c "! grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$IT_DIR'/*.log '$IT_DIR'/*.stderr"

finish
