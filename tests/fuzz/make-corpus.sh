#!/usr/bin/env bash
# make-corpus.sh - (re)builds the libFuzzer seed corpora in tests/fuzz/corpus/
# from the fixture (tests/fixtures/python-3.7-slim.json) and a few hand-written
# inputs of each grammar. Run it from anywhere; it needs jq. The outputs are
# checked in; tests/fuzz/run-fuzz.sh reads them (never writes them).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
seed=$src/tests/fixtures/python-3.7-slim.json
out=$src/tests/fuzz/corpus
# only the seeds this script makes; crash-* regression inputs and other seeds stay
rm -f "$out"/{fuzz_ref,fuzz_render,fuzz_auth,fuzz_date,fuzz_creds}/seed-*
mkdir -p "$out"/{fuzz_ref,fuzz_render,fuzz_auth,fuzz_date,fuzz_creds}
n=0
put() { n=$((n + 1)); printf '%s' "$2" >"$out/$1/seed-$n"; }

# references and routes
for r in "python:3.7-slim" "python/3.7-slim" "library/python/3.7-slim" \
    "$(jq -r '.repository' "$seed"):$(jq -r '.tag' "$seed")" \
    "python@$(jq -r '.list.digest' "$seed")" \
    "docker.io/library/python:3.7-slim@$(jq -r '.list.digest' "$seed")" \
    "ghcr.io/org/app/v1" "localhost:5000/team/app/1.0" "index.docker.io/python:3" \
    "registry-1.docker.io/a__b/c--d:e.f_g" "us-docker.pkg.dev/p/r/i:tag" "[::1]:5000/x:y"; do
    put fuzz_ref "$r"
done

# WWW-Authenticate challenges, token answers, URLs, addresses
for c in 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"' \
    'Bearer realm="http://127.0.0.1:5000/token",service="regfront"' \
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull",error="insufficient_scope"' \
    'Basic realm="Registry Realm"' 'Bearer realm="a\"b, c",scope="x y z"' \
    '{"token":"abc","expires_in":300}' '{"access_token":"xyz","expires_in":60,"issued_at":"2018-07-17T00:28:04Z"}' \
    'https://registry-1.docker.io/v2/library/python/manifests/3.7-slim' \
    'http://127.0.0.1:5000/cdn/library/python/blobs/sha256:00' 'https://[2001:db8::1]:8443/t?x=1' \
    '169.254.169.254' '::ffff:127.0.0.1' '64:ff9b::10.0.0.1' 'fe80::1' '8.8.8.8'; do
    put fuzz_auth "$c"
done

# dates: the fixture's created (RFC 3339) and Last-Modified (HTTP) values
while IFS= read -r d; do put fuzz_date "$d"; done < <(jq -r \
    '.platforms[] | (.history[].created, .layers[].last_modified)' "$seed" | sort -u | head -n 24)
for d in "2018-07-17T00:28:04Z" "2018-07-17T02:28:04+02:00" "1970-01-01T00:00:00.000000001Z" \
    "Tue, 17 Jul 2018 00:28:04 GMT" "Thu, 01 Jan 1970 00:00:00 GMT" "9999-12-31T23:59:59Z"; do
    put fuzz_date "$d"
done

# Docker config.json credentials
put fuzz_creds '{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}'
put fuzz_creds '{"auths":{"ghcr.io":{"username":"u","password":"p"},"localhost:5000":{"auth":"YTpi"}}}'

# documents for fuzz_render: NUL-separated; the first byte of each picks the
# media type ('2' list, '4' docker manifest, '6' docker config; see
# fuzz_render.c); "d0" is the root, "d1".."d3" have HEAD facts.
config() { # config of platform $1
    jq -c --argjson i "$1" '.platforms[$i] | {architecture: .platform.architecture,
        os: .platform.os, variant: .platform.variant, docker_version,
        created: .history[-1].created, config: {Cmd: .cmd},
        history: [.history[] | {created, created_by} + (if .empty_layer then {empty_layer: true} else {} end)],
        rootfs: {type: "layers", diff_ids: [.layers[].digest]}}' "$seed"
}
manifest() { # docker schema2 manifest of platform $1, config "$2", layers d2, d3
    jq -c --argjson i "$1" --arg cfg "$2" '.platforms[$i] | {schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: {mediaType: "application/vnd.docker.container.image.v1+json", size: 1000, digest: $cfg},
        layers: [.layers[:2][] | {mediaType, size, digest}] | (.[0].digest = "d2") | (.[1].digest = "d3")}' "$seed"
}
list() {
    jq -c '{schemaVersion: 2, mediaType: .list.mediaType,
        manifests: [.platforms[] | {mediaType: .manifest.mediaType, size: 1000, digest: "d1", platform}]}' "$seed"
}
np=$(jq '.platforms | length' "$seed")
for ((i = 0; i < np; i++)); do
    n=$((n + 1))
    { printf '4'; manifest "$i" d1; printf '\0'; printf '6'; config "$i"; } >"$out/fuzz_render/seed-$n"
done
n=$((n + 1))
{ printf '2'; list; printf '\0'; printf '4'; manifest 0 d2; printf '\0'; printf '6'; config 0; } \
    >"$out/fuzz_render/seed-$n"
echo "seeds: $(find "$out" -type f | wc -l) in $out"
