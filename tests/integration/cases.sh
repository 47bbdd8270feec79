#!/usr/bin/env bash
# cases.sh IMGMETA FIXTURE REGFRONT - every page case of tests/cases/ (ctest
# "integration.cases").
#
# A page case is a directory tests/cases/<name>/ that holds expected.md (a
# repo-info page), case (repository=NAME, tag=TAG, style=seed|current: the
# page's form), seed.json (its replica, made from the page by
# `imgmeta-fixture case --dir DIR`) and digests.tsv (fixture digest -> page
# digest, what a push of the seed must produce). Every directory with an
# expected.md is a case; one without (render-python-3.7-slim holds a unit
# test's bundle) is named and passed over.
#
# One registry, one front and one daemon for all cases. Per case:
#   (a) the seed pushes and the push's digests.tsv is the committed one;
#   (b) the daemon's Markdown (?format=markdown, and &style=current for a page
#       of today's form), digests mapped back, equals expected.md byte for byte
#       (a unified diff when not);
#   (c) the JSON keeps each entry's true media type (an OCI image manifest when
#       its layers are OCI layers or in-toto statements, Docker v2 when they
#       are Docker layers: read from the seed's layers, that is the page's),
#       attestations under "attestations" with what they attest, the list's
#       digest and media type, and as many entries as the page has sections.
# Prints "N passed, N failed"; exits 1 when anything failed or could not start.
# IT_KEEP=1 leaves everything running (see lib.sh).
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq cmp diff; do
    command -v "$tool" >/dev/null || { echo "integration: needs $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"
CASES=$IMGMETA_SOURCE_DIR/tests/cases

# case_value DIR KEY: the value of KEY= in DIR/case.
case_value() { sed -n "s/^$2=//p" "$1/case" | head -n 1; }

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"

# --- (a) push every case -------------------------------------------------------
NAMES=()
for dir in "$CASES"/*/; do
    dir=${dir%/}
    name=${dir##*/}
    if [ ! -f "$dir/expected.md" ]; then
        it_log "$name: no expected.md, not a page case"
        continue
    fi
    out=$IT_DIR/cases/$name
    mkdir -p "$out"
    if [ ! -f "$dir/case" ] || [ ! -f "$dir/seed.json" ] || [ ! -f "$dir/digests.tsv" ]; then
        it_fail "$name: has case, seed.json and digests.tsv (imgmeta-fixture case --dir $dir)"
        continue
    fi
    if ! "$FIXTURE" push --registry "$REGISTRY_URL" --seed "$dir/seed.json" \
        --repo "$(case_value "$dir" repository)" --tag "$(case_value "$dir" tag)" \
        --out "$out" >"$out/pushed" 2>"$out/push.stderr"; then
        it_fail "$name: the seed pushes"
        cat "$out/push.stderr"
        continue
    fi
    it_pass "$name: the seed pushes"
    check "$name: the push makes the committed digests.tsv" \
        cmp "$dir/digests.tsv" "$out/digests.tsv"
    NAMES+=("$name")
done
[ ${#NAMES[@]} -gt 0 ] || die "no case could be pushed"

# One front for all: every case's Last-Modified dates.
IT_OUT=$IT_DIR/all
mkdir -p "$IT_OUT"
for name in "${NAMES[@]}"; do cat "$IT_DIR/cases/$name/lastmod.tsv"; done >"$IT_OUT/lastmod.tsv"
start_front --bearer || die "cannot start regfront"
start_daemon || die "cannot start imgmeta serve"

# get NAME OUTFILE URL: GET; fails unless the answer is 200.
get() {
    local code
    code=$(curl -s -o "$2" -w '%{http_code}' --max-time 60 "$3")
    [ "$code" = 200 ] || { it_log "$1: HTTP $code: $(head -c 300 "$2" 2>/dev/null)"; return 1; }
}

# --- (b) the page, byte for byte ------------------------------------------------
check_markdown() {
    local name=$1 dir=$CASES/$1 out=$IT_DIR/cases/$1 url
    url="$DAEMON_URL/images/$(case_value "$dir" repository)/$(case_value "$dir" tag)?format=markdown"
    [ "$(case_value "$dir" style)" = current ] && url="$url&style=current"
    if ! get "$name markdown" "$out/page.md" "$url"; then
        it_fail "$name: the daemon answers the Markdown"
        return
    fi
    to_page_digests "$out/page.md" >"$out/page.mapped.md"
    if cmp -s "$dir/expected.md" "$out/page.mapped.md"; then
        it_pass "$name: the Markdown equals expected.md"
    else
        it_fail "$name: the Markdown equals expected.md"
        diff -u --label "tests/cases/$name/expected.md" --label "daemon ($url)" \
            "$dir/expected.md" "$out/page.mapped.md" | head -n 200
    fi
}

# --- (c) the JSON ------------------------------------------------------------------
# Expected from the seed: per entry the page digest (none for a single
# manifest: the top has it) and the type its layers say; attestations with the
# image they attest.
expected_entries() {
    jq -c '
      def truetype: if (.layers | length) > 0 and all(.layers[]; .mediaType
                          | startswith("application/vnd.oci.image.layer.")
                            or . == "application/vnd.in-toto+json")
                    then "application/vnd.oci.image.manifest.v1+json"
                    elif all(.layers[]; .mediaType | startswith("application/vnd.docker.image.rootfs."))
                    then "application/vnd.docker.distribution.manifest.v2+json"
                    else "unknown" end;
      {digest: (.list.digest // .platforms[0].manifest.digest),
       mediaType: (.list.mediaType // (.platforms[0] | truetype)),
       platforms: [.list as $list | .platforms[] | select(.attests == null)
                   | {digest: (if $list then .manifest.digest else null end), mediaType: truetype}],
       attestations: [.platforms[] | select(.attests != null)
                      | {digest: .manifest.digest, mediaType: truetype, attests}]}' "$1"
}

actual_entries() {
    jq -c '{digest, mediaType, platforms: [.platforms[] | {digest, mediaType}],
            attestations: [.attestations // [] | .[] | {digest, mediaType, attests}]}' "$1"
}

check_json() {
    local name=$1 dir=$CASES/$1 out=$IT_DIR/cases/$1 exp act
    if ! get "$name json" "$out/image.json" \
        "$DAEMON_URL/images/$(case_value "$dir" repository)/$(case_value "$dir" tag)" ||
        ! jq -e . "$out/image.json" >/dev/null 2>&1; then
        it_fail "$name: the daemon answers the JSON"
        return
    fi
    to_page_digests "$out/image.json" >"$out/image.mapped.json"
    check_eq "$name: JSON entries as many as the page's sections" \
        "$(grep -c '^### ' "$dir/expected.md")" \
        "$(jq '(.platforms | length) + (.attestations // [] | length)' "$out/image.mapped.json")"
    exp=$(expected_entries "$dir/seed.json")
    act=$(actual_entries "$out/image.mapped.json")
    if [ "$exp" = "$act" ]; then
        it_pass "$name: JSON true media types, attestations, list digest and type"
    else
        it_fail "$name: JSON true media types, attestations, list digest and type"
        diff <(jq -S . <<<"$exp") <(jq -S . <<<"$act") | head -n 40
    fi
}

for name in "${NAMES[@]}"; do
    IT_OUT=$IT_DIR/cases/$name # to_page_digests maps with this case's digests.tsv
    check_markdown "$name"
    check_json "$name"
done

finish
