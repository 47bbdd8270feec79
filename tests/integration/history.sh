#!/usr/bin/env bash
# history.sh IMGMETA FIXTURE REGFRONT - a tag's history and the diff of two
# images as a client sees them (ctest "integration.history"), against
# docker-registry filled by imgmeta-fixture and regfront before it. The
# expected numbers (digests, per-platform sizes, layers shared, added and
# removed) are computed here from the registry itself with curl and jq, not
# from imgmeta.
#  (a) a tag moved in the registry between two requests: two changes, newest
#      first, the first with a null previous digest, each platform's total
#      size the sum of its manifest's layer sizes; n=1 pages with a Link;
#      the Markdown table has a row per change;
#  (b) the diff of two variants of one image (every layer shared) and of two
#      different images (python:3.7-slim and hello-world:latest): the
#      platforms in common, sizes, layers shared, added and removed;
#  (c) the history survives a restart of the daemon (it is in the database);
#  (d) two replicas on one PostgreSQL database (tests/integration/pg.sh): a
#      move one of them sees is in the history the other answers;
#  (e) a tag back at a digest whose HTML page was rendered and kept before:
#      the page's chart has every change, not the kept page's one.
# The daemons run with --tag-ttl 0, so each request revalidates the tag: the
# moves are seen by revalidations (a manifest HEAD that finds a new digest).
# Prints "N passed, N failed"; IT_KEEP=1 leaves everything running.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq; do
    command -v "$tool" >/dev/null || {
        echo "history: needs $tool (cmake/install-deps.sh test installs it)" >&2
        exit 1
    }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
lib_init "$1" "$2" "$3"

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
FIRST=$LIST_DIGEST
"$FIXTURE" push --registry "$REGISTRY_URL" \
    --seed "$IMGMETA_SOURCE_DIR/tests/cases/hello-world-latest/seed.json" \
    --repo library/hello-world --tag latest --out "$IT_DIR/hello" >/dev/null ||
    die "cannot push hello-world"
start_front || die "cannot start regfront"
# --tag-ttl 0: every request asks the registry whether the tag moved
start_daemon --tag-ttl 0 || die "cannot start imgmeta serve"
U=$DAEMON_URL

ACCEPT='application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json'
# manifest REPO REF: a manifest's body, straight from the registry
manifest() { curl -sf -H "Accept: $ACCEPT" "$REGISTRY_URL/v2/$1/manifests/$2"; }
# platform_sizes REPO LIST_DIGEST: "os/arch[/variant] total" lines, one per
# image entry of the list (attestations left out), in its order
platform_sizes() {
    local repo=$1 list=$2 d p
    manifest "$repo" "$list" | jq -r '.manifests[]
        | select(.platform.architecture != "unknown")
        | "\(.digest) \(.platform.os)/\(.platform.architecture)\(if .platform.variant then "/" + .platform.variant else "" end)"' |
        while read -r d p; do
            printf '%s %s\n' "$p" "$(manifest "$repo" "$d" | jq '[.layers[].size] | add')"
        done
}
# layers REPO LIST_DIGEST PLATFORM: "digest size" lines of that platform's image
layers() {
    local d
    d=$(manifest "$1" "$2" | jq -r --arg p "$3" '.manifests[]
        | select("\(.platform.os)/\(.platform.architecture)\(if .platform.variant then "/" + .platform.variant else "" end)" == $p)
        | .digest' | head -n 1)
    manifest "$1" "$d" | jq -r '.layers[] | "\(.digest) \(.size)"'
}

# --- (a) a tag that moves ------------------------------------------------------------
curl -s -o "$IT_DIR/h1.json" "$U/images/python/3.7-slim?view=history"
check_eq "(a) first sighting: one change at the list's digest, previous null" \
    "1 $FIRST null" "$(jq -r '"\(.changes | length) \(.changes[0].digest) \(.changes[0].previousDigest)"' "$IT_DIR/h1.json")"
check_eq "(a) ... each platform's total size is the sum of its manifest's layer sizes" \
    "$(platform_sizes library/python "$FIRST")" \
    "$(jq -r '.changes[0].platforms[] | "\(.platform) \(.totalSize)"' "$IT_DIR/h1.json")"
curl -s -o /dev/null "$U/images/python/3.7-slim"
check_eq "(a) the same digest seen again is no change" 1 \
    "$(curl -s "$U/images/python/3.7-slim?view=history" | jq '.changes | length')"

# chart_points FILE PLATFORM: the points of PLATFORM in the HTML page's size
# chart (each point's <title> has the platform on a line of its own)
chart_points() {
    sed -n '/<section aria-labelledby="size-history">/,/<\/section>/p' "$1" | grep -cxF "$2"
}
# chart_summary FILE LIST_DIGEST: "platform points" lines, one per platform
chart_summary() {
    platform_sizes library/python "$2" | while read -r p _; do
        printf '%s %s\n' "$p" "$(chart_points "$1" "$p")"
    done
}
curl -s -o "$IT_DIR/h1.html" "$U/images/python/3.7-slim?format=html"
check_eq "(a) HTML page: one point per platform, said plainly" \
    "$(platform_sizes library/python "$FIRST" | awk '{ print $1, 1 }') 1" \
    "$(chart_summary "$IT_DIR/h1.html" "$FIRST") $(grep -c 'One change of this tag seen so far' "$IT_DIR/h1.html")"

SECOND=$(IT_OUT=$IT_DIR/fx-variant fill_fixture push-variant --variant 7 && echo "$LIST_DIGEST") ||
    die "push-variant failed"
check "(a) the variant is another list" [ -n "$SECOND" ] && [ "$SECOND" != "$FIRST" ]
curl -s -o /dev/null "$U/images/python/3.7-slim" # a request sees the tag moved
curl -s -o "$IT_DIR/h2.json" "$U/images/python/3.7-slim?view=history"
check_eq "(a) after the move: two changes, newest first, the first sighting's previous null" \
    "2 $SECOND $FIRST $FIRST null" \
    "$(jq -r '"\(.changes | length) \(.changes[0].digest) \(.changes[0].previousDigest) \(.changes[1].digest) \(.changes[1].previousDigest)"' "$IT_DIR/h2.json")"
check_eq "(a) ... newest first by time too" true \
    "$(jq '.changes[0].seen >= .changes[1].seen' "$IT_DIR/h2.json")"
check_eq "(a) ... the new change's sizes are the new list's" \
    "$(platform_sizes library/python "$SECOND")" \
    "$(jq -r '.changes[0].platforms[] | "\(.platform) \(.totalSize)"' "$IT_DIR/h2.json")"

curl -s -o "$IT_DIR/h2.html" "$U/images/python/3.7-slim?format=html"
check_eq "(a) after the move, the HTML page's chart: two points per platform" \
    "$(platform_sizes library/python "$SECOND" | awk '{ print $1, 2 }')" \
    "$(chart_summary "$IT_DIR/h2.html" "$SECOND")"
check_eq "(a) ... each point's title has the change's digest" "$(($(platform_sizes library/python "$SECOND" | wc -l) * 2))" \
    "$(sed -n '/<section aria-labelledby="size-history">/,/<\/section>/p' "$IT_DIR/h2.html" | grep -cxE "($FIRST|$SECOND)")"

curl -s -D "$IT_DIR/p1.h" -o "$IT_DIR/p1.json" "$U/images/python/3.7-slim?view=history&n=1"
link=$(tr -d '\r' <"$IT_DIR/p1.h" | sed -n 's/^Link: <\(.*\)>; rel="next"$/\1/Ip')
check_eq "(a) n=1: the newest change and a Link to the next page" "1 $SECOND yes" \
    "$(jq -r '"\(.changes | length) \(.changes[0].digest)"' "$IT_DIR/p1.json") $([ -n "$link" ] && echo yes)"
curl -s -D "$IT_DIR/p2.h" -o "$IT_DIR/p2.json" "$U$link"
check_eq "(a) the Link's page: the first sighting, and no Link after it" "1 $FIRST 0" \
    "$(jq -r '"\(.changes | length) \(.changes[0].digest)"' "$IT_DIR/p2.json") $(grep -ci '^Link:' "$IT_DIR/p2.h")"

curl -s -H 'Accept: text/markdown' -o "$IT_DIR/h2.md" "$U/images/python/3.7-slim?view=history"
check_eq "(a) Markdown: a table of two rows, the first sighting's marked" "2 1" \
    "$(grep -c '^| [0-9]' "$IT_DIR/h2.md") $(grep -c '| (first seen) |' "$IT_DIR/h2.md")"

# --- (b) diffs ---------------------------------------------------------------------------
curl -s -o "$IT_DIR/d1.json" "$U/diff?from=python@$FIRST&to=python:3.7-slim"
check_eq "(b) two variants: every platform in common, nothing only in one" \
    "$(platform_sizes library/python "$FIRST" | cut -d' ' -f1 | tr '\n' ' ')0 0" \
    "$(jq -r '[.platforms[].platform] | join(" ")' "$IT_DIR/d1.json") $(jq '.onlyInFrom | length' "$IT_DIR/d1.json") $(jq '.onlyInTo | length' "$IT_DIR/d1.json")"
check_eq "(b) ... every layer shared, no size change, no Dockerfile line changed" "true" \
    "$(jq '[.platforms[] | .sizeDelta == 0 and (.added | length) == 0 and (.removed | length) == 0
        and .shared.bytes == .fromSize and (.dockerfileAdded | length) == 0] | all' "$IT_DIR/d1.json")"
check_eq "(b) ... the sides are the two lists" "$FIRST $SECOND" \
    "$(jq -r '"\(.from.digest) \(.to.digest)"' "$IT_DIR/d1.json")"

HELLO=$(manifest library/hello-world latest | jq -r '.manifests[0].digest' >/dev/null &&
    curl -sfI -H "Accept: $ACCEPT" "$REGISTRY_URL/v2/library/hello-world/manifests/latest" |
    tr -d '\r' | sed -n 's/^Docker-Content-Digest: //Ip')
curl -s -o "$IT_DIR/d2.json" "$U/diff?from=python:3.7-slim&to=hello-world:latest"
common=$(comm -12 <(platform_sizes library/python "$SECOND" | cut -d' ' -f1 | sort) \
    <(platform_sizes library/hello-world "$HELLO" | cut -d' ' -f1 | sort) | tr '\n' ' ')
check_eq "(b) python and hello-world: the platforms both have" "$common" \
    "$(jq -r '[.platforms[].platform] | sort | join(" ")' "$IT_DIR/d2.json") "
only_to=$(comm -13 <(platform_sizes library/python "$SECOND" | cut -d' ' -f1 | sort) \
    <(platform_sizes library/hello-world "$HELLO" | cut -d' ' -f1 | sort) | tr '\n' ' ')
check_eq "(b) ... and those only hello-world has" "$only_to" \
    "$(jq -r '.onlyInTo | sort | join(" ")' "$IT_DIR/d2.json") "
p=linux/amd64
layers library/python "$SECOND" $p | sort >"$IT_DIR/from.l"
layers library/hello-world "$HELLO" $p | sort >"$IT_DIR/to.l"
want=$(printf '%s %s %s %s %s %s' \
    "$(awk '{ s += $2 } END { print s }' "$IT_DIR/from.l")" \
    "$(awk '{ s += $2 } END { print s }' "$IT_DIR/to.l")" \
    "$(comm -12 "$IT_DIR/from.l" "$IT_DIR/to.l" | wc -l)" \
    "$(comm -13 "$IT_DIR/from.l" "$IT_DIR/to.l" | cut -d' ' -f1 | tr '\n' ,)" \
    "$(comm -23 "$IT_DIR/from.l" "$IT_DIR/to.l" | cut -d' ' -f1 | tr '\n' ,)" \
    "$(($(awk '{ s += $2 } END { print s }' "$IT_DIR/to.l") - $(awk '{ s += $2 } END { print s }' "$IT_DIR/from.l")))")
check_eq "(b) $p: sizes, layers shared, added and removed as the registry's manifests say" \
    "$want" "$(jq -r --arg p $p '.platforms[] | select(.platform == $p)
        | "\(.fromSize) \(.toSize) \(.shared.layers) \([.added[].digest] | sort | map(. + ",") | add // "") \([.removed[].digest] | sort | map(. + ",") | add // "") \(.sizeDelta)"' "$IT_DIR/d2.json")"
check_eq "(b) ... the added layers carry their sizes" \
    "$(comm -13 "$IT_DIR/from.l" "$IT_DIR/to.l" | awk '{ s += $2 } END { print s + 0 }')" \
    "$(jq --arg p $p '[.platforms[] | select(.platform == $p) | .added[].size] | add // 0' "$IT_DIR/d2.json")"

curl -s -o "$IT_DIR/d3.json" "$U/diff?from=python:3.7-slim&to=hello-world:latest&platform=linux/amd64"
check_eq "(b) ?platform= keeps that platform alone" "linux/amd64 0 0" \
    "$(jq -r '"\([.platforms[].platform] | join(" ")) \(.onlyInFrom | length) \(.onlyInTo | length)"' "$IT_DIR/d3.json")"
curl -s -H 'Accept: text/markdown' -o "$IT_DIR/d3.md" \
    "$U/diff?from=python:3.7-slim&to=hello-world:latest&platform=linux/amd64"
check_eq "(b) Markdown: one platform section and its layers listed" \
    "1 $(comm -13 "$IT_DIR/from.l" "$IT_DIR/to.l" | wc -l)" \
    "$(grep -c '^#### linux/amd64$' "$IT_DIR/d3.md") $(sed -n '/^- Layers added:/,/^- Layers removed:/p' "$IT_DIR/d3.md" | grep -c '^  - ')"

# --- (c) the history is kept in the database ----------------------------------------------
check_clean_stop "$DAEMON_PID"
mv "$IT_DIR/daemon.log" "$IT_DIR/daemon-1.log"
start_daemon --tag-ttl 3600 || die "cannot start imgmeta serve again"
check_eq "(c) after a restart the two changes are still there" "2 $SECOND" \
    "$(curl -s "$DAEMON_URL/images/python/3.7-slim?view=history" | jq -r '"\(.changes | length) \(.changes[0].digest)"')"

check_clean_stop "$DAEMON_PID"

# --- (d) replicas on one PostgreSQL share the history --------------------------------------
# replica N: a daemon on the shared database; its URL in RURL[N], PID in RPID[N]
declare -a RURL RPID
replica() {
    local log=$IT_DIR/replica-$1.log
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$PG_URI" --tag-ttl 0 \
        --mirror "docker.io=$FRONT_URL" >"$log" 2>&1 &
    RPID[$1]=$!
    it_record "$!"
    daemon_ready "$log" "$!" || return 1
    RURL[$1]=$DAEMON_URL
}
if pg_start "$IT_DIR/pg"; then
    replica 1 || die "cannot start replica 1"
    replica 2 || die "cannot start replica 2"
    curl -s -o /dev/null "${RURL[1]}/images/python/3.7-slim"
    THIRD=$(IT_OUT=$IT_DIR/fx-variant8 fill_fixture push-variant --variant 8 && echo "$LIST_DIGEST") ||
        die "push-variant 8 failed"
    curl -s -o /dev/null "${RURL[2]}/images/python/3.7-slim" # the other replica sees the move
    check_eq "(d) a move seen by one replica is in the other's history" "2 $THIRD $SECOND $SECOND null" \
        "$(curl -s "${RURL[1]}/images/python/3.7-slim?view=history" |
            jq -r '"\(.changes | length) \(.changes[0].digest) \(.changes[0].previousDigest) \(.changes[1].digest) \(.changes[1].previousDigest)"')"
    for n in 1 2; do check_clean_stop "${RPID[n]}"; done
    pg_stop
else
    it_fail "(d) cannot start PostgreSQL"
fi
# --- (e) a tag back at a digest it had: the HTML page is not the one kept then -------------
# One daemon throughout: its in-memory tiers keep the page rendered at FIRST.
mv "$IT_DIR/daemon.log" "$IT_DIR/daemon-2.log"
start_daemon --tag-ttl 0 || die "cannot start imgmeta serve for (e)"
U=$DAEMON_URL
BACK=$(IT_OUT=$IT_DIR/fx-back fill_fixture && echo "$LIST_DIGEST") || die "cannot push the first list again"
check_eq "(e) the tag is back at its first digest" "$FIRST" "$BACK"
curl -s -o "$IT_DIR/h3.html" "$U/images/python/3.7-slim?format=html" # rendered and kept
IT_OUT=$IT_DIR/fx-away fill_fixture push-variant --variant 9 >/dev/null || die "push-variant 9 failed"
curl -s -o /dev/null "$U/images/python/3.7-slim" # a request sees the tag moved away
IT_OUT=$IT_DIR/fx-back2 fill_fixture || die "cannot push the first list again"
curl -s -o "$IT_DIR/h4.html" "$U/images/python/3.7-slim?format=html"
changes=$(curl -s "$U/images/python/3.7-slim?view=history" | jq '.changes | length')
check "(e) ... two changes more than the page kept at that digest shows" \
    [ "$changes" -ge 4 ] && [ "$(chart_points "$IT_DIR/h3.html" linux/amd64)" -eq $((changes - 2)) ]
check_eq "(e) the HTML page's chart has a point per change per platform, not the kept page's" \
    "$(platform_sizes library/python "$FIRST" | awk -v n="$changes" '{ print $1, n }')" \
    "$(chart_summary "$IT_DIR/h4.html" "$FIRST")"
check_clean_stop "$DAEMON_PID"
check_no_sanitizer_report "$IT_DIR"/daemon-1.log "$IT_DIR"/daemon-2.log "$IT_DIR"/daemon.log "$IT_DIR"/replica-*.log
finish
